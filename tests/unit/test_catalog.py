"""The catalog: the shipped one is sound, a broken one is reported completely."""

from __future__ import annotations

import datetime as dt
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from catalog_copy import catalog_copy, edit
from typer.testing import CliRunner

from basisit import paths
from basisit.catalog import load_catalog, validate_catalog
from basisit.catalog.models import Flavor
from basisit.cli.main import app
from basisit.errors import ValidationFailed

REQUIRED = {
    "virtual-server", "fileshare", "backup", "directory", "dns", "database", "webhosting",
    "mail", "vpn", "monitoring",
}  # fmt: skip


def test_shipped_catalog_is_valid_and_complete(catalog):
    assert validate_catalog() == []
    assert set(catalog.services) >= REQUIRED
    for service in catalog.services.values():
        assert service.name and service.description
        for plan in service.plans:
            assert all(p.valid_from.day == 1 for p in plan.prices)
            if service.resources.server:
                flavor = Flavor.parse(plan.flavor)
                assert flavor.vcpus >= 1 and flavor.ram_mib >= 1024


def test_virtual_server_plans_are_scs_flavors(catalog):
    plans = catalog.services["virtual-server"].plans
    assert "SCS-2V-4-20s" in {p.id for p in plans}
    for plan in plans:
        assert plan.id == plan.flavor
    medium = Flavor.parse("SCS-2V-4-20s")
    assert (medium.vcpus, medium.ram_mib, medium.disk_gib) == (2, 4096, 20)


def test_price_is_chosen_by_month_without_rewriting_history(catalog):
    plan = catalog.services["virtual-server"].plan("SCS-2V-4-20s")
    assert plan.price_on(dt.date(2026, 12, 31)).monthly_eur == Decimal("34.00")
    assert plan.price_on(dt.date(2027, 1, 1)).monthly_eur == Decimal("36.00")
    assert plan.price_on(dt.date(2025, 12, 31)) is None


def test_monitoring_is_on_every_server_not_requestable(catalog):
    monitoring = catalog.services["monitoring"]
    assert monitoring.applies_to_every_server and not monitoring.requestable
    assert {"baseline", "node_exporter"} <= set(monitoring.roles)


@pytest.fixture
def broken_catalog(tmp_path: Path) -> Path:
    target = tmp_path / "catalog"
    shutil.copytree(paths.catalog_dir(), target)
    # 1. invalid YAML
    (target / "vpn.yaml").write_text("id: vpn\nname: [unclosed\n", encoding="utf-8")
    # 2. price valid_from not the first of a month, and a missing required field
    text = (target / "dns.yaml").read_text(encoding="utf-8")
    text = text.replace('valid_from: "2026-01-01"', 'valid_from: "2026-01-15"')
    text = text.replace("category: network\n", "")
    (target / "dns.yaml").write_text(text, encoding="utf-8")
    # 3. unknown dependency, plus a flavor that is not SCS
    text = (target / "webhosting.yaml").read_text(encoding="utf-8")
    text = text.replace("all_of: [dns]", "all_of: [dns-server]")
    text = text.replace("flavor: SCS-1V-2-10s", "flavor: SCS-1V-2")
    (target / "webhosting.yaml").write_text(text, encoding="utf-8")
    # 4. Schutzbedarf: mail offered only at sehr hoch, but webhosting (its dep) tops at hoch
    text = (target / "mail.yaml").read_text(encoding="utf-8")
    text = text.replace("schutzbedarf: [normal, hoch]", "schutzbedarf: [sehr hoch]")
    text = text.replace("all_of: [dns]", "all_of: [webhosting]")
    (target / "mail.yaml").write_text(text, encoding="utf-8")
    # 5. a metered unit estimated from a parameter that does not exist
    text = (target / "fileshare.yaml").read_text(encoding="utf-8")
    text = text.replace("estimate_parameter: quota_gib}", "estimate_parameter: quota}", 1)
    (target / "fileshare.yaml").write_text(text, encoding="utf-8")
    return target


def test_broken_catalog_reports_every_problem_with_file_and_field(broken_catalog):
    problems = validate_catalog(broken_catalog)
    text = "\n".join(problems)
    assert "vpn.yaml: not valid YAML" in text
    assert "dns.yaml: plans.0.prices.0.valid_from" in text
    assert "dns.yaml: (top level): 'category' is a required property" in text
    assert "webhosting.yaml: dependencies.all_of: unknown service 'dns-server'" in text
    assert "webhosting.yaml: plans.0.flavor" in text
    assert "mail.yaml: schutzbedarf: dependency 'webhosting'" in text
    assert "fileshare.yaml: plans.0.prices.0.metered.0.estimate_parameter" in text
    with pytest.raises(ValidationFailed) as exc:
        load_catalog(broken_catalog)
    assert len(exc.value.problems) == len(problems)


def test_cli_validate_lists_all_problems_and_fails(broken_catalog):
    result = CliRunner().invoke(app, ["catalog", "validate", "--dir", str(broken_catalog)])
    assert result.exit_code == 4
    out = result.output
    assert "vpn.yaml" in out and "dns.yaml" in out and "webhosting.yaml" in out
    assert "problem(s) in the catalog" in out


def test_cycle_and_missing_backup_are_found(tmp_path: Path):
    target = tmp_path / "catalog"
    shutil.copytree(paths.catalog_dir(), target)
    text = (target / "dns.yaml").read_text(encoding="utf-8")
    (target / "dns.yaml").write_text(text.replace("all_of: []", "all_of: [webhosting]"), "utf-8")
    (target / "backup.yaml").unlink()
    problems = "\n".join(validate_catalog(target))
    assert "cycle" in problems and "dns -> webhosting -> dns" in problems.replace("yaml: ", "")
    assert (
        "database.yaml: schutzbedarf: offered at hoch or higher, but the catalog has no backup"
        in problems
    )


def test_cli_list_and_show(catalog):
    runner = CliRunner()
    listed = runner.invoke(app, ["catalog", "list"])
    assert listed.exit_code == 0, listed.output
    assert "Dateiablage" in listed.output and "SCS-2V-4-20s" in listed.output
    shown = runner.invoke(app, ["catalog", "show", "fileshare", "--format", "json"])
    assert shown.exit_code == 0
    assert '"quota_gib"' in shown.output
    missing = runner.invoke(app, ["catalog", "show", "fax"])
    assert missing.exit_code == 3 and "unknown service 'fax'" in missing.output


def test_files_that_used_to_crash_validate_are_reported(tmp_path: Path):
    target = tmp_path / "catalog"
    shutil.copytree(paths.catalog_dir(), target)
    (target / "latin1.yaml").write_bytes("id: latin1\nname: Gebühr\n".encode("latin-1"))
    (target / "only-comments.yaml").write_text("# noch leer\n", encoding="utf-8")
    text = (target / "webhosting.yaml").read_text(encoding="utf-8")
    text = text.replace('pattern: "^[a-z][a-z0-9-]{0,30}$"', 'pattern: "^[a-z"')
    text = text.replace("estimate_parameter: storage_gib", "estimate_parameter: site_name")
    (target / "webhosting.yaml").write_text(text, encoding="utf-8")
    problems = "\n".join(validate_catalog(target))
    assert "latin1.yaml: not UTF-8 text" in problems
    assert "only-comments.yaml: empty file" in problems
    assert "webhosting.yaml: parameters.site_name.pattern: not a valid regular expression" in (
        problems
    )
    assert (
        "webhosting.yaml: plans.0.prices.0.metered.0.estimate_parameter: 'site_name' is a string"
        in problems
    )
    result = CliRunner().invoke(app, ["catalog", "validate", "--dir", str(target)])
    assert result.exit_code == 4, result.output  # a crash would exit 1


def test_broken_schema_file_is_reported_not_raised(tmp_path: Path):
    target = tmp_path / "catalog"
    shutil.copytree(paths.catalog_dir(), target)
    (target / "schema.json").write_text('{"type": ', encoding="utf-8")
    assert any(
        p.startswith("schema.json: not a valid JSON Schema") for p in validate_catalog(target)
    )


def test_prices_are_shown_with_cents(catalog):
    listed = CliRunner().invoke(app, ["catalog", "list"])
    assert "SCS-8V-16-100s 132.00" in listed.output
    shown = CliRunner().invoke(app, ["catalog", "show", "backup"])
    assert "15.00" in shown.output and "0.03 EUR/GiB-Monat" in shown.output


def test_a_flavor_without_resources_is_refused():
    with pytest.raises(ValueError, match="has no vCPU and no RAM and no root disk"):
        Flavor.parse("SCS-0V-0-0s")
    with pytest.raises(ValueError, match="'SCS-2V-0-20s' has no RAM"):
        Flavor.parse("SCS-2V-0-20s")


def test_plans_may_use_only_the_flavors_the_platform_offers(tmp_path: Path):
    target = catalog_copy(tmp_path)
    edit(target / "dns.yaml", "flavor: SCS-1V-2-10s", "flavor: SCS-0V-0-0s")
    edit(target / "mail.yaml", "flavor: SCS-1V-2-10s", "flavor: SCS-3V-6-30s")
    text = "\n".join(validate_catalog(target))
    assert "dns.yaml: plans.0.flavor: 'SCS-0V-0-0s' has no vCPU and no RAM and no root disk" in text
    assert (
        "mail.yaml: plans.0.flavor: 'SCS-3V-6-30s' is not offered by the platform "
        "(catalog.yaml flavors: SCS-1V-2-10s, SCS-2V-4-20s, SCS-4V-8-50s, SCS-8V-16-100s)"
    ) in text
    with pytest.raises(ValidationFailed):
        load_catalog(target)


def test_the_settings_flavors_must_be_real_servers(tmp_path: Path):
    target = catalog_copy(tmp_path)
    edit(target / "catalog.yaml", "  - SCS-8V-16-100s\n", "  - SCS-8V-16-100s\n  - SCS-0V-1-10s\n")
    assert "catalog.yaml: flavors.4: 'SCS-0V-1-10s' has no vCPU" in "\n".join(
        validate_catalog(target)
    )


def test_a_file_that_does_not_load_is_the_cause_and_its_dependents_are_consequences(
    tmp_path: Path,
):
    target = catalog_copy(tmp_path)
    (target / "dns.yaml").write_text("id: dns\nname: [unclosed\n", encoding="utf-8")
    problems = validate_catalog(target)
    causes = [p for p in problems if "a consequence of" not in p]
    consequences = [p for p in problems if "a consequence of" in p]
    assert len(causes) == 1 and causes[0].startswith("dns.yaml: not valid YAML")
    assert "unknown service" not in "\n".join(problems)
    assert sorted(p.split(":")[0] for p in consequences) == ["mail.yaml", "webhosting.yaml"]
    assert all("'dns' did not load" in p for p in consequences)

    result = CliRunner().invoke(app, ["catalog", "validate", "--dir", str(target)])
    assert result.exit_code == 4
    assert "3 problem(s) in the catalog, 2 of them consequences of the others" in result.output


def test_a_broken_backup_service_is_one_cause(tmp_path: Path):
    target = catalog_copy(tmp_path)
    (target / "backup.yaml").write_text("id: backup\n", encoding="utf-8")
    problems = validate_catalog(target)
    causes = [p for p in problems if "a consequence of" not in p]
    assert causes and all(p.startswith("backup.yaml:") for p in causes), causes
    assert any(
        p.startswith("catalog.yaml: backup_service: 'backup' did not load") for p in problems
    )
