#!/usr/bin/env bash
# watch-procs -C NAME against check_procs -C NAME (Debian
# monitoring-plugins-basic) and pgrep -c -x NAME, on this machine with 1,000
# extra sleeping processes: alternating runs, median wall time, peak RSS,
# ratios. Writes the figures into BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-100}
extra=${EXTRA:-1000}

plugins=/usr/lib/nagios/plugins
if [ ! -x "$plugins/check_procs" ]; then
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd=sudo
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends monitoring-plugins-basic procps
fi
cargo build --release --quiet --bins
mkdir -p bench/out
cc -O2 -o bench/out/measure bench/measure.c

# The extra processes: bounded (they end by themselves) and killed on exit.
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
for _ in $(seq "$extra"); do sleep 1800 & pids+=($!); done
total=$(ls -d /proc/[0-9]* | wc -l)

table=$(python3 bench/run.py --runs "$runs" --baseline check_procs \
  "watch-procs=target/release/watch-procs -C sleep --format nagios" \
  "check_procs=$plugins/check_procs -C sleep" \
  "pgrep=/usr/bin/pgrep -c -x sleep" \
  "true=/bin/true")

section="## watch-procs -C (bench/watch-procs.sh)

Measured $(date -u +%Y-%m-%d) on $(nproc) cores with $total processes in /proc
($extra of them extra \`sleep\`s), $runs alternating runs each after warm-up,
all three counting \`sleep\` by exact command name. Wall time and peak RSS
taken by \`bench/measure.c\`. Each /proc read costs this machine's kernel
about 10 us, so the table scan dominates; watch-procs reads only
\`/proc/PID/stat\` for -C and splits the table over the cores.

$table
"
python3 bench/section.py "watch-procs -C (bench/watch-procs.sh)" "$section"
echo "$table"
