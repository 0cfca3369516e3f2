"""The report as an Excel workbook finance can compute with: numbers are numbers.

Amounts are numeric cells holding the exact cents as a Decimal of euros (openpyxl writes the
decimal text, so 102.55 reads back as 102.55), shown as `#,##0.00 "€"`; days are date cells
shown DD.MM.YYYY. Sheets: "Übersicht" (per Kommune, with the reconciliation and the charts)
and "Positionen" (every line, traceable to its ledger rows).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from openpyxl import Workbook
from openpyxl.cell.cell import Cell
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Font
from openpyxl.worksheet.worksheet import Worksheet

from basisit.billing import money
from basisit.billing.model import KommuneBill
from basisit.reports import german, html
from basisit.reports.german import BERLIN, Report
from basisit.reports.output import replacing

EURO = '#,##0.00 "€"'
DAY = "DD.MM.YYYY"
QUANTITY = "#,##0.0000"
PERCENT = "0.0 %"
BOLD = Font(bold=True)
OVERVIEW_HEAD = ("Kommune", "AGS", "Typ", "Einwohner", "Teilnahme", "Direkte Kosten",
                 "Gemeinkostenanteil", "Summe", "Leitweg-ID", "Zuschuss", "Zu zahlen")  # fmt: skip
LINES_HEAD = ("Kommune", "AGS", "Art", "Leistung", "Instanz", "Tarif", "Menge", "Einheit",
              "inklusive", "Einzelpreis", "Betrag", "Hinweis", "Ledger-Einheit",
              "Ledger-Basismenge", "Anträge", "Zuschuss", "Zu zahlen")  # fmt: skip


def _euro(sheet: Worksheet, row: int, column: int, cents: int) -> Cell:
    cell = sheet.cell(row, column, money.euro(cents))
    cell.number_format = EURO
    return cell


def _exact_count(value: int) -> int | str:
    # Byte-seconds reach 10^17: beyond Excel's 15 digits a number cell would show another
    # value than the ledger holds, so those stay text and can be searched for as written.
    return value if abs(value) < 10**15 else str(value)


def _header(sheet: Worksheet, row: int, names: Sequence[str]) -> None:
    for column, name in enumerate(names, 1):
        sheet.cell(row, column, name).font = BOLD


def _day(sheet: Worksheet, row: int, column: int, value: dt.date) -> None:
    sheet.cell(row, column, value).number_format = DAY


def _title(sheet: Worksheet, report: Report) -> int:
    """Title, the period as two date cells, the status; returns the next free row."""
    bill = report.bill
    sheet.cell(1, 1, report.title).font = Font(bold=True, size=14)
    sheet.cell(2, 1, "Zeitraum von")
    _day(sheet, 2, 2, bill.start.astimezone(BERLIN).date())
    sheet.cell(2, 3, "bis")
    _day(sheet, 2, 4, bill.end.astimezone(BERLIN).date() - dt.timedelta(days=1))
    sheet.cell(3, 1, "Status")
    sheet.cell(3, 2, "vorläufig" if bill.provisional else "endgültig")
    sheet.cell(4, 1, "Schlüssel")
    sheet.cell(4, 2, html.key_text(bill))
    sheet.cell(5, 1, "Gemeinkostenpool")
    _euro(sheet, 5, 2, bill.pool_cents)
    return 7


def _kommune_row(sheet: Worksheet, row: int, k: KommuneBill, report: Report) -> None:
    values: tuple[str | int, ...] = (k.name, k.ags, k.typ, k.einwohner)
    for column, value in enumerate(values, 1):
        sheet.cell(row, column, value)
    sheet.cell(row, 5, float(k.participation)).number_format = PERCENT
    _euro(sheet, row, 6, k.direct_cents)
    _euro(sheet, row, 7, k.overhead_cents)
    _euro(sheet, row, 8, k.total_cents)
    sheet.cell(row, 9, report.leitweg.get(k.ags, ""))
    _euro(sheet, row, 10, k.subsidy_cents)
    _euro(sheet, row, 11, k.payable_cents)


def _reconciliation(sheet: Worksheet, row: int, first: int, last: int, report: Report) -> int:
    """The sums row, and a check that the Kommune totals are direct + overhead: both as the
    computed values and as formulas, so a changed cell shows at once in Excel."""
    kommunen = report.kommunen
    direct = sum(k.direct_cents for k in kommunen)
    overhead = sum(k.overhead_cents for k in kommunen)
    total = sum(k.total_cents for k in kommunen)
    subsidy = sum(k.subsidy_cents for k in kommunen)
    payable = sum(k.payable_cents for k in kommunen)
    sheet.cell(row, 1, "Gesamtsumme").font = BOLD
    for column, cents in ((6, direct), (7, overhead), (8, total), (10, subsidy), (11, payable)):
        _euro(sheet, row, column, cents).font = BOLD
    sheet.cell(row + 1, 1, "Abstimmung: Σ Summen = Σ direkte Kosten + Σ Gemeinkostenanteile")
    sheet.cell(row + 1, 2, "stimmt" if total == direct + overhead else "stimmt NICHT")
    check = f"=IF(SUM(H{first}:H{last})=SUM(F{first}:F{last})+SUM(G{first}:G{last}),"
    sheet.cell(row + 1, 3, check + '"stimmt","stimmt NICHT")')
    sheet.cell(row + 2, 1, "Abstimmung: Σ Zu zahlen + Σ Zuschuss = Σ Summen")
    sheet.cell(row + 2, 2, "stimmt" if payable + subsidy == total else "stimmt NICHT")
    check = f"=IF(SUM(K{first}:K{last})+SUM(J{first}:J{last})=SUM(H{first}:H{last}),"
    sheet.cell(row + 2, 3, check + '"stimmt","stimmt NICHT")')
    return row + 4


def _services(sheet: Worksheet, row: int, report: Report) -> tuple[int, int]:
    """Costs by service (the chart's data); returns its first and last data row."""
    sheet.cell(row, 1, "Kosten nach Leistung").font = BOLD
    _header(sheet, row + 1, ("Leistung", "Betrag"))
    found = html.by_service(report.kommunen)
    for offset, (name, cents) in enumerate(found.items(), row + 2):
        sheet.cell(offset, 1, name)
        _euro(sheet, offset, 2, cents)
    return row + 1, row + 1 + len(found)


def _chart(
    title: str, sheet: Worksheet, column: int, rows: tuple[int, int], labels: int
) -> BarChart:
    chart = BarChart()
    chart.type = "bar"  # horizontal: long German names stay readable
    chart.title = title
    chart.legend = None
    chart.y_axis.title = "Euro"
    chart.y_axis.numFmt = EURO
    # openpyxl 3.1 writes axes as deleted unless told otherwise: Excel would hide them.
    chart.x_axis.delete = False
    chart.y_axis.delete = False
    data = Reference(sheet, min_col=column, min_row=rows[0], max_row=rows[1])
    chart.add_data(data, titles_from_data=True)
    chart.set_categories(Reference(sheet, min_col=labels, min_row=rows[0] + 1, max_row=rows[1]))
    chart.width, chart.height = 16, 7.5
    return chart


def _overview(sheet: Worksheet, report: Report) -> None:
    row = _title(sheet, report)
    _header(sheet, row, OVERVIEW_HEAD)
    first = row + 1
    for offset, k in enumerate(report.kommunen):
        _kommune_row(sheet, first + offset, k, report)
    last = first + len(report.kommunen) - 1
    after = _reconciliation(sheet, last + 1, first, last, report)
    services = _services(sheet, after, report)
    sheet.add_chart(_chart("Kosten nach Kommune", sheet, 8, (row, last), 1), "M2")
    sheet.add_chart(_chart("Kosten nach Leistung", sheet, 2, services, 1), "M18")
    widths = (34, 12, 16, 12, 11, 16, 20, 14, 22, 14, 14)
    for column, width in zip("ABCDEFGHIJK", widths, strict=True):
        sheet.column_dimensions[column].width = width


def _positions(sheet: Worksheet, report: Report) -> None:
    _header(sheet, 1, LINES_HEAD)
    row = 2
    for k in report.kommunen:
        for line in k.lines:
            values: tuple[str | int, ...] = (
                k.name, k.ags, german.KIND_DE.get(line.kind, line.kind), line.description,
                line.instance, f"{line.plan} – {line.plan_name}",
            )  # fmt: skip
            for column, value in enumerate(values, 1):
                sheet.cell(row, column, value)
            # Quantities are exact fractions; a float shows them to Excel's 15 digits, which
            # is all a reader can check by hand (the amount is the exact cent).
            sheet.cell(row, 7, float(line.quantity)).number_format = QUANTITY
            sheet.cell(row, 8, line.unit)
            sheet.cell(row, 9, float(line.included)).number_format = QUANTITY
            sheet.cell(row, 10, Decimal(line.unit_price)).number_format = '#,##0.00## "€"'
            _euro(sheet, row, 11, line.cents)
            sheet.cell(row, 12, line.flagged)
            sheet.cell(row, 13, line.ledger_unit)
            sheet.cell(row, 14, _exact_count(line.ledger_quantity_base)).number_format = "#,##0"
            sheet.cell(row, 15, ", ".join(str(r) for r in line.request_ids))
            _euro(sheet, row, 16, line.subsidy_cents)
            _euro(sheet, row, 17, line.payable_cents)
            row += 1
    sheet.cell(row, 1, "Summe Positionen").font = BOLD
    _euro(sheet, row, 11, sum(k.direct_cents for k in report.kommunen)).font = BOLD
    sheet.freeze_panes = "A2"


def workbook(report: Report) -> Workbook:
    book = Workbook()
    overview = book.active
    assert overview is not None  # a new Workbook always has its first sheet
    overview.title = "Übersicht"
    _overview(overview, report)
    _positions(book.create_sheet("Positionen"), report)
    return book


def render(report: Report, path: Path) -> None:
    book = workbook(report)
    with replacing(path) as tmp:
        book.save(tmp)
