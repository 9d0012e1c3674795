//! Helpers for the end-to-end tests: run the real binary on the real
//! fixtures, and check the results with ffmpeg.
#![allow(dead_code)]

pub mod live;
pub mod netns;
pub mod nginx;
pub mod redis;
pub mod s3;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use backset::capture::maps::Maps;
use backset::stream::index::{Index, Record};

pub const FIXTURES: &[&str] = &[
    "h264-aac-gop.mp4",
    "h264-aac-fragdur.mp4",
    "h264-every-frame.mp4",
    "hevc-aac-separate-moof.mp4",
    "aac-only.mp4",
    "opus-only.mp4",
    "gst-h264-aac-frag1s.mp4",
    "gst-h264-aac-frag2500ms.mp4",
    "cmaf-styp-prft.mp4",
    "h264-aac-global-sidx.mp4",
    "h264-aac-cmaf-prft.mp4",
    "h264-aac-emsg.mp4",
];

pub const VIDEO_FIXTURES: &[&str] = &[
    "h264-aac-gop.mp4",
    "h264-aac-fragdur.mp4",
    "h264-every-frame.mp4",
    "hevc-aac-separate-moof.mp4",
    "gst-h264-aac-frag1s.mp4",
    "gst-h264-aac-frag2500ms.mp4",
    "cmaf-styp-prft.mp4",
    "h264-aac-global-sidx.mp4",
    "h264-aac-cmaf-prft.mp4",
    "h264-aac-emsg.mp4",
];

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

pub fn backset() -> Command {
    Command::new(env!("CARGO_BIN_EXE_backset"))
}

pub fn run(args: &[&str]) -> Output {
    backset()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("backset runs")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Segments `input` into `out` and insists it succeeds.
pub fn segment(out: &Path, input: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "segment",
        out.to_str().unwrap(),
        input.to_str().unwrap(),
        "-q",
    ];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert!(o.status.success(), "segment failed: {}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"));
    o
}

pub fn records(out: &Path) -> Vec<Record> {
    let index = Index::open(&out.join("index.bin")).expect("index opens");
    index.iter().map(|r| r.expect("record intact")).collect()
}

pub fn asset_paths(out: &Path) -> Vec<PathBuf> {
    records(out)
        .iter()
        .map(|r| out.join(format!("asset-{:08}.mp4", r.sequence)))
        .collect()
}

pub fn maps(asset: &Path) -> Maps {
    backset::stream::maps_reader::read_maps(asset).expect("maps readable")
}

/// The assets played back to back: the first whole, the others from their
/// first fragment on (their headers are the same init).
pub fn concatenated(out: &Path, dest: &Path) {
    let mut bytes = Vec::new();
    for (i, (path, record)) in asset_paths(out).iter().zip(records(out)).enumerate() {
        let data = std::fs::read(path).unwrap();
        let from = if i == 0 {
            0
        } else {
            record.header_len as usize
        };
        bytes.extend_from_slice(&data[from..]);
    }
    std::fs::write(dest, bytes).unwrap();
}

/// `ffmpeg -c copy -f framemd5` lines (dts, pts, duration, size, hash),
/// grouped by stream.
pub fn framemd5(path: &Path) -> BTreeMap<String, Vec<String>> {
    let o = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-i"])
        .arg(path)
        .args(["-map", "0", "-c", "copy", "-f", "framemd5", "-"])
        .output()
        .expect("ffmpeg runs (install it: apt-get install ffmpeg)");
    assert!(
        o.status.success(),
        "ffmpeg failed on {}: {}",
        path.display(),
        stderr(&o)
    );
    let mut streams: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
    {
        let (stream, rest) = line.split_once(',').unwrap();
        streams
            .entry(stream.trim().to_string())
            .or_default()
            .push(rest.trim().to_string());
    }
    streams
}

/// Errors ffmpeg reports while decoding a file completely.
pub fn decode_errors(path: &Path) -> String {
    let o = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    let mut e = stderr(&o);
    if !o.status.success() {
        e.push_str(&format!(" (exit {})", o.status));
    }
    e
}

/// Flags of each video packet, in decode order ("K_", "__").
pub fn video_packet_flags(path: &Path) -> Vec<String> {
    let o = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=flags",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The top-level box at `offset` of `bytes`.
pub fn box_at(bytes: &[u8], offset: usize) -> &[u8] {
    &bytes[offset + 4..offset + 8]
}

/// The kind of the box a fragment at `offset` opens with, past the event
/// boxes (`emsg`, `prft`) carried before its `moof`.
pub fn fragment_box_at(bytes: &[u8], mut offset: usize) -> &[u8] {
    while matches!(box_at(bytes, offset), b"emsg" | b"prft") {
        let size = u32::from_be_bytes(bytes[offset..offset + 4].try_into().unwrap());
        offset += size as usize;
    }
    box_at(bytes, offset)
}

/// Only the packets' size and hash, per stream: what a standalone asset must
/// carry whatever timeline its demuxer gives it.
pub fn payloads(streams: &BTreeMap<String, Vec<String>>) -> BTreeMap<String, Vec<String>> {
    streams
        .iter()
        .map(|(k, lines)| {
            let p = lines
                .iter()
                .map(|l| {
                    l.rsplitn(3, ',')
                        .take(2)
                        .map(str::trim)
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .collect();
            (k.clone(), p)
        })
        .collect()
}

/// Asserts two framemd5 listings agree, naming the first difference
/// instead of dumping both.
pub fn assert_same_frames(
    want: &BTreeMap<String, Vec<String>>,
    got: &BTreeMap<String, Vec<String>>,
    what: &str,
) {
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "{what}: streams differ"
    );
    for (stream, lines) in want {
        let other = &got[stream];
        if let Some(i) = (0..lines.len().max(other.len())).find(|&i| lines.get(i) != other.get(i)) {
            panic!(
                "{what}: stream {stream} differs at packet {i}: want {:?}, got {:?} ({} vs {} packets)",
                lines.get(i),
                other.get(i),
                lines.len(),
                other.len()
            );
        }
    }
}
