#!/usr/bin/env bash
# probe-host side by side with check_tcp, check_icmp (Debian's
# monitoring-plugins), fping and blackbox_exporter's tcp prober:
#   1. one port, one-shot (wall and peak RSS, alternating runs);
#   2. ICMP, one host, 5 echoes 80 ms apart (check_icmp's default pacing);
#   3. 1,000 hosts x 3 ports, a fifth of them blackholed, -t 2, in network
#      namespaces this script makes (nothing leaves the machine);
#   4. ICMP to 1,000 loopback addresses at the same pacing as fping.
# Runs as root (namespaces, raw ICMP for check_icmp). Writes BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-200}
probe=${PROBE_HOST:-target/release/probe-host}

plugins=/usr/lib/nagios/plugins
need=()
[ -x "$plugins/check_tcp" ] || need+=(monitoring-plugins-basic)
[ -x "$plugins/check_icmp" ] || need+=(monitoring-plugins-basic)
command -v fping >/dev/null || need+=(fping)
command -v prometheus-blackbox-exporter >/dev/null || need+=(prometheus-blackbox-exporter)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; }
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
cargo build --release --quiet --bins --examples
mkdir -p bench/out
cc -O2 -o bench/out/measure bench/measure.c
measure=bench/out/measure
# bench/measure.c does not search PATH.
fping=$(command -v fping)
mp_version=$(dpkg-query -W -f='${Version}' monitoring-plugins-basic 2>/dev/null || echo "?")
fping_version=$(dpkg-query -W -f='${Version}' fping 2>/dev/null || echo "?")
bb_version=$(dpkg-query -W -f='${Version}' prometheus-blackbox-exporter 2>/dev/null || echo "?")

tmp=$(mktemp -d)
near=skyprobe-bench-near-$$; far=skyprobe-bench-far-$$
cleanup() {
  kill "${server:-}" "${bb:-}" "${sshd:-}" 2>/dev/null || true
  ip netns del "$near" 2>/dev/null || true
  ip netns del "$far" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# 1. One port.
target/release/examples/demo_server --seconds 900 >"$tmp/port" &
server=$!
for _ in $(seq 50); do [ -s "$tmp/port" ] && break; sleep 0.1; done
port=$(head -n1 "$tmp/port")
one_port=$(python3 bench/run.py --runs "$runs" --baseline check_tcp \
  "probe-host=$probe -H 127.0.0.1 -p $port --format nagios" \
  "check_tcp=$plugins/check_tcp -H 127.0.0.1 -p $port" \
  "true=/bin/true")

# 2. ICMP, one host, 5 echoes: 80 ms apart, and as fast as each allows.
icmp_one=$(python3 bench/run.py --runs 20 --warmup 2 --baseline check_icmp \
  "probe-host -I 80ms=$probe -H 127.0.0.1 -n 5 -I 80ms --format nagios" \
  "fping -p 80=$fping -q -c 5 -p 80 127.0.0.1" \
  "probe-host -I 0=$probe -H 127.0.0.1 -n 5 -I 0ms -i 0ms --format nagios" \
  "fping -p 1=$fping -q -c 5 -p 1 -i 1 127.0.0.1" \
  "check_icmp=$plugins/check_icmp -H 127.0.0.1 -n 5")

# 3. 1,000 hosts x 3 ports. $far holds 800 addresses with sshd-like
# listeners on port 22 (111 and 16509 refuse); 200 more addresses are
# blackholed in $near by neighbour entries nobody answers.
ip netns add "$near"; ip netns add "$far"
ip -n "$near" link set lo up; ip -n "$far" link set lo up
ip -n "$near" link add b0 type veth peer name b1
ip -n "$near" link set b1 netns "$far"
ip -n "$near" addr add 10.216.255.1/16 dev b0
ip -n "$near" link set b0 up; ip -n "$far" link set b1 up
hosts="$tmp/hosts.txt"; : >"$hosts"
for i in $(seq 0 999); do
  a="10.216.$((i / 200)).$((i % 200 + 1))"
  echo "$a" >>"$hosts"
  if [ "$i" -lt 800 ]; then
    ip -n "$far" addr add "$a/16" dev b1
  else
    ip -n "$near" neigh add "$a" lladdr 02:00:00:00:02:16 dev b0 nud permanent
  fi
done
# Shuffled, so blackholed hosts are spread through the file.
shuf --random-source=<(yes) "$hosts" -o "$hosts"
ip netns exec "$far" python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 22)); s.listen(4096); s.settimeout(600)
while True:
    try:
        c, _ = s.accept(); c.close()
    except socket.timeout:
        break
' &
sshd=$!
sleep 0.5
in_near() { ip netns exec "$near" "$@"; }
read -r ph_ns ph_kib ph_code < <(in_near "$measure" "$probe" --hosts "$hosts" -p 22,111,16509 -t 2 --format jsonl)
in_near "$probe" --hosts "$hosts" -p 22,111,16509 -t 2 --format jsonl >"$tmp/ph.jsonl" || true
ph_open=$(grep -o '"state":"open"' "$tmp/ph.jsonl" | wc -l)
ph_timeout=$(grep -o '"state":"timeout"' "$tmp/ph.jsonl" | wc -l)
ph_refused=$(grep -o '"state":"refused"' "$tmp/ph.jsonl" | wc -l)

awk '{print "-H", $1, "-p 22\n-H", $1, "-p 111\n-H", $1, "-p 16509"}' "$hosts" >"$tmp/tcp-args"
ct_start=$(date +%s%N)
in_near xargs -P 256 -L 1 "$plugins/check_tcp" -t 2 <"$tmp/tcp-args" >"$tmp/ct.out" 2>&1 || true
ct_ns=$(( $(date +%s%N) - ct_start ))
ct_ok=$(grep -c '^TCP OK' "$tmp/ct.out" || true)

cat >"$tmp/bb.yml" <<YML
modules:
  tcp_connect:
    prober: tcp
    timeout: 2s
YML
ip netns exec "$near" prometheus-blackbox-exporter --config.file "$tmp/bb.yml" \
  --web.listen-address 127.0.0.1:19116 --log.level=error >"$tmp/bb.log" 2>&1 &
bb=$!
for _ in $(seq 100); do in_near curl -fs http://127.0.0.1:19116/metrics >/dev/null 2>&1 && break; sleep 0.1; done
awk '{print "http://127.0.0.1:19116/probe?module=tcp_connect&target=" $1 ":22";
      print "http://127.0.0.1:19116/probe?module=tcp_connect&target=" $1 ":111";
      print "http://127.0.0.1:19116/probe?module=tcp_connect&target=" $1 ":16509"}' "$hosts" >"$tmp/bb-urls"
bb_start=$(date +%s%N)
in_near xargs -P 256 -n 1 curl -s <"$tmp/bb-urls" >"$tmp/bb.out" 2>&1 || true
bb_ns=$(( $(date +%s%N) - bb_start ))
bb_ok=$(grep -c '^probe_success 1' "$tmp/bb.out" || true)
bb_rss=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$bb/status" 2>/dev/null || echo "?")

# 4. ICMP to 1,000 loopback addresses, 3 echoes each: 1 ms between any two
# echoes, 80 ms between two to one address, for both tools.
lo="$tmp/lo.txt"; : >"$lo"
for i in $(seq 0 999); do echo "127.1.$((i / 250)).$((i % 250 + 1))" >>"$lo"; done
read -r pi_ns pi_kib _ < <("$measure" "$probe" --hosts "$lo" -n 3 -i 1ms -I 80ms -t 30 --format jsonl)
"$probe" --hosts "$lo" -n 3 -i 1ms -I 80ms -t 30 --format jsonl >"$tmp/pi.jsonl" || true
pi_recv=$(grep -o '"received":[0-9]*' "$tmp/pi.jsonl" | awk -F: '{s += $2} END {print s}')
read -r fp_ns fp_kib _ < <("$measure" "$fping" -q -c 3 -i 1 -p 80 -f "$lo")
fp_recv=$("$fping" -q -c 3 -i 1 -p 80 -f "$lo" 2>&1 | sed -n 's|.*xmt/rcv/%loss = [0-9]*/\([0-9]*\)/.*|\1|p' | awk '{s += $1} END {print s}')

s() { awk -v ns="$1" 'BEGIN{printf "%.2f", ns/1e9}'; }
mib() { awk -v k="$1" 'BEGIN{printf "%.1f", k/1024}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2fx", a/b}'; }
rate() { awk -v n="$1" -v ns="$2" 'BEGIN{printf "%.0f", n/(ns/1e9)}'; }

section="## probe-host (bench/probe-host.sh)

Measured $(date -u +%Y-%m-%d) on $(nproc) cores as root. Wall time and peak RSS by
\`bench/measure.c\`. Peers: Debian 12's monitoring-plugins $mp_version
(its check_icmp predates 3.0's jitter/MOS/score), fping $fping_version,
blackbox_exporter $bb_version.

### One port, one-shot ($runs alternating runs)

$one_port

### ICMP to 127.0.0.1, 5 echoes (20 alternating runs)

80 ms apart (check_icmp 3.0's default interval), then with no interval.
Debian 12's check_icmp (2.3.3) sends its next echo as soon as a reply
comes, whatever \`-i\` says, so it is shown at its own pace.

$icmp_one

### 1,000 hosts x 3 ports, 200 hosts blackholed, -t 2

In two network namespaces made by the script: 800 addresses where port 22
accepts and 111 and 16509 refuse, 200 whose neighbour entry points at a MAC
nobody has. check_tcp and blackbox_exporter's tcp prober (timeout 2 s) are
driven by \`xargs -P 256\` (one check_tcp or one curl per port: a plain
shell loop would wait 2 s for each of the 600 blackholed ports, 20 minutes).

| tool | wall | vs one timeout | peak RSS | open seen |
|---|---|---|---|---|
| probe-host | $(s "$ph_ns") s | $(ratio "$ph_ns" 2000000000) | $(mib "$ph_kib") MiB | $ph_open (refused $ph_refused, timeout $ph_timeout; exit $ph_code) |
| check_tcp x 3000, 256 at once | $(s "$ct_ns") s | $(ratio "$ct_ns" 2000000000) | n/a (3000 processes) | $ct_ok |
| blackbox_exporter, 256 at once | $(s "$bb_ns") s | $(ratio "$bb_ns" 2000000000) | $bb_rss MiB (exporter) | $bb_ok |

### ICMP to 1,000 loopback addresses, 3 echoes each, -i 1 ms, -p/-I 80 ms

| tool | wall | echoes/s | replies of 3000 | peak RSS |
|---|---|---|---|---|
| probe-host | $(s "$pi_ns") s | $(rate 3000 "$pi_ns") | $pi_recv | $(mib "$pi_kib") MiB |
| fping | $(s "$fp_ns") s | $(rate 3000 "$fp_ns") | $fp_recv | $(mib "$fp_kib") MiB |
"
python3 bench/section.py "probe-host (bench/probe-host.sh)" "$section"
echo "$section"
