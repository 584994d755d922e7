"""One running session-mode pytest child, seen from the asyncio side.

The child's results arrive over a dedicated pipe as JSON lines and are queued as decoded
messages; once the process has exited (and the pipe is drained) the queue ends with `Exited`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from dtf.runner.child.wire import FDS_ENV, ChildMessage, RunBatch, WireError, decode, encode
from dtf.runner.launch import child_command, child_env, kill_group

log = logging.getLogger(__name__)

OUTPUT_TAIL = 16 * 1024
# After the child exits we kill its group, which closes the result pipe; a process that
# escaped the group could hold it open, so give up on draining it after this long.
DRAIN_GRACE = 2.0


@dataclass(frozen=True)
class Exited:
    """The child is gone and everything it sent has been queued before this."""

    returncode: int
    reason: str = ""  # why dtf killed it, when it did


class ChildProcess:
    """Owns the process (leader of its own process group), the command pipe, the result
    stream (decoded into a queue), and the tail of the child's stdout and stderr."""

    def __init__(self, on_output: Callable[[bytes], None] | None) -> None:
        self._on_output = on_output
        self._queue: asyncio.Queue[ChildMessage | Exited] = asyncio.Queue()
        self._tail = bytearray()
        self._kill_reason = ""
        self._exited: Exited | None = None
        self._transport: asyncio.SubprocessTransport | None = None
        self._command: asyncio.WriteTransport | None = None
        self._results: asyncio.ReadTransport | None = None
        self._watcher: asyncio.Task[None] | None = None
        self.pid = 0

    @classmethod
    async def start(
        cls,
        python: str,
        root: Path,
        args: Sequence[str],
        env: Mapping[str, str] | None,
        on_output: Callable[[bytes], None] | None,
    ) -> ChildProcess:
        """Spawn the child; raises OSError when it cannot be started."""
        child = cls(on_output)
        loop = asyncio.get_running_loop()
        command_r, command_w = os.pipe()
        result_r, result_w = os.pipe()
        process_exited: asyncio.Future[None] = loop.create_future()
        results_closed: asyncio.Future[None] = loop.create_future()
        try:
            child._transport, _ = await loop.subprocess_exec(
                lambda: _OutputProtocol(child._output, process_exited),
                *child_command(python, "session", args),
                cwd=root,
                env=child_env(env, {FDS_ENV: f"{command_r},{result_w}"}),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=(command_r, result_w),
                start_new_session=True,
            )
        except BaseException:
            os.close(command_w)
            os.close(result_r)
            raise
        finally:
            os.close(command_r)
            os.close(result_w)
        child.pid = child._transport.get_pid()
        results_pipe = os.fdopen(result_r, "rb", buffering=0)
        command_pipe = os.fdopen(command_w, "wb", buffering=0)
        try:
            child._results, _ = await loop.connect_read_pipe(
                lambda: _LineProtocol(child._received, results_closed), results_pipe
            )
            child._command, _ = await loop.connect_write_pipe(asyncio.Protocol, command_pipe)
        except BaseException:  # cancelled (a timeout) half-way: leave nothing running
            kill_group(child.pid)
            child._dispose()
            results_pipe.close()
            command_pipe.close()
            raise
        child._watcher = asyncio.create_task(child._watch(process_exited, results_closed))
        return child

    @property
    def alive(self) -> bool:
        return self._transport is not None and self._transport.get_returncode() is None

    def send(self, nodeids: Sequence[str]) -> None:
        """Ask the child to run one batch (buffered; a dead child shows up as `Exited`)."""
        assert self._command is not None
        self._command.write(encode(RunBatch(tuple(nodeids))))

    async def receive(self) -> ChildMessage | Exited:
        """The next message from the child; `Exited` (again and again) once it is gone."""
        if self._exited is not None and self._queue.empty():
            return self._exited
        message = await self._queue.get()
        if isinstance(message, Exited):
            self._exited = message
        return message

    def kill(self, reason: str) -> None:
        """SIGKILL the child and everything it started; `Exited` follows."""
        self._kill_reason = self._kill_reason or reason
        kill_group(self.pid)

    async def close(self, grace: float) -> None:
        """Let the child finish its pytest session, killing it after `grace` seconds."""
        if self._command is not None:
            self._command.close()  # end of commands: the child's loop returns
        if self._watcher is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._watcher), grace)
            except TimeoutError:
                self.kill("did not exit when closed")
                await self._watcher
        self._dispose()

    def output_tail(self) -> str:
        """The last lines the child wrote to stdout and stderr."""
        return self._tail.decode(errors="replace")

    async def _watch(
        self, process_exited: asyncio.Future[None], results_closed: asyncio.Future[None]
    ) -> None:
        """Runs for the child's lifetime; queues `Exited` after its last message."""
        await process_exited
        kill_group(self.pid)  # what the tests started must not outlive the session
        try:
            await asyncio.wait_for(asyncio.shield(results_closed), DRAIN_GRACE)
        except TimeoutError:
            log.warning("result pipe of pytest child %d still open after it exited", self.pid)
        assert self._transport is not None
        returncode = self._transport.get_returncode()
        if returncode is None:  # cannot happen after process_exited; keep the type honest
            returncode = -9
        self._queue.put_nowait(Exited(returncode, self._kill_reason))
        self._dispose()

    def _dispose(self) -> None:
        for transport in (self._command, self._results, self._transport):
            if transport is not None and not transport.is_closing():
                transport.close()

    def _received(self, line: bytes) -> None:
        try:
            message = decode(line)
            if isinstance(message, RunBatch):
                raise WireError("a child does not send batches")
            self._queue.put_nowait(message)
        except WireError:
            log.error("unreadable message from pytest child %d: %.200r", self.pid, line)
            self.kill("sent an unreadable message")

    def _output(self, data: bytes) -> None:
        self._tail += data
        if len(self._tail) > OUTPUT_TAIL:
            del self._tail[: len(self._tail) - OUTPUT_TAIL]
        if self._on_output is not None:
            try:
                self._on_output(data)
            except Exception:
                log.exception("on_output callback failed")


class _OutputProtocol(asyncio.SubprocessProtocol):
    """Passes the child's stdout/stderr on as it arrives and resolves a future on exit."""

    def __init__(self, on_data: Callable[[bytes], None], exited: asyncio.Future[None]) -> None:
        self._on_data = on_data
        self._exited = exited

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self._on_data(data)

    def process_exited(self) -> None:
        # Unlike `Process.wait()`, this fires even while a grandchild holds stdout open.
        if not self._exited.done():
            self._exited.set_result(None)


class _LineProtocol(asyncio.Protocol):
    """Splits the result pipe into lines and resolves a future when it closes."""

    def __init__(self, on_line: Callable[[bytes], None], closed: asyncio.Future[None]) -> None:
        self._on_line = on_line
        self._closed = closed
        self._buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        end = self._buffer.rfind(b"\n")
        if end < 0:
            return
        lines = bytes(self._buffer[:end]).split(b"\n")
        del self._buffer[: end + 1]
        for line in lines:
            self._on_line(line)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._closed.done():
            self._closed.set_result(None)
