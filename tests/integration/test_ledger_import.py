"""The usage ledger against a real Prometheus on exact data (promtool-made blocks): every
quantity of October 2026 for Tholey worked out by hand below, idempotence, provisional rows
and their corrections, a kill -9 mid-import, and bad input; on SQLite and PostgreSQL.

The data (60 s scrapes, the target labels ags/server/catalog_service as file_sd adds them):
- `sicherung` (backup, S), active since 30 Sep 20:00Z: its repository size is written on each
  client server: 10 GiB on `dateiablage` all month, 1 GiB on `verzeichnis` while it exists.
- `dateiablage` (fileshare), S since 30 Sep 20:00Z, changed to M on 10 Oct 12:30Z (mid-hour);
  a later change to S failed (no interruption, no plan change). Share a = 1 GiB, 1.5 GiB from
  the sample exactly at 15 Oct 12:00:00Z (an hour boundary); share b = 2 GiB, 4 GiB after a
  20-minute scrape gap of the whole server on 5 Oct (last sample 10:10, next 10:30).
- `verzeichnis` (directory, S): active 3 Oct 08:20Z (mid-hour), scrapes at :17 s past each
  minute from 08:20:17; 50 accounts, 80 from 12 Oct 06:30:17Z; decommissioned 20 Oct 15:45Z
  (last sample 15:44:17).
- `webseite` (webhosting, S): active 28 Oct 09:00Z, never reports: "noch keine Messung".
- `extra` (dns): a create that failed and never became active: not billable.
October in Berlin is 30 Sep 22:00Z to 31 Oct 23:00Z: 745 hours, 25 of them on 25 October.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer

import promblocks
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from basisit import hours as h
from basisit.app import ledger
from basisit.cli.main import app
from basisit.contracts import usage as contract
from basisit.metering.prometheus import PrometheusError
from basisit.store.db import session_scope
from basisit.store.models import AuditEvent, LedgerImport, LedgerMonthLine, LedgerRow, Request

RUN = CliRunner()
TH = "10046118"
GiB = 2**30
MONTH = ("2026-10-01", "2026-11-01")  # Berlin dates: the import range of October


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def ts(text: str) -> int:
    return int(at(text).timestamp())


GAP_LAST, GAP_NEXT = ts("2026-10-05T10:10:00"), ts("2026-10-05T10:30:00")
SHARE_A_UP = ts("2026-10-15T12:00:00")
DIR_FIRST, DIR_LAST = ts("2026-10-03T08:20:17"), ts("2026-10-20T15:44:17")
DIR_UP = ts("2026-10-12T06:30:17")


def _series(name: str, server: str, service: str, times: range, value, extra: str = "") -> list:
    labels = (
        f'ags="{TH}",catalog_service="{service}",instance="{server}:9100",job="node",'
        f'kommune="Tholey",server="{server}"{extra}'
    )
    return [f"{name}{{{labels}}} {value(t)} {t}" for t in times]


def _fixture_data() -> dict[str, list[str]]:
    minutes = [t for t in range(ts("2026-09-30T19:00:00"), ts("2026-10-31T23:30:00") + 1, 60)
               if not GAP_LAST < t < GAP_NEXT]  # fmt: skip
    directory = range(DIR_FIRST, DIR_LAST + 1, 60)
    share = "basisit_fileshare_used_bytes"
    backup = "basisit_backup_repository_bytes"
    return {
        share: _series(share, "dateiablage", "fileshare", minutes,  # type: ignore[arg-type]
                       lambda t: GiB if t < SHARE_A_UP else 3 * GiB // 2, ',share="a"')
        + _series(share, "dateiablage", "fileshare", minutes,  # type: ignore[arg-type]
                  lambda t: 2 * GiB if t <= GAP_LAST else 4 * GiB, ',share="b"'),
        backup: _series(backup, "dateiablage", "fileshare", minutes,  # type: ignore[arg-type]
                        lambda t: 10 * GiB)
        + _series(backup, "verzeichnis", "directory", directory, lambda t: GiB),
        "basisit_directory_accounts": _series(
            "basisit_directory_accounts", "verzeichnis", "directory", directory,
            lambda t: 50 if t < DIR_UP else 80,
        ),
    }  # fmt: skip


@pytest.fixture(scope="module")
def prometheus_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("ledger-prometheus")
    # Keyed by the generator's source: a change to the data makes new blocks.
    import inspect

    key = (
        inspect.getsource(_fixture_data)
        + inspect.getsource(_series)
        + repr((GAP_LAST, GAP_NEXT, SHARE_A_UP, DIR_FIRST, DIR_LAST, DIR_UP))
    )
    tsdb = promblocks.cached_blocks(key, _fixture_data, work)
    with promblocks.running(tsdb) as url:
        yield url


def _request(session, rid: int, kind: str, instance: str, service: str, plan: str,
             moves: list[tuple[str, str]], one_time: str | None = None) -> None:  # fmt: skip
    session.add(
        Request(
            id=rid, ags=TH, kind=kind, instance=instance, service_id=service,
            service_version=1, plan=plan, parameters={}, schutzbedarf="normal",
            state=moves[-1][0], created_by="test",
            one_time_eur=None if one_time is None else Decimal(one_time),
        )
    )  # fmt: skip
    session.flush()
    before = "approved"
    for state, when in moves:
        session.add(
            AuditEvent(at=at(when), actor="suite", ags=TH, request_id=rid, action="transition",
                       from_state=before, to_state=state)
        )  # fmt: skip
        before = state


@pytest.fixture
def audit_log(onboarded: str) -> None:
    """The requests above with their transitions, as the workflow writes them."""
    with session_scope() as s:
        _request(
            s,
            1,
            "create",
            "sicherung",
            "backup",
            "S",
            [
                ("provisioning", "2026-09-30T19:50:00"),
                ("configuring", "2026-09-30T19:55:00"),
                ("active", "2026-09-30T20:00:00"),
            ],
            "40.00",
        )
        _request(
            s,
            2,
            "create",
            "dateiablage",
            "fileshare",
            "S",
            [("provisioning", "2026-09-30T19:50:00"), ("active", "2026-09-30T20:00:00")],
            "50.00",
        )
        _request(
            s,
            3,
            "create",
            "verzeichnis",
            "directory",
            "S",
            [("provisioning", "2026-10-03T08:00:00"), ("active", "2026-10-03T08:20:00")],
            "80.00",
        )
        _request(
            s,
            4,
            "change",
            "dateiablage",
            "fileshare",
            "M",
            [("provisioning", "2026-10-10T12:00:00"), ("active", "2026-10-10T12:30:00")],
        )
        _request(
            s,
            5,
            "change",
            "dateiablage",
            "fileshare",
            "S",
            [("provisioning", "2026-10-20T09:00:00"), ("failed", "2026-10-20T09:05:00")],
        )
        _request(
            s,
            6,
            "decommission",
            "verzeichnis",
            "directory",
            "S",
            [("decommissioning", "2026-10-20T15:40:00"), ("decommissioned", "2026-10-20T15:45:00")],
        )
        _request(
            s,
            7,
            "create",
            "webseite",
            "webhosting",
            "S",
            [("provisioning", "2026-10-28T08:50:00"), ("active", "2026-10-28T09:00:00")],
            "30.00",
        )
        _request(s, 8, "create", "extra", "dns", "S",
                 [("provisioning", "2026-10-04T08:00:00"), ("failed", "2026-10-04T08:01:00")],
                 "20.00")  # fmt: skip


def _import(url: str, **kw) -> ledger.ImportResult:
    kw.setdefault("start", MONTH[0])
    kw.setdefault("end", MONTH[1])
    return ledger.import_usage(prometheus_url=url, actor="test", **kw)


def _sums_agree() -> None:
    """The month sums the import kept are what the rows add up to (basisit ledger verify)."""
    checks = ledger.verify()
    assert checks and all(c.problems == () for c in checks), checks
    out = RUN.invoke(app, ["ledger", "verify"])
    assert out.exit_code == 0 and "agree with the rows" in out.output, out.output


def _rows() -> list[tuple]:
    with session_scope() as s:
        rows = s.scalars(select(LedgerRow).order_by(LedgerRow.id)).all()
        return [
            (r.ags, r.instance, r.unit, h.utc(r.hour_start), r.request_id, r.plan,
             r.seconds, r.quantity, r.status, r.quality, r.amount_cent, r.corrects_id)
            for r in rows
        ]  # fmt: skip


def _row(instance: str, unit: str, hour: str, request_id: int | None = None) -> LedgerRow:
    with session_scope() as s:
        q = select(LedgerRow).where(
            LedgerRow.instance == instance, LedgerRow.unit == unit,
            LedgerRow.hour_start == at(hour),
        )  # fmt: skip
        if request_id is not None:
            q = q.where(LedgerRow.request_id == request_id)
        return s.scalars(q).one()


def _lines(doc: contract.Usage) -> dict[tuple[str, str, str], contract.Line]:
    return {
        (inst["instance"], line["unit"], line["plan"]): line
        for k in doc["kommunen"] for inst in k["instances"] for line in inst["lines"]
    }  # fmt: skip


def test_october_by_hand(prometheus_url: str, audit_log: None) -> None:
    result = _import(prometheus_url)
    assert result.prometheus_version.startswith("2.")
    _sums_agree()
    out = RUN.invoke(app, ["usage", "--month", "2026-10", "--format", "json"])
    assert out.exit_code == 0, out.output
    doc = contract.check(json.loads(out.output), "usage --format json")
    assert doc["period"] == {"start": "2026-09-30T22:00:00Z", "end": "2026-10-31T23:00:00Z",
                             "hours": 745, "timezone": "Europe/Berlin"}  # fmt: skip
    lines = _lines(doc)
    month_s = 745 * 3600  # 2,682,000 s

    # Billable seconds: from activation (or the month's start) to decommission (or its end).
    # dateiablage S: 30 Sep 22:00 -> 10 Oct 12:30 = 9 d 14.5 h; M: the rest of the 745 h.
    assert lines["dateiablage", "Betriebsstunde", "S"]["quantity_base"] == 230 * 3600 + 1800
    assert lines["dateiablage", "Betriebsstunde", "M"]["quantity_base"] == 514 * 3600 + 1800
    assert lines["dateiablage", "Betriebsstunde", "S"]["quantity"] == "230.500000"
    assert lines["dateiablage", "Betriebsstunde", "S"]["hours"] == 231  # 12:00 in both
    assert lines["dateiablage", "Betriebsstunde", "M"]["hours"] == 515
    assert lines["sicherung", "Betriebsstunde", "S"]["quantity_base"] == month_s
    # verzeichnis: 3 Oct 08:20 -> 20 Oct 15:45 = 17 d 7 h 25 min.
    dir_s = 17 * 86400 + 7 * 3600 + 25 * 60
    assert lines["verzeichnis", "Betriebsstunde", "S"]["quantity_base"] == dir_s == 1_495_500
    # webseite: 28 Oct 09:00 -> 31 Oct 23:00 = 86 h.
    assert lines["webseite", "Betriebsstunde", "S"]["quantity_base"] == 86 * 3600
    assert not any(inst == "extra" for inst, _, _ in lines)  # never active: not billable

    # One-time fees: quoted amounts, in the hour of the first activation; the two created on
    # 30 Sep 20:00Z (22:00 in Berlin) belong to September.
    fees = {inst: ln["amount_cent"] for (inst, unit, _), ln in lines.items()
            if unit == "Einrichtung"}  # fmt: skip
    assert fees == {"verzeichnis": 8000, "webseite": 3000}
    assert _row("verzeichnis", "Einrichtung", "2026-10-03T08:00:00").quantity == 1

    # File share (a + b), by the hold rule: 3 GiB until the gap hour of 5 Oct 10:00, which is
    # billed at the hour before (3 GiB, flagged); 5 GiB from 11:00; 5.5 GiB from the sample
    # exactly at 15 Oct 12:00, which still belongs to the hour 11-12 (held into 12-13).
    # GiB-seconds: S to 5 Oct 11:00 (4 d 13 h) at 3, to 10 Oct 12:30 (5 d 1.5 h) at 5;
    # M to 15 Oct 12:00 (4 d 23.5 h) at 5, to the end (16 d 11 h) at 5.5.
    s_part = 3 * (4 * 86400 + 13 * 3600) + 5 * (5 * 86400 + 5400)
    m_part = 5 * (4 * 86400 + 23 * 3600 + 1800) + 11 * (16 * 86400 + 11 * 3600) // 2
    assert lines["dateiablage", "GiB-Monat", "S"]["quantity_base"] == s_part * GiB
    assert lines["dateiablage", "GiB-Monat", "M"]["quantity_base"] == m_part * GiB
    assert lines["dateiablage", "GiB-Monat", "S"]["gap_hours"] == 1
    assert lines["dateiablage", "GiB-Monat", "M"]["gap_hours"] == 0
    gap = _row("dateiablage", "GiB-Monat", "2026-10-05T10:00:00")
    assert (gap.quality, gap.quantity) == ("gap", 3 * GiB * 3600)
    assert gap.filled_from is not None and h.utc(gap.filled_from) == at("2026-10-05T09:00:00")
    assert gap.covered_seconds == 45 * 60  # 10:00-10:15 (10:10 held 5 min) and 10:30-11:00
    assert _row("dateiablage", "GiB-Monat", "2026-10-15T11:00:00").quantity == 5 * GiB * 3600
    assert _row("dateiablage", "GiB-Monat", "2026-10-15T12:00:00").quantity == 11 * GiB * 1800
    # The plan change hour is split at 12:30 between the two requests.
    assert _row("dateiablage", "GiB-Monat", "2026-10-10T12:00:00", 2).quantity == 5 * GiB * 1800
    assert _row("dateiablage", "GiB-Monat", "2026-10-10T12:00:00", 4).quantity == 5 * GiB * 1800
    assert lines["dateiablage", "GiB-Monat", "S"]["quantity"] == str(
        (Decimal(s_part) / month_s).quantize(Decimal("0.000001"))
    )

    # Accounts, time-weighted: 50 until 12 Oct 06:30:17, 80 after, over the billable time.
    # The first window (08:20, 09:00] is covered from 08:20:17 (99 %): 50 for all of it.
    t50 = (12 - 3) * 86400 - (8 * 3600 + 20 * 60) + (6 * 3600 + 30 * 60 + 17)  # 771,017 s
    assert (
        lines["verzeichnis", "Konto-Monat", "S"]["quantity_base"]
        == 50 * t50 + 80 * (dir_s - t50)
        == 96_509_490
    )
    # The hour of the change, by hand: 50 from 06:00 to 06:30:17, 80 to 07:00.
    assert _row("verzeichnis", "Konto-Monat", "2026-10-12T06:00:00").quantity == (
        50 * 1817 + 80 * 1783
    )
    assert _row("verzeichnis", "Konto-Monat", "2026-10-03T08:00:00").quantity == 50 * 2400
    assert _row("verzeichnis", "Konto-Monat", "2026-10-20T15:00:00").quantity == 80 * 2700

    # Backup: the sum over the client servers, each while it is billable; the gap of
    # dateiablage makes 5 Oct 10:00 a gap, billed at 09:00's 11 GiB. webseite's server never
    # reports its repository size either: its 86 hours are gaps of the backup too, billed at
    # the last complete hour (28 Oct 08:00, 10 GiB) - flagged, not silently short.
    assert lines["sicherung", "GiB-Monat", "S"]["quantity_base"] == GiB * (10 * month_s + 1 * dir_s)
    assert lines["sicherung", "GiB-Monat", "S"]["gap_hours"] == 1 + 86
    assert _row("sicherung", "GiB-Monat", "2026-10-05T10:00:00").quantity == 11 * GiB * 3600
    late = _row("sicherung", "GiB-Monat", "2026-10-30T10:00:00")
    assert (late.quality, h.utc(late.filled_from)) == ("gap", at("2026-10-28T08:00:00"))

    # Never reported: billed 0 and flagged, every hour.
    web = lines["webseite", "GiB-Monat", "S"]
    assert (web["quantity_base"], web["no_measurement_hours"], web["hours"]) == (0, 86, 86)

    # The October change: 25 Berlin hours on 25 October.
    with session_scope() as s:
        day = s.scalar(select(func.count()).where(
            LedgerRow.instance == "sicherung", LedgerRow.unit == "Betriebsstunde",
            LedgerRow.hour_start >= at("2026-10-24T22:00:00"),
            LedgerRow.hour_start < at("2026-10-25T23:00:00")))  # fmt: skip
    assert day == 25

    # The table: German units and number formats.
    table = RUN.invoke(app, ["usage", "--month", "2026-10", "--ags", TH])
    assert table.exit_code == 0, table.output
    assert "230,5000" in table.output and "514,5000" in table.output
    assert "Konto-Monat" in table.output and "80,00 €" in table.output
    csv_out = RUN.invoke(app, ["usage", "--month", "2026-10", "--format", "csv"])
    assert "dateiablage;fileshare;M;Betriebsstunde;514,5000;515" in csv_out.output


def test_import_twice_changes_nothing(prometheus_url: str, audit_log: None, database: str) -> None:
    first = _import(prometheus_url)
    rows = _rows()
    again = _import(prometheus_url)
    assert (again.rows_written, again.rows_unchanged) == (0, first.rows_written)
    # Final hours are never replaced, so the second import does not even ask Prometheus.
    assert first.queries > 0 and again.queries == 0
    assert _rows() == rows
    with session_scope() as s:
        runs = s.scalars(select(LedgerImport).order_by(LedgerImport.id)).all()
        assert [r.rows_written for r in runs] == [first.rows_written, 0]
        assert runs[0].hold_seconds == 300 and runs[0].gap_rule["min_coverage"] == "9/10"
        assert any("count_over_time" in q for q in runs[0].queries)
        assert {r[0] for r in s.execute(select(LedgerRow.import_id))} == {runs[0].id}
    # The default range starts where the last import ended: nothing new for October.
    assert ledger.last_imported_hour_end() == at("2026-10-31T23:00:00")
    assert ledger.last_import_finished_at() is not None


def test_provisional_then_final_is_a_correction(prometheus_url: str, audit_log: None,
                                                database: str) -> None:  # fmt: skip
    prov = _import(prometheus_url, start="2026-10-31T21:00Z", end=None, provisional=True,
                   now=at("2026-10-31T22:30:00"))  # fmt: skip
    assert prov.range_end == at("2026-10-31T22:00:00")
    assert prov.provisional_end == at("2026-10-31T22:30:00")
    running = _row("dateiablage", "Betriebsstunde", "2026-10-31T22:00:00")
    assert (running.status, running.quantity) == ("provisional", 1800)
    share = _row("dateiablage", "GiB-Monat", "2026-10-31T22:00:00")
    assert (share.status, share.quantity) == ("provisional", 11 * GiB * 900)
    out = RUN.invoke(app, ["usage", "--month", "2026-10", "--format", "json"])
    assert _lines(json.loads(out.output))["dateiablage", "GiB-Monat", "M"]["provisional_hours"] == 1
    _sums_agree()

    final = _import(prometheus_url, start=None, end=None, now=at("2026-10-31T23:10:00"))
    assert final.range_start == at("2026-10-31T22:00:00") and final.corrections > 0
    with session_scope() as s:
        rows = s.scalars(select(LedgerRow).where(
            LedgerRow.instance == "dateiablage", LedgerRow.unit == "Betriebsstunde",
            LedgerRow.hour_start == at("2026-10-31T22:00:00"))).all()  # fmt: skip
        assert [(r.status, r.quantity, r.corrects_id) for r in rows] == [
            ("provisional", 1800, None),
            ("final", 3600, running.id),
        ]
    out = RUN.invoke(app, ["usage", "--month", "2026-10", "--format", "json"])
    line = _lines(json.loads(out.output))["dateiablage", "Betriebsstunde", "M"]
    assert (line["provisional_hours"], line["quantity_base"]) == (0, 2 * 3600)
    # The corrections replaced the provisional figures in the month sums, not added to them.
    _sums_agree()


_KILLED = """
import sys
from basisit.app import ledger

def progress(text):
    if text.startswith("writing"):
        print("IN-TRANSACTION", flush=True)
        sys.stdin.read()  # until killed

ledger.import_usage(start=sys.argv[2], end=sys.argv[3], prometheus_url=sys.argv[1],
                    actor="test", progress=progress)
"""


def test_kill_9_during_the_import_stores_nothing(prometheus_url: str, audit_log: None,
                                                 database: str) -> None:  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED, prometheus_url, *MONTH],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=os.environ,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "IN-TRANSACTION"
    finally:
        proc.kill()  # SIGKILL
        proc.wait(timeout=30)
    assert _rows() == []
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(LedgerImport)) == 0
        assert s.scalar(select(func.count()).select_from(LedgerMonthLine)) == 0
    # And the next import is not disturbed by the dead one.
    assert _import(prometheus_url).rows_written > 0


class _Garbage(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        body = b"<html>not a prometheus</html>"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _nothing_written() -> None:
    assert _rows() == []
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(LedgerImport)) == 0


def test_bad_input_is_a_clear_error_and_writes_nothing(prometheus_url: str, audit_log: None,
                                                       database: str) -> None:  # fmt: skip
    cases = [
        (["--from", "2026-13-01"], 4, "not an ISO 8601"),
        (["--from", "yesterday"], 4, "not an ISO 8601"),
        (["--from", "2026-11-01", "--to", "2026-10-01"], 4, "reversed"),
        (["--from", "2099-01-01"], 4, "in the future"),
        (["--from", "2026-10-01", "--to", "2099-01-01"], 4, "in the future"),
        (["--from", "2026-08-01", "--to", "2026-09-01"], 3, "nothing was billable"),
        (["--from", "2026-10-01", "--prometheus", f"http://127.0.0.1:{promblocks.free_port()}"],
         8, "does not answer"),
    ]  # fmt: skip
    for args, code, words in cases:
        out = RUN.invoke(app, ["ledger", "import", "--prometheus", prometheus_url, *args])
        assert out.exit_code == code, (args, out.output)
        assert words in out.output, (args, out.output)
        _nothing_written()
    server = HTTPServer(("127.0.0.1", 0), _Garbage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(PrometheusError, match="did not answer with Prometheus' JSON API"):
            _import(f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
    _nothing_written()
    # A month without data is an error of the view too, not an empty table.
    out = RUN.invoke(app, ["usage", "--month", "2026-08"])
    assert out.exit_code == 3 and "no rows for 2026-08" in out.output
    assert RUN.invoke(app, ["usage", "--month", "2026-8"]).exit_code == 4
