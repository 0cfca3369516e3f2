"""The ledger's month sums: kept by differences they equal what the rows add up to, `basisit
ledger verify` finds sums out of step and repairs them, and migration 0005 builds them for a
ledger that already holds rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, func, insert, select
from typer.testing import CliRunner

from basisit.app import ledger
from basisit.cli.main import app
from basisit.store import db, ledger_sums
from basisit.store.db import session_scope
from basisit.store.ledger_sums import Row, Sums
from basisit.store.models import LedgerImport, LedgerMonthLine, LedgerRow, Request

RUN = CliRunner()
OCT = dt.datetime(2026, 9, 30, 22, tzinfo=dt.UTC)  # 1 October, 00:00 in Berlin
TH, SB = "10046118", "10041100"


def _row(ags: str, hour: int, *, instance: str = "dateiablage", unit: str = "Betriebsstunde",
         plan: str = "S", request: int = 1, quantity: int = 3600, status: str = "final",
         quality: str = "exact", fee: int | None = None) -> Row:  # fmt: skip
    base = {"Betriebsstunde": "s", "GiB-Monat": "byte_s", "Einrichtung": "count"}[unit]
    return Row(ags, instance, "fileshare", unit, plan, request, None, base,
               OCT + dt.timedelta(hours=hour), quantity, status, quality, fee)  # fmt: skip


def _scratch(groups: dict[tuple[str, int], list[Row]]) -> Sums:
    total = Sums()
    for (_ags, hour), rows in groups.items():
        if rows:
            total.add(ledger_sums.of_hour(rows, "2026-10" if hour < 745 else "2026-11"))
    return total


def _lines(s: Sums) -> dict[object, object]:
    return {k: (v.figures(), v.metric, v.base_unit) for k, v in s.lines.items() if v.hours}


def _nonzero(d: dict[object, int]) -> dict[object, int]:
    return {k: v for k, v in d.items() if v}


def _same(a: Sums, b: Sums) -> None:
    assert _lines(a) == _lines(b)
    assert _nonzero(a.requests) == _nonzero(b.requests)
    assert _nonzero(a.billable) == _nonzero(b.billable)
    for key, line in a.lines.items():
        if line.hours:  # the first hour is kept exactly for every line still there
            assert line.first_hour == b.lines[key].first_hour or key in a.lost | b.lost


_rows = st.lists(
    st.tuples(st.sampled_from(["dateiablage", "datenbank"]),
              st.sampled_from(["Betriebsstunde", "GiB-Monat", "Einrichtung"]),
              st.sampled_from(["S", "M"]), st.integers(1, 3), st.integers(0, 3600),
              st.sampled_from(["final", "provisional"]),
              st.sampled_from(["exact", "measured", "gap", "no_measurement"])),
    max_size=4,
)  # fmt: skip


@settings(max_examples=120, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([TH, SB]), st.sampled_from([0, 1, 744, 745]), _rows),
                min_size=1, max_size=12))  # fmt: skip
def test_sums_kept_by_differences_equal_the_rows_sums(
    imports: list[tuple[str, int, list[tuple[object, ...]]]],
) -> None:
    """Each import replaces the current rows of some (Kommune, hour) groups (a correction) or
    writes new ones; adding each import's difference gives what summing the rows gives, also
    across the month boundary (hour 745 is November)."""
    groups: dict[tuple[str, int], list[Row]] = {}
    kept = Sums()
    for ags, hour, drafts in imports:
        after = [
            _row(ags, hour, instance=str(i), unit=str(u), plan=str(p), request=int(r),
                 quantity=int(q), status=str(s), quality=str(ql),
                 fee=500 if u == "Einrichtung" else None)
            for i, u, p, r, q, s, ql in drafts
        ]  # fmt: skip
        # One current row per (instance, unit, request) and hour, as the unique key holds.
        after = list({(r.instance, r.unit, r.request_id): r for r in after}.values())
        if not after:
            continue
        kept.add(ledger_sums.difference(groups.get((ags, hour), []), after))
        groups[(ags, hour)] = after
    _same(_scratch(groups), kept)


def test_an_hour_counts_once_per_line_and_kommune() -> None:
    """Two requests in one hour (a change that kept the plan): the line has one hour and both
    requests; the Kommune's billable seconds are its longest instance, not the sum."""
    rows = [_row(TH, 5, request=1, quantity=1200), _row(TH, 5, request=2, quantity=2400),
            _row(TH, 5, instance="datenbank", quantity=3000)]  # fmt: skip
    sums = ledger_sums.of_hour(rows, "2026-10")
    line = sums.lines[("2026-10", TH, "dateiablage", "fileshare", "Betriebsstunde", "S")]
    assert (line.hours, line.quantity) == (1, 3600)
    assert sums.billable[("2026-10", TH)] == 3000


def _fill(rows: list[Row]) -> None:
    """Rows written by hand (not by the import), so without their month sums."""
    with session_scope() as s:
        run = LedgerImport(actor="test", range_start=OCT, range_end=OCT + dt.timedelta(hours=745),
                           prometheus_url="http://127.0.0.1:1", prometheus_version="2.42.0",
                           hold_seconds=300, boundary_rule="(start, end]")  # fmt: skip
        s.add(run)
        for rid in sorted({r.request_id for r in rows}):
            s.add(Request(id=rid, ags=TH, kind="create", instance="dateiablage",
                          service_id="fileshare", service_version=1, plan="S", parameters={},
                          schutzbedarf="normal", state="active", created_by="test"))  # fmt: skip
        s.flush()
        s.add_all(
            LedgerRow(import_id=run.id, ags=r.ags, instance=r.instance,
                      catalog_service=r.catalog_service, plan=r.plan, request_id=r.request_id,
                      unit=r.unit, metric=r.metric, base_unit=r.base_unit, hour_start=r.hour,
                      seconds=r.quantity, quantity=r.quantity, status=r.status,
                      quality=r.quality, amount_cent=r.amount_cent)
            for r in rows
        )  # fmt: skip


def test_verify_names_sums_out_of_step_and_repairs_them(database: str) -> None:
    _fill([_row(TH, hour) for hour in range(10)] + [_row(TH, 0, unit="Einrichtung", fee=5000)])
    out = RUN.invoke(app, ["ledger", "verify", "--month", "2026-10"])
    assert out.exit_code == 1
    assert "2026-10 10046118 dateiablage fileshare Betriebsstunde S: missing" in out.output
    assert "--repair" in out.output
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(LedgerMonthLine)) == 0  # not repaired

    out = RUN.invoke(app, ["ledger", "verify", "--repair"])
    assert out.exit_code == 0 and "repaired" in out.output, out.output
    out = RUN.invoke(app, ["ledger", "verify"])
    assert out.exit_code == 0 and "2026-10: the month sums agree" in out.output, out.output
    with session_scope() as s:
        line = s.scalars(select(LedgerMonthLine).where(LedgerMonthLine.unit == "Einrichtung")).one()
        assert (line.hours, line.fee_rows, line.amount_cent) == (1, 1, 5000)

    assert RUN.invoke(app, ["ledger", "verify", "--month", "2026-13"]).exit_code == 4


def test_sums_out_of_step_are_recomputed_when_a_difference_does_not_fit(database: str) -> None:
    """An import that corrects a row whose sums were never kept would subtract below zero;
    `apply` recomputes that month from the rows instead of storing a negative sum."""
    provisional = _row(TH, 3, quantity=1800, status="provisional")
    _fill([provisional])
    final = _row(TH, 3, quantity=3600)
    with session_scope() as s:
        conn = s.connection()
        rid = s.scalar(select(LedgerRow.id))
        conn.execute(insert(LedgerRow.__table__), [{  # the correction the import would write
            "import_id": 1, "ags": TH, "instance": "dateiablage", "catalog_service": "fileshare",
            "plan": "S", "request_id": 1, "unit": "Betriebsstunde", "base_unit": "s",
            "hour_start": final.hour, "seconds": 3600, "quantity": 3600, "status": "final",
            "quality": "exact", "corrects_id": rid}])  # fmt: skip
        assert ledger_sums.apply(conn, ledger_sums.difference([provisional], [final])) == [
            "2026-10"
        ]
    assert ledger.verify("2026-10")[0].problems == ()
    with session_scope() as s:
        assert s.scalar(select(LedgerMonthLine.quantity)) == 3600


def test_migration_0005_builds_the_sums_of_rows_already_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    cfg = Config()
    cfg.set_main_option("script_location", str(db.MIGRATIONS))
    engine = create_engine(url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0004")
    monkeypatch.setenv("BASISIT_DB_URL", url)
    db.engine_for.cache_clear()
    rows = [_row(TH, hour, quantity=3600 - hour) for hour in range(744, 747)]  # Oct and Nov
    with engine.begin() as conn:  # a 0004 database knows nothing of the sums tables
        conn.execute(insert(LedgerImport.__table__), [{
            "id": 1, "started_at": OCT, "finished_at": OCT, "actor": "t", "range_start": OCT,
            "range_end": OCT, "prometheus_url": "-", "prometheus_version": "2.42.0",
            "queries": [], "hold_seconds": 300, "gap_rule": {}, "boundary_rule": "-",
            "rows_written": 3}])  # fmt: skip
        conn.execute(insert(Request.__table__), [{
            "id": 1, "ags": TH, "kind": "create", "instance": "dateiablage",
            "service_id": "fileshare", "service_version": 1, "plan": "S", "parameters": {},
            "schutzbedarf": "normal", "state": "active", "created_by": "t"}])  # fmt: skip
        conn.execute(insert(LedgerRow.__table__), [{
            "import_id": 1, "ags": r.ags, "instance": r.instance, "catalog_service": "fileshare",
            "plan": "S", "request_id": 1, "unit": r.unit, "base_unit": "s",
            "hour_start": r.hour, "seconds": r.quantity, "quantity": r.quantity,
            "status": "final", "quality": "exact"} for r in rows])  # fmt: skip
    with session_scope():  # the first session migrates to the head
        pass
    checks = ledger.verify()
    assert [(c.month, c.problems) for c in checks] == [("2026-10", ()), ("2026-11", ())]
    with session_scope() as s:
        sums = ledger_sums.read(s.connection(), "2026-10")
        assert sums.billable == {("2026-10", TH): 3600 - 744}
