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
  ip link del skbv0 2>/dev/null || true
  ip netns del "$far" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
ip netns add "$far"
ip -n "$far" link set lo up
ip link add skbv0 type veth peer name skbv1
ip link set skbv1 netns "$far"
for n in 230 231 232; do ip addr add "10.$n.255.1/16" dev skbv0; done
ip link set skbv0 up; ip -n "$far" link set skbv1 up
hosts="$tmp/hosts.toml"; : >"$hosts"
addrs="$tmp/addrs.txt"; : >"$addrs"
: >"$tmp/far.batch"; : >"$tmp/near.batch"
for i in $(seq 0 999); do
  hp="$((i / 200)).$((i % 200 + 1))"
  printf '[[host]]\nname = "compute%d"\naddress = "10.230.%s"\nnetworks = { tenant = "10.231.%s", storage = "10.232.%s" }\n\n' \
    "$((i + 1))" "$hp" "$hp" "$hp" >>"$hosts"
  for n in 230 231 232; do
    echo "10.$n.$hp" >>"$addrs"
    # Every fifth host is blackholed: a neighbour entry nobody answers.
    if [ $((i % 5)) -eq 4 ]; then
      echo "neigh add 10.$n.$hp lladdr 02:00:00:00:02:30 dev skbv0 nud permanent" >>"$tmp/near.batch"
    else
      echo "addr add 10.$n.$hp/16 dev skbv1" >>"$tmp/far.batch"
    fi
  done
done
ip -batch "$tmp/near.batch"
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
with="networks only"
if [ -n "$os_env" ]; then
  # shellcheck disable=SC1090
  . "$os_env"
  export OS_AUTH_URL="$KEYSTONE_URL" OS_USERNAME=admin OS_PASSWORD="$KEYSTONE_ADMIN_PASSWORD" \
    OS_PROJECT_NAME=admin OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default
  args+=(--openstack)
  with="--openstack: the real Nova and Neutron of scripts/openstack.sh"
fi
# One run to warm the token cache and the page cache, then three measured.
"$probe" "${args[@]}" >"$tmp/v.jsonl" || true
best_ns=""; best_kib=0
for _ in 1 2 3; do
  read -r ns kib _ < <("$measure" "$probe" "${args[@]}")
  if [ -z "$best_ns" ] || [ "$ns" -lt "$best_ns" ]; then best_ns=$ns; fi
  [ "$kib" -gt "$best_kib" ] && best_kib=$kib
done
"$probe" "${args[@]}" >"$tmp/v.jsonl" || true
alive=$(grep -c '"verdict":"alive"' "$tmp/v.jsonl" || true)
suspect=$(grep -c '"verdict":"suspect"' "$tmp/v.jsonl" || true)
dead=$(grep -c '"verdict":"dead"' "$tmp/v.jsonl" || true)
unknown=$(grep -c '"verdict":"unknown"' "$tmp/v.jsonl" || true)

read -r nm_ns nm_kib _ < <("$measure" "$nmap" -Pn -n -p 22,111,16509 -iL "$addrs" -oG "$tmp/nmap.txt")
nm_open=$(grep -o '22/open' "$tmp/nmap.txt" | wc -l)

s() { awk -v ns="$1" 'BEGIN{printf "%.2f", ns/1e9}'; }
mib() { awk -v k="$1" 'BEGIN{printf "%.1f", k/1024}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2fx", a/b}'; }

section="## probe-host --verdict (bench/probe-host-verdict.sh)

Measured $(date -u +%Y-%m-%d) on $(nproc) cores as root, $with. 1,000
hosts with a management, a tenant and a storage address each (3,000
addresses) in a network namespace the script makes; ports 22 (accepts), 111
and 16509 (refuse) and one ICMP echo on every address; every fifth host
blackholed on all three networks (a neighbour entry nobody answers).
\`--probe-timeout 2s\`, so one timeout is 2 s. probe-host: the best wall of
three runs and the largest peak RSS (\`bench/measure.c\`); nmap $nmap_version:
one run, \`nmap -Pn -n -p 22,111,16509 -iL\` over the same addresses (what
Sonny ran, host by host).

| tool | wall | vs one timeout | peak RSS | result |
|---|---|---|---|---|
| probe-host --verdict | $(s "$best_ns") s | $(ratio "$best_ns" 2000000000) | $(mib "$best_kib") MiB | $alive alive, $suspect suspect, $dead dead, $unknown unknown |
| nmap | $(s "$nm_ns") s | $(ratio "$nm_ns" 2000000000) | $(mib "$nm_kib") MiB | $nm_open addresses with 22 open, no verdict |
"
python3 bench/section.py "probe-host --verdict (bench/probe-host-verdict.sh)" "$section"
echo "$section"
