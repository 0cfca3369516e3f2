"""Preflight (`basisit doctor`): does this machine have what the suite runs on?

Every check uses the thing it checks (podman starts a container, a loop device is attached,
the Pulumi CLI reports its version) instead of looking for a file, because a file can be there
while the program behind it cannot run: podman was installed on a fresh machine, but its
network backend found no `iptables` and every container start failed.
"""

from __future__ import annotations

from basisit.preflight.model import CheckResult, Report
from basisit.preflight.runner import CHECKS, run_checks

__all__ = ["CHECKS", "CheckResult", "Report", "run_checks"]
