"""The month's reports as finance reads them: HTML, PDF and Excel of the October example
(test_billing_allocation: Tholey 102,55 €, St. Wendel 101,31 €, Saarbrücken 141,73 €,
all 345,59 €), every amount to the cent, German formats, and a Kommune's report showing
nothing of the others."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import openpyxl
import pypdf
import pytest
from test_billing_allocation import SB, TH, WND, october, priced  # noqa: F401

from basisit import kommunen
from basisit.billing import config as billing_config
from basisit.billing.allocate import allocate
from basisit.billing.model import MonthBill
from basisit.catalog import load_catalog
from basisit.reports import html, pdf, xlsx
from basisit.reports.german import Report

TOTALS = {TH: 10255, WND: 10131, SB: 14173}
OTHERS_OF_THOLEY = ("St. Wendel", "Saarbrücken", WND, SB)


@pytest.fixture
def bill(priced: Path) -> MonthBill:  # noqa: F811 (the fixture imported above)
    return allocate(october(), load_catalog(), billing_config.load(), kommunen.get)


def _pdf_text(path: Path) -> str:
    # One space for every run of white space: table cells wrap "geschätzt,\n3 Std.".
    return " ".join(" ".join(p.extract_text() for p in pypdf.PdfReader(path).pages).split())


def _mentions_another_kommune(text: str) -> list[str]:
    # AGS as whole numbers: St. Wendel's 10046 is the start of Tholey's own 10046118.
    return [o for o in OTHERS_OF_THOLEY if re.search(rf"(?<![\d]){re.escape(o)}(?![\d])", text)]


def _previous(bill: MonthBill) -> MonthBill:
    """September: the same Kommunen, Tholey without its one-time Einrichtung (50,00 €)."""
    kommunen = tuple(
        replace(k, direct_cents=k.direct_cents - 5000) if k.ags == TH else k for k in bill.kommunen
    )
    return replace(bill, month="2026-09", kommunen=kommunen)


def test_html_shows_every_amount_and_reconciles(bill: MonthBill, tmp_path: Path) -> None:
    out = tmp_path / "oktober.html"
    html.render(Report(bill), out)
    page = out.read_text(encoding="utf-8")
    assert '<html lang="de">' in page and "Kostenaufteilung Basis-IT Oktober 2026</title>" in page
    assert "01.10.2026 – 31.10.2026" in page
    for amount in ("102,55 €", "101,31 €", "141,73 €", "345,59 €", "83,33 €", "9,92 €"):
        assert amount in page
    # The estimated line is marked, and traces to its ledger rows and request.
    assert "geschätzt, 3 Std. Messlücke" in page
    assert "GiB-Monat: 155.855.773.237.248.000 Byte·s · Antrag #1" in page
    assert "54,1208 GiB-Monat (davon 4,5101 inklusive)" in page and "0,05 €" in page
    # Both sums reconcile, and the key is explained.
    assert "✓ Σ Summen 345,59 € = Σ direkte Kosten 262,26 € + Gemeinkostenanteile 83,33 €" in page
    assert "✓ Σ Gemeinkostenanteile 83,33 € + nicht verteilt 0,00 € = Gemeinkostenpool" in page
    assert "✗" not in page
    assert "20 % als Sockel nach Teilnahme" in page and "Teilnahme 37,0 %" in page
    # Overall report: per service too, and charts a screen reader can read.
    assert "Kosten nach Leistung" in page and "Kosten nach Kommune" in page
    assert page.count("<svg") == 2 and page.count("<title>") == 3 and "<desc>" in page
    assert 'scope="col"' in page and 'scope="row"' in page
    assert "kein Vormonat" in page


def test_html_is_self_contained(bill: MonthBill, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    html.render(Report(bill, previous=_previous(bill)), out)
    page = out.read_text(encoding="utf-8")
    # Nothing fetched: no script, stylesheet, image, font or link; only the SVG namespace.
    assert re.findall(r"https?://[^\"]*", page) == ["http://www.w3.org/2000/svg"] * 3
    for sign in ("<script", "<link", "<img", "url(", "@import", "src="):
        assert sign not in page


def test_month_over_month(bill: MonthBill, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    html.render(Report(bill, previous=_previous(bill)), out)
    page = out.read_text(encoding="utf-8")
    assert "kein Vormonat" not in page and "Veränderung zum Vormonat" in page
    assert "Tholey: 102,55 € gegenüber 52,55 €" in page
    assert "Gesamt: 345,59 € gegenüber 295,59 €" in page


def test_a_kommunes_report_shows_only_that_kommune(bill: MonthBill, tmp_path: Path) -> None:
    report = Report(bill, TH, leitweg={TH: "10046118-0001-12", SB: "10041100-0002-88"},
                    previous=_previous(bill))  # fmt: skip
    html.render(report, tmp_path / "th.html")
    pdf.render(report, tmp_path / "th.pdf")
    xlsx.render(report, tmp_path / "th.xlsx")
    page = (tmp_path / "th.html").read_text(encoding="utf-8")
    assert "Kostenaufstellung Basis-IT Oktober 2026" in page and "10046118-0001-12" in page
    assert "102,55 €" in page and "345,59 €" not in page
    book = openpyxl.load_workbook(tmp_path / "th.xlsx")
    cells = " ".join(
        str(c) for sheet in book for row in sheet.iter_rows(values_only=True) for c in row
    )
    for text in (page, _pdf_text(tmp_path / "th.pdf"), cells):
        assert "Tholey" in text
        assert _mentions_another_kommune(text) == []
        assert "10041100-0002-88" not in text


def test_provisional_is_marked_in_every_format(bill: MonthBill, tmp_path: Path) -> None:
    report = Report(replace(bill, provisional=True), TH)
    html.render(report, tmp_path / "r.html")
    pdf.render(report, tmp_path / "r.pdf")
    xlsx.render(report, tmp_path / "r.xlsx")
    title = "Kostenaufstellung Basis-IT Oktober 2026 (vorläufig)"
    assert f"<h1>{title}</h1>" in (tmp_path / "r.html").read_text(encoding="utf-8")
    assert title in _pdf_text(tmp_path / "r.pdf")
    sheet = openpyxl.load_workbook(tmp_path / "r.xlsx")["Übersicht"]
    assert sheet["A1"].value == title and sheet["B3"].value == "vorläufig"
    html.render(Report(bill, TH), tmp_path / "final.html")
    assert "vorläufig" not in (tmp_path / "final.html").read_text(encoding="utf-8").lower()


def test_pdf_is_a4_with_the_german_totals(bill: MonthBill, tmp_path: Path) -> None:
    out = tmp_path / "oktober.pdf"
    pdf.render(Report(bill), out)
    assert out.read_bytes().startswith(b"%PDF")
    reader = pypdf.PdfReader(out)
    width, height = (float(v) for v in reader.pages[0].mediabox.upper_right)
    assert (round(width), round(height)) == (595, 842)  # A4 in points
    text = _pdf_text(out)
    for amount in ("102,55 €", "101,31 €", "141,73 €", "345,59 €", "geschätzt, 3 Std."):
        assert amount in text
    assert f"Seite 1 von {len(reader.pages)}" in text and len(reader.pages) > 1


def _euro_cells(sheet: openpyxl.worksheet.worksheet.Worksheet, column: str) -> dict[str, Decimal]:
    found = {}
    for row in range(1, sheet.max_row + 1):
        cell = sheet[f"{column}{row}"]
        if isinstance(cell.value, int | float):
            assert cell.number_format == '#,##0.00 "€"'
            found[str(sheet[f"B{row}"].value)] = Decimal(str(cell.value))
    return found


def test_xlsx_has_numbers_to_the_cent(bill: MonthBill, tmp_path: Path) -> None:
    out = tmp_path / "oktober.xlsx"
    xlsx.render(Report(bill), out)
    book = openpyxl.load_workbook(out)
    assert book.sheetnames == ["Übersicht", "Positionen"]
    overview = book["Übersicht"]
    totals = _euro_cells(overview, "H")
    assert {ags: totals[ags] for ags in TOTALS} == {
        ags: Decimal(c) / 100 for ags, c in TOTALS.items()
    }
    assert totals["None"] == Decimal("345.59")  # the Gesamtsumme row (no AGS)
    assert overview["B2"].value == dt.datetime(2026, 10, 1)
    assert overview["D2"].value == dt.datetime(2026, 10, 31)
    assert overview["B2"].number_format == "DD.MM.YYYY"
    assert any(row[1] == "stimmt" for row in overview.iter_rows(values_only=True))
    assert len(overview._charts) == 2  # by Kommune and by service (written and read back)
    lines = book["Positionen"]
    amounts = [lines.cell(r, 11) for r in range(2, lines.max_row + 1)]
    assert all(c.number_format == '#,##0.00 "€"' for c in amounts)
    assert sum(Decimal(str(c.value)) for c in amounts[:-1]) == Decimal("262.26")
    assert amounts[-1].value == pytest.approx(262.26)
    assert len(amounts) - 1 == sum(len(k.lines) for k in bill.kommunen)


def test_a_failed_render_leaves_the_old_file(
    bill: MonthBill, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "berichte"
    folder.mkdir()
    out = folder / "oktober.xlsx"
    out.write_bytes(b"last month's file")

    def broken_save(self: object, target: Path) -> None:
        Path(target).write_bytes(b"PK half a workbook")
        raise OSError("disk full")

    monkeypatch.setattr(openpyxl.Workbook, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        xlsx.render(Report(bill), out)
    assert [p.name for p in folder.iterdir()] == ["oktober.xlsx"]
    assert out.read_bytes() == b"last month's file"


def test_names_are_text_not_markup(bill: MonthBill, tmp_path: Path) -> None:
    kommunen = tuple(replace(k, name="<b>Tholey</b> & Co") if k.ags == TH else k
                     for k in bill.kommunen)  # fmt: skip
    html.render(Report(replace(bill, kommunen=kommunen)), tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<b>Tholey" not in page and "&lt;b&gt;Tholey&lt;/b&gt; &amp; Co" in page
