"""`Opened`: what a table posts when the operator presses Enter on a row to drill into it."""

from __future__ import annotations

from textual.message import Message


class Opened(Message):
    """Open `ident`, a `kind` of thing: "worker", "run" or "task"."""

    def __init__(self, kind: str, ident: str) -> None:
        super().__init__()
        self.kind = kind
        self.ident = ident
