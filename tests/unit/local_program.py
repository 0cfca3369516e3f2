"""Shared test doubles: the local target's Pulumi program under mocks, and a VPN service entry.

Not a test module (no test_ prefix); the unit tests import it from their own folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml

from basisit.provision import allocation
from stacks.model import build_plan
from stacks.targets.local import LocalSettings, LocalTarget
from stacks.tenant import KommuneTenant

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DESIRED = FIXTURES / "desired-state-10046118.yaml"
PUBKEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForMocksOnly basisit-test"
PREFIX = "bi-test-unit"


class InputRecorder(pulumi.runtime.Mocks):
    """Keeps every resource's inputs by name; any invoke is a test failure."""

    def __init__(self) -> None:
        self.inputs: dict[str, dict[str, Any]] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        self.inputs[args.name] = dict(args.inputs)
        return f"id-{args.name}", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        raise AssertionError(f"unexpected invoke {args.token}")


def vpn_service(
    instance: str = "vpn", request_id: int = 4, ports: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A desired-state entry of catalog service vpn, plan S, as the request workflow makes it."""
    return {
        "instance": instance,
        "service": "vpn",
        "service_version": 1,
        "plan": "S",
        "status": "approved",
        "request_id": request_id,
        "schutzbedarf": "normal",
        "parameters": {"peers": ["aussenstelle"]},
        "roles": ["wireguard"],
        "depends_on": [],
        "server": {"flavor": "SCS-1V-2-10s", "vcpus": 1, "ram_mib": 2048, "disk_gib": 10},
        "volumes": [],
        "ports": ports or [{"port": 51820, "protocol": "udp", "source": "any"}],
        "object_storage": False,
    }


def desired(ags: str = "10046118") -> dict[str, Any]:
    """Tholey's desired state from the fixture, under another AGS if asked."""
    doc = yaml.safe_load(DESIRED.read_text())
    doc["ags"] = ags
    return doc


def desired_with_vpn(ports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    doc = desired()
    doc["services"].append(vpn_service(ports=ports))
    return doc


@dataclass
class LocalRun:
    recorder: InputRecorder
    allocation: allocation.Allocation
    outputs: dict[str, Any] = field(default_factory=dict)  # the `outputs` export

    def server_inputs(self, ags: str) -> dict[str, dict[str, Any]]:
        """The PodmanServer inputs per instance."""
        start, end = f"{PREFIX}-{ags}-", "-server"
        return {
            name[len(start) : -len(end)]: inputs
            for name, inputs in self.recorder.inputs.items()
            if name.startswith(start) and name.endswith(end)
        }


def run_local_program(doc: dict[str, Any]) -> LocalRun:
    """The local target's program for one Kommune under mocks, with real allocation records."""
    run = LocalRun(InputRecorder(), allocation.allocate(doc["ags"], doc, local=True, persist=True))
    pulumi.runtime.set_mocks(run.recorder, project="basisit", stack=doc["ags"], preview=False)

    @pulumi.runtime.test
    def program() -> pulumi.Output:
        plan = build_plan(doc, run.allocation.hosts, run.allocation.ports, prefix=PREFIX)
        target = LocalTarget(LocalSettings(volumes_dir="/nonexistent"), PUBKEY)
        return KommuneTenant(plan, target).outputs.apply(run.outputs.update)

    program()
    return run
