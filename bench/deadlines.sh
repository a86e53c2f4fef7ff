#!/usr/bin/env bash
# The deadline matrix (bench/deadlines.py): the seven binaries against
# hostile peers with -t 1, 2 and 10; every run must end within -t + 10 %.
# BUILD=release (default) or debug. Needs root for the DNS leg (a network
# namespace with its own resolv.conf); SKYPROBE_OPENSTACK_ENV adds the real
# services, frozen. Writes the table into BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-release}
if [ "$build" = release ]; then
  cargo build --release --quiet --features libvirt --bins
else
  cargo build --quiet --features libvirt --bins
fi
status=0
/usr/bin/python3 bench/deadlines.py "target/$build" || status=$?
table=$(cat /tmp/skyprobe-deadlines.md)
section="## The deadline matrix (bench/deadlines.sh)

Measured $(date -u +%Y-%m-%d) on $(nproc) cores, $build build${NOTE:+, $NOTE}: each
binary against each hostile peer it can meet, once per \`-t\`; the cell is
the wall time from spawn to exit and the exit code. A run passes when it
ends within \`-t\` + 10 %. The peers (bench/deadlines.py): a TCP server that
accepts and never reads (what a SIGSTOPped service looks like from
outside), HTTP at one byte per second, an endless chunked body, a TLS
server that never answers the ClientHello, a resolver that never answers
(in a namespace of the script's, through /etc/netns/NS/resolv.conf), a
silent Keystone, a Keystone whose catalog points Nova, Neutron, Masakari
and Placement at a silent port, an SMTP server that never greets, a
command that never ends, and a libvirt socket that accepts and never
answers. With \`SKYPROBE_OPENSTACK_ENV\` (a stack from scripts/openstack.sh)
the real Keystone, nova-api, neutron-server, masakari-api and Placement are
frozen with SIGSTOP in turn (the process and its children); Keystone with
no token cached, the others with one.

$table
"
/usr/bin/python3 bench/section.py "The deadline matrix (bench/deadlines.sh)" "$section"
cat /tmp/skyprobe-deadlines.md
exit $status
