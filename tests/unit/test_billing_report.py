"""`basisit report` from the ledger: the hand-worked October of test_billing_allocation,
written as hourly ledger rows, billed through contract 3 and rendered; and the bad input."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from test_billing_allocation import SB, TH, WND, priced  # noqa: F401
from typer.testing import CliRunner

from basisit.app import billing, ledger
from basisit.cli.main import app
from basisit.errors import NotFound, ValidationFailed
from basisit.store.db import session_scope
from basisit.store.models import LedgerImport, LedgerRow, Request

RUN = CliRunner()
OCT = dt.datetime(2026, 9, 30, 22, tzinfo=dt.UTC)  # 1 October 00:00 in Berlin
GiB = 2**30
NOW = dt.datetime(2026, 11, 2, 12, tzinfo=dt.UTC)


def _fill(database: str) -> None:
    """October's ledger rows hour by hour: Tholey's file share (S for 336 h, then M), St.
    Wendel's database from 20 Oct 12:00 (the last 276 h), Saarbrücken's directory."""
    with session_scope() as s:
        run = LedgerImport(actor="test", range_start=OCT, range_end=OCT + dt.timedelta(hours=745),
                           prometheus_url="http://127.0.0.1:1", prometheus_version="2.42.0",
                           hold_seconds=300, boundary_rule="(start, end]")  # fmt: skip
        s.add(run)
        for rid, ags, inst, svc, plan in [(1, TH, "dateiablage", "fileshare", "S"),
                                          (2, TH, "dateiablage", "fileshare", "M"),
                                          (3, WND, "datenbank", "database", "S"),
                                          (4, SB, "verzeichnis", "directory", "S")]:  # fmt: skip
            s.add(Request(id=rid, ags=ags, kind="create" if rid != 2 else "change",
                          instance=inst, service_id=svc, service_version=1, plan=plan,
                          parameters={}, schutzbedarf="normal", state="active",
                          created_by="test"))  # fmt: skip
        s.flush()

        def row(rid: int, ags: str, inst: str, svc: str, plan: str, unit: str, base: str,
                hour: int, quantity: int, **extra: object) -> LedgerRow:  # fmt: skip
            return LedgerRow(import_id=run.id, ags=ags, instance=inst, catalog_service=svc,
                             plan=plan, request_id=rid, unit=unit, base_unit=base,
                             hour_start=OCT + dt.timedelta(hours=hour), seconds=3600,
                             quantity=quantity, status="final",
                             quality=str(extra.pop("quality", "exact")), **extra)  # fmt: skip

        rows = []
        for hour in range(745):
            rid, plan, used = (1, "S", 120) if hour < 336 else (2, "M", 150)
            rows.append(row(rid, TH, "dateiablage", "fileshare", plan, "Betriebsstunde", "s",
                            hour, 3600))  # fmt: skip
            gap = "gap" if hour in (10, 11, 12) else "measured"
            rows.append(row(rid, TH, "dateiablage", "fileshare", plan, "GiB-Monat", "byte_s",
                            hour, used * GiB * 3600, quality=gap,
                            metric="basisit_fileshare_used_bytes"))  # fmt: skip
            rows.append(row(4, SB, "verzeichnis", "directory", "S", "Betriebsstunde", "s",
                            hour, 3600))  # fmt: skip
            rows.append(row(4, SB, "verzeichnis", "directory", "S", "Konto-Monat", "count_s",
                            hour, 240 * 3600, quality="measured",
                            metric="basisit_directory_accounts"))  # fmt: skip
            if hour >= 745 - 276:
                rows.append(row(3, WND, "datenbank", "database", "S", "Betriebsstunde", "s",
                                hour, 3600))  # fmt: skip
                rows.append(row(3, WND, "datenbank", "database", "S", "GiB-Monat", "byte_s",
                                hour, 12 * GiB * 3600, quality="measured",
                                metric="basisit_database_size_bytes"))  # fmt: skip
        rows.append(row(1, TH, "dateiablage", "fileshare", "S", "Einrichtung", "count", 0, 1,
                        amount_cent=5000))  # fmt: skip
        rows.append(row(3, WND, "datenbank", "database", "S", "Einrichtung", "count", 469, 1,
                        amount_cent=7500))  # fmt: skip
        s.add_all(rows)
    # Rows written by hand, not by the import, have no month sums yet: verify sees that, and
    # --repair builds them from the rows (as after a manual correction of the ledger).
    (check,) = ledger.verify("2026-10")
    assert check.problems and not check.repaired
    assert ledger.verify("2026-10", repair=True)[0].repaired
    assert ledger.verify("2026-10")[0].problems == ()


def test_october_from_the_ledger_to_csv(priced: Path, database: str, tmp_path: Path) -> None:  # noqa: F811
    _fill(database)
    bill = billing.month_bill("2026-10", now=NOW)
    totals = {k.ags: (k.direct_cents, k.overhead_cents, k.total_cents) for k in bill.kommunen}
    assert totals == {TH: (9166, 1089, 10255), WND: (9360, 771, 10131), SB: (7700, 6473, 14173)}
    assert bill.total_cents == 34559 and not bill.provisional
    written = billing.write_report("2026-10", "csv", tmp_path, now=NOW)
    text = written.paths[0].read_text("utf-8-sig")
    assert written.paths[0].name == "basisit-2026-10-alle.csv"
    assert "Kostenaufteilung Basis-IT Oktober 2026" in text
    assert (
        "Summe;10046118;Tholey;direkt;91,66;Gemeinkosten;10,89;gesamt;102,55;Zuschuss;0,00" in text
    )
    assert "Gesamtsumme;345,59" in text and "stimmt" in text
    assert "geschätzt, 3 Std. Messlücke" in text
    assert "01.10.2026 – 31.10.2026" in text


def test_one_kommunes_report_holds_only_its_own_lines(
    priced: Path,  # noqa: F811
    database: str,
    tmp_path: Path,
) -> None:
    _fill(database)
    out = tmp_path / "tholey.csv"
    result = RUN.invoke(app, ["report", "--month", "2026-10", "--ags", TH, "-o", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text("utf-8-sig")
    assert "Tholey" in text and "102,55" in text
    assert SB not in text and "Saarbrücken" not in text and WND + ";" not in text


def test_bad_input_is_named_and_writes_nothing(
    priced: Path,  # noqa: F811
    database: str,
    tmp_path: Path,
) -> None:
    _fill(database)
    out = tmp_path / "reports"
    out.mkdir()
    cases = [
        (["--month", "2026-13"], "is not YYYY-MM"),
        (["--month", "26-11"], "is not YYYY-MM"),
        (["--month", "2099-01"], "has not begun"),
        (["--month", "2026-08"], "no rows for 2026-08"),
        (["--month", "2026-10", "--ags", "99999999"], "99999999"),
        (["--month", "2026-10", "--ags", "10042"], "no costs in 2026-10"),
        (["--month", "2026-10", "--format", "docx"], "'docx' is not one of"),
    ]
    for args, message in cases:
        result = RUN.invoke(app, ["report", *args, "-o", str(out)])
        assert result.exit_code != 0 and message in result.output, (args, result.output)
    locked = out / "locked"
    locked.mkdir()
    os.chmod(locked, 0o500)
    try:
        if os.geteuid() != 0:  # root may write anywhere: the check is for everyone else
            with pytest.raises(ValidationFailed, match="not writable"):
                billing.write_report("2026-10", "csv", locked, now=NOW)
    finally:
        os.chmod(locked, 0o700)
    with pytest.raises(ValidationFailed, match="does not exist"):
        billing.write_report("2026-10", "csv", out / "nowhere" / "r.csv", now=NOW)
    assert sorted(p.name for p in out.iterdir()) == ["locked"]  # no file, not even a partial one
    with pytest.raises(NotFound):
        billing.month_bill("2026-09", now=NOW)


def test_the_running_month_is_provisional(priced: Path, database: str) -> None:  # noqa: F811
    _fill(database)
    bill = billing.month_bill("2026-10", now=dt.datetime(2026, 10, 31, 12, tzinfo=dt.UTC))
    assert bill.provisional


def test_every_format_from_the_ledger(priced: Path, database: str, tmp_path: Path) -> None:  # noqa: F811
    from decimal import Decimal

    import openpyxl
    from pypdf import PdfReader

    _fill(database)
    for fmt in billing.FORMATS:
        billing.write_report("2026-10", fmt, tmp_path, now=NOW)
    names = {p.name for p in tmp_path.iterdir() if p.name.startswith("basisit-")}
    # One file per format, and FOCUS's CSV beside its Parquet file.
    assert names == {f"basisit-2026-10-alle{s}" for s in billing.FORMATS.values()} | {
        "basisit-2026-10-alle.focus.csv"
    }
    assert "345,59 €" in (tmp_path / "basisit-2026-10-alle.html").read_text("utf-8")
    pdf_text = "".join(
        p.extract_text() for p in PdfReader(tmp_path / "basisit-2026-10-alle.pdf").pages
    )
    assert "345,59 €" in pdf_text and "102,55 €" in pdf_text
    book = openpyxl.load_workbook(tmp_path / "basisit-2026-10-alle.xlsx")
    cells = [c.value for row in book["Übersicht"].iter_rows() for c in row]
    assert Decimal("345.59") in [Decimal(str(v)) for v in cells if isinstance(v, float | int)]
