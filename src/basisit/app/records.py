"""The operational records (deployments, configuration runs) the use cases write.

Rows of the request database (migration 0002), so `basisit status` and the portal read them
in one transaction. A deployment row is written when the operation starts (outcome running)
and finished when it ends; a row still running whose Kommune lock is free belongs to a run
that was killed.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from typing import Any

from basisit.configure.apply import ConfigureOutcome
from basisit.oplock import this_host
from basisit.provision.operations import Result
from basisit.store.db import session_scope
from basisit.store.models import ConfigurationRun, Deployment, utcnow


def start_deployment(
    ags: str, operation: str, target: str | None, actor: str | None, request_ids: Sequence[int]
) -> int:
    with session_scope() as session:
        row = Deployment(
            ags=ags,
            operation=operation,
            target=target,
            actor=actor,
            outcome="running",
            request_ids=list(request_ids),
            changes={},
            pid=os.getpid(),
            host=this_host(),
        )
        session.add(row)
        session.flush()
        return row.id


def finish_deployment(
    row_id: int, *, result: Result | None = None, error: str | None = None
) -> None:
    with session_scope() as session:
        row = session.get(Deployment, row_id)
        if row is None:
            return
        row.finished_at = utcnow()
        row.outcome = "succeeded" if result is not None and error is None else "failed"
        row.error = error
        if result is not None:
            row.changes = dict(result.changes)
            row.resource_count = result.resource_count
            row.duration_s = round(result.duration_s, 2)
        else:
            started = row.started_at.replace(tzinfo=row.started_at.tzinfo or dt.UTC)
            row.duration_s = round((utcnow() - started).total_seconds(), 2)


def configuration_run(ags: str, actor: str, outcome: ConfigureOutcome) -> int:
    result = outcome.result
    hosts: dict[str, Any] = {h: r.status for h, r in sorted(result.hosts.items())}
    with session_scope() as session:
        row = ConfigurationRun(
            ags=ags,
            actor=actor,
            mode=str(result.mode),
            status=result.status,
            succeeded=result.succeeded,
            changed=result.changed,
            duration_s=round(result.duration_s, 2),
            hosts=hosts,
            requests={str(k): v for k, v in sorted(outcome.requests.items())},
            error=result.error,
            record_file=str(outcome.record),
        )
        session.add(row)
        session.flush()
        return row.id
