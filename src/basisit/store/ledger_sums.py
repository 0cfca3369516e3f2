"""The ledger's month sums: what a month is billed from instead of its 700,000 rows.

A month's *line* is one instance's unit under one plan (Kommune, instance, service, unit,
plan) in a Berlin month. It sums the month's *current* rows: final rows, and provisional rows
that no row corrects. Per line: the quantity, the hours with a row (an hour counts once
however many requests it has), the hours flagged gap, "noch keine Messung" or provisional, and
the one-time fees; per line and request the number of rows (the Nachweis); per Kommune the
billable seconds (per hour its longest billable instance).

Every figure is a sum over (Kommune, hour) groups, so the import keeps them exact by adding,
for each (Kommune, hour) it writes, what the hour contributes after its rows minus what it
contributed before (`difference`), in the same transaction as the rows (`apply`). `recompute`
sums the rows themselves; `basisit ledger verify` compares the two.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from sqlalchemy import (
    Connection,
    bindparam,
    case,
    delete,
    distinct,
    func,
    insert,
    select,
    union_all,
)
from sqlalchemy import update as sql_update
from sqlalchemy.orm import aliased

from basisit import hours as h
from basisit.store.models import LedgerMonthKommune, LedgerMonthLine, LedgerMonthRequest, LedgerRow

# The ledger's words (basisit.app.ledger, basisit.metering.measure, basisit.units).
BILLABLE_UNIT = "Betriebsstunde"
GAP = "gap"
NO_MEASUREMENT = "no_measurement"
PROVISIONAL = "provisional"

Key = tuple[str, str, str, str, str, str]  # month, ags, instance, catalog_service, unit, plan
KEY_FIELDS = ("month", "ags", "instance", "catalog_service", "unit", "plan")
_FIGURES = ("quantity", "hours", "gap_hours", "no_measurement_hours", "provisional_hours",
            "fee_rows", "amount_cent")  # fmt: skip


class Row(NamedTuple):
    """A current ledger row, as far as the sums need it (hour: aware UTC)."""

    ags: str
    instance: str
    catalog_service: str
    unit: str
    plan: str
    request_id: int
    metric: str | None
    base_unit: str
    hour: dt.datetime
    quantity: int
    status: str
    quality: str
    amount_cent: int | None


@dataclass
class Line:
    """A line's figures; in a difference they may be negative."""

    metric: str | None
    base_unit: str
    quantity: int = 0
    hours: int = 0
    gap_hours: int = 0
    no_measurement_hours: int = 0
    provisional_hours: int = 0
    fee_rows: int = 0
    amount_cent: int = 0
    first_hour: dt.datetime | None = None

    @classmethod
    def of(cls, metric: str | None, base_unit: str, figures: Iterable[Any],
           first_hour: dt.datetime | None) -> Line:  # fmt: skip
        """A line from its figures in the order of _FIGURES (as the database gives them)."""
        line = cls(metric, base_unit, first_hour=first_hour)
        for name, value in zip(_FIGURES, figures, strict=True):
            setattr(line, name, int(value))
        return line

    def figures(self) -> tuple[int, ...]:
        return tuple(getattr(self, name) for name in _FIGURES)

    def plus(self, other: Line, sign: int = 1) -> Line:
        firsts = [t for t in (self.first_hour, other.first_hour if sign > 0 else None) if t]
        return replace(
            self,
            metric=self.metric or other.metric,
            **{n: getattr(self, n) + sign * getattr(other, n) for n in _FIGURES},
            first_hour=min(firsts) if firsts else None,
        )


@dataclass
class Sums:
    lines: dict[Key, Line] = field(default_factory=dict)
    requests: dict[tuple[Key, int], int] = field(default_factory=dict)  # rows per request
    billable: dict[tuple[str, str], int] = field(default_factory=dict)  # (month, ags) -> s
    # Lines that lost an hour: their first hour may be later now (recomputed by `apply`).
    lost: set[Key] = field(default_factory=set)

    def add(self, other: Sums, sign: int = 1) -> None:
        for key, line in other.lines.items():
            mine = self.lines.get(key)
            base = mine or Line(line.metric, line.base_unit)
            self.lines[key] = base.plus(line, sign)
        for rkey, rows in other.requests.items():
            self.requests[rkey] = self.requests.get(rkey, 0) + sign * rows
        for bkey, seconds in other.billable.items():
            self.billable[bkey] = self.billable.get(bkey, 0) + sign * seconds
        self.lost |= other.lost


def of_hour(rows: Sequence[Row], month: str) -> Sums:
    """What the current rows of one (Kommune, hour) contribute to their month."""
    sums = Sums()
    longest = 0
    for r in rows:
        key = (month, r.ags, r.instance, r.catalog_service, r.unit, r.plan)
        line = sums.lines.get(key)
        if line is None:
            line = sums.lines[key] = Line(r.metric, r.base_unit, hours=1, first_hour=r.hour)
        line.metric = line.metric or r.metric
        line.quantity += r.quantity
        line.gap_hours = max(line.gap_hours, r.quality == GAP)
        line.no_measurement_hours = max(line.no_measurement_hours, r.quality == NO_MEASUREMENT)
        line.provisional_hours = max(line.provisional_hours, r.status == PROVISIONAL)
        if r.amount_cent is not None:
            line.fee_rows += 1
            line.amount_cent += r.amount_cent
        rkey = (key, r.request_id)
        sums.requests[rkey] = sums.requests.get(rkey, 0) + 1
        if r.unit == BILLABLE_UNIT:
            longest = max(longest, r.quantity)
    if longest and rows:
        sums.billable[(month, rows[0].ags)] = longest
    return sums


def difference(before: Iterable[Row], after: Iterable[Row]) -> Sums:
    """What changes in the month sums when the current rows `before` become `after`; only
    the (Kommune, hour) groups in `after` are compared (an import never removes a group)."""
    groups: dict[tuple[str, dt.datetime], tuple[list[Row], list[Row]]] = {}
    for r in after:
        groups.setdefault((r.ags, r.hour), ([], []))[1].append(r)
    for r in before:
        group = groups.get((r.ags, r.hour))
        if group is not None:
            group[0].append(r)
    total = Sums()
    months: dict[dt.datetime, str] = {}
    for (_ags, hour), (old, new) in groups.items():
        month = months.get(hour) or months.setdefault(hour, h.month_of(hour))
        now = of_hour(new, month)
        if old:
            was = of_hour(old, month)
            total.add(was, -1)
            total.lost |= set(was.lines) - set(now.lines)
        total.add(now)
    return total


# --- the database -----------------------------------------------------------------------------


def _current(start: dt.datetime, end: dt.datetime, ags: Iterable[str] | None) -> Any:
    """The current rows of the hours [start, end) as a subquery. Final rows are never
    corrected (the import never replaces one); each part is read through its own partial
    index by hour, never the whole ledger."""
    t = LedgerRow
    c = aliased(LedgerRow)
    where = [t.hour_start >= start, t.hour_start < end]
    if ags is not None:
        where.append(t.ags.in_(sorted(ags)))
    names = ("ags", "instance", "catalog_service", "unit", "plan", "request_id", "metric",
             "base_unit", "hour_start", "quantity", "status", "quality", "amount_cent")  # fmt: skip
    columns = [getattr(t, name) for name in names]
    final = select(*columns).where(t.status == "final", *where)
    provisional = select(*columns).where(
        t.status == PROVISIONAL, *where, ~select(c.id).where(c.corrects_id == t.id).exists()
    )
    return union_all(final, provisional).subquery("current_rows")


def _hours_where(t: Any, condition: Any) -> Any:
    return func.count(distinct(case((condition, t.c.hour_start))))


def recompute(conn: Connection, month: str, ags: Iterable[str] | None = None) -> Sums:
    """The month's sums from the ledger's rows, in the database (GROUP BY; seconds for a
    month of 58 Kommunen): the reference `verify` compares with."""
    start, end = h.month_range(month)
    t = _current(start, end, ags)
    keys = [t.c[name] for name in KEY_FIELDS[1:]]
    sums = Sums()
    found = conn.execute(
        select(*keys, func.max(t.c.metric), func.max(t.c.base_unit), func.sum(t.c.quantity),
               func.count(distinct(t.c.hour_start)), _hours_where(t, t.c.quality == GAP),
               _hours_where(t, t.c.quality == NO_MEASUREMENT),
               _hours_where(t, t.c.status == PROVISIONAL), func.count(t.c.amount_cent),
               func.coalesce(func.sum(t.c.amount_cent), 0), func.min(t.c.hour_start))
        .group_by(*keys)
    ).all()  # fmt: skip
    for r in found:
        metric, base, *figures, first = r[5:]
        sums.lines[_key(month, r)] = Line.of(metric, base, figures, h.utc(first))
    by_request = select(*keys, t.c.request_id, func.count()).group_by(*keys, t.c.request_id)
    for r in conn.execute(by_request):
        sums.requests[(_key(month, r), int(r[5]))] = int(r[6])
    longest = (
        select(t.c.ags, t.c.hour_start, func.max(t.c.quantity).label("s"))
        .where(t.c.unit == BILLABLE_UNIT)
        .group_by(t.c.ags, t.c.hour_start)
        .subquery()
    )
    for who, seconds in conn.execute(
        select(longest.c.ags, func.sum(longest.c.s)).group_by(longest.c.ags)
    ):
        sums.billable[(month, str(who))] = int(seconds)
    return sums


def _key(month: str, r: Sequence[Any]) -> Key:
    """The line key of a result row that starts with ags, instance, service, unit, plan."""
    return (month, str(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]))


def _line_where(table: Any, months: Iterable[str], ags: Iterable[str] | None) -> list[Any]:
    where = [table.month.in_(sorted(set(months)))]
    if ags is not None:
        where.append(table.ags.in_(sorted(set(ags))))
    return where


def read(conn: Connection, month: str, ags: Iterable[str] | None = None) -> Sums:
    """The month's sums as the import keeps them (about a thousand rows a month)."""
    return _stored(conn, [month], ags)[0]


def _mkey(r: Any) -> Key:
    return (r["month"], r["ags"], r["instance"], r["catalog_service"], r["unit"], r["plan"])


class _Stored(NamedTuple):
    sums: Sums
    line_ids: dict[Key, int]
    request_ids: dict[tuple[Key, int], int]
    kommune_ids: dict[tuple[str, str], int]


def _stored(conn: Connection, months: Iterable[str], ags: Iterable[str] | None) -> _Stored:
    """The stored sums, and the ids of their rows (for `apply`)."""
    months = list(months)
    found = _Stored(Sums(), {}, {}, {})
    ml, mr, mk = LedgerMonthLine, LedgerMonthRequest, LedgerMonthKommune
    for r in conn.execute(select(ml).where(*_line_where(ml, months, ags))).mappings():
        key = _mkey(r)
        found.sums.lines[key] = Line.of(
            r["metric"], r["base_unit"], (r[n] for n in _FIGURES), h.utc(r["first_hour"])
        )
        found.line_ids[key] = r["id"]
    for r in conn.execute(select(mr).where(*_line_where(mr, months, ags))).mappings():
        rkey = (_mkey(r), int(r["request_id"]))
        found.sums.requests[rkey] = int(r["rows"])
        found.request_ids[rkey] = r["id"]
    for r in conn.execute(select(mk).where(*_line_where(mk, months, ags))).mappings():
        found.sums.billable[(r["month"], r["ags"])] = int(r["billable_seconds"])
        found.kommune_ids[(r["month"], r["ags"])] = r["id"]
    return found


def _line_values(key: Key, line: Line) -> dict[str, Any]:
    values: dict[str, Any] = dict(zip(KEY_FIELDS, key, strict=True))
    values.update(metric=line.metric, base_unit=line.base_unit, first_hour=line.first_hour)
    values.update({name: getattr(line, name) for name in _FIGURES})
    return values


def _first_hour(conn: Connection, key: Key) -> dt.datetime | None:
    start, end = h.month_range(key[0])
    t = _current(start, end, [key[1]])
    first = conn.scalar(
        select(func.min(t.c.hour_start)).where(
            t.c.instance == key[2], t.c.catalog_service == key[3], t.c.unit == key[4],
            t.c.plan == key[5],
        )
    )  # fmt: skip
    return None if first is None else h.utc(first)


def apply(conn: Connection, delta: Sums) -> list[str]:
    """Add a `difference` to the stored sums (in the caller's transaction, after its rows
    are written). Returns the months it found out of step with the rows (rows written
    without their sums, e.g. by hand) and so recomputed for the Kommunen concerned."""
    months = {k[0] for k in delta.lines} | {m for m, _ in delta.billable}
    if not months:
        return []
    ags = {k[1] for k in delta.lines} | {a for _, a in delta.billable}
    stored = _stored(conn, months, ags)
    merged = Sums(dict(stored.sums.lines), dict(stored.sums.requests), dict(stored.sums.billable))
    merged.add(delta)
    broken = sorted(
        {k[0] for k, line in merged.lines.items() if min(line.figures()) < 0}
        | {k[0][0] for k, rows in merged.requests.items() if rows < 0}
        | {m for (m, _), s in merged.billable.items() if s < 0}
    )
    for month in broken:
        replace_month(conn, month, recompute(conn, month, ags), ags)
    ml, mr, mk = LedgerMonthLine, LedgerMonthRequest, LedgerMonthKommune
    gone: list[int] = []
    new: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for key in delta.lines:
        if key[0] in broken:
            continue
        line = merged.lines[key]
        if line.hours and key in delta.lost:
            line.first_hour = _first_hour(conn, key)
        at = stored.line_ids.get(key)
        if not line.hours:
            gone += [at] if at is not None else []
        elif at is None:
            new.append(_line_values(key, line))
        elif line != stored.sums.lines[key]:
            changed.append({"_id": at, **_line_values(key, line)})
    _write(conn, ml, gone, new, changed)
    gone, new, changed = [], [], []
    for rkey in delta.requests:
        if rkey[0][0] in broken:
            continue
        rows, at = merged.requests[rkey], stored.request_ids.get(rkey)
        if not rows:
            gone += [at] if at is not None else []
        elif at is None:
            new.append({**dict(zip(KEY_FIELDS, rkey[0], strict=True)),
                        "request_id": rkey[1], "rows": rows})  # fmt: skip
        else:
            changed.append({"_id": at, "rows": rows})
    _write(conn, mr, gone, new, changed)
    gone, new, changed = [], [], []
    for bkey in delta.billable:
        if bkey[0] in broken:
            continue
        seconds, at = merged.billable[bkey], stored.kommune_ids.get(bkey)
        if not seconds:
            gone += [at] if at is not None else []
        elif at is None:
            new.append({"month": bkey[0], "ags": bkey[1], "billable_seconds": seconds})
        else:
            changed.append({"_id": at, "billable_seconds": seconds})
    _write(conn, mk, gone, new, changed)
    return broken


def _write(conn: Connection, table: Any, gone: list[int], new: list[dict[str, Any]],
           changed: list[dict[str, Any]]) -> None:  # fmt: skip
    if gone:
        conn.execute(delete(table).where(table.id.in_(gone)))
    if new:
        conn.execute(insert(table), new)
    if changed:
        columns: dict[str, Any] = {n: bindparam(n) for n in changed[0] if n != "_id"}
        conn.execute(sql_update(table).where(table.id == bindparam("_id")).values(columns),
                     changed)  # fmt: skip


def replace_month(
    conn: Connection, month: str, sums: Sums, ags: Iterable[str] | None = None
) -> None:
    """Store `sums` as the month's (of the Kommunen `ags`, or all), dropping what was there."""
    ml, mr, mk = LedgerMonthLine, LedgerMonthRequest, LedgerMonthKommune
    for table in (ml, mr, mk):
        conn.execute(delete(table).where(*_line_where(table, [month], ags)))
    if sums.lines:
        conn.execute(insert(ml), [_line_values(k, line) for k, line in sums.lines.items()])
    if sums.requests:
        conn.execute(insert(mr), [
            {**dict(zip(KEY_FIELDS, k, strict=True)), "request_id": rid, "rows": rows}
            for (k, rid), rows in sums.requests.items()
        ])  # fmt: skip
    if sums.billable:
        conn.execute(insert(mk), [{"month": m, "ags": a, "billable_seconds": s}
                                  for (m, a), s in sums.billable.items()])  # fmt: skip


def months(conn: Connection) -> list[str]:
    """Every Berlin month the ledger has rows in, or its sums have lines in, in order."""
    lo, hi = conn.execute(select(func.min(LedgerRow.hour_start),
                                 func.max(LedgerRow.hour_start))).one()  # fmt: skip
    found = set(conn.scalars(select(LedgerMonthLine.month).distinct()))
    if lo is not None:
        at = h.utc(lo)
        while at <= h.utc(hi):
            month = h.month_of(at)
            found.add(month)
            at = h.month_range(month)[1]
    return sorted(found)


def compare(rows: Sums, kept: Sums) -> list[str]:
    """Where the kept sums differ from the rows' (empty when they agree), in words."""
    problems: list[str] = []
    for key in sorted(set(rows.lines) | set(kept.lines)):
        a, b = rows.lines.get(key), kept.lines.get(key)
        where = " ".join(key)
        if a is None or b is None:
            problems.append(f"{where}: {'missing from' if a else 'not in the rows but in'} "
                            "the month sums")  # fmt: skip
            continue
        for name in (*_FIGURES, "first_hour", "metric", "base_unit"):
            if getattr(a, name) != getattr(b, name):
                problems.append(f"{where}: {name} is {getattr(b, name)} in the month sums, "
                                f"{getattr(a, name)} in the rows")  # fmt: skip
    for rkey in sorted(set(rows.requests) | set(kept.requests)):
        x, y = rows.requests.get(rkey, 0), kept.requests.get(rkey, 0)
        if x != y:
            problems.append(f"{' '.join(rkey[0])} request {rkey[1]}: {y} rows in the month "
                            f"sums, {x} in the ledger")  # fmt: skip
    for bkey in sorted(set(rows.billable) | set(kept.billable)):
        x, y = rows.billable.get(bkey, 0), kept.billable.get(bkey, 0)
        if x != y:
            problems.append(f"{' '.join(bkey)}: {y} billable seconds in the month sums, "
                            f"{x} in the rows")  # fmt: skip
    return problems
