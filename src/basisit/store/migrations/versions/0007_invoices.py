"""Issued e-invoices and their gapless per-year numbers; triggers refuse any change to an
issued invoice (it is kept ten years as issued).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_SQLITE = """
CREATE TRIGGER invoices_never_{what} BEFORE {WHAT} ON invoices
BEGIN SELECT RAISE(ABORT, 'an issued invoice never changes: issue a credit note'); END
"""
_PG_FUNCTION = """
CREATE FUNCTION invoices_never_change() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'an issued invoice never changes: issue a credit note'; END
$$ LANGUAGE plpgsql
"""
_PG_TRIGGER = """
CREATE TRIGGER invoices_never_change BEFORE UPDATE OR DELETE ON invoices
FOR EACH ROW EXECUTE FUNCTION invoices_never_change()
"""


def upgrade() -> None:
    op.create_table(
        "invoice_counters",
        sa.Column("year", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("last", sa.Integer(), nullable=False),
    )
    op.create_table(
        "invoices",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("number", sa.String(20), nullable=False, unique=True),
        sa.Column("ags", sa.String(8), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("type_code", sa.String(3), nullable=False),
        sa.Column("preceding_number", sa.String(20), nullable=True),
        sa.Column("issue_date", sa.Date(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_by", sa.String(100), nullable=False),
        sa.Column("net_cent", sa.BigInteger(), nullable=False),
        sa.Column("vat_cent", sa.BigInteger(), nullable=False),
        sa.Column("gross_cent", sa.BigInteger(), nullable=False),
        sa.Column("allowance_cent", sa.BigInteger(), nullable=False),
        sa.Column("vat_category", sa.String(2), nullable=False),
        sa.Column("vat_rate", sa.Numeric(5, 2), nullable=False),
        sa.Column("amounts_digest", sa.String(64), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("rule_versions", sa.JSON(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("xml", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_invoices_ags_month", "invoices", ["ags", "month"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        op.execute(_PG_TRIGGER)
    else:
        for what in ("update", "delete"):
            op.execute(_SQLITE.format(what=what, WHAT=what.upper()))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER invoices_never_change ON invoices")
        op.execute("DROP FUNCTION invoices_never_change()")
    op.drop_table("invoices")
    op.drop_table("invoice_counters")
