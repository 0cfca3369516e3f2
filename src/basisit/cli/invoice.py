"""basisit invoice: a Kommune's month as an XRechnung e-invoice (a draft, or issued)."""

from __future__ import annotations

from pathlib import Path

import typer

from basisit.app import invoices
from basisit.cli.common import ACTOR_OPTION, console, err_console
from basisit.cli.render import Table, esc
from basisit.reports import german


def _validated(doc: invoices.Document) -> str:
    stages = ", ".join(f"{s.stage} ✓" for s in doc.validation.stages)
    warnings = sum(1 for f in doc.validation.findings if f.flag == "warning")
    return stages + (f" ({warnings} warnings)" if warnings else "")


def invoice_cmd(
    month: str = typer.Option(..., "--month", help="The Berlin month, YYYY-MM"),
    ags: str = typer.Option(..., "--ags", help="The Kommune"),
    output: Path = typer.Option(..., "-o", "--output", help="The XML file, or a directory"),
    issue: bool = typer.Option(
        False, "--issue", help="Issue it with the next number (only for a month that ended)"
    ),
    actor: str | None = ACTOR_OPTION,
) -> None:
    """Write the XRechnung 3.0 (CII) invoice of a Kommune's month: a draft that consumes no
    number, or with --issue the issued invoice (and a credit note if the amounts changed)."""
    if not issue:
        doc = invoices.draft(month, ags, output)
        console.print(
            f"draft {doc.number}: {german.euro_cents(doc.gross_cent)} "
            f"(netto {german.euro_cents(doc.net_cent)}); validated: {_validated(doc)}",
            highlight=False,
        )
        console.print(f"wrote {esc(str(doc.path))}", highlight=False)
        return
    result = invoices.issue(
        month, ags, output, actor=actor,
        progress=lambda text: err_console.print(f"[dim]{esc(text)}[/]", highlight=False),
    )  # fmt: skip
    if not result.written:
        console.print(
            f"{result.current} already bills {result.month} for {result.ags} with these "
            "amounts: nothing issued",
            highlight=False,
        )
        return
    for doc in result.written:
        kind = "credit note" if doc.type_code == "381" else "invoice"
        console.print(
            f"issued {kind} {doc.number}: {german.euro_cents(doc.gross_cent)}; "
            f"validated: {_validated(doc)}; wrote {esc(str(doc.path))}",
            highlight=False,
        )


def invoices_cmd(ags: str | None = typer.Option(None, "--ags", help="Only this Kommune")) -> None:
    """List the issued invoices and credit notes."""
    table = Table(title="Ausgestellte Rechnungen")
    for column in ("Nummer", "Typ", "AGS", "Monat", "Datum", "netto", "USt", "brutto", "zu"):
        right = column in ("netto", "USt", "brutto")
        table.add_column(column, justify="right" if right else "left")
    for r in invoices.issued(ags):
        table.add_row(
            r.number, "Gutschrift" if r.type_code == "381" else "Rechnung", r.ags, r.month,
            german.date(r.issue_date), german.euro_cents(r.net_cent),
            german.euro_cents(r.vat_cent), german.euro_cents(r.gross_cent),
            r.preceding_number or "",
        )  # fmt: skip
    console.print(table)


def register(root: typer.Typer) -> None:
    root.command("invoice")(invoice_cmd)
    root.command("invoices")(invoices_cmd)
