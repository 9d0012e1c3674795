#!/usr/bin/env python3
"""Replays the segmenter corpus through the release `backset segment`, one
process per input, and prints the inputs with the highest peak RSS.

The fuzzer's own RSS limit sits above AddressSanitizer's overhead, and a
Vec that grows in steps stays under its per-allocation limit, so memory
that an input merely claims can hide there; a plain process cannot hide it.
    python3 fuzz/peak_rss.py [--limit-mib 64]    (needs GNU time: apt-get install time)
Exit 1 if any input's peak RSS is over the limit.
"""
import argparse, glob, os, shutil, subprocess, sys, tempfile

here = os.path.dirname(os.path.abspath(__file__))
parser = argparse.ArgumentParser()
parser.add_argument("--limit-mib", type=int, default=64)
parser.add_argument("--top", type=int, default=5)
args = parser.parse_args()

subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=os.path.join(here, ".."), check=True)
backset = os.path.join(here, "..", "target", "release", "backset")
inputs = sorted(glob.glob(os.path.join(here, "corpus", "segmenter", "*")))
if not inputs:
    sys.exit("no corpus yet: run `bash fuzz/run.sh segmenter SECONDS` first")

work = tempfile.mkdtemp()
peaks = []
try:
    capture = os.path.join(work, "capture.mp4")
    for path in inputs:
        with open(path, "rb") as f:
            data = f.read()[1:]  # the first byte is the fuzz target's chunking
        with open(capture, "wb") as f:
            f.write(data)
        out = os.path.join(work, "out")
        shutil.rmtree(out, ignore_errors=True)
        # GNU time reports the peak of backset alone; a child forked from
        # Python would count Python's own pages as its high-water mark.
        run = subprocess.run(
            ["/usr/bin/time", "-f", "%M", backset, "segment", out, capture, "-q", "--new",
             "--interval", "500ms"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        kib = int(run.stderr.strip().splitlines()[-1])
        peaks.append((kib, path))
finally:
    shutil.rmtree(work, ignore_errors=True)

peaks.sort(reverse=True)
print(f"{len(peaks)} inputs; median peak RSS {peaks[len(peaks) // 2][0] / 1024:.1f} MiB")
for kib, path in peaks[: args.top]:
    print(f"{kib / 1024:8.1f} MiB  {os.path.relpath(path)}")
over = [p for p in peaks if p[0] > args.limit_mib * 1024]
if over:
    print(f"{len(over)} inputs over {args.limit_mib} MiB", file=sys.stderr)
    sys.exit(1)
