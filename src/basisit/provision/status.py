"""A status record per deployment: what ran on which Kommune, when, and how it ended.

<data_dir>/provision/status/<ags>.json holds the last operation and the last change (deploy
or destroy); <ags>.history.jsonl keeps every record. A record still "running" whose lock is
free belongs to a run that was killed: `basisit status` shows it as interrupted.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from basisit import paths
from basisit.files import atomic_write

CHANGING = ("deploy", "destroy")


def status_dir() -> Path:
    path = paths.data_dir() / "provision" / "status"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def _path(ags: str) -> Path:
    return status_dir() / f"{ags}.json"


def read(ags: str) -> dict[str, Any]:
    path = _path(ags)
    if not path.is_file():
        return {"ags": ags}
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _write(ags: str, data: dict[str, Any]) -> None:
    atomic_write(_path(ags), json.dumps(data, indent=1, sort_keys=True))


def start(ags: str, operation: str, target: str) -> dict[str, Any]:
    record = {
        "ags": ags,
        "operation": operation,
        "target": target,
        "outcome": "running",
        "started_at": _now(),
        "pid": os.getpid(),
    }
    data = read(ags)
    data["last"] = record
    if operation in CHANGING:
        data["last_change"] = record
    _write(ags, data)
    return record


def finish(
    ags: str,
    record: dict[str, Any],
    *,
    outcome: str,
    error: str | None = None,
    changes: dict[str, int] | None = None,
    resource_count: int | None = None,
    duration_s: float | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    record = {
        **record,
        "outcome": outcome,
        "finished_at": _now(),
        "error": error,
        "changes": changes or {},
        "duration_s": round(duration_s, 2) if duration_s is not None else None,
        **(extra or {}),
    }
    if resource_count is not None:
        record["resource_count"] = resource_count
    data = read(ags)
    data["last"] = record
    if record["operation"] in CHANGING:
        data["last_change"] = record
        if resource_count is not None:
            data["resource_count"] = resource_count
        data["target"] = record["target"]
    _write(ags, data)
    with (status_dir() / f"{ags}.history.jsonl").open("a") as fh:
        fh.write(json.dumps(record, sort_keys=True) + "\n")
    return record


def all_records() -> list[dict[str, Any]]:
    return [
        json.loads(p.read_text())
        for p in sorted(status_dir().glob("*.json"))
        if not p.name.startswith(".")
    ]
