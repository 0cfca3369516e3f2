"""The billing address as street, post code, town and country (XRechnung needs post code and
town as fields of their own): each one-line address "Straße Nr, PLZ Ort" is split.

An address that cannot be split stops the migration, naming the Kommune, and nothing changes;
correct the address in the database and migrate again. The rule is written out here, not
imported: a migration must keep doing what it did when it was written.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

import re

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ONE_LINE = re.compile(r"^(?P<street>.+?)\s*[,\n]\s*(?:D-)?(?P<postcode>\d{5})\s+(?P<town>\S.*)$")


def upgrade() -> None:
    conn = op.get_bind()
    found = conn.execute(sa.text("SELECT ags, billing_address FROM onboardings ORDER BY ags"))
    split: list[dict[str, str]] = []
    refused: list[str] = []
    for ags, address in found:
        m = _ONE_LINE.match(" ".join(str(address).strip().split(" ")).strip())
        if not m or len(m.group("street").strip()) < 3:
            refused.append(f"{ags}: {address!r}")
            continue
        street, postcode, town = m.group("street", "postcode", "town")
        split.append({"ags": ags, "street": street.strip(), "postcode": postcode,
                      "town": town.strip()})  # fmt: skip
    if refused:
        raise RuntimeError(
            "cannot split these billing addresses into street, post code and town (expected "
            "'Straße Nr, PLZ Ort'); nothing was changed. Correct them, e.g. UPDATE onboardings "
            "SET billing_address = 'Im Kloster 1, 66636 Tholey' WHERE ags = '...', and migrate "
            "again: " + "; ".join(refused)
        )
    with op.batch_alter_table("onboardings") as batch:
        batch.add_column(sa.Column("street", sa.String(200), nullable=True))
        batch.add_column(sa.Column("postcode", sa.String(10), nullable=True))
        batch.add_column(sa.Column("town", sa.String(100), nullable=True))
        batch.add_column(sa.Column("country", sa.String(2), nullable=False, server_default="DE"))
    if split:
        conn.execute(
            sa.text("UPDATE onboardings SET street = :street, postcode = :postcode, "
                    "town = :town WHERE ags = :ags"),
            split,
        )  # fmt: skip
    with op.batch_alter_table("onboardings") as batch:
        batch.alter_column("street", existing_type=sa.String(200), nullable=False)
        batch.alter_column("postcode", existing_type=sa.String(10), nullable=False)
        batch.alter_column("town", existing_type=sa.String(100), nullable=False)
        batch.drop_column("billing_address")


def downgrade() -> None:
    with op.batch_alter_table("onboardings") as batch:
        batch.add_column(sa.Column("billing_address", sa.Text(), nullable=True))
    op.get_bind().execute(
        sa.text(
            "UPDATE onboardings SET billing_address = street || ', ' || postcode || ' ' || town"
        )
    )
    with op.batch_alter_table("onboardings") as batch:
        batch.alter_column("billing_address", existing_type=sa.Text(), nullable=False)
        for column in ("country", "town", "postcode", "street"):
            batch.drop_column(column)
