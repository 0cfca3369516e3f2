"""German number, money and date formats of the reports (`1.234,56 €`, `31.10.2026`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

from basisit.billing import money
from basisit.billing.model import KommuneBill, MonthBill, ProgrammeMonth

BERLIN = ZoneInfo("Europe/Berlin")
MONTHS = ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August",
          "September", "Oktober", "November", "Dezember")  # fmt: skip
KIND_DE = {
    "base": "Grundpreis",
    "monitoring": "Überwachung je Server",
    "metered": "Verbrauch",
    "one_time": "Einrichtung",
}


def number(value: Decimal | Fraction | int, places: int = 2) -> str:
    """`1234.5` -> `1.234,50`."""
    amount = value if isinstance(value, Decimal) else money.to_decimal(Fraction(value), places)
    text = f"{amount.quantize(Decimal(1).scaleb(-places)):,.{places}f}"
    return text.replace(",", "\0").replace(".", ",").replace("\0", ".")


def euro_cents(cents: int) -> str:
    """`123456` -> `1.234,56 €`."""
    return f"{number(money.euro(cents))} €"


def euro(amount: Decimal) -> str:
    return f"{number(amount)} €"


def percent(value: Fraction, places: int = 1) -> str:
    return f"{number(value * 100, places)} %"


def date(value: dt.datetime | dt.date) -> str:
    """The Berlin calendar day: `31.10.2026`."""
    if isinstance(value, dt.datetime):
        value = value.astimezone(BERLIN).date()
    return value.strftime("%d.%m.%Y")


def month_name(month: str) -> str:
    """`2026-10` -> `Oktober 2026`."""
    year, mon = month.split("-")
    return f"{MONTHS[int(mon) - 1]} {year}"


def period(bill: MonthBill) -> str:
    """`01.10.2026 – 31.10.2026`: the month's first and last Berlin day."""
    last = bill.end.astimezone(BERLIN).date() - dt.timedelta(days=1)
    return f"{date(bill.start)} – {date(last)}"


def funding_note(p: ProgrammeMonth) -> str:
    """What finance should know of a programme's month: budget used up, caps reached."""
    notes = []
    if p.exhausted:
        notes.append("Budget in diesem Monat ausgeschöpft: der Rest anteilig verteilt")
    if p.capped:
        notes.append(f"Höchstbetrag je Kommune erreicht: {', '.join(p.capped)}")
    return "; ".join(notes)


@dataclass(frozen=True)
class Report:
    """What every format renders: the month, optionally one Kommune, the Leitweg-IDs, and the
    month before (for the month-over-month chart) when the ledger has it."""

    bill: MonthBill
    ags: str | None = None
    leitweg: dict[str, str] = field(default_factory=dict)
    previous: MonthBill | None = None

    @property
    def kommunen(self) -> tuple[KommuneBill, ...]:
        if self.ags is None:
            return self.bill.kommunen
        return tuple(k for k in self.bill.kommunen if k.ags == self.ags)

    @property
    def title(self) -> str:
        what = "Kostenaufteilung" if self.ags is None else "Kostenaufstellung"
        status = " (vorläufig)" if self.bill.provisional else ""
        return f"{what} Basis-IT {month_name(self.bill.month)}{status}"
