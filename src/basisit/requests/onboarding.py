"""Onboarding and offboarding: participation is voluntary and recorded."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from basisit import kommunen, leitweg
from basisit.address import Address, split
from basisit.address import problems as address_problems
from basisit.errors import TransitionNotAllowed, ValidationFailed
from basisit.requests import workflow as wf
from basisit.store.models import AuditEvent, Onboarding, Request, utcnow

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def onboard(
    session: Session,
    *,
    ags: str,
    contact_name: str,
    contact_email: str,
    cost_centre: str,
    billing_address: str | Address,
    leitweg_id: str,
    actor: str,
) -> Onboarding:
    kommune = kommunen.get(ags)
    ags = kommune.ags  # the registry's spelling, not the input's (e.g. with blanks around it)
    problems = []
    if not contact_name.strip():
        problems.append("contact name is empty")
    if not EMAIL.match(contact_email.strip()):
        problems.append(f"contact e-mail {contact_email!r} is not an address")
    if not cost_centre.strip():
        problems.append("cost centre is empty")
    for field, value, limit in (
        ("contact name", contact_name, 200),
        ("contact e-mail", contact_email, 200),
        ("cost centre", cost_centre, 50),
    ):
        if len(value.strip()) > limit:
            problems.append(f"{field} is longer than {limit} characters")
    address = billing_address if isinstance(billing_address, Address) else split(billing_address)
    if address is None:
        problems.append(
            f"billing address {billing_address!r} is not 'street and number, post code town' "
            "(e.g. 'Im Kloster 1, 66636 Tholey')"
        )
    else:
        problems.extend(address_problems(address))
    if (why := leitweg.problem(leitweg_id)) is not None:
        problems.append(why)
    if problems or address is None:  # no address is one of the problems
        raise ValidationFailed(f"cannot onboard {kommune.ags} {kommune.name}", problems)
    record = session.get(Onboarding, ags)
    if record is not None and record.active:
        raise TransitionNotAllowed(f"Kommune {ags} {kommune.name} is already onboarded")
    if record is None:
        record = Onboarding(ags=ags, onboarded_by=actor)
        session.add(record)
    record.contact_name = contact_name.strip()
    record.contact_email = contact_email.strip()
    record.cost_centre = cost_centre.strip()
    record.street, record.postcode = address.street, address.postcode
    record.town, record.country = address.town, address.country
    record.leitweg_id = leitweg_id
    record.active = True
    record.onboarded_at = utcnow()
    record.onboarded_by = actor
    record.offboarded_at = None
    record.offboarded_by = None
    session.add(AuditEvent(actor=actor, ags=ags, action="onboard"))
    session.flush()
    return record


def offboard(session: Session, *, ags: str, actor: str, reason: str | None) -> Onboarding:
    kommune = kommunen.get(ags)
    ags = kommune.ags
    record = session.get(Onboarding, ags)
    if record is None or not record.active:
        raise TransitionNotAllowed(f"Kommune {ags} {kommune.name} is not onboarded")
    # A service stays until its decommission request is through; offboarding would orphan it.
    from basisit.requests.service import present_instances

    live = present_instances(session, ags)
    open_ = session.scalars(
        select(Request).where(Request.ags == ags, Request.state.in_(wf.OPEN))
    ).all()
    if live or open_:
        names = sorted({*live, *(r.instance for r in open_)})
        raise TransitionNotAllowed(
            f"Kommune {ags} still has services or open requests ({', '.join(names)}): "
            "decommission or withdraw them first"
        )
    record.active = False
    record.offboarded_at = utcnow()
    record.offboarded_by = actor
    session.add(AuditEvent(actor=actor, ags=ags, action="offboard", reason=reason))
    session.flush()
    return record
