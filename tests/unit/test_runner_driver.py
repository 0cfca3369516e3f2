"""The ansible-runner driver with real playbooks: on localhost, and over SSH into a real
container (marker podman). Nothing of Ansible is mocked."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from basisit import paths
from basisit.cli.run_progress import LiveRun, summary_table
from basisit.configure import apply
from basisit.configure.connection import Mode, mitogen_strategy_dir
from basisit.configure.events import RunEvent
from basisit.configure.records import list_records, read_record
from basisit.configure.runner import RunResult, run_playbook
from basisit.vault.store import SecretStore

AGS = "10046118"

# A tiny play in the shape the roles use: a secret from the password lookup into
# basisit_secrets_dir (no_log), used on the host, idempotent on the second run.
PLAY = """\
- name: Tiny configuration
  hosts: all
  gather_facts: {gather}
  tasks:
    - name: Generate the app password
      ansible.builtin.set_fact:
        tiny_password: >-
          {{{{ lookup('ansible.builtin.password', basisit_secrets_dir ~ '/tiny/app_password'
                      ~ ' length=32 chars=ascii_letters,digits') }}}}
      no_log: true
    - name: Install the password
      ansible.builtin.copy:
        dest: "{dest}"
        content: "{{{{ tiny_password }}}}\\n"
        mode: "0600"
      no_log: true
    - name: Say something harmless
      ansible.builtin.debug:
        msg: "configured {{{{ inventory_hostname }}}} of {{{{ basisit_kommune.name }}}}"
    - name: Break on request
      ansible.builtin.fail:
        msg: "broken on purpose on {{{{ inventory_hostname }}}}"
      when: tiny_break | default(false)
    - name: Wait on request
      ansible.builtin.pause:
        seconds: "{{{{ tiny_pause | default(0) }}}}"
      when: (tiny_pause | default(0) | int) > 0
"""


def _play(tmp_path: Path, dest: str, gather: bool = False) -> Path:
    path = tmp_path / "tiny.yml"
    path.write_text(PLAY.format(dest=dest, gather=str(gather).lower()))
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _local_inventory(secrets_dir: Path, hosts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "all": {
            "vars": {
                "basisit_secrets_dir": str(secrets_dir),
                "basisit_kommune": {"ags": AGS, "name": "Tholey"},
                "ansible_python_interpreter": sys.executable,
            },
            "hosts": hosts,
        }
    }


def _files_containing(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_each_host_is_reported_and_one_failure_does_not_stop_the_others(tmp_path: Path) -> None:
    play = _play(tmp_path, str(tmp_path / "out-{{ inventory_hostname }}"))
    console = Console(record=True, width=200)
    store = SecretStore()
    with store.unlocked(AGS) as run:
        inventory = _local_inventory(
            run.secrets_dir,
            {
                "good": {"ansible_connection": "local"},
                "bad": {"ansible_connection": "local", "tiny_break": True},
                "gone": {"ansible_host": "127.0.0.1", "ansible_port": _free_port()},
            },
        )
        result = run_playbook(
            inventory, run.root, ags=AGS, playbook=play, report=LiveRun(console, live=False)
        )
    assert result.status == "failed"
    assert result.error is None  # hosts failed, not the run as a whole
    good, bad, gone = result.hosts["good"], result.hosts["bad"], result.hosts["gone"]
    assert (good.status, bad.status, gone.status) == ("ok", "failed", "unreachable")
    assert good.changed == 1 and (tmp_path / "out-good").is_file()
    assert result.host_error("good") is None
    assert result.host_error("bad") == "bad failed: Break on request: broken on purpose on bad"
    assert result.host_error("gone").startswith("gone unreachable: Install the password: ")
    text = console.export_text()
    assert "failed      bad" in text and "unreachable gone" in text
    console.print(summary_table(result))
    table = console.export_text()
    assert "good" in table and "unreachable" in table


def test_secrets_persist_and_never_appear_in_artifacts_output_or_data_dir(
    tmp_path: Path, data_dir: Path
) -> None:
    play = _play(tmp_path, str(tmp_path / "installed"))
    store = SecretStore()
    console = Console(record=True, width=200)
    with store.unlocked(AGS) as run:
        inventory = _local_inventory(run.secrets_dir, {"web": {"ansible_connection": "local"}})
        first = run_playbook(
            inventory, run.root, ags=AGS, playbook=play, report=LiveRun(console, live=False)
        )
        password = run.path("tiny/app_password").read_bytes().strip()
        # What ansible-runner wrote (inventory, events, stdout) lives in the private dir only,
        # and holds no secret thanks to no_log.
        runner_dir = run.root / "runner"
        assert (runner_dir / "artifacts" / "run" / "job_events").is_dir()
        assert _files_containing(runner_dir, password) == []
        assert not (runner_dir / "env").exists()  # no env/extravars, env/envvars files
    assert first.succeeded and first.hosts["web"].changed == 1
    assert len(password) == 32
    assert not run.root.exists()
    assert run.stored == ["tiny/app_password"]
    assert (tmp_path / "installed").read_bytes().strip() == password
    assert password.decode() not in console.export_text()
    assert _files_containing(data_dir, password) == []

    # The next run gets the stored password back: nothing changes on the host.
    with store.unlocked(AGS) as run:
        inventory = _local_inventory(run.secrets_dir, {"web": {"ansible_connection": "local"}})
        second = run_playbook(
            inventory, run.root, ags=AGS, playbook=play, report=LiveRun(console, live=False)
        )
    assert second.succeeded and second.changed == 0
    assert run.stored == []
    assert store.get(AGS, "tiny/app_password").strip() == password


def test_leaked_secret_in_a_failure_message_is_masked(tmp_path: Path) -> None:
    store = SecretStore()
    store.put(AGS, "leaky", b"a-secret-value-that-must-not-leak")
    play = tmp_path / "leak.yml"
    play.write_text(
        textwrap.dedent(
            """\
            - name: A careless play
              hosts: all
              gather_facts: false
              tasks:
                - name: Fail with the secret in the message
                  ansible.builtin.fail:
                    msg: "oops {{ lookup('ansible.builtin.file', basisit_secrets_dir ~ '/leaky') }}"
            """
        )
    )
    console = Console(record=True, width=200)
    with store.unlocked(AGS) as run:
        inventory = _local_inventory(run.secrets_dir, {"h": {"ansible_connection": "local"}})
        result = run_playbook(
            inventory,
            run.root,
            ags=AGS,
            playbook=play,
            report=LiveRun(console, live=False),
            secret_values=run.secret_values(),
        )
    assert result.hosts["h"].error == "Fail with the secret in the message: oops ********"
    assert "must-not-leak" not in console.export_text()
    assert "must-not-leak" not in json.dumps(result.to_record())


def test_a_failed_loop_names_the_failing_item(tmp_path: Path) -> None:
    play = tmp_path / "loop.yml"
    play.write_text(
        textwrap.dedent(
            """\
            - name: A loop
              hosts: all
              gather_facts: false
              tasks:
                - name: Check the items
                  ansible.builtin.assert:
                    that: item != 'two'
                    fail_msg: "{{ item }} is not allowed"
                  loop: [one, two, three]
            """
        )
    )
    with SecretStore().unlocked(AGS) as run:
        inventory = _local_inventory(run.secrets_dir, {"h": {"ansible_connection": "local"}})
        result = run_playbook(inventory, run.root, ags=AGS, playbook=play)
    assert result.hosts["h"].error == (
        "Check the items: One or more items failed (item two: two is not allowed)"
    )


def test_runs_when_the_venv_is_not_on_path(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert shutil.which("ansible-playbook") is None or not str(
        shutil.which("ansible-playbook")
    ).startswith(str(Path(sys.executable).parent))
    play = _play(tmp_path, str(tmp_path / "out"))
    with SecretStore().unlocked(AGS) as run:
        inventory = _local_inventory(run.secrets_dir, {"h": {"ansible_connection": "local"}})
        result = run_playbook(inventory, run.root, ags=AGS, playbook=play)
    assert result.rc == 0 and result.succeeded


def test_a_broken_playbook_fails_the_run_for_every_host(tmp_path: Path) -> None:
    play = tmp_path / "broken.yml"
    play.write_text(
        "- name: Broken\n  hosts: all\n  tasks:\n    - ansible.builtin.nonexistent_module: {}\n"
    )
    with SecretStore().unlocked(AGS) as run:
        inventory = _local_inventory(run.secrets_dir, {"h": {"ansible_connection": "local"}})
        result = run_playbook(inventory, run.root, ags=AGS, playbook=play)
    assert result.rc != 0
    assert result.error and result.error.startswith("ansible-playbook exited with")
    assert result.host_error("h") == result.error


def test_ctrl_c_cancels_the_run_and_still_stores_and_removes_the_secrets(tmp_path: Path) -> None:
    play = _play(tmp_path, str(tmp_path / "out"))
    store = SecretStore()
    # Not necessarily Python's default: a shell started without job control ignores SIGINT.
    before = signal.getsignal(signal.SIGINT)
    timer = threading.Timer(6.0, os.kill, (os.getpid(), signal.SIGINT))
    t0 = time.monotonic()
    with store.unlocked(AGS) as run:
        inventory = _local_inventory(
            run.secrets_dir, {"h": {"ansible_connection": "local", "tiny_pause": 300}}
        )
        timer.start()
        try:
            result = run_playbook(inventory, run.root, ags=AGS, playbook=play)
        finally:
            timer.cancel()
    assert time.monotonic() - t0 < 120
    assert result.status == "canceled"
    assert result.host_error("h") == "run canceled (Ctrl-C or SIGTERM)"
    assert not run.root.exists()
    assert store.names(AGS) == ["tiny/app_password"]  # made before the pause, kept
    # Our handler is gone again: SIGINT is back to what it was.
    assert signal.getsignal(signal.SIGINT) == before


# -- over SSH into a real container, through `configure` ------------------------------------

IMAGE = os.environ.get("BASISIT_BASE_IMAGE", "localhost/basisit-base:bookworm")


def _podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(paths.project_root() / "scripts" / "containers.conf"))
    return subprocess.run(
        ["podman", *args], capture_output=True, text=True, check=check, env=env, timeout=120
    )


def _wait_for_banner(port: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                if sock.recv(64).startswith(b"SSH-2.0"):
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"no sshd banner on 127.0.0.1:{port} within {seconds} s")


@pytest.fixture(scope="module")
def ssh_server(tmp_path_factory) -> Iterator[dict[str, Any]]:
    """A systemd container with sshd on a loopback port and a fresh key (test-only)."""
    if shutil.which("podman") is None or _podman("image", "exists", IMAGE, check=False).returncode:
        pytest.skip(f"podman or the image {IMAGE} is missing (scripts/bootstrap.sh builds it)")
    keydir = tmp_path_factory.mktemp("key")
    key = keydir / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bi-test", "-f", str(key)],
        check=True,
    )
    name = f"bi-test-cfgdrv-{uuid.uuid4().hex[:8]}"
    _podman(
        "run", "-d", "--name", name, "--systemd=always", "-p", "127.0.0.1::22",
        "--label", "basisit.test=configure-driver", IMAGE, "/sbin/init",
    )  # fmt: skip
    try:
        port = int(_podman("port", name, "22/tcp").stdout.strip().rsplit(":", 1)[1])
        pub = (keydir / "id_ed25519.pub").read_text().strip()
        _podman(
            "exec", name, "sh", "-c",
            f"mkdir -p -m 700 /root/.ssh && echo '{pub}' > /root/.ssh/authorized_keys "
            "&& chmod 600 /root/.ssh/authorized_keys",
        )  # fmt: skip
        _wait_for_banner(port)
        host_key = _podman("exec", name, "cat", "/etc/ssh/ssh_host_ed25519_key.pub").stdout
        yield {
            "name": name,
            "port": port,
            "key": key.read_bytes(),
            "pub": pub,
            "host_key": host_key.strip(),
        }
    finally:
        _podman("rm", "-f", "-t", "0", name, check=False)


def _requests_in_configuring(catalog) -> dict[str, int]:
    """Tholey with a DNS zone and a file share, approved and provisioned (but not configured)."""
    from basisit.leitweg import make as make_leitweg
    from basisit.requests import lifecycle, onboarding
    from basisit.requests import service as svc
    from basisit.store.db import session_scope

    with session_scope() as s:
        onboarding.onboard(
            s,
            ags=AGS,
            contact_name="Anna Muster",
            contact_email="it@tholey.de",
            cost_centre="KST-4711",
            billing_address="Im Kloster 1, 66636 Tholey",
            leitweg_id=make_leitweg(AGS),
            actor="test-operator",
        )
        ids = [
            svc.create(s, catalog, ags=AGS, service_id="dns", plan="zone", actor="it").id,
            svc.create(
                s,
                catalog,
                ags=AGS,
                service_id="fileshare",
                plan="S",
                parameters={"quota_gib": "1"},
                actor="it",
            ).id,
        ]
    with session_scope() as s:
        svc.submit(s, catalog, ids, "it", dt.date.today())
    with session_scope() as s:
        for rid in ids:
            svc.approve(s, svc.get(s, rid), "ops", "ops-1")
    moved = lifecycle.start_provisioning(AGS, "test-deploy")
    lifecycle.finish_provisioning(AGS, moved, "test-deploy", None)
    return lifecycle.configuring_requests(AGS)


def _install_key(server: dict[str, Any]) -> None:
    """Where the deploy step keeps the Kommune's key pair: its encrypted store."""
    from basisit.vault import keys as provision_secrets

    store = provision_secrets.key_store()
    store.put(AGS, provision_secrets.PUBLIC, server["pub"].encode() + b"\n")
    store.put(AGS, provision_secrets.PRIVATE, server["key"])


def _write_outputs(
    desired: dict[str, Any], ports: dict[str, int], host_keys: dict[str, str] | None = None
) -> None:
    servers = []
    for n, svc in enumerate(desired["services"], start=10):
        ssh = {"host": "127.0.0.1", "port": ports[svc["instance"]], "user": "root"}
        if host_keys and svc["instance"] in host_keys:
            ssh["host_key"] = host_keys[svc["instance"]]
        servers.append(
            {
                "name": svc["instance"],
                "instance": svc["instance"],
                "services": [svc["service"]],
                "roles": svc["roles"],
                "address": f"10.24.118.{n}",
                "ssh": ssh,
                "published_ports": {},
                "volumes": [],
            }
        )
    outputs = {
        "schema_version": 1,
        "ags": AGS,
        "target": "local",
        "stack": AGS,
        "deployed_at": "2026-11-25T12:05:00Z",
        "network": {"name": f"basisit-{AGS}", "cidr": "10.24.118.0/24", "gateway": "10.24.118.1"},
        "dns": {"zone": desired["dns_zone"], "records": []},
        "servers": servers,
        "object_storage": None,
    }
    (paths.outputs_dir() / f"{AGS}.json").write_text(json.dumps(outputs))


def _state(rid: int) -> tuple[str, str | None]:
    from basisit.requests import service as svc
    from basisit.store.db import session_scope

    with session_scope() as s:
        req = svc.get(s, rid)
        return req.state, req.error


@pytest.mark.podman
def test_configure_over_ssh_finishes_requests_per_host_and_retries_failed(
    ssh_server, catalog, tmp_path: Path, data_dir: Path
) -> None:
    from basisit.app import configure as configuring
    from basisit.requests import desired_state

    by_instance = _requests_in_configuring(catalog)
    assert len(by_instance) == 2
    desired = desired_state.build(AGS)
    dns = next(s["instance"] for s in desired["services"] if s["service"] == "dns")
    share = next(s["instance"] for s in desired["services"] if s["service"] == "fileshare")
    # The file share's server does not answer: its request fails, the zone's goes on. The
    # zone's server has its host key in the outputs (as the local target writes them).
    _write_outputs(
        desired,
        {dns: ssh_server["port"], share: _free_port()},
        host_keys={dns: ssh_server["host_key"]},
    )
    _install_key(ssh_server)
    store = SecretStore()
    play = _play(tmp_path, "/root/tiny-{{ inventory_hostname }}", gather=True)
    console = Console(record=True, width=200)

    first = configuring.configure(
        AGS, actor="test-operator", playbook=play, report=LiveRun(console, live=False)
    )
    assert first.result.hosts[dns].status == "ok"
    assert first.result.hosts[share].status == "unreachable"
    assert _state(by_instance[dns]) == ("active", None)
    state, error = _state(by_instance[share])
    assert state == "failed" and error.startswith(f"configure {share}: {share} unreachable")
    assert "Connection refused" in error

    # The operator repairs the server; the re-run configures it and the request turns active.
    # Its outputs carry no host key: the key is pinned on first contact and kept, encrypted.
    _write_outputs(
        desired_state.build(AGS),
        {dns: ssh_server["port"], share: ssh_server["port"]},
        host_keys={dns: ssh_server["host_key"]},
    )
    second = configuring.configure(
        AGS, actor="test-operator", playbook=play, report=LiveRun(console, live=False)
    )
    assert second.result.succeeded
    assert second.result.hosts[dns].changed == 0  # idempotent over SSH too
    assert _state(by_instance[share]) == ("active", None)
    pinned = store.get(AGS, "ssh/known_hosts").decode().splitlines()
    assert len(pinned) == 1 and " ssh-ed25519 " in pinned[0]

    records = list_records(AGS)
    assert len(records) == 2
    record = read_record(records[-1])
    assert record["succeeded"] and record["hosts"][dns]["status"] == "ok"
    assert record["requests"] == {str(by_instance[share]): None}

    # A server that answers with another host key than the outputs name is not trusted. (The
    # share points elsewhere now: two hosts on one endpoint would share one ssh master.)
    other_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDZ5cGFpcnR5c2VjcmV0a2V5dGhhdGlzbm90aGVyZQ"
    _write_outputs(
        desired_state.build(AGS),
        {dns: ssh_server["port"], share: _free_port()},
        host_keys={dns: other_key},
    )
    third = configuring.configure(
        AGS, actor="test-operator", playbook=play, report=LiveRun(console, live=False)
    )
    assert third.result.hosts[dns].status == "unreachable"
    assert "Host key verification failed" in (third.result.hosts[dns].error or "")
    # Neither the SSH key nor the generated password is readable anywhere in the data dir.
    password = store.get(AGS, "tiny/app_password").strip()
    assert _files_containing(data_dir, password) == []
    # Body lines of the key; the first is the same in every ed25519 key (format header).
    key_lines = [ln for ln in ssh_server["key"].decode().splitlines()[2:-1] if len(ln) >= 16]
    assert key_lines
    for key_line in key_lines:
        assert _files_containing(data_dir, key_line.encode()) == []
    assert password.decode() not in console.export_text()


@pytest.mark.podman
@pytest.mark.parametrize("mode", [Mode.mitogen, Mode.default])
def test_other_connection_modes_reach_the_server(ssh_server, mode: Mode, tmp_path: Path) -> None:
    if mode is Mode.mitogen and mitogen_strategy_dir() is None:
        pytest.fail("mitogen is a dependency of the suite but is not installed")
    store = SecretStore()
    store.put(AGS, "ssh/id_ed25519", ssh_server["key"])
    play = _play(tmp_path, "/root/tiny-modes", gather=True)
    with store.unlocked(AGS) as run:
        known_hosts = run.root / "known_hosts"
        known_hosts.write_text(f"[127.0.0.1]:{ssh_server['port']} {ssh_server['host_key']}\n")
        inventory = {
            "all": {
                "vars": {
                    "basisit_secrets_dir": str(run.secrets_dir),
                    "basisit_kommune": {"ags": AGS, "name": "Tholey"},
                    "ansible_ssh_private_key_file": str(run.path("ssh/id_ed25519")),
                    "ansible_ssh_common_args": (
                        f"-o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking=yes"
                    ),
                },
                "hosts": {
                    "srv": {
                        "ansible_host": "127.0.0.1",
                        "ansible_port": ssh_server["port"],
                        "ansible_user": "root",
                    }
                },
            }
        }
        result: RunResult = run_playbook(inventory, run.root, ags=AGS, mode=mode, playbook=play)
    assert result.succeeded, result.stdout_tail
    assert result.mode == str(mode)


# -- from per-host stats to requests --------------------------------------------------------


def _fixture_contracts() -> tuple[dict[str, Any], dict[str, Any]]:
    import yaml

    fixtures = Path(__file__).resolve().parent.parent / "fixtures"
    outputs = json.loads((fixtures / f"stack-outputs-{AGS}.json").read_text())
    desired = yaml.safe_load((fixtures / f"desired-state-{AGS}.yaml").read_text())
    for svc in desired["services"]:
        svc["status"] = "configuring"
    return outputs, desired


def _result(hosts: dict[str, str], error: str | None = None) -> RunResult:
    from basisit.configure.runner import HostResult

    results = {}
    for name, status in hosts.items():
        h = HostResult(name, ok=5)
        if status == "failed":
            h.failed, h.error = 1, "Start smbd: boom"
        elif status == "unreachable":
            h.unreachable, h.error = 1, "Gathering Facts: Connection refused"
        results[name] = h
    bad = error is not None or any(s != "ok" for s in hosts.values())
    return RunResult(
        ags=AGS, mode="fast", status="failed" if bad else "successful", rc=2 if bad else 0,
        started_at="", finished_at="", duration_s=1.0, hosts=results, error=error,
    )  # fmt: skip


def test_a_request_needs_its_own_server_and_for_a_backup_the_servers_it_backs_up() -> None:
    from basisit.configure import inventory as inv

    outputs, desired = _fixture_contracts()
    inventory = inv.build_inventory(outputs, desired)
    result = _result({"dns": "ok", "dateiablage": "failed", "sicherung": "ok"})
    assert apply.request_results(desired, inventory, result) == {
        1: None,
        2: "configure dateiablage: dateiablage failed: Start smbd: boom",
        # The backup server is fine, but its client on dateiablage did not finish.
        3: "configure sicherung: dateiablage failed: Start smbd: boom",
    }


def test_requests_already_active_or_not_yet_deployed() -> None:
    from basisit.configure import inventory as inv

    outputs, desired = _fixture_contracts()
    desired["services"][0]["status"] = "active"  # configure leaves it alone
    outputs["servers"] = [s for s in outputs["servers"] if s["name"] != "sicherung"]
    inventory = inv.build_inventory(outputs, desired)
    result = _result({"dns": "ok", "dateiablage": "ok"})
    assert apply.request_results(desired, inventory, result) == {
        2: None,
        3: "configure sicherung: server sicherung is not in the stack outputs (not deployed)",
    }


def test_a_failed_run_fails_every_request_with_its_reason() -> None:
    from basisit.configure import inventory as inv

    outputs, desired = _fixture_contracts()
    inventory = inv.build_inventory(outputs, desired)
    result = _result(
        {"dns": "ok", "dateiablage": "ok", "sicherung": "ok"},
        error="ansible-playbook exited with 4: ERROR! the role 'samba' was not found",
    )
    outcome = apply.request_results(desired, inventory, result)
    assert set(outcome) == {1, 2, 3}
    assert all(v and v.endswith("the role 'samba' was not found") for v in outcome.values())


def test_the_driver_reports_events_and_prints_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A portal worker gets the same steps as the CLI, as data: the driver itself never prints."""
    play = _play(tmp_path, str(tmp_path / "out-{{ inventory_hostname }}"))
    events: list[RunEvent] = []
    with SecretStore().unlocked(AGS) as run:
        inventory = _local_inventory(
            run.secrets_dir,
            {
                "good": {"ansible_connection": "local"},
                "bad": {"ansible_connection": "local", "tiny_break": True},
            },
        )
        result = run_playbook(inventory, run.root, ags=AGS, playbook=play, report=events.append)
    assert capsys.readouterr() == ("", "")
    assert {e.ags for e in events} == {AGS}
    assert [e.kind for e in events if e.kind == "play"] == ["play"]
    started = {(e.host, e.task) for e in events if e.kind == "task"}
    assert ("good", "Install the password") in started
    (failure,) = [e for e in events if e.kind == "failed"]
    assert (failure.host, failure.task) == ("bad", "Break on request")
    assert failure.text == "broken on purpose on bad"
    assert failure.failed == 1
    # The last event of each host carries the counts the result ends with.
    last = {e.host: e for e in events if e.kind == "task"}
    assert last["good"].ok == result.hosts["good"].ok
    assert last["bad"].failed == result.hosts["bad"].failed == 1
