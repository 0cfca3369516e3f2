"""Engine and sessions for SQLite (default) or PostgreSQL (BASISIT_DB_URL)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.util import CommandError
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from basisit import paths
from basisit.errors import Conflict, ValidationFailed
from basisit.files import LockBusy, flock
from basisit.store import faults

MIGRATIONS = Path(__file__).parent / "migrations"


def database_url() -> str:
    url = os.environ.get("BASISIT_DB_URL")
    if url:
        # psycopg 3 is the driver we ship; accept plain postgresql:// URLs.
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        return url
    return f"sqlite:///{paths.data_dir() / 'basisit.sqlite'}"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    # WAL lets readers go on while a writer commits; busy_timeout makes racing writers wait
    # for the lock instead of failing at once (the loser still fails on its version check).
    cur.execute("PRAGMA journal_mode=WAL")
    # BASISIT_DB_TIMEOUT (default 10 s); then the command ends with "another basisit command
    # holds it" (store.faults) instead of waiting on.
    cur.execute(f"PRAGMA busy_timeout={int(faults.timeout_s() * 1000)}")
    cur.close()


# Any fixed number: the PostgreSQL advisory lock that serialises migrations of one database.
_PG_MIGRATION_LOCK = 0x62617369  # "basi"


def _upgrade(engine: Engine) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Held to the end of this transaction: a second migrator waits, then finds the
            # schema at head and does nothing.
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """SQLite: an flock beside the database file (PostgreSQL locks inside _upgrade)."""
    database = faults.sqlite_file(engine.url.render_as_string(hide_password=False))
    if database:
        # Bounded: a migration takes well under a second; a holder that long is stuck.
        with flock(Path(f"{database}.migrate.lock"), wait=max(faults.timeout_s(), 30.0)):
            yield
    else:
        yield


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration; safe to call every time, never twice at once
    (SQLite: an flock beside the database file; PostgreSQL: an advisory lock)."""
    with _migration_lock(engine):
        _upgrade(engine)


def head_revision() -> str:
    """The newest migration's revision (what `basisit db upgrade` brings the database to)."""
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return str(ScriptDirectory.from_config(cfg).get_current_head())


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


# What can fail in the driver, the engine or a migration; each becomes one DatabaseUnavailable.
_FAULTS = (SQLAlchemyError, CommandError, LockBusy, OSError, ImportError)


@contextmanager
def _faults_mapped(url: str, doing: str) -> Iterator[None]:
    try:
        yield
    except _FAULTS as exc:
        raise faults.unavailable(exc, url, doing) from exc


def _new_engine(url: str) -> Engine:
    connect_args: dict[str, Any] = {}
    if url.startswith("postgresql"):
        # Bounded waits: for a server that does not answer, and for a lock another command
        # holds (a row, a table, the migration lock); both end in DatabaseUnavailable.
        wait = faults.timeout_s()
        connect_args = {
            "connect_timeout": max(int(wait), 1),
            "options": f"-c lock_timeout={max(int(wait * 1000), 1)}",
        }
    engine = create_engine(url, future=True, connect_args=connect_args)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


@cache
def engine_for(url: str) -> Engine:
    with _faults_mapped(url, "open"):
        engine = _new_engine(url)
        migrate(engine)  # automatic, and serialised (see migrate)
    return engine


def upgrade() -> tuple[str | None, str]:
    """`basisit db upgrade`: the configured database to the newest migration.

    Returns (revision before, revision now).
    """
    url = database_url()
    with _faults_mapped(url, "upgrade"):
        engine = _new_engine(url)
        try:
            with _migration_lock(engine):
                before = current_revision(engine)
                _upgrade(engine)
                return before, str(current_revision(engine))
        finally:
            engine.dispose()


def engine() -> Engine:
    return engine_for(database_url())


@contextmanager
def session_scope() -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back whole on any error."""
    url = database_url()
    factory = sessionmaker(bind=engine_for(url), expire_on_commit=False)
    session = factory()
    try:
        yield session
        session.commit()
    except (StaleDataError, IntegrityError) as exc:
        session.rollback()
        if "never changes" in str(getattr(exc, "orig", "")):  # migration 0007's triggers
            raise Conflict(
                "an issued invoice never changes: a correction is a credit note and a new "
                "invoice (basisit invoice --issue); nothing was stored"
            ) from exc
        raise Conflict(
            "someone else changed the same data at the same time; nothing was stored. "
            f"Look at it again and retry. ({type(exc).__name__})"
        ) from exc
    except DataError as exc:
        # A value the database cannot hold (too long, out of range): a user error, not a crash.
        session.rollback()
        raise ValidationFailed(
            f"the database refused a value, nothing was stored: {exc.orig}".splitlines()[0]
        ) from exc
    except SQLAlchemyError as exc:
        # Locked, read-only, server gone: the transaction is rolled back whole.
        with suppress(SQLAlchemyError):
            session.rollback()
        raise faults.unavailable(exc, url, "use") from exc
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
