"""The request database: SQLAlchemy 2 models, sessions, Alembic migrations."""
