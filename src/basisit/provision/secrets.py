"""Secrets of the provisioning step: the state's passphrase and one SSH key pair per Kommune.

Both are generated once, on first use, into files of mode 0600 under <data_dir>/secrets/ (a
0700 folder) and never printed. The passphrase encrypts every secret in the Pulumi state
(passphrase secrets provider, read by the CLI from PULUMI_CONFIG_PASSPHRASE_FILE). The
Kommune's private key also goes into its stack as a secret output, encrypted with it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from basisit import paths

PASSPHRASE_FILE = "pulumi.passphrase"


def secrets_dir() -> Path:
    path = paths.data_dir() / "secrets"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _create_private(path: Path, data: bytes) -> bool:
    """Write `data` to `path` (mode 0600) unless it exists; atomic, safe against races.

    Returns False when another process got there first (its file is kept).
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, path)  # fails if the file exists: the first writer wins
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _tighten(path: Path) -> None:
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)


def passphrase_file() -> Path:
    """The passphrase file, generated once (256 random bits)."""
    path = secrets_dir() / PASSPHRASE_FILE
    if not path.exists():
        _create_private(path, secrets.token_urlsafe(32).encode())
    _tighten(path)
    return path


@dataclass(frozen=True)
class SshKeyPair:
    private_key_file: Path
    public_key: str

    def private_key(self) -> str:
        return self.private_key_file.read_text()


def _key_dir(ags: str) -> Path:
    return secrets_dir() / "ssh" / ags


def private_key_path(ags: str) -> Path:
    """Where the Kommune's SSH private key lives (for the configure step's connections)."""
    return _key_dir(ags) / "id_ed25519"


def _generate(ags: str) -> tuple[bytes, bytes]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return private, public + f" basisit-{ags}\n".encode()


def ssh_keypair(ags: str, create: bool = True) -> SshKeyPair | None:
    """The Kommune's key pair; generated on first use when `create`, else None if missing."""
    private = private_key_path(ags)
    public = private.with_name("id_ed25519.pub")
    if not private.exists():
        if not create:
            return None
        priv_bytes, pub_bytes = _generate(ags)
        if _create_private(private, priv_bytes):
            tmp = public.with_name(".id_ed25519.pub.tmp")
            tmp.write_bytes(pub_bytes)
            tmp.replace(public)
    if not public.exists():
        raise FileNotFoundError(f"{public} is missing beside {private}; restore or remove both")
    _tighten(private)
    return SshKeyPair(private, public.read_text().strip())


def remove_ssh_keypair(ags: str) -> None:
    shutil.rmtree(_key_dir(ags), ignore_errors=True)
