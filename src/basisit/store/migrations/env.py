"""Alembic environment: runs on the connection the suite hands over."""

from alembic import context

from basisit.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("basisit migrations run through basisit.store.db.migrate()")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
