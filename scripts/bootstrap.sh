#!/usr/bin/env bash
# Installs everything the suite and its tests need; safe to run again (then it takes seconds).
#   1. Debian packages from scripts/host-packages.txt, only those missing
#   2. the Pulumi CLI at the version pinned in scripts/versions.env (scripts/build-pulumi.sh),
#      in the background: its Go build is minutes of CPU while steps 3-6 mostly wait on the
#      network and the disk, so they run beside it (its lines are prefixed "pulumi:")
#   3. the virtualenv (.venv in the checkout unless BASISIT_VENV or VIRTUAL_ENV is set) with
#      `pip install -e '.[dev]'`, repeated only when pyproject.toml changed
#   4. the XRechnung validation rules (XSD and schematron) at the versions pinned in
#      scripts/versions.env, into the cache (scripts/xrechnung-rules.sh)
#   5. the base image, and a probe that podman can run a container from it (minutes before
#      the long builds end, so a broken podman set-up shows at once; the Pulumi build stops too)
#   6. the roles image (scripts/build-image.sh); then bootstrap waits for the Pulumi build
#   7. `basisit doctor`: every prerequisite checked by using it
# Built things live in ~/.cache/basisit (BASISIT_CACHE); the checkout only gets .venv.
#
# Usage: scripts/bootstrap.sh [--no-apt] [--no-venv] [--no-pulumi] [--no-xrechnung]
#                             [--no-images] [--base-image-only] [--no-doctor] [--list-packages]
# The same as environment: BASISIT_BOOTSTRAP_SKIP="apt,venv,pulumi,xrechnung,images,doctor".
# --list-packages prints the host packages (name, present|absent on a fresh machine) and exits.
set -euo pipefail

# shellcheck source=env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

# The host's packages, one per line: "<name> <present|absent>" (comments stripped).
host_packages() {
  sed -e 's/#.*//' "$BASISIT_ROOT/scripts/host-packages.txt" | awk 'NF { print $1, $2 }'
}

skip=",${BASISIT_BOOTSTRAP_SKIP:-},"
image_args=()
for arg in "$@"; do
  case "$arg" in
    --no-apt) skip+="apt," ;;
    --no-venv) skip+="venv," ;;
    --no-pulumi) skip+="pulumi," ;;
    --no-xrechnung) skip+="xrechnung," ;;
    --no-images) skip+="images," ;;
    --base-image-only) image_args+=(--base-only) ;;
    --no-doctor) skip+="doctor," ;;
    --list-packages)
      host_packages
      exit 0
      ;;
    -h | --help)
      sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "bootstrap: unknown option '$arg' (try --help)" >&2
      exit 2
      ;;
  esac
done
skipped() { [[ "$skip" == *",$1,"* ]]; }

log() { printf '[bootstrap] %s\n' "$*"; }
die() {
  printf '[bootstrap] error: %s\n' "$*" >&2
  exit 1
}
t0=$SECONDS

# ------------------------------------------------------------------ pins agree
sdk_pin="$(sed -n 's/^[[:space:]]*"pulumi==\([^"]*\)".*/\1/p' "$BASISIT_ROOT/pyproject.toml")"
[ "$sdk_pin" = "$PULUMI_SDK_VERSION" ] ||
  die "pyproject.toml pins pulumi==${sdk_pin:-<nothing>} but scripts/versions.env has PULUMI_SDK_VERSION=$PULUMI_SDK_VERSION; change both together"

# ------------------------------------------------------------------ 1. apt
mapfile -t apt_packages < <(host_packages | cut -d' ' -f1)
[ "${#apt_packages[@]}" -gt 0 ] || die "apt: scripts/host-packages.txt lists no package"
if skipped apt; then
  log "apt: skipped"
else
  missing=()
  for pkg in "${apt_packages[@]}"; do
    status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
    [ "$status" = "install ok installed" ] || missing+=("$pkg")
  done
  if [ "${#missing[@]}" = 0 ]; then
    log "apt: ok (${apt_packages[*]})"
  else
    sudo=()
    if [ "$(id -u)" != 0 ]; then
      command -v sudo >/dev/null || die "apt: need root to install ${missing[*]}"
      sudo=(sudo -n)
    fi
    log "apt: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    start=$SECONDS
    "${sudo[@]}" apt-get update -q | sed -u 's/^/[bootstrap]   /'
    "${sudo[@]}" apt-get install -y -q "${missing[@]}" </dev/null | sed -u 's/^/[bootstrap]   /'
    log "apt: installed in $((SECONDS - start)) s"
  fi
fi

# ------------------------------------------------------------------ 2. pulumi (background)
# Its own session (setsid): when a later step fails, the whole build (go and its compilers)
# is stopped, not only the shell that started it.
pulumi_pid=""
stop_pulumi() {
  [ -n "$pulumi_pid" ] || return 0
  # The group exists once setsid ran; a failure right after the start may come before that.
  kill -- "-$pulumi_pid" 2>/dev/null || kill "$pulumi_pid" 2>/dev/null || true
  wait "$pulumi_pid" 2>/dev/null || true
  pulumi_pid=""
}
trap stop_pulumi EXIT
if skipped pulumi; then
  log "pulumi: skipped"
else
  setsid bash -o pipefail -c 'bash "$1" 2>&1 | sed -u "s/^\[pulumi\] /[bootstrap] pulumi: /"' \
    build-pulumi "$BASISIT_ROOT/scripts/build-pulumi.sh" </dev/null &
  pulumi_pid=$!
fi

# ------------------------------------------------------------------ 3. venv
if skipped venv; then
  log "venv: skipped"
else
  venv_python="$BASISIT_VENV/bin/python"
  if [ ! -x "$venv_python" ]; then
    # Python 3.11 as the project requires: an explicit choice, else the first one found.
    base_python="${BASISIT_PYTHON:-}"
    if [ -z "$base_python" ]; then
      for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null &&
          "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))' 2>/dev/null; then
          base_python="$candidate"
          break
        fi
      done
    fi
    [ -n "$base_python" ] || die "venv: no Python >= 3.11 found (set BASISIT_PYTHON)"
    log "venv: creating $BASISIT_VENV with $("$base_python" --version 2>&1)"
    "$base_python" -m venv "$BASISIT_VENV"
  fi
  # The stamp covers what decides the install: pyproject, the checkout it points to, Python.
  want="$({
    sha256sum <"$BASISIT_ROOT/pyproject.toml"
    echo "$BASISIT_ROOT"
    "$venv_python" -c 'import sys; print(sys.version)'
  } | sha256sum | cut -c1-16)"
  stamp="$BASISIT_VENV/.basisit-install-stamp"
  if [ "$(cat "$stamp" 2>/dev/null || true)" = "$want" ]; then
    log "venv: up to date ($BASISIT_VENV)"
  else
    log "venv: pip install -e '.[dev]' into $BASISIT_VENV"
    start=$SECONDS
    rm -f "$stamp"
    had_egg_info=0
    [ -e "$BASISIT_ROOT/basisit.egg-info" ] && had_egg_info=1
    export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
    mkdir -p "$BASISIT_CACHE/logs"
    piplog="$BASISIT_CACHE/logs/pip-install.log"
    # pip prints one "Collecting ..." line per package: enough progress without its bars.
    set +e
    "$venv_python" -m pip install --progress-bar off -e "${BASISIT_ROOT}[dev]" 2>&1 |
      tee "$piplog" | grep --line-buffered -E '^(Collecting|Successfully installed)' |
      cut -c1-100 | sed -u 's/^/[bootstrap]   /'
    rc="${PIPESTATUS[0]}"
    set -e
    if [ "$rc" != 0 ]; then
      tail -n 25 "$piplog" | sed 's/^/[bootstrap]   /' >&2
      die "venv: pip install -e '.[dev]' failed (exit $rc, full log $piplog)"
    fi
    # setuptools leaves its build metadata in the checkout; the editable install does not use it.
    [ "$had_egg_info" = 1 ] || rm -rf "$BASISIT_ROOT/basisit.egg-info"
    echo "$want" >"$stamp"
    log "venv: installed in $((SECONDS - start)) s"
  fi
fi

# ------------------------------------------------------------------ 4. XRechnung rules
# Seconds when cached; the invoice validation (basisit.invoicing) and its tests read them.
if skipped xrechnung; then
  log "xrechnung: skipped"
else
  start=$SECONDS
  # The script prints the directory on stdout and its progress on stderr: the directory is
  # captured (fd 3 is the capture), the progress gets bootstrap's prefix.
  rules_dir="$({ bash "$BASISIT_ROOT/scripts/xrechnung-rules.sh" 2>&1 1>&3 3>&- |
    sed -u 's/^\[xrechnung\] /[bootstrap] xrechnung: /' >&2; } 3>&1)" ||
    die "xrechnung: scripts/xrechnung-rules.sh failed (its lines above say why)"
  log "xrechnung: ok ($rules_dir, $((SECONDS - start)) s)"
fi

# ------------------------------------------------------------------ 5. base image + probe
[ -r "$CONTAINERS_CONF" ] || die "containers.conf: $CONTAINERS_CONF is missing"
log "containers.conf: $CONTAINERS_CONF"
build_image() {
  bash "$BASISIT_ROOT/scripts/build-image.sh" "$@" | sed -u 's/^\[image\] /[bootstrap] image: /'
}
if skipped images; then
  log "images: skipped"
else
  # build-image.sh probes podman right after the base image: a machine where podman cannot
  # run a container stops here, before the Pulumi build and the roles image take minutes.
  build_image --base-only
fi

# ------------------------------------------------------------------ 6. roles image
if ! skipped images && [ "${#image_args[@]}" = 0 ]; then
  build_image
fi

# ------------------------------------------------------------------ (2.) pulumi, waited for
if [ -n "$pulumi_pid" ]; then
  kill -0 "$pulumi_pid" 2>/dev/null && log "pulumi: waiting for the build to end"
  rc=0
  wait "$pulumi_pid" || rc=$?
  pulumi_pid=""
  [ "$rc" = 0 ] || die "pulumi: scripts/build-pulumi.sh failed (exit $rc; its lines above say why)"
fi

# ------------------------------------------------------------------ 7. doctor
if skipped doctor; then
  log "doctor: skipped (--no-doctor: the caller runs it)"
elif skipped venv && ! command -v basisit >/dev/null; then
  log "doctor: skipped (no venv, no basisit on PATH)"
else
  log "doctor: checking every prerequisite"
  doctor="$BASISIT_VENV/bin/basisit"
  [ -x "$doctor" ] || doctor=basisit
  "$doctor" doctor || die "doctor: a prerequisite is missing (fixes above)"
fi

log "done in $((SECONDS - t0)) s"
