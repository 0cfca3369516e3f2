"""Use cases `basisit monitoring up | down | status | config`, and the deploy's file_sd hook.

`up` renders the Prometheus configuration, brings the file_sd folder in line with the stack
outputs, and starts what is not running yet: the exporter first (Prometheus scrapes it), then
Prometheus; each must answer before `up` returns. A port already taken stops `up` before
anything starts; a process that does not come up is stopped again together with whatever this
call started, so nothing is left half-started. `down` stops both.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from basisit import paths
from basisit.contracts import stack_outputs
from basisit.errors import BasisItError
from basisit.files import atomic_write
from basisit.monitoring import prometheus, targets
from basisit.monitoring.processes import Managed, StartFailed, require_free

log = logging.getLogger(__name__)
EXPORTER_READY_S = 30.0
PROMETHEUS_READY_S = 60.0


def _folder() -> Path:
    return prometheus.state_dir()


def config_file() -> Path:
    return _folder() / "prometheus.yml"


def _settings_file() -> Path:
    return _folder() / "settings.json"


def _prometheus() -> Managed:
    return Managed("prometheus", _folder(), marker=f"--config.file={config_file()}")


def _exporter() -> Managed:
    # The data dir in the command line tells this exporter from one of another data dir.
    return Managed("exporter", _folder(), marker=f"--data-dir={paths.data_dir()}")


def _ledger() -> Managed:
    return Managed("ledger", _folder(), marker=f"hourly --data-dir={paths.data_dir()}")


def ledger_command() -> list[str]:
    return [
        sys.executable, "-m", "basisit.cli.main", "ledger", "hourly",
        f"--data-dir={paths.data_dir()}",
    ]  # fmt: skip


def exporter_command(settings: prometheus.Settings) -> list[str]:
    return [
        sys.executable, "-m", "basisit.cli.main", "exporter",
        f"--listen={settings.exporter_address}", f"--data-dir={paths.data_dir()}",
    ]  # fmt: skip


def keep_targets(ags: str) -> str | None:
    """After a deploy: the Kommune's file_sd file from its new outputs (None when written),
    or after a destroy (no outputs any more) its removal. Never fails the deploy: a problem
    is returned as a note and logged, and `monitoring up` rewrites every file anyway."""
    try:
        path = stack_outputs.path_for(ags)
        if not path.is_file():
            targets.remove_kommune(ags)
            return None
        found = targets.write_kommune(stack_outputs.load(ags, path))
        return "; ".join(found.notes) or None
    except (BasisItError, OSError) as exc:
        log.warning("AGS %s: scrape targets not updated: %s", ags, exc)
        return f"scrape targets not updated: {exc}"


@dataclass
class Component:
    name: str
    pid: int | None
    address: str
    log: str
    state: str  # running | stopped | started | already running | stopped now | reloaded

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Report:
    components: list[Component] = field(default_factory=list)
    config: str = ""
    url: str = ""
    notes: list[str] = field(default_factory=list)
    targets: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "config": self.config,
            "components": [c.to_dict() for c in self.components],
            "targets": self.targets,
            "alerts": self.alerts,
            "notes": self.notes,
        }


def _component(managed: Managed, pid: int | None, address: str, state: str) -> Component:
    return Component(managed.name, pid, address, str(managed.log_file), state)


def _saved_settings() -> prometheus.Settings | None:
    try:
        return prometheus.Settings.from_dict(json.loads(_settings_file().read_text()))
    except (OSError, ValueError, TypeError):
        return None


def prometheus_url() -> str:
    """The suite's Prometheus for readers such as the ledger: BASISIT_PROMETHEUS_URL, else the
    one `up` started for this data dir (its saved settings), else the default settings'."""
    explicit = os.environ.get("BASISIT_PROMETHEUS_URL")
    if explicit:
        return explicit.rstrip("/")
    return (_saved_settings() or prometheus.Settings.from_env()).url


def write_config(settings: prometheus.Settings, path: Path | None = None) -> tuple[Path, bool]:
    """Render the configuration into `path` (default <data>/monitoring/prometheus.yml);
    True when its content changed."""
    path = path or config_file()
    text = prometheus.render_config(settings)
    try:
        changed = path.read_text() != text
    except OSError:
        changed = True
    if changed:
        atomic_write(path, text)
    return path, changed


def _exporter_answers(settings: prometheus.Settings) -> bool:
    try:
        url = f"http://{settings.exporter_address}/metrics"
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, ValueError):
        return False


def _storage(path: Path) -> None:
    try:
        path.mkdir(exist_ok=True)
    except OSError as exc:
        raise BasisItError(f"Prometheus' storage {path} cannot be made: {exc}") from None
    if not path.is_dir():
        raise BasisItError(f"Prometheus' storage {path} is not a directory")


def up(settings: prometheus.Settings, *, holder: Callable[[int], str] | None = None) -> Report:
    """Start what is not running; idempotent (a running component is left as it is, its
    configuration reloaded when it changed). `holder(port)` describes who holds a taken
    port (e.g. " (by nc (pid 42))") for the error."""
    folder = _folder()
    prom, expo, ledger_runner = _prometheus(), _exporter(), _ledger()
    running = {"prometheus": prom.pid(), "exporter": expo.pid()}
    saved = _saved_settings()
    notes = []
    if any(running.values()) and saved is not None and saved != settings:
        # The running processes keep their ports: a second `up` with other ports says so.
        notes.append(
            "already running with the settings of the last `up` "
            f"({json.dumps(saved.to_dict())}); `basisit monitoring down` first to change them"
        )
        settings = saved
    report = Report(url=settings.url, notes=notes)
    synced = targets.sync_all()
    report.notes.extend(synced.notes)
    for ags, problem in synced.broken.items():
        report.notes.append(f"AGS {ags}: scrape targets kept as they were: {problem}")
    config, changed = write_config(settings)
    report.config = str(config)
    wanted = {
        what: port
        for what, port in (
            ("exporter", settings.exporter_port),
            ("Prometheus", settings.prometheus_port),
        )
        if running[what.lower()] is None
    }
    require_free(wanted, holder)
    atomic_write(_settings_file(), json.dumps(settings.to_dict(), indent=2) + "\n")
    started: list[Managed] = []
    env = {**os.environ, "BASISIT_DATA_DIR": str(paths.data_dir())}
    try:
        if running["exporter"] is None:
            pid = expo.start(exporter_command(settings), env=env)
            started.append(expo)
            expo.wait_ready(pid, lambda: _exporter_answers(settings), EXPORTER_READY_S)
            running["exporter"] = pid
        if running["prometheus"] is None:
            _storage(folder / "tsdb")
            cmd = prometheus.command(settings, config, folder / "tsdb")
            pid = prom.start(cmd, env=env)
            started.append(prom)
            prom.wait_ready(pid, lambda: prometheus.ready(settings.url), PROMETHEUS_READY_S)
            running["prometheus"] = pid
        elif changed:
            prom.reload()
        if ledger_runner.pid() is None:
            ledger_runner.start(ledger_command(), env=env)
            started.append(ledger_runner)
    except (StartFailed, BasisItError, OSError):
        for component in reversed(started):
            component.stop()
        raise
    names = {m.name for m in started}
    for managed, address in (
        (expo, settings.exporter_address),
        (prom, settings.prometheus_address),
    ):
        state = "started" if managed.name in names else "already running"
        if managed is prom and managed.name not in names and changed:
            state = "already running, configuration reloaded"
        report.components.append(_component(managed, running[managed.name], address, state))
    state = "started" if ledger_runner.name in names else "already running"
    report.components.append(_component(ledger_runner, ledger_runner.pid(), "hourly import", state))
    return report


def down() -> Report:
    report = Report()
    saved = _saved_settings() or prometheus.Settings()
    report.url = saved.url
    # Prometheus first: it would only report the exporter as down in between.
    for managed, address in (
        (_ledger(), "hourly import"),
        (_prometheus(), saved.prometheus_address),
        (_exporter(), saved.exporter_address),
    ):
        pid = managed.stop()
        state = "stopped now" if pid else "was not running"
        report.components.append(
            Component(managed.name, pid, address, str(managed.log_file), state)
        )
    return report


def status() -> Report:
    saved = _saved_settings() or prometheus.Settings.from_env()
    report = Report(url=saved.url, config=str(config_file()))
    for managed, address in (
        (_exporter(), saved.exporter_address),
        (_prometheus(), saved.prometheus_address),
        (_ledger(), "hourly import"),
    ):
        pid = managed.pid()
        state = "running" if pid else "stopped"
        report.components.append(
            Component(managed.name, pid, address, str(managed.log_file), state)
        )
    if _prometheus().pid() is None:
        report.notes.append("Prometheus is not running: basisit monitoring up")
        return report
    try:
        report.targets = [
            {
                "job": t.job,
                "target": t.address,
                "ags": t.labels.get("ags", ""),
                "server": t.labels.get("server", ""),
                "health": t.health,
                "error": t.last_error,
            }
            for t in prometheus.active_targets(saved.url)
        ]
        report.alerts = [
            {"alert": a["labels"].get("alertname", ""), "labels": a["labels"]}
            for a in prometheus.firing_alerts(saved.url)
        ]
    except prometheus.PrometheusUnavailable as exc:
        report.notes.append(str(exc))
    return report
