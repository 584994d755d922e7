"""The dashboard's fold (`tui.fleet`) with plain values: the recorded fleet, heartbeats,
rates, the census and the runs' progress."""

from __future__ import annotations

import msgspec

from events.api import Heartbeat
from events.records import Recorded, Rejected
from events.subjects import subject_of
from tests.support.fleet_log import COORDINATOR, TERM, fleet_events
from tui.fleet import USAGE_POINTS, Fleet

BASE = 1_800_000_000.0


def folded(base: float = BASE, started: float | None = None) -> Fleet:
    fleet = Fleet(started_at=base + 30 if started is None else started)
    for seq, event in enumerate(fleet_events(base), start=1):
        fleet.fold(Recorded(seq, subject_of(event), event))
    return fleet


def beat(at: float, cpu: float = 50.0, **kw) -> bytes:
    return msgspec.json.encode(Heartbeat(at, cpu=cpu, memory=40.0, **kw))


def test_the_census_counts_each_state_and_late_heartbeats():
    fleet = folded()
    now = BASE + 30
    fleet.beat("cpu-1", beat(now - 0.5))
    c = fleet.census(now)
    assert (c.up, c.busy, c.draining, c.quarantined, c.lost) == (1, 0, 1, 1, 1)
    assert c.late == 0
    fleet.beat("cpu-1", beat(now - 10))
    assert fleet.census(now).late == 1


def test_worker_rows_show_hardware_load_tasks_and_streaks():
    fleet = folded()
    now = BASE + 30
    for i in range(USAGE_POINTS + 5):
        fleet.beat("cpu-2", beat(now - 1, cpu=float(i)))
    rows = {w.worker_id: w for w in fleet.workers(now)}
    assert set(rows) == {"cpu-1", "cpu-2", "gpu-1", "old-1"}
    assert rows["gpu-1"].hardware == "linux-32cpu-256gb-1xH100"
    assert rows["cpu-2"].tasks == ("run-two.3",) and rows["cpu-2"].status == "draining"
    assert len(rows["cpu-2"].cpu) == USAGE_POINTS and rows["cpu-2"].cpu[-1] == USAGE_POINTS + 4
    assert rows["cpu-2"].beat_age == 1.0
    assert rows["cpu-1"].beat_age is None
    assert rows["gpu-1"].streak == 1


def test_a_deleted_or_garbled_heartbeat():
    fleet = folded()
    fleet.beat("cpu-1", beat(BASE))
    fleet.beat("cpu-1", None)
    assert "cpu-1" not in fleet.beats
    fleet.beat("cpu-1", b"\xff not json")
    assert "cpu-1" not in fleet.beats


def test_runs_progress_eta_and_counts():
    fleet = folded()
    now = BASE + 30
    one, two = sorted(fleet.runs(now), key=lambda r: r.run_id)
    assert one.finished and one.counts == {"passed": 3, "failed": 1} and one.progress == 1
    assert abs(one.elapsed - 5.1) < 1e-6
    assert not two.finished and (two.tasks, two.tasks_done) == (4, 1)
    assert two.eta is not None and abs(two.eta - (now - (BASE + 10)) * 3) < 1e-6
    assert fleet.runs(now)[0].run_id == "run-two"  # the newest first


def test_leader_term_queue_and_rate():
    fleet = folded()
    fleet.lease(COORDINATOR)
    assert fleet.term == TERM
    assert fleet.queue_depth() == 2  # two retries waiting
    assert fleet.running() == 1
    # 4 + 2 cases finished at +5, +6 and +14: within 10 s of +14 only the last 2 and not the rest
    assert fleet.tests_per_second(BASE + 14) == (2 + 2 + 2) / 10
    assert fleet.tests_per_second(BASE + 100) == 0


def test_incidents_and_rejections():
    fleet = folded()
    kinds = [i.kind for i in fleet.incidents]
    assert kinds == [
        "tests.failed",
        "task.failed",
        "task.failed",
        "task.superseded",
        "worker.lost",
        "worker.quarantined",
    ]
    fleet.fold(Rejected(999, "dtf.evt.task.x.0.completed", "bad signature", BASE + 29))
    assert fleet.incidents[-1].kind == "rejected" and fleet.view.rejected == 1
