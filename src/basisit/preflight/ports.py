"""The local target's port range: outside the kernel's ephemeral range, and no port in it held
by anything but the suite's own containers (whose ports podman's conmon keeps bound)."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterable
from pathlib import Path

from basisit.preflight.model import CheckFailed
from basisit.preflight.podman import podman

SUITE_LABEL = "basisit.managed-by=basisit"
_PROC_TABLES = {"tcp": ("/proc/net/tcp",), "udp": ("/proc/net/udp",)}


def held(low: int, high: int) -> dict[int, set[str]]:
    """Ports of the range that cannot be bound on 127.0.0.1, with the protocols refused."""
    refused: dict[int, set[str]] = {}
    for port in range(low, high + 1):
        for proto, kind in (("tcp", socket.SOCK_STREAM), ("udp", socket.SOCK_DGRAM)):
            with socket.socket(socket.AF_INET, kind) as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    refused.setdefault(port, set()).add(proto)
    return refused


def suite_ports() -> set[int]:
    """Host ports published by the suite's running containers (any data dir on this machine)."""
    try:
        proc = podman("ps", "--filter", f"label={SUITE_LABEL}", "--format", "json")
    except CheckFailed:
        return set()
    if proc.returncode != 0:
        return set()
    ports: set[int] = set()
    for container in json.loads(proc.stdout or "[]"):
        for mapping in container.get("Ports") or []:
            first = int(mapping.get("host_port") or 0)
            for offset in range(int(mapping.get("range") or 1)):
                ports.add(first + offset)
    return ports


def _socket_inodes(ports: set[int]) -> dict[str, int]:
    """inode -> port for sockets bound to one of the ports (any local address)."""
    inodes: dict[str, int] = {}
    for tables in _PROC_TABLES.values():
        for table in (*tables, *(t + "6" for t in tables)):
            try:
                lines = Path(table).read_text().splitlines()[1:]
            except OSError:
                continue
            for line in lines:
                fields = line.split()
                port = int(fields[1].rsplit(":", 1)[1], 16)
                if port in ports and fields[9] != "0":
                    inodes[fields[9]] = port
    return inodes


def holders(ports: Iterable[int]) -> dict[int, list[str]]:
    """port -> ["name (pid N)", ...] of the processes holding it, as far as /proc shows."""
    wanted = set(ports)
    inodes = _socket_inodes(wanted)
    found: dict[int, list[str]] = {}
    if not inodes:
        return found
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                try:
                    name = Path(f"/proc/{pid}/comm").read_text().strip()
                except OSError:
                    name = "?"
                who = f"{name} (pid {pid})"
                port = inodes[target[8:-1]]
                if who not in found.setdefault(port, []):
                    found[port].append(who)
    return found


def check_ports() -> str:
    from basisit.errors import BasisItError
    from basisit.provision.allocation import ephemeral_range, port_range

    try:
        low, high = port_range()
    except BasisItError as exc:
        raise CheckFailed(str(exc), "export BASISIT_LOCAL_PORTS=24000-30999") from None
    ephemeral = ephemeral_range()
    setting = f"BASISIT_LOCAL_PORTS={low}-{high}"
    if ephemeral and low <= ephemeral[1] and ephemeral[0] <= high:
        raise CheckFailed(
            f"{setting} overlaps the kernel's ephemeral range {ephemeral[0]}-{ephemeral[1]}, "
            "where any process may take a port for a moment",
            f"export BASISIT_LOCAL_PORTS=a range below {ephemeral[0]} (default 24000-30999)",
        )
    refused = held(low, high)
    ours = suite_ports()
    foreign = sorted(p for p in refused if p not in ours)
    if foreign:
        who = holders(foreign)
        named = [f"{p} by {', '.join(who[p])}" if p in who else str(p) for p in foreign[:8]]
        more = f" and {len(foreign) - 8} more" if len(foreign) > 8 else ""
        raise CheckFailed(
            f"{len(foreign)} of the {high - low + 1} ports of {setting} are held by something "
            f"other than the suite's containers: {', '.join(named)}{more}",
            "stop what holds them, or export BASISIT_LOCAL_PORTS=<a free range outside "
            f"{ephemeral[0]}-{ephemeral[1]}>"
            if ephemeral
            else "stop what holds them, or choose another BASISIT_LOCAL_PORTS",
        )
    in_use = len([p for p in refused if p in ours])
    outside = f", outside the ephemeral range {ephemeral[0]}-{ephemeral[1]}" if ephemeral else ""
    return f"{setting}: {high - low + 1 - in_use} free, {in_use} used by the suite{outside}"
