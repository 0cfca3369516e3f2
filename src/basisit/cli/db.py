"""basisit db ...: the request database itself."""

from __future__ import annotations

import typer

from basisit.cli.common import console, group
from basisit.store import db

app = group("The request database (SQLite by default, PostgreSQL with BASISIT_DB_URL).")


@app.command("upgrade")
def upgrade() -> None:
    """Bring the database to the newest migration (also done automatically; never twice at
    once)."""
    before, now = db.upgrade()
    if before == now:
        console.print(f"database already at revision {now} (newest)", highlight=False)
    else:
        console.print(f"database upgraded from {before or 'empty'} to {now}", highlight=False)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="db")
