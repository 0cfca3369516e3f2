"""The tenant plan: contract 1 (desired state) turned into plain data the targets build from.

Pure: no Pulumi, no files, no environment. The targets get this, never the raw document, so
what a server, a port or a volume is is decided once, here.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from basisit import addressing

GIB = 1024**3
SSH_PORT = 22
# The node exporter every server runs (role node_exporter): the scrape target of contract 2.
METRICS_PORT = 9100
METRICS_PATH = "/metrics"
METRICS_KEY = f"{METRICS_PORT}/tcp"
# The VPN server (role wireguard) listens on this UDP port (the role's wireguard_listen_port).
# Its clients connect from outside the Kommune's network, so each target gives it an endpoint
# there (contract 2: servers[].vpn_endpoint).
VPN_ROLE = "wireguard"
VPN_PORT = 51820
VPN_KEY = f"{VPN_PORT}/udp"


# Every resource name starts with it (e.g. "basisit-10046118-dns"); the one rule for it.
PREFIX_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,19}$")


class PlanError(ValueError):
    """The desired state cannot be turned into infrastructure; the message names the field."""


def check_prefix(prefix: str) -> str:
    """A resource name prefix: 1-20 lower-case letters, digits and '-', a letter first."""
    if not PREFIX_PATTERN.fullmatch(prefix):
        raise PlanError(f"resource prefix {prefix!r}: use 1-20 lower-case letters, digits, '-'")
    return prefix


@dataclass(frozen=True)
class PortSpec:
    port: int
    protocol: str  # tcp | udp
    source: str  # kommune | operators | any

    @property
    def key(self) -> str:
        return f"{self.port}/{self.protocol}"


@dataclass(frozen=True)
class VolumeSpec:
    name: str
    size_gib: float
    mount: str
    fixed_size: bool

    @property
    def size_bytes(self) -> int:
        return round(self.size_gib * GIB)

    @property
    def size_gib_whole(self) -> int:
        """Block storage is sold in whole GiB."""
        return max(1, math.ceil(self.size_gib))


@dataclass(frozen=True)
class ServerSpec:
    instance: str
    service: str
    roles: tuple[str, ...]
    schutzbedarf: str
    flavor: str
    vcpus: int
    ram_mib: int
    disk_gib: int
    host: int
    address: str
    ports: tuple[PortSpec, ...]
    volumes: tuple[VolumeSpec, ...]
    object_storage: bool
    # local target only: 127.0.0.1 port for sshd and for each service port ("53/udp" -> 42101)
    # and the node exporter ("9100/tcp")
    ssh_port: int | None = None
    published: dict[str, int] = field(default_factory=dict)

    @property
    def vpn(self) -> bool:
        """A VPN server: its clients reach it from outside the Kommune's network."""
        return VPN_ROLE in self.roles


@dataclass(frozen=True)
class DnsRecord:
    name: str
    type: str
    value: str


@dataclass(frozen=True)
class TenantPlan:
    ags: str
    name: str
    slug: str
    dns_zone: str
    cidr: str
    gateway: str
    prefix: str  # name prefix of every resource, e.g. "basisit"
    servers: tuple[ServerSpec, ...]
    object_storage: tuple[str, ...]  # instances that want an object storage container

    @property
    def resource_base(self) -> str:
        return f"{self.prefix}-{self.ags}"

    @property
    def records(self) -> tuple[DnsRecord, ...]:
        return tuple(DnsRecord(s.instance, "A", s.address) for s in self.servers)

    def server(self, instance: str) -> ServerSpec:
        for s in self.servers:
            if s.instance == instance:
                return s
        raise KeyError(instance)


def server_services(desired: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The service entries that get a server of their own, in the document's order."""
    return [svc for svc in desired["services"] if svc.get("server")]


def published_port_keys(svc: dict[str, Any]) -> list[str]:
    """Ports the local target publishes on 127.0.0.1 (sshd has its own slot): the service's
    and the node exporter's, which every server runs and Prometheus on the host scrapes."""
    keys: list[str] = []
    for p in svc["ports"]:
        key = f"{p['port']}/{p['protocol']}"
        if p["port"] == SSH_PORT and p["protocol"] == "tcp":
            continue
        if key not in keys:
            keys.append(key)
    if METRICS_KEY not in keys:
        keys.append(METRICS_KEY)
    return keys


def port_slots(desired: Mapping[str, Any]) -> list[str]:
    """Every 127.0.0.1 port the local target needs: "<instance>/ssh", "<instance>/53/udp",
    "<instance>/9100/tcp" (the node exporter)."""
    slots: list[str] = []
    for svc in server_services(desired):
        slots.append(f"{svc['instance']}/ssh")
        slots.extend(f"{svc['instance']}/{key}" for key in published_port_keys(svc))
    return slots


def build_plan(
    desired: Mapping[str, Any],
    hosts: dict[str, int],
    ports: dict[str, int] | None = None,
    prefix: str = "basisit",
) -> TenantPlan:
    """The plan for one Kommune; `hosts`/`ports` come from the driver's allocation records."""
    ags = desired["ags"]
    try:
        subnet = addressing.kommune_subnet(ags)
        gateway = addressing.gateway(ags)
    except addressing.AddressError as exc:
        raise PlanError(f"desired state field ags: {exc}") from None
    seen: set[str] = set()
    servers: list[ServerSpec] = []
    for idx, svc in enumerate(desired["services"]):
        where = f"services[{idx}] (instance {svc.get('instance')!r})"
        if svc["instance"] in seen:
            raise PlanError(f"{where}: instance name used twice in AGS {ags}")
        seen.add(svc["instance"])
        if not svc.get("server"):
            if svc["volumes"]:
                raise PlanError(f"{where}: has volumes but no server to attach them to")
            continue
        if svc["instance"] not in hosts:
            raise PlanError(f"{where}: no host number allocated")
        address = addressing.host_address(ags, hosts[svc["instance"]])
        if address not in subnet:  # pragma: no cover - host_address guarantees it
            raise PlanError(f"{where}: address {address} outside {subnet}")
        vpn_open = any(
            (p["port"], p["protocol"], p["source"]) == (VPN_PORT, "udp", "any")
            for p in svc["ports"]
        )
        if VPN_ROLE in svc["roles"] and not vpn_open:
            # Without it the endpoint the targets make would be closed to the clients.
            raise PlanError(
                f"{where}: role {VPN_ROLE} needs port {VPN_KEY} with source any "
                "(its clients connect from outside the Kommune's network)"
            )
        names = [v["name"] for v in svc["volumes"]]
        if len(names) != len(set(names)):
            raise PlanError(f"{where}: volume names must be unique")
        ssh_port = None
        published: dict[str, int] = {}
        if ports is not None:
            try:
                ssh_port = ports[f"{svc['instance']}/ssh"]
                published = {
                    key: ports[f"{svc['instance']}/{key}"] for key in published_port_keys(svc)
                }
            except KeyError as exc:
                raise PlanError(f"{where}: no local port allocated for {exc.args[0]}") from None
        server = svc["server"]
        servers.append(
            ServerSpec(
                instance=svc["instance"],
                service=svc["service"],
                roles=tuple(svc["roles"]),
                schutzbedarf=svc["schutzbedarf"],
                flavor=server["flavor"],
                vcpus=int(server["vcpus"]),
                ram_mib=int(server["ram_mib"]),
                disk_gib=int(server["disk_gib"]),
                host=hosts[svc["instance"]],
                address=str(address),
                ports=tuple(
                    PortSpec(int(p["port"]), p["protocol"], p["source"]) for p in svc["ports"]
                ),
                volumes=tuple(
                    VolumeSpec(v["name"], float(v["size_gib"]), v["mount"], bool(v["fixed_size"]))
                    for v in svc["volumes"]
                ),
                object_storage=bool(svc["object_storage"]),
                ssh_port=ssh_port,
                published=published,
            )
        )
    addresses = [s.address for s in servers]
    if len(addresses) != len(set(addresses)):
        raise PlanError(f"AGS {ags}: two servers got the same address; allocation is corrupt")
    return TenantPlan(
        ags=ags,
        name=desired["kommune"]["name"],
        slug=desired["kommune"]["slug"],
        dns_zone=desired["dns_zone"],
        cidr=str(subnet),
        gateway=str(gateway),
        prefix=prefix,
        servers=tuple(servers),
        object_storage=tuple(
            svc["instance"] for svc in desired["services"] if svc.get("object_storage")
        ),
    )


def source_cidr(port: PortSpec, plan: TenantPlan, operators_cidr: str) -> str:
    """Who may reach a port: kommune -> the Kommune's own /24 and nothing else."""
    if port.source == "kommune":
        return plan.cidr
    if port.source == "operators":
        return str(ipaddress.IPv4Network(operators_cidr))
    if port.source == "any":
        return "0.0.0.0/0"
    raise PlanError(f"AGS {plan.ags}: unknown port source {port.source!r}")
