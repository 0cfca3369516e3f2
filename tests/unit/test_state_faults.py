"""A wrong passphrase or a damaged checkpoint: the message names the file and what to do (it
used to be Pulumi's raw `code: 1 / stdout: / stderr: error: ...`), and nothing is changed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from basisit.errors import BasisItError

pytestmark = [pytest.mark.pulumi]

AGS = "10046115"


def _program() -> None:
    import pulumi

    pulumi.export("greeting", pulumi.Output.secret("geheim"))


@pytest.fixture
def stack(data_dir: Path) -> Path:
    """A real stack in the file backend (a tiny inline program, no resources); returns its
    checkpoint file."""
    from basisit.provision import environment, operations

    try:
        environment.find_pulumi_bin_dir()
    except BasisItError:
        pytest.skip("no Pulumi CLI (scripts/bootstrap.sh builds it)")
    operations.open_stack(AGS, _program).up(on_output=lambda _: None, color="never")
    checkpoint = (
        environment.state_path() / ".pulumi" / "stacks" / environment.PROJECT / f"{AGS}.json"
    )
    assert checkpoint.is_file()
    return checkpoint


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_wrong_passphrase_names_the_file_and_changes_nothing(stack: Path):
    from basisit.provision import operations
    from basisit.vault import keys

    passphrase = keys.passphrase_file()
    passphrase.write_text("not the one\n", encoding="utf-8")
    before = _digest(stack)
    with pytest.raises(BasisItError) as failed:
        operations.drift(AGS)
    message = str(failed.value)
    assert f"cannot be opened with the passphrase in {passphrase}" in message
    assert "Restore that file from your backup" in message and "Nothing was changed" in message
    assert "stderr:" not in message and "code: 1" not in message
    assert _digest(stack) == before


def test_a_damaged_checkpoint_names_it_and_its_backup(stack: Path):
    from basisit.provision import operations

    stack.write_text(stack.read_text(encoding="utf-8")[:120], encoding="utf-8")
    before = _digest(stack)
    with pytest.raises(BasisItError) as failed:
        operations.drift(AGS)
    message = str(failed.value)
    assert f"the checkpoint of AGS {AGS}'s stack, {stack}, is damaged" in message
    assert f"{stack}.bak" in message and "Nothing was changed" in message
    assert "stderr:" not in message
    assert _digest(stack) == before
