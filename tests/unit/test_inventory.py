"""The inventory from contract 2 (stack outputs) and contract 1 (desired state)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from local_program import vpn_service

from basisit.configure import inventory as inv
from basisit.configure.errors import InventoryError, OutputsError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
AGS = "10046118"


@pytest.fixture
def outputs() -> dict[str, Any]:
    return json.loads((FIXTURES / f"stack-outputs-{AGS}.json").read_text())


@pytest.fixture
def desired() -> dict[str, Any]:
    return yaml.safe_load((FIXTURES / f"desired-state-{AGS}.yaml").read_text())


def _members(inventory: dict[str, Any], group: str) -> list[str]:
    return sorted(inventory["all"]["children"][group]["hosts"])


def test_one_host_per_server_with_its_connection_and_service(outputs, desired) -> None:
    inventory = inv.build_inventory(outputs, desired)
    hosts = inventory["all"]["hosts"]
    assert sorted(hosts) == ["dateiablage", "dns", "sicherung"]
    dns = hosts["dns"]
    assert (dns["ansible_host"], dns["ansible_port"], dns["ansible_user"]) == (
        "127.0.0.1",
        42001,
        "root",
    )
    assert dns["basisit_address"] == "10.24.118.10"
    assert dns["basisit_service"]["service"] == "dns"
    assert dns["basisit_service"]["request_id"] == 1
    assert hosts["dateiablage"]["basisit_service"]["parameters"] == {
        "quota_gib": 1,
        "shares": ["verwaltung"],
    }


def test_groups_per_role_every_host_gets_the_baseline(outputs, desired) -> None:
    inventory = inv.build_inventory(outputs, desired)
    everyone = ["dateiablage", "dns", "sicherung"]
    assert _members(inventory, "baseline") == everyone
    assert _members(inventory, "node_exporter") == everyone
    assert _members(inventory, "powerdns") == ["dns"]
    assert _members(inventory, "samba") == ["dateiablage"]
    assert _members(inventory, "backup_server") == ["sicherung"]
    # Roles nobody uses still exist as empty groups, so their plays match nothing quietly.
    assert _members(inventory, "postgresql") == []
    assert set(inv.known_roles()) <= set(inventory["all"]["children"])


def test_servers_a_backup_depends_on_become_backup_clients(outputs, desired) -> None:
    inventory = inv.build_inventory(outputs, desired)
    assert _members(inventory, "backup_client") == ["dateiablage"]
    hosts = inventory["all"]["hosts"]
    assert hosts["dateiablage"]["basisit_backup"]["instance"] == "sicherung"
    assert hosts["dateiablage"]["basisit_backup"]["parameters"]["retention_daily"] == 7
    assert "basisit_backup" not in hosts["dns"]
    servers = {s["name"]: s for s in inventory["all"]["vars"]["basisit_servers"]}
    assert servers["dateiablage"]["roles"] == ["samba", "backup_client"]


def test_kommune_wide_variables(outputs, desired) -> None:
    all_vars = inv.build_inventory(outputs, desired, time_server="10.24.118.1")["all"]["vars"]
    assert all_vars["basisit_kommune"] == {
        "ags": AGS,
        "name": "Tholey",
        "slug": "tholey",
        "dns_zone": "tholey.basisit.internal.",
    }
    assert all_vars["basisit_network"] == {"cidr": "10.24.118.0/24", "gateway": "10.24.118.1"}
    assert all_vars["basisit_dns_records"][0] == {
        "name": "dns",
        "type": "A",
        "value": "10.24.118.10",
    }
    assert all_vars["basisit_target"] == "local"
    assert all_vars["basisit_object_storage"] is None
    assert all_vars["basisit_time_server"] == "10.24.118.1"
    assert {s["name"]: s["address"] for s in all_vars["basisit_servers"]} == {
        "dns": "10.24.118.10",
        "dateiablage": "10.24.118.11",
        "sicherung": "10.24.118.12",
    }
    # Without a run there is no secrets dir, key or known_hosts to point at.
    for key in ("basisit_secrets_dir", "ansible_ssh_private_key_file", "ansible_ssh_common_args"):
        assert key not in all_vars
    assert inv.build_inventory(outputs, desired)["all"]["vars"]["basisit_time_server"] == (
        "127.0.0.1"
    )


def test_run_paths_and_strict_host_keys(outputs, desired) -> None:
    all_vars = inv.build_inventory(
        outputs,
        desired,
        secrets_dir="/tmp/basisit-run/secrets",
        ssh_key_file="/tmp/basisit-run/secrets/ssh/id_ed25519",
        known_hosts_file="/tmp/basisit-run/secrets/ssh/known_hosts",
    )["all"]["vars"]
    assert all_vars["basisit_secrets_dir"] == "/tmp/basisit-run/secrets"
    assert all_vars["ansible_ssh_private_key_file"] == "/tmp/basisit-run/secrets/ssh/id_ed25519"
    assert (
        "UserKnownHostsFile=/tmp/basisit-run/secrets/ssh/known_hosts"
        in (all_vars["ansible_ssh_common_args"])
    )
    assert "StrictHostKeyChecking=accept-new" in all_vars["ansible_ssh_common_args"]


def test_build_is_pure(outputs, desired) -> None:
    before = (copy.deepcopy(outputs), copy.deepcopy(desired))
    first = inv.build_inventory(outputs, desired)
    assert (outputs, desired) == before
    assert inv.build_inventory(outputs, desired) == first


def test_services_not_yet_deployed_are_not_hosts(outputs, desired) -> None:
    extra = copy.deepcopy(desired["services"][0])
    extra.update(instance="datenbank", service="database", roles=["postgresql"], request_id=9)
    desired["services"].append(extra)
    inventory = inv.build_inventory(outputs, desired)
    assert "datenbank" not in inventory["all"]["hosts"]
    assert _members(inventory, "postgresql") == []


def test_server_without_a_desired_service_is_an_error(outputs, desired) -> None:
    desired["services"] = [s for s in desired["services"] if s["instance"] != "dns"]
    with pytest.raises(InventoryError, match=r"server 'dns'.*no such service.*basisit deploy"):
        inv.build_inventory(outputs, desired)


def test_outputs_and_desired_state_of_different_kommunen(outputs, desired) -> None:
    desired["ags"] = "10041100"
    with pytest.raises(
        InventoryError, match="AGS 10046118 but the desired state is for AGS 10041100"
    ):
        inv.build_inventory(outputs, desired)


def test_duplicate_server_names_are_an_error(outputs, desired) -> None:
    outputs["servers"].append(copy.deepcopy(outputs["servers"][0]))
    with pytest.raises(InventoryError, match=r"duplicate server names \['dns'\]"):
        inv.build_inventory(outputs, desired)


def test_ansible_reads_the_inventory_as_generated(outputs, desired, tmp_path: Path) -> None:
    """The real ansible-inventory parses what ansible-runner will be given."""
    path = tmp_path / "hosts.json"
    path.write_text(json.dumps(inv.build_inventory(outputs, desired)))
    bin_dir = Path(sys.executable).parent
    listing = subprocess.run(
        [str(bin_dir / "ansible-inventory"), "-i", str(path), "--list"],
        capture_output=True,
        text=True,
        check=True,
    )
    parsed = json.loads(listing.stdout)
    assert sorted(parsed["samba"]["hosts"]) == ["dateiablage"]
    assert sorted(parsed["backup_client"]["hosts"]) == ["dateiablage"]
    hostvars = parsed["_meta"]["hostvars"]["dateiablage"]
    assert hostvars["ansible_port"] == 42002
    assert hostvars["basisit_kommune"]["slug"] == "tholey"


# -- reading contract 2 -------------------------------------------------------------------


def _write_outputs(data_dir: Path, text: str) -> Path:
    path = data_dir / "outputs" / f"{AGS}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def test_load_outputs_reads_the_data_dir(data_dir: Path, outputs) -> None:
    _write_outputs(data_dir, json.dumps(outputs))
    assert inv.load_outputs(AGS) == outputs


def test_missing_outputs_name_the_file_and_the_fix(data_dir: Path) -> None:
    with pytest.raises(OutputsError) as exc:
        inv.load_outputs(AGS)
    message = str(exc.value)
    assert str(data_dir / "outputs" / f"{AGS}.json") in message
    assert "does not exist" in message and f"basisit deploy --ags {AGS}" in message


def test_broken_json_names_file_line_and_column(data_dir: Path) -> None:
    path = _write_outputs(data_dir, '{\n  "ags": "10046118",\n  "servers": [,]\n}')
    with pytest.raises(OutputsError, match=rf"{path}: not valid JSON \(line 3, column 15"):
        inv.load_outputs(AGS)


def test_schema_problems_name_every_field(data_dir: Path, outputs) -> None:
    outputs["servers"][1]["ssh"]["port"] = "22"
    del outputs["network"]["cidr"]
    path = _write_outputs(data_dir, json.dumps(outputs))
    with pytest.raises(OutputsError) as exc:
        inv.load_outputs(AGS)
    message = str(exc.value)
    assert message.startswith(f"{path}: does not match stack-outputs.v1.schema.json")
    assert "network: 'cidr' is a required property" in message
    assert "servers.1.ssh.port: '22' is not of type 'integer'" in message


def test_outputs_of_another_kommune_are_refused(data_dir: Path, outputs) -> None:
    outputs["ags"] = "10041100"
    _write_outputs(data_dir, json.dumps(outputs))
    with pytest.raises(OutputsError, match="field ags is '10041100', expected '10046118'"):
        inv.load_outputs(AGS)


def test_desired_state_file_is_checked_against_its_schema(tmp_path: Path, desired) -> None:
    desired["services"][0]["status"] = "unheard-of"
    path = tmp_path / "desired.yaml"
    path.write_text(yaml.safe_dump(desired))
    with pytest.raises(InventoryError, match=r"services\.0\.status: 'unheard-of' is not one of"):
        inv.load_desired(AGS, path)
    assert inv.load_desired(AGS, FIXTURES / f"desired-state-{AGS}.yaml")["ags"] == AGS


def test_servers_with_a_known_host_key_are_checked_strictly(outputs, desired) -> None:
    key_data = "AAAAC3NzaC1lZDI1NTE5AAAAIKx8lVYq0k6cOQH0k3b2p9dBv7mNVQYkF2sZ3nYQy0b2"
    key = f"ssh-ed25519 {key_data} root@dns"
    outputs["servers"][0]["ssh"]["host_key"] = key
    inventory = inv.build_inventory(
        outputs,
        desired,
        known_hosts_file="/run/secrets/ssh/known_hosts",
        pinned_known_hosts_file="/run/ssh/known_hosts.pinned",
    )
    hosts = inventory["all"]["hosts"]
    assert hosts["dns"]["ansible_ssh_common_args"] == (
        "-o UserKnownHostsFile=/run/ssh/known_hosts.pinned -o StrictHostKeyChecking=yes"
    )
    # The others fall back to the Kommune's pinned-on-first-contact file.
    assert "ansible_ssh_common_args" not in hosts["sicherung"]
    assert "StrictHostKeyChecking=accept-new" in inventory["all"]["vars"]["ansible_ssh_common_args"]
    assert inv.known_hosts_text(outputs) == (f"[127.0.0.1]:42001 ssh-ed25519 {key_data}\n")
    outputs["servers"][1]["ssh"]["host_key"] = "garbage"
    with pytest.raises(InventoryError, match=r"server 'dateiablage': ssh\.host_key 'garbage'"):
        inv.known_hosts_text(outputs)


# -- the VPN endpoint ------------------------------------------------------------------------


def _add_vpn(outputs: dict[str, Any], desired: dict[str, Any], server: dict[str, Any]) -> None:
    desired["services"].append(vpn_service())
    outputs["servers"].append(
        {
            "name": "vpn",
            "instance": "vpn",
            "services": ["vpn"],
            "roles": ["wireguard"],
            "address": "10.24.118.13",
            "volumes": [],
            **server,
        }
    )


def test_vpn_endpoint_of_a_local_kommune(data_dir: Path, outputs, desired) -> None:
    """Local target: the WireGuard port published on 127.0.0.1, as contract 2 names it."""
    _add_vpn(
        outputs,
        desired,
        {
            "ssh": {"host": "127.0.0.1", "port": 42007, "user": "root"},
            "published_ports": {"51820/udp": 42108, "9100/tcp": 42109},
            "vpn_endpoint": {"host": "127.0.0.1", "port": 42108},
        },
    )
    _write_outputs(data_dir, json.dumps(outputs))
    inventory = inv.build_inventory(inv.load_outputs(AGS), desired)
    hosts = inventory["all"]["hosts"]
    assert hosts["vpn"]["basisit_vpn_endpoint"] == "127.0.0.1:42108"
    assert _members(inventory, "wireguard") == ["vpn"]
    # Only the VPN server has one; the others' plays never see the variable.
    assert [h for h, hv in hosts.items() if "basisit_vpn_endpoint" in hv] == ["vpn"]


def test_vpn_endpoint_of_an_openstack_kommune(data_dir: Path, outputs, desired) -> None:
    """openstack: the VPN server's floating IP and WireGuard's own port."""
    outputs["target"] = "openstack"
    for server in outputs["servers"]:
        server["ssh"] = {"host": server["address"], "port": 22, "user": "debian"}
        server.pop("published_ports")
    _add_vpn(
        outputs,
        desired,
        {
            "ssh": {"host": "10.24.118.13", "port": 22, "user": "debian"},
            "vpn_endpoint": {"host": "203.0.113.57", "port": 51820},
        },
    )
    _write_outputs(data_dir, json.dumps(outputs))
    inventory = inv.build_inventory(inv.load_outputs(AGS), desired)
    assert inventory["all"]["hosts"]["vpn"]["basisit_vpn_endpoint"] == "203.0.113.57:51820"
    assert inv.vpn_endpoint({"host": "2001:db8::7", "port": 51820}) == "[2001:db8::7]:51820"


def test_no_vpn_endpoint_without_a_vpn_server(outputs, desired) -> None:
    hosts = inv.build_inventory(outputs, desired)["all"]["hosts"]
    assert all("basisit_vpn_endpoint" not in hv for hv in hosts.values())


def test_a_broken_vpn_endpoint_is_refused_naming_the_field(data_dir: Path, outputs) -> None:
    outputs["servers"][0]["vpn_endpoint"] = {"host": "127.0.0.1", "port": 0}
    outputs["servers"][1]["vpn_endpoint"] = {"host": "127.0.0.1"}
    _write_outputs(data_dir, json.dumps(outputs))
    with pytest.raises(OutputsError) as exc:
        inv.load_outputs(AGS)
    message = str(exc.value)
    assert "servers.0.vpn_endpoint.port: 0 is less than the minimum of 1" in message
    assert "servers.1.vpn_endpoint: 'port' is a required property" in message


def test_ansible_hands_the_vpn_endpoint_to_the_vpn_server(outputs, desired, tmp_path) -> None:
    _add_vpn(
        outputs,
        desired,
        {
            "ssh": {"host": "127.0.0.1", "port": 42007, "user": "root"},
            "vpn_endpoint": {"host": "127.0.0.1", "port": 42108},
        },
    )
    path = tmp_path / "hosts.json"
    path.write_text(json.dumps(inv.build_inventory(outputs, desired)))
    listing = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-inventory"), "-i", str(path), "--list"],
        capture_output=True,
        text=True,
        check=True,
    )
    parsed = json.loads(listing.stdout)
    assert parsed["wireguard"]["hosts"] == ["vpn"]
    assert parsed["_meta"]["hostvars"]["vpn"]["basisit_vpn_endpoint"] == "127.0.0.1:42108"


def test_the_role_list_is_site_yml_s_play_order() -> None:
    roles = inv.known_roles()
    assert roles[: len(inv.BASE_ROLES)] == inv.BASE_ROLES
    assert roles[-1] == "backup_client"  # the clients last, when their data exists
    root = Path(__file__).resolve().parents[2]
    assert all((root / "roles" / role / "tasks" / "main.yml").is_file() for role in roles)
