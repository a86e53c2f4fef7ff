#!/usr/bin/env bash
# canary-peer side by side with nginx and blackbox_exporter, on loopback:
#   1. serve: requests/s and peak RSS on one core (taskset), wrk from the
#      other, against nginx (one worker) answering a static /health; then
#      1,000 connections at once against serve's --max-connections bound;
#   2. probe: CPU time per peer and peers/s for 100 loopback canaries,
#      against blackbox_exporter's http and icmp probes of the same peers;
#   3. /metrics series of one canary with 1,000 peers in 10 zones, against
#      a histogram per peer pair.
# Runs as root (blackbox's ICMP prober). Writes BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
canary=${CANARY_PEER:-target/release/canary-peer}
secs=${SECONDS_PER_RUN:-10}

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || need+=(nginx-light)
command -v prometheus-blackbox-exporter >/dev/null || need+=(prometheus-blackbox-exporter)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; }
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
cargo build --release --quiet --bin canary-peer
nginx_version=$(nginx -v 2>&1 | sed 's|.*/||')
wrk_version=$(dpkg-query -W -f='${Version}' wrk 2>/dev/null || echo "?")
bb_version=$(dpkg-query -W -f='${Version}' prometheus-blackbox-exporter 2>/dev/null || echo "?")

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

hwm() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN{printf "%.1f", k/1024}'; }
# CPU seconds (user + system) of a process so far.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f", ($14 + $15) / hz}' "/proc/$1/stat"; }
wait_http() { for _ in $(seq 100); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.05; done; echo "no answer at $1" >&2; exit 1; }
# requests/s and errors of a wrk run: wrk ARGS...
wrk_rate() {
  taskset -c 1 wrk "$@" >"$tmp/wrk" 2>&1 || true
  rps=$(awk '/Requests\/sec/ {printf "%.0f", $2}' "$tmp/wrk")
  errs=$(awk '/Socket errors/ {gsub(",", ""); n += $4 + $6 + $8 + $10} /Non-2xx/ {n += $4} END {print n + 0}' "$tmp/wrk")
  p99=$(awk '/99%/ {print $2}' "$tmp/wrk")
  echo "${rps:-0} ${errs:-0} ${p99:-?}"
}

# 1. serve against nginx, one core each (the same core, one at a time).
taskset -c 0 "$canary" serve --listen 127.0.0.1:18201 --id bench --az az1 --no-udp 2>"$tmp/serve.err" &
serve=$!; pids+=("$serve")
wait_http http://127.0.0.1:18201/health
idle_kib=$(hwm "$serve")
cat >"$tmp/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $tmp/nginx.pid;
error_log $tmp/nginx.err;
events { worker_connections 2048; }
http {
  access_log off;
  server {
    listen 127.0.0.1:18202;
    location = /health {
      default_type application/json;
      return 200 '{"id":"bench","datacenter":"","az":"az1","uptime":1.0,"version":"0","time":0,"udp_port":0}';
    }
  }
}
NGINX
taskset -c 0 nginx -c "$tmp/nginx.conf" &
ngx=$!; pids+=("$ngx")
wait_http http://127.0.0.1:18202/health
read -r s_rps s_err s_p99 < <(wrk_rate -t1 -c50 -d"${secs}s" --latency http://127.0.0.1:18201/health)
read -r n_rps n_err n_p99 < <(wrk_rate -t1 -c50 -d"${secs}s" --latency http://127.0.0.1:18202/health)
s_kib=$(hwm "$serve")
ngx_kib=0
for p in $(pgrep -f "nginx -c $tmp/nginx.conf" || true) $(pgrep -P "$ngx" || true); do
  k=$(hwm "$p" 2>/dev/null || echo 0); ngx_kib=$((ngx_kib + k))
done
# 1,000 connections at once: serve holds --max-connections (512), a new
# client taking the place of the oldest idle one; /health answers meanwhile.
taskset -c 1 wrk -t1 -c1000 -d"${secs}s" http://127.0.0.1:18201/health >"$tmp/wrk1000" 2>&1 &
w1000=$!
sleep 2
flood_health=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 5 http://127.0.0.1:18201/health || true)
wait "$w1000" || true
flood_rps=$(awk '/Requests\/sec/ {printf "%.0f", $2}' "$tmp/wrk1000")
flood_errs=$(awk '/Socket errors/ {gsub(",", ""); print "connect " $4 ", read " $6 ", write " $8 ", timeout " $10}' "$tmp/wrk1000")
flood_kib=$(hwm "$serve")
kill "$serve" "$ngx" 2>/dev/null || true

# 2. 100 canaries on loopback; one probe of all of them.
: >"$tmp/peers.txt"
for i in $(seq 1 100); do
  a="127.0.5.$i"
  "$canary" serve --listen "$a:18300" --id "p$i" --az "az$((i % 5))" 2>/dev/null &
  pids+=("$!")
  echo "http://$a:18300" >>"$tmp/peers.txt"
done
for i in $(seq 1 100); do wait_http "http://127.0.5.$i:18300/health"; done
# CPU (user + system) of one run, its wall ns and exit code: the run is
# the only child of a Python that reads its children's rusage.
probe_cpu() {
  local start end c code
  start=$(date +%s%N)
  python3 - "$@" <<'PY'
import os, resource, subprocess, sys
p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{r.ru_utime + r.ru_stime:.4f} {p.returncode}", file=open(os.environ["CPU_OUT"], "w"))
PY
  end=$(date +%s%N)
  read -r c code <"$CPU_OUT"
  echo "$c $((end - start)) $code"
}
export CPU_OUT="$tmp/cpu"
# The median of $rounds runs (by CPU), as "cpu wall code".
rounds=${ROUNDS:-7}
median_of() {
  local i
  for i in $(seq "$rounds"); do "$@"; done | sort -n | sed -n "$(( (rounds + 1) / 2 ))p"
}
read -r min_cpu min_ns min_code < <(median_of probe_cpu "$canary" probe --peers-file "$tmp/peers.txt" -n 1 --packets 1 --packet-wait 200ms --id bench -t 10)
read -r def_cpu def_ns def_code < <(median_of probe_cpu "$canary" probe --peers-file "$tmp/peers.txt" --id bench -t 30)

cat >"$tmp/bb.yml" <<YML
modules:
  http_2xx:
    prober: http
    timeout: 5s
  icmp:
    prober: icmp
    timeout: 5s
YML
prometheus-blackbox-exporter --config.file "$tmp/bb.yml" --web.listen-address 127.0.0.1:19117 --log.level=error >"$tmp/bb.log" 2>&1 &
bb=$!; pids+=("$bb")
wait_http http://127.0.0.1:19117/metrics
bb_round() { # module, URL suffix per peer: CPU seconds of the exporter and wall ns for 100 probes, 32 at once
  local module=$1 before start end after ok
  sed "s|^http://\(.*\):18300$|http://127.0.0.1:19117/probe?module=$module\&target=$2|" "$tmp/peers.txt" >"$tmp/bb-urls"
  before=$(cpu "$bb"); start=$(date +%s%N)
  xargs -P 32 -n 1 curl -s <"$tmp/bb-urls" >"$tmp/bb.out" 2>&1 || true
  end=$(date +%s%N); after=$(cpu "$bb")
  ok=$(grep -c '^probe_success 1' "$tmp/bb.out" || true)
  echo "$(awk -v a="$after" -v b="$before" 'BEGIN{printf "%.4f", a - b}') $((end - start)) $ok"
}
# The target per peer: http://ADDR:18300/health, or ADDR.
bb_round http_2xx 'http://\1:18300/health' >/dev/null # warm-up
read -r bh_cpu bh_ns bh_ok < <(median_of bb_round http_2xx 'http://\1:18300/health')
read -r bi_cpu bi_ns bi_ok < <(median_of bb_round icmp '\1')
bb_kib=$(hwm "$bb")

# 3. /metrics of one canary with 1,000 peers in 10 zones (refusing ports:
# a pair's series exist whether it answers or not).
: >"$tmp/mesh.toml"
for i in $(seq 0 999); do
  printf '[[peer]]\nurl = "http://127.0.6.%d:%d"\nid = "m%d"\naz = "z%d"\n' $((i / 250 + 1)) $((20000 + i)) "$i" $((i % 10)) >>"$tmp/mesh.toml"
done
"$canary" serve --listen 127.0.0.1:18203 --id me --az z0 --no-udp --peers-file "$tmp/mesh.toml" \
  -n 1 --packets 1 --packet-wait 50ms --traffic-interval 2s --concurrency 64 2>/dev/null &
pids+=("$!")
wait_http http://127.0.0.1:18203/health
series=0
for _ in $(seq 150); do
  curl -s http://127.0.0.1:18203/metrics >"$tmp/metrics"
  if grep -q '^canary_peer_failing_pairs' "$tmp/metrics"; then
    series=$(grep -vc '^#' "$tmp/metrics"); break
  fi
  sleep 0.2
done
pair_series=$(grep -c '^canary_peer_latency_seconds_bucket{src_az="z0",dst_az="z1"' "$tmp/metrics" || true)
# A histogram per pair: buckets + sum + count, and loss and failing gauges.
per_pair=$(( 1000 * (pair_series + 2 + 2) ))

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b == 0) print "n/a"; else printf "%.2fx", a/b}'; }
s() { awk -v ns="$1" 'BEGIN{printf "%.2f", ns/1e9}'; }
per() { awk -v c="$1" 'BEGIN{printf "%.2f", c * 1000 / 100}'; }
rate() { awk -v ns="$1" 'BEGIN{printf "%.0f", 100/(ns/1e9)}'; }

section="## canary-peer (bench/canary-peer.sh)

Measured $(date -u +%Y-%m-%d) on $(nproc) cores as root, all on loopback. Peers:
nginx $nginx_version, wrk $wrk_version, blackbox_exporter $bb_version.

### serve: one core, wrk -t1 -c50 for ${secs} s against /health

The server pinned to core 0 (\`taskset\`), wrk to core 1. nginx runs one
worker and answers a static body of the same shape; canary-peer builds its
/health (uptime, clock) per request.

| server | requests/s | p99 | errors | peak RSS |
|---|---:|---:|---:|---:|
| canary-peer serve | $s_rps | $s_p99 | $s_err | $(mib "$s_kib") MiB (idle $(mib "$idle_kib") MiB) |
| nginx (master + worker) | $n_rps | $n_p99 | $n_err | $(mib "$ngx_kib") MiB |
| ratio | $(ratio "$s_rps" "$n_rps") | | | $(ratio "$s_kib" "$ngx_kib") |

1,000 connections at once (wrk -c1000, ${secs} s; serve holds at most
\`--max-connections\` 512, a new client taking the place of the oldest idle one): $flood_rps requests/s,
socket errors $flood_errs; a /health asked meanwhile answered
\`$flood_health\` (status and seconds; 000: the connection was closed unanswered); peak RSS after it $(mib "$flood_kib") MiB.

### probe: 100 canaries on loopback

CPU is user + system time of the prober: the canary-peer process, or the
blackbox_exporter process over its 100 probes (asked by curl, 32 at once;
curl's own CPU not counted). \`-n 1 --packets 1\` is one UDP echo, one TCP
handshake and one HTTP request per peer; the defaults are 20 UDP echoes,
10 handshakes and 10 requests. Each row is the median (by CPU) of $rounds
runs. On loopback the prober's CPU includes the kernel's delivery to the
peer, for both tools alike.

| prober | per peer | CPU per peer | wall for 100 | peers/s | CPU vs blackbox http+icmp | result |
|---|---|---:|---:|---:|---:|---|
| canary-peer probe -n 1 --packets 1 | UDP+TCP+HTTP | $(per "$min_cpu") ms | $(s "$min_ns") s | $(rate "$min_ns") | $(ratio "$min_cpu" "$(awk -v a="$bh_cpu" -v b="$bi_cpu" 'BEGIN{print a + b}')") | exit $min_code |
| canary-peer probe (defaults) | 20 UDP, 10 TCP, 10 HTTP | $(per "$def_cpu") ms | $(s "$def_ns") s | $(rate "$def_ns") | $(ratio "$def_cpu" "$(awk -v a="$bh_cpu" -v b="$bi_cpu" 'BEGIN{print a + b}')") | exit $def_code |
| blackbox_exporter http_2xx | 1 HTTP | $(per "$bh_cpu") ms | $(s "$bh_ns") s | $(rate "$bh_ns") | | $bh_ok of 100 succeeded |
| blackbox_exporter icmp | 1 echo | $(per "$bi_cpu") ms | $(s "$bi_ns") s | $(rate "$bi_ns") | | $bi_ok of 100 succeeded |

blackbox_exporter's peak RSS: $(mib "$bb_kib") MiB.

### /metrics series: one canary, 1,000 peers in 10 zones

Counted from a running serve's /metrics (its own gauges included): $series
series. Its zone-pair latency histogram has $pair_series bucket series, so a
histogram per peer pair (buckets, sum, count, plus loss and failing gauges)
would be $per_pair series for this one canary, and 1,000 canaries scraped
together would hold 1,000 times either figure.
"
python3 bench/section.py "canary-peer (bench/canary-peer.sh)" "$section"
echo "$section"
