"""Run records: one JSON file per configuration run under data_dir()/runs/<ags>/.

The request database has no table for runs, so the record is a file; its layout (per-host
ok/changed/failed/unreachable, requests and their outcome) is what a DB table would hold.
Records hold no secrets: host errors and the stdout tail are scrubbed by the driver.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from basisit import paths
from basisit.configure.runner import RunResult


def runs_dir(ags: str) -> Path:
    return paths.data_dir() / "runs" / ags


def write_record(
    result: RunResult, requests: dict[int, str | None], extra: dict[str, Any] | None = None
) -> Path:
    folder = runs_dir(result.ags)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = result.started_at.replace("-", "").replace(":", "")
    record = result.to_record()
    record["requests"] = {str(k): v for k, v in sorted(requests.items())}
    record.update(extra or {})
    for n in range(100):  # two runs in one second get distinct names
        path = folder / (f"{stamp}.json" if n == 0 else f"{stamp}-{n}.json")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(record, fh, indent=2, ensure_ascii=False)
            fh.write("\n")
        return path
    raise RuntimeError(f"cannot find a free record name in {folder}")


def list_records(ags: str) -> list[Path]:
    folder = runs_dir(ags)
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def read_record(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data
