# shellcheck shell=bash
# Environment shared by every project script and by operators: `source scripts/env.sh`.
# Only sets variables; never installs or starts anything, so it is cheap to source repeatedly.
# Every setting can be overridden by exporting it before sourcing.

BASISIT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export BASISIT_ROOT

# shellcheck source=versions.env
. "$BASISIT_ROOT/scripts/versions.env"
export PULUMI_SDK_VERSION PULUMI_CLI_VERSION PULUMI_CLI_MIN_VERSION BASISIT_DEBIAN_SUITE

# Everything built or downloaded lives outside the checkout: a CI run starts from a fresh clone,
# while the machine's cache survives between runs.
export BASISIT_CACHE="${BASISIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/basisit}"

# Virtualenv: an explicit BASISIT_VENV wins, then an activated one, then <checkout>/.venv.
if [ -n "${BASISIT_VENV:-}" ]; then
  :
elif [ -n "${VIRTUAL_ENV:-}" ]; then
  BASISIT_VENV="$VIRTUAL_ENV"
else
  BASISIT_VENV="$BASISIT_ROOT/.venv"
fi
export BASISIT_VENV

# The Pulumi CLI: bootstrap records which directory holds the CLI to use (an operator's own
# pulumi when it is new enough, else the one built at the pinned version).
export BASISIT_PULUMI_CACHE="$BASISIT_CACHE/pulumi"
export BASISIT_PULUMI_SHIM_DIR="$BASISIT_PULUMI_CACHE/shim"
if [ -z "${BASISIT_PULUMI_BIN_DIR:-}" ]; then
  if [ -s "$BASISIT_PULUMI_CACHE/selected-bin-dir" ]; then
    BASISIT_PULUMI_BIN_DIR="$(cat "$BASISIT_PULUMI_CACHE/selected-bin-dir")"
  else
    BASISIT_PULUMI_BIN_DIR="$BASISIT_PULUMI_CACHE/v$PULUMI_CLI_VERSION/bin"
  fi
fi
export BASISIT_PULUMI_BIN_DIR

# The PATH as it was before any env.sh: where an operator's own pulumi is looked for.
export BASISIT_PATH_BEFORE_ENV="${BASISIT_PATH_BEFORE_ENV:-$PATH}"

_basisit_path_prepend() {
  case ":$PATH:" in
    *":$1:"*) PATH="$1:$(printf '%s' ":$PATH:" | sed "s#:$1:#:#g; s#^:##; s#:\$##")" ;;
    *) PATH="$1:$PATH" ;;
  esac
}
# Order (first wins): venv, pulumi CLI, dynamic-provider shim.
_basisit_path_prepend "$BASISIT_PULUMI_SHIM_DIR"
_basisit_path_prepend "$BASISIT_PULUMI_BIN_DIR"
_basisit_path_prepend "$BASISIT_VENV/bin"
unset -f _basisit_path_prepend
export PATH

export PULUMI_PYTHON_CMD="${PULUMI_PYTHON_CMD:-$BASISIT_VENV/bin/python}"
export PULUMI_HOME="${PULUMI_HOME:-$BASISIT_CACHE/pulumi-home}"
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true

export CONTAINERS_CONF="${CONTAINERS_CONF:-$BASISIT_ROOT/scripts/containers.conf}"
export ANSIBLE_ROLES_PATH="${ANSIBLE_ROLES_PATH:-$BASISIT_ROOT/roles}"
# ansible-core, ansible-lint and molecule keep their caches and scenario files in ANSIBLE_HOME
# (molecule: unless a virtualenv is activated), never in the checkout.
export ANSIBLE_HOME="${ANSIBLE_HOME:-$BASISIT_CACHE/ansible}"
# hypothesis (billing's property tests) keeps its example database outside the checkout too.
export HYPOTHESIS_STORAGE_DIRECTORY="${HYPOTHESIS_STORAGE_DIRECTORY:-$BASISIT_CACHE/hypothesis}"

export BASISIT_BASE_IMAGE="${BASISIT_BASE_IMAGE:-localhost/basisit-base:$BASISIT_DEBIAN_SUITE}"
export BASISIT_ROLES_IMAGE="${BASISIT_ROLES_IMAGE:-localhost/basisit-roles:$BASISIT_DEBIAN_SUITE}"
# Local servers start from the image that already holds the roles' packages.
export BASISIT_LOCAL_IMAGE="${BASISIT_LOCAL_IMAGE:-$BASISIT_ROLES_IMAGE}"
export BASISIT_DEBIAN_MIRROR="${BASISIT_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
export BASISIT_DEBIAN_SECURITY_MIRROR="${BASISIT_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
