"""Contract 3: a month of the usage ledger, per Kommune, instance, unit and plan.

Written by `basisit usage --month YYYY-MM --format json` (from `basisit.app.ledger`), read by
billing. Checked against `usage.v1.schema.json` before it is written or used.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NotRequired, TypedDict, cast

from basisit.contracts import schema as _schema
from basisit.errors import BasisItError, ValidationFailed
from basisit.files import atomic_write

SCHEMA = "usage.v1.schema.json"
SCHEMA_VERSION = 1


class Period(TypedDict):
    start: str
    end: str
    hours: int
    timezone: str


class Line(TypedDict):
    unit: str
    plan: str
    request_ids: list[int]
    metric: str | None
    base_unit: str
    quantity_base: int
    quantity: str
    hours: int
    gap_hours: int
    no_measurement_hours: int
    provisional_hours: int
    amount_cent: int | None


class Instance(TypedDict):
    instance: str
    catalog_service: str
    lines: list[Line]


class Kommune(TypedDict):
    ags: str
    name: str | None
    # Seconds with at least one billable instance: per hour the longest instance's (the
    # ledger keeps seconds per hour, not where in the hour they lie).
    billable_seconds: NotRequired[int]
    instances: list[Instance]


class Usage(TypedDict):
    schema_version: int
    month: str
    period: Period
    generated_at: str
    kommunen: list[Kommune]


def schema() -> dict[str, Any]:
    return _schema.schema(SCHEMA)


def problems(document: Any) -> list[str]:
    """Every way the document breaks the schema, `<field>: <message>`; empty when it fits."""
    return _schema.problems(schema(), document)


def check(document: Any, source: str, *, error: type[BasisItError] = ValidationFailed) -> Usage:
    if not isinstance(document, dict):
        raise error(f"{source}: (top level): not a JSON object")
    found = problems(document)
    if found:
        _schema.fail(error, f"{source}: does not match {SCHEMA}", found)
    return cast(Usage, document)


def dumps(document: Usage) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def load(path: Path, *, error: type[BasisItError] = ValidationFailed) -> Usage:
    """Read and check a usage document."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise error(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read: {exc}") from None
    return check(doc, str(path), error=error)


def write(path: Path, document: Usage) -> Path:
    """Check and write atomically; a broken document is never written."""
    check(document, f"usage of {document.get('month')}")
    return atomic_write(path, dumps(document))
