"""The ledger's month sums, kept by the import (basisit.store.ledger_sums), built here once
from the rows already in the ledger.

Billing read a month as 700,000 rows (58 Kommunen, about 10 s a month in SQLite); it now reads
about a thousand sums. They are derived data, so they are built with the current definition
of a month's sums; a later migration that changes these tables rebuilds them itself.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _key() -> list[sa.Column[object]]:
    """A line's key columns (new objects for each table)."""
    return [
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("ags", sa.String(8), nullable=False),
        sa.Column("instance", sa.String(32), nullable=False),
        sa.Column("catalog_service", sa.String(50), nullable=False),
        sa.Column("unit", sa.String(50), nullable=False),
        sa.Column("plan", sa.String(50), nullable=False),
    ]


_KEY_NAMES = ["month", "ags", "instance", "catalog_service", "unit", "plan"]


def upgrade() -> None:
    op.create_table(
        "ledger_month_lines",
        *_key(),
        sa.Column("metric", sa.String(100), nullable=True),
        sa.Column("base_unit", sa.String(16), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("hours", sa.Integer(), nullable=False),
        sa.Column("gap_hours", sa.Integer(), nullable=False),
        sa.Column("no_measurement_hours", sa.Integer(), nullable=False),
        sa.Column("provisional_hours", sa.Integer(), nullable=False),
        sa.Column("fee_rows", sa.Integer(), nullable=False),
        sa.Column("amount_cent", sa.BigInteger(), nullable=False),
        sa.Column("first_hour", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint(*_KEY_NAMES, name="uq_ledger_month_lines"),
    )
    op.create_table(
        "ledger_month_requests",
        *_key(),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.UniqueConstraint(*_KEY_NAMES, "request_id", name="uq_ledger_month_requests"),
    )
    op.create_table(
        "ledger_month_kommunen",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("ags", sa.String(8), nullable=False),
        sa.Column("billable_seconds", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("month", "ags", name="uq_ledger_month_kommunen"),
    )
    # Imported here, not at the top: alembic loads every revision to find the head.
    from basisit.store import ledger_sums

    conn = op.get_bind()
    for month in ledger_sums.months(conn):
        ledger_sums.replace_month(conn, month, ledger_sums.recompute(conn, month))


def downgrade() -> None:
    for table in ("ledger_month_kommunen", "ledger_month_requests", "ledger_month_lines"):
        op.drop_table(table)
