"""A TCP relay between a worker and its server that can be cut, for `--simulate-disconnect`.

The worker connects to the relay (on 127.0.0.1) instead of the server.  `cut(seconds)` closes
every relayed connection and refuses new ones for that long, so what the worker meets is a real
network outage: nats-py sees its connection drop, its requests time out, it reconnects every
half second and fails until the window ends.  Nothing in the worker is told or bypassed, which is
the point: the test is of how the worker and the coordinator behave, not of a flag.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from urllib.parse import urlsplit

from dtf.errors import ConfigError

log = logging.getLogger(__name__)
CHUNK = 1 << 16


class Relay:
    """Relays every connection made to it to `target` (a nats:// URL) until it is cut."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target if "://" in target else f"nats://{target}")
        if parts.scheme not in ("nats", ""):
            # The TLS name check would be against 127.0.0.1, not the server's name.
            raise ConfigError(f"--simulate-disconnect relays nats:// only, not {target}")
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 4222
        self._userinfo = f"{parts.netloc.rpartition('@')[0]}@" if "@" in parts.netloc else ""
        self._server: asyncio.Server | None = None
        self._cut_until = 0.0
        self._pipes: set[asyncio.StreamWriter] = set()

    async def start(self) -> str:
        """Listen on a free port of 127.0.0.1; returns the URL to connect to instead."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"nats://{self._userinfo}127.0.0.1:{port}"

    def cut(self, seconds: float) -> None:
        """Drop every connection now and refuse new ones for `seconds`."""
        log.warning("simulating a network outage of %gs", seconds)
        self._cut_until = time.monotonic() + seconds
        for writer in list(self._pipes):
            writer.close()

    @property
    def is_cut(self) -> bool:
        return time.monotonic() < self._cut_until

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._pipes):
            writer.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.is_cut:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self._host, self._port)
        except OSError:
            writer.close()  # the server itself is away: the worker sees that as it would
            return
        self._pipes.update((writer, up_writer))
        try:
            await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
        finally:
            self._pipes.difference_update((writer, up_writer))
            for w in (writer, up_writer):
                w.close()


async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy until either side closes; closing the sink ends the pump of the other direction."""
    with contextlib.suppress(ConnectionError, OSError):
        while data := await source.read(CHUNK):
            sink.write(data)
            await sink.drain()
    sink.close()
