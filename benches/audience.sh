#!/usr/bin/env bash
# The audience log under a flood of viewer ids (issue 12, point 4):
# `/backset.json` requests/s of a `backset serve` before and after 1,000,000
# distinct viewer ids (200-byte ids, cut to 128 by the server; a random
# 80-byte X-Region per request, cut to 64, from 100,000), beside a second,
# never-flooded server measured in turn with it (A B B A, so load from
# elsewhere on the machine falls on both alike); the flooded process's
# resident memory (VmRSS, and its peak VmHWM) before, during and after.
# Exits 1 if the flooded server answers under 0.8x the fresh one's rate.
# wrk on loopback, 2 threads, 32 connections.
#   bash benches/audience.sh      (needs: apt-get install wrk)
#   FLOOD=1000000 SECS=10 ROUNDS=3 LEG=2 bash benches/audience.sh  (the defaults;
#   SECS: each flood run, LEG: each measuring run)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
flood=${FLOOD:-1000000}
secs=${SECS:-10}
rounds=${ROUNDS:-3}
leg=${LEG:-2}
port=${PORT:-18191}
cargo build --release --quiet
work=$(mktemp -d)
trap 'kill ${pid:-} ${control:-} 2>/dev/null; rm -rf "$work"' EXIT
target/release/backset segment "$work/out" fixtures/h264-aac-gop.mp4 -q
target/release/backset serve "$work/out" --listen "127.0.0.1:$port" 2>/dev/null &
pid=$!
target/release/backset serve "$work/out" --listen "127.0.0.1:$((port + 1))" 2>/dev/null &
control=$!
flooded="http://127.0.0.1:$port/backset.json"
fresh="http://127.0.0.1:$((port + 1))/backset.json"
for u in "$flooded" "$fresh"; do
  for _ in $(seq 50); do curl -sf "$u" >/dev/null && break; sleep 0.1; done
done

# The steady audience: 100 viewers in 5 regions, cycling.
cat > "$work/fixed.lua" <<'LUA'
local n = 0
function request()
  n = n + 1
  local i = n % 100
  return wrk.format("GET", "/backset.json?client=fixed-" .. i, { ["X-Region"] = "fixed-" .. (i % 5) })
end
LUA
# The flood: every request a new viewer (run, thread and counter lead its
# id, so ids stay distinct once cut), from one of 100,000 regions at random.
cat > "$work/flood.lua" <<'LUA'
local threads, run, n = 0, "0", 0
local pad_id, pad_region = string.rep("x", 200), string.rep("r", 80)
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  run = args[1] or "0"
  math.randomseed(os.time() * 1000 + tid) -- tid: set by setup()
end
function request()
  n = n + 1
  local id = "flood-" .. run .. "-" .. tid .. "-" .. n .. "-"
  local region = "region-" .. math.random(1, 100000) .. "-"
  return wrk.format("GET", "/backset.json?client=" .. id .. pad_id:sub(#id + 1),
    { ["X-Region"] = region .. pad_region:sub(#region + 1) })
end
LUA

mem() { awk '/^VmRSS/ {r=$2} /^VmHWM/ {h=$2} END {printf "%.1f %.1f\n", r/1024, h/1024}' "/proc/$pid/status"; }
load() { cut -d' ' -f1 /proc/loadavg; }
# wrk's summary: requests made, seconds, answers that were not 2xx.
bench() { # url script duration [arg]
  wrk -t2 -c32 -d"$3" -s "$2" "$1" ${4:+-- "$4"} |
    awk '/requests in/ {n=$1; s=$4; sub(/s,?$/, "", s)} /Non-2xx/ {e=$NF} END {print n, s, e+0}'
}
# Fresh and flooded in turn, A B B A, $rounds times, $leg s each: each
# one's requests/s, its CPU time per request (user + system, µs: what
# other work on the machine changes least), and the non-2xx answers.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
pair() {
  local u n s e errs=0 fn=0 fs=0 gn=0 gs=0 fc gc
  fc=$(ticks "$control") gc=$(ticks "$pid")
  for _ in $(seq "$rounds"); do
    for u in "$fresh" "$flooded" "$flooded" "$fresh"; do
      read -r n s e < <(bench "$u" "$work/fixed.lua" "${leg}s")
      errs=$((errs + e))
      if [ "$u" = "$fresh" ]; then fn=$((fn + n)) fs=$(awk "BEGIN {print $fs + $s}")
      else gn=$((gn + n)) gs=$(awk "BEGIN {print $gs + $s}"); fi
    done
  done
  fc=$(($(ticks "$control") - fc)) gc=$(($(ticks "$pid") - gc))
  awk -v hz="$(getconf CLK_TCK)" "BEGIN {print $fn / $fs, $gn / $gs, $fc * 1e6 / hz / $fn, $gc * 1e6 / hz / $gn, $errs}"
}

read -r rss0 hwm0 < <(mem)
load0=$(load)
read -r fresh0 before fcpu0 cpu0 err0 < <(pair)
read -r rss1 hwm1 < <(mem)

echo "flood: $flood distinct ids, ${secs} s runs"
printf '%4s %10s %10s %9s %9s %6s %5s\n' run requests "req/s" "RSS MB" "peak MB" errors load
total=0 run=0 err_flood=0
while [ "$total" -lt "$flood" ]; do
  run=$((run + 1))
  read -r n s e < <(bench "$flooded" "$work/flood.lua" "${secs}s" "$run")
  total=$((total + n)) err_flood=$((err_flood + e))
  read -r rss hwm < <(mem)
  printf '%4d %10d %10.0f %9.1f %9.1f %6d %5s\n' "$run" "$n" "$(awk "BEGIN {print $n / $s}")" "$rss" "$hwm" "$e" "$(load)"
done
read -r rss2 hwm2 < <(mem)
load2=$(load)
read -r fresh2 after fcpu2 cpu2 err2 < <(pair)
read -r rss3 hwm3 < <(mem)
ratio0=$(awk "BEGIN {printf \"%.2f\", $before / $fresh0}")
ratio=$(awk "BEGIN {printf \"%.2f\", $after / $fresh2}")

echo
printf '%-30s %14s %14s\n' "" "before flood" "after flood"
printf '%-30s %14.0f %14.0f\n' "fresh server req/s" "$fresh0" "$fresh2"
printf '%-30s %14.0f %14.0f\n' "flooded server req/s" "$before" "$after"
printf '%-30s %14s %14s\n' "ratio flooded/fresh" "$ratio0" "$ratio"
printf '%-30s %14.1f %14.1f\n' "fresh server CPU us/req" "$fcpu0" "$fcpu2"
printf '%-30s %14.1f %14.1f\n' "flooded server CPU us/req" "$cpu0" "$cpu2"
printf '%-30s %14s %14s\n' "flooded VmRSS MB (start, end)" "$rss0, $rss1" "$rss2, $rss3"
printf '%-30s %14s %14s\n' "flooded VmHWM MB (peak)" "$hwm1" "$hwm3"
printf '%-30s %14s %14s\n' "non-2xx answers" "$err0" "$err2"
printf '%-30s %14s %14s\n' "load (1 min) at start" "$load0" "$load2"
echo "flood: $total requests in $run runs, $err_flood non-2xx; $(nproc) cores"
echo "flooded server after/before its flood: $(awk "BEGIN {printf \"%.2f\", $after / $before}") (the machine's drift included)"
awk "BEGIN {exit !($ratio >= 0.8)}" || { echo "FAIL: after the flood, $ratio x a fresh server's rate (under 0.8)"; exit 1; }
echo "ok: after the flood, $ratio x a fresh server's rate (at least 0.8)"
