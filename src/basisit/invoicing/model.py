"""An e-invoice as data: parties, lines and the totals EN 16931 defines, in cents.

Amounts are whole cents from billing (basisit.billing: each line already rounded and spread
so that a Kommune's lines add up to its total). The one rounding left is VAT: per category
on the sum of the line net amounts, half up (EN 16931, BR-CO-17 / BR-S-9).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

INVOICE = "380"
CREDIT_NOTE = "381"
STANDARD = "S"
EXEMPT = "E"


@dataclass(frozen=True)
class Party:
    name: str
    street: str
    postcode: str
    town: str
    country: str
    # The electronic address (BT-34 / BT-49) and its scheme: EM for e-mail, 0204 for a
    # Leitweg-ID (the buyer's, where a German public body receives e-invoices).
    address_id: str
    address_scheme: str
    vat_id: str | None = None
    tax_number: str | None = None


@dataclass(frozen=True)
class Contact:
    name: str
    phone: str
    email: str


@dataclass(frozen=True)
class InvoiceLine:
    line_id: str
    name: str  # what was delivered, German
    product_id: str  # the catalog's service, plan and kind: traceable to the price
    note: str  # the Nachweis: instance, quantity and unit price, ledger unit, requests
    net_cent: int  # BT-131, after the allowance
    allowance_cent: int = 0  # e.g. the start-up funding's share (BG-27)
    allowance_reason: str | None = None

    @property
    def price_cent(self) -> int:
        """The item net price for a quantity of 1 (BT-146): net amount + allowance."""
        return self.net_cent + self.allowance_cent


@dataclass(frozen=True)
class Invoice:
    number: str
    type_code: str  # 380 invoice, 381 credit note
    issue_date: dt.date
    due_date: dt.date
    period_start: dt.date  # the billed Berlin month, first and last day
    period_end: dt.date
    buyer_reference: str  # the Kommune's Leitweg-ID (BT-10)
    seller: Party
    seller_contact: Contact
    buyer: Party
    lines: tuple[InvoiceLine, ...]
    vat_category: str  # S or E
    vat_rate: Decimal  # percent; 0 when exempt
    exemption_reason: str | None
    iban: str
    bic: str | None
    payment_terms: str  # German
    notes: tuple[str, ...] = ()
    preceding: tuple[str, dt.date] | None = None  # a credit note's invoice (BT-25, BT-26)
    currency: str = "EUR"

    @property
    def line_total_cent(self) -> int:
        return sum(line.net_cent for line in self.lines)

    @property
    def vat_cent(self) -> int:
        exact = Decimal(self.line_total_cent) * self.vat_rate / 100
        return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))

    @property
    def gross_cent(self) -> int:
        return self.line_total_cent + self.vat_cent

    @property
    def allowance_cent(self) -> int:
        return sum(line.allowance_cent for line in self.lines)


def amount(cents: int) -> str:
    """An amount as CII writes it: `1234.50`."""
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"
