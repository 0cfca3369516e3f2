"""basisit doctor: is this machine ready for the suite? One table, or JSON for scripts."""

from __future__ import annotations

import sys

import typer
from rich.markup import escape
from rich.table import Table

from basisit.cli.common import Format, console, emit, err_console
from basisit.errors import PrerequisiteMissing, ValidationFailed


def doctor(
    fmt: Format = typer.Option(Format.table, "--format", help="table, or json for scripts"),
    only: list[str] = typer.Option(
        None, "--only", help="Run only this check (repeatable), e.g. --only 'local ports'"
    ),
) -> None:
    """Check every prerequisite by using it; name what is missing and the command that fixes it.

    Exit 0 when all pass, 8 when something is missing.
    """
    from basisit.preflight import CHECKS, run_checks

    def started(check: object) -> None:
        if fmt is Format.table and sys.stderr.isatty():
            err_console.print(f"[dim]checking {escape(getattr(check, 'name', ''))} …[/]")

    try:
        report = run_checks(set(only) if only else None, on_start=started)
    except ValueError as exc:
        names = ", ".join(c.name for c in CHECKS)
        raise ValidationFailed(f"{exc}; the checks are: {names}") from None

    if fmt is not Format.table:
        emit(report.as_dict(), fmt)
    else:
        table = Table(title="basisit doctor", title_justify="left")
        table.add_column("check")
        table.add_column("result")
        table.add_column("seconds", justify="right")
        table.add_column("detail / fix")
        for r in report.results:
            result = "[green]ok[/]" if r.ok else "[bold red]MISSING[/]"
            detail = escape(r.detail)
            if not r.ok:
                detail += f"\n[bold]fix:[/] {escape(r.fix)}"
            table.add_row(escape(r.name), result, f"{r.seconds:.1f}", detail)
        console.print(table)
    if not report.ok:
        failed = ", ".join(r.name for r in report.failed)
        raise PrerequisiteMissing(
            f"{len(report.failed)} of {len(report.results)} checks failed ({failed}); "
            "run the fix shown for each, then basisit doctor again"
        )


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
