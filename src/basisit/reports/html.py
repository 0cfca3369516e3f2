"""The report as one self-contained German HTML page: tables, inline SVG charts, print CSS.

Everything is inline (styles, charts, no script, no font or image URL) so the page reads the
same offline, archived, or printed; pdf.py renders this very page.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import jinja2
from markupsafe import Markup

from basisit.billing.model import KommuneBill, Line, MonthBill
from basisit.reports import german, svg
from basisit.reports.german import Report
from basisit.reports.output import replacing

# The ledger's base unit of each catalog unit (contract 3: usage.v1 `base_unit`), so a line's
# Nachweis shows the very number the ledger holds, in its unit.
BASE_UNIT_DE = {"Betriebsstunde": "s", "GiB-Monat": "Byte·s", "Konto-Monat": "Konto·s",
                "Einrichtung": "Stück"}  # fmt: skip
METHOD_DE = {
    "default": "Standardschlüssel",
    "equal": "gleiche Anteile nach Teilnahme",
    "usage": "nach direkten Kosten × Teilnahme",
}


def quantity(value: Fraction) -> str:
    """Whole quantities as they are (`240`), pro-rata ones to four places (`0,4510`)."""
    return german.number(value, 0) if value.denominator == 1 else german.number(value, 4)


def price(value: Decimal) -> str:
    """A unit price with as many places as it has, at least two (`0,05 €`, `0,005 €`)."""
    exponent = value.normalize().as_tuple().exponent
    places = max(2, -exponent) if isinstance(exponent, int) else 2
    return f"{german.number(value, places)} €"


def amount(line: Line) -> str:
    text = f"{quantity(line.quantity)} {line.unit}"
    if line.included:
        text += f" (davon {quantity(line.included)} inklusive)"
    return text


def evidence(line: Line) -> str:
    """Which ledger rows the line comes from: unit, base quantity and the request(s)."""
    base = BASE_UNIT_DE.get(line.ledger_unit, "")
    requests = ", ".join(f"#{r}" for r in line.request_ids)
    label = "Antrag" if len(line.request_ids) == 1 else "Anträge"
    return f"{line.ledger_unit}: {german.number(line.ledger_quantity_base, 0)} {base}".rstrip() + (
        f" · {label} {requests}" if requests else ""
    )


def key_text(bill: MonthBill) -> str:
    """How the overhead pool was split, in words finance can check against billing.yaml."""
    key = bill.key
    if bill.method_used == "default":
        text = (
            f"{METHOD_DE['default']}: {german.percent(key.sockel_share, 0)} als Sockel nach "
            f"Teilnahme, {german.percent(1 - key.sockel_share, 0)} nach Einwohnern × Teilnahme "
            f"(Landkreise mit {german.percent(key.kreis_inhabitants_fraction, 0)} ihrer "
            "Einwohner)"
        )
    else:
        text = METHOD_DE.get(bill.method_used, bill.method_used)
    if bill.method_used != key.method:
        text += f" – statt „{METHOD_DE.get(key.method, key.method)}“, da ohne direkte Kosten"
    return f"{text}; gültig ab {german.date(key.valid_from)}"


def by_service(kommunen: tuple[KommuneBill, ...]) -> dict[str, int]:
    """Direct costs per service over the given Kommunen, largest first."""
    found: dict[str, int] = {}
    for k in kommunen:
        for name, cents in k.by_service().items():
            found[name] = found.get(name, 0) + cents
    return dict(sorted(found.items(), key=lambda item: (-item[1], item[0])))


@dataclass(frozen=True)
class Chart:
    svg: Markup
    text: str  # the same values as words: the chart's text alternative


def _chart(title: str, bars: list[svg.Bar], legend: tuple[str, ...] = ()) -> Chart:
    values = "; ".join(
        f"{b.label}: " + " gegenüber ".join(german.euro_cents(c) for c in b.cents) for b in bars
    )
    desc = f"Balkendiagramm. {values}."
    return Chart(svg.bar_chart(title, desc, bars, legend), values)


def _change_chart(report: Report) -> Chart | None:
    """This month against the month before, per Kommune of the report; None without one."""
    if report.previous is None:
        return None
    before = {k.ags: k.total_cents for k in report.previous.kommunen}
    bars = [svg.Bar(k.name, (k.total_cents, before.get(k.ags, 0))) for k in report.kommunen]
    if report.ags is None:
        bars.append(svg.Bar("Gesamt", (report.bill.total_cents, report.previous.total_cents)))
    legend = (german.month_name(report.bill.month), german.month_name(report.previous.month))
    return _chart("Veränderung zum Vormonat", bars, legend)


def _checks(report: Report) -> list[tuple[str, bool]]:
    """The sums that must hold, each with whether it does (only the report's Kommunen)."""
    checks = []
    for k in report.kommunen:
        lines = sum(line.cents for line in k.lines)
        checks.append(
            (f"{k.name}: Σ Positionen {german.euro_cents(lines)} = direkte Kosten "
             f"{german.euro_cents(k.direct_cents)}", lines == k.direct_cents)
        )  # fmt: skip
    direct = sum(k.direct_cents for k in report.kommunen)
    overhead = sum(k.overhead_cents for k in report.kommunen)
    total = sum(k.total_cents for k in report.kommunen)
    checks.append(
        (f"Σ Summen {german.euro_cents(total)} = Σ direkte Kosten {german.euro_cents(direct)} "
         f"+ Gemeinkostenanteile {german.euro_cents(overhead)}", total == direct + overhead)
    )  # fmt: skip
    if report.bill.funding:
        subsidy = sum(k.subsidy_cents for k in report.kommunen)
        payable = sum(k.payable_cents for k in report.kommunen)
        checks.append(
            (f"Σ zu zahlen {german.euro_cents(payable)} + Σ Anschubfinanzierung "
             f"{german.euro_cents(subsidy)} = Σ Summen {german.euro_cents(total)}",
             payable + subsidy == total)
        )  # fmt: skip
    if report.ags is None:
        bill = report.bill
        allocated = bill.overhead_cents + bill.unallocated_cents
        checks.append(
            (f"Σ Gemeinkostenanteile {german.euro_cents(bill.overhead_cents)} + nicht verteilt "
             f"{german.euro_cents(bill.unallocated_cents)} = Gemeinkostenpool "
             f"{german.euro_cents(bill.pool_cents)}", allocated == bill.pool_cents)
        )  # fmt: skip
    return checks


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("basisit.reports", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a misspelt field fails the render, not the reader
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        euro_cents=german.euro_cents, percent=german.percent, number=german.number,
        quantity=quantity, price=price, amount=amount, evidence=evidence,
        kind=lambda kind: german.KIND_DE.get(kind, kind),
    )  # fmt: skip
    return env


def page(report: Report) -> str:
    """The whole page as text."""
    kommunen = report.kommunen
    services = by_service(kommunen)
    context = {
        "report": report,
        "bill": report.bill,
        "kommunen": kommunen,
        "period": german.period(report.bill),
        "key_text": key_text(report.bill),
        "services": services,
        "direct": sum(k.direct_cents for k in kommunen),
        "overhead": sum(k.overhead_cents for k in kommunen),
        "total": sum(k.total_cents for k in kommunen),
        "funded": bool(report.bill.funding),
        "subsidy": sum(k.subsidy_cents for k in kommunen),
        "payable": sum(k.payable_cents for k in kommunen),
        "funding_notes": {p.id: german.funding_note(p) for p in report.bill.funding},
        "checks": _checks(report),
        "service_chart": _chart(
            "Kosten nach Leistung", [svg.Bar(n, (c,)) for n, c in services.items()]
        ),
        "kommune_chart": _chart(
            "Kosten nach Kommune", [svg.Bar(k.name, (k.total_cents,)) for k in kommunen]
        ),
        "change_chart": _change_chart(report),
    }
    return _environment().get_template("report.html.j2").render(context)


def render(report: Report, path: Path) -> None:
    text = page(report)
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
