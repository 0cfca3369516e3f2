"""The ledger's rules as pure computations (basisit.metering): billable time from transitions,
the hold and boundary rules, the two ways to an hour's integral, Berlin months, German units.
The same rules against a real Prometheus: tests/integration/test_ledger_import.py."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction

import pytest

from basisit import hours, units
from basisit.errors import ValidationFailed
from basisit.metering.integrate import Grid, GroupHours, covered_ms, on_grid, raw, regular
from basisit.metering.intervals import RequestRecord, TransitionRecord, activations, segments

T0 = dt.datetime(2026, 10, 1, 8, 0, tzinfo=dt.UTC)


def _t(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def _req(rid: int, kind: str, plan: str = "S", fee: int | None = None) -> RequestRecord:
    return RequestRecord(rid, "10046118", "dateiablage", kind, "fileshare", plan, fee)


def _spans(reqs, moves):
    return [(s.request_id, s.plan, s.start, s.end) for s in segments(reqs, moves)]


def test_billable_from_first_active_to_decommissioned_through_a_failed_change() -> None:
    reqs = [_req(1, "create", "S", 5000), _req(2, "change", "M"), _req(3, "change", "L"),
            _req(4, "decommission")]  # fmt: skip
    moves = [
        TransitionRecord(1, _t(0), "provisioning"), TransitionRecord(1, _t(10), "active"),
        TransitionRecord(2, _t(60), "provisioning"), TransitionRecord(2, _t(90), "active"),
        TransitionRecord(3, _t(120), "provisioning"), TransitionRecord(3, _t(125), "failed"),
        TransitionRecord(4, _t(200), "decommissioning"),
        TransitionRecord(4, _t(230), "decommissioned"),
    ]  # fmt: skip
    assert _spans(reqs, moves) == [(1, "S", _t(10), _t(90)), (2, "M", _t(90), _t(230))]
    # The one-time fee: once, at the first activation, with the quoted amount.
    assert [(a.request.id, a.at) for a in activations(reqs, moves)] == [(1, _t(10))]


def test_a_create_that_never_became_active_is_not_billable() -> None:
    moves = [TransitionRecord(1, _t(0), "provisioning"), TransitionRecord(1, _t(5), "failed")]
    assert _spans([_req(1, "create")], moves) == []


def test_the_plan_in_force_is_the_newest_active_request_and_a_recreate_starts_anew() -> None:
    reqs = [_req(1, "create", "S"), _req(2, "change", "M"), _req(3, "decommission"),
            _req(4, "create", "L")]  # fmt: skip
    moves = [
        TransitionRecord(1, _t(0), "active"), TransitionRecord(2, _t(30), "active"),
        # An activation of the older request again (a re-run) changes nothing.
        TransitionRecord(1, _t(40), "active"),
        TransitionRecord(3, _t(60), "decommissioned"), TransitionRecord(4, _t(100), "active"),
    ]  # fmt: skip
    assert _spans(reqs, moves) == [
        (1, "S", _t(0), _t(30)), (2, "M", _t(30), _t(60)), (4, "L", _t(100), None),
    ]  # fmt: skip


MIN = 60_000
HOUR = 3_600_000


def test_the_boundary_rule_and_the_hold() -> None:
    # A sample exactly at the start belongs to the hour before but its value is held into
    # the hour; a sample exactly at the end belongs to the hour and holds nothing in it.
    samples = [(0, 7), (HOUR, 100)]
    piece = raw(samples, 0, HOUR)
    assert piece.integral == 7 * 5 * MIN  # held 5 minutes, then nothing covers the hour
    assert covered_ms(piece.covered, 0, HOUR) == 5 * MIN
    assert raw(samples, HOUR, 2 * HOUR).integral == 100 * 5 * MIN
    # The value carried in is the last at or before the start.
    assert raw([(-2 * MIN, 1), (-MIN, 2), (MIN, 3)], 0, 2 * MIN).integral == 2 * MIN + 3 * MIN


@pytest.mark.parametrize("phase_s", [17, 60])
def test_an_hour_on_the_grid_from_aggregates_equals_the_samples(phase_s: int) -> None:
    # Two series of one server, 60 s scrapes at `phase` past each minute; the values change
    # at 30 min and at the hour's end.
    phase = phase_s * 1000
    times = [phase - MIN + k * MIN for k in range(-60, 62)]
    series = [{t: (5 if t < 30 * MIN else 9) + (t >= HOUR) for t in times},
              {t: 100 + (t >= 10 * MIN) for t in times}]  # fmt: skip

    def fill(g: GroupHours, i: int, lo: int, hi: int) -> None:
        g.total[i] = sum(v[t] for v in series for t in times if lo < t <= hi)
        g.count[i] = sum(1 for _ in series for t in times if lo < t <= hi)
        g.last[i] = sum(v[max(t for t in times if t <= hi)] for v in series)
        g.last_series[i] = len(series)

    g = GroupHours.empty(0, 2)
    fill(g, 0, -HOUR, 0)
    fill(g, 1, 0, HOUR)
    grid = Grid(MIN, phase)
    assert on_grid(g, 1, grid)
    by_samples = sum(raw(sorted(v.items()), 0, HOUR).integral for v in series)
    assert regular(g, 1, grid) == by_samples
    # A missed scrape is not on the grid: that hour is read sample by sample.
    g.count[1] -= 1
    assert not on_grid(g, 1, grid)


def test_values_are_exact() -> None:
    from basisit.metering.integrate import value

    assert value("1073741824") == 2**30 and isinstance(value("12"), int)
    assert value("0.1") == Fraction(1, 10)
    assert value("NaN") is None and value("+Inf") is None


def test_berlin_months_and_iso_input() -> None:
    start, end = hours.month_range("2026-10")
    assert (start, end) == (dt.datetime(2026, 9, 30, 22, tzinfo=dt.UTC),
                            dt.datetime(2026, 10, 31, 23, tzinfo=dt.UTC))  # fmt: skip
    assert len(list(hours.hours(start, end))) == 745
    march = hours.month_range("2027-03")
    assert len(list(hours.hours(*march))) == 743
    assert hours.parse_instant("2026-10-25T02:30+01:00") == dt.datetime(
        2026, 10, 25, 1, 30, tzinfo=dt.UTC
    )
    assert hours.parse_instant("2026-07-01") == dt.datetime(2026, 6, 30, 22, tzinfo=dt.UTC)
    assert hours.parse_instant("2026-07-01T12:00Z") == dt.datetime(2026, 7, 1, 12, tzinfo=dt.UTC)
    for bad in ("2026-13-01", "gestern", ""):
        with pytest.raises(ValidationFailed, match="ISO 8601"):
            hours.parse_instant(bad, "--from")
    with pytest.raises(ValidationFailed, match="YYYY-MM"):
        hours.month_range("2026-13")


def test_catalog_units_and_german_numbers() -> None:
    month_s = 745 * 3600
    assert units.in_catalog_unit("Betriebsstunde", "s", 5400, month_s) == Decimal("1.5")
    assert units.in_catalog_unit("GiB-Monat", "byte_s", 3 * 2**30 * month_s, month_s) == 3
    assert units.in_catalog_unit("Postfach-Monat", "count_s", 85 * month_s, month_s) == 85
    assert units.base_unit("basisit_database_size_bytes") == "byte_s"
    assert units.base_unit("basisit_mail_mailboxes") == "count_s"
    assert units.german(Decimal("1234567.891"), 4) == "1.234.567,8910"
    assert units.german(Decimal("0.5"), 0) == "0"  # half to even
