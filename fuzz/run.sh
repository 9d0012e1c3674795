#!/usr/bin/env bash
# Runs a fuzz target for a while (default 30 minutes), seeded from the
# fixtures' corpus; crashes land in fuzz/artifacts/TARGET/.
#   bash fuzz/run.sh segmenter 1800
# Needs cargo-fuzz (cargo install cargo-fuzz); RUSTC_BOOTSTRAP lets the
# stable toolchain build with the sanitizer flags cargo-fuzz passes.
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?target: segmenter, framing, maps or index}
secs=${2:-1800}
mkdir -p "corpus/$target" "artifacts/$target"
# Seeds from the fixtures (the corpus itself grows here and is not kept).
python3 - "$target" <<'PY'
import glob, os, struct, subprocess, sys, tempfile
target = sys.argv[1]
fixtures = sorted(glob.glob("../fixtures/*.mp4"))
out = f"corpus/{target}"
if target in ("segmenter", "framing"):
    for f in fixtures:
        data = open(f, "rb").read()
        name = os.path.basename(f)[:-4]
        for cut in (8192, 32768, 65536):
            seed = (bytes([7]) if target == "segmenter" else b"") + data[:cut]
            open(f"{out}/{name}-{cut}", "wb").write(seed)
else:
    tmp = tempfile.mkdtemp()
    subprocess.run(["cargo", "run", "--quiet", "--release", "--manifest-path", "../Cargo.toml", "--",
                    "segment", tmp, "../fixtures/h264-aac-fragdur.mp4", "--interval", "1s", "-q"], check=True)
    if target == "index":
        open(f"{out}/index.bin", "wb").write(open(f"{tmp}/index.bin", "rb").read())
    for i, f in enumerate(sorted(glob.glob(f"{tmp}/asset-*.mp4"))):
        d, o = open(f, "rb").read(), 0
        while o < len(d):
            s = struct.unpack(">I", d[o:o + 4])[0]
            if d[o + 4:o + 8] == b"uuid" and target == "maps":
                open(f"{out}/maps{i}", "wb").write(d[o:o + s])
                break
            o += s
PY
RUSTC_BOOTSTRAP=1 cargo fuzz run -O "$target" "corpus/$target" -- \
  -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=1024 -malloc_limit_mb=512 \
  -artifact_prefix="artifacts/$target/" -print_final_stats=1
