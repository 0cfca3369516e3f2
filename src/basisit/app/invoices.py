"""`basisit invoice`: a Kommune's month as a validated XRechnung e-invoice.

A draft (`ENTWURF-<AGS>-<YYYY-MM>`) may be written for any month up to the running one and
consumes no number. Issuing is for a month that has ended, in one transaction: the year's
counter is advanced first (which serialises issuers), the Kommune's current invoice for the
month is compared by its amounts, each new document is validated in three stages, and only
then are the rows written. A failure or a kill -9 anywhere rolls it back: no number is
consumed, and the numbers have no gaps. An issued invoice never changes: when the amounts
changed (a late ledger correction) the month gets a credit note (381) for the old invoice
and a new invoice (380).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from basisit import hours as h
from basisit import kommunen, paths
from basisit.app.billing import month_bill
from basisit.billing import config as billing_config
from basisit.billing.model import KommuneBill, Line, MonthBill
from basisit.errors import NotFound, ValidationFailed
from basisit.invoicing import cii
from basisit.invoicing.model import (
    CREDIT_NOTE,
    INVOICE,
    Contact,
    Invoice,
    InvoiceLine,
    Party,
)
from basisit.invoicing.validate import RULES, Validation, compile_rules, validate
from basisit.reports import german
from basisit.reports.output import replacing
from basisit.requests.service import actor_name
from basisit.store.db import session_scope
from basisit.store.models import IssuedInvoice, Onboarding

LEITWEG_SCHEME = "0204"  # the electronic address of a German public buyer
E_MAIL_SCHEME = "EM"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Document:
    """An invoice or credit note as written: its number, type, totals and file."""

    number: str
    type_code: str
    net_cent: int
    vat_cent: int
    gross_cent: int
    path: Path | None
    validation: Validation


@dataclass(frozen=True)
class IssueResult:
    month: str
    ags: str
    written: tuple[Document, ...]  # empty when the month was issued with these amounts
    current: str  # the number of the month's invoice in force afterwards


def _refuse(validation: Validation, number: str) -> None:
    if not validation.ok:
        raise ValidationFailed(
            f"{number} fails validation; nothing was written and no number consumed",
            validation.problems(),
        )


def _buyer(session: Session, ags: str) -> tuple[Party, str]:
    record = session.get(Onboarding, ags)
    kommune = kommunen.get(ags)
    if record is None:
        raise NotFound(f"{ags} {kommune.name} is not onboarded: it has no billing address")
    name = kommune.name if kommune.name.startswith(kommune.typ) else f"{kommune.typ} {kommune.name}"
    party = Party(name, record.street, record.postcode, record.town, record.country,
                  address_id=record.leitweg_id, address_scheme=LEITWEG_SCHEME)  # fmt: skip
    return party, record.leitweg_id


def _line_note(line: Line) -> str:
    quantity = german.number(line.quantity, 4)
    note = (
        f"Instanz {line.instance}: {quantity} {line.unit} × {german.euro(line.unit_price)}; "
        f"Nachweis: Ledger {line.ledger_unit} {line.ledger_quantity_base}, "
        f"Anträge {', '.join(str(r) for r in line.request_ids)}"
    )
    return f"{note}; {line.flagged}" if line.flagged else note


def _lines(bill: MonthBill, own: KommuneBill) -> tuple[InvoiceLine, ...]:
    """One invoice line per billed line with cents and one for the overhead share; the
    start-up funding's subsidy is each line's allowance (BG-27), so the line's net amount is
    what the Kommune pays for it."""
    names = {p.id: p.name for p in bill.funding}

    def reason(funded_by: tuple[str, ...]) -> str | None:
        return "; ".join(f"Anschubfinanzierung {names[i]}" for i in funded_by) or None

    found = [
        (f"{line.service_id}/{line.plan}/{line.kind}/{line.instance}", line.description,
         _line_note(line), line.cents, line.subsidy_cents, reason(line.funded_by))
        for line in own.lines if line.cents
    ]  # fmt: skip
    if own.overhead_cents:
        found.append((
            "overhead",
            f"Anteil an den gemeinsamen Plattformkosten {german.month_name(bill.month)}",
            f"Verteilschlüssel {bill.method_used}; Teilnahme {german.percent(own.participation)}",
            own.overhead_cents, own.overhead_subsidy_cents, reason(own.overhead_funded_by),
        ))  # fmt: skip
    return tuple(
        InvoiceLine(str(i), name, pid, note, cents - subsidy, subsidy, why)
        for i, (pid, name, note, cents, subsidy, why) in enumerate(found, start=1)
    )


def _digest(lines: tuple[InvoiceLine, ...], category: str, rate: Any) -> str:
    """What "the same amounts" means: each line's product id and cents, and the VAT."""
    data = [[line.product_id, line.net_cent, line.allowance_cent] for line in lines]
    blob = json.dumps([data, category, str(rate)], separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def _invoice(bill: MonthBill, ags: str, number: str, issue_date: dt.date,
             session: Session) -> Invoice:  # fmt: skip
    """The Kommune's month as an invoice numbered `number`, issued on `issue_date`."""
    own = next((k for k in bill.kommunen if k.ags == ags), None)
    if own is None or not own.total_cents:
        raise NotFound(f"AGS {ags} has no costs in {bill.month}: nothing to invoice")
    settings = billing_config.load()
    seller = settings.seller
    first = bill.start.astimezone(h.BERLIN).date()
    vat = settings.vat_on(first)
    if seller is None or vat is None:
        raise ValidationFailed(
            f"catalog/billing.yaml has no seller or no VAT treatment valid in {bill.month}"
        )
    buyer, leitweg = _buyer(session, ags)
    due = issue_date + dt.timedelta(days=seller.payment_days)
    return Invoice(
        number=number, type_code=INVOICE, issue_date=issue_date, due_date=due,
        period_start=first,
        period_end=bill.end.astimezone(h.BERLIN).date() - dt.timedelta(days=1),
        buyer_reference=leitweg,
        seller=Party(seller.name, seller.street, seller.postcode, seller.town, seller.country,
                     address_id=seller.email, address_scheme=E_MAIL_SCHEME,
                     vat_id=seller.vat_id, tax_number=seller.tax_number),
        seller_contact=Contact(seller.contact.name, seller.contact.phone, seller.contact.email),
        buyer=buyer, lines=_lines(bill, own), vat_category=vat.category,
        vat_rate=vat.rate_percent, exemption_reason=vat.exemption_reason, iban=seller.iban,
        bic=seller.bic,
        payment_terms=f"Zahlbar ohne Abzug bis zum {german.date(due)} "
        f"({seller.payment_days} Tage).",
        notes=(f"Kostenaufteilung Basis-IT {german.month_name(bill.month)} "
               f"({german.period(bill)}) für {own.name}, AGS {ags}.",
               *_funding_note(own)),
    )  # fmt: skip


def _funding_note(own: KommuneBill) -> tuple[str, ...]:
    if not own.subsidy_cents:
        return ()
    return (
        f"Kosten {german.euro_cents(own.total_cents)}, davon trägt die Anschubfinanzierung "
        f"{german.euro_cents(own.subsidy_cents)} (Nachlass je Position); zu zahlen "
        f"{german.euro_cents(own.payable_cents)} netto.",
    )


def _ended(month: str, now: dt.datetime) -> None:
    _start, end = h.month_range(month)
    if end > now:
        raise ValidationFailed(
            f"month {month} has not ended: it can be issued from "
            f"{german.date(end)} on (write a draft without --issue until then)"
        )


def draft(month: str, ags: str, output: Path, *, now: dt.datetime | None = None) -> Document:
    """A draft for any month up to the running one: validated, written, no number consumed."""
    moment = h.utc(now) if now is not None else dt.datetime.now(dt.UTC)
    wanted = kommunen.get(ags).ags
    target = _writable(output, f"ENTWURF-{wanted}-{month.strip()}")
    bill = month_bill(month, wanted, now=moment)
    with session_scope() as session:
        invoice = _invoice(bill, wanted, f"ENTWURF-{wanted}-{bill.month}",
                           moment.astimezone(h.BERLIN).date(), session)  # fmt: skip
    xml = cii.to_xml(invoice)
    validation = validate(xml)
    _refuse(validation, invoice.number)
    _write(target, xml)
    return Document(invoice.number, INVOICE, invoice.line_total_cent, invoice.vat_cent,
                    invoice.gross_cent, target, validation)  # fmt: skip


def _writable(output: Path, name: str) -> Path:
    target = output / f"{name}.xml" if output.is_dir() else output
    if not target.parent.is_dir():
        raise ValidationFailed(f"cannot write {target}: {target.parent} does not exist")
    return target


def _write(target: Path, xml: bytes) -> None:
    with replacing(target) as tmp:
        tmp.write_bytes(xml)


def archive_dir() -> Path:
    """Where every issued document is kept as a file too (what `basisit backup` takes)."""
    return paths.data_dir() / "invoices"


def _next_number(session: Session, year: int) -> str:
    """The year's next number, taken in the caller's transaction. One statement that both
    PostgreSQL and SQLite run atomically; it locks the counter (SQLite: the database) until
    the transaction ends, so issuers queue here."""
    last = session.execute(
        text("INSERT INTO invoice_counters (year, last) VALUES (:year, 1) "
             "ON CONFLICT (year) DO UPDATE SET last = invoice_counters.last + 1 "
             "RETURNING last"),
        {"year": year},
    ).scalar_one()  # fmt: skip
    return f"EGO-{year}-{int(last):05d}"


def _current(session: Session, ags: str, month: str) -> IssuedInvoice | None:
    """The month's invoice in force: the newest 380 that no credit note cancels."""
    rows = session.scalars(
        select(IssuedInvoice).where(IssuedInvoice.ags == ags, IssuedInvoice.month == month)
        .order_by(IssuedInvoice.id)
    ).all()  # fmt: skip
    cancelled = {r.preceding_number for r in rows if r.type_code == CREDIT_NOTE}
    open_ = [r for r in rows if r.type_code == INVOICE and r.number not in cancelled]
    return open_[-1] if open_ else None


def _record(invoice: Invoice, xml: bytes, month: str, ags: str, actor: str) -> IssuedInvoice:
    return IssuedInvoice(
        number=invoice.number, ags=ags, month=month, type_code=invoice.type_code,
        preceding_number=invoice.preceding[0] if invoice.preceding else None,
        issue_date=invoice.issue_date, issued_by=actor, net_cent=invoice.line_total_cent,
        vat_cent=invoice.vat_cent, gross_cent=invoice.gross_cent,
        allowance_cent=invoice.allowance_cent, vat_category=invoice.vat_category,
        vat_rate=invoice.vat_rate,
        amounts_digest=_digest(invoice.lines, invoice.vat_category, invoice.vat_rate),
        lines=[{"line_id": ln.line_id, "name": ln.name, "product_id": ln.product_id,
                "note": ln.note, "net_cent": ln.net_cent, "allowance_cent": ln.allowance_cent,
                "allowance_reason": ln.allowance_reason} for ln in invoice.lines],
        rule_versions=asdict(RULES), sha256=hashlib.sha256(xml).hexdigest(), xml=xml,
    )  # fmt: skip


def _credit_note(original: IssuedInvoice, fresh: Invoice, number: str) -> Invoice:
    """The credit note of `original`: its own lines and VAT, referring to its number."""
    lines = tuple(InvoiceLine(**line) for line in original.lines)
    return replace(
        fresh, number=number, type_code=CREDIT_NOTE, lines=lines,
        vat_category=original.vat_category, vat_rate=original.vat_rate,
        preceding=(original.number, original.issue_date),
        notes=(f"Gutschrift zur Rechnung {original.number} vom "
               f"{german.date(original.issue_date)}: sie wird durch die folgende Rechnung "
               "ersetzt (nachträgliche Korrektur der Verbrauchsdaten).",),
    )  # fmt: skip


def issue(
    month: str,
    ags: str,
    output: Path | None = None,
    *,
    actor: str | None = None,
    now: dt.datetime | None = None,
    progress: Progress | None = None,
) -> IssueResult:
    """Issue the Kommune's invoice for an ended month (see the module's docstring)."""
    say = progress or (lambda _text: None)
    moment = h.utc(now) if now is not None else dt.datetime.now(dt.UTC)
    wanted = kommunen.get(ags).ags
    _ended(month, moment)
    target = _writable(output, f"{wanted}-{month.strip()}") if output is not None else None
    bill = month_bill(month, wanted, now=moment)
    compile_rules()  # compiling the rules takes seconds: not inside the transaction
    today = moment.astimezone(h.BERLIN).date()
    written: list[tuple[Invoice, bytes, Validation]] = []
    with session_scope() as session:
        number = _next_number(session, today.year)  # from here on issuers queue
        fresh = _invoice(bill, wanted, number, today, session)
        current = _current(session, wanted, bill.month)
        digest = _digest(fresh.lines, fresh.vat_category, fresh.vat_rate)
        if current is not None and current.amounts_digest == digest:
            session.rollback()  # the number goes back: nothing is issued
            say(f"{current.number} already bills {bill.month} with these amounts")
            return IssueResult(bill.month, wanted, (), current.number)
        documents = [fresh]
        if current is not None:
            credit = _credit_note(current, fresh, number)
            documents = [credit, replace(fresh, number=_next_number(session, today.year))]
        for doc in documents:
            xml = cii.to_xml(doc)
            validation = validate(xml)
            _refuse(validation, doc.number)
            session.add(_record(doc, xml, bill.month, wanted, actor_name(actor)))
            written.append((doc, xml, validation))
        session.flush()
        say(f"writing {', '.join(d.number for d in documents)}, committing")
    result = []
    for doc, xml, validation in written:
        kept = archive_dir() / str(doc.issue_date.year) / f"{doc.number}.xml"
        kept.parent.mkdir(parents=True, exist_ok=True)
        _write(kept, xml)
        path = kept
        if target is not None:
            path = target if doc.type_code == INVOICE else target.parent / f"{doc.number}.xml"
            _write(path, xml)
        result.append(Document(doc.number, doc.type_code, doc.line_total_cent, doc.vat_cent,
                               doc.gross_cent, path, validation))  # fmt: skip
    return IssueResult(bill.month, wanted, tuple(result), written[-1][0].number)


def issued(ags: str | None = None) -> list[IssuedInvoice]:
    """Every issued document (of one Kommune), in the order issued."""
    with session_scope() as session:
        query = select(IssuedInvoice).order_by(IssuedInvoice.id)
        if ags:
            query = query.where(IssuedInvoice.ags == kommunen.get(ags).ags)
        return list(session.scalars(query))
