#!/usr/bin/env bash
# Debian packages, built with cargo-deb (installed here if missing):
# skyprobe (probe-http, probe-host, watch-procs, canary-peer, notify,
# evacuate: they need nothing but libc) and skyprobe-watch-domains (the one
# that links libvirt).
#   scripts/deb.sh [--profile dev] [OUT_DIR]      default OUT_DIR: target/debian
# Release binaries by default, built here; --profile dev packages the debug
# binaries a test run has already built (the package test does that).
# Units and examples are packaged with the binaries' path there, /usr/bin.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=release
if [ "${1:-}" = --profile ]; then profile=${2:?--profile NAME}; shift 2; fi
out=${1:-target/debian}
if ! cargo deb --version >/dev/null 2>&1; then
  cargo install --locked --quiet cargo-deb --version 3.8.0
fi
if [ "$profile" = release ]; then
  # The six without libvirt; then watch-domains with it (the others stay
  # as built, linked against libc alone).
  cargo build --release --locked --bins
  cargo build --release --locked --features libvirt --bin watch-domains
fi
assets=target/deb-assets
rm -rf "$assets"
mkdir -p "$assets/systemd"
cp -r examples "$assets/examples"
rm -f "$assets/examples/demo_server.rs"
find "$assets/examples" -type f -exec sed -i 's|PATH=/usr/local/bin:|PATH=|; s|/usr/local/bin|/usr/bin|g' {} +
cp "$assets"/examples/systemd/* "$assets/systemd/"
# watch-domains' own go to its package only.
mkdir -p "$assets/watch-domains"
mv "$assets/examples/cron/watch-domains.cron" "$assets/examples/systemd/skyprobe-domains.service" "$assets/watch-domains/"
mkdir -p "$out"
cargo deb --no-build --locked --profile "$profile" --fast -o "$out"
cargo deb --no-build --locked --profile "$profile" --fast --variant watch-domains -o "$out"
ls "$out"/*.deb
