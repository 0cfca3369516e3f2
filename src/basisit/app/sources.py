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
from basisit.errors import BasisItError, ValidationFailed
from basisit.provision import operations
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


def nothing_to_deploy(ags: str, desired: DesiredState) -> str | None:
    """Why a deploy of this document would build infrastructure for nobody, else None.

    An empty desired state is a real instruction only for a Kommune that has a stack: its last
    services are being decommissioned and the stack must shrink. Without a stack, a deploy
    would create a network, ports and keys that no service uses."""
    if desired["services"] or ags in operations.deployed_stacks():
        return None
    return (
        f"AGS {ags} has nothing to deploy: no service of it is approved (its desired state is "
        f"empty) and it has no stack yet; approve a request first "
        f"(basisit request list --ags {ags})"
    )


@dataclass(frozen=True)
class Selection:
    kommunen: list[str]
    idle: list[str]  # --all: left out, they have nothing to deploy


def select(source: Source, ags: str | None, all_: bool) -> Selection:
    """The Kommunen a command works on: the one named, or with --all every Kommune of the
    source that has something to deploy (a service or a stack); the others are `idle`."""
    if bool(ags) == bool(all_):
        raise ValidationFailed("name one Kommune with --ags AGS, or use --all")
    if ags:
        return Selection([ags.strip()], [])
    fleet = source.fleet()
    if not fleet:
        where = source.path or "the request database (no onboarded Kommune)"
        raise BasisItError(f"--all: {where} names no Kommune")
    busy = [a for a in fleet if nothing_to_deploy(a, source.desired(a)) is None]
    return Selection(busy, [a for a in fleet if a not in busy])
