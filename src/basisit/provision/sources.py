"""Where a Kommune's desired state (contract 1) comes from.

From the request database (`basisit.desired_state.build`) in normal operation; from a YAML or
JSON file, or a folder of them, for tests, benchmarks and operators who review a document
before it is applied. Either way the document is checked against its schema before anything
touches a stack, and every problem names the file (or AGS) and the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from basisit.errors import ValidationFailed
from basisit.provision.errors import ProvisionError

SCHEMA = "desired-state.v1.schema.json"


@cache
def _schema() -> dict[str, Any]:
    return json.loads(resources.files("basisit.schemas").joinpath(SCHEMA).read_text())


def check(document: Any, source: str) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise ValidationFailed(
            f"{source}: a desired state is a mapping, got {type(document).__name__}"
        )
    validator = jsonschema.Draft202012Validator(_schema())
    problems = [
        f"{'.'.join(str(p) for p in err.absolute_path) or '(top level)'}: {err.message}"
        for err in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    ]
    if problems:
        raise ValidationFailed(f"{source}: does not match {SCHEMA}", problems)
    return document


def load_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ProvisionError(f"desired state file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ProvisionError(f"{path}: not valid YAML/JSON: {exc}") from None
    return check(data, str(path))


@dataclass(frozen=True)
class Source:
    """Desired states from the request database (path None), one file, or a folder of files."""

    path: Path | None = None

    @property
    def from_db(self) -> bool:
        return self.path is None

    def _files(self) -> dict[str, Path]:
        assert self.path is not None
        if self.path.is_file():
            return {load_file(self.path)["ags"]: self.path}
        if not self.path.is_dir():
            raise ProvisionError(f"desired state {self.path} is neither a file nor a folder")
        found: dict[str, Path] = {}
        for file in sorted(self.path.iterdir()):
            if file.suffix not in (".yaml", ".yml", ".json"):
                continue
            ags = load_file(file)["ags"]
            if ags in found:
                raise ProvisionError(f"{file} and {found[ags]} both hold AGS {ags}")
            found[ags] = file
        return found

    def desired(self, ags: str) -> dict[str, Any]:
        if self.path is None:
            from basisit import desired_state  # opens the request database

            return check(desired_state.build(ags), f"desired state of AGS {ags}")
        files = self._files()
        if ags not in files:
            raise ProvisionError(f"{self.path} holds no desired state for AGS {ags}")
        return load_file(files[ags])

    def fleet(self) -> list[str]:
        """Every Kommune this source knows: onboarded ones, or those with a file."""
        if self.path is not None:
            return sorted(self._files())
        from basisit.store.db import session_scope
        from basisit.store.models import Onboarding

        with session_scope() as session:
            return sorted(o.ags for o in session.query(Onboarding).filter(Onboarding.active))
