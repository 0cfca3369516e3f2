"""The time-weighted integral of a gauge over one window (pure, exact).

The rules (docs/ledger.md):
- hold: each sample's value holds from its timestamp until the next sample, at most
  `HOLD_MS` (5 minutes, Prometheus' own lookback); time no sample holds is not covered;
- boundary: a window is (start, end]. A sample exactly at the start belongs to the window
  before; the value held into the window is the last sample at or before its start. A sample
  exactly at the end belongs to the window, and its value holds into the next one.
- quantities are exact: values are read as decimal fractions (Prometheus writes integral
  gauges as integers), integrals are value·milliseconds in `Fraction`, and only the final
  quantity in base-unit seconds is rounded, half to even.

Two ways to the same number: `raw` from the samples themselves, and `regular` from the
per-hour aggregates of an hour whose samples sit on the series' scrape grid (`on_grid`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

HOLD_MS = 300_000
# An hour (or the billable part of one) with less of its time covered is a gap.
MIN_COVERAGE = Fraction(9, 10)

# Integral gauges (bytes, counts) stay Python ints, which are exact and fast; anything else
# is a Fraction of the decimal Prometheus wrote.
Num = int | Fraction
Sample = tuple[int, Num]  # (timestamp ms, value)


def value(text: str) -> Num | None:
    """A sample value as Prometheus writes it; None for NaN and infinities (not a measurement)."""
    if text.isdigit() or (text[:1] == "-" and text[1:].isdigit()):
        return int(text)
    number = float(text)
    if not math.isfinite(number):
        return None
    exact = Fraction(text) if "e" not in text.lower() else Fraction(number)
    return int(exact) if exact.denominator == 1 else exact


@dataclass
class Piece:
    """The integral (value·ms) and the covered time of one series over one window."""

    integral: Num = 0
    covered: list[tuple[int, int]] = field(default_factory=list)  # [from, to) in ms

    def add(self, other: Piece) -> None:
        self.integral += other.integral
        self.covered.extend(other.covered)


def raw(samples: Sequence[Sample], start: int, end: int, hold: int = HOLD_MS) -> Piece:
    """The integral over (start, end] from the samples (sorted by time, any range around)."""
    piece = Piece()
    # The first sample that matters: the last at or before the start (held into the window).
    first = 0
    for i, (ts, _) in enumerate(samples):
        if ts <= start:
            first = i
        else:
            break
    for i in range(first, len(samples)):
        ts, val = samples[i]
        if ts > end:
            break
        nxt = samples[i + 1][0] if i + 1 < len(samples) else math.inf
        lo = max(ts, start)
        hi = min(nxt, ts + hold, end)
        if hi > lo:
            piece.integral += val * int(hi - lo)
            piece.covered.append((lo, int(hi)))
    return piece


HOUR_MS = 3_600_000


@dataclass
class GroupHours:
    """The series of one metric on one server, summed per hour. Index i is the hour that
    ends at first_end + i hours (index 0 only carries its values into hour 1)."""

    first_end: int
    total: list[Num | None]  # Σ sum_over_time over (start, end]; None: a NaN in the hour
    count: list[int]  # Σ count_over_time over (start, end]
    last: list[Num | None]  # Σ of the values at the end (each the last sample within 5 min)
    last_series: list[int]  # how many series have such a value

    @classmethod
    def empty(cls, first_end: int, steps: int) -> GroupHours:
        return cls(first_end, [0] * steps, [0] * steps, [None] * steps, [0] * steps)


@dataclass(frozen=True)
class Grid:
    """A server's scrape grid: a sample every `interval` ms, the first of each hour `phase`
    ms after the hour's start (0 < phase <= interval; interval divides the hour). Every
    series of one server comes from the same scrapes, so they share it."""

    interval: int
    phase: int

    @property
    def per_hour(self) -> int:
        return HOUR_MS // self.interval


def on_grid(g: GroupHours, i: int, grid: Grid) -> bool:
    """Whether hour i and the hour before hold every sample of the grid of each of the same
    series and no other: the counts are exactly series × samples per hour (a missed scrape
    gives fewer, a series that starts or ends within them too, and no series can have more
    than the grid's share unless the server's scrapes left the grid, which gives more)."""
    if i < 1:
        return False
    m = g.last_series[i]
    n = m * grid.per_hour
    return (
        m > 0
        and g.last_series[i - 1] == m
        and g.count[i] == n
        and g.count[i - 1] == n
        and g.total[i] is not None
        and g.last[i] is not None
        and g.last[i - 1] is not None
    )


def regular(g: GroupHours, i: int, grid: Grid) -> Num:
    """The integral (value·ms) over the full hour i from aggregates, for an hour `on_grid`.

    Per series, with samples s1 = start + phase, ..., sn = s1 + (n-1)·interval and v0 the
    value carried in from the hour before: v0 holds for `phase`, each of v1..v(n-1) for one
    interval, and vn for interval − phase, so
        v0·phase + interval·(Σv − vn) + vn·(interval − phase) = interval·Σv + phase·(v0 − vn)
    which is what `raw` gives on the same samples (the interval is at most the hold, so no
    stretch ends early). The series share the grid, so the sums over them do the same."""
    total, before, last = g.total[i], g.last[i - 1], g.last[i]
    assert total is not None and before is not None and last is not None
    return grid.interval * total + grid.phase * (before - last)


def covered_ms(intervals: Iterable[tuple[int, int]], start: int, end: int) -> int:
    """Length of the union of [from, to) intervals inside [start, end)."""
    total = 0
    cursor = start
    for lo, hi in sorted(intervals):
        lo, hi = max(lo, cursor), min(hi, end)
        if hi > lo:
            total += hi - lo
            cursor = hi
    return total


def round_half_even(value: Num) -> int:
    return round(value)
