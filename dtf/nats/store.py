"""The event store: JetStream behind a small async interface.

Owns the NATS connection, creates the topology from `events.topology`, appends events with
idempotency (`Nats-Msg-Id`) and per-aggregate optimistic concurrency, loads one aggregate's
history, and follows the stream live.  Every NATS exception is translated into a `StoreError`
here, so nothing above this module catches library exceptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import nats
import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import api

from dtf.errors import (
    ConcurrencyConflict,
    ConfigError,
    DomainError,
    PermissionDenied,
    ServerUnreachable,
    StoreError,
)
from dtf.nats.auth import read_seed
from dtf.nats.claim import Claim
from dtf.nats.lease import KvKey, holder, leader_bucket
from dtf.nats.objects import ObjectBucket
from dtf.nats.raw import RawClient, RawSink, sequences
from dtf.nats.refusals import Denials
from dtf.nats.signing import Signing, Verifier
from events import topology
from events.catalogue import AnyEvent
from events.codec import Undecodable, Unwritable, encode, read
from events.records import Recorded, Rejected, Stored
from events.subjects import aggregate_filter, subject_of

__all__ = ["EventStore", "Follower", "Recorded", "Rejected", "Stored", "position"]

log = logging.getLogger(__name__)
T = TypeVar("T")

WRONG_LAST_SEQUENCE = 10071
REQUEST_TIMEOUT_S = 5.0


def position(msg: Msg) -> tuple[int, int]:
    """(stream sequence, messages still pending) of a JetStream delivery.

    Read from the reply subject (`$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.
    <pending>`, or the longer form with domain and account hash) by hand: nats-py's
    `msg.metadata` also builds a datetime and costs ~18 us a message, a third of a replay.
    """
    read = sequences(msg.reply or "")
    if read is not None:
        return read[0], read[2]
    meta = msg.metadata  # anything else: let nats-py decide (or raise)
    return meta.sequence.stream, meta.num_pending


def stored_at(msg: Msg) -> float:
    """When the server stored a delivered message (seconds since the epoch), 0.0 if unknown."""
    tokens = (msg.reply or "").split(".")
    index = 7 if len(tokens) == 9 else 9
    try:
        return int(tokens[index]) / 1e9
    except (IndexError, ValueError):
        return 0.0


@dataclass
class Follower:
    """A live subscription; `caught_up` is set once the history present at start is applied."""

    caught_up: asyncio.Event = field(default_factory=asyncio.Event)
    last_seq: int = 0
    rejected: int = 0
    _sub: object = None

    async def stop(self) -> None:
        if self._sub is not None:
            # The connection may already be gone; there is nothing left to undo then.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._sub.unsubscribe(), 2)  # type: ignore[attr-defined]
            self._sub = None


def _tls_context(urls: Sequence[str], ca: Path | None) -> ssl.SSLContext | None:
    """The TLS settings for `urls`: None for plain nats:// (unless a CA is given)."""
    if ca is None and os.environ.get("DTF_TLS_CA"):
        ca = Path(os.environ["DTF_TLS_CA"]).expanduser()
    if ca is None and not any(u.startswith("tls://") for u in urls):
        return None
    try:
        return ssl.create_default_context(cafile=str(ca) if ca else None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot use {ca} as the servers' CA certificate: {exc}") from None


class EventStore:
    """Owns one NATS connection and its JetStream context."""

    def __init__(self, nc: nats.NATS, servers: Sequence[str]) -> None:
        self.nc = nc
        self.denials = Denials()
        self.js = nc.jetstream(timeout=REQUEST_TIMEOUT_S)
        self.servers = list(servers)
        self.signing: Signing | None = None  # set when signed in with a key: signs appends
        self.verifier = Verifier(self.js)
        self._snapshots: ObjectBucket | None = None

    @classmethod
    async def connect(
        cls,
        servers: str | Sequence[str],
        *,
        name: str = "dtf",
        timeout: float = 5.0,
        creds: Path | None = None,
        tls_ca: Path | None = None,
        client: type[nats.NATS] = nats.NATS,
    ) -> EventStore:
        """Connect within `timeout` seconds or raise ServerUnreachable; reconnect forever after.

        `creds` is the key file to sign in with (default: $DTF_CREDS, when set); a server that
        refuses it gives one line saying so.  A tls:// URL is verified against the system's
        certificate authorities, or `tls_ca` (default: $DTF_TLS_CA).  `client` is nats-py's
        client class or a subclass (`dtf.nats.raw.RawClient`).
        """
        urls = [servers] if isinstance(servers, str) else list(servers)
        if creds is None and os.environ.get("DTF_CREDS"):
            creds = Path(os.environ["DTF_CREDS"]).expanduser()
        seed = read_seed(creds).decode() if creds is not None else None
        tls = _tls_context(urls, tls_ca)
        denials = Denials(keyed=seed is not None)
        nc = client()
        try:
            await asyncio.wait_for(
                nc.connect(
                    urls,
                    name=name,
                    connect_timeout=min(2, max(1, int(timeout))),
                    reconnect_time_wait=0.5,  # type: ignore[arg-type]  # seconds, a float
                    max_reconnect_attempts=-1,
                    error_cb=denials.record,
                    reconnected_cb=denials.reconnected,
                    disconnected_cb=None,
                    nkeys_seed_str=seed,
                    tls=tls,
                ),
                timeout,
            )
        except (TimeoutError, OSError, nats.errors.Error) as exc:
            if denials.tls_failure is not None:
                raise ServerUnreachable(
                    f"TLS with {', '.join(urls)} failed: {denials.tls_failure}"
                    + ("" if tls_ca else " (give the servers' CA certificate: --tls-ca FILE)")
                ) from None
            if not (isinstance(exc, nats.errors.AuthorizationError) or denials.sign_in_refused):
                raise ServerUnreachable(
                    f"cannot reach NATS at {', '.join(urls)} within {timeout:g}s"
                    f" ({type(exc).__name__}); is the server running? (dtf server, or --server URL)"
                ) from None
            raise PermissionDenied(
                f"the server at {', '.join(urls)} refused "
                + (f"the key {creds}" if creds else "to let in a client without a key (--creds)")
            ) from None
        store = cls(nc, urls)
        store.denials = denials
        if seed is not None:
            store.signing = Signing(seed.encode())
        await store.ensure_topology()
        return store

    async def close(self, *, drain: bool = True) -> None:
        """Drain (let pending messages finish) and close; never hangs, even when the server
        is gone.  Without `drain`, close at once: for a store about to be thrown away."""
        try:
            if not drain:
                raise TimeoutError
            await asyncio.wait_for(self.nc.drain(), 3)
        except Exception:  # closing a broken connection must not mask the real exit reason
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.nc.close(), 2)

    @property
    def replicas(self) -> int:
        """3 on a cluster of three or more nodes (all URLs given, or learnt from the server)."""
        known = {u.netloc for u in self.nc.servers} | {u.netloc for u in self.nc.discovered_servers}
        return 3 if len(known) >= 3 else 1

    def known_servers(self) -> list[str]:
        """Every server address (host:port) given or learnt from the cluster, sorted."""
        known = {u.netloc for u in self.nc.servers} | {u.netloc for u in self.nc.discovered_servers}
        return sorted(known)

    @property
    def connected_to(self) -> str | None:
        """The address of the server this connection is on now; None while reconnecting."""
        url = self.nc.connected_url
        return url.netloc if url is not None and self.nc.is_connected else None

    async def ensure_topology(self, within: float = 30.0, *, with_leases: bool = False) -> None:
        """Create the streams and buckets that do not exist yet (idempotent).

        `with_leases` creates the lease, snapshot, checkpoint and coverage buckets too, which
        otherwise the first coordinator and worker create: on a server with authorization only
        admin may.

        A cluster that just started may still be electing its JetStream leader and refuse;
        that is retried until `within` seconds have passed.
        """
        deadline = time.monotonic() + within
        while True:
            try:
                # Raising a limit of an existing stream takes an admin, or no authorization.
                await self._create_topology(raise_limits=with_leases or self.signing is None)
                if with_leases:
                    await leader_bucket(self.js, replicas=self.replicas)
                    await self.objects(topology.CHECKPOINTS_BUCKET).ensure()
                    await self.objects(topology.COVERAGE_BUCKET).ensure()
                    await self.snapshots().ensure()
                return
            except (nats.errors.Error, TimeoutError) as exc:
                refused = self.denials.last is not None or self.denials.sign_in_refused
                if time.monotonic() > deadline or refused:
                    raise self.denials.explain(exc, "cannot set up JetStream streams") from None
                await asyncio.sleep(0.5)

    async def _create_topology(self, *, raise_limits: bool) -> None:
        replicas = self.replicas
        for spec in topology.STREAMS:
            config = api.StreamConfig(
                name=spec.name,
                subjects=list(spec.subjects),
                storage=api.StorageType.FILE,
                max_age=spec.max_age_s or None,
                max_bytes=spec.max_bytes,
                duplicate_window=spec.duplicate_window_s,
                num_replicas=replicas,
                max_consumers=spec.max_consumers,
            )
            try:
                info = await self.js.stream_info(spec.name)
            except nats.js.errors.NotFoundError:
                await self.js.add_stream(config)
                continue
            # A stream made by an older dtf has the server's default limit of consumers.
            # (-1 reads as no limit but means the server's default: it is raised too.)
            if raise_limits and spec.max_consumers > (info.config.max_consumers or -1):
                info.config.max_consumers = spec.max_consumers
                await self.js.update_stream(info.config)
        await self._bucket(topology.HEARTBEATS, replicas)
        try:
            await self.js.object_store(topology.BUNDLES_BUCKET)
        except nats.js.errors.BucketNotFoundError:
            await self.js.create_object_store(
                topology.BUNDLES_BUCKET,
                config=api.ObjectStoreConfig(
                    bucket=topology.BUNDLES_BUCKET, ttl=topology.BUNDLES_TTL_S, replicas=replicas
                ),
            )

    async def _bucket(self, spec: topology.BucketSpec, replicas: int) -> None:
        try:
            await self.js.key_value(spec.name)
        except nats.js.errors.BucketNotFoundError:
            await self.js.create_key_value(
                bucket=spec.name,
                ttl=spec.ttl_s or None,
                history=spec.history,
                replicas=replicas,
                storage=api.StorageType.MEMORY if spec.in_memory else api.StorageType.FILE,
            )

    # --- writing ------------------------------------------------------------------------

    async def append(self, event: AnyEvent, expected_last_seq: int | None = None) -> int:
        """Append one event; returns its stream sequence.

        With `expected_last_seq`, the server rejects the write unless the last event on the
        event's aggregate has exactly that sequence (0: the aggregate must be empty); the
        rejection raises ConcurrencyConflict.  A retry of the same event is stored once.
        """
        subject = subject_of(event)
        try:
            data = encode(event)
        except Unwritable as exc:
            raise DomainError(str(exc)) from None
        headers = {"Nats-Msg-Id": event.id}
        if self.signing is not None:
            headers.update(self.signing.headers(subject, data))
        if expected_last_seq is not None:
            headers["Nats-Expected-Last-Subject-Sequence"] = str(expected_last_seq)
            headers["Nats-Expected-Last-Subject-Sequence-Subject"] = aggregate_filter(event)
        try:
            # Awaited publish, not publish_async: a rejected async publish never resolves
            # its future (nats.py #985).
            ack = await self.denials.unless_refused(self.js.publish(subject, data, headers=headers))
        except nats.js.errors.APIError as exc:
            if exc.err_code == WRONG_LAST_SEQUENCE:
                raise ConcurrencyConflict(subject, expected_last_seq or 0) from None
            raise StoreError(f"JetStream refused {subject}: {exc.description}") from None
        except (nats.errors.Error, TimeoutError) as exc:
            raise self.denials.explain(exc, f"could not append {subject}") from None
        return ack.seq

    async def append_retrying(
        self, event: AnyEvent, expected_last_seq: int | None = None, *, within: float = 120.0
    ) -> int:
        """`append`, retried with backoff while the server is unreachable or electing a leader.

        Safe because the retry carries the same Nats-Msg-Id: a write that was stored but whose
        ack was lost is acknowledged again, not stored twice.  A guarded retry of such a write
        fails its guard instead (the server checks the sequence before the id), so the caller
        reloads and guards again on the new sequence, where the id is recognised (the worker's
        `_append_guarded`).  A ConcurrencyConflict is an answer, not a failure, and is raised
        at once.
        """
        deadline = time.monotonic() + within
        delay = 0.1
        while True:
            try:
                return await self.append(event, expected_last_seq)
            except (ConcurrencyConflict, PermissionDenied):
                raise  # answers, not failures: retrying cannot change them
            except StoreError as exc:
                if time.monotonic() + delay > deadline:
                    raise
                log.warning("retrying %s: %s", type(event).__name__, exc)
                await asyncio.sleep(delay)
                delay = min(2.0, delay * 2)

    async def append_many(self, events: Sequence[AnyEvent], concurrency: int = 64) -> list[int]:
        """Append unguarded events pipelined, `concurrency` in flight; returns their sequences."""
        gate = asyncio.Semaphore(concurrency)

        async def one(event: AnyEvent) -> int:
            async with gate:
                return await self.append(event)

        return list(await asyncio.gather(*(one(e) for e in events)))

    # --- reading ------------------------------------------------------------------------

    async def last_seq(self) -> int:
        try:
            info = await self.js.stream_info(topology.EVENTS_STREAM)
        except (nats.errors.Error, TimeoutError) as exc:
            raise self.denials.explain(exc, "cannot read stream info") from None
        return info.state.last_seq

    async def follow(
        self,
        subjects: str | Sequence[str],
        handler: Callable[[Stored], Awaitable[None] | None],
        *,
        from_seq: int = 1,
        new_only: bool = False,
    ) -> Follower:
        """Replay matching events from `from_seq`, then keep delivering new ones to `handler`.

        A message that is not the event its subject names, or whose signature does not verify
        where the server's key registry requires one (`dtf.nats.signing`), reaches `handler` as
        a `Rejected` (and is counted in `rejected`), so that folds still see its sequence; a
        verified event carries its signer.  Nothing a message holds can stop the follower: a
        handler that raises is logged, and the stream goes on.
        """
        follower = Follower()
        await self.load_registry()
        verifier = self.verifier

        async def on_msg(msg: Msg) -> None:
            seq, pending = position(msg)
            rec: Stored
            signer = None
            if verifier.active:
                signer = await verifier.verify(seq, msg.subject, msg.data, msg.headers)
            try:
                if isinstance(signer, str):
                    rec = Rejected(seq, msg.subject, signer, stored_at(msg), refused=True)
                else:
                    rec = Recorded(seq, msg.subject, read(msg.subject, msg.data), signer)
            except Undecodable as exc:
                rec = Rejected(seq, msg.subject, str(exc), stored_at(msg))
            if isinstance(rec, Rejected):
                follower.rejected += 1
            try:
                result = handler(rec)
                if result is not None:
                    await result
            except Exception:  # a bug in a fold must not freeze every reader of the stream
                log.exception("handling seq %d (%s) failed", seq, msg.subject)
            follower.last_seq = seq
            if pending == 0:
                follower.caught_up.set()

        return await self.follow_messages(
            subjects, on_msg, from_seq=from_seq, new_only=new_only, follower=follower
        )

    async def load_registry(self) -> None:
        """Read the server's registry of signing keys (once), so reads verify signatures."""
        try:
            await self.verifier.load()
        except StoreError as exc:
            raise self.denials.explain(exc, "cannot read the signing keys") from None

    async def follow_log(
        self, subject: str, handler: Callable[[bytes], None], *, last: int = 200
    ) -> Follower:
        """Hand the payload of a task's output messages (`dtf.log.<task>`, the DTF_LOGS
        stream) to `handler`: the latest `last` of them, then each new one."""
        try:
            info = await self.js.stream_info(topology.LOGS_STREAM, subjects_filter=subject)
        except (nats.errors.Error, TimeoutError) as exc:
            raise self.denials.explain(exc, f"cannot read {subject}") from None
        held = (info.state.subjects or {}).get(subject, 0)
        start = 1
        if held > last:  # skip ahead: the first of the last `last` messages on the subject
            start = max(1, info.state.last_seq - held + 1)

        async def on_msg(msg: Msg) -> None:
            try:
                handler(msg.data)
            except Exception:  # a display's bug must not stop the follow
                log.exception("handling output on %s failed", msg.subject)

        return await self.follow_messages(
            subject, on_msg, from_seq=start, stream=topology.LOGS_STREAM
        )

    async def follow_messages(
        self,
        subjects: str | Sequence[str],
        on_msg: Callable[[Msg], Awaitable[None]],
        *,
        from_seq: int = 1,
        new_only: bool = False,
        follower: Follower | None = None,
        stream: str = topology.EVENTS_STREAM,
    ) -> Follower:
        """`follow` without decoding: each stored message as it comes (read it with
        `position`), for a reader that passes the bytes on (the projector's stream reader).

        An ordered push consumer with a callback: the fastest way nats-py reads a stream
        (~78k events/s here, against 15-26k/s for fetch loops).  `caught_up` is set here when
        there is nothing to deliver at start; otherwise it is the callback's to set.
        """
        filters = [subjects] if isinstance(subjects, str) else list(subjects)
        follower = follower if follower is not None else Follower()
        config = api.ConsumerConfig(
            filter_subjects=filters if len(filters) > 1 else None,
            deliver_policy=api.DeliverPolicy.NEW
            if new_only
            else api.DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=None if new_only else max(1, from_seq),
        )
        try:
            sub = await self.denials.unless_refused(
                self.js.subscribe(
                    filters[0] if len(filters) == 1 else None,  # type: ignore[arg-type]
                    stream=stream,
                    cb=on_msg,
                    ordered_consumer=True,
                    config=config,
                    pending_msgs_limit=1_000_000,
                    pending_bytes_limit=1 << 30,
                )
            )
            follower._sub = sub
            if new_only:
                follower.caught_up.set()
            else:
                info = await self.denials.unless_refused(sub.consumer_info())
                # Nothing pending and nothing delivered: the filter matches no history.  (When
                # something was delivered, the callback sets caught_up at num_pending == 0.)
                if info.num_pending == 0 and not (info.delivered and info.delivered.consumer_seq):
                    follower.caught_up.set()
        except (nats.errors.Error, TimeoutError) as exc:
            raise self.denials.explain(exc, f"cannot follow {', '.join(filters)}") from None
        return follower

    async def follow_raw(
        self,
        subjects: str | Sequence[str],
        sink: RawSink,
        *,
        from_seq: int = 1,
        headers: bool | None = None,
    ) -> Follower:
        """Each stored message from `from_seq` on, as (seq, pending, subject, payload,
        headers) to `sink`, at about twice nats-py's pace: the store must have been connected
        with `client=RawClient` (`dtf.nats.raw`).  Headers are parsed for `sink` when
        `headers` is true, by default when the server keeps signing keys (they carry the
        signatures); otherwise it gets None."""
        nc = self.nc
        if not isinstance(nc, RawClient):
            raise TypeError("follow_raw needs a store connected with client=RawClient")
        nc.raw_sink = sink
        nc.raw_headers = self.verifier.active if headers is None else headers

        async def slow(msg: Msg) -> None:  # what RawClient leaves to nats-py's own path
            seq, pending = position(msg)
            await sink(seq, pending, msg.subject, msg.data, msg.headers)

        return await self.follow_messages(subjects, slow, from_seq=from_seq)

    async def load(self, subjects: str | Sequence[str], timeout: float = 30.0) -> list[Stored]:
        """The full history of the matching subjects (an aggregate's audit trail).

        Messages that are not readable events are in it too, as `Rejected`.
        """
        records: list[Stored] = []
        follower = await self.follow(subjects, records.append)
        try:
            await asyncio.wait_for(follower.caught_up.wait(), timeout)
        except TimeoutError:
            raise StoreError(f"reading {subjects} took longer than {timeout:g}s") from None
        finally:
            await follower.stop()
        return records

    # --- core messages (never stored) ---------------------------------------------------

    async def listen(
        self, subject: str, handler: Callable[[str, bytes], Awaitable[None] | None]
    ) -> Follower:
        """Hand (subject, payload) of every core message on `subject` to `handler` from now
        on: live notes nobody stores (test progress) and the events of a subject as they are
        published (a worker's cancellations); `stop()` the result to end it."""

        async def on_msg(msg: Msg) -> None:
            try:
                result = handler(msg.subject, msg.data)
                if result is not None:
                    await result
            except Exception:  # a note is never worth a crash
                log.exception("handling a message on %s failed", msg.subject)

        try:
            sub = await self.nc.subscribe(subject, cb=on_msg)
        except (nats.errors.Error, TimeoutError) as exc:
            raise self.denials.explain(exc, f"cannot listen on {subject}") from None
        listener = Follower(_sub=sub)
        listener.caught_up.set()
        return listener

    async def serve(self, subject: str, queue: str, answer: Callable[[bytes], bytes]) -> Follower:
        """Answer every request on `subject` with `answer(payload)`, one member of `queue`
        taking each; a plain publish (no reply subject) is ignored."""

        async def on_msg(msg: Msg) -> None:
            if not msg.reply:
                return
            try:
                await msg.respond(answer(msg.data))
            except nats.errors.Error as exc:  # the asker is gone, or so is the server
                log.info("could not answer on %s: %s", subject, exc)

        try:
            sub = await self.nc.subscribe(subject, queue=queue, cb=on_msg)
        except (nats.errors.Error, TimeoutError) as exc:
            raise self.denials.explain(exc, f"cannot serve {subject}") from None
        return Follower(_sub=sub)

    async def request(self, subject: str, data: bytes, timeout: float) -> bytes:
        """The answer to a request; StoreError when nobody answers within `timeout`."""
        try:
            reply = await self.denials.unless_refused(
                self.nc.request(subject, data, timeout=timeout)
            )
            return reply.data
        except (nats.errors.Error, TimeoutError) as exc:
            raise self.denials.explain(exc, f"no answer on {subject}") from None

    async def publish_note(self, subject: str, data: bytes) -> None:
        """A core publish, best-effort: task output into the log stream, progress notes."""
        with contextlib.suppress(nats.errors.Error):
            await self.nc.publish(subject, data)

    # --- heartbeats ---------------------------------------------------------------------

    async def leader(self) -> str | None:
        """The coordinator holding the lease (None: nobody leads); StoreError if unreadable."""
        return await holder(self.js)

    async def live_workers(self) -> set[str]:
        """The ids with a heartbeat key that has not expired."""
        kv = await self.heartbeats()
        try:
            return set(await kv.keys())
        except nats.js.errors.NoKeysError:
            return set()
        except (nats.errors.Error, TimeoutError) as exc:
            raise self.denials.explain(exc, "cannot read the heartbeats") from None

    async def beat(self, worker_id: str, data: bytes) -> None:
        """Put a worker's heartbeat (the bucket's TTL expires it)."""
        kv = await self.heartbeats()
        try:
            await self.denials.unless_refused(kv.put(worker_id, data))
        except (nats.errors.Error, TimeoutError) as exc:
            raise self.denials.explain(exc, "heartbeat not sent") from None

    async def forget_beat(self, worker_id: str) -> None:
        """Remove a worker's heartbeat at once (a clean stop need not wait for the TTL)."""
        kv = await self.heartbeats()
        try:
            await kv.delete(worker_id)
        except (nats.errors.Error, TimeoutError) as exc:
            raise self.denials.explain(exc, "heartbeat not removed") from None

    async def last_on(self, subject: str) -> Stored | None:
        """The last message stored on `subject` (one request), None when there is none; its
        signature is checked as `follow` checks it."""
        try:
            raw = await self.js.get_last_msg(topology.EVENTS_STREAM, subject)
        except nats.js.errors.NotFoundError:
            return None
        except (nats.errors.Error, TimeoutError) as exc:
            raise self.denials.explain(exc, f"cannot read {subject}") from None
        data = raw.data or b""
        seq = raw.seq or 0
        await self.load_registry()
        signer = await self.verifier.verify(seq, subject, data, raw.headers)
        if isinstance(signer, str):
            return Rejected(seq, subject, signer, refused=True)
        try:
            return Recorded(seq, subject, read(subject, data), signer)
        except Undecodable as exc:
            return Rejected(seq, subject, str(exc))

    async def watch_heartbeats(self) -> HeartbeatWatch:
        """Every heartbeat put from now on (and the latest of each key at first)."""
        kv = await self.heartbeats()
        try:
            return HeartbeatWatch(await kv.watchall())
        except (nats.errors.Error, TimeoutError) as exc:
            raise self.denials.explain(exc, "cannot watch the heartbeats") from None

    async def lease(self, holder_id: str, ttl: float) -> Claim:
        """A claim on the coordinators' lease for `holder_id` (see `dtf.nats.lease`)."""
        bucket = await leader_bucket(self.js, ttl, self.replicas)
        return Claim(KvKey(bucket), holder_id, ttl)

    async def heartbeats(self):  # -> nats.js.kv.KeyValue
        try:
            return await self.js.key_value(topology.HEARTBEATS_BUCKET)
        except (nats.errors.Error, TimeoutError) as exc:
            raise self.denials.explain(exc, "heartbeat bucket unavailable") from None

    def objects(self, bucket: str, ttl_s: float = topology.BUNDLES_TTL_S) -> ObjectBucket:
        """An object-store bucket (created on first use): bundles, checkpoints, coverage."""
        return ObjectBucket(self.js, bucket, ttl_s, self.replicas, self.denials)

    def bundles(self) -> ObjectBucket:
        return self.objects(topology.BUNDLES_BUCKET)

    def snapshots(self) -> ObjectBucket:
        if self._snapshots is None:  # kept: the bucket is looked up once, not per snapshot
            self._snapshots = self.objects(topology.SNAPSHOTS_BUCKET, ttl_s=0)
        return self._snapshots

    async def load_snapshot(self) -> bytes | None:
        """The coordinators' latest snapshot (None: none yet); StoreError when unreadable."""
        return await self.snapshots().get(topology.SNAPSHOT_KEY)

    async def save_snapshot(self, data: bytes) -> None:
        """Replace the snapshot.  The object store publishes the chunks first and the entry
        naming them last, so a writer killed halfway leaves the previous snapshot in place."""
        await self.snapshots().put(topology.SNAPSHOT_KEY, data)


class HeartbeatWatch:
    """The heartbeat bucket's updates, one at a time."""

    def __init__(self, watcher) -> None:
        self._watcher = watcher

    async def next(self, timeout: float) -> str | None:
        """The worker id of the next heartbeat put, or None when none came within
        `timeout` (or the watch was interrupted by a reconnect: try again)."""
        try:
            entry = await self._watcher.updates(timeout=timeout)
        except TimeoutError:
            return None
        except Exception as exc:  # nats-py raises what it meets mid-reconnect
            log.warning("heartbeat watch interrupted: %s", exc)
            return None
        if entry is None or not entry.key or not entry.value:  # a deletion, or the end marker
            return None
        return entry.key

    async def next_put(self, timeout: float) -> tuple[str, bytes | None] | None:
        """The next change of the bucket as (worker id, value), the value None for a deletion
        (a clean stop); None when nothing came within `timeout` or the watch was
        interrupted (try again).  The end marker of the initial values is skipped."""
        try:
            entry = await self._watcher.updates(timeout=timeout)
        except TimeoutError:
            return None
        except Exception as exc:  # nats-py raises what it meets mid-reconnect
            log.warning("heartbeat watch interrupted: %s", exc)
            return None
        if entry is None or not entry.key:
            return None
        return entry.key, entry.value or None

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self._watcher.stop()
