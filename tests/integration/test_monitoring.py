"""`basisit monitoring up | status | down` with the real Prometheus (Debian's 2.42) and the real
exporter process, and every query of the Grafana dashboard against what they collect.

Tholey's requests are in a real (SQLite) database and its contract 2 in the data dir; every
server's node exporter is stood in for by a small HTTP server on 127.0.0.1 serving the
textfile metrics the roles write, so Prometheus scrapes them through the file_sd files with
the real target labels. A 1-second scrape interval keeps the test short.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
import shutil
import socket
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import pytest
from typer.testing import CliRunner

from basisit import paths
from basisit.cli.main import app
from basisit.leitweg import make as make_leitweg
from basisit.monitoring import prometheus
from basisit.requests import lifecycle, onboarding
from basisit.requests import service as svc
from basisit.store.db import session_scope

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None, reason="prometheus is not installed (bootstrap does it)"
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DASHBOARD = paths.project_root() / "monitoring" / "dashboards" / "basisit-usage.json"
AGS = "10046118"
WAIT_S = 90.0

# instance, service, plan, parameters
INSTANCES = [
    ("dns", "dns", "zone", {}),
    ("dateiablage", "fileshare", "S", {"quota_gib": 1, "shares": ["verwaltung", "bauamt"]}),
    ("sicherung", "backup", "S", {"capacity_gib": 2}),
    ("datenbank", "database", "S", {}),
    ("verzeichnis", "directory", "S", {}),
    ("post", "mail", "S", {}),
    ("vpn", "vpn", "S", {}),
    ("web", "webhosting", "S", {}),
]


def textfiles(now: float) -> dict[str, str]:
    """What each server's roles write into node_exporter's textfile directory."""
    return {
        "dateiablage": (
            'basisit_fileshare_used_bytes{share="verwaltung"} 123456\n'
            'basisit_quota_used_bytes{resource="fileshare_volume"} 200000000\n'
            'basisit_quota_limit_bytes{resource="fileshare_volume"} 1073741824\n'
            "basisit_backup_repository_bytes 4096\n"
            f"basisit_backup_last_success_timestamp_seconds {now - 3600:.0f}\n"
        ),
        "datenbank": (
            'basisit_database_size_bytes{database="fachverfahren"} 8000000\n'
            "basisit_backup_repository_bytes 2048\n"
            f"basisit_backup_last_success_timestamp_seconds {now - 600:.0f}\n"
        ),
        "post": "basisit_mail_mailboxes 3\nbasisit_mail_storage_bytes 5000\n",
        "verzeichnis": "basisit_directory_accounts 12\n",
        "vpn": "basisit_vpn_peers 2\nbasisit_vpn_peers_connected 1\n",
        "web": 'basisit_webhosting_storage_bytes{site="www"} 7000\n',
        "dns": "node_textfile_scrape_error 0\n",
        "sicherung": "node_textfile_scrape_error 0\n",
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Textfile(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def node_exporters() -> Iterator[dict[str, int]]:
    """One stand-in node exporter per server: server name -> port."""
    servers: dict[str, ThreadingHTTPServer] = {}
    for name, text in textfiles(time.time()).items():
        handler = type(f"Textfile_{name}", (Textfile,), {"body": text.encode()})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        Thread(target=server.serve_forever, daemon=True).start()
        servers[name] = server
    try:
        yield {name: s.server_address[1] for name, s in servers.items()}
    finally:
        for server in servers.values():
            server.shutdown()
            server.server_close()


@pytest.fixture
def tholey(catalog, data_dir: Path, node_exporters: dict[str, int]) -> Path:
    """Tholey onboarded with every service, all active (the backup's configure failed),
    and its contract 2 naming the stand-in exporters."""
    with session_scope() as s:
        onboarding.onboard(
            s, ags=AGS, contact_name="Anna Muster", contact_email="it@tholey.de",
            cost_centre="KST-4711", billing_address="Im Kloster 1, 66636 Tholey",
            leitweg_id=make_leitweg(AGS), actor="test-operator",
        )  # fmt: skip
    ids = {}
    for instance, service, plan, parameters in INSTANCES:
        with session_scope() as s:
            ids[instance] = svc.create(
                s, catalog, ags=AGS, service_id=service, plan=plan, instance=instance,
                parameters=parameters or None, actor="kommune-it",
                # database and directory default to 'hoch': their backup must match
                schutzbedarf="hoch" if service == "backup" else None,
            ).id  # fmt: skip
    with session_scope() as s:
        svc.submit(s, catalog, list(ids.values()), "kommune-it", dt.date(2026, 11, 25))
    for rid in ids.values():
        with session_scope() as s:
            req = svc.get(s, rid)
            for role in svc.approvals_needed(req):
                svc.approve(s, req, role, f"{role}-1")
    moved = lifecycle.start_provisioning(AGS, "deploy")
    lifecycle.finish_provisioning(AGS, moved, "deploy", None)
    results = {rid: None for rid in ids.values()}
    results[ids["sicherung"]] = "restic failed"
    lifecycle.finish_configuring(AGS, results, "configure")

    doc = json.loads((FIXTURES / "stack-outputs-10046118.json").read_text())
    template = doc["servers"][1]
    servers = []
    for host, (instance, service, _, _) in enumerate(INSTANCES, start=10):
        server = copy.deepcopy(template)
        server.update(name=instance, instance=instance, services=[service], roles=[])
        server["address"] = f"10.24.118.{host}"
        server["metrics"] = {"address": "127.0.0.1", "port": node_exporters[instance],
                             "path": "/metrics"}  # fmt: skip
        server["published_ports"] = {"9100/tcp": node_exporters[instance]}
        if instance != "dateiablage":
            server["volumes"] = []
        servers.append(server)
    doc["servers"] = servers
    path = data_dir / "outputs" / f"{AGS}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture
def ports() -> Iterator[dict[str, int]]:
    chosen = {"prometheus": free_port(), "exporter": free_port()}
    yield chosen
    # Whatever a test did, nothing of it keeps running.
    CliRunner().invoke(app, ["monitoring", "down"])
    for port in chosen.values():
        assert _free(port), f"port {port} still held after monitoring down"


def _free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _up(ports: dict[str, int], *extra: str) -> Any:
    return CliRunner().invoke(
        app,
        [
            "monitoring", "up", "--prometheus-port", str(ports["prometheus"]),
            "--exporter-port", str(ports["exporter"]), "--scrape-interval", "1", *extra,
        ],
    )  # fmt: skip


def _pids(data_dir: Path) -> list[str]:
    return sorted(p.name for p in (data_dir / "monitoring").glob("*.pid"))


def _wait(url: str, expr: str, *, at_least: int = 1) -> list[dict[str, Any]]:
    deadline = time.monotonic() + WAIT_S
    result: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        try:
            result = prometheus.query(url, expr)
        except prometheus.PrometheusUnavailable:
            result = []
        if len(result) >= at_least:
            return result
        time.sleep(0.5)
    raise AssertionError(f"{expr}: {len(result)} series after {WAIT_S:.0f} s")


def test_up_status_down_and_what_prometheus_collects(tholey, ports, data_dir):
    first = _up(ports)
    assert first.exit_code == 0, first.output
    assert "started" in first.output
    # The hourly ledger import runs beside them, also until `down`.
    assert _pids(data_dir) == ["exporter.pid", "ledger.pid", "prometheus.pid"]
    url = f"http://127.0.0.1:{ports['prometheus']}"

    # Every server through the file_sd file deploy keeps, and the exporter, are scraped.
    assert json.loads((data_dir / "monitoring" / "targets" / f"{AGS}.json").read_text())
    up = _wait(url, 'up{job=~"node|basisit-exporter"} == 1', at_least=len(INSTANCES) + 1)
    labels = {r["metric"].get("server") for r in up if r["metric"]["job"] == "node"}
    assert labels == {i[0] for i in INSTANCES}
    share = _wait(url, 'basisit_fileshare_used_bytes{share="verwaltung"}')[0]
    assert share["metric"]["ags"] == AGS and share["metric"]["server"] == "dateiablage"
    assert share["value"][1] == "123456"
    billable = _wait(url, "basisit_instance_billable", at_least=len(INSTANCES))
    flags = {r["metric"]["server"]: r["value"][1] for r in billable}
    assert flags["dateiablage"] == "1" and flags["sicherung"] == "0"
    # The backup repository's size: summed over the Kommune's servers (4096 + 2048), once
    # both are scraped.
    backup = 'ags_catalog_service:basisit_usage_bytes:sum{usage="backup_repository"}'
    assert _wait(url, f"{backup} == 6144")[0]["metric"]["catalog_service"] == "backup"

    again = _up(ports)
    assert again.exit_code == 0, again.output
    assert again.output.count("already running") == 3  # exporter, Prometheus, hourly import

    status = CliRunner().invoke(app, ["monitoring", "status", "--format", "json"])
    assert status.exit_code == 0, status.output
    report = json.loads(status.output)
    assert [c["state"] for c in report["components"]] == ["running"] * 3
    health = {(t["job"], t["server"]): t["health"] for t in report["targets"]}
    assert health[("node", "dateiablage")] == "up"
    assert health[("basisit-exporter", "")] == "up"
    # Nothing is wrong with Tholey's fixture: no alert fires.
    assert report["alerts"] == []

    down = CliRunner().invoke(app, ["monitoring", "down"])
    assert down.exit_code == 0, down.output
    assert down.output.count("stopped now") == 3
    assert _pids(data_dir) == []
    assert _free(ports["prometheus"]) and _free(ports["exporter"])


def test_a_taken_port_is_named_and_nothing_is_started(tholey, ports, data_dir):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", ports["prometheus"]))
        holder.listen()
        result = _up(ports)
        assert result.exit_code == 6, result.output
        assert f"Prometheus port {ports['prometheus']} on 127.0.0.1 is taken" in result.output
        assert "nothing was started" in result.output
        assert _pids(data_dir) == []
        assert _free(ports["exporter"])
    # The port is free again: the same command works.
    result = _up(ports)
    assert result.exit_code == 0, result.output


def test_a_prometheus_that_does_not_start_leaves_nothing_running(tholey, ports, data_dir):
    # A damaged storage (its write-ahead log is a file): Prometheus exits at start, after the
    # exporter was started.
    wal = data_dir / "monitoring" / "tsdb" / "wal"
    wal.parent.mkdir(parents=True)
    wal.write_text("damaged")
    result = _up(ports)
    assert result.exit_code == 1, result.output
    assert "prometheus exited at start" in result.output
    assert "opening storage failed" in result.output and "prometheus.log" in result.output
    assert "a bug" not in result.output
    assert _pids(data_dir) == []
    assert _free(ports["exporter"]) and _free(ports["prometheus"])
    # Repaired, it starts.
    wal.unlink()
    result = _up(ports)
    assert result.exit_code == 0, result.output


def _substitute(expr: str, variables: dict[str, str]) -> str:
    for name, value in variables.items():
        expr = expr.replace(f"${name}", value)
    assert "$" not in expr, f"unsubstituted variable in {expr}"
    return expr


def test_every_dashboard_query_returns_data(tholey, ports):
    dashboard = json.loads(DASHBOARD.read_text())
    result = _up(ports)
    assert result.exit_code == 0, result.output
    url = f"http://127.0.0.1:{ports['prometheus']}"
    _wait(url, "ags_catalog_service:basisit_usage_count:sum", at_least=3)

    # The variables as Grafana fills them: Kreis from the info metric, then the Kommunen.
    templating = {v["name"]: v for v in dashboard["templating"]["list"]}
    kreis_query = templating["kreis"]["query"]["query"]
    metric, label = re.fullmatch(r"label_values\((.+), (\w+)\)", kreis_query).groups()
    kreise = {r["metric"][label] for r in _wait(url, metric)}
    assert kreise == {"St. Wendel"}
    variables = {"kreis": "St. Wendel"}
    kommune_query = templating["kommune"]["query"]["query"]
    inner = re.fullmatch(r"query_result\((.+)\)", kommune_query).group(1)
    rows = _wait(url, _substitute(inner, variables))
    regex = templating["kommune"]["regex"].strip("/").replace("?<", "?P<")
    rendered = [
        "{" + ",".join(f'{k}="{v}"' for k, v in sorted(r["metric"].items())) + "}" for r in rows
    ]
    matches = [re.search(regex, text) for text in rendered]
    assert [(m["value"], m["text"]) for m in matches if m] == [(AGS, "Tholey")]
    variables["kommune"] = AGS

    queries = [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]
    assert len(queries) == len(dashboard["panels"]) >= 10
    empty = []
    for title, expr in queries:
        found = prometheus.query(url, _substitute(expr, variables))
        if not found:
            # Recording rules evaluate once a second: give a late one a moment.
            found = _wait(url, _substitute(expr, variables))
        if not found:
            empty.append(title)
    assert empty == []
