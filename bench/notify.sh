#!/usr/bin/env bash
# notify's throughput: one million probe-http records over 10,000 keys on
# stdin, (a) all ok, so no transitions (pure state bookkeeping), and
# (b) with 1% of the records making a transition (0.5% fire, 0.5% resolve)
# delivered to a loopback webhook (one nginx worker answering 200). Records
# per second and peak RSS over RUNS runs each, with --state and its spool on
# this disk (each transition is an fsynced spool file and a state save).
# Writes the figures into BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-5}
records=${RECORDS:-1000000}
keys=${KEYS:-10000}

command -v nginx >/dev/null || {
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd=sudo
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq nginx-light
}
cargo build --release --quiet --bins
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

/usr/bin/python3 - "$tmp" "$records" "$keys" <<'PY'
import json, sys
tmp, n, keys = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def rec(k, status):
    return json.dumps({"ts": "2026-11-23T18:40:00.123Z", "host": "mon1", "check": "probe-http",
        "target": f"https://svc{k}.example/", "name": f"svc{k}", "status": status,
        "summary": f"HTTP 200 ({k % 97} ms)", "duration_ms": 3.1,
        "metrics": [{"name": "time", "value": 0.0031, "unit": "s", "min": 0}],
        "trace": [{"step": "connect", "ok": True, "ms": 0.4}], "details": {"status_code": 200},
        "labels": {"az": "zone-a"}}, separators=(",", ":")) + "\n"
with open(f"{tmp}/ok.jsonl", "w") as ok, open(f"{tmp}/flip.jsonl", "w") as flip:
    for i in range(n):
        k = i % keys
        ok.write(rec(k, "ok"))
        # In each round over the keys, one key in 200 is critical: it
        # fires, and its record in the next round (ok) resolves it. 0.5%
        # fire and 0.5% resolve: 1% of the records are transitions.
        r = i // keys
        flip.write(rec(k, "critical" if k % 200 == r % 200 else "ok"))
PY

measure() { # name file -> "records/s rss_kib transitions"
  local name=$1 file=$2 best=() rss=()
  for r in $(seq "$runs"); do
    rm -rf "$tmp/state"*
    out=$(bench/out/measure /bin/sh -c "exec target/release/notify --webhook http://127.0.0.1:$port/hook --state $tmp/state.json --no-flap-detection < $file > $tmp/out.jsonl")
    read -r ns kib code <<<"$out"
    best+=("$(/usr/bin/python3 -c "print(round($records / ($ns / 1e9)))")")
    rss+=("$kib")
  done
  delivered=$(grep -c '"event":"delivered"' "$tmp/out.jsonl" || true)
  printf '%s\n' "${best[@]}" | sort -n | awk -v name="$name" -v rss="$(printf '%s\n' "${rss[@]}" | sort -n | tail -1)" -v d="$delivered" \
    '{ v[NR] = $1 } END { printf "| %s | %d | %d | %d | %.1f | %d |\n", name, v[1], v[int((NR + 1) / 2)], v[NR], rss / 1024, d }'
}

table="| input | slowest run (records/s) | median | fastest | peak RSS (MiB) | alerts delivered |
|---|---|---|---|---|---|
$(measure "no transitions" "$tmp/ok.jsonl")
$(measure "1% transitions to a loopback webhook" "$tmp/flip.jsonl")"

section="## notify throughput (bench/notify.sh)

Measured $(date -u +%Y-%m-%d) on $(nproc) cores: $records probe-http records
(about 350 bytes each) over $keys keys piped into one notify with \`--state\`
(and so a spool) on this machine's disk, $runs runs per input, wall time and
peak RSS from \`bench/measure.c\`. With transitions every alert is an
fsynced spool file, a state save before delivery and a POST to one nginx
worker on 127.0.0.1. The goal is at least 100,000 records/s without
transitions; no peer was named to compare with.

$table
"
/usr/bin/python3 bench/section.py "notify throughput (bench/notify.sh)" "$section"
echo "$table"
