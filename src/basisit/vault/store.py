"""The control side's secrets store: one folder of Fernet-encrypted files per Kommune.

Layout under data_dir()/secrets/<ags>/: `<name>.fernet` per secret (names such as
`postgresql/app_password` are not secret, their contents are) and `.salt`. The key of a Kommune
is derived with scrypt from the passphrase file data_dir()/secrets.passphrase and the Kommune's
own salt, so every Kommune's files have their own key.

A run never sees the store itself: `unlocked(ags)` decrypts the Kommune's files into a fresh
private temporary directory (mode 0700), and when the block ends,
also on an error or Ctrl-C, encrypts files that are new or changed back into the store and
removes the directory. Files deleted during the run stay in the store: losing a CA key because a
role removed a file by mistake is worse than keeping one secret too many.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from basisit import paths, runlog
from basisit.errors import BasisItError
from basisit.files import atomic_write
from basisit.kommunen import AGS_PATTERN

SUFFIX = ".fernet"
SALT_FILE = ".salt"
MODES_FILE = ".modes.json"
# Files larger than this are not secrets but something a role put in the wrong place.
MAX_SECRET_BYTES = 1024 * 1024
PUBLIC_SUFFIXES = (".pub", ".crt", "known_hosts")
_NAME_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@+-]*$")
# scrypt cost: about 0.1 s and 32 MiB once per Kommune and run; slows down guessing the passphrase.
_SCRYPT_N = 2**15
_SCRYPT_R = 8
_SCRYPT_P = 1


class SecretsError(BasisItError):
    """The secrets store cannot be opened, read or written (exit code 7, as the configuration
    step's errors)."""

    exit_code = 7


def check_ags(ags: str) -> str:
    if not AGS_PATTERN.fullmatch(ags):
        raise SecretsError(f"not an AGS: {ags!r} (expected 5 or 8 digits starting with 10)")
    return ags


def check_name(name: str) -> str:
    """A secret's relative path: no absolute paths, no '..', no hidden store files."""
    parts = name.split("/")
    if not name or any(not _NAME_PART.match(p) or p.endswith(SUFFIX) for p in parts):
        raise SecretsError(
            f"invalid secret name {name!r}: use relative paths of letters, digits and ._@+-"
        )
    return name


def _private_tmp_base() -> str | None:
    """BASISIT_SECRETS_TMPDIR, else the system's temp dir (TMPDIR). Not /dev/shm by default:
    community.crypto's openssh_keypair calls chattr, which tmpfs refuses ("chattr failed")."""
    return os.environ.get("BASISIT_SECRETS_TMPDIR") or None


def _write_private(path: Path, data: bytes) -> None:
    """Write atomically with mode 0600 so a crash never leaves a half-written secret."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    atomic_write(path, data, mode=0o600)


@dataclass
class Unlocked:
    """The decrypted secrets of one Kommune for one run."""

    ags: str
    root: Path  # private 0700 temp dir; the run's other private files go beside secrets_dir
    secrets_dir: Path  # handed to Ansible as basisit_secrets_dir
    original: dict[str, bytes] = field(default_factory=dict, repr=False)
    original_modes: dict[str, int] = field(default_factory=dict)
    stored: list[str] = field(default_factory=list)  # names written back by the last close

    def path(self, name: str) -> Path:
        return self.secrets_dir / check_name(name)

    def secret_values(self) -> set[str]:
        """Every secret's text and its lines, for scrubbing output as a second line of defence."""
        values: set[str] = set()
        for name, data in _read_tree(self.secrets_dir).items():
            if is_public(name):
                continue
            text = data.decode("utf-8", errors="ignore").strip()
            if len(text) >= 8:
                values.add(text)
            for line in text.splitlines():
                line = line.strip()
                # Short lines of a PEM key (headers, base64 tail) are not worth scrubbing.
                if len(line) >= 16 and not line.startswith("-----"):
                    values.add(line)
            if name.endswith(".json"):
                values.update(_json_strings(text))
        return values


def _json_strings(text: str) -> set[str]:
    """The longer string values of a JSON secret (a credential file): a task that prints one
    value shows no line of the file, so the values are scrubbed on their own."""
    try:
        data = json.loads(text)
    except ValueError:
        return set()
    found: set[str] = set()
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and len(item) >= 16:
            found.add(item)
    return found


def is_public(name: str) -> bool:
    """Files kept beside their secrets that are public by nature (public keys, certificates,
    pinned host keys): stored like the rest, but not worth masking in output."""
    return name.endswith(PUBLIC_SUFFIXES)


def _safe_mode(name: str, mode: int) -> int:
    if name.endswith("/"):
        return (mode & 0o755) | 0o700
    return (mode & 0o644) | 0o600


def _read_modes(root: Path) -> dict[str, int]:
    """Modes of the regular files and folders below root ("name/" for a folder)."""
    modes: dict[str, int] = {}
    if not root.is_dir():
        return modes
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for entry, is_dir in [(d, True) for d in dirnames] + [(f, False) for f in filenames]:
            path = Path(dirpath, entry)
            st = path.lstat()
            if not (stat.S_ISDIR(st.st_mode) if is_dir else stat.S_ISREG(st.st_mode)):
                continue
            rel = path.relative_to(root).as_posix()
            try:
                check_name(rel)
            except SecretsError:
                continue  # not stored, so its mode is not either
            name = rel + ("/" if is_dir else "")
            modes[name] = _safe_mode(name, stat.S_IMODE(st.st_mode))
    return modes


def _read_tree(root: Path) -> dict[str, bytes]:
    """Regular files below root by relative name; symlinks and oversized files are skipped."""
    found: dict[str, bytes] = {}
    if not root.is_dir():
        return found
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = [d for d in dirnames if not Path(dirpath, d).is_symlink()]
        for fname in filenames:
            fpath = Path(dirpath, fname)
            st = fpath.lstat()
            if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_SECRET_BYTES:
                continue
            name = fpath.relative_to(root).as_posix()
            try:
                check_name(name)
            except SecretsError:
                continue
            found[name] = fpath.read_bytes()
    return found


class SecretStore:
    def __init__(self, root: Path | None = None, passphrase_file: Path | None = None) -> None:
        self.root = root or paths.data_dir() / "secrets"
        self.passphrase_file = passphrase_file or paths.data_dir() / "secrets.passphrase"
        self._keys: dict[str, Fernet] = {}

    # -- key handling -----------------------------------------------------------------------

    def _passphrase(self) -> bytes:
        """Read the passphrase; generate it once (0600) on first use. It is never printed."""
        pfile = self.passphrase_file
        if not pfile.exists():
            pfile.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(pfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another process made it a moment ago; read theirs
            else:
                with os.fdopen(fd, "w") as fh:
                    fh.write(secrets.token_urlsafe(48) + "\n")
        st = pfile.stat()
        if st.st_mode & 0o077:
            raise SecretsError(
                f"{pfile}: mode {stat.S_IMODE(st.st_mode):04o} lets others read the secrets "
                "passphrase; run `chmod 600` on it"
            )
        data = pfile.read_bytes().strip()
        runlog.add_secret(data)
        if len(data) < 16:
            raise SecretsError(f"{pfile}: passphrase is empty or shorter than 16 characters")
        return data

    def _salt(self, ags: str) -> bytes:
        kdir = self.root / ags
        salt_path = kdir / SALT_FILE
        if not salt_path.exists():
            kdir.mkdir(mode=0o700, parents=True, exist_ok=True)
            try:
                fd = os.open(salt_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(secrets.token_bytes(16))
        salt = salt_path.read_bytes()
        if len(salt) != 16:
            raise SecretsError(f"{salt_path}: damaged (expected 16 bytes, found {len(salt)})")
        return salt

    def _fernet(self, ags: str) -> Fernet:
        check_ags(ags)
        if ags not in self._keys:
            kdf = Scrypt(salt=self._salt(ags), length=32, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P)
            key = kdf.derive(self._passphrase())
            self._keys[ags] = Fernet(base64.urlsafe_b64encode(key))
        return self._keys[ags]

    # -- single secrets ---------------------------------------------------------------------

    def _file(self, ags: str, name: str) -> Path:
        return self.root / check_ags(ags) / (check_name(name) + SUFFIX)

    def names(self, ags: str) -> list[str]:
        kdir = self.root / check_ags(ags)
        if not kdir.is_dir():
            return []
        return sorted(
            p.relative_to(kdir).as_posix().removesuffix(SUFFIX)
            for p in kdir.rglob("*" + SUFFIX)
            if p.is_file()
        )

    def get(self, ags: str, name: str) -> bytes:
        path = self._file(ags, name)
        if not path.is_file():
            raise SecretsError(f"no secret {name!r} stored for AGS {ags} ({path})")
        try:
            data = self._fernet(ags).decrypt(path.read_bytes())
        except InvalidToken:
            raise SecretsError(
                f"{path}: cannot decrypt: wrong passphrase in {self.passphrase_file} "
                "or a damaged file"
            ) from None
        if not is_public(name):
            runlog.add_secret(data)
        return data

    def put(self, ags: str, name: str, data: bytes) -> None:
        if len(data) > MAX_SECRET_BYTES:
            raise SecretsError(f"secret {name!r} of AGS {ags} is larger than 1 MiB")
        path = self._file(ags, name)
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        _write_private(path, self._fernet(ags).encrypt(data))

    def has(self, ags: str, name: str) -> bool:
        return self._file(ags, name).is_file()

    def remove(self, ags: str, name: str) -> None:
        """Forget one secret (nothing if it is not stored) and the folders it leaves empty."""
        path = self._file(ags, name)
        path.unlink(missing_ok=True)
        kdir = self.root / ags
        for parent in path.parents:
            if parent == kdir or kdir not in parent.parents:
                break
            try:
                parent.rmdir()
            except OSError:
                break  # not empty

    def remove_all(self, ags: str) -> None:
        """Forget every secret of the Kommune, salt and modes included (it was destroyed)."""
        shutil.rmtree(self.root / check_ags(ags), ignore_errors=True)
        self._keys.pop(ags, None)

    # -- a run's private copy ---------------------------------------------------------------

    # -- file modes -------------------------------------------------------------------------
    # Roles declare modes (a public key 0644, a key dir 0700); restoring every file as 0600
    # would make such a task report "changed" on every run. The modes (not secret) are kept in
    # <ags>/.modes.json, for files and for folders ("name/"), and never looser than 0644/0755.

    def _modes_file(self, ags: str) -> Path:
        return self.root / check_ags(ags) / MODES_FILE

    def modes(self, ags: str) -> dict[str, int]:
        path = self._modes_file(ags)
        if not path.is_file():
            return {}
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise SecretsError(f"{path}: damaged (not JSON); remove it to reset modes") from None
        return {k: _safe_mode(k, int(v, 8)) for k, v in raw.items() if isinstance(v, str)}

    def _write_modes(self, ags: str, modes: dict[str, int]) -> None:
        text = json.dumps({k: f"{v:04o}" for k, v in sorted(modes.items())}, indent=1)
        _write_private(self._modes_file(ags), text.encode() + b"\n")

    # -- a run's private copy ---------------------------------------------------------------

    @contextmanager
    def unlocked(self, ags: str) -> Iterator[Unlocked]:
        """Decrypt the Kommune's secrets into a private temp dir for the length of the block."""
        check_ags(ags)
        contents = {name: self.get(ags, name) for name in self.names(ags)}
        modes = self.modes(ags)
        root = Path(tempfile.mkdtemp(prefix=f"basisit-{ags}-", dir=_private_tmp_base()))
        try:
            os.chmod(root, 0o700)
            secrets_dir = root / "secrets"
            secrets_dir.mkdir(mode=0o700)
            for name, data in contents.items():
                target = secrets_dir / name
                target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
            for name, mode in modes.items():
                target = secrets_dir / name.rstrip("/")
                if target.exists() and not target.is_symlink():
                    os.chmod(target, mode)
            unlocked = Unlocked(
                ags=ags,
                root=root,
                secrets_dir=secrets_dir,
                original=contents,
                original_modes=_read_modes(secrets_dir),
            )
            try:
                yield unlocked
            finally:
                unlocked.stored = self._store_back(unlocked)
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def _store_back(self, unlocked: Unlocked) -> list[str]:
        """Encrypt files that are new or changed; untouched files keep their stored token."""
        changed = []
        files = _read_tree(unlocked.secrets_dir)
        for name, data in sorted(files.items()):
            if unlocked.original.get(name) == data:
                continue
            self.put(unlocked.ags, name, data)
            changed.append(name)
        modes = _read_modes(unlocked.secrets_dir)
        if modes != unlocked.original_modes:
            kept = self.modes(unlocked.ags)  # modes of files a role deleted stay with them
            kept.update(modes)
            self._write_modes(unlocked.ags, kept)
        return changed
