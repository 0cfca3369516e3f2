"""The usage ledger: import runs and hourly rows (contract 3's source).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_imports",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("range_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("range_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("provisional_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("prometheus_url", sa.String(200), nullable=False),
        sa.Column("prometheus_version", sa.String(100), nullable=False),
        sa.Column("queries", sa.JSON(), nullable=False),
        sa.Column("hold_seconds", sa.Integer(), nullable=False),
        sa.Column("gap_rule", sa.JSON(), nullable=False),
        sa.Column("boundary_rule", sa.Text(), nullable=False),
        sa.Column("rows_written", sa.Integer(), nullable=False),
    )
    op.create_index("ix_ledger_imports_finished_at", "ledger_imports", ["finished_at"])
    op.create_table(
        "ledger_rows",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("import_id", sa.Integer(), sa.ForeignKey("ledger_imports.id"), nullable=False),
        sa.Column("ags", sa.String(8), nullable=False),
        sa.Column("instance", sa.String(32), nullable=False),
        sa.Column("catalog_service", sa.String(50), nullable=False),
        sa.Column("plan", sa.String(50), nullable=False),
        sa.Column("request_id", sa.Integer(), sa.ForeignKey("requests.id"), nullable=False),
        sa.Column("unit", sa.String(50), nullable=False),
        sa.Column("metric", sa.String(100), nullable=True),
        sa.Column("base_unit", sa.String(16), nullable=False),
        sa.Column("hour_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seconds", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("amount_cent", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("quality", sa.String(16), nullable=False),
        sa.Column("covered_seconds", sa.Integer(), nullable=True),
        sa.Column("filled_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("corrects_id", sa.Integer(), sa.ForeignKey("ledger_rows.id"), nullable=True),
    )
    op.create_index(
        "uq_ledger_rows_final",
        "ledger_rows",
        ["hour_start", "ags", "instance", "unit", "request_id"],
        unique=True,
        sqlite_where=sa.text("status = 'final'"),
        postgresql_where=sa.text("status = 'final'"),
    )
    op.create_index(
        "uq_ledger_rows_corrects",
        "ledger_rows",
        ["corrects_id"],
        unique=True,
        sqlite_where=sa.text("corrects_id IS NOT NULL"),
        postgresql_where=sa.text("corrects_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_table("ledger_rows")
    op.drop_table("ledger_imports")
