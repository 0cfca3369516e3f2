"""Billable time from the request workflow's transitions (pure).

An instance is billable from the moment one of its create or change requests first entered
`active` until its decommission request entered `decommissioned`. A change in progress or a
failed change does not interrupt it (only those two transitions matter); a create that never
reached `active` is not billable. The plan in force at an instant is that of the newest request
(highest id) of the instance that had reached `active` by then. An instance decommissioned and
created again under the same name is billable again from the new request's activation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

ACTIVE = "active"
DECOMMISSIONED = "decommissioned"


@dataclass(frozen=True)
class RequestRecord:
    """What the ledger needs of a request (store.models.Request)."""

    id: int
    ags: str
    instance: str
    kind: str  # create | change | decommission
    service_id: str
    plan: str
    one_time_cent: int | None = None


@dataclass(frozen=True)
class TransitionRecord:
    """One audit-log transition of a request (store.models.AuditEvent)."""

    request_id: int
    at: dt.datetime
    to_state: str


@dataclass(frozen=True)
class Segment:
    """A stretch of billable time of one instance under one request's plan: [start, end);
    end None while it lasts."""

    ags: str
    instance: str
    service_id: str
    plan: str
    request_id: int
    start: dt.datetime
    end: dt.datetime | None

    def overlap_s(self, start: dt.datetime, end: dt.datetime) -> int:
        """Whole seconds of [start, end) inside this segment."""
        lo = max(self.start, start)
        hi = end if self.end is None else min(self.end, end)
        return max(int((hi - lo).total_seconds()), 0)


@dataclass(frozen=True)
class Activation:
    """The hour's one-time fee: a request first became active (with its quoted amount)."""

    request: RequestRecord
    at: dt.datetime


def first_entries(transitions: Iterable[TransitionRecord], state: str) -> dict[int, dt.datetime]:
    """request id -> when it first entered `state`."""
    first: dict[int, dt.datetime] = {}
    for t in sorted(transitions, key=lambda t: t.at):
        if t.to_state == state and t.request_id not in first:
            first[t.request_id] = t.at
    return first


def segments(
    requests: Iterable[RequestRecord], transitions: Iterable[TransitionRecord]
) -> list[Segment]:
    """Billable segments of every instance, sorted by AGS, instance and start."""
    reqs = {r.id: r for r in requests}
    moves = [t for t in transitions if t.request_id in reqs]
    activated = first_entries(moves, ACTIVE)
    removed = first_entries(moves, DECOMMISSIONED)
    # (time, order, request): at one instant a decommission is taken before an activation
    # so that a re-create in the same second starts a new stretch.
    events: dict[tuple[str, str], list[tuple[dt.datetime, int, RequestRecord]]] = {}
    for rid, at in activated.items():
        req = reqs[rid]
        if req.kind in ("create", "change"):
            events.setdefault((req.ags, req.instance), []).append((at, 1, req))
    for rid, at in removed.items():
        req = reqs[rid]
        if req.kind == "decommission":
            events.setdefault((req.ags, req.instance), []).append((at, 0, req))
    result: list[Segment] = []
    for _key, evs in sorted(events.items()):
        current: RequestRecord | None = None  # the request in force while billable
        since: dt.datetime | None = None
        newest_id = 0  # newest request that had reached active (in this stretch or before)
        for at, order, req in sorted(evs, key=lambda e: (e[0], e[1], e[2].id)):
            if order == 0:  # decommissioned
                if current is not None and since is not None:
                    result.append(_segment(current, since, at))
                current, since = None, None
                continue
            if current is not None and req.id < newest_id:
                continue  # an older request activated late: the newer plan stays in force
            newest_id = max(newest_id, req.id)
            if current is not None and since is not None and since < at:
                result.append(_segment(current, since, at))
            current, since = req, at
        if current is not None and since is not None:
            result.append(_segment(current, since, None))
    return [s for s in result if s.end is None or s.end > s.start]


def _segment(req: RequestRecord, start: dt.datetime, end: dt.datetime | None) -> Segment:
    return Segment(req.ags, req.instance, req.service_id, req.plan, req.id, start, end)


def activations(
    requests: Iterable[RequestRecord], transitions: Iterable[TransitionRecord]
) -> list[Activation]:
    """Create and change requests with a quoted one-time amount, at their first activation."""
    reqs = {r.id: r for r in requests}
    first = first_entries((t for t in transitions if t.request_id in reqs), ACTIVE)
    found = [
        Activation(reqs[rid], at)
        for rid, at in first.items()
        if reqs[rid].kind in ("create", "change") and (reqs[rid].one_time_cent or 0) > 0
    ]
    return sorted(found, key=lambda a: (a.at, a.request.id))
