"""`dtf best` over a read model built by `dtf replay` from events in a real stream.

The events are `bench.replay`'s synthetic fleet history: command tasks on four hardware
classes report `latency_ms` and `throughput` for `model=bert` at three batch sizes, all drawn
from the same distribution, so the honest answer is that no hardware class is better.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb

from bench.replay import synthetic_events
from dtf.nats.server import LocalServer
from dtf.nats.store import EventStore
from tests.support.paths import ROOT
from tests.support.publishing import publish_events


def dtf(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dtf", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_best_over_replayed_runs(
    store: EventStore, nats_server: LocalServer, tmp_path: Path
) -> None:
    await publish_events(store, synthetic_events(6000, seed=11))
    db = tmp_path / "dtf.duckdb"
    replayed = dtf("replay", "--server", nats_server.url, "--db", db)
    assert replayed.returncode == 0, replayed.stderr

    result = dtf("best", "latency_ms", "--db", db, "--by", "hardware", "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    con = duckdb.connect(str(db), read_only=True)
    try:
        counts = con.execute(
            "SELECT dims->>'batch_size', hardware, count(*) FROM results "
            "WHERE name = 'latency_ms' GROUP BY ALL"
        ).fetchall()
    finally:
        con.close()
    # One ranking per batch size (the dimension not ranked), every sample counted once.
    assert sorted(r["fixed"]["batch_size"] for r in doc["rankings"]) == ["1", "32", "8"]
    found = {
        (r["fixed"]["batch_size"], c["config"]["hardware"]): c["samples"]
        for r in doc["rankings"]
        for c in r["configurations"]
    }
    assert found == {(batch, hardware): n for batch, hardware, n in counts}
    assert len({hardware for _, hardware in found}) == 4
    # Same distribution everywhere: no ranking may claim a winner.
    assert [r["decided"] for r in doc["rankings"]] == [False, False, False]
    assert all("not significant" in r["reason"] for r in doc["rankings"])

    text = dtf("best", "throughput", "--db", db, "--by", "hardware", "batch_size")
    assert text.returncode == 0, text.stderr
    assert "throughput (higher is better), configurations by hardware, batch_size" in text.stdout
    assert "too thin to decide: the margin of" in text.stdout
