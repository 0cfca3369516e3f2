"""`basisit usage --month YYYY-MM`: a Berlin month of the ledger as contract 3.

Sums the current rows (final ones, and provisional ones for hours not yet final) per Kommune,
instance, unit and plan, and converts each sum once, in Decimal, into the catalog's unit.
Gap, "noch keine Messung" and provisional hours are counted per line, never hidden.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from basisit import kommunen
from basisit.app.ledger import iter_rows
from basisit.contracts import usage
from basisit.errors import NotFound
from basisit.metering import hours as h
from basisit.metering import measure, units
from basisit.store.db import session_scope


@dataclass
class _Line:
    unit: str
    plan: str
    metric: str | None
    base_unit: str
    quantity: int = 0
    hours: set[dt.datetime] = field(default_factory=set)
    gap: set[dt.datetime] = field(default_factory=set)
    no_measurement: set[dt.datetime] = field(default_factory=set)
    provisional: set[dt.datetime] = field(default_factory=set)
    request_ids: set[int] = field(default_factory=set)
    amount_cent: int | None = None


_UNIT_ORDER = {units.BETRIEBSSTUNDE: 0, units.EINRICHTUNG: 2}


def month_usage(month: str, ags: list[str] | None = None) -> usage.Usage:
    """The month's usage document; NotFound when the ledger has nothing for it."""
    start, end = h.month_range(month)
    wanted = {kommunen.get(a).ags for a in ags} if ags else None
    month_s = int((end - start).total_seconds())
    lines: dict[tuple[str, str, str], dict[tuple[str, str], _Line]] = {}
    billable: dict[str, dict[dt.datetime, int]] = {}  # per Kommune and hour: the longest
    with session_scope() as session:
        for row in iter_rows(session, start, end):
            if wanted is not None and row.ags not in wanted:
                continue
            per = lines.setdefault((row.ags, row.instance, row.catalog_service), {})
            line = per.setdefault(
                (row.unit, row.plan), _Line(row.unit, row.plan, row.metric, row.base_unit)
            )
            hour = h.utc(row.hour_start)
            if row.unit == units.BETRIEBSSTUNDE:
                per_hour = billable.setdefault(row.ags, {})
                per_hour[hour] = max(per_hour.get(hour, 0), row.quantity)
            line.quantity += row.quantity
            line.hours.add(hour)
            line.request_ids.add(row.request_id)
            if row.quality == measure.GAP:
                line.gap.add(hour)
            elif row.quality == measure.NO_MEASUREMENT:
                line.no_measurement.add(hour)
            if row.status == "provisional":
                line.provisional.add(hour)
            if row.amount_cent is not None:
                line.amount_cent = (line.amount_cent or 0) + row.amount_cent
    if not lines:
        who = f" for AGS {', '.join(sorted(wanted))}" if wanted else ""
        raise NotFound(
            f"the ledger has no rows for {month}{who} ({h.iso(start)} to {h.iso(end)}); "
            "import them with `basisit ledger import --from ... --to ...`"
        )
    doc: usage.Usage = {
        "schema_version": usage.SCHEMA_VERSION,
        "month": month.strip(),
        "period": {
            "start": h.iso(start),
            "end": h.iso(end),
            "hours": month_s // 3600,
            "timezone": "Europe/Berlin",
        },
        "generated_at": h.iso(dt.datetime.now(dt.UTC)),
        "kommunen": [],
    }
    by_ags: dict[str, usage.Kommune] = {}
    for (ags_, instance, service), per in sorted(lines.items()):
        kommune = by_ags.get(ags_)
        if kommune is None:
            kommune = {
                "ags": ags_,
                "name": _name(ags_),
                "billable_seconds": sum(billable.get(ags_, {}).values()),
                "instances": [],
            }
            by_ags[ags_] = kommune
            doc["kommunen"].append(kommune)
        ordered = sorted(per.values(), key=lambda ln: (_UNIT_ORDER.get(ln.unit, 1), ln.unit,
                                                       min(ln.hours), ln.plan))  # fmt: skip
        kommune["instances"].append(
            {
                "instance": instance,
                "catalog_service": service,
                "lines": [_line(ln, month_s) for ln in ordered],
            }
        )
    return usage.check(doc, f"usage of {month}")


def _line(line: _Line, month_s: int) -> usage.Line:
    amount = units.in_catalog_unit(line.unit, line.base_unit, line.quantity, month_s)
    return {
        "unit": line.unit,
        "plan": line.plan,
        "request_ids": sorted(line.request_ids),
        "metric": line.metric,
        "base_unit": line.base_unit,
        "quantity_base": line.quantity,
        "quantity": str(units.quantize(amount, 6)),
        "hours": len(line.hours),
        "gap_hours": len(line.gap),
        "no_measurement_hours": len(line.no_measurement),
        "provisional_hours": len(line.provisional),
        "amount_cent": line.amount_cent,
    }


def _name(ags: str) -> str | None:
    try:
        return kommunen.get(ags).short_name
    except NotFound:
        return None
