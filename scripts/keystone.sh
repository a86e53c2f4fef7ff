#!/usr/bin/env bash
# A real Keystone on 127.0.0.1 for the tests, from Debian's packages:
# sqlite (WAL) + fernet, one uwsgi process with one thread. uwsgi closes
# every connection after its answer, so it says so (Connection: close):
# the OpenStack services' own clients would otherwise reuse a closed one.
#   scripts/keystone.sh start DIR [PORT]   install if needed, configure, start; writes DIR/env
#   scripts/keystone.sh stop DIR           stop it (by PID)
# DIR/env holds KEYSTONE_URL, the admin and demo passwords, an application
# credential, and KEYSTONE_LOG (uwsgi's request log, to count requests).
set -euo pipefail
cmd=${1:?start|stop}
dir=${2:?directory}
port=${3:-35357}
py=/usr/bin/python3   # Debian's interpreter: the one that sees python3-keystone

stop() {
  if [ -f "$dir/uwsgi.pid" ]; then
    kill "$(cat "$dir/uwsgi.pid")" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$(cat "$dir/uwsgi.pid")" 2>/dev/null || break; sleep 0.1; done
    rm -f "$dir/uwsgi.pid"
  fi
}

if [ "$cmd" = stop ]; then stop; exit 0; fi

if ! command -v keystone-manage >/dev/null || ! command -v uwsgi >/dev/null || ! [ -e /usr/lib/uwsgi/plugins/python3_plugin.so ]; then
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd=sudo
  # Keep maintainer scripts from starting daemons on a machine without systemd.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo_cmd tee /usr/sbin/policy-rc.d >/dev/null
    $sudo_cmd chmod +x /usr/sbin/policy-rc.d
  fi
  $sudo_cmd apt-get update -qq -o DPkg::Lock::Timeout=300
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq -o DPkg::Lock::Timeout=300 \
    python3-keystone uwsgi-core uwsgi-plugin-python3 >/dev/null
fi

stop
rm -rf "$dir"; mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
url="http://127.0.0.1:$port"
admin_pw=admin-$RANDOM$RANDOM
demo_pw=demo-$RANDOM$RANDOM

cat >"$dir/keystone.conf" <<CONF
[DEFAULT]
log_file = $dir/keystone.log
[database]
connection = sqlite:///$dir/keystone.db
[token]
provider = fernet
expiration = 3600
[fernet_tokens]
key_repository = $dir/fernet-keys
[credential]
key_repository = $dir/credential-keys
CONF
manage() { keystone-manage --config-file "$dir/keystone.conf" "$@" >>"$dir/manage.log" 2>&1; }
manage db_sync
$py -c "import sqlite3,sys; sqlite3.connect(sys.argv[1]).execute('PRAGMA journal_mode=WAL')" "$dir/keystone.db"
manage fernet_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)"
manage credential_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)"
manage bootstrap --bootstrap-password "$admin_pw" \
  --bootstrap-admin-url "$url/v3" --bootstrap-internal-url "$url/v3" \
  --bootstrap-public-url "$url/v3" --bootstrap-region-id RegionOne

cat >"$dir/wsgi.py" <<WSGI
from keystone.server.wsgi import initialize_public_application
application = initialize_public_application()
WSGI
OS_KEYSTONE_CONFIG_FILES="$dir/keystone.conf" uwsgi --plugin python3 \
  --http-socket "127.0.0.1:$port" --wsgi-file "$dir/wsgi.py" \
  --processes 1 --threads 1 --master --die-on-term \
  --add-header "Connection: close" \
  --pidfile "$dir/uwsgi.pid" --logto "$dir/uwsgi.log" --daemonize2 "$dir/uwsgi.log" \
  --env OS_KEYSTONE_CONFIG_FILES="$dir/keystone.conf"

# Ready when it answers (bounded).
for _ in $(seq 300); do
  if $py -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1)" "$url/v3" 2>/dev/null; then break; fi
  sleep 0.2
done

# A demo user and project, and an application credential for it.
$py - "$url" "$admin_pw" "$demo_pw" >"$dir/appcred" <<'PY'
import json, sys, urllib.request
url, admin_pw, demo_pw = sys.argv[1:4]
def call(method, path, body=None, token=None):
    req = urllib.request.Request(url + path, method=method, data=json.dumps(body).encode() if body else None,
                                 headers={"Content-Type": "application/json", **({"X-Auth-Token": token} if token else {})})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.headers.get("X-Subject-Token"), json.loads(r.read() or b"{}")
def token(user, pw, project):
    return call("POST", "/v3/auth/tokens", {"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": user, "domain": {"name": "Default"}, "password": pw}}},
                                                     "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}})[0]
admin = token("admin", admin_pw, "admin")
_, p = call("POST", "/v3/projects", {"project": {"name": "demo", "domain_id": "default"}}, admin)
_, u = call("POST", "/v3/users", {"user": {"name": "demo", "domain_id": "default", "password": demo_pw}}, admin)
_, roles = call("GET", "/v3/roles?name=member", None, admin)
call("PUT", "/v3/projects/%s/users/%s/roles/%s" % (p["project"]["id"], u["user"]["id"], roles["roles"][0]["id"]), None, admin)
demo = token("demo", demo_pw, "demo")
_, ac = call("POST", "/v3/users/%s/application_credentials" % u["user"]["id"], {"application_credential": {"name": "skyprobe-test"}}, demo)
print(ac["application_credential"]["id"], ac["application_credential"]["secret"])
PY
read -r appcred_id appcred_secret <"$dir/appcred"
rm -f "$dir/appcred"

cat >"$dir/env" <<ENV
KEYSTONE_URL=$url/v3
KEYSTONE_ADMIN_PASSWORD=$admin_pw
KEYSTONE_DEMO_PASSWORD=$demo_pw
KEYSTONE_APPCRED_ID=$appcred_id
KEYSTONE_APPCRED_SECRET=$appcred_secret
KEYSTONE_LOG=$dir/uwsgi.log
KEYSTONE_PID_FILE=$dir/uwsgi.pid
ENV
echo "keystone ready at $url/v3 (env in $dir/env)"
