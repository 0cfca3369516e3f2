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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from typing import NamedTuple

from basisit.hours import to_ms
from basisit.metering import prometheus
from basisit.metering.integrate import (
    HOLD_MS,
    MIN_COVERAGE,
    Grid,
    GroupHours,
    Num,
    Piece,
    Sample,
    covered_ms,
    on_grid,
    raw,
    regular,
)
from basisit.metering.intervals import Segment
from basisit.metering.prometheus import HOUR_MS, Client, Labels

MEASURED = "measured"
GAP = "gap"
NO_MEASUREMENT = "no_measurement"

Progress = Callable[[str], None]
# Hours read sample by sample are fetched in blocks of six: one query serves a run of them.
RAW_BLOCK_MS = 6 * HOUR_MS


class Window(NamedTuple):
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
    # Windows of the job already final in the ledger, left out of `windows` (not measured).
    skipped: int = 0

    def matchers(self) -> dict[str, str]:
        if self.kommune_wide:
            return {"ags": self.ags}
        return {"ags": self.ags, "server": self.instance}


class Measured(NamedTuple):
    job: Job
    window: Window
    quantity: int  # base unit · seconds
    quality: str
    covered_s: int
    filled_from: dt.datetime | None = None


@dataclass(slots=True)
class _Found:
    """One window's raw result before the gap rule."""

    value_ms: Num  # Σ over sources of integral scaled to the expected time (value·ms)
    covered: int  # ms covered (union over the window, for the record)
    complete: bool


def measure(jobs: list[Job], client: Client, progress: Progress | None = None) -> list[Measured]:
    """Every job's windows measured against Prometheus, gap rule applied."""
    say = progress or (lambda _text: None)
    by_metric: dict[str, list[Job]] = {}
    for job in jobs:
        if job.windows:
            by_metric.setdefault(job.metric, []).append(job)

    spans: dict[str, tuple[int, int]] = {}
    for metric, metric_jobs in by_metric.items():
        hours = [w.hour for j in metric_jobs for w in j.windows]
        # Through the end of the last hour, the running (provisional) one included: its
        # aggregates at that future end tell which servers reported; without them an import
        # of only the running hour found no server and billed "noch keine Messung".
        spans[metric] = (to_ms(min(hours)), to_ms(max(hours)) + HOUR_MS)

    def cost(metric: str) -> int:
        # Prometheus' time goes with the series it reads: a Kommune-wide metric has one
        # per client server.
        return sum(len(j.windows) * max(1, len(j.sources)) for j in by_metric[metric])

    # The largest queries first, two at a time: Prometheus evaluates a query on one core,
    # and this host has two; the small ones fill in behind the large ones.
    tasks = sorted(
        ((metric, part) for metric in by_metric for part in prometheus.HOUR_PARTS),
        key=lambda task: (-cost(task[0]), task),
    )
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(
            pool.map(lambda task: client.hour_part(task[0], task[1], *spans[task[0]]), tasks)
        )
        parts: dict[str, list[prometheus.HourPart]] = {}
        for answer in answers:
            parts.setdefault(answer.metric, []).append(answer)

        def assemble(metric: str) -> _Samples:
            groups = prometheus.group_hours(parts[metric], client.base)
            grids = _grids(client, metric, groups)
            return _Samples(client, metric, groups, grids, spans[metric][0])

        fetched = list(pool.map(assemble, sorted(by_metric)))
    result: list[Measured] = []
    for samples in fetched:
        metric_jobs = by_metric[samples.metric]
        say(f"{samples.metric}: {len(samples.groups)} servers, {len(metric_jobs)} instances")
        for job in metric_jobs:
            found = [samples.window(job, w) for w in job.windows]
            result.extend(_gap_rule(job, found))
        if samples.raw_queries:
            say(f"{samples.metric}: raw samples in {samples.raw_queries} queries")
    return result


class _Samples:
    """One metric: aggregates per server and hour, raw samples fetched when needed."""

    def __init__(
        self,
        client: Client,
        metric: str,
        groups: dict[tuple[str, str], GroupHours],
        grids: dict[tuple[str, str], Grid],
        first_end: int,
    ) -> None:
        self.client = client
        self.metric = metric
        self.groups = groups
        self.grids = grids
        self.first_end = first_end
        self.servers_of: dict[str, list[str]] = {}
        for ags, server in sorted(groups):
            self.servers_of.setdefault(ags, []).append(server)
        self.raw_cache: dict[tuple[object, ...], dict[Labels, list[Sample]]] = {}
        self.raw_queries = 0

    def _regular(self, ags: str, server: str, i: int) -> Num | None:
        group, grid = self.groups.get((ags, server)), self.grids.get((ags, server))
        if group is None or grid is None or not on_grid(group, i, grid):
            return None
        return regular(group, i, grid)

    def window(self, job: Job, w: Window) -> _Found:
        if w.full_hour:
            i = (w.end - self.first_end) // HOUR_MS
            if not job.kommune_wide:
                value_ms = self._regular(job.ags, job.instance, i)
                if value_ms is not None:
                    return _Found(value_ms, HOUR_MS, True)
            else:
                found = self._kommune_regular(job, w, i)
                if found is not None:
                    return found
        if not self._reported(job):
            # Not a single sample in the whole range: nothing to read sample by sample.
            # Complete only when nothing had to report (a backup without billable clients).
            return _Found(0, 0, job.kommune_wide and not any(_source_spans(job, w).values()))
        return self._from_samples(job, w)

    def _reported(self, job: Job) -> bool:
        if job.kommune_wide:
            return bool(self.servers_of.get(job.ags))
        return (job.ags, job.instance) in self.groups

    def _kommune_regular(self, job: Job, w: Window, i: int) -> _Found | None:
        """A Kommune-wide metric's full hour from aggregates, when every client server that
        is billable all hour is on its grid (and none is billable only part of it)."""
        spans = _source_spans(job, w)
        whole = [(w.start, w.end)]
        total: Num = 0
        reporting = set()
        for server in self.servers_of.get(job.ags, []):
            own = spans.get(server, whole)
            if not own:
                continue  # a client server that is not billable now counts nothing
            got = self._regular(job.ags, server, i) if own == whole else None
            if got is None:
                return None
            total += got
            reporting.add(server)
        if any(own and server not in reporting for server, own in spans.items()):
            return None  # a client that should report and does not: see the samples
        return _Found(total, HOUR_MS if reporting else 0, True)

    def _from_samples(self, job: Job, w: Window) -> _Found:
        spans = _source_spans(job, w) if job.kommune_wide else {}
        whole = [(w.start, w.end)]
        pieces: dict[str, Piece] = {}  # per source server
        for labels, samples in self._raw(job, w).items():
            server = dict(labels).get("server", "")
            for lo, hi in spans.get(server, whole):
                pieces.setdefault(server, Piece()).add(raw(samples, lo, hi))
        return _combine(job, w, pieces, spans)

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


def _interval(g: GroupHours) -> int | None:
    """The server's usual scrape interval: from the most common count per series and hour,
    when that divides the hour into whole milliseconds and is at most the hold."""
    per_series: Counter[int] = Counter(
        c // m
        for c, m in zip(g.count, g.last_series, strict=True)
        if m > 0 and c > 0 and c % m == 0
    )
    ranked = per_series.most_common(2)
    if not ranked or (len(ranked) == 2 and ranked[0][1] == ranked[1][1]):
        return None  # no evidence, or a tie
    n = ranked[0][0]
    if HOUR_MS % n or HOUR_MS // n > HOLD_MS:
        return None
    return HOUR_MS // n


def _grids(
    client: Client, metric: str, groups: dict[tuple[str, str], GroupHours]
) -> dict[tuple[str, str], Grid]:
    """Each server's grid: its interval from the counts, its phase from the timestamps of its
    series' last samples at the end of its first and its last regular hour (one instant query
    per distinct hour end; most servers share them). Series of one server that disagree, a
    phase that moved between the two, or no regular hour: no grid, every hour of that server
    is read sample by sample."""
    wanted: dict[tuple[str, str], tuple[int, int, int]] = {}
    for key, g in groups.items():
        step = _interval(g)
        if step is None:
            continue
        n = HOUR_MS // step
        regular_hours = [
            i for i, (c, m) in enumerate(zip(g.count, g.last_series, strict=True))
            if m > 0 and c == m * n
        ]  # fmt: skip
        if regular_hours:
            first, last = regular_hours[0], regular_hours[-1]
            wanted[key] = (step, g.first_end + first * HOUR_MS, g.first_end + last * HOUR_MS)
    stamps: dict[int, dict[tuple[str, str], set[int]]] = {}
    for end in sorted({e for _, first, last in wanted.values() for e in (first, last)}):
        per_server: dict[tuple[str, str], set[int]] = {}
        for labels, ts in client.timestamps(metric, end).items():
            named = dict(labels)
            per_server.setdefault((named.get("ags", ""), named.get("server", "")), set()).add(
                end - ts
            )
        stamps[end] = per_server
    grids: dict[tuple[str, str], Grid] = {}
    for key, (step, first, last) in wanted.items():
        lags = stamps[first].get(key, set()) | stamps[last].get(key, set())
        if len(lags) == 1:
            lag = lags.pop()  # how long before the hour's end its last sample came
            if 0 <= lag < step:
                grids[key] = Grid(step, step - lag)
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
