#!/bin/sh
# The per-viewer backset on real shaped links (issue 12 point 7), for the
# README: runs tests/shaped.rs's scenario (segment on a paced 1 Mbit/s live
# capture, serve, eight follow viewers in network namespaces behind tc tbf
# links at 0.9, 1.5 with dips to 0.5, 3 and 50 Mbit/s, each link once at the
# advised backset and once at the live edge, 60 s) RUNS times (default 1) and
# prints each run's table. Needs root, iproute2 and ffmpeg; about 90 s a run.
# BACKSET_SHAPED_KEEP=1 keeps each run's stream, reports and follow logs.
#
#   sudo benches/shaped.sh [RUNS]
set -eu
cd "$(dirname "$0")/.."
runs=${1:-1}
if [ "$(id -u)" != 0 ]; then
    echo "shaped.sh: needs root (network namespaces, veth, tc)" >&2
    exit 2
fi
cargo test --test shaped --no-run 2>/dev/null
i=1
while [ "$i" -le "$runs" ]; do
    echo "run $i of $runs"
    # The table is printed before the claims are checked; a run whose
    # claim fails says which and goes on to the next.
    RUST_BACKTRACE=0 cargo test -q --test shaped slow_and_dipping -- --nocapture 2>&1 |
        grep -vE '^(running|failures:|$)' || true
    i=$((i + 1))
done
left=$(ip netns list | grep -c '^bsh-' || true)
echo "namespaces left behind: $left"
