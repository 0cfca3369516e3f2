"""The month as a FOCUS 1.2 cost-and-usage dataset (docs/focus.md): Parquet, and CSV beside it.

One row per billed line and one per Kommune's overhead share, and a `Credit` row (negative
costs) for the start-up funding's subsidy of each. Costs are the billed cents as decimals, so
a Kommune's BilledCost adds up to what it pays to the cent; the exact amounts stay in
billing. The Parquet schema is explicit: inferring it would make an all-null column `null`
and a numeric AGS an integer.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Callable, Iterator
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from basisit.billing import money
from basisit.billing.model import BASE, METERED, MONITORING, ONE_TIME, KommuneBill, Line
from basisit.catalog import load_catalog
from basisit.reports.german import Report

PROVIDER = "eGo-Saar"  # Zweckverband eGo-Saar: runs, publishes and invoices Basis-IT
CURRENCY = "EUR"
QUANTITY_PLACES = 10  # pro-rata months do not terminate; 10 places are far below a cent
COST = pa.decimal128(14, 2)
PRICE = pa.decimal128(18, 6)
QUANTITY = pa.decimal128(28, QUANTITY_PLACES)
TIME = pa.timestamp("ms", tz="UTC")  # Parquet has no unit of seconds: ms is the coarsest
TIME_TEXT = "%Y-%m-%dT%H:%M:%SZ"

# FOCUS columns in the order of the specification's column list (alphabetical), then ours.
SCHEMA = pa.schema(
    [
        ("BilledCost", COST),
        ("BillingAccountId", pa.string()),
        ("BillingAccountName", pa.string()),
        ("BillingCurrency", pa.string()),
        ("BillingPeriodEnd", TIME),
        ("BillingPeriodStart", TIME),
        ("ChargeCategory", pa.string()),
        ("ChargeClass", pa.string()),
        ("ChargeDescription", pa.string()),
        ("ChargeFrequency", pa.string()),
        ("ChargePeriodEnd", TIME),
        ("ChargePeriodStart", TIME),
        ("ConsumedQuantity", QUANTITY),
        ("ConsumedUnit", pa.string()),
        ("ContractedCost", COST),
        ("EffectiveCost", COST),
        ("InvoiceId", pa.string()),
        ("InvoiceIssuerName", pa.string()),
        ("ListCost", COST),
        ("ListUnitPrice", PRICE),
        ("PricingQuantity", QUANTITY),
        ("PricingUnit", pa.string()),
        ("ProviderName", pa.string()),
        ("PublisherName", pa.string()),
        ("ResourceId", pa.string()),
        ("ResourceName", pa.string()),
        ("ResourceType", pa.string()),
        ("ServiceCategory", pa.string()),
        ("ServiceName", pa.string()),
        ("ServiceSubcategory", pa.string()),
        ("SubAccountId", pa.string()),
        ("SubAccountName", pa.string()),
        ("SubAccountType", pa.string()),
        ("x_LineKind", pa.string()),
        ("x_Plan", pa.string()),
        ("x_RequestIds", pa.string()),
        ("x_Flags", pa.string()),
        ("x_Provisional", pa.bool_()),
        ("x_AllocationKey", pa.string()),
        ("x_AllocationPool", COST),
        ("x_AllocationWeight", QUANTITY),
        ("x_Funding", pa.string()),
    ]
)

# Catalog category -> FOCUS ServiceCategory (its closed list of values).
SERVICE_CATEGORY = {
    "compute": "Compute",
    "storage": "Storage",
    "identity": "Identity",
    "network": "Networking",
    "data": "Databases",
    "web": "Web",
    "communication": "Business Applications",
    "operations": "Management and Governance",
}
# Service -> FOCUS ServiceSubcategory (each within its ServiceCategory); else "Other (...)".
SERVICE_SUBCATEGORY = {
    "virtual-server": "Virtual Machines",
    "fileshare": "File Storage",
    "backup": "Backup Storage",
    "database": "Relational Databases",
    "directory": "Identity and Access Management",
    "monitoring": "Observability",
    "vpn": "Network Infrastructure",
    "mail": "Productivity and Collaboration",
}
# The catalog's German units -> FOCUS unit format (`<unit>-<plural time unit>`, plural counts).
UNIT = {
    "Monat": "Months",
    "GiB-Monat": "GiB-Months",
    "Konto-Monat": "Account-Months",
    "Postfach-Monat": "Mailbox-Months",
    "Gegenstelle-Monat": "Peer-Months",
    "Einrichtung": "Setups",
}
# Line kind -> (ChargeCategory, ChargeFrequency).
CHARGE = {
    BASE: ("Purchase", "Recurring"),
    MONITORING: ("Purchase", "Recurring"),
    METERED: ("Usage", "Usage-Based"),
    ONE_TIME: ("Purchase", "One-Time"),
}
OVERHEAD_SERVICE = "Gemeinkosten Basis-IT"
OVERHEAD_CATEGORY = "Management and Governance"


def render(report: Report, path: Path) -> list[Path]:
    """Write `path` (.parquet) and the same rows beside it as .csv; return both paths."""
    if path.suffix != ".parquet":
        raise ValueError(f"{path}: a FOCUS export is written as .parquet (and .csv beside it)")
    table = build_table(report)
    csv_path = path.with_suffix(".csv")
    _atomic(path, lambda tmp: pq.write_table(table, tmp))
    _atomic(csv_path, lambda tmp: pa_csv.write_csv(_as_text(table), tmp))
    return [path, csv_path]


def build_table(report: Report) -> pa.Table:
    categories = {s.id: s.category for s in load_catalog().services.values()}
    rows = [row for k in report.kommunen for row in _kommune_rows(report, k, categories)]
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def _kommune_rows(report: Report, k: KommuneBill, categories: dict[str, str]) -> Iterator[dict]:
    common = _common(report, k)
    for line in k.lines:
        row = _line_row(line, SERVICE_CATEGORY[categories[line.service_id]])
        yield common | row
        if line.subsidy_cents:
            yield common | _credit_row(row, line.subsidy_cents, line.funded_by, report)
    if k.overhead_cents or k.weight:
        row = _overhead_row(report, k)
        yield common | row
        if k.overhead_subsidy_cents:
            yield common | _credit_row(row, k.overhead_subsidy_cents, k.overhead_funded_by, report)


def _credit_row(
    charge: dict[str, Any], cents: int, funded_by: tuple[str, ...], report: Report
) -> dict[str, Any]:
    """The subsidy of `charge` as a FOCUS credit: the same service and resource, negative
    costs (all four equal: a credit is a charge unrelated to others), no quantity or price."""
    names = {p.id: p.name for p in report.bill.funding}
    cost = -money.euro(cents)
    return charge | {
        "BilledCost": cost, "ContractedCost": cost, "EffectiveCost": cost, "ListCost": cost,
        "ListUnitPrice": None, "PricingQuantity": None, "PricingUnit": None,
        "ConsumedQuantity": None, "ConsumedUnit": None,
        "ChargeCategory": "Credit", "ChargeFrequency": "Recurring",
        "ChargeDescription": "Anschubfinanzierung: " + "; ".join(names[i] for i in funded_by),
        "x_LineKind": "funding",
        "x_Funding": ",".join(funded_by),
        "x_AllocationKey": None, "x_AllocationPool": None, "x_AllocationWeight": None,
    }  # fmt: skip


def _common(report: Report, k: KommuneBill) -> dict[str, Any]:
    bill = report.bill
    return {
        # No Leitweg-ID yet (Kommune not onboarded): the AGS still names who is billed.
        "BillingAccountId": report.leitweg.get(k.ags, k.ags),
        "BillingAccountName": k.name,
        "BillingCurrency": CURRENCY,
        "BillingPeriodStart": bill.start,
        "BillingPeriodEnd": bill.end,
        # Every charge covers the billed month; pro rata is in the quantity, not the period.
        "ChargePeriodStart": bill.start,
        "ChargePeriodEnd": bill.end,
        "ChargeClass": None,  # no corrections of earlier months yet
        "InvoiceId": None,  # no invoices are issued yet
        "InvoiceIssuerName": PROVIDER,
        "ProviderName": PROVIDER,
        "PublisherName": PROVIDER,
        "SubAccountId": k.ags,
        "SubAccountName": k.name,
        "SubAccountType": k.typ,
        "x_Provisional": bill.provisional,
    }


def _line_row(line: Line, category: str) -> dict[str, Any]:
    charge_category, frequency = CHARGE[line.kind]
    cost = money.euro(line.cents)
    unit = _unit(line.unit)
    billable = line.quantity - line.included if line.kind == METERED else line.quantity
    return {
        "BilledCost": cost,
        "ContractedCost": cost,  # no negotiated prices: what is billed is the list price
        "EffectiveCost": cost,
        "ListCost": cost,
        "ListUnitPrice": line.unit_price,
        "PricingQuantity": _decimal(max(Fraction(0), billable)),
        "PricingUnit": unit,
        # FOCUS: consumption only on Usage rows; purchases carry none.
        "ConsumedQuantity": _decimal(line.quantity) if charge_category == "Usage" else None,
        "ConsumedUnit": unit if charge_category == "Usage" else None,
        "ChargeCategory": charge_category,
        "ChargeFrequency": frequency,
        "ChargeDescription": line.description,
        "ResourceId": line.instance,
        "ResourceName": line.instance,
        "ResourceType": line.service_name,
        "ServiceCategory": category,
        "ServiceName": line.service_name,
        "ServiceSubcategory": SERVICE_SUBCATEGORY.get(line.service_id, f"Other ({category})"),
        "x_LineKind": line.kind,
        "x_Plan": line.plan,
        "x_RequestIds": ",".join(str(r) for r in line.request_ids) or None,
        "x_Flags": line.flagged or None,
    }


def _overhead_row(report: Report, k: KommuneBill) -> dict[str, Any]:
    bill = report.bill
    cost = money.euro(k.overhead_cents)
    pool = money.euro(bill.pool_cents)
    # The pool is the unit price, the Kommune's share of it the quantity: price × quantity is
    # the exact share, of which BilledCost is the rounded cents.
    share = k.overhead_exact / Fraction(pool) if bill.pool_cents else Fraction(0)
    return {
        "BilledCost": cost,
        "ContractedCost": cost,
        "EffectiveCost": cost,
        "ListCost": cost,
        "ListUnitPrice": pool,
        "PricingQuantity": _decimal(share),
        "PricingUnit": "Months",
        "ConsumedQuantity": _decimal(share),
        "ConsumedUnit": "Months",
        "ChargeCategory": "Usage",
        "ChargeFrequency": "Recurring",
        "ChargeDescription": f"Anteil an den Gemeinkosten (Schlüssel {bill.method_used})",
        "ResourceId": None,  # the overhead is no resource of the Kommune
        "ResourceName": None,
        "ResourceType": None,
        "ServiceCategory": OVERHEAD_CATEGORY,
        "ServiceName": OVERHEAD_SERVICE,
        "ServiceSubcategory": f"Other ({OVERHEAD_CATEGORY})",
        "x_LineKind": "overhead",
        "x_Plan": None,
        "x_RequestIds": None,
        "x_Flags": None,
        "x_AllocationKey": bill.method_used,
        "x_AllocationPool": pool,
        "x_AllocationWeight": _decimal(k.weight),
    }


def _unit(unit: str) -> str:
    try:
        return UNIT[unit]
    except KeyError:
        raise ValueError(f"catalog unit {unit!r} has no FOCUS unit: add it to UNIT") from None


def _decimal(value: Fraction) -> Decimal:
    return money.to_decimal(value, QUANTITY_PLACES)


def _as_text(table: pa.Table) -> pa.Table:
    """The CSV's table: timestamps as `2026-09-30T22:00:00Z` (pyarrow would write a space and
    fractions); nulls stay nulls, which the CSV writer leaves empty."""
    columns = []
    for field in table.schema:
        column = table.column(field.name)
        if pa.types.is_timestamp(field.type):
            # %S of a ms timestamp prints `00.000`: whole seconds first.
            seconds = column.cast(pa.timestamp("s", tz="UTC"))
            column = pc.strftime(seconds, format=TIME_TEXT)
        columns.append(column)
    return pa.Table.from_arrays(columns, names=table.schema.names)


def _atomic(path: Path, write: Callable[[str], Any]) -> None:
    """Write to a temp file in the same directory, then rename: never a partial file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def utc_text(value: dt.datetime) -> str:
    """A FOCUS date-time as text: UTC, whole seconds, `Z`."""
    return value.astimezone(dt.UTC).strftime(TIME_TEXT)
