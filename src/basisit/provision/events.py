"""Engine events of one Pulumi run turned into steps and progress messages."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

# (ags, kind, text); kind is "start" (a resource step began), "done", "failed" or "info"
Progress = Callable[[str, str, str], None]

NOT_COUNTED_TYPES = ("pulumi:pulumi:Stack",)
PROVIDER_TYPE = "pulumi:providers:"
CHANGING_OPS = (
    "create",
    "update",
    "delete",
    "replace",
    "create-replacement",
    "delete-replaced",
    "import",
)
_RANK = {"refresh": 0, "read": 0, "same": 1, "replace": 3}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def short_type(type_: str) -> str:
    """'pulumi-python:dynamic/basisit:PodmanServer' -> 'PodmanServer'."""
    return type_.rsplit(":", 1)[-1]


def urn_name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def _changed(md: Any, kind: str) -> list[str]:
    """Property names whose old and new `kind` ("inputs"/"outputs") differ."""
    old = dict(getattr(md.old, kind, None) or {})
    new = dict(getattr(md.new, kind, None) or {})
    keys = sorted(set(old) | set(new))
    return [k for k in keys if not k.startswith("__") and old.get(k) != new.get(k)]


@dataclass
class Step:
    op: str
    type: str
    name: str
    urn: str
    diffs: list[str] = field(default_factory=list)
    status: str = "planned"  # planned | done | failed
    seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def counted(self) -> bool:
        return self.type not in NOT_COUNTED_TYPES and not self.type.startswith(PROVIDER_TYPE)


@dataclass
class Collector:
    """Callable for `on_event`: remembers the steps and error diagnostics, reports progress."""

    ags: str
    progress: Progress | None = None
    steps: dict[str, Step] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    _started: dict[str, float] = field(default_factory=dict)

    def _say(self, kind: str, text: str) -> None:
        if self.progress is not None:
            self.progress(self.ags, kind, text)

    def __call__(self, event: Any) -> None:
        if event.resource_pre_event is not None:
            md = event.resource_pre_event.metadata
            op = str(getattr(md.op, "value", md.op))
            diffs = list(md.diffs or md.keys or [])
            if not diffs and op in ("update", "replace"):
                diffs = _changed(md, "inputs")
            step = Step(op, md.type, urn_name(md.urn), md.urn, diffs)
            # A replacement (or a refresh before an update) shows up as several steps of one
            # URN; keep the most telling one.
            known = self.steps.get(md.urn)
            if known is None or _RANK.get(op, 1) >= _RANK.get(known.op, 1):
                self.steps[md.urn] = step
            self._started[md.urn] = time.monotonic()
            if op in CHANGING_OPS and step.counted:
                self._say("start", f"{op} {short_type(md.type)} {step.name}")
        elif event.res_outputs_event is not None:
            md = event.res_outputs_event.metadata
            done = self.steps.get(md.urn)
            if done is not None:
                step = done
                step.status = "done"
                started = self._started.get(md.urn)
                if started is not None:
                    step.seconds = round(time.monotonic() - started, 1)
                op = str(getattr(md.op, "value", md.op))
                if step.op in ("refresh", "read"):
                    # A refresh announces "refresh" and reports what it found when done:
                    # same, update (changed outside Pulumi) or delete (gone).
                    step.op = op
                    step.diffs = list(md.diffs or []) or _changed(md, "outputs")
                if op in CHANGING_OPS and step.counted:
                    self._say("done", f"{op} {short_type(md.type)} {step.name} ({step.seconds}s)")
        elif event.res_op_failed_event is not None:
            md = event.res_op_failed_event.metadata
            failed = self.steps.get(md.urn)
            if failed is not None:
                failed.status = "failed"
            self._say("failed", f"{short_type(md.type)} {urn_name(md.urn)} failed")
        elif event.diagnostic_event is not None:
            diag = event.diagnostic_event
            if diag.severity == "error":
                text = _ANSI.sub("", diag.message).strip()
                if text and text not in self.errors:
                    self.errors.append(text)

    def counts(self) -> dict[str, int]:
        """Resources per operation; the stack itself and providers are not counted."""
        counts: dict[str, int] = {}
        for step in self.steps.values():
            if step.counted:
                counts[step.op] = counts.get(step.op, 0) + 1
        return counts

    def changed(self) -> list[Step]:
        return [s for s in self.steps.values() if s.op != "same" and s.counted]

    def resource_count(self) -> int:
        """Resources of the stack after the run (the stack itself and providers not counted)."""
        return sum(
            1
            for s in self.steps.values()
            if s.counted and s.op not in ("delete", "delete-replaced", "discard")
        )
