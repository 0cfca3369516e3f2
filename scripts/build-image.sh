#!/usr/bin/env bash
# Builds the local target's container images, each only when its inputs changed:
#   localhost/basisit-base:bookworm   Debian minbase (debootstrap) with systemd, sshd, python3
#   localhost/basisit-roles:bookworm  base + every package in scripts/image-packages.txt
# Each image carries a label with the hash of its inputs; a matching label means "up to date".
# The debootstrap root is kept in $BASISIT_CACHE/rootfs-<hash> (outside the checkout).
#
# Usage: scripts/build-image.sh [--base-only] [--force]
set -euo pipefail

# shellcheck source=env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

only_base=0
force=0
for arg in "$@"; do
  case "$arg" in
    --base-only) only_base=1 ;;
    --force) force=1 ;;
    -h | --help)
      sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "build-image: unknown option '$arg' (try --help)" >&2
      exit 2
      ;;
  esac
done

log() { printf '[image] %s\n' "$*"; }
die() {
  printf '[image] error: %s\n' "$*" >&2
  exit 1
}

[ "$(id -u)" = 0 ] || die "debootstrap and podman import need root (running as uid $(id -u))"
for tool in debootstrap podman tar sha256sum flock; do
  command -v "$tool" >/dev/null || die "'$tool' not found; run scripts/bootstrap.sh first"
done

suite="$BASISIT_DEBIAN_SUITE"
base_includes="systemd,systemd-sysv,dbus,python3,openssh-server,sudo,iproute2,nftables,ca-certificates,procps,python3-apt"
packages_file="$BASISIT_ROOT/scripts/image-packages.txt"

# Turns the debootstrap result into a container root: runs on the host against directory $1,
# never inside it, so nothing is executed from the new root.
customize_rootfs() {
  local root="$1"

  # apt: Debian's mirrors (release, updates, security) in deb822 form, nothing else.
  rm -f "$root/etc/apt/sources.list"
  mkdir -p "$root/etc/apt/sources.list.d"
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $BASISIT_DEBIAN_MIRROR
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $BASISIT_DEBIAN_SECURITY_MIRROR
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF

  # Nothing in a container may start apt on its own: the timers would reach the mirror at
  # random times and hold the dpkg lock while a role runs apt. Masked, not just disabled.
  local unit
  for unit in apt-daily.timer apt-daily-upgrade.timer apt-daily.service apt-daily-upgrade.service; do
    ln -sfn /dev/null "$root/etc/systemd/system/$unit"
  done
  rm -f "$root/etc/systemd/system/timers.target.wants/apt-daily.timer" \
    "$root/etc/systemd/system/timers.target.wants/apt-daily-upgrade.timer"

  # Every container must get its own identity: machine-id is created at first boot (an empty
  # file tells systemd so), and so are the SSH host keys (below), never shared via the image.
  # The roles image does the same for the snakeoil TLS key (install.sh below);
  # tests/integration/test_image_identity.py checks all three on two containers.
  : >"$root/etc/machine-id"
  rm -f "$root/var/lib/dbus/machine-id"
  ln -s /etc/machine-id "$root/var/lib/dbus/machine-id"
  rm -f "$root"/etc/ssh/ssh_host_*
  cat >"$root/etc/systemd/system/basisit-ssh-hostkeys.service" <<'EOF'
[Unit]
Description=Generate this server's own SSH host keys on first boot
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target ssh.service
EOF
  mkdir -p "$root/etc/systemd/system/multi-user.target.wants" "$root/etc/systemd/system/ssh.service.wants"
  ln -sfn ../basisit-ssh-hostkeys.service "$root/etc/systemd/system/multi-user.target.wants/"
  ln -sfn ../basisit-ssh-hostkeys.service "$root/etc/systemd/system/ssh.service.wants/"

  # podman provides these per container; the build host's copies must not leak into the image.
  : >"$root/etc/resolv.conf"
  rm -f "$root/etc/hostname"
  printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"

  # Downloaded .debs and indexes are rebuilt by any apt-get update; keep the image small.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  mkdir -p "$root/var/lib/apt/lists/partial"
}

label_of() { # image label -> value, empty when the image or label is missing
  podman image inspect --format "{{ index .Labels \"$2\" }}" "$1" 2>/dev/null | sed 's/<no value>//' || true
}

hash_text() { sha256sum | cut -c1-16; }

mkdir -p "$BASISIT_CACHE"
# One build at a time on this machine (bootstrap, CI and people share the image store).
exec 9>"$BASISIT_CACHE/build-image.lock"
if ! flock -n 9; then
  log "another build-image run holds $BASISIT_CACHE/build-image.lock; waiting"
  flock 9
fi

# ---------------------------------------------------------------- base image
base_key="$(
  {
    echo "recipe=1 suite=$suite mirror=$BASISIT_DEBIAN_MIRROR security=$BASISIT_DEBIAN_SECURITY_MIRROR"
    echo "include=$base_includes"
    declare -f customize_rootfs
  } | hash_text
)"
if [ "$force" = 0 ] && [ "$(label_of "$BASISIT_BASE_IMAGE" basisit.base.hash)" = "$base_key" ]; then
  log "base: cached $BASISIT_BASE_IMAGE ($base_key)"
else
  rootfs="$BASISIT_CACHE/rootfs-$base_key"
  if [ "$force" = 1 ] || [ ! -e "$rootfs.done" ]; then
    rm -rf "$rootfs" "$rootfs.tmp" "$rootfs.done"
    log "base: debootstrap $suite (minbase) into $rootfs"
    start=$SECONDS
    # debootstrap prints one line per step (I: Retrieving/Validating/Unpacking ...): progress.
    if ! debootstrap --variant=minbase --components=main --include="$base_includes" \
      "$suite" "$rootfs.tmp" "$BASISIT_DEBIAN_MIRROR" 2>&1 | sed -u 's/^/[image]   /'; then
      die "debootstrap failed (log: $rootfs.tmp/debootstrap/debootstrap.log)"
    fi
    customize_rootfs "$rootfs.tmp"
    mv "$rootfs.tmp" "$rootfs"
    touch "$rootfs.done"
    log "base: debootstrap done in $((SECONDS - start)) s ($(du -sh "$rootfs" | cut -f1))"
  else
    log "base: reusing root $rootfs"
  fi
  # Older roots are superseded by this one.
  for old in "$BASISIT_CACHE"/rootfs-*; do
    case "$old" in "$rootfs" | "$rootfs.done") continue ;; esac
    [ -e "$old" ] && rm -rf "$old"
  done
  log "base: importing $BASISIT_BASE_IMAGE"
  start=$SECONDS
  tar --numeric-owner --xattrs -C "$rootfs" -c . |
    podman import --quiet \
      --change 'CMD ["/sbin/init"]' \
      --change "LABEL basisit.base.hash=$base_key" \
      --message "basisit base $suite $base_key" \
      - "$BASISIT_BASE_IMAGE" >/dev/null
  log "base: imported in $((SECONDS - start)) s"
fi

# ---------------------------------------------------------------- can podman run it?
# Every later step starts containers (the roles build's RUN, the local servers, molecule): if
# podman cannot, say so now with podman's own words, not minutes into a build.
probe_log="$BASISIT_CACHE/logs/podman-probe.log"
mkdir -p "${probe_log%/*}"
if ! timeout 120 podman run --rm --pull=never "$BASISIT_BASE_IMAGE" /bin/true >"$probe_log" 2>&1; then
  said="$(grep -v '^[[:space:]]*$' "$probe_log" | tail -n 1)"
  hint=""
  if [[ "$said" == *netavark*"No such file or directory"* ]] && ! command -v iptables >/dev/null; then
    hint=" podman's network backend netavark runs iptables, which is missing: apt-get install iptables."
  fi
  die "podman cannot run a container from $BASISIT_BASE_IMAGE: ${said:-no output} (log $probe_log).$hint Run 'basisit doctor' (after 'source scripts/env.sh') for every prerequisite and its fix."
fi
log "podman: runs containers from $BASISIT_BASE_IMAGE"

[ "$only_base" = 1 ] && exit 0

# ---------------------------------------------------------------- roles image
[ -r "$packages_file" ] || die "$packages_file is missing"
mapfile -t packages < <(sed 's/#.*//; s/[[:space:]]//g; /^$/d' "$packages_file" | sort -u)
for pkg in "${packages[@]}"; do
  [[ "$pkg" =~ ^[a-z0-9][a-z0-9+.-]+$ ]] || die "$packages_file: '$pkg' is not a Debian package name"
done

build_dir="$(mktemp -d /tmp/basisit-image.XXXXXX)"
trap 'rm -rf "$build_dir"' EXIT
# policy-rc.d keeps maintainer scripts from starting services during the build only (it is not in
# the image). Units the packages enable are disabled again: a role enables and starts exactly the
# services it needs, so a server does not run every daemon of every role. Packages are installed
# without Recommends: list everything a role needs here explicitly.
cat >"$build_dir/install.sh" <<'EOF'
#!/bin/sh
set -eu
# Native units and SysV scripts (slapd has only the latter) that start at boot.
enabled() {
  systemctl list-unit-files --no-legend --no-pager --state=enabled | awk '{print $1}'
  for link in /etc/rc2.d/S*; do [ -e "$link" ] && echo "$(basename "$link" | cut -c4-).service"; done
}
printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
chmod 0755 /usr/sbin/policy-rc.d
enabled | sort -u >/tmp/enabled.before
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# debootstrap took the release only; bring the base up to bookworm-updates/-security first.
apt-get upgrade -y -q
apt-get install -y -q --no-install-recommends "$@"
enabled | sort -u >/tmp/enabled.after
for unit in $(comm -13 /tmp/enabled.before /tmp/enabled.after); do
  echo "disabling $unit (a role enables it when needed)"
  systemctl disable "$unit"
done
rm -f /usr/sbin/policy-rc.d /tmp/enabled.before /tmp/enabled.after
# ssl-cert made a snakeoil key during this build; in the image every server would share it
# (Debian's PostgreSQL cluster serves TLS with it, Postfix and Dovecot default to it). It goes,
# with its hash link, and each server makes its own at first boot, before sshd lets Ansible in
# (make-ssl-cert also holds the debconf lock that apt in a role would wait for).
find /etc/ssl/certs -maxdepth 1 -type l -lname ssl-cert-snakeoil.pem -delete
rm -f /etc/ssl/certs/ssl-cert-snakeoil.pem /etc/ssl/private/ssl-cert-snakeoil.key
cat >/etc/systemd/system/basisit-snakeoil.service <<'UNIT'
[Unit]
Description=Generate this server's own snakeoil TLS certificate on first boot
ConditionPathExists=!/etc/ssl/private/ssl-cert-snakeoil.key
ConditionFileIsExecutable=/usr/sbin/make-ssl-cert
Before=ssh.service postgresql.service postgresql@15-main.service postfix.service postfix@-.service
Before=dovecot.service slapd.service nginx.service

[Service]
Type=oneshot
Environment=DEBIAN_FRONTEND=noninteractive
ExecStart=/usr/sbin/make-ssl-cert generate-default-snakeoil --force-overwrite
RemainAfterExit=yes
TimeoutStartSec=60

[Install]
WantedBy=multi-user.target
UNIT
systemctl enable basisit-snakeoil.service
apt-get clean
EOF
roles_recipe="$(cat "$build_dir/install.sh")"
roles_key="$(
  {
    echo "recipe=1 base=$base_key"
    printf '%s\n' "${packages[@]}"
    echo "$roles_recipe"
  } | hash_text
)"
if [ "$force" = 0 ] && [ "$(label_of "$BASISIT_ROLES_IMAGE" basisit.roles.hash)" = "$roles_key" ]; then
  log "roles: cached $BASISIT_ROLES_IMAGE ($roles_key, ${#packages[@]} packages)"
  exit 0
fi

cat >"$build_dir/Containerfile" <<EOF
FROM $BASISIT_BASE_IMAGE
COPY install.sh /tmp/install.sh
RUN sh /tmp/install.sh ${packages[*]} && rm -f /tmp/install.sh
LABEL basisit.base.hash=$base_key basisit.roles.hash=$roles_key
CMD ["/sbin/init"]
EOF
log "roles: building $BASISIT_ROLES_IMAGE with ${#packages[@]} packages"
start=$SECONDS
mkdir -p "$BASISIT_CACHE/logs"
build_log="$BASISIT_CACHE/logs/roles-image.log"
# Progress: build steps, a count of configured packages, the disabled units; the rest in the log.
set +e
podman build --pull=never --layers=false -t "$BASISIT_ROLES_IMAGE" "$build_dir" 2>&1 |
  tee "$build_log" | awk '
    /^STEP / { print "[image]   " substr($0, 1, 100); fflush(); next }
    /^Setting up / { n++; if (n % 25 == 0) { printf "[image]   %d packages set up\n", n; fflush() }; next }
    /^disabling |^E: |[Ee]rror/ { print "[image]   " $0; fflush() }
    END { if (n) printf "[image]   %d packages set up\n", n }'
rc="${PIPESTATUS[0]}"
set -e
if [ "$rc" != 0 ]; then
  tail -n 25 "$build_log" | sed 's/^/[image]   /' >&2
  die "podman build of $BASISIT_ROLES_IMAGE failed (exit $rc, full log $build_log)"
fi
log "roles: built in $((SECONDS - start)) s"
# Superseded, untagged builds of our two images only.
podman image prune -f --filter "label=basisit.base.hash" >/dev/null 2>&1 || true
