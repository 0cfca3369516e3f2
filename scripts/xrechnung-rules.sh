#!/usr/bin/env bash
# Fetches (once) the rule sets that validate an XRechnung 3.0 CII invoice offline and prints the
# directory that holds them: $BASISIT_CACHE/xrechnung/<versions key>/ with
#   xsd/CrossIndustryInvoice_100pD16B.xsd (+ the three schemas it imports)
#   en16931/EN16931-CII-validation.xslt     (CEN EN 16931 CII schematron as XSLT 2.0)
#   xrechnung/XRechnung-CII-validation.xslt (KoSIT's XRechnung CII schematron as XSLT 2.0)
#   licenses/                               (each jar's LICENSE and NOTICE)
# from three Maven Central jars at the versions pinned in scripts/versions.env, each checked
# against Maven Central's published .sha1. Safe to re-run: a complete directory is reused (the
# marker is written last, so an interrupted run is done again); two callers do not race (flock).
#
# Why jars: KoSIT's own validator configuration is not on any registry reachable here; the phive
# rule jars carry the same schematron, already compiled to XSLT (basisit.invoicing runs it with
# saxonche), and ph-cii carries the UN/CEFACT XSD.
#
# Usage: scripts/xrechnung-rules.sh [--force]
#   --force   fetch and extract again even when the directory is complete
set -euo pipefail

# shellcheck source=env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

force=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h | --help)
      sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "xrechnung-rules: unknown option '$arg' (try --help)" >&2
      exit 2
      ;;
  esac
done

log() { printf '[xrechnung] %s\n' "$*" >&2; }
die() {
  printf '[xrechnung] error: %s\n' "$*" >&2
  exit 1
}

MAVEN="${BASISIT_MAVEN_URL:-https://repo1.maven.org/maven2}"
# The same key as basisit.invoicing.validate.RULES.key: a new pin gets a directory of its own.
KEY="cii-d16b-${XRECHNUNG_CII_D16B_VERSION}_en16931-${XRECHNUNG_EN16931_JAR_VERSION}_xrechnung-${XRECHNUNG_JAR_VERSION}"
BASE="$BASISIT_CACHE/xrechnung"
DIR="$BASE/$KEY"
MARKER="$DIR/.basisit-complete"

# fetch GROUP_PATH ARTIFACT VERSION: the jar into $work, verified against its .sha1.
fetch() {
  local url="$MAVEN/$1/$2/$3/$2-$3.jar" jar="$work/$2.jar" want have
  log "downloading $2 $3"
  curl -fsS --retry 3 --connect-timeout 20 --max-time 300 -o "$jar" "$url" ||
    die "cannot download $url"
  # Maven's .sha1 is the bare hash, some older ones add the file name after it.
  want="$(curl -fsS --retry 3 --connect-timeout 20 --max-time 60 "$url.sha1" | awk 'NR == 1 { print $1 }')" ||
    die "cannot download $url.sha1"
  have="$(sha1sum "$jar" | cut -d' ' -f1)"
  [[ "$want" =~ ^[0-9a-f]{40}$ ]] || die "$url.sha1 holds no SHA-1 ('$want')"
  [ "$have" = "$want" ] || die "$2-$3.jar has SHA-1 $have, Maven Central publishes $want"
}

# extract ARTIFACT TARGET_DIR MEMBER...: only those members, without their jar paths.
extract() {
  local jar="$work/$1.jar" target="$DIR/$2"
  shift 2
  mkdir -p "$target"
  unzip -q -j -o "$jar" "$@" -d "$target" || die "$(basename "$jar") lacks one of: $*"
}

# contains FILE TEXT: the rule set's own title names the version we pinned.
contains() {
  grep -qF "$2" "$1" || die "$1 does not name '$2': not the pinned rule set"
}

if [ "$force" = 0 ] && [ -f "$MARKER" ]; then
  echo "$DIR"
  exit 0
fi

mkdir -p "$BASE"
# One fetch at a time: a second caller waits, then finds the marker.
exec 9>"$DIR.lock"
flock 9
if [ "$force" = 1 ] || [ ! -f "$MARKER" ]; then
  start=$SECONDS
  rm -rf "$DIR"
  # Under the lock and per key: a killed run's leftovers are removed by the next one.
  work="$DIR.download"
  rm -rf "$work"
  mkdir -p "$work"
  trap 'rm -rf "$work"' EXIT

  fetch com/helger/cii ph-cii-d16b "$XRECHNUNG_CII_D16B_VERSION"
  fetch com/helger/phive/rules phive-rules-en16931 "$XRECHNUNG_EN16931_JAR_VERSION"
  fetch com/helger/phive/rules phive-rules-xrechnung "$XRECHNUNG_JAR_VERSION"

  # The invoice schema imports only these three; the jar's code lists are not referenced.
  xsd=external/schemas/d16b/data/standard
  extract ph-cii-d16b xsd "$xsd/CrossIndustryInvoice_100pD16B.xsd" \
    "$xsd/CrossIndustryInvoice_QualifiedDataType_100pD16B.xsd" \
    "$xsd/CrossIndustryInvoice_ReusableAggregateBusinessInformationEntity_100pD16B.xsd" \
    "$xsd/CrossIndustryInvoice_UnqualifiedDataType_100pD16B.xsd"
  extract phive-rules-en16931 en16931 \
    "external/schematron/$XRECHNUNG_EN16931_RULES_VERSION/cii/EN16931-CII-validation.xslt"
  extract phive-rules-xrechnung xrechnung \
    "external/schematron/$XRECHNUNG_VERSION/XRechnung-CII-validation.xslt"
  contains "$DIR/en16931/EN16931-CII-validation.xslt" \
    "Schematron version $XRECHNUNG_EN16931_RULES_VERSION"
  contains "$DIR/xrechnung/XRechnung-CII-validation.xslt" \
    "Schematron Version $XRECHNUNG_SCHEMATRON_VERSION - XRechnung $XRECHNUNG_VERSION"
  for artifact in ph-cii-d16b phive-rules-en16931 phive-rules-xrechnung; do
    mkdir -p "$DIR/licenses/$artifact"
    unzip -q -j -o "$work/$artifact.jar" LICENSE NOTICE -d "$DIR/licenses/$artifact" ||
      die "$artifact.jar has no LICENSE and NOTICE"
  done

  {
    echo "XRECHNUNG_CII_D16B_VERSION=$XRECHNUNG_CII_D16B_VERSION"
    echo "XRECHNUNG_EN16931_JAR_VERSION=$XRECHNUNG_EN16931_JAR_VERSION"
    echo "XRECHNUNG_EN16931_RULES_VERSION=$XRECHNUNG_EN16931_RULES_VERSION"
    echo "XRECHNUNG_JAR_VERSION=$XRECHNUNG_JAR_VERSION"
    echo "XRECHNUNG_VERSION=$XRECHNUNG_VERSION"
    echo "XRECHNUNG_SCHEMATRON_VERSION=$XRECHNUNG_SCHEMATRON_VERSION"
  } >"$MARKER.tmp"
  mv "$MARKER.tmp" "$MARKER"
  log "rules in $DIR ($((SECONDS - start)) s)"
fi
echo "$DIR"
