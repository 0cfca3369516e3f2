"""Database faults are one line and exit 9 (DatabaseUnavailable), never a traceback, and leave
nothing half-written: a database another process holds, a read-only one, a server that is down,
a URL the suite cannot use. Real processes hold the locks; every wait is bounded."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from basisit.cli.main import app
from basisit.errors import DatabaseUnavailable
from basisit.store import db

RUN = CliRunner()
TH = "10046118"
ONBOARD = [
    "kommunen", "onboard", TH, "--contact-name", "Anna Muster", "--contact-email",
    "it@tholey.de", "--cost-centre", "KST-4711", "--billing-address",
    "Im Kloster 1, 66636 Tholey", "--leitweg-id", "10046118-32",
]  # fmt: skip

# Holds the database until its stdin closes (at most 20 s): a write lock on SQLite, an
# exclusive table lock on PostgreSQL.
_HOLDER = """
import sys, time
url = sys.argv[1]
if url.startswith("sqlite"):
    import sqlite3
    conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
else:
    import psycopg
    conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
    conn.execute("LOCK TABLE onboardings IN ACCESS EXCLUSIVE MODE")
print("holding", flush=True)
sys.stdin.read()
"""


def _one_line_error(output: str) -> str:
    assert "Traceback" not in output and "(a bug;" not in output, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    return lines[0]


@contextmanager
def _held(url: str) -> Iterator[subprocess.Popen[str]]:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, url],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=os.environ,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        yield holder
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=20)


def _onboarded() -> bool:
    result = RUN.invoke(app, ["kommunen", "show", TH])
    assert result.exit_code == 0, result.output
    return "onboarded_at" in result.output


def test_a_database_held_by_another_process_is_busy_and_nothing_is_stored(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BASISIT_DB_TIMEOUT", "0.5")  # read when a connection opens
    db.engine()  # migrated before the holder takes its lock
    with _held(db.database_url()) as holder:
        # A real second command, bounded: it must give up on its own, well before 20 s.
        basisit = Path(sys.executable).with_name("basisit")
        result = subprocess.run(
            [str(basisit), *ONBOARD], capture_output=True, text=True, timeout=20, env=os.environ
        )
        assert result.returncode == DatabaseUnavailable.exit_code == 9, result
        line = _one_line_error(result.stdout + result.stderr)
        assert "another basisit command holds it" in line and "Retry" in line, line
        assert "waited 0.5 s" in line, line
        if database == "sqlite":
            assert f"pid {holder.pid}" in line and "basisit.sqlite" in line, line
    assert not _onboarded()  # nothing half-written; now it goes through
    assert RUN.invoke(app, ONBOARD).exit_code == 0 and _onboarded()


def test_a_read_only_database_refuses_writes_in_one_line(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db.engine()
    writable = db.database_url()
    if database == "sqlite":
        path = db.database_url().removeprefix("sqlite:///")
        url = f"sqlite:///file:{path}?mode=ro&uri=true"
    else:
        url = db.database_url()
        with db.engine().begin() as conn:
            name = conn.exec_driver_sql("SELECT current_database()").scalar()
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
        db.engine().dispose()
    monkeypatch.setenv("BASISIT_DB_URL", url)
    try:
        result = RUN.invoke(app, ONBOARD)
        assert result.exit_code == 9, result.output
        line = _one_line_error(result.output)
        assert "it is read-only" in line and "nothing was stored" in line, line
        assert RUN.invoke(app, ["request", "list"]).exit_code == 0  # reading still works
    finally:  # PostgreSQL's throwaway database stays read-only: the fixture drops it
        db.engine_for.cache_clear()
    monkeypatch.setenv("BASISIT_DB_URL", writable)
    assert not _onboarded()


def test_a_fresh_read_only_sqlite_file_fails_its_migration_in_one_line(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = data_dir / "empty.sqlite"
    empty.touch()
    monkeypatch.setenv("BASISIT_DB_URL", f"sqlite:///file:{empty}?mode=ro&uri=true")
    result = RUN.invoke(app, ["request", "list"])
    assert result.exit_code == 9, result.output
    assert "cannot open the database" in _one_line_error(result.output)
    upgrade = RUN.invoke(app, ["db", "upgrade"])
    assert upgrade.exit_code == 9 and "cannot upgrade" in _one_line_error(upgrade.output)


@pytest.mark.parametrize("command", [["request", "list"], ["db", "upgrade"], ONBOARD])
def test_a_postgresql_server_that_is_down_is_one_line_without_the_password(
    command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BASISIT_DB_URL", "postgresql://basisit:geheim-99@127.0.0.1:1/basisit")
    result = RUN.invoke(app, command)
    assert result.exit_code == 9, result.output
    line = _one_line_error(result.output)
    assert "postgresql://basisit:***@127.0.0.1:1/basisit" in line, line
    assert "cannot connect" in line and "start the database server" in line, line
    assert "geheim-99" not in result.output


@pytest.mark.parametrize(
    "url", ["mysql://ops:geheim-99@127.0.0.1/x", "nonsense://ops:geheim-99@h/x", "::not a url"]
)
def test_a_database_url_the_suite_cannot_use_is_one_line(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BASISIT_DB_URL", url)
    result = RUN.invoke(app, ["request", "list"])
    assert result.exit_code == 9, result.output
    line = _one_line_error(result.output)
    assert "BASISIT_DB_URL is not a database the suite can use" in line, line
    assert "geheim-99" not in result.output
