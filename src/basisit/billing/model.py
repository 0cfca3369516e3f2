"""What billing returns: a month's lines per Kommune, its overhead share and the totals."""

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

    @property
    def total_cents(self) -> int:
        return self.direct_cents + self.overhead_cents

    def by_service(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for line in self.lines:
            found[line.service_name] = found.get(line.service_name, 0) + line.cents
        return found


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
        return problems
