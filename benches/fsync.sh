#!/usr/bin/env bash
# The cost of `segment --fsync` (each asset and the directory fsynced before
# its index record is appended): median of 5 runs with and without, on the
# captures benches/segment.py makes (run it first), and the ratio.
#   bash benches/fsync.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/backset
work=target/bench
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
run() { # capture flags...
  local capture=$1; shift
  for _ in 1 2 3 4 5; do
    rm -rf "$work/fsync-out"; sync
    local s e
    s=$(date +%s%N); "$bin" segment "$work/fsync-out" "$capture" -q "$@"; e=$(date +%s%N)
    echo $(( (e - s) / 1000 ))
  done | median
}
printf '%-16s %8s %14s %14s %8s\n' capture assets "plain ms" "--fsync ms" ratio
for name in 720p-60s-16M 180p-10m-360k; do
  capture="$work/$name.mp4"
  [ -s "$capture" ] || { echo "missing $capture: run python3 benches/segment.py first" >&2; exit 1; }
  plain=$(run "$capture")
  synced=$(run "$capture" --fsync)
  assets=$(ls "$work/fsync-out" | grep -c '^asset-')
  python3 -c "print(f'{\"$name\":<16} {$assets:>8} {$plain/1000:>14.1f} {$synced/1000:>14.1f} {$synced/$plain:>8.2f}')"
done
rm -rf "$work/fsync-out"
