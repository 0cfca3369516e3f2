"""Every server started from the roles image has its own identity.

The local target starts every server of every Kommune from localhost/basisit-roles:bookworm.
Whatever secret the image carries is shared by all of them: one Kommune's server key would
then decrypt another's traffic. Two containers are started from the image (systemd, no
network) and compared: SSH host keys, machine-id and Debian's snakeoil TLS key (PostgreSQL
serves TLS with it, Postfix and Dovecot fall back to it) must all differ, and the image itself
must hold none of them. Containers are named bi-ident-<run>-*, removed at the end.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from basisit import paths

pytestmark = [pytest.mark.podman]

IMAGE = os.environ.get("BASISIT_ROLES_IMAGE", "localhost/basisit-roles:bookworm")
PREFIX = f"bi-ident-{uuid.uuid4().hex[:8]}"
SNAKEOIL_KEY = "/etc/ssl/private/ssl-cert-snakeoil.key"
SNAKEOIL_CERT = "/etc/ssl/certs/ssl-cert-snakeoil.pem"
BOOT_SECONDS = 60


def podman(
    *args: str, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(paths.project_root() / "scripts" / "containers.conf"))
    return subprocess.run(
        ["podman", *args], capture_output=True, text=True, check=check, env=env, timeout=timeout
    )


def sh(name: str, script: str) -> str:
    run = podman("exec", name, "sh", "-c", script, check=False)
    assert run.returncode == 0, f"{name}: `{script}` failed: {run.stderr.strip()}"
    return run.stdout


def wait_booted(name: str) -> str:
    """Waits (bounded) until systemd finished booting; returns its state."""
    deadline = time.monotonic() + BOOT_SECONDS
    state = ""
    while time.monotonic() < deadline:
        # Until systemd's bus is up, systemctl fails; --wait then blocks until boot ends.
        run = podman("exec", name, "systemctl", "is-system-running", "--wait",
                     check=False, timeout=BOOT_SECONDS)  # fmt: skip
        state = run.stdout.strip()
        if state in {"running", "degraded"}:
            return state
        time.sleep(0.5)
    raise AssertionError(f"{name}: systemd did not finish booting in {BOOT_SECONDS} s ({state!r})")


@dataclass(frozen=True)
class Identity:
    machine_id: str
    ssh_host_keys: dict[str, str]  # key type -> SHA256 fingerprint
    snakeoil_key: str  # SHA256 of the public key
    snakeoil_cert_key: str  # SHA256 of the public key inside the certificate
    snakeoil_mode: str  # "640 root ssl-cert"
    postgres_reads_key: bool


def identity(name: str) -> Identity:
    keys: dict[str, str] = {}
    listing = sh(name, "for f in /etc/ssh/ssh_host_*_key.pub; do ssh-keygen -lf $f; done")
    for line in listing.splitlines():
        # "256 SHA256:abc... root@host (ED25519)"
        _bits, fingerprint, *_, kind = line.split()
        keys[kind.strip("()")] = fingerprint
    pubkey = f"openssl pkey -in {SNAKEOIL_KEY} -pubout | sha256sum"
    cert_pubkey = f"openssl x509 -in {SNAKEOIL_CERT} -noout -pubkey | sha256sum"
    readable = podman("exec", "--user", "postgres", name, "test", "-r", SNAKEOIL_KEY, check=False)
    return Identity(
        machine_id=sh(name, "cat /etc/machine-id").strip(),
        ssh_host_keys=keys,
        snakeoil_key=sh(name, pubkey).split()[0],
        snakeoil_cert_key=sh(name, cert_pubkey).split()[0],
        snakeoil_mode=sh(name, f"stat -c '%a %U %G' {SNAKEOIL_KEY}").strip(),
        postgres_reads_key=readable.returncode == 0,
    )


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[Identity, Identity]]:
    if subprocess.run(["which", "podman"], capture_output=True).returncode != 0:
        pytest.skip("podman is not installed")
    if podman("image", "exists", IMAGE, check=False).returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"{IMAGE} is missing: scripts/bootstrap.sh builds it")
        pytest.skip(f"{IMAGE} is missing (scripts/build-image.sh builds it)")
    names = [f"{PREFIX}-a", f"{PREFIX}-b"]
    try:
        for name in names:
            podman("run", "-d", "--name", name, "--hostname", name, "--network", "none",
                   "--systemd", "always", IMAGE, "/sbin/init")  # fmt: skip
        for name in names:
            state = wait_booted(name)
            failed = sh(name, "systemctl --failed --no-legend --plain | awk '{print $1}'").split()
            # The first-boot generators must have run, whatever else a bare container lacks.
            for unit in ("basisit-ssh-hostkeys.service", "basisit-snakeoil.service"):
                assert unit not in failed, f"{name}: {unit} failed (system {state})"
        yield identity(names[0]), identity(names[1])
    finally:
        for name in names:
            podman("rm", "-f", "-t", "0", name, check=False)


def test_the_image_carries_no_host_secret() -> None:
    if podman("image", "exists", IMAGE, check=False).returncode != 0:
        pytest.skip(f"{IMAGE} is missing")
    run = podman("run", "--rm", "--name", f"{PREFIX}-image", "--network", "none",
                 "--entrypoint", "sh", IMAGE, "-c",
                 f"ls /etc/ssh/ssh_host_* {SNAKEOIL_KEY} {SNAKEOIL_CERT} 2>/dev/null;"
                 " wc -c </etc/machine-id", check=False)  # fmt: skip
    *files, machine_id_bytes = run.stdout.split()
    assert files == [], f"{IMAGE} holds host secrets every server would share: {files}"
    assert machine_id_bytes == "0", "the image's /etc/machine-id must be empty (made at boot)"


def test_ssh_host_keys_differ(pair: tuple[Identity, Identity]) -> None:
    a, b = pair
    assert {"ED25519", "RSA", "ECDSA"} <= set(a.ssh_host_keys), a.ssh_host_keys
    assert set(a.ssh_host_keys) == set(b.ssh_host_keys)
    for kind, fingerprint in a.ssh_host_keys.items():
        assert fingerprint != b.ssh_host_keys[kind], f"both servers have the {kind} host key"


def test_machine_ids_differ(pair: tuple[Identity, Identity]) -> None:
    a, b = pair
    assert re.fullmatch(r"[0-9a-f]{32}", a.machine_id), a.machine_id
    assert re.fullmatch(r"[0-9a-f]{32}", b.machine_id), b.machine_id
    assert a.machine_id != b.machine_id


def test_snakeoil_tls_keys_differ(pair: tuple[Identity, Identity]) -> None:
    a, b = pair
    assert a.snakeoil_key != b.snakeoil_key, "both servers have the same snakeoil TLS key"
    for server in (a, b):
        # The certificate belongs to the server's own key, not to one left over from the image.
        assert server.snakeoil_cert_key == server.snakeoil_key
        # As Debian's ssl-cert makes it: readable by root and the ssl-cert group only.
        assert server.snakeoil_mode == "640 root ssl-cert"
        # PostgreSQL (ssl = on in Debian's cluster) reads it through that group.
        assert server.postgres_reads_key
