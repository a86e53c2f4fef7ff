#!/usr/bin/env bash
# probe-host --verdict for 1,000 compute hosts, 3 networks x 3 ports each
# (22 accepts, 111 and 16509 refuse), a fifth of the hosts blackholed on
# every network, side by side with what Sonny ran for the same question:
# nmap -Pn -p 22,111,16509 over the same 3,000 addresses (Debian's nmap).
# The hosts live in a network namespace this script makes, reached through
# a veth pair of its own; nothing leaves the machine.
#   bench/probe-host-verdict.sh [OPENSTACK_ENV]
# With OPENSTACK_ENV (scripts/openstack.sh writes it), the verdicts also ask
# the real Nova and Neutron (--openstack). Runs as root. Writes BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
os_env=${1:-}
probe=${PROBE_HOST:-target/release/probe-host}
command -v nmap >/dev/null || {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nmap
}
cargo build --release --quiet --bins
mkdir -p bench/out
cc -O2 -o bench/out/measure bench/measure.c
measure=bench/out/measure
nmap=$(command -v nmap)
nmap_version=$(dpkg-query -W -f='${Version}' nmap 2>/dev/null || echo "?")

tmp=$(mktemp -d)
far=skyprobe-vbench-$$
cleanup() {
  kill "${listener:-}" 2>/dev/null || true
  for n in 230 231 232; do ip route del "10.$n.0.0/16" 2>/dev/null || true; done
  ip link del skbv0 2>/dev/null || true
  ip netns del "$far" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
# The hosts sit behind a router, as in a data centre: this machine ARPs for
# one next hop, not for 3,000 neighbours (past the kernel's neighbour table,
# gc_thresh3 = 1024 by default). The router ($far) holds the live hosts'
# addresses and drops the blackholed ones silently.
ip netns add "$far"
ip -n "$far" link set lo up
ip link add skbv0 type veth peer name skbv1
ip link set skbv1 netns "$far"
ip addr add 10.229.0.1/30 dev skbv0
ip -n "$far" addr add 10.229.0.2/30 dev skbv1
ip link set skbv0 up; ip -n "$far" link set skbv1 up
for n in 230 231 232; do ip route add "10.$n.0.0/16" via 10.229.0.2; done
ip netns exec "$far" sysctl -q -w net.ipv4.ip_forward=1
hosts="$tmp/hosts.toml"; : >"$hosts"
addrs="$tmp/addrs.txt"; : >"$addrs"
: >"$tmp/far.batch"
for i in $(seq 0 999); do
  hp="$((i / 200)).$((i % 200 + 1))"
  printf '[[host]]\nname = "compute%d"\naddress = "10.230.%s"\nnetworks = { tenant = "10.231.%s", storage = "10.232.%s" }\n\n' \
    "$((i + 1))" "$hp" "$hp" "$hp" >>"$hosts"
  for n in 230 231 232; do
    echo "10.$n.$hp" >>"$addrs"
    # Every fifth host is blackholed on all its networks.
    if [ $((i % 5)) -eq 4 ]; then
      echo "route add blackhole 10.$n.$hp/32" >>"$tmp/far.batch"
    else
      echo "addr add 10.$n.$hp/32 dev lo" >>"$tmp/far.batch"
    fi
  done
done
ip -n "$far" -batch "$tmp/far.batch"
ip netns exec "$far" python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 22)); s.listen(4096); s.settimeout(900)
while True:
    try:
        c, _ = s.accept(); c.close()
    except socket.timeout:
        break
' &
listener=$!
sleep 0.5

args=(--verdict --hosts "$hosts" --samples 1 --probe-timeout 2s -n 1 --icmp-wait 1s -t 30 --format jsonl)
# One run to warm the token and page caches, then three measured: the best
# wall, the largest peak RSS, and the verdicts of the last run.
measure_verdict() { # label, extra flags...
  local label=$1; shift
  "$probe" "${args[@]}" "$@" >"$tmp/v.jsonl" || true
  local best="" kib_max=0 ns kib
  for _ in 1 2 3; do
    read -r ns kib _ < <("$measure" "$probe" "${args[@]}" "$@")
    if [ -z "$best" ] || [ "$ns" -lt "$best" ]; then best=$ns; fi
    [ "$kib" -gt "$kib_max" ] && kib_max=$kib
  done
  "$probe" "${args[@]}" "$@" >"$tmp/v.jsonl" || true
  cp "$tmp/v.jsonl" "bench/out/verdict-${label// /-}.jsonl"
  local counts=""
  for v in alive suspect dead unknown; do
    counts+="$(grep -c "\"verdict\":\"$v\"" "$tmp/v.jsonl" || true) $v, "
  done
  rows+="| probe-host --verdict, $label | $(s "$best") s | $(ratio "$best" 2000000000) | $(mib "$kib_max") MiB | ${counts%, } |
"
}
s() { awk -v ns="$1" 'BEGIN{printf "%.2f", ns/1e9}'; }
mib() { awk -v k="$1" 'BEGIN{printf "%.1f", k/1024}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2fx", a/b}'; }
rows=""
measure_verdict "networks only"
with="the verdicts from the hosts' networks alone"
if [ -n "$os_env" ]; then
  # shellcheck disable=SC1090
  . "$os_env"
  export OS_AUTH_URL="$KEYSTONE_URL" OS_USERNAME=admin OS_PASSWORD="$KEYSTONE_ADMIN_PASSWORD" \
    OS_PROJECT_NAME=admin OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default
  measure_verdict "--openstack" --openstack
  with+=", and with --openstack (the real Nova and Neutron of scripts/openstack.sh: nova-compute services, agents, one listing of every server for the hosts that did not answer)"
fi

read -r nm_ns nm_kib _ < <("$measure" "$nmap" -Pn -n -p 22,111,16509 -iL "$addrs" -oG "$tmp/nmap.txt")
nm_open=$(grep -o '22/open' "$tmp/nmap.txt" | wc -l)

section="## probe-host --verdict (bench/probe-host-verdict.sh)

Measured $(date -u +%Y-%m-%d) on $(nproc) cores as root: $with. 1,000
hosts with a management, a tenant and a storage address each (3,000
addresses) in a network namespace the script makes; ports 22 (accepts), 111
and 16509 (refuse) and one ICMP echo on every address; every fifth host
blackholed on all three networks (dropped silently by the router the hosts
sit behind).
\`--probe-timeout 2s\`, so one timeout is 2 s. probe-host: the best wall of
three runs and the largest peak RSS (\`bench/measure.c\`); nmap $nmap_version:
one run, \`nmap -Pn -n -p 22,111,16509 -iL\` over the same addresses (what
Sonny ran, host by host).

| tool | wall | vs one timeout | peak RSS | result |
|---|---|---|---|---|
${rows%$'\n'}
| nmap | $(s "$nm_ns") s | $(ratio "$nm_ns" 2000000000) | $(mib "$nm_kib") MiB | $nm_open addresses with 22 open, no verdict |
"
python3 bench/section.py "probe-host --verdict (bench/probe-host-verdict.sh)" "$section"
echo "$section"
