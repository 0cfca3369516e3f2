"""Contract 1: a Kommune's desired state, the one input of the stacks and the roles.

Built from the request database (`basisit.requests.desired_state`), or read from a YAML or
JSON file an operator reviewed. Either way it is checked here, against
`desired-state.v1.schema.json`, before anything uses it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, NotRequired, TypedDict, cast

import yaml

from basisit.contracts import schema as _schema
from basisit.errors import BasisItError, ValidationFailed
from basisit.files import atomic_write

SCHEMA = "desired-state.v1.schema.json"
SCHEMA_VERSION = 1


class Kommune(TypedDict):
    name: str
    typ: str
    kreis: str | None
    slug: str


class Server(TypedDict):
    flavor: str
    vcpus: int
    ram_mib: int
    disk_gib: int


class Volume(TypedDict):
    name: str
    size_gib: float
    mount: str
    fixed_size: bool


class Port(TypedDict):
    port: int
    protocol: Literal["tcp", "udp"]
    source: Literal["kommune", "operators", "any"]


class ServiceEntry(TypedDict):
    instance: str
    service: str
    service_version: int
    plan: str
    status: str
    request_id: int
    schutzbedarf: str
    parameters: dict[str, Any]
    roles: list[str]
    depends_on: NotRequired[list[str]]
    server: Server | None
    volumes: list[Volume]
    ports: list[Port]
    object_storage: bool


class DesiredState(TypedDict):
    schema_version: int
    generated_at: NotRequired[str]
    ags: str
    kommune: Kommune
    dns_zone: str
    services: list[ServiceEntry]


def schema() -> dict[str, Any]:
    return _schema.schema(SCHEMA)


def problems(document: Any) -> list[str]:
    """Every way the document breaks the schema, `<field>: <message>`; empty when it fits."""
    return _schema.problems(schema(), document)


def check(
    document: Any,
    source: str,
    *,
    ags: str | None = None,
    error: type[BasisItError] = ValidationFailed,
) -> DesiredState:
    """The document as contract 1, or `error` naming the source and every problem.

    With `ags`, the document must also be that Kommune's.
    """
    if not isinstance(document, dict):
        raise error(f"{source}: a desired state is a mapping, got {type(document).__name__}")
    found = problems(document)
    if found:
        _schema.fail(error, f"{source}: does not match {SCHEMA}", found)
    if ags is not None and document["ags"] != ags:
        raise error(f"{source}: field ags is {document['ags']!r}, expected {ags!r}")
    return cast(DesiredState, document)


def read(path: Path, *, error: type[BasisItError] = ValidationFailed) -> Any:
    """A desired-state file's content (YAML or JSON), not yet checked."""
    if not path.is_file():
        raise error(f"desired state file {path} does not exist")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise error(f"{path}: not valid YAML/JSON: {exc}") from None


def load(
    path: Path,
    *,
    ags: str | None = None,
    file_error: type[BasisItError] = ValidationFailed,
    error: type[BasisItError] = ValidationFailed,
) -> DesiredState:
    """Read and check a desired-state file; `file_error` when it cannot be read at all."""
    return check(read(path, error=file_error), str(path), ags=ags, error=error)


def dumps(document: DesiredState, fmt: Literal["yaml", "json"] = "yaml") -> str:
    if fmt == "json":
        return json.dumps(document, indent=2, ensure_ascii=False)
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def write(path: Path, document: DesiredState, fmt: Literal["yaml", "json"] = "yaml") -> Path:
    """Write a checked document (YAML or JSON) atomically; a broken one is never written."""
    check(document, f"desired state of AGS {document.get('ags')}")
    return atomic_write(path, dumps(document, fmt))
