"""Errors of the configuration step; each message names the file, field or AGS at fault."""

from __future__ import annotations

from basisit.errors import BasisItError


class ConfigureError(BasisItError):
    """The configuration step cannot start or finish; nothing stored was changed."""

    exit_code = 7


class OutputsError(ConfigureError):
    """The stack-outputs file (contract 2) of a Kommune is missing or broken."""


class InventoryError(ConfigureError):
    """Stack outputs and desired state do not fit together."""
