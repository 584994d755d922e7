"""What the server refused this connection: a sign-in, a publish, a subscription.

nats-py tells of these only through the connection's error callback; `Denials` is that
callback, and turns the waits they leave behind into one clear `PermissionDenied`.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable
from typing import Any, TypeVar

import nats.errors
from nats.protocol.parser import PERMISSIONS_ERR

from dtf.errors import PermissionDenied, StoreError

T = TypeVar("T")


class Denials:
    """The server's refusals of this connection's publishes and subscriptions.

    nats-py reports a permissions violation only to its error callback, while the publish
    that caused it waits for an answer that never comes; `explain` turns that timeout into
    the refusal the server gave.  Other errors are reported by us where they matter (nats-py's
    default callback would print tracebacks).
    """

    def __init__(self, *, keyed: bool = False) -> None:
        # Only a connection that signs in with a key can be refused anything: without one,
        # `unless_refused` costs nothing (a task and a wait on every append otherwise).
        self.keyed = keyed
        self.last: str | None = None
        self.sign_in_refused = False
        self.tls_failure: str | None = None
        self._next: asyncio.Future[None] | None = None  # done at the next refusal

    async def record(self, exc: Exception) -> None:
        if isinstance(exc, ssl.SSLError):
            self.tls_failure = getattr(exc, "verify_message", None) or exc.reason or str(exc)
        text = str(exc)
        lowered = text.lower()
        if isinstance(exc, nats.errors.AuthorizationError) or "authorization violation" in lowered:
            self.sign_in_refused = True
        elif PERMISSIONS_ERR in lowered:
            self.last = text.removeprefix("nats: ")
        else:
            return
        if self._next is not None and not self._next.done():
            self._next.set_result(None)  # whatever waits on the server will not be answered
        self._next = None

    async def reconnected(self) -> None:
        """Back in after a reconnect: the key is accepted (again)."""
        self.sign_in_refused = False

    async def unless_refused(self, awaitable: Awaitable[T]) -> T:
        """`awaitable`'s result, or TimeoutError at once when the server refuses something of
        this connection meanwhile (instead of waiting out the request's timeout)."""
        if not self.keyed:
            return await awaitable
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        refused = self._next
        task = asyncio.ensure_future(awaitable)
        either: set[asyncio.Future[Any]] = {task, refused}
        try:
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if task.done():
            return task.result()
        task.cancel()
        raise TimeoutError("refused by the server")

    def explain(self, exc: BaseException, doing: str) -> StoreError:
        """The error to raise for `exc`: a PermissionDenied when the server refused us."""
        if self.last is not None:
            refusal, self.last = self.last, None
            return PermissionDenied(f"permission denied: {doing}: the server said {refusal!r}")
        if self.sign_in_refused:  # connected once, then the server stopped taking our key
            return PermissionDenied(f"{doing}: the server no longer accepts this key (revoked?)")
        return StoreError(f"{doing}: {exc or type(exc).__name__}")
