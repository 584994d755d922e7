"""Is a NATS server up?  A server greets every new connection with an INFO line; reading it
(and nothing more) is a health check that needs no account and disturbs nobody."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ServerHealth:
    """One server as a probe found it: `ok`, and either its name and version or the reason."""

    address: str  # host:port
    ok: bool
    detail: str  # "nats-server 2.11.4 (n1), JetStream" or why it is not ok
    checked_at: float
    latency_ms: float = 0.0


async def probe(address: str, timeout: float = 1.0) -> ServerHealth:
    """Connect to `address` (host:port), read the server's INFO greeting, hang up."""
    host, _, port = address.rpartition(":")
    started = time.perf_counter()
    writer = None
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host.strip("[]"), int(port)), timeout
        )
        line = await asyncio.wait_for(reader.readline(), timeout)
    except (OSError, TimeoutError, ValueError) as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else type(exc).__name__
        return ServerHealth(address, False, f"down ({reason})", time.time())
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    latency = (time.perf_counter() - started) * 1000
    if not line.startswith(b"INFO "):
        return ServerHealth(address, False, "not a NATS server", time.time())
    try:
        info = json.loads(line[5:])
    except ValueError:
        return ServerHealth(address, False, "unreadable INFO", time.time())
    name = info.get("server_name") or info.get("server_id", "")[:8]
    detail = f"nats-server {info.get('version', '?')} ({name})"
    if info.get("jetstream"):
        detail += ", JetStream"
    if info.get("cluster"):
        detail += f", cluster {info['cluster']}"
    return ServerHealth(address, True, detail, time.time(), latency)
