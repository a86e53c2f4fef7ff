#!/usr/bin/env python3
"""Side-by-side timing of one-shot commands: alternating runs, wall time and
peak RSS per run (from wait4's rusage), medians and ratios against a
baseline. Writes a Markdown section to stdout.

Usage: run.py --runs N --baseline NAME NAME=COMMAND... (COMMAND is split on spaces)
"""
import argparse
import os
import statistics
import subprocess
import sys


MEASURE = os.environ.get("MEASURE", "bench/out/measure")


def once(argv):
    """Wall seconds, peak RSS KiB and exit code of one run, taken by the C
    launcher (bench/measure.c) so the parent's memory is not counted."""
    out = subprocess.run([MEASURE] + argv, capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]) / 1e9, int(out[1]), int(out[2])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--baseline", required=True)
    ap.add_argument("commands", nargs="+")
    args = ap.parse_args()
    cmds = []
    for spec in args.commands:
        name, _, command = spec.partition("=")
        cmds.append((name, command.split()))
    for _ in range(args.warmup):
        for _, argv in cmds:
            once(argv)
    walls = {n: [] for n, _ in cmds}
    rss = {n: [] for n, _ in cmds}
    codes = {n: set() for n, _ in cmds}
    for _ in range(args.runs):
        # Alternate so drift (frequency, cache, other load) hits all alike.
        for name, argv in cmds:
            w, r, c = once(argv)
            walls[name].append(w)
            rss[name].append(r)
            codes[name].add(c)
    base = statistics.median(walls[args.baseline])
    print(f"| command | median wall | p90 wall | peak RSS (median) | wall vs {args.baseline} | exit codes |")
    print("|---|---:|---:|---:|---:|---|")
    for name, argv in cmds:
        w = sorted(walls[name])
        med = statistics.median(w)
        p90 = w[int(len(w) * 0.9) - 1]
        r = statistics.median(rss[name]) / 1024
        print(f"| `{name}` | {med*1000:.2f} ms | {p90*1000:.2f} ms | {r:.1f} MiB | {med/base:.2f}x | {sorted(codes[name])} |")


if __name__ == "__main__":
    sys.exit(main())
