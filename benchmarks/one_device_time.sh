#!/bin/bash
# Issue 27: the one-device command's search time on this checkout against another commit.
#   benchmarks/one_device_time.sh BEFORE_COMMIT [REPEATS=3] [TRIALS=12]
# Checks BEFORE_COMMIT out in a temporary worktree, warms both up with a 2-trial run, then runs
# `nas search --device pixel7 --trials TRIALS --references 0 --no-distill` REPEATS times on each,
# interleaved, and prints each wall time (seconds). Compare the medians. Run it alone.
set -e
before=${1:?usage: one_device_time.sh BEFORE_COMMIT [REPEATS] [TRIALS]}
reps=${2:-3}; trials=${3:-12}
here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d); trap 'git -C "$here" worktree remove --force "$tmp/before" >/dev/null 2>&1; rm -rf "$tmp"' EXIT
git -C "$here" worktree add -q --detach "$tmp/before" "$before"
run() {  # tree out trials
  (cd "$1" && PYTHONPATH="$1" python -m nas search --device pixel7 --trials "$3" --references 0 \
     --no-distill --out "$2" >/dev/null 2>&1)
}
run "$tmp/before" "$tmp/warm-before" 2; run "$here" "$tmp/warm-this" 2
for r in $(seq "$reps"); do
  for side in before this; do
    tree=$here; [ "$side" = before ] && tree=$tmp/before
    t0=$(date +%s.%N); run "$tree" "$tmp/r$r-$side" "$trials"; t1=$(date +%s.%N)
    echo "$side repeat $r: $(echo "$t1 - $t0" | bc) s"
  done
done
