"""The Prometheus query API, read-only: version, retention, per-hour aggregates, raw samples.

Only `/api/v1/status/buildinfo`, `/api/v1/status/runtimeinfo`, `/api/v1/query` and
`/api/v1/query_range`; never recording rules, never `increase()` or `rate()` (they
extrapolate). A Prometheus that does not answer is a missing prerequisite (exit 8); one that
answers something other than its API is an error naming the URL and what came back.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from basisit.errors import BasisItError, PrerequisiteMissing
from basisit.metering.integrate import GroupHours, Sample, value

URL_ENV = "BASISIT_PROMETHEUS_URL"
DEFAULT_PORT = 9390
DEFAULT_URL = f"http://127.0.0.1:{DEFAULT_PORT}"
# A month of a whole fleet is a heavy query on a busy host; a dead one fails at once.
TIMEOUT_S = 300.0
# query_range refuses more than 11,000 points per series; a longer import is cut into pieces.
MAX_STEPS = 10_000
HOUR_MS = 3_600_000
_WINDOW = f"{HOUR_MS - 1}ms"  # (start, end]: Prometheus 2.x range selectors include both ends
_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


class PrometheusError(BasisItError):
    """Prometheus answered, but not what its query API answers (or refused the query)."""


def url() -> str:
    """BASISIT_PROMETHEUS_URL, default the suite's own Prometheus on 127.0.0.1:9390."""
    return (os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")


GROUP = "ags, server"  # the target labels: Kommune and server (= instance)


# The three per-hour queries of a metric, each one pass over its samples.
HOUR_PARTS = ("total", "count", "last")


def hour_query(metric: str, part: str) -> str:
    """One query_range expression giving, at each hour's end, one aggregate of the hour
    (start, end]: `total` and `count` (sum and count over time, summed per server) read the
    samples; `last` is each series' value at the end, summed and counted per server here, as
    a `sum by` and a `count by` would be two more passes over the range. They are separate
    queries, not one joined with `or`: in Prometheus 2.42 the join and its `label_replace`
    cost a third more than the three alone, and separate ones spread over both cores.
    `timestamp()` is not among them: it re-reads every block of the range at every step
    (minutes for a month); the grid's phase is read at single instants (`timestamps`)."""
    if not _NAME.match(metric):
        raise BasisItError(f"{metric!r} is not a Prometheus metric name")
    if part == "total":
        return f"sum by ({GROUP}) (sum_over_time({metric}[{_WINDOW}]))"
    if part == "count":
        return f"sum by ({GROUP}) (count_over_time({metric}[{_WINDOW}]))"
    if part == "last":
        return metric
    raise ValueError(f"unknown hour aggregate {part!r}")


def raw_query(metric: str, matchers: dict[str, str], range_ms: int) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(matchers.items()))
    return f"{metric}{{{inner}}}[{range_ms}ms]"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


Labels = tuple[tuple[str, str], ...]


def labels_of(metric: dict[str, str]) -> Labels:
    return tuple(sorted((k, v) for k, v in metric.items() if k != "__name__"))


@dataclass
class Client:
    base: str
    timeout: float = TIMEOUT_S
    # Every expression sent, for the import run's record.
    queries: list[str] = field(default_factory=list)
    opener: Callable[..., Any] = urllib.request.urlopen

    def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        target = f"{self.base}{path}"
        data = urllib.parse.urlencode(params).encode() if params is not None else None
        request = urllib.request.Request(target, data=data)  # POST when there are params
        try:
            with self.opener(request, timeout=self.timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            detail = _error_text(exc.read())
            raise PrometheusError(
                f"Prometheus at {self.base} refused {path} (HTTP {exc.code}): {detail}"
            ) from None
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise PrerequisiteMissing(
                f"Prometheus at {self.base} does not answer ({reason}); start it with "
                f"`basisit monitoring up`, or name another with --prometheus or {URL_ENV}"
            ) from None
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise PrometheusError(
                f"{target} did not answer with Prometheus' JSON API (got {body[:80]!r}); "
                "is that URL a Prometheus?"
            ) from None
        if not isinstance(doc, dict) or doc.get("status") != "success" or "data" not in doc:
            raise PrometheusError(
                f"{target} did not answer with Prometheus' JSON API "
                f"(status {doc.get('status') if isinstance(doc, dict) else type(doc).__name__})"
            )
        return doc["data"]

    def version(self) -> str:
        data = self._get("/api/v1/status/buildinfo")
        if not isinstance(data, dict) or not isinstance(data.get("version"), str):
            raise PrometheusError(f"{self.base}: buildinfo without a version")
        return str(data["version"])

    def retention(self) -> str:
        """The time retention as Prometheus states it (e.g. `15d`, `100y`, `10GiB or 15d`)."""
        data = self._get("/api/v1/status/runtimeinfo")
        return str(data.get("storageRetention", "")) if isinstance(data, dict) else ""

    def hour_part(self, metric: str, part: str, first_end: int, last_end: int) -> HourPart:
        """One of HOUR_PARTS at every hour ending at first_end, first_end + 1 h, ...,
        last_end (ms, on hour boundaries): the answer's series as they came."""
        expr = hour_query(metric, part)
        self.queries.append(expr)
        items: list[dict[str, Any]] = []
        for lo, hi in _chunks(first_end, last_end):
            data = self._get(
                "/api/v1/query_range",
                {"query": expr, "start": _sec(lo), "end": _sec(hi), "step": "3600"},
            )
            items.extend(_matrix(data, self.base))
        return HourPart(metric, part, first_end, last_end, items)

    def timestamps(self, metric: str, at: int) -> dict[Labels, int]:
        """The timestamp (ms) of each series' last sample at or before `at` (within 5 min)."""
        expr = f"timestamp({metric})"
        self.queries.append(expr + " (at single instants: the scrape grid's phase)")
        data = self._get("/api/v1/query", {"query": expr, "time": _sec(at)})
        if not isinstance(data, dict) or data.get("resultType") != "vector":
            raise PrometheusError(f"{self.base}: timestamp() did not return a vector")
        result = data.get("result")
        if not isinstance(result, list):
            raise PrometheusError(f"{self.base}: a query answer without a list of series")
        found: dict[Labels, int] = {}
        for item in result:
            try:
                found[labels_of(item["metric"])] = round(float(item["value"][1]) * 1000)
            except (KeyError, IndexError, TypeError, ValueError):
                raise PrometheusError(f"{self.base}: a malformed sample in {expr}") from None
        return found

    def raw(self, metric: str, matchers: dict[str, str], end: int, range_ms: int
            ) -> dict[Labels, list[Sample]]:  # fmt: skip
        """Raw samples of the matching series in [end − range, end]."""
        expr = raw_query(metric, matchers, range_ms)
        self.queries.append(f"{metric}{{...}}[...] (raw samples of hours not on the grid)")
        data = self._get("/api/v1/query", {"query": expr, "time": _sec(end)})
        if not isinstance(data, dict) or data.get("resultType") != "matrix":
            raise PrometheusError(f"{self.base}: raw query did not return a matrix")
        result: dict[Labels, list[Sample]] = {}
        for item in _items(data, self.base):
            samples: list[Sample] = []
            for ts, text in item["values"]:
                val = value(text)
                if val is not None:
                    samples.append((round(float(ts) * 1000), val))
            result[labels_of(item["metric"])] = samples
        return result


def _sec(ms: int) -> str:
    return f"{ms / 1000:.3f}"


def _chunks(first: int, last: int) -> Iterator[tuple[int, int]]:
    at = first
    while at <= last:
        hi = min(at + (MAX_STEPS - 1) * HOUR_MS, last)
        yield at, hi
        at = hi + HOUR_MS


def _error_text(body: bytes) -> str:
    try:
        doc = json.loads(body)
        return str(doc.get("error") or doc)[:300]
    except (ValueError, UnicodeDecodeError, AttributeError):
        return repr(body[:120])


def _items(data: Any, base: str) -> list[dict[str, Any]]:
    result = data.get("result") if isinstance(data, dict) else None
    if not isinstance(result, list) or not all(
        isinstance(i, dict) and isinstance(i.get("metric"), dict)
        and isinstance(i.get("values"), list) for i in result
    ):  # fmt: skip
        raise PrometheusError(f"{base}: a query answer without a list of series")
    return result


def _matrix(data: Any, base: str) -> list[dict[str, Any]]:
    if not isinstance(data, dict) or data.get("resultType") != "matrix":
        raise PrometheusError(f"{base}: query_range did not return a matrix")
    return _items(data, base)


@dataclass(frozen=True)
class HourPart:
    """The answer to one `hour_query` over the hours ending first_end ... last_end."""

    metric: str
    part: str
    first_end: int
    last_end: int
    items: list[dict[str, Any]]


def group_hours(parts: list[HourPart], base: str) -> dict[tuple[str, str], GroupHours]:
    """Per (AGS, server), the aggregates of every hour of the parts (one metric, one range);
    the first hour carries its values into the second."""
    groups: dict[tuple[str, str], GroupHours] = {}
    for got in parts:
        steps = (got.last_end - got.first_end) // HOUR_MS + 1
        for item in got.items:
            labels = item["metric"]
            key = (str(labels.get("ags", "")), str(labels.get("server", "")))
            group = groups.get(key)
            if group is None:
                group = groups[key] = GroupHours.empty(got.first_end, steps)
            _fill(group, got.part, item["values"], base)
    return groups


def _fill(group: GroupHours, part: str, values: list[Any], base: str) -> None:
    """One aggregate's points into the group's lists, by hour index; `last` points are one
    series' and add up (a NaN in any series: no value for that hour, never on the grid)."""
    first = group.first_end / 1000
    try:
        if part == "count":
            for ts, text in values:
                group.count[round((ts - first) / 3600)] = int(float(text))
        elif part == "total":
            for ts, text in values:
                group.total[round((ts - first) / 3600)] = value(text)
        elif part == "last":
            last, series = group.last, group.last_series
            for ts, text in values:
                i = round((ts - first) / 3600)
                got, before = value(text), last[i]
                if series[i] == 0:
                    last[i] = got
                elif before is not None and got is not None:
                    last[i] = before + got
                else:
                    last[i] = None
                series[i] += 1
    except (TypeError, ValueError, IndexError):
        raise PrometheusError(f"{base}: a malformed point in a query_range answer") from None
