"""Time for the ledger: UTC hours, Berlin calendar months, ISO 8601 input.

Every ledger row is one UTC hour. A Berlin month is a whole number of UTC hours (Germany's
offsets are whole hours), so a month with the October change has one hour more and March one
less; the usage view and billing prorate by those hours, never by a fixed 730.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from zoneinfo import ZoneInfo

from basisit.errors import ValidationFailed

BERLIN = ZoneInfo("Europe/Berlin")
HOUR = dt.timedelta(hours=1)
HOUR_S = 3600
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def utc(value: dt.datetime) -> dt.datetime:
    """Aware UTC; a naive value is UTC (as SQLite hands back a DateTime(timezone=True))."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def floor_hour(value: dt.datetime) -> dt.datetime:
    return utc(value).replace(minute=0, second=0, microsecond=0)


def ceil_hour(value: dt.datetime) -> dt.datetime:
    down = floor_hour(value)
    return down if down == utc(value) else down + HOUR


def hours(start: dt.datetime, end: dt.datetime) -> Iterator[dt.datetime]:
    """The starts of the UTC hours in [start, end) (both on hour boundaries)."""
    at = floor_hour(start)
    while at < end:
        yield at
        at += HOUR


def parse_instant(text: str, what: str = "time") -> dt.datetime:
    """ISO 8601 (`2026-10-01`, `2026-10-01T14:00`, `...+02:00`, `...Z`) as aware UTC.

    Without an offset the time is Berlin's, as people in the Saarland read it."""
    raw = text.strip()
    try:
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00") if raw.endswith("Z") else raw)
    except ValueError:
        raise ValidationFailed(
            f"{what} {text!r} is not an ISO 8601 date or time "
            "(e.g. 2026-10-01, 2026-10-01T14:00 or 2026-10-01T12:00Z)"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=BERLIN)
    return value.astimezone(dt.UTC)


def month_range(month: str) -> tuple[dt.datetime, dt.datetime]:
    """`2026-10` -> the UTC instants of Berlin's 1 October 00:00 and 1 November 00:00."""
    m = _MONTH.match(month.strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise ValidationFailed(f"month {month!r} is not YYYY-MM (e.g. 2026-10)")
    year, mon = int(m.group(1)), int(m.group(2))
    start = dt.datetime(year, mon, 1, tzinfo=BERLIN)
    nxt = dt.datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=BERLIN)
    return start.astimezone(dt.UTC), nxt.astimezone(dt.UTC)


def month_of(value: dt.datetime) -> str:
    """The Berlin month (`2026-10`) an instant lies in: the month whose sums an hour adds to."""
    local = utc(value).astimezone(BERLIN)
    return f"{local.year:04d}-{local.month:02d}"


def berlin_day(value: dt.datetime) -> dt.date:
    """The Berlin calendar day of an instant (the catalog's prices change on Berlin days)."""
    return utc(value).astimezone(BERLIN).date()


def iso(value: dt.datetime) -> str:
    """`2026-10-01T00:00:00Z`: the one way the ledger writes an instant."""
    return utc(value).replace(microsecond=0).isoformat().replace("+00:00", "Z")


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MS = dt.timedelta(milliseconds=1)


def to_ms(value: dt.datetime) -> int:
    """Milliseconds since the epoch, exactly (Prometheus' timestamps)."""
    return (utc(value) - _EPOCH) // _MS


def from_ms(ms: int) -> dt.datetime:
    return _EPOCH + ms * _MS
