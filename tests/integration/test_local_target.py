"""The local target for real: Pulumi CLI + engine, dynamic providers, podman, sshd.

Two fictitious Kommunen (AGS 10046901 and 10046902, Kreis St. Wendel; no real Kommune has
them, so the demo's networks never clash) are deployed once per module and shared by the
tests, which run in file order: deploy, look at what came up, deploy again, race a second
deploy, drift, kill a deploy, isolation, bad input, destroy. Everything lives in a private
data directory and under the name prefix bi-test-prov.
"""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest
import yaml

from basisit.app import deploy as deploying
from basisit.app.sources import Source
from basisit.contracts import stack_outputs as outputs
from basisit.errors import StackLocked
from basisit.provision import operations
from basisit.provision.errors import ProvisionError
from basisit.vault import keys as secrets

pytestmark = [pytest.mark.podman, pytest.mark.pulumi]

A, B = "10046901", "10046902"
# From the request database the AGS must be a real Kommune: Wadern, not used by the demo.
C = "10042117"
PREFIX = "bi-test-prov"
PORTS = "31000-31199"
FILL_MIB = 100  # more than the 64 MiB share holds


def _service(instance: str, service: str, request_id: int, **extra: Any) -> dict[str, Any]:
    entry = {
        "instance": instance,
        "service": service,
        "service_version": 1,
        "plan": "S",
        "status": "approved",
        "request_id": request_id,
        "schutzbedarf": "normal",
        "parameters": {},
        "roles": [],
        "depends_on": [],
        "server": {"flavor": "SCS-1V-2-10s", "vcpus": 1, "ram_mib": 2048, "disk_gib": 10},
        "volumes": [],
        "ports": [],
        "object_storage": False,
    }
    entry.update(extra)
    return entry


def desired_a() -> dict[str, Any]:
    return {
        "schema_version": 1,
        "ags": A,
        "kommune": {"name": "Testdorf", "typ": "Gemeinde", "kreis": "St. Wendel",
                    "slug": "testdorf"},
        "dns_zone": "testdorf.basisit.internal.",
        "services": [
            _service(
                "dns", "dns", 1, roles=["powerdns"],
                ports=[{"port": 53, "protocol": "udp", "source": "kommune"},
                       {"port": 53, "protocol": "tcp", "source": "kommune"}],
                volumes=[{"name": "zones", "size_gib": 1, "mount": "/var/lib/zones",
                          "fixed_size": False}],
            ),
            _service(
                "dateiablage", "fileshare", 2, roles=["samba"],
                ports=[{"port": 445, "protocol": "tcp", "source": "kommune"}],
                volumes=[{"name": "share", "size_gib": 0.0625, "mount": "/srv/samba",
                          "fixed_size": True}],
            ),
            _service(
                "vpn", "vpn", 3, roles=["wireguard"], parameters={"peers": ["aussenstelle"]},
                ports=[{"port": 51820, "protocol": "udp", "source": "any"}],
            ),
        ],
    }  # fmt: skip


def desired_b() -> dict[str, Any]:
    return {
        "schema_version": 1,
        "ags": B,
        "kommune": {"name": "Teststadt", "typ": "Stadt", "kreis": "St. Wendel",
                    "slug": "teststadt"},
        "dns_zone": "teststadt.basisit.internal.",
        "services": [
            _service(
                "sicherung", "backup", 7, roles=["backup_server"],
                ports=[{"port": 22, "protocol": "tcp", "source": "kommune"}],
                volumes=[{"name": "repo", "size_gib": 0.0625, "mount": "/srv/backup",
                          "fixed_size": True}],
            ),
        ],
    }  # fmt: skip


# --- helpers -----------------------------------------------------------------------------------


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", *args], capture_output=True, text=True, check=check, timeout=120
    )


def container(ags: str, instance: str) -> str:
    return f"{PREFIX}-{ags}-{instance}"


def exists(kind: str, name: str) -> bool:
    return podman(kind, "exists", name, check=False).returncode == 0


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "basisit.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def mounts_under(path: Path) -> list[str]:
    text = Path("/proc/mounts").read_text()
    return [line.split()[1] for line in text.splitlines() if line.split()[1].startswith(str(path))]


def connect_from(ags: str, instance: str, address: str, port: int = 22) -> bool:
    """Can this Kommune's server open a TCP connection to address:port (3 s timeout)?"""
    probe = (
        "import socket,sys\n"
        "try:\n"
        f"    socket.create_connection(({address!r}, {port}), timeout=3).close()\n"
        "except OSError:\n"
        "    sys.exit(1)\n"
    )
    result = podman("exec", container(ags, instance), "python3", "-c", probe, check=False)
    return result.returncode == 0


def private_key(ags: str) -> str:
    """The Kommune's SSH private key, from the deploy step's encrypted store."""
    pair = secrets.ssh_keypair(ags, create=False)
    assert pair is not None, f"no SSH key stored for {ags}"
    return pair.private_key()


def force_cleanup(data: Path) -> None:
    """Whatever a failed test left behind: only this module's own names and mounts."""
    for ags, instances in ((A, ["dns", "dateiablage", "vpn"]), (B, ["sicherung"]), (C, ["dns"])):
        for instance in instances:
            podman("rm", "-f", "-t", "1", container(ags, instance), check=False)
        podman("network", "rm", f"{PREFIX}-{ags}", check=False)
    for mount in mounts_under(data):
        subprocess.run(["umount", "-l", mount], check=False)


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    if subprocess.run(["which", "podman"], capture_output=True).returncode != 0:
        pytest.skip("podman is not installed")
    base = tmp_path_factory.mktemp("local-target")
    data = base / "data"
    data.mkdir()
    files = {}
    for ags, doc in ((A, desired_a()), (B, desired_b())):
        files[ags] = base / f"desired-{ags}.yaml"
        files[ags].write_text(yaml.safe_dump(doc, sort_keys=False))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BASISIT_DATA_DIR", str(data))
        mp.setenv("BASISIT_RESOURCE_PREFIX", PREFIX)
        mp.setenv("BASISIT_LOCAL_PORTS", PORTS)
        mp.setenv("BASISIT_ACTOR", "test-operator")
        force_cleanup(data)  # a previous run that died may have left its containers
        try:
            yield {"data": data, A: files[A], B: files[B]}
        finally:
            for ags in (A, B, C):
                if ags in operations.deployed_stacks():
                    try:
                        operations.destroy(ags)
                    except Exception as exc:  # cleanup must go on
                        print(f"cleanup: destroy {ags} failed: {exc}")
            force_cleanup(data)


@pytest.fixture(autouse=True)
def data_dir(shared: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    """Overrides the suite-wide per-test data dir: these tests share one deployment."""
    monkeypatch.setenv("BASISIT_DATA_DIR", str(shared["data"]))
    monkeypatch.delenv("BASISIT_DB_URL", raising=False)  # the request DB lives there too
    return shared["data"]


@pytest.fixture(scope="module")
def deployed_a(shared: dict[str, Path]) -> dict[str, Any]:
    result = deploying.deploy(A, Source(shared[A]), target="local", actor="test-operator")
    return {"result": result, "outputs": outputs.load(A)}


@pytest.fixture(scope="module")
def deployed_b(shared: dict[str, Path]) -> dict[str, Any]:
    """B's first deploy is killed (SIGKILL to its whole process group) once a container of
    it exists; a second deploy must detect the stale locks, recover and finish."""
    lock = shared["data"] / "provision" / "locks" / f"{B}.lock"
    proc = subprocess.Popen(
        [sys.executable, "-m", "basisit.cli.main", "deploy", "--ags", B,
         "--desired-state", str(shared[B])],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if exists("container", container(B, "sicherung")):
            break
        time.sleep(0.2)
    killed = proc.poll() is None
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    state_locks = list(
        (shared["data"] / "pulumi" / "state" / ".pulumi" / "locks").glob(f"**/{B}/*.json")
    )
    evidence = {
        "killed_mid_way": killed,
        "suite_lock_left": lock.is_file() and lock.stat().st_size > 0,
        "pulumi_locks_left": len(state_locks),
    }
    result = deploying.deploy(B, Source(shared[B]), target="local", actor="test-operator")
    return {"result": result, "evidence": evidence, "outputs": outputs.load(B)}


# --- tests -------------------------------------------------------------------------------------


def test_deploy_starts_systemd_servers_with_labels(deployed_a: dict[str, Any]) -> None:
    result = deployed_a["result"]
    assert result.ok
    assert result.changes.get("create", 0) >= 5  # network, 2 volumes, 2 servers, tenant
    for instance, service in (("dns", "dns"), ("dateiablage", "fileshare")):
        info = json.loads(podman("container", "inspect", container(A, instance)).stdout)[0]
        assert info["State"]["Running"]
        labels = info["Config"]["Labels"]
        assert labels["basisit.ags"] == A
        assert labels["basisit.service"] == service
        assert labels["basisit.instance"] == instance
        assert info["Config"]["Hostname"] == instance
        assert "CAP_NET_ADMIN" in info["EffectiveCaps"]
        state = podman(
            "exec", container(A, instance), "systemctl", "is-system-running", check=False
        )
        assert state.stdout.strip() in ("running", "degraded")
    net = json.loads(podman("network", "inspect", f"{PREFIX}-{A}").stdout)[0]
    assert net["subnets"][0]["subnet"] == "10.27.133.0/24"
    assert net["options"]["isolate"] == "true"


def test_published_ports_are_on_loopback_only(deployed_a: dict[str, Any]) -> None:
    for server in deployed_a["outputs"]["servers"]:
        info = json.loads(podman("container", "inspect", container(A, server["name"])).stdout)[0]
        bindings = [b for bs in info["HostConfig"]["PortBindings"].values() for b in bs]
        assert bindings
        assert {b["HostIp"] for b in bindings} == {"127.0.0.1"}
        published = {int(b["HostPort"]) for b in bindings}
        assert published == {server["ssh"]["port"], *server["published_ports"].values()}


def test_node_exporter_port_is_published_on_loopback_only(deployed_a: dict[str, Any]) -> None:
    """Every server's 9100 is a scrape target on its own 127.0.0.1 port, named in contract 2."""
    ports = []
    for server in deployed_a["outputs"]["servers"]:
        metrics = server["metrics"]
        assert (metrics["address"], metrics["path"]) == ("127.0.0.1", "/metrics")
        assert metrics["port"] == server["published_ports"]["9100/tcp"]
        assert metrics["sources"] == ["10.27.133.1"]  # podman masquerades to the gateway
        mapped = podman("port", container(A, server["name"]), "9100/tcp").stdout.split()
        assert mapped == [f"127.0.0.1:{metrics['port']}"]
        # What listens on the host for that port: loopback only, never 0.0.0.0 or ::.
        listening = subprocess.run(
            ["ss", "-Htln", f"sport = :{metrics['port']}"],
            capture_output=True, text=True, check=True, timeout=30,
        ).stdout.split("\n")  # fmt: skip
        local = {line.split()[3] for line in listening if line.strip()}
        assert local == {f"127.0.0.1:{metrics['port']}"}, listening
        ports.append(metrics["port"])
    assert len(set(ports)) == len(ports)


def test_vpn_endpoint_is_the_udp_port_on_loopback(deployed_a: dict[str, Any]) -> None:
    """Contract 2's VPN endpoint is WireGuard's 51820/udp, published on 127.0.0.1 only, and a
    datagram sent there arrives at the VPN server's port (answered by a stand-in listener)."""
    servers = {s["name"]: s for s in deployed_a["outputs"]["servers"]}
    assert [n for n, s in servers.items() if "vpn_endpoint" in s] == ["vpn"]
    endpoint = servers["vpn"]["vpn_endpoint"]
    port = servers["vpn"]["published_ports"]["51820/udp"]
    assert endpoint == {"host": "127.0.0.1", "port": port}
    assert podman("port", container(A, "vpn"), "51820/udp").stdout.split() == [f"127.0.0.1:{port}"]
    listening = subprocess.run(
        ["ss", "-Huln", f"sport = :{port}"], capture_output=True, text=True, check=True, timeout=30,
    ).stdout.split("\n")  # fmt: skip
    assert {line.split()[3] for line in listening if line.strip()} == {f"127.0.0.1:{port}"}
    echo = (
        "import socket\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "s.bind(('0.0.0.0', 51820))\n"
        "s.settimeout(20)\n"
        "data, peer = s.recvfrom(64)\n"
        "s.sendto(b'vpn:' + data, peer)\n"
    )
    listener = subprocess.Popen(["podman", "exec", container(A, "vpn"), "python3", "-c", echo])
    try:
        reply = b""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.settimeout(1)
            for _ in range(15):  # the listener needs a moment to bind
                client.sendto(b"ping", (endpoint["host"], endpoint["port"]))
                try:
                    reply = client.recv(64)
                    break
                except TimeoutError:
                    continue
        assert reply == b"vpn:ping"
    finally:
        listener.wait(timeout=30)


def test_sshd_answers_with_the_kommune_key(deployed_a: dict[str, Any], data_dir: Path) -> None:
    key = paramiko.Ed25519Key.from_private_key(io.StringIO(private_key(A)))
    for server in deployed_a["outputs"]["servers"]:
        ssh = server["ssh"]
        assert ssh["host"] == "127.0.0.1"
        client = paramiko.SSHClient()
        # the host key the deploy recorded is the only one accepted
        kind, blob = ssh["host_key"].split()[:2]
        host_key = paramiko.Ed25519Key(data=base64.b64decode(blob))
        client.get_host_keys().add(f"[127.0.0.1]:{ssh['port']}", kind, host_key)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect("127.0.0.1", port=ssh["port"], username=ssh["user"], pkey=key,
                       look_for_keys=False, allow_agent=False, timeout=10)  # fmt: skip
        try:
            _, stdout, _ = client.exec_command("hostname; ip -4 -o addr show scope global")
            text = stdout.read().decode()
        finally:
            client.close()
        assert text.splitlines()[0] == server["name"]
        assert f" {server['address']}/24 " in text


def test_fixed_size_volume_is_a_hard_limit(deployed_a: dict[str, Any]) -> None:
    name = container(A, "dateiablage")
    fill = podman(
        "exec", name, "dd", "if=/dev/zero", "of=/srv/samba/fill", "bs=1M", f"count={FILL_MIB}",
        check=False,
    )  # fmt: skip
    try:
        assert fill.returncode != 0
        assert "No space left" in fill.stderr
        size = podman("exec", name, "stat", "-c", "%s", "/srv/samba/fill").stdout.strip()
        assert int(size) < 64 * 1024 * 1024
    finally:
        podman("exec", name, "rm", "-f", "/srv/samba/fill", check=False)


def test_outputs_file_is_contract_2(deployed_a: dict[str, Any], data_dir: Path) -> None:
    doc = json.loads((data_dir / "outputs" / f"{A}.json").read_text())
    assert outputs.problems(doc) == []
    assert doc["target"] == "local" and doc["stack"] == A
    assert doc["network"] == {"name": f"{PREFIX}-{A}", "cidr": "10.27.133.0/24",
                              "gateway": "10.27.133.1"}  # fmt: skip
    by_name = {s["name"]: s for s in doc["servers"]}
    assert set(by_name) == {"dns", "dateiablage", "vpn"}
    assert by_name["dns"]["address"] == "10.27.133.10"
    assert by_name["dateiablage"]["address"] == "10.27.133.11"
    assert by_name["vpn"]["address"] == "10.27.133.12"
    assert set(by_name["dns"]["published_ports"]) == {"53/udp", "53/tcp", "9100/tcp"}
    assert doc["kommune"] == {"name": "Testdorf", "slug": "testdorf"}
    assert by_name["dateiablage"]["volumes"] == [
        {"name": "share", "mount": "/srv/samba", "size_bytes": 64 * 1024 * 1024}
    ]
    assert {(r["name"], r["value"]) for r in doc["dns"]["records"]} == {
        ("dns", "10.27.133.10"),
        ("dateiablage", "10.27.133.11"),
        ("vpn", "10.27.133.12"),
    }


def test_passphrase_is_private_and_the_key_encrypted_at_rest_and_in_the_state(
    deployed_a: dict[str, Any], data_dir: Path
) -> None:
    passphrase = data_dir / "secrets" / "pulumi.passphrase"
    assert passphrase.stat().st_mode & 0o777 == 0o600
    # The key's body lines, but the first: the format's header, the same in every ed25519 key.
    key_lines = [ln for ln in private_key(A).splitlines()[2:-1] if len(ln) >= 16]
    assert key_lines
    # No plain copy of the private key anywhere in the data dir (it lives Fernet-encrypted).
    assert not (data_dir / "secrets" / "ssh").exists()
    for path in data_dir.rglob("*"):
        if path.is_file() and not path.is_symlink():
            content = path.read_bytes()
            assert not any(line.encode() in content for line in key_lines), path
    assert (secrets.key_location(A) / "id_ed25519.fernet").stat().st_mode & 0o777 == 0o600
    state = data_dir / "pulumi" / "state" / ".pulumi" / "stacks" / "basisit" / f"{A}.json"
    text = state.read_text()
    # The private key is not in the state at all, not even encrypted: its home is the vault.
    assert "ssh_private_key" not in text and "PRIVATE KEY" not in text
    for path in [
        state,
        *(data_dir / "outputs").iterdir(),
        *(data_dir / "provision").rglob("*.json*"),
    ]:
        assert passphrase.read_text().strip() not in path.read_text(), path


def test_second_deploy_changes_nothing(deployed_a: dict[str, Any], data_dir: Path) -> None:
    run = cli("deploy", "--ags", A, "--desired-state", str(data_dir.parent / f"desired-{A}.yaml"),
              "--format", "json")  # fmt: skip
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["ok"]
    assert set(result["changes"]) == {"same"}
    assert result["steps"] == []
    secret_words = [
        (data_dir / "secrets" / "pulumi.passphrase").read_text().strip(),
        *private_key(A).splitlines()[2:-1],
    ]
    assert not any(w in run.stdout + run.stderr for w in secret_words)


def test_a_second_concurrent_deploy_is_refused(deployed_a: dict[str, Any], data_dir: Path) -> None:
    lock = data_dir / "provision" / "locks" / f"{A}.lock"
    first = subprocess.Popen(
        [sys.executable, "-m", "basisit.cli.main", "deploy", "--ags", A,
         "--desired-state", str(data_dir.parent / f"desired-{A}.yaml")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        holder: dict[str, Any] = {}
        while time.monotonic() < deadline and first.poll() is None:
            raw = lock.read_text() if lock.exists() else ""
            if raw.strip():
                holder = json.loads(raw)
                if holder.get("pid") == first.pid:
                    break
            time.sleep(0.05)
        assert holder.get("pid") == first.pid, "the first deploy never took the lock"
        with pytest.raises(StackLocked) as refused:
            deploying.deploy(A, Source(data_dir.parent / f"desired-{A}.yaml"),
                              target="local", actor="test-operator")  # fmt: skip
        message = str(refused.value)
        assert f"pid {first.pid}" in message and socket.gethostname() in message
        assert "deploy" in message
    finally:
        _, err = first.communicate(timeout=600)
    assert first.returncode == 0, err


def test_drift_reports_a_container_removed_by_hand(
    deployed_a: dict[str, Any], data_dir: Path
) -> None:
    podman("rm", "-f", "-t", "1", container(A, "dns"))
    run = cli("drift", "--ags", A)
    assert run.returncode == 2, run.stdout + run.stderr
    assert f"{PREFIX}-{A}-dns-server" in run.stdout
    assert "delete" in run.stdout
    # a deploy brings it back, and then nothing is left to report
    redeploy = cli(
        "deploy", "--ags", A, "--desired-state", str(data_dir.parent / f"desired-{A}.yaml")
    )
    assert redeploy.returncode == 0, redeploy.stderr
    assert exists("container", container(A, "dns"))
    clean = cli("drift", "--ags", A)
    assert clean.returncode == 0, clean.stdout + clean.stderr


def test_killed_deploy_is_recovered_by_the_next(deployed_b: dict[str, Any], data_dir: Path) -> None:
    evidence = deployed_b["evidence"]
    assert evidence["killed_mid_way"], "the first deploy finished before it could be killed"
    assert evidence["suite_lock_left"] and evidence["pulumi_locks_left"] >= 1
    result = deployed_b["result"]
    assert result.ok
    assert "stale lock" in (result.recovery or "")
    assert "Pulumi lock" in (result.recovery or "")
    # exactly one server, running, and Pulumi's lock is gone
    names = podman("ps", "-a", "--filter", f"label=basisit.ags={B}", "--format", "{{.Names}}")
    assert names.stdout.split() == [container(B, "sicherung")]
    locks = list((data_dir / "pulumi" / "state" / ".pulumi" / "locks").glob(f"**/{B}/*.json"))
    assert locks == []
    assert cli("drift", "--ags", B).returncode == 0


def test_kommunen_cannot_reach_each_other(
    deployed_a: dict[str, Any], deployed_b: dict[str, Any]
) -> None:
    a = {s["name"]: s["address"] for s in deployed_a["outputs"]["servers"]}
    b = {s["name"]: s["address"] for s in deployed_b["outputs"]["servers"]}
    # inside a Kommune the servers reach each other ...
    assert connect_from(A, "dns", a["dateiablage"])
    assert connect_from(A, "dateiablage", a["dns"])
    # ... across Kommunen they do not, in either direction
    assert not connect_from(A, "dns", b["sicherung"])
    assert not connect_from(B, "sicherung", a["dns"])
    assert not connect_from(B, "sicherung", a["dateiablage"])


def test_a_fixed_size_volume_grows_keeping_its_data_and_never_shrinks(
    deployed_a: dict[str, Any], data_dir: Path
) -> None:
    name = container(A, "dateiablage")
    podman("exec", name, "sh", "-c", "echo bewahrt > /srv/samba/marker")
    grown = desired_a()
    grown["services"][1]["volumes"][0]["size_gib"] = 0.125
    path = data_dir.parent / "grown.yaml"
    path.write_text(yaml.safe_dump(grown))
    result = deploying.deploy(A, Source(path), target="local", actor="test-operator")
    assert result.changes.get("update") == 1 and "replace" not in result.changes
    df = podman("exec", name, "df", "-B1", "--output=size", "/srv/samba").stdout.split()
    assert 100 * 1024 * 1024 < int(df[-1]) <= 128 * 1024 * 1024
    assert podman("exec", name, "cat", "/srv/samba/marker").stdout.strip() == "bewahrt"
    # back to 64 MiB would cut the filesystem: refused, naming the volume
    with pytest.raises(ProvisionError, match="dateiablage-share: shrinking"):
        deploying.deploy(A, Source(data_dir.parent / f"desired-{A}.yaml"), target="local",
                          actor="test-operator")  # fmt: skip
    assert podman("exec", name, "cat", "/srv/samba/marker").stdout.strip() == "bewahrt"


def test_bad_desired_state_is_refused_and_changes_nothing(
    deployed_a: dict[str, Any], data_dir: Path
) -> None:
    bad = desired_a()
    bad["services"][1]["volumes"][0]["size_gib"] = -1
    path = data_dir.parent / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    before = (data_dir / "outputs" / f"{A}.json").read_text()
    run = cli("deploy", "--ags", A, "--desired-state", str(path))
    assert run.returncode != 0
    assert str(path) in run.stderr and "size_gib" in run.stderr
    assert (data_dir / "outputs" / f"{A}.json").read_text() == before
    assert exists("container", container(A, "dateiablage"))


def _request_states(ags: str) -> dict[int, tuple[str, str]]:
    """request id -> (state, reason of the last audit event)"""
    from basisit.store.db import session_scope
    from basisit.store.models import AuditEvent, Request

    with session_scope() as session:
        result = {}
        for req in session.query(Request).filter(Request.ags == ags):
            events = (
                session.query(AuditEvent)
                .filter(AuditEvent.request_id == req.id)
                .order_by(AuditEvent.id)
                .all()
            )
            result[req.id] = (req.state, events[-1].reason if events else "")
        return result


def test_deploy_from_the_request_database_moves_the_requests(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from basisit.cli.main import app
    from basisit.leitweg import make as make_leitweg

    runner = CliRunner()

    def ok(*args: str) -> None:
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, result.output

    ok("kommunen", "onboard", C, "--contact-name", "IT Wadern",
       "--contact-email", "it@wadern.example", "--cost-centre", "KST-1",
       "--billing-address", "Marktplatz 1, 66687 Wadern",
       "--leitweg-id", make_leitweg(C))  # fmt: skip
    ok("request", "create", "--ags", C, "--service", "dns", "--plan", "zone")
    ok("request", "submit", "1")
    ok("request", "approve", "1", "--as", "ops", "--actor", "ego-ops")
    # a deploy that fails (the image does not exist) marks the request failed, with the error
    monkeypatch.setenv("BASISIT_LOCAL_IMAGE", "localhost/bi-test-prov-missing:none")
    with pytest.raises(ProvisionError) as failed:
        deploying.deploy(C, Source(None), target="local", actor="test-operator")
    assert "bi-test-prov-missing" in str(failed.value)
    state, reason = _request_states(C)[1]
    assert state == "failed" and "bi-test-prov-missing" in reason
    assert not (data_dir / "outputs" / f"{C}.json").exists()
    # the retry succeeds and hands the request on to the configure step
    monkeypatch.delenv("BASISIT_LOCAL_IMAGE")
    result = deploying.deploy(C, Source(None), target="local", actor="test-operator")
    assert result.ok and result.request_ids == [1]
    assert _request_states(C)[1][0] == "configuring"
    doc = outputs.load(C)
    assert doc is not None and [s["name"] for s in doc["servers"]] == ["dns"]
    operations.destroy(C)
    assert not exists("container", container(C, "dns"))


def test_destroy_removes_everything(
    deployed_a: dict[str, Any], deployed_b: dict[str, Any], data_dir: Path
) -> None:
    unconfirmed = cli("destroy", "--ags", A)
    assert unconfirmed.returncode != 0 and "--yes" in unconfirmed.stderr
    assert exists("container", container(A, "dns"))
    for ags in (A, B):
        run = cli("destroy", "--ags", ags, "--yes")
        assert run.returncode == 0, run.stderr
        assert podman("ps", "-a", "-q", "--filter", f"label=basisit.ags={ags}").stdout == ""
        assert not exists("network", f"{PREFIX}-{ags}")
        assert not (data_dir / "outputs" / f"{ags}.json").exists()
        assert not (data_dir / "volumes" / ags).exists()
        assert secrets.ssh_keypair(ags, create=False) is None
        assert not secrets.key_location(ags).exists()
    assert mounts_under(data_dir) == []
    assert operations.deployed_stacks() == []
    status = json.loads(cli("status", "--format", "json").stdout)
    assert {
        (r["ags"], r["last_operation"], r["outcome"]) for r in status if r["ags"] in (A, B)
    } == {
        (A, "destroy", "succeeded"),
        (B, "destroy", "succeeded"),
    }
