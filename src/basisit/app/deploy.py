"""Use cases plan and deploy: a Kommune's desired state from its source, through the driver.

A deploy from the request database moves the Kommune's requests along, under the Kommune's
operation lock: approved/failed -> provisioning before the update, -> configuring (or
decommissioned; failed, with the error) after it. From a file the requests stay as they are.
"""

from __future__ import annotations

import logging

from basisit import oplock
from basisit.app.sources import Source
from basisit.errors import StackLocked
from basisit.provision import operations
from basisit.provision.events import Progress
from basisit.provision.operations import DeployFailed, Result
from basisit.requests import lifecycle

log = logging.getLogger(__name__)


def plan(ags: str, source: Source, *, target: str, progress: Progress | None = None) -> Result:
    """A preview: what a deploy would create, update, delete. Changes nothing."""
    operations.check_target(target)
    return operations.plan(ags, source.desired(ags), target=target, progress=progress)


def deploy(
    ags: str,
    source: Source,
    *,
    target: str,
    actor: str,
    refresh: bool = True,
    progress: Progress | None = None,
) -> Result:
    """Deploy one Kommune; from the request database its requests move with the deploy."""
    operations.check_target(target)
    desired = source.desired(ags)  # a bad document stops here, before anything changes
    if not source.from_db:
        return operations.deploy(ags, desired, target=target, refresh=refresh, progress=progress)
    with oplock.KommuneLock(ags, "deploy") as lock:
        operations.check_previous_target(ags, target)
        request_ids = lifecycle.start_provisioning(ags, actor)
        log.info("AGS %s: requests %s -> provisioning (by %s)", ags, request_ids, actor)
        try:
            result = operations.deploy(
                ags, desired, target=target, refresh=refresh, progress=progress,
                lock=lock, request_ids=request_ids,
            )  # fmt: skip
        except (DeployFailed, StackLocked) as exc:
            if request_ids:
                reason = exc.reason if isinstance(exc, DeployFailed) else str(exc)
                lifecycle.finish_provisioning(ags, request_ids, actor, reason)
            raise
        lifecycle.finish_provisioning(ags, request_ids, actor, None)
    return result
