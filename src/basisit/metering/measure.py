"""Hourly quantities of measured usage per instance and unit, with the gap rule.

For each job (one instance, one metered unit, its windows = the billable parts of UTC hours
under one request each) the quantity of a window is the time-weighted mean of the gauge over
the time its samples cover, times the window's seconds (`integrate`), summed over the
instance's series (shares, databases, sites). A metric written on every server of the Kommune
(the backup repository size) is summed over those servers and each of them is a source that
must report while it is billable.

Gaps: a window in which a source covers less than 90 % of its time is a gap. It is billed at
the mean of the last complete window before it (from this import or, through `Earlier`, the
ledger), else of the first complete one after it, and flagged; with no complete window at all,
at its own partial mean; a series that has not reported at all is billed 0 and flagged
`no_measurement` ("noch keine Messung"). Never silently zero or full.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction

from basisit.metering.hours import to_ms
from basisit.metering.integrate import (
    HOLD_MS,
    MIN_COVERAGE,
    Grid,
    Num,
    Piece,
    Sample,
    covered_ms,
    on_grid,
    raw,
    regular,
)
from basisit.metering.intervals import Segment
from basisit.metering.prometheus import HOUR_MS, Client, Labels, SeriesHours

MEASURED = "measured"
GAP = "gap"
NO_MEASUREMENT = "no_measurement"

Progress = Callable[[str], None]
# Hours read sample by sample are fetched in blocks of six: one query serves a run of them.
RAW_BLOCK_MS = 6 * HOUR_MS


@dataclass(frozen=True)
class Window:
    """The billable part (start, end] (ms) of one UTC hour under one request."""

    hour: dt.datetime
    start: int
    end: int
    segment: Segment
    provisional: bool = False

    @property
    def seconds(self) -> int:
        return (self.end - self.start) // 1000

    @property
    def full_hour(self) -> bool:
        return self.end - self.start == HOUR_MS


@dataclass(frozen=True)
class Earlier:
    """The last complete measured row of the job before this import (from the ledger)."""

    hour: dt.datetime
    quantity: int
    seconds: int


@dataclass(frozen=True)
class Job:
    ags: str
    instance: str
    unit: str
    metric: str
    windows: tuple[Window, ...]
    # Written on each of the Kommune's servers and summed (the backup repository size);
    # `sources` are those servers with the [from, to) ms in which each must report.
    kommune_wide: bool = False
    sources: Mapping[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)
    earlier: Earlier | None = None

    def matchers(self) -> dict[str, str]:
        if self.kommune_wide:
            return {"ags": self.ags}
        return {"ags": self.ags, "server": self.instance}


@dataclass(frozen=True)
class Measured:
    job: Job
    window: Window
    quantity: int  # base unit · seconds
    quality: str
    covered_s: int
    filled_from: dt.datetime | None = None


@dataclass
class _Found:
    """One window's raw result before the gap rule."""

    value_ms: Num  # Σ over sources of integral scaled to the expected time (value·ms)
    covered: int  # ms covered (union over the window, for the record)
    complete: bool


def measure(jobs: list[Job], client: Client, progress: Progress | None = None) -> list[Measured]:
    """Every job's windows measured against Prometheus, gap rule applied."""
    say = progress or (lambda _text: None)
    result: list[Measured] = []
    by_metric: dict[str, list[Job]] = {}
    for job in jobs:
        if job.windows:
            by_metric.setdefault(job.metric, []).append(job)
    for metric, metric_jobs in sorted(by_metric.items()):
        windows = [w for j in metric_jobs for w in j.windows]
        first_end = min(w.hour for w in windows)
        full_ends = [w.hour for w in windows if not w.provisional]
        last_end = max(full_ends) if full_ends else first_end
        first_ms = to_ms(first_end)
        last_ms = to_ms(last_end) + HOUR_MS if full_ends else first_ms
        say(f"{metric}: hourly aggregates {len(windows)} windows")
        series = client.hour_aggregates(metric, first_ms, last_ms)
        fetched = _Samples(client, metric, series)
        for job in metric_jobs:
            found = [fetched.window(job, w) for w in job.windows]
            result.extend(_gap_rule(job, found))
        if fetched.raw_queries:
            say(f"{metric}: raw samples in {fetched.raw_queries} queries")
    return result


class _Samples:
    """The series of one metric: aggregates per hour, raw samples fetched when needed."""

    def __init__(self, client: Client, metric: str, series: list[SeriesHours]) -> None:
        self.client = client
        self.metric = metric
        self.by_source: dict[tuple[str, str], list[SeriesHours]] = {}
        for s in series:
            self.by_source.setdefault((s.label("ags"), s.label("server")), []).append(s)
        self.grid = _grids(client, metric, series)
        self.raw_cache: dict[tuple[object, ...], dict[Labels, list[Sample]]] = {}
        self.raw_queries = 0

    def _series(self, job: Job) -> list[SeriesHours]:
        if job.kommune_wide:
            return [s for (ags, _), ss in sorted(self.by_source.items()) if ags == job.ags
                    for s in ss]  # fmt: skip
        return self.by_source.get((job.ags, job.instance), [])

    def window(self, job: Job, w: Window) -> _Found:
        spans = _source_spans(job, w)
        whole = [(w.start, w.end)]
        fast: list[tuple[str, Piece]] = []
        need_raw = False
        for s in self._series(job):
            server = s.label("server")
            own = spans.get(server, whole)
            if not own:
                continue  # a client server that is not billable now counts nothing
            piece = self._fast(s, w) if own == whole else None
            if piece is None:
                need_raw = True
                break
            fast.append((server, piece))
        pieces: dict[str, Piece] = {}  # per source server
        if need_raw:
            for labels, samples in self._raw(job, w).items():
                server = dict(labels).get("server", "")
                for lo, hi in spans.get(server, whole):
                    pieces.setdefault(server, Piece()).add(raw(samples, lo, hi))
        else:
            for server, piece in fast:
                pieces.setdefault(server, Piece()).add(piece)
        return _combine(job, w, pieces, spans)

    def _fast(self, s: SeriesHours, w: Window) -> Piece | None:
        grid = self.grid.get(s.labels)
        if not w.full_hour or grid is None:
            return None
        hour, before = s.hours.get(w.end), s.hours.get(w.start)
        if hour is None or not on_grid(before, hour, grid):
            return None
        assert before is not None
        return regular(before, hour, grid, w.start, w.end)

    def _raw(self, job: Job, w: Window) -> dict[Labels, list[Sample]]:
        """Raw samples of the job's series around the window: one query per job and block of
        RAW_BLOCK_MS (an hour never straddles two), from the hold before it to its end."""
        matchers = job.matchers()
        lo = w.start // RAW_BLOCK_MS * RAW_BLOCK_MS
        key = (*sorted(matchers.items()), lo)
        cached = self.raw_cache.get(key)
        if cached is None:
            hi = lo + RAW_BLOCK_MS
            cached = self.client.raw(self.metric, matchers, hi, hi - lo + HOLD_MS)
            self.raw_queries += 1
            self.raw_cache[key] = cached
        return cached


def _interval(s: SeriesHours) -> int | None:
    """The series' usual scrape interval: from the most common count per hour, when that
    divides the hour into whole milliseconds and is at most the hold."""
    counts = Counter(h.count for h in s.hours.values() if h.count > 0)
    ranked = counts.most_common(2)
    if not ranked or (len(ranked) == 2 and ranked[0][1] == ranked[1][1]):
        return None  # no evidence, or a tie
    n = ranked[0][0]
    if HOUR_MS % n or HOUR_MS // n > HOLD_MS:
        return None
    return HOUR_MS // n


def _grids(client: Client, metric: str, series: list[SeriesHours]) -> dict[Labels, Grid]:
    """Each series' grid: its interval from the counts, its phase from the timestamp of its
    last sample at the end of its first and its last regular hour (one instant query per
    distinct hour end, most series share them). A phase that differs between the two, or
    a series without regular hours, has no grid: all its hours are read sample by sample."""
    wanted: dict[Labels, tuple[int, int, int]] = {}
    for s in series:
        step = _interval(s)
        if step is None:
            continue
        n = HOUR_MS // step
        ends = sorted(
            end for end, hour in s.hours.items()
            if hour.count == n and hour.last is not None
        )  # fmt: skip
        if ends:
            wanted[s.labels] = (step, ends[0], ends[-1])
    at: dict[int, dict[Labels, int]] = {}
    for end in sorted({e for _, first, last in wanted.values() for e in (first, last)}):
        at[end] = client.timestamps(metric, end)
    grids: dict[Labels, Grid] = {}
    for labels, (step, first, last) in wanted.items():
        phases = set()
        for end in (first, last):
            ts = at[end].get(labels)
            phases.add(None if ts is None or not 0 <= end - ts < step else step - (end - ts))
        phase = phases.pop() if len(phases) == 1 else None
        if phase is not None:
            grids[labels] = Grid(step, phase)
    return grids


def _source_spans(job: Job, w: Window) -> dict[str, list[tuple[int, int]]]:
    """For a Kommune-wide metric: each client server's billable part of the window."""
    spans: dict[str, list[tuple[int, int]]] = {}
    for server, billable in job.sources.items():
        spans[server] = [
            (max(lo, w.start), min(hi, w.end)) for lo, hi in billable
            if min(hi, w.end) > max(lo, w.start)
        ]  # fmt: skip
    return spans


def _combine(
    job: Job, w: Window, pieces: dict[str, Piece], spans: dict[str, list[tuple[int, int]]]
) -> _Found:
    """The window's value (each source's integral scaled from the time it covered to the time
    it had to cover) and whether every source covered at least 90 % of that time."""
    covered = covered_ms([iv for p in pieces.values() for iv in p.covered], w.start, w.end)
    if not job.kommune_wide:
        piece = pieces.get(job.instance, Piece())
        expected = w.end - w.start
        got = covered_ms(piece.covered, w.start, w.end)
        complete = got >= MIN_COVERAGE * expected
        return _Found(_exact(_scaled(piece.integral, expected, got)), covered, complete)
    value_ms: Num = 0
    complete = True
    for server in sorted(set(pieces) | set(spans)):
        piece = pieces.get(server, Piece())
        got = covered_ms(piece.covered, w.start, w.end)
        if server in spans:
            expected = sum(hi - lo for lo, hi in spans[server])
            complete = complete and got >= MIN_COVERAGE * expected
        else:
            expected = got  # a server the audit log does not know: what it reported
        value_ms += _scaled(piece.integral, max(expected, got), got)
    return _Found(_exact(value_ms), covered, complete)


def _scaled(integral: Num, expected: int, got: int) -> Num:
    """The integral over the covered time as if the mean had held for the expected time."""
    if not got:
        return 0
    if got == expected:
        return integral
    return Fraction(integral) * expected / got


def _exact(value: Num | Fraction) -> Num:
    if isinstance(value, Fraction) and value.denominator == 1:
        return int(value)
    return value


def _gap_rule(job: Job, found: list[_Found]) -> Iterable[Measured]:
    quantities = [round(Fraction(f.value_ms) / 1000) if f.complete else None for f in found]
    complete = [i for i, q in enumerate(quantities) if q is not None]
    for i, (w, f) in enumerate(zip(job.windows, found, strict=True)):
        q = quantities[i]
        covered_s = f.covered // 1000
        if q is not None:
            yield Measured(job, w, q, MEASURED, covered_s)
            continue
        before = [j for j in complete if j < i]
        after = [j for j in complete if j > i]
        if before:
            src = job.windows[before[-1]]
            yield _filled(job, w, quantities[before[-1]] or 0, src.seconds, src.hour, covered_s)
        elif job.earlier is not None:
            e = job.earlier
            yield _filled(job, w, e.quantity, e.seconds, e.hour, covered_s)
        elif after:
            src = job.windows[after[0]]
            yield _filled(job, w, quantities[after[0]] or 0, src.seconds, src.hour, covered_s)
        elif f.covered:
            # Reported, but never a complete hour: its own mean over what it covered.
            yield Measured(job, w, round(Fraction(f.value_ms) / 1000), GAP, covered_s)
        else:
            yield Measured(job, w, 0, NO_MEASUREMENT, 0)


def _filled(
    job: Job, w: Window, quantity: int, seconds: int, hour: dt.datetime, covered_s: int
) -> Measured:
    mean = Fraction(quantity, seconds) if seconds else Fraction(0)
    return Measured(job, w, round(mean * w.seconds), GAP, covered_s, hour)
