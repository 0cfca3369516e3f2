"""`basisit report funding`: each start-up funding programme's budget, used per month and
service, what is left and when it runs out at the current rate — as a German HTML page with
charts, or as CSV (semicolons, decimal comma, BOM) for a spreadsheet."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import jinja2
from markupsafe import Markup

from basisit.billing import money
from basisit.billing.funding import OVERHEAD, Outlook
from basisit.files import atomic_write
from basisit.reports import german, svg
from basisit.reports.output import replacing

FORMATS = {".html": "html", ".csv": "csv"}
SERVICE_DE = {OVERHEAD: "Gemeinkostenanteil"}


@dataclass(frozen=True)
class Row:
    month: str
    by_service: dict[str, int]
    used: int
    left: int  # after the month
    note: str  # vorläufig, Prognose, ausgeschöpft, Höchstbetrag erreicht


def rows(o: Outlook) -> list[Row]:
    """The billed months, then the forecast ones."""
    out = []
    for m in o.months:
        notes = ["vorläufig"] if m.month in o.provisional else []
        notes += [german.funding_note(m)] if german.funding_note(m) else []
        out.append(Row(m.month, dict(m.by_service), m.used_cents, m.left_cents, "; ".join(notes)))
    left = o.left_cents
    for month, cents in o.projection:
        left -= cents
        out.append(Row(month, {}, cents, left, "Prognose"))
    return out


def services(o: Outlook) -> list[str]:
    return sorted({s for m in o.months for s, _c in m.by_service}, key=lambda s: (s == OVERHEAD, s))


def verdict(o: Outlook) -> str:
    """When the budget runs out, in one German sentence."""
    p = o.programme
    if o.runs_out is not None and o.left_cents <= 0:
        return f"Das Budget ist seit {german.month_name(o.runs_out)} ausgeschöpft."
    if o.runs_out is not None:
        return (f"Beim derzeitigen Verbrauch reicht das Budget bis {german.month_name(o.runs_out)}"
                f" (Förderzeitraum bis {german.month_name(p.last_month)}).")  # fmt: skip
    if not o.base_cents:
        return "Noch kein abgeschlossener Monat: keine Prognose."
    return (f"Beim derzeitigen Verbrauch reicht das Budget bis zum Ende des Förderzeitraums "
            f"({german.month_name(p.last_month)}); übrig blieben "
            f"{german.euro_cents(o.left_at_end_cents)}.")  # fmt: skip


def month_label(month: str) -> str:
    return f"{german.MONTHS[int(month[5:]) - 1][:3]} {month[:4]}"


def charts(o: Outlook) -> tuple[Markup, Markup]:
    """Use per month (billed and forecast) and the budget left after each month."""
    table = rows(o)
    labels = [month_label(r.month) + (" (P)" if r.note == "Prognose" else "") for r in table]
    made = []
    for title, values in (("Zuschüsse je Monat", [r.used for r in table]),
                          ("Verbleibendes Budget", [r.left for r in table])):  # fmt: skip
        bars = [svg.Bar(label, (cents,)) for label, cents in zip(labels, values, strict=True)]
        desc = "; ".join(f"{b.label}: {german.euro_cents(b.cents[0])}" for b in bars)
        made.append(svg.bar_chart(f"{title} – {o.programme.name}", desc, bars))
    return made[0], made[1]


def page(outlooks: list[Outlook], today: str) -> str:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("basisit.reports", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(euro_cents=german.euro_cents, month_name=german.month_name,
                       percent=german.percent)  # fmt: skip
    return env.get_template("funding.html.j2").render(
        title="Anschubfinanzierung Basis-IT: Budget und Verbrauch", today=today,
        outlooks=outlooks, rows=rows, services=services, verdict=verdict, charts=charts,
        service_de=lambda s: SERVICE_DE.get(s, s),
    )  # fmt: skip


def table(outlooks: list[Outlook]) -> list[list[str]]:
    out: list[list[str]] = [["Programm", "Monat", "Leistung", "Zuschuss (EUR)",
                             "Verbleibend (EUR)", "Hinweis"]]  # fmt: skip
    for o in outlooks:
        for r in rows(o):
            parts = sorted(r.by_service.items()) or [("", r.used)]
            for service, cents in parts:
                out.append([o.programme.id, r.month, SERVICE_DE.get(service, service),
                            german.number(money.euro(cents)), german.number(money.euro(r.left)),
                            r.note])  # fmt: skip
        out.append([o.programme.id, "", "Prognose", "", "", verdict(o)])
    return out


def render(outlooks: list[Outlook], path: Path, today: str) -> None:
    fmt = FORMATS[path.suffix]
    if fmt == "html":
        with replacing(path) as tmp:
            tmp.write_text(page(outlooks, today), encoding="utf-8")
        return
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=";", lineterminator="\r\n").writerows(table(outlooks))
    atomic_write(path, "\ufeff" + buffer.getvalue())
