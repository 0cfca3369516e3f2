"""An index of the provisional ledger rows by hour, for the month's sums.

Final rows are read by hour through the unique partial index of final rows; the few
provisional ones had none, so every read of a month scanned the whole ledger (a year of 58
Kommunen is 8 million rows). Partial: inserting final rows does not touch it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_ledger_rows_provisional",
        "ledger_rows",
        ["hour_start"],
        sqlite_where=sa.text("status = 'provisional'"),
        postgresql_where=sa.text("status = 'provisional'"),
    )


def downgrade() -> None:
    op.drop_index("ix_ledger_rows_provisional", table_name="ledger_rows")
