"""Secrets of the provisioning step: the state's passphrase and one SSH key pair per Kommune.

Both are generated once, on first use, and never printed. The passphrase is a file of mode
0600 under <data_dir>/secrets/ (a 0700 folder); it encrypts every secret in the Pulumi state
(passphrase secrets provider, read by the CLI from PULUMI_CONFIG_PASSPHRASE_FILE).

The key pair is never a plain file at rest: it lives Fernet-encrypted in a SecretStore of its
own, <data_dir>/secrets/deploy/<ags>/ssh/id_ed25519{,.pub}.fernet (same passphrase file as the
configure step's store, a salt per Kommune). A root of its own rather than names in the
configure store, because a configure run decrypts all of a Kommune's configure secrets into the
dir the roles see (basisit_secrets_dir), and no role needs the key that logs into every server.
Only the public key goes into the Kommune's stack (to the servers); the private key never
leaves this store except into a configure run's private temp dir.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from basisit import paths, runlog
from basisit.files import LockBusy, create_exclusive, flock
from basisit.vault.store import SecretsError, SecretStore, check_ags

PASSPHRASE_FILE = "pulumi.passphrase"
DEPLOY_STORE = "deploy"
PRIVATE = "ssh/id_ed25519"
PUBLIC = "ssh/id_ed25519.pub"
# Generating or importing a key takes well under a second (scrypt once, one key); a holder
# that keeps the lock this long is stuck.
LOCK_WAIT_S = 60.0


def secrets_dir() -> Path:
    path = paths.data_dir() / "secrets"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _tighten(path: Path) -> None:
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)


def passphrase_file() -> Path:
    """The passphrase file, generated once (256 random bits)."""
    path = secrets_dir() / PASSPHRASE_FILE
    if not path.exists():
        create_exclusive(path, secrets.token_urlsafe(32).encode())
    _tighten(path)
    return path


@dataclass(frozen=True)
class SshKeyPair:
    public_key: str
    _private_key: str = field(repr=False)

    def private_key(self) -> str:
        """The OpenSSH private key text; keep it in memory or in a private 0700 temp dir."""
        return self._private_key


def key_store() -> SecretStore:
    """The deploy step's own store, outside the configure store's Kommune folders."""
    root = secrets_dir() / DEPLOY_STORE
    root.mkdir(mode=0o700, exist_ok=True)
    return SecretStore(root=root)


def key_location(ags: str) -> Path:
    """Where the Kommune's encrypted key pair lives (for messages)."""
    return secrets_dir() / DEPLOY_STORE / check_ags(ags) / "ssh"


def _legacy_dir(ags: str) -> Path:
    """Where versions before the encrypted store kept the key pair as plain files."""
    return paths.data_dir() / "secrets" / "ssh" / ags


@contextlib.contextmanager
def _key_lock(ags: str) -> Iterator[None]:
    """Check, generate (or import) and store as one step: two first deploys of one Kommune,
    or a deploy and a configure, end with one key. flock dies with its holder."""
    lock_dir = paths.data_dir() / "locks"
    try:
        with flock(lock_dir / f"ssh-key-{check_ags(ags)}.lock", wait=LOCK_WAIT_S):
            yield
    except LockBusy:
        raise SecretsError(
            f"the SSH key of AGS {ags} has been locked by another process for "
            f"{LOCK_WAIT_S:.0f} s ({lock_dir}); is a deploy stuck?"
        ) from None


def _generate(ags: str) -> tuple[bytes, bytes]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    return private, _public_of(private, ags, "generated key")


def _public_of(private: bytes, ags: str, where: str) -> bytes:
    """The public half in authorized_keys form, with the comment the suite gives its keys."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_ssh_private_key(private, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise SecretsError(f"{where}: not an unencrypted OpenSSH private key ({exc})") from None
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return public + f" basisit-{ags}\n".encode()


def _store_pair(store: SecretStore, ags: str, private: bytes, public: bytes) -> None:
    # The private key last: once it is stored the pair is complete.
    store.put(ags, PUBLIC, public)
    store.put(ags, PRIVATE, private)


def _import_legacy(store: SecretStore, ags: str) -> None:
    """Move a plain key pair of an older data dir into the store; the plain files go only
    after the encrypted copy has been written and read back."""
    legacy = _legacy_dir(ags)
    private_file = legacy / "id_ed25519"
    public_file = legacy / "id_ed25519.pub"
    if not private_file.is_file():
        if legacy.is_dir():
            shutil.rmtree(legacy)  # a public key without its private half is of no use
        return
    private = private_file.read_bytes()
    public = _public_of(private, ags, str(private_file))
    if public_file.is_file():
        # Keep the file's text (its comment): the servers' authorized_keys hold exactly it.
        text = public_file.read_bytes()
        if text.split()[:2] != public.split()[:2]:
            raise SecretsError(
                f"{public_file} does not belong to the private key beside it; "
                "restore the matching pair or remove both files"
            )
        public = text if text.endswith(b"\n") else text + b"\n"
    if not store.has(ags, PRIVATE):
        _store_pair(store, ags, private, public)
    elif store.get(ags, PRIVATE) != private:
        raise SecretsError(
            f"{private_file} (from an older version) differs from the SSH key of AGS {ags} "
            f"in {key_location(ags)}; remove the one that is not on the servers"
        )
    elif not store.has(ags, PUBLIC):
        store.put(ags, PUBLIC, public)
    stored_public = store.get(ags, PUBLIC).split()[:2]
    if store.get(ags, PRIVATE) != private or stored_public != public.split()[:2]:
        raise SecretsError(f"{key_location(ags)}: the imported SSH key does not read back")
    private_file.unlink()
    public_file.unlink(missing_ok=True)
    shutil.rmtree(legacy, ignore_errors=True)
    with contextlib.suppress(OSError):
        legacy.parent.rmdir()  # secrets/ssh/, once the last Kommune has moved


def ssh_keypair(ags: str, create: bool = True) -> SshKeyPair | None:
    """The Kommune's key pair; generated on first use when `create`, else None if missing."""
    store = key_store()
    with _key_lock(ags):
        _import_legacy(store, ags)
        if not store.has(ags, PRIVATE):
            if not create:
                return None
            _store_pair(store, ags, *_generate(ags))
        private = store.get(ags, PRIVATE)
        if not store.has(ags, PUBLIC):  # lost on its own: it follows from the private key
            store.put(ags, PUBLIC, _public_of(private, ags, str(key_location(ags))))
        public = store.get(ags, PUBLIC).decode().strip()
    runlog.add_secret(private)
    return SshKeyPair(public_key=public, _private_key=private.decode())


def remove_ssh_keypair(ags: str) -> None:
    store = key_store()
    with _key_lock(ags):
        store.remove_all(ags)
        shutil.rmtree(_legacy_dir(ags), ignore_errors=True)
