"""Standard logging for every run: one log file per command under <data_dir>/logs/.

`start(command)` (the CLI calls it once per invocation) sends the `basisit` loggers to
`<data_dir>/logs/<UTC time>-<pid>-<command>.log` (mode 0600) at DEBUG and prunes old files:
kept are the newest BASISIT_LOG_KEEP_RUNS (default 200) of the last BASISIT_LOG_KEEP_DAYS
(default 30) days. The CLI shows one line per error and names this file, which holds the
traceback; a portal worker gets the same records from the same loggers.

A log never holds a secret: every record passes a filter that replaces each value the vault
has handed out in this process (`add_secret`, called by basisit.vault), and anything that
looks like a private key block or a `password=`/`secret=`/`token=` assignment, with `***`.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import time
from collections.abc import Iterable
from pathlib import Path

from basisit import paths

LOGGER = "basisit"
DEFAULT_KEEP_DAYS = 30
DEFAULT_KEEP_RUNS = 200
MASK = "***"
# Shorter values are not worth masking (and would mask ordinary words).
_MIN_SECRET = 8
_PATTERNS = (
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
    re.compile(r"(?i)(\w*(?:password|passwd|passphrase|secret|token))(\s*[=:]\s*)(\S+)"),
)
_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [%(process)d]: %(message)s"

_secrets: set[str] = set()
_handler: logging.FileHandler | None = None


def add_secret(value: str | bytes) -> None:
    """A value the logs must never show (the vault registers what it decrypts)."""
    text = value.decode("utf-8", errors="ignore") if isinstance(value, bytes) else value
    for part in {text.strip(), *(line.strip() for line in text.splitlines())}:
        if len(part) >= _MIN_SECRET and not part.startswith("-----"):
            _secrets.add(part)


def add_secrets(values: Iterable[str]) -> None:
    for value in values:
        add_secret(value)


def redact(text: str) -> str:
    """The text with every known secret and secret-looking assignment replaced by ***."""
    for value in sorted(_secrets, key=len, reverse=True):
        if value in text:
            text = text.replace(value, MASK)
    text = _PATTERNS[0].sub(MASK, text)
    return _PATTERNS[1].sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)


class RedactingFormatter(logging.Formatter):
    """Formats as usual (traceback included), then redacts the whole text."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def logs_dir() -> Path:
    path = paths.data_dir() / "logs"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _setting(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        return max(int(raw), 0) if raw else default
    except ValueError:
        return default


def prune(folder: Path, *, keep_days: int, keep_runs: int, now: float | None = None) -> list[Path]:
    """Remove logs older than keep_days and all but the newest keep_runs; returns the removed."""
    files = sorted(folder.glob("*.log"), key=lambda p: p.stat().st_mtime, reverse=True)
    cutoff = (now if now is not None else time.time()) - keep_days * 86400
    removed = [p for i, p in enumerate(files) if i >= keep_runs or p.stat().st_mtime <= cutoff]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def current() -> Path | None:
    """The log file of this run, once started."""
    return Path(_handler.baseFilename) if _handler is not None else None


def start(command: str) -> Path:
    """Send the basisit loggers to a new file for this run (once per process run)."""
    if _handler is not None:
        return Path(_handler.baseFilename)
    folder = logs_dir()
    prune(
        folder,
        keep_days=_setting("BASISIT_LOG_KEEP_DAYS", DEFAULT_KEEP_DAYS),
        keep_runs=max(_setting("BASISIT_LOG_KEEP_RUNS", DEFAULT_KEEP_RUNS) - 1, 0),
    )
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", command).strip("-") or "run"
    for n in range(1000):  # runs in one second of one process get their own files
        path = folder / f"{stamp}-{os.getpid()}{f'.{n}' if n else ''}-{name}.log"
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            break
        except FileExistsError:
            continue
    else:
        raise RuntimeError(f"no free log file name in {folder}")
    return attach(path)


def attach(path: Path) -> Path:
    """Send the basisit loggers to an existing run's file (a fleet worker to its parent's)."""
    global _handler
    if _handler is not None:
        return Path(_handler.baseFilename)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(RedactingFormatter(_FORMAT))
    handler.setLevel(logging.DEBUG)
    logger = logging.getLogger(LOGGER)
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    _handler = handler
    return path


def stop() -> None:
    """Detach and close this run's file (the CLI calls it when the command ends)."""
    global _handler
    if _handler is None:
        return
    logging.getLogger(LOGGER).removeHandler(_handler)
    _handler.close()
    _handler = None
