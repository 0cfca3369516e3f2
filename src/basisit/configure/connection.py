"""How Ansible talks to the servers: connection settings and the run's environment.

Three modes, so the benchmark can compare them and an operator can fall back:
- `fast` (default): OpenSSH with pipelining (one ssh round trip per module instead of three),
  ControlPersist (one TCP/SSH handshake per host and run), no compression on what is mostly
  loopback or data-centre traffic, and `gathering=smart` so facts are gathered once per host
  and run instead of once per play.
- `mitogen`: `fast` plus the mitogen_linear strategy (a persistent Python interpreter on each
  host); needs the `mitogen` package (0.3.54 works with ansible-core 2.19).
- `default`: Ansible's own defaults, for comparison and for debugging.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys
from enum import StrEnum
from pathlib import Path

from basisit import paths
from basisit.configure.errors import ConfigureError


class Mode(StrEnum):
    fast = "fast"
    mitogen = "mitogen"
    default = "default"


_SENSITIVE = re.compile(r"PASSPHRASE|PASSWORD|SECRET|TOKEN|CREDENTIAL|PRIVATE_KEY", re.I)

FAST_SSH_ARGS = (
    "-o ControlMaster=auto -o ControlPersist=300s -o PreferredAuthentications=publickey "
    "-o ServerAliveInterval=15 -o ServerAliveCountMax=4"
)


def playbooks_dir() -> Path:
    return paths.project_root() / "playbooks"


def roles_dir() -> Path:
    return paths.project_root() / "roles"


def venv_bin() -> Path:
    """The bin/ of the interpreter running the suite; not resolved, a venv's python is a link."""
    return Path(sys.executable).parent


def mitogen_strategy_dir() -> Path | None:
    spec = importlib.util.find_spec("ansible_mitogen")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "plugins" / "strategy"
    return path if path.is_dir() else None


def search_path() -> str:
    """PATH with the suite's venv first: ansible-runner starts ansible-playbook from PATH."""
    current = os.environ.get("PATH", os.defpath)
    return os.pathsep.join([str(venv_bin()), current])


def ansible_env(mode: Mode, private_root: Path) -> dict[str, str]:
    """Environment for one run. private_root is the run's 0700 temp dir (control sockets,
    Ansible's local temp files); nothing secret goes in here, it is written to disk by runner."""
    path = search_path()
    if shutil.which("ansible-playbook", path=path) is None:
        raise ConfigureError(
            f"ansible-playbook not found in {venv_bin()} or on PATH; "
            "install the suite's dependencies (scripts/bootstrap.sh)"
        )
    env = {
        "PATH": path,
        "ANSIBLE_CONFIG": str(playbooks_dir() / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(roles_dir()),
        # Controller-side temp files of modules (e.g. templated content) stay in the private dir.
        "ANSIBLE_LOCAL_TEMP": str(private_root / "ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        # ansible-runner turns host key checking off unless told otherwise; the inventory's
        # StrictHostKeyChecking would then come after Ansible's "=no" and lose.
        "ANSIBLE_HOST_KEY_CHECKING": "True",
    }
    # ansible-runner hands the whole environment to ansible-playbook and dumps it into its
    # artifacts; credentials of other tools (a Pulumi passphrase, tokens) have no business there.
    env.update({name: "" for name in os.environ if _SENSITIVE.search(name)})
    if mode is Mode.default:
        return env
    env.update(
        {
            "ANSIBLE_PIPELINING": "1",
            "ANSIBLE_SSH_ARGS": FAST_SSH_ARGS,
            # Short path: unix sockets are limited to 108 bytes.
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(private_root / "cp"),
            "ANSIBLE_GATHERING": "smart",
        }
    )
    if mode is Mode.mitogen:
        strategy_dir = mitogen_strategy_dir()
        if strategy_dir is None:
            raise ConfigureError(
                "connection mode mitogen needs the `mitogen` package in the suite's venv "
                "(pip install mitogen); or use --connection fast"
            )
        env["ANSIBLE_STRATEGY_PLUGINS"] = str(strategy_dir)
        env["ANSIBLE_STRATEGY"] = "mitogen_linear"
    return env
