#!/usr/bin/env bash
# The whole test suite: installs what it needs (Debian packages for network
# namespaces, pgrep to compare counts with, CA certificates, libvirt, an SMTP
# server, Keystone, Nova, Neutron, Masakari and what they need, crm_mon, Icinga 2,
# systemd-analyze and cron for the examples, node_exporter for the textfiles,
# Prometheus for canary-peer's metrics and rules,
# cargo-deb and man for the
# Debian packages, nftables for canary-peer's
# lossy links), starts Keystone and the
# OpenStack services on 127.0.0.1, then format check, clippy (with and without
# the libvirt feature), all tests with every binary built.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v ip >/dev/null || need+=(iproute2)
command -v pgrep >/dev/null || need+=(procps)
[ -f /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)
command -v cc >/dev/null || need+=(build-essential)
# watch-domains: the libvirt library to build against, libvirtd (its test
# driver behind a socket the tests own) and virsh to drive it.
command -v pkg-config >/dev/null || need+=(pkg-config)
pkg-config --exists libvirt 2>/dev/null || need+=(libvirt-dev)
command -v libvirtd >/dev/null || need+=(libvirt-daemon)
command -v virsh >/dev/null || need+=(libvirt-clients)
# The shipped examples, run in the tools they are for: Icinga 2's config
# check and checker, systemd-analyze verify on the units, cron's own
# environment for the cron lines.
command -v icinga2 >/dev/null || need+=(icinga2-bin)
command -v systemd-analyze >/dev/null || need+=(systemd)
[ -x /usr/sbin/cron ] || need+=(cron)
# probe-host --verdict: the real crm_mon (reading CIB files the tests write).
command -v crm_mon >/dev/null || need+=(pacemaker-cli-utils)
# canary-peer: nftables drops a share of the packets between the canaries
# in the namespaces the mesh test makes (this kernel has no netem).
command -v nft >/dev/null || need+=(nftables)
# and its /metrics is read by Prometheus's own text parser.
/usr/bin/python3 -c 'import prometheus_client' 2>/dev/null || need+=(python3-prometheus-client)
# node_exporter's textfile collector reads what --format prometheus --output
# writes; Prometheus scrapes canary-peer serve with the shipped rules.
command -v prometheus-node-exporter >/dev/null || need+=(prometheus-node-exporter)
command -v prometheus >/dev/null || need+=(prometheus)
# The Debian package test reads a man page with man.
command -v man >/dev/null || need+=(man-db)
# notify: a real SMTP server (STARTTLS) to mail alerts to.
/usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || need+=(python3-aiosmtpd)
if [ ${#need[@]} -gt 0 ]; then
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd=sudo
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}"
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true
# The Debian packages are made with cargo-deb (scripts/deb.sh).
cargo deb --version >/dev/null 2>&1 || cargo install --locked --quiet cargo-deb --version 3.8.0
# libvirtd will not start without the user its QEMU driver runs as (the
# libvirt-daemon-system package would create it).
if [ "$(id -u)" -eq 0 ]; then
  getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu
  getent passwd libvirt-qemu >/dev/null ||
    useradd -r -g libvirt-qemu -d /nonexistent -s /usr/sbin/nologin libvirt-qemu
fi

# A real Keystone for the OpenStack tests; a second one under a real Nova
# (four fake-driver computes), Neutron (an agent per host) and Masakari with what
# they need, so the services' own token requests never mix with what the
# Keystone tests count. Installed from Debian's packages on first use,
# stopped however the tests end.
ks_dir=$(mktemp -d /tmp/skyprobe-keystone.XXXXXX)
os_ks_dir=$(mktemp -d /tmp/skyprobe-os-keystone.XXXXXX)
os_dir=$(mktemp -d /tmp/skyprobe-openstack.XXXXXX)
trap 'bash scripts/openstack.sh stop "$os_dir"; bash scripts/keystone.sh stop "$os_ks_dir"; bash scripts/keystone.sh stop "$ks_dir"; rm -rf "$ks_dir" "$os_ks_dir" "$os_dir"' EXIT
bash scripts/keystone.sh start "$ks_dir" "${SKYPROBE_KEYSTONE_PORT:-35357}"
bash scripts/keystone.sh start "$os_ks_dir" "${SKYPROBE_OS_KEYSTONE_PORT:-35358}"
# compute10 beside compute1: Nova matches host names as substrings in some
# queries, and evacuate must never take one for the other.
bash scripts/openstack.sh start "$os_dir" "$os_ks_dir/env" compute1,compute2,compute3,compute10
export SKYPROBE_KEYSTONE_ENV="$ks_dir/env" SKYPROBE_REQUIRE_KEYSTONE=1 SKYPROBE_REQUIRE_SMTP=1 SKYPROBE_REQUIRE_TOOLS=1
export SKYPROBE_OPENSTACK_ENV="$os_dir/env" SKYPROBE_REQUIRE_OPENSTACK=1

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo clippy --all-targets --locked --features libvirt -- -D warnings
log=$(mktemp)
cargo test --locked --all-targets --features libvirt 2>&1 | tee "$log"
# One closing line for the whole suite (several test binaries each print
# their own, and the last of them may be one with no tests in it).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
rm -f "$log"
