"""Reading the event stream for the projector: deliveries into a buffer, in stream order.

nats-py's ordered consumer runs in a child process (`projections.pipeline.stream_reader`),
which hands over deliveries in frames of thousands, each message decoded there; the frames
wait here as they came, and are decoded, folded and written in batches by the thread applying
them.  Reading costs ~5 us of Python per JetStream message even on the raw path
(`dtf.nats.raw`), decoding ~1.5 more: in the projector's own process that cost and the
projector's would add up on one core, in its own process they overlap (see
docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
import sys
import time
from pathlib import Path

from dtf.errors import StoreError
from projections.pipeline.frames import Delivered, Deliveries, Encoded
from projections.pipeline.stream_reader import HEADER

__all__ = ["Delivered", "Deliveries", "Encoded", "ProcessReader", "open_reader"]

# Deliveries buffered before the reader stops taking frames in: one batch ready when the
# projector finishes the one it applies (~370 bytes each as frames, ~1 KB once decoded, so
# more would cost RSS and no speed: the child holds the rest, and taking frames in is fast).
HIGH_WATER = 25_000
FRAME_BYTES = 4 << 20


class ProcessReader:
    """The buffer fed by `projections.pipeline.stream_reader` in a child process, frame by frame.

    Frames are taken in on the event loop, which is free while a batch is applied in the
    projector's worker thread, and kept as they came (`Encoded`: their headers say how many
    deliveries they hold, and the last one's sequence); above HIGH_WATER buffered deliveries
    it stops reading the pipe, which holds the child (and through nats-py's flow control,
    the server) back.  `caught_up` is set once the stream's end (as of some moment) was
    delivered; `last_seq` is the last stream sequence received.
    """

    def __init__(self, urls: list[str], start_seq: int) -> None:
        self.caught_up = asyncio.Event()
        self.last_seq = start_seq - 1
        self._frames: collections.deque[Encoded] = collections.deque()
        self._buffered = 0
        self._grown = asyncio.Event()
        self._urls = urls
        self._proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._taken = asyncio.Event()
        self._started = asyncio.Event()
        self._error: StoreError | None = None
        self._stderr: asyncio.Task[str] | None = None

    def buffered(self) -> int:
        return self._buffered

    def take(self, limit: int) -> list[Encoded]:
        """Whole frames, oldest first, of up to `limit` deliveries in all (or the oldest
        frame, should it hold more); `projections.pipeline.frames.decode` reads them."""
        taken: list[Encoded] = []
        count = 0
        while self._frames and (not taken or count + self._frames[0].messages <= limit):
            frame = self._frames.popleft()
            taken.append(frame)
            count += frame.messages
        self._buffered -= count
        if not self._buffered:
            self._grown.clear()
        self._taken.set()
        return taken

    async def wait(self, count: int, timeout: float) -> None:
        """Until `count` deliveries are buffered, the stream is drained, or `timeout` passes;
        raises the reader's error once everything it delivered has been taken."""
        deadline = time.monotonic() + timeout
        while self._buffered < count and self._error is None:
            left = deadline - time.monotonic()
            if left <= 0 or (self.caught_up.is_set() and self._buffered):
                return
            self._grown.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._grown.wait(), left)
        if not self._buffered:
            self._check()

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "projections.pipeline.stream_reader",
            "--from",
            str(self.last_seq + 1),
            "--parent",
            str(os.getpid()),
            *self._urls,
            env=_child_env(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=FRAME_BYTES,  # the pipe is read on while less than twice this is buffered
        )
        self._task = asyncio.create_task(self._receive(self._proc))
        self._stderr = asyncio.create_task(self._last_words(self._proc))
        await self._started.wait()
        self._check()

    async def _receive(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        try:
            while True:
                size, count, last_seq, caught_up = HEADER.unpack(
                    await proc.stdout.readexactly(HEADER.size)
                )
                body = await proc.stdout.readexactly(size)
                if count:
                    self._frames.append(Encoded(body, count))
                    self._buffered += count
                    self.last_seq = last_seq
                    self._grown.set()
                if caught_up:
                    self.caught_up.set()
                self._started.set()
                while self._buffered >= HIGH_WATER:
                    self._taken.clear()
                    await self._taken.wait()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        if self._error is None:
            code = await proc.wait()
            why = await self._stderr if self._stderr is not None else ""
            self._error = StoreError(why or _died(code))
        self._started.set()
        self._grown.set()

    @staticmethod
    async def _last_words(proc: asyncio.subprocess.Process) -> str:
        """Drain the child's stderr (so it can never block on it); its last line."""
        assert proc.stderr is not None
        last = ""
        with contextlib.suppress(ValueError):  # a line over the stream's limit ends it
            async for line in proc.stderr:
                last = line.decode(errors="replace").strip() or last
        return last

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    async def stop(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
            await self._proc.wait()
        for task in (self._task, self._stderr):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


def _child_env() -> dict[str, str]:
    """This environment, with our own source root first on the path, so the child imports
    the same `projections` as we did, installed or not."""
    root = str(Path(__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else "")}


def _died(code: int) -> str:
    how = f"status {code}"
    if code < 0:
        with contextlib.suppress(ValueError):
            how = f"signal {signal.Signals(-code).name}"
    return f"the event stream reader process exited ({how}); rerun to resume"


async def open_reader(urls: list[str], start_seq: int) -> ProcessReader:
    """A started reader of the event stream at `urls` from `start_seq`."""
    reader = ProcessReader(urls, start_seq)
    try:
        await reader.start()
    except BaseException:
        await reader.stop()
        raise
    return reader
