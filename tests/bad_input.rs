//! Bad input end to end: exit status 2 and the message on stderr, or exit
//! 0 with the warning, and assets ffmpeg decodes. What the segmenter
//! decides about each kind of damage (garbage, impossible sizes, boxes out
//! of order, captures cut anywhere) is tested in-process, without a
//! process per case, in `src/capture/tests/damage.rs`.

mod common;

use std::path::Path;

use common::*;

fn capture() -> Vec<u8> {
    std::fs::read(fixture("h264-aac-gop.mp4")).unwrap()
}

/// Offset of the first top-level box of `kind`.
fn find_box(bytes: &[u8], kind: &[u8; 4]) -> usize {
    let mut o = 0;
    while o + 8 <= bytes.len() {
        if &bytes[o + 4..o + 8] == kind {
            return o;
        }
        o += u32::from_be_bytes(bytes[o..o + 4].try_into().unwrap()) as usize;
    }
    panic!("no {kind:?}");
}

fn segment_bytes(dir: &Path, bytes: &[u8]) -> (std::process::Output, std::path::PathBuf) {
    let input = dir.join("input.mp4");
    std::fs::write(&input, bytes).unwrap();
    let out = dir.join("out");
    let o = run(&[
        "segment",
        out.to_str().unwrap(),
        input.to_str().unwrap(),
        "-q",
        "--interval",
        "1s",
    ]);
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    (o, out)
}

fn published(out: &Path) -> usize {
    if !out.join("index.bin").exists() {
        return 0;
    }
    records(out).len()
}

#[test]
fn not_an_mp4_is_refused_at_byte_0() {
    let dir = tempfile::tempdir().unwrap();
    let (o, out) = segment_bytes(dir.path(), b"#EXTM3U\n#EXT-X-VERSION:7\n");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("not a fragmented MP4: byte 0"),
        "{}",
        stderr(&o)
    );
    assert_eq!(published(&out), 0);
}

#[test]
fn a_truncated_final_fragment_after_good_data_publishes_what_is_complete() {
    let bytes = capture();
    let whole = {
        let dir = tempfile::tempdir().unwrap();
        let (o, out) = segment_bytes(dir.path(), &bytes);
        assert!(o.status.success());
        published(&out)
    };
    let dir = tempfile::tempdir().unwrap();
    let (o, out) = segment_bytes(dir.path(), &bytes[..bytes.len() - 1000]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning: truncated mdat at byte"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        published(&out),
        whole - 1,
        "the last GOP's fragment is incomplete, so its asset is not published"
    );
    for asset in asset_paths(&out) {
        assert_eq!(decode_errors(&asset), "");
    }
}

#[test]
fn a_fragment_that_cannot_be_read_is_dropped_with_what_depends_on_it() {
    let mut bytes = capture();
    let moof = find_box(&bytes, b"moof");
    let trun = moof + bytes[moof..].windows(4).position(|w| w == b"trun").unwrap() - 4;
    bytes[trun + 16..trun + 20].copy_from_slice(&0x7fff_0000u32.to_be_bytes());
    let dir = tempfile::tempdir().unwrap();
    let (o, out) = segment_bytes(dir.path(), &bytes);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("trun at byte {moof}"))
            && stderr(&o).contains("outside the mdat")
            && stderr(&o).contains("fragment dropped"),
        "{}",
        stderr(&o)
    );
    // The first GOP is gone; the transmission starts at the second.
    assert_eq!(published(&out), 2);
    assert!(run(&["verify", out.to_str().unwrap()]).status.success());
    for asset in asset_paths(&out) {
        assert_eq!(decode_errors(&asset), "");
    }
}

#[test]
fn a_url_for_a_stream_directory_is_refused_by_name_not_made_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["segment", "az://live/ch1"],
        vec!["locate", "s3://Not_A_Bucket/ch1", "--backset", "2s"],
        vec!["verify", "gs://bucket/x"],
        vec!["serve", "http://cdn.example/x"],
    ] {
        let out = backset()
            .args(&args)
            .current_dir(dir.path())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.contains("local folders or s3://") || err.contains("is not a bucket name"),
            "{args:?}: {err}"
        );
    }
    let made: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(made.is_empty(), "nothing created: {made:?}");
}
