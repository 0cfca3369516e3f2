"""The contracts' JSON Schemas (src/basisit/schemas/) and the one way a problem is reported."""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import Any, NoReturn

import jsonschema

from basisit.errors import BasisItError, ValidationFailed


@cache
def schema(name: str) -> dict[str, Any]:
    """A schema of src/basisit/schemas/ by its file name, read once."""
    text = resources.files("basisit.schemas").joinpath(name).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def where(path: Iterable[str | int]) -> str:
    """A field as every problem names it: `services.0.server`, `(top level)` for the whole."""
    return ".".join(str(part) for part in path) or "(top level)"


def problems(schema_doc: dict[str, Any], document: Any) -> list[str]:
    """Every way the document breaks the schema, sorted by field: `<field>: <message>`."""
    validator = jsonschema.Draft202012Validator(schema_doc)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    return [f"{where(err.absolute_path)}: {err.message}" for err in errors]


def fail(error: type[BasisItError], message: str, found: list[str]) -> NoReturn:
    """Raise `error` with the message and one line per problem (as ValidationFailed lists them)."""
    if issubclass(error, ValidationFailed):
        raise error(message, found)
    raise error(message + "".join(f"\n  - {p}" for p in found))
