"""Deployments and configuration runs as rows of the request database (migration 0002):
`basisit status` reads them; `basisit db upgrade`; migrations never run twice at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from basisit.app import records
from basisit.cli.main import app
from basisit.oplock import KommuneLock
from basisit.provision.operations import Result
from basisit.store import db

RUN = CliRunner()


def status() -> list[dict[str, object]]:
    result = RUN.invoke(app, ["status", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows: list[dict[str, object]] = json.loads(result.output)
    return rows


def test_status_reads_the_deployments_table() -> None:
    assert status() == []
    first = records.start_deployment("10046118", "deploy", "local", "ops", [1, 2])
    done = Result("10046118", "deploy", changes={"create": 7}, resource_count=7, duration_s=3.2)
    records.finish_deployment(first, result=done)
    failed = records.start_deployment("10041100", "deploy", "local", "ops", [])
    records.finish_deployment(failed, error="podman: no space left")
    rows = {r["ags"]: r for r in status()}
    assert rows["10046118"]["outcome"] == "succeeded"
    assert rows["10046118"]["resource_count"] == 7 and rows["10046118"]["target"] == "local"
    assert (rows["10041100"]["outcome"], rows["10041100"]["error"]) == (
        "failed",
        "podman: no space left",
    )
    # A destroy is the last change; the count stays the last one known.
    gone = records.start_deployment("10046118", "destroy", "local", "ops", [])
    records.finish_deployment(gone, result=Result("10046118", "destroy", resource_count=0))
    assert {r["ags"]: r["last_operation"] for r in status()}["10046118"] == "destroy"


def test_a_running_row_whose_lock_is_free_was_interrupted() -> None:
    records.start_deployment("10046118", "deploy", "local", "ops", [])
    with KommuneLock("10046118", "deploy"):
        assert status()[0]["outcome"] == "running"
    assert status()[0]["outcome"] == "interrupted"


def test_db_upgrade_reports_the_newest_revision(data_dir: Path) -> None:
    first = RUN.invoke(app, ["db", "upgrade"])
    assert first.exit_code == 0, first.output
    assert db.head_revision() in first.output
    again = RUN.invoke(app, ["db", "upgrade"])
    assert f"already at revision {db.head_revision()}" in again.output


def test_migrations_of_one_sqlite_file_run_one_at_a_time(data_dir: Path) -> None:
    script = "from basisit.store import db; print(db.upgrade())"
    racers = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                         stderr=subprocess.PIPE, env=os.environ)
        for _ in range(3)
    ]  # fmt: skip
    outputs = [r.communicate(timeout=120) for r in racers]
    assert all(r.returncode == 0 for r in racers), outputs
    befores = [out.strip() for out, _ in outputs]
    # Exactly one of them found the file empty; the others waited and found it at head.
    assert sum(b.startswith("(None,") for b in befores) == 1, befores
    assert (data_dir / "basisit.sqlite.migrate.lock").exists()
