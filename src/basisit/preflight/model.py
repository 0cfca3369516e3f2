"""The result of one preflight check and of a whole run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


class CheckFailed(Exception):
    """Raised inside a check: what is missing, and the command that fixes it."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str  # what was seen (ok) or what is missing (failed)
    fix: str = ""  # the command or step that fixes it; empty when ok
    seconds: float = 0.0


@dataclass(frozen=True)
class Report:
    results: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def failed(self) -> list[CheckResult]:
        return [r for r in self.results if not r.ok]

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [asdict(r) for r in self.results]}
