"""`dtf run --cov`: the coverage data of the run's pytest sessions, combined and reported here.

Each worker's session measures what it ran (`dtf.runner.child.measure`) and ships its data
file with the checkout it ran in (`dtf.worker.coverage`); the task results name the objects.
Here they are fetched, their paths mapped from each worker's checkout onto this project's tree,
merged into `.coverage` in the project root (as `pytest --cov` leaves it, so `coverage report`
works afterwards), and reported as asked: `term`, `term-missing`, `xml[:PATH]`, `html[:DIR]`,
`json[:PATH]` (pytest-cov's `--cov-report` names and defaults). The project's coverage
configuration is read from the current directory, the project root, as coverage.py does.

coverage.py is imported only here and only for `--cov` runs: it costs a run without nothing.
"""

from __future__ import annotations

import asyncio
import io
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

import msgspec
from rich.console import Console
from rich.markup import escape

from dtf.errors import ConfigError, StoreError
from dtf.nats.store import EventStore
from events import topology
from events.api import CoverageUpload

# pytest-cov's report types, and where each writes by default (term ones: the terminal).
DEFAULT_DESTINATIONS = {
    "term": "",
    "term-missing": "",
    "xml": "coverage.xml",
    "html": "htmlcov",
    "json": "coverage.json",
}


@dataclass(frozen=True, slots=True)
class ReportSpec:
    kind: str  # a key of DEFAULT_DESTINATIONS
    destination: str = ""  # a file or directory, relative to the project root


def parse_reports(specs: Iterable[str]) -> list[ReportSpec]:
    """`--cov-report` values (`xml`, `xml:out/cov.xml`, ...); ConfigError naming a bad one."""
    reports = []
    for spec in specs:
        kind, _, destination = spec.partition(":")
        if kind not in DEFAULT_DESTINATIONS:
            known = ", ".join(DEFAULT_DESTINATIONS)
            raise ConfigError(f"--cov-report must be one of {known} (with :PATH), got {spec!r}")
        if destination and kind.startswith("term"):
            raise ConfigError(f"--cov-report {kind} writes to the terminal, not {destination!r}")
        reports.append(ReportSpec(kind, destination or DEFAULT_DESTINATIONS[kind]))
    return reports


def path_mapper(worker_root: str, root: Path) -> Callable[[str], str]:
    """A function taking a path measured under `worker_root` (a worker's checkout, POSIX or
    Windows) to the same file under `root`; other paths (installed packages, paths already
    relative) are left as they are."""
    flavour = PureWindowsPath if "\\" in worker_root or worker_root[1:3] == ":\\" else PurePosixPath
    base = flavour(worker_root)

    def mapped(path: str) -> str:
        try:
            relative = flavour(path).relative_to(base)
        except ValueError:
            return path
        return str(root.joinpath(*relative.parts))

    return mapped


async def fetch(store: EventStore, keys: Iterable[str]) -> tuple[list[CoverageUpload], int]:
    """The uploads under `keys`, and how many could not be read (missing, or not ours)."""
    bucket = store.objects(topology.COVERAGE_BUCKET)
    uploads, lost = [], 0
    for key in sorted(set(keys)):
        try:
            data = await bucket.get(key)
            if data is None:
                lost += 1
                continue
            uploads.append(msgspec.msgpack.decode(data, type=CoverageUpload))
        except (StoreError, msgspec.DecodeError):
            lost += 1
    return uploads, lost


def combine(uploads: Sequence[CoverageUpload], root: Path, source: Sequence[str]) -> Path:
    """Merge the uploads into `root/.coverage` (replacing it); its path.

    Raises ConfigError when coverage.py refuses the data (e.g. some sessions measured branches
    and others did not).
    """
    import coverage
    from coverage.exceptions import CoverageException

    data_file = root / ".coverage"
    combined = coverage.Coverage(data_file=str(data_file), source=_sources(source))
    combined.erase()
    data = combined.get_data()
    with tempfile.TemporaryDirectory(prefix="dtf-coverage-") as tmp:
        for n, upload in enumerate(uploads):
            part = Path(tmp) / f"part{n}"
            part.write_bytes(upload.data)
            other = coverage.CoverageData(basename=str(part))
            try:
                other.read()
                data.update(other, map_path=path_mapper(upload.root, root))
            except CoverageException as exc:
                raise ConfigError(f"cannot combine the workers' coverage data: {exc}") from None
    combined.save()
    return data_file


def report(
    data_file: Path, source: Sequence[str], reports: Sequence[ReportSpec], console: Console
) -> float | None:
    """Write the reports of the combined data; the total percentage (None: nothing measured).

    A report coverage.py cannot write (no data, a source file missing here) is one line.
    """
    import coverage
    from coverage.exceptions import CoverageException, NoDataError

    # The sources again: reports name files relative to them, as pytest-cov's do.
    cov = coverage.Coverage(data_file=str(data_file), source=_sources(source))
    cov.load()
    total = None
    try:
        for spec in reports:
            if spec.kind.startswith("term"):
                out = io.StringIO()
                total = cov.report(file=out, show_missing=spec.kind == "term-missing")
                console.rule("coverage", characters="-")
                console.print(out.getvalue().rstrip("\n"), markup=False, highlight=False)
            elif spec.kind == "xml":
                total = cov.xml_report(outfile=spec.destination)
                console.print(f"Coverage XML written to file {spec.destination}", markup=False)
            elif spec.kind == "html":
                total = cov.html_report(directory=spec.destination)
                console.print(f"Coverage HTML written to dir {spec.destination}", markup=False)
            elif spec.kind == "json":
                total = cov.json_report(outfile=spec.destination)
                console.print(f"Coverage JSON written to file {spec.destination}", markup=False)
    except NoDataError:
        console.print("[yellow]coverage: no data was collected[/]")
        return None
    except CoverageException as exc:
        console.print(f"[yellow]coverage: {escape(str(exc))}[/]")
    return total


async def combine_and_report(
    store: EventStore,
    keys: Iterable[str],
    root: Path,
    source: Sequence[str],
    reports: Sequence[ReportSpec],
    console: Console,
) -> float | None:
    """Fetch, combine and report the run's coverage; the total percentage, if any."""
    uploads, lost = await fetch(store, keys)
    if lost:
        console.print(f"[yellow]coverage: {lost} session(s)' data could not be fetched[/]")
    if not uploads:
        console.print("[yellow]coverage: no data came back from the workers[/]")
        return None
    data_file = await asyncio.to_thread(combine, uploads, root, source)
    return await asyncio.to_thread(report, data_file, source, reports, console)


def _sources(source: Sequence[str]) -> list[str] | None:
    """`--cov` values as coverage.py's `source`: None (its default) when none is named."""
    return [s for s in source if s] or None
