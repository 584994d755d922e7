"""Which CI system runs `dtf ci`, and what its environment says about the build.

Each provider is recognised by the variable it always sets (GitHub Actions: GITHUB_ACTIONS,
GitLab CI: GITLAB_CI, Jenkins: JENKINS_URL) and read from its documented variables:

- GitHub: GITHUB_SHA, GITHUB_HEAD_REF (a pull request's branch) or GITHUB_REF_NAME, the pull
  request number from GITHUB_REF (`refs/pull/<n>/merge`), GITHUB_BASE_REF (its target), the
  run's page from GITHUB_SERVER_URL, GITHUB_REPOSITORY and GITHUB_RUN_ID.
- GitLab: CI_COMMIT_SHA, CI_MERGE_REQUEST_SOURCE_BRANCH_NAME or CI_COMMIT_REF_NAME,
  CI_MERGE_REQUEST_IID, CI_MERGE_REQUEST_TARGET_BRANCH_NAME, CI_JOB_URL.
- Jenkins: GIT_COMMIT, CHANGE_BRANCH (a change request's branch) or BRANCH_NAME or GIT_BRANCH
  (without its `origin/`), CHANGE_ID, CHANGE_TARGET, BUILD_URL.

Pure: the environment is passed in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Provider = Literal["github", "gitlab", "jenkins", "none"]
PROVIDERS: tuple[Provider, ...] = ("github", "gitlab", "jenkins", "none")

# The variable each provider always sets, in the order `auto` tries them.
_MARKERS: tuple[tuple[Provider, str], ...] = (
    ("github", "GITHUB_ACTIONS"),
    ("gitlab", "GITLAB_CI"),
    ("jenkins", "JENKINS_URL"),
)
_PULL_REF = re.compile(r"^refs/pull/(\d+)/")


@dataclass(frozen=True, slots=True)
class CiContext:
    """The build as its CI system describes it; empty strings where it says nothing."""

    provider: Provider
    commit: str = ""
    branch: str = ""
    change: str = ""  # the pull or merge request's number
    target: str = ""  # the branch a pull or merge request goes into
    job_url: str = ""

    def labels(self) -> dict[str, str]:
        """The run's labels: `commit` and `branch` replace what git says (a CI checkout is
        often a detached HEAD), the rest is kept for the record."""
        named = {
            "commit": self.commit,
            "branch": self.branch,
            "change": self.change,
            "target_branch": self.target,
            "job_url": self.job_url,
        }
        labels: dict[str, str] = {"ci": self.provider} if self.provider != "none" else {}
        labels.update({k: v for k, v in named.items() if v})
        return labels


def detect(environ: Mapping[str, str], provider: str = "auto") -> CiContext:
    """The build's context; `provider` is `auto` (the first whose marker is set, else none)
    or one of PROVIDERS, read even when its marker is missing (a runner that hides it)."""
    if provider == "auto":
        provider = next((name for name, var in _MARKERS if environ.get(var)), "none")
    readers = {"github": _github, "gitlab": _gitlab, "jenkins": _jenkins}
    if provider == "none":
        return CiContext("none")
    if provider not in readers:
        raise ValueError(f"unknown CI provider {provider!r} (known: auto, {', '.join(PROVIDERS)})")
    return readers[provider](environ)


def _github(env: Mapping[str, str]) -> CiContext:
    pull = _PULL_REF.match(env.get("GITHUB_REF", ""))
    server, repo, run = (
        env.get(k, "") for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    )
    return CiContext(
        "github",
        commit=env.get("GITHUB_SHA", ""),
        branch=env.get("GITHUB_HEAD_REF") or env.get("GITHUB_REF_NAME", ""),
        change=pull[1] if pull else "",
        target=env.get("GITHUB_BASE_REF", ""),
        job_url=f"{server}/{repo}/actions/runs/{run}" if server and repo and run else "",
    )


def _gitlab(env: Mapping[str, str]) -> CiContext:
    return CiContext(
        "gitlab",
        commit=env.get("CI_COMMIT_SHA", ""),
        branch=env.get("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME") or env.get("CI_COMMIT_REF_NAME", ""),
        change=env.get("CI_MERGE_REQUEST_IID", ""),
        target=env.get("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", ""),
        job_url=env.get("CI_JOB_URL", ""),
    )


def _jenkins(env: Mapping[str, str]) -> CiContext:
    branch = env.get("CHANGE_BRANCH") or env.get("BRANCH_NAME") or env.get("GIT_BRANCH", "")
    return CiContext(
        "jenkins",
        commit=env.get("GIT_COMMIT", ""),
        branch=branch.removeprefix("origin/"),
        change=env.get("CHANGE_ID", ""),
        target=env.get("CHANGE_TARGET", ""),
        job_url=env.get("BUILD_URL", ""),
    )
