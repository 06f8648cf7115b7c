"""The hazard state machine: every allowed and every refused transition, and random action sequences."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.models.selfcheck import Hazard, HazardStatus, Severity
from portal.selfcheck.hazards.services import Action, HazardRefused, check_allowed
from portal.selfcheck.policies import ActorKind, HazardActor

S = HazardStatus
MANAGER = HazardActor(ActorKind.MEMBER, uuid.uuid4(), can_verify=True)
STAFF = HazardActor(ActorKind.MEMBER, uuid.uuid4(), can_verify=False)
WARDEN = HazardActor(ActorKind.WARDEN, uuid.uuid4())
REGULATOR = HazardActor(ActorKind.REGULATOR, uuid.uuid4())
ACTORS = {"manager": MANAGER, "staff": STAFF, "warden": WARDEN, "regulator": REGULATOR}


def hazard(status: HazardStatus, severity: Severity = Severity.GENERAL, immediate: bool = True) -> Hazard:
    return Hazard(
        status=status,
        severity=severity,
        immediate_fix_possible=immediate,
        deadline_at=datetime.now(UTC),
        tenant_id=uuid.uuid4(),
    )


FULL = {"reason": "换了新的灭火器", "evidence_ids": ["e1"]}

# (status, action, severity, actor, kwargs) → resulting status, for every allowed transition.
ALLOWED = [
    (S.OPEN, Action.START, Severity.GENERAL, "staff", {}, S.IN_RECTIFICATION),
    (S.OPEN, Action.START, Severity.MAJOR, "manager", {}, S.IN_RECTIFICATION),
    (S.IN_RECTIFICATION, Action.SUBMIT_FIX, Severity.GENERAL, "staff", FULL, S.AWAITING_VERIFICATION),
    (S.IN_RECTIFICATION, Action.SUBMIT_FIX, Severity.MAJOR, "staff", FULL, S.AWAITING_VERIFICATION),
    (S.AWAITING_VERIFICATION, Action.VERIFY, Severity.GENERAL, "manager", {}, S.CLOSED),
    (S.AWAITING_VERIFICATION, Action.VERIFY, Severity.GENERAL, "warden", {}, S.CLOSED),
    (S.AWAITING_VERIFICATION, Action.VERIFY, Severity.MAJOR, "warden", {}, S.CLOSED),
    (S.AWAITING_VERIFICATION, Action.VERIFY, Severity.MAJOR, "regulator", {}, S.CLOSED),
    (
        S.AWAITING_VERIFICATION,
        Action.REJECT,
        Severity.GENERAL,
        "manager",
        {"reason": "照片看不清"},
        S.IN_RECTIFICATION,
    ),
    (
        S.AWAITING_VERIFICATION,
        Action.REJECT,
        Severity.MAJOR,
        "regulator",
        {"reason": "仍然锁闭"},
        S.IN_RECTIFICATION,
    ),
    (S.OPEN, Action.FIX_ON_THE_SPOT, Severity.GENERAL, "staff", FULL, S.CLOSED),
    (S.OPEN, Action.FIX_ON_THE_SPOT, Severity.MAJOR, "manager", FULL, S.AWAITING_VERIFICATION),
]


@pytest.mark.parametrize(("status", "action", "severity", "actor", "kwargs", "expected"), ALLOWED)
def test_allowed_transitions(
    status: HazardStatus, action: Action, severity: Severity, actor: str, kwargs: dict, expected: HazardStatus
) -> None:
    assert check_allowed(hazard(status, severity), action, ACTORS[actor], **kwargs) == expected


ALLOWED_PAIRS = {(s, a) for s, a, *_ in ALLOWED}


REFUSED_PAIRS = [(s, a) for s in S for a in Action if (s, a) not in ALLOWED_PAIRS]


@pytest.mark.parametrize(("status", "action"), REFUSED_PAIRS)
def test_every_other_state_action_pair_is_refused(status: HazardStatus, action: Action) -> None:
    with pytest.raises(HazardRefused) as info:
        check_allowed(hazard(status), action, REGULATOR, **FULL)
    assert info.value.code == "not_allowed_in_state"


@pytest.mark.parametrize(
    ("status", "action", "severity", "actor", "kwargs", "code", "immediate"),
    [
        (
            S.AWAITING_VERIFICATION,
            Action.VERIFY,
            Severity.MAJOR,
            "manager",
            {},
            "major_needs_outside_verifier",
            True,
        ),
        (
            S.AWAITING_VERIFICATION,
            Action.REJECT,
            Severity.MAJOR,
            "manager",
            {"reason": "x"},
            "major_needs_outside_verifier",
            True,
        ),
        (S.AWAITING_VERIFICATION, Action.VERIFY, Severity.GENERAL, "staff", {}, "verifier_role", True),
        (
            S.AWAITING_VERIFICATION,
            Action.REJECT,
            Severity.GENERAL,
            "manager",
            {"reason": "  "},
            "reason_required",
            True,
        ),
        (
            S.IN_RECTIFICATION,
            Action.SUBMIT_FIX,
            Severity.GENERAL,
            "staff",
            {"evidence_ids": ["e"]},
            "describe_the_fix",
            True,
        ),
        (
            S.IN_RECTIFICATION,
            Action.SUBMIT_FIX,
            Severity.GENERAL,
            "staff",
            {"reason": "修好了"},
            "evidence_required",
            True,
        ),
        (S.OPEN, Action.FIX_ON_THE_SPOT, Severity.GENERAL, "staff", FULL, "not_fixable_on_the_spot", False),
        (
            S.OPEN,
            Action.FIX_ON_THE_SPOT,
            Severity.GENERAL,
            "staff",
            {"reason": "清走了"},
            "evidence_required",
            True,
        ),
    ],
)
def test_rule_refusals_name_the_rule(
    status: HazardStatus,
    action: Action,
    severity: Severity,
    actor: str,
    kwargs: dict,
    code: str,
    immediate: bool,
) -> None:
    h = hazard(status, severity, immediate)
    with pytest.raises(HazardRefused) as info:
        check_allowed(h, action, ACTORS[actor], **kwargs)
    assert info.value.code == code
    assert h.status is status  # a refusal changes nothing


steps = st.lists(
    st.tuples(st.sampled_from(list(Action)), st.sampled_from(list(ACTORS)), st.booleans(), st.booleans()),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(severity=st.sampled_from(list(Severity)), immediate=st.booleans(), sequence=steps)
def test_random_sequences_never_reach_an_undefined_state(
    severity: Severity, immediate: bool, sequence: list[tuple[Action, str, bool, bool]]
) -> None:
    h = hazard(S.OPEN, severity, immediate)
    closers: list[tuple[Action, str]] = []
    for action, actor, with_reason, with_evidence in sequence:
        kwargs = {"reason": "说明" if with_reason else "", "evidence_ids": ["e"] if with_evidence else []}
        before = h.status
        try:
            h.status = check_allowed(h, action, ACTORS[actor], **kwargs)
        except HazardRefused:
            assert h.status is before
            continue
        assert h.status in set(S)
        if h.status is S.CLOSED:
            closers.append((action, actor))
        assert before is not S.CLOSED  # closed is final
    if h.status is S.CLOSED:
        action, actor = closers[-1]
        if severity is Severity.MAJOR:
            assert action is Action.VERIFY and actor in ("warden", "regulator")
        else:
            assert action is Action.FIX_ON_THE_SPOT or actor in ("manager", "warden", "regulator")
