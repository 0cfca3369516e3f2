"""The metrics each Ansible role declares it writes (roles/<role>/meta/metrics.yml), and the
check that every metric the catalog bills (`metered.metric`) is written by a role of its service.

A role's declaration is its promise to metering: a catalog price on a metric that no role of the
service writes would bill nothing, silently, so `basisit catalog validate` refuses it."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from basisit.catalog.models import Service

METRICS_FILE = Path("meta") / "metrics.yml"

# The scrape adds these (file_sd target labels) or Prometheus owns them: a textfile metric that
# carried one would clash with the target's label and be renamed to exported_<name>.
TARGET_LABELS = frozenset(
    {"ags", "kommune", "server", "catalog_service", "instance", "job", "service"}
)


class RoleMetric(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
    type: Literal["gauge", "counter"]
    help: str = Field(min_length=1)
    labels: tuple[str, ...] = ()


class RoleMetrics(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    metrics: tuple[RoleMetric, ...]


def metrics_file(roles_dir: Path, role: str) -> Path:
    return roles_dir / role / METRICS_FILE


def read_role_metrics(roles_dir: Path, role: str) -> tuple[dict[str, RoleMetric], list[str]]:
    """The metrics `role` declares by name, and the problems of its file (each naming it).
    A role without the file declares nothing (it meters nothing)."""
    file = metrics_file(roles_dir, role)
    where = f"roles/{role}/{METRICS_FILE.as_posix()}"
    if not file.is_file():
        return {}, []
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
        declared = RoleMetrics.model_validate(raw)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return {}, [f"{where}: cannot be read: {exc}".replace("\n", " ")]
    except ValidationError as exc:
        return {}, [
            f"{where}: {'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in exc.errors()
        ]
    problems: list[str] = []
    by_name: dict[str, RoleMetric] = {}
    for i, metric in enumerate(declared.metrics):
        if metric.name in by_name:
            problems.append(f"{where}: metrics.{i}.name: {metric.name!r} is declared twice")
        clashes = sorted(TARGET_LABELS.intersection(metric.labels))
        # basisit_server_info is the one metric whose purpose is to carry these labels.
        if clashes and not metric.name.endswith("_info"):
            problems.append(
                f"{where}: metrics.{i}.labels: {', '.join(clashes)} are added by the scrape; "
                "a textfile metric carries only its own labels"
            )
        by_name[metric.name] = metric
    return by_name, problems


def check_metered_metrics(services: dict[str, Service], roles_dir: Path | None) -> list[str]:
    """Every catalog `metered.metric` that no role of its service (`roles` or
    `roles_on_dependencies`) declares, naming file, service, plan and metric; and the problems of
    the declarations those services' roles make."""
    if roles_dir is None or not roles_dir.is_dir():
        return []
    problems: list[str] = []
    declared: dict[str, dict[str, RoleMetric]] = {}
    for role in sorted(
        {r for s in services.values() for r in (*s.roles, *s.roles_on_dependencies)}
    ):
        declared[role], role_problems = read_role_metrics(roles_dir, role)
        problems.extend(role_problems)
    for sid, service in sorted(services.items()):
        roles = (*service.roles, *service.roles_on_dependencies)
        written = {name for role in roles for name in declared.get(role, {})}
        for i, plan in enumerate(service.plans):
            for j, price in enumerate(plan.prices):
                for k, metered in enumerate(price.metered):
                    if metered.metric in written:
                        continue
                    problems.append(
                        f"{sid}.yaml: plans.{i}.prices.{j}.metered.{k}.metric: service {sid!r} "
                        f"plan {plan.id!r} bills {metered.metric!r}, which no role of the "
                        f"service declares (roles: {', '.join(roles) or 'none'}; "
                        f"declared in roles/<role>/{METRICS_FILE.as_posix()})"
                    )
    return problems
