"""Errors the CLI turns into a clear message and a non-zero exit code."""

from __future__ import annotations


class BasisItError(Exception):
    """A problem the user can fix; the message names it."""

    exit_code = 1


class NotFound(BasisItError):
    exit_code = 3


class ValidationFailed(BasisItError):
    """Input that breaks a rule; `problems` lists every one, not just the first."""

    exit_code = 4

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = problems or []
        detail = "".join(f"\n  - {p}" for p in self.problems)
        super().__init__(message + detail)


class TransitionNotAllowed(BasisItError):
    exit_code = 5


class Conflict(BasisItError):
    """Someone else changed the same thing at the same time."""

    exit_code = 6


class PrerequisiteMissing(BasisItError):
    """The machine lacks something the suite runs on (`basisit doctor` names it and its fix).

    8, because 7 is a failed configuration run (configure.errors.ConfigureError)."""

    exit_code = 8


class DatabaseUnavailable(BasisItError):
    """The request database cannot be opened, reached, written or migrated right now (held by
    another command, read-only, server down, unusable URL); nothing was stored.

    9, because 8 is a missing prerequisite (PrerequisiteMissing)."""

    exit_code = 9


class StackLocked(Conflict):
    """Another operation on the same Kommune is running (deploy, configure, destroy, ...)."""
