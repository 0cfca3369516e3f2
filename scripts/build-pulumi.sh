#!/usr/bin/env bash
# Makes a Pulumi CLI available at the version pinned in scripts/versions.env.
#  - An operator's own `pulumi` on PATH is used when it is at least the Python SDK's version and
#    at least PULUMI_CLI_MIN_VERSION (the SDK refuses older CLIs for inline programs).
#  - Otherwise the CLI is built from its Go modules (Pulumi ships no binary we can download here)
#    into $BASISIT_CACHE/pulumi/v<version>/bin/pulumi, outside the checkout, once per version.
# Either way the dynamic-provider shim pulumi-resource-pulumi-python is installed, and the chosen
# directory is recorded in $BASISIT_CACHE/pulumi/selected-bin-dir for scripts/env.sh.
#
# Usage: scripts/build-pulumi.sh [--force-build] [--language-host]
#   --force-build     build even when a usable pulumi is on PATH or already cached
#   --language-host   also build pulumi-language-python (only needed for a plain `pulumi up`
#                     in the project folder; the suite runs inline programs without it).
#                     Note: on 2026-11-25 the Go proxy here refused that module (403).
set -euo pipefail

# shellcheck source=env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

force=0
language_host="${BASISIT_PULUMI_LANGUAGE_HOST:-0}"
for arg in "$@"; do
  case "$arg" in
    --force-build) force=1 ;;
    --language-host) language_host=1 ;;
    -h | --help)
      sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "build-pulumi: unknown option '$arg' (try --help)" >&2
      exit 2
      ;;
  esac
done

log() { printf '[pulumi] %s\n' "$*"; }
die() {
  printf '[pulumi] error: %s\n' "$*" >&2
  exit 1
}
version_ge() { # version_ge A B: A >= B (both without a leading v)
  [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$2" ]
}
cli_version() { # prints the version a pulumi binary reports, without the leading v
  "$1" version 2>/dev/null | head -n1 | sed 's/^v//'
}

version_ge "$PULUMI_CLI_VERSION" "$PULUMI_SDK_VERSION" ||
  die "scripts/versions.env pins CLI $PULUMI_CLI_VERSION below SDK $PULUMI_SDK_VERSION"
need="$PULUMI_SDK_VERSION"
version_ge "$need" "$PULUMI_CLI_MIN_VERSION" || need="$PULUMI_CLI_MIN_VERSION"

cache_bin_dir="$BASISIT_PULUMI_CACHE/v$PULUMI_CLI_VERSION/bin"
build_dir="$BASISIT_CACHE/pulumi-build"
mkdir -p "$BASISIT_PULUMI_CACHE" "$BASISIT_PULUMI_SHIM_DIR"

install_shim() { # dir: installs the dynamic-provider host next to the CLI
  local target="$1/pulumi-resource-pulumi-python"
  local tmp
  tmp="$(mktemp "$1/.shim.XXXXXX")"
  cat >"$tmp" <<'EOF'
#!/bin/sh
# Host for Pulumi's Python dynamic providers, started by the Pulumi engine. PULUMI_PYTHON_CMD
# (set by scripts/env.sh) is the project's virtualenv python, which has the pulumi SDK.
exec "${PULUMI_PYTHON_CMD:-python3}" -u -m pulumi.dynamic "$@"
EOF
  chmod 0755 "$tmp"
  mv -f "$tmp" "$target"
}

select_dir() {
  printf '%s\n' "$1" >"$BASISIT_PULUMI_CACHE/selected-bin-dir.tmp"
  mv -f "$BASISIT_PULUMI_CACHE/selected-bin-dir.tmp" "$BASISIT_PULUMI_CACHE/selected-bin-dir"
  install_shim "$BASISIT_PULUMI_SHIM_DIR"
}

# 1. An operator's pulumi, found on the PATH as it was before env.sh changed it.
if [ "$force" = 0 ]; then
  operator_path=""
  IFS=: read -r -a path_parts <<<"$BASISIT_PATH_BEFORE_ENV"
  for part in "${path_parts[@]}"; do
    case "$part" in "$BASISIT_CACHE"/* | "$BASISIT_VENV"/* | "") continue ;; esac
    operator_path="${operator_path:+$operator_path:}$part"
  done
  if operator_cli="$(PATH="$operator_path" command -v pulumi)"; then
    have="$(cli_version "$operator_cli")"
    if [ -n "$have" ] && version_ge "$have" "$need"; then
      select_dir "$(dirname "$operator_cli")"
      log "using $operator_cli (v$have >= v$need)"
      exit 0
    fi
    log "ignoring $operator_cli (v${have:-unknown} is below v$need); using v$PULUMI_CLI_VERSION"
  fi
fi

# 2. The CLI cached for the pinned version.
if [ "$force" = 0 ] && [ -x "$cache_bin_dir/pulumi" ] &&
  [ "$(cli_version "$cache_bin_dir/pulumi")" = "$PULUMI_CLI_VERSION" ] &&
  { [ "$language_host" = 0 ] || [ -x "$cache_bin_dir/pulumi-language-python" ]; }; then
  install_shim "$cache_bin_dir"
  select_dir "$cache_bin_dir"
  log "cached v$PULUMI_CLI_VERSION ($cache_bin_dir/pulumi)"
  exit 0
fi

# 3. Build from Go modules.
command -v go >/dev/null || die "Go is needed to build the Pulumi CLI (install golang or put go on PATH)"
export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:--mod=mod}"
mkdir -p "$build_dir" "$cache_bin_dir"
exec 9>"$build_dir.lock"
if ! flock -n 9; then
  log "another build holds $build_dir.lock; waiting"
  flock 9
fi
# A Go build of pulumi started outside this script (e.g. a cache warm-up) shares the caches;
# building concurrently would only compete for the two cores.
while pgrep -f "go build .*github.com/pulumi/pulumi/pkg/v3/cmd/pulumi" >/dev/null; do
  log "waiting for a running 'go build' of pulumi to finish (it warms the same caches)"
  sleep 20
done

ldflags="-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_CLI_VERSION"

# go build -v names each package it compiles (nothing for cached ones): turn that into a count.
go_build() { # dir output main-package
  local dir="$1" out="$2" pkg="$3" total
  total="$(cd "$dir" && go list -deps "$pkg" | wc -l)"
  log "compiling $pkg ($total packages, cached ones are skipped)"
  if ! (cd "$dir" && go build -v -trimpath -ldflags "$ldflags" -o "$out.tmp" "$pkg" 2>&1) |
    awk -v total="$total" '
      / / || /:/ { print; fflush(); next }     # compiler messages, not package names
      { n++; if (n % 50 == 0) { printf "[pulumi]   compiled %d of at most %d packages\n", n, total; fflush() } }
      END { printf "[pulumi]   compiled %d packages (others came from the build cache)\n", n }'; then
    die "go build of $pkg failed"
  fi
  mv -f "$out.tmp" "$out"
}

wrapper_module() { # dir module tool version: a wrapper Go module that pins one tool
  local dir="$1" module="$2" tool="$3" version="$4"
  mkdir -p "$dir"
  if [ ! -f "$dir/go.mod" ]; then
    (cd "$dir" && go mod init basisit.local/pulumi-cli >/dev/null 2>&1)
  fi
  # pulumi's own go.mod carries this replace; replace directives do not apply to dependents.
  (cd "$dir" && go mod edit -replace \
    github.com/atotto/clipboard=github.com/tgummerer/clipboard@v0.0.0-20241001131231-d02d263e614e)
  if ! grep -q "^tool $tool\$" "$dir/go.mod" || ! grep -Eq "^[[:space:]]*$module $version( |\$)" "$dir/go.mod"; then
    log "resolving $tool@$version (downloads modules the first time)"
    if ! (cd "$dir" && go get -tool "$tool@$version" 2>&1 | sed -u 's/^/[pulumi]   /'); then
      die "cannot resolve $tool@$version from the Go module proxy ($(go env GOPROXY))"
    fi
  fi
}

start=$SECONDS
log "building v$PULUMI_CLI_VERSION from Go modules into $cache_bin_dir (minutes when cold)"
wrapper_module "$build_dir" github.com/pulumi/pulumi/pkg/v3 \
  github.com/pulumi/pulumi/pkg/v3/cmd/pulumi "v$PULUMI_CLI_VERSION"
go_build "$build_dir" "$cache_bin_dir/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
got="$(cli_version "$cache_bin_dir/pulumi")"
[ "$got" = "$PULUMI_CLI_VERSION" ] ||
  die "built CLI reports version '${got:-none}', expected $PULUMI_CLI_VERSION"
log "built pulumi v$got in $((SECONDS - start)) s"

if [ "$language_host" = 1 ]; then
  start=$SECONDS
  # Its own wrapper module, so its requirements cannot shift the CLI's module versions.
  wrapper_module "$build_dir-python" \
    github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3 \
    github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3 "v$PULUMI_CLI_VERSION"
  go_build "$build_dir-python" "$cache_bin_dir/pulumi-language-python" \
    github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3
  log "built pulumi-language-python in $((SECONDS - start)) s"
fi

install_shim "$cache_bin_dir"
select_dir "$cache_bin_dir"
log "ready: $cache_bin_dir/pulumi"
