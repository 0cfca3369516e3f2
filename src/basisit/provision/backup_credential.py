"""The object storage credential of a Kommune's backups: from the stack into the secrets store.

On the openstack target the stack exports it as the secret output `backup_credential`
({auth_url, region (optional), id, secret} of a Keystone application credential). It never goes
into contract 2, which is a plain file: the driver stores it Fernet-encrypted in the Kommune's
configure store (basisit.vault.store.SecretStore) as `swift/backup_credential.json`,
shaped as the environment restic reads (OS_AUTH_URL, OS_APPLICATION_CREDENTIAL_ID,
OS_APPLICATION_CREDENTIAL_SECRET, OS_REGION_NAME). A configure run decrypts it into
basisit_secrets_dir, where the backup_client play reads it; contract 2 only names it
(`object_storage.credential: "secrets:swift/backup_credential.json"`).

Written only when it changed (a deploy that changes nothing rewrites nothing), removed when the
stack has none any more and on destroy. Error messages name fields, never values.
"""

from __future__ import annotations

import json
from typing import Any, cast

from basisit.contracts.stack_outputs import StackOutputs
from basisit.provision.errors import ProvisionError
from basisit.vault.store import SecretStore

# The stack output, as stacks.tenant exports it.
OUTPUT = "backup_credential"
NAME = "swift/backup_credential.json"
MARKER = f"secrets:{NAME}"
_REQUIRED = ("auth_url", "id", "secret")
_OPTIONAL = ("region",)


def environment(ags: str, value: Any) -> dict[str, str]:
    """The stack output as restic's Keystone v3 application credential environment."""
    where = f"stack output {OUTPUT} of AGS {ags}"
    if not isinstance(value, dict):
        raise ProvisionError(f"{where}: expected an object, got {type(value).__name__}")
    unknown = sorted(set(value) - set(_REQUIRED) - set(_OPTIONAL))
    missing = [k for k in _REQUIRED if not isinstance(value.get(k), str) or not value[k]]
    if unknown or missing:
        raise ProvisionError(
            f"{where}: "
            + "; ".join(
                ([f"missing or empty: {', '.join(missing)}"] if missing else [])
                + ([f"unknown: {', '.join(unknown)}"] if unknown else [])
            )
        )
    if not value["auth_url"].startswith(("http://", "https://")):
        raise ProvisionError(f"{where}: auth_url is not an http(s) URL")
    env = {
        "OS_AUTH_URL": value["auth_url"],
        "OS_APPLICATION_CREDENTIAL_ID": value["id"],
        "OS_APPLICATION_CREDENTIAL_SECRET": value["secret"],
    }
    if value.get("region"):
        env["OS_REGION_NAME"] = str(value["region"])
    return env


def store(ags: str, output: Any | None, secret_store: SecretStore | None = None) -> str | None:
    """Keep the store in line with the stack's output (an automation OutputValue or None).

    Returns the contract-2 marker when a credential is stored, None when the stack has none
    (and an earlier one was removed).
    """
    secret_store = secret_store or SecretStore()
    if output is None or output.value is None:
        remove(ags, secret_store)
        return None
    if not output.secret:
        # The program wraps it in Output.secret; a plain one would be a bug worth stopping for.
        raise ProvisionError(
            f"stack output {OUTPUT} of AGS {ags} is not marked secret; not storing it"
        )
    data = (json.dumps(environment(ags, output.value), indent=1, sort_keys=True) + "\n").encode()
    if not (secret_store.has(ags, NAME) and secret_store.get(ags, NAME) == data):
        secret_store.put(ags, NAME, data)
    return MARKER


def mark(ags: str, doc: StackOutputs, marker: str | None) -> StackOutputs:
    """Contract 2 with object_storage.credential naming where the credential is stored."""
    if marker is None:
        return doc
    if not doc.get("object_storage"):
        raise ProvisionError(
            f"stack outputs of AGS {ags}: a backup credential but no object storage container"
        )
    storage = doc.get("object_storage") or {}
    return cast(StackOutputs, {**doc, "object_storage": {**storage, "credential": marker}})


def remove(ags: str, secret_store: SecretStore | None = None) -> None:
    (secret_store or SecretStore()).remove(ags, NAME)
