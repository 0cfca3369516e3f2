"""A month billed by hand: three Kommunen of October 2026, every amount to the cent.

October 2026 has 745 Berlin hours (the clocks go back on the 25th): M = 2,682,000 s. The
catalog copy raises the file share S price to 22,00 € from 1 October (a price change at the
month boundary: October bills the new one) and gives it 10 GiB included; the overhead is
1.000,01 € a year. Worked out by hand (ct = cents, exact until rounded):

Tholey (Gemeinde, 12.160 inhabitants), file share all month, S until 15 Oct 00:00 (336 h =
1,209,600 s), M after (409 h = 1,472,400 s), participation p = 1:
  base S      22 € × 1,209,600/M                        =   992.2147651 ct
  base M      40 € × 1,472,400/M                        =  2195.9731544 ct
  GiB S       (120 − 10 included) × 1,209,600/M × 0,05 € =  248.0536913 ct (3 h gap)
  GiB M       150 × 1,472,400/M × 0,04 €                 =   329.3959732 ct
  Einrichtung                                            =  5000 ct
  Überwachung 4 € × M/M                                  =   400 ct
  Σ 9165.6375839 -> 9166 ct; floors give 9164, the 2 ct left go to the largest remainders
  (base M .973, GiB M .396): 992, 2196, 248, 330, 5000, 400.
Landkreis St. Wendel (86.942 inhabitants, counted half), a database from 20 Oct 12:00
(276 h = 993,600 s), p = 276/745:
  base S 45 € × 993,600/M = 1667.1140940; GiB 12 × 993,600/M × 0,10 € = 44.4563758;
  Einrichtung 7500; Überwachung 4 € × 993,600/M = 148.1879195; Σ 9359.7583893 -> 9360:
  1667, 45, 7500, 148.
Saarbrücken (181.959 inhabitants), directory S all month, 240 accounts: 2500 + 4800 + 400
  = 7700 ct.
Overhead: 100,001 ct a year -> 8333.4167 a month; floors 8333 × 12 leave 5 ct for January
to May, so October has 8333 ct. Default key: 20 % by p (Σp = 2 + 276/745), 80 % by
inhabitants × p (12,160; 43,471 × 276/745; 181,959):
  Saarbrücken 6473.1662, St. Wendel 771.1609, Tholey 1088.6729 -> floors 8332, the 1 ct left
  to Tholey (.673): 6473, 771, 1089.
Totals: Tholey 10,255 ct, St. Wendel 10,131 ct, Saarbrücken 14,173 ct; all 34,559 ct.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from catalog_copy import catalog_copy, edit, without_funding

from basisit import kommunen
from basisit.billing import config as billing_config
from basisit.billing.allocate import allocate, month_overhead_cents
from basisit.billing.model import BASE, METERED, MONITORING, ONE_TIME
from basisit.catalog import load_catalog
from basisit.errors import ValidationFailed

M = 2_682_000
GiB = 2**30
TH, WND, SB = "10046118", "10046", "10041100"


def _line(unit: str, plan: str, base: str, quantity: int, request: int, **extra: Any) -> dict:
    line = {
        "unit": unit, "plan": plan, "request_ids": [request], "metric": None,
        "base_unit": base, "quantity_base": quantity, "quantity": "0", "hours": 1,
        "gap_hours": 0, "no_measurement_hours": 0, "provisional_hours": 0, "amount_cent": None,
    }  # fmt: skip
    line.update(extra)
    return line


def october() -> dict[str, Any]:
    s_part, m_part, db_part = 1_209_600, 1_472_400, 993_600
    return {
        "schema_version": 1,
        "month": "2026-10",
        "period": {"start": "2026-09-30T22:00:00Z", "end": "2026-10-31T23:00:00Z",
                   "hours": 745, "timezone": "Europe/Berlin"},
        "generated_at": "2026-11-01T00:10:00Z",
        "kommunen": [
            {"ags": TH, "name": "Tholey", "billable_seconds": M, "instances": [{
                "instance": "dateiablage", "catalog_service": "fileshare", "lines": [
                    _line("Betriebsstunde", "S", "s", s_part, 1),
                    _line("Betriebsstunde", "M", "s", m_part, 2),
                    _line("GiB-Monat", "S", "byte_s", 120 * GiB * s_part, 1, gap_hours=3),
                    _line("GiB-Monat", "M", "byte_s", 150 * GiB * m_part, 2),
                    _line("Einrichtung", "S", "count", 1, 1, amount_cent=5000),
                ]}]},
            {"ags": WND, "name": "St. Wendel", "billable_seconds": db_part, "instances": [{
                "instance": "datenbank", "catalog_service": "database", "lines": [
                    _line("Betriebsstunde", "S", "s", db_part, 3),
                    _line("GiB-Monat", "S", "byte_s", 12 * GiB * db_part, 3),
                    _line("Einrichtung", "S", "count", 1, 3, amount_cent=7500),
                ]}]},
            {"ags": SB, "name": "Saarbrücken", "billable_seconds": M, "instances": [{
                "instance": "verzeichnis", "catalog_service": "directory", "lines": [
                    _line("Betriebsstunde", "S", "s", M, 4),
                    _line("Konto-Monat", "S", "count_s", 240 * M, 4),
                ]}]},
        ],
    }  # fmt: skip


@pytest.fixture
def priced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    catalog = catalog_copy(tmp_path)
    # The S plan's 2026 price stays for September; from October a new one, with 10 GiB included.
    edit(
        catalog / "fileshare.yaml",
        "price_eur: 0.05, estimate_parameter: quota_gib}\n",
        """\
price_eur: 0.05, estimate_parameter: quota_gib}
      - valid_from: "2026-10-01"
        monthly_eur: 22.00
        one_time_eur: 50.00
        metered:
          - unit: GiB-Monat
            metric: basisit_fileshare_used_bytes
            price_eur: 0.05
            included: 10
            estimate_parameter: quota_gib
""",
    )
    edit(catalog / "billing.yaml", "yearly_eur: 36000.00", "yearly_eur: 1000.01")
    without_funding(catalog)
    monkeypatch.setenv("BASISIT_CATALOG_DIR", str(catalog))
    return catalog


def test_october_by_hand(priced: Path) -> None:
    bill = allocate(october(), load_catalog(), billing_config.load(), kommunen.get)
    th, wnd, sb = (next(k for k in bill.kommunen if k.ags == a) for a in (TH, WND, SB))
    assert [(ln.kind, ln.plan, ln.cents) for ln in th.lines] == [
        (BASE, "S", 992), (BASE, "M", 2196), (METERED, "S", 248), (METERED, "M", 330),
        (ONE_TIME, "S", 5000), (MONITORING, "server", 400),
    ]  # fmt: skip
    assert th.lines[0].unit_price == 22  # October's price, not the one valid until September
    assert th.lines[2].flagged == "geschätzt, 3 Std. Messlücke"
    assert [ln.cents for ln in wnd.lines] == [1667, 45, 7500, 148]
    assert [ln.cents for ln in sb.lines] == [2500, 4800, 400]
    assert (th.direct_cents, wnd.direct_cents, sb.direct_cents) == (9166, 9360, 7700)
    assert bill.pool_cents == 8333 and bill.method_used == "default"
    assert (sb.overhead_cents, wnd.overhead_cents, th.overhead_cents) == (6473, 771, 1089)
    assert (th.total_cents, wnd.total_cents, sb.total_cents) == (10255, 10131, 14173)
    assert bill.total_cents == 34559 and bill.reconciles() == []
    assert not bill.provisional


def test_the_yearly_overhead_goes_to_the_earlier_months_first() -> None:
    months = [month_overhead_cents(100_001, m) for m in range(1, 13)]
    assert months == [8334] * 5 + [8333] * 7 and sum(months) == 100_001


def test_equal_and_usage_keys(priced: Path) -> None:
    catalog = priced
    edit(catalog / "billing.yaml", "method: default", "method: equal")
    bill = allocate(october(), load_catalog(), billing_config.load(), kommunen.get)
    shares = {k.ags: k.overhead_cents for k in bill.kommunen}
    # By p alone: 8333 × 745/1766 = 3515.35 twice, 8333 × 276/1766 = 1302.31; floors 8332,
    # the 1 ct left to the tie's smaller AGS (as a string, "10041100" < "10046118").
    assert shares == {SB: 3516, TH: 3515, WND: 1302}


def test_usage_key(priced: Path) -> None:
    edit(priced / "billing.yaml", "method: default", "method: usage")
    bill = allocate(october(), load_catalog(), billing_config.load(), kommunen.get)
    # Weights = exact direct charges × p: 9165.6376, 9359.7584 × 276/745 = 3467.5324, 7700
    # (Σ 20333.17): shares 3756.2933, 1421.0660, 3155.6406 -> the 1 ct left to Saarbrücken.
    assert bill.method_used == "usage"
    assert {k.ags: k.overhead_cents for k in bill.kommunen} == {TH: 3756, WND: 1421, SB: 3156}


def test_usage_key_without_any_charges_falls_back_to_the_default(priced: Path) -> None:
    edit(priced / "billing.yaml", "method: default", "method: usage")
    for name in ("fileshare", "database", "directory", "monitoring"):
        file = priced / f"{name}.yaml"
        text = re.sub(r"(monthly_eur|price_eur): [0-9.]+", r"\1: 0", file.read_text("utf-8"))
        file.write_text(text, encoding="utf-8")
    doc = october()
    for k in doc["kommunen"]:
        for inst in k["instances"]:
            inst["lines"] = [ln for ln in inst["lines"] if ln["unit"] != "Einrichtung"]
    bill = allocate(doc, load_catalog(), billing_config.load(), kommunen.get)
    # No cost vanishes: nobody has direct charges, so the default key's shares (above).
    assert bill.direct_cents == 0 and bill.method_used == "default"
    assert {k.ags: k.overhead_cents for k in bill.kommunen} == {TH: 1089, WND: 771, SB: 6473}


def test_a_month_without_participants_allocates_nothing(priced: Path) -> None:
    doc = october()
    for k in doc["kommunen"]:
        k["billable_seconds"] = 0
    bill = allocate(doc, load_catalog(), billing_config.load(), kommunen.get)
    assert bill.unallocated_cents == 8333 and bill.overhead_cents == 0


def test_a_used_plan_without_a_price_that_month(priced: Path) -> None:
    edit(priced / "database.yaml", 'valid_from: "2026-01-01"', 'valid_from: "2026-11-01"')
    wanted = r"database plan S \(used by datenbank\) has no price valid in 2026-10"
    with pytest.raises(ValidationFailed, match=wanted):
        allocate(october(), load_catalog(), billing_config.load(), kommunen.get)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("sockel_share: 0.2", "sockel_share: 1.5", "sockel_share: 1.5 is greater than"),
        ("kreis_inhabitants_fraction: 0.5", "kreis_inhabitants_fraction: -0.1", "less than"),
        ("method: default", "method: by-area", "'by-area' is not one of"),
        ('"2026-01-01"\n    method', '"2026-01-15"\n    method', "does not match"),
    ],
)  # fmt: skip
def test_bad_billing_settings_are_named(priced: Path, old: str, new: str, message: str) -> None:
    edit(priced / "billing.yaml", old, new)
    with pytest.raises(ValidationFailed, match=message):
        billing_config.load()


def test_catalog_validate_checks_the_billing_settings(priced: Path) -> None:
    from typer.testing import CliRunner

    from basisit.cli.main import app

    edit(priced / "billing.yaml", "sockel_share: 0.2", "sockel_share: 2")
    result = CliRunner().invoke(app, ["catalog", "validate", "--dir", str(priced)])
    assert result.exit_code == 4
    assert "billing.yaml: key.0.sockel_share: 2 is greater than the maximum of 1" in result.output
