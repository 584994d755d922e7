"""Reading the event stream for the projector: deliveries into a buffer, in stream order.

nats-py's ordered consumer runs in a child process (`projections.pipeline.stream_reader`),
which hands over deliveries in frames of thousands, each message decoded there; a thread
reads the frames off the pipe, they wait here as they came, and are decoded, folded and
written in batches by the thread applying them.  Reading costs ~5 us of Python per
JetStream message even on the raw path (`dtf.nats.raw`), decoding ~1.5 more: in the
projector's own process that cost and the projector's would add up on one core, in its own
process they overlap (see docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import io
import os
import signal
import sys
import threading
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


class ProcessReader:
    """The buffer fed by `projections.pipeline.stream_reader` in a child process, frame by frame.

    A thread of its own reads the frames off the pipe and hands them to the event loop, which
    keeps them as they came (`Encoded`: their headers say how many deliveries they hold, and
    the last one's sequence); with HIGH_WATER deliveries read and not yet taken the thread
    stops reading, which holds the child (and through nats-py's flow control, the server)
    back.  `caught_up` is set once the stream's end (as of some moment) was
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
        self._thread: threading.Thread | None = None
        # The frames thread's count of deliveries read off the pipe and not yet taken.
        self._unread = 0
        self._room = threading.Condition()  # notified as `_unread` falls, and at stop
        self._stopping = False
        self._end: asyncio.Future[None] | None = None
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
        with self._room:
            self._unread -= count
            self._room.notify()
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
        loop = asyncio.get_running_loop()
        # Our own pipe for the frames, read by a thread (`_read_frames`) rather than the event
        # loop: its blocking reads copy the frames in without the GIL, which the thread
        # applying a batch holds most of the time (through asyncio's transport and
        # StreamReader every byte was copied three times with it: ~1 us an event).
        frames_fd, child_stdout = os.pipe()
        try:
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
                stdout=child_stdout,
                stderr=asyncio.subprocess.PIPE,
            )
        except BaseException:
            os.close(frames_fd)
            raise
        finally:
            os.close(child_stdout)  # the child's now: its exit is our end of file
        self._stderr = asyncio.create_task(self._last_words(self._proc))
        self._thread = threading.Thread(
            target=self._read_frames,
            args=(loop, frames_fd),
            name="dtf-stream-frames",
            daemon=True,
        )
        self._thread.start()
        await self._started.wait()
        self._check()

    def _read_frames(self, loop: asyncio.AbstractEventLoop, fd: int) -> None:
        """The frames thread: read whole frames off the pipe and hand each to the event loop;
        wait while HIGH_WATER deliveries read are not yet taken, which holds the child back."""
        with io.FileIO(fd, "rb") as pipe:
            while not self._stopping:
                header = _read_exactly(pipe, HEADER.size)
                if header is None:
                    break
                size, count, last_seq, caught_up = HEADER.unpack(header)
                body = _read_exactly(pipe, size)
                if body is None:
                    break
                try:
                    loop.call_soon_threadsafe(self._arrived, body, count, last_seq, caught_up)
                except RuntimeError:  # the loop is closed: nobody is reading any more
                    return
                with self._room:
                    self._unread += count
                    self._room.wait_for(lambda: self._unread < HIGH_WATER or self._stopping)
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._at_end)

    def _arrived(self, body: bytearray, count: int, last_seq: int, caught_up: bool) -> None:
        if count:
            self._frames.append(Encoded(body, count))
            self._buffered += count
            self.last_seq = last_seq
            self._grown.set()
        if caught_up:
            self.caught_up.set()
        self._started.set()

    def _at_end(self) -> None:
        if not self._stopping:  # else nobody waits for the reason
            self._end = asyncio.ensure_future(self._ended())

    async def _ended(self) -> None:
        """The pipe closed: the child exited (or was stopped); its last words are the error."""
        if self._error is None and self._proc is not None:
            code = await self._proc.wait()
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
        with self._room:
            self._stopping = True
            self._room.notify()
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
            await self._proc.wait()
        if self._thread is not None:  # at the end of the pipe, the child being gone
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join)
        if self._stderr is not None:
            self._stderr.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._stderr


def _read_exactly(pipe: io.RawIOBase, size: int) -> bytearray | None:
    """`size` bytes off `pipe` (blocking, without the GIL while it copies); None at its end."""
    data = bytearray(size)
    view = memoryview(data)
    got = 0
    while got < size:
        n = pipe.readinto(view[got:])
        if not n:
            return None
        got += n
    return data


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
