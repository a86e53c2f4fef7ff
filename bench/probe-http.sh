#!/usr/bin/env bash
# One-shot probe-http against check_http and check_curl (Debian
# monitoring-plugins) on the same loopback server: alternating runs, median
# wall time and peak RSS, ratios. Writes the figures into BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-300}

plugins=/usr/lib/nagios/plugins
if [ ! -x "$plugins/check_http" ] || [ ! -x "$plugins/check_curl" ]; then
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd=sudo
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends libcurl4 liburiparser1 \
    monitoring-plugins-basic monitoring-plugins-standard
fi
cargo build --release --quiet --bins --examples
mkdir -p bench/out
cc -O2 -o bench/out/measure bench/measure.c

tmp=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$tmp"' EXIT
target/release/examples/demo_server --seconds 900 >"$tmp/port" &
server=$!
for _ in $(seq 50); do [ -s "$tmp/port" ] && break; sleep 0.1; done
port=$(head -n1 "$tmp/port")

table=$(python3 bench/run.py --runs "$runs" --baseline check_http \
  "probe-http=target/release/probe-http -H 127.0.0.1 -p $port -u /healthz --format nagios" \
  "check_http=$plugins/check_http -H 127.0.0.1 -p $port -u /healthz" \
  "check_curl=$plugins/check_curl -H 127.0.0.1 -p $port -u /healthz" \
  "true=/bin/true")

section="## probe-http one-shot (bench/probe-http.sh)

Measured $(date -u +%Y-%m-%d) on $(nproc) cores, $runs alternating runs each after warm-up,
against the same loopback server (\`examples/demo_server.rs\`, \`GET /healthz\`).
Wall time from fork to reap and peak RSS from the child's rusage, both taken
by \`bench/measure.c\` (a C launcher, so the launcher's own memory stays out). \`true\` is the
bare process start.

$table
"
python3 bench/section.py "probe-http one-shot (bench/probe-http.sh)" "$section"
echo "$table"
