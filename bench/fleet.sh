#!/usr/bin/env bash
# probe-http --targets over 10,000 loopback targets (HTTP, then HTTPS) side
# by side with Prometheus blackbox_exporter driven by wrk at its best
# concurrency, against the same nginx: probes per second and peak RSS.
# Writes the figures into BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${TARGETS:-10000}
# Another build to measure (a before/after comparison): PROBE_HTTP=path.
probe=${PROBE_HTTP:-target/release/probe-http}
secs=${SECONDS_PER_RUN:-8}

need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v wrk >/dev/null || need+=(wrk)
command -v prometheus-blackbox-exporter >/dev/null || need+=(prometheus-blackbox-exporter)
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd=sudo
  [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' | $sudo_cmd tee /usr/sbin/policy-rc.d >/dev/null; $sudo_cmd chmod +x /usr/sbin/policy-rc.d; }
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
cargo build --release --quiet --bins
mkdir -p bench/out
cc -O2 -o bench/out/measure bench/measure.c

tmp=$(mktemp -d)
cleanup() {
  [ -f "$tmp/nginx.pid" ] && kill "$(cat "$tmp/nginx.pid")" 2>/dev/null || true
  [ -n "${bb:-}" ] && kill "$bb" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

http_port=18081; https_port=18443; bb_port=19115
# A CA and a leaf signed by it (webpki refuses a CA certificate used as the
# server's own, as openssl req -x509 makes by default).
ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
openssl req -x509 $ec -days 2 -keyout "$tmp/ca.key" -out "$tmp/ca.pem" -subj /CN=skyprobe-bench-ca 2>/dev/null
openssl req $ec -keyout "$tmp/key.pem" -out "$tmp/leaf.csr" -subj /CN=localhost 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' >"$tmp/leaf.ext"
openssl x509 -req -in "$tmp/leaf.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -CAcreateserial -days 2 \
  -extfile "$tmp/leaf.ext" -out "$tmp/cert.pem" 2>/dev/null
mkdir -p "$tmp/nginx"
cat >"$tmp/nginx.conf" <<CONF
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $tmp/nginx; proxy_temp_path $tmp/nginx; fastcgi_temp_path $tmp/nginx;
  uwsgi_temp_path $tmp/nginx; scgi_temp_path $tmp/nginx;
  server {
    listen 127.0.0.1:$http_port;
    listen 127.0.0.1:$https_port ssl;
    ssl_certificate $tmp/cert.pem; ssl_certificate_key $tmp/key.pem;
    location / { return 200 "ok\n"; }
  }
}
CONF
nginx -c "$tmp/nginx.conf" -p "$tmp"
cat >"$tmp/bb.yml" <<YML
modules:
  http_2xx:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      tls_config:
        ca_file: $tmp/ca.pem
YML
prometheus-blackbox-exporter --config.file "$tmp/bb.yml" --web.listen-address "127.0.0.1:$bb_port" --log.level=error \
  >"$tmp/bb.log" 2>&1 &
bb=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$bb_port/metrics" >/dev/null 2>&1 && break; sleep 0.1; done

targets_file() {  # scheme port -> path
  local f="$tmp/targets-$1.toml"
  { echo "[defaults]"; echo "ca-file = \"$tmp/ca.pem\""; echo "timeout = \"10s\"";
    for i in $(seq "$n"); do printf '[[target]]\nname = "t%s"\nurl = "%s://127.0.0.1:%s/t/%s"\n' "$i" "$1" "$2" "$i"; done; } >"$f"
  echo "$f"
}

blackbox_best() {  # scheme port -> "rate concurrency failures rss_mib"
  local best="0 0 0 0"
  for c in 5 10 20 40; do
    cat >"$tmp/probe.lua" <<LUA
local i = 0
local failed = 0
request = function()
  i = i + 1
  return wrk.format("GET", "/probe?module=http_2xx&target=$1://127.0.0.1:$2/t/" .. i)
end
response = function(status, headers, body)
  if not string.find(body, "probe_success 1", 1, true) then failed = failed + 1 end
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %.1f %d\n", summary.requests / (summary.duration / 1e6), failed))
end
LUA
    out=$(wrk -t 2 -c "$c" -d "${secs}s" -s "$tmp/probe.lua" "http://127.0.0.1:$bb_port" 2>&1 | grep RESULT || true)
    rate=$(echo "$out" | awk '{print $2}'); fails=$(echo "$out" | awk '{print $3}')
    rss=$(awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$bb/status")
    if awk -v a="${rate:-0}" -v b="${best%% *}" 'BEGIN{exit !(a>b)}'; then best="$rate $c ${fails:-?} $rss"; fi
  done
  echo "$best"
}

probe_http_best() {  # file [extra flags] -> "rate concurrency wall_s rss_mib exit"
  local best="0 0 0 0 0" file=$1
  shift
  for c in 8 16 32 64 128; do
    read -r ns kib code < <(bench/out/measure "$probe" --targets "$file" --concurrency "$c" -t 120 "$@")
    rate=$(awk -v n="$n" -v ns="$ns" 'BEGIN{printf "%.1f", n/(ns/1e9)}')
    if awk -v a="$rate" -v b="${best%% *}" 'BEGIN{exit !(a>b)}'; then
      best="$rate $c $(awk -v ns="$ns" 'BEGIN{printf "%.2f", ns/1e9}') $(awk -v k="$kib" 'BEGIN{printf "%.1f", k/1024}') $code"
    fi
  done
  echo "$best"
}

rows=""
for scheme in http https; do
  port=$http_port; [ "$scheme" = https ] && port=$https_port
  file=$(targets_file "$scheme" "$port")
  read -r bb_rate bb_c bb_fail bb_rss < <(blackbox_best "$scheme" "$port")
  variants=("")
  # Full handshakes on every probe, as blackbox_exporter makes them.
  [ "$scheme" = https ] && variants+=("--no-tls-resume")
  for flags in "${variants[@]}"; do
    # shellcheck disable=SC2086 # $flags is one flag or none
    read -r ph_rate ph_c ph_wall ph_rss ph_code < <(probe_http_best "$file" $flags)
    ratio=$(awk -v a="$ph_rate" -v b="$bb_rate" 'BEGIN{ if (b>0) printf "%.1fx", a/b; else print "-" }')
    rows+="| $scheme | probe-http --targets${flags:+ $flags} ($n targets) | $ph_rate /s | --concurrency $ph_c | $ph_rss MiB | $ratio | ${n} records in ${ph_wall} s, exit $ph_code |
"
  done
  rows+="| $scheme | blackbox_exporter 0.23 via wrk | $bb_rate /s | $bb_c connections | $bb_rss MiB (VmHWM) | 1.0x | $bb_fail probes without probe_success 1 |
"
done

section="## probe-http --targets vs blackbox_exporter (bench/fleet.sh)

Measured $(date -u +%Y-%m-%d) on $(nproc) cores: one nginx worker on 127.0.0.1
answering \`200 ok\`, HTTPS with a P-256 leaf certificate verified by both sides
against its CA file (nginx 1.22 here offers up to TLS 1.2, which both
negotiate; probe-http's suite is ECDHE-ECDSA with AES-256-GCM). probe-http probes $n targets once (\`--targets\`, wall
time and peak RSS by \`bench/measure.c\`, best of --concurrency 8/16/32/64/128);
blackbox_exporter is driven by wrk (2 threads, ${secs} s, best of 5/10/20/40
connections), each request one probe of a new target URL. Both open a new
connection per probe. Over HTTPS, probe-http by default resumes the TLS
session of an earlier connection to the same origin in the run (the first
connections make full handshakes and verify the certificate);
\`--no-tls-resume\` makes a full handshake every time, as blackbox_exporter
does (it keeps no session cache). Everything shares the same 2 cores.

| scheme | prober | probes per second | at | peak RSS | rate vs blackbox | notes |
|---|---|---:|---|---:|---:|---|
$rows"
python3 bench/section.py "probe-http --targets vs blackbox_exporter (bench/fleet.sh)" "$section"
echo "$section"
