"""The FOCUS 1.2 export of the hand-worked October (test_billing_allocation): columns, types,
row categories, nulls and sums to the cent, in the Parquet file and the CSV beside it."""

from __future__ import annotations

import csv
import re
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_billing_allocation import SB, TH, WND, october, priced  # noqa: F401

from basisit import kommunen
from basisit.billing import config as billing_config
from basisit.billing.allocate import allocate
from basisit.billing.config import Programme
from basisit.billing.funding import fund
from basisit.catalog import load_catalog
from basisit.leitweg import make as make_leitweg
from basisit.reports import focus
from basisit.reports.german import Report

MANDATORY = [
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency",
    "BillingPeriodStart", "BillingPeriodEnd", "ChargeCategory", "ChargeClass",
    "ChargeDescription", "ChargePeriodStart", "ChargePeriodEnd", "ContractedCost",
    "EffectiveCost", "InvoiceIssuerName", "ListCost", "PricingQuantity", "PricingUnit",
    "ProviderName", "PublisherName", "ServiceCategory", "ServiceName",
    "SubAccountId", "SubAccountName", "ResourceId", "ConsumedQuantity", "ConsumedUnit",
    "ListUnitPrice", "ChargeFrequency", "InvoiceId",
]  # fmt: skip
TOTALS = {TH: Decimal("102.55"), WND: Decimal("101.31"), SB: Decimal("141.73")}
# Tholey has a Leitweg-ID; St. Wendel and Saarbrücken are billed under their AGS.
TH_LEITWEG = make_leitweg("10046118", "BASISIT")
UTC_TEXT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


# Half of the file share and the overhead, as start-up funding: Credit rows in the export.
FUNDING = Programme(
    id="dok", name="Digitalisierungsoffensive", budget_cent=10**7, first_month="2026-01",
    last_month="2026-12", services=frozenset({"fileshare"}), overhead=True,
    rates=((2026, Fraction(1, 2)),),
)  # fmt: skip


def export(directory: Path, *, funded: bool = False) -> list[Path]:
    """The October export (with FUNDING's Credit rows when `funded`); needs the `priced`
    catalog (test_billing_allocation)."""
    bill = allocate(october(), load_catalog(), billing_config.load(), kommunen.get)
    if funded:
        (bill,) = fund([bill], [FUNDING])
    return focus.render(Report(bill, leitweg={TH: TH_LEITWEG}), directory / "focus.parquet")


@pytest.fixture
def files(priced: Path, tmp_path: Path) -> tuple[pa.Table, list[dict[str, str]]]:  # noqa: F811
    parquet, csv_path = export(tmp_path)
    assert csv_path == tmp_path / "focus.csv"
    with csv_path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return pq.read_table(parquet), rows


def test_columns_are_focus_then_custom(files: tuple[pa.Table, list[dict[str, str]]]) -> None:
    table, rows = files
    names = table.schema.names
    assert set(MANDATORY) <= set(names)
    custom = [i for i, n in enumerate(names) if n.startswith("x_")]
    assert custom and custom == list(range(len(names) - len(custom), len(names)))
    assert {"x_AllocationKey", "x_AllocationPool"} <= set(names)
    assert list(rows[0]) == names  # the CSV has the same columns in the same order


def test_parquet_types(files: tuple[pa.Table, list[dict[str, str]]]) -> None:
    schema = files[0].schema
    for name in ("SubAccountId", "BillingAccountId", "ChargeClass", "InvoiceId"):
        assert schema.field(name).type == pa.string(), name  # even when all null or numeric
    for name in ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost"):
        assert schema.field(name).type == pa.decimal128(14, 2), name
    for name in ("BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart"):
        assert schema.field(name).type == pa.timestamp("ms", tz="UTC"), name


def test_rows_per_line_kind(files: tuple[pa.Table, list[dict[str, str]]]) -> None:
    rows = files[0].to_pylist()
    seen = {(r["x_LineKind"], r["ChargeCategory"], r["ChargeFrequency"]) for r in rows}
    assert seen == {
        ("base", "Purchase", "Recurring"),
        ("monitoring", "Purchase", "Recurring"),
        ("metered", "Usage", "Usage-Based"),
        ("one_time", "Purchase", "One-Time"),
        ("overhead", "Usage", "Recurring"),
    }
    assert len(rows) == 6 + 4 + 3 + 3  # Tholey, St. Wendel, Saarbrücken lines + 3 overheads
    overhead = [r for r in rows if r["x_LineKind"] == "overhead"]
    assert {r["x_AllocationKey"] for r in overhead} == {"default"}
    assert {r["x_AllocationPool"] for r in overhead} == {Decimal("83.33")}
    assert all(r["ResourceId"] is None for r in overhead)
    assert {r["ResourceId"] for r in rows} == {"dateiablage", "datenbank", "verzeichnis", None}


def test_accounts(files: tuple[pa.Table, list[dict[str, str]]]) -> None:
    rows = files[0].to_pylist()
    account = {r["SubAccountId"]: (r["BillingAccountId"], r["SubAccountName"]) for r in rows}
    assert account == {
        TH: (TH_LEITWEG, "Tholey"),
        WND: (WND, "St. Wendel"),  # no Leitweg-ID: the AGS
        SB: (SB, "Saarbrücken, Landeshauptstadt"),
    }
    assert {r["ProviderName"] for r in rows} == {"eGo-Saar"}
    assert {r["BillingCurrency"] for r in rows} == {"EUR"}


def test_billed_cost_adds_up_to_each_kommune_total(
    files: tuple[pa.Table, list[dict[str, str]]],
) -> None:
    table, rows = files
    for source in (table.to_pylist(), rows):
        sums: dict[str, Decimal] = {}
        for r in source:
            sums[r["SubAccountId"]] = sums.get(r["SubAccountId"], 0) + Decimal(r["BilledCost"])
        assert sums == TOTALS
        assert all(str(Decimal(r["BilledCost"])).count(".") == 1 for r in source)


def test_nulls_are_nulls_in_parquet_and_empty_in_csv(
    files: tuple[pa.Table, list[dict[str, str]]],
) -> None:
    table, rows = files
    for name in ("ChargeClass", "InvoiceId"):
        assert table.column(name).null_count == table.num_rows
        assert {r[name] for r in rows} == {""}
    purchases = [r for r in table.to_pylist() if r["ChargeCategory"] == "Purchase"]
    assert purchases and all(r["ConsumedQuantity"] is None for r in purchases)
    # No empty strings or zeros stand in for a missing value.
    for column in table.columns:
        assert "" not in column.to_pylist()


def test_timestamps_are_utc_month_bounds(files: tuple[pa.Table, list[dict[str, str]]]) -> None:
    table, rows = files
    for r in rows:
        for name in ("BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart"):
            assert UTC_TEXT.match(r[name]), r[name]
    assert {r["BillingPeriodStart"] for r in rows} == {"2026-09-30T22:00:00Z"}
    assert {r["ChargePeriodEnd"] for r in rows} == {"2026-10-31T23:00:00Z"}
    start = {v.isoformat() for v in table.column("BillingPeriodStart").to_pylist()}
    assert start == {"2026-09-30T22:00:00+00:00"}


def test_no_partial_file_on_error(
    priced: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(table: pa.Table, where: str) -> None:
        Path(where).write_text("half", encoding="utf-8")
        raise OSError("disk full")

    monkeypatch.setattr(focus.pa_csv, "write_csv", broken)
    with pytest.raises(OSError, match="disk full"):
        export(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir() if "focus" in p.name) == ["focus.parquet"]


def test_only_parquet(priced: Path, tmp_path: Path) -> None:  # noqa: F811
    bill = allocate(october(), load_catalog(), billing_config.load(), kommunen.get)
    with pytest.raises(ValueError, match=r"\.parquet"):
        focus.render(Report(bill), tmp_path / "focus.csv")
