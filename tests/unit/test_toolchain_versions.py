"""The Pulumi SDK and CLI pins in scripts/versions.env agree with what is installed."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _versions_env() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in (ROOT / "scripts" / "versions.env").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    return values


def _version_tuple(text: str) -> tuple[int, ...]:
    match = re.match(r"v?(\d+)\.(\d+)\.(\d+)", text.strip())
    assert match, f"not a version: {text!r}"
    return tuple(int(part) for part in match.groups())


def test_pyproject_pins_the_sdk_version_of_versions_env():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pins = [dep for dep in pyproject["project"]["dependencies"] if dep.startswith("pulumi==")]
    assert pins == [f"pulumi=={_versions_env()['PULUMI_SDK_VERSION']}"]


def test_installed_sdk_is_the_pinned_one():
    assert importlib.metadata.version("pulumi") == _versions_env()["PULUMI_SDK_VERSION"]


def test_pinned_cli_is_not_older_than_sdk_or_minimum():
    env = _versions_env()
    cli = _version_tuple(env["PULUMI_CLI_VERSION"])
    assert cli >= _version_tuple(env["PULUMI_SDK_VERSION"])
    assert cli >= _version_tuple(env["PULUMI_CLI_MIN_VERSION"])


@pytest.mark.pulumi
def test_cli_on_path_reports_a_usable_version():
    cli = shutil.which("pulumi")
    if cli is None:
        pytest.skip("no pulumi on PATH (source scripts/env.sh after scripts/bootstrap.sh)")
    env = _versions_env()
    out = subprocess.run([cli, "version"], capture_output=True, text=True, check=True, timeout=60)
    reported = _version_tuple(out.stdout)
    assert reported >= _version_tuple(env["PULUMI_SDK_VERSION"])
    assert reported >= _version_tuple(env["PULUMI_CLI_MIN_VERSION"])


@pytest.mark.pulumi
def test_dynamic_provider_host_is_on_path_and_uses_a_python_with_the_sdk():
    if shutil.which("pulumi") is None:
        pytest.skip("no pulumi on PATH (source scripts/env.sh after scripts/bootstrap.sh)")
    shim = shutil.which("pulumi-resource-pulumi-python")
    assert shim is not None, "pulumi-resource-pulumi-python missing: run scripts/bootstrap.sh"
    assert "pulumi.dynamic" in Path(shim).read_text(encoding="utf-8")
    python = os.environ.get("PULUMI_PYTHON_CMD", "python3")
    subprocess.run([python, "-c", "import pulumi.dynamic"], check=True, timeout=120)
