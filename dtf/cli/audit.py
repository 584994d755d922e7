"""`dtf audit verify`: every event of the stream checked as its readers check it.

Each stored message's signature is verified against the server's registry of keys
(`dtf.nats.signing`) and its signer against what its role and the task's assignment allow
(`dtf.core.authority`, through the same `View` the coordinator folds), so the counts say what
the coordinator and the read models accepted: valid (signed and allowed), unsigned (a server
without keys, or history from before `--auth`), invalid (refused: forged, altered, unsigned where
a signature is required, or written by a key that may not) and unreadable.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

from rich.console import Console

from dtf.core.describe import describe
from dtf.core.state import View
from dtf.nats.store import EventStore, Recorded, Stored
from events.subjects import ROOT

SHOWN = 20  # refused events listed one by one
PROGRESS_S = 2.0


@dataclass
class Audit:
    """The counts of one pass over the stream, and the first refused events."""

    counts: Counter[str] = field(default_factory=Counter)
    refused: list[Stored] = field(default_factory=list)
    view: View = field(default_factory=View)

    def add(self, rec: Stored) -> None:
        rec = self.view.judge(rec)
        if isinstance(rec, Recorded):
            self.counts["valid" if rec.signer is not None else "unsigned"] += 1
        elif rec.refused:
            self.counts["invalid"] += 1
            if len(self.refused) < SHOWN:
                self.refused.append(rec)
        else:
            self.counts["unreadable"] += 1


async def verify(urls: list[str], console: Console) -> int:
    """Check the whole stream; 1 when any event was refused, 0 otherwise."""
    store = await EventStore.connect(urls, name="dtf-audit")
    try:
        last = await store.last_seq()
        audit = Audit()
        follower = await store.follow(f"{ROOT}.>", audit.add)
        try:
            while True:
                try:
                    await asyncio.wait_for(follower.caught_up.wait(), PROGRESS_S)
                    break
                except TimeoutError:  # a long stream: say how far it got
                    if console.is_terminal:
                        console.print(f"read {audit.view.last_seq:,} of {last:,} events ...")
        finally:
            await follower.stop()
        enforced = store.verifier.enforced_from
    finally:
        await store.close()
    counts = audit.counts
    total = sum(counts.values())
    if not total:
        console.print("0 events: the stream is empty, nothing to verify")
        return 0
    for rec in audit.refused:
        console.print(describe(rec), markup=False, highlight=False)
    if counts["invalid"] > len(audit.refused):
        console.print(f"... and {counts['invalid'] - len(audit.refused)} more refused")
    console.print(
        f"{total:,} events: {counts['valid']:,} valid, {counts['unsigned']:,} unsigned, "
        f"{counts['invalid']:,} invalid, {counts['unreadable']:,} unreadable"
    )
    if not enforced:
        console.print("this server keeps no signing keys (dtf server --auth): nothing is signed")
    elif counts["unsigned"]:
        console.print(f"unsigned events are history from before --auth (seq < {enforced})")
    return 1 if counts["invalid"] else 0
