#!/usr/bin/env bash
# evacuate: N fake-driver instances (default 200) off one dead host of the
# real Nova that scripts/openstack.sh starts, at --concurrency C (default 8).
# The figure the issue asks for: the whole move against N / C x one
# instance's own time (call to verified), i.e. how much of the concurrency
# is spent waiting on evacuate itself rather than on Nova. Then the same
# failure of another host (compute2, N instances) recovered by masakari's
# engine on the same stack (COMPUTE_HOST notification, recovery method
# auto, C recovery threads, its default 180 s wait after disabling the
# service): time to the last instance ACTIVE elsewhere, for both. Both move
# their instances to compute3 (evacuate by --target-host, masakari by the
# scheduler: the other two hosts are down by then).
# Runs as root (a network namespace stands for the dead host's network).
# Writes BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${N:-200}
c=${CONCURRENCY:-8}
cargo build --release --quiet --bin evacuate --bin probe-host
tmp=$(mktemp -d)
ns=skyprobe-bench-ev-$$
cleanup() {
  ip link del evb0 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  bash scripts/openstack.sh stop "$tmp/os" || true
  bash scripts/keystone.sh stop "$tmp/ks" || true
  rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$tmp/ks" "$tmp/os"
bash scripts/keystone.sh start "$tmp/ks" "${SKYPROBE_OS_KEYSTONE_PORT:-35358}" >/dev/null
masakari_wait=${MASAKARI_WAIT:-180}
SKYPROBE_MASAKARI_WAIT=$masakari_wait SKYPROBE_MASAKARI_THREADS=$c \
  bash scripts/openstack.sh start "$tmp/os" "$tmp/ks/env" 3 >/dev/null
# shellcheck disable=SC1091
. "$tmp/os/env"
export OS_AUTH_URL=$KEYSTONE_URL OS_USERNAME=admin OS_PASSWORD=$KEYSTONE_ADMIN_PASSWORD \
  OS_PROJECT_NAME=admin OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default \
  SKYPROBE_CACHE_DIR=$tmp/cache

# N instances on a host in one request (quota raised first); waits for all
# of them ACTIVE there.
boot() {
/usr/bin/python3 - "$KEYSTONE_URL" "$KEYSTONE_ADMIN_PASSWORD" "$OS_IMAGE_ID" "$OS_FLAVOR_ID" "$n" "$1" <<'PY'
import json, sys, time, urllib.request
ks, pw, image, flavor, n, host = sys.argv[1:7]
n = int(n)
def call(url, method="GET", body=None, token=None, mv="2.53"):
    h = {"Content-Type": "application/json", "OpenStack-API-Version": "compute " + mv}
    if token: h["X-Auth-Token"] = token
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body else None, headers=h)
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.headers.get("X-Subject-Token"), json.loads(r.read() or b"{}")
t, body = call(ks + "/auth/tokens", "POST", {"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"name": "Default"}, "password": pw}}},
    "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}})
project = body["token"]["project"]["id"]
nova = [e for e in body["token"]["catalog"] if e["type"] == "compute"][0]["endpoints"][0]["url"]
call(nova + "/os-quota-sets/" + project, "PUT", {"quota_set": {"instances": 2 * n + 50, "cores": 8 * n + 100, "ram": 2048 * n + 10000}}, t)
call(nova + "/servers", "POST", {"server": {"name": "bench-" + host, "imageRef": image, "flavorRef": flavor, "networks": "none",
    "availability_zone": "nova:" + host, "min_count": n, "max_count": n}}, t)
for _ in range(1200):
    _, d = call(nova + "/servers/detail?all_tenants=1&limit=1000&host=" + host, token=t)
    states = [s["status"] for s in d["servers"]]
    if states.count("ACTIVE") >= n:
        break
    if "ERROR" in states:
        sys.exit("a server went to ERROR: " + json.dumps([s.get("fault") for s in d["servers"] if s["status"] == "ERROR"][:1]))
    time.sleep(1)
else:
    sys.exit("not all ACTIVE")
PY
}
boot_start=$(date +%s%N)
boot compute1
boot_ns=$(( $(date +%s%N) - boot_start ))

# compute1's management address in a namespace, then blackholed.
ip netns add "$ns"
ip link add evb0 type veth peer name evb1
ip link set evb1 netns "$ns"
ip addr add 10.231.0.1/24 dev evb0; ip link set evb0 up
ip -n "$ns" addr add 10.231.0.11/24 dev evb1; ip -n "$ns" link set evb1 up; ip -n "$ns" link set lo up
printf '[[host]]\nname = "compute1"\naddress = "10.231.0.11"\n' >"$tmp/hosts.toml"
probe="--hosts $tmp/hosts.toml --state $tmp/verdict.json --openstack --samples 1 --service-down-time ${OS_SERVICE_DOWN_TIME}s --agent-down-time ${OS_AGENT_DOWN_TIME}s --probe-timeout 1s -n 2 -I 20ms --icmp-wait 500ms -t 10 --max-dead-percent 100"
# (the hosts file holds compute1 alone: one dead host is all of it, which
# probe-host's own brake would otherwise hold as unknown)
kill -STOP "$(cat "$OS_PIDS/nova-compute-compute1")" "$(cat "$OS_PIDS/metadata-agent-compute1")"
# Its address now leads to a MAC nobody has: packets are lost silently (a
# link taken down would drop the route, and another router might answer).
ip neigh replace 10.231.0.11 lladdr 02:00:00:00:02:31 dev evb0 nud permanent
ev() {
  target/release/evacuate compute1 --state "$tmp/evacuate.json" --probe "$probe" \
    --fence "true" --fence-status "echo off" --service-down-time "${OS_SERVICE_DOWN_TIME}s" \
    --instance-timeout 600s -t 3000 --format jsonl "$@"
}
held=
for _ in $(seq 90); do
  ev >"$tmp/plan.jsonl" || true
  if grep -q '"summary":"compute1: '"$n"' of '"$n"' instances to evacuate; every interlock holds' "$tmp/plan.jsonl"; then
    held=1; break
  fi
  sleep 2
done
if [ -z "$held" ]; then
  echo "bench/evacuate.sh: the interlocks never held for compute1; the last plan:" >&2
  grep '"target":"compute1"' "$tmp/plan.jsonl" >&2 || cat "$tmp/plan.jsonl" >&2
  exit 1
fi
start=$(date +%s%N)
ev --execute --concurrency "$c" --stagger 0s --target-host compute3 >"$tmp/out.jsonl" || true
total_ns=$(( $(date +%s%N) - start ))

# Masakari: compute2 in a segment (with compute3), N instances on it, its
# nova-compute stopped, and the COMPUTE_HOST notification a host monitor
# would send; timed to the last instance ACTIVE on another host.
boot compute2
read -r m_total m_moved m_notif < <(/usr/bin/python3 - "$KEYSTONE_URL" "$KEYSTONE_ADMIN_PASSWORD" "$n" "$(cat "$OS_PIDS/nova-compute-compute2")" <<'PY'
import json, os, signal, sys, time, urllib.error, urllib.request
ks, pw, n, pid = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def call(url, method="GET", body=None, token=None, mv="2.53"):
    h = {"Content-Type": "application/json", "OpenStack-API-Version": "compute " + mv}
    if token: h["X-Auth-Token"] = token
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body else None, headers=h)
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read() or b"{}")
req = urllib.request.Request(ks + "/auth/tokens", method="POST", headers={"Content-Type": "application/json"},
    data=json.dumps({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"name": "Default"}, "password": pw}}},
                     "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}).encode())
with urllib.request.urlopen(req, timeout=60) as r:
    t, body = r.headers["X-Subject-Token"], json.loads(r.read())
url = lambda kind: [e for e in body["token"]["catalog"] if e["type"] == kind][0]["endpoints"][0]["url"]
nova, ha = url("compute"), url("instance-ha")
seg = call(ha + "/segments", "POST", {"segment": {"name": "bench", "recovery_method": "auto", "service_type": "COMPUTE"}}, t)["segment"]["uuid"]
for h in ("compute2", "compute3"):
    call(ha + "/segments/%s/hosts" % seg, "POST", {"host": {"name": h, "type": "COMPUTE", "control_attributes": "SSH"}}, t)
os.killpg(pid, signal.SIGSTOP)
# A host monitor reports once Nova's service_down_time has passed (it
# cannot know sooner either); masakari's own wait follows.
while call(nova + "/os-services?binary=nova-compute&host=compute2", token=t)["services"][0]["state"] != "down":
    time.sleep(0.5)
start = time.time()
note = call(ha + "/notifications", "POST", {"notification": {"type": "COMPUTE_HOST", "hostname": "compute2",
    "generated_time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()),
    "payload": {"event": "STOPPED", "host_status": "NORMAL", "cluster_status": "OFFLINE"}}}, t)["notification"]["notification_uuid"]
ids = None
finished = None
moved = 0
while time.time() - start < 3600:
    d = call(nova + "/servers/detail?all_tenants=1&limit=1000&name=bench-compute2", token=t)["servers"]
    moved = sum(1 for s in d if s["status"] == "ACTIVE" and s.get("OS-EXT-SRV-ATTR:host") != "compute2" and not s.get("OS-EXT-STS:task_state"))
    if finished is None:
        st = call(ha + "/notifications/" + note, token=t)["notification"]["status"]
        if st in ("finished", "failed", "error"):
            finished = time.time() - start
    if moved >= n:
        break
    if finished is not None and time.time() - start > finished + 60:
        break
    time.sleep(1)
print("%.1f" % (time.time() - start), moved, "%.1f" % finished if finished is not None else "-")
PY
)
kill -CONT -- "-$(cat "$OS_PIDS/nova-compute-compute2")" "$(cat "$OS_PIDS/nova-compute-compute1")" "$(cat "$OS_PIDS/metadata-agent-compute1")" || true

read -r moved failed median mean < <(python3 - "$tmp/out.jsonl" <<'PY'
import json, statistics, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
inst = [r for r in recs if r.get("event") == "instance"]
secs = [r["details"]["seconds"] for r in inst if "seconds" in r["details"]]
ok = sum(1 for r in inst if r["status"] == "ok")
print(ok, len(inst) - ok, statistics.median(secs) if secs else 0, statistics.mean(secs) if secs else 0)
PY
)
if [ "$moved" -eq 0 ]; then
  echo "bench/evacuate.sh: nothing moved; the run said:" >&2
  grep '"target":"compute1"' "$tmp/out.jsonl" >&2 || true
  exit 1
fi
s() { awk -v ns="$1" 'BEGIN{printf "%.1f", ns/1e9}'; }
ideal=$(awk -v n="$n" -v c="$c" -v m="$median" 'BEGIN{printf "%.1f", n / c * m}')
ratio=$(awk -v t="$total_ns" -v i="$ideal" 'BEGIN{ if (i == 0) print "n/a"; else printf "%.2fx", t / 1e9 / i}')
# The pool's own bound: the instances' times summed, over the concurrency
# (no schedule of C at a time can finish sooner).
bound=$(awk -v n="$n" -v c="$c" -v m="$mean" 'BEGIN{printf "%.1f", n / c * m}')
bratio=$(awk -v t="$total_ns" -v i="$bound" 'BEGIN{ if (i == 0) print "n/a"; else printf "%.2fx", t / 1e9 / i}')
masakari_version=$(dpkg-query -W -f='${Version}' python3-masakari 2>/dev/null || echo "?")
m_ratio=$(awk -v m="$m_total" -v t="$total_ns" 'BEGIN{ if (t == 0) print "n/a"; else printf "%.2fx", m / (t / 1e9)}')
nova_version=$(dpkg-query -W -f='${Version}' python3-nova 2>/dev/null || echo "?")

section="## evacuate (bench/evacuate.sh)

Measured $(date -u +%Y-%m-%d) on $(nproc) cores as root, against the real Nova
$nova_version of scripts/openstack.sh (fake driver, three computes, one
conductor and scheduler; Placement on sqlite, one process). $n instances booted on compute1 in one request
($(s "$boot_ns") s to all ACTIVE); then compute1's nova-compute and agent
stopped and its network cut; \`evacuate --execute --concurrency $c
--stagger 0s\` with every interlock (a fresh probe-host verdict, Nova stale,
a fence command and its read-back, brakes, capacity).

| figure | value |
|---|---:|
| instances moved / failed | $moved / $failed |
| whole run (plan, fence, force-down, every instance verified) | $(s "$total_ns") s |
| one instance, call to verified (median / mean) | ${median} s / ${mean} s |
| ideal: $n / $c x the median | ${ideal} s |
| whole run vs ideal (goal <= 1.1x) | $ratio |
| bound: the instances' times summed / $c (n / c x the mean) | ${bound} s |
| whole run vs that bound | $bratio |

Side by side with masakari's engine (python3-masakari $masakari_version) on
the same stack: $n instances on compute2, its nova-compute stopped, and once
Nova showed it down, the COMPUTE_HOST notification a host monitor sends
(recovery method auto, $c recovery threads, its wait after disabling the
service at ${masakari_wait} s, its default). Both moved their instances to
compute3.

| | evacuate | masakari |
|---|---:|---:|
| instances ACTIVE elsewhere | $moved of $n | $m_moved of $n |
| from the decision to the last one ACTIVE | $(s "$total_ns") s | ${m_total} s |
| of which fixed sleeps | 0 s | ${masakari_wait} s |
| notification finished (masakari's own view; - if not yet when the last instance was ACTIVE) | | ${m_notif} s |
| time to the last one vs evacuate | 1.00x | $m_ratio |

evacuate's figure starts before its own interlocks (a fresh probe, the
fence and its read-back, the brakes) and force-down; masakari's starts at
the notification, after Nova already shows the host down, and it neither
fences nor forces the service down.
"
python3 bench/section.py "evacuate (bench/evacuate.sh)" "$section"
echo "$section"
