"""Use case configure: the driver (basisit.configure.apply), then the requests move.

From the request database the Kommune's requests in configuring (or failed, a retry) turn
active when every host they need succeeded, else failed with the first error; from a file
they stay as they are. A canceled run (Interrupted) moves nothing.
"""

from __future__ import annotations

from pathlib import Path

from basisit.app import records
from basisit.app.sources import Source
from basisit.configure import apply
from basisit.configure.apply import ConfigureOutcome
from basisit.configure.connection import Mode
from basisit.configure.events import Reporter, ignore
from basisit.requests import lifecycle


def configure(
    ags: str,
    *,
    actor: str,
    source: Source | None = None,
    mode: Mode = Mode.fast,
    report: Reporter = ignore,
    forks: int | None = None,
    time_server: str | None = None,
    playbook: Path | None = None,
) -> ConfigureOutcome:
    """Configure one Kommune; its desired state from `source` (default: the request database)."""
    source = source or Source(None)
    outcome = apply.configure(
        ags,
        actor=actor,
        mode=mode,
        desired=source.desired(ags),
        report=report,
        forks=forks,
        time_server=time_server,
        playbook=playbook,
    )
    if source.from_db and outcome.requests:
        lifecycle.finish_configuring(ags, outcome.requests, actor)
    records.configuration_run(ags, actor, outcome)
    return outcome
