"""What billing returns: a month's lines per Kommune, its overhead share, the start-up
funding's subsidy on each, and the totals."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from basisit.billing.config import Key

BASE = "base"
MONITORING = "monitoring"
METERED = "metered"
ONE_TIME = "one_time"
KINDS = (BASE, MONITORING, METERED, ONE_TIME)


@dataclass(frozen=True)
class Line:
    """One direct charge of one instance: its quantity in the catalog's unit, the price valid
    that month, the exact amount and the whole cents it was given."""

    kind: str
    instance: str
    service_id: str
    service_name: str
    plan: str
    plan_name: str
    description: str  # German, as finance reads it
    quantity: Fraction  # in `unit`: months (pro rata), GiB-Monat..., Einrichtung
    unit: str
    unit_price: Decimal  # EUR per unit, valid that month
    included: Fraction  # the plan's included quantity, prorated (metered lines)
    exact: Fraction  # EUR
    cents: int
    seconds: int  # billable seconds of the plan in the month
    request_ids: tuple[int, ...]
    # Traceability: the ledger lines (contract 3) this charge was computed from.
    ledger_unit: str
    ledger_quantity_base: int
    gap_hours: int = 0
    no_measurement_hours: int = 0
    provisional_hours: int = 0
    # The start-up funding's part of `cents` (basisit.billing.funding), and its programmes.
    subsidy_cents: int = 0
    funded_by: tuple[str, ...] = ()

    @property
    def payable_cents(self) -> int:
        return self.cents - self.subsidy_cents

    @property
    def flagged(self) -> str:
        """`geschätzt, 3 Std. Messlücke` and the like; empty when nothing is flagged."""
        notes = []
        if self.gap_hours:
            notes.append(f"geschätzt, {self.gap_hours} Std. Messlücke")
        if self.no_measurement_hours:
            notes.append(f"noch keine Messung ({self.no_measurement_hours} Std.)")
        if self.provisional_hours:
            notes.append(f"vorläufig ({self.provisional_hours} Std.)")
        return "; ".join(notes)


@dataclass(frozen=True)
class KommuneBill:
    ags: str
    name: str
    typ: str
    einwohner: int
    participation: Fraction  # the month's share of seconds with a billable instance
    weight: Fraction  # its weight in the overhead key (0 when not participating)
    lines: tuple[Line, ...]
    direct_exact: Fraction  # EUR
    direct_cents: int  # direct_exact rounded half up; the lines' cents add up to it
    overhead_exact: Fraction  # EUR, its exact share of the pool
    overhead_cents: int
    overhead_subsidy_cents: int = 0
    overhead_funded_by: tuple[str, ...] = ()

    @property
    def total_cents(self) -> int:
        """The cost: direct charges and overhead share, before any subsidy."""
        return self.direct_cents + self.overhead_cents

    @property
    def subsidy_cents(self) -> int:
        return sum(line.subsidy_cents for line in self.lines) + self.overhead_subsidy_cents

    @property
    def payable_cents(self) -> int:
        """What the Kommune pays: its cost less the start-up funding's subsidy."""
        return self.total_cents - self.subsidy_cents

    def by_service(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for line in self.lines:
            found[line.service_name] = found.get(line.service_name, 0) + line.cents
        return found


@dataclass(frozen=True)
class ProgrammeMonth:
    """One funding programme in one month: what it had, what it paid, to whom and for what."""

    id: str
    name: str
    month: str  # YYYY-MM
    rate: Fraction  # the month's year's rate
    budget_cents: int
    used_before_cents: int  # paid in the programme's earlier months
    by_ags: tuple[tuple[str, int], ...]  # paid this month, per Kommune (AGS order)
    by_service: tuple[tuple[str, int], ...]  # per catalog service id, "overhead" for shares
    exhausted: bool  # the budget ran out this month: what was left was split pro rata
    capped: tuple[str, ...]  # Kommunen that reached their cap this month

    @property
    def used_cents(self) -> int:
        return sum(c for _a, c in self.by_ags)

    @property
    def left_cents(self) -> int:
        return self.budget_cents - self.used_before_cents - self.used_cents


@dataclass(frozen=True)
class MonthBill:
    month: str  # YYYY-MM
    start: dt.datetime  # UTC
    end: dt.datetime
    hours: int
    provisional: bool  # the running month, or hours not yet final: "vorläufig"
    key: Key
    method_used: str  # the key's method, or "default" when usage weights were all zero
    pool_cents: int  # the month's overhead
    unallocated_cents: int  # the pool when nobody participated ("nicht verteilt")
    kommunen: tuple[KommuneBill, ...]
    funding: tuple[ProgrammeMonth, ...] = ()  # the programmes that covered the month

    @property
    def seconds(self) -> int:
        return self.hours * 3600

    @property
    def total_cents(self) -> int:
        return sum(k.total_cents for k in self.kommunen)

    @property
    def direct_cents(self) -> int:
        return sum(k.direct_cents for k in self.kommunen)

    @property
    def overhead_cents(self) -> int:
        return sum(k.overhead_cents for k in self.kommunen)

    @property
    def subsidy_cents(self) -> int:
        return sum(k.subsidy_cents for k in self.kommunen)

    @property
    def payable_cents(self) -> int:
        return sum(k.payable_cents for k in self.kommunen)

    def reconciles(self) -> list[str]:
        """Every sum that must hold, checked: empty when all do."""
        problems = []
        for k in self.kommunen:
            if sum(line.cents for line in k.lines) != k.direct_cents:
                problems.append(f"{k.ags}: lines do not add up to its direct charges")
        if self.overhead_cents + self.unallocated_cents != self.pool_cents:
            problems.append("the overhead shares do not add up to the month's overhead")
        if self.direct_cents + self.overhead_cents != self.total_cents:
            problems.append("the Kommune totals do not add up to the grand total")
        for k in self.kommunen:
            over = [ln.instance for ln in k.lines if not 0 <= ln.subsidy_cents <= ln.cents]
            if over or not 0 <= k.overhead_subsidy_cents <= k.overhead_cents:
                problems.append(f"{k.ags}: a subsidy is negative or exceeds its line")
        paid: dict[str, int] = {}
        for p in self.funding:
            for ags, cents in p.by_ags:
                paid[ags] = paid.get(ags, 0) + cents
            if sum(c for _s, c in p.by_service) != p.used_cents or p.left_cents < 0:
                problems.append(f"funding {p.id}: its payments do not add up within its budget")
        if any(paid.get(k.ags, 0) != k.subsidy_cents for k in self.kommunen):
            problems.append("the subsidies on the lines do not add up to the programmes' payments")
        if self.payable_cents + self.subsidy_cents != self.total_cents:
            problems.append("payable + subsidy do not add up to the grand total")
        return problems
