"""Which CI system `dtf ci` runs under, read from its documented variables."""

from __future__ import annotations

import pytest

from dtf.ci.providers import CiContext, detect


def test_github_pull_request() -> None:
    ctx = detect(
        {
            "GITHUB_ACTIONS": "true",
            "GITHUB_SHA": "abc",
            "GITHUB_REF": "refs/pull/12/merge",
            "GITHUB_REF_NAME": "12/merge",
            "GITHUB_HEAD_REF": "topic",
            "GITHUB_BASE_REF": "main",
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_REPOSITORY": "o/r",
            "GITHUB_RUN_ID": "7",
        }
    )
    assert ctx == CiContext(
        "github", "abc", "topic", "12", "main", "https://github.com/o/r/actions/runs/7"
    )


def test_github_push_takes_the_ref_name_and_no_change() -> None:
    ctx = detect(
        {"GITHUB_ACTIONS": "true", "GITHUB_REF": "refs/heads/main", "GITHUB_REF_NAME": "main"}
    )
    assert (ctx.branch, ctx.change, ctx.job_url) == ("main", "", "")


def test_gitlab_merge_request_branch_wins_over_the_ref() -> None:
    ctx = detect(
        {
            "GITLAB_CI": "true",
            "CI_COMMIT_SHA": "abc",
            "CI_COMMIT_REF_NAME": "refs/merge-requests/3/head",
            "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "topic",
            "CI_MERGE_REQUEST_IID": "3",
            "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
            "CI_JOB_URL": "https://gl/j/1",
        }
    )
    assert ctx == CiContext("gitlab", "abc", "topic", "3", "main", "https://gl/j/1")


def test_jenkins_strips_the_remote_from_git_branch() -> None:
    ctx = detect({"JENKINS_URL": "https://j/", "GIT_COMMIT": "abc", "GIT_BRANCH": "origin/dev"})
    assert (ctx.provider, ctx.commit, ctx.branch) == ("jenkins", "abc", "dev")
    multibranch = detect(
        {"JENKINS_URL": "x", "BRANCH_NAME": "PR-4", "CHANGE_BRANCH": "topic", "CHANGE_ID": "4"}
    )
    assert (multibranch.branch, multibranch.change) == ("topic", "4")


def test_auto_without_markers_is_none_and_a_named_provider_is_read_anyway() -> None:
    assert detect({"GITHUB_SHA": "abc"}) == CiContext("none")
    assert detect({"GITHUB_SHA": "abc"}, "github").commit == "abc"
    assert detect({"GITHUB_ACTIONS": "true"}, "none") == CiContext("none")


def test_unknown_provider_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown CI provider 'travis' .*github, gitlab, jenkins"):
        detect({}, "travis")


def test_labels_hold_what_was_said_only() -> None:
    assert CiContext("none").labels() == {}
    assert CiContext("gitlab", commit="abc", target="main").labels() == {
        "ci": "gitlab",
        "commit": "abc",
        "target_branch": "main",
    }
