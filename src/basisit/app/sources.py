"""Where a Kommune's desired state (contract 1) comes from.

From the request database (`basisit.requests.desired_state.build`) in normal operation; from a
YAML or JSON file, or a folder of them, for tests, benchmarks and operators who review a
document before it is applied. Either way the document is checked against its schema before anything
touches a stack, and every problem names the file (or AGS) and the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from basisit.contracts import desired_state as contract
from basisit.contracts.desired_state import DesiredState
from basisit.provision.errors import ProvisionError


def load_file(path: Path) -> DesiredState:
    """A desired-state file, checked; ProvisionError when it cannot be read at all."""
    return contract.load(path, file_error=ProvisionError)


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

    def desired(self, ags: str) -> DesiredState:
        if self.path is None:
            from basisit.requests import desired_state  # opens the request database

            return desired_state.build(ags)
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
