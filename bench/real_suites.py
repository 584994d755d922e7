"""Real projects' test suites for bench/overhead.py, as their sdists, in a venv of their own.

    python bench/real_suites.py DIR [--compare]

Downloads the sdists of SUITES (pinned versions) into DIR, unpacks them, and makes DIR/venv with
dtf (`pip install -e` of this checkout), pytest-xdist and each project installed in it.  Then
prints the overhead commands to run, e.g.

    cd DIR/boltons-26.2.0 && DIR/venv/bin/python bench/overhead.py . --skip-dispatch

With --compare it runs each suite with plain pytest (-rA) and with `dtf run -n 2 --json` in that
venv and compares them item by item: every item once, with plain pytest's outcome (a failed
subtest counts as a failed item in both).  Plain pytest's own failures in this environment
(attrs has one, for a missing optional dependency) are fine: dtf must report the same.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.plain_pytest import run_plain_pytest  # noqa: E402

# Name, version: each project's own sdist carries its tests (wheels do not).
SUITES = {
    "attrs": "26.1.0",
    "boltons": "26.2.0",
    "cachetools": "8.0.2",
    "toolz": "1.2.0",
}
# What the suites need besides themselves and pytest.
EXTRA = ("pytest-xdist", "hypothesis")


def pip(python: Path | str, *args: str) -> None:
    subprocess.run([str(python), "-m", "pip", "install", "-q", *args], check=True)


def prepare(base: Path) -> tuple[Path, list[Path]]:
    """The venv's python and the unpacked project directories."""
    sdists = base / "sdist"
    sdists.mkdir(parents=True, exist_ok=True)
    projects = []
    for name, version in SUITES.items():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
             f"{name}=={version}", "-d", str(sdists)],
            check=True,
        )  # fmt: skip
        [archive] = [p for p in sdists.glob("*.tar.gz") if p.name.lower().startswith(name)]
        with tarfile.open(archive) as tar:
            tar.extractall(base, filter="data")
        projects.append(base / archive.name.removesuffix(".tar.gz"))
    venv = base / "venv"
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    pip(python, "-e", str(REPO), *EXTRA)
    pip(python, *(arg for project in projects for arg in ("-e", str(project))))
    return python, projects


def compare(python: Path, project: Path) -> bool:
    plain = run_plain_pytest(project, [], python=str(python), options=())
    report = project / "dtf-report.json"
    subprocess.run(
        [str(python), "-m", "dtf", "run", "-n", "2", "--no-progress", "--json", str(report)],
        cwd=project,
        stdout=subprocess.DEVNULL,
        check=False,
    )
    ours = {c["nodeid"]: c["outcome"] for c in json.loads(report.read_text())["cases"]}
    ran = {nodeid: outcome for nodeid, outcome in ours.items() if "::" in nodeid}
    differ = {n: (plain.outcomes.get(n), ran.get(n)) for n in {*plain.outcomes, *ran}}
    differ = {n: pair for n, pair in differ.items() if pair[0] != pair[1]}
    print(f"{project.name}: {len(plain.outcomes)} items, {len(differ)} differ from plain pytest")
    for nodeid, (theirs, mine) in sorted(differ.items())[:20]:
        print(f"  {nodeid}: pytest {theirs}, dtf {mine}")
    return not differ


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dir", type=Path)
    parser.add_argument("--compare", action="store_true", help="compare item by item")
    args = parser.parse_args()
    python, projects = prepare(args.dir.resolve())
    for project in projects:
        print(f"cd {project} && {python} {REPO / 'bench' / 'overhead.py'} . --skip-dispatch")
    if args.compare and not all([compare(python, project) for project in projects]):
        sys.exit(1)


if __name__ == "__main__":
    main()
