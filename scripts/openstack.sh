#!/usr/bin/env bash
# A real OpenStack on 127.0.0.1 for the tests, from Debian bookworm's
# packages, on top of a Keystone started by scripts/keystone.sh:
# MariaDB, RabbitMQ, Placement, Glance, Nova (API, conductor, scheduler and
# one fake-driver nova-compute per host) and Neutron (ML2 with no mechanism
# driver, one neutron-metadata-agent per host, so `GET /v2.0/agents` has real
# heartbeats) and Masakari (API and engine, for notify's sink and for
# comparing evacuate with masakari's host-failure recovery).
#   scripts/openstack.sh start DIR KEYSTONE_ENV [HOSTS]   install if needed, start; writes DIR/env
#   scripts/openstack.sh stop DIR                          stop everything it started
#   scripts/openstack.sh restart-compute DIR HOST          kill and start HOST's nova-compute
#     (a restarted compute cleans up the instances evacuated off it; one
#     that was only SIGSTOPped and continued does not)
# HOSTS is the fake compute hosts: a number N (compute1..N, default 3) or
# names separated by commas (compute1,compute2,compute3,compute10: Nova
# matches compute1 as a substring of compute10 in some of its queries).
# DIR/env holds the URLs, the admin cloud, the pid files of each host's
# nova-compute and metadata agent (tests SIGSTOP them) and the shortened
# service_down_time and agent_down_time.
set -euo pipefail
cmd=${1:?start|stop}
dir=${2:?directory}
py=/usr/bin/python3   # Debian's interpreter: the one that sees python3-nova
db_port=${SKYPROBE_DB_PORT:-13306}
rabbit_port=${SKYPROBE_RABBIT_PORT:-15672}
nova_port=${SKYPROBE_NOVA_PORT:-18774}
placement_port=${SKYPROBE_PLACEMENT_PORT:-18778}
glance_port=${SKYPROBE_GLANCE_PORT:-19292}
neutron_port=${SKYPROBE_NEUTRON_PORT:-19696}
masakari_port=${SKYPROBE_MASAKARI_PORT:-25868}
# masakari-engine's fixed sleep after disabling a failed host's compute
# (its default is 180 s; it must outlast Nova's service_down_time, else
# every evacuation is refused). Shortened for the tests, like those below.
masakari_wait=${SKYPROBE_MASAKARI_WAIT:-15}
masakari_threads=${SKYPROBE_MASAKARI_THREADS:-3}
# Shortened so drills run quickly (production: 60 s and 75 s).
report_interval=3
service_down_time=12
agent_down_time=12

stop() {
  [ -d "$dir/pids" ] || return 0
  # Each daemon leads a session of its own: the whole group goes (workers,
  # RabbitMQ's beam).
  for f in "$dir"/pids/*; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    kill -CONT -- "-$pid" 2>/dev/null || true
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
  for f in "$dir"/pids/*; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    for _ in $(seq 50); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$f"
  done
  if [ -d "$dir/rabbit" ]; then
    # epmd outlives the broker it started.
    pkill -f "epmd -daemon" 2>/dev/null || true
  fi
}

if [ "$cmd" = stop ]; then stop; exit 0; fi
if [ "$cmd" = restart-compute ]; then
  h=${3:?host}
  pidf="$dir/pids/nova-compute-$h"
  [ -f "$pidf" ] || { echo "openstack.sh: no nova-compute for $h in $dir" >&2; exit 1; }
  pid=$(cat "$pidf")
  kill -CONT -- "-$pid" 2>/dev/null || true
  kill -KILL -- "-$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.1; done
  setsid $py -c "import sys; from nova.cmd.compute import main; sys.argv[0] = 'nova-compute'; sys.exit(main())" \
    --config-file "$dir/nova/nova.conf" --config-file "$dir/nova/$h.conf" --log-file "$dir/logs/nova-compute-$h.log" \
    >>"$dir/logs/nova-compute-$h.out" 2>&1 </dev/null &
  echo $! >"$pidf"
  exit 0
fi
ks_env=${3:?keystone env file (scripts/keystone.sh writes it)}
hosts=${4:-3}
if [[ $hosts =~ ^[0-9]+$ ]]; then
  host_names=$(seq -f 'compute%g' -s ' ' "$hosts")
else
  host_names=${hosts//,/ }
fi
for h in $host_names; do
  [[ $h =~ ^[A-Za-z0-9][A-Za-z0-9.-]*$ ]] || { echo "openstack.sh: $h is not a host name" >&2; exit 1; }
done

packages=(python3-nova python3-placement python3-glance python3-neutron python3-masakari python3-pymysql
          rabbitmq-server mariadb-server uwsgi-core uwsgi-plugin-python3)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd=sudo
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo_cmd tee /usr/sbin/policy-rc.d >/dev/null
    $sudo_cmd chmod +x /usr/sbin/policy-rc.d
  fi
  $sudo_cmd apt-get update -qq -o DPkg::Lock::Timeout=300
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq -o DPkg::Lock::Timeout=300 \
    "${missing[@]}" >/dev/null
fi

stop
rm -rf "$dir"; mkdir -p "$dir/pids" "$dir/logs"
dir=$(cd "$dir" && pwd)
# shellcheck disable=SC1090
. "$ks_env"
ks=$KEYSTONE_URL
admin_pw=$KEYSTONE_ADMIN_PASSWORD
db_pw=db-$RANDOM$RANDOM

# The paste files are in the *-common packages (whose maintainer scripts
# want dbconfig): fetched and unpacked, never installed.
if [ ! -f /var/cache/skyprobe-openstack/usr/share/nova-common/api-paste.ini ] ||
   [ ! -f /var/cache/skyprobe-openstack/etc/masakari/api-paste.ini ]; then
  mkdir -p /var/cache/skyprobe-openstack
  (cd /var/cache/skyprobe-openstack && apt-get download -qq nova-common neutron-common glance-common masakari-api 2>/dev/null &&
     for d in ./*.deb; do dpkg -x "$d" .; done && rm -f ./*.deb)
fi
share=/var/cache/skyprobe-openstack/usr/share

# A daemon in the background, its pid kept under a name.
daemon() {
  local name=$1; shift
  setsid "$@" >>"$dir/logs/$name.out" 2>&1 </dev/null &
  echo $! >"$dir/pids/$name"
}
wait_port() {
  local port=$1 what=$2
  for _ in $(seq 600); do
    if $py -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1)" "$port" 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  echo "openstack.sh: $what did not open port $port; see $dir/logs" >&2
  exit 1
}

# MariaDB (Nova on sqlite hits "database is locked" under concurrent writes).
mysql_install_db --no-defaults --datadir="$dir/mysql" --user="$(id -un)" >"$dir/logs/mysql_install_db.out" 2>&1
daemon mysqld /usr/sbin/mariadbd --no-defaults --datadir="$dir/mysql" --socket="$dir/mysql.sock" \
  --port="$db_port" --bind-address=127.0.0.1 --user="$(id -un)" --skip-log-bin \
  --innodb-buffer-pool-size=64M --max-connections=500 --log-error="$dir/logs/mysqld.err"
wait_port "$db_port" MariaDB
mysql --no-defaults --socket="$dir/mysql.sock" -uroot <<SQL
CREATE DATABASE nova_api; CREATE DATABASE nova; CREATE DATABASE nova_cell0; CREATE DATABASE neutron; CREATE DATABASE masakari;
CREATE USER 'os'@'127.0.0.1' IDENTIFIED BY '$db_pw';
GRANT ALL PRIVILEGES ON *.* TO 'os'@'127.0.0.1';
SQL
db="mysql+pymysql://os:$db_pw@127.0.0.1:$db_port"

# RabbitMQ, in its own directory.
mkdir -p "$dir/rabbit"
cat >"$dir/rabbit/rabbitmq.conf" <<CONF
listeners.tcp.default = 127.0.0.1:$rabbit_port
loopback_users = none
CONF
export RABBITMQ_HOME_DIR="$dir/rabbit" RABBITMQ_MNESIA_BASE="$dir/rabbit/mnesia" RABBITMQ_LOG_BASE="$dir/rabbit/log" \
  RABBITMQ_NODENAME=skyprobe@localhost RABBITMQ_CONFIG_FILE="$dir/rabbit/rabbitmq.conf" \
  RABBITMQ_ENABLED_PLUGINS_FILE="$dir/rabbit/enabled_plugins" RABBITMQ_DIST_PORT=$((rabbit_port + 20000)) \
  RABBITMQ_PID_FILE="$dir/rabbit/pid"
echo '[].' >"$dir/rabbit/enabled_plugins"
HOME="$dir/rabbit" daemon rabbitmq /usr/lib/rabbitmq/bin/rabbitmq-server
wait_port "$rabbit_port" RabbitMQ
transport="rabbit://guest:guest@127.0.0.1:$rabbit_port/"

# Services and endpoints in the Keystone.
$py - "$ks" "$admin_pw" "$nova_port" "$placement_port" "$glance_port" "$neutron_port" "$masakari_port" <<'PY'
import json, sys, urllib.request
ks, pw, nova, placement, glance, neutron, masakari = sys.argv[1:8]
def call(method, path, body=None, token=None):
    req = urllib.request.Request(ks + path, method=method, data=json.dumps(body).encode() if body else None,
                                 headers={"Content-Type": "application/json", **({"X-Auth-Token": token} if token else {})})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.headers.get("X-Subject-Token"), json.loads(r.read() or b"{}")
token = call("POST", "/auth/tokens", {"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"name": "Default"}, "password": pw}}},
                                               "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}})[0]
for kind, name, url in [("compute", "nova", "http://127.0.0.1:%s/v2.1" % nova), ("placement", "placement", "http://127.0.0.1:%s" % placement),
                        ("image", "glance", "http://127.0.0.1:%s" % glance), ("network", "neutron", "http://127.0.0.1:%s" % neutron),
                        ("instance-ha", "masakari", "http://127.0.0.1:%s/v1/$(project_id)s" % masakari)]:
    _, s = call("POST", "/services", {"service": {"type": kind, "name": name}}, token)
    for interface in ("public", "internal", "admin"):
        call("POST", "/endpoints", {"endpoint": {"service_id": s["service"]["id"], "interface": interface, "url": url, "region_id": "RegionOne"}}, token)
PY

authtoken="www_authenticate_uri = $ks
auth_url = $ks
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = admin
username = admin
password = $admin_pw
region_name = RegionOne"

# Placement.
mkdir -p "$dir/placement"
cat >"$dir/placement/placement.conf" <<CONF
[DEFAULT]
log_file = $dir/logs/placement.log
[api]
auth_strategy = keystone
[keystone_authtoken]
$authtoken
[placement_database]
connection = sqlite:///$dir/placement/placement.db
CONF
$py -c 'import sys; from placement.cmd.manage import main; sys.argv[0] = "placement-manage"; sys.exit(main())' \
  --config-file "$dir/placement/placement.conf" db sync >"$dir/logs/placement-manage.out" 2>&1
$py -c "import sqlite3,sys; sqlite3.connect(sys.argv[1]).execute('PRAGMA journal_mode=WAL')" "$dir/placement/placement.db"
cat >"$dir/placement/wsgi.py" <<'WSGI'
from placement.wsgi import init_application
application = init_application()
WSGI
daemon placement uwsgi --plugin python3 --http-socket "127.0.0.1:$placement_port" --wsgi-file "$dir/placement/wsgi.py" \
  --processes 1 --threads 1 --master --die-on-term --add-header "Connection: close" \
  --env OS_PLACEMENT_CONFIG_DIR="$dir/placement"

# Glance, with a file store and a 1 KiB raw image to boot from.
mkdir -p "$dir/glance/images"
cp "$share/glance-common/glance-api-paste.ini" "$dir/glance/"
cat >"$dir/glance/glance-api.conf" <<CONF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = $glance_port
workers = 1
log_file = $dir/logs/glance-api.log
enabled_backends = file:file
[database]
connection = sqlite:///$dir/glance/glance.db
[glance_store]
default_backend = file
[file]
filesystem_store_datadir = $dir/glance/images
[keystone_authtoken]
$authtoken
[paste_deploy]
flavor = keystone
config_file = $dir/glance/glance-api-paste.ini
[oslo_concurrency]
lock_path = $dir/glance/locks
CONF
$py -c 'import sys; from glance.cmd.manage import main; sys.argv[0] = "glance-manage"; sys.exit(main())' \
  --config-file "$dir/glance/glance-api.conf" db_sync >"$dir/logs/glance-manage.out" 2>&1
daemon glance $py -c 'import sys; from glance.cmd.api import main; sys.argv[0] = "glance-api"; sys.exit(main())' \
  --config-file "$dir/glance/glance-api.conf"

# Neutron: ML2 with no mechanism driver; its ORM mappers configured before
# it starts (else GET /v2.0/ports fails with no service plugins).
mkdir -p "$dir/neutron"
cp "$share/neutron-common/api-paste.ini" "$dir/neutron/"
cat >"$dir/neutron/neutron.conf" <<CONF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = $neutron_port
core_plugin = ml2
service_plugins =
auth_strategy = keystone
transport_url = $transport
api_paste_config = $dir/neutron/api-paste.ini
agent_down_time = $agent_down_time
api_workers = 1
rpc_workers = 1
rpc_state_report_workers = 1
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
[agent]
report_interval = $report_interval
[database]
connection = $db/neutron
[keystone_authtoken]
$authtoken
[ml2]
type_drivers = flat
tenant_network_types =
mechanism_drivers =
extension_drivers =
[oslo_concurrency]
lock_path = $dir/neutron/locks
CONF
$py -c 'import sys; from neutron.db.migration.cli import main; sys.argv[0] = "neutron-db-manage"; sys.exit(main())' \
  --config-file "$dir/neutron/neutron.conf" upgrade heads >"$dir/logs/neutron-db-manage.out" 2>&1
cat >"$dir/neutron/server.py" <<'PY'
import sys
import neutron.cmd.eventlet  # noqa: F401  (eventlet's monkey patching first)
import neutron.db.migration.models.head  # noqa: F401
from sqlalchemy.orm import configure_mappers
configure_mappers()
from neutron.cmd.eventlet.server import main
sys.argv[0] = "neutron-server"
sys.exit(main())
PY
daemon neutron-server $py "$dir/neutron/server.py" --config-file "$dir/neutron/neutron.conf" \
  --log-file "$dir/logs/neutron-server.log"

# Nova: one config for the API and the cell services, one more per host.
mkdir -p "$dir/nova"
cp "$share/nova-common/api-paste.ini" "$dir/nova/"
cat >"$dir/nova/nova.conf" <<CONF
[DEFAULT]
transport_url = $transport
compute_driver = fake.FakeDriver
state_path = $dir/nova
my_ip = 127.0.0.1
report_interval = $report_interval
service_down_time = $service_down_time
[api]
auth_strategy = keystone
[api_database]
connection = $db/nova_api
[database]
connection = $db/nova
[conductor]
workers = 1
[scheduler]
workers = 1
discover_hosts_in_cells_interval = 2
[keystone_authtoken]
$authtoken
[placement]
$authtoken
[neutron]
$authtoken
[glance]
region_name = RegionOne
[service_user]
send_service_user_token = false
[wsgi]
api_paste_config = $dir/nova/api-paste.ini
[oslo_concurrency]
lock_path = $dir/nova/locks
[oslo_messaging_notifications]
driver = noop
[quota]
instances = 1000
cores = 10000
ram = 10240000
CONF
nova_manage() {
  $py -c 'import sys; from nova.cmd.manage import main; sys.argv[0] = "nova-manage"; sys.exit(main())' \
    --config-file "$dir/nova/nova.conf" "$@" >>"$dir/logs/nova-manage.out" 2>&1
}
nova_manage api_db sync
nova_manage cell_v2 map_cell0 --database_connection "$db/nova_cell0"
nova_manage cell_v2 create_cell --name cell1
nova_manage db sync
cat >"$dir/nova/wsgi.py" <<'WSGI'
from nova.api.openstack.compute.wsgi import init_application
application = init_application()
WSGI
daemon nova-api uwsgi --plugin python3 --http-socket "127.0.0.1:$nova_port" --wsgi-file "$dir/nova/wsgi.py" \
  --processes 1 --threads 1 --master --die-on-term --add-header "Connection: close" \
  --env OS_NOVA_CONFIG_DIR="$dir/nova" --env "OS_NOVA_CONFIG_FILES=api-paste.ini;nova.conf" --logto "$dir/logs/nova-api.log"
for svc in conductor scheduler; do
  daemon "nova-$svc" $py -c "import sys; from nova.cmd.$svc import main; sys.argv[0] = 'nova-$svc'; sys.exit(main())" \
    --config-file "$dir/nova/nova.conf" --log-file "$dir/logs/nova-$svc.log"
done
for h in $host_names; do
  cat >"$dir/nova/$h.conf" <<CONF
[DEFAULT]
host = $h
instances_path = $dir/nova/instances-$h
CONF
  daemon "nova-compute-$h" $py -c "import sys; from nova.cmd.compute import main; sys.argv[0] = 'nova-compute'; sys.exit(main())" \
    --config-file "$dir/nova/nova.conf" --config-file "$dir/nova/$h.conf" --log-file "$dir/logs/nova-compute-$h.log"
  cat >"$dir/neutron/metadata-$h.ini" <<CONF
[DEFAULT]
host = $h
metadata_proxy_socket = $dir/neutron/metadata-$h.sock
nova_metadata_host = 127.0.0.1
CONF
  daemon "metadata-agent-$h" $py -c "import sys; from neutron.cmd.eventlet.agents.metadata import main; sys.argv[0] = 'neutron-metadata-agent'; sys.exit(main())" \
    --config-file "$dir/neutron/neutron.conf" --config-file "$dir/neutron/metadata-$h.ini" \
    --log-file "$dir/logs/metadata-agent-$h.log"
done

# Masakari: the API (under uwsgi, like Nova's) and the engine. Both start
# through a wrapper that gives a request context's read_deleted its default
# (Masakari 14.0.2 with Debian's oslo.messaging answers 500 on every create
# without it).
mkdir -p "$dir/masakari"
cp /var/cache/skyprobe-openstack/etc/masakari/api-paste.ini "$dir/masakari/"
cat >"$dir/masakari/masakari.conf" <<CONF
[DEFAULT]
transport_url = $transport
auth_strategy = keystone
masakari_api_listen = 127.0.0.1
masakari_api_listen_port = $masakari_port
masakari_api_workers = 1
log_file = $dir/logs/masakari.log
os_privileged_user_name = admin
os_privileged_user_password = $admin_pw
os_privileged_user_tenant = admin
os_privileged_user_auth_url = $ks
os_region_name = RegionOne
os_user_domain_name = Default
os_project_domain_name = Default
nova_catalog_admin_info = compute:nova:publicURL
duplicate_notification_detection_interval = 0
wait_period_after_service_update = $masakari_wait
wait_period_after_evacuation = 300
process_unfinished_notifications_interval = 10
retry_notification_new_status_interval = 10
host_failure_recovery_threads = $masakari_threads
[database]
connection = $db/masakari
[keystone_authtoken]
$authtoken
[oslo_concurrency]
lock_path = $dir/masakari/locks
[host_failure]
evacuate_all_instances = true
ignore_instances_in_error_state = false
CONF
cat >"$dir/masakari/start.py" <<'PY'
import sys
import masakari.context as context
# A context rebuilt from an RPC message carries read_deleted=None.
rc = context.RequestContext
keep = rc._set_read_deleted
rc.read_deleted = property(rc._get_read_deleted, lambda self, v: keep(self, v or "no"), rc._del_read_deleted)
what = sys.argv.pop(1)
if what == "wsgi":
    from masakari.cmd.api import initialize_application
    application = initialize_application()
else:
    from masakari.cmd.engine import main
    sys.argv[0] = "masakari-engine"
    sys.exit(main())
PY
$py -c 'import sys; from masakari.cmd.manage import main; sys.argv[0] = "masakari-manage"; sys.exit(main())' \
  --config-file "$dir/masakari/masakari.conf" db sync >"$dir/logs/masakari-manage.out" 2>&1
cat >"$dir/masakari/wsgi.py" <<WSGI
import sys
sys.argv[1:] = ["wsgi", "--config-file", "$dir/masakari/masakari.conf"]
exec(open("$dir/masakari/start.py").read())
WSGI
daemon masakari-api uwsgi --plugin python3 --http-socket "127.0.0.1:$masakari_port" --wsgi-file "$dir/masakari/wsgi.py" \
  --processes 1 --threads 1 --master --die-on-term --add-header "Connection: close" \
  --env OS_MASAKARI_CONFIG_DIR="$dir/masakari" --logto "$dir/logs/masakari-api.log"
daemon masakari-engine $py "$dir/masakari/start.py" engine --config-file "$dir/masakari/masakari.conf"

wait_port "$placement_port" Placement
wait_port "$glance_port" Glance
wait_port "$neutron_port" Neutron
wait_port "$nova_port" "Nova API"
wait_port "$masakari_port" "Masakari API"

# Ready when every compute is up in Nova, every agent alive in Neutron, and
# an image exists (bounded: about three minutes).
$py - "$ks" "$admin_pw" "$host_names" "$dir" <<'PY'
import json, sys, time, urllib.request, urllib.error
ks, pw, hosts, d = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4]
def call(base, method, path, body=None, token=None, headers=None, raw=None):
    h = {"Content-Type": "application/json", **(headers or {})}
    if token: h["X-Auth-Token"] = token
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(base + path, method=method, data=data, headers=h)
    with urllib.request.urlopen(req, timeout=30) as r:
        text = r.read()
        return r.headers.get("X-Subject-Token"), (json.loads(text) if text and text[:1] in b"{[" else {})
def token():
    t, body = call(ks, "POST", "/auth/tokens", {"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"name": "Default"}, "password": pw}}},
                                                          "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}})
    urls = {e["type"]: [x["url"] for x in e["endpoints"] if x["interface"] == "public"][0] for e in body["token"]["catalog"]}
    return t, urls
t, urls = token()
want = set(hosts)
deadline = time.time() + 180
state = ""
while time.time() < deadline:
    try:
        _, s = call(urls["compute"], "GET", "/os-services?binary=nova-compute", token=t, headers={"OpenStack-API-Version": "compute 2.53"})
        up = {x["host"] for x in s["services"] if x["state"] == "up"}
        _, a = call(urls["network"], "GET", "/v2.0/agents", token=t)
        alive = {x["host"] for x in a["agents"] if x["alive"]}
        _, hv = call(urls["compute"], "GET", "/os-hypervisors", token=t, headers={"OpenStack-API-Version": "compute 2.53"})
        mapped = {x["hypervisor_hostname"] for x in hv["hypervisors"]}
        state = "nova up %s, agents alive %s, hypervisors %s" % (sorted(up), sorted(alive), sorted(mapped))
        if want <= up and want <= alive and want <= mapped:
            break
    except (urllib.error.URLError, OSError, KeyError, ValueError) as e:
        state = str(e)
    time.sleep(1)
else:
    sys.exit("openstack.sh: not ready after 180 s: %s (logs in %s/logs)" % (state, d))
_, img = call(urls["image"], "POST", "/v2/images", {"name": "tiny", "disk_format": "raw", "container_format": "bare", "visibility": "public"}, token=t)
call(urls["image"], "PUT", "/v2/images/%s/file" % img["id"], token=t, headers={"Content-Type": "application/octet-stream"}, raw=b"\0" * 1024)
_, fl = call(urls["compute"], "POST", "/flavors", {"flavor": {"name": "tiny", "ram": 64, "vcpus": 1, "disk": 0}}, token=t)
with open(d + "/ids", "w") as f:
    f.write("OS_IMAGE_ID=%s\nOS_FLAVOR_ID=%s\n" % (img["id"], fl["flavor"]["id"]))
PY

{
  cat "$ks_env"
  cat "$dir/ids"
  echo "NOVA_URL=http://127.0.0.1:$nova_port/v2.1"
  echo "NEUTRON_URL=http://127.0.0.1:$neutron_port"
  echo "MASAKARI_URL=http://127.0.0.1:$masakari_port/v1"
  echo "OS_HOSTS=${host_names// /,}"
  echo "OS_SERVICE_DOWN_TIME=$service_down_time"
  echo "OS_AGENT_DOWN_TIME=$agent_down_time"
  echo "OS_PIDS=$dir/pids"
} >"$dir/env"
echo "openstack ready: nova at http://127.0.0.1:$nova_port/v2.1, computes $host_names (env in $dir/env)"
