"""Database faults as the suite's one error family: every failure of the driver, the engine or a
migration becomes one DatabaseUnavailable (exit 9) whose message says what failed, which database
(never its password) and what to do. basisit.store.db applies it at its three entry points
(engine creation with the automatic migration, `basisit db upgrade`, every session)."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from basisit.errors import DatabaseUnavailable
from basisit.files import LockBusy

TIMEOUT_ENV = "BASISIT_DB_TIMEOUT"
DEFAULT_TIMEOUT_S = 10.0


def timeout_s() -> float:
    """How long a command waits for a database another command holds (SQLite's busy timeout,
    PostgreSQL's connect and lock timeouts): BASISIT_DB_TIMEOUT seconds, default 10."""
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    try:
        return max(float(raw), 0.0) if raw else DEFAULT_TIMEOUT_S
    except ValueError:
        return DEFAULT_TIMEOUT_S


def sqlite_file(url: str) -> str | None:
    """The SQLite file of `url` (also of a `sqlite:///file:PATH?mode=ro&uri=true` URL); None
    for another database or an in-memory one."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    if parsed.query.get("uri") == "true" and database.startswith("file:"):
        database = database.removeprefix("file:").split("?", 1)[0]
        if database in ("", ":memory:") or parsed.query.get("mode") == "memory":
            return None
    return database


def where(url: str) -> str:
    """The database as a user recognises it: the SQLite file, or the URL without its password."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "BASISIT_DB_URL (not a database URL)"
    if parsed.get_backend_name() == "sqlite":
        return sqlite_file(url) or ":memory:"
    shown = parsed.set(drivername=parsed.get_backend_name())
    return shown.render_as_string(hide_password=True)


def _password(url: str) -> str:
    try:
        return str(make_url(url).password or "")
    except ArgumentError:
        return ""


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def _who(pid: int) -> str:
    """`pid 123 (basisit request approve)`: the program and its subcommand, never arguments."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return f"pid {pid}"
    words = [os.path.basename(argv[0])] if argv and argv[0] else []
    for word in argv[1:4]:
        if not word or word.startswith("-") or "=" in word:
            break
        words.append(word)
    return f"pid {pid} ({' '.join(words)})" if words else f"pid {pid}"


def sqlite_holders(database: str) -> list[str]:
    """Processes holding a write lock on the SQLite file or its WAL index (from /proc/locks);
    empty when that cannot be known."""
    inodes = set()
    for suffix in ("", "-shm", "-wal"):
        try:
            inodes.add(os.stat(database + suffix).st_ino)
        except OSError:
            continue
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return []
    pids: set[int] = set()
    for line in lines:
        fields = line.split()
        if "->" in fields or len(fields) < 6 or "WRITE" not in fields:
            continue
        pid, inode = fields[4], fields[5].rsplit(":", 1)[-1]
        if not (pid.isdigit() and inode.isdigit()) or int(pid) in (0, os.getpid()):
            continue
        if int(inode) in inodes:
            pids.add(int(pid))
    return [_who(pid) for pid in sorted(pids)]


def unavailable(exc: BaseException, url: str, doing: str) -> DatabaseUnavailable:
    """The one line for a database failure while `doing` (e.g. "open", "migrate")."""
    db = where(url)
    reason = _first_line(exc)
    low = reason.lower()
    wait = f"{timeout_s():g}"
    if isinstance(exc, LockBusy):
        message = (
            f"cannot {doing} the database {db}: another basisit command is migrating it "
            f"({exc.holder or 'holder unknown'}); retry when it is done"
        )
    elif isinstance(exc, ArgumentError | NoSuchModuleError | ImportError):
        message = (
            f"BASISIT_DB_URL is not a database the suite can use ({reason}); "
            "set it to postgresql://user:password@host/db, or unset it for SQLite"
        )
    elif "database is locked" in low or "lock timeout" in low or "table is locked" in low:
        file = sqlite_file(url)
        holders = sqlite_holders(file) if file else []
        held = f" ({', '.join(holders)})" if holders else ""
        message = (
            f"cannot {doing} the database {db}: another basisit command holds it{held}; "
            f"nothing was stored. Retry when it is done (waited {wait} s, {TIMEOUT_ENV})"
        )
    elif "readonly" in low or "read-only" in low or "read only" in low:
        message = (
            f"cannot {doing} the database {db}: it is read-only ({reason}); nothing was "
            "stored. Make it writable for this user (the file and its directory), or set "
            "BASISIT_DB_URL to a writable database"
        )
    elif "unable to open database file" in low:
        message = (
            f"cannot {doing} the database {db}: the file cannot be opened or created "
            "(missing or read-only directory?); check BASISIT_DATA_DIR or BASISIT_DB_URL"
        )
    elif (isinstance(exc, DBAPIError) and exc.connection_invalidated) or "connect" in low:
        message = (
            f"cannot {doing} the database {db}: cannot connect ({reason}); start the "
            "database server or fix BASISIT_DB_URL, then retry"
        )
    elif isinstance(exc, OSError):
        message = f"cannot {doing} the database {db}: {exc}; check the data directory"
    else:
        message = f"cannot {doing} the database {db}: {reason}; nothing was stored"
    password = _password(url)
    if len(password) >= 4:
        message = message.replace(password, "***")
    return DatabaseUnavailable(message)
