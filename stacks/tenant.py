"""KommuneTenant: everything one Kommune's services need, on any target.

The program that the driver runs inline for a stack (one per AGS) is `program()`: it turns the
desired state (contract 1) into a TenantPlan, lets the chosen target build it under one
KommuneTenant component and exports contract 2 (without deployed_at, which the driver adds)
plus the Kommune's SSH private key and, where backups go to object storage, the backup
credential, both as secrets. Secrets are outputs of their own, never part of `outputs` (a
secret inside it would make all of contract 2 a secret, and the driver writes `outputs` to a
plain file).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pulumi

from stacks import targets
from stacks.model import METRICS_PATH, TenantPlan, build_plan
from stacks.targets.base import ServerHandle, Target

OUTPUTS_SCHEMA_VERSION = 1


BACKUP_CREDENTIAL_OUTPUT = "backup_credential"


class KommuneTenant(pulumi.ComponentResource):
    outputs: pulumi.Output[dict[str, Any]]
    # {auth_url, region (optional), id, secret}; None where backups do not use object storage.
    backup_credential: pulumi.Output[dict[str, str]] | None

    def __init__(
        self,
        plan: TenantPlan,
        target: Target,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("basisit:tenant:KommuneTenant", plan.ags, None, opts)
        target.tenancy(plan, self)
        network = target.network(plan, self)
        servers: dict[str, ServerHandle] = {
            spec.instance: target.server(plan, spec, network, self) for spec in plan.servers
        }
        target.dns(plan, servers, self)
        container = target.object_storage(plan, self)
        credential = target.object_storage_credential(plan, self)
        # Secret whatever the target did: it is a password for the Kommune's backups.
        self.backup_credential = None if credential is None else pulumi.Output.secret(credential)
        self.outputs = pulumi.Output.all(
            network=network.name,
            servers=[self._server_output(plan, name, h) for name, h in servers.items()],
            container=container,
        ).apply(lambda v: self._document(plan, target, v))
        self.register_outputs({"outputs": self.outputs})

    @staticmethod
    def _server_output(plan: TenantPlan, instance: str, handle: ServerHandle) -> pulumi.Output:
        spec = plan.server(instance)
        ssh_host_key = getattr(handle.resource, "ssh_host_key", None)
        return pulumi.Output.all(
            host=handle.ssh_host,
            port=handle.ssh_port,
            host_key=ssh_host_key,
            published=handle.published_ports,
            metrics_host=handle.metrics_host,
            metrics_port=handle.metrics_port,
            vpn_host=handle.vpn_host,
            vpn_port=handle.vpn_port,
        ).apply(
            lambda v: {
                "name": spec.instance,
                "instance": spec.instance,
                "services": [spec.service],
                "roles": list(spec.roles),
                "address": spec.address,
                "ssh": {
                    "host": v["host"],
                    "port": int(v["port"]),
                    "user": handle.ssh_user,
                    **({"host_key": v["host_key"]} if v["host_key"] else {}),
                },
                "published_ports": {k: int(p) for k, p in (v["published"] or {}).items()},
                **KommuneTenant._metrics(v["metrics_host"], v["metrics_port"], handle),
                **KommuneTenant._vpn_endpoint(v["vpn_host"], v["vpn_port"]),
                "volumes": [
                    {"name": vol.name, "mount": vol.mount, "size_bytes": vol.size_bytes}
                    for vol in spec.volumes
                ],
            }
        )

    @staticmethod
    def _metrics(host: str | None, port: Any, handle: ServerHandle) -> dict[str, Any]:
        """The node exporter as a scrape target; nothing for a target that names none."""
        if host is None or port is None:
            return {}
        return {
            "metrics": {
                "address": host,
                "port": int(port),
                "path": METRICS_PATH,
                "sources": list(handle.metrics_sources),
            }
        }

    @staticmethod
    def _vpn_endpoint(host: str | None, port: Any) -> dict[str, Any]:
        """Where VPN clients connect (the inventory's basisit_vpn_endpoint); VPN servers only."""
        if host is None or port is None:
            return {}
        return {"vpn_endpoint": {"host": host, "port": int(port)}}

    @staticmethod
    def _document(plan: TenantPlan, target: Target, v: dict[str, Any]) -> dict[str, Any]:
        return {
            "schema_version": OUTPUTS_SCHEMA_VERSION,
            "ags": plan.ags,
            "kommune": {"name": plan.name, "slug": plan.slug},
            "target": target.name,
            "stack": pulumi.get_stack(),
            "network": {"name": v["network"], "cidr": plan.cidr, "gateway": plan.gateway},
            "dns": {
                "zone": plan.dns_zone,
                "records": [
                    {"name": r.name, "type": r.type, "value": r.value} for r in plan.records
                ],
            },
            "servers": v["servers"],
            "object_storage": {"container": v["container"]} if v["container"] else None,
        }


def program(
    desired: Mapping[str, Any],
    *,
    target: str,
    settings: Any,
    hosts: dict[str, int],
    ports: dict[str, int] | None,
    prefix: str,
    ssh_public_key: str,
) -> Callable[[], None]:
    """The inline Pulumi program for one Kommune; everything it needs comes in as arguments."""

    def run() -> None:
        plan = build_plan(desired, hosts, ports if target == "local" else None, prefix=prefix)
        tenant = KommuneTenant(plan, targets.create(target, settings, ssh_public_key))
        pulumi.export("outputs", tenant.outputs)
        if tenant.backup_credential is not None:
            pulumi.export(BACKUP_CREDENTIAL_OUTPUT, tenant.backup_credential)

    return run
