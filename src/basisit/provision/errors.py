"""Errors of the provisioning step."""

from __future__ import annotations

from basisit.errors import BasisItError


class ProvisionError(BasisItError):
    """A plan, deploy, drift check or destroy that failed; the message says why."""

    exit_code = 1


class DriftFound(BasisItError):
    """The infrastructure differs from the stack's state (exit code 2, like `diff`)."""

    exit_code = 2
