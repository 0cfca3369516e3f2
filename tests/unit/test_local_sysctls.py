"""Kernel settings the local target gives a server at creation: IPv4 forwarding for the VPN.

Inside a podman container /proc/sys is read-only, so the VPN server (role wireguard), which
forwards its clients into the Kommune's network, must be created with
``--sysctl net.ipv4.ip_forward=1``; no other server forwards anything. The program runs under
Pulumi mocks; the provider's podman calls are recorded instead of run (the wireguard molecule
scenario shows the forwarding itself with real containers).
"""

from __future__ import annotations

from typing import Any

import pytest
from local_program import PUBKEY, desired_with_vpn, run_local_program

from stacks.targets import local
from stacks.targets.local import PodmanServerProvider

FORWARDING = "net.ipv4.ip_forward=1"


def server_inputs(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The PodmanServer inputs per instance that the local target's program creates."""
    return run_local_program(doc).server_inputs(doc["ags"])


def test_only_the_vpn_server_is_created_with_ipv4_forwarding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BASISIT_LOCAL_PORTS", "31600-31699")
    servers = server_inputs(desired_with_vpn())
    assert sorted(servers) == ["dateiablage", "dns", "sicherung", "vpn"]
    assert list(servers["vpn"]["sysctls"]) == [FORWARDING]
    for instance in ("dateiablage", "dns", "sicherung"):
        assert list(servers[instance]["sysctls"]) == [], instance


def test_podman_creates_the_container_with_the_sysctls(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, ...]] = []

    def fake_podman(*args: str, **_: Any) -> str:
        calls.append(args)
        return "c0ffee\n"

    monkeypatch.setattr(local, "podman", fake_podman)
    monkeypatch.setattr(local, "podman_inspect", lambda kind, ref: None)
    monkeypatch.setattr(PodmanServerProvider, "_start", lambda self, cid, props: "ssh-ed25519 K")
    props = {
        "container_name": "bi-test-unit-10046118-vpn",
        "hostname": "vpn",
        "image": "localhost/basisit-roles:bookworm",
        "network": "bi-test-unit-10046118",
        "ip": "10.24.118.13",
        "ssh_port": 49700,
        "publish": [{"host_port": 49701, "port": 51820, "protocol": "udp"}],
        "labels": {"basisit.ags": "10046118"},
        "mounts": [],
        "ssh_public_key": PUBKEY,
        "cap_add": ["NET_ADMIN"],
        "devices": ["/dev/net/tun"],
        "sysctls": [FORWARDING],
        "boot_timeout": 5,
    }
    PodmanServerProvider().create(props)
    create = next(c for c in calls if c[0] == "create")
    image_at = create.index(props["image"])
    sysctl_at = create.index("--sysctl")
    assert sysctl_at < image_at and create[sysctl_at + 1] == FORWARDING

    calls.clear()
    PodmanServerProvider().create({**props, "sysctls": []})
    assert "--sysctl" not in next(c for c in calls if c[0] == "create")


def test_a_server_from_before_sysctls_is_replaced_only_when_it_needs_one() -> None:
    provider = PodmanServerProvider()
    # State written before servers had the input: no "sysctls" key at all.
    old = {"container_name": "x", "image": "i", "running": True}
    same = provider.diff("id", old, {**old, "sysctls": []})
    assert not same.changes and not same.replaces
    vpn = provider.diff("id", old, {**old, "sysctls": [FORWARDING]})
    assert vpn.changes and vpn.replaces == ["sysctls"]
    again = provider.diff("id", {**old, "sysctls": [FORWARDING]}, {**old, "sysctls": [FORWARDING]})
    assert not again.changes
