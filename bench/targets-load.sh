#!/usr/bin/env bash
# How long probe-http takes to load a big targets file, and its peak RSS:
# 100,000 and 1,000,000 targets as TOML and as CSV, each run with
# `--only target-0` (the whole file is read and checked, one target is
# probed: a closed loopback port). OLD=path/to/probe-http adds the same
# runs of another build side by side (the build before a change).
# Writes the figures into BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-3}
cargo build --release --quiet --bin probe-http
mkdir -p bench/out
cc -O2 -o bench/out/measure bench/measure.c
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

python3 - "$tmp" <<'PY'
import sys
d = sys.argv[1]
for n in (100_000, 1_000_000):
    with open(f"{d}/t{n}.toml", "w") as f:
        f.write('[defaults]\nexpect = "200"\ntimeout = "2s"\n\n')
        for i in range(n):
            f.write(f'[[target]]\nname = "target-{i}"\nurl = "http://127.0.0.1:9/{i}"\nlabels = {{ az = "zone-{i % 3}" }}\n\n')
    with open(f"{d}/t{n}.csv", "w") as f:
        f.write("name,url,expect,labels\n")
        for i in range(n):
            f.write(f"target-{i},http://127.0.0.1:9/{i},200,az=zone-{i % 3}\n")
PY

builds=("new=target/release/probe-http")
[ -n "${OLD:-}" ] && builds+=("old=$OLD")
rows=""
for n in 100000 1000000; do
  for kind in toml csv; do
    file="$tmp/t$n.$kind"
    flag=--targets; [ "$kind" = csv ] && flag=--targets-csv
    size=$(du -m "$file" | cut -f1)
    for b in "${builds[@]}"; do
      name=${b%%=*}; bin=${b#*=}
      best_ns=""; best_rss=""; code=""
      for _ in $(seq "$runs"); do
        read -r ns rss code < <(bench/out/measure "$bin" "$flag" "$file" --only target-0 -t 30)
        if [ -z "$best_ns" ] || [ "$ns" -lt "$best_ns" ]; then best_ns=$ns; fi
        if [ -z "$best_rss" ] || [ "$rss" -lt "$best_rss" ]; then best_rss=$rss; fi
      done
      rows+="| $n | $kind ($size MB) | $name | $(awk "BEGIN{printf \"%.2f s\", $best_ns/1e9}") | $(awk "BEGIN{printf \"%.0f MiB\", $best_rss/1024}") | $code |
"
    done
  done
done

section="## probe-http: loading a big targets file (bench/targets-load.sh)

Measured $(date -u +%Y-%m-%d) on $(nproc) cores, best of $runs runs each:
\`probe-http --targets FILE --only target-0 -t 30\`, so the whole file is
read, parsed and checked and one target is probed (a closed loopback port,
exit 2). Wall time and peak RSS by \`bench/measure.c\`. Targets have a name,
a URL and one label (three distinct sets); \`[defaults]\` sets \`expect\`
and \`timeout\`. \`-t\` counts from the moment the file is loaded.

| targets | file | build | wall | peak RSS | exit |
|---:|---|---|---:|---:|---:|
$rows"
python3 bench/section.py "probe-http: loading a big targets file (bench/targets-load.sh)" "$section"
echo "$section"
