"""The encrypted secrets store: encryption at rest, per-Kommune keys, the private run copy."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from basisit.vault.store import SecretsError, SecretStore

TH = "10046118"  # Tholey
SB = "10041100"  # Saarbrücken
PASSWORD = b"Tr0ub4dor-and-3-more-words"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _all_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())


def test_put_get_round_trip_and_nothing_plain_on_disk(data_dir: Path) -> None:
    store = SecretStore()
    store.put(TH, "postgresql/app_password", PASSWORD)
    assert store.get(TH, "postgresql/app_password") == PASSWORD
    assert store.names(TH) == ["postgresql/app_password"]
    assert PASSWORD not in _all_bytes(data_dir)
    stored = data_dir / "secrets" / TH / "postgresql" / "app_password.fernet"
    assert _mode(stored) == 0o600
    assert _mode(stored.parent) == 0o700


def test_passphrase_is_generated_once_private_and_reused(data_dir: Path) -> None:
    SecretStore().put(TH, "a", PASSWORD)
    pfile = data_dir / "secrets.passphrase"
    assert _mode(pfile) == 0o600
    first = pfile.read_bytes()
    # A new process (new store object) derives the same key from the same file.
    assert SecretStore().get(TH, "a") == PASSWORD
    assert pfile.read_bytes() == first


def test_readable_passphrase_file_is_refused(data_dir: Path) -> None:
    SecretStore().put(TH, "a", PASSWORD)
    pfile = data_dir / "secrets.passphrase"
    os.chmod(pfile, 0o644)
    with pytest.raises(SecretsError, match=r"secrets\.passphrase: mode 0644 .*chmod 600"):
        SecretStore().get(TH, "a")


def test_wrong_passphrase_gives_a_clear_error(data_dir: Path) -> None:
    SecretStore().put(TH, "a", PASSWORD)
    pfile = data_dir / "secrets.passphrase"
    pfile.write_text("a-completely-different-passphrase\n")
    with pytest.raises(SecretsError, match="cannot decrypt: wrong passphrase"):
        SecretStore().get(TH, "a")


def test_each_kommune_has_its_own_key(data_dir: Path) -> None:
    store = SecretStore()
    store.put(TH, "a", PASSWORD)
    store.put(SB, "b", b"something else entirely")
    # Tholey's file moved into Saarbrücken's folder cannot be read with Saarbrücken's key.
    src = data_dir / "secrets" / TH / "a.fernet"
    (data_dir / "secrets" / SB / "a.fernet").write_bytes(src.read_bytes())
    with pytest.raises(SecretsError, match="cannot decrypt"):
        SecretStore().get(SB, "a")


@pytest.mark.parametrize("name", ["../escape", "/etc/passwd", "a/../../b", "", "x.fernet"])
def test_bad_secret_names_are_refused(name: str) -> None:
    with pytest.raises(SecretsError, match="invalid secret name"):
        SecretStore().put(TH, name, b"x")


def test_bad_ags_is_refused() -> None:
    with pytest.raises(SecretsError, match=r"not an AGS: '\.\./10046118'"):
        SecretStore().put("../10046118", "a", b"x")


def test_unlocked_copy_is_private_and_stores_new_and_changed_files(data_dir: Path) -> None:
    store = SecretStore()
    store.put(TH, "keep", b"unchanged-secret-value")
    store.put(TH, "rotate", b"old-secret-value")
    keep_token = (data_dir / "secrets" / TH / "keep.fernet").read_bytes()
    with store.unlocked(TH) as run:
        root = run.root
        assert _mode(root) == 0o700
        assert _mode(run.secrets_dir) == 0o700
        assert _mode(run.path("keep")) == 0o600
        assert run.path("keep").read_bytes() == b"unchanged-secret-value"
        (run.secrets_dir / "pki").mkdir()
        (run.secrets_dir / "pki" / "ca.key").write_bytes(b"-----BEGIN KEY-----\nnew\n")
        run.path("rotate").write_bytes(b"new-secret-value")
        run.path("keep").unlink()  # deletions do not reach the store
        (run.secrets_dir / "link").symlink_to("/etc/hostname")  # never followed
    assert not root.exists()
    assert run.stored == ["pki/ca.key", "rotate"]
    assert store.names(TH) == ["keep", "pki/ca.key", "rotate"]
    assert store.get(TH, "rotate") == b"new-secret-value"
    assert store.get(TH, "keep") == b"unchanged-secret-value"
    # Untouched secrets are not re-encrypted (no churn, no needless writes).
    assert (data_dir / "secrets" / TH / "keep.fernet").read_bytes() == keep_token
    assert b"new-secret-value" not in _all_bytes(data_dir)


@pytest.mark.parametrize("error", [RuntimeError("role failed"), KeyboardInterrupt()])
def test_unlocked_copy_is_stored_and_removed_on_failure(error: BaseException) -> None:
    store = SecretStore()
    with pytest.raises(type(error)), store.unlocked(TH) as run:
        run.path("made-before-the-error").write_bytes(b"generated-during-the-run")
        raise error
    assert not run.root.exists()
    assert store.get(TH, "made-before-the-error") == b"generated-during-the-run"


def test_secret_values_cover_whole_files_and_key_lines() -> None:
    store = SecretStore()
    key = b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n"
    store.put(TH, "ssh/id_ed25519", key)
    store.put(TH, "short", b"abc")
    with store.unlocked(TH) as run:
        values = run.secret_values()
    assert "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ" in values
    assert key.decode().strip() in values
    assert "abc" not in values  # too short to scrub without mangling ordinary output


def test_public_files_are_stored_but_not_masked() -> None:
    store = SecretStore()
    store.put(TH, "pki/ca.crt", b"-----BEGIN CERTIFICATE-----\nTUlJQmVEQ0NBUjZnQXdJQkFnSVVm\n")
    store.put(TH, "ssh/operator_ed25519.pub", b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG0 op\n")
    store.put(TH, "postgresql/app", b"a-real-secret-password")
    with store.unlocked(TH) as run:
        assert run.secret_values() == {"a-real-secret-password"}
    assert store.names(TH) == ["pki/ca.crt", "postgresql/app", "ssh/operator_ed25519.pub"]


def test_file_and_folder_modes_come_back_as_the_role_left_them() -> None:
    """A role's `mode: "0644"` on a public key must not report a change on every run."""
    store = SecretStore()
    with store.unlocked(TH) as run:
        (run.secrets_dir / "pki").mkdir(mode=0o755)
        os.chmod(run.secrets_dir / "pki", 0o755)
        run.path("pki/ca.crt").write_bytes(b"certificate")
        os.chmod(run.path("pki/ca.crt"), 0o644)
        run.path("pki/ca.key").write_bytes(b"key")
        os.chmod(run.path("pki/ca.key"), 0o600)
        run.path("wide-open").write_bytes(b"x")
        os.chmod(run.path("wide-open"), 0o777)
    with store.unlocked(TH) as run:
        assert _mode(run.secrets_dir / "pki") == 0o755
        assert _mode(run.path("pki/ca.crt")) == 0o644
        assert _mode(run.path("pki/ca.key")) == 0o600
        assert _mode(run.path("wide-open")) == 0o644  # never executable or group-writable
    assert run.stored == []  # nothing changed in the second run
