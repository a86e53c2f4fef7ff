#!/usr/bin/env bash
# A fuzzing campaign: each target of skyprobe::fuzz::TARGETS (or those
# named) under AFL++ for SECONDS, one after another, then the queue
# minimised (afl-cmin) back into fuzz/corpus/TARGET, and one line of
# figures per target appended to fuzz/out/summary.tsv (FUZZING.md reads
# them). Needs cargo-afl: cargo install cargo-afl && cargo afl config --build.
#   fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-300}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(ls corpus)
fi
cargo afl build --release --quiet
bin=target/release/skyprobe-fuzz
export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1
mkdir -p out
for t in "${targets[@]}"; do
  rm -rf "out/$t"
  # -m: the memory bound of a target (skyprobe::fuzz::MEMORY_BOUND);
  # -t: an input that runs longer than 2 s is a hang.
  SKYPROBE_FUZZ_TARGET=$t cargo afl fuzz -i "corpus/$t" -o "out/$t" -m 512 -t 2000 \
    -V "$seconds" -- "$bin" >"out/$t.log" 2>&1 || true
  stats=out/$t/default/fuzzer_stats
  get() { awk -F' *: *' -v k="$1" '$1 == k { print $2 }' "$stats"; }
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$(get run_time)" "$(get execs_done)" \
    "$(get execs_per_sec)" "$(get corpus_count)" "$(get saved_crashes)" "$(get saved_hangs)" \
    "$(get edges_found)" | tee -a out/summary.tsv
  # Crashing and hanging inputs are kept (as crash-*/hang-* in the corpus,
  # replayed by the test suite once fixed) before anything is cleared.
  for kind in crashes hangs; do
    for f in "out/$t/default/$kind"/id:*; do
      [ -f "$f" ] || continue
      mkdir -p "saved/$t"
      cp "$f" "saved/$t/${kind%es}-$(basename "$f" | cut -d, -f1 | tr -d 'id:')"
    done
  done
  # The queue, minimised, becomes the checked-in corpus.
  rm -rf "out/$t.min"
  if SKYPROBE_FUZZ_TARGET=$t cargo afl cmin -i "out/$t/default/queue" -o "out/$t.min" \
      -m 512 -t 2000 -- "$bin" >"out/$t.cmin.log" 2>&1; then
    rm -rf "corpus/$t"
    mkdir -p "corpus/$t"
    n=0
    for f in "out/$t.min"/*; do
      n=$((n + 1))
      cp "$f" "corpus/$t/$(printf '%04d' "$n")"
    done
    [ -d "saved/$t" ] && cp "saved/$t"/* "corpus/$t/"
  fi
done
