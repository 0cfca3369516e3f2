"""Scrape targets in contract 2 and their Prometheus file_sd form.

The local target's program runs under Pulumi mocks (no podman): every server publishes its node
exporter on an allocated 127.0.0.1 port and names it in the outputs. The file_sd conversion and
`basisit scrape-targets` read outputs files from a private data dir.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from local_program import FIXTURES, InputRecorder, desired, run_local_program
from typer.testing import CliRunner

from basisit.cli.main import app
from basisit.configure import inventory as inv
from basisit.contracts import stack_outputs as outputs
from basisit.errors import NotFound, ValidationFailed
from basisit.monitoring import targets
from basisit.provision import allocation

OUTPUTS = FIXTURES / "stack-outputs-10046118.json"
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def local_program(
    doc: dict[str, Any],
) -> tuple[InputRecorder, dict[str, Any], allocation.Allocation]:
    """The local target's program for one Kommune under mocks, with real allocation records."""
    run = run_local_program(doc)
    return run.recorder, outputs.document(run.outputs), run.allocation


def old_outputs(doc: dict[str, Any]) -> dict[str, Any]:
    """The same document as a deploy before the scrape targets wrote it."""
    old = copy.deepcopy(doc)
    old.pop("kommune", None)
    for server in old["servers"]:
        server.pop("metrics", None)
        server["published_ports"].pop("9100/tcp", None)
    return old


def store(doc: dict[str, Any]) -> Path:
    path = outputs.path_for(doc["ags"])
    path.write_text(json.dumps(doc, indent=2))
    return path


# --- contract 2: the local target -------------------------------------------------------------


def test_every_local_server_publishes_its_exporter_on_its_own_loopback_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BASISIT_LOCAL_PORTS", "31500-31599")
    recorder, doc, alloc = local_program(desired())
    assert outputs.problems(doc) == []
    assert doc["kommune"] == {"name": "Tholey", "slug": "tholey"}
    assert alloc.ports is not None
    for server in doc["servers"]:
        name = server["name"]
        port = alloc.ports[f"{name}/9100/tcp"]
        # The container publishes 9100 on exactly that host port (the provider binds it to
        # 127.0.0.1; tests/integration/test_local_target.py checks the real binding).
        publish = recorder.inputs[f"bi-test-unit-10046118-{name}-server"]["publish"]
        exporter = [p for p in publish if int(p["port"]) == 9100]
        assert [(int(p["host_port"]), p["protocol"]) for p in exporter] == [(port, "tcp")]
        assert server["published_ports"]["9100/tcp"] == port
        assert server["metrics"] == {
            "address": "127.0.0.1",
            "port": port,
            "path": "/metrics",
            # podman masquerades the host's connections to the gateway: the firewall's source
            "sources": ["10.24.118.1"],
        }
    ports = [s["metrics"]["port"] for s in doc["servers"]]
    others = [s["ssh"]["port"] for s in doc["servers"]]
    for server in doc["servers"]:
        others += [p for k, p in server["published_ports"].items() if k != "9100/tcp"]
    assert len(set(ports)) == len(ports) and not set(ports) & set(others)


def test_exporter_ports_are_stable_and_never_shared_between_kommunen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BASISIT_LOCAL_PORTS", "31500-31599")
    # Tholey was deployed before servers had an exporter slot: its record lacks them.
    first = allocation.allocate("10046118", desired(), local=True, persist=True)
    assert first.ports is not None
    legacy = {k: v for k, v in first.ports.items() if not k.endswith("/9100/tcp")}
    record = json.loads(allocation.registry_file().read_text())
    record["kommunen"]["10046118"]["ports"] = legacy
    allocation.registry_file().write_text(json.dumps(record))

    _, tholey, again = local_program(desired())
    _, other, _ = local_program(desired("10041100"))
    assert again.ports is not None
    # The ports it had stay; the exporter ports are new ones.
    assert {k: again.ports[k] for k in legacy} == legacy
    assert not {again.ports[f"{s}/9100/tcp"] for s in ("dns", "dateiablage", "sicherung")} & set(
        legacy.values()
    )
    # A re-deploy hands out the very same ports.
    _, tholey_again, _ = local_program(desired())
    assert tholey_again["servers"] == tholey["servers"]
    targets_a = {s["metrics"]["port"] for s in tholey["servers"]}
    targets_b = {s["metrics"]["port"] for s in other["servers"]}
    assert len(targets_a) == len(targets_b) == 3 and not targets_a & targets_b


def test_the_inventory_opens_the_exporter_to_the_outputs_sources() -> None:
    doc = json.loads(OUTPUTS.read_text())
    inventory = inv.build_inventory(doc, desired())
    for host in inventory["all"]["hosts"].values():
        assert host["basisit_monitoring_sources"] == ["10.24.118.1"]
    # Older outputs name no sources: the play's own default applies (no host variable).
    inventory = inv.build_inventory(old_outputs(doc), desired())
    assert all("basisit_monitoring_sources" not in h for h in inventory["all"]["hosts"].values())


def test_outputs_without_the_new_fields_still_match_the_schema() -> None:
    old = old_outputs(json.loads(OUTPUTS.read_text()))
    assert outputs.problems(old) == []
    broken = json.loads(OUTPUTS.read_text())
    broken["servers"][0]["metrics"]["port"] = "9100"
    del broken["servers"][1]["metrics"]["path"]
    found = outputs.problems(broken)
    assert any(p.startswith("servers.0.metrics.port") for p in found), found
    assert any(p.startswith("servers.1.metrics") and "path" in p for p in found), found


# --- file_sd ------------------------------------------------------------------------------------


def test_file_sd_groups_one_per_server_with_kommune_labels() -> None:
    tholey = json.loads(OUTPUTS.read_text())
    other = copy.deepcopy(tholey)
    other["ags"] = "10041100"
    other["kommune"] = {"name": "Saarbrücken", "slug": "saarbruecken"}
    for i, server in enumerate(other["servers"]):
        server["metrics"]["port"] = 43000 + i
    found = targets.target_groups([other, tholey])
    assert found.notes == []
    assert found.kommunen == ["10041100", "10046118"]
    assert [(g["labels"]["ags"], g["labels"]["server"]) for g in found.groups] == [
        ("10041100", "dateiablage"),
        ("10041100", "dns"),
        ("10041100", "sicherung"),
        ("10046118", "dateiablage"),
        ("10046118", "dns"),
        ("10046118", "sicherung"),
    ]
    dns = found.groups[4]
    assert dns == {
        "targets": ["127.0.0.1:42104"],
        "labels": {
            "ags": "10046118",
            "kommune": "Tholey",
            "server": "dns",
            "catalog_service": "dns",
            "__metrics_path__": "/metrics",
        },
    }
    assert found.groups[0]["labels"]["kommune"] == "Saarbrücken"
    for group in found.groups:
        assert all(LABEL_NAME.match(k) for k in group["labels"])
        assert all(isinstance(v, str) for v in group["labels"].values())


def test_servers_of_old_outputs_are_left_out_with_a_note() -> None:
    tholey = json.loads(OUTPUTS.read_text())
    other = copy.deepcopy(tholey)
    other["ags"] = "10041100"
    for i, server in enumerate(other["servers"]):
        server["metrics"]["port"] = 43000 + i
    found = targets.target_groups([old_outputs(tholey), other])
    assert {g["labels"]["ags"] for g in found.groups} == {"10041100"}
    assert len(found.notes) == 3
    assert all("10046118" in n and "basisit deploy --ags 10046118" in n for n in found.notes)


def test_clashing_targets_are_refused() -> None:
    tholey = json.loads(OUTPUTS.read_text())
    copycat = copy.deepcopy(tholey)
    copycat["ags"] = "10041100"  # same ports: a corrupt allocation record
    with pytest.raises(ValidationFailed, match=r"127\.0\.0\.1:42104") as err:
        targets.target_groups([tholey, copycat])
    assert "AGS 10046118 server dns" in str(err.value)


def test_read_outputs_names_the_broken_file_and_returns_nothing(data_dir: Path) -> None:
    store(json.loads(OUTPUTS.read_text()))
    bad = json.loads(OUTPUTS.read_text())
    bad["ags"] = "10041100"
    del bad["servers"][0]["ssh"]
    bad_path = store(bad)
    with pytest.raises(ValidationFailed) as err:
        targets.read_outputs()
    assert f"{bad_path}: servers.0: 'ssh' is a required property" in str(err.value)
    with pytest.raises(NotFound, match="basisit deploy --ags 10042117"):
        targets.read_outputs(["10042117"])
    assert [d["ags"] for d in targets.read_outputs(["10046118"])] == ["10046118"]


# --- basisit scrape-targets --------------------------------------------------------------------


def test_cli_writes_the_file_sd_file(tmp_path: Path) -> None:
    store(json.loads(OUTPUTS.read_text()))
    runner = CliRunner()
    target = tmp_path / "file_sd" / "node.json"
    result = runner.invoke(app, ["scrape-targets", "--output", str(target)])
    assert result.exit_code == 0, result.output
    groups = json.loads(target.read_text())
    assert [g["targets"] for g in groups] == [
        ["127.0.0.1:42105"],
        ["127.0.0.1:42104"],
        ["127.0.0.1:42106"],
    ]
    assert target.stat().st_mode & 0o777 == 0o644
    assert list(target.parent.iterdir()) == [target]  # no temporary file left behind
    as_yaml = tmp_path / "node.yml"
    assert runner.invoke(app, ["scrape-targets", "-o", str(as_yaml)]).exit_code == 0
    assert yaml.safe_load(as_yaml.read_text()) == groups
    printed = runner.invoke(app, ["scrape-targets", "--ags", "10046118"])
    assert printed.exit_code == 0
    assert json.loads(printed.stdout) == groups


def test_cli_keeps_the_old_file_when_an_outputs_file_is_broken(tmp_path: Path) -> None:
    path = store(json.loads(OUTPUTS.read_text()))
    runner = CliRunner()
    target = tmp_path / "node.json"
    assert runner.invoke(app, ["scrape-targets", "-o", str(target)]).exit_code == 0
    before = target.read_text()
    path.write_text('{"ags": "10046118", ')
    result = runner.invoke(app, ["scrape-targets", "-o", str(target)])
    assert result.exit_code == 4
    assert str(path) in result.output and "not valid JSON" in result.output
    assert target.read_text() == before
    wrong = runner.invoke(app, ["scrape-targets", "-o", str(tmp_path / "node.txt")])
    assert wrong.exit_code != 0 and "node.txt" in wrong.output


def test_promtool_accepts_the_file_sd_file(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package prometheus)")
    store(json.loads(OUTPUTS.read_text()))
    for name in ("node.json", "node.yml"):
        targets.write(tmp_path / "file_sd" / name, targets.collect().groups)
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "scrape_configs:\n"
        "  - job_name: node\n"
        "    file_sd_configs:\n"
        "      - files: [file_sd/*.json, file_sd/*.yml]\n"
    )
    check = subprocess.run(
        [promtool, "check", "config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
