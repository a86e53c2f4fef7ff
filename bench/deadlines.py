#!/usr/bin/env python3
"""The deadline matrix: every binary against every hostile peer it can
meet, with -t 1, 2 and 10. Each run's wall time is measured from spawn to
exit; a run passes when it ends within -t + 10 %. Prints a Markdown table
(and writes it into BENCHMARKS.md through section.py).

Hostile peers, all on 127.0.0.1 (or in a network namespace this script
makes, for DNS):
  silent      accepts TCP, never reads or answers (a SIGSTOPped service
              looks the same from outside: the kernel accepts, nobody reads)
  drip        answers HTTP one byte per second
  endless     HTTP 200 with a chunked body that never ends
  tls-stall   accepts, reads the ClientHello, never answers
  dns-silent  a resolver (127.0.0.1:53 in a namespace, through
              /etc/netns/NS/resolv.conf) that never answers
  keystone    Keystone silent (OS_AUTH_URL on a silent port)
  nova/neutron/masakari/placement silent behind a Keystone that answers
              (its catalog points there)
  smtp-silent an SMTP server that accepts and never greets
  hang-cmd    a command (restart, sink, fence) that never ends
  libvirt     a libvirt socket that accepts and never answers
  real        with SKYPROBE_OPENSTACK_ENV (scripts/openstack.sh): the real
              Keystone, Nova, Neutron, Masakari and Placement, each frozen
              with SIGSTOP (the process and its children) in turn

Usage: bench/deadlines.py BINDIR   (BINDIR holds the seven binaries)
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release"
TIMEOUTS = [1, 2, 10]
held = []


def listener():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(1024)
    return s, s.getsockname()[1]


def serve(handler):
    s, port = listener()

    def loop():
        while True:
            c, _ = s.accept()
            held.append(c)
            threading.Thread(target=handler, args=(c,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    return port


def silent(c):
    time.sleep(3600)


def read_head(c):
    data = b""
    c.settimeout(30)
    try:
        while b"\r\n\r\n" not in data:
            chunk = c.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    return data


def drip(c):
    read_head(c)
    try:
        for b in b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 1000:
            c.sendall(bytes([b]))
            time.sleep(1)
    except OSError:
        pass


def endless(c):
    read_head(c)
    try:
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"1000\r\n" + b"x" * 4096 + b"\r\n"
        while True:
            c.sendall(chunk)
    except OSError:
        pass


def tls_stall(c):
    try:
        c.recv(4096)
    except OSError:
        pass
    time.sleep(3600)


SILENT = serve(silent)
DRIP = serve(drip)
ENDLESS = serve(endless)
TLS = serve(tls_stall)


def keystone(catalog_url):
    def handler(c):
        head = read_head(c)
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        body = head.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in head else b""
        try:
            while len(body) < length:
                body += c.recv(4096)
        except OSError:
            pass
        eps = lambda: [{"interface": i, "region": "RegionOne", "region_id": "RegionOne", "url": catalog_url}
                       for i in ("public", "internal", "admin")]
        doc = json.dumps({"token": {
            "expires_at": "2099-01-01T00:00:00.000000Z",
            "project": {"id": "p1", "name": "admin"},
            "catalog": [{"type": t, "name": t, "endpoints": eps()}
                        for t in ("compute", "network", "instance-ha", "placement", "identity")]}}).encode()
        try:
            c.sendall(b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nX-Subject-Token: tok\r\n"
                      + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(doc) + doc)
            c.close()
        except OSError:
            pass
    return serve(handler)


KEYSTONE_OK = keystone(f"http://127.0.0.1:{SILENT}")
tmp = tempfile.mkdtemp(prefix="skyprobe-deadlines-")
LIBVIRT_SOCK = os.path.join(tmp, "libvirt.sock")
ls = socket.socket(socket.AF_UNIX)
ls.bind(LIBVIRT_SOCK)
ls.listen(64)
threading.Thread(target=lambda: [held.append(ls.accept()[0]) for _ in iter(int, 1)], daemon=True).start()


def os_env(auth_port):
    return {"OS_AUTH_URL": f"http://127.0.0.1:{auth_port}/v3", "OS_USERNAME": "admin",
            "OS_PASSWORD": "secret", "OS_PROJECT_NAME": "admin", "OS_USER_DOMAIN_NAME": "Default",
            "OS_PROJECT_DOMAIN_NAME": "Default", "OS_REGION_NAME": "RegionOne",
            "OS_INTERFACE": "public"}


def write(name, text):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(text)
    return path


hosts = write("hosts.toml", '[[host]]\nname = "compute1"\naddress = "127.0.0.1"\nports = [%d]\n' % SILENT)
procs = write("procs.toml", '[[process]]\nname = "gone"\ncmdline = "no such process here"\n'
              'restart = "sleep 3600"\nshell = true\n')
record = json.dumps({"ts": "2026-12-06T00:00:00.000Z", "host": "mon1", "check": "probe-http",
                     "target": "x", "name": "x", "status": "critical", "summary": "x is down",
                     "duration_ms": 1.0, "metrics": [], "trace": [], "details": {}, "labels": {}}) + "\n"

# DNS that never answers: a namespace whose resolv.conf names 127.0.0.1,
# where a UDP socket takes the questions and says nothing.
NS = "skdeadline"
dns_ok = False
if os.geteuid() == 0 and shutil.which("ip"):
    subprocess.run(["ip", "netns", "del", NS], stderr=subprocess.DEVNULL)
    os.makedirs(f"/etc/netns/{NS}", exist_ok=True)
    with open(f"/etc/netns/{NS}/resolv.conf", "w") as f:
        f.write("nameserver 127.0.0.1\noptions timeout:30 attempts:5\n")
    subprocess.run(["ip", "netns", "add", NS], check=True)
    subprocess.run(["ip", "-n", NS, "link", "set", "lo", "up"], check=True)
    dns = subprocess.Popen(["ip", "netns", "exec", NS, "python3", "-c",
                            "import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                            "s.bind(('127.0.0.1',53))\nwhile True: s.recvfrom(4096)"])
    time.sleep(0.5)
    dns_ok = True
IN_NS = ["ip", "netns", "exec", NS]

b = lambda n: os.path.join(BIN, n)
u = lambda p, path="/": f"http://127.0.0.1:{p}{path}"
cases = [
    # (binary, peer, argv before -t, env, stdin, prefix)
    ("probe-http", "silent", [b("probe-http"), u(SILENT)], {}, None, []),
    ("probe-http", "drip (1 B/s)", [b("probe-http"), u(DRIP)], {}, None, []),
    ("probe-http", "endless body", [b("probe-http"), u(ENDLESS), "--max-body", "1GiB", "-s", "never"], {}, None, []),
    ("probe-http", "tls-stall", [b("probe-http"), f"https://127.0.0.1:{TLS}/"], {}, None, []),
    ("probe-http", "dns-silent", [b("probe-http"), "http://api.example.invalid/"], {}, None, IN_NS),
    ("probe-http", "keystone silent", [b("probe-http"), "--os-endpoints"], os_env(SILENT), None, []),
    ("probe-http", "nova silent", [b("probe-http"), "--os-service", "compute"], os_env(KEYSTONE_OK), None, []),
    ("probe-host", "silent (banner)", [b("probe-host"), "-H", "127.0.0.1", "-p", str(SILENT), "-e", "SSH"], {}, None, []),
    ("probe-host", "drip (1 B/s)", [b("probe-host"), "-H", "127.0.0.1", "-p", str(DRIP), "-s", "GET / HTTP/1.0\\r\\n\\r\\n", "-E", "-e", "never"], {}, None, []),
    ("probe-host", "tls-stall", [b("probe-host"), "-H", "127.0.0.1", "-p", str(TLS), "-S"], {}, None, []),
    ("probe-host", "dns-silent", [b("probe-host"), "-H", "compute1.example.invalid", "-p", "22"], {}, None, IN_NS),
    ("probe-host", "nova silent (--verdict)", [b("probe-host"), "--verdict", "--hosts", hosts, "--openstack"], os_env(KEYSTONE_OK), None, []),
    ("probe-host", "keystone silent (--verdict)", [b("probe-host"), "--verdict", "--hosts", hosts, "--openstack"], os_env(SILENT), None, []),
    ("watch-procs", "hang-cmd (restart)", [b("watch-procs"), "--config", procs], {}, None, []),
    ("watch-domains", "libvirt silent", [b("watch-domains"), "--connect", f"qemu+unix:///system?socket={LIBVIRT_SOCK}"], {}, None, []),
    ("canary-peer", "silent", [b("canary-peer"), "probe", "--peers", u(SILENT, "")], {}, None, []),
    ("canary-peer", "drip (1 B/s)", [b("canary-peer"), "probe", "--peers", u(DRIP, "")], {}, None, []),
    ("canary-peer", "endless body", [b("canary-peer"), "probe", "--peers", u(ENDLESS, "")], {}, None, []),
    ("canary-peer", "dns-silent", [b("canary-peer"), "probe", "--peers", "http://canary.example.invalid:8080"], {}, None, IN_NS),
    ("canary-peer", "nova silent (--os-peers)", [b("canary-peer"), "probe", "--os-peers", "canary"], os_env(KEYSTONE_OK), None, []),
    ("notify", "webhook silent", [b("notify"), "--webhook", u(SILENT, "/hook")], {}, record, []),
    ("notify", "webhook drip (1 B/s)", [b("notify"), "--webhook", u(DRIP, "/hook")], {}, record, []),
    ("notify", "webhook endless body", [b("notify"), "--webhook", u(ENDLESS, "/hook")], {}, record, []),
    ("notify", "smtp-silent", [b("notify"), "--email", "ops@example.com", "--smtp", f"127.0.0.1:{SILENT}", "--smtp-from", "skyprobe@example.com"], {}, record, []),
    ("notify", "masakari silent", [b("notify"), "--masakari"], os_env(KEYSTONE_OK), record.replace("probe-http", "watch-procs"), []),
    ("notify", "hang-cmd (sink)", [b("notify"), "--command", "sleep 3600"], {}, record, []),
    ("evacuate", "keystone silent", [b("evacuate"), "compute1"], os_env(SILENT), None, []),
    ("evacuate", "nova silent", [b("evacuate"), "compute1"], os_env(KEYSTONE_OK), None, []),
]


# The real services, frozen with SIGSTOP (the process and its children),
# when a stack started by scripts/openstack.sh is named.
stack_env = {}
if os.environ.get("SKYPROBE_OPENSTACK_ENV"):
    for line in open(os.environ["SKYPROBE_OPENSTACK_ENV"]):
        if "=" in line:
            k, v = line.rstrip("\n").split("=", 1)
            stack_env[k] = v


def tree(pid):
    out = [pid]
    kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    for k in kids:
        out.extend(tree(int(k)))
    return out


def service_pid(name):
    path = stack_env.get("KEYSTONE_PID_FILE") if name == "keystone" else os.path.join(stack_env["OS_PIDS"], name)
    return int(open(path).read().strip())


def real_env(cache):
    return {"OS_AUTH_URL": stack_env["KEYSTONE_URL"], "OS_USERNAME": "admin",
            "OS_PASSWORD": stack_env["KEYSTONE_ADMIN_PASSWORD"], "OS_PROJECT_NAME": "admin",
            "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
            "SKYPROBE_CACHE_DIR": cache}


real_cases = []
if stack_env:
    warm = os.path.join(tmp, "warm-cache")
    os.makedirs(warm, exist_ok=True)
    # A token in the cache before the services freeze: Nova, Neutron,
    # Masakari and Placement are then reached without Keystone.
    subprocess.run([b("evacuate"), "compute10", "-t", "20"], env=dict(os.environ, **real_env(warm)),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc_rec = record.replace("probe-http", "watch-procs").replace('"host": "mon1"', '"host": "compute10"')
    verdict = [b("probe-host"), "--verdict", "-H", "127.0.0.1", "-p", "1", "--openstack", "-n", "1",
               "--probe-timeout", "1s"]
    for frozen, cold, legs in [
        ("keystone", True, ["probe-http", "probe-host", "canary-peer", "evacuate", "notify"]),
        ("nova-api", False, ["probe-http", "probe-host", "canary-peer", "evacuate"]),
        ("neutron-server", False, ["probe-host"]),
        ("masakari-api", False, ["notify"]),
        ("placement", False, ["probe-http"]),
    ]:
        argv = {
            "probe-http": [b("probe-http"), "--os-endpoints"] if frozen != "placement"
            else [b("probe-http"), "--os-service", "placement"],
            "probe-host": verdict,
            "canary-peer": [b("canary-peer"), "probe", "--os-peers", "canary"],
            "evacuate": [b("evacuate"), "compute10"],
            "notify": [b("notify"), "--masakari"],
        }
        for leg in legs:
            real_cases.append((leg, f"real {frozen} SIGSTOPped", argv[leg], frozen, cold,
                               proc_rec if leg == "notify" else None))


def run(case, t):
    name, peer, argv, env, stdin, prefix = case
    if (prefix and not dns_ok) or not os.path.exists(argv[0]):
        return None
    full = prefix + argv + ["-t", str(t)]
    e = dict(os.environ, **env)
    e.pop("SKYPROBE_FORMAT", None)
    start = time.monotonic()
    p = subprocess.Popen(full, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e)
    try:
        out, err = p.communicate(input=(stdin or "").encode(), timeout=t * 3 + 30)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return (time.monotonic() - start, "hung", b"")
    wall = time.monotonic() - start
    return (wall, p.returncode, (out + err)[-300:])


rows = []
failures = 0
for case in cases:
    cells = []
    for t in TIMEOUTS:
        r = run(case, t)
        if r is None:
            cells.append("n/a")
            continue
        wall, code, tail = r
        ok = wall <= t * 1.1 and code != "hung"
        failures += 0 if ok else 1
        cells.append(f"{wall:.2f} s ({code}){'' if ok else ' **over**'}")
        if code not in (0, 1, 2, 3):
            sys.stderr.write(f"{case[0]} / {case[1]} -t {t}: exit {code}: {tail!r}\n")
    rows.append(f"| {case[0]} | {case[1]} | " + " | ".join(cells) + " |")
    print(rows[-1], flush=True)

for name, peer, argv, frozen, cold, stdin in real_cases:
    pids = tree(service_pid(frozen))
    for pid in pids:
        os.kill(pid, 19)  # SIGSTOP
    try:
        cells = []
        for t in TIMEOUTS:
            cache = tempfile.mkdtemp(dir=tmp) if cold else warm
            r = run((name, peer, argv, real_env(cache), stdin, []), t)
            wall, code, tail = r
            ok = wall <= t * 1.1 and code != "hung"
            failures += 0 if ok else 1
            cells.append(f"{wall:.2f} s ({code}){'' if ok else ' **over**'}")
        rows.append(f"| {name} | {peer} | " + " | ".join(cells) + " |")
        print(rows[-1], flush=True)
    finally:
        for pid in pids:
            os.kill(pid, 18)  # SIGCONT

if dns_ok:
    dns.kill()
    subprocess.run(["ip", "netns", "del", NS])
    shutil.rmtree(f"/etc/netns/{NS}", ignore_errors=True)
shutil.rmtree(tmp, ignore_errors=True)

table = "| binary | hostile peer | -t 1 | -t 2 | -t 10 |\n|---|---|---:|---:|---:|\n" + "\n".join(rows)
print(f"{failures} run(s) over -t + 10 %")
with open(os.path.join(tempfile.gettempdir(), "skyprobe-deadlines.md"), "w") as f:
    f.write(table + "\n")
sys.exit(1 if failures else 0)
