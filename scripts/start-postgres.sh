#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests, from Debian's packages.
#  - BASISIT_TEST_PG_URL already set: that server is used as it is; nothing is started.
#  - Otherwise a cluster is created in /tmp/basisit-pg-<checkout hash>/ (initdb, as the postgres
#    user when run as root), listening only on 127.0.0.1 on a free port, with a database and a
#    role that has a random password. A second start reuses the running server.
#
# Executed:  scripts/start-postgres.sh [start|stop|url]
#            start prints `export BASISIT_TEST_PG_URL=...` (eval it); url prints the URL only.
# Sourced:   basisit_pg_start (exports BASISIT_TEST_PG_URL), basisit_pg_stop.
# The URL holds the password, so it is only written to a 0600 file and to stdout on request;
# progress lines show it masked.

# shellcheck source=env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

_basisit_pg_dir() {
  printf '/tmp/basisit-pg-%s' "$(printf '%s' "$BASISIT_ROOT" | sha256sum | cut -c1-12)"
}

_basisit_pg_log() { printf '[postgres] %s\n' "$*" >&2; }

_basisit_pg_bin() { # newest installed server's bin directory
  local initdb
  initdb="$(ls -1d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n1)"
  [ -n "$initdb" ] || return 1
  dirname "$initdb"
}

_basisit_pg_as() { # runs a command as the cluster owner
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

_basisit_pg_running() { # dir
  local bin
  bin="$(_basisit_pg_bin)" || return 1
  [ -f "$1/data/postmaster.pid" ] && [ -s "$1/url" ] &&
    _basisit_pg_as "$bin/pg_ctl" -D "$1/data" status >/dev/null 2>&1
}

_basisit_pg_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

basisit_pg_start() {
  if [ -n "${BASISIT_TEST_PG_URL:-}" ] && [ -z "${_BASISIT_PG_OURS:-}" ]; then
    _basisit_pg_log "using BASISIT_TEST_PG_URL from the environment"
    return 0
  fi
  local dir bin password port attempt
  dir="$(_basisit_pg_dir)"
  if _basisit_pg_running "$dir"; then
    BASISIT_TEST_PG_URL="$(cat "$dir/url")"
    export BASISIT_TEST_PG_URL _BASISIT_PG_OURS=1
    _basisit_pg_log "running: $(sed 's#//\([^:]*\):[^@]*@#//\1:***@#' "$dir/url")"
    return 0
  fi
  bin="$(_basisit_pg_bin)" || {
    _basisit_pg_log "error: no PostgreSQL server found under /usr/lib/postgresql (apt-get install postgresql)"
    return 1
  }
  rm -rf "$dir"
  mkdir -p "$dir/sock"
  chmod 0700 "$dir"
  [ "$(id -u)" = 0 ] && chown -R postgres: "$dir"
  password="$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')"
  (umask 077 && printf '%s\n' "$password" >"$dir/pwfile")
  [ "$(id -u)" = 0 ] && chown postgres: "$dir/pwfile"
  if ! _basisit_pg_as "$bin/initdb" -D "$dir/data" -U postgres --auth=scram-sha-256 \
    --pwfile="$dir/pwfile" -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1; then
    _basisit_pg_log "error: initdb failed, see $dir/initdb.log"
    return 1
  fi
  # A free port can be taken between choosing it and binding it: try a few.
  for attempt in 1 2 3; do
    port="$(_basisit_pg_free_port)"
    if _basisit_pg_as "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir/sock -c fsync=off" start >/dev/null; then
      break
    fi
    port=""
    _basisit_pg_log "start on a free port failed (attempt $attempt), see $dir/server.log"
  done
  [ -n "$port" ] || return 1
  PGPASSWORD="$password" "$bin/psql" -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres \
    -d postgres >/dev/null <<SQL || return 1
CREATE ROLE basisit LOGIN CREATEDB PASSWORD '$password';
CREATE DATABASE basisit_test OWNER basisit;
SQL
  rm -f "$dir/pwfile"
  (umask 077 && printf 'postgresql://basisit:%s@127.0.0.1:%s/basisit_test\n' "$password" "$port" >"$dir/url")
  BASISIT_TEST_PG_URL="$(cat "$dir/url")"
  export BASISIT_TEST_PG_URL _BASISIT_PG_OURS=1
  _basisit_pg_log "started: postgresql://basisit:***@127.0.0.1:$port/basisit_test (data $dir)"
}

basisit_pg_stop() {
  local dir bin
  dir="$(_basisit_pg_dir)"
  [ -d "$dir" ] || return 0
  if bin="$(_basisit_pg_bin)" && [ -f "$dir/data/postmaster.pid" ]; then
    _basisit_pg_as "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  if [ -n "${_BASISIT_PG_OURS:-}" ]; then
    unset BASISIT_TEST_PG_URL _BASISIT_PG_OURS
  fi
  _basisit_pg_log "stopped and removed $dir"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case "${1:-start}" in
    start)
      basisit_pg_start
      printf 'export BASISIT_TEST_PG_URL=%q\n' "$BASISIT_TEST_PG_URL"
      ;;
    url)
      basisit_pg_start 2>/dev/null
      printf '%s\n' "$BASISIT_TEST_PG_URL"
      ;;
    stop) basisit_pg_stop ;;
    *)
      echo "usage: $0 [start|stop|url]" >&2
      exit 2
      ;;
  esac
fi
