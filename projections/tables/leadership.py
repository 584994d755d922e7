"""Leadership: every coordinator lease term seen in the stream, who wrote under it, and when."""

from __future__ import annotations

from projections.pipeline.folded import Batch
from projections.pipeline.table import Table
from projections.pipeline.writes import Writes

# Counts every event with term > 0; coordinator_id is the actor of the term's first event.
LEADERSHIP = Table(
    "leadership",
    (
        ("term", "BIGINT"),
        ("coordinator_id", "VARCHAR"),
        ("first_seen_at", "DOUBLE"),
        ("last_seen_at", "DOUBLE"),
        ("events", "BIGINT"),
    ),
    key=("term",),
)
MERGE = """
    ON CONFLICT (term) DO UPDATE SET
        first_seen_at = least(leadership.first_seen_at, excluded.first_seen_at),
        last_seen_at = greatest(leadership.last_seen_at, excluded.last_seen_at),
        events = leadership.events + excluded.events"""


class Leadership:
    """Owns `leadership`: one row per term > 0 found on any event that carries one."""

    name = "leadership"
    tables = (LEADERSHIP,)

    def apply(self, batch: Batch, writes: Writes) -> None:
        # Every event written under a term counts, applied or not: it shows who led.
        classes = [c for c in batch.classes() if "term" in getattr(c, "__struct_fields__", ())]
        terms: dict[int, list] = {}
        for f in batch.of(*classes, accepted=False) if classes else ():
            term = f.event.term  # type: ignore[union-attr]
            if not term:
                continue
            at = f.event.at
            seen = terms.get(term)
            if seen is None:
                terms[term] = [term, f.event.actor, at, at, 1]
            else:
                seen[2] = min(seen[2], at)
                seen[3] = max(seen[3], at)
                seen[4] += 1
        writes.insert(LEADERSHIP, [tuple(v) for v in terms.values()], on_conflict=MERGE)


PROJECTION = Leadership()
