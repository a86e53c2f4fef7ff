#!/usr/bin/env bash
# notify under an alert storm: 2,500 keys that each fail, recover, fail and
# recover in one stdin burst — 10,000 transitions at once — delivered to a
# loopback webhook (one nginx worker answering 200), with --state and its
# spool on this disk. Wall time, peak RSS and alerts delivered over RUNS
# runs. OLD=path/to/notify adds the same runs of another build beside it
# (e.g. the build before the spool's group commit). Writes BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-3}
keys=${KEYS:-2500}

command -v nginx >/dev/null || {
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd=sudo
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq nginx-light
}
cargo build --release --quiet --bin notify
mkdir -p bench/out
cc -O2 -o bench/out/measure bench/measure.c

tmp=$(mktemp -d)
trap '[ -f "$tmp/nginx.pid" ] && kill "$(cat "$tmp/nginx.pid")" 2>/dev/null; rm -rf "$tmp"' EXIT
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$tmp/nginx"
cat >"$tmp/nginx.conf" <<CONF
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $tmp/nginx; proxy_temp_path $tmp/nginx; fastcgi_temp_path $tmp/nginx;
  uwsgi_temp_path $tmp/nginx; scgi_temp_path $tmp/nginx;
  server { listen 127.0.0.1:$port; location / { return 200 "ok\n"; } }
}
CONF
nginx -c "$tmp/nginx.conf" -p "$tmp"

/usr/bin/python3 - "$tmp" "$keys" <<'PY'
import json, sys
tmp, keys = sys.argv[1], int(sys.argv[2])
def rec(k, status):
    return json.dumps({"ts": "2026-11-23T18:40:00.123Z", "host": "mon1", "check": "probe-http",
        "target": f"https://svc{k}.example/", "name": f"svc{k}", "status": status,
        "summary": f"svc{k} is {status}", "duration_ms": 3.1,
        "metrics": [{"name": "time", "value": 0.0031, "unit": "s", "min": 0}],
        "trace": [{"step": "connect", "ok": True, "ms": 0.4}], "details": {"status_code": 200},
        "labels": {"az": "zone-a"}}, separators=(",", ":")) + "\n"
with open(f"{tmp}/storm.jsonl", "w") as f:
    for status in ["critical", "ok", "critical", "ok"]:
        for k in range(keys):
            f.write(rec(k, status))
PY

measure() { # name binary -> table row
  local name=$1 bin=$2 walls=() rss=()
  for r in $(seq "$runs"); do
    rm -rf "$tmp/state"*
    out=$(bench/out/measure /bin/sh -c "exec $bin --webhook http://127.0.0.1:$port/hook --state $tmp/state.json --no-flap-detection -t 300 < $tmp/storm.jsonl > $tmp/out.jsonl")
    read -r ns kib code <<<"$out"
    walls+=("$(/usr/bin/python3 -c "print(f'{$ns / 1e9:.2f}')")")
    rss+=("$kib")
  done
  delivered=$(grep -c '"event":"delivered"' "$tmp/out.jsonl" || true)
  printf '%s\n' "${walls[@]}" | sort -n | awk -v name="$name" -v rss="$(printf '%s\n' "${rss[@]}" | sort -n | tail -1)" -v d="$delivered" \
    '{ v[NR] = $1 } END { printf "| %s | %.2f | %.2f | %.2f | %.1f | %d |\n", name, v[1], v[int((NR + 1) / 2)], v[NR], rss / 1024, d }'
}

rows=$(measure "notify (this build)" target/release/notify)
if [ -n "${OLD:-}" ]; then
  rows="$rows
$(measure "notify (OLD: ${OLD_NAME:-$OLD})" "$OLD")"
fi
table="| build | fastest run (s) | median | slowest | peak RSS (MiB) | alerts delivered |
|---|---|---|---|---|---|
$rows"

section="## notify under an alert storm (bench/notify-storm.sh)

Measured $(date -u +%Y-%m-%d) on $(nproc) cores: $((4 * keys)) transitions in one stdin
burst ($keys keys, each critical, ok, critical, ok) into one notify with
\`--state\` (and so a spool) on this machine's disk, delivered to one nginx
worker on 127.0.0.1; $runs runs per build, wall time and peak RSS from
\`bench/measure.c\`. The goal is every alert delivered, in order per key,
within 10 s. The test suite runs the same storm against a loopback
receiver and checks the order (\`an_alert_storm_of_10000_transitions…\`).

$table
"
/usr/bin/python3 bench/section.py "notify under an alert storm (bench/notify-storm.sh)" "$section"
echo "$table"
