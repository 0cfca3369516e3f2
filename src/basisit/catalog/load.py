"""Load catalog/*.yaml, validate every file, and report every problem at once."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from pydantic import ValidationError

from basisit import paths
from basisit.catalog.models import Catalog, Flavor, Service, Settings
from basisit.catalog.parameters import check_value
from basisit.catalog.role_metrics import check_metered_metrics
from basisit.errors import ValidationFailed
from basisit.schutzbedarf import rank

SETTINGS_FILE = "catalog.yaml"
# Billing settings (overhead, allocation key): their own schema, read by basisit.billing.
BILLING_FILE = "billing.yaml"
SCHEMA_FILE = "schema.json"


def plain(value: Any) -> Any:
    """YAML turns unquoted dates into date objects; the schema speaks JSON, so use strings."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _where(path: Any) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def _read_yaml(file: Path, problems: list[str]) -> Any:
    try:
        return plain(yaml.safe_load(file.read_text(encoding="utf-8")))
    except yaml.YAMLError as exc:
        problems.append(f"{file.name}: not valid YAML: {exc}".replace("\n", " "))
    except UnicodeDecodeError as exc:
        problems.append(f"{file.name}: not UTF-8 text: {exc}")
    except OSError as exc:
        problems.append(f"{file.name}: cannot read: {exc}")
    return None


def _load_services(
    directory: Path, problems: list[str], broken: set[str]
) -> tuple[Settings | None, dict[str, Service]]:
    """The settings and every service file that loads; the stems of those that do not go to
    `broken`, so that what depends on them is reported as a consequence, not a cause."""
    try:
        schema = json.loads((directory / SCHEMA_FILE).read_text(encoding="utf-8"))
        jsonschema.Draft202012Validator.check_schema(schema)
    except (ValueError, jsonschema.SchemaError) as exc:
        # Without a sound schema no service file can be checked.
        problems.append(f"{SCHEMA_FILE}: not a valid JSON Schema: {exc}".split("\n")[0])
        return None, {}
    validator = jsonschema.Draft202012Validator(schema)

    settings: Settings | None = None
    settings_file = directory / SETTINGS_FILE
    raw_settings = _read_yaml(settings_file, problems) if settings_file.is_file() else None
    if raw_settings is not None:
        try:
            settings = Settings.model_validate(raw_settings)
        except ValidationError as exc:
            for err in exc.errors():
                problems.append(f"{SETTINGS_FILE}: {_where(err['loc'])}: {err['msg']}")

    services: dict[str, Service] = {}
    for file in sorted(directory.glob("*.yaml")):
        if file.name in (SETTINGS_FILE, BILLING_FILE):
            continue
        known = len(problems)
        raw = _read_yaml(file, problems)
        if raw is None:
            if len(problems) == known:  # nothing but whitespace or comments
                problems.append(f"{file.name}: empty file")
            broken.add(file.stem)
            continue
        errors = sorted(validator.iter_errors(raw), key=lambda e: list(e.absolute_path))
        for err in errors:
            problems.append(f"{file.name}: {_where(err.absolute_path)}: {err.message}")
        if errors:
            broken.add(file.stem)
            continue
        try:
            service = Service.model_validate(raw)
        except ValidationError as exc:
            for err in exc.errors():
                problems.append(f"{file.name}: {_where(err['loc'])}: {err['msg']}")
            broken.add(file.stem)
            continue
        if file.stem != service.id:
            problems.append(f"{file.name}: id: {service.id!r} does not match the file name")
        if service.id in services:
            problems.append(f"{file.name}: id: service {service.id!r} is defined twice")
            continue
        services[service.id] = service
    return settings, services


def _check_service(service: Service, file: str, roles_dir: Path | None) -> list[str]:
    problems: list[str] = []
    seen_plans: set[str] = set()
    for i, plan in enumerate(service.plans):
        where = f"{file}: plans.{i}"
        if plan.id in seen_plans:
            problems.append(f"{where}.id: plan {plan.id!r} is defined twice")
        seen_plans.add(plan.id)
        if service.resources.server:
            if not plan.flavor:
                problems.append(f"{where}.flavor: a service with a server needs an SCS flavor")
            else:
                try:
                    Flavor.parse(plan.flavor)
                except ValueError as exc:
                    problems.append(f"{where}.flavor: {exc}")
        dates = [p.valid_from for p in plan.prices]
        if len(dates) != len(set(dates)):
            problems.append(f"{where}.prices: two prices with the same valid_from")
        for j, price in enumerate(plan.prices):
            for k, metered in enumerate(price.metered):
                spec = service.parameters.get(metered.estimate_parameter)
                if spec is None:
                    problems.append(
                        f"{where}.prices.{j}.metered.{k}.estimate_parameter: "
                        f"unknown parameter {metered.estimate_parameter!r}"
                    )
                elif spec.type not in ("integer", "number", "list"):
                    # The estimate multiplies the unit price by it: a count or an amount.
                    problems.append(
                        f"{where}.prices.{j}.metered.{k}.estimate_parameter: "
                        f"{metered.estimate_parameter!r} is a {spec.type}, not a number or list"
                    )
        for name in plan.limits:
            if name not in service.parameters:
                problems.append(f"{where}.limits.{name}: unknown parameter {name!r}")
    for i, volume in enumerate(service.resources.volumes):
        param = service.parameters.get(volume.size_parameter)
        if param is None or param.type not in ("integer", "number"):
            problems.append(
                f"{file}: resources.volumes.{i}.size_parameter: {volume.size_parameter!r} "
                "is not a numeric parameter"
            )
    if service.resources.volumes and not service.resources.server:
        problems.append(f"{file}: resources.volumes: volumes need a server")
    for name, param in service.parameters.items():
        if param.pattern is not None:
            try:
                re.compile(param.pattern)
            except re.error as exc:
                problems.append(
                    f"{file}: parameters.{name}.pattern: not a valid regular expression: {exc}"
                )
                continue
        problems.extend(
            f"{file}: parameters.{name}.default: {msg}"
            for msg in check_value(name, param, param.default, None)
        )
    if roles_dir is not None and roles_dir.is_dir():
        for role in (*service.roles, *service.roles_on_dependencies):
            if not (roles_dir / role).is_dir():
                problems.append(f"{file}: roles: no Ansible role {role!r} in {roles_dir}")
    return problems


CONSEQUENCE = "a consequence of"


def _consequence(name: str) -> str:
    return f"{name!r} did not load ({CONSEQUENCE} the problems of {name}.yaml above)"


def _check_flavors(settings: Settings, services: dict[str, Service]) -> list[str]:
    """Each flavor the settings name is a real server; each plan uses one of them."""
    problems: list[str] = []
    for i, name in enumerate(settings.flavors):
        try:
            Flavor.parse(name)
        except ValueError as exc:
            problems.append(f"{SETTINGS_FILE}: flavors.{i}: {exc}")
    if not settings.flavors:
        problems.append(f"{SETTINGS_FILE}: flavors: the platform's flavors are not listed")
    offered = ", ".join(settings.flavors)
    for sid, service in sorted(services.items()):
        for i, plan in enumerate(service.plans):
            if plan.flavor and plan.flavor not in settings.flavors:
                problems.append(
                    f"{sid}.yaml: plans.{i}.flavor: {plan.flavor!r} is not offered by the "
                    f"platform ({SETTINGS_FILE} flavors: {offered})"
                )
    return problems


def _check_dependencies(
    catalog_services: dict[str, Service], backup: str | None, broken: set[str]
) -> list[str]:
    problems: list[str] = []
    for sid, service in catalog_services.items():
        file = f"{sid}.yaml"
        deps = service.dependencies
        for kind in ("all_of", "any_of"):
            for dep in getattr(deps, kind):
                target = catalog_services.get(dep)
                if dep == sid:
                    problems.append(f"{file}: dependencies.{kind}: depends on itself")
                elif target is None and dep in broken:
                    problems.append(f"{file}: dependencies.{kind}: {_consequence(dep)}")
                elif target is None:
                    problems.append(f"{file}: dependencies.{kind}: unknown service {dep!r}")
                elif not target.requestable:
                    problems.append(
                        f"{file}: dependencies.{kind}: {dep!r} cannot be requested, so it "
                        "cannot be a dependency"
                    )
        lowest = min(rank(level) for level in service.schutzbedarf)
        for dep in deps.all_of:
            target = catalog_services.get(dep)
            if target and max(rank(x) for x in target.schutzbedarf) < lowest:
                problems.append(
                    f"{file}: schutzbedarf: dependency {dep!r} is not offered at "
                    f"{service.schutzbedarf[0]!r} or higher"
                )
        if deps.any_of and not any(
            max(rank(x) for x in catalog_services[d].schutzbedarf) >= lowest
            for d in deps.any_of
            if d in catalog_services
        ):
            problems.append(
                f"{file}: schutzbedarf: none of the any_of dependencies is offered at "
                f"{service.schutzbedarf[0]!r} or higher"
            )
        if service.roles_on_dependencies and not (deps.all_of or deps.any_of):
            problems.append(f"{file}: roles_on_dependencies: the service has no dependencies")
        if sid != backup and service.requestable:
            highest = max(rank(x) for x in service.schutzbedarf)
            if highest >= rank("hoch"):
                guard = catalog_services.get(backup or "")
                if guard is None and backup in broken:
                    problems.append(
                        f"{file}: schutzbedarf: the backup service {_consequence(backup or '')}"
                    )
                elif guard is None:
                    problems.append(
                        f"{file}: schutzbedarf: offered at hoch or higher, but the catalog has "
                        f"no backup service {backup!r}"
                    )
                elif max(rank(x) for x in guard.schutzbedarf) < highest:
                    problems.append(
                        f"{file}: schutzbedarf: the backup service {backup!r} is not offered at "
                        f"{service.schutzbedarf[-1]!r}"
                    )
    problems.extend(_cycles(catalog_services))
    return problems


def _cycles(services: dict[str, Service]) -> list[str]:
    problems: list[str] = []
    state: dict[str, int] = {}

    def visit(sid: str, trail: list[str]) -> None:
        if state.get(sid) == 2 or sid not in services:
            return
        if state.get(sid) == 1:
            cycle = [*trail[trail.index(sid) :], sid]
            problems.append(f"{sid}.yaml: dependencies: cycle {' -> '.join(cycle)}")
            return
        state[sid] = 1
        for dep in services[sid].dependencies.all_of:
            visit(dep, [*trail, sid])
        state[sid] = 2

    for sid in sorted(services):
        visit(sid, [])
    return problems


def _validate(
    directory: Path, roles_dir: Path | None
) -> tuple[list[str], Settings | None, dict[str, Service]]:
    if roles_dir is None:
        roles_dir = paths.project_root() / "roles"
    if not (directory / SCHEMA_FILE).is_file():
        return [f"{directory}: no {SCHEMA_FILE}"], None, {}
    problems: list[str] = []
    if not (directory / SETTINGS_FILE).is_file():
        problems.append(f"{directory}: no {SETTINGS_FILE}")
    broken: set[str] = set()
    settings, services = _load_services(directory, problems, broken)
    for sid, service in services.items():
        problems.extend(_check_service(service, f"{sid}.yaml", roles_dir))
    problems.extend(check_metered_metrics(services, roles_dir))
    if settings:
        problems.extend(_check_flavors(settings, services))
    problems.extend(
        _check_dependencies(services, settings.backup_service if settings else None, broken)
    )
    if settings and settings.backup_service in broken:
        problems.append(f"{SETTINGS_FILE}: backup_service: {_consequence(settings.backup_service)}")
    elif settings and settings.backup_service not in services:
        problems.append(
            f"{SETTINGS_FILE}: backup_service: unknown service {settings.backup_service!r}"
        )
    if not any(f.name != SETTINGS_FILE for f in directory.glob("*.yaml")):
        problems.append(f"{directory}: no service files")
    return problems, settings, services


def validate_catalog(directory: Path | None = None, roles_dir: Path | None = None) -> list[str]:
    """Every problem of the catalog, each naming file and field; empty when it is sound."""
    return _validate(directory or paths.catalog_dir(), roles_dir)[0]


def load_catalog(directory: Path | None = None, roles_dir: Path | None = None) -> Catalog:
    """The catalog, or ValidationFailed listing every problem."""
    directory = directory or paths.catalog_dir()
    problems, settings, services = _validate(directory, roles_dir)
    if problems or settings is None:
        raise ValidationFailed(f"the catalog in {directory} is not valid", problems)
    return Catalog(settings=settings, services=services)
