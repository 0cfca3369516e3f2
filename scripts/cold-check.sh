#!/usr/bin/env bash
# The README's two commands on a machine as close to a fresh one as this machine allows:
#   1. purges the host packages of scripts/host-packages.txt that a fresh machine lacks
#      (podman, iptables, ...): bootstrap must install them again
#   2. a new HOME that keeps the machine's configuration files and toolchains (.pyenv,
#      .gitconfig, pip.conf, ...) but none of the caches the project fills: ~/.cache/basisit,
#      pip's, Go's module and build caches, Maven's
#   3. a separate, empty podman storage root and network folder (CONTAINERS_STORAGE_CONF and a
#      containers.conf with network_config_dir), so no image or network of this machine is used
#   4. a fresh clone of this checkout's HEAD, where it runs scripts/demo.sh, then scripts/test.sh
# It prints the time of each step and a table at the end; logs stay in the work folder.
#
# Usage: scripts/cold-check.sh [--keep-downloads] [--keep] [--work DIR] [--only demo|test]
#   --keep-downloads  reuse pip's, Go's (module and build) and Maven's caches: for changes to the
#                     set-up that do not touch the Pulumi build (the CLI itself is still rebuilt
#                     from Go's caches, in seconds instead of minutes)
#   --keep            leave the work folder, its containers and its storage in place
#   --work DIR        the work folder (default /var/tmp/basisit-cold-<time>)
#   --only demo|test  run only one of the two commands (default both)
# Needs root (apt-get purge, podman). Refuses to start while the suite's containers run: their
# networks would share subnets with the clone's.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
real_home="$HOME"
keep_downloads=0
keep=0
work=""
only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --keep-downloads) keep_downloads=1 ;;
    --keep) keep=1 ;;
    --work)
      work="$2"
      shift
      ;;
    --only)
      only="$2"
      shift
      ;;
    -h | --help)
      sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "cold-check: unknown option '$1' (try --help)" >&2
      exit 2
      ;;
  esac
  shift
done
case "$only" in "" | demo | test) ;; *)
  echo "cold-check: --only takes demo or test" >&2
  exit 2
  ;;
esac

log() { printf '[cold-check] %s\n' "$*"; }
die() {
  printf '[cold-check] error: %s\n' "$*" >&2
  exit 1
}
[ "$(id -u)" = 0 ] || die "needs root (apt-get purge, podman)"
work="${work:-/var/tmp/basisit-cold-$(date -u +%Y%m%dT%H%M%S)}"
[ ! -e "$work" ] || die "$work exists; choose another --work"

step_names=()
step_secs=()
step_results=()
timed() { # name command...: runs it, records its seconds and result, returns its status
  local name="$1" start rc
  shift
  log "===== $name"
  start=$SECONDS
  set +e
  "$@"
  rc=$?
  set -e
  step_names+=("$name")
  step_secs+=("$((SECONDS - start))")
  if [ "$rc" = 0 ]; then step_results+=(passed); else step_results+=("failed ($rc)"); fi
  log "===== $name: $((SECONDS - start)) s, exit $rc"
  return "$rc"
}

# ------------------------------------------------------------------ 0. nothing of ours running
if command -v podman >/dev/null; then
  running="$(podman ps --filter label=basisit.managed-by=basisit --format '{{.Names}}' 2>/dev/null || true)"
  [ -z "$running" ] || die "the suite's containers are running ($(echo "$running" | wc -l), e.g. $(echo "$running" | head -n1)); destroy them first (basisit destroy --ags ... with their data dir)"
fi

mkdir -p "$work"
log "work folder $work"

# ------------------------------------------------------------------ 1. purge
purge() {
  local absent=() pkg
  while read -r pkg fresh; do
    [ "$fresh" = absent ] || continue
    [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" = "install ok installed" ] &&
      absent+=("$pkg")
  done < <(bash "$root/scripts/bootstrap.sh" --list-packages)
  if [ "${#absent[@]}" = 0 ]; then
    log "purge: none of the packages a fresh machine lacks is installed"
    return 0
  fi
  log "purge: ${absent[*]} (with what only they needed)"
  DEBIAN_FRONTEND=noninteractive apt-get purge -y -q --autoremove "${absent[@]}" </dev/null \
    >"$work/purge.log" 2>&1 || {
    tail -n 20 "$work/purge.log" >&2
    return 1
  }
  grep -E '^(Purging|Removing) ' "$work/purge.log" | sed 's/^/[cold-check]   /'
  for tool in podman iptables netavark debootstrap; do
    if command -v "$tool" >/dev/null; then
      log "purge: $tool is still on PATH ($(command -v "$tool"))"
      return 1
    fi
  done
}
timed purge purge || die "purge failed (log $work/purge.log)"

# ------------------------------------------------------------------ 2. HOME without caches
home="$work/home"
mkdir -p "$home"
for entry in "$real_home"/.[!.]* "$real_home"/*; do
  [ -e "$entry" ] || continue
  name="${entry##*/}"
  case "$name" in
    .cache | go | .m2) continue ;; # caches: see below
    .pyenv | .rustup | .cargo | .npm | .nvm | .sdkman) ln -s "$entry" "$home/$name" ;; # toolchains
    *) cp -a "$entry" "$home/$name" ;;                                              # configuration
  esac
done
# ~/.cache minus what the project fills (other tools' caches are part of the machine).
if [ -d "$real_home/.cache" ]; then
  mkdir -p "$home/.cache"
  for entry in "$real_home"/.cache/*; do
    [ -e "$entry" ] || continue
    case "${entry##*/}" in basisit | pip | go-build) continue ;; esac
    cp -a "$entry" "$home/.cache/"
  done
fi
go_env() { go env "$1" 2>/dev/null || true; }
real_gomodcache="$(go_env GOMODCACHE)"
real_gocache="$(go_env GOCACHE)"
real_pipcache="$(python3 -m pip cache dir 2>/dev/null || echo "$real_home/.cache/pip")"
# The machine's own settings that point at caches would defeat the new HOME: reset them all.
unset XDG_CACHE_HOME BASISIT_CACHE BASISIT_VENV VIRTUAL_ENV BASISIT_DATA_DIR BASISIT_DB_URL \
  BASISIT_TEST_PG_URL BASISIT_PULUMI_BIN_DIR BASISIT_PATH_BEFORE_ENV PULUMI_HOME \
  PULUMI_PYTHON_CMD CONTAINERS_CONF ANSIBLE_ROLES_PATH MAVEN_OPTS
export HOME="$home" GOPATH="$home/go"
if [ "$keep_downloads" = 1 ]; then
  export GOMODCACHE="${real_gomodcache:-$GOPATH/pkg/mod}" GOCACHE="${real_gocache:-$home/.cache/go-build}"
  export PIP_CACHE_DIR="$real_pipcache"
  if [ -e "$real_home/.m2" ]; then ln -s "$real_home/.m2" "$home/.m2"; fi
  log "home: $home (keeps pip's, Go's and Maven's caches)"
else
  export GOMODCACHE="$GOPATH/pkg/mod" GOCACHE="$home/.cache/go-build" PIP_CACHE_DIR="$home/.cache/pip"
  log "home: $home (no pip, Go, Maven or basisit cache)"
fi

# ------------------------------------------------------------------ 3. podman storage + networks
mkdir -p "$work/containers/storage" "$work/containers/run" "$work/containers/networks"
cat >"$work/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$work/containers/storage"
runroot = "$work/containers/run"
EOF
export CONTAINERS_STORAGE_CONF="$work/storage.conf"

# ------------------------------------------------------------------ 4. fresh clone
clone="$work/clone"
timed clone git clone --quiet --no-hardlinks "$root" "$clone" || die "git clone failed"
log "clone: $(git -C "$clone" log --oneline -1)"
[ -z "$(git -C "$root" status --porcelain)" ] ||
  log "note: $root has uncommitted changes; the clone has only what is committed"
# The project's containers.conf, with the networks kept in the work folder.
{
  cat "$clone/scripts/containers.conf"
  printf '\n[network]\nnetwork_config_dir = "%s"\n' "$work/containers/networks"
} >"$work/containers.conf"
export CONTAINERS_CONF="$work/containers.conf"

run_logged() { # log command...: the command's output goes to the terminal and to the log
  local logfile="$1"
  shift
  (cd "$clone" && "$@") 2>&1 | tee "$logfile"
  return "${PIPESTATUS[0]}"
}

status=0
if [ "$only" != test ]; then
  timed "scripts/demo.sh" run_logged "$work/demo.log" bash scripts/demo.sh </dev/null || status=1
fi
if [ "$only" != demo ]; then
  timed "scripts/test.sh" run_logged "$work/test.log" bash scripts/test.sh </dev/null || status=1
fi

# ------------------------------------------------------------------ summary
bootstrap_figures() { # the set-up's own timings, from the first command's log
  local first="$work/demo.log"
  [ -s "$first" ] || first="$work/test.log"
  [ -s "$first" ] || return 0
  grep -E '\[bootstrap\] (apt: installed|venv: installed|pulumi: built|image: base: debootstrap done|image: base: imported|image: roles: built|done in)' "$first" |
    sed 's/^\[bootstrap\] /[cold-check]   bootstrap: /'
  grep -E '^\[test\] (ruff|format|yamllint|ansible-lint|pytest|doctor|molecule:[^ ]*) +(passed|failed)' "$work/test.log" 2>/dev/null |
    sed 's/^\[test\] /[cold-check]   test: /' || true
}

if [ "$keep" = 0 ]; then
  log "cleaning up: the clone's demo, containers and storage"
  if [ -x "$clone/.venv/bin/basisit" ] && [ -d "$clone/.data/demo" ]; then
    for ags in 10041100 10046118 10046; do
      (cd "$clone" && . scripts/env.sh && BASISIT_DATA_DIR="$clone/.data/demo" \
        basisit destroy --ags "$ags" --yes >/dev/null 2>&1) || log "destroy $ags failed"
    done
  fi
  # Only the work folder's storage and networks (CONTAINERS_STORAGE_CONF, CONTAINERS_CONF).
  podman rm -af -t 0 >/dev/null 2>&1 || true
  podman network prune -f >/dev/null 2>&1 || true
  podman rmi -af >/dev/null 2>&1 || true
  rm -rf "$work/containers" "$work/clone" "$home"
fi

echo
log "$(printf '%-22s %8s  %s' step seconds result)"
for i in "${!step_names[@]}"; do
  log "$(printf '%-22s %8s  %s' "${step_names[$i]}" "${step_secs[$i]}" "${step_results[$i]}")"
done
bootstrap_figures
log "logs: $work/*.log"
exit "$status"
