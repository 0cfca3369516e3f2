#!/usr/bin/env bash
# Runs every check of the project: the README's test command and what .ci/run runs.
#   bootstrap (installs what is missing), a throwaway PostgreSQL, then the steps
#   ruff check, ruff format --check, lint-imports (the layers, contracts in pyproject.toml),
#   mypy (src/ and stacks/), pylint's duplicate-code check, yamllint, ansible-lint
#   (production profile), promtool (check config, check rules, test rules), pytest,
#   `molecule test` for every scenario in roles/<role>/molecule/<scenario>, and last
#   clean-checkout (no check may leave untracked files in the checkout).
# All steps run even when one fails; the exit code is non-zero when any failed.
#
# Environment:
#   BASISIT_TEST_ONLY       comma-separated groups or steps to run: python (ruff, format,
#                           lint-imports, mypy, duplicates, pytest), lint (ruff, format,
#                           lint-imports, mypy, duplicates, yamllint, ansible-lint, the promtool
#                           steps), monitoring (promtool-config, promtool-rules, promtool-test),
#                           molecule (all scenarios), or step names (ruff, format, lint-imports,
#                           mypy, duplicates, yamllint, ansible-lint, promtool-config,
#                           promtool-rules, promtool-test, pytest, molecule:<role> (all its
#                           scenarios), molecule:<role>:<scenario>).
#                           Default: everything.
#   BASISIT_PYTEST_ARGS     extra arguments for pytest (e.g. "-k catalog -x")
#   BASISIT_MOLECULE_JOBS   molecule scenarios run at once (default 2)
#   BASISIT_MOLECULE_ALONGSIDE=0  run the scenarios after pytest instead of alongside the
#                           other checks (default: alongside, in the background)
#   BASISIT_TEST_PG_URL     use this PostgreSQL instead of starting one
#   BASISIT_TEST_NO_BOOTSTRAP=1  skip the bootstrap (it only checks, when all is installed)
# Before pytest and molecule, `basisit doctor` checks every prerequisite; when one is missing
# nothing is tested and the doctor's table names the fix.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root" || exit 1

if [ "${BASISIT_TEST_NO_BOOTSTRAP:-0}" != 1 ]; then
  if ! bash "$here/bootstrap.sh" --no-doctor; then
    echo "[test] bootstrap failed; nothing was tested" >&2
    exit 1
  fi
fi
# shellcheck source=env.sh
. "$here/env.sh"
# shellcheck source=start-postgres.sh
. "$here/start-postgres.sh"

# Caches of the checks go outside the checkout (a CI clone is thrown away anyway).
export RUFF_CACHE_DIR="$BASISIT_CACHE/ruff"
export MYPY_CACHE_DIR="$BASISIT_CACHE/mypy"
export PYTHONPYCACHEPREFIX="${PYTHONPYCACHEPREFIX:-$BASISIT_CACHE/pycache}"
# Output must not wait for a terminal that CI does not have.
export PYTHONUNBUFFERED=1 ANSIBLE_FORCE_COLOR="${ANSIBLE_FORCE_COLOR:-0}"

only=",${BASISIT_TEST_ONLY:-all},"
wanted() { # step groups: is this step selected (by name, by one of its groups, or all)?
  [[ "$only" == *",all,"* || "$only" == *",$1,"* ]] && return 0
  local group groups
  IFS=, read -r -a groups <<<"$2"
  for group in "${groups[@]}"; do
    [[ "$only" == *",$group,"* ]] && return 0
  done
  return 1
}

names=()
results=()
durations=()
record() { # name result seconds
  names+=("$1")
  results+=("$2")
  durations+=("$3")
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

run_step() { # name group command...: runs one check, keeps its result and duration
  local name="$1" group="$2"
  shift 2
  wanted "$name" "$group" || return 0
  printf '\n[test] ===== %s: %s\n' "$name" "$*"
  local start rc
  start="$(now)"
  "$@"
  rc=$?
  if [ "$rc" = 0 ]; then
    record "$name" passed "$(elapsed "$start")"
  else
    record "$name" "failed" "$(elapsed "$start")"
    printf '[test] %s failed (exit %s)\n' "$name" "$rc"
  fi
}

skip_step() { # name group reason
  wanted "$1" "$2" || return 0
  printf '\n[test] ===== %s: skipped (%s)\n' "$1" "$3"
  record "$1" "skipped" "0.0"
}

# ------------------------------------------------------------------ molecule pool
# The scenarios use their own container names and networks, so they can run side by side.
# Most of a scenario's time is spent waiting (podman exec round trips, systemd, sshd), so
# BASISIT_MOLECULE_JOBS (default 2) of them run at once. Each writes to its own log, printed
# whole when it ends, so logs never interleave. The longest scenarios (by the durations of the
# last run, kept in $BASISIT_CACHE) start first, which keeps the pool busy until the end.
molecule_times="$BASISIT_CACHE/molecule-durations"

scenario_id() { # roles/<role>/molecule/<scenario> -> <role>, or <role>:<scenario>
  local role="${1#roles/}" name="${1##*/}"
  role="${role%%/*}"
  if [ "$name" = default ]; then echo "$role"; else echo "$role:$name"; fi
}

scenario_order() { # prints the selected scenario ids, longest last duration first
  local scenario id seconds
  for scenario in "${scenarios[@]}"; do
    id="$(scenario_id "$scenario")"
    wanted "molecule:$id" "molecule,molecule:${id%%:*}" || continue
    seconds="$(awk -v r="$id" '$1 == r { s = $2 } END { print s + 0 }' "$molecule_times" 2>/dev/null)"
    printf '%s %s\n' "${seconds:-0}" "$id"
  done | sort -k1,1nr -k2,2 | awk '{ print $2 }'
}

scenario_name() { [[ "$1" == *:* ]] && echo "${1#*:}" || echo default; }

remember_time() { # id seconds: keeps the newest duration per role
  local tmp
  mkdir -p "${molecule_times%/*}" && tmp="$(mktemp "$molecule_times.XXXXXX")" || return 0
  { grep -v "^$1 " "$molecule_times" 2>/dev/null; printf '%s %s\n' "$1" "$2"; } >"$tmp"
  mv "$tmp" "$molecule_times"
}

live() { # a progress line: into the pool's log, and onto the terminal while it runs alongside
  printf '%s\n' "$1"
  if [ -n "${molecule_live:-}" ]; then printf '%s\n' "$1" >&3; fi
}

run_molecule_pool() {
  local jobs="${BASISIT_MOLECULE_JOBS:-2}" logs id
  local -A role_of=() start_of=()
  local -a order=()
  case "$jobs" in '' | *[!0-9]* | 0) jobs=2 ;; esac
  mapfile -t order < <(scenario_order)
  [ "${#order[@]}" -gt 0 ] || return 0
  logs="$(mktemp -d "${TMPDIR:-/tmp}/basisit-molecule.XXXXXX")"
  printf '\n[test] ===== molecule: %s scenario(s), %s at a time\n' "${#order[@]}" "$jobs"

  finish_one() { # waits for any scenario to end and reports it
    local pid rc ended seconds
    wait -n -p pid "${!role_of[@]}"
    rc=$?
    ended="${role_of[$pid]}"
    unset "role_of[$pid]"
    seconds="$(elapsed "${start_of[$ended]}")"
    printf '\n[test] ===== molecule:%s (%s s, exit %s) =====\n' "$ended" "$seconds" "$rc"
    cat "$logs/$ended.log"
    if [ "$rc" = 0 ]; then
      record "molecule:$ended" passed "$seconds"
      remember_time "$ended" "$seconds"
    else
      record "molecule:$ended" failed "$seconds"
      printf '[test] molecule:%s failed (exit %s)\n' "$ended" "$rc"
    fi
    live "$(printf '[test] molecule:%s %s in %s s; %s of %s done' "$ended" \
      "$([ "$rc" = 0 ] && echo passed || echo "FAILED (exit $rc)")" "$seconds" \
      "$((${#names[@]} - done_before))" "${#order[@]}")"
  }

  # Two scenarios of one role never run at once: molecule (ansible-compat) links the role
  # into the shared $ANSIBLE_HOME/roles on start, and two starts race on that link.
  role_busy() { # id: is a scenario of its role running?
    local running
    for running in "${role_of[@]}"; do
      [ "${running%%:*}" = "${1%%:*}" ] && return 0
    done
    return 1
  }
  local done_before="${#names[@]}" next i
  local -a pending=("${order[@]}")
  while [ "${#pending[@]}" -gt 0 ]; do
    next=""
    if [ "${#role_of[@]}" -lt "$jobs" ]; then
      for i in "${!pending[@]}"; do
        if ! role_busy "${pending[$i]}"; then
          next="${pending[$i]}"
          unset "pending[$i]"
          pending=("${pending[@]}")
          break
        fi
      done
    fi
    if [ -z "$next" ]; then
      finish_one
      continue
    fi
    id="$next"
    start_of[$id]="$(now)"
    (cd "roles/${id%%:*}" && exec molecule test -s "$(scenario_name "$id")") \
      </dev/null >"$logs/$id.log" 2>&1 &
    role_of[$!]="$id"
    live "[test] molecule:$id started"
  done
  while [ "${#role_of[@]}" -gt 0 ]; do finish_one; done
  rm -rf "$logs"
}

yaml_dirs=()
for dir in catalog roles playbooks monitoring inventories; do
  [ -d "$dir" ] && yaml_dirs+=("$dir")
done
lint_dirs=()
for dir in roles playbooks; do
  [ -d "$dir" ] && [ -n "$(ls -A "$dir")" ] && lint_dirs+=("$dir")
done
scenarios=()
for scenario in roles/*/molecule/*/; do
  scenario="${scenario%/}"
  [ -f "$scenario/molecule.yml" ] && scenarios+=("$scenario")
done

total_start="$(now)"
# What git does not track or ignore before the checks; the last step fails when a check left more.
untracked() { git -C "$root" status --porcelain --untracked-files=all 2>/dev/null | sed -n 's/^?? //p' | sort; }
untracked_before="$(untracked)"

# The long steps need the machine's prerequisites; the doctor names a missing one in seconds.
if wanted pytest python || { [ "${#scenarios[@]}" -gt 0 ] && [ -n "$(scenario_order)" ]; }; then
  printf '\n[test] ===== doctor: basisit doctor\n'
  doctor_start="$(now)"
  if basisit doctor; then
    record doctor passed "$(elapsed "$doctor_start")"
  else
    echo "[test] a prerequisite is missing (see the doctor's table above); nothing was tested" >&2
    exit 1
  fi
fi

# The molecule scenarios spend about half their time waiting for containers (systemd, sshd,
# podman exec), so they run alongside the other checks, in the background, unless
# BASISIT_MOLECULE_ALONGSIDE=0. They use their own container names, networks and subnets;
# their logs are printed whole when the other checks are done, their progress lines at once.
molecule_pid=""
if [ "${BASISIT_MOLECULE_ALONGSIDE:-1}" != 0 ] && [ "${#scenarios[@]}" -gt 0 ] &&
  [ -n "$(scenario_order)" ]; then
  molecule_dir="$(mktemp -d "${TMPDIR:-/tmp}/basisit-molecule-bg.XXXXXX")"
  exec 3>&1
  (
    names=() results=() durations=()
    molecule_live=1
    run_molecule_pool
    for i in "${!names[@]}"; do
      printf '%s %s %s\n' "${names[$i]}" "${results[$i]}" "${durations[$i]}"
    done >"$molecule_dir/results"
  ) >"$molecule_dir/out" 2>&1 &
  molecule_pid=$!
  printf '\n[test] ===== molecule: the scenarios run alongside (pid %s)\n' "$molecule_pid"
fi

run_step ruff python,lint ruff check .
run_step format python,lint ruff format --check .
# The layers: foundations -> requests -> drivers -> use cases -> renderers (pyproject.toml).
run_step lint-imports python,lint lint-imports --no-logo --cache-dir "$BASISIT_CACHE/import-linter"
# Types of src/ and stacks/ (settings in pyproject.toml).
run_step mypy python,lint mypy
# No copied code: pairs of 8 similar lines or more fail (exemptions in pyproject.toml).
run_step duplicates python,lint \
  pylint --disable=all --enable=duplicate-code --min-similarity-lines=8 --score=n src stacks

if [ "${#yaml_dirs[@]}" -gt 0 ]; then
  run_step yamllint lint yamllint --strict "${yaml_dirs[@]}"
else
  skip_step yamllint lint "no YAML folders yet"
fi

if [ "${#lint_dirs[@]}" -gt 0 ]; then
  run_step ansible-lint lint ansible-lint --offline --profile production "${lint_dirs[@]}"
else
  skip_step ansible-lint lint "no roles or playbooks yet"
fi

# Prometheus: the configuration `basisit monitoring up` generates, the rules, their tests.
promtool_config() {
  local dir rc
  dir="$(mktemp -d "${TMPDIR:-/tmp}/basisit-promtool.XXXXXX")" || return 1
  BASISIT_DATA_DIR="$dir/data" basisit monitoring config -o "$dir/prometheus.yml" &&
    promtool check config "$dir/prometheus.yml"
  rc=$?
  rm -rf "$dir"
  return "$rc"
}
run_step promtool-config lint,monitoring promtool_config
run_step promtool-rules lint,monitoring promtool check rules monitoring/rules/*.yml
run_step promtool-test lint,monitoring promtool test rules monitoring/tests/*.test.yml

pg_started=0
if wanted pytest python; then
  if basisit_pg_start; then
    [ -n "${_BASISIT_PG_OURS:-}" ] && pg_started=1
  else
    echo "[test] PostgreSQL could not be started; tests marked 'postgres' will fail" >&2
  fi
  # shellcheck disable=SC2086  # BASISIT_PYTEST_ARGS is a list of words on purpose
  run_step pytest python pytest -o cache_dir="$BASISIT_CACHE/pytest-cache" ${BASISIT_PYTEST_ARGS:-}
  [ "$pg_started" = 1 ] && basisit_pg_stop
fi

# The pool started alongside the other checks: its logs, then its results.
if [ -n "$molecule_pid" ]; then
  printf '\n[test] ===== molecule: waiting for the scenarios that run alongside\n'
  wait "$molecule_pid"
  exec 3>&-
  cat "$molecule_dir/out"
  while read -r name result seconds; do record "$name" "$result" "$seconds"; done \
    <"$molecule_dir/results"
  rm -rf "$molecule_dir"
elif [ "${#scenarios[@]}" -gt 0 ]; then
  run_molecule_pool
else
  skip_step molecule molecule "no roles/*/molecule/* scenarios yet"
fi

# A check that leaves files in the checkout (a cache, a scenario's ephemeral directory) would
# end up committed by someone: caches belong in $BASISIT_CACHE.
left_behind() {
  local new
  new="$(comm -13 <(printf '%s\n' "$untracked_before") <(untracked) | sed '/^$/d')"
  [ -z "$new" ] && return 0
  echo "[test] the checks left untracked files in the checkout:" >&2
  sed 's/^/[test]   /' <<<"$new" >&2
  return 1
}
run_step clean-checkout python,lint,molecule left_behind

# ------------------------------------------------------------------ summary
total="$(elapsed "$total_start")"
passed=0
failed=0
skipped=0
printf '\n[test] %-28s %-8s %9s\n' "step" "result" "seconds"
for i in "${!names[@]}"; do
  printf '[test] %-28s %-8s %9s\n' "${names[$i]}" "${results[$i]}" "${durations[$i]}"
  case "${results[$i]}" in
    passed) passed=$((passed + 1)) ;;
    failed) failed=$((failed + 1)) ;;
    skipped) skipped=$((skipped + 1)) ;;
  esac
done

if [ "${#names[@]}" = 0 ]; then
  echo "[test] BASISIT_TEST_ONLY='${BASISIT_TEST_ONLY:-}' selects no step" >&2
  exit 2
fi

summary=""
[ "$failed" -gt 0 ] && summary+="$failed failed, "
summary+="$passed passed"
[ "$skipped" -gt 0 ] && summary+=", $skipped skipped"
summary=" $summary in ${total}s "
width=80
pad=$(((width - ${#summary}) / 2))
[ "$pad" -lt 3 ] && pad=3
bar="$(printf '%*s' "$pad" '' | tr ' ' '=')"

echo
if [ "$failed" -gt 0 ]; then
  printf '%s short test summary info %s\n' "$(printf '%*s' 27 '' | tr ' ' '=')" \
    "$(printf '%*s' 28 '' | tr ' ' '=')"
  for i in "${!names[@]}"; do
    [ "${results[$i]}" = failed ] && printf 'FAILED %s\n' "${names[$i]}"
  done
fi
printf '%s%s%s\n' "$bar" "$summary" "$bar"
[ "$failed" = 0 ]
