"""Runs a `command` task: an argv in its own process group, with a timeout.

The command reports metrics by writing JSON to the path in `DTF_RESULTS_FILE`, either a plain
object of numbers (`{"latency_ms": 12.5}`) or the long form

    {"metrics": [{"name": "latency_ms", "value": 12.5, "unit": "ms", "direction": "lower",
                  "dims": {"model": "bert"}}]}

Output is streamed to `on_output` as it comes.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import msgspec

from dtf.runner.launch import kill_group
from events.catalogue import Category, Metric

TAIL_BYTES = 8192


@dataclass(frozen=True)
class CommandOutcome:
    exit_code: int
    metrics: tuple[Metric, ...] = ()
    category: Category | None = None  # set when the command could not produce a result
    message: str = ""
    output_tail: str = ""  # the last few KiB of output, for failure reports


class _LongForm(msgspec.Struct, forbid_unknown_fields=True):
    metrics: tuple[Metric, ...]


class ResultsError(ValueError):
    """A results file that is not metrics dtf can record; the message says what is wrong."""


# Floats are read by `float` so that 1e999 becomes inf (refused below, naming its metric) on
# every msgspec version, rather than an anonymous "Number out of range".
_raw_decoder = msgspec.json.Decoder(float_hook=float)


def parse_results(data: bytes) -> tuple[Metric, ...]:
    """Metrics from a results file, in either form; raises ResultsError on anything else.

    A value that is not finite is refused like any malformed file: it could not be written in
    a TaskCompleted event, and a run's metrics with one silently dropped would mislead.
    """
    try:
        raw = _raw_decoder.decode(data)
        if isinstance(raw, dict) and "metrics" in raw:
            metrics = msgspec.convert(raw, _LongForm).metrics
        else:
            plain = msgspec.convert(raw, dict[str, float])
            metrics = tuple(Metric(name, value) for name, value in plain.items())
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ResultsError(str(exc)) from None
    for metric in metrics:
        if not math.isfinite(metric.value):
            raise ResultsError(f"metric {metric.name!r} is {metric.value!r}, not a finite number")
    return metrics


async def run_command(
    argv: list[str],
    *,
    cwd: Path,
    timeout: float,
    on_output: Callable[[bytes], None] | None = None,
    cancelled: asyncio.Event | None = None,
    env: dict[str, str] | None = None,
    results: Path,
    on_start: Callable[[int], None] | None = None,
) -> CommandOutcome:
    """Run argv; the command may write its metrics to `results` (an absent file).
    `on_start` gets the process id once it runs."""
    full_env = {**os.environ, **(env or {}), "DTF_RESULTS_FILE": str(results)}
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=full_env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        return CommandOutcome(
            127,
            category="environment",
            message=f"cannot start {argv[0]!r}: {exc.strerror or exc}",
        )

    if on_start is not None:
        on_start(proc.pid)
    tail = bytearray()

    async def pump() -> None:
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(65536):
            tail.extend(chunk)
            del tail[:-TAIL_BYTES]
            if on_output is not None:
                on_output(chunk)

    pumping = asyncio.ensure_future(pump())
    waiting = asyncio.ensure_future(proc.wait())
    stopper = asyncio.ensure_future(cancelled.wait()) if cancelled else None
    pending = {waiting} | ({stopper} if stopper else set())
    done, _ = await asyncio.wait(pending, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    if stopper is not None:
        stopper.cancel()
    if waiting not in done:
        kill_group(proc.pid)
        await proc.wait()
        pumping.cancel()
        if stopper is not None and stopper in done:
            return CommandOutcome(-9, category="cancelled", message="cancelled")
        return CommandOutcome(
            -9,
            category="timeout",
            message=f"timeout after {timeout:g}s",
            output_tail=tail.decode(errors="replace"),
        )
    kill_group(proc.pid)  # leftovers the command spawned must not outlive its task
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(pumping, 5)
    code = proc.returncode if proc.returncode is not None else -1
    metrics: tuple[Metric, ...] = ()
    if results.exists():
        try:
            metrics = parse_results(results.read_bytes())
        except (ResultsError, OSError) as exc:
            return CommandOutcome(
                code,
                category="test",
                message=f"DTF_RESULTS_FILE is not valid: {exc}",
            )
    return CommandOutcome(code, metrics, output_tail=tail.decode(errors="replace"))
