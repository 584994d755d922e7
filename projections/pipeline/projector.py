"""The projector: applies the event stream to the DuckDB read models, batch by batch.

`Projector` owns one DuckDB file.  Each batch is decoded, folded
(`projections.pipeline.aggregates`) and turned into rows by every registered projection
(`prepare`), then written and committed in ONE transaction together with the last applied
stream sequence (`projector_state`, `write`), so a crash mid-batch neither loses nor doubles
anything and a restart resumes from last_seq + 1.  An event
that does not decode, whose signature the stream reader refused, whose signer may not have
written it (`dtf.core.authority`), or whose rows a projection cannot write, is recorded in
`rejected_events` with the reason (the failing batch is split until the culprit is alone)
and never stops the projector.

`replay()` is the async shell: it reads the stream with `projections.pipeline.delivery` (a child
process reads it with nats-py while the previous batch is applied in a worker thread here),
catches up, optionally rebuilds from sequence 1 into a fresh file that is swapped in
atomically, and optionally keeps following.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from itertools import repeat
from pathlib import Path
from typing import cast

import duckdb

from dtf.errors import ProjectionError
from dtf.nats.store import EventStore
from events.catalogue import AnyEvent
from events.codec import Undecodable, encode, read
from events.records import Signer
from projections.pipeline import schema
from projections.pipeline.aggregates import Aggregates, Record
from projections.pipeline.db_errors import translate
from projections.pipeline.delivery import ProcessReader, open_reader
from projections.pipeline.entries import TaskEntry
from projections.pipeline.frames import Delivered, Deliveries, Encoded, decode
from projections.pipeline.registry import Projection, Restoring, registry
from projections.pipeline.writes import Writes

STATE_NAME = "projector"
# Events per transaction while catching up.  A batch in flight holds ~2.5 KB an event (the
# deliveries, the decoded events, the rows staged), so its size is most of the projector's
# RSS; at 1M events 25,000 costs the same per event as 50,000 (15.6 us offline, both).  A batch
# is whole frames (`ProcessReader.take`): 24,000 events while catching up.
MAX_BATCH = 25_000
MIN_BATCH = 5_000  # a live batch is written at this size ...
FLUSH_INTERVAL_S = 0.1  # ... or this long after its first event
REASON_CHARS = 500
REBUILD_CHECKPOINT = "64MB"  # WAL size at which a rebuild checkpoints (see Projector.open)
# DuckDB's memory while rebuilding, in MiB: committed rows beyond it go to its temp files
# instead of staying in memory.  A batch that needs more lifts it (`_lift_memory_limit`).
# The cap costs ~8% of a rebuild's speed for ~100 MiB of its peak RSS; 0: no cap.
REBUILD_MEMORY_MIB = 64
# DuckDB's threads while rebuilding: with one, a rebuild of 1M events ran 12% faster (49,100
# against 43,700 events/s, six alternated runs on 2 cores) at 14% less CPU an event.
REBUILD_THREADS = 1

# Failures of the machine rather than of an event: retrying event by event cannot help.
ENVIRONMENT_ERRORS: tuple[type[BaseException], ...] = (
    duckdb.IOException,
    duckdb.OutOfMemoryException,
    duckdb.FatalException,
    duckdb.InternalException,
    duckdb.PermissionException,
    duckdb.TransactionException,
    OSError,
    MemoryError,
)


@dataclass
class ReplayStats:
    """What one replay did: events applied and rejected, seconds taken, last sequence."""

    applied: int = 0
    rejected: int = 0
    ignored: int = 0  # applied but changed nothing (stale, repeated, unknown aggregate)
    seconds: float = 0.0
    last_seq: int = 0


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:REASON_CHARS]


class Projector:
    """Owns the DuckDB connection, the shared fold (`Aggregates`) and the projections."""

    def __init__(
        self,
        db: Path,
        projections: Mapping[str, Projection] | None = None,
        *,
        rebuilding: bool = False,
    ) -> None:
        self.db = Path(db)
        self.rebuilding = rebuilding
        self.projections = dict(projections if projections is not None else registry())
        # A rebuild's live tasks go to projector_tasks once, when its file is complete
        # (`checkpoint`): per batch they were ~0.35 us an event (two statements and JSON).
        self.aggregates = Aggregates(deferred=rebuilding)
        self.last_seq = 0
        self.applied = 0
        self.rejected = 0
        self.ignored = 0
        self._con: duckdb.DuckDBPyConnection | None = None
        # The COMMIT of the last batch when it runs while the next one is prepared.
        self._committing: _Committing | None = None
        self._committer: ThreadPoolExecutor | None = None
        self.memory_limit_mib = 0  # DuckDB's memory_limit set here (0: DuckDB's default)

    # --- lifecycle ----------------------------------------------------------------------

    def open(self) -> Projector:
        """Open (or create) the file, its tables, and the state it was left in."""
        try:
            self._con = duckdb.connect(str(self.db))
            con = self._con
            if self.rebuilding:
                # DuckDB checkpoints whenever the WAL passes 16 MB, and each checkpoint rewrites
                # the whole primary-key indexes: over a rebuild that grows quadratically (a
                # commit cost 3.8 us an event at 300k events, 6.2 at 1M).  Until a checkpoint
                # the rows committed stay in memory too, as much as the WAL holds: at 64 MB a
                # rebuild of 1M events peaks at ~105 MiB of DuckDB memory (~300 MiB at 1 GB)
                # and commits cost the same as with one checkpoint at the end (1.5 us an event).
                con.execute(f"SET checkpoint_threshold = '{REBUILD_CHECKPOINT}'")
                # Without a limit DuckDB also keeps every committed row it has not yet
                # checkpointed, and the table blocks it has read, in memory: ~100 MiB of a
                # 1M-event rebuild's peak RSS.  With it, those go to its temp directory
                # beside the file (~8% slower, measured); what a statement itself needs must
                # fit, or `_lift_memory_limit` lifts it.
                if REBUILD_MEMORY_MIB:
                    self._set_memory_limit(REBUILD_MEMORY_MIB)
                # DuckDB's other threads find little to share in a batch's statements (each
                # scans numpy columns, its Python strings under the GIL) and spend the
                # cores the stream reader and the server need.
                con.execute(f"SET threads = {REBUILD_THREADS}")
            for table in schema.tables_of(self.projections.values()):
                con.execute(table.ddl())
            row = con.execute(
                "SELECT last_seq FROM projector_state WHERE name = ?", [STATE_NAME]
            ).fetchone()
            self.last_seq = row[0] if row else 0
            self._restore(con)
        except duckdb.Error as exc:
            self.close()
            raise translate(exc, self.db) from None
        return self

    def close(self) -> None:
        self._abandon_commit()
        if self._committer is not None:
            self._committer.shutdown(wait=True)
            self._committer = None
        if self._con is not None:
            with contextlib.suppress(duckdb.Error):
                self._con.close()
            self._con = None

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the file, so that the file alone is complete (with a
        rebuild's live tasks stored first)."""
        self.committed()
        try:
            if self.aggregates.deferred:
                writes = Writes()
                self.aggregates.store_live(writes)
                self.con.execute("BEGIN TRANSACTION")
                writes.run(self.con)
                self.con.execute("COMMIT")
            self.con.execute("CHECKPOINT")
        except duckdb.Error as exc:
            raise translate(exc, self.db) from None

    def __enter__(self) -> Projector:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            raise ProjectionError(f"{self.db} is not open")
        return self._con

    def _restore(self, con: duckdb.DuckDBPyConnection) -> None:
        """The fold's state as the committed tables left it."""
        self.aggregates.load(con)
        for projection in self.projections.values():
            if isinstance(projection, Restoring):
                projection.restore(con, self.aggregates)

    # --- applying -----------------------------------------------------------------------

    def apply(self, batch: Deliveries | Sequence[Delivered], *, overlap: bool = False) -> None:
        """Apply deliveries in one transaction; split and retry around events that fail.

        With `overlap`, the batch's COMMIT (its WAL write and fsync, ~10% of a rebuild, run by
        DuckDB without the GIL) goes on in the background while the caller prepares the next
        batch; the next `apply`, `committed` or `close` waits for it, and `last_seq` and the
        counters move once it is done.  A COMMIT fails only for the machine's reasons (one
        writer meets no conflicts) and stops the projector, as any such failure does."""
        self._unless_broken(self._apply, _columns(batch), overlap)

    def committed(self) -> None:
        """Wait for a COMMIT that `apply(overlap=True)` left running."""
        self._unless_broken(self._settle)

    def _unless_broken(self, step: Callable[..., object], *args: object) -> None:
        """Run `step`; a failure of the machine rather than of an event rolls back and is
        one ProjectionError."""
        try:
            step(*args)
        except _FATAL as exc:
            self._abandon_commit()
            with contextlib.suppress(Exception):  # the error to tell is the first one
                self._rollback()
            if isinstance(exc, _CommitFailed):
                exc = exc.cause
            if isinstance(exc, duckdb.Error):
                raise translate(exc, self.db) from None
            raise ProjectionError(f"{self.db}: {_one_line(exc)}") from None

    @property
    def committing(self) -> bool:
        return self._committing is not None

    def _apply(self, batch: Deliveries, overlap: bool = False) -> None:
        try:
            prepared = self.prepare(batch)
            self._settle()  # the last batch's, before this one opens a transaction
            if self.write(prepared, commit=not overlap):
                prepared.writes = Writes()  # run: its staged columns can go
                self._committing = (self._background().submit(self._commit), prepared)
        except duckdb.OutOfMemoryException:
            if not self._lift_memory_limit():
                raise
            self._rollback()
            self._apply(batch.after(self.last_seq), overlap)
        except _FATAL:
            raise
        except Exception as exc:
            self._settle()
            self._rollback()
            batch = batch.after(self.last_seq)
            if len(batch) == 1:
                self._reject(batch, _one_line(exc))
            elif batch:
                middle = len(batch) // 2
                self._apply(batch[:middle])
                self._apply(batch[middle:])

    def _set_memory_limit(self, mib: int) -> None:
        self.con.execute(f"SET memory_limit = '{mib}MiB'")
        self.memory_limit_mib = mib

    def _lift_memory_limit(self) -> bool:
        """After a batch's statements ran out of the memory limit set here (its transaction
        is aborted; the last batch's COMMIT was settled before it began): go back to
        DuckDB's default, most of the machine's RAM, and say the batch may be tried again;
        False where no limit was set here."""
        if not self.memory_limit_mib:
            return False
        with contextlib.suppress(duckdb.TransactionException):  # aborted: no SET until then
            self.con.execute("ROLLBACK")
        self.con.execute("RESET memory_limit")
        self.memory_limit_mib = 0
        return True

    def _settle(self) -> None:
        """Wait for the COMMIT running in the background, if any, and count its batch in.
        One that fails stops the projector (`_CommitFailed`): the fold is past it already,
        and a restart resumes from what the file holds."""
        if self._committing is None:
            return
        done, prepared = self._committing
        self._committing = None
        try:
            done.result()
        except Exception as exc:
            raise _CommitFailed(exc) from exc
        self._account(prepared)

    def _abandon_commit(self) -> None:
        """Wait for a COMMIT in the background, whatever it does, without counting its
        batch in: nothing else may use the connection meanwhile (DuckDB would deadlock)."""
        if self._committing is not None:
            with contextlib.suppress(Exception):  # the error to tell is another one
                self._committing[0].result()
            self._committing = None

    def _commit(self) -> None:
        self.con.execute("COMMIT")

    def _background(self) -> ThreadPoolExecutor:
        if self._committer is None:
            self._committer = ThreadPoolExecutor(1, thread_name_prefix="dtf-commit")
        return self._committer

    def prepare(self, batch: Deliveries | Sequence[Delivered], failed: str = "") -> Prepared:
        """Decode and fold `batch` and stage its rows; advances the fold, never touches the
        file.

        Deliveries at or below the last committed sequence (a redelivery after a restart) are
        skipped.  With `failed`, every delivery is recorded as rejected for that reason."""
        with _gc_paused():
            return self._prepare(_columns(batch).after(self.last_seq), failed)

    def _prepare(self, batch: Deliveries, failed: str) -> Prepared:
        records: list[Record] = []
        rejected: list[tuple[int, str, str, str]] = []
        signed = batch.signed
        decoded_events = batch.decoded()
        if not (failed or signed) and None not in decoded_events:
            # The common batch: every event decoded by the reader, none signed.
            events = cast(list[AnyEvent], decoded_events)
            records = list(zip(batch.seqs, batch.subjects, events, repeat(None)))
            columns: Iterable[tuple[int, str, bytes, AnyEvent | None]] = ()
        else:
            columns = zip(batch.seqs, batch.subjects, batch.datas, decoded_events, strict=True)
        for seq, subject, data, decoded in columns:
            signer, role, refused = signed.get(seq, _UNSIGNED) if signed else _UNSIGNED
            if failed or refused:
                # The reader sends no payload with an event it decoded: its JSON is the text.
                raw = _text(data) if data or decoded is None else encode(decoded).decode()
                rejected.append((seq, subject, failed or refused, raw))
                continue
            event = decoded
            if event is None:  # not decoded by the reader (or it would not decode there)
                try:
                    event = read(subject, data)
                except Undecodable as exc:
                    rejected.append((seq, subject, _one_line(exc), _text(data)))
                    continue
            records.append((seq, subject, event, Signer(signer, role) if signer else None))
        writes = Writes()
        folded = self.aggregates.fold(records)
        if self.aggregates.refused:  # signed by someone who may not have written it
            data_of = dict(zip(batch.seqs, batch.datas, strict=True))
            rejected += [
                (s, subj, why, _text(data_of[s])) for s, subj, why in self.aggregates.refused
            ]
        for projection in self.projections.values():
            projection.apply(folded, writes)
        self.aggregates.write(folded, writes)
        if rejected:
            writes.insert(schema.REJECTED_EVENTS, rejected)
        ignored = self.aggregates.settle()
        last = batch.seqs[-1] if batch.seqs else self.last_seq
        live = dict(self.aggregates.tasks) if self.aggregates.deferred else None
        return Prepared(writes, last, len(records), len(rejected), ignored, live)

    def write(self, prepared: Prepared, *, commit: bool = True) -> bool:
        """Run a prepared batch's writes and its position in one transaction, and commit.
        Without `commit`, the transaction is left open for the caller to commit (and then
        `_account` for): says whether there is one.  On failure the caller rolls back, and
        reloads the fold, which has advanced past the batch already (`_rollback`)."""
        if prepared.last_seq <= self.last_seq:
            return False
        con = self.con
        con.execute("BEGIN TRANSACTION")
        prepared.writes.run(con)
        con.execute(
            "INSERT OR REPLACE INTO projector_state VALUES (?, ?)", [STATE_NAME, prepared.last_seq]
        )
        if not commit:
            return True
        con.execute("COMMIT")
        self._account(prepared)
        return False

    def _account(self, prepared: Prepared) -> None:
        """Count a batch in, once it is committed."""
        self.last_seq = prepared.last_seq
        if prepared.live is not None:
            self.aggregates.committed = prepared.live
        self.applied += prepared.applied
        self.rejected += prepared.rejected
        self.ignored += prepared.ignored

    def _reject(self, batch: Deliveries, reason: str) -> None:
        try:
            self.write(self.prepare(batch, failed=reason))
        except Exception as exc:
            self._rollback()
            raise ProjectionError(
                f"{self.db}: cannot record a rejected event: {_one_line(exc)}"
            ) from None

    def _rollback(self) -> None:
        """Undo the open transaction and reload the fold from what is committed."""
        try:
            with contextlib.suppress(duckdb.TransactionException):
                self.con.execute("ROLLBACK")
            self._restore(self.con)
        except duckdb.Error as exc:
            raise translate(exc, self.db) from None


_Committing = tuple["Future[None]", "Prepared"]


class _CommitFailed(Exception):
    """A COMMIT run in the background failed (`cause`): never to be retried event by event."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


# What `_apply` never retries event by event.
_FATAL: tuple[type[BaseException], ...] = (*ENVIRONMENT_ERRORS, _CommitFailed)


@dataclass
class Prepared:
    """A batch decoded and folded, its rows staged: what `Projector.write` commits."""

    writes: Writes
    last_seq: int  # the batch's last stream sequence, stored with its rows
    applied: int
    rejected: int
    ignored: int  # applied but changed nothing
    live: dict[str, TaskEntry] | None = None  # the live tasks after it, if not stored with it


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """A batch allocates ~10 objects per event and frees them by reference counting; the
    cyclic collector would walk every live object again and again meanwhile (~2x slower)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _text(data: bytes) -> str:
    return data.decode("utf-8", "backslashreplace")


_UNSIGNED = ("", "", "")


def _columns(batch: Deliveries | Sequence[Delivered]) -> Deliveries:
    return batch if isinstance(batch, Deliveries) else Deliveries.of(batch)


# --- the async shell ------------------------------------------------------------------


async def _pump(
    reader: ProcessReader,
    projector: Projector,
    executor: ThreadPoolExecutor,
    *,
    until: int | None,
    on_progress: Callable[[int, int], None] | None,
    target: int,
) -> None:
    """Feed batches from `reader` to `projector` until caught up with `until` (None: never)."""
    loop = asyncio.get_running_loop()
    while True:
        if not reader.buffered():
            if projector.committing:  # nothing to overlap it with: see it done
                await loop.run_in_executor(executor, projector.committed)
                continue
            done = reader.caught_up.is_set() or projector.last_seq >= (until or 0)
            if until is not None and done:
                return
            await reader.wait(1, FLUSH_INTERVAL_S)
            continue
        await reader.wait(MIN_BATCH, FLUSH_INTERVAL_S)
        frames = reader.take(MAX_BATCH)
        # A thread of its own, so that the event loop takes the reader's frames in meanwhile;
        # with more waiting, this batch's COMMIT overlaps the next one's preparing.
        overlap = reader.buffered() > 0
        await loop.run_in_executor(executor, partial(_apply_frames, projector, frames, overlap))
        if on_progress is not None:
            on_progress(projector.last_seq, max(target, projector.last_seq))


def _apply_frames(projector: Projector, frames: list[Encoded], overlap: bool) -> None:
    """Decode frames and apply them, in the applying thread: decoded only now, the batch
    waiting behind this one holds a third of the memory it would as events."""
    with _gc_paused():  # decoding makes ~10 objects an event too (see `prepare`)
        projector.apply(decode(frames), overlap=overlap)


async def _opened(projector: Projector, executor: ThreadPoolExecutor) -> None:
    await asyncio.get_running_loop().run_in_executor(executor, projector.open)


def _sidecars(path: Path) -> list[Path]:
    return [path, path.with_name(path.name + ".wal")]


def _check_unlocked(db: Path) -> None:
    """Fail early when another process holds the file being rebuilt (and fold its WAL in)."""
    if not db.exists():
        return
    try:
        duckdb.connect(str(db)).close()
    except duckdb.Error as exc:
        raise translate(exc, db) from None


async def replay(
    urls: list[str],
    db: Path,
    *,
    rebuild: bool = False,
    follow: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> ReplayStats:
    """Bring `db` up to date with the event stream at `urls`.

    Catches up from the sequence stored in `db`; with `rebuild`, builds from sequence 1 into
    a fresh file next to `db` and swaps it in with os.replace once caught up (the old file is
    untouched if anything fails first); with `follow`, keeps applying new events until
    cancelled.  `on_progress(last_seq, target_seq)` is called after every batch.
    """
    db = Path(db)
    if not db.parent.is_dir():  # said of the file asked for, not of a rebuild's temp file
        raise ProjectionError(f"{db}: no such directory {db.parent}")
    started = time.perf_counter()
    store = await EventStore.connect(urls, name="dtf-projector")
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dtf-projector")
    stats = ReplayStats()
    target_path = db
    if rebuild:
        _check_unlocked(db)
        target_path = db.with_name(f".{db.name}.rebuild-{os.getpid()}")
        for path in _sidecars(target_path):
            path.unlink(missing_ok=True)
    projector = Projector(target_path, rebuilding=rebuild)
    reader = None
    try:
        if rebuild:
            # From the first event: the reader's process starts while the new file is made.
            started_reader, opened = await asyncio.gather(
                open_reader(urls, 1), _opened(projector, executor), return_exceptions=True
            )
            if isinstance(started_reader, ProcessReader):
                reader = started_reader  # to stop, should the file fail
            for failure in (started_reader, opened):
                if isinstance(failure, BaseException):
                    raise failure
            assert reader is not None
        else:
            projector.open()
            reader = await open_reader(urls, projector.last_seq + 1)
        target = await store.last_seq()
        await _pump(
            reader, projector, executor, until=target, on_progress=on_progress, target=target
        )
        if rebuild:
            projector.checkpoint()
            projector.close()
            if _sidecars(target_path)[1].exists():
                raise ProjectionError(f"{target_path}: the rebuilt file still has a WAL")
            _check_unlocked(db)
            os.replace(target_path, db)
            target_path = db
            _add(stats, projector)
            if follow:
                projector = Projector(db)
                projector.open()
        if follow:
            await _pump(
                reader, projector, executor, until=None, on_progress=on_progress, target=target
            )
    finally:
        _add(stats, projector)
        stats.last_seq = projector.last_seq
        stats.seconds = time.perf_counter() - started
        if reader is not None:
            await reader.stop()
        # The worker thread may be inside a transaction: let it finish before closing.
        executor.shutdown(wait=True)
        projector.close()
        await store.close()
        if target_path != db:
            for path in _sidecars(target_path):
                path.unlink(missing_ok=True)
    return stats


def _add(stats: ReplayStats, projector: Projector) -> None:
    """Move the projector's counters into `stats` (a rebuild reopens the projector)."""
    stats.applied += projector.applied
    stats.rejected += projector.rejected
    stats.ignored += projector.ignored
    projector.applied = projector.rejected = projector.ignored = 0
