"""What people do with requests: create, submit, approve, reject, withdraw.

Every function works inside the caller's session (one transaction): when it raises, the caller's
session_scope rolls everything back, so nothing is half-written.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from basisit import kommunen
from basisit.catalog import parameters as params
from basisit.catalog.models import Catalog, Plan, Service
from basisit.errors import NotFound, TransitionNotAllowed, ValidationFailed
from basisit.requests import rules
from basisit.requests import workflow as wf
from basisit.requests.pricing import Quote, quote
from basisit.store.models import Approval, AuditEvent, Onboarding, Request

INSTANCE_NAME = re.compile(r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$")
ROLES = ("ops", "finance")


ACTOR_MAX = 100  # the width of the actor columns


def actor_name(explicit: str | None = None) -> str:
    name = (explicit or "").strip() or os.environ.get("BASISIT_ACTOR") or getpass.getuser()
    if len(name) > ACTOR_MAX:
        raise ValidationFailed(f"actor name is longer than {ACTOR_MAX} characters: {name[:40]!r}…")
    return name


# --- Onboarding -------------------------------------------------------------------------------


def onboarding(session: Session, ags: str) -> Onboarding | None:
    return session.get(Onboarding, ags)


def require_onboarded(session: Session, ags: str) -> Onboarding:
    """The Kommune's onboarding record; its `ags` is the canonical AGS (input may be padded)."""
    ags = kommunen.get(ags).ags  # unknown AGS -> NotFound naming it
    record = session.get(Onboarding, ags)
    if record is None or not record.active:
        # Not allowed in this state (exit 5): the same command works once it is onboarded.
        raise TransitionNotAllowed(
            f"Kommune {ags} is not onboarded: onboard it first (basisit kommunen onboard)"
        )
    return record


def _check_level(service: Service, level: str | None) -> None:
    if level is not None and level not in service.schutzbedarf:
        raise ValidationFailed(
            f"Schutzbedarf {level!r} is not offered for {service.id} "
            f"(offered: {', '.join(service.schutzbedarf)})"
        )


# --- Instances: what a Kommune has, derived from its requests ---------------------------------


@dataclass(frozen=True)
class Instance:
    name: str
    service_id: str
    request: Request  # the latest decided create/change request: its plan and parameters count

    @property
    def schutzbedarf(self) -> str:
        return self.request.schutzbedarf


def _requests_of(session: Session, ags: str) -> list[Request]:
    return list(session.scalars(select(Request).where(Request.ags == ags).order_by(Request.id)))


def _latest_decided(session: Session, ags: str) -> dict[str, Request]:
    """Per instance, its newest request that was decided (approved or further)."""
    latest: dict[str, Request] = {}
    for req in _requests_of(session, ags):
        if req.state in wf.EFFECTIVE or req.state in (wf.DECOMMISSIONING, wf.DECOMMISSIONED):
            latest[req.instance] = req
    return latest


def present_instances(session: Session, ags: str) -> dict[str, Instance]:
    """Instances the Kommune has or is getting: the contents of its desired state."""
    return {
        name: Instance(name, req.service_id, req)
        for name, req in _latest_decided(session, ags).items()
        if req.kind != "decommission"
    }


def open_request_for(session: Session, ags: str, instance: str) -> Request | None:
    return session.scalars(
        select(Request).where(
            Request.ags == ags, Request.instance == instance, Request.state.in_(wf.OPEN)
        )
    ).first()


def _removing(session: Session, ags: str) -> set[str]:
    """Instances whose decommissioning is decided but not finished."""
    return {
        name
        for name, req in _latest_decided(session, ags).items()
        if req.kind == "decommission" and req.state != wf.DECOMMISSIONED
    }


# --- Creating requests ------------------------------------------------------------------------


def _service(catalog: Catalog, service_id: str) -> Service:
    service = catalog.service(service_id)
    if service is None:
        raise NotFound(
            f"unknown service {service_id!r} (catalog has: {', '.join(sorted(catalog.services))})"
        )
    if not service.requestable:
        raise ValidationFailed(f"service {service_id!r} cannot be requested: every server has it")
    return service


def _plan(service: Service, plan_id: str) -> Plan:
    plan = service.plan(plan_id)
    if plan is None:
        raise NotFound(
            f"service {service.id!r} has no plan {plan_id!r} "
            f"(plans: {', '.join(p.id for p in service.plans)})"
        )
    return plan


def _checked_parameters(service: Service, plan: Plan, given: dict[str, Any]) -> dict[str, Any]:
    """The given values in their types; an early error if any is unknown or out of range."""
    typed = {
        name: params.coerce(service.parameters[name], value)
        if name in service.parameters
        and isinstance(value, str)
        and service.parameters[name].type != "string"
        else value
        for name, value in given.items()
    }
    _, problems = params.resolve(service, plan, typed)
    if problems:
        raise ValidationFailed(f"parameters do not fit {service.id} plan {plan.id}", problems)
    return typed


def _free_instance_name(session: Session, ags: str, service_id: str) -> str:
    taken = {r.instance for r in _requests_of(session, ags)}
    name, n = service_id, 1
    while name in taken:
        n += 1
        name = f"{service_id}-{n}"
    return name


def _audit(session: Session, req: Request, actor: str, action: str, reason: str | None) -> None:
    session.add(
        AuditEvent(
            actor=actor, ags=req.ags, request_id=req.id, action=action, to_state=req.state,
            reason=reason,
        )
    )  # fmt: skip


def _add_draft(session: Session, actor: str, reason: str | None, **fields: Any) -> Request:
    """Store a new draft request and its audit entry."""
    req = Request(state=wf.DRAFT, created_by=actor, **fields)
    session.add(req)
    session.flush()
    _audit(session, req, actor, "create", reason)
    return req


def create(
    session: Session,
    catalog: Catalog,
    *,
    ags: str,
    service_id: str,
    plan: str,
    parameters: dict[str, Any] | None = None,
    instance: str | None = None,
    schutzbedarf: str | None = None,
    actor: str,
) -> Request:
    """A draft request for a new service instance."""
    ags = require_onboarded(session, ags).ags
    service = _service(catalog, service_id)
    _check_level(service, schutzbedarf or None)
    typed = _checked_parameters(service, _plan(service, plan), parameters or {})
    name = instance or _free_instance_name(session, ags, service_id)
    if not INSTANCE_NAME.match(name):
        raise ValidationFailed(
            f"instance name {name!r} is not a DNS label (a-z, 0-9, '-', at most 32 characters)"
        )
    if name in present_instances(session, ags) or name in _removing(session, ags):
        raise TransitionNotAllowed(
            f"Kommune {ags} already has an instance {name!r}; use a change request"
        )
    if open_request_for(session, ags, name):
        raise TransitionNotAllowed(
            f"Kommune {ags} already has an open request for instance {name!r}"
        )
    return _add_draft(
        session,
        actor,
        None,
        kind="create",
        ags=ags,
        instance=name,
        service_id=service.id,
        service_version=service.version,
        plan=plan,
        parameters=typed,
        schutzbedarf=schutzbedarf or service.default_schutzbedarf,
    )


def _present(session: Session, ags: str, instance: str) -> Instance:
    found = present_instances(session, ags).get(instance)
    if found is None:
        raise NotFound(f"Kommune {ags} has no instance {instance!r} to change or decommission")
    if open_request_for(session, ags, instance):
        raise TransitionNotAllowed(
            f"instance {instance!r} of Kommune {ags} already has an open request"
        )
    return found


def change(
    session: Session,
    catalog: Catalog,
    *,
    ags: str,
    instance: str,
    plan: str | None = None,
    parameters: dict[str, Any] | None = None,
    schutzbedarf: str | None = None,
    actor: str,
) -> Request:
    """A draft request that changes plan, parameters or Schutzbedarf of a present instance."""
    ags = require_onboarded(session, ags).ags
    current = _present(session, ags, instance).request
    service = _service(catalog, current.service_id)
    _check_level(service, schutzbedarf or None)
    new_plan = plan or current.plan
    merged = _checked_parameters(
        service, _plan(service, new_plan), {**current.parameters, **(parameters or {})}
    )
    return _add_draft(
        session,
        actor,
        f"change of request {current.id}",
        kind="change",
        ags=ags,
        instance=instance,
        service_id=service.id,
        service_version=service.version,
        plan=new_plan,
        parameters=merged,
        schutzbedarf=schutzbedarf or current.schutzbedarf,
    )


def decommission(
    session: Session, catalog: Catalog, *, ags: str, instance: str, actor: str, reason: str | None
) -> Request:
    """A draft request that takes a present instance down."""
    ags = require_onboarded(session, ags).ags
    current = _present(session, ags, instance).request
    return _add_draft(
        session,
        actor,
        reason,
        kind="decommission",
        ags=ags,
        instance=instance,
        service_id=current.service_id,
        service_version=current.service_version,
        plan=current.plan,
        parameters=dict(current.parameters),
        schutzbedarf=current.schutzbedarf,
    )


# --- Submitting: check against the catalog, price ---------------------------------------------


ID_MAX = 2**31 - 1  # the id column is a 32-bit integer on PostgreSQL


def get(session: Session, request_id: int) -> Request:
    if not 1 <= request_id <= ID_MAX:
        raise NotFound(f"no request {request_id}")
    req = session.get(Request, request_id)
    if req is None:
        raise NotFound(f"no request {request_id}")
    return req


def _landscape(
    session: Session, ags: str, batch: Iterable[Request], without: int | None = None
) -> dict[str, rules.Planned]:
    """Present instances, plus submitted requests, plus this batch; minus what is removed.

    `without`: leave this submitted request out, as if it were rejected or withdrawn.
    """
    result = {
        name: rules.Planned(name, inst.service_id, inst.schutzbedarf)
        for name, inst in present_instances(session, ags).items()
    }
    pending = session.scalars(
        select(Request).where(Request.ags == ags, Request.state == wf.SUBMITTED)
    )
    for req in [*pending, *batch]:
        if req.id is not None and req.id == without:
            continue
        if req.kind == "decommission":
            result.pop(req.instance, None)
        else:
            result[req.instance] = rules.Planned(req.instance, req.service_id, req.schutzbedarf)
    return result


def check(
    session: Session, catalog: Catalog, req: Request, batch: list[Request], on: dt.date
) -> tuple[dict[str, Any], Quote | None, list[str]]:
    """(resolved parameters, quote, problems) for one request of a submit batch."""
    service = catalog.service(req.service_id)
    if service is None:
        return req.parameters, None, [f"service {req.service_id!r} is no longer in the catalog"]
    plan = service.plan(req.plan)
    if plan is None:
        return req.parameters, None, [f"service {service.id!r} has no plan {req.plan!r}"]
    landscape = _landscape(session, req.ags, batch)
    if req.kind == "decommission":
        return req.parameters, None, rules.check_removal(catalog, req, landscape)
    resolved, problems = params.resolve(service, plan, req.parameters)
    problems += rules.check_rules(catalog, req, landscape)
    if problems:
        return resolved, None, problems
    try:
        return resolved, quote(catalog, service, plan, resolved, on), []
    except ValidationFailed as exc:
        return resolved, None, [str(exc)]


def submit(
    session: Session, catalog: Catalog, ids: list[int], actor: str, on: dt.date
) -> list[tuple[Request, Quote | None]]:
    """Check all requests together (dependencies may be requested together) and price them.

    All or nothing: one problem anywhere and none of them is submitted.
    """
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise ValidationFailed(f"request {', '.join(map(str, twice))} given more than once")
    batch = [get(session, i) for i in ids]
    for req in batch:
        if req.state != wf.DRAFT:
            raise TransitionNotAllowed(
                f"request {req.id} is {req.state}; only drafts are submitted"
            )
    if len({r.ags for r in batch}) > 1:
        raise ValidationFailed("requests submitted together must be of the same Kommune")
    require_onboarded(session, batch[0].ags)
    problems: list[str] = []
    results: list[tuple[Request, dict[str, Any], Quote | None]] = []
    for req in batch:
        resolved, q, found = check(session, catalog, req, batch, on)
        problems += [f"request {req.id} ({req.service_id} {req.instance}): {p}" for p in found]
        results.append((req, resolved, q))
    if problems:
        raise ValidationFailed("nothing was submitted", problems)
    out: list[tuple[Request, Quote | None]] = []
    for req, resolved, q in results:
        req.parameters = resolved
        if q is not None:
            req.monthly_eur = q.monthly
            req.one_time_eur = q.one_time
            req.price_lines = [line.as_dict() for line in q.lines]
            service = catalog.services[req.service_id]
            req.needs_finance = q.monthly > catalog.finance_threshold(service)
        wf.move(session, req, wf.SUBMITTED, actor)
        out.append((req, q))
    return out


# --- Deciding ---------------------------------------------------------------------------------


def approvals_needed(req: Request) -> list[str]:
    need = ["ops", "finance"] if req.needs_finance else ["ops"]
    have = {a.role for a in req.approvals}
    return [role for role in need if role not in have]


def approve(
    session: Session,
    req: Request,
    role: str,
    actor: str,
    comment: str | None = None,
    catalog: Catalog | None = None,
) -> Request:
    if role not in ROLES:
        raise ValidationFailed(f"unknown approver role {role!r} (use one of: {', '.join(ROLES)})")
    if req.state != wf.SUBMITTED:
        raise TransitionNotAllowed(
            f"request {req.id} is {req.state}; only submitted ones are approved"
        )
    if role == "finance" and not req.needs_finance:
        raise TransitionNotAllowed(
            f"request {req.id} does not need finance approval (monthly {req.monthly_eur} EUR is "
            "within the threshold)"
        )
    if any(a.role == role for a in req.approvals):
        raise TransitionNotAllowed(f"request {req.id} already has the {role} approval")
    if any(a.actor == actor for a in req.approvals):
        raise TransitionNotAllowed(
            f"{actor} already approved request {req.id}; the second approval needs another person"
        )
    # Since the submit, a request of the same batch may have been rejected or withdrawn.
    _, _, problems = check(session, catalog or _catalog(), req, [], dt.date.today())
    if problems:
        raise ValidationFailed(f"request {req.id} cannot be approved now", problems)
    req.approvals.append(Approval(role=role, actor=actor, comment=comment))
    _audit(session, req, actor, f"approval:{role}", comment)
    if not approvals_needed(req):
        wf.move(session, req, wf.APPROVED, actor, comment)
    else:
        # Touch the row so a racing approver's version check fails instead of both passing.
        req.updated_at = dt.datetime.now(dt.UTC)
    session.flush()
    return req


def _catalog() -> Catalog:
    from basisit.catalog import load_catalog

    return load_catalog()


def _relied_on(session: Session, catalog: Catalog | None, req: Request, what: str) -> None:
    """Refuse to drop a submitted request that other requests or instances count on."""
    if req.state != wf.SUBMITTED or req.kind == "decommission":
        return
    catalog = catalog or _catalog()
    landscape = _landscape(session, req.ags, [], without=req.id)
    planned = rules.Planned(req.instance, req.service_id, req.schutzbedarf)
    problems = [
        f"then {other.name}: {p}"
        for other, p in rules.dependents_broken(catalog, planned, landscape)
    ]
    if problems:
        raise ValidationFailed(
            f"request {req.id} cannot be {what}: other requests or services of the Kommune "
            "count on it",
            problems,
        )


def reject(
    session: Session, req: Request, actor: str, reason: str, catalog: Catalog | None = None
) -> Request:
    if not reason.strip():
        raise ValidationFailed("a rejection needs a reason (--reason)")
    if req.state == wf.SUBMITTED:
        _relied_on(session, catalog, req, "rejected")
    wf.move(session, req, wf.REJECTED, actor, reason)
    session.flush()
    return req


def withdraw(
    session: Session,
    req: Request,
    actor: str,
    reason: str | None,
    catalog: Catalog | None = None,
) -> Request:
    if req.state == wf.SUBMITTED:
        _relied_on(session, catalog, req, "withdrawn")
    wf.move(session, req, wf.WITHDRAWN, actor, reason)
    session.flush()
    return req


def audit_trail(session: Session, request_id: int) -> list[AuditEvent]:
    return list(
        session.scalars(
            select(AuditEvent).where(AuditEvent.request_id == request_id).order_by(AuditEvent.id)
        )
    )


def list_requests(
    session: Session, ags: str | None = None, state: str | None = None
) -> list[Request]:
    query = select(Request).order_by(Request.id)
    if ags:
        query = query.where(Request.ags == ags)
    if state:
        query = query.where(Request.state == state)
    return list(session.scalars(query))
