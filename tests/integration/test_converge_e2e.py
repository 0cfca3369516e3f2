"""End to end: requests in the database -> `basisit converge` -> working services.

One Kommune (Oberthal, 10046116, which the demo does not use) asks for a DNS zone, a
database, a file share and a backup of them; the requests are approved and one
`basisit converge --ags` provisions four servers on the local target and configures them. The
services are then checked from outside the containers, through the ports published on
127.0.0.1 (sshd banner, DNS answer, PostgreSQL login, SMB negotiation, node_exporter's
metrics at the scrape targets the outputs name). A second converge changes nothing.
Everything lives in a private data dir under the name prefix bi-test-cfg.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

pytestmark = [pytest.mark.podman, pytest.mark.pulumi, pytest.mark.slow]

AGS = "10046116"  # Oberthal
PREFIX = "bi-test-cfg"
PORTS = "31200-31399"
INSTANCES = ("dns", "datenbank", "dateiablage", "sicherung")


def podman(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", *args], capture_output=True, text=True, check=check, timeout=120
    )


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "basisit.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=3600,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def force_cleanup(data: Path) -> None:
    """What a failed run left behind: only this module's own containers, network, mounts."""
    for instance in INSTANCES:
        podman("rm", "-f", "-t", "1", f"{PREFIX}-{AGS}-{instance}")
    podman("network", "rm", f"{PREFIX}-{AGS}")
    for line in Path("/proc/mounts").read_text().splitlines():
        mount = line.split()[1]
        if mount.startswith(str(data)):
            subprocess.run(["umount", "-l", mount], check=False)


def request_services() -> dict[str, int]:
    """Onboard Oberthal and get four requests approved; instance -> request id."""
    from basisit.catalog import load_catalog
    from basisit.leitweg import make as make_leitweg
    from basisit.requests import onboarding
    from basisit.requests import service as svc
    from basisit.store.db import session_scope

    catalog = load_catalog()
    # The database needs Schutzbedarf hoch, and with it a backup at hoch, which in turn
    # needs what it backs up at hoch or above.
    wanted = [
        ("dns", "dns", "zone", {}, None),
        ("datenbank", "database", "S", {"databases": ["fachverfahren"], "storage_gib": 1}, None),
        ("dateiablage", "fileshare", "S", {"quota_gib": 1}, "hoch"),
        ("sicherung", "backup", "S", {"capacity_gib": 1}, "hoch"),
    ]
    with session_scope() as s:
        onboarding.onboard(
            s,
            ags=AGS,
            contact_name="Test Person",
            contact_email="it@oberthal.example",
            cost_centre="KST-1",
            billing_address="Rathaus, 66649 Oberthal",
            leitweg_id=make_leitweg(AGS),
            actor="test-operator",
        )
        ids = {
            instance: svc.create(
                s,
                catalog,
                ags=AGS,
                service_id=service,
                plan=plan,
                parameters=params,
                instance=instance,
                schutzbedarf=schutzbedarf,
                actor="kommune-it",
            ).id
            for instance, service, plan, params, schutzbedarf in wanted
        }
    with session_scope() as s:
        svc.submit(s, catalog, list(ids.values()), "kommune-it", dt.date.today())
    with session_scope() as s:
        for rid in ids.values():
            req = svc.get(s, rid)
            for role in svc.approvals_needed(req):
                svc.approve(s, req, role, f"{role}-approver")
    return ids


def request_states(ids: dict[str, int]) -> dict[str, tuple[str, str | None]]:
    from basisit.requests import service as svc
    from basisit.store.db import session_scope

    with session_scope() as s:
        return {i: (svc.get(s, rid).state, svc.get(s, rid).error) for i, rid in ids.items()}


# --- checks from outside -----------------------------------------------------------------


def sshd_banner(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        return sock.recv(64)


def dns_a(port: int, name: str) -> tuple[int, bool, list[str]]:
    """Ask 127.0.0.1:port for the A record of name over UDP: (rcode, authoritative, answers)."""
    qid = int.from_bytes(os.urandom(2), "big")
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split("."))
    query = struct.pack(">HHHHHH", qid, 0x0000, 1, 0, 0, 0) + labels + b"\0" + b"\0\x01\0\x01"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(query, ("127.0.0.1", port))
        reply, _ = sock.recvfrom(4096)
    rid, flags, _qd, ancount = struct.unpack(">HHHH", reply[:8])
    assert rid == qid
    pos = 12 + len(labels) + 1 + 4  # the question, echoed
    answers = []
    for _ in range(ancount):
        # A name is a pointer (2 bytes) or labels ending in 0.
        while reply[pos] not in (0,) and reply[pos] < 0xC0:
            pos += reply[pos] + 1
        pos += 2 if reply[pos] >= 0xC0 else 1
        rtype, _cls, _ttl, rdlen = struct.unpack(">HHIH", reply[pos : pos + 10])
        pos += 10
        if rtype == 1:
            answers.append(socket.inet_ntoa(reply[pos : pos + rdlen]))
        pos += rdlen
    return flags & 0x000F, bool(flags & 0x0400), answers


def smb_negotiate(port: int) -> tuple[bytes, int, int]:
    """An SMB2 NEGOTIATE offering 2.0.2 to 3.1.1 with encryption: (protocol id, status, dialect).

    3.1.1 needs a pre-authentication integrity context (SHA-512) and we announce AES-GCM/CCM,
    as a current client does; a server that insists on SMB 3 and encryption accepts that.
    """
    header = b"\xfeSMB" + struct.pack("<HHIHHIIQIIQ", 64, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0) + b"\0" * 16
    dialects = struct.pack("<5H", 0x0202, 0x0210, 0x0300, 0x0302, 0x0311)
    offset = 64 + 36 + len(dialects)
    pad = -offset % 8
    preauth = struct.pack("<HHH", 1, 32, 0x0001) + os.urandom(32)  # SHA-512, 32-byte salt
    contexts = struct.pack("<HHI", 0x0001, len(preauth), 0) + preauth
    contexts += b"\0" * (-len(contexts) % 8)
    ciphers = struct.pack("<HHH", 2, 0x0002, 0x0001)  # AES-128-GCM, AES-128-CCM
    contexts += struct.pack("<HHI", 0x0002, len(ciphers), 0) + ciphers
    body = (
        struct.pack("<HHHHI", 36, 5, 0x0001, 0, 0x00000040)  # signing enabled; encryption
        + os.urandom(16)  # client GUID
        + struct.pack("<IHH", offset + pad, 2, 0)
        + dialects
        + b"\0" * pad
        + contexts
    )
    message = header + body
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(struct.pack(">I", len(message)) + message)
        length = struct.unpack(">I", sock.recv(4))[0]
        reply = b""
        while len(reply) < min(length, 72):
            chunk = sock.recv(length - len(reply))
            if not chunk:
                break
            reply += chunk
    status = struct.unpack("<I", reply[8:12])[0]
    dialect = struct.unpack("<H", reply[68:70])[0] if status == 0 else 0
    return reply[:4], status, dialect


def http_get(port: int, path: str) -> str:
    """An HTTP/1.0 GET to 127.0.0.1:port, as Prometheus scrapes: status line, headers, body."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        return b"".join(iter(lambda: sock.recv(65536), b"")).decode(errors="replace")


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if subprocess.run(["which", "podman"], capture_output=True).returncode != 0:
        pytest.skip("podman is not installed")
    data = tmp_path_factory.mktemp("converge-e2e") / "data"
    data.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BASISIT_DATA_DIR", str(data))
        mp.setenv("BASISIT_RESOURCE_PREFIX", PREFIX)
        mp.setenv("BASISIT_LOCAL_PORTS", PORTS)
        mp.setenv("BASISIT_ACTOR", "test-operator")
        # Servers from the image that already holds the roles' packages (and netbase, which
        # the baseline's nftables rules need); the bare base image would make every role
        # install its packages first.
        mp.setenv(
            "BASISIT_LOCAL_IMAGE",
            os.environ.get("BASISIT_ROLES_IMAGE", "localhost/basisit-roles:bookworm"),
        )
        mp.delenv("BASISIT_DB_URL", raising=False)
        force_cleanup(data)
        try:
            yield {"data": data, "ids": request_services()}
        finally:
            from basisit.provision import operations

            if AGS in operations.deployed_stacks():
                try:
                    operations.destroy(AGS)
                except Exception as exc:  # cleanup must go on
                    print(f"cleanup: destroy {AGS} failed: {exc}")
            force_cleanup(data)


@pytest.fixture(autouse=True)
def data_dir(shared: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Path:
    """Overrides the suite-wide per-test data dir: these tests share one deployment."""
    monkeypatch.setenv("BASISIT_DATA_DIR", str(shared["data"]))
    return shared["data"]


@pytest.fixture(scope="module")
def converged(shared: dict[str, Any]) -> dict[str, Any]:
    run = cli("converge", "--ags", AGS, "--format", "json")
    assert run.returncode == 0, f"converge failed:\n{run.stdout}\n{run.stderr[-6000:]}"
    outputs = json.loads((shared["data"] / "outputs" / f"{AGS}.json").read_text())
    return {
        "result": json.loads(run.stdout),
        "log": run.stderr,
        "outputs": outputs,
        "servers": {s["name"]: s for s in outputs["servers"]},
    }


# --- tests, in file order ------------------------------------------------------------------


def test_converge_makes_every_request_active(shared, converged) -> None:
    result = converged["result"]
    assert result["ok"], result
    assert sorted(result["configure"]["hosts"]) == sorted(INSTANCES)
    assert set(result["configure"]["hosts"].values()) == {"ok"}
    assert request_states(shared["ids"]) == {i: ("active", None) for i in INSTANCES}
    # What is configured, and per host each change, was shown while it ran.
    assert "Configuring AGS 10046116" in converged["log"]
    assert re.search(r"changed +dateiablage +", converged["log"]), converged["log"][-3000:]


def test_every_sshd_answers_on_its_loopback_port(converged) -> None:
    for name, server in converged["servers"].items():
        assert server["ssh"]["host"] == "127.0.0.1"
        assert sshd_banner(server["ssh"]["port"]).startswith(b"SSH-2.0-"), name


def test_the_zone_resolves_from_outside(converged) -> None:
    dns = converged["servers"]["dns"]
    zone = converged["outputs"]["dns"]["zone"]
    record = next(r for r in converged["outputs"]["dns"]["records"] if r["type"] == "A")
    rcode, authoritative, answers = dns_a(
        dns["published_ports"]["53/udp"], f"{record['name']}.{zone}"
    )
    assert (rcode, authoritative) == (0, True)
    assert answers == [record["value"]]
    rcode, _, answers = dns_a(dns["published_ports"]["53/udp"], f"nothere.{zone}")
    assert rcode == 3 and answers == []  # NXDOMAIN: the zone is served, not guessed


def test_the_database_accepts_its_owner_login(converged) -> None:
    import psycopg

    from basisit.vault.store import SecretStore

    store = SecretStore()
    names = [n for n in store.names(AGS) if n.startswith("postgresql/") and "fachverfahren" in n]
    assert names, f"no password for fachverfahren in the secrets store: {store.names(AGS)}"
    password = store.get(AGS, names[0]).decode().strip()
    port = converged["servers"]["datenbank"]["published_ports"]["5432/tcp"]
    with psycopg.connect(
        host="127.0.0.1",
        port=port,
        user="fachverfahren",
        dbname="fachverfahren",
        password=password,
        connect_timeout=10,
    ) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("fachverfahren",)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(
            host="127.0.0.1",
            port=port,
            user="fachverfahren",
            dbname="fachverfahren",
            password="wrong-" + password,
            connect_timeout=10,
        )


def test_the_file_share_speaks_smb3(converged) -> None:
    port = converged["servers"]["dateiablage"]["published_ports"]["445/tcp"]
    protocol, status, dialect = smb_negotiate(port)
    assert (protocol, status) == (b"\xfeSMB", 0)
    assert dialect >= 0x0300  # SMB 3 or newer, as the role requires


def test_node_exporter_serves_metrics_on_every_server(converged) -> None:
    """Prometheus's view: every scrape target the outputs give answers on 127.0.0.1, through
    podman's port forwarding and the server's firewall, with the server's info metric."""
    from basisit.monitoring import targets

    found = targets.target_groups([converged["outputs"]])
    assert found.notes == []
    assert sorted(g["labels"]["server"] for g in found.groups) == sorted(INSTANCES)
    for group in found.groups:
        labels = group["labels"]
        name = labels["server"]
        (target,) = group["targets"]
        host, port = target.rsplit(":", 1)
        assert host == "127.0.0.1", name
        assert int(port) == converged["servers"][name]["published_ports"]["9100/tcp"], name
        text = http_get(int(port), labels["__metrics_path__"])
        assert text.startswith("HTTP/1.") and " 200 " in text.splitlines()[0], name
        assert "node_exporter_build_info" in text, name
        info = re.search(r"(?m)^basisit_server_info\{(.*)\} 1$", text)
        assert info is not None, name
        assert f'ags="{AGS}"' in info.group(1) and f'server="{name}"' in info.group(1), name


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def promql(url: str, expr: str) -> list[dict[str, Any]]:
    from urllib.parse import urlencode
    from urllib.request import urlopen

    with urlopen(f"{url}/api/v1/query?{urlencode({'query': expr})}", timeout=10) as answer:
        body = json.load(answer)
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def wait_for(url: str, expr: str, done: Any, what: str, seconds: float = 120) -> list[Any]:
    """The query's result once `done(result)` holds; bounded, fails naming what was awaited."""
    deadline = time.monotonic() + seconds
    result: list[Any] = []
    while time.monotonic() < deadline:
        result = promql(url, expr)
        if done(result):
            return result
        time.sleep(2)
    pytest.fail(f"after {seconds:.0f} s still not {what}: {expr} = {result}")


@pytest.fixture(scope="module")
def prometheus(shared: dict[str, Any], converged: dict[str, Any]) -> Iterator[str]:
    """`basisit monitoring up` on free loopback ports, a short interval for the test's sake."""
    prom, exporter = free_port(), free_port()
    run = cli("monitoring", "up", "--prometheus-port", str(prom), "--exporter-port",
              str(exporter), "--scrape-interval", "5", "--format", "json")  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    try:
        yield f"http://127.0.0.1:{prom}"
    finally:
        down = cli("monitoring", "down")
        assert down.returncode == 0, down.stderr


def test_prometheus_scrapes_every_server_and_the_exporter(prometheus: str) -> None:
    up = wait_for(
        prometheus,
        f'up{{job="node", ags="{AGS}"}} == 1',
        lambda r: len(r) == len(INSTANCES),
        "every server scraped",
    )
    assert sorted(r["metric"]["server"] for r in up) == sorted(INSTANCES)
    wait_for(prometheus, 'up{job="basisit-exporter"} == 1', bool, "the exporter scraped")
    billable = promql(prometheus, f'basisit_instance_billable{{ags="{AGS}"}}')
    assert {r["metric"]["server"]: r["value"][1] for r in billable} == dict.fromkeys(INSTANCES, "1")


def test_a_file_written_into_the_share_shows_in_its_usage(prometheus: str, converged) -> None:
    """A client in the Kommune network writes 3 MiB over SMB; the share's usage grows by it."""
    from basisit.vault.store import SecretStore

    share_usage = f'basisit_fileshare_used_bytes{{ags="{AGS}", server="dateiablage"}}'
    (before,) = wait_for(prometheus, share_usage, bool, "the share measured")
    share = before["metric"]["share"]
    store = SecretStore()
    (name,) = [n for n in store.names(AGS) if n.startswith("samba/") and n.endswith(".password")]
    user = name.removeprefix("samba/").removesuffix(".password")
    server = converged["servers"]["dateiablage"]
    smbclient = f"smbclient //{server['address']}/{share} -U {user} -m SMB3"
    script = (
        "head -c 3145728 /dev/urandom > /tmp/u.bin && " + smbclient + " -c 'put /tmp/u.bin u.bin'"
    )
    put = podman("exec", "-e", f"PASSWD={store.get(AGS, name).decode().strip()}",
                 f"{PREFIX}-{AGS}-dns", "sh", "-c", script)  # fmt: skip
    assert put.returncode == 0, put.stdout + put.stderr
    # The collector runs on its timer; run it now rather than wait for the next round.
    collect = podman("exec", f"{PREFIX}-{AGS}-dateiablage",
                     "systemctl", "start", "basisit-samba-usage.service")  # fmt: skip
    assert collect.returncode == 0, collect.stdout + collect.stderr
    grown = wait_for(
        prometheus,
        share_usage,
        lambda r: r and float(r[0]["value"][1]) >= float(before["value"][1]) + 3145728,
        "the 3 MiB file counted in the share's usage",
    )
    assert grown[0]["metric"]["share"] == share


def test_database_and_backup_repository_are_measured(prometheus: str) -> None:
    sizes = wait_for(prometheus, f'basisit_database_size_bytes{{ags="{AGS}"}}', bool,
                     "the database measured")  # fmt: skip
    assert {r["metric"]["database"] for r in sizes} == {"fachverfahren"}
    assert all(float(r["value"][1]) > 0 for r in sizes)
    repo = wait_for(prometheus, f'sum(basisit_backup_repository_bytes{{ags="{AGS}"}})',
                    lambda r: r and float(r[0]["value"][1]) > 0,
                    "a backup in the repository")  # fmt: skip
    assert float(repo[0]["value"][1]) > 0
    success = promql(prometheus, f'basisit_backup_last_success_timestamp_seconds{{ags="{AGS}"}}')
    assert success and all(time.time() - float(r["value"][1]) < 3600 for r in success)


def test_the_alerts_are_quiet(prometheus: str) -> None:
    # Rules are evaluated: the recording rule over the usage has a value.
    wait_for(prometheus, f'ags_catalog_service:basisit_usage_bytes:sum{{ags="{AGS}"}}', bool,
             "the recording rules evaluated")  # fmt: skip
    assert promql(prometheus, "ALERTS") == []


def test_the_ledger_imports_the_minutes_it_ran(prometheus: str) -> None:
    """A provisional import of the running hour: the share's measured usage is in the month."""
    run = cli("ledger", "import", "--provisional", "--prometheus", prometheus)
    assert run.returncode == 0, run.stdout + run.stderr
    month = dt.datetime.now(dt.UTC).astimezone(ZoneInfo("Europe/Berlin")).strftime("%Y-%m")
    usage = cli("usage", "--month", month, "--ags", AGS, "--format", "json")
    assert usage.returncode == 0, usage.stderr
    (kommune,) = json.loads(usage.stdout)["kommunen"]
    lines = {
        (inst["instance"], line["metric"]): line
        for inst in kommune["instances"]
        for line in inst["lines"]
    }
    share = lines[("dateiablage", "basisit_fileshare_used_bytes")]
    assert int(share["quantity_base"]) > 0 and share["provisional_hours"] >= 1
    assert int(lines[("datenbank", "basisit_database_size_bytes")]["quantity_base"]) > 0


def test_nothing_secret_in_the_data_dir_or_run_records(data_dir: Path) -> None:
    from basisit.vault import keys as provision_secrets
    from basisit.vault.store import SecretStore, is_public

    store = SecretStore()
    # Public keys, certificates and host keys are stored beside the secrets but are no secret.
    values = [store.get(AGS, n).strip() for n in store.names(AGS) if not is_public(n)]
    values = [v for v in values if len(v) >= 12]
    assert values, "the roles stored no secrets"
    # The deploy step's SSH key too: it is kept encrypted, never as a plain file. Its first
    # body line is the format's header, the same in every ed25519 key.
    pair = provision_secrets.ssh_keypair(AGS, create=False)
    assert pair is not None
    values.append(b"\n".join(pair.private_key().encode().splitlines()[2:]))
    for path in data_dir.rglob("*"):
        if not path.is_file():
            continue
        content = path.read_bytes()
        for value in values:
            for line in value.splitlines():
                if len(line.strip()) >= 12 and not line.startswith(b"-----"):
                    assert line.strip() not in content, f"a secret in plain text in {path}"
    records = sorted((data_dir / "runs" / AGS).glob("*.json"))
    assert records and json.loads(records[-1].read_text())["succeeded"]


def test_second_converge_changes_nothing(shared) -> None:
    run = cli("converge", "--ags", AGS, "--format", "json")
    assert run.returncode == 0, run.stderr[-6000:]
    result = json.loads(run.stdout)
    assert result["ok"]
    assert result["configure"]["changed"] == 0, run.stderr[-6000:]
    changes = result["deploy"]["changes"] or {}
    assert all(n == 0 for op, n in changes.items() if op != "same"), changes
    assert request_states(shared["ids"]) == {i: ("active", None) for i in INSTANCES}
