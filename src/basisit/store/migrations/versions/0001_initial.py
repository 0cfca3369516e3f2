"""Onboardings, requests, approvals and the audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "onboardings",
        sa.Column("ags", sa.String(8), primary_key=True),
        sa.Column("contact_name", sa.String(200), nullable=False),
        sa.Column("contact_email", sa.String(200), nullable=False),
        sa.Column("cost_centre", sa.String(50), nullable=False),
        sa.Column("billing_address", sa.Text(), nullable=False),
        sa.Column("leitweg_id", sa.String(46), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("onboarded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("onboarded_by", sa.String(100), nullable=False),
        sa.Column("offboarded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("offboarded_by", sa.String(100), nullable=True),
    )
    op.create_table(
        "requests",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("ags", sa.String(8), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("instance", sa.String(32), nullable=False),
        sa.Column("service_id", sa.String(50), nullable=False),
        sa.Column("service_version", sa.Integer(), nullable=False),
        sa.Column("plan", sa.String(50), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("schutzbedarf", sa.String(20), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("monthly_eur", sa.Numeric(12, 2), nullable=True),
        sa.Column("one_time_eur", sa.Numeric(12, 2), nullable=True),
        sa.Column("price_lines", sa.JSON(), nullable=True),
        sa.Column("needs_finance", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
    )
    op.create_index("ix_requests_ags", "requests", ["ags"])
    op.create_index("ix_requests_state", "requests", ["state"])
    op.create_index("ix_requests_ags_instance", "requests", ["ags", "instance"])
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("request_id", sa.Integer(), sa.ForeignKey("requests.id"), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.UniqueConstraint("request_id", "role", name="uq_approval_request_role"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("ags", sa.String(8), nullable=False),
        sa.Column("request_id", sa.Integer(), sa.ForeignKey("requests.id"), nullable=True),
        sa.Column("action", sa.String(30), nullable=False),
        sa.Column("from_state", sa.String(20), nullable=True),
        sa.Column("to_state", sa.String(20), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_ags", "audit_log", ["ags"])


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("approvals")
    op.drop_table("requests")
    op.drop_table("onboardings")
