"""Target openstack: a Kommune tenant in eGo-Saar's (SCS) OpenStack.

Per Kommune: a project with the operators' group assigned, quotas summed from the plans, one
network/subnet in the Kommune's /24 with a router, one security group per server that lets in
only the desired state's ports (plus management from the operators' network), servers with
SCS flavors and the standard image, volumes, a DNS zone with records and an object storage
container for every service that wants one, with one application credential per Kommune for
the backups into it (see OpenStackTarget.object_storage_credential).

Isolation: a security group rule with source "kommune" admits the Kommune's own /24 and
nothing else; ingress has no 0.0.0.0/0 rule unless the catalog says "any"; the only address
reachable from outside is the floating IP of a VPN server (role wireguard), whose group admits
from anywhere only what the catalog's VPN service opens, WireGuard's UDP port; the node exporter
(the Prometheus scrape target, the server's private address:9100) is open to the monitoring
network only (BASISIT_OS_MONITORING_CIDR, by default the operators' network). Projects are
created with the admin provider; everything inside a project with a provider scoped to it.
"""

from __future__ import annotations

import ipaddress
import os
import urllib.parse
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
    VPN_PORT,
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
# What restic's swift backend does (keystone login aside): on the container, check that it
# exists and list its objects; on objects, read, write and (prune) delete. No POST (metadata,
# ACLs), no PUT/DELETE of the container itself.
BACKUP_CONTAINER_METHODS = ("GET", "HEAD")
BACKUP_OBJECT_METHODS = ("GET", "HEAD", "PUT", "DELETE")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


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
    # Keystone's public v3 URL as the servers reach it, and the region: what the backup
    # credential of a Kommune with object storage logs in with (OS_AUTH_URL, OS_REGION_NAME).
    auth_url: str = ""
    region: str = ""
    # Roles the backup credential holds in the Kommune's project: those the object store
    # accepts for reading and writing a container (Swift's operator_roles, RGW's accepted roles).
    backup_roles: tuple[str, ...] = ("member",)
    # Bind the backup credential to its containers' object-store paths with Keystone access
    # rules. Off only for an object store that cannot check them (Ceph RGW refuses such tokens).
    backup_access_rules: bool = True

    def backup_auth_url(self) -> str:
        """BASISIT_OS_AUTH_URL, checked: a Kommune with object storage needs it."""
        url = self.auth_url.strip()
        if not url:
            raise PlanError(
                "BASISIT_OS_AUTH_URL is not set: backups into object storage log in to "
                "Keystone there (e.g. https://keystone.example:5000/v3)"
            )
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise PlanError(f"BASISIT_OS_AUTH_URL={url!r}: not an http(s) URL")
        return url

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

        def get_bool(key: str, default: bool) -> bool:
            raw = (env.get(f"BASISIT_OS_{key}") or "").strip().lower()
            if not raw:
                return default
            if raw not in _TRUE + _FALSE:
                raise PlanError(f"BASISIT_OS_{key}={raw!r}: use one of {', '.join(_TRUE + _FALSE)}")
            return raw in _TRUE

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
            auth_url=get("AUTH_URL", base.auth_url),
            region=get("REGION", base.region),
            backup_roles=get_list("BACKUP_ROLES", base.backup_roles),
            backup_access_rules=get_bool("BACKUP_ACCESS_RULES", base.backup_access_rules),
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
            # One per VPN server: its endpoint for clients outside the Kommune's network.
            "floatingip": sum(1 for s in servers if s.vpn),
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
        self.subnet_id: pulumi.Output[str] | None = None

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
        # The quota names come from a dict (quotas()), which the provider's keyword overloads
        # cannot check: the four type: ignore[call-overload] below.
        openstack.compute.QuotaSetV2(  # type: ignore[call-overload]
            f"{base}-quota-compute", project_id=project_id, **q["compute"], opts=admin_opts
        )
        openstack.blockstorage.QuoteSetV3(  # type: ignore[call-overload]
            f"{base}-quota-volume",
            project_id=project_id,
            volume_type_quota={},
            **q["blockstorage"],
            opts=admin_opts,
        )
        openstack.networking.QuotaV2(  # type: ignore[call-overload]
            f"{base}-quota-network", project_id=project_id, **q["network"], opts=admin_opts
        )
        openstack.dns.QuotaV2(  # type: ignore[call-overload]
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
        self.subnet_id = subnet.id
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
        # A VPN server's port is made beforehand, so its floating IP is bound to that port (and
        # stays bound when the server is replaced); its security group then sits on the port.
        port = self._vpn_port(plan, spec, group, tags, network, parent) if spec.vpn else None
        instance = openstack.compute.Instance(
            f"{base}-server",
            name=spec.instance,
            flavor_name=spec.flavor,
            image_name=self.settings.image,
            key_pair=self.keypair.name,
            security_groups=None if port is not None else [group.name],
            networks=[
                openstack.compute.InstanceNetworkArgs(port=port.id)
                if port is not None
                else openstack.compute.InstanceNetworkArgs(
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
        vpn_host = None
        if port is not None:
            vpn_host = self._vpn_address(plan, spec, port, tags, network, parent)
        return ServerHandle(
            ssh_host=spec.address,
            ssh_port=SSH_PORT,
            ssh_user=self.settings.ssh_user,
            resource=instance,
            metrics_host=spec.address,
            metrics_port=METRICS_PORT,
            metrics_sources=[self.settings.scrapers],
            vpn_host=vpn_host,
            vpn_port=None if port is None else VPN_PORT,
        )

    def _vpn_port(
        self,
        plan: TenantPlan,
        spec: ServerSpec,
        group: openstack.networking.SecGroup,
        tags: list[str],
        network: NetworkHandle,
        parent: pulumi.Resource,
    ) -> openstack.networking.Port:
        """The VPN server's port in the Kommune's network, at the server's fixed address."""
        assert self.network_id is not None and self.subnet_id is not None
        base = f"{plan.resource_base}-{spec.instance}"
        return openstack.networking.Port(
            f"{base}-port",
            name=base,
            network_id=self.network_id,
            admin_state_up=True,
            fixed_ips=[
                openstack.networking.PortFixedIpArgs(
                    subnet_id=self.subnet_id, ip_address=spec.address
                )
            ],
            security_group_ids=[group.id],
            tags=tags,
            opts=self._opts(parent, depends_on=network.depends_on),
        )

    def _vpn_address(
        self,
        plan: TenantPlan,
        spec: ServerSpec,
        port: openstack.networking.Port,
        tags: list[str],
        network: NetworkHandle,
        parent: pulumi.Resource,
    ) -> pulumi.Output[str]:
        """A floating IP from the external network on the VPN server's port: the endpoint
        the Kommune's VPN clients connect to. The quota allows exactly one per VPN server; the
        port's security group admits from anywhere only WireGuard's UDP port (the catalog's)."""
        fip = openstack.networking.FloatingIp(
            f"{plan.resource_base}-{spec.instance}-fip",
            pool=self.settings.external_network,
            port_id=port.id,
            fixed_ip=spec.address,
            description=f"VPN endpoint of {spec.instance} (AGS {plan.ags})",
            tags=tags,
            # Neutron binds a floating IP only to a subnet that has a router to its network.
            opts=self._opts(parent, depends_on=network.depends_on),
        )
        return fip.address

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

    @staticmethod
    def container_name(plan: TenantPlan, instance: str) -> str:
        return f"{plan.resource_base}-{instance}"

    def object_storage(self, plan: TenantPlan, parent: pulumi.Resource) -> pulumi.Input[str] | None:
        names: list[pulumi.Output[str]] = []
        for instance in plan.object_storage:
            service = next(
                (s.service for s in plan.servers if s.instance == instance), "object-storage"
            )
            container = openstack.objectstorage.Container(
                f"{plan.resource_base}-{instance}-objects",
                name=self.container_name(plan, instance),
                metadata={"ags": plan.ags, "catalog_service": service, "instance": instance},
                opts=self._opts(parent),
            )
            names.append(container.name)
        return names[0] if names else None

    def object_storage_credential(
        self, plan: TenantPlan, parent: pulumi.Resource
    ) -> pulumi.Output[dict[str, str]] | None:
        """One Keystone application credential per Kommune with object storage: what the
        Kommune's backup clients (restic) log in with. A secret output.

        Privilege, as little as works:
        - Created with the provider scoped to the Kommune's project, so it is bound to that
          project alone: it can never reach another Kommune's containers.
        - Its roles are only BASISIT_OS_BACKUP_ROLES (default member), not all roles of its
          owner; unrestricted=False, so it cannot make further credentials or trusts.
        - Access rules (BASISIT_OS_BACKUP_ACCESS_RULES, default on) narrow it further to the
          object-store API of the Kommune's own containers: GET/HEAD on the container, GET/HEAD/
          PUT/DELETE on its objects. Nothing else in the project (servers, volumes, networks,
          other containers, container ACLs) is reachable with it.
        - Owner: the deploy identity that creates everything inside the project; this target
          has no per-tenant service user. Keystone lets a user make application credentials only
          for itself, so a dedicated backup user would need a password of its own, stored and
          used by every deploy, while the credential could do no less than it does with the
          rules above. Consequence: the deploy identity must hold the backup roles in the
          project (e.g. through an inherited domain assignment), and the credential stops
          working if that identity loses them.
        - The secret is generated by Keystone and kept by the provider as a secret output
          (encrypted in the state); no expiry, replace the resource to rotate it.
        """
        if not plan.object_storage:
            return None
        s = self.settings
        auth_url = s.backup_auth_url()
        if not s.backup_roles:
            raise PlanError("BASISIT_OS_BACKUP_ROLES is empty: the backup credential needs a role")
        rules: list[openstack.identity.ApplicationCredentialAccessRuleArgs] = []
        if s.backup_access_rules:
            for instance in plan.object_storage:
                # The account segment ("AUTH_<project id>", prefix set by the operator of the
                # object store) is a wildcard: the project-scoped token reaches no other account.
                container = f"/v1/*/{self.container_name(plan, instance)}"
                rules.extend(
                    openstack.identity.ApplicationCredentialAccessRuleArgs(
                        service="object-store", method=method, path=path
                    )
                    for path, methods in (
                        (container, BACKUP_CONTAINER_METHODS),
                        (f"{container}/**", BACKUP_OBJECT_METHODS),
                    )
                    for method in methods
                )
        credential = openstack.identity.ApplicationCredential(
            f"{plan.resource_base}-backup-credential",
            name=f"{plan.resource_base}-backup",
            description=f"Basis-IT backups (restic) of AGS {plan.ags} into its object storage",
            roles=list(s.backup_roles),
            unrestricted=False,
            access_rules=rules or None,
            opts=self._opts(parent),
        )
        region = s.region.strip()
        return pulumi.Output.secret(
            pulumi.Output.all(id=credential.id, secret=credential.secret).apply(
                lambda v: {
                    "auth_url": auth_url,
                    **({"region": region} if region else {}),
                    "id": v["id"],
                    "secret": v["secret"],
                }
            )
        )
