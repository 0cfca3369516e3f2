"""Use case status: per Kommune its last deployment (or destroy), from the database."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select

from basisit import oplock
from basisit.store.db import session_scope
from basisit.store.models import Deployment


@dataclass(frozen=True)
class KommuneStatus:
    ags: str
    target: str | None
    last_operation: str
    finished_at: str | None
    outcome: str  # succeeded | failed | running | interrupted (killed while running)
    resource_count: int | None
    error: str | None
    last_check: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _stamp(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.replace(tzinfo=value.tzinfo or dt.UTC, microsecond=0).isoformat()


def deployments() -> list[KommuneStatus]:
    """The latest deployment or destroy of every Kommune that had one, by AGS."""
    with session_scope() as session:
        rows = session.scalars(select(Deployment).order_by(Deployment.ags, Deployment.id)).all()
    latest: dict[str, Deployment] = {}
    counts: dict[str, int | None] = {}
    for row in rows:
        latest[row.ags] = row
        if row.resource_count is not None:
            counts[row.ags] = row.resource_count
    result = []
    for ags, row in sorted(latest.items()):
        outcome = row.outcome
        if outcome == "running" and not oplock.busy(ags):
            outcome = "interrupted"
        result.append(
            KommuneStatus(
                ags=ags,
                target=row.target,
                last_operation=row.operation,
                finished_at=_stamp(row.finished_at or row.started_at),
                outcome=outcome,
                resource_count=counts.get(ags),
                error=row.error,
                last_check=row.operation,
            )
        )
    return result
