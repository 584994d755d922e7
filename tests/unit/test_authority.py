"""Who may have written an event (issue #10): the core's rule on plain values, the View that
applies it, and the signature checks of `dtf.nats.signing` on keys and hostile headers."""

from __future__ import annotations

import asyncio
import base64
import os

import nkeys
from hypothesis import given, settings
from hypothesis import strategies as st

from dtf.core.authority import refusal, subject_matches
from dtf.core.state import View
from dtf.nats.signing import (
    SIGNATURE_HEADER,
    SIGNER_HEADER,
    KeyEntry,
    Signing,
    Verifier,
    verify_key,
)
from events.catalogue import (
    Capabilities,
    RunSubmitted,
    TaskAssigned,
    TaskCompleted,
    TaskQueued,
    TaskStarted,
    WorkerRegistered,
)
from events.records import Recorded, Rejected, Signer
from events.subjects import subject_of

ENVELOPE = {"id": "e", "at": 1.0, "actor": "t"}
TASK = "r1.0"
SUBMITTER = Signer("submitter", "submitter")
COORDINATOR = Signer("coordinator", "coordinator")
WORKER_A = Signer("worker-a", "worker")
WORKER_B = Signer("worker-b", "worker")


def completed(worker: str, attempt: int = 1) -> TaskCompleted:
    return TaskCompleted(
        task_id=TASK, worker_id=worker, attempt=attempt, outcome="passed", **ENVELOPE
    )


def test_nats_wildcards() -> None:
    assert subject_matches("dtf.evt.task.*.*.completed", "dtf.evt.task.r.0.completed")
    assert not subject_matches("dtf.evt.task.*.*.completed", "dtf.evt.task.r.0.completed.x")
    assert not subject_matches("dtf.evt.task.*.*.completed", "dtf.evt.task.r.completed")
    assert subject_matches("dtf.evt.task.*.*.assigned.*", "dtf.evt.task.r.0.assigned.w")
    assert subject_matches(">", "dtf.evt.x") and subject_matches("dtf.>", "dtf.a.b")
    assert not subject_matches("dtf.>", "dtf")


def test_each_role_writes_only_its_own_events() -> None:
    done = completed("worker-a")
    assert refusal(WORKER_A, subject_of(done), done, None) is None
    assert "may not write" in (refusal(SUBMITTER, subject_of(done), done, None) or "")
    assert "may not write" in (refusal(COORDINATOR, subject_of(done), done, None) or "")
    assert refusal(Signer("root", "admin"), subject_of(done), done, None) is None
    assign = TaskAssigned(task_id=TASK, worker_id="worker-a", **ENVELOPE)
    assert refusal(COORDINATOR, subject_of(assign), assign, None) is None
    assert "may not write" in (refusal(WORKER_A, subject_of(assign), assign, None) or "")
    assert "unknown" in (refusal(Signer("x", "root"), subject_of(done), done, None) or "")


def test_a_worker_speaks_only_for_itself_and_its_attempts() -> None:
    as_b = completed("worker-b")
    assert "as worker 'worker-b'" in (refusal(WORKER_A, subject_of(as_b), as_b, None) or "")
    mine = completed("worker-a")
    assert "assigned to 'worker-b'" in (refusal(WORKER_A, subject_of(mine), mine, "worker-b") or "")
    assert refusal(WORKER_A, subject_of(mine), mine, "worker-a") is None
    caps = Capabilities(platform="linux", hostname="h", cpus=1, memory_gb=1)
    other = WorkerRegistered(worker_id="worker-b", capabilities=caps, slots=1, **ENVELOPE)
    assert refusal(WORKER_A, subject_of(other), other, None) is not None


def _recorded(seq: int, event, signer: Signer | None) -> Recorded:
    return Recorded(seq, subject_of(event), event, signer)


def test_the_view_rejects_a_forged_report_but_counts_its_sequence() -> None:
    view = View()
    submitted = RunSubmitted(
        run_id="r1", bundle="", root="/", args=(), task_ids=(TASK,), total_cases=1, **ENVELOPE
    )
    queued = TaskQueued(task_id=TASK, run_id="r1", kind="pytest", nodeids=("t::a",), **ENVELOPE)
    assigned = TaskAssigned(task_id=TASK, worker_id="worker-b", **ENVELOPE)
    started = TaskStarted(task_id=TASK, worker_id="worker-b", **ENVELOPE)
    for seq, (event, signer) in enumerate(
        [(submitted, SUBMITTER), (queued, SUBMITTER), (assigned, COORDINATOR), (started, WORKER_B)],
        start=1,
    ):
        assert view.fold(_recorded(seq, event, signer))
    forged = _recorded(5, completed("worker-a"), WORKER_A)
    admitted = view.admit(forged)
    assert isinstance(admitted, Rejected) and admitted.refused
    assert not view.fold(forged)
    assert view.tasks[TASK].status == "running" and view.rejected == 1
    # The server counted the message on the task: the next guarded write expects seq 5.
    assert view.versions[queued.key] == 5
    assert view.fold(_recorded(6, completed("worker-b"), WORKER_B))
    assert view.tasks[TASK].status == "completed"
    # Unsigned events (a server without keys) are not judged at all.
    assert View().admit(_recorded(1, completed("anyone"), None)).event.worker_id == "anyone"


def _seed() -> bytes:
    return nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)


def test_verify_key_takes_user_public_keys_only() -> None:
    signing = Signing(_seed())
    assert verify_key(signing.public_key) is not None
    assert verify_key(_seed().decode()) is None  # a seed is not a public key
    broken = signing.public_key[:-1] + ("A" if signing.public_key[-1] != "A" else "B")
    assert verify_key(broken) is None  # the checksum catches a changed character
    assert verify_key("") is None and verify_key("not base32!") is None


def _verifier(signing: Signing, *, revoked_after: int = 0) -> Verifier:
    return Verifier.of({signing.public_key: KeyEntry("w", "worker", revoked_after)}, 10)


def test_signatures_verify_and_anything_changed_does_not() -> None:
    signing = Signing(_seed())
    verifier = _verifier(signing)
    headers = signing.headers("dtf.evt.a", b"{}")

    def verdict(seq: int, subject: str, data: bytes, hdrs: dict | None):
        return asyncio.run(verifier.verify(seq, subject, data, hdrs))

    assert verdict(11, "dtf.evt.a", b"{}", headers) == Signer("w", "worker")
    assert "does not match" in verdict(11, "dtf.evt.a", b"{ }", headers)
    assert "does not match" in verdict(11, "dtf.evt.b", b"{}", headers)  # moved
    assert verdict(9, "dtf.evt.a", b"{}", None) is None  # history from before --auth
    assert "unsigned" in verdict(10, "dtf.evt.a", b"{}", {})
    revoked = _verifier(signing, revoked_after=11)
    assert asyncio.run(revoked.verify(11, "dtf.evt.a", b"{}", headers)) == Signer("w", "worker")
    assert "revoked at seq 11" in asyncio.run(revoked.verify(12, "dtf.evt.a", b"{}", headers))


SIGNING = Signing(_seed())
_header_values = st.one_of(
    st.text(max_size=120),
    st.just(SIGNING.public_key),
    st.binary(max_size=80).map(lambda b: base64.b64encode(b).decode()),
)


@settings(max_examples=150, deadline=None)
@given(
    signer=st.one_of(st.none(), _header_values),
    signature=st.one_of(st.none(), _header_values),
    data=st.binary(max_size=200),
    seq=st.integers(min_value=1, max_value=100),
)
def test_hostile_signature_headers_are_refused_not_raised(signer, signature, data, seq) -> None:
    headers = {
        k: v for k, v in ((SIGNER_HEADER, signer), (SIGNATURE_HEADER, signature)) if v is not None
    }
    verdict = asyncio.run(_verifier(SIGNING).verify(seq, "dtf.evt.x", data, headers))
    # Only a real signature over these very bytes verifies; the rest is a reason, or
    # unsigned history from before enforcement.
    assert verdict is None or isinstance(verdict, str) or verdict == Signer("w", "worker")
    if isinstance(verdict, Signer):
        assert headers == SIGNING.headers("dtf.evt.x", data)
