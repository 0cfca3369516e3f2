"""The Ansible inventory of one Kommune, generated from contract 2 (stack outputs) and
contract 1 (desired state). Never hand-edited, never stored: every run builds it anew.

`build_inventory` is pure (no files, no environment) so `basisit inventory`, the driver and the
tests all get the same answer for the same inputs. `load_outputs` / `load_desired` do the
reading and the schema checks and name the file and field of every problem.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from basisit.configure.connection import playbooks_dir
from basisit.configure.errors import InventoryError, OutputsError
from basisit.contracts import desired_state, stack_outputs
from basisit.contracts.desired_state import DesiredState, ServiceEntry
from basisit.contracts.stack_outputs import Endpoint, Server, StackOutputs

# Roles that every server gets, in the order site.yml applies them.
BASE_ROLES = ("baseline", "node_exporter")
SITE_PLAYBOOK = "site.yml"


@cache
def known_roles() -> tuple[str, ...]:
    """Every role site.yml applies, in its order: the one list (a play per role,
    plays/<role>.yml). Their groups always exist (empty if unused), so a play for a role no
    server has matches an empty group instead of warning about an unknown pattern."""
    site = playbooks_dir() / SITE_PLAYBOOK
    plays = yaml.safe_load(site.read_text(encoding="utf-8")) or []
    roles = tuple(
        PurePosixPath(play["ansible.builtin.import_playbook"]).stem
        for play in plays
        if isinstance(play, dict) and "ansible.builtin.import_playbook" in play
    )
    if not roles:
        raise InventoryError(f"{site}: imports no plays (expected plays/<role>.yml)")
    return roles


DEFAULT_TIME_SERVER = "127.0.0.1"


def outputs_path(ags: str) -> Path:
    return stack_outputs.path_for(ags)


def load_outputs(ags: str, path: Path | None = None) -> StackOutputs:
    """Read and check <data_dir>/outputs/<ags>.json; every problem names the file."""
    return stack_outputs.load(ags, path, missing=OutputsError, error=OutputsError)


def load_desired(ags: str, path: Path) -> DesiredState:
    """The desired state from a file (YAML or JSON), checked; InventoryError names the field.
    (From the request database it comes through basisit.app.sources.)"""
    return desired_state.load(path, ags=ags, file_error=InventoryError, error=InventoryError)


def backup_coverage(desired: DesiredState) -> dict[str, ServiceEntry]:
    """Instance -> the backup service entry that backs it up (the backup's depends_on)."""
    covered: dict[str, ServiceEntry] = {}
    for svc in desired["services"]:
        if svc["service"] != "backup" and "backup_server" not in svc["roles"]:
            continue
        for dep in svc.get("depends_on", []):
            if dep in covered and covered[dep]["instance"] != svc["instance"]:
                raise InventoryError(
                    f"AGS {desired['ags']}: instance {dep!r} is backed up by both "
                    f"{covered[dep]['instance']!r} and {svc['instance']!r}; one backup per "
                    "server is supported"
                )
            covered[dep] = svc
    return covered


def host_roles(server: Server, covered: dict[str, ServiceEntry]) -> list[str]:
    """The server's service roles from the outputs, plus backup_client when a backup covers it."""
    roles = [r for r in server["roles"] if r not in BASE_ROLES]
    if server["instance"] in covered and "backup_client" not in roles:
        roles.append("backup_client")
    return roles


def vpn_endpoint(endpoint: Endpoint) -> str:
    """host:port as WireGuard's Endpoint takes it (an IPv6 address in brackets)."""
    host, port = endpoint["host"], int(endpoint["port"])
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def build_inventory(
    outputs: StackOutputs,
    desired: DesiredState,
    *,
    secrets_dir: str | None = None,
    ssh_key_file: str | None = None,
    known_hosts_file: str | None = None,
    pinned_known_hosts_file: str | None = None,
    time_server: str = DEFAULT_TIME_SERVER,
    python_interpreter: str = "/usr/bin/python3",
) -> dict[str, Any]:
    """The inventory as ansible-runner takes it ({"all": {"vars", "hosts", "children"}}).

    Paths of the run's private temp dir (secrets, SSH key, known_hosts) are left out when None,
    e.g. for `basisit inventory`, which only shows the inventory.

    Host keys: a server whose outputs carry its SSH host key (`ssh.host_key`, the local target
    sets it) is checked strictly against pinned_known_hosts_file (see known_hosts_text); any
    other server is pinned on first contact into known_hosts_file (accept-new), which the
    driver keeps per Kommune in the secrets store, so a changed key later is refused.
    """
    ags = outputs["ags"]
    if desired["ags"] != ags:
        raise InventoryError(
            f"stack outputs are for AGS {ags} but the desired state is for AGS {desired['ags']}"
        )
    services = {svc["instance"]: svc for svc in desired["services"]}
    covered = backup_coverage(desired)

    names = [s["name"] for s in outputs["servers"]]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InventoryError(f"stack outputs of AGS {ags}: duplicate server names {dupes}")

    hosts: dict[str, dict[str, Any]] = {}
    groups: dict[str, list[str]] = {role: [] for role in known_roles()}
    servers_summary = []
    for server in outputs["servers"]:
        svc = services.get(server["instance"])
        if svc is None:
            raise InventoryError(
                f"stack outputs of AGS {ags} list server {server['name']!r} (instance "
                f"{server['instance']!r}), but the desired state has no such service: "
                f"deploy again to bring the servers in line (basisit deploy --ags {ags})"
            )
        roles = host_roles(server, covered)
        servers_summary.append(
            {
                "name": server["name"],
                "address": server["address"],
                "services": list(server["services"]),
                "roles": roles,
            }
        )
        hvars: dict[str, Any] = {
            "ansible_host": server["ssh"]["host"],
            "ansible_port": server["ssh"]["port"],
            "ansible_user": server["ssh"]["user"],
            "basisit_address": server["address"],
            "basisit_service": svc,
        }
        if pinned_known_hosts_file is not None and server["ssh"].get("host_key"):
            hvars["ansible_ssh_common_args"] = (
                f"-o UserKnownHostsFile={pinned_known_hosts_file} -o StrictHostKeyChecking=yes"
            )
        if server.get("metrics", {}).get("sources"):
            # Who scrapes the node exporter, as the server sees it (the play's firewall opening).
            hvars["basisit_monitoring_sources"] = list(server["metrics"]["sources"])
        if server.get("vpn_endpoint"):
            # Beyond the contract's list: where VPN clients connect (the wireguard play's input).
            hvars["basisit_vpn_endpoint"] = vpn_endpoint(server["vpn_endpoint"])
        if server["instance"] in covered:
            # Beyond the contract's list: backup_client needs the backup's parameters
            # (retention) and instance, whose server it finds in basisit_servers.
            hvars["basisit_backup"] = covered[server["instance"]]
        hosts[server["name"]] = hvars
        for role in (*BASE_ROLES, *roles):
            groups.setdefault(role, []).append(server["name"])

    all_vars: dict[str, Any] = {
        "basisit_kommune": {
            "ags": ags,
            "name": desired["kommune"]["name"],
            "slug": desired["kommune"]["slug"],
            "dns_zone": desired["dns_zone"],
        },
        "basisit_network": {
            "cidr": outputs["network"]["cidr"],
            "gateway": outputs["network"]["gateway"],
        },
        "basisit_servers": servers_summary,
        "basisit_dns_records": [dict(r) for r in outputs["dns"]["records"]],
        "basisit_target": outputs["target"],
        "basisit_object_storage": outputs.get("object_storage"),
        "basisit_time_server": time_server,
        "ansible_python_interpreter": python_interpreter,
    }
    if secrets_dir is not None:
        all_vars["basisit_secrets_dir"] = secrets_dir
    if ssh_key_file is not None:
        all_vars["ansible_ssh_private_key_file"] = ssh_key_file
    if known_hosts_file is not None:
        all_vars["ansible_ssh_common_args"] = (
            f"-o UserKnownHostsFile={known_hosts_file} -o StrictHostKeyChecking=accept-new"
        )
    return {
        "all": {
            "vars": all_vars,
            "hosts": hosts,
            "children": {
                role: {"hosts": {h: {} for h in members}} for role, members in groups.items()
            },
        }
    }


def known_hosts_text(outputs: StackOutputs) -> str:
    """known_hosts lines for the servers whose host key the stack outputs carry."""
    lines = []
    for server in outputs["servers"]:
        key = server["ssh"].get("host_key")
        if not key:
            continue
        host, port = server["ssh"]["host"], server["ssh"]["port"]
        name = host if port == 22 else f"[{host}]:{port}"
        parts = key.split()
        if len(parts) < 2:
            raise InventoryError(
                f"stack outputs of AGS {outputs['ags']}: server {server['name']!r}: "
                f"ssh.host_key {key!r} is not '<type> <base64 key>'"
            )
        key_type, key_data = parts[:2]
        lines.append(f"{name} {key_type} {key_data}\n")
    return "".join(lines)


def hosts_of(inventory: dict[str, Any]) -> list[str]:
    return list(inventory["all"]["hosts"])


def group_members(inventory: dict[str, Any], group: str) -> list[str]:
    return list(inventory["all"]["children"].get(group, {}).get("hosts", {}))
