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
        id=p.id, name=p.name, rate=rate, budget_cents=p.budget_cent,
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
