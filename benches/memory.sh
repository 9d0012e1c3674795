#!/usr/bin/env bash
# Peak memory of `backset segment` on a 1-minute and a 10-minute capture,
# against `cp` of the same bytes as the reference. Memory must stay flat:
# the ratio 10 min / 1 min should be about 1.
#   bash benches/memory.sh            (captures are cached in target/bench)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/backset
work=target/bench
mkdir -p "$work"

capture() { # seconds file
  [ -s "$2" ] && return
  ffmpeg -hide_banner -loglevel error -nostdin \
    -f lavfi -i "testsrc2=size=640x360:rate=30" -f lavfi -i "sine=frequency=440:sample_rate=48000" -t "$1" \
    -c:v libx264 -preset ultrafast -b:v 1500k -g 60 -pix_fmt yuv420p -c:a aac -b:a 96k \
    -f mp4 -movflags frag_keyframe+empty_moov+default_base_moof - > "$2"
}

# Peak RSS in KiB of a command (GNU time: a small parent, so the figure is
# the command's own).
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time; }
peak_kib() {
  /usr/bin/time -f %M -o "$work/rss" "$@" >/dev/null
  cat "$work/rss"
}

capture 60 "$work/1min.mp4"
capture 600 "$work/10min.mp4"
printf '%-8s %10s %14s %14s %10s\n' capture MB "segment KiB" "cp KiB" "seg/cp"
declare -A seg
for name in 1min 10min; do
  f="$work/$name.mp4"
  rm -rf "$work/out-$name" "$work/copy-$name"
  s=$(peak_kib "$bin" segment "$work/out-$name" "$f" --new -q)
  c=$(peak_kib cp "$f" "$work/copy-$name")
  seg[$name]=$s
  mb=$(python3 -c "import os;print(round(os.path.getsize('$f')/1e6,1))")
  printf '%-8s %10s %14s %14s %10.2f\n' "$name" "$mb" "$s" "$c" "$(python3 -c "print($s/$c)")"
done
printf 'peak RSS ratio 10min/1min: %.2f\n' "$(python3 -c "print(${seg[10min]}/${seg[1min]})")"
