#!/usr/bin/env bash
# MPEG-TS ingest: `backset segment` on a 60 s 720p H.264 + AAC transport
# stream against ffmpeg remuxing the same capture into MP4 segments
# (`-c copy -f segment -segment_format mp4`), the closest thing ffmpeg does.
# Prints wall time, CPU time and peak RSS of each, and the ratios.
#   bash benches/ts_ingest.sh          (the capture is cached in target/bench)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=$PWD/target/release/backset
work=$PWD/target/bench
mkdir -p "$work"
ts="$work/720p-60s.ts"
if [ ! -s "$ts" ]; then
  ffmpeg -hide_banner -loglevel error -nostdin \
    -f lavfi -i "testsrc2=size=1280x720:rate=30" -f lavfi -i "sine=frequency=440:sample_rate=48000" -t 60 \
    -c:v libx264 -preset ultrafast -b:v 4000k -g 60 -bf 0 -pix_fmt yuv420p -c:a aac -b:a 128k \
    -f mpegts - > "$ts"
fi

command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time; }
# Wall seconds, CPU seconds and peak RSS (KiB) of a command, best of 3 by wall time.
measure() {
  local best=""
  for _ in 1 2 3; do
    rm -rf "$work/ts-out" "$work/ts-ffmpeg" && mkdir -p "$work/ts-ffmpeg"
    /usr/bin/time -f "%e %U %S %M" -o "$work/time" "$@" >/dev/null 2>&1
    read -r wall user sys rss < "$work/time"
    line="$wall $(python3 -c "print(round($user+$sys,2))") $rss"
    if [ -z "$best" ] || python3 -c "import sys; sys.exit(0 if $wall < ${best%% *} else 1)"; then best=$line; fi
  done
  echo "$best"
}

read -r bw bc br <<<"$(measure "$bin" segment "$work/ts-out" "$ts" --new -q)"
read -r fw fc fr <<<"$(measure ffmpeg -hide_banner -loglevel error -nostdin -i "$ts" -map 0 -c copy \
  -f segment -segment_time 2 -segment_format mp4 -reset_timestamps 1 "$work/ts-ffmpeg/seg-%05d.mp4")"
mb=$(python3 -c "import os;print(round(os.path.getsize('$ts')/1e6,1))")
printf '%s MB of MPEG-TS (60 s, 1280x720 H.264 4 Mbit/s + AAC)\n' "$mb"
printf '%-28s %8s %8s %12s\n' tool "wall s" "CPU s" "peak KiB"
printf '%-28s %8s %8s %12s\n' "backset segment" "$bw" "$bc" "$br"
printf '%-28s %8s %8s %12s\n' "ffmpeg -c copy -f segment" "$fw" "$fc" "$fr"
printf 'backset/ffmpeg: wall %.2f, CPU %.2f, peak RSS %.2f\n' \
  "$(python3 -c "print($bw/max($fw,0.01))")" "$(python3 -c "print($bc/max($fc,0.01))")" "$(python3 -c "print($br/$fr)")"
