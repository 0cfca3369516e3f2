"""Benchmark: twelve months billed for the 58 Kommunen from a year of hourly ledger rows.

Every Kommune has one instance of each service with a server (as in bench/ledger_import.py)
active all of 2026 with its metered usage: about 8 million ledger rows, written once with
sqlite3 and cached outside the checkout ($BASISIT_CACHE/bench/billing-v<version>/) with the month
sums the import would have kept (built once from the rows by `basisit ledger verify --repair`).
Each run copies the database and times, side by side: reading each month's sums (contract 3),
allocating the twelve months, rendering one month in every report format, what keeping the
sums costs the hourly import (one hour of 58 Kommunen), and recomputing one month from its rows
(what `verify` does, and billing did before the sums).

    python bench/billing_allocation.py [--limit K]

Prints the figures; target: from the ledger to twelve allocated months under 5 s. Not a test.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [
    str(ROOT / "src"),
    str(ROOT),
    str(ROOT / "bench"),
    str(ROOT / "tests" / "integration"),
]

import promblocks  # noqa: E402
from ledger_import import BACKUP_CLIENTS, INSTANCES, audit_log  # noqa: E402

from basisit import kommunen  # noqa: E402

VERSION = 4  # bump when the generated data changes
YEAR_START = dt.datetime(2025, 12, 31, 23, tzinfo=dt.UTC)  # 1 January 2026 in Berlin
HOURS = 8760
GiB = 2**30
COLUMNS = ("import_id, ags, instance, catalog_service, plan, request_id, unit, metric, "
           "base_unit, hour_start, seconds, quantity, status, quality, amount_cent")  # fmt: skip
UNITS = {"basisit_fileshare_used_bytes": "GiB-Monat", "basisit_database_size_bytes": "GiB-Monat",
         "basisit_directory_accounts": "Konto-Monat", "basisit_mail_mailboxes": "Postfach-Monat",
         "basisit_vpn_peers": "Gegenstelle-Monat", "basisit_webhosting_storage_bytes": "GiB-Monat",
         "basisit_backup_repository_bytes": "GiB-Monat"}  # fmt: skip


def build(db: Path, kommune_ags: list[str]) -> int:
    os.environ["BASISIT_DB_URL"] = f"sqlite:///{db}"
    from basisit.store.db import upgrade

    upgrade()
    # The requests (and their audit log) as bench/ledger_import.py makes them: per Kommune
    # one per instance, then the file share's change (not used here).
    audit_log(kommune_ags)
    con = sqlite3.connect(db)
    con.execute("INSERT INTO ledger_imports (id, started_at, finished_at, actor, range_start, "
                "range_end, prometheus_url, prometheus_version, queries, hold_seconds, gap_rule, "
                "boundary_rule, rows_written) VALUES (1, '2027-01-01 00:00:00.000000', "
                "'2027-01-01 00:00:00.000000', 'bench', '2025-12-31 23:00:00.000000', "
                "'2026-12-31 23:00:00.000000', 'http://127.0.0.1:1', '2.42.0', '[]', 300, '{}', "
                "'(start, end]', 0)")  # fmt: skip
    rid = 0
    plans: list[tuple[str, str, str, int]] = []
    for ags in kommune_ags:
        for name, (service, _plan, _gauges) in INSTANCES.items():
            rid += 1
            plans.append((ags, name, service, rid))
        rid += 1
    hours = [(YEAR_START + dt.timedelta(hours=i)).strftime("%Y-%m-%d %H:%M:%S.%f")
             for i in range(HOURS)]  # fmt: skip
    # (ags, instance, service, plan, request, unit, metric, base unit, quantity per hour)
    series: list[tuple[str, str, str, str, int, str, str | None, str, int]] = []
    for ags, name, service, req in plans:
        plan = INSTANCES[name][1]
        wobble = int(ags) % 97
        series.append((ags, name, service, plan, req, "Betriebsstunde", None, "s", 3600))
        gauges: dict[str, int] = {}  # one ledger line per metric: the shares etc. summed
        for metric, _own, value in INSTANCES[name][2]:
            gauges[metric] = gauges.get(metric, 0) + value
        if service == "backup":
            gauges = {"basisit_backup_repository_bytes": len(BACKUP_CLIENTS) * 30 * GiB}
        for metric, value in gauges.items():
            base = "byte_s" if metric.endswith("_bytes") else "count_s"
            series.append((ags, name, service, plan, req, UNITS[metric], metric, base,
                           (value + wobble * GiB // 100) * 3600))  # fmt: skip
    insert = f"INSERT INTO ledger_rows ({COLUMNS}) VALUES ({','.join('?' * 15)})"
    fees = [(1, ags, name, service, INSTANCES[name][1], req, "Einrichtung", None, "count",
             hours[0], 0, 1, "final", "exact", 5000)
            for ags, name, service, req in plans]  # fmt: skip
    con.executemany(insert, fees)
    rows = len(fees)
    # Hour by hour, as the import writes them (its rows of a month lie together).
    for lo in range(0, HOURS, 720):
        batch = [
            (1, a, n, svc, plan, req, unit, metric, base, hr, 3600, qty, "final",
             "exact" if metric is None else "measured", None)
            for hr in hours[lo : lo + 720]
            for a, n, svc, plan, req, unit, metric, base, qty in series
        ]  # fmt: skip
        con.executemany(insert, batch)
        rows += len(batch)
        print(f"  {rows} rows", flush=True)
    con.commit()
    con.close()
    return rows


def _keeping_and_recomputing() -> tuple[tuple[int, float], tuple[int, float]]:
    """What the hourly import adds for the sums (the difference of one hour's rows, as new
    rows, applied), and what recomputing a month from its rows costs."""
    from sqlalchemy import func, select

    from basisit import hours as h
    from basisit.store import ledger_sums
    from basisit.store.db import session_scope
    from basisit.store.models import LedgerRow

    hour = h.month_range("2026-10")[0] + dt.timedelta(hours=300)
    with session_scope() as s:
        rows = [
            ledger_sums.Row(r.ags, r.instance, r.catalog_service, r.unit, r.plan, r.request_id,
                            r.metric, r.base_unit, h.utc(r.hour_start), r.quantity, r.status,
                            r.quality, r.amount_cent)
            for r in s.scalars(select(LedgerRow).where(LedgerRow.hour_start == hour))
        ]  # fmt: skip
        started = time.perf_counter()
        # As if the hour were imported now: it adds to sums that already hold it (discarded).
        ledger_sums.apply(s.connection(), ledger_sums.difference([], rows))
        keeping = time.perf_counter() - started
        s.rollback()
    with session_scope() as s:
        start, end = h.month_range("2026-10")
        count = s.scalar(select(func.count()).where(LedgerRow.hour_start >= start,
                                                    LedgerRow.hour_start < end))  # fmt: skip
        started = time.perf_counter()
        ledger_sums.recompute(s.connection(), "2026-10")
        recompute = time.perf_counter() - started
    return (len(rows), keeping), (int(count or 0), recompute)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=0, help="only the first K Kommunen")
    args = parser.parse_args()
    kommune_ags = [k.ags for k in kommunen.all_kommunen()]
    if args.limit:
        kommune_ags = kommune_ags[: args.limit]
    cache = promblocks.cache_dir() / "bench" / f"billing-v{VERSION}-{len(kommune_ags)}"
    if not (cache / "complete").exists():
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir(parents=True)
        print(f"writing a year of ledger rows once (cached in {cache}) ...")
        started = time.monotonic()
        rows = build(cache / "ledger.sqlite", kommune_ags)
        print("  building the month sums from the rows ...", flush=True)
        from basisit.app.ledger import verify

        assert all(c.repaired for c in verify(repair=True))
        (cache / "complete").write_text(f"{rows}\n")
        print(f"  {rows} rows and their sums in {time.monotonic() - started:.0f} s")
    rows = int((cache / "complete").read_text())
    with tempfile.TemporaryDirectory(prefix="bench-billing-") as tmp:
        db = Path(tmp) / "ledger.sqlite"
        # The database runs in WAL mode: what is still in the -wal file goes into it first.
        with sqlite3.connect(cache / "ledger.sqlite") as con:
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        shutil.copy(cache / "ledger.sqlite", db)
        os.environ["BASISIT_DB_URL"] = f"sqlite:///{db}"
        os.environ["BASISIT_DATA_DIR"] = str(Path(tmp) / "data")
        from basisit.app.usage import month_usage
        from basisit.billing import config as billing_config
        from basisit.billing.allocate import allocate
        from basisit.catalog import load_catalog
        from basisit.reports.german import Report

        catalog, config = load_catalog(), billing_config.load()
        months = [f"2026-{m:02d}" for m in range(1, 13)]
        started = time.perf_counter()
        docs = [month_usage(m) for m in months]
        summed = time.perf_counter() - started
        started = time.perf_counter()
        bills = [allocate(d, catalog, config, kommunen.get) for d in docs]
        allocated = time.perf_counter() - started
        renders = []
        from basisit.app.billing import FORMATS, renderer

        for fmt, suffix in FORMATS.items():
            render = renderer(fmt)
            started = time.perf_counter()
            render(Report(bill=bills[9], previous=bills[8]), Path(tmp) / f"r{suffix}")
            renders.append((fmt, time.perf_counter() - started))
        hourly, recomputed = _keeping_and_recomputing()
    lines = sum(len(k.lines) for b in bills for k in b.kommunen)
    print(f"{len(kommune_ags)} Kommunen, 2026, {rows} ledger rows; {lines} billed lines:")
    total = summed + allocated
    print(f"  reading the twelve months' sums (contract 3): {summed:.2f} s")
    print(f"  allocating the twelve months: {allocated:.2f} s")
    print(f"  from the ledger to twelve allocated months: {total:.2f} s "
          f"(target under 5 s -> {'met' if total < 5 else 'NOT met'})")  # fmt: skip
    print(f"  keeping the sums for one imported hour ({hourly[0]} rows): {hourly[1]:.3f} s")
    print(f"  recomputing October from its {recomputed[0]} rows (verify): {recomputed[1]:.2f} s")
    for fmt, seconds in renders:
        print(f"  rendering October as {fmt}: {seconds:.3f} s")
    print(f"  (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs after the run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
