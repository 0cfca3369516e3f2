"""Contract 2: the stack outputs of a Kommune as <data_dir>/outputs/<ags>.json.

Written after every successful deploy, checked against the schema first, replaced atomically
so a reader (inventory, scrape targets) never sees half a file; removed after a destroy.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from basisit import paths
from basisit.provision.errors import ProvisionError

SCHEMA = "stack-outputs.v1.schema.json"


@cache
def schema() -> dict[str, Any]:
    return json.loads(resources.files("basisit.schemas").joinpath(SCHEMA).read_text())


def problems(document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema())
    return [
        f"{'.'.join(str(p) for p in err.absolute_path) or '(top level)'}: {err.message}"
        for err in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    ]


def path_for(ags: str) -> Path:
    return paths.outputs_dir() / f"{ags}.json"


def document(
    stack_outputs: dict[str, Any], deployed_at: dt.datetime | None = None
) -> dict[str, Any]:
    """Contract 2 from the stack's `outputs` export plus the time of the deploy."""
    stamp = deployed_at or dt.datetime.now(dt.UTC)
    doc = {
        **stack_outputs,
        "deployed_at": stamp.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
    }
    # The schema's order reads best (the engine hands the outputs back sorted by key).
    order = {key: i for i, key in enumerate(schema()["properties"])}
    return dict(sorted(doc.items(), key=lambda item: order.get(item[0], len(order))))


def write(ags: str, doc: dict[str, Any]) -> Path:
    found = problems(doc)
    if found:
        raise ProvisionError(
            f"stack outputs of AGS {ags} do not match {SCHEMA}; not written:\n  - "
            + "\n  - ".join(found)
        )
    if doc.get("ags") != ags:
        raise ProvisionError(f"stack outputs name AGS {doc.get('ags')!r}, expected {ags}")
    path = path_for(ags)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path


def remove(ags: str) -> None:
    path_for(ags).unlink(missing_ok=True)


def read(ags: str) -> dict[str, Any] | None:
    path = path_for(ags)
    if not path.is_file():
        return None
    return json.loads(path.read_text())
