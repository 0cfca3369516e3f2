"""basisit report: a month billed, as a file for finance (German text and formats).

`basisit report --month ... -o ...` writes the month's cost allocation; the subcommands
(`funding`, `scale`) write the other reports finance reads."""

from __future__ import annotations

from pathlib import Path

import typer

from basisit.app import billing
from basisit.cli.common import console, err_console
from basisit.cli.render import Table, esc
from basisit.reports import funding as funding_report
from basisit.reports import german

app = typer.Typer(
    help="Reports for finance: a month's cost allocation (the options), or a subcommand.",
    invoke_without_command=True,
)


@app.callback()
def report_cmd(
    ctx: typer.Context,
    month: str | None = typer.Option(None, "--month", help="The Berlin month, YYYY-MM"),
    fmt: str = typer.Option(
        "csv", "--format", help=f"One of: {', '.join(billing.FORMATS)}", show_default=True
    ),
    ags: str | None = typer.Option(None, "--ags", help="Only this Kommune's report"),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="The file to write, or a directory to put it in"
    ),
    list_formats: bool = typer.Option(
        False, "--list-formats", help="Print the report formats, one per line, and exit"
    ),
) -> None:
    """Write the month's cost allocation (all Kommunen, or one with --ags), or run a
    subcommand."""
    if ctx.invoked_subcommand is not None:
        if month is not None or output is not None or list_formats or ags is not None:
            raise typer.BadParameter(
                f"the options of the month report do not go with `report {ctx.invoked_subcommand}`:"
                " give them after the subcommand"
            )
        return
    if list_formats:
        for name in billing.FORMATS:
            console.print(name)
        return
    if month is None or output is None:
        raise typer.BadParameter("--month and -o/--output are required (or --list-formats)")
    err_console.print(f"billing {esc(month)} from the usage ledger ...")
    written = billing.write_report(month, fmt, output, ags)
    bill = written.bill
    table = Table(title=f"{german.month_name(bill.month)}"
                  + (" (vorläufig)" if bill.provisional else ""))  # fmt: skip
    for column in ("AGS", "Kommune", "direkt", "Gemeinkosten", "gesamt"):
        table.add_column(column, justify="right" if column not in ("Kommune",) else "left")
    wanted = bill.kommunen if not ags else [k for k in bill.kommunen if k.ags == ags]
    for k in wanted:
        table.add_row(k.ags, esc(k.name), *_amounts(k.direct_cents, k.overhead_cents))
    if not ags:
        table.add_row("", "Summe", *_amounts(bill.direct_cents, bill.overhead_cents))
    console.print(table)
    for path in written.paths:
        console.print(f"wrote {esc(str(path))}")


@app.command("funding")
def funding_cmd(
    output: Path | None = typer.Option(
        None, "-o", "--output", help="An .html or .csv file, or a directory for the HTML page"
    ),
) -> None:
    """Each start-up funding programme: budget used per month and service, what is left,
    and when it runs out at the current rate (with charts in the HTML page)."""
    err_console.print("billing the funding programmes' months from the usage ledger ...")
    if output is not None:
        outlooks = billing.write_funding_report(output)
    else:
        outlooks = billing.funding_outlook()
    for o in outlooks:
        table = Table(title=esc(o.programme.name))
        for column in ("Monat", "Zuschuss", "Verbleibend", "Hinweis"):
            table.add_column(column, justify="left" if column in ("Monat", "Hinweis") else "right")
        for r in funding_report.rows(o):
            table.add_row(german.month_name(r.month), german.euro_cents(r.used),
                          german.euro_cents(r.left), esc(r.note))  # fmt: skip
        console.print(table)
        console.print(esc(funding_report.verdict(o)))
    if output is not None:
        console.print(f"wrote {esc(str(output))}")


def _amounts(direct: int, overhead: int) -> tuple[str, str, str]:
    return (
        german.euro_cents(direct),
        german.euro_cents(overhead),
        german.euro_cents(direct + overhead),
    )


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="report")
