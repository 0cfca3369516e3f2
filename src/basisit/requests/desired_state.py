"""Contract 1 from the request database: what a Kommune's approved requests add up to.

Resources are resolved from the catalog here, so that consumers read only this document; its
schema, model and checks are in `basisit.contracts.desired_state`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from sqlalchemy.orm import Session

from basisit import kommunen
from basisit.catalog import load_catalog
from basisit.catalog.models import Catalog, Flavor
from basisit.contracts import desired_state as contract
from basisit.contracts.desired_state import DesiredState, Port, Server, ServiceEntry
from basisit.errors import BasisItError
from basisit.requests.service import Instance, present_instances, require_onboarded
from basisit.store.db import session_scope


def _service_entry(catalog: Catalog, inst: Instance, present: dict[str, Instance]) -> ServiceEntry:
    req = inst.request
    service = catalog.service(req.service_id)
    if service is None:
        raise BasisItError(
            f"instance {inst.name} uses service {req.service_id!r}, which the catalog no longer has"
        )
    plan = service.plan(req.plan)
    if plan is None:
        raise BasisItError(f"instance {inst.name}: plan {req.plan!r} of {service.id} is gone")
    server: Server | None = None
    if service.resources.server and plan.flavor:
        flavor = Flavor.parse(plan.flavor)
        server = {
            "flavor": flavor.name,
            "vcpus": flavor.vcpus,
            "ram_mib": flavor.ram_mib,
            "disk_gib": flavor.disk_gib,
        }
    deps = {*service.dependencies.all_of, *service.dependencies.any_of}
    return {
        "instance": inst.name,
        "service": service.id,
        "service_version": req.service_version,
        "plan": plan.id,
        "status": req.state,
        "request_id": req.id,
        "schutzbedarf": req.schutzbedarf,
        "parameters": dict(req.parameters),
        "roles": list(service.roles),
        "depends_on": sorted(n for n, other in present.items() if other.service_id in deps),
        "server": server,
        "volumes": [
            {
                "name": v.name,
                "size_gib": req.parameters[v.size_parameter],
                "mount": v.mount,
                "fixed_size": v.fixed_size,
            }
            for v in service.resources.volumes
        ],
        "ports": [cast(Port, p.model_dump()) for p in service.resources.ports],
        "object_storage": service.resources.object_storage,
    }


def build_from(session: Session, catalog: Catalog, ags: str) -> DesiredState:
    kommune = kommunen.get(ags)
    # An empty document would read as "this Kommune wants nothing": for one that never joined
    # it is a mistake (a mistyped AGS), and deploying it built a network and keys for nobody.
    require_onboarded(session, kommune.ags)
    present = present_instances(session, kommune.ags)
    document: dict[str, Any] = {
        "schema_version": contract.SCHEMA_VERSION,
        "generated_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "ags": kommune.ags,
        "kommune": {
            "name": kommune.name,
            "typ": kommune.typ,
            "kreis": kommune.kreis,
            "slug": kommune.slug,
        },
        "dns_zone": f"{kommune.slug}.{catalog.settings.dns_zone_suffix}.",
        "services": [
            _service_entry(catalog, inst, present)
            for inst in sorted(present.values(), key=lambda i: i.request.id)
        ],
    }
    return contract.check(document, f"desired state of AGS {kommune.ags}")


def build(ags: str, catalog: Catalog | None = None) -> DesiredState:
    """The Kommune's desired state from the request database and the catalog."""
    catalog = catalog or load_catalog()
    with session_scope() as session:
        return build_from(session, catalog, ags)
