"""The month as CSV for finance: one row per line and per overhead share, German formats.

Semicolon-separated with a decimal comma (what a German spreadsheet opens directly), UTF-8
with BOM (so that Excel reads umlauts), amounts as `1234,56` without the € sign so that
they stay numbers; each row shows its cost, the start-up funding's subsidy and what is left
to pay; a final block repeats the totals and the reconciliations.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from basisit.billing import money
from basisit.files import atomic_write
from basisit.reports.german import KIND_DE, Report, funding_note, number, period

HEADER = (
    "AGS", "Kommune", "Art", "Leistung", "Instanz", "Tarif", "Menge", "Einheit",
    "Einzelpreis (EUR)", "Inklusivmenge", "Betrag (EUR)", "Zuschuss (EUR)", "Zu zahlen (EUR)",
    "Hinweis", "Nachweis (Ledger)", "Anträge",
)  # fmt: skip


def rows(report: Report) -> list[list[str]]:
    bill = report.bill
    out: list[list[str]] = []
    for k in report.kommunen:
        for line in k.lines:
            out.append([
                k.ags, k.name, KIND_DE[line.kind], line.description, line.instance,
                line.plan_name, number(line.quantity, 6), line.unit,
                number(line.unit_price, 4), number(line.included, 6),
                number(money.euro(line.cents)), number(money.euro(line.subsidy_cents)),
                number(money.euro(line.payable_cents)), line.flagged,
                f"{line.ledger_unit} {line.ledger_quantity_base}",
                " ".join(str(r) for r in line.request_ids),
            ])  # fmt: skip
        out.append([
            k.ags, k.name, "Gemeinkostenanteil",
            f"Anteil Plattformkosten ({_key_de(report)})", "", "",
            number(k.participation, 6), "Teilnahme", "", "",
            number(money.euro(k.overhead_cents)), number(money.euro(k.overhead_subsidy_cents)),
            number(money.euro(k.overhead_cents - k.overhead_subsidy_cents)), "", "", "",
        ])  # fmt: skip
    out.append([])
    out.append(["Zeitraum", period(bill), "vorläufig" if bill.provisional else "endgültig"])
    for k in report.kommunen:
        out.append(["Summe", k.ags, k.name, "direkt", number(money.euro(k.direct_cents)),
                    "Gemeinkosten", number(money.euro(k.overhead_cents)),
                    "gesamt", number(money.euro(k.total_cents)),
                    "Zuschuss", number(money.euro(k.subsidy_cents)),
                    "zu zahlen", number(money.euro(k.payable_cents))])  # fmt: skip
    if report.ags is None:
        out.append(["Gesamtsumme", number(money.euro(bill.total_cents)),
                    "Zuschuss", number(money.euro(bill.subsidy_cents)),
                    "zu zahlen", number(money.euro(bill.payable_cents))])  # fmt: skip
        out.append(["Abgleich", "zu zahlen + Zuschuss = gesamt",
                    f"{number(money.euro(bill.payable_cents))} + "
                    f"{number(money.euro(bill.subsidy_cents))} = "
                    f"{number(money.euro(bill.total_cents))}"])  # fmt: skip
        for p in bill.funding:
            out.append(["Anschubfinanzierung", p.name, "Satz", number(p.rate * 100),
                        "Budget", number(money.euro(p.budget_cents)),
                        "zuvor", number(money.euro(p.used_before_cents)),
                        "dieser Monat", number(money.euro(p.used_cents)),
                        "verbleibend", number(money.euro(p.left_cents)),
                        funding_note(p)])  # fmt: skip
        out.append(["Abgleich", "direkt + Gemeinkosten = gesamt",
                    f"{number(money.euro(bill.direct_cents))} + "
                    f"{number(money.euro(bill.overhead_cents))} = "
                    f"{number(money.euro(bill.total_cents))}",
                    "stimmt" if not bill.reconciles() else "stimmt NICHT"])  # fmt: skip
        out.append(["Abgleich", "Gemeinkosten verteilt + nicht verteilt = Monatsbetrag",
                    f"{number(money.euro(bill.overhead_cents))} + "
                    f"{number(money.euro(bill.unallocated_cents))} = "
                    f"{number(money.euro(bill.pool_cents))}"])  # fmt: skip
    return out


def _key_de(report: Report) -> str:
    key = report.bill.key
    method = report.bill.method_used
    if method == "equal":
        return "Schlüssel: gleich nach Teilnahme"
    if method == "usage":
        return "Schlüssel: nach direkten Kosten × Teilnahme"
    return (
        f"Schlüssel: {number(key.sockel_share * 100, 0)} % Sockel, "
        f"{number((1 - key.sockel_share) * 100, 0)} % nach Einwohnern"
    )


def render(report: Report, path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow([report.title])
    writer.writerow(HEADER)
    writer.writerows(rows(report))
    atomic_write(path, "\ufeff" + buffer.getvalue())
