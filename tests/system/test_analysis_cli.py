"""The analysis commands through the real CLI (`python -m dtf ...`) over DuckDB files built
directly from the table contract with synthetic rows (fixed seeds, planted effects)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pytest

from projections.pipeline.registry import registry
from projections.pipeline.schema import tables_of
from tests.support.paths import ROOT

NOW = time.time()
HISTORY = 30  # runs; the first 20 on main, the last 10 on a branch that regressed latency
REGRESSED_FROM = 20
SAMPLES = 5  # measurements per metric per run
FAST, SLOW = "linux-32cpu-256gb-1xH100", "linux-8cpu-32gb"
FLAKY = "tests/test_a.py::test_flaky"
STEADY = "tests/test_a.py::test_steady[x-1]"
BROKEN = "tests/test_b.py::test_broken"


def commit_of(i: int) -> str:
    return f"{i:02d}c0ffee" + "0" * 31 + "1"


def run_id(i: int) -> str:
    return f"r{i:02d}"


@dataclass
class Cli:
    returncode: int
    stdout: str
    stderr: str


def dtf(*args: str | Path, cwd: Path = ROOT) -> Cli:
    proc = subprocess.run(
        [sys.executable, "-m", "dtf", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return Cli(proc.returncode, proc.stdout, proc.stderr)


def create_tables(con: duckdb.DuckDBPyConnection) -> None:
    for table in tables_of(registry().values()):
        con.execute(table.ddl())


def insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict]) -> None:
    columns = list(rows[0])
    names = ", ".join(f'"{c}"' for c in columns)  # quoted: `at` is a DuckDB keyword
    marks = ", ".join("?" for _ in columns)
    con.executemany(
        f"INSERT INTO {table} ({names}) VALUES ({marks})",
        [[row[c] for c in columns] for row in rows],
    )


def synthetic_rows(rng: np.random.Generator) -> dict[str, list[dict]]:
    runs, cases, results, errors = [], [], [], []
    for i in range(HISTORY):
        at = NOW - (HISTORY - i) * 3600.0
        branch = "main" if i < REGRESSED_FROM else "feature"
        runs.append(
            {
                "run_id": run_id(i),
                "submitted_at": at,
                "commit": commit_of(i),
                "branch": branch,
                "labels": "{}",
            }
        )
        common = {"run_id": run_id(i), "commit": commit_of(i), "branch": branch}
        for k in range(SAMPLES):
            t = at + 60 + k
            slow = 100.0 * (1.2 if i >= REGRESSED_FROM else 1.0)  # the planted 20% regression
            last = i == HISTORY - 1 and k == SAMPLES - 1
            throughput = 400.0 if last else rng.normal(500.0, 5.0)  # an anomalous latest value
            for name, value, unit, direction, hw in (
                ("latency_ms", rng.normal(slow, 1.5), "ms", "lower", SLOW),
                ("latency_ms", rng.normal(40.0, 0.8), "ms", "lower", FAST),
                ("throughput", throughput, "items/s", "higher", SLOW),
            ):
                results.append(
                    {
                        **common,
                        "task_id": f"{run_id(i)}.{k}",
                        "attempt": 1,
                        "name": name,
                        "value": float(value),
                        "unit": unit,
                        "direction": direction,
                        "dims": json.dumps({"model": "bert"}),
                        "hardware": hw,
                        "at": t,
                    }
                )
        outcomes = [
            (STEADY, "passed", float(rng.normal(0.5, 0.01)), 1),
            (BROKEN, "failed" if i == HISTORY - 1 else "passed", 0.2, 1),
            (FLAKY, "failed" if i == 5 else "passed", 0.1, 1),
        ]
        if i == 5:  # failed, then passed on retry: the same commit saw both outcomes
            outcomes.append((FLAKY, "passed", 0.1, 2))
        for nodeid, outcome, duration, attempt in outcomes:
            cases.append(
                {
                    **common,
                    "task_id": f"{run_id(i)}.0",
                    "attempt": attempt,
                    "nodeid": nodeid,
                    "outcome": outcome,
                    "duration": duration,
                    "worker_id": "w1",
                    "finished_at": at + 30 + attempt,
                }
            )
    for k in range(8):
        # One pattern: numbers and addresses vary, and so does one word of twelve, which
        # leaves two fingerprints near enough to merge.
        errors.append(
            error_row(
                NOW - 3000 + k,
                f"ConnectionError: connection to 10.0.{k}.{k + 7}:5432 refused by the server "
                f"after {k + 2} retries while opening {'session' if k % 2 else 'cursor'} "
                f"(pid {4000 + 17 * k})",
                worker=f"w{k % 2}",
                hardware=SLOW if k % 2 else FAST,
                category="infrastructure",
            )
        )
    for k in range(4):
        errors.append(
            error_row(
                NOW - 1800 + k,
                f"FileNotFoundError: No such file: '/tmp/build-{k:04x}ab/data_{k}.csv'",
                worker="w1",
                hardware=SLOW,
                category="test",
            )
        )
    errors.append(  # outside a 24h window
        error_row(NOW - 5 * 86400, "MemoryError: out of memory", "w1", SLOW, "environment")
    )
    return {"runs": runs, "test_cases": cases, "results": results, "errors": errors}


def error_row(at: float, message: str, worker: str, hardware: str, category: str) -> dict:
    return {
        "at": at,
        "run_id": "r29",
        "worker_id": worker,
        "hardware": hardware,
        "category": category,
        "severity": "info",
        "message": message,
        "fingerprint": None,
    }


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("analysis") / "dtf.duckdb"
    con = duckdb.connect(str(path))
    create_tables(con)
    for table, rows in synthetic_rows(np.random.default_rng(20240611)).items():
        insert(con, table, rows)
    con.close()
    return path


def one_error_line(result: Cli) -> str:
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("dtf: error: ")
    return lines[0]


# --- regressions ----------------------------------------------------------------------


def test_regressions_flags_the_planted_regression_only(db):
    result = dtf(
        "regressions", "--db", db, "--baseline", "main", "--candidate", "feature",
        "--format", "json",
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    doc = json.loads(result.stdout)
    verdicts = {m["metric"]: m for m in doc["metrics"]}
    latency = verdicts[f"latency_ms[model=bert]@{SLOW}"]
    assert latency["verdict"] == "regression"
    assert latency["pct_change"] == pytest.approx(20, abs=2)
    assert latency["pct_low"] <= latency["pct_change"] <= latency["pct_high"]
    assert latency["q_value"] < 0.05
    assert verdicts[f"throughput[model=bert]@{SLOW}"]["verdict"] == "unchanged"
    assert verdicts[f"latency_ms[model=bert]@{FAST}"]["verdict"] == "unchanged"
    assert verdicts[f"duration:{STEADY}"]["verdict"] == "unchanged"
    assert doc["regressions"] == 1
    assert doc["baseline"]["runs"] == [run_id(i) for i in range(15, 20)]
    assert doc["candidate"]["runs"] == [run_id(i) for i in range(25, 30)]


def test_regressions_exit_zero_without_regression(db):
    # A commit prefix against a run id, both before the change: nothing to flag.
    calm = dtf(
        "regressions", "--db", db, "--baseline", commit_of(10)[:8], "--candidate", "r12",
        "--format", "json",
    )  # fmt: skip
    assert calm.returncode == 0, calm.stdout + calm.stderr
    doc = json.loads(calm.stdout)
    assert doc["baseline"]["kind"] == "commit" and doc["baseline"]["runs"] == [run_id(10)]
    assert doc["candidate"]["kind"] == "run"
    assert {m["verdict"] for m in doc["metrics"]} == {"unchanged"}


def test_regressions_threshold_hides_a_change_below_it_in_the_text_table(db):
    result = dtf(
        "regressions", "--db", db, "--baseline", "main", "--candidate", "feature",
        "--threshold", "30",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    [row] = [
        line for line in result.stdout.splitlines() if f"latency_ms[model=bert]@{SLOW}" in line
    ]
    assert "+19." in row and row.rstrip().endswith("unchanged")
    assert "0 regressions, 0 improvements, 6 unchanged" in result.stdout


# --- trends ---------------------------------------------------------------------------


def shifted(seed: int, n: int, at: int, step: float) -> list[float]:
    values = np.random.default_rng(seed).normal(10.0, 0.5, size=n)
    values[at:] += step
    return [round(float(v), 6) for v in values]


def test_trends_input_csv_gives_the_json_shape_and_index(tmp_path):
    series = {"planted": shifted(1, 80, 40, 5.0), "flat": shifted(2, 60, 60, 0.0)}
    lines = ["series,index,value"]
    lines += [f"{name},{i},{v}" for name, values in series.items() for i, v in enumerate(values)]
    path = tmp_path / "series.csv"
    path.write_text("\n".join(lines) + "\n")
    result = dtf("trends", "--input", path, "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert set(doc) == {"planted", "flat"}
    assert doc["flat"] == {"change_points": []}
    [cp] = doc["planted"]["change_points"]
    assert set(cp) == {
        *("index", "before_mean", "after_mean", "pct_change", "p_value"),
        *("pct_low", "pct_high", "index_low", "index_high"),
    }
    assert cp["index"] == 40
    assert cp["index_low"] <= 40 <= cp["index_high"]
    assert cp["pct_low"] <= cp["pct_change"] <= cp["pct_high"]
    assert cp["before_mean"] == pytest.approx(np.mean(series["planted"][:40]))
    assert cp["after_mean"] == pytest.approx(np.mean(series["planted"][40:]))
    assert cp["pct_change"] == pytest.approx(50, abs=5)
    assert cp["p_value"] < 0.001


def test_trends_input_json_gives_the_right_index(tmp_path):
    path = tmp_path / "series.json"
    path.write_text(json.dumps({"s": shifted(3, 50, 25, -4.0)}))
    result = dtf("trends", "--input", path, "--format", "json")
    assert result.returncode == 0, result.stderr
    [cp] = json.loads(result.stdout)["s"]["change_points"]
    assert cp["index"] == 25
    assert cp["after_mean"] < cp["before_mean"]
    text = dtf("trends", "--input", path)
    assert text.returncode == 0 and "1 of 1 series changed" in text.stdout


def test_trends_from_the_database_carry_the_commit(db):
    result = dtf("trends", "--db", db, "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert set(doc) == {
        f"latency_ms[model=bert]@{SLOW}",
        f"latency_ms[model=bert]@{FAST}",
        f"throughput[model=bert]@{SLOW}",
        *(
            f"duration:{nodeid}" for nodeid in (STEADY, FLAKY, BROKEN)
        ),  # 29 or 30 passed durations each
    }
    [cp] = doc[f"latency_ms[model=bert]@{SLOW}"]["change_points"]
    assert {"commit", "commit_range", "pct_low", "pct_high", "index_low"} <= set(cp)
    assert cp["index"] == REGRESSED_FROM * SAMPLES
    assert cp["commit"] == commit_of(REGRESSED_FROM)
    # The change is sharp, so the range is the one commit that brought it.
    assert cp["commit_range"] == {
        "old": commit_of(REGRESSED_FROM - 1),
        "new": commit_of(REGRESSED_FROM),
    }
    assert doc[f"latency_ms[model=bert]@{FAST}"]["change_points"] == []


# --- errors ---------------------------------------------------------------------------


def test_errors_groups_the_variants_into_one_pattern(db):
    result = dtf("errors", "--db", db, "--window", "24h", "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["errors"] == 12  # the week-old one is outside the window
    [connection, missing] = doc["patterns"]
    assert connection["count"] == 8
    assert len(connection["variants"]) >= 2
    assert connection["categories"] == {"infrastructure": 8}
    assert connection["workers"] == {"w0": 4, "w1": 4}
    assert connection["hardware"] == {FAST: 4, SLOW: 4}
    assert connection["example"].startswith("ConnectionError: connection to 10.0.7.14")
    assert connection["first_seen"] == pytest.approx(NOW - 3000)
    assert connection["last_seen"] == pytest.approx(NOW - 3000 + 7)
    assert missing["count"] == 4
    text = dtf("errors", "--db", db, "--window", "7d")
    assert text.returncode == 0 and "13 errors in the last 7d" in text.stdout


# --- best -----------------------------------------------------------------------------


def test_best_names_the_fastest_hardware_with_its_margin(db):
    result = dtf("best", "latency_ms", "--db", db, "--by", "hardware", "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["direction"], doc["unit"], doc["by"]) == ("lower", "ms", ["hardware"])
    [ranking] = doc["rankings"]
    assert ranking["fixed"] == {"model": "bert"}  # the dimension not ranked splits rankings
    assert ranking["decided"] and ranking["best"] == {"hardware": FAST}
    first, second = ranking["configurations"]
    assert first["samples"] == second["samples"] == HISTORY * SAMPLES
    # FAST is ~40 ms; SLOW is 100 ms for 20 runs and 120 for 10: median 100.
    assert first["margin_pct"] == pytest.approx(60, abs=2)
    assert first["margin_low"] <= first["margin_pct"] <= first["margin_high"]
    assert first["verdict"] == "significant" and first["p_value"] < 1e-6
    assert second["verdict"] is None
    text = dtf("best", "latency_ms", "--db", db)
    assert text.returncode == 0, text.stderr
    assert f"best: hardware={FAST},model=bert" in text.stdout


def test_best_maximize_overrides_the_recorded_direction(db):
    result = dtf("best", "latency_ms", "--db", db, "--maximize", "--format", "json")
    [ranking] = json.loads(result.stdout)["rankings"]
    assert ranking["best"] == {"hardware": SLOW, "model": "bert"}


def test_best_says_when_the_data_is_too_thin(db):
    result = dtf("best", "latency_ms", "--db", db, "--min-samples", "1000")
    assert result.returncode == 0, result.stderr
    assert "too thin to decide: too few samples" in result.stdout
    one = dtf("best", "throughput", "--db", db)
    assert "too thin to decide: only one configuration was measured" in one.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nope",), "no results of metric 'nope' (metrics: latency_ms, throughput)"),
        (("latency_ms", "--by", "gpu"), "--by gpu: not a dimension of latency_ms"),
        (("latency_ms", "--alpha", "2"), "--alpha must be between 0 and 1"),
        (("latency_ms", "--since", "soon"), "--since must be a positive age"),
    ],
)
def test_best_bad_input_is_one_line(db, args, message):
    assert message in one_error_line(dtf("best", *args, "--db", db))


# --- report ---------------------------------------------------------------------------


def test_report_json_has_flaky_failing_best_and_changes(db):
    result = dtf("report", "--db", db, "--format", "json", "--since", "7d")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [t["nodeid"] for t in doc["tests"]["flaky"]] == [FLAKY]
    assert doc["tests"]["flaky"][0]["flaky_commits"] == [commit_of(5)]
    assert [t["nodeid"] for t in doc["tests"]["failing"]] == [BROKEN]
    assert doc["tests"]["slowest"][0]["nodeid"] == STEADY
    [best] = [b for b in doc["best_configurations"] if b["benchmark"] == "latency_ms[model=bert]"]
    assert best["best"] == FAST and best["runner_up"] == SLOW
    assert best["significant"] and best["margin_pct"] > 50
    series = {s["series"]: s for s in doc["series"]}
    [cp] = series[f"latency_ms[model=bert]@{SLOW}"]["change_points"]
    assert cp["index"] == REGRESSED_FROM * SAMPLES
    throughput = series[f"throughput[model=bert]@{SLOW}"]
    assert throughput["anomaly"]["anomalous"] and throughput["anomaly"]["z"] < -10
    assert not series[f"latency_ms[model=bert]@{FAST}"]["anomaly"]["anomalous"]
    assert throughput["forecast"]["points"][0]["index"] == HISTORY * SAMPLES
    assert doc["runs"] == HISTORY


def test_report_markdown_and_html(db, tmp_path):
    md = dtf("report", "--db", db)
    assert md.returncode == 0, md.stderr
    sections = {part.splitlines()[0]: part for part in md.stdout.split("\n## ")[1:]}
    assert list(sections)[:4] == ["Flaky tests", "Failing tests", "Slowest tests", "Benchmarks"]
    assert FLAKY in sections["Flaky tests"] and BROKEN in sections["Failing tests"]
    [anomalies] = [text for title, text in sections.items() if title.startswith("Anomalies")]
    assert f"| throughput[model=bert]@{SLOW} | 400 items/s |" in anomalies
    out = tmp_path / "report.html"
    html = dtf("report", "--db", db, "--format", "html", "-o", out)
    assert html.returncode == 0, html.stderr
    text = out.read_text()
    root = ET.fromstring(text)  # well-formed: XHTML with inline SVG
    assert "<svg" in text and "http://" not in text.replace('xmlns="http://', "")
    svgs = root.findall(".//{http://www.w3.org/2000/svg}svg")
    assert len(svgs) >= 3
    assert "<script" not in text


# --- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("report", "--db", "missing.duckdb"),
        ("regressions", "--baseline", "nope", "--candidate", "feature"),
        ("trends", "--input", "missing.csv"),
        ("errors", "--window", "3 fortnights"),
        ("trends", "--metric", "no_such_metric"),
        ("report", "--since", "yesterday"),
        ("flaky", "--limit", "0"),
        ("flaky", "--since", "soon"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(db, tmp_path, args):
    if "--db" not in args and "--input" not in args:
        args = (*args, "--db", str(db))
    line = one_error_line(dtf(*args, cwd=tmp_path))
    assert "Traceback" not in line


def test_flaky_lists_the_test_that_flipped_on_one_commit(db):
    result = dtf("flaky", "--db", db, "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["tests"], doc["flaky"]) == (3, 1)  # BROKEN failed where it never passed
    (item,) = doc["items"]
    assert item["nodeid"] == FLAKY
    assert (item["runs"], item["flaky_runs"], item["failed_on_passing_commit"]) == (30, 1, 1)
    assert item["rate"] == pytest.approx(1 / 30) and item["last_outcome"] == "passed"
    text = dtf("flaky", "--db", db)
    assert text.returncode == 0 and text.stdout.startswith("1 of 3 tests flaky, 1 shown")
    row = next(line.split() for line in text.stdout.splitlines() if FLAKY in line)
    assert row[:3] == [FLAKY, "3%", "1/30"]
    assert "[tool.dtf] quarantine" in text.stdout
    assert dtf("flaky", "--db", db, "--min-runs", "31").stdout.startswith("0 of 3 tests flaky")


def test_badge_writes_endpoint_json_for_the_latest_run(db, tmp_path):
    coverage_xml = tmp_path / "coverage.xml"
    coverage_xml.write_text('<?xml version="1.0" ?><coverage line-rate="0.8123"></coverage>')
    out = tmp_path / "badges"
    result = dtf("badge", "--db", db, "--output-dir", out, "--coverage-xml", coverage_xml)
    assert result.returncode == 0, result.stderr
    assert "for run r29" in result.stdout
    read = {p.name: json.loads(p.read_text()) for p in out.iterdir()}
    assert set(read) == {"tests.json", "suite-tests.json", "coverage.json", "flaky.json"}
    assert read["tests.json"] == {
        "schemaVersion": 1,
        "label": "tests",
        "message": "1 failed, 2 passed",  # BROKEN failed in the latest run
        "color": "red",
    }
    assert read["coverage.json"]["message"] == "81%"
    assert read["flaky.json"]["message"] == "1"
    # The latest run of main passed: BROKEN broke on the feature branch only.
    again = dtf("badge", "--db", db, "--output-dir", out, "--branch", "main")
    assert again.returncode == 0 and "for run r19" in again.stdout
    assert json.loads((out / "tests.json").read_text())["color"] == "brightgreen"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--run", "nope"), "no run nope in"),
        (("--branch", "nope"), "no run of branch nope in"),
        (("--coverage-xml", "missing.xml"), "cannot read missing.xml"),
        (("--flaky-since", "later"), "--flaky-since must be a positive age"),
    ],
)
def test_badge_bad_input_is_one_line(db, tmp_path, args, message):
    line = one_error_line(dtf("badge", "--db", db, *args, cwd=tmp_path))
    assert message in line


def test_bad_input_files_are_one_line(tmp_path):
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("series,index,value\na,0,1.0\na,1,oops\n")
    assert "line 3" in one_error_line(dtf("trends", "--input", bad_csv))
    no_header = tmp_path / "no_header.csv"
    no_header.write_text("a,0,1.0\n")
    assert "header" in one_error_line(dtf("trends", "--input", no_header))
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{"a": [1, null, 3]}')
    assert "number" in one_error_line(dtf("trends", "--input", bad_json))
    not_db = tmp_path / "not.duckdb"
    not_db.write_text("hello")
    one_error_line(dtf("errors", "--db", not_db))
    empty_db = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty_db)).close()
    assert "missing tables" in one_error_line(dtf("report", "--db", empty_db))
