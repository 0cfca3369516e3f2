#!/usr/bin/env bash
# The main job, end to end for three demo Kommunen on the local target:
# onboard -> request -> submit (priced) -> approve -> desired state -> provision + configure.
# Safe to run again: steps already done are skipped, a second converge changes nothing.
#
#   scripts/demo.sh            # everything
#   BASISIT_DEMO_SKIP_CONVERGE=1 scripts/demo.sh   # catalog and requests only
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The doctor runs below, as the demo's first step, instead of at the end of bootstrap.
bash "$ROOT/scripts/bootstrap.sh" --no-doctor
# shellcheck source=env.sh
. "$ROOT/scripts/env.sh"
export BASISIT_DATA_DIR="${BASISIT_DATA_DIR:-$ROOT/.data/demo}"
export BASISIT_ACTOR="${BASISIT_ACTOR:-demo}"
mkdir -p "$BASISIT_DATA_DIR"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

onboarded() {
  basisit kommunen show "$1" --format json | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["onboarded"] else 1)'
}

has_requests() {
  [ "$(basisit request list --ags "$1" --format json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" -gt 0 ]
}

# Creates a draft and prints its id.
new_request() {
  basisit request create "$@" >/dev/null
  basisit request list --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["id"])'
}

approve_all() { # approve every submitted request of the Kommune, by ops and by finance where needed
  local ags=$1
  basisit request list --ags "$ags" --state submitted --format json | python3 -c '
import json, sys
for r in json.load(sys.stdin):
    for role in r["approvals_missing"]:
        print(r["id"], role)' | while read -r id role; do
    if [ "$role" = finance ]; then
      basisit request approve "$id" --as finance --actor finanzen-ego --comment "Budget 2027 freigegeben"
    else
      basisit request approve "$id" --as ops --actor ops-ego --comment "Standardangebot"
    fi
  done
}

step "Preflight: every prerequisite, checked by using it"
basisit doctor

step "Catalog"
basisit catalog validate
basisit catalog list

step "Onboarding: Saarbrücken, Tholey, Landkreis St. Wendel"
onboard() { # ags contact email cost-centre address grob
  local ags=$1
  if onboarded "$ags"; then echo "$ags already onboarded"; return; fi
  basisit kommunen onboard "$ags" --contact-name "$2" --contact-email "$3" --cost-centre "$4" \
    --billing-address "$5" --leitweg-id "$(python3 -c "from basisit.leitweg import make; print(make('$ags'))")"
}
onboard 10041100 "IT-Leitstelle Saarbrücken" it@saarbruecken.example "KST-1100-IT" "Rathausplatz 1, 66111 Saarbrücken"
onboard 10046118 "Hauptamt Tholey" hauptamt@tholey.example "KST-4711" "Im Kloster 1, 66636 Tholey"
onboard 10046 "Landratsamt St. Wendel, IT" it@lkwnd.example "KST-0046-01" "Mommstraße 21-31, 66606 St. Wendel"

step "Requests: created, checked against the catalog and priced on submit"
if ! has_requests 10041100; then
  a=$(new_request --ags 10041100 --service dns --plan zone)
  b=$(new_request --ags 10041100 --service webhosting --plan S --instance www -p site_name=www)
  c=$(new_request --ags 10041100 --service fileshare --plan S --instance dateiablage -p quota_gib=1 -p shares=verwaltung,bauamt)
  d=$(new_request --ags 10041100 --service mail --plan M --instance post \
      -p mailboxes="$(python3 -c 'print(",".join(["rathaus"] + [f"amt{i:03d}" for i in range(1, 200)]))')")
  basisit request submit "$a" "$b" "$c" "$d"
fi
if ! has_requests 10046118; then
  a=$(new_request --ags 10046118 --service dns --plan zone)
  b=$(new_request --ags 10046118 --service fileshare --plan S --instance dateiablage -p quota_gib=1)
  c=$(new_request --ags 10046118 --service backup --plan S --instance sicherung -p capacity_gib=2)
  basisit request submit "$a" "$b" "$c"
fi
if ! has_requests 10046; then
  a=$(new_request --ags 10046 --service directory --plan S --instance verzeichnis)
  b=$(new_request --ags 10046 --service backup --plan S --instance sicherung --schutzbedarf hoch -p capacity_gib=2)
  c=$(new_request --ags 10046 --service vpn --plan S --instance vpn -p peers=aussenstelle,homeoffice)
  basisit request submit "$a" "$b" "$c"
fi

step "Approval by eGo-Saar (and finance above the threshold)"
for ags in 10041100 10046118 10046; do approve_all "$ags"; done
basisit request list

step "Desired state (contract 1)"
for ags in 10041100 10046118 10046; do
  basisit desired-state --ags "$ags" --output "$BASISIT_DATA_DIR/desired-state-$ags.yaml"
done

if [ -n "${BASISIT_DEMO_SKIP_CONVERGE:-}" ]; then
  step "Done (converge skipped)"
  exit 0
fi

step "Provision and configure on the local target (deploy, then Ansible)"
basisit converge --all --target local

step "Monitoring: Prometheus scrapes every server and the suite's exporter (127.0.0.1)"
basisit monitoring up
# The first scrape of each target comes within one scrape interval; wait for it (bounded).
for _ in $(seq 1 30); do
  basisit monitoring status --format json | python3 -c '
import json, sys
targets = json.load(sys.stdin)["targets"]
sys.exit(0 if targets and all(t["health"] == "up" for t in targets) else 1)' && break
  sleep 5
done
basisit monitoring status

step "Usage ledger: this hour so far (provisional), and the month per Kommune and instance"
basisit ledger import --provisional
basisit usage --month "$(TZ=Europe/Berlin date +%Y-%m)"

step "Billing: the running month (vorläufig), for finance and for each Kommune"
month="$(TZ=Europe/Berlin date +%Y-%m)"
reports="$BASISIT_DATA_DIR/reports/$month"
mkdir -p "$reports"
for fmt in $(basisit report --list-formats); do
  basisit report --month "$month" --format "$fmt" -o "$reports"
done
for ags in 10041100 10046118 10046; do
  basisit report --month "$month" --ags "$ags" --format csv -o "$reports"
done
basisit report funding -o "$reports"
echo "reports of $month: $reports"
ls -1 "$reports"

step "E-invoices: drafts of the running month (XRechnung 3.0, validated; no number consumed)"
drafts="$BASISIT_DATA_DIR/invoices/drafts/$month"
mkdir -p "$drafts"
for ags in 10041100 10046118 10046; do
  basisit invoice --month "$month" --ags "$ags" -o "$drafts"
done
echo "draft invoices of $month: $drafts"
ls -1 "$drafts"

step "Where things stand"
basisit status
basisit request list
basisit inventory --ags 10046118
