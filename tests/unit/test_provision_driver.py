"""The provisioning driver's own logic, without Pulumi or podman: locks and recovery,
allocation of host numbers and ports, secrets files, input checks, contract 2 files."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import paramiko
import pytest
import yaml

from basisit import oplock
from basisit.app.sources import Source, load_file
from basisit.contracts import stack_outputs as outputs
from basisit.errors import StackLocked, ValidationFailed
from basisit.provision import allocation, locking
from basisit.provision.errors import ProvisionError
from basisit.vault import keys as secrets
from stacks.model import PlanError, build_plan

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DESIRED = FIXTURES / "desired-state-10046118.yaml"
OUTPUTS = FIXTURES / "stack-outputs-10046118.json"

HOLDER = """
import sys, time
from basisit import oplock
lock = oplock.KommuneLock(sys.argv[1], "deploy").acquire()
print("held", flush=True)
time.sleep(120)
"""


def desired() -> dict[str, Any]:
    return yaml.safe_load(DESIRED.read_text())


def start_holder(ags: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, ags], stdout=subprocess.PIPE, text=True, env=os.environ
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


# --- the suite's lock --------------------------------------------------------------------------


def test_a_held_lock_refuses_with_holder_pid_host_and_operation() -> None:
    holder = start_holder("10046118")
    try:
        with pytest.raises(StackLocked) as err:
            oplock.KommuneLock("10046118", "deploy").acquire()
        text = str(err.value)
        assert f"pid {holder.pid}" in text
        assert socket.gethostname() in text
        assert "deploy" in text and "10046118" in text
        # another Kommune is not affected
        with oplock.KommuneLock("10041100", "deploy") as other:
            assert other.stale is None
    finally:
        holder.kill()
        holder.wait()


def test_configure_waits_for_no_deploy_of_the_same_kommune() -> None:
    """Deploy and configure take the one operation lock: a configure while a deploy of the
    same Kommune runs is refused before any secret is decrypted or any role runs."""
    from basisit.configure import apply

    outputs.write("10046118", json.loads(OUTPUTS.read_text()))
    holder = start_holder("10046118")
    try:
        with pytest.raises(StackLocked) as err:
            apply.configure("10046118", actor="test", desired=desired())
        assert f"deploy by pid {holder.pid}" in str(err.value)
    finally:
        holder.kill()
        holder.wait()


def test_lock_of_a_killed_holder_is_detected_as_stale() -> None:
    holder = start_holder("10046118")
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with oplock.KommuneLock("10046118", "deploy") as lock:
        assert lock.stale is not None
        assert lock.stale.pid == holder.pid
    # released cleanly this time: the next one finds nothing stale
    with oplock.KommuneLock("10046118", "deploy") as lock:
        assert lock.stale is None


def test_lock_naming_another_machine_is_not_taken_over(data_dir: Path) -> None:
    path = oplock.locks_dir() / "10046118.lock"
    path.write_text(json.dumps({"pid": 4242, "host": "other-host", "operation": "deploy",
                                "started_at": "2026-01-01T00:00:00+00:00"}))  # fmt: skip
    with pytest.raises(StackLocked, match="other-host"):
        oplock.KommuneLock("10046118", "deploy").acquire()


# --- recovery of Pulumi's lock and pending operations -----------------------------------------


class FakeStack:
    """Records what recovery does to a stack (the real thing runs in the integration test)."""

    def __init__(self, deployment: dict[str, Any]) -> None:
        self.deployment = deployment
        self.cancelled = False
        self.imported: dict[str, Any] | None = None

    def cancel(self) -> None:
        self.cancelled = True

    def export_stack(self) -> Any:
        from pulumi import automation as auto

        return auto.Deployment(version=3, deployment=self.deployment)

    def import_stack(self, state: Any) -> None:
        self.imported = dict(state.deployment)


def write_pulumi_lock(state: Path, ags: str, pid: int, host: str) -> Path:
    path = state / ".pulumi" / "locks" / "organization" / "basisit" / ags / "x.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"pid": pid, "hostname": host, "timestamp": "t"}))
    return path


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_recover_cancels_a_dead_lock_and_drops_pending_operations(tmp_path: Path) -> None:
    write_pulumi_lock(tmp_path, "10046118", dead_pid(), socket.gethostname())
    pending = [{"type": "creating", "resource": {"urn": "urn:pulumi:x::basisit::T::srv"}}]
    stack = FakeStack({"resources": [{"urn": "a"}], "pending_operations": pending})
    stale = oplock.Holder(1, socket.gethostname(), "deploy", "t")
    result = locking.recover(stack, tmp_path, "basisit", "10046118", stale)
    assert stack.cancelled
    assert stack.imported == {"resources": [{"urn": "a"}], "pending_operations": []}
    assert result.pending_operations == pending
    assert result.backup is not None and result.backup.stat().st_mode & 0o777 == 0o600
    assert json.loads(result.backup.read_text())["deployment"]["pending_operations"] == pending
    assert "srv" in result.describe() and "stale" in result.describe()


def test_recover_refuses_while_pulumi_lock_holder_lives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(locking, "ORPHAN_GRACE_S", 0.5)
    write_pulumi_lock(tmp_path, "10046118", os.getpid(), socket.gethostname())
    stack = FakeStack({"resources": []})
    with pytest.raises(StackLocked, match=f"pid {os.getpid()}"):
        locking.recover(stack, tmp_path, "basisit", "10046118", None)
    assert not stack.cancelled and stack.imported is None


def test_recover_does_nothing_after_a_clean_run(tmp_path: Path) -> None:
    stack = FakeStack({"resources": [], "pending_operations": [{"type": "creating"}]})
    result = locking.recover(stack, tmp_path, "basisit", "10046118", None)
    assert not result.happened
    assert stack.imported is None


# --- allocation --------------------------------------------------------------------------------


def test_ports_are_unique_across_kommunen_and_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASISIT_LOCAL_PORTS", "31400-31499")
    first = allocation.allocate("10046118", desired(), local=True, persist=True)
    other_doc = desired() | {"ags": "10041100"}
    other = allocation.allocate("10041100", other_doc, local=True, persist=True)
    assert first.ports is not None and other.ports is not None
    assert not set(first.ports.values()) & set(other.ports.values())
    assert set(first.ports) == {
        "dns/ssh", "dns/53/udp", "dns/53/tcp", "dateiablage/ssh", "dateiablage/445/tcp",
        "sicherung/ssh", "dns/9100/tcp", "dateiablage/9100/tcp", "sicherung/9100/tcp",
    }  # fmt: skip
    assert first.hosts == {"dns": 10, "dateiablage": 11, "sicherung": 12}
    again = allocation.allocate("10046118", desired(), local=True, persist=True)
    assert again == first


def test_removed_servers_keep_their_slots_until_the_deploy_succeeded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BASISIT_LOCAL_PORTS", "31400-31499")
    first = allocation.allocate("10046118", desired(), local=True, persist=True)
    changed = desired()
    changed["services"] = [s for s in changed["services"] if s["instance"] != "dateiablage"]
    changed["services"].append(dict(desired()["services"][1], instance="web", request_id=9))
    second = allocation.allocate("10046118", changed, local=True, persist=True)
    assert second.hosts["web"] == 13  # not dateiablage's 11: that container may still exist
    assert second.ports is not None and first.ports is not None
    assert second.ports["web/ssh"] not in first.ports.values()
    allocation.prune("10046118", changed)
    record = allocation.recorded("10046118")
    assert record is not None and "dateiablage" not in record["hosts"]
    allocation.release("10046118")
    assert allocation.recorded("10046118") is None


def test_plan_allocation_is_not_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASISIT_LOCAL_PORTS", "31400-31499")
    allocation.allocate("10046118", desired(), local=True, persist=False)
    assert allocation.recorded("10046118") is None


def _busy_port(low: int, high: int) -> socket.socket:
    """A socket listening on the first free port in low-high (below the ephemeral range)."""
    for port in range(low, high):
        sock = socket.socket()
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            sock.close()
            continue
        sock.listen()
        return sock
    raise AssertionError(f"no free port in {low}-{high}")


def test_a_port_in_use_on_loopback_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    with _busy_port(31400, 31480) as busy:
        port = busy.getsockname()[1]
        monkeypatch.setenv("BASISIT_LOCAL_PORTS", f"{port}-{port + 20}")
        result = allocation.allocate("10046118", desired(), local=True, persist=False)
        assert result.ports is not None and port not in result.ports.values()
        assert min(result.ports.values()) == port + 1


def test_ports_in_the_kernels_ephemeral_range_are_never_handed_out(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Any process may bind an ephemeral port for a moment (Pulumi's gRPC servers do), so a
    # container published there could fail to start with "address already in use".
    ephemeral = tmp_path / "ip_local_port_range"
    ephemeral.write_text("31403\t31412\n")
    monkeypatch.setattr(allocation, "EPHEMERAL_RANGE_FILE", ephemeral)
    monkeypatch.setenv("BASISIT_LOCAL_PORTS", "31400-31439")
    result = allocation.allocate("10046118", desired(), local=True, persist=False)
    assert result.ports
    assert not [p for p in result.ports.values() if 31403 <= p <= 31412]
    assert max(result.ports.values()) >= 31413

    monkeypatch.setenv("BASISIT_LOCAL_PORTS", "31403-31412")
    with pytest.raises(ProvisionError, match="ephemeral range 31403-31412"):
        allocation.allocate("10046118", desired(), local=True, persist=False)


def test_bad_port_range_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASISIT_LOCAL_PORTS", "80-90")
    with pytest.raises(ProvisionError, match="BASISIT_LOCAL_PORTS"):
        allocation.allocate("10046118", desired(), local=True, persist=False)


# --- secrets -----------------------------------------------------------------------------------


def test_passphrase_is_generated_once_with_mode_0600() -> None:
    path = secrets.passphrase_file()
    text = path.read_text()
    assert len(text) >= 40
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert secrets.passphrase_file().read_text() == text


def test_ssh_key_pair_per_kommune() -> None:
    assert secrets.ssh_keypair("10046118", create=False) is None
    pair = secrets.ssh_keypair("10046118")
    assert pair is not None
    key = paramiko.Ed25519Key.from_private_key(io.StringIO(pair.private_key()))
    assert pair.public_key.split()[1] == key.get_base64()
    assert pair.public_key.endswith(" basisit-10046118")
    assert pair.private_key() not in repr(pair)
    other = secrets.ssh_keypair("10041100")
    assert other is not None and other.public_key != pair.public_key
    assert secrets.ssh_keypair("10046118") == pair  # generated once
    secrets.remove_ssh_keypair("10046118")
    assert secrets.ssh_keypair("10046118", create=False) is None
    assert not secrets.key_location("10046118").parent.exists()
    assert secrets.ssh_keypair("10041100") == other  # the other Kommune keeps its key


def _key_lines(private: str) -> list[bytes]:
    """The base64 body of an OpenSSH private key, line by line, without the first: that one is
    the format's header, the same in every unencrypted ed25519 key."""
    lines = [ln.encode() for ln in private.splitlines() if not ln.startswith("-----")]
    assert len(lines) >= 4
    return lines[1:]


def _files_with(root: Path, needles: list[bytes]) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and any(n in p.read_bytes() for n in needles)]


def test_private_key_is_never_a_plain_file_and_needs_the_passphrase(data_dir: Path) -> None:
    from basisit.configure.apply import provisioned_ssh_key
    from basisit.vault.store import SecretsError, SecretStore

    pair = secrets.ssh_keypair("10046118")
    assert pair is not None
    lines = _key_lines(pair.private_key())
    assert _files_with(data_dir, lines) == []
    stored = secrets.key_location("10046118") / "id_ed25519.fernet"
    assert stored.is_file() and stored.stat().st_mode & 0o777 == 0o600
    assert not any(line in stored.read_bytes() for line in lines)
    assert provisioned_ssh_key("10046118") == pair.private_key().encode()
    # Not among the secrets a configure run decrypts into the roles' dir.
    with SecretStore().unlocked("10046118") as run:
        assert _files_with(run.root, lines) == []

    passphrase = data_dir / "secrets.passphrase"
    passphrase.write_text("another-passphrase-of-enough-length\n")
    with pytest.raises(SecretsError, match="wrong passphrase") as err:
        secrets.ssh_keypair("10046118", create=False)
    assert str(passphrase) in str(err.value) and str(stored) in str(err.value)
    assert stored.is_file()  # nothing was replaced by a new key


def test_configure_without_a_deployed_key_says_deploy_first() -> None:
    from basisit.configure.apply import provisioned_ssh_key
    from basisit.configure.errors import ConfigureError

    with pytest.raises(ConfigureError, match=r"deploy the Kommune first .*--ags 10046118"):
        provisioned_ssh_key("10046118")
    assert secrets.ssh_keypair("10046118", create=False) is None  # nothing made on the way


def _legacy_pair(data_dir: Path, ags: str) -> tuple[Path, str, str]:
    """A key pair as versions before the store kept it: plain files under secrets/ssh/<ags>/."""
    folder = data_dir / "secrets" / "ssh" / ags
    folder.mkdir(mode=0o700, parents=True)
    key = folder / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"old-{ags}", "-f", str(key)],
        check=True,
    )
    return folder, key.read_text(), (folder / "id_ed25519.pub").read_text()


def test_a_plain_key_of_an_older_data_dir_is_moved_into_the_store(data_dir: Path) -> None:
    folder, private, public = _legacy_pair(data_dir, "10046118")
    _legacy_pair(data_dir, "10041100")

    pair = secrets.ssh_keypair("10046118", create=False)  # configure's first use imports too
    assert pair is not None
    assert pair.private_key() == private
    assert pair.public_key == public.strip()  # same text as the servers' authorized_keys
    assert not folder.exists()
    assert secrets.ssh_keypair("10046118") == pair  # no new key on the next deploy
    lines = _key_lines(private)
    assert _files_with(data_dir, lines) == []
    # The other Kommune's plain files wait for its own first use.
    assert (data_dir / "secrets" / "ssh" / "10041100" / "id_ed25519").is_file()
    secrets.ssh_keypair("10041100", create=False)
    assert not (data_dir / "secrets" / "ssh").exists()


def test_a_broken_plain_key_is_named_and_kept(data_dir: Path) -> None:
    from basisit.vault.store import SecretsError

    folder, private, _ = _legacy_pair(data_dir, "10046118")
    (folder / "id_ed25519").write_text(private[:100])
    with pytest.raises(SecretsError, match="not an unencrypted OpenSSH private key") as err:
        secrets.ssh_keypair("10046118")
    assert str(folder / "id_ed25519") in str(err.value)
    assert (folder / "id_ed25519").read_text() == private[:100]
    assert not secrets.key_location("10046118").exists()

    (folder / "id_ed25519").write_text(private)
    _, _, other_public = _legacy_pair(data_dir, "10041100")
    (folder / "id_ed25519.pub").write_text(other_public)
    with pytest.raises(SecretsError, match="does not belong to the private key"):
        secrets.ssh_keypair("10046118")
    assert (folder / "id_ed25519").read_text() == private


RACER = """
import pathlib, sys, time
from basisit.vault import keys as secrets
go = pathlib.Path(sys.argv[2])
print("ready", flush=True)
deadline = time.monotonic() + 60
while not go.exists() and time.monotonic() < deadline:
    time.sleep(0.005)
print(secrets.ssh_keypair(sys.argv[1]).public_key, flush=True)
"""


def test_concurrent_first_deploys_end_with_one_key(tmp_path: Path) -> None:
    go = tmp_path / "go"
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, "10046118", str(go)],
            stdout=subprocess.PIPE,
            text=True,
            env=os.environ,
        )
        for _ in range(4)
    ]
    for racer in racers:
        assert racer.stdout is not None and racer.stdout.readline().strip() == "ready"
    go.touch()
    keys = {racer.communicate(timeout=60)[0].strip() for racer in racers}
    assert all(racer.returncode == 0 for racer in racers)
    pair = secrets.ssh_keypair("10046118", create=False)
    assert pair is not None
    assert keys == {pair.public_key}


# --- inputs and outputs ------------------------------------------------------------------------


def test_bad_desired_state_names_file_and_field(tmp_path: Path) -> None:
    doc = desired()
    doc["services"][0]["server"]["flavor"] = "m1.small"
    del doc["dns_zone"]
    path = tmp_path / "ds.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ValidationFailed) as err:
        load_file(path)
    text = str(err.value)
    assert str(path) in text
    assert "services.0.server" in text and "dns_zone" in text


def test_desired_state_folder_and_duplicates(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(DESIRED.read_text())
    assert Source(tmp_path).fleet() == ["10046118"]
    with pytest.raises(ProvisionError, match="no desired state for AGS 10041100"):
        Source(tmp_path).desired("10041100")
    (tmp_path / "b.json").write_text(json.dumps(desired()))
    with pytest.raises(ProvisionError, match="both hold AGS 10046118"):
        Source(tmp_path).fleet()
    with pytest.raises(ProvisionError, match="does not exist"):
        load_file(tmp_path / "missing.yaml")


def test_plan_errors_name_the_service() -> None:
    doc = desired()
    doc["services"][1]["instance"] = "dns"
    with pytest.raises(PlanError, match=r"services\[1\].*used twice"):
        build_plan(doc, {"dns": 10, "sicherung": 12})
    doc = desired()
    doc["services"][1]["server"] = None
    with pytest.raises(PlanError, match="volumes but no server"):
        build_plan(doc, {"dns": 10, "sicherung": 12})


def test_invalid_outputs_are_not_written_and_the_old_file_stays() -> None:
    good = json.loads(OUTPUTS.read_text())
    path = outputs.write("10046118", good)
    before = path.read_text()
    bad = dict(good, target="aws")
    del bad["servers"]
    with pytest.raises(ProvisionError, match="servers") as err:
        outputs.write("10046118", bad, error=ProvisionError)
    assert "target" in str(err.value)
    assert path.read_text() == before


def test_outputs_document_adds_the_deploy_time_in_schema_order() -> None:
    stack_doc = json.loads(OUTPUTS.read_text())
    del stack_doc["deployed_at"]
    doc = outputs.document(stack_doc)
    assert list(doc)[:5] == ["schema_version", "ags", "target", "stack", "deployed_at"]
    stamp = dt.datetime.strptime(doc["deployed_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    assert abs((dt.datetime.now(dt.UTC) - stamp).total_seconds()) < 60
    assert outputs.problems(doc) == []
