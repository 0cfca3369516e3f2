"""The run's log file: one per command under <data_dir>/logs/, kept 30 days or 200 runs,
never holding a secret; the CLI shows one line and names the file with the traceback."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from basisit import runlog
from basisit.cli.main import app
from basisit.vault.store import SecretStore

AGS = "10046118"


def logs(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "logs").glob("*.log"))


def test_every_command_writes_its_own_log_file(data_dir: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["catalog", "list"]).exit_code == 0
    missing = runner.invoke(app, ["catalog", "show", "fax"])
    assert missing.exit_code == 3 and "unknown service 'fax'" in missing.output
    files = logs(data_dir)
    assert len(files) == 2 and all("-catalog.log" in f.name for f in files)
    assert all(f.stat().st_mode & 0o777 == 0o600 for f in files)
    assert "refused: unknown service 'fax'" in files[-1].read_text()
    assert runlog.current() is None  # the handler is gone when the command ends


def test_a_crash_is_one_line_naming_the_log_with_the_traceback(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_: object) -> None:
        raise RuntimeError("the catalog exploded")

    monkeypatch.setattr("basisit.cli.catalog.load_catalog", boom)
    result = CliRunner().invoke(app, ["catalog", "list"])
    assert result.exit_code == 1
    (logfile,) = logs(data_dir)
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1, result.output
    assert "RuntimeError: the catalog exploded" in lines[0] and logfile.name in result.output
    text = logfile.read_text()
    assert "Traceback (most recent call last)" in text and "def boom" not in result.output
    assert 'raise RuntimeError("the catalog exploded")' in text


def test_no_secret_reaches_the_log(data_dir: Path) -> None:
    store = SecretStore()
    secret = b"correct-horse-battery-staple-42"
    store.put(AGS, "postgresql/app_password", secret)
    path = runlog.start("test")
    try:
        value = store.get(AGS, "postgresql/app_password").decode()
        passphrase = store.passphrase_file.read_text().strip()
        log = logging.getLogger("basisit.test")
        log.info("connecting with %s", value)
        log.info("the store key comes from %s", passphrase)
        log.info("env PGPASSWORD=%s token: abc123def456", "x" * 3)
        log.info("key -----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----")
        try:
            raise ValueError(f"bad password {value}")
        except ValueError:
            log.exception("failed")
    finally:
        runlog.stop()
    text = path.read_text()
    assert value not in text and passphrase not in text
    assert "abc123def456" not in text and "AAAA" not in text
    assert text.count(runlog.MASK) >= 6, text


def test_old_logs_go_after_30_days_or_200_runs(tmp_path: Path) -> None:
    now = time.time()
    for i in range(5):
        path = tmp_path / f"run{i}.log"
        path.write_text("x")
        os.utime(path, (now - i * 86400 * 10, now - i * 86400 * 10))  # 0, 10, 20, 30, 40 days
    removed = runlog.prune(tmp_path, keep_days=30, keep_runs=200, now=now)
    assert sorted(p.name for p in removed) == ["run3.log", "run4.log"]
    removed = runlog.prune(tmp_path, keep_days=30, keep_runs=2, now=now)
    assert [p.name for p in removed] == ["run2.log"]
    assert sorted(p.name for p in tmp_path.glob("*.log")) == ["run0.log", "run1.log"]


def test_retention_is_configurable(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASISIT_LOG_KEEP_RUNS", "2")
    runner = CliRunner()
    for _ in range(4):
        assert runner.invoke(app, ["catalog", "list"]).exit_code == 0
        time.sleep(0.01)
    assert len(logs(data_dir)) == 2
