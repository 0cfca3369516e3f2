"""The local target's VPN endpoint: WireGuard's UDP port published on 127.0.0.1, in contract 2.

On this target the VPN's clients are on this machine; the endpoint the wireguard play writes
into their configurations must be that published port, not the server's address inside the
Kommune's network (which the clients route into the tunnel). The program runs under Pulumi
mocks; tests/integration/test_local_target.py checks the binding on a real container.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from basisit.configure.inventory import build_inventory
from basisit.provision import allocation, outputs
from stacks.model import PlanError, build_plan
from stacks.targets.local import LocalSettings, LocalTarget
from stacks.tenant import KommuneTenant

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PUBKEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForMocksOnly basisit-test"


class Recorder(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.inputs: dict[str, dict[str, Any]] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        self.inputs[args.name] = dict(args.inputs)
        return f"id-{args.name}", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        raise AssertionError(f"unexpected invoke {args.token}")


def desired_with_vpn(ports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    doc = yaml.safe_load((FIXTURES / "desired-state-10046118.yaml").read_text())
    doc["services"].append(
        {
            "instance": "vpn",
            "service": "vpn",
            "service_version": 1,
            "plan": "S",
            "status": "approved",
            "request_id": 4,
            "schutzbedarf": "normal",
            "parameters": {"peers": ["aussenstelle"]},
            "roles": ["wireguard"],
            "depends_on": [],
            "server": {"flavor": "SCS-1V-2-10s", "vcpus": 1, "ram_mib": 2048, "disk_gib": 10},
            "volumes": [],
            "ports": ports or [{"port": 51820, "protocol": "udp", "source": "any"}],
            "object_storage": False,
        }
    )
    return doc


def deploy_mocked(doc: dict[str, Any]) -> tuple[Recorder, dict[str, Any]]:
    """The local target's program under mocks: recorded inputs and the `outputs` export."""
    alloc = allocation.allocate(doc["ags"], doc, local=True, persist=True)
    recorder = Recorder()
    result: dict[str, Any] = {}
    pulumi.runtime.set_mocks(recorder, project="basisit", stack=doc["ags"], preview=False)

    @pulumi.runtime.test
    def program() -> pulumi.Output:
        plan = build_plan(doc, alloc.hosts, alloc.ports, prefix="bi-test-unit")
        target = LocalTarget(LocalSettings(volumes_dir="/nonexistent"), PUBKEY)
        return KommuneTenant(plan, target).outputs.apply(result.update)

    program()
    return recorder, result


@pytest.fixture
def local_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASISIT_LOCAL_PORTS", "31700-31799")


def test_the_vpn_endpoint_is_the_published_udp_port(local_ports: None) -> None:
    doc = desired_with_vpn()
    recorder, out = deploy_mocked(doc)
    contract = outputs.document(out)
    assert outputs.problems(contract) == []
    servers = {s["name"]: s for s in contract["servers"]}
    vpn = servers["vpn"]
    host_port = vpn["published_ports"]["51820/udp"]
    assert vpn["vpn_endpoint"] == {"host": "127.0.0.1", "port": host_port}
    # The container is created with exactly that binding: on loopback, UDP, to WireGuard's port.
    publish = recorder.inputs["bi-test-unit-10046118-vpn-server"]["publish"]
    assert {"host_port": host_port, "port": 51820, "protocol": "udp"} in publish
    # The port is the Kommune's own, like every allocated one.
    others = {p for n, s in servers.items() if n != "vpn" for p in s["published_ports"].values()}
    assert host_port not in others
    assert [n for n, s in servers.items() if "vpn_endpoint" in s] == ["vpn"]
    hosts = build_inventory(contract, doc)["all"]["hosts"]
    assert hosts["vpn"]["basisit_vpn_endpoint"] == f"127.0.0.1:{host_port}"


def test_a_vpn_server_whose_port_is_missing_is_refused(local_ports: None) -> None:
    doc = desired_with_vpn(ports=[{"port": 51821, "protocol": "udp", "source": "any"}])
    with pytest.raises(PlanError, match=r"instance 'vpn'.*needs port 51820/udp with source any"):
        deploy_mocked(doc)
