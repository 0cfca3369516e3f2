"""Roles declare the metrics they write; the catalog may bill only metrics a role of the service
declares, and what a role declares is what its scripts write."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from catalog_copy import catalog_copy, edit
from typer.testing import CliRunner

from basisit import paths
from basisit.catalog import validate_catalog
from basisit.catalog.role_metrics import METRICS_FILE, read_role_metrics
from basisit.cli.main import app

ROLES = paths.project_root() / "roles"


def _roles_copy(tmp_path: Path) -> Path:
    """Every role directory with only its metrics declaration: all the check reads."""
    target = tmp_path / "roles"
    for role in ROLES.iterdir():
        if not role.is_dir():
            continue
        (target / role.name).mkdir(parents=True)
        if (role / METRICS_FILE).is_file():
            (target / role.name / "meta").mkdir()
            shutil.copy(role / METRICS_FILE, target / role.name / METRICS_FILE)
    return target


def _drop_metric(roles: Path, role: str, metric: str) -> None:
    """Removes one metric's entry (name, type, help, labels) from a role's declaration."""
    file = roles / role / METRICS_FILE
    text = file.read_text(encoding="utf-8")
    entry = re.compile(rf"  - name: {metric}\n(    .*\n)+")
    assert entry.search(text), f"{metric} not declared by {role}"
    file.write_text(entry.sub("", text), encoding="utf-8")


def test_every_billed_metric_of_the_shipped_catalog_is_declared_by_a_role_of_its_service(catalog):
    assert validate_catalog() == []
    billed = {m.metric for s in catalog.services.values() for p in s.plans for pr in p.prices
              for m in pr.metered}  # fmt: skip
    assert "basisit_directory_accounts" in billed
    declared, problems = read_role_metrics(ROLES, "openldap")
    assert problems == [] and "basisit_directory_accounts" in declared


def test_a_billed_metric_no_role_writes_is_refused_naming_file_service_plan_and_metric(
    tmp_path: Path,
):
    roles = _roles_copy(tmp_path)
    (roles / "openldap" / METRICS_FILE).unlink()
    problems = validate_catalog(paths.catalog_dir(), roles)
    assert problems == [
        "directory.yaml: plans.0.prices.0.metered.0.metric: service 'directory' plan 'S' bills "
        "'basisit_directory_accounts', which no role of the service declares (roles: openldap; "
        "declared in roles/<role>/meta/metrics.yml)",
        "directory.yaml: plans.1.prices.0.metered.0.metric: service 'directory' plan 'M' bills "
        "'basisit_directory_accounts', which no role of the service declares (roles: openldap; "
        "declared in roles/<role>/meta/metrics.yml)",
    ]


def test_cli_validate_refuses_a_metric_no_role_writes(tmp_path: Path):
    target = catalog_copy(tmp_path)
    edit(
        target / "directory.yaml",
        "metric: basisit_directory_accounts",
        "metric: basisit_directory_entries",
    )
    result = CliRunner().invoke(app, ["catalog", "validate", "--dir", str(target)])
    assert result.exit_code == 4
    assert "'basisit_directory_entries', which no role of the service declares" in result.output


def test_a_metric_of_another_services_role_does_not_count(tmp_path: Path):
    target = catalog_copy(tmp_path)
    edit(
        target / "database.yaml",
        "metric: basisit_database_size_bytes",
        "metric: basisit_fileshare_used_bytes",
    )
    problems = validate_catalog(target, _roles_copy(tmp_path))
    assert len(problems) == 1
    assert problems[0].startswith(
        "database.yaml: plans.0.prices.0.metered.0.metric: service 'database' plan 'S' bills "
        "'basisit_fileshare_used_bytes', which no role of the service declares (roles: postgresql;"
    )


def test_roles_on_dependencies_count_for_the_service(tmp_path: Path):
    """The backup's repository size is written by backup_client on the servers it backs up."""
    roles = _roles_copy(tmp_path)
    assert validate_catalog(paths.catalog_dir(), roles) == []
    _drop_metric(roles, "backup_client", "basisit_backup_repository_bytes")
    problems = validate_catalog(paths.catalog_dir(), roles)
    assert problems and all(p.startswith("backup.yaml: plans.") for p in problems)
    assert "(roles: backup_server, backup_client;" in problems[0]


def test_a_broken_declaration_is_reported_with_its_file(tmp_path: Path):
    roles = _roles_copy(tmp_path)
    file = roles / "samba" / METRICS_FILE
    edit(file, "    type: gauge\n", "    type: summary\n")
    edit(file, "labels: [share]", "labels: [share, ags]")
    (roles / "mail" / METRICS_FILE).write_text("metrics: [unclosed\n", encoding="utf-8")
    problems = "\n".join(validate_catalog(paths.catalog_dir(), roles))
    assert "roles/samba/meta/metrics.yml: metrics.0.type: Input should be 'gauge' or 'counter'" in (
        problems
    )
    assert "roles/mail/meta/metrics.yml: cannot be read:" in problems
    # A file that does not load declares nothing, so the mail plans are refused as well.
    assert "mail.yaml: plans.0.prices.0.metered.0.metric: service 'mail'" in problems


def test_a_label_the_scrape_adds_is_refused(tmp_path: Path):
    roles = _roles_copy(tmp_path)
    edit(roles / "samba" / METRICS_FILE, "labels: [share]", "labels: [share, server]")
    assert validate_catalog(paths.catalog_dir(), roles) == [
        "roles/samba/meta/metrics.yml: metrics.0.labels: server are added by the scrape; a "
        "textfile metric carries only its own labels"
    ]


_TYPE_LINE = re.compile(r"# TYPE (\S+) (gauge|counter)\b")


@pytest.mark.parametrize(
    "role",
    sorted(p.parent.parent.name for p in ROLES.glob(f"*/{METRICS_FILE.as_posix()}")),
)
def test_a_role_declares_exactly_what_its_scripts_write(role: str):
    written = {
        name: kind
        for template in (ROLES / role / "templates").glob("*.j2")
        for name, kind in _TYPE_LINE.findall(template.read_text(encoding="utf-8"))
    }
    declared, problems = read_role_metrics(ROLES, role)
    assert problems == []
    assert written == {name: m.type for name, m in declared.items()}
