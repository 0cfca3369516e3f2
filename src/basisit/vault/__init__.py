"""The secrets vault: every secret the suite keeps, Fernet-encrypted under <data_dir>/secrets*.

A foundation both steps use: `store` holds the per-Kommune encrypted files (the configure
step's secrets, the backup credential a deploy receives); `keys` the deploy step's own
secrets (the Pulumi state passphrase, the SSH key pair of each Kommune). Nothing here imports
a step; provisioning and configuration both import this.
"""

from __future__ import annotations

from basisit.vault.store import SecretsError, SecretStore, Unlocked, check_ags, is_public

__all__ = ["SecretStore", "SecretsError", "Unlocked", "check_ags", "is_public"]
