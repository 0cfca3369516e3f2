"""The `basisit` command: one Typer app, one module per command group."""

from __future__ import annotations

import typer

from basisit.cli import catalog as catalog_cli
from basisit.cli import configure as configure_cli
from basisit.cli import db as db_cli
from basisit.cli import doctor as doctor_cli
from basisit.cli import exporter as exporter_cli
from basisit.cli import invoice as invoice_cli
from basisit.cli import kommunen as kommunen_cli
from basisit.cli import ledger as ledger_cli
from basisit.cli import monitoring as monitoring_cli
from basisit.cli import provision as provision_cli
from basisit.cli import report as report_cli
from basisit.cli import requests as requests_cli
from basisit.cli.common import ErrorHandlingGroup

app = typer.Typer(
    help="Basis-IT for the Saarland's municipalities (eGo-Saar).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=ErrorHandlingGroup,
)

catalog_cli.register(app)
kommunen_cli.register(app)
requests_cli.register(app)
provision_cli.register(app)
configure_cli.register(app)
doctor_cli.register(app)
db_cli.register(app)
exporter_cli.register(app)
monitoring_cli.register(app)
ledger_cli.register(app)
report_cli.register(app)
invoice_cli.register(app)
# Further command groups register here, one line each.

if __name__ == "__main__":
    app()
