"""Host numbers and 127.0.0.1 ports: allocated once per server and kept until it is gone.

A Kommune's servers get host numbers in its /24 (basisit.addressing); on the local target
every server also gets a port on 127.0.0.1 for sshd, one per service port and one for its node
exporter (the Prometheus scrape target). Ports must be unique on the machine across all
Kommunen, so they cannot be derived from the AGS alone (58 Kommunen x several ports would
collide in any hash); they are allocated from a range
(BASISIT_LOCAL_PORTS, default 24000-30999) and recorded in <data_dir>/provision/allocations.json.
Ports in the kernel's ephemeral range (net.ipv4.ip_local_port_range) are never handed out: any
process may take one of those for a moment (Pulumi's own gRPC servers do, while a parallel
deploy starts containers), and a container's start would then fail with "address in use".
The record is changed under an exclusive file lock, so parallel deploys never hand out a port
twice. Entries of removed servers stay reserved until their deploy succeeded (prune), so a
new server never takes the address or port of one that is still being torn down.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from basisit import addressing, paths
from basisit.files import atomic_write, flock
from basisit.provision.errors import ProvisionError
from stacks.model import port_slots, server_services

DEFAULT_PORT_RANGE = (24000, 30999)
EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")


@dataclass(frozen=True)
class Allocation:
    hosts: dict[str, int]
    ports: dict[str, int] | None  # None: the target publishes no local ports


def _dir() -> Path:
    path = paths.data_dir() / "provision"
    path.mkdir(parents=True, exist_ok=True)
    return path


def registry_file() -> Path:
    return _dir() / "allocations.json"


def port_range() -> tuple[int, int]:
    raw = os.environ.get("BASISIT_LOCAL_PORTS")
    if not raw:
        return DEFAULT_PORT_RANGE
    try:
        low, high = (int(x) for x in raw.split("-", 1))
    except ValueError:
        raise ProvisionError(f"BASISIT_LOCAL_PORTS={raw!r}: expected e.g. 24000-30999") from None
    if not 1024 < low <= high < 65536:
        raise ProvisionError(f"BASISIT_LOCAL_PORTS={raw!r}: needs 1024 < low <= high < 65536")
    return low, high


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    with flock(_dir() / "allocations.lock"):
        yield


def _load() -> dict[str, Any]:
    path = registry_file()
    if not path.exists():
        return {"version": 1, "kommunen": {}}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ProvisionError(f"{path}: not valid JSON ({exc}); restore it from a backup") from None
    if not isinstance(data, dict) or not isinstance(data.get("kommunen"), dict):
        raise ProvisionError(f"{path}: field 'kommunen' missing; restore it from a backup")
    return data


def _save(data: dict[str, Any]) -> None:
    atomic_write(registry_file(), json.dumps(data, indent=1, sort_keys=True))


def _bindable(port: int, protocols: set[str]) -> bool:
    """Nobody on this machine uses the port (another checkout's servers, other tools)."""
    for proto in protocols:
        kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def ephemeral_range() -> tuple[int, int] | None:
    """The kernel's range for ports bound to 0 and outgoing connections, if it can be read."""
    try:
        low, high = (int(x) for x in EPHEMERAL_RANGE_FILE.read_text().split())
    except (OSError, ValueError):
        return None
    return low, high


def _slot_protocols(slot: str) -> set[str]:
    return {"udp"} if slot.endswith("/udp") else {"tcp"}


def allocate(ags: str, desired: Mapping[str, Any], *, local: bool, persist: bool) -> Allocation:
    """Host numbers (and for the local target ports) for the Kommune's servers.

    With persist False (plan), new numbers are computed but not recorded.
    """
    instances = [svc["instance"] for svc in server_services(desired)]
    with _locked():
        data = _load()
        entry = data["kommunen"].setdefault(ags, {"hosts": {}, "ports": {}})
        try:
            hosts = addressing.assign_hosts(instances, entry["hosts"])
        except addressing.AddressError as exc:
            raise ProvisionError(f"AGS {ags}: {exc}") from None
        entry["hosts"] = {**entry["hosts"], **hosts}
        ports: dict[str, int] | None = None
        if local:
            taken = {p for e in data["kommunen"].values() for p in e.get("ports", {}).values()}
            low, high = port_range()
            ephemeral = ephemeral_range()
            candidates = iter(
                p
                for p in range(low, high + 1)
                if not ephemeral or not ephemeral[0] <= p <= ephemeral[1]
            )
            ports = {}
            for slot in port_slots(desired):
                if slot in entry["ports"]:
                    ports[slot] = entry["ports"][slot]
                    continue
                for port in candidates:
                    if port not in taken and _bindable(port, _slot_protocols(slot)):
                        taken.add(port)
                        ports[slot] = port
                        break
                else:
                    raise ProvisionError(
                        f"AGS {ags}: no free port left in {low}-{high} for {slot} "
                        f"(outside the kernel's ephemeral range {_show(ephemeral)}); "
                        "widen or move BASISIT_LOCAL_PORTS"
                    )
            entry["ports"] = {**entry["ports"], **ports}
        if persist:
            _save(data)
    return Allocation(hosts=hosts, ports=ports)


def _show(span: tuple[int, int] | None) -> str:
    return f"{span[0]}-{span[1]}" if span else "unknown"


def prune(ags: str, desired: Mapping[str, Any]) -> None:
    """After a successful deploy: free what servers no longer in the desired state held."""
    instances = {svc["instance"] for svc in server_services(desired)}
    slots = set(port_slots(desired))
    with _locked():
        data = _load()
        entry = data["kommunen"].get(ags)
        if entry is None:
            return
        entry["hosts"] = {k: v for k, v in entry["hosts"].items() if k in instances}
        entry["ports"] = {k: v for k, v in entry.get("ports", {}).items() if k in slots}
        _save(data)


def release(ags: str) -> None:
    """After a destroy: the Kommune holds nothing any more."""
    with _locked():
        data = _load()
        if data["kommunen"].pop(ags, None) is not None:
            _save(data)


def recorded(ags: str) -> dict[str, Any] | None:
    with _locked():
        entry: dict[str, Any] | None = _load()["kommunen"].get(ags)
    return entry
