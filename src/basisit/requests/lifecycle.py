"""The suite's own steps move requests past approved: deploy, then configure.

The use cases deploy and configure (basisit.app) call these hooks around the drivers; people
cannot make these transitions.
"""

from __future__ import annotations

from sqlalchemy import select

from basisit.requests import workflow as wf
from basisit.store.db import session_scope
from basisit.store.models import Request


def start_provisioning(ags: str, actor: str) -> list[int]:
    """Approved (and failed, for a retry) requests of the Kommune enter provisioning.

    Returns the ids moved; decommission requests enter decommissioning.
    """
    moved: list[int] = []
    with session_scope() as session:
        reqs = session.scalars(
            select(Request)
            .where(Request.ags == ags, Request.state.in_([wf.APPROVED, wf.FAILED]))
            .order_by(Request.id)
        ).all()
        latest_per_instance: dict[str, Request] = {}
        for req in reqs:
            latest_per_instance[req.instance] = req
        for req in latest_per_instance.values():
            target = wf.DECOMMISSIONING if req.kind == "decommission" else wf.PROVISIONING
            wf.move(session, req, target, actor, "deploy started", by_system=True)
            moved.append(req.id)
    return sorted(moved)


def finish_provisioning(ags: str, request_ids: list[int], actor: str, error: str | None) -> None:
    """After the deploy: on success on to configuring (or decommissioned); else failed."""
    with session_scope() as session:
        for rid in request_ids:
            req = session.get(Request, rid)
            if req is None or req.ags != ags:
                continue
            if req.state not in (wf.PROVISIONING, wf.DECOMMISSIONING):
                continue
            if error is not None:
                wf.move(session, req, wf.FAILED, actor, error, by_system=True)
            elif req.kind == "decommission":
                wf.move(session, req, wf.DECOMMISSIONED, actor, "removed", by_system=True)
            else:
                wf.move(session, req, wf.CONFIGURING, actor, "provisioned", by_system=True)


def configuring_requests(ags: str) -> dict[str, int]:
    """instance -> request id of the requests waiting for the configure step."""
    with session_scope() as session:
        reqs = session.scalars(
            select(Request).where(Request.ags == ags, Request.state == wf.CONFIGURING)
        ).all()
        return {r.instance: r.id for r in reqs}


def finish_configuring(ags: str, results: dict[int, str | None], actor: str) -> None:
    """Per request: None -> active; an error text -> failed with it."""
    with session_scope() as session:
        for rid, error in results.items():
            req = session.get(Request, rid)
            if req is None or req.ags != ags:
                continue
            if req.state == wf.FAILED and error is None:
                # A re-run of configure after a failed one: through configuring to active.
                wf.move(session, req, wf.CONFIGURING, actor, "configure re-run", by_system=True)
            if req.state != wf.CONFIGURING:
                continue
            if error is None:
                wf.move(session, req, wf.ACTIVE, actor, "configured", by_system=True)
            else:
                wf.move(session, req, wf.FAILED, actor, error, by_system=True)
