"""GitLab CI: collapsible log sections and the code-quality report of failures.

A section is two marker lines in the job log, `ESC[0Ksection_start:UNIX_TIME:NAME[collapsed=
true]\\rESC[0KHEADER` and `ESC[0Ksection_end:UNIX_TIME:NAME\\rESC[0K`. The code-quality report is
the Code Climate subset GitLab reads (description, check_name, fingerprint, severity,
location.path, location.lines.begin); a fingerprint that depends on the test alone lets a
merge request's widget tell new failures from old ones.
"""

from __future__ import annotations

import hashlib
from typing import Any

from dtf.ci.locations import location
from dtf.ci.result import CiResult

ESC = "\x1b[0K"


def section_start(name: str, header: str, at: float, *, collapsed: bool) -> str:
    flag = "[collapsed=true]" if collapsed else ""
    return f"{ESC}section_start:{int(at)}:{name}{flag}\r{ESC}{header}"


def section_end(name: str, at: float) -> str:
    return f"{ESC}section_end:{int(at)}:{name}\r{ESC}"


def code_quality(result: CiResult) -> list[dict[str, Any]]:
    issues = []
    for case in result.failures:
        path, line = location(case)
        first = next((s for s in (case.message or case.longrepr).splitlines() if s.strip()), "")
        issues.append(
            {
                "description": f"{case.nodeid} {case.outcome}" + (f": {first}" if first else ""),
                "check_name": f"dtf-test-{case.outcome}",
                "fingerprint": hashlib.sha256(case.nodeid.encode()).hexdigest()[:32],
                "severity": "critical" if case.outcome == "error" else "major",
                "location": {"path": path, "lines": {"begin": line or 1}},
            }
        )
    return issues
