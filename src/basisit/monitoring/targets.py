"""Prometheus scrape targets from contract 2: the node exporter of every server of every Kommune.

Reads only the stack-outputs files (<data_dir>/outputs/<ags>.json), never podman, Pulumi or the
request database, and turns them into file_sd target groups: one group per server, target
"<metrics.address>:<metrics.port>", labels

    ags              AGS of the Kommune
    kommune          its name (outputs written before the field existed lack it: no label)
    server           host name (= the service instance)
    catalog_service  the catalog service(s) the server runs, comma-separated
    __metrics_path__ the exporter's path

`catalog_service`, not `service`: a generic label name would clash with labels of the scraped
metrics (see the platform notes). A server whose outputs predate the `metrics` entry is left
out with a note (deploying the Kommune again writes it); a broken file stops everything and
names the file, so a file_sd file already in place is never replaced by a partial one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from basisit import paths
from basisit.contracts import stack_outputs
from basisit.contracts.stack_outputs import StackOutputs
from basisit.errors import BasisItError, ValidationFailed
from basisit.files import atomic_write

FILE_SD_SUFFIXES = (".json", ".yml", ".yaml")


@dataclass
class ScrapeTargets:
    groups: list[dict[str, Any]] = field(default_factory=list)
    # Servers left out, and why (e.g. outputs written before the metrics entry existed).
    notes: list[str] = field(default_factory=list)

    @property
    def kommunen(self) -> list[str]:
        return sorted({g["labels"]["ags"] for g in self.groups})


def target_groups(documents: Iterable[StackOutputs]) -> ScrapeTargets:
    """file_sd target groups of the given contract-2 documents, sorted by AGS and server."""
    result = ScrapeTargets()
    seen: dict[str, str] = {}
    problems: list[str] = []
    for doc in sorted(documents, key=lambda d: d["ags"]):
        ags = doc["ags"]
        name = (doc.get("kommune") or {}).get("name")
        for server in sorted(doc["servers"], key=lambda s: s["name"]):
            where = f"AGS {ags} server {server['name']}"
            metrics = server.get("metrics")
            if not metrics:
                result.notes.append(
                    f"{where}: its stack outputs have no metrics entry (written before there "
                    f"was one); left out until the next `basisit deploy --ags {ags}`"
                )
                continue
            target = f"{metrics['address']}:{int(metrics['port'])}"
            if target in seen:
                # Ports and addresses are allocated uniquely; a clash means a corrupt record.
                problems.append(f"{where}: scrape target {target} is also {seen[target]}'s")
                continue
            seen[target] = where
            labels = {"ags": ags}
            if name:
                labels["kommune"] = name
            labels["server"] = server["name"]
            labels["catalog_service"] = ",".join(server["services"])
            labels["__metrics_path__"] = metrics.get("path") or "/metrics"
            result.groups.append({"targets": [target], "labels": labels})
    if problems:
        raise ValidationFailed("the stack outputs give clashing scrape targets", problems)
    return result


def read_outputs(kommunen: Iterable[str] | None = None) -> list[StackOutputs]:
    """Contract 2 of the named Kommunen (default: every one with an outputs file), checked
    against the schema; every problem names its file, and one broken file fails the lot."""
    return stack_outputs.load_many(None if kommunen is None else list(kommunen))


def collect(kommunen: Iterable[str] | None = None) -> ScrapeTargets:
    return target_groups(read_outputs(kommunen))


def check_path(path: Path) -> Path:
    """Prometheus file_sd reads JSON or YAML, chosen by the file's suffix; nothing else."""
    if path.suffix not in FILE_SD_SUFFIXES:
        raise ValidationFailed(
            f"{path}: Prometheus file_sd reads only files ending in {', '.join(FILE_SD_SUFFIXES)}"
        )
    return path


def render(groups: list[dict[str, Any]], path: Path) -> str:
    """The file_sd file's text in the format its suffix names."""
    if check_path(path).suffix == ".json":
        return json.dumps(groups, indent=2, ensure_ascii=False) + "\n"
    return yaml.safe_dump(groups, sort_keys=False, allow_unicode=True)


def write(path: Path, groups: list[dict[str, Any]]) -> Path:
    """Replace the file_sd file atomically: Prometheus watches it and must never read half."""
    text = render(groups, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The temporary name ends in .tmp, so a file_sd glob such as *.json never matches it.
    return atomic_write(path, text, mode=0o644)


# --- the file_sd folder Prometheus watches (<data_dir>/monitoring/targets/<ags>.json) ----------


def targets_dir() -> Path:
    return paths.data_dir() / "monitoring" / "targets"


def kommune_file(ags: str) -> Path:
    return targets_dir() / f"{ags}.json"


def write_kommune(doc: StackOutputs) -> ScrapeTargets:
    """The Kommune's own file_sd file from its contract 2, replaced atomically (deploy calls
    this after every successful deploy, so Prometheus follows without a restart)."""
    found = target_groups([doc])
    write(kommune_file(doc["ags"]), found.groups)
    return found


def remove_kommune(ags: str) -> None:
    kommune_file(ags).unlink(missing_ok=True)


@dataclass
class Sync:
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    # Kommunen whose outputs file is broken: their old file_sd file (if any) stays as it was.
    broken: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def sync_all() -> Sync:
    """Bring the file_sd folder in line with every outputs file: one file per Kommune, none
    for a Kommune without outputs; a broken outputs file leaves its Kommune's file alone."""
    result = Sync()
    present: set[str] = set()
    for path in sorted(paths.outputs_dir().glob("*.json")):
        present.add(path.stem)
        try:
            doc = stack_outputs.load(path.stem, path)
            found = write_kommune(doc)
        except BasisItError as exc:
            result.broken[path.stem] = str(exc)
            continue
        result.written.append(path.stem)
        result.notes.extend(found.notes)
    if targets_dir().is_dir():
        for stale in sorted(targets_dir().glob("*.json")):
            if stale.stem not in present:
                stale.unlink(missing_ok=True)
                result.removed.append(stale.stem)
    return result
