"""`basisit doctor` without podman: the Pulumi CLI and the local port range.

Each check must fail with its named fix when its prerequisite is taken away and pass when it is
back; the podman checks are in tests/integration/test_doctor_podman.py.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from basisit.preflight import host, run_checks
from basisit.preflight.model import CheckFailed


def _only(name: str):
    report = run_checks({name})
    assert [r.name for r in report.results] == [name]
    return report.results[0]


def _three_free_ports() -> int:
    """The first of three consecutive free ports below the suite's default range."""
    for low in range(21000, 23900, 7):
        socks = []
        try:
            for port in range(low, low + 3):
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    s = socket.socket(socket.AF_INET, kind)
                    socks.append(s)
                    s.bind(("127.0.0.1", port))
            return low
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    pytest.skip("no three consecutive free ports in 21000-23900")


@pytest.fixture
def held_range(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[int, list[socket.socket]]]:
    low = _three_free_ports()
    monkeypatch.setenv("BASISIT_LOCAL_PORTS", f"{low}-{low + 2}")
    socks = []
    for port in range(low, low + 3):
        s = socket.socket()
        s.bind(("127.0.0.1", port))
        s.listen()
        socks.append(s)
    try:
        yield low, socks
    finally:
        for s in socks:
            s.close()


def test_ports_held_by_another_process_fail_naming_the_holder_then_pass(held_range):
    low, socks = held_range
    result = _only("local ports")
    assert not result.ok
    assert f"3 of the 3 ports of BASISIT_LOCAL_PORTS={low}-{low + 2}" in result.detail
    # The holder is this very test process, found through /proc.
    assert f"{low} by " in result.detail and f"(pid {os.getpid()})" in result.detail
    assert "BASISIT_LOCAL_PORTS" in result.fix

    for s in socks:
        s.close()
    result = _only("local ports")
    assert result.ok, result.detail
    assert "3 free" in result.detail


def test_one_held_port_is_enough_to_fail(held_range):
    low, socks = held_range
    socks[0].close()
    socks[2].close()
    result = _only("local ports")
    assert not result.ok
    assert "1 of the 3 ports" in result.detail and str(low + 1) in result.detail


def test_a_range_inside_the_ephemeral_range_fails(monkeypatch: pytest.MonkeyPatch):
    from basisit.provision.allocation import ephemeral_range

    span = ephemeral_range()
    if span is None:
        pytest.skip("the kernel's ephemeral range is not readable here")
    monkeypatch.setenv("BASISIT_LOCAL_PORTS", f"{span[0] + 10}-{span[0] + 20}")
    result = _only("local ports")
    assert not result.ok
    assert "ephemeral range" in result.detail
    assert f"below {span[0]}" in result.fix


def test_a_malformed_range_fails_with_the_setting_to_use(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("BASISIT_LOCAL_PORTS", "lots")
    result = _only("local ports")
    assert not result.ok and "BASISIT_LOCAL_PORTS='lots'" in result.detail
    assert result.fix == "export BASISIT_LOCAL_PORTS=24000-30999"


def _stub_pulumi(tmp_path: Path, version: str) -> Path:
    bin_dir = tmp_path / "stub-pulumi" / "bin"
    bin_dir.mkdir(parents=True)
    cli = bin_dir / "pulumi"
    cli.write_text(f'#!/bin/sh\n[ "$1" = version ] && echo {version}\n')
    cli.chmod(0o755)
    return bin_dir


def test_a_pulumi_cli_too_old_for_the_sdk_fails_with_the_build_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("BASISIT_PULUMI_BIN_DIR", str(_stub_pulumi(tmp_path, "v3.100.0")))
    result = _only("pulumi")
    assert not result.ok
    assert "is v3.100.0" in result.detail and "needs at least" in result.detail
    assert result.fix.startswith("scripts/build-pulumi.sh")


def test_a_pulumi_cli_without_a_version_stamp_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("BASISIT_PULUMI_BIN_DIR", str(_stub_pulumi(tmp_path, "v0.0.0-dev")))
    result = _only("pulumi")
    assert not result.ok and "needs at least" in result.detail


@pytest.mark.pulumi
def test_the_real_pulumi_cli_passes():
    from basisit.errors import BasisItError
    from basisit.provision.environment import find_pulumi_bin_dir

    try:
        find_pulumi_bin_dir()
    except BasisItError:
        pytest.skip("no Pulumi CLI (scripts/bootstrap.sh builds it)")
    result = _only("pulumi")
    assert result.ok, f"{result.detail} / {result.fix}"
    import importlib.metadata

    assert f"(SDK {importlib.metadata.version('pulumi')})" in result.detail


def test_ansible_playbook_runs_from_the_venv():
    result = _only("ansible")
    assert result.ok, result.detail
    assert result.detail.startswith(str(Path(sys.executable).parent / "ansible-playbook"))


def test_cli_exits_8_and_json_names_each_failure_and_fix(held_range):
    low, _ = held_range
    proc = subprocess.run(
        [sys.executable, "-m", "basisit.cli.main", "doctor", "--only", "local ports",
         "--format", "json"],
        capture_output=True, text=True, timeout=120, env=os.environ.copy(), check=False,
    )  # fmt: skip
    assert proc.returncode == 8, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["ok"] is False
    (check,) = doc["checks"]
    assert check["name"] == "local ports" and check["ok"] is False
    assert str(low) in check["detail"] and "BASISIT_LOCAL_PORTS" in check["fix"]
    assert "1 of 1 checks failed (local ports)" in proc.stderr


def test_an_unknown_check_is_refused_with_the_list():
    proc = subprocess.run(
        [sys.executable, "-m", "basisit.cli.main", "doctor", "--only", "flux capacitor"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 4  # invalid input
    assert "unknown check(s): flux capacitor" in proc.stderr and "local ports" in proc.stderr


def _stub_tools(tmp_path: Path, version: str) -> Path:
    """prometheus and promtool that print a given version, as Debian's binaries do."""
    bin_dir = tmp_path / "stub-prometheus"
    bin_dir.mkdir()
    for tool in ("prometheus", "promtool"):
        stub = bin_dir / tool
        stub.write_text(f"#!/bin/sh\necho '{tool}, version {version} (branch: debian/sid)'\n")
        stub.chmod(0o755)
    return bin_dir


def test_prometheus_3_is_refused_because_its_ranges_are_left_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", f"{_stub_tools(tmp_path, '3.1.0')}:{os.environ['PATH']}")
    with pytest.raises(CheckFailed) as failed:
        host.check_prometheus()
    assert "prometheus is version 3.1.0; the ledger needs 2.x" in str(failed.value)


def test_a_missing_prometheus_names_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing there
    with pytest.raises(CheckFailed) as failed:
        host.check_prometheus()
    assert "prometheus --version failed" in str(failed.value)
    assert "apt-get install prometheus" in failed.value.fix


def test_debians_prometheus_passes() -> None:
    assert host.check_prometheus().startswith("prometheus 2.")


def test_missing_xrechnung_rules_fail_with_the_fetch_command_then_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from basisit.invoicing import RULES

    cached = os.environ.get("BASISIT_CACHE")
    monkeypatch.setenv("BASISIT_CACHE", str(tmp_path))  # an empty cache
    result = _only("xrechnung-rules")
    assert not result.ok
    assert RULES.key in result.detail and str(tmp_path) in result.detail
    assert result.fix == "bash scripts/xrechnung-rules.sh"

    if cached is None:
        monkeypatch.delenv("BASISIT_CACHE")
    else:
        monkeypatch.setenv("BASISIT_CACHE", cached)
    result = _only("xrechnung-rules")  # what bootstrap cached
    assert result.ok, f"{result.detail} / {result.fix}"
    assert "EN 16931 1.3.16, XRechnung 3.0.2 (schematron 2.5.0) compile" in result.detail


def test_a_cut_off_xrechnung_stylesheet_fails_with_the_refetch_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from basisit.invoicing import RULES, rules_dir

    copy = tmp_path / "xrechnung" / RULES.key
    shutil.copytree(rules_dir(), copy)
    stylesheet = copy / "xrechnung" / "XRechnung-CII-validation.xslt"
    stylesheet.write_bytes(stylesheet.read_bytes()[:5000])  # an interrupted copy
    monkeypatch.setenv("BASISIT_CACHE", str(tmp_path))
    result = _only("xrechnung-rules")
    assert not result.ok
    assert str(stylesheet) in result.detail and "does not compile" in result.detail
    assert result.fix == "bash scripts/xrechnung-rules.sh --force"
