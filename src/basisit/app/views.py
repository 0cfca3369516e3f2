"""Read-only views the renderers show: Kommunen and requests (the CLI today, the portal next).

Each view opens one transaction and returns plain data; no view prints.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from basisit import kommunen as registry
from basisit.errors import NotFound, ValidationFailed
from basisit.requests import service as svc
from basisit.requests import workflow as wf
from basisit.store.db import session_scope
from basisit.store.models import Onboarding, Request


@dataclass(frozen=True)
class KommuneRow:
    ags: str
    name: str
    typ: str
    kreis: str
    einwohner: int
    onboarded: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def kommunen(kreis: str | None = None, onboarded: bool | None = None) -> list[KommuneRow]:
    """All 58 Kommunen, or those of a Kreis (name or Kreisschlüssel) / onboarded or not."""
    kreis = kreis.strip() if kreis is not None else None
    everyone = registry.all_kommunen()
    if kreis and not any(kreis.lower() in (k.kreis.lower(), k.kreis_schluessel) for k in everyone):
        known = sorted({k.kreis for k in everyone})
        raise NotFound(f"unknown Kreis {kreis!r} (known: {', '.join(known)})")
    with session_scope() as session:
        active = {o.ags for o in session.query(Onboarding).filter(Onboarding.active)}
    return [
        KommuneRow(k.ags, k.name, k.typ, k.kreis, k.einwohner, k.ags in active)
        for k in everyone
        if not (kreis and kreis.lower() not in (k.kreis.lower(), k.kreis_schluessel))
        and (onboarded is None or (k.ags in active) == onboarded)
    ]


def kommune(ags: str) -> dict[str, Any]:
    """One Kommune: registry data, its onboarding, the services it has."""
    k = registry.get(ags)
    with session_scope() as session:
        record = session.get(Onboarding, k.ags)
        services = {
            name: f"{inst.service_id} {inst.request.plan} ({inst.request.state})"
            for name, inst in svc.present_instances(session, k.ags).items()
        }
        data: dict[str, Any] = {
            "ags": k.ags, "name": k.name, "typ": k.typ, "kreis": k.kreis,
            "einwohner": k.einwohner, "flaeche_ha": k.flaeche_ha, "slug": k.slug,
            "onboarded": bool(record and record.active),
        }  # fmt: skip
        if record:
            data.update(
                contact_name=record.contact_name,
                contact_email=record.contact_email,
                cost_centre=record.cost_centre,
                billing_address=f"{record.street}, {record.postcode} {record.town}",
                street=record.street,
                postcode=record.postcode,
                town=record.town,
                country=record.country,
                leitweg_id=record.leitweg_id,
                onboarded_at=str(record.onboarded_at),
                offboarded_at=str(record.offboarded_at) if record.offboarded_at else None,
            )
    data["services"] = services
    return data


def request_summary(req: Request) -> dict[str, Any]:
    """A request as the lists show it."""
    return {
        "id": req.id,
        "ags": req.ags,
        "kind": req.kind,
        "instance": req.instance,
        "service": req.service_id,
        "plan": req.plan,
        "schutzbedarf": req.schutzbedarf,
        "state": req.state,
        "monthly_eur": str(req.monthly_eur) if req.monthly_eur is not None else None,
        "one_time_eur": str(req.one_time_eur) if req.one_time_eur is not None else None,
        "needs_finance": req.needs_finance,
        "approvals_missing": svc.approvals_needed(req) if req.state == "submitted" else [],
        "error": req.error,
    }


def requests(ags: str | None = None, state: str | None = None) -> list[dict[str, Any]]:
    """Requests, newest last; of one Kommune and/or in one state."""
    if ags:
        ags = registry.get(ags).ags
    if state and state not in wf.STATES:
        raise ValidationFailed(f"unknown state {state!r} (states: {', '.join(wf.STATES)})")
    with session_scope() as session:
        return [request_summary(r) for r in svc.list_requests(session, ags, state)]
