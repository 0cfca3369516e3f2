"""`basisit ledger import`: billable time and measured usage into the ledger, hour by hour.

Reads the request workflow's audit log (billable time, plans, one-time fees), asks Prometheus
for what it measured (basisit.metering), and writes the rows and one import-run row in ONE
transaction: killed at any point, it stores nothing. The ledger is append-only and
idempotent: an hour already imported as final changes nothing; a provisional row (the running
hour, `--provisional`) is superseded by a new row naming it in `corrects_id`.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from basisit import hours as h
from basisit import units
from basisit.catalog import Catalog, load_catalog
from basisit.errors import NotFound, ValidationFailed
from basisit.metering import intervals, measure, prometheus
from basisit.metering.integrate import HOLD_MS, MIN_COVERAGE
from basisit.metering.intervals import RequestRecord, Segment, TransitionRecord
from basisit.metering.measure import Earlier, Job, Measured, Window
from basisit.requests.service import actor_name
from basisit.store import ledger_sums
from basisit.store.db import session_scope
from basisit.store.models import AuditEvent, LedgerImport, LedgerRow, Request, utcnow

# Only hours that ended at least this long ago are final: late scrapes have landed by then.
SETTLE = dt.timedelta(minutes=5)
FINAL = "final"
PROVISIONAL = "provisional"
EXACT = "exact"  # billable time and one-time fees come from the audit log, not a measurement
BOUNDARY_RULE = (
    "hour (start, end]: a sample exactly at the start belongs to the hour before; the value "
    "held into the hour is the last sample at or before its start"
)
GAP_RULE: dict[str, Any] = {
    "min_coverage": str(MIN_COVERAGE),
    "fill": "mean of the last complete hour before, else of the first complete hour after",
    "never_reported": "0, flagged no_measurement",
}
_FAR = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ImportResult:
    import_id: int
    range_start: dt.datetime
    range_end: dt.datetime
    provisional_end: dt.datetime | None
    prometheus_version: str
    rows_written: int
    rows_unchanged: int
    corrections: int
    gap_rows: int
    no_measurement_rows: int
    queries: int


class _Draft(NamedTuple):
    """A ledger row before it is written (a tuple: a month of 58 Kommunen is 700,000)."""

    ags: str
    instance: str
    catalog_service: str
    plan: str
    request_id: int
    unit: str
    metric: str | None
    base_unit: str
    hour_start: dt.datetime
    seconds: int
    quantity: int
    status: str
    quality: str
    amount_cent: int | None = None
    covered_seconds: int | None = None
    filled_from: dt.datetime | None = None

    def same(self, row: _Current) -> bool:
        return (row.quantity, row.seconds, row.quality, row.amount_cent, row.covered_seconds) == (
            self.quantity, self.seconds, self.quality, self.amount_cent, self.covered_seconds
        )  # fmt: skip


@dataclass
class _Plan:
    """What one import covers: final hours [start, final_end), provisional up to `cut`."""

    start: dt.datetime
    final_end: dt.datetime
    cut: dt.datetime | None  # provisional: the running hours up to this instant
    explicit: bool
    hours: list[tuple[dt.datetime, dt.datetime, bool]] = field(default_factory=list)


def import_usage(
    *,
    start: str | None = None,
    end: str | None = None,
    provisional: bool = False,
    prometheus_url: str | None = None,
    actor: str | None = None,
    now: dt.datetime | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Import the hours of [start, end) (ISO 8601, Berlin without an offset; default: since the
    last import, the first from the first activation) that ended at least 5 minutes ago."""
    say = progress or (lambda _text: None)
    who = actor_name(actor)
    moment = h.utc(now) if now is not None else dt.datetime.now(dt.UTC)
    with session_scope() as session:
        requests, transitions = _audit_log(session)
        last_end = session.scalar(select(func.max(LedgerImport.range_end)))
    segments = intervals.segments(requests, transitions)
    first_activation = min((s.start for s in segments), default=None)
    plan = _plan(start, end, provisional, moment, last_end, first_activation)
    catalog = load_catalog()
    client = prometheus.Client(prometheus_url or prometheus.url())
    version = client.version()  # fails here, before anything is written, when it is down
    retention = client.retention()
    windows = _windows(segments, plan)
    if plan.explicit and not plan.hours:
        raise ValidationFailed(
            f"no hour from {h.iso(plan.start)} on has ended at least 5 minutes ago "
            "(the running hour is imported only with --provisional); nothing written"
        )
    if plan.explicit and not windows:
        raise NotFound(
            f"nothing was billable between {h.iso(plan.start)} and "
            f"{h.iso(plan.cut or plan.final_end)}: no ledger rows to import; nothing written"
        )
    with session_scope() as session:
        done = _Done(session, plan.start, h.ceil_hour(plan.cut or plan.final_end))
        jobs = _jobs(catalog, segments, windows, session, plan.start, done)
    instances = {(w.segment.ags, w.segment.instance) for w in windows}
    say(f"{len(windows)} billable hours of {len(instances)} instances, {len(jobs)} metered")
    drafts = _billable_rows(windows) + _fee_rows(requests, transitions, plan)
    skipped = len(drafts)
    drafts = [d for d in drafts if _key_of(d) not in done]
    skipped -= len(drafts)
    if done:
        say(f"{len(done)} rows of these hours are final already: not measured again")
    skipped += sum(job.skipped for job in jobs)
    measured = measure.measure(jobs, client, say)
    drafts += [_measured_row(m) for m in measured]
    return _write(drafts, skipped, plan, who, client, version, retention, say)


class _Done:
    """The rows of an import's hours that are final already: final rows are never replaced,
    so their hours are neither measured nor compared again. Keys hold the hour as the
    database driver gives it (read with the driver: a month is 700,000 rows)."""

    def __init__(self, session: Session, start: dt.datetime, end: dt.datetime) -> None:
        self.db_time = _DbTime(session.connection().dialect.name)
        mark = "?" if self.db_time.sqlite else "%s"
        found = (
            session.connection()
            .exec_driver_sql(
                "SELECT ags, instance, unit, hour_start, request_id FROM ledger_rows WHERE "
                f"status = 'final' AND hour_start >= {mark} AND hour_start < {mark}",
                (self.db_time(start), self.db_time(end)),
            )
            .all()
        )
        self.keys: set[tuple[Any, ...]] = {tuple(r) for r in found}

    def __len__(self) -> int:
        return len(self.keys)

    def __contains__(self, key: tuple[str, str, str, dt.datetime, int]) -> bool:
        ags, instance, unit, hour, request_id = key
        return (ags, instance, unit, self.db_time(hour), request_id) in self.keys


def _audit_log(session: Session) -> tuple[list[RequestRecord], list[TransitionRecord]]:
    reqs = session.scalars(select(Request).order_by(Request.id)).all()
    records = [
        RequestRecord(
            id=r.id,
            ags=r.ags,
            instance=r.instance,
            kind=r.kind,
            service_id=r.service_id,
            plan=r.plan,
            one_time_cent=None if r.one_time_eur is None else int(r.one_time_eur * 100),
        )
        for r in reqs
    ]
    events = session.execute(
        select(AuditEvent.request_id, AuditEvent.at, AuditEvent.to_state).where(
            AuditEvent.request_id.is_not(None), AuditEvent.to_state.in_(
                [intervals.ACTIVE, intervals.DECOMMISSIONED]
            )
        )
    ).all()  # fmt: skip
    moves = [
        TransitionRecord(rid, h.utc(at), str(state)) for rid, at, state in events if rid is not None
    ]
    return records, moves


def _plan(
    start: str | None,
    end: str | None,
    provisional: bool,
    now: dt.datetime,
    last_end: dt.datetime | None,
    first_activation: dt.datetime | None,
) -> _Plan:
    final_limit = h.floor_hour(now - SETTLE)
    lo = h.parse_instant(start, "--from") if start else None
    hi = h.parse_instant(end, "--to") if end else None
    if lo is not None and lo > now:
        raise ValidationFailed(f"--from {start} ({h.iso(lo)}) is in the future; nothing written")
    if hi is not None and hi > now:
        raise ValidationFailed(
            f"--to {end} ({h.iso(hi)}) is in the future: only hours that ended can be "
            "imported (the running one with --provisional); nothing written"
        )
    if lo is not None and hi is not None and lo >= hi:
        raise ValidationFailed(
            f"--from {start} is not before --to {end}: the range is reversed or empty; "
            "nothing written"
        )
    if lo is None:
        if last_end is not None:
            lo = h.utc(last_end)
        elif first_activation is not None:
            lo = first_activation
        else:
            lo = final_limit
    first = h.floor_hour(lo)
    final_end = min(h.floor_hour(hi) if hi is not None else final_limit, final_limit)
    final_end = max(final_end, first)
    cut = None
    if provisional:
        cut = min(hi, now) if hi is not None else now
        if cut <= final_end:
            cut = None
    plan = _Plan(first, final_end, cut, explicit=start is not None or end is not None)
    for hour in h.hours(first, final_end):
        plan.hours.append((hour, hour + h.HOUR, False))
    if cut is not None:
        for hour in h.hours(final_end, cut):
            plan.hours.append((hour, min(hour + h.HOUR, cut), True))
    return plan


def _windows(segments: list[Segment], plan: _Plan) -> list[Window]:
    """The billable part of every hour of the plan, per segment, in time order."""
    result: list[Window] = []
    if not plan.hours:
        return result
    hours_ms = [(hour, h.to_ms(hour), h.to_ms(end), prov) for hour, end, prov in plan.hours]
    first, last = hours_ms[0][1], hours_ms[-1][2]
    for seg in segments:
        seg_lo = h.to_ms(seg.start)
        seg_hi = h.to_ms(seg.end) if seg.end is not None else h.to_ms(_FAR)
        if seg_hi <= first or seg_lo >= last:
            continue
        for hour, lo, hi, provisional in hours_ms:
            lo, hi = max(lo, seg_lo), min(hi, seg_hi)
            if hi > lo:
                result.append(Window(hour, lo, hi, seg, provisional))
    return result


def _billable_rows(windows: list[Window]) -> list[_Draft]:
    return [
        _Draft(
            w.segment.ags, w.segment.instance, w.segment.service_id, w.segment.plan,
            w.segment.request_id, units.BETRIEBSSTUNDE, None, units.SECONDS, w.hour,
            w.seconds, w.seconds, PROVISIONAL if w.provisional else FINAL, EXACT,
        )
        for w in windows
    ]  # fmt: skip


def _fee_rows(
    requests: list[RequestRecord], transitions: list[TransitionRecord], plan: _Plan
) -> list[_Draft]:
    """One-time fees: the quoted amount, once, in the hour the request first became active."""
    status_of = {hour: PROVISIONAL if prov else FINAL for hour, _end, prov in plan.hours}
    limit = plan.cut or plan.final_end
    drafts = []
    for act in intervals.activations(requests, transitions):
        hour = h.floor_hour(act.at)
        if hour not in status_of or act.at > limit:
            continue
        req = act.request
        drafts.append(
            _Draft(
                ags=req.ags, instance=req.instance, catalog_service=req.service_id,
                plan=req.plan, request_id=req.id, unit=units.EINRICHTUNG, metric=None,
                base_unit=units.COUNT, hour_start=hour, seconds=0, quantity=1,
                status=status_of[hour], quality=EXACT, amount_cent=req.one_time_cent,
            )
        )  # fmt: skip
    return drafts


class _Metered:
    """(unit, metric) a plan meters on a Berlin day, looked up once per plan and day."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.day_of: dict[dt.datetime, dt.date] = {}
        self.cache: dict[tuple[str, str, dt.date], list[tuple[str, str]]] = {}

    def __call__(self, seg: Segment, hour: dt.datetime) -> list[tuple[str, str]]:
        day = self.day_of.get(hour)
        if day is None:
            day = self.day_of[hour] = h.berlin_day(hour)
        key = (seg.service_id, seg.plan, day)
        found = self.cache.get(key)
        if found is None:
            service = self.catalog.service(seg.service_id)
            plan = service.plan(seg.plan) if service else None
            price = plan.price_on(day) if plan else None
            found = self.cache[key] = [(m.unit, m.metric) for m in price.metered] if price else []
        return found


def _backup_sources(
    catalog: Catalog, segments: list[Segment], ags: str
) -> dict[str, tuple[tuple[int, int], ...]]:
    """The servers whose backup client writes the Kommune's repository size, and when each is
    billable (and so must report): instances of the backup service's dependencies that have
    a server of their own."""
    backup = catalog.service(catalog.settings.backup_service)
    if backup is None:
        return {}
    clients = set(backup.dependencies.all_of) | set(backup.dependencies.any_of)
    found: dict[str, list[tuple[int, int]]] = {}
    for seg in segments:
        service = catalog.service(seg.service_id)
        if seg.ags != ags or seg.service_id not in clients or not service:
            continue
        if not service.resources.server:
            continue
        spans = found.setdefault(seg.instance, [])
        lo, hi = h.to_ms(seg.start), h.to_ms(seg.end or _FAR)
        if spans and spans[-1][1] == lo:
            spans[-1] = (spans[-1][0], hi)  # a plan change: still the same server
        else:
            spans.append((lo, hi))
    return {server: tuple(spans) for server, spans in found.items()}


def _jobs(
    catalog: Catalog,
    segments: list[Segment],
    windows: list[Window],
    session: Session,
    start: dt.datetime,
    done: _Done,
) -> list[Job]:
    grouped: dict[tuple[str, str, str, str], list[Window]] = {}
    skipped: Counter[tuple[str, str, str, str]] = Counter()
    metered = _Metered(catalog)
    for w in windows:
        seg = w.segment
        for unit, metric in metered(seg, w.hour):
            key = (seg.ags, seg.instance, unit, metric)
            if done and (seg.ags, seg.instance, unit, w.hour, seg.request_id) in done:
                skipped[key] += 1
            else:
                grouped.setdefault(key, []).append(w)
    earlier = _earlier(session, start)
    jobs = []
    for (ags, instance, unit, metric), ws in sorted(grouped.items()):
        kommune_wide = ws[0].segment.service_id == catalog.settings.backup_service
        jobs.append(
            Job(
                ags=ags,
                instance=instance,
                unit=unit,
                metric=metric,
                windows=tuple(sorted(ws, key=lambda w: (w.start, w.segment.request_id))),
                kommune_wide=kommune_wide,
                sources=_backup_sources(catalog, segments, ags) if kommune_wide else {},
                earlier=earlier.get((ags, instance, unit)),
                skipped=skipped.pop((ags, instance, unit, metric), 0),
            )
        )
    # Jobs all of whose hours are final already: counted, not measured.
    jobs.extend(
        Job(ags=ags, instance=instance, unit=unit, metric=metric, windows=(), skipped=n)
        for (ags, instance, unit, metric), n in sorted(skipped.items())
    )
    return jobs


def _earlier(session: Session, before: dt.datetime) -> dict[tuple[str, str, str], Earlier]:
    """Per (AGS, instance, unit): its last complete measured final row before the import
    (the gap rule's "last complete hour before"), in one query."""
    t = LedgerRow
    complete = (t.status == FINAL, t.quality == measure.MEASURED, t.hour_start < before)
    last = (
        select(t.ags, t.instance, t.unit, func.max(t.hour_start).label("hour"))
        .where(*complete)
        .group_by(t.ags, t.instance, t.unit)
        .subquery()
    )
    found = session.execute(
        select(t.ags, t.instance, t.unit, t.hour_start, t.quantity, t.seconds, t.id)
        .join(last, (t.ags == last.c.ags) & (t.instance == last.c.instance)
              & (t.unit == last.c.unit) & (t.hour_start == last.c.hour))
        .where(*complete)
        .order_by(t.id)
    ).all()  # fmt: skip
    # A plan change hour has two rows; the later request's (higher id) is the later part.
    return {(r.ags, r.instance, r.unit): Earlier(h.utc(r.hour_start), r.quantity, r.seconds)
            for r in found}  # fmt: skip


def _key_of(d: _Draft) -> tuple[str, str, str, dt.datetime, int]:
    return (d.ags, d.instance, d.unit, d.hour_start, d.request_id)


def _measured_row(m: Measured) -> _Draft:
    w, job = m.window, m.job
    seg = w.segment
    return _Draft(
        job.ags, job.instance, seg.service_id, seg.plan, seg.request_id, job.unit, job.metric,
        units.base_unit(job.metric), w.hour, w.seconds, m.quantity,
        PROVISIONAL if w.provisional else FINAL, m.quality, None, m.covered_s, m.filled_from,
    )  # fmt: skip


class _Current(NamedTuple):
    """A row no other row corrects, as far as the import compares it and sums its month."""

    id: int
    status: str
    quantity: int
    seconds: int
    quality: str
    amount_cent: int | None
    covered_seconds: int | None
    row: ledger_sums.Row


_COLUMNS = ("import_id", "corrects_id", *_Draft._fields)


class _DbTime:
    """Instants as the database driver takes and gives them: SQLAlchemy's SQLite text
    (`2026-10-01 00:00:00.000000`, UTC) or aware datetimes (psycopg). Rows are written and
    compared in it directly: the ORM's conversions cost seconds for a month of rows."""

    def __init__(self, dialect: str) -> None:
        self.sqlite = dialect == "sqlite"
        self.seen: dict[dt.datetime, Any] = {}
        self.back: dict[Any, dt.datetime] = {}

    def __call__(self, value: dt.datetime | None) -> Any:
        if value is None:
            return None
        got = self.seen.get(value)
        if got is None:
            utc = h.utc(value)
            got = utc.strftime("%Y-%m-%d %H:%M:%S.%f") if self.sqlite else utc
            self.seen[value] = got
            self.back[got] = utc
        return got

    def parse(self, value: Any) -> dt.datetime:
        """An instant as the driver gave it, as aware UTC."""
        got = self.back.get(value)
        if got is None:
            got = self.back[value] = h.utc(
                dt.datetime.fromisoformat(value) if isinstance(value, str) else value
            )
        return got


def _current_rows(
    session: Session, start: dt.datetime, end: dt.datetime, db_time: _DbTime
) -> dict[tuple[Any, ...], _Current]:
    """Rows of the hours [start, end) that no other row corrects, by key (ags, instance,
    unit, hour as the driver gives it, request)."""
    mark = "?" if db_time.sqlite else "%s"
    found = (
        session.connection()
        .exec_driver_sql(
            "SELECT id, ags, instance, unit, hour_start, request_id, status, quantity, seconds, "
            "quality, amount_cent, covered_seconds, corrects_id, catalog_service, plan, metric, "
            "base_unit FROM ledger_rows "
            f"WHERE hour_start >= {mark} AND hour_start < {mark}",
            (db_time(start), db_time(end)),
        )
        .all()
    )
    corrected = {r[12] for r in found if r[12] is not None}
    kept: dict[tuple[Any, ...], _Current] = {}
    for r in found:
        if r[0] in corrected:
            continue
        row = ledger_sums.Row(r[1], r[2], r[13], r[3], r[14], r[5], r[15], r[16],
                              db_time.parse(r[4]), r[7], r[6], r[9], r[10])  # fmt: skip
        kept[(r[1], r[2], r[3], r[4], r[5])] = _Current(
            r[0], r[6], r[7], r[8], r[9], r[10], r[11], row
        )
    return kept


def _month_sums(
    current: dict[tuple[Any, ...], _Current], written: list[_Draft], db_time: _DbTime
) -> ledger_sums.Sums:
    """What the rows written change in the month sums: per (Kommune, hour) written, its
    current rows after the import minus before (a correction replaces the row it names)."""
    touched = {(d.ags, d.hour_start) for d in written}
    before = {k: c.row for k, c in current.items() if (c.row.ags, c.row.hour) in touched}
    after = dict(before)
    for d in written:
        after[(d.ags, d.instance, d.unit, db_time(d.hour_start), d.request_id)] = ledger_sums.Row(
            d.ags, d.instance, d.catalog_service, d.unit, d.plan, d.request_id, d.metric,
            d.base_unit, h.utc(d.hour_start), d.quantity, d.status, d.quality, d.amount_cent,
        )  # fmt: skip
    return ledger_sums.difference(before.values(), after.values())


def _write(
    drafts: list[_Draft],
    skipped: int,
    plan: _Plan,
    actor: str,
    client: prometheus.Client,
    version: str,
    retention: str,
    say: Progress,
) -> ImportResult:
    started = utcnow()
    unchanged, corrections = skipped, 0
    with session_scope() as session:
        db_time = _DbTime(session.connection().dialect.name)
        current = (
            _current_rows(
                session,
                min(d.hour_start for d in drafts),
                max(d.hour_start for d in drafts) + h.HOUR,
                db_time,
            )
            if drafts
            else {}
        )
        run = LedgerImport(
            started_at=started,
            actor=actor,
            range_start=plan.start,
            range_end=plan.final_end,
            provisional_end=plan.cut,
            prometheus_url=client.base,
            prometheus_version=version,
            queries=list(dict.fromkeys(client.queries)),
            hold_seconds=HOLD_MS // 1000,
            gap_rule={**GAP_RULE, "prometheus_retention": retention},
            boundary_rule=BOUNDARY_RULE,
        )
        session.add(run)
        session.flush()
        new: list[tuple[Any, ...]] = []
        written: list[_Draft] = []
        # In hour order, as the unique index runs: its pages are then filled one after another.
        for d in sorted(drafts, key=lambda d: (d.hour_start, d.ags, d.instance, d.unit)):
            hour = db_time(d.hour_start)
            old = current.get((d.ags, d.instance, d.unit, hour, d.request_id))
            if old is not None and _unchanged(old, d):
                unchanged += 1
                continue
            new.append((run.id, old.id if old else None, *d[:8], hour, *d[9:15],
                        db_time(d.filled_from)))  # fmt: skip
            written.append(d)
            corrections += old is not None
        if new:
            mark = "?" if db_time.sqlite else "%s"
            session.connection().exec_driver_sql(
                f"INSERT INTO ledger_rows ({', '.join(_COLUMNS)}) "
                f"VALUES ({', '.join([mark] * len(_COLUMNS))})",
                new,
            )
            recomputed = ledger_sums.apply(
                session.connection(), _month_sums(current, written, db_time)
            )
            for month in recomputed:
                say(f"the sums of {month} were out of step with its rows: recomputed")
        run.rows_written = len(new)
        run.finished_at = utcnow()
        session.flush()
        say(f"writing {len(new)} rows ({corrections} corrections), committing")
    return ImportResult(
        import_id=run.id,
        range_start=plan.start,
        range_end=plan.final_end,
        provisional_end=plan.cut,
        prometheus_version=version,
        rows_written=len(new),
        rows_unchanged=unchanged,
        corrections=corrections,
        gap_rows=sum(1 for d in drafts if d.quality == measure.GAP),
        no_measurement_rows=sum(1 for d in drafts if d.quality == measure.NO_MEASUREMENT),
        queries=len(client.queries),
    )


def _unchanged(old: _Current, new: _Draft) -> bool:
    """Already final (final rows are never replaced), or the same provisional figure again."""
    return old.status == FINAL or (new.status == PROVISIONAL and new.same(old))


# --- for the exporter and the alert "ledger import overdue" -----------------------------------


def last_import_finished_at() -> dt.datetime | None:
    """When the newest import run committed (UTC), None before the first:
    basisit_ledger_last_import_timestamp_seconds is this as a Unix time."""
    with session_scope() as session:
        value = session.scalar(select(func.max(LedgerImport.finished_at)))
    return h.utc(value) if value is not None else None


def last_imported_hour_end() -> dt.datetime | None:
    """The end of the newest final hour in the ledger (UTC), None before the first import."""
    with session_scope() as session:
        value = session.scalar(select(func.max(LedgerImport.range_end)))
    return h.utc(value) if value is not None else None


# --- `basisit ledger verify`: the month sums against the rows ---------------------------------


@dataclass(frozen=True)
class MonthCheck:
    month: str
    problems: tuple[str, ...]  # empty: the month sums agree with the rows
    repaired: bool


def verify(month: str | None = None, repair: bool = False) -> list[MonthCheck]:
    """Recompute a month's sums (or every month's) from the ledger's rows and compare them
    with the ones the import kept; with `repair`, store the recomputed ones where they differ
    (all months in one transaction)."""
    checks = []
    with session_scope() as session:
        conn = session.connection()
        if month is not None:
            months = [h.month_of(h.month_range(month)[0])]  # checks the spelling
        else:
            months = ledger_sums.months(conn)
        for m in months:
            rows = ledger_sums.recompute(conn, m)
            problems = tuple(ledger_sums.compare(rows, ledger_sums.read(conn, m)))
            if problems and repair:
                ledger_sums.replace_month(conn, m, rows)
            checks.append(MonthCheck(m, problems, repaired=bool(problems and repair)))
    return checks
