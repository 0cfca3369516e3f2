"""`basisit usage --month YYYY-MM`: a Berlin month of the ledger as contract 3.

Reads the month's sums (basisit.store.ledger_sums: the current rows, final ones and provisional
ones for hours not yet final, per Kommune, instance, unit and plan, kept by the import) and
converts each sum once, in Decimal, into the catalog's unit.
Gap, "noch keine Messung" and provisional hours are counted per line, never hidden.
"""

from __future__ import annotations

import datetime as dt

from basisit import hours as h
from basisit import kommunen, units
from basisit.contracts import usage
from basisit.errors import NotFound
from basisit.store import ledger_sums
from basisit.store.db import session_scope

_UNIT_ORDER = {units.BETRIEBSSTUNDE: 0, units.EINRICHTUNG: 2}


def month_usage(month: str, ags: list[str] | None = None) -> usage.Usage:
    """The month's usage document; NotFound when the ledger has nothing for it."""
    start, end = h.month_range(month)
    wanted = {kommunen.get(a).ags for a in ags} if ags else None
    month_s = int((end - start).total_seconds())
    with session_scope() as session:
        sums = ledger_sums.read(session.connection(), month.strip(), wanted)
    if not sums.lines:
        who = f" for AGS {', '.join(sorted(wanted))}" if wanted else ""
        raise NotFound(
            f"the ledger has no rows for {month}{who} ({h.iso(start)} to {h.iso(end)}); "
            "import them with `basisit ledger import --from ... --to ...`"
        )
    requests: dict[ledger_sums.Key, list[int]] = {}
    for (key, rid), rows in sorted(sums.requests.items()):
        if rows:
            requests.setdefault(key, []).append(rid)
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
    per_instance: dict[tuple[str, str, str], list[ledger_sums.Key]] = {}
    for key in sums.lines:
        per_instance.setdefault((key[1], key[2], key[3]), []).append(key)
    by_ags: dict[str, usage.Kommune] = {}
    for (ags_, instance, service), keys in sorted(per_instance.items()):
        kommune = by_ags.get(ags_)
        if kommune is None:
            kommune = {
                "ags": ags_,
                "name": _name(ags_),
                "billable_seconds": sums.billable.get((month.strip(), ags_), 0),
                "instances": [],
            }
            by_ags[ags_] = kommune
            doc["kommunen"].append(kommune)

        def order(key: ledger_sums.Key) -> tuple[int, str, dt.datetime | None, str]:
            unit, plan = key[4], key[5]
            return (_UNIT_ORDER.get(unit, 1), unit, sums.lines[key].first_hour, plan)

        kommune["instances"].append(
            {
                "instance": instance,
                "catalog_service": service,
                "lines": [
                    _line(key, sums.lines[key], requests.get(key, []), month_s)
                    for key in sorted(keys, key=order)
                ],
            }
        )
    return usage.check(doc, f"usage of {month}")


def _line(key: ledger_sums.Key, line: ledger_sums.Line, request_ids: list[int],
          month_s: int) -> usage.Line:  # fmt: skip
    unit, plan = key[4], key[5]
    amount = units.in_catalog_unit(unit, line.base_unit, line.quantity, month_s)
    return {
        "unit": unit,
        "plan": plan,
        "request_ids": request_ids,
        "metric": line.metric,
        "base_unit": line.base_unit,
        "quantity_base": line.quantity,
        "quantity": str(units.quantize(amount, 6)),
        "hours": line.hours,
        "gap_hours": line.gap_hours,
        "no_measurement_hours": line.no_measurement_hours,
        "provisional_hours": line.provisional_hours,
        "amount_cent": line.amount_cent if line.fee_rows else None,
    }


def _name(ags: str) -> str | None:
    try:
        return kommunen.get(ags).short_name
    except NotFound:
        return None
