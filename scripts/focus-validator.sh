#!/usr/bin/env bash
# Creates (once) the virtualenv of focus-validator 2.2.1 outside the checkout and prints the path
# of its `focus-validator` executable. Safe to re-run: an existing, complete venv is reused.
#
# Why a venv of its own: 2.2.1 (the release that checks FOCUS 1.2) needs Python 3.12 (on 3.11 pip
# falls back to 1.0.0, which checks FOCUS 1.0), and it pins NumPy 1.26, so pyarrow must stay
# below 22 (newer pyarrow wants NumPy 2). The project's own venv is Python 3.11.
set -euo pipefail

VERSION=2.2.1
CACHE="${BASISIT_CACHE:-$HOME/.cache/basisit}"
VENV="$CACHE/focus-validator-$VERSION"
PYTHON="${BASISIT_PYTHON312:-}"
if [ -z "$PYTHON" ]; then
  # A pyenv shim named python3.12 may exist without that version selected: try each one.
  for candidate in /root/.pyenv/versions/3.12.1/bin/python3.12 \
    "$HOME/.pyenv/versions/3.12.1/bin/python3.12" python3.12; do
    if "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1; then
      PYTHON="$(command -v "$candidate")"
      break
    fi
  done
fi
if [ -z "$PYTHON" ]; then
  echo "focus-validator.sh: python3.12 not found (set BASISIT_PYTHON312)" >&2
  exit 3
fi

# The marker is written last: a venv without it is an interrupted install and is built again.
MARKER="$VENV/.basisit-complete"
if [ ! -f "$MARKER" ]; then
  mkdir -p "$CACHE"
  # One build at a time: a second caller waits instead of installing into the same venv.
  exec 9>"$VENV.lock"
  flock 9
  if [ ! -f "$MARKER" ]; then
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV" >&2
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
      "focus-validator==$VERSION" "pyarrow<22" >&2
    # It writes focus_validator_detailed.log into its working directory, even for --help:
    # run it in the venv, never in the caller's (the checkout).
    (cd "$VENV" && "$VENV/bin/focus-validator" --help >/dev/null)
    touch "$MARKER"
  fi
fi
echo "$VENV/bin/focus-validator"
