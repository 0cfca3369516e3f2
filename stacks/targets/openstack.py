"""Target openstack: a Kommune tenant in eGo-Saar's (SCS) OpenStack.

Per Kommune: a project with the operators' group assigned, quotas summed from the plans, one
network/subnet in the Kommune's /24 with a router, one security group per server that lets in
only the desired state's ports (plus management from the operators' network), servers with
SCS flavors and the standard image, volumes, a DNS zone with records and an object storage
container for every service that wants one.

Isolation: a security group rule with source "kommune" admits the Kommune's own /24 and
nothing else; ingress has no 0.0.0.0/0 rule unless the catalog says "any"; the node exporter
(the Prometheus scrape target, the server's private address:9100) is open to the monitoring
network only (BASISIT_OS_MONITORING_CIDR, by default the operators' network). Projects are
created with the admin provider; everything inside a project with a provider scoped to it.
"""

from __future__ import annotations

import ipaddress
import os
import warnings
from dataclasses import dataclass
from typing import Any

import pulumi

with warnings.catch_warnings():
    # The SDK's package init warns about its own deprecated aliases, none of which we use.
    warnings.simplefilter("ignore", DeprecationWarning)
    import pulumi_openstack as openstack

from stacks.model import (
    METRICS_PORT,
    SSH_PORT,
    PlanError,
    ServerSpec,
    TenantPlan,
    source_cidr,
)
from stacks.targets.base import NetworkHandle, ServerHandle, Target

# Outbound beyond the own network: package mirrors only (HTTP/HTTPS).
EGRESS_WEB_PORTS = (80, 443)
# A new project's "default" security group has these four rules; the quota must leave room.
DEFAULT_GROUP_RULES = 4
# Router interface and DHCP port besides one port per server.
INFRA_PORTS = 2


@dataclass(frozen=True)
class OpenStackSettings:
    cloud: str = "ego-saar-admin"
    domain_id: str = "default"
    operators_group: str = "ego-saar-operators"
    operator_roles: tuple[str, ...] = ("member",)
    image: str = "Debian 12"
    external_network: str = "public"
    operators_cidr: str = "172.31.250.0/24"
    # Where Prometheus scrapes from; empty: the operators' network.
    monitoring_cidr: str = ""
    dns_email: str = "hostmaster@ego-saar.example"
    dns_resolvers: tuple[str, ...] = ()
    ssh_user: str = "debian"

    @property
    def scrapers(self) -> str:
        """The CIDR Prometheus scrapes the node exporters from."""
        value = self.monitoring_cidr or self.operators_cidr
        try:
            return str(ipaddress.IPv4Network(value))
        except ValueError as exc:
            setting = "MONITORING_CIDR" if self.monitoring_cidr else "OPERATORS_CIDR"
            raise PlanError(f"BASISIT_OS_{setting}={value!r}: {exc}") from None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> OpenStackSettings:
        env = dict(os.environ if env is None else env)
        base = cls()

        def get(key: str, default: str) -> str:
            return env.get(f"BASISIT_OS_{key}") or default

        def get_list(key: str, default: tuple[str, ...]) -> tuple[str, ...]:
            raw = env.get(f"BASISIT_OS_{key}")
            if not raw:
                return default
            return tuple(x.strip() for x in raw.split(",") if x.strip())

        return cls(
            cloud=get("CLOUD", base.cloud),
            domain_id=get("DOMAIN_ID", base.domain_id),
            operators_group=get("OPERATORS_GROUP", base.operators_group),
            operator_roles=get_list("OPERATOR_ROLES", base.operator_roles),
            image=get("IMAGE", base.image),
            external_network=get("EXTERNAL_NETWORK", base.external_network),
            operators_cidr=get("OPERATORS_CIDR", base.operators_cidr),
            monitoring_cidr=get("MONITORING_CIDR", base.monitoring_cidr),
            dns_email=get("DNS_EMAIL", base.dns_email),
            dns_resolvers=get_list("DNS_RESOLVERS", base.dns_resolvers),
            ssh_user=get("SSH_USER", base.ssh_user),
        )


@dataclass(frozen=True)
class RuleSpec:
    direction: str
    protocol: str | None  # None: any protocol
    port: int | None
    remote: str
    why: str


def security_rules(
    plan: TenantPlan, spec: ServerSpec, settings: OpenStackSettings
) -> list[RuleSpec]:
    """The complete rule set of one server's security group; everything else is denied."""
    rules: list[RuleSpec] = []
    seen: set[tuple[str, str | None, int | None, str]] = set()

    def add(rule: RuleSpec) -> None:
        key = (rule.direction, rule.protocol, rule.port, rule.remote)
        if key not in seen:
            seen.add(key)
            rules.append(rule)

    for port in spec.ports:
        add(
            RuleSpec(
                "ingress",
                port.protocol,
                port.port,
                source_cidr(port, plan, settings.operators_cidr),
                f"{spec.service} {port.key} from {port.source}",
            )
        )
    # Besides the catalog's ports: Ansible over SSH from the operators' network, the node
    # exporter scrape from the monitoring network (Prometheus runs inside the platform, never
    # in a Kommune's network, and a Kommune has no business reading its servers' exporters).
    add(RuleSpec("ingress", "tcp", SSH_PORT, settings.operators_cidr, f"management {SSH_PORT}"))
    add(RuleSpec("ingress", "tcp", METRICS_PORT, settings.scrapers, "node exporter scrape"))
    add(RuleSpec("egress", None, None, plan.cidr, "own network"))
    add(RuleSpec("egress", None, None, settings.operators_cidr, "operators"))
    for number in EGRESS_WEB_PORTS:
        add(RuleSpec("egress", "tcp", number, "0.0.0.0/0", f"package mirrors {number}"))
    return rules


def quotas(plan: TenantPlan, settings: OpenStackSettings) -> dict[str, dict[str, int]]:
    """Quotas from the plans: the sum of what the Kommune's servers and volumes need."""
    servers = plan.servers
    volumes = [v for s in servers for v in s.volumes]
    rules = sum(len(security_rules(plan, s, settings)) for s in servers)
    return {
        "compute": {
            "instances": len(servers),
            "cores": sum(s.vcpus for s in servers),
            "ram": sum(s.ram_mib for s in servers),
            "key_pairs": 1,
            "server_groups": 0,
            "server_group_members": 0,
        },
        "blockstorage": {
            "volumes": len(volumes),
            "gigabytes": sum(v.size_gib_whole for v in volumes),
            "snapshots": len(volumes),
            "backups": 0,
            "backup_gigabytes": 0,
        },
        "network": {
            "network": 1,
            "subnet": 1,
            "router": 1,
            "port": len(servers) + INFRA_PORTS,
            "floatingip": 0,
            "security_group": len(servers) + 1,
            "security_group_rule": rules + DEFAULT_GROUP_RULES,
            "subnetpool": 0,
            "rbac_policy": 0,
        },
        "dns": {
            "zones": 1,
            # SOA and NS besides one A record per server
            "zone_recordsets": len(plan.records) + 2,
            "zone_records": len(plan.records) + 2,
            "recordset_records": 1,
        },
    }


class OpenStackTarget(Target):
    name = "openstack"

    def __init__(self, settings: OpenStackSettings, ssh_public_key: str) -> None:
        self.settings = settings
        self.ssh_public_key = ssh_public_key
        self.admin: openstack.Provider | None = None
        self.scoped: openstack.Provider | None = None
        self.project: openstack.identity.Project | None = None
        self.keypair: openstack.compute.Keypair | None = None
        self.network_id: pulumi.Output[str] | None = None

    def _opts(self, parent: pulumi.Resource, **kw: Any) -> pulumi.ResourceOptions:
        assert self.scoped is not None
        return pulumi.ResourceOptions(parent=parent, provider=self.scoped, **kw)

    def tenancy(self, plan: TenantPlan, parent: pulumi.Resource) -> None:
        s = self.settings
        base = plan.resource_base
        self.admin = openstack.Provider(
            f"{base}-admin", cloud=s.cloud, opts=pulumi.ResourceOptions(parent=parent)
        )
        admin_opts = pulumi.ResourceOptions(parent=parent, provider=self.admin)
        self.project = openstack.identity.Project(
            f"{base}-project",
            name=f"{base}-{plan.slug}"[:64],
            domain_id=s.domain_id,
            description=f"Basis-IT Mandant {plan.name} (AGS {plan.ags})",
            tags=self.tags(plan),
            opts=admin_opts,
        )
        project_id = self.project.id
        invoke = pulumi.InvokeOutputOptions(provider=self.admin)
        group = openstack.identity.get_group_output(
            name=s.operators_group, domain_id=s.domain_id, opts=invoke
        )
        for role_name in s.operator_roles:
            role = openstack.identity.get_role_output(name=role_name, opts=invoke)
            openstack.identity.RoleAssignment(
                f"{base}-operators-{role_name}",
                group_id=group.id,
                project_id=project_id,
                role_id=role.id,
                opts=admin_opts,
            )
        q = quotas(plan, s)
        openstack.compute.QuotaSetV2(
            f"{base}-quota-compute", project_id=project_id, **q["compute"], opts=admin_opts
        )
        openstack.blockstorage.QuoteSetV3(
            f"{base}-quota-volume",
            project_id=project_id,
            volume_type_quota={},
            **q["blockstorage"],
            opts=admin_opts,
        )
        openstack.networking.QuotaV2(
            f"{base}-quota-network", project_id=project_id, **q["network"], opts=admin_opts
        )
        openstack.dns.QuotaV2(
            f"{base}-quota-dns", project_id=project_id, **q["dns"], opts=admin_opts
        )
        # Everything inside the project is created with credentials scoped to it.
        self.scoped = openstack.Provider(
            f"{base}-scoped",
            cloud=s.cloud,
            tenant_id=project_id,
            opts=pulumi.ResourceOptions(parent=parent),
        )
        self.keypair = openstack.compute.Keypair(
            f"{base}-keypair",
            name=base,
            public_key=self.ssh_public_key,
            opts=self._opts(parent),
        )

    def network(self, plan: TenantPlan, parent: pulumi.Resource) -> NetworkHandle:
        base = plan.resource_base
        external = openstack.networking.get_network_output(
            name=self.settings.external_network,
            external=True,
            opts=pulumi.InvokeOutputOptions(provider=self.scoped),
        )
        net = openstack.networking.Network(
            f"{base}-net",
            name=base,
            admin_state_up=True,
            tags=self.tags(plan),
            opts=self._opts(parent),
        )
        resolvers = [s.address for s in plan.servers if "powerdns" in s.roles] or list(
            self.settings.dns_resolvers
        )
        network_address = plan.cidr.split("/")[0].rsplit(".", 1)[0]
        subnet = openstack.networking.Subnet(
            f"{base}-subnet",
            name=base,
            network_id=net.id,
            cidr=plan.cidr,
            ip_version=4,
            gateway_ip=plan.gateway,
            enable_dhcp=True,
            # Servers get fixed addresses from .10 up; DHCP and router ports take .2 - .9.
            allocation_pools=[
                openstack.networking.SubnetAllocationPoolArgs(
                    start=f"{network_address}.2", end=f"{network_address}.9"
                )
            ],
            dns_nameservers=resolvers,
            tags=self.tags(plan),
            opts=self._opts(parent),
        )
        router = openstack.networking.Router(
            f"{base}-router",
            name=base,
            external_network_id=external.id,
            tags=self.tags(plan),
            opts=self._opts(parent),
        )
        iface = openstack.networking.RouterInterface(
            f"{base}-router-iface",
            router_id=router.id,
            subnet_id=subnet.id,
            opts=self._opts(parent),
        )
        self.network_id = net.id
        return NetworkHandle(name=net.name, resource=net, depends_on=[subnet, iface])

    def server(
        self,
        plan: TenantPlan,
        spec: ServerSpec,
        network: NetworkHandle,
        parent: pulumi.Resource,
    ) -> ServerHandle:
        base = f"{plan.resource_base}-{spec.instance}"
        tags = self.tags(plan, catalog_service=spec.service, instance=spec.instance)
        group = openstack.networking.SecGroup(
            f"{base}-sg",
            name=base,
            description=f"{spec.service} of AGS {plan.ags}: only the catalog's ports",
            delete_default_rules=True,  # deny by default, egress included
            tags=tags,
            opts=self._opts(parent),
        )
        for idx, rule in enumerate(security_rules(plan, spec, self.settings)):
            openstack.networking.SecGroupRule(
                f"{base}-rule-{idx}",
                security_group_id=group.id,
                direction=rule.direction,
                ethertype="IPv4",
                protocol=rule.protocol,
                port_range_min=rule.port,
                port_range_max=rule.port,
                remote_ip_prefix=rule.remote,
                description=rule.why,
                opts=self._opts(group),
            )
        assert self.keypair is not None and self.network_id is not None
        instance = openstack.compute.Instance(
            f"{base}-server",
            name=spec.instance,
            flavor_name=spec.flavor,
            image_name=self.settings.image,
            key_pair=self.keypair.name,
            security_groups=[group.name],
            networks=[
                openstack.compute.InstanceNetworkArgs(
                    uuid=self.network_id, fixed_ip_v4=spec.address
                )
            ],
            metadata={
                "ags": plan.ags,
                "catalog_service": spec.service,
                "instance": spec.instance,
                "schutzbedarf": spec.schutzbedarf,
            },
            tags=tags,
            # Quotas are exact sums, so a replacement must free its slot first.
            opts=self._opts(parent, depends_on=network.depends_on, delete_before_replace=True),
        )
        for vol in spec.volumes:
            volume = openstack.blockstorage.Volume(
                f"{base}-vol-{vol.name}",
                name=f"{base}-{vol.name}",
                size=vol.size_gib_whole,
                description=f"{spec.service} {vol.mount}",
                metadata={
                    "ags": plan.ags,
                    "catalog_service": spec.service,
                    "mount": vol.mount,
                },
                opts=self._opts(parent),
            )
            openstack.compute.VolumeAttach(
                f"{base}-vol-{vol.name}-attach",
                instance_id=instance.id,
                volume_id=volume.id,
                opts=self._opts(parent),
            )
        return ServerHandle(
            ssh_host=spec.address,
            ssh_port=SSH_PORT,
            ssh_user=self.settings.ssh_user,
            resource=instance,
            metrics_host=spec.address,
            metrics_port=METRICS_PORT,
            metrics_sources=[self.settings.scrapers],
        )

    def dns(
        self,
        plan: TenantPlan,
        servers: dict[str, ServerHandle],
        parent: pulumi.Resource,
    ) -> None:
        zone = openstack.dns.Zone(
            f"{plan.resource_base}-zone",
            name=plan.dns_zone,
            email=self.settings.dns_email,
            ttl=3600,
            description=f"Basis-IT {plan.name} (AGS {plan.ags})",
            opts=self._opts(parent),
        )
        for record in plan.records:
            openstack.dns.RecordSet(
                f"{plan.resource_base}-dns-{record.name}",
                zone_id=zone.id,
                name=f"{record.name}.{plan.dns_zone}",
                type=record.type,
                records=[record.value],
                ttl=300,
                opts=self._opts(zone),
            )

    def object_storage(self, plan: TenantPlan, parent: pulumi.Resource) -> pulumi.Input[str] | None:
        names: list[pulumi.Output[str]] = []
        for instance in plan.object_storage:
            service = next(
                (s.service for s in plan.servers if s.instance == instance), "object-storage"
            )
            container = openstack.objectstorage.Container(
                f"{plan.resource_base}-{instance}-objects",
                name=f"{plan.resource_base}-{instance}",
                metadata={"ags": plan.ags, "catalog_service": service, "instance": instance},
                opts=self._opts(parent),
            )
            names.append(container.name)
        return names[0] if names else None
