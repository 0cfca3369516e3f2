"""What `basisit monitoring up` runs with: the file_sd folder that deploy keeps current, the
generated Prometheus configuration and its settings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from basisit.app import deploy as deploy_use_case
from basisit.app import monitoring
from basisit.app.sources import Source
from basisit.errors import ValidationFailed
from basisit.monitoring import prometheus, targets
from basisit.provision import operations

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
OUTPUTS = FIXTURES / "stack-outputs-10046118.json"
DESIRED = FIXTURES / "desired-state-10046118.yaml"


def _targets_file(data_dir: Path, ags: str = "10046118") -> Path:
    return data_dir / "monitoring" / "targets" / f"{ags}.json"


def test_a_deploy_writes_the_kommunes_file_sd_file_and_a_destroy_removes_it(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def deployed(ags: str, desired: Any, **_: Any) -> operations.Result:
        (data_dir / "outputs").mkdir(exist_ok=True)
        shutil.copy(OUTPUTS, data_dir / "outputs" / f"{ags}.json")
        return operations.Result(ags, "deploy")

    def destroyed(ags: str, **_: Any) -> operations.Result:
        (data_dir / "outputs" / f"{ags}.json").unlink()
        return operations.Result(ags, "destroy")

    monkeypatch.setattr(operations, "deploy", deployed)
    monkeypatch.setattr(operations, "destroy", destroyed)
    monkeypatch.setattr(operations, "deployed_stacks", lambda: ["10046118"])
    deploy_use_case.deploy("10046118", Source(DESIRED), target="local", actor="t")
    groups = json.loads(_targets_file(data_dir).read_text())
    assert [(g["targets"], g["labels"]["server"]) for g in groups] == [
        (["127.0.0.1:42105"], "dateiablage"),
        (["127.0.0.1:42104"], "dns"),
        (["127.0.0.1:42106"], "sicherung"),
    ]
    assert groups[0]["labels"] == {
        "ags": "10046118", "kommune": "Tholey", "server": "dateiablage",
        "catalog_service": "fileshare", "__metrics_path__": "/metrics",
    }  # fmt: skip
    deploy_use_case.destroy("10046118", actor="t")
    assert not _targets_file(data_dir).exists()


def test_up_brings_the_folder_in_line_and_keeps_a_broken_kommunes_old_file(
    data_dir: Path,
) -> None:
    outputs = data_dir / "outputs"
    outputs.mkdir()
    shutil.copy(OUTPUTS, outputs / "10046118.json")
    folder = data_dir / "monitoring" / "targets"
    folder.mkdir(parents=True)
    (folder / "10041100.json").write_text("[]")  # its outputs are gone: destroyed meanwhile
    (folder / "10046111.json").write_text('[{"targets": ["127.0.0.1:1"], "labels": {}}]')
    (outputs / "10046111.json").write_text("{broken")
    result = targets.sync_all()
    assert result.written == ["10046118"]
    assert result.removed == ["10041100"]
    assert list(result.broken) == ["10046111"]
    assert "not valid JSON" in result.broken["10046111"]
    # The broken Kommune's servers stay scraped as they were.
    assert json.loads((folder / "10046111.json").read_text())[0]["targets"] == ["127.0.0.1:1"]
    assert sorted(p.name for p in folder.iterdir()) == ["10046111.json", "10046118.json"]


def test_the_generated_configuration(data_dir: Path) -> None:
    settings = prometheus.Settings(prometheus_port=19090, exporter_port=19464, scrape_interval_s=5)
    path, changed = monitoring.write_config(settings)
    assert changed
    config = yaml.safe_load(path.read_text())
    assert config["global"]["scrape_interval"] == "5s"
    assert config["global"]["scrape_timeout"] == "5s"  # never longer than the interval
    assert config["rule_files"] == [str(prometheus.rules_dir() / "*.yml")]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["basisit-exporter"]["static_configs"] == [{"targets": ["127.0.0.1:19464"]}]
    assert jobs["node"]["file_sd_configs"] == [
        {"files": [str(data_dir / "monitoring" / "targets" / "*.json")]}
    ]
    assert "alerting" not in config
    assert monitoring.write_config(settings) == (path, False)  # unchanged: no reload needed


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BASISIT_PROMETHEUS_PORT": "9464"}, "both on port 9464"),
        ({"BASISIT_EXPORTER_PORT": "80"}, "exporter port 80: expected 1024..65535"),
        ({"BASISIT_SCRAPE_INTERVAL": "0s"}, "expected a whole number"),
        ({"BASISIT_SCRAPE_INTERVAL": "7200"}, "scrape interval 7200 s"),
        ({"BASISIT_PROMETHEUS_RETENTION": "forever"}, "retention 'forever'"),
    ],
)
def test_unusable_settings_are_refused_by_name(
    env: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationFailed, match=message):
        prometheus.Settings.from_env()


def test_the_defaults_stay_out_of_the_suites_port_ranges() -> None:
    from basisit.provision.allocation import ephemeral_range, port_range

    low, high = port_range()
    ephemeral = ephemeral_range() or (32768, 60999)
    for port in (prometheus.DEFAULT_PROMETHEUS_PORT, prometheus.DEFAULT_EXPORTER_PORT):
        assert not low <= port <= high
        assert not ephemeral[0] <= port <= ephemeral[1]
    assert prometheus.Settings().retention == "400d"
