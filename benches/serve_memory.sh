#!/usr/bin/env bash
# Peak memory of `backset serve` when 300 viewers ask at once for an asset
# of about 8 MB just published (the live-edge pattern): one read is shared
# by every waiting request, so the peak must stay under the cache size +
# 64 MiB. Run with the default cache (64 MiB) and with --cache 0 (every
# answer from the one shared read, or from the file 64 KiB at a time).
#   bash benches/serve_memory.sh        (needs ffmpeg and wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release --quiet
bin=target/release/backset
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT

# About 16 Mbit/s: noise defeats the encoder, so 4 s hold about 8 MB.
ffmpeg -hide_banner -loglevel error -nostdin \
  -f lavfi -i "testsrc2=size=640x360:rate=30,noise=alls=60:allf=t" -t 9 \
  -c:v libx264 -preset ultrafast -b:v 16M -maxrate 16M -bufsize 4M -g 120 -pix_fmt yuv420p \
  -f mp4 -movflags frag_keyframe+empty_moov+default_base_moof "$work/capture.mp4"
"$bin" segment "$work/out" "$work/capture.mp4" --interval 4s -q
asset=$(ls -S "$work/out"/asset-*.mp4 | head -1)
name=$(basename "$asset")
size=$(stat -c %s "$asset")
printf 'asset %s: %.1f MB\n' "$name" "$(echo "$size / 1000000" | bc -l)"

printf '%-26s %9s %9s %8s %s\n' flags "peak MiB" "bound MiB" "req/s" verdict
port=18190
# cache MiB, then serve's flags; the last row turns the shared read off
# too: every answer from its file, 64 KiB at a time.
for run in "64|--cache 64MiB" "0|--cache 0" "0|--cache 0 --shared-reads 0"; do
  cache_mib=${run%%|*}
  read -r -a flags <<<"${run#*|}"
  port=$((port + 1))
  "$bin" serve "$work/out" --listen 127.0.0.1:$port "${flags[@]}" 2>/dev/null &
  pid=$!
  for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/backset.json" && break; sleep 0.1; done
  rps=$(wrk -t2 -c300 -d5s "http://127.0.0.1:$port/$name" | awk '/Requests\/sec/ {print $2}')
  peak=$(( $(awk '/VmHWM/ {print $2}' "/proc/$pid/status") / 1024 ))
  kill "$pid"; wait "$pid" 2>/dev/null || true
  bound=$((cache_mib + 64))
  verdict=ok; [ "$peak" -lt "$bound" ] || verdict=OVER
  printf '%-26s %9d %9d %8.0f %s\n' "${run#*|}" "$peak" "$bound" "$rps" "$verdict"
done
