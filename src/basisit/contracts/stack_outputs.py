"""Contract 2: what a deploy built, as <data_dir>/outputs/<ags>.json.

Written after every successful deploy, checked against `stack-outputs.v1.schema.json` first and
replaced atomically, so a reader (inventory, scrape targets) never sees half a file; removed
after a destroy. The single source of the Ansible inventory and the Prometheus scrape targets.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, NotRequired, TypedDict, cast

from basisit import paths
from basisit.contracts import schema as _schema
from basisit.errors import BasisItError, NotFound, ValidationFailed
from basisit.files import atomic_write

SCHEMA = "stack-outputs.v1.schema.json"


class Ssh(TypedDict):
    host: str
    port: int
    user: str
    host_key: NotRequired[str]


class Metrics(TypedDict):
    address: str
    port: int
    path: str
    sources: NotRequired[list[str]]


class Endpoint(TypedDict):
    host: str
    port: int


class ServerVolume(TypedDict):
    name: str
    mount: str
    size_bytes: int


class Server(TypedDict):
    name: str
    instance: str
    services: list[str]
    roles: list[str]
    address: str
    ssh: Ssh
    published_ports: NotRequired[dict[str, int]]
    metrics: NotRequired[Metrics]
    vpn_endpoint: NotRequired[Endpoint]
    volumes: list[ServerVolume]


class Network(TypedDict):
    name: str
    cidr: str
    gateway: str


class DnsRecord(TypedDict):
    name: str
    type: str
    value: str


class Dns(TypedDict):
    zone: str
    records: list[DnsRecord]


class StackOutputs(TypedDict):
    schema_version: int
    ags: str
    target: str
    stack: str
    deployed_at: str
    kommune: NotRequired[dict[str, str]]
    network: Network
    dns: Dns
    servers: list[Server]
    object_storage: NotRequired[dict[str, Any] | None]


def schema() -> dict[str, Any]:
    return _schema.schema(SCHEMA)


def problems(document: Any) -> list[str]:
    """Every way the document breaks the schema, `<field>: <message>`; empty when it fits."""
    return _schema.problems(schema(), document)


def path_for(ags: str) -> Path:
    return paths.outputs_dir() / f"{ags}.json"


def document(stack_outputs: dict[str, Any], deployed_at: dt.datetime | None = None) -> StackOutputs:
    """Contract 2 from the stack's `outputs` export plus the time of the deploy."""
    stamp = deployed_at or dt.datetime.now(dt.UTC)
    doc = {
        **stack_outputs,
        "deployed_at": stamp.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
    }
    # The schema's order reads best (the engine hands the outputs back sorted by key).
    order = {key: i for i, key in enumerate(schema()["properties"])}
    ordered = dict(sorted(doc.items(), key=lambda kv: order.get(kv[0], len(order))))
    return cast(StackOutputs, ordered)


def check(
    doc: Any, source: str, *, ags: str | None = None, error: type[BasisItError] = ValidationFailed
) -> StackOutputs:
    """The document as contract 2, or `error` naming the source and every problem."""
    if not isinstance(doc, dict):
        raise error(f"{source}: (top level): not a JSON object")
    found = problems(doc)
    if found:
        _schema.fail(error, f"{source}: does not match {SCHEMA}", found)
    if ags is not None and doc["ags"] != ags:
        raise error(f"{source}: field ags is {doc['ags']!r}, expected {ags!r}")
    return cast(StackOutputs, doc)


def write(ags: str, doc: StackOutputs, *, error: type[BasisItError] = ValidationFailed) -> Path:
    """Check and write the Kommune's outputs file; a broken document leaves the old file."""
    found = problems(doc)
    if found:
        message = f"stack outputs of AGS {ags} do not match {SCHEMA}; not written:"
        _schema.fail(error, message, found)
    if doc.get("ags") != ags:
        raise error(f"stack outputs name AGS {doc.get('ags')!r}, expected {ags}")
    return atomic_write(path_for(ags), json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


def remove(ags: str) -> None:
    path_for(ags).unlink(missing_ok=True)


def read(path: Path, *, error: type[BasisItError] = ValidationFailed) -> Any:
    """The content of an outputs file, not yet checked; `error` names the file."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise error(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read: {exc}") from None


def load(
    ags: str,
    path: Path | None = None,
    *,
    missing: type[BasisItError] = NotFound,
    error: type[BasisItError] = ValidationFailed,
) -> StackOutputs:
    """Read and check the Kommune's outputs file (default <data_dir>/outputs/<ags>.json)."""
    path = path or path_for(ags)
    if not path.is_file():
        raise missing(
            f"no stack outputs for AGS {ags}: {path} does not exist "
            f"(deploy first: basisit deploy --ags {ags})"
        )
    return check(read(path, error=error), str(path), ags=ags, error=error)


def load_many(kommunen: list[str] | None = None) -> list[StackOutputs]:
    """Contract 2 of the named Kommunen (default: every one with an outputs file).

    One broken file fails the lot, and every problem names its file.
    """
    if kommunen is None:
        files = sorted(paths.outputs_dir().glob("*.json"))
    else:
        files = []
        for ags in dict.fromkeys(a.strip() for a in kommunen):
            path = path_for(ags)
            if not path.is_file():
                raise NotFound(
                    f"no stack outputs for AGS {ags}: {path} does not exist "
                    f"(deploy first: basisit deploy --ags {ags})"
                )
            files.append(path)
    documents: list[StackOutputs] = []
    found: list[str] = []
    for path in files:
        try:
            doc = read(path)
        except ValidationFailed as exc:
            found.append(str(exc))
            continue
        if not isinstance(doc, dict):
            found.append(f"{path}: (top level): not a JSON object")
            continue
        bad = problems(doc)
        if bad:
            found.extend(f"{path}: {p}" for p in bad)
            continue
        if doc["ags"] != path.stem:
            found.append(f"{path}: field ags is {doc['ags']!r}, expected {path.stem!r}")
            continue
        documents.append(cast(StackOutputs, doc))
    if found:
        raise ValidationFailed(f"stack outputs do not match {SCHEMA}", found)
    return documents
