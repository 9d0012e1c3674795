#!/usr/bin/env bash
# The stream directory on an S3-compatible store (moto's server, loopback):
#  (a) publish latency, asset complete -> object visible, p50/p99, as
#      `backset segment s3://bench/ch1` reports it for a capture fed at its
#      own pace (60 s of 720p H.264 4 Mbit/s + AAC, 2 s assets), against a
#      bare PUT of an object of the median asset's size with curl (unsigned,
#      one connection each: the floor of a store round trip);
#  (b) requests/s of `backset serve s3://bench/ch1` (its memory cache in
#      front of the store) against `backset serve DIR` on the same stream,
#      for one whole asset (wrk on loopback, 10 s each).
# Prints each figure and the ratios store/reference.
#   bash benches/store.sh     (needs: pip install 'moto[server]', apt-get install wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v moto_server >/dev/null || python3 -m pip install -q 'moto[server]==5.2.1'
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release --quiet
bin=$PWD/target/release/backset
mkdir -p target/bench
capture=target/bench/720p-60s-4M.mp4
if [ ! -s "$capture" ]; then
  ffmpeg -hide_banner -loglevel error -nostdin \
    -f lavfi -i "testsrc2=size=1280x720:rate=30" -f lavfi -i "sine=frequency=440:sample_rate=48000" -t 60 \
    -c:v libx264 -preset ultrafast -b:v 4000k -g 60 -bf 0 -pix_fmt yuv420p -c:a aac -b:a 128k \
    -f mp4 -movflags +frag_keyframe+empty_moov+default_base_moof "$capture.tmp"
  mv "$capture.tmp" "$capture"
fi
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; kill -- -$(cat "$work/moto.pid" 2>/dev/null) 2>/dev/null; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # url: until it answers at all (any status), 60 s at most
  for _ in $(seq 600); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "$1 never answered" >&2; return 1
}
pct() { # p (0-100), numbers on stdin: nearest-rank percentile
  python3 -c "import math,sys; v=sorted(float(x) for x in sys.stdin.read().split()); print(v[max(0,math.ceil($1/100*len(v))-1)])"
}
untested=()

# The store, and the same stream cut into a local directory (the reference
# of (b), and the asset sizes of (a)'s reference PUT).
s3port=$(free_port)
setsid moto_server -H 127.0.0.1 -p "$s3port" >"$work/moto.log" 2>&1 &
echo $! > "$work/moto.pid"
endpoint=http://127.0.0.1:$s3port
wait_http "$endpoint/"
curl -sf -o /dev/null -X PUT -H 'x-amz-acl: public-read' "$endpoint/bench"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_ENDPOINT_URL=$endpoint
"$bin" segment "$work/local" "$capture" -q
assets=$(cd "$work/local" && ls | grep -E '^asset-[0-9]{8}\.mp4$')
median_size=$(cd "$work/local" && stat -c %s $assets | pct 50 | cut -d. -f1)
middle=$(sed -n "$(( $(wc -l <<<"$assets") / 2 ))p" <<<"$assets")

# (a) The capture written into segment's stdin at its own pace (60 s).
pace() { python3 - "$1" "$2" <<'PY'
import sys, time
data = open(sys.argv[1], "rb").read(); seconds = float(sys.argv[2]); chunk = 65536
pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)]
start = time.monotonic()
for n, p in enumerate(pieces):
    try:
        sys.stdout.buffer.write(p); sys.stdout.buffer.flush()
    except BrokenPipeError:  # segment has gone: its stderr says why
        sys.exit(1)
    time.sleep(max(0.0, start + seconds * (n + 1) / len(pieces) - time.monotonic()))
PY
}
published=""
if pace "$capture" 60 | "$bin" segment s3://bench/ch1 --spool "$work/spool" - 2>"$work/segment.err"; then
  published=$(grep -a '^store: published' "$work/segment.err" | tail -1 || true)
fi
why() { grep -a -m1 -i 'error' "$1" || tail -1 "$1"; }
[ -n "$published" ] || untested+=("(a) segment s3://: $(why "$work/segment.err")")

head -c "$median_size" /dev/urandom > "$work/object"
for i in $(seq 100); do
  curl -s -o /dev/null -w '%{time_total}\n' -X PUT -H 'Content-Type: application/octet-stream' \
    --data-binary @"$work/object" "$endpoint/bench/reference/object-$i"
done | awk '{print $1*1000}' > "$work/put_ms"
put50=$(pct 50 < "$work/put_ms"); put99=$(pct 99 < "$work/put_ms")
printf '(a) publish, asset complete -> visible (median asset %s bytes)\n' "$median_size"
printf '    %-34s p50 %8.1f ms  p99 %8.1f ms\n' "bare PUT (curl, 100 objects)" "$put50" "$put99"
if [ -n "$published" ]; then
  read -r p50 p99 <<<"$(sed -E 's/.*p50 ([0-9.]+) ms, p99 ([0-9.]+) ms.*/\1 \2/' <<<"$published")"
  printf '    %-34s p50 %8.1f ms  p99 %8.1f ms   (%s)\n' "backset segment s3://" "$p50" "$p99" "${published#store: }"
  python3 -c "print(f'    segment/bare PUT: p50 {$p50/$put50:.2f}x, p99 {$p99/$put99:.2f}x')"
fi

# (b) One asset over and over from each server; a first request warms both.
run() { wrk -t2 -c32 -d10s "$1" | awk '/Requests\/sec/ {print $2}'; }
lport=$(free_port); sport=$(free_port)
"$bin" serve "$work/local" --listen "127.0.0.1:$lport" 2>/dev/null &
wait_http "http://127.0.0.1:$lport/stream.json"
local_rps=$(run "http://127.0.0.1:$lport/$middle")
printf '(b) serve, %s, whole, wrk -t2 -c32 -d10s\n' "$middle"
printf '    %-34s %10.0f req/s\n' "serve DIR" "$local_rps"
if [ -n "$published" ]; then
  "$bin" serve s3://bench/ch1 --listen "127.0.0.1:$sport" 2>"$work/serve.err" &
  if wait_http "http://127.0.0.1:$sport/stream.json" \
    && [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$sport/$middle")" = 200 ]; then
    store_rps=$(run "http://127.0.0.1:$sport/$middle")
    printf '    %-34s %10.0f req/s\n' "serve s3://" "$store_rps"
    python3 -c "print(f'    store/local: {$store_rps/$local_rps:.2f}x requests/s')"
  else
    untested+=("(b) serve s3://: $(why "$work/serve.err")")
  fi
else
  untested+=("(b) serve s3://: nothing was published to serve")
fi

if [ ${#untested[@]} -gt 0 ]; then
  printf 'NOT MEASURED: %s\n' "${untested[@]}" >&2
  exit 1
fi
