"""basisit ledger import / basisit usage: the usage ledger (contract 3).

Progress goes to stderr; results (tables, CSV, JSON) to stdout. Quantities are shown in the
catalog's units with German number formats (1.234,5678), as finance reads them.
"""

from __future__ import annotations

import csv
import io
import sys
import time
from decimal import Decimal
from enum import StrEnum

import typer

from basisit import hours as h
from basisit import units
from basisit.app import ledger, monitoring, usage
from basisit.cli.common import ACTOR_OPTION, console, err_console, group
from basisit.cli.render import Table, esc
from basisit.contracts import usage as contract
from basisit.errors import BasisItError
from basisit.metering import prometheus

app = group("The usage ledger: billable hours and measured usage per instance and UTC hour.")


class UsageFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


@app.command("import")
def import_cmd(
    start: str | None = typer.Option(
        None, "--from", help="ISO 8601, Berlin time without an offset (default: the last import)"
    ),
    end: str | None = typer.Option(
        None, "--to", help="ISO 8601 (default: the last hour that ended 5 minutes ago)"
    ),
    provisional: bool = typer.Option(
        False, "--provisional", help="Also the running hour, marked provisional"
    ),
    url: str | None = typer.Option(
        None,
        "--prometheus",
        help=f"Prometheus base URL (default ${prometheus.URL_ENV}, else the one "
        "`basisit monitoring up` runs for this data dir)",
    ),
    actor: str | None = ACTOR_OPTION,
) -> None:
    """Import the hours since the last import (or --from/--to) in one transaction."""
    result = ledger.import_usage(
        start=start,
        end=end,
        provisional=provisional,
        prometheus_url=url or monitoring.prometheus_url(),
        actor=actor,
        progress=lambda text: err_console.print(f"[dim]{esc(text)}[/]", highlight=False),
    )
    span = f"{h.iso(result.range_start)} to {h.iso(result.range_end)}"
    if result.provisional_end is not None:
        span += f", provisional to {h.iso(result.provisional_end)}"
    console.print(
        f"import {result.import_id}: {span} (Prometheus {esc(result.prometheus_version)}): "
        f"{result.rows_written} rows written ({result.corrections} corrections), "
        f"{result.rows_unchanged} already there; {result.gap_rows} gap rows, "
        f"{result.no_measurement_rows} without a measurement yet",
        highlight=False,
    )


@app.command("verify")
def verify_cmd(
    month: str | None = typer.Option(None, "--month", help="YYYY-MM (default: every month)"),
    repair: bool = typer.Option(
        False, "--repair", help="Store the sums recomputed from the rows where they differ"
    ),
) -> None:
    """Recompute the month sums billing reads from the ledger's rows and compare them with
    the ones the import kept; exit 1 when they differ (and --repair was not given)."""
    checks = ledger.verify(month, repair)
    if not checks:
        console.print("the ledger has no rows yet: nothing to verify")
    differing = 0
    for check in checks:
        if not check.problems:
            console.print(f"{check.month}: the month sums agree with the rows", highlight=False)
            continue
        differing += not check.repaired
        state = "repaired" if check.repaired else "differ from the rows"
        err_console.print(f"{check.month}: the month sums {state}:", highlight=False)
        for problem in check.problems[:20]:
            err_console.print(f"  {esc(problem)}", highlight=False)
        if len(check.problems) > 20:
            err_console.print(f"  ... and {len(check.problems) - 20} more", highlight=False)
    if differing:
        err_console.print("run `basisit ledger verify --repair` to store the recomputed sums")
        raise typer.Exit(1)


@app.command("hourly", hidden=True)
def hourly_cmd(
    data_dir: str = typer.Option(..., "--data-dir", help="marks the process as this data dir's"),
    rounds: int = typer.Option(0, "--rounds", min=0, help="stop after N imports (0: never)"),
) -> None:
    """What `basisit monitoring up` runs beside Prometheus: an import 6 minutes past every
    hour (the hour then ended at least 5 minutes ago), until `basisit monitoring down` stops it.
    A failed import is logged and retried at the next hour; the overdue alert watches it."""
    done = 0
    while rounds == 0 or done < rounds:
        # First at the next hour: an import right at `up` would race the operator's own.
        time.sleep(3600 - time.time() % 3600 + 360)
        try:
            result = ledger.import_usage(prometheus_url=monitoring.prometheus_url(), actor="ledger")
            err_console.print(
                f"import {result.import_id}: {result.rows_written} rows", highlight=False
            )
        except BasisItError as exc:
            err_console.print(f"import failed: {esc(exc)}", highlight=False)
        done += 1


_COLUMNS = ("AGS", "Kommune", "Instanz", "Dienst", "Tarif", "Einheit", "Menge", "Stunden",
            "Lücken", "ohne Messung", "vorläufig", "Betrag")  # fmt: skip


def _rows(doc: contract.Usage) -> list[list[str]]:
    out = []
    for kommune in doc["kommunen"]:
        for inst in kommune["instances"]:
            for line in inst["lines"]:
                places = units.places_for(line["unit"])
                amount = line["amount_cent"]
                out.append([
                    kommune["ags"], kommune["name"] or "", inst["instance"],
                    inst["catalog_service"], line["plan"], line["unit"],
                    units.german(Decimal(line["quantity"]), places), str(line["hours"]),
                    str(line["gap_hours"]), str(line["no_measurement_hours"]),
                    str(line["provisional_hours"]),
                    "" if amount is None else units.german(Decimal(amount) / 100, 2) + " €",
                ])  # fmt: skip
    return out


def usage_cmd(
    month: str = typer.Option(..., "--month", help="YYYY-MM, a Berlin calendar month"),
    ags: list[str] | None = typer.Option(None, "--ags", help="Only this Kommune (repeatable)"),
    fmt: UsageFormat = typer.Option(UsageFormat.table, "--format"),
) -> None:
    """A month's quantities per Kommune and instance in the catalog's units (contract 3)."""
    doc = usage.month_usage(month, ags)
    if fmt is UsageFormat.json:
        sys.stdout.write(contract.dumps(doc))
        return
    rows = _rows(doc)
    if fmt is UsageFormat.csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=";", lineterminator="\n")
        writer.writerow(_COLUMNS)
        writer.writerows(rows)
        sys.stdout.write(buffer.getvalue())
        return
    period = doc["period"]
    table = Table(
        title=f"Nutzung {doc['month']} ({period['hours']} Stunden, Europe/Berlin)",
        show_lines=False,
    )
    for name in _COLUMNS:
        right = name in ("Menge", "Stunden", "Lücken", "ohne Messung", "vorläufig", "Betrag")
        table.add_column(name, justify="right" if right else "left")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    flagged = sum(int(r[8]) + int(r[9]) + int(r[10]) for r in rows)
    if flagged:
        console.print(
            "Lücken: Stunden mit weniger als 90 % Messabdeckung, berechnet mit dem Mittel der "
            "letzten vollständigen Stunde davor (sonst der ersten danach); ohne Messung: mit 0 "
            "berechnet; vorläufig: laufende Stunde, wird durch den nächsten Import ersetzt.",
            highlight=False,
        )


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="ledger")
    root.command("usage")(usage_cmd)
