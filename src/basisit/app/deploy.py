"""Use cases plan, deploy and destroy: a Kommune's desired state from its source, through the
driver.

Every deploy and destroy holds the Kommune's operation lock and is recorded as a deployment
(basisit.app.records). A deploy from the request database moves the Kommune's requests
along: approved/failed -> provisioning before the update, -> configuring (or decommissioned;
failed, with the error) after it. From a file the requests stay as they are.
"""

from __future__ import annotations

import logging

from basisit import oplock
from basisit.app import monitoring, records
from basisit.app.sources import Source, nothing_to_deploy
from basisit.errors import BasisItError, StackLocked, TransitionNotAllowed
from basisit.provision import operations
from basisit.provision.events import Progress
from basisit.provision.operations import DeployFailed, Result
from basisit.requests import lifecycle

log = logging.getLogger(__name__)


def plan(ags: str, source: Source, *, target: str, progress: Progress | None = None) -> Result:
    """A preview: what a deploy would create, update, delete. Changes nothing."""
    operations.check_target(target)
    desired = source.desired(ags)
    if (why := nothing_to_deploy(ags, desired)) is not None:
        raise TransitionNotAllowed(why)
    return operations.plan(ags, desired, target=target, progress=progress)


def deploy(
    ags: str,
    source: Source,
    *,
    target: str,
    actor: str,
    refresh: bool = True,
    progress: Progress | None = None,
) -> Result:
    """Deploy one Kommune under its lock, recorded as a deployment; from the request database
    its requests move with the deploy."""
    operations.check_target(target)
    desired = source.desired(ags)  # a bad document stops here, before anything changes
    if (why := nothing_to_deploy(ags, desired)) is not None:
        raise TransitionNotAllowed(why)
    with oplock.KommuneLock(ags, "deploy") as lock:
        operations.check_previous_target(ags, target)
        request_ids: list[int] = []
        if source.from_db:
            request_ids = lifecycle.start_provisioning(ags, actor)
            log.info("AGS %s: requests %s -> provisioning (by %s)", ags, request_ids, actor)
        row = records.start_deployment(ags, "deploy", target, actor, request_ids)
        try:
            result = operations.deploy(
                ags, desired, target=target, refresh=refresh, progress=progress,
                lock=lock, request_ids=request_ids,
            )  # fmt: skip
        except (DeployFailed, StackLocked) as exc:
            reason = exc.reason if isinstance(exc, DeployFailed) else str(exc)
            if request_ids:
                lifecycle.finish_provisioning(ags, request_ids, actor, reason)
            records.finish_deployment(row, error=reason)
            raise
        if source.from_db:
            lifecycle.finish_provisioning(ags, request_ids, actor, None)
        records.finish_deployment(row, result=result)
        _scrape_targets(ags, progress)
    return result


def destroy(ags: str, *, actor: str | None = None, progress: Progress | None = None) -> Result:
    """Remove everything of the Kommune, recorded as a deployment (operation destroy)."""
    with oplock.KommuneLock(ags, "destroy") as lock:
        row = records.start_deployment(
            ags, "destroy", operations.previous_target(ags), actor, request_ids=()
        )
        try:
            result = operations.destroy(ags, progress=progress, lock=lock)
        except BasisItError as exc:
            records.finish_deployment(row, error=str(exc))
            raise
        records.finish_deployment(row, result=result)
        _scrape_targets(ags, progress)
    return result


def _scrape_targets(ags: str, progress: Progress | None) -> None:
    """Prometheus' file_sd file of the Kommune follows its new stack outputs (or goes)."""
    note = monitoring.keep_targets(ags)
    if note and progress:
        progress(ags, "info", note)
