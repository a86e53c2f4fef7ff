#!/usr/bin/env bash
# The toolkit end to end on this machine: a loopback server, probe-http in
# every output format, a pipeline, and the exit codes. No outside services.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet --bins --examples
bin=target/release
tmp=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$tmp"' EXIT

"$bin/examples/demo_server" --seconds 120 >"$tmp/port" &
server=$!
for _ in $(seq 50); do [ -s "$tmp/port" ] && break; sleep 0.1; done
port=$(head -n1 "$tmp/port")
base="http://127.0.0.1:$port"

show() {
  printf '\n$ %s\n' "$*"
  set +e
  "$@"
  printf '(exit %s)\n' "$?"
  set -e
}

echo "== demo server on $base"
show "$bin/probe-http" "$base/healthz" --json '.status == "UP"' --json '.checks|length > 0' --format table
show "$bin/probe-http" "$base/broken" --name keystone-public --format table
show "$bin/probe-http" -H 127.0.0.1 -p "$port" -u /slow -w 0.5 -c 2 --format nagios
show "$bin/probe-http" "$base/old" -f follow --format jsonl
show "$bin/probe-http" "$base/v3" --json '.version.status == "stable"' --format csv
show "$bin/probe-http" "$base/healthz" --label az=zone-a --format prometheus
show "$bin/probe-http" "http://127.0.0.1:1/" -t 2 -v --format nagios
echo
echo "== --every: three rounds streamed as JSON lines (a pipeline into notify reads these)"
"$bin/probe-http" "$base/healthz" --every 200ms --count 3 | grep -o '"ts":"[^"]*"\|"status":"[a-z]*"' | paste - -
echo
echo "== watch-procs: count like check_procs, then keep a process running"
show "$bin/watch-procs" -C demo_server -w 1: -c 1: --format nagios
printf '%s\n' '[[process]]' 'name = "demo-worker"' 'cmdline = "sleep 4242"' \
  'restart = ["setsid", "-f", "sleep", "4242"]' 'verify_delay = "300ms"' >"$tmp/procs.toml"
pkill -f '^sleep 4242$' 2>/dev/null || true
show "$bin/watch-procs" --config "$tmp/procs.toml" --state "$tmp/procs.json" --format table
show "$bin/watch-procs" --config "$tmp/procs.toml" --state "$tmp/procs.json" --format table
pkill -f '^sleep 4242$' 2>/dev/null || true
echo
echo "== a usage error is one line and exit 3"
show "$bin/probe-http" "$base/healthz" -w 3:2
