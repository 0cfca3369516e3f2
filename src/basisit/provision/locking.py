"""Recovery of a Kommune's stack after a run was killed.

Two locks guard a stack:

1. The suite's operation lock per Kommune (basisit.oplock.KommuneLock), which every mutating
   step takes, configure included. A file that still names a holder although nobody holds
   the flock was left by a killed run: *stale*.
2. Pulumi's own lock (file backend: .pulumi/locks/.../<project>/<ags>/<uuid>.json, naming pid
   and host), taken by the CLI for the length of an update. A killed CLI leaves it behind.

Recovery, run before every operation once the suite's lock is held:
- every Pulumi lock of the stack is checked: one held by a live process on this host (or any
  process on another host) refuses the operation, naming it; one whose process is gone is
  removed with `pulumi cancel`;
- pending operations in the state (a create or delete the killed CLI started but never saw
  finish) are written to <data_dir>/provision/recovery/ and dropped from the state by
  export / import. The next deploy then refreshes the stack, and the local providers adopt
  or clean up a half-created network, volume or container by its name, so nothing recorded
  is lost and nothing unrecorded is left behind.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from basisit import paths
from basisit.errors import StackLocked
from basisit.oplock import Holder, pid_alive, this_host

ORPHAN_GRACE_S = 30


# --- Pulumi's lock and pending operations ------------------------------------------------------


@dataclass(frozen=True)
class PulumiLock:
    path: Path
    pid: int
    host: str
    timestamp: str

    @property
    def stale(self) -> bool:
        return self.host == this_host() and not pid_alive(self.pid)


def pulumi_locks(state_dir: Path, project: str, ags: str) -> list[PulumiLock]:
    found = []
    for path in sorted((state_dir / ".pulumi" / "locks").glob(f"**/{project}/{ags}/*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        found.append(
            PulumiLock(path, int(data.get("pid") or 0), str(data.get("hostname") or "?"),
                       str(data.get("timestamp") or "?"))
        )  # fmt: skip
    return found


@dataclass
class Recovery:
    """What recovery found and did, for the operator's log."""

    stale_suite_lock: Holder | None = None
    pulumi_locks_cleared: int = 0
    pending_operations: list[dict[str, Any]] | None = None
    backup: Path | None = None

    @property
    def happened(self) -> bool:
        return bool(self.stale_suite_lock or self.pulumi_locks_cleared or self.pending_operations)

    def describe(self) -> str:
        parts = []
        if self.stale_suite_lock:
            parts.append(f"stale lock of a killed {self.stale_suite_lock.describe()}")
        if self.pulumi_locks_cleared:
            parts.append(f"{self.pulumi_locks_cleared} stale Pulumi lock(s) cancelled")
        if self.pending_operations:
            ops = ", ".join(
                f"{p.get('type')} {p.get('resource', {}).get('urn', '?').rsplit('::', 1)[-1]}"
                for p in self.pending_operations
            )
            parts.append(f"pending operations dropped ({ops}; saved in {self.backup})")
        return "; ".join(parts) or "nothing to recover"


def recover(stack: Any, state_dir: Path, project: str, ags: str, stale: Holder | None) -> Recovery:
    """Clear what a killed run left: Pulumi's lock and pending operations (see module doc)."""
    result = Recovery(stale_suite_lock=stale)
    locks = pulumi_locks(state_dir, project, ags)
    # The suite's own lock is ours, so a live holder of Pulumi's lock is a CLI whose driver
    # was killed (it notices and ends within seconds) or someone running `pulumi` by hand.
    deadline = time.monotonic() + ORPHAN_GRACE_S
    while any(not lk.stale and lk.host == this_host() for lk in locks):
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
        locks = pulumi_locks(state_dir, project, ags)
    for lock in locks:
        if not lock.stale:
            where = "a live process" if lock.host == this_host() else "another machine"
            raise StackLocked(
                f"AGS {ags}: Pulumi's lock is held by pid {lock.pid} on {lock.host} since "
                f"{lock.timestamp} ({where}, lock file {lock.path}); wait for it to finish"
            )
    if locks:
        try:
            stack.cancel()
        except Exception:
            for lock in locks:  # cancel refused: the locks are ours to remove, their owner died
                lock.path.unlink(missing_ok=True)
                Path(f"{lock.path}.attrs").unlink(missing_ok=True)
        result.pulumi_locks_cleared = len(locks)
    if stale is None and not locks:
        return result
    state = stack.export_stack()
    pending = list((state.deployment or {}).get("pending_operations") or [])
    if pending:
        recovery_dir = paths.data_dir() / "provision" / "recovery"
        recovery_dir.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        backup = recovery_dir / f"{ags}-{stamp}.json"
        # The export keeps secrets encrypted (ciphertext only), like the state file itself.
        fd = os.open(backup, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"version": state.version, "deployment": state.deployment}, fh)
        from pulumi import automation as auto

        cleaned = {**state.deployment, "pending_operations": []}
        stack.import_stack(auto.Deployment(version=state.version, deployment=cleaned))
        result.pending_operations = pending
        result.backup = backup
    return result
