"""A `pulumi up` run by hand (stacks/__main__.py): the program from stack config alone, without
the provisioning driver, so it never allocates ports, creates keys or writes the suite's records."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import yaml

from stacks.model import port_slots
from stacks.standalone import ConfigError, program_from_config

ROOT = Path(__file__).resolve().parents[2]
DESIRED = ROOT / "tests" / "fixtures" / "desired-state-10046118.yaml"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHBsYW5wbGFucGxhbnBsYW5wbGFucGxhbnBsYW5wbGFu hand"


def config(**values: str) -> dict[str, str]:
    return {"desiredState": str(DESIRED), "sshPublicKey": KEY, **values}


def test_main_does_not_import_the_driver() -> None:
    tree = ast.parse((ROOT / "stacks" / "__main__.py").read_text())
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not any(str(name).startswith("basisit.provision") for name in imported), imported


def test_the_program_comes_from_config_and_touches_no_record(data_dir: Path) -> None:
    desired = yaml.safe_load(DESIRED.read_text())
    ports = {slot: 24000 + i for i, slot in enumerate(port_slots(desired))}
    program = program_from_config(config(ports=json.dumps(ports)).get)
    assert callable(program)
    assert not (data_dir / "provision" / "allocations.json").exists()
    assert not (data_dir / "secrets").exists()


def test_missing_config_is_named() -> None:
    with pytest.raises(ConfigError, match="basisit:desiredState"):
        program_from_config({}.get)
    with pytest.raises(ConfigError, match="basisit:sshPublicKey"):
        program_from_config({"desiredState": str(DESIRED)}.get)
    with pytest.raises(ConfigError, match="basisit:ports lacks"):
        program_from_config(config().get)
    with pytest.raises(ConfigError, match="unknown target 'aws'"):
        program_from_config(config(target="aws").get)
