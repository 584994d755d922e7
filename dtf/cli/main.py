"""The `dtf` command line.  Every DtfError becomes one line on stderr and a non-zero exit."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

from rich.console import Console

from dtf import __version__
from dtf.client.config import load_settings, server_url, servers
from dtf.core import requirements
from dtf.core.scheduling import DEFAULT_STRATEGY, STRATEGIES, strategy
from dtf.errors import ConfigError, DtfError, StoreError
from events import topology

DEFAULT_LOCAL = "nats://127.0.0.1:4222"


def _server_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--server",
        metavar="URL",
        help="NATS URL(s), comma-separated (default: $DTF_SERVER, [tool.dtf] server"
        f"{', else the embedded server' if p.prog.endswith('run') else ''})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dtf", description="Distributed testing and benchmarking on NATS JetStream."
    )
    parser.add_argument("--version", action="version", version=f"dtf {__version__}")
    parser.add_argument(
        "--log-level",
        default=os.environ.get("DTF_LOG_LEVEL", "WARNING"),
        help="logging level for daemons (default: WARNING)",
    )
    sub = parser.add_subparsers(dest="cmd", metavar="COMMAND", required=True)

    run = sub.add_parser(
        "run",
        help="run a pytest suite or commands across the workers",
        description="Collect a pytest suite (or take --command), split it into "
        "tasks, run them on the workers and print a pytest-like "
        "summary. Exit codes follow pytest: 0 passed, 1 failures, "
        "2 interrupted/usage, 5 nothing collected. Arguments after "
        "'--' go to pytest (e.g. -- -k smoke -x).",
    )
    run.add_argument("paths", nargs="*", default=None, help="test files or directories")
    _server_arg(run)
    run.add_argument("-n", "--workers", type=int, help="embedded workers (default: CPUs)")
    run.add_argument("--split", choices=["file", "test"], help="task granularity (default file)")
    run.add_argument("--timeout", type=float, help="seconds per task (default 600)")
    run.add_argument(
        "--strategy",
        choices=sorted(STRATEGIES),
        help=f"scheduling strategy of the embedded coordinator (default {DEFAULT_STRATEGY})",
    )
    run.add_argument(
        "--requires",
        default="",
        metavar="SPEC",
        help="hardware every task needs, e.g. gpus=1,memory_gb=16,label=fast",
    )
    run.add_argument("--priority", type=int, default=0, help="higher runs first (default 0)")
    run.add_argument(
        "--reruns",
        type=int,
        default=0,
        metavar="N",
        help="rerun a failing test up to N times; a later pass counts as flaky",
    )
    run.add_argument(
        "--max-attempts",
        type=int,
        default=3,
        metavar="N",
        help="attempts per task after infrastructure errors or timeouts (default 3)",
    )
    run.add_argument(
        "--command",
        action="append",
        default=[],
        metavar="CMD",
        help="run this shell-quoted command as a task instead of pytest "
        "(repeatable); metrics go to the JSON file in $DTF_RESULTS_FILE",
    )
    run.add_argument("--repeat", type=int, default=1, help="submit each --command N times")
    run.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="label the run (repeatable); commit and branch come from git",
    )
    run.add_argument("--junit-xml", type=Path, metavar="PATH", help="write a JUnit XML report")
    run.add_argument("--json", type=Path, metavar="PATH", help="write a JSON report")
    run.add_argument(
        "--durations",
        type=int,
        metavar="N",
        help="show the N slowest tests, 0 for all, as pytest's --durations (default: pytest's "
        "--durations after -- or in addopts, else none; negative: none)",
    )
    run.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="list skips, xfails and xpasses in the short summary too, as pytest's -ra",
    )
    run.add_argument("--no-progress", action="store_true", help="no live progress display")

    coord = sub.add_parser("coordinator", help="run a coordinator (schedules tasks)")
    _server_arg(coord)
    coord.add_argument("--strategy", choices=sorted(STRATEGIES), default=DEFAULT_STRATEGY)
    coord.add_argument("--id", help="coordinator id (default: random)")
    coord.add_argument(
        "--straggler-after",
        type=float,
        default=10.0,
        metavar="S",
        help="with the queue empty and a worker idle, give a task running over 4x its "
        "expected time and over S seconds a second attempt (default 10)",
    )
    coord.add_argument(
        "--lost-after",
        type=float,
        default=topology.HEARTBEAT_TTL_S,
        metavar="S",
        help="declare a worker lost after S seconds without "
        f"a heartbeat (default {topology.HEARTBEAT_TTL_S:g})",
    )

    worker = sub.add_parser(
        "worker",
        help="run a worker daemon, or drain/enable/disable one",
        description="Without ACTION: run a worker daemon that executes tasks (SIGTERM drains "
        "it). With ACTION and ID: ask worker ID to drain (finish its tasks, then stop), or "
        "enable it (after a quarantine) or disable it (no new work).",
    )
    worker.add_argument("action", nargs="?", choices=["drain", "enable", "disable"])
    worker.add_argument("target", nargs="?", metavar="ID", help="the worker to act on")
    _server_arg(worker)
    worker.add_argument("--slots", type=int, default=1, help="tasks at once (default 1)")
    worker.add_argument("--id", help="worker id (default: host-pid-random)")
    worker.add_argument("--label", action="append", default=[], help="a label (repeatable)")
    worker.add_argument("--cache-dir", type=Path, help="bundle cache (default ~/.cache/dtf)")
    worker.add_argument(
        "--python",
        metavar="PATH",
        help="the interpreter that runs the tests and commands, e.g. a project's "
        ".venv/bin/python (default: [tool.dtf] python, else dtf's own)",
    )
    worker.add_argument("--exit-with-parent", type=int, metavar="PID", help=argparse.SUPPRESS)
    worker.add_argument("--prewarm", metavar="JSON", help=argparse.SUPPRESS)

    server = sub.add_parser("server", help="run a nats-server with dtf's nats.conf")
    server.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    server.add_argument("--port", type=int, default=4222)
    server.add_argument(
        "--cluster",
        type=int,
        default=0,
        metavar="N",
        help="start an N-node JetStream cluster on loopback (random ports) "
        "instead of one server; streams get 3 replicas when N >= 3",
    )
    server.add_argument(
        "--store",
        type=Path,
        default=Path("dtf-store"),
        help="JetStream store directory (default ./dtf-store)",
    )

    status = sub.add_parser("status", help="workers, queue and running tasks")
    _server_arg(status)

    show = sub.add_parser(
        "show",
        help="the event history (audit trail) of a run, task or worker, or of a time range",
        description="Read straight from the event stream (works with no coordinator and with "
        "stale read models): every event with its sequence, time, actor and leader term. "
        "`dtf show all --since 1h` lists everything in a time range.",
    )
    _server_arg(show)
    show.add_argument("kind", choices=["run", "task", "worker", "all"])
    show.add_argument("id", nargs="?", help="run, task or worker id (not for 'all')")
    show.add_argument("--since", metavar="AGE", help="only events newer than AGE (e.g. 30m, 6h)")
    show.add_argument("--until", metavar="AGE", help="only events older than AGE")

    events = sub.add_parser("events", help="event stream tools")
    events_sub = events.add_subparsers(dest="events_command", required=True, metavar="ACTION")
    tail = events_sub.add_parser("tail", help="print events live, pretty")
    _server_arg(tail)
    tail.add_argument("--all", action="store_true", help="start from the first event")
    tail.add_argument("--last", type=int, default=20, help="start N events back (default 20)")
    tail.add_argument("--subject", default="dtf.evt.>", help="filter (default dtf.evt.>)")

    from dtf.cli import analysis as analysis_cli

    analysis_cli.add_commands(sub, _server_arg)
    return parser


def _connect_url(args: argparse.Namespace) -> list[str]:
    url = server_url(args.server, load_settings(Path.cwd())) or DEFAULT_LOCAL
    return servers(url)


async def _serve(body: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run a daemon until SIGINT/SIGTERM, which set `stop` so it can shut down in order.

    A second signal while it shuts down exits at once (the impatient operator's Ctrl-C).
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():
            print("dtf: stopping now, without finishing the shutdown", file=sys.stderr)
            os._exit(130)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    await body(stop)


async def _coordinator(args: argparse.Namespace) -> int:
    from dtf.coordinator.service import Coordinator
    from dtf.nats.store import EventStore

    store = await EventStore.connect(_connect_url(args), name="dtf-coordinator")
    try:
        coord = Coordinator(
            store,
            strategy(args.strategy),
            coordinator_id=args.id,
            lost_after=args.lost_after,
            straggler_after=args.straggler_after,
        )
        await _serve(coord.run)
    finally:
        await store.close()
    return 0


async def _worker_admin(args: argparse.Namespace) -> int:
    """An operator's request about one worker, recorded as an event."""
    import getpass
    import time
    import uuid

    from dtf.nats.store import EventStore, Recorded
    from events.catalogue import WorkerDisabled, WorkerDrainRequested, WorkerEnabled
    from events.subjects import valid_token, worker_subject

    if not args.target or not valid_token(args.target):
        raise ConfigError(f"dtf worker {args.action} needs a worker id (see dtf status)")
    cls = {"drain": WorkerDrainRequested, "enable": WorkerEnabled, "disable": WorkerDisabled}
    event = cls[args.action](
        id=uuid.uuid4().hex,
        at=time.time(),
        actor=f"operator-{getpass.getuser()}",
        worker_id=args.target,
    )
    store = await EventStore.connect(_connect_url(args), name="dtf-admin", timeout=3.0)
    try:
        history = await store.load(worker_subject(args.target), timeout=10)
        if not any(isinstance(r, Recorded) for r in history):
            raise ConfigError(f"no worker {args.target} has ever registered")
        await store.append(event)
    finally:
        await store.close()
    print(f"{args.action}: recorded for worker {args.target}")
    return 0


async def _worker(args: argparse.Namespace) -> int:
    from dtf.nats.store import EventStore
    from dtf.worker.interpreter import probe, resolve
    from dtf.worker.service import Worker

    if args.action:
        return await _worker_admin(args)
    if args.slots < 1:
        raise ConfigError("--slots must be at least 1")
    if args.exit_with_parent:  # started by `dtf run`: never outlive it
        from dtf.runner.child.lifeline import exit_with_parent

        exit_with_parent(args.exit_with_parent)
    settings = load_settings(Path.cwd())
    python = resolve(args.python) if args.python else settings.python or None
    interpreter = await asyncio.to_thread(probe, python)  # a bad one fails before connecting
    store = await EventStore.connect(_connect_url(args), name="dtf-worker")
    try:
        worker = Worker(
            store,
            worker_id=args.id,
            slots=args.slots,
            labels=tuple(args.label),
            cache_dir=args.cache_dir,
            prewarm=tuple(json.loads(args.prewarm)) if args.prewarm else None,
            interpreter=interpreter,
        )
        await _serve(worker.run)
    finally:
        await store.close()
    return 0


def _server(args: argparse.Namespace) -> int:
    from dtf.nats.server import start_cluster_servers, start_server

    if args.cluster:
        if args.cluster < 1:
            raise ConfigError("--cluster needs a number of nodes, e.g. --cluster 3")
        cluster = start_cluster_servers(args.cluster, args.store)
        servers = cluster.nodes
        print(
            f"{args.cluster}-node cluster (store and logs in {args.store}); give clients all URLs:"
        )
        print(f"  --server {','.join(cluster.urls)}")
        stop = cluster.stop
    else:
        log = args.store / "nats-server.log"
        server = start_server(store_dir=args.store, host=args.host, port=args.port, log_file=log)
        servers = [server]
        print(f"nats-server listening on {server.url}; Ctrl-C stops it")
        print(f"  store {args.store}, log {log}")
        stop = server.stop
    # SIGTERM stops the servers as Ctrl-C does, instead of orphaning them.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        while all(s.process.poll() is None for s in servers):
            time.sleep(0.5)  # until Ctrl-C, or a node dies
    except KeyboardInterrupt:
        pass
    finally:
        stop()
    dead = [s for s in servers if s.process.returncode not in (None, 0, -15)]
    if dead:
        raise StoreError(dead[0].death())
    return 0


async def _run(args: argparse.Namespace, pytest_args: list[str], console: Console) -> int:
    from dtf.client.run import RunClient, options_from

    try:
        req = requirements.parse(args.requires)
    except ValueError as exc:
        raise ConfigError(f"--requires: {exc}") from None
    if args.command and (args.paths or pytest_args):
        raise ConfigError("give test paths or --command, not both")
    tags = {}
    for tag in args.tag:
        key, sep, value = tag.partition("=")
        if not sep or not key:
            raise ConfigError(f"--tag must be KEY=VALUE, got {tag!r}")
        tags[key] = value
    settings = load_settings(Path.cwd())
    opts = options_from(
        settings,
        tags=tags,
        # No path given: none is passed on, so pytest uses the project's testpaths as it would.
        paths=args.paths or [],
        pytest_args=pytest_args,
        commands=args.command,
        repeat=args.repeat,
        server=args.server,
        workers=args.workers,
        split=args.split,
        timeout=args.timeout,
        strategy=args.strategy,
        requires=req,
        priority=args.priority,
        reruns=args.reruns,
        max_attempts=args.max_attempts,
        junit_xml=args.junit_xml,
        json=args.json,
        slowest=args.durations,
        verbose=args.verbose,
        progress=not args.no_progress,
    )
    return await RunClient(opts, console).execute()


# Off a terminal, tables of the inspection and analysis commands get this width unless
# $COLUMNS says otherwise: at pytest's 80 their ids and statuses would be cut to "disabl…".
TABLE_WIDTH = 200


def console_width(environ: Mapping[str, str], is_terminal: bool, default: int = 80) -> int | None:
    """pytest's terminal width: $COLUMNS, else the terminal's, else `default` (pytest: 80);
    under 40 means 80.

    None on a terminal without $COLUMNS: rich then measures it, and follows it when resized.
    """
    columns = environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        width = int(columns)
    elif is_terminal:
        return None
    else:
        width = default
    # pytest's `get_terminal_width` distrusts a tiny width the same way.
    return width if width >= 40 else 80


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    pytest_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, pytest_args = argv[:cut], argv[cut + 1 :]
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    default = 80 if args.cmd == "run" else TABLE_WIDTH  # `dtf run` reads as pytest does
    width = console_width(os.environ, sys.stdout.isatty(), default)
    # soft_wrap: a long line is one line, as pytest writes it (and as logs are grepped),
    # never broken at the console's width; tables and rules still fit the width.
    console = Console(highlight=False, width=width, soft_wrap=True)
    try:
        if args.cmd == "run":
            return asyncio.run(_run(args, pytest_args, console))
        if args.cmd == "coordinator":
            return asyncio.run(_coordinator(args))
        if args.cmd == "worker":
            return asyncio.run(_worker(args))
        if args.cmd == "server":
            return _server(args)
        from dtf.cli import analysis as analysis_cli

        if args.cmd in analysis_cli.COMMANDS:
            return analysis_cli.run(args, console, _connect_url)
        from dtf.cli import inspection as inspect

        urls = _connect_url(args)
        if args.cmd == "status":
            return asyncio.run(inspect.status(urls, console))
        if args.cmd == "show":
            from dtf.cli.analysis import parse_age

            now = time.time()
            since = now - parse_age(args.since, "--since") if args.since else None
            until = now - parse_age(args.until, "--until") if args.until else None
            return asyncio.run(
                inspect.show(urls, args.kind, args.id, console, since=since, until=until)
            )
        if args.cmd == "events":
            return asyncio.run(
                inspect.tail(
                    urls, console, from_start=args.all, last=args.last, subject=args.subject
                )
            )
    except DtfError as exc:
        print(f"dtf: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("dtf: interrupted", file=sys.stderr)
        return 2
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
    return 2
