"""`dtf ci`: one run in a pipeline step, and everything the CI system should get from it.

The run itself is `dtf run`'s (`RunClient`), labelled with what the provider's environment
says. Around it: plain progress lines for the log, the reports in the output directory
(`junit.xml`, `report.json`, `summary.md`, `report.html`, and the provider's own files), the
provider's annotations and summary, and an optional regression check against the fleet's
history (`--fail-on-regression`, `--baseline`), which brings a read model up to date and
compares this run with the baseline's runs as `dtf regressions` does.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from dtf.ci import github, gitlab, summary
from dtf.ci.analyze import undeclared
from dtf.ci.providers import CiContext, detect
from dtf.ci.result import CiResult, RegressionCheck
from dtf.client.config import servers
from dtf.client.options import RunOptions
from dtf.client.reports import write_atomically
from dtf.client.run import RunClient
from dtf.core import quarantine
from dtf.errors import ConfigError, ProjectionError
from projections.reports import badges

# Off a terminal, a progress line this often: a CI log shows the run is alive, no more.
PLAIN_PROGRESS_S = 10.0
BASELINE_RUNS = 5  # runs taken from a baseline branch, as `dtf regressions --runs`


@dataclass(frozen=True, slots=True)
class CiRequest:
    """`dtf ci`'s own options (the run's are a RunOptions)."""

    provider: str = "auto"
    output_dir: Path = Path("dtf-reports")
    fail_on_regression: bool = False
    baseline: str | None = None
    db: Path = Path("dtf.duckdb")
    threshold: float = 5.0
    alpha: float = 0.05

    def check(self, opts: RunOptions) -> None:
        """Refuse what cannot work, before anything starts."""
        wants_check = self.fail_on_regression or self.baseline is not None
        if wants_check and opts.server is None:
            raise ConfigError(
                "--fail-on-regression and --baseline compare with the fleet's history: give "
                "--server URL (the embedded server keeps no history)"
            )
        if not 0 < self.alpha < 1:
            raise ConfigError("--alpha must be between 0 and 1")
        if self.threshold < 0:
            raise ConfigError("--threshold must not be negative")


async def run_ci(
    opts: RunOptions, request: CiRequest, console: Console, environ: Mapping[str, str]
) -> int:
    """Run the suite, report it to the CI system; the exit code (see the module docstring)."""
    try:
        context = detect(environ, request.provider)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    request.check(opts)
    out = request.output_dir
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create --output-dir {out}: {exc.strerror or exc}") from None
    opts = dataclasses.replace(
        opts,
        # The CI system's commit and branch win over git's: its checkout is a detached HEAD.
        tags={**context.labels(), **opts.tags},
        junit_xml=opts.junit_xml or out / "junit.xml",
        json=opts.json or out / "report.json",
        plain_progress=PLAIN_PROGRESS_S,
        coverage_reports=opts.coverage_reports or _coverage_reports(opts, out),
    )
    if context.provider != "none":
        console.print(f"dtf ci: {context.provider} build: {_described(context)}", markup=False)
    client = RunClient(opts, console)
    if context.provider == "gitlab":
        print(gitlab.section_start("dtf_run", "dtf run", time.time(), collapsed=False), flush=True)
    try:
        code = await client.execute()
    finally:
        if context.provider == "gitlab":
            print(gitlab.section_end("dtf_run", time.time()), flush=True)
    check = None
    if request.fail_on_regression or request.baseline is not None:
        assert opts.server is not None
        check = await regression_check(opts.server, client.run_id, request, context, console)
    if request.fail_on_regression and check is not None and check.regressions and code == 0:
        code = 1
    result = CiResult(
        context,
        client.run_id,
        tuple(client.cases),
        client.seconds,
        code,
        tuple(quarantine.forgiven(client.cases, opts.quarantine)),
        check,
        tuple(undeclared(opts.root, client.collection.items)) if client.collection else (),
        client.coverage_total,
    )
    run_reports = [p for p in (opts.junit_xml, opts.json) if p is not None and p.exists()]
    written = [*run_reports, *report(result, out, environ, console)]
    for path in written:
        if path.parent != out / "badges":
            console.print(f"dtf ci: wrote {path}", markup=False)
    count = sum(p.parent == out / "badges" for p in written)
    console.print(f"dtf ci: wrote {count} badges (shields.io endpoint JSON) to {out / 'badges'}")
    return code


def _coverage_reports(opts: RunOptions, out: Path) -> list[str]:
    """`--cov` in CI: the table in the log, Cobertura XML (what GitLab, Jenkins and most
    services read) and the HTML pages, in the output directory."""
    if opts.coverage is None:
        return []
    return ["term", f"xml:{out / 'coverage.xml'}", f"html:{out / 'htmlcov'}"]


def _described(context: CiContext) -> str:
    labels = context.labels()
    labels.pop("ci", None)
    return ", ".join(f"{k} {v}" for k, v in labels.items()) or "no build details in the environment"


def report(result: CiResult, out: Path, environ: Mapping[str, str], console: Console) -> list[Path]:
    """Write the reports and give the provider its own; the files written."""
    markdown = summary.render_markdown(result)
    text = summary.render_text(result)
    files = {
        out / "summary.md": markdown,
        out / "report.html": summary.render_html(result),
        out / "summary.txt": text,
    }
    provider = result.context.provider
    if provider == "gitlab":
        files[out / "gl-code-quality-report.json"] = json.dumps(
            gitlab.code_quality(result), indent=2
        )
    excused = {id(c) for c in result.quarantined}
    outcomes = [(c.nodeid, "quarantined" if id(c) in excused else c.outcome) for c in result.cases]
    for name, badge in badges.all_badges(outcomes, result.coverage, len(result.flaky)).items():
        files[out / "badges" / name] = json.dumps(badge)
    for path, content in files.items():
        write_atomically(path, content.encode("utf-8"))
    written = list(files)
    if provider == "github":
        for line in github.annotation_lines(result):
            print(line, flush=True)  # workflow commands are read from stdout, verbatim
        written += github.append_files(environ, markdown, github.outputs(result, out))
    elif provider == "gitlab":
        now = time.time()
        print(gitlab.section_start("dtf_summary", summary.headline(result), now, collapsed=True))
        print(text, end="")
        print(gitlab.section_end("dtf_summary", now), flush=True)
    elif provider == "jenkins":
        console.print(text, markup=False, end="")
    return written


async def regression_check(
    server: str, run_id: str, request: CiRequest, context: CiContext, console: Console
) -> RegressionCheck:
    """This run against the baseline's runs, in the read model brought up to date first."""
    from projections.pipeline.projector import replay
    from projections.queries import read, refs, regressions

    baseline = request.baseline or context.target or context.branch
    if not baseline:
        return RegressionCheck("-", (), "skipped: no baseline (give --baseline REF)")
    console.print(
        f"dtf ci: bringing {request.db} up to date for the regression check", markup=False
    )
    await replay(servers(server), request.db)
    con = read.open_db(request.db)
    try:
        runs = read.runs(con)
        try:
            # The run is never its own baseline, though it is on the baseline's branch.
            base = refs.resolve(
                baseline, [r for r in runs if r.run_id != run_id], latest=BASELINE_RUNS
            )
        except ConfigError as exc:
            return RegressionCheck(baseline, (), f"skipped: {exc}")
        cand = refs.resolve(run_id, runs, latest=1)
        sides = [
            regressions.samples(
                read.results(con, run_ids=s.run_ids), read.cases(con, run_ids=s.run_ids)
            )
            for s in (base, cand)
        ]
    finally:
        con.close()
    try:
        changes = regressions.compare(*sides, alpha=request.alpha, threshold_pct=request.threshold)
    except ProjectionError as exc:
        return RegressionCheck(baseline, (), f"nothing compared: {exc}")
    worse = sum(c.verdict == "regression" for c in changes)
    note = (
        f"{len(changes)} metric(s) compared with {len(base.run_ids)} run(s), {worse} regression(s)"
    )
    console.print(f"dtf ci: regressions against {baseline}: {note}", markup=False)
    return RegressionCheck(baseline, tuple(changes), note)
