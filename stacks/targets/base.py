"""The one small interface every target implements.

KommuneTenant calls these in order: tenancy, network, one server per ServerSpec, dns,
object_storage, object_storage_credential. A target creates its resources as children of the
tenant (``parent``) and hands back what the stack outputs (contract 2) need.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pulumi

from stacks.model import ServerSpec, TenantPlan


@dataclass
class NetworkHandle:
    name: pulumi.Output[str]
    resource: pulumi.Resource
    # resources a server must wait for besides the network (router interface, ...)
    depends_on: list[pulumi.Resource] = field(default_factory=list)


@dataclass
class ServerHandle:
    ssh_host: pulumi.Input[str]
    ssh_port: pulumi.Input[int]
    ssh_user: str
    resource: pulumi.Resource
    # service port "53/udp" -> port reachable on ssh_host (local: 127.0.0.1 port)
    published_ports: dict[str, pulumi.Input[int]] = field(default_factory=dict)
    # Where Prometheus scrapes the server's node exporter, and the sources its scrapes arrive
    # from as the server sees them (its host firewall opens the exporter to these only).
    metrics_host: pulumi.Input[str] | None = None
    metrics_port: pulumi.Input[int] | None = None
    metrics_sources: list[str] = field(default_factory=list)
    # VPN servers only: where the VPN clients reach the WireGuard port, from outside the
    # Kommune's network (local: a 127.0.0.1 port; openstack: a floating IP).
    vpn_host: pulumi.Input[str] | None = None
    vpn_port: pulumi.Input[int] | None = None


class Target(ABC):
    name: ClassVar[str]

    def tenancy(self, plan: TenantPlan, parent: pulumi.Resource) -> None:  # noqa: B027
        """Project, quotas, access (openstack). Nothing for a target without tenancy."""

    @abstractmethod
    def network(self, plan: TenantPlan, parent: pulumi.Resource) -> NetworkHandle: ...

    @abstractmethod
    def server(
        self,
        plan: TenantPlan,
        spec: ServerSpec,
        network: NetworkHandle,
        parent: pulumi.Resource,
    ) -> ServerHandle: ...

    def dns(  # noqa: B027
        self,
        plan: TenantPlan,
        servers: dict[str, ServerHandle],
        parent: pulumi.Resource,
    ) -> None:
        """Zone and records where the target has a DNS service; else they are outputs only."""

    def object_storage(self, plan: TenantPlan, parent: pulumi.Resource) -> pulumi.Input[str] | None:
        """The container name for backups, or None where backups go elsewhere."""
        return None

    def object_storage_credential(
        self, plan: TenantPlan, parent: pulumi.Resource
    ) -> pulumi.Output[dict[str, str]] | None:
        """What the backup clients log in to the object storage with ({auth_url, region
        (optional), id, secret}), as a secret Output; None where backups go elsewhere."""
        return None

    @staticmethod
    def tags(plan: TenantPlan, **extra: Any) -> list[str]:
        """Tags every taggable resource carries, so it can be traced to AGS and service."""
        tags = ["basisit", f"ags={plan.ags}"]
        tags.extend(f"{k}={v}" for k, v in sorted(extra.items()))
        return tags
