#!/usr/bin/env bash
# Load on `backset serve` beside nginx serving the same stream directory:
# requests/s and p99 latency for whole-asset and byte-range requests (wrk on
# loopback, 10 s each), and the ratio backset/nginx; backset answers from
# its memory of recent assets (the default) and from the file (--cache 0).
#   bash benches/serve.sh      (needs: apt-get install wrk nginx)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null && command -v nginx >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk nginx; }
cargo build --release --quiet
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; nginx -p "$work" -c "$work/nginx.conf" -s stop 2>/dev/null; rm -rf "$work"' EXIT
capture=target/bench/180p-10m-360k.mp4
[ -s "$capture" ] || python3 benches/segment.py --rounds 1 --only 180p >/dev/null
target/release/backset segment "$work/out" "$capture" -q
header=$(target/release/backset inspect "$work/out/asset-00000100.mp4" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"][0]["offset"])')

target/release/backset serve "$work/out" --listen 127.0.0.1:18181 2>/dev/null &
target/release/backset serve "$work/out" --listen 127.0.0.1:18183 --cache 0 2>/dev/null &
cat > "$work/nginx.conf" <<CONF
worker_processes 2;
daemon on;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  server { listen 127.0.0.1:18182; root $work/out; location / { } }
}
CONF
nginx -p "$work" -c "$work/nginx.conf"
sleep 0.5
echo 'wrk.headers["Range"] = "bytes='"$header"'-"' > "$work/range.lua"

run() { # url [script]
  local extra=()
  [ -n "${2:-}" ] && extra=(-s "$2")
  wrk -t2 -c32 -d10s --latency "${extra[@]}" "$1" | awk '/Requests\/sec/ {r=$2} /^ +99%/ {p=$2} END {print r, p}'
}
ms() { python3 -c "v='$1'; print(float(v[:-2]) if v.endswith('ms') else float(v[:-2])/1000 if v.endswith('us') else float(v[:-1])*1000)"; }

printf '%-8s %-16s %10s %10s\n' request server "req/s" "p99 ms"
for kind in whole range; do
  script=""; [ "$kind" = range ] && script="$work/range.lua"
  read -r b_rps b_p99 < <(run http://127.0.0.1:18181/asset-00000100.mp4 "$script")
  read -r f_rps f_p99 < <(run http://127.0.0.1:18183/asset-00000100.mp4 "$script")
  read -r n_rps n_p99 < <(run http://127.0.0.1:18182/asset-00000100.mp4 "$script")
  printf '%-8s %-16s %10.0f %10.2f\n' "$kind" backset "$b_rps" "$(ms "$b_p99")"
  printf '%-8s %-16s %10.0f %10.2f\n' "$kind" "backset --cache 0" "$f_rps" "$(ms "$f_p99")"
  printf '%-8s %-16s %10.0f %10.2f\n' "$kind" nginx "$n_rps" "$(ms "$n_p99")"
  python3 -c "print(f'{\"$kind\":<8} backset/nginx: {$b_rps/$n_rps:.2f}x requests/s, {$(ms "$b_p99")/$(ms "$n_p99"):.2f}x p99; from the file: {$f_rps/$n_rps:.2f}x, {$(ms "$f_p99")/$(ms "$n_p99"):.2f}x')"
done
