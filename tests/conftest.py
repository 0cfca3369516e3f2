"""Shared fixtures: every test gets its own data directory and database."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from basisit.catalog import Catalog, load_catalog
from basisit.leitweg import make as make_leitweg

PG_ENV = "BASISIT_TEST_PG_URL"


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test touches the demo's data: each has a fresh BASISIT_DATA_DIR."""
    path = tmp_path / "data"
    path.mkdir()
    monkeypatch.setenv("BASISIT_DATA_DIR", str(path))
    monkeypatch.delenv("BASISIT_DB_URL", raising=False)
    monkeypatch.setenv("BASISIT_ACTOR", "test-operator")
    return path


def _fresh_pg_database(admin_url: str) -> tuple[str, str]:
    import psycopg

    name = f"basisit_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = admin_url.rpartition("/")
    return name, f"{base}/{name}"


def _drop_pg_database(admin_url: str, name: str) -> None:
    import psycopg

    from basisit.store import db

    db.engine_for.cache_clear()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run the test once on SQLite and once on PostgreSQL (BASISIT_TEST_PG_URL)."""
    if request.param == "sqlite":
        yield "sqlite"
        return
    admin = os.environ.get(PG_ENV)
    if not admin:
        if os.environ.get("CI"):
            pytest.fail(
                f"{PG_ENV} is not set: CI must test PostgreSQL (scripts/test.sh starts one)"
            )
        pytest.skip(f"{PG_ENV} not set")
    name, url = _fresh_pg_database(admin)
    monkeypatch.setenv("BASISIT_DB_URL", url)
    try:
        yield "postgresql"
    finally:
        _drop_pg_database(admin, name)


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture
def onboarded(database: str) -> str:
    """Tholey, onboarded; returns its AGS."""
    from basisit.requests import onboarding
    from basisit.store.db import session_scope

    with session_scope() as session:
        onboarding.onboard(
            session,
            ags="10046118",
            contact_name="Anna Muster",
            contact_email="it@tholey.de",
            cost_centre="KST-4711",
            billing_address="Im Kloster 1, 66636 Tholey",
            leitweg_id=make_leitweg("10046118"),
            actor="test-operator",
        )
    return "10046118"
