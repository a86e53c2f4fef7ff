#!/usr/bin/env bash
# The toolkit end to end on this machine: a loopback server, probe-http in
# every output format, a pipeline, and the exit codes. No outside services.
set -euo pipefail
cd "$(dirname "$0")/.."

# watch-domains needs libvirt to build; install it when we may (as the
# test script does), else show the rest of the toolkit without it.
features=()
if ! pkg-config --exists libvirt 2>/dev/null && [ "$(id -u)" -eq 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libvirt-dev pkg-config >/dev/null
fi
pkg-config --exists libvirt 2>/dev/null && features=(--features libvirt)
cargo build --release --quiet --bins --examples "${features[@]}"
bin=target/release
tmp=$(mktemp -d)
canaries=()
trap 'kill "$server" "${canaries[@]}" 2>/dev/null || true; rm -rf "$tmp"' EXIT

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
echo "== probe-host: the demo server's port, a closed one and 127.0.0.1's ICMP, in one record"
echo "   (ICMP needs root, CAP_NET_RAW or net.ipv4.ping_group_range; without them it is UNKNOWN and says so)"
show "$bin/probe-host" -H 127.0.0.1 -p "$port,1" --icmp -n 3 -I 20ms --format table
show "$bin/probe-host" -H 127.0.0.1 -p "$port,1" --per-port --format nagios
echo
echo "== probe-host --verdict: is a host dead? (each loopback address answers, so all are alive;"
echo "   the last record is the run's gates: control targets, cliff, brake)"
show "$bin/probe-host" --verdict -H 127.0.0.1 -H 127.0.0.2 -p "$port,1" --control "127.0.0.1:$port" \
  -n 2 -I 20ms --state "$tmp/verdict.json" --format table
printf '%s\n' '[[rule]]' 'when = { networks = "up" }' 'verdict = "alive"' >"$tmp/table.toml"
echo "(a decision table that decides only one case is refused before anything is probed)"
show "$bin/probe-host" --verdict -H 127.0.0.1 --table "$tmp/table.toml"
echo "== evacuate reads those verdicts from a pipe: none is dead, so there is nothing to do and no cloud"
echo "   is asked (a dead host needs OpenStack credentials, a fence command and --execute to be acted on)"
printf '\n$ %s\n' "$bin/probe-host --verdict -H 127.0.0.1 -p $port -n 1 -I 20ms --state $tmp/verdict2.json | $bin/evacuate --format table"
set +e
"$bin/probe-host" --verdict -H 127.0.0.1 -p "$port" -n 1 -I 20ms --state "$tmp/verdict2.json" | "$bin/evacuate" --format table
printf '(exit %s)\n' "${PIPESTATUS[1]}"
set -e
echo "(a host name is matched exactly, never as a pattern: Nova itself would find compute10 for compute1)"
show "$bin/evacuate" 'compute*'
echo
echo "== canary-peer: three canaries (zones az1..az3 on 127.0.0.31..33) that measure each other,"
echo "   then a one-shot probe of all three with every canary's own view, and the zone x zone matrix"
cpeers=http://127.0.0.31:18131,http://127.0.0.32:18131,http://127.0.0.33:18131
for i in 1 2 3; do
  PEER_ENDPOINTS=$cpeers CANARY_ID=c$i AVAILABILITY_ZONE=az$i \
    "$bin/canary-peer" serve --listen "127.0.0.3$i:18131" --traffic-interval 1s -n 3 --packets 5 2>"$tmp/canary$i.err" &
  canaries+=($!)
done
sleep 2.5   # each has finished its first cycle (phase under half an interval, then one cycle)
show "$bin/canary-peer" probe --peers "$cpeers" --az az0 -n 3 --packets 5 --format table
"$bin/canary-peer" probe --peers "$cpeers" --mesh -n 3 --packets 5 >"$tmp/mesh.jsonl" || true
show "$bin/canary-peer" matrix <"$tmp/mesh.jsonl"
echo "   and az1's canary asked for an indirect check of the demo server's port (what probe-host can do):"
show "$bin/probe-http" "http://127.0.0.31:18131/connectivity?target=127.0.0.1:$port" --json '.status == "ok"' --format table
kill "${canaries[@]}" 2>/dev/null || true
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
if [ -x "$bin/watch-domains" ]; then
  echo "== watch-domains on libvirt's built-in test hypervisor (four guests in a node XML)"
  node() { # name, a digit for its UUID, runstate (1 running, 3 paused, 5 shutoff, 6 crashed)
    printf "<domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'><name>%s</name><uuid>%s</uuid><memory>65536</memory><os><type>hvm</type></os><test:runstate>%s</test:runstate></domain>\n" \
      "$1" "0000000$2-0000-0000-0000-00000000000$2" "$3"
  }
  { echo "<node>"; node web1 1 1; node db1 2 3; node off1 3 5; echo "</node>"; } >"$tmp/node.xml"
  show "$bin/watch-domains" --connect "test://$tmp/node.xml" --state "$tmp/domains.json" --format table
  { echo "<node>"; node web1 1 6; node db1 2 3; node off1 3 5; echo "</node>"; } >"$tmp/node.xml"
  echo "(web1 crashes between two cron runs)"
  show "$bin/watch-domains" --connect "test://$tmp/node.xml" --state "$tmp/domains.json" --format jsonl
else
  echo "== watch-domains: skipped (needs libvirt-dev to build)"
fi
echo
echo "== notify: a failing check and its recovery, piped in; alerts to a command (a stand-in for mail or Slack)"
"$bin/probe-http" "$base/broken" --name keystone-public |
  "$bin/notify" --command "cat >> $tmp/alerts.jsonl" --state "$tmp/notify.json" --format table || true
"$bin/probe-http" "$base/healthz" --name keystone-public |
  "$bin/notify" --command "cat >> $tmp/alerts.jsonl" --state "$tmp/notify.json" --format table || true
echo "(the command got $(wc -l <"$tmp/alerts.jsonl") alerts as JSON on its stdin)"
show "$bin/notify" history --state "$tmp/notify.json" --format table
echo
echo "== a usage error is one line and exit 3"
show "$bin/probe-http" "$base/healthz" -w 3:2
