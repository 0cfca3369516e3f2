"""Benchmark: `basisit ledger import` of a month for the 58 Kommunen, every service, 60 s scrapes.

Every Kommune of the registry has one instance of every requestable service with a server
(file share with two shares, database with two databases, directory, mail, VPN, web hosting
with two sites, a virtual server, DNS, backup), active since before October 2026, with a
plan change of the file share mid-month; every server writes its usage gauges and the backup
client's repository size every 60 s. The TSDB blocks are made once with promtool and cached
outside the checkout ($BASISIT_CACHE/bench/ledger-<version>/); each run copies them, starts
Prometheus on 127.0.0.1, and times the import of October into a fresh SQLite database (and a
second, idempotent import of the same month).

    python bench/ledger_import.py [--limit K]

Prints the figures; target: the month's import under 10 s. Not a test.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT), str(ROOT / "tests" / "integration")]

import promblocks  # noqa: E402

from basisit import kommunen  # noqa: E402

VERSION = 1  # bump when the generated data changes
START = dt.datetime(2026, 9, 30, 20, 0, tzinfo=dt.UTC)  # before October in Berlin
END = dt.datetime(2026, 11, 1, 0, 0, tzinfo=dt.UTC)
CHANGE = dt.datetime(2026, 10, 14, 9, 30, tzinfo=dt.UTC)  # the file share's plan change
GiB = 2**30

# instance -> (service, plan, [(metric, own label or "", value)])
INSTANCES = {
    "dateiablage": ("fileshare", "S", [
        ("basisit_fileshare_used_bytes", 'share="verwaltung"', 120 * GiB),
        ("basisit_fileshare_used_bytes", 'share="bauamt"', 40 * GiB),
    ]),
    "datenbank": ("database", "S", [
        ("basisit_database_size_bytes", 'database="fachverfahren"', 12 * GiB),
        ("basisit_database_size_bytes", 'database="gis"', 3 * GiB),
    ]),
    "verzeichnis": ("directory", "S", [("basisit_directory_accounts", "", 240)]),
    "post": ("mail", "S", [("basisit_mail_mailboxes", "", 85)]),
    "vpn": ("vpn", "S", [("basisit_vpn_peers", "", 6)]),
    "web": ("webhosting", "S", [
        ("basisit_webhosting_storage_bytes", 'site="www"', 2 * GiB),
        ("basisit_webhosting_storage_bytes", 'site="buergerportal"', GiB),
    ]),
    "server1": ("virtual-server", "SCS-2V-4-20s", []),
    "dns": ("dns", "zone", []),
    "sicherung": ("backup", "S", []),
}  # fmt: skip
BACKUP_CLIENTS = ("dateiablage", "datenbank", "verzeichnis", "post", "web", "server1")


def _series(ags: str) -> list[tuple[str, str, int]]:
    """(metric, labels, value) of one Kommune's servers; values wobble by the Kommune."""
    out = []
    wobble = int(ags) % 97
    for name, (service, _plan, gauges) in INSTANCES.items():
        base = (f'ags="{ags}",catalog_service="{service}",instance="{name}.{ags}:9100",'
                f'job="node",server="{name}"')  # fmt: skip
        for metric, own, value in gauges:
            labels = base + ("," + own if own else "")
            out.append((metric, labels, value + wobble * (GiB // 100 if value > GiB else 1)))
        if name in BACKUP_CLIENTS:
            out.append(("basisit_backup_repository_bytes", base, 30 * GiB + wobble * GiB // 10))
    return out


def _write_chunk(path: Path, series: list[tuple[str, str, int]], lo: int, hi: int) -> Path:
    by_metric: dict[str, list[str]] = {}
    for metric, labels, value in series:
        lines = by_metric.setdefault(metric, [])
        prefix = f"{metric}{{{labels}}} "
        # A slow growth (one byte or account per hour) so that hours are not all alike.
        lines.extend(f"{prefix}{value + (t - lo) // 3600} {t}" for t in range(lo, hi, 60))
    return promblocks.write_openmetrics(path, by_metric)


def build_blocks(tsdb: Path, kommune_ags: list[str]) -> None:
    series = [s for ags in kommune_ags for s in _series(ags)]
    work = tsdb.parent / "openmetrics"
    work.mkdir(parents=True, exist_ok=True)
    tsdb.mkdir(parents=True, exist_ok=True)
    lo, hi = int(START.timestamp()), int(END.timestamp())
    chunks = [(t, min(t + 7200, hi)) for t in range(lo, hi, 7200)]

    def one(chunk: tuple[int, int]) -> None:
        path = _write_chunk(work / f"{chunk[0]}.om", series, *chunk)
        subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "-q",
                        str(path), str(tsdb)], check=True, capture_output=True)  # fmt: skip
        path.unlink()

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=2) as pool:
        for i, _ in enumerate(pool.map(one, chunks), 1):
            if i % 50 == 0:
                print(f"  blocks: {i}/{len(chunks)} ({time.monotonic() - started:.0f} s)")
    shutil.rmtree(work)
    print(
        f"made {len(chunks)} blocks of {len(series)} series in {time.monotonic() - started:.0f} s"
    )


def audit_log(kommune_ags: list[str]) -> int:
    from decimal import Decimal

    from basisit.store.db import session_scope
    from basisit.store.models import AuditEvent, Request

    rid = 0
    with session_scope() as s:
        for ags in kommune_ags:
            for name, (service, plan, _gauges) in INSTANCES.items():
                rid += 1
                s.add(
                    Request(
                        id=rid,
                        ags=ags,
                        kind="create",
                        instance=name,
                        service_id=service,
                        service_version=1,
                        plan=plan,
                        parameters={},
                        schutzbedarf="normal",
                        state="active",
                        created_by="bench",
                        one_time_eur=Decimal(50),
                    )
                )
                s.flush()  # the audit event's foreign key needs the request first
                s.add(AuditEvent(at=START, actor="bench", ags=ags, request_id=rid,
                                 action="transition", from_state="configuring",
                                 to_state="active"))  # fmt: skip
            rid += 1
            s.add(
                Request(
                    id=rid,
                    ags=ags,
                    kind="change",
                    instance="dateiablage",
                    service_id="fileshare",
                    service_version=1,
                    plan="M",
                    parameters={},
                    schutzbedarf="normal",
                    state="active",
                    created_by="bench",
                )
            )
            s.flush()
            s.add(
                AuditEvent(
                    at=CHANGE,
                    actor="bench",
                    ags=ags,
                    request_id=rid,
                    action="transition",
                    from_state="configuring",
                    to_state="active",
                )
            )
    return rid  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=0, help="only the first K Kommunen")
    args = parser.parse_args()
    kommune_ags = [k.ags for k in kommunen.all_kommunen()]
    if args.limit:
        kommune_ags = kommune_ags[: args.limit]
    cache = promblocks.cache_dir() / "bench" / f"ledger-v{VERSION}-{len(kommune_ags)}"
    if not (cache / "complete").exists():
        shutil.rmtree(cache, ignore_errors=True)
        print(f"making the blocks once (cached in {cache})")
        build_blocks(cache / "tsdb", kommune_ags)
        started = time.monotonic()
        left = promblocks.compact(cache / "tsdb")
        print(f"compacted by Prometheus to {left} blocks in {time.monotonic() - started:.0f} s")
        (cache / "complete").write_text("ok\n")
    with tempfile.TemporaryDirectory(prefix="bench-ledger-") as tmp:
        os.environ["BASISIT_DATA_DIR"] = str(Path(tmp) / "data")
        os.environ.pop("BASISIT_DB_URL", None)
        tsdb = Path(tmp) / "tsdb"
        shutil.copytree(cache / "tsdb", tsdb)
        requests = audit_log(kommune_ags)
        from basisit.app import ledger

        with promblocks.running(tsdb) as url:
            timings = []
            for attempt in ("first", "again"):
                started = time.perf_counter()
                marks: list[tuple[float, str]] = []

                def mark(text: str, t0: float = started, into: list = marks) -> None:
                    into.append((time.perf_counter() - t0, text))

                result = ledger.import_usage(start="2026-10-01", end="2026-11-01",
                                             prometheus_url=url, actor="bench",
                                             progress=mark)  # fmt: skip
                timings.append((attempt, time.perf_counter() - started, result, marks))
    print(f"{len(kommune_ags)} Kommunen, {requests} requests, October 2026 (745 hours):")
    for attempt, seconds, result, marks in timings:
        print(
            f"  import ({attempt}): {seconds:.2f} s, {result.rows_written} rows written, "
            f"{result.rows_unchanged} unchanged, {result.queries} Prometheus queries"
        )
        # Where the time went: audit log and plan; Prometheus and the hours; the rows.
        planned = next(t for t, text in marks if "billable hours" in text)
        measured = marks[-2][0]
        print(
            f"    audit log, windows, jobs {planned:.2f} s; Prometheus and measuring "
            f"{measured - planned:.2f} s; comparing and writing rows {seconds - measured:.2f} s"
        )
    print(f"  (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs after the run)")
    print(f"target: under 10 s -> {'met' if timings[0][1] < 10 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
