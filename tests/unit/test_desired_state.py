"""Contract 1: the desired state a Kommune's approved requests add up to."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from basisit.cli.main import app
from basisit.contracts import desired_state
from basisit.errors import ValidationFailed
from basisit.paths import project_root
from basisit.requests import lifecycle

RUN = CliRunner()


def cli(*args: str) -> str:
    result = RUN.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_fixture_used_by_stacks_and_roles_matches_the_schema():
    # The fixture sits beside the tests, wherever BASISIT_PROJECT_ROOT points.
    fixture = Path(__file__).parents[1] / "fixtures/desired-state-10046118.yaml"
    desired_state.check(yaml.safe_load(fixture.read_text(encoding="utf-8")), str(fixture))


def test_schema_rejects_a_broken_document():
    document = {"schema_version": 2, "ags": "123", "services": [{"instance": "X"}]}
    with pytest.raises(ValidationFailed) as exc:
        desired_state.check(document, "the document")
    text = str(exc.value)
    assert "schema_version" in text and "kommune" in text and "ags" in text


def test_walkthrough_from_request_to_desired_state(onboarded):
    cli("request", "create", "--ags", onboarded, "--service", "dns", "--plan", "zone")
    cli("request", "create", "--ags", onboarded, "--service", "fileshare", "--plan", "S",
        "--instance", "dateiablage", "-p", "quota_gib=5",
        "-p", "shares=verwaltung,bauamt")  # fmt: skip
    cli("request", "create", "--ags", onboarded, "--service", "backup", "--plan", "S",
        "-p", "capacity_gib=20")  # fmt: skip
    cli("request", "create", "--ags", onboarded, "--service", "webhosting", "--plan", "S")
    submitted = cli("request", "submit", "1", "2", "3", "4")
    assert "Summe" in submitted and "Grundpreis" in submitted
    for rid in ("1", "2", "3"):
        cli("request", "approve", rid, "--as", "ops", "--actor", "ego-ops")
    # 4 (webhosting) is still submitted: not in the desired state yet
    document = json.loads(cli("desired-state", "--ags", onboarded, "--format", "json"))
    desired_state.check(document, "the document")
    assert document["dns_zone"] == "tholey.basisit.internal."
    by_name = {s["instance"]: s for s in document["services"]}
    assert set(by_name) == {"dns", "dateiablage", "backup"}
    share = by_name["dateiablage"]
    assert share["parameters"] == {"quota_gib": 5, "shares": ["verwaltung", "bauamt"]}
    assert share["server"] == {
        "flavor": "SCS-1V-2-10s",
        "vcpus": 1,
        "ram_mib": 2048,
        "disk_gib": 10,
    }
    assert share["volumes"] == [
        {"name": "share", "size_gib": 5, "mount": "/srv/samba", "fixed_size": True}
    ]
    assert share["roles"] == ["samba"] and share["status"] == "approved"
    assert by_name["backup"]["depends_on"] == ["dateiablage"]
    assert by_name["backup"]["object_storage"] is True

    # Deploy and configure move the states; a decommissioned service leaves the document.
    moved = lifecycle.start_provisioning(onboarded, "deploy")
    lifecycle.finish_provisioning(onboarded, moved, "deploy", None)
    lifecycle.finish_configuring(onboarded, {i: None for i in moved}, "configure")
    document = yaml.safe_load(cli("desired-state", "--ags", onboarded))
    assert {s["status"] for s in document["services"]} == {"active"}
    cli("request", "decommission", "--ags", onboarded, "--instance", "dateiablage")
    cli("request", "decommission", "--ags", onboarded, "--instance", "backup")
    cli("request", "submit", "5", "6")
    cli("request", "approve", "5")
    document = yaml.safe_load(cli("desired-state", "--ags", onboarded))
    assert {s["instance"] for s in document["services"]} == {"dns", "backup"}
    shown = cli("request", "show", "5")
    assert "decommission" in shown and "approved" in shown


def test_cli_errors_are_clear_and_non_zero(onboarded):
    bad_param = RUN.invoke(app, ["request", "create", "--ags", onboarded, "--service",
                                 "fileshare", "--plan", "S", "-p", "quota_gib"])  # fmt: skip
    assert bad_param.exit_code != 0 and "name=value" in bad_param.output
    wrong_state = RUN.invoke(app, ["request", "approve", "99"])
    assert wrong_state.exit_code == 3 and "no request 99" in wrong_state.output
    not_onboarded = RUN.invoke(app, ["request", "create", "--ags", "10041100", "--service",
                                     "dns", "--plan", "zone"])  # fmt: skip
    assert not_onboarded.exit_code == 5 and "not onboarded" in not_onboarded.output
    unknown = RUN.invoke(app, ["desired-state", "--ags", "10041999"])
    assert unknown.exit_code == 3 and "unknown AGS" in unknown.output


def test_broken_catalog_stops_requests_and_stores_nothing(onboarded, tmp_path, monkeypatch):
    import shutil

    broken = tmp_path / "catalog"
    shutil.copytree(project_root() / "catalog", broken)
    (broken / "dns.yaml").write_text("id: dns\nversion: one\n", encoding="utf-8")
    monkeypatch.setenv("BASISIT_CATALOG_DIR", str(broken))
    result = RUN.invoke(
        app, ["request", "create", "--ags", onboarded, "--service", "dns", "--plan", "zone"]
    )
    assert result.exit_code == 4
    assert "dns.yaml: version" in result.output
    listed = RUN.invoke(app, ["request", "list", "--format", "json"])
    assert listed.exit_code == 0 and json.loads(listed.output) == []


def test_unwritable_output_is_an_error_not_a_crash(onboarded, tmp_path):
    target = tmp_path / "missing" / "state.yaml"
    result = RUN.invoke(app, ["desired-state", "--ags", onboarded, "-o", str(target)])
    assert result.exit_code == 1, result.output
    assert "cannot write the desired state" in result.output and not target.exists()
