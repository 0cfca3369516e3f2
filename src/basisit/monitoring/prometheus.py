"""Prometheus for the suite: its settings, its generated configuration, and its HTTP API.

The configuration is rendered from `monitoring/prometheus.yml.j2` (the project's template):
the exporter's target, every server's node exporter through the file_sd folder that deploy
keeps current, the rule files of `monitoring/rules/`, and the scrape interval. Retention is a
command-line flag, long enough for the usage ledger's import window (400 days by default).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from basisit import paths
from basisit.errors import BasisItError, PrerequisiteMissing, ValidationFailed
from basisit.monitoring import targets

DEFAULT_PROMETHEUS_PORT = 9090  # below the local target's ports (24000-30999)
DEFAULT_EXPORTER_PORT = 9464
DEFAULT_SCRAPE_INTERVAL_S = 60
DEFAULT_RETENTION = "400d"  # more than a year: the ledger can re-import any hour of it
_RETENTION = re.compile(r"^[1-9][0-9]*(h|d|w|y)$")


def monitoring_root() -> Path:
    """The project's monitoring/ folder: configuration template, rules, dashboards."""
    return paths.project_root() / "monitoring"


def rules_dir() -> Path:
    return monitoring_root() / "rules"


def state_dir() -> Path:
    """<data_dir>/monitoring: generated configuration, pid files, logs, the TSDB."""
    path = paths.data_dir() / "monitoring"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValidationFailed(f"{name}={raw!r}: expected a whole number") from None


@dataclass(frozen=True)
class Settings:
    prometheus_port: int = DEFAULT_PROMETHEUS_PORT
    exporter_port: int = DEFAULT_EXPORTER_PORT
    scrape_interval_s: int = DEFAULT_SCRAPE_INTERVAL_S
    retention: str = DEFAULT_RETENTION
    alertmanager: str | None = None  # host:port of an Alertmanager, if there is one

    @classmethod
    def from_env(
        cls,
        *,
        prometheus_port: int | None = None,
        exporter_port: int | None = None,
        scrape_interval_s: int | None = None,
        retention: str | None = None,
    ) -> Settings:
        """Explicit values win, then BASISIT_PROMETHEUS_PORT, BASISIT_EXPORTER_PORT,
        BASISIT_SCRAPE_INTERVAL (seconds), BASISIT_PROMETHEUS_RETENTION, then the defaults."""
        env = os.environ
        settings = cls(
            prometheus_port=prometheus_port
            or _env_int("BASISIT_PROMETHEUS_PORT", DEFAULT_PROMETHEUS_PORT),
            exporter_port=exporter_port or _env_int("BASISIT_EXPORTER_PORT", DEFAULT_EXPORTER_PORT),
            scrape_interval_s=scrape_interval_s
            or _env_int("BASISIT_SCRAPE_INTERVAL", DEFAULT_SCRAPE_INTERVAL_S),
            retention=retention or env.get("BASISIT_PROMETHEUS_RETENTION") or DEFAULT_RETENTION,
            alertmanager=env.get("BASISIT_ALERTMANAGER") or None,
        )
        settings.check()
        return settings

    def check(self) -> None:
        problems = []
        for what, port in (("Prometheus", self.prometheus_port), ("exporter", self.exporter_port)):
            if not 1024 <= port <= 65535:
                problems.append(f"{what} port {port}: expected 1024..65535")
        if self.prometheus_port == self.exporter_port:
            problems.append(f"Prometheus and the exporter both on port {self.exporter_port}")
        if not 1 <= self.scrape_interval_s <= 3600:
            problems.append(f"scrape interval {self.scrape_interval_s} s: expected 1..3600")
        if not _RETENTION.match(self.retention):
            problems.append(f"retention {self.retention!r}: expected e.g. 400d, 60w or 2y")
        if problems:
            raise ValidationFailed("monitoring settings are not usable", problems)

    @property
    def prometheus_address(self) -> str:
        return f"127.0.0.1:{self.prometheus_port}"

    @property
    def exporter_address(self) -> str:
        return f"127.0.0.1:{self.exporter_port}"

    @property
    def url(self) -> str:
        return f"http://{self.prometheus_address}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "prometheus_port": self.prometheus_port,
            "exporter_port": self.exporter_port,
            "scrape_interval_s": self.scrape_interval_s,
            "retention": self.retention,
            "alertmanager": self.alertmanager,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        return cls(**{k: data[k] for k in cls().to_dict() if k in data})


def render_config(settings: Settings, *, targets_folder: Path | None = None) -> str:
    """prometheus.yml for these settings (the template is monitoring/prometheus.yml.j2)."""
    template_file = monitoring_root() / "prometheus.yml.j2"
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_file.parent),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # YAML, not HTML; values go through tojson
    )
    interval = settings.scrape_interval_s
    return env.get_template(template_file.name).render(
        name="local",
        scrape_interval=f"{interval}s",
        # A scrape must end before the next one starts.
        scrape_timeout=f"{min(interval, 10)}s",
        evaluation_interval=f"{interval}s",
        rules_dir=str(rules_dir()),
        targets_dir=str(targets_folder or targets.targets_dir()),
        exporter=settings.exporter_address,
        prometheus=settings.prometheus_address,
        alertmanager=settings.alertmanager,
    )


def binary() -> str:
    found = shutil.which("prometheus")
    if not found:
        raise PrerequisiteMissing(
            "prometheus is not installed (Debian package prometheus; scripts/bootstrap.sh "
            "installs it, or: apt-get install prometheus)"
        )
    return found


def command(settings: Settings, config: Path, tsdb: Path) -> list[str]:
    return [
        binary(),
        f"--config.file={config}",
        f"--storage.tsdb.path={tsdb}",
        f"--storage.tsdb.retention.time={settings.retention}",
        f"--web.listen-address={settings.prometheus_address}",
        # Debian's console files are not needed; the API and the UI are.
        "--web.enable-lifecycle",
    ]


class PrometheusUnavailable(BasisItError):
    """Prometheus' API did not answer, or answered something that is not its API."""


def api(url: str, path: str, params: dict[str, str] | None = None, *, timeout: float = 5) -> Any:
    """GET <url>/api/v1/<path>: its `data`, or PrometheusUnavailable naming the problem."""
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    full = f"{url}/api/v1/{path}{query}"
    try:
        with urllib.request.urlopen(full, timeout=timeout) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read()).get("error", exc.reason)
        except ValueError:
            detail = exc.reason
        raise PrometheusUnavailable(f"Prometheus at {url} refused {path}: {detail}") from None
    except (OSError, ValueError) as exc:
        raise PrometheusUnavailable(f"Prometheus at {url} does not answer: {exc}") from None
    if not isinstance(body, dict) or body.get("status") != "success":
        raise PrometheusUnavailable(f"Prometheus at {url}: unexpected answer to {path}")
    return body["data"]


def ready(url: str, *, timeout: float = 2) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=timeout) as response:
            return bool(response.status == 200)
    except (OSError, ValueError):
        return False


@dataclass(frozen=True)
class Target:
    job: str
    address: str
    health: str  # up | down | unknown
    labels: dict[str, str]
    last_error: str


def active_targets(url: str) -> list[Target]:
    data = api(url, "targets", {"state": "active"})
    found = [
        Target(
            job=t["labels"].get("job", ""),
            address=t["labels"].get("instance", t.get("scrapeUrl", "")),
            health=t.get("health", "unknown"),
            labels=dict(t["labels"]),
            last_error=t.get("lastError") or "",
        )
        for t in data.get("activeTargets", [])
    ]
    return sorted(found, key=lambda t: (t.job, t.labels.get("ags", ""), t.address))


def firing_alerts(url: str) -> list[dict[str, Any]]:
    alerts = api(url, "alerts").get("alerts", [])
    return [a for a in alerts if a.get("state") == "firing"]


def query(url: str, expr: str) -> list[dict[str, Any]]:
    """An instant query's result vector (or matrix) as Prometheus returns it."""
    data = api(url, "query", {"query": expr})
    result = data.get("result", [])
    return result if isinstance(result, list) else []
