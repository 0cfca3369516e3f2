"""`basisit usage --month YYYY-MM`: a Berlin month of the ledger as contract 3.

Sums the current rows (final ones, and provisional ones for hours not yet final) per Kommune,
instance, unit and plan, and converts each sum once, in Decimal, into the catalog's unit.
Gap, "noch keine Messung" and provisional hours are counted per line, never hidden.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case, distinct, func, select, union_all
from sqlalchemy.orm import aliased

from basisit import kommunen, units
from basisit.contracts import usage
from basisit.errors import NotFound
from basisit.metering import hours as h
from basisit.metering import measure
from basisit.store.db import session_scope
from basisit.store.models import LedgerRow


@dataclass
class _Line:
    unit: str
    plan: str
    metric: str | None
    base_unit: str
    quantity: int
    hours: int
    first_hour: dt.datetime
    gap: int
    no_measurement: int
    provisional: int
    amount_cent: int | None
    request_ids: set[int] = field(default_factory=set)


_UNIT_ORDER = {units.BETRIEBSSTUNDE: 0, units.EINRICHTUNG: 2}
_LINE = ("ags", "instance", "catalog_service", "unit", "plan")


def _current(start: dt.datetime, end: dt.datetime, wanted: set[str] | None) -> Any:
    """The current rows of [start, end) as a subquery: final rows (never corrected: the
    import never replaces one), and provisional rows that no row corrects. Each part is read
    through its own partial index by hour, never the whole ledger."""
    t = LedgerRow
    c = aliased(LedgerRow)
    in_range = [t.hour_start >= start, t.hour_start < end]
    if wanted is not None:
        in_range.append(t.ags.in_(sorted(wanted)))
    names = ("ags", "instance", "catalog_service", "unit", "plan", "metric", "base_unit",
             "quantity", "hour_start", "quality", "status", "amount_cent",
             "request_id")  # fmt: skip
    columns = [getattr(t, name) for name in names]
    final = select(*columns).where(t.status == "final", *in_range)
    provisional = select(*columns).where(
        t.status == "provisional", *in_range, ~select(c.id).where(c.corrects_id == t.id).exists()
    )
    return union_all(final, provisional).subquery("current_rows")


def _hours_where(t: Any, condition: Any) -> Any:
    return func.count(distinct(case((condition, t.c.hour_start))))


def _read(
    start: dt.datetime, end: dt.datetime, wanted: set[str] | None
) -> tuple[dict[tuple[str, str, str], dict[tuple[str, str], _Line]], dict[str, int]]:
    """The month summed in the database (a month of 58 Kommunen is 700,000 rows): per line,
    the request ids, and per Kommune the seconds with a billable instance."""
    t = _current(start, end, wanted)
    keys = [t.c[name] for name in _LINE]
    lines: dict[tuple[str, str, str], dict[tuple[str, str], _Line]] = {}
    billable: dict[str, int] = {}
    with session_scope() as session:
        found = session.execute(
            select(*keys, func.max(t.c.metric), func.max(t.c.base_unit), func.sum(t.c.quantity),
                   func.count(distinct(t.c.hour_start)), func.min(t.c.hour_start),
                   _hours_where(t, t.c.quality == measure.GAP),
                   _hours_where(t, t.c.quality == measure.NO_MEASUREMENT),
                   _hours_where(t, t.c.status == "provisional"), func.sum(t.c.amount_cent))
            .group_by(*keys)
        ).all()  # fmt: skip
        for r in found:
            ags, inst, svc, unit, plan = (str(v) for v in r[:5])
            metric, base, qty, hours, first, gap, nom, prov, fee = r[5:]
            lines.setdefault((ags, inst, svc), {})[(unit, plan)] = _Line(
                unit, plan, metric, base, int(qty), int(hours), h.utc(first), int(gap),
                int(nom), int(prov), None if fee is None else int(fee),
            )  # fmt: skip
        for r in session.execute(select(*keys, t.c.request_id).distinct()):
            lines[(r[0], r[1], r[2])][(r[3], r[4])].request_ids.add(int(r[5]))
        # Per Kommune and hour the longest billable instance, summed over the hours.
        longest = (
            select(t.c.ags, t.c.hour_start, func.max(t.c.quantity).label("s"))
            .where(t.c.unit == units.BETRIEBSSTUNDE)
            .group_by(t.c.ags, t.c.hour_start)
            .subquery()
        )
        for ags, seconds in session.execute(
            select(longest.c.ags, func.sum(longest.c.s)).group_by(longest.c.ags)
        ):
            billable[ags] = int(seconds)
    return lines, billable


def month_usage(month: str, ags: list[str] | None = None) -> usage.Usage:
    """The month's usage document; NotFound when the ledger has nothing for it."""
    start, end = h.month_range(month)
    wanted = {kommunen.get(a).ags for a in ags} if ags else None
    month_s = int((end - start).total_seconds())
    lines, billable = _read(start, end, wanted)
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
                "billable_seconds": billable.get(ags_, 0),
                "instances": [],
            }
            by_ags[ags_] = kommune
            doc["kommunen"].append(kommune)
        ordered = sorted(per.values(), key=lambda ln: (_UNIT_ORDER.get(ln.unit, 1), ln.unit,
                                                       ln.first_hour, ln.plan))  # fmt: skip
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
        "hours": line.hours,
        "gap_hours": line.gap,
        "no_measurement_hours": line.no_measurement,
        "provisional_hours": line.provisional,
        "amount_cent": line.amount_cent,
    }


def _name(ags: str) -> str | None:
    try:
        return kommunen.get(ags).short_name
    except NotFound:
        return None
