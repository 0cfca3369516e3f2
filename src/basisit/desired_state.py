"""Contract 1: a Kommune's desired state, the one input of the stacks and the roles.

Resources are resolved from the catalog here, so that consumers read only this document.
"""

from __future__ import annotations

import datetime as dt
import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
from sqlalchemy.orm import Session

from basisit import kommunen
from basisit.catalog import load_catalog
from basisit.catalog.models import Catalog, Flavor
from basisit.errors import BasisItError, ValidationFailed
from basisit.requests.service import Instance, present_instances
from basisit.store.db import session_scope

SCHEMA_VERSION = 1


@cache
def schema() -> dict[str, Any]:
    text = resources.files("basisit.schemas").joinpath("desired-state.v1.schema.json").read_text()
    return json.loads(text)


def validate(document: dict[str, Any]) -> None:
    """Raise ValidationFailed listing every way the document breaks the schema."""
    validator = jsonschema.Draft202012Validator(schema())
    problems = [
        f"{'.'.join(str(p) for p in err.absolute_path) or '(top level)'}: {err.message}"
        for err in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    ]
    if problems:
        raise ValidationFailed("the desired state does not match schema version 1", problems)


def _service_entry(
    catalog: Catalog, inst: Instance, present: dict[str, Instance]
) -> dict[str, Any]:
    req = inst.request
    service = catalog.service(req.service_id)
    if service is None:
        raise BasisItError(
            f"instance {inst.name} uses service {req.service_id!r}, which the catalog no longer has"
        )
    plan = service.plan(req.plan)
    if plan is None:
        raise BasisItError(f"instance {inst.name}: plan {req.plan!r} of {service.id} is gone")
    server = None
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
        "ports": [p.model_dump() for p in service.resources.ports],
        "object_storage": service.resources.object_storage,
    }


def build_from(session: Session, catalog: Catalog, ags: str) -> dict[str, Any]:
    kommune = kommunen.get(ags)
    present = present_instances(session, kommune.ags)
    document = {
        "schema_version": SCHEMA_VERSION,
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
    validate(document)
    return document


def build(ags: str, catalog: Catalog | None = None) -> dict[str, Any]:
    """The Kommune's desired state from the request database and the catalog."""
    catalog = catalog or load_catalog()
    with session_scope() as session:
        return build_from(session, catalog, ags)
