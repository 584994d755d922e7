"""What signed events cost: the same events unsigned and signed, written and read, in one run.

    python bench/signing.py [--events 50000]

Starts two nats-servers with throwaway stores: one without authorization (nothing is signed
or checked) and one set up as `dtf server --auth` sets it up (keys from `dtf auth init`, the
key registry published), and on each

  1. appends the synthetic events of bench/replay.py through `EventStore.append_many`, which
     signs each event on the keyed connection (the admin key: it may write every kind, so
     every event also passes the signer checks of the readers);
  2. follows the whole stream with `EventStore.follow`, as the coordinator and `dtf status`
     read it: decoding, and on the keyed server verifying each signature;
  3. rebuilds the read models with `projections.pipeline.projector.replay`, whose stream reader
     process verifies each signature and whose fold checks each signer;

and prints events/s for each, signed against unsigned, with the cost of one signature and one
verification in-process (nkeys / PyNaCl) on a 300-byte event.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from replay import synthetic_events

from dtf.nats import auth
from dtf.nats.server import LocalServer, start_server
from dtf.nats.signing import (
    KeyEntry,
    Signing,
    Verifier,
    publish_registry,
)
from dtf.nats.store import EventStore
from events.subjects import ROOT
from projections.pipeline.projector import replay


async def _set_up(server: LocalServer, keys: Path) -> None:
    admin = await EventStore.connect(server.url, creds=keys / "admin.nk")
    try:
        await admin.ensure_topology(with_leases=True)
        entries = {u.public_key: KeyEntry(u.name, u.role) for u in auth.load_users(keys)}
        await publish_registry(admin.js, entries, enforced_from=1)
    finally:
        await admin.close()


async def _append(url: str, creds: Path | None, count: int) -> tuple[int, float]:
    store = await EventStore.connect(url, creds=creds, name="bench-append")
    events = list(synthetic_events(count))
    try:
        started = time.perf_counter()
        for i in range(0, len(events), 5_000):
            await store.append_many(events[i : i + 5_000])
        return len(events), time.perf_counter() - started
    finally:
        await store.close()


async def _follow(url: str, creds: Path | None) -> tuple[int, int, float]:
    """(events read, how many carried a verified signer, seconds)."""
    store = await EventStore.connect(url, creds=creds, name="bench-follow")
    seen = signed = 0

    def count(rec) -> None:
        nonlocal seen, signed
        seen += 1
        signed += getattr(rec, "signer", None) is not None

    try:
        started = time.perf_counter()
        follower = await store.follow(f"{ROOT}.>", count)
        await asyncio.wait_for(follower.caught_up.wait(), 600)
        elapsed = time.perf_counter() - started
        await follower.stop()
        return seen, signed, elapsed
    finally:
        await store.close()


async def _rebuild(url: str, creds: Path | None, db: Path) -> tuple[int, int, float]:
    """(events applied, rejected, seconds); the reader process signs in with `creds`."""
    saved = os.environ.pop("DTF_CREDS", None)
    if creds is not None:
        os.environ["DTF_CREDS"] = str(creds)
    try:
        stats = await replay([url], db, rebuild=True)
    finally:
        os.environ.pop("DTF_CREDS", None)
        if saved is not None:
            os.environ["DTF_CREDS"] = saved
    return stats.applied, stats.rejected, stats.seconds


async def _microbench(rounds: int = 5_000) -> tuple[float, float]:
    """Microseconds to sign and to verify one 300-byte event."""
    signing = Signing(auth.new_seed())
    verifier = Verifier.of({signing.public_key: KeyEntry("w", "admin")})
    data = b"x" * 300
    started = time.perf_counter()
    for _ in range(rounds):
        headers = signing.headers("dtf.evt.x", data)
    sign_us = (time.perf_counter() - started) / rounds * 1e6

    started = time.perf_counter()
    for _ in range(rounds):
        await verifier.verify(2, "dtf.evt.x", data, headers)
    return sign_us, (time.perf_counter() - started) / rounds * 1e6


async def main_async(count: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="dtf-bench-signing-"))
    keys = work / "keys"
    auth.init(keys)
    admin = keys / "admin.nk"
    plain = start_server(store_dir=work / "plain", durable=False)
    keyed = start_server(
        store_dir=work / "keyed",
        durable=False,
        authorization=auth.render(auth.load_users(keys)),
    )
    rows: dict[str, tuple[float, float]] = {}
    try:
        await _set_up(keyed, keys)
        print(f"appending {count:,} events to each server ...", file=sys.stderr)
        n, plain_s = await _append(plain.url, None, count)
        _, keyed_s = await _append(keyed.url, admin, count)
        rows["append (append_many)"] = (n / plain_s, n / keyed_s)
        print("following each stream ...", file=sys.stderr)
        seen, _, plain_s = await _follow(plain.url, None)
        seen_k, signed, keyed_s = await _follow(keyed.url, keys / "viewer.nk")
        assert signed == seen_k == seen, (seen, seen_k, signed)
        rows["follow (decode, verify)"] = (seen / plain_s, seen_k / keyed_s)
        print("rebuilding the read models from each ...", file=sys.stderr)
        applied, rejected, plain_s = await _rebuild(plain.url, None, work / "plain.duckdb")
        applied_k, rejected_k, keyed_s = await _rebuild(
            keyed.url, keys / "viewer.nk", work / "keyed.duckdb"
        )
        assert (applied, rejected) == (applied_k, rejected_k), (applied, applied_k, rejected_k)
        total = applied + rejected
        rows["rebuild (projector)"] = (total / plain_s, (applied_k + rejected_k) / keyed_s)
    finally:
        plain.stop()
        keyed.stop()
    sign_us, verify_us = await _microbench()
    print(f"{'events/s':<26} {'unsigned':>10} {'signed':>10} {'signed/unsigned':>16}")
    for name, (unsigned, signed_rate) in rows.items():
        ratio = signed_rate / unsigned
        print(f"{name:<26} {unsigned:>10,.0f} {signed_rate:>10,.0f} {ratio:>16.2f}")
    print(f"one signature {sign_us:.0f} us, one verification {verify_us:.0f} us (300-byte event)")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=50_000)
    args = parser.parse_args()
    asyncio.run(main_async(args.events))


if __name__ == "__main__":
    main()
