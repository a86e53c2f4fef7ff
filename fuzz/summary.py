#!/usr/bin/env python3
"""The campaign's figures, one Markdown row per target, from AFL++'s
fuzzer_stats under fuzz/out/TARGET/default/ (written by fuzz/run.sh)."""
import pathlib

print("| target | run time (s) | executions | per second | corpus | edges | stability | crashes | hangs |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for stats in sorted(pathlib.Path(__file__).parent.glob("out/*/default/fuzzer_stats")):
    kv = {}
    for line in stats.read_text().splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            kv[k.strip()] = v.strip()
    print(f"| {stats.parent.parent.name} | {kv['run_time']} | {int(kv['execs_done']):,} | "
          f"{float(kv['execs_per_sec']):,.0f} | {kv['corpus_count']} | {kv['edges_found']} | "
          f"{kv['stability']} | {kv['saved_crashes']} | {kv['saved_hangs']} |")
