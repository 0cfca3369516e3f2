"""The ansible-runner driver: one playbook run, reported event by event, and its result.

ansible-runner writes its inventory, environment and every event (with module arguments and
results) below the private data dir. That dir lives inside the run's 0700 temp dir, which the
secrets store removes after the run; nothing secret is passed as extravars, passwords or
environment, and what the driver prints or returns is scrubbed of every known secret value.
"""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import ansible_runner

from basisit.configure.connection import Mode, ansible_env, playbooks_dir
from basisit.configure.events import EventKind, Reporter, RunEvent, ignore
from basisit.text import literal

MASK = "********"
# Ansible's own default. On the 2-core machine more forks than cores buy nothing (8 forks for
# 8 hosts were not faster than 5, bench/converge_overhead.py); --forks raises it.
DEFAULT_FORKS = 5
ERROR_CHARS = 400
STDOUT_TAIL_LINES = 30


def scrubber(secret_values: Collection[str]) -> Callable[[str], str]:
    """Replace every known secret value in a text, longest first (a key contains its lines)."""
    values = sorted({v for v in secret_values if v}, key=len, reverse=True)

    def scrub(text: str) -> str:
        for value in values:
            if value in text:
                text = text.replace(value, MASK)
        return text

    return scrub


@dataclass
class HostResult:
    host: str
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    rescued: int = 0
    ignored: int = 0
    error: str | None = None  # the first failure, "task: message"

    @property
    def status(self) -> str:
        if self.unreachable:
            return "unreachable"
        if self.failed:
            return "failed"
        return "ok"


@dataclass
class RunResult:
    ags: str
    mode: str
    status: str  # ansible-runner's: successful | failed | canceled | timeout
    rc: int
    started_at: str
    finished_at: str
    duration_s: float
    hosts: dict[str, HostResult]
    error: str | None = None  # a failure of the run as a whole (no host got that far)
    stdout_tail: str = ""
    stored_secrets: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.status == "successful" and all(h.status == "ok" for h in self.hosts.values())

    @property
    def changed(self) -> int:
        return sum(h.changed for h in self.hosts.values())

    def host_error(self, host: str) -> str | None:
        """Why a host did not finish, or None when all its roles succeeded."""
        result = self.hosts.get(host)
        if result is None:
            return self.error or f"host {host} was not part of the run"
        if result.status == "unreachable":
            return f"{host} unreachable: {result.error or 'no connection'}"
        if result.status == "failed":
            return f"{host} failed: {result.error or 'a task failed'}"
        # A run-level failure (canceled, timed out, a broken playbook) counts for every host;
        # another host's failure does not.
        return self.error

    def to_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["hosts"] = {
            name: {**asdict(h), "status": h.status} for name, h in sorted(self.hosts.items())
        }
        record["changed"] = self.changed
        record["succeeded"] = self.succeeded
        return record


class _Tracker:
    """Counts per host what the run did and reports each step as a RunEvent."""

    def __init__(
        self, ags: str, hosts: list[str], scrub: Callable[[str], str], report: Reporter
    ) -> None:
        self.ags = ags
        self.scrub = scrub
        self.report = report
        self.counts = {h: HostResult(h) for h in hosts}
        self.item_errors: dict[str, str] = {}

    def _say(self, kind: EventKind, host: str = "", task: str = "", text: str = "") -> None:
        counts = self.counts.get(host) or HostResult(host)
        self.report(
            RunEvent(
                kind=kind,
                ags=self.ags,
                host=host,
                task=literal(task),
                text=literal(text),
                ok=counts.ok,
                changed=counts.changed,
                failed=counts.failed,
                unreachable=counts.unreachable,
            )
        )

    def handle(self, event: dict[str, Any]) -> bool:
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        host = data.get("host") or ""
        task = data.get("task") or ""
        if kind == "playbook_on_play_start":
            self._say("play", text=str(data.get("play", "")))
        elif kind == "runner_on_start" and host:
            self._say("task", host, task)
        elif kind in ("runner_on_ok", "runner_on_failed", "runner_on_unreachable") and host:
            counts = self.counts.setdefault(host, HostResult(host))
            res = data.get("res") or {}
            if kind == "runner_on_ok":
                counts.ok += 1
                if res.get("changed"):
                    counts.changed += 1
                    self._say("changed", host, task)
            elif kind == "runner_on_failed" and data.get("ignore_errors"):
                counts.ignored += 1
            else:
                unreachable = kind == "runner_on_unreachable"
                message = self.scrub(_result_message(res, unreachable))[:ERROR_CHARS]
                if host in self.item_errors:
                    message = f"{message} ({self.item_errors.pop(host)})"[:ERROR_CHARS]
                if not unreachable:
                    counts.failed += 1
                else:
                    counts.unreachable += 1
                if counts.error is None:
                    counts.error = f"{task}: {message}" if task else message
                self._say("unreachable" if unreachable else "failed", host, task, message)
            self._say("task", host, task)
        elif kind == "runner_item_on_failed" and host:
            # A loop's task fails with "One or more items failed"; the item says why.
            res = data.get("res") or {}
            item = res.get("item", res.get("_ansible_item_label", ""))
            message = self.scrub(_result_message(res))[:ERROR_CHARS]
            self.item_errors.setdefault(host, f"item {item}: {message}")
        elif kind == "runner_on_skipped" and host:
            self.counts.setdefault(host, HostResult(host)).skipped += 1
        return True  # ansible-runner drops events whose handler does not return True


def _result_message(res: dict[str, Any], unreachable: bool = False) -> str:
    if res.get("censored"):
        if unreachable:
            return "cannot connect (the task's no_log hides the details)"
        return "the task failed; its no_log hides the details"
    parts = [" ".join(str(res[key]).split()) for key in ("msg", "stderr") if res.get(key)]
    if parts:
        # e.g. "failed to validate: <what the validate command printed>"
        return ": ".join(parts)
    if res.get("reason"):
        return " ".join(str(res["reason"]).split())
    if res.get("rc") not in (None, 0):
        return f"exit code {res['rc']}"
    return "failed"


def _stats_from_event(stats: dict[str, Any], hosts: list[str]) -> dict[str, HostResult]:
    keys = {
        "ok": "ok",
        "changed": "changed",
        "failures": "failed",
        "dark": "unreachable",
        "skipped": "skipped",
        "rescued": "rescued",
        "ignored": "ignored",
    }
    seen = set(hosts)
    for key in keys:
        seen.update((stats.get(key) or {}).keys())
    results = {}
    for host in sorted(seen):
        result = HostResult(host)
        for key, attr in keys.items():
            setattr(result, attr, int((stats.get(key) or {}).get(host, 0)))
        results[host] = result
    return results


def _close_control_masters(control_dir: Path) -> None:
    """ControlPersist keeps ssh masters alive after the run; end ours before the dir goes."""
    if not control_dir.is_dir():
        return
    for sock in control_dir.iterdir():
        subprocess.run(
            ["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "basisit-control-master"],
            capture_output=True,
            timeout=10,
            check=False,
        )


class _Cancel:
    """Ctrl-C / SIGTERM ask ansible-runner to stop the run cleanly instead of killing us."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        self.event.set()

    def __enter__(self) -> _Cancel:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def requested(self) -> bool:
        return self.event.is_set()


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_playbook(
    inventory: dict[str, Any],
    private_root: Path,
    *,
    ags: str,
    mode: Mode = Mode.fast,
    playbook: Path | None = None,
    secret_values: Collection[str] = (),
    report: Reporter = ignore,
    forks: int | None = None,
    limit: str | None = None,
    timeout: int | None = 3600,
) -> RunResult:
    """Run the playbook (default playbooks/site.yml) against the inventory; never raises for
    failed or unreachable hosts, they are in the result. private_root must be a private (0700)
    directory that the caller removes afterwards: runner's data dir is created inside it."""
    scrub = scrubber(secret_values)
    playbook = playbook or playbooks_dir() / "site.yml"
    hosts = list(inventory["all"]["hosts"])
    env = ansible_env(mode, private_root)
    (private_root / "ansible-tmp").mkdir(mode=0o700, exist_ok=True)
    data_dir = private_root / "runner"
    data_dir.mkdir(mode=0o700, exist_ok=True)

    started_at, t0 = _now(), time.monotonic()
    progress = _Tracker(ags, hosts, scrub, report)
    stats_event: dict[str, Any] = {}

    def on_event(event: dict[str, Any]) -> bool:
        if event.get("event") == "playbook_on_stats":
            stats_event.update(event.get("event_data") or {})
        return progress.handle(event)

    try:
        with _Cancel() as cancel:
            runner = ansible_runner.run(
                private_data_dir=str(data_dir),
                project_dir=str(playbook.parent),
                playbook=str(playbook),
                inventory=inventory,
                envvars=env,
                suppress_env_files=True,
                quiet=True,
                ident="run",
                forks=forks or max(1, min(len(hosts), DEFAULT_FORKS)),
                limit=limit,
                timeout=timeout,
                event_handler=on_event,
                cancel_callback=cancel.requested,
            )
            status, rc = runner.status, int(runner.rc if runner.rc is not None else -1)
            stats = stats_event or (runner.stats or {})
            stdout_file = data_dir / "artifacts" / "run" / "stdout"
            stdout = stdout_file.read_text(errors="replace") if stdout_file.is_file() else ""
    finally:
        _close_control_masters(private_root / "cp")

    results = _stats_from_event(stats, hosts)
    for host, counted in progress.counts.items():
        if host in results:
            results[host].error = counted.error
    tail = scrub("\n".join(stdout.rstrip().splitlines()[-STDOUT_TAIL_LINES:]))
    error = None
    if status == "canceled":
        error = "run canceled (Ctrl-C or SIGTERM)"
    elif status == "timeout":
        error = f"run timed out after {timeout} s"
    elif rc != 0 and not any(r.status != "ok" for r in results.values()):
        # No host failed, yet ansible-playbook did: a syntax or inventory error, a missing role.
        last = [ln for ln in tail.splitlines() if ln.strip()]
        error = f"ansible-playbook exited with {rc}: " + (last[-1] if last else "no output")
        error = error[:ERROR_CHARS]
    return RunResult(
        ags=ags,
        mode=str(mode),
        status=status,
        rc=rc,
        started_at=started_at,
        finished_at=_now(),
        duration_s=round(time.monotonic() - t0, 2),
        hosts=results,
        error=error,
        stdout_tail=tail,
    )
