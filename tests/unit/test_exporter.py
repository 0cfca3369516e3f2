"""The suite's exporter: what it serves for Tholey's contracts (values checked), that a scrape
rebuilds nothing unless an input changed, that a broken outputs file is reported while the
rest is served, the billable rule on both databases, and promtool's verdict on the text."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import shutil
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from basisit.app import exporter as use_case
from basisit.catalog import load_catalog
from basisit.errors import ValidationFailed
from basisit.monitoring import exporter
from basisit.requests import lifecycle
from basisit.requests import service as svc
from basisit.store.db import session_scope

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
OUTPUTS = FIXTURES / "stack-outputs-10046118.json"
GIB = 1024**3
TODAY = dt.date(2026, 11, 25)


def samples(body: bytes) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            found[(s.name, frozenset(s.labels.items()))] = s.value
    return found


def value(found: dict, name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


def named(found: dict, name: str) -> dict[frozenset, float]:
    return {labels: v for (n, labels), v in found.items() if n == name}


def _request(catalog, service: str, plan: str, instance: str, **parameters) -> int:
    with session_scope() as s:
        rid = svc.create(
            s, catalog, ags="10046118", service_id=service, plan=plan, instance=instance,
            parameters=parameters or None, actor="kommune-it",
        ).id  # fmt: skip
    return rid


def _approve_all(catalog, ids: list[int]) -> None:
    with session_scope() as s:
        svc.submit(s, catalog, ids, "kommune-it", TODAY)
    for rid in ids:
        with session_scope() as s:
            req = svc.get(s, rid)
            for role in svc.approvals_needed(req):
                svc.approve(s, req, role, f"{role}-1")


@pytest.fixture
def tholey(catalog, onboarded, data_dir: Path) -> dict[str, int]:
    """Tholey's three instances as in the fixtures: dns and dateiablage active, sicherung's
    configuration failed; the outputs file in the data dir."""
    ids = {
        "dns": _request(catalog, "dns", "zone", "dns"),
        "dateiablage": _request(
            catalog, "fileshare", "S", "dateiablage", quota_gib=1, shares=["verwaltung", "bauamt"]
        ),
        "sicherung": _request(catalog, "backup", "S", "sicherung", capacity_gib=2),
    }
    _approve_all(catalog, list(ids.values()))
    moved = lifecycle.start_provisioning(onboarded, "deploy")
    lifecycle.finish_provisioning(onboarded, moved, "deploy", None)
    lifecycle.finish_configuring(
        onboarded,
        {ids["dns"]: None, ids["dateiablage"]: None, ids["sicherung"]: "restic failed"},
        "configure",
    )
    (data_dir / "outputs").mkdir(exist_ok=True)
    shutil.copy(OUTPUTS, data_dir / "outputs" / "10046118.json")
    return ids


def test_the_exposition_serves_what_the_contracts_say(tholey):
    found = samples(use_case.exposition().scrape())
    base = {"ags": "10046118", "catalog_service": "fileshare", "server": "dateiablage"}
    share = {**base, "plan": "S"}
    # SCS-1V-2-10s: 1 vCPU, 2 GiB memory, 10 GiB root disk; the 1 GiB share volume as built.
    assert value(found, "basisit_provisioned_vcpus", **share) == 1
    assert value(found, "basisit_provisioned_memory_bytes", **share) == 2 * GIB
    assert value(found, "basisit_provisioned_disk_bytes", **share) == 10 * GIB
    assert value(found, "basisit_provisioned_volume_bytes", **share) == 1 * GIB
    assert value(found, "basisit_provisioned_units", **share, unit="shares") == 2
    # A size is not a unit; the volume carries it.
    assert value(found, "basisit_provisioned_units", **share, unit="quota_gib") is None
    backup = {"ags": "10046118", "catalog_service": "backup", "server": "sicherung", "plan": "S"}
    assert value(found, "basisit_provisioned_volume_bytes", **backup) == 2 * GIB
    # Settings are not units either (retention_daily 7 is not seven of anything priced).
    assert not [
        k for k in named(found, "basisit_provisioned_units") if ("server", "sicherung") in k
    ]
    # Billable once active; the backup never reached active.
    assert value(found, "basisit_instance_billable", **share) == 1
    assert value(found, "basisit_instance_billable", **backup) == 0
    dns = {"ags": "10046118", "catalog_service": "dns", "server": "dns", "plan": "zone"}
    assert value(found, "basisit_instance_billable", **dns) == 1
    assert value(found, "basisit_provisioned_volume_bytes", **dns) == 0
    assert named(found, "basisit_kommune_info") == {
        frozenset(
            {"ags": "10046118", "name": "Tholey", "kreis": "St. Wendel", "typ": "Gemeinde"}.items()
        ): 1
    }
    errors = named(found, "basisit_exporter_source_errors")
    assert set(errors.values()) == {0}
    assert {dict(k)["source"] for k in errors} == {
        "outputs/10046118.json", "desired_state/10046118", "database", "catalog",
    }  # fmt: skip
    assert value(found, "basisit_exporter_rebuilds_total") == 1
    assert value(found, "basisit_exporter_scrape_duration_seconds") > 0


def test_a_scrape_rebuilds_only_when_an_input_changed(tholey, catalog, data_dir):
    expo = use_case.exposition()
    first = expo.scrape()
    for _ in range(3):
        expo.scrape()
    assert expo.rebuilds == 1
    stamp = value(samples(expo.scrape()), "basisit_exporter_last_reload_timestamp_seconds")

    # A new request state in the database (the instance is decommissioned) is a change.
    with session_scope() as s:
        rid = svc.decommission(
            s, catalog, ags="10046118", instance="dns", actor="kommune-it", reason="weg"
        ).id
    _approve_all(catalog, [rid])
    moved = lifecycle.start_provisioning("10046118", "deploy")
    lifecycle.finish_provisioning("10046118", moved, "deploy", None)
    after = samples(expo.scrape())
    assert expo.rebuilds == 2
    assert value(after, "basisit_exporter_last_reload_timestamp_seconds") >= stamp
    # Its server is still in the outputs (no deploy since): served without a plan, not billable.
    dns = {"ags": "10046118", "catalog_service": "dns", "server": "dns"}
    assert value(after, "basisit_instance_billable", **dns, plan="unknown") == 0
    assert value(samples(first), "basisit_instance_billable", **dns, plan="zone") == 1

    # A rewritten outputs file is a change (the next deploy dropped the server).
    path = data_dir / "outputs" / "10046118.json"
    doc = json.loads(path.read_text())
    doc["servers"] = [s for s in doc["servers"] if s["name"] != "dns"]
    path.write_text(json.dumps(doc))
    latest = samples(expo.scrape())
    assert expo.rebuilds == 3
    assert not [k for k in named(latest, "basisit_instance_billable") if ("server", "dns") in k]
    expo.scrape()
    assert expo.rebuilds == 3


def test_a_broken_outputs_file_is_reported_and_the_rest_served(tholey, data_dir):
    (data_dir / "outputs" / "10041100.json").write_text('{"schema_version": 1, "ags": ')
    found = samples(use_case.exposition().scrape())
    assert value(found, "basisit_exporter_source_errors", source="outputs/10041100.json") == 1
    assert value(found, "basisit_exporter_source_errors", source="outputs/10046118.json") == 0
    share = {"ags": "10046118", "catalog_service": "fileshare", "server": "dateiablage"}
    assert value(found, "basisit_provisioned_vcpus", **share, plan="S") == 1
    # A file that is JSON but not contract 2 is just as broken.
    (data_dir / "outputs" / "10041100.json").write_text('{"schema_version": 1}')
    found = samples(use_case.exposition().scrape())
    assert value(found, "basisit_exporter_source_errors", source="outputs/10041100.json") == 1


def test_a_file_that_breaks_later_keeps_its_last_good_document(tholey, data_dir):
    expo = use_case.exposition()
    share = {"ags": "10046118", "catalog_service": "fileshare", "server": "dateiablage"}
    assert value(samples(expo.scrape()), "basisit_provisioned_vcpus", **share, plan="S") == 1
    path = data_dir / "outputs" / "10046118.json"
    path.write_text(path.read_text()[:100])  # damaged: cut off
    found = samples(expo.scrape())
    assert value(found, "basisit_exporter_source_errors", source="outputs/10046118.json") == 1
    assert value(found, "basisit_provisioned_vcpus", **share, plan="S") == 1  # still there
    path.unlink()  # destroyed: the Kommune's servers are gone
    found = samples(expo.scrape())
    assert named(found, "basisit_provisioned_vcpus") == {}


def test_an_unreadable_database_is_reported_and_the_last_documents_served(
    tholey, monkeypatch, tmp_path
):
    gatherer = use_case.Gatherer()
    expo = exporter.Exposition(gatherer.fingerprint, gatherer.gather)
    expo.scrape()
    # The database cannot be opened: its folder is a file.
    from basisit.store import db

    (tmp_path / "afile").write_text("")
    monkeypatch.setenv("BASISIT_DB_URL", f"sqlite:///{tmp_path}/afile/x.db")
    db.engine_for.cache_clear()
    found = samples(expo.scrape())
    assert value(found, "basisit_exporter_source_errors", source="database") == 1
    share = {"ags": "10046118", "catalog_service": "fileshare", "server": "dateiablage"}
    assert value(found, "basisit_instance_billable", **share, plan="S") == 1
    rebuilt = expo.rebuilds
    expo.scrape()
    assert expo.rebuilds == rebuilt  # one rebuild for the fault, not one per scrape


def test_billable_from_active_until_decommissioned(tholey, catalog):
    with session_scope() as s:
        assert use_case.billable_instances(s) == {
            ("10046118", "dns"): True,
            ("10046118", "dateiablage"): True,
        }
    # A change in progress does not interrupt it.
    with session_scope() as s:
        cid = svc.change(
            s, catalog, ags="10046118", instance="dateiablage", parameters={"quota_gib": 2},
            actor="kommune-it",
        ).id  # fmt: skip
    _approve_all(catalog, [cid])
    lifecycle.start_provisioning("10046118", "deploy")
    with session_scope() as s:
        assert use_case.billable_instances(s)[("10046118", "dateiablage")] is True


def test_promtool_finds_the_exposition_clean(tholey, data_dir):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (bootstrap installs prometheus)")
    (data_dir / "outputs" / "10041100.json").write_text("{")
    body = use_case.exposition().scrape()
    check = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.strip() == b"" and check.stderr.strip() == b""


def test_units_count_lists_and_the_counted_parameters_only():
    counts = frozenset({"accounts"})
    assert exporter.units_of(
        {"accounts": 50, "shares": ["a", "b"], "quota_gib": 10, "retention_daily": 7}, counts
    ) == {"accounts": 50, "shares": 2}
    assert use_case.count_parameters(load_catalog()) >= {
        "accounts", "mailboxes", "peers",
    }  # fmt: skip


@pytest.fixture
def served() -> Iterator[str]:
    inputs = exporter.Inputs(sources={"outputs/x.json": None})
    expo = exporter.Exposition(lambda: 1, lambda: inputs)
    server = exporter.server(expo, "127.0.0.1:0")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_http_server_serves_plain_and_gzip(served):
    with urllib.request.urlopen(f"{served}/metrics", timeout=5) as response:
        plain = response.read()
        assert response.headers["Content-Type"].startswith("text/plain")
    request = urllib.request.Request(f"{served}/metrics", headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.headers["Content-Encoding"] == "gzip"
        unzipped = gzip.decompress(response.read())
    for body in (plain, unzipped):
        found = samples(body)
        assert value(found, "basisit_exporter_source_errors", source="outputs/x.json") == 0
        assert value(found, "basisit_exporter_scrape_duration_seconds") >= 0
    with pytest.raises(urllib.error.HTTPError, match="404"):
        urllib.request.urlopen(f"{served}/other", timeout=5)


@pytest.mark.parametrize("listen", ["0.0.0.0:9464", "10.0.0.1:9464", "localhost:x", "[::1]:9"])
def test_the_exporter_listens_on_loopback_only(listen):
    with pytest.raises(ValidationFailed, match="--listen"):
        exporter.parse_listen(listen)
