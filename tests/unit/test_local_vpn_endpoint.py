"""The local target's VPN endpoint: WireGuard's UDP port published on 127.0.0.1, in contract 2.

On this target the VPN's clients are on this machine; the endpoint the wireguard play writes
into their configurations must be that published port, not the server's address inside the
Kommune's network (which the clients route into the tunnel). The program runs under Pulumi
mocks; tests/integration/test_local_target.py checks the binding on a real container.
"""

from __future__ import annotations

from typing import Any

import pytest
from local_program import InputRecorder, desired_with_vpn, run_local_program

from basisit.configure.inventory import build_inventory
from basisit.contracts import stack_outputs as outputs
from stacks.model import PlanError


def deploy_mocked(doc: dict[str, Any]) -> tuple[InputRecorder, dict[str, Any]]:
    """The local target's program under mocks: recorded inputs and the `outputs` export."""
    run = run_local_program(doc)
    return run.recorder, run.outputs


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
