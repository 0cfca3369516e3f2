"""The backup credential of a Kommune's object storage, from the stack to the backup_client play.

The openstack target exports it as a secret stack output (tests/unit/test_openstack_mocks.py);
here the driver takes it from the Automation API, keeps it out of contract 2, stores it in the
Kommune's encrypted secrets store, and the play reads it from a run's secrets directory.

The first test runs the real Pulumi CLI and engine (file backend, passphrase secrets provider)
with a stand-in program that exports what the openstack program exports: the OpenStack
provider plugin cannot be installed here.
"""

from __future__ import annotations

import json
import os
import secrets as pysecrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from basisit.app import deploy as deploying
from basisit.app.sources import Source
from basisit.configure import inventory as inv
from basisit.contracts import stack_outputs as outputs
from basisit.provision import backup_credential, operations
from basisit.provision.errors import ProvisionError
from basisit.vault.store import SecretStore, Unlocked

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
DESIRED = FIXTURES / "desired-state-10046118.yaml"
AGS = "10046118"
AUTH_URL = "https://keystone.ego-saar.example:5000/v3"
CONTAINER = "basisit-10046118-sicherung"


def contract() -> dict[str, Any]:
    """Contract 2 of Tholey as the openstack program exports it (without deployed_at)."""
    doc = json.loads((FIXTURES / f"stack-outputs-{AGS}.json").read_text())
    doc.pop("deployed_at", None)
    doc["target"] = "openstack"
    for server in doc["servers"]:
        server["ssh"] = {"host": server["address"], "port": 22, "user": "debian"}
        server["published_ports"] = {}
    doc["object_storage"] = {"container": CONTAINER}
    return doc


def credential(secret: str | None = None, region: str | None = "RegionOne") -> dict[str, str]:
    value = {
        "auth_url": AUTH_URL,
        "id": "3f6a0c1e9b2d4c7f8e5a1b0c2d3e4f5a",
        "secret": secret or pysecrets.token_urlsafe(64),
    }
    if region:
        value["region"] = region
    return value


def restic_env(value: dict[str, str]) -> dict[str, str]:
    env = {
        "OS_AUTH_URL": value["auth_url"],
        "OS_APPLICATION_CREDENTIAL_ID": value["id"],
        "OS_APPLICATION_CREDENTIAL_SECRET": value["secret"],
    }
    if "region" in value:
        env["OS_REGION_NAME"] = value["region"]
    return env


def files_containing(root: Path, needle: str) -> list[Path]:
    data = needle.encode()
    return [p for p in root.rglob("*") if p.is_file() and data in p.read_bytes()]


def stored_token(data_dir: Path) -> bytes:
    return (data_dir / "secrets" / AGS / (backup_credential.NAME + ".fernet")).read_bytes()


def stored_env() -> dict[str, str]:
    return json.loads(SecretStore().get(AGS, backup_credential.NAME))


# -- with the real Pulumi CLI --------------------------------------------------------------------


def stand_in_program(doc: dict[str, Any], value: dict[str, str] | None) -> Any:
    """Exports like stacks.tenant.program on the openstack target, without its resources."""

    def run() -> None:
        import pulumi

        pulumi.export("outputs", doc)
        if value is not None:
            pulumi.export(backup_credential.OUTPUT, pulumi.Output.secret(value))

    return run


def test_deploy_stores_the_credential_encrypted_and_destroy_removes_it(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = credential()
    program = stand_in_program(contract(), value)
    monkeypatch.setattr(operations, "build_program", lambda *a, **kw: program)
    source = Source(DESIRED)

    result = deploying.deploy(AGS, source, target="openstack", actor="test", refresh=False)
    assert result.ok
    written = json.loads(outputs.path_for(AGS).read_text())
    assert written["object_storage"] == {
        "container": CONTAINER,
        "credential": "secrets:swift/backup_credential.json",
    }
    assert outputs.problems(written) == []
    text = outputs.path_for(AGS).read_text()
    assert value["secret"] not in text and value["id"] not in text
    assert stored_env() == restic_env(value)
    # Nowhere in the data dir in plain text: not the outputs, status records, the Pulumi state
    # (there it is a secret output, encrypted with the passphrase) nor the workspace.
    assert files_containing(data_dir, value["secret"]) == []
    state = data_dir / "pulumi" / "state" / ".pulumi" / "stacks" / "basisit" / f"{AGS}.json"
    assert '"ciphertext"' in state.read_text()

    # A deploy that changes nothing rewrites nothing (a new Fernet token would differ).
    token = stored_token(data_dir)
    assert deploying.deploy(AGS, source, target="openstack", actor="test", refresh=False).ok
    assert stored_token(data_dir) == token

    operations.destroy(AGS)
    assert not SecretStore().has(AGS, backup_credential.NAME)
    assert not outputs.path_for(AGS).exists()
    assert files_containing(data_dir, value["secret"]) == []


# -- the driver's handling, with the Automation API's results stood in for -----------------------


class FakeStack:
    """What operations.deploy uses of a stack; `up` answers as the Automation API does."""

    def __init__(self, exports: dict[str, Any]) -> None:
        self.exports = exports

    def up(self, **_: Any) -> Any:
        return SimpleNamespace(outputs=self.exports)


def deploy_with(monkeypatch: pytest.MonkeyPatch, **exports: Any) -> operations.Result:
    from pulumi import automation as auto

    values = {"outputs": auto.OutputValue(contract(), secret=False), **exports}
    monkeypatch.setattr(operations, "build_program", lambda *a, **kw: None)
    monkeypatch.setattr(operations, "open_stack", lambda ags, program: FakeStack(values))
    return deploying.deploy(AGS, Source(DESIRED), target="openstack", actor="test")


def secret_output(value: Any) -> Any:
    from pulumi import automation as auto

    return auto.OutputValue(value, secret=True)


def test_a_changed_credential_is_stored_again_and_a_gone_one_removed(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, rotated = credential(), credential(region=None)
    deploy_with(monkeypatch, backup_credential=secret_output(first))
    token = stored_token(data_dir)
    deploy_with(monkeypatch, backup_credential=secret_output(rotated))
    assert stored_token(data_dir) != token
    assert stored_env() == restic_env(rotated)
    assert "OS_REGION_NAME" not in stored_env()  # no empty variable for the role to refuse

    # Other secrets of the Kommune stay when the backup (and with it the credential) goes.
    SecretStore().put(AGS, "postgresql/app_password", b"kept")
    doc = contract()
    doc["object_storage"] = None
    from pulumi import automation as auto

    monkeypatch.setattr(
        operations,
        "open_stack",
        lambda ags, program: FakeStack({"outputs": auto.OutputValue(doc, secret=False)}),
    )
    assert deploying.deploy(AGS, Source(DESIRED), target="openstack", actor="test").ok
    assert not SecretStore().has(AGS, backup_credential.NAME)
    assert not (data_dir / "secrets" / AGS / "swift").exists()
    assert SecretStore().get(AGS, "postgresql/app_password") == b"kept"
    assert json.loads(outputs.path_for(AGS).read_text())["object_storage"] is None


def test_a_credential_not_marked_secret_is_refused(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pulumi import automation as auto

    value = credential()
    with pytest.raises(ProvisionError, match="backup_credential of AGS 10046118 is not marked"):
        deploy_with(monkeypatch, backup_credential=auto.OutputValue(value, secret=False))
    assert not SecretStore().has(AGS, backup_credential.NAME)
    assert not outputs.path_for(AGS).exists()
    assert files_containing(data_dir, value["secret"]) == []


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ({"auth_url": AUTH_URL, "id": "x"}, "missing or empty: secret"),
        ({"auth_url": AUTH_URL, "id": "x", "secret": ""}, "missing or empty: secret"),
        ({**credential(), "password": "p"}, "unknown: password"),
        ({**credential(), "auth_url": "keystone:5000"}, r"auth_url is not an http\(s\) URL"),
        ("a string", "expected an object"),
    ],
)
def test_a_malformed_credential_names_the_field_not_the_value(
    monkeypatch: pytest.MonkeyPatch, broken: Any, message: str
) -> None:
    with pytest.raises(ProvisionError, match=message) as err:
        deploy_with(monkeypatch, backup_credential=secret_output(broken))
    if isinstance(broken, dict) and broken.get("secret"):
        assert broken["secret"] not in str(err.value)
    assert not SecretStore().has(AGS, backup_credential.NAME)


def test_the_stack_program_and_the_driver_agree_on_the_output_name() -> None:
    from stacks import tenant

    assert tenant.BACKUP_CREDENTIAL_OUTPUT == backup_credential.OUTPUT


# -- the configure side --------------------------------------------------------------------------


@contextmanager
def configure_run(
    outputs_doc: dict[str, Any] | None = None,
) -> Iterator[tuple[Unlocked, dict[str, Any]]]:
    """What configure does after the deploy: the unlocked secrets dir and the inventory (from
    the stored outputs unless others are given)."""
    doc = outputs_doc or inv.load_outputs(AGS)
    desired = yaml.safe_load(DESIRED.read_text())
    with SecretStore().unlocked(AGS) as run:
        yield run, inv.build_inventory(doc, desired, secrets_dir=str(run.secrets_dir))


def test_a_run_gets_the_credential_in_its_secrets_dir_only(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = credential()
    deploy_with(monkeypatch, backup_credential=secret_output(value))
    with configure_run() as (run, inventory):
        path = run.secrets_dir / "swift" / "backup_credential.json"
        assert json.loads(path.read_text()) == restic_env(value)
        assert path.stat().st_mode & 0o777 == 0o600
        # The driver scrubs these from everything it prints or records.
        assert value["secret"] in run.secret_values()
    text = json.dumps(inventory)
    assert "basisit_swift_env" not in text
    assert value["secret"] not in text and value["id"] not in text
    assert inventory["all"]["vars"]["basisit_object_storage"] == {
        "container": CONTAINER,
        "credential": "secrets:swift/backup_credential.json",
    }
    assert inv.group_members(inventory, "backup_client") == ["dateiablage"]


PLAY = ROOT / "playbooks" / "plays" / "backup_client.yml"


def render_play_vars(tmp_path: Path, inventory: dict[str, Any]) -> subprocess.CompletedProcess:
    """Run the play's own vars and pre_tasks (not its role) on the controller with the real
    ansible-playbook; the backup client's restic environment lands in tmp_path/env.json."""
    (play,) = yaml.safe_load(PLAY.read_text())
    check = {
        "name": "Backup client variables as the play makes them",
        "hosts": play["hosts"],
        "gather_facts": False,
        "connection": "local",
        "vars": play["vars"],
        "pre_tasks": play.get("pre_tasks", []),
        "tasks": [
            {
                "name": "Keep the environment for the test",
                "ansible.builtin.copy": {
                    "content": "{{ backup_client_swift_env | to_json }}",
                    "dest": str(tmp_path / "env.json"),
                    "mode": "0600",
                },
                "no_log": True,
            }
        ],
    }
    (tmp_path / "check.yml").write_text(yaml.safe_dump([check]))
    (tmp_path / "hosts.json").write_text(json.dumps(inventory))
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_HOST_KEY_CHECKING": "0"}
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            str(tmp_path / "hosts.json"),
            "-e",
            f"ansible_python_interpreter={sys.executable}",
            "-v",
            str(tmp_path / "check.yml"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_the_play_builds_the_swift_env_from_the_secrets_dir(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = credential()
    deploy_with(monkeypatch, backup_credential=secret_output(value))
    with configure_run() as (_, inventory):
        done = render_play_vars(tmp_path, inventory)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert json.loads((tmp_path / "env.json").read_text()) == restic_env(value)
    assert value["secret"] not in done.stdout + done.stderr

    # Outputs that name no credential (written before there was one): a clear stop.
    doc = inv.load_outputs(AGS)
    doc["object_storage"].pop("credential")
    with configure_run(doc) as (_, inventory):
        (tmp_path / "env.json").unlink()
        done = render_play_vars(tmp_path, inventory)
    assert done.returncode != 0
    assert "no backup credential for the object storage container" in done.stdout
    assert "deploy again (basisit deploy --ags 10046118)" in done.stdout
    assert not (tmp_path / "env.json").exists()


def test_the_play_looks_for_no_credential_on_the_sftp_backend(tmp_path: Path) -> None:
    doc = json.loads((FIXTURES / f"stack-outputs-{AGS}.json").read_text())  # local target
    desired = yaml.safe_load(DESIRED.read_text())
    inventory = inv.build_inventory(doc, desired, secrets_dir=str(tmp_path / "no-secrets-here"))
    done = render_play_vars(tmp_path, inventory)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert json.loads((tmp_path / "env.json").read_text()) == {}


def test_pulumi_s_own_lock_is_stack_locked_and_recorded_as_a_failed_deployment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pulumi import automation as auto

    from basisit.app import status
    from basisit.errors import StackLocked

    class BusyStack(FakeStack):
        def up(self, **_: Any) -> Any:
            result = auto.CommandResult(
                "", "error: the stack is currently locked by 1 lock(s)", 255
            )
            raise auto.ConcurrentUpdateError(result)

    monkeypatch.setattr(operations, "build_program", lambda *a, **kw: None)
    monkeypatch.setattr(operations, "open_stack", lambda ags, program: BusyStack({}))
    with pytest.raises(StackLocked, match=f"(?s)AGS {AGS} is busy: .*currently locked"):
        deploying.deploy(AGS, Source(DESIRED), target="openstack", actor="test")
    (row,) = status.deployments()
    assert (row.ags, row.outcome) == (AGS, "failed") and "currently locked" in (row.error or "")
