#!/usr/bin/env bash
# The whole test suite: installs what it needs (Debian packages for network
# namespaces, pgrep to compare counts with, CA certificates, Keystone), starts
# a Keystone on 127.0.0.1, then format check, clippy, all tests.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v ip >/dev/null || need+=(iproute2)
command -v pgrep >/dev/null || need+=(procps)
[ -f /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)
command -v cc >/dev/null || need+=(build-essential)
if [ ${#need[@]} -gt 0 ]; then
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd=sudo
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}"
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true

# A real Keystone for the OpenStack tests (installed from Debian's packages
# on first use), stopped however the tests end.
ks_dir=$(mktemp -d /tmp/skyprobe-keystone.XXXXXX)
trap 'bash scripts/keystone.sh stop "$ks_dir"; rm -rf "$ks_dir"' EXIT
bash scripts/keystone.sh start "$ks_dir" "${SKYPROBE_KEYSTONE_PORT:-35357}"
export SKYPROBE_KEYSTONE_ENV="$ks_dir/env" SKYPROBE_REQUIRE_KEYSTONE=1

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
log=$(mktemp)
cargo test --locked --all-targets 2>&1 | tee "$log"
# One closing line for the whole suite (several test binaries each print
# their own, and the last of them may be one with no tests in it).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
rm -f "$log"
