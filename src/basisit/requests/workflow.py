"""The request state machine: which transitions exist and who may make them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from basisit.errors import TransitionNotAllowed
from basisit.store.models import AuditEvent, Request

DRAFT = "draft"
SUBMITTED = "submitted"
APPROVED = "approved"
REJECTED = "rejected"
WITHDRAWN = "withdrawn"
PROVISIONING = "provisioning"
CONFIGURING = "configuring"
ACTIVE = "active"
FAILED = "failed"
DECOMMISSIONING = "decommissioning"
DECOMMISSIONED = "decommissioned"

STATES = (
    DRAFT, SUBMITTED, APPROVED, REJECTED, WITHDRAWN, PROVISIONING, CONFIGURING, ACTIVE, FAILED,
    DECOMMISSIONING, DECOMMISSIONED,
)  # fmt: skip
FINAL = frozenset({REJECTED, WITHDRAWN, DECOMMISSIONED})
# Requests that are decided but whose effect is not (or not yet) undone.
EFFECTIVE = frozenset({APPROVED, PROVISIONING, CONFIGURING, FAILED, ACTIVE})
OPEN = frozenset({DRAFT, SUBMITTED})


@dataclass(frozen=True)
class Transition:
    source: str
    target: str
    by_system: bool  # only the suite's own steps (deploy, configure) may make it
    kinds: frozenset[str] = frozenset({"create", "change", "decommission"})


_BUILD = frozenset({"create", "change"})
_REMOVE = frozenset({"decommission"})

TRANSITIONS: tuple[Transition, ...] = (
    Transition(DRAFT, SUBMITTED, False),
    Transition(DRAFT, WITHDRAWN, False),
    Transition(SUBMITTED, APPROVED, False),
    Transition(SUBMITTED, REJECTED, False),
    Transition(SUBMITTED, WITHDRAWN, False),
    Transition(APPROVED, PROVISIONING, True, _BUILD),
    Transition(APPROVED, DECOMMISSIONING, True, _REMOVE),
    Transition(PROVISIONING, CONFIGURING, True, _BUILD),
    Transition(PROVISIONING, FAILED, True, _BUILD),
    Transition(CONFIGURING, ACTIVE, True, _BUILD),
    Transition(CONFIGURING, FAILED, True, _BUILD),
    Transition(FAILED, PROVISIONING, True, _BUILD),
    Transition(FAILED, CONFIGURING, True, _BUILD),
    Transition(DECOMMISSIONING, DECOMMISSIONED, True, _REMOVE),
    Transition(DECOMMISSIONING, FAILED, True, _REMOVE),
    Transition(FAILED, DECOMMISSIONING, True, _REMOVE),
)


def find(source: str, target: str, kind: str) -> Transition | None:
    return next(
        (t for t in TRANSITIONS if t.source == source and t.target == target and kind in t.kinds),
        None,
    )


def move(
    session: Session,
    request: Request,
    target: str,
    actor: str,
    reason: str | None = None,
    *,
    by_system: bool = False,
) -> None:
    """Change the request's state and record it in the audit log, or refuse."""
    transition = find(request.state, target, request.kind)
    if transition is None:
        allowed = sorted(
            {t.target for t in TRANSITIONS if t.source == request.state and request.kind in t.kinds}
        )
        raise TransitionNotAllowed(
            f"request {request.id} is {request.state}; it cannot become {target} "
            f"(possible: {', '.join(allowed) or 'nothing, it is final'})"
        )
    if transition.by_system and not by_system:
        raise TransitionNotAllowed(
            f"request {request.id}: {request.state} -> {target} is made by the suite's deploy "
            "and configure steps, not by hand"
        )
    session.add(
        AuditEvent(
            actor=actor,
            ags=request.ags,
            request_id=request.id,
            action="transition",
            from_state=request.state,
            to_state=target,
            reason=reason,
        )
    )
    request.state = target
    if target == FAILED:
        request.error = reason
    elif target in (PROVISIONING, CONFIGURING, ACTIVE, DECOMMISSIONING, DECOMMISSIONED):
        request.error = None
