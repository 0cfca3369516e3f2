"""The submit rule of a Kommune's landscape, one home: dependencies present, the Schutzbedarf
rule (dependencies at least the service's level; at hoch or above a backup at that level), the
instances that rely on a changed one, and the removal check, which is the same rule applied to
the landscape without the removed instance.

Pure: a catalog and a landscape (instance -> what it will be) in, the problems out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from basisit.catalog.models import Catalog
from basisit.schutzbedarf import needs_backup, rank
from basisit.store.models import Request


@dataclass(frozen=True)
class Planned:
    """An instance as it will be once the requests being checked are approved."""

    name: str
    service_id: str
    schutzbedarf: str


def check_rules(catalog: Catalog, req: Request, landscape: dict[str, Planned]) -> list[str]:
    planned = Planned(req.instance, req.service_id, req.schutzbedarf)
    problems = rules_of(catalog, planned, landscape)
    if req.kind == "change":
        problems += [
            f"then {other.name}: {p}" for other, p in dependents_broken(catalog, planned, landscape)
        ]
    return problems


def dependents_broken(
    catalog: Catalog, changed: Planned, landscape: dict[str, Planned]
) -> list[tuple[Planned, str]]:
    """What the other instances that rely on `changed` lack in `landscape`: the submit rule
    (_rules_of) applied to each of them."""
    backup = catalog.settings.backup_service
    problems: list[tuple[Planned, str]] = []
    for other in landscape.values():
        service = catalog.services.get(other.service_id)
        if other.name == changed.name or service is None:
            continue
        deps = {*service.dependencies.all_of, *service.dependencies.any_of}
        if changed.service_id in deps or (
            changed.service_id == backup and needs_backup(other.schutzbedarf)
        ):
            problems += [(other, p) for p in rules_of(catalog, other, landscape)]
    return problems


def rules_of(catalog: Catalog, planned: Planned, landscape: dict[str, Planned]) -> list[str]:
    service = catalog.services[planned.service_id]
    problems: list[str] = []
    level = planned.schutzbedarf
    if level not in service.schutzbedarf:
        problems.append(
            f"Schutzbedarf {level!r} is not offered for {service.id} "
            f"(offered: {', '.join(service.schutzbedarf)})"
        )
        return problems
    others = [p for p in landscape.values() if p.name != planned.name]

    def at_least(services: Iterable[str]) -> tuple[list[Planned], list[Planned]]:
        wanted = set(services)
        found = [p for p in others if p.service_id in wanted]
        return found, [p for p in found if rank(p.schutzbedarf) >= rank(level)]

    for dep in service.dependencies.all_of:
        found, strong = at_least([dep])
        if not found:
            problems.append(
                f"{service.id} needs a {dep} service of the same Kommune: request it together "
                "(submit both at once) or first"
            )
        elif not strong:
            problems.append(
                f"Schutzbedarf: {service.id} at {level!r} needs {dep} at {level!r} or higher, "
                f"but {', '.join(f'{p.name} is {p.schutzbedarf!r}' for p in found)}"
            )
    if service.dependencies.any_of:
        found, strong = at_least(service.dependencies.any_of)
        if not found:
            problems.append(
                f"{service.id} needs one of {', '.join(service.dependencies.any_of)} in the same "
                "Kommune (something to work on)"
            )
        elif not strong:
            problems.append(
                f"Schutzbedarf: {service.id} at {level!r} needs at least one of its dependencies "
                f"at {level!r} or higher"
            )
    backup = catalog.settings.backup_service
    if needs_backup(level) and service.id != backup:
        found, strong = at_least([backup])
        if not strong:
            problems.append(
                f"Schutzbedarf {level!r}: {service.id} needs a {backup} service at {level!r} or "
                "higher for the same Kommune"
                + (f" ({', '.join(p.name + ' is ' + repr(p.schutzbedarf) for p in found)})"
                   if found else "")
            )  # fmt: skip
    return problems


def check_removal(catalog: Catalog, req: Request, landscape: dict[str, Planned]) -> list[str]:
    """A decommission must not leave another instance without what it needs: the submit rule
    applied to the landscape without the removed instance (`landscape` already lacks it)."""
    removed = Planned(req.instance, req.service_id, req.schutzbedarf)
    return [
        f"{other.name} ({other.service_id}): {p}"
        for other, p in dependents_broken(catalog, removed, landscape)
    ]
