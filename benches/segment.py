#!/usr/bin/env python3
"""backset segment against ffmpeg's segment and HLS fMP4 muxers and against
`cp` (the physical limit), on the same captures, side by side in one run.

    python3 benches/segment.py            # all captures, 5 rounds each
    python3 benches/segment.py --rounds 3 --only 720p-60s

Captures are made once with ffmpeg (libx264, aac) and cached in
target/bench. Prints the median wall time of each command, MB/s, each command's time over
backset's, the speed ratios of backset against ffmpeg, cp and split, and
peak RSS. `split` writes the same bytes into as many files as backset makes:
the file-creation floor that cp does not pay.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(ROOT, "target", "bench")
BIN = os.path.join(ROOT, "target", "release", "backset")

CAPTURES = {
    # name: (seconds, size, video bitrate, audio bitrate)
    "720p-60s-16M": (60, "1280x720", "16M", "128k"),
    "180p-10m-360k": (600, "320x180", "300k", "64k"),
    "720p-10m-16M": (600, "1280x720", "16M", "128k"),
}


def make(name):
    seconds, size, vb, ab = CAPTURES[name]
    path = os.path.join(WORK, name + ".mp4")
    if os.path.exists(path) and os.path.getsize(path) > 0:
        return path
    print(f"making {path} ...", file=sys.stderr)
    with open(path + ".tmp", "wb") as out:
        subprocess.run(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
             "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30",
             "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", str(seconds),
             "-c:v", "libx264", "-preset", "ultrafast", "-b:v", vb, "-maxrate", vb, "-bufsize", vb,
             "-g", "60", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", ab,
             "-f", "mp4", "-movflags", "frag_keyframe+empty_moov+default_base_moof", "-"],
            stdout=out, check=True)
    os.rename(path + ".tmp", path)
    return path


def commands(capture, out, assets):
    return {
        "backset (file)": f"{BIN} segment {out} {capture} --new -q",
        "backset (pipe)": f"cat {capture} | {{time}} {BIN} segment {out} - --new -q",
        "ffmpeg segment": f"ffmpeg -v error -nostdin -i {capture} -map 0 -c copy -f segment -segment_time 2 "
                          f"-segment_format mp4 {out}/seg%05d.mp4",
        "ffmpeg hls fmp4": f"ffmpeg -v error -nostdin -i {capture} -map 0 -c copy -f hls -hls_time 2 "
                           f"-hls_segment_type fmp4 -hls_list_size 0 {out}/index.m3u8",
        "cp": f"cp {capture} {out}/copy.mp4",
        # The same bytes into as many files as backset makes: the cost of
        # creating files, which no segmenter avoids.
        "split (as many files)": f"split -n {assets} {capture} {out}/part",
    }


def run_once(template, out):
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    # Flush earlier runs' dirty pages so no run pays for another's writeback.
    os.sync()
    rss = os.path.join(WORK, "rss")
    timed = f"/usr/bin/time -f %M -o {rss}"
    if "{time}" in template:
        cmd = template.replace("{time}", timed)
    else:
        cmd = f"{timed} {template}"
    start = time.perf_counter()
    subprocess.run(cmd, shell=True, check=True)
    elapsed = time.perf_counter() - start
    with open(rss) as f:
        return elapsed, int(f.read().split()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    os.makedirs(WORK, exist_ok=True)
    if not os.path.exists("/usr/bin/time"):
        subprocess.run("apt-get update -qq && apt-get install -y -qq time", shell=True, check=True)
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    print(f"{'capture':<15} {'command':<22} {'median s':>9} {'MB/s':>8} {'this/backset':>13} {'peak RSS MiB':>13}")
    for name in CAPTURES:
        if args.only and args.only not in name:
            continue
        capture = make(name)
        mb = os.path.getsize(capture) / 1e6
        out = os.path.join(WORK, "out")
        run_once(f"{BIN} segment {out} {capture} --new -q", out)
        assets = len([n for n in os.listdir(out) if n.startswith("asset-")])
        cmds = commands(capture, out, assets)
        results = {}
        for label, template in cmds.items():
            run_once(template, out)  # warm the page cache and the binary
            runs = [run_once(template, out) for _ in range(args.rounds)]
            results[label] = (statistics.median(r[0] for r in runs), max(r[1] for r in runs))
        best = results["backset (file)"][0]
        for label, (secs, rss) in results.items():
            print(f"{name:<15} {label:<22} {secs:>9.3f} {mb / secs:>8.0f} {secs / best:>13.2f} {rss / 1024:>13.1f}")
        print(f"{name:<15} {mb:.1f} MB, {assets} assets; speed of backset (file): "
              f"{results['ffmpeg segment'][0] / best:.2f}x ffmpeg segment, "
              f"{results['ffmpeg hls fmp4'][0] / best:.2f}x ffmpeg hls, {results['cp'][0] / best:.2f}x cp, "
              f"{results['split (as many files)'][0] / best:.2f}x split")
    shutil.rmtree(os.path.join(WORK, "out"), ignore_errors=True)


if __name__ == "__main__":
    main()
