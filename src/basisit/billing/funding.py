"""Start-up funding (Anschubfinanzierung) on the billed months (the rules: docs/billing.md).

A programme pays, in each month of its period, its year's rate of each Kommune's eligible
lines (the cents billed for its services, and the overhead share when it covers that), at
most what is left of the Kommune's cap and, over all Kommunen, what is left of its budget.
Exact until each Kommune's claim is rounded half up once; when the rounded claims exceed
what is left of the budget, the budget runs out that month and what is left is split pro
rata over the claims by largest remainder, so that it is used to the cent and no more. A
Kommune's subsidy is then spread over its eligible lines by largest remainder.

The remaining budget and caps depend on every earlier month of the period, so the months
are funded in order from the programme's first one: the subsidy of a month is a function of
the ledger up to that month, recomputed like the bills themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction

from basisit.billing import money
from basisit.billing.config import Programme
from basisit.billing.model import KommuneBill, MonthBill, ProgrammeMonth
from basisit.catalog import Catalog

OVERHEAD = "overhead"  # the overhead share's place among the eligible items


@dataclass
class _Ledger:
    """What a programme has paid so far, in all and per Kommune."""

    used: int = 0
    by_ags: dict[str, int] = field(default_factory=dict)

    def of(self, ags: str) -> int:
        return self.by_ags.get(ags, 0)


def unknown_services(programmes: Sequence[Programme], catalog: Catalog) -> list[str]:
    """A problem for each programme service the catalog does not have."""
    return [
        f"billing.yaml: funding {p.id}: service {s!r} is not in the catalog"
        for p in programmes for s in sorted(p.services) if catalog.service(s) is None
    ]  # fmt: skip


def fund(bills: Sequence[MonthBill], programmes: Sequence[Programme]) -> list[MonthBill]:
    """The bills with each programme's subsidy on their lines. `bills`: consecutive billed
    months, oldest first, starting no later than the first month of every programme that
    covers one of them (a month without usage may be missing: it paid nothing)."""
    months = [b.month for b in bills]
    if months != sorted(set(months)):
        raise ValueError("funding needs each month once, oldest first")
    paid = {p.id: _Ledger() for p in programmes}
    funded = []
    for bill in bills:
        uses = []
        for p in programmes:
            if p.covers(bill.month):
                bill, use = _month(bill, p, paid[p.id])
                uses.append(use)
        funded.append(replace(bill, funding=bill.funding + tuple(uses)))
    for bill in funded:
        problems = bill.reconciles()
        if problems:  # a bug, never bad input
            raise AssertionError("; ".join(problems))
    return funded


def _eligible(k: KommuneBill, p: Programme) -> list[tuple[int, str, int]]:
    """(index, service, cents not yet funded) of each item of `k` that `p` funds; the
    overhead share has index -1. An earlier programme's subsidy is no longer eligible."""
    items = [
        (i, line.service_id, line.cents - line.subsidy_cents)
        for i, line in enumerate(k.lines) if line.service_id in p.services
    ]  # fmt: skip
    if p.overhead:
        items.append((-1, OVERHEAD, k.overhead_cents - k.overhead_subsidy_cents))
    return [item for item in items if item[2] > 0]


def _month(bill: MonthBill, p: Programme, ledger: _Ledger) -> tuple[MonthBill, ProgrammeMonth]:
    rate = p.rate_of(int(bill.month[:4]))
    items = {k.ags: _eligible(k, p) for k in bill.kommunen}
    claims: dict[str, Fraction] = {}
    for k in bill.kommunen:  # AGS order: ties of the largest remainder go to the smaller AGS
        claim = rate * sum(cents for _i, _s, cents in items[k.ags])
        if p.cap_cent is not None:
            claim = min(claim, Fraction(p.cap_cent - ledger.of(k.ags)))
        if claim > 0:
            claims[k.ags] = claim
    left = p.budget_cent - ledger.used
    rounded = {ags: money.round_half_up(c) for ags, c in claims.items()}
    exhausted = sum(rounded.values()) > left
    if exhausted:
        # Scaled to what is left when the claims exceed it; as they are when only their
        # rounding does. Either way each grant stays within its claim's ceiling (and cap).
        total = sum(claims.values(), Fraction(0))
        scale = min(Fraction(1), left / total)
        parts = money.largest_remainder(left, [c * scale for c in claims.values()])
        grants = dict(zip(claims, parts, strict=True))
    else:
        grants = rounded
    by_service: dict[str, int] = {}
    kommunen = []
    for k in bill.kommunen:
        grant = grants.get(k.ags, 0)
        if grant:
            k = _spread(k, p, grant, items[k.ags], by_service)
            ledger.used += grant
            ledger.by_ags[k.ags] = ledger.of(k.ags) + grant
        kommunen.append(k)
    capped = tuple(
        ags for ags, grant in grants.items()
        if grant and p.cap_cent is not None and ledger.of(ags) >= p.cap_cent
    )  # fmt: skip
    use = ProgrammeMonth(
        id=p.id, name=p.name, month=bill.month, rate=rate, budget_cents=p.budget_cent,
        used_before_cents=ledger.used - sum(grants.values()),
        by_ags=tuple((ags, c) for ags, c in grants.items() if c),
        by_service=tuple(sorted(by_service.items())), exhausted=exhausted, capped=capped,
    )  # fmt: skip
    return replace(bill, kommunen=tuple(kommunen)), use


def _spread(
    k: KommuneBill,
    p: Programme,
    grant: int,
    items: list[tuple[int, str, int]],
    by_service: dict[str, int],
) -> KommuneBill:
    """`grant` cents over the eligible items in proportion to their cents: no item gets
    more than it costs, as the grant is at most its rate (≤ 1) of their sum."""
    total = sum(cents for _i, _s, cents in items)
    parts = money.largest_remainder(grant, [Fraction(grant * cents, total) for *_x, cents in items])
    lines = list(k.lines)
    overhead, overhead_by = k.overhead_subsidy_cents, k.overhead_funded_by
    for (index, service, _cents), part in zip(items, parts, strict=True):
        if not part:
            continue
        by_service[service] = by_service.get(service, 0) + part
        if index < 0:
            overhead, overhead_by = overhead + part, (*overhead_by, p.id)
        else:
            line = lines[index]
            lines[index] = replace(line, subsidy_cents=line.subsidy_cents + part,
                                   funded_by=(*line.funded_by, p.id))  # fmt: skip
    return replace(k, lines=tuple(lines), overhead_subsidy_cents=overhead,
                   overhead_funded_by=overhead_by)  # fmt: skip


@dataclass(frozen=True)
class Outlook:
    """A programme so far and at its current rate: what each month used, what is left, and
    when the budget runs out (docs/billing.md, "Start-up funding")."""

    programme: Programme
    months: tuple[ProgrammeMonth, ...]  # the billed months of its period, oldest first
    provisional: tuple[str, ...]  # those of them not final yet (the running month)
    base_cents: Fraction  # eligible cost per month the forecast assumes (before the rate)
    projection: tuple[tuple[str, int], ...]  # (month, forecast use) after the last billed one
    runs_out: str | None  # the month the budget runs out in at this rate; None: it lasts

    @property
    def used_cents(self) -> int:
        return sum(m.used_cents for m in self.months)

    @property
    def left_cents(self) -> int:
        return self.programme.budget_cent - self.used_cents

    @property
    def left_at_end_cents(self) -> int:
        """What the forecast leaves when the period ends (0 when it runs out before)."""
        return max(0, self.left_cents - sum(c for _m, c in self.projection))


FORECAST_MONTHS = 3  # the current rate: the mean of the last three final months


def _next_month(month: str) -> str:
    year, mon = int(month[:4]), int(month[5:])
    return f"{year + mon // 12}-{mon % 12 + 1:02d}"


def outlook(funded: Sequence[MonthBill], p: Programme) -> Outlook:
    """`p` over the funded bills (fund()'s result): the months it paid, and a forecast. The
    current rate is the mean eligible cost of the last final months (what it paid ÷ that
    month's rate; a capped or exhausted month counts what it paid); each later month of the
    period is forecast at its own year's rate, so a lower rate next year stretches the
    budget. Caps are not forecast: the forecast is the budget's upper bound of use."""
    uses = [(b, u) for b in funded for u in b.funding if u.id == p.id]
    final = [(b, u) for b, u in uses if not b.provisional][-FORECAST_MONTHS:]
    base = Fraction(0)
    if final:
        base = sum((Fraction(u.used_cents) / u.rate for _b, u in final if u.rate),
                   Fraction(0)) / len(final)  # fmt: skip
    last = uses[-1][0].month if uses else None
    month = _next_month(last) if last else p.first_month
    left = p.budget_cent - sum(u.used_cents for _b, u in uses)
    projection, runs_out = [], None
    if left <= 0 and uses:
        runs_out = next(b.month for b, u in uses if u.left_cents <= 0)
    while month <= p.last_month and base:
        use = money.round_half_up(base * p.rate_of(int(month[:4])))
        projection.append((month, min(use, max(left, 0))))
        if runs_out is None and use >= left:
            runs_out = month
        left -= use
        if left <= 0:
            break
        month = _next_month(month)
    return Outlook(
        programme=p, months=tuple(u for _b, u in uses),
        provisional=tuple(b.month for b, _u in uses if b.provisional), base_cents=base,
        projection=tuple(projection), runs_out=runs_out,
    )  # fmt: skip
