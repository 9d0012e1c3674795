//! Bad input gets a clear message naming the byte offset and box, exit 2,
//! never a panic; what was complete before the damage is published.

mod common;

use std::path::Path;

use common::*;

fn capture() -> Vec<u8> {
    std::fs::read(fixture("h264-aac-gop.mp4")).unwrap()
}

/// Offset of the first top-level box of `kind`.
fn find_box(bytes: &[u8], kind: &[u8; 4]) -> usize {
    nth_box(bytes, kind, 0)
}

/// Offset of the `n`-th (from 0) top-level box of `kind`.
fn nth_box(bytes: &[u8], kind: &[u8; 4], mut n: usize) -> usize {
    let mut o = 0;
    while o + 8 <= bytes.len() {
        if &bytes[o + 4..o + 8] == kind {
            if n == 0 {
                return o;
            }
            n -= 1;
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
fn an_impossible_box_size_names_the_box_and_offset() {
    let mut bytes = capture();
    let moov = find_box(&bytes, b"moov");
    bytes[moov..moov + 4].copy_from_slice(&4u32.to_be_bytes());
    let dir = tempfile::tempdir().unwrap();
    let (o, _) = segment_bytes(dir.path(), &bytes);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(&format!("moov at byte {moov}: impossible size 4")),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_box_claiming_gigabytes_is_skipped_without_allocating_them() {
    let mut bytes = capture();
    let moof = find_box(&bytes, b"moof");
    bytes[moof..moof + 4].copy_from_slice(&1u32.to_be_bytes());
    bytes.splice(moof + 8..moof + 8, 0xffff_ffffu64.to_be_bytes());
    let dir = tempfile::tempdir().unwrap();
    let (o, out) = segment_bytes(dir.path(), &bytes);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("damaged data at byte {moof} skipped")),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        published(&out),
        2,
        "the first GOP is lost, the rest published"
    );
}

#[test]
fn a_moof_before_any_moov_is_refused() {
    let bytes = capture();
    let moof = find_box(&bytes, b"moof");
    let dir = tempfile::tempdir().unwrap();
    let (o, out) = segment_bytes(dir.path(), &bytes[moof..]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("moof at byte 0 comes before any moov"),
        "{}",
        stderr(&o)
    );
    assert_eq!(published(&out), 0);
}

#[test]
fn a_capture_truncated_before_any_fragment_fails() {
    let bytes = capture();
    let dir = tempfile::tempdir().unwrap();
    let (o, _) = segment_bytes(dir.path(), &bytes[..500]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("truncated moov at byte 28"),
        "{}",
        stderr(&o)
    );
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
fn garbage_between_boxes_is_skipped_and_nothing_is_lost() {
    let clean = capture();
    let mut bytes = clean.clone();
    let second_moof = nth_box(&bytes, b"moof", 1);
    bytes.splice(
        second_moof..second_moof,
        [0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0],
    );
    let dir = tempfile::tempdir().unwrap();
    let (o, out) = segment_bytes(dir.path(), &bytes);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let expected = format!(
        "8 bytes of damaged data at byte {second_moof} skipped; resynchronised at the moof at byte {}",
        second_moof + 8
    );
    assert!(stderr(&o).contains(&expected), "{}", stderr(&o));
    let joined = dir.path().join("joined.mp4");
    concatenated(&out, &joined);
    assert_same_frames(
        &framemd5(&fixture("h264-aac-gop.mp4")),
        &framemd5(&joined),
        "after resync",
    );
    assert!(run(&["verify", out.to_str().unwrap()]).status.success());
}

#[test]
fn a_garbage_prefix_is_skipped_to_the_capture() {
    let mut bytes = b"capture tool v1.2 starting\n".to_vec();
    bytes.extend(capture());
    let dir = tempfile::tempdir().unwrap();
    let (o, out) = segment_bytes(dir.path(), &bytes);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "27 bytes of damaged data at byte 0 skipped; resynchronised at the ftyp at byte 27"
        ),
        "{}",
        stderr(&o)
    );
    assert_eq!(published(&out), 3);
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
fn no_prefix_of_a_capture_makes_it_panic() {
    let bytes = capture();
    let dir = tempfile::tempdir().unwrap();
    for cut in (0..3000)
        .step_by(97)
        .chain([bytes.len() / 2, bytes.len() - 1])
    {
        let (o, _) = segment_bytes(dir.path(), &bytes[..cut]);
        assert!(
            matches!(o.status.code(), Some(0) | Some(2)),
            "cut at {cut}: {o:?}"
        );
        let _ = std::fs::remove_dir_all(dir.path().join("out"));
    }
}
