//! Claims not believed: a box between fragments claiming far more than can
//! follow is damage to resync past, not a reason to buffer a gigabyte and
//! drop what it covers; an asset whose key frames stop is cut for safety
//! all the same, so neither memory nor an asset grows without bound.

use super::edit::nth_box;
use super::support::*;
use crate::capture::segmenter::Segmenter;

fn gop() -> &'static [u8] {
    fixture("h264-aac-gop.mp4")
}

const GIB: u64 = 1 << 30;

/// `gop()` with `header` inserted before its second `moof`, and where.
fn with_lie_before_second_moof(header: &[u8]) -> (Vec<u8>, usize) {
    let at = nth_box(gop(), b"moof", 1).offset;
    let mut bytes = gop().to_vec();
    bytes.splice(at..at, header.iter().copied());
    (bytes, at)
}

fn header(kind: &[u8; 4], size: u64) -> Vec<u8> {
    match u32::try_from(size) {
        Ok(small) => [&small.to_be_bytes()[..], kind].concat(),
        Err(_) => [&1u32.to_be_bytes()[..], kind, &size.to_be_bytes()].concat(),
    }
}

/// Feeds `bytes` in 64 KiB chunks, as a pipe does, and returns the most
/// the segmenter ever held waiting for the rest of a box.
fn most_buffered(bytes: &[u8]) -> usize {
    let mut s = Segmenter::new(every(SECOND), None);
    let mut events = Vec::new();
    let mut most = 0;
    for c in bytes.chunks(64 << 10) {
        s.push(c, NOW, &mut events).expect("no failure");
        most = most.max(s.buffered());
    }
    most
}

#[test]
fn a_free_claiming_a_gibibyte_between_fragments_swallows_nothing() {
    for (name, lie) in [
        ("32-bit", header(b"free", GIB)),
        ("64-bit", header(b"free", 64 * GIB)),
        ("skip", header(b"skip", 5 << 20)),
    ] {
        let (bytes, at) = with_lie_before_second_moof(&lie);
        let claim = u64::from_be_bytes(if lie.len() == 16 {
            lie[8..16].try_into().expect("8 bytes")
        } else {
            [&[0; 4][..], &lie[..4]]
                .concat()
                .try_into()
                .expect("8 bytes")
        });
        let kind = String::from_utf8_lossy(&lie[4..8]);
        for chunk in [0, 1000] {
            let o = Feed::new(every(SECOND)).chunk(chunk).run(&bytes);
            assert_eq!(o.exit_code(), 0, "{name}: {}", o.summary());
            assert_eq!(
                o.warnings(),
                [format!(
                    "{kind} at byte {at}: claims {claim} bytes, more than can plausibly follow between fragments; read as damage; {} bytes of damaged data at byte {at} skipped; resynchronised at the moof at byte {}",
                    lie.len(),
                    at + lie.len()
                )],
                "{name}, chunk {chunk}"
            );
            // Every fragment after the lie is published, unchanged.
            assert_eq!(
                o.assets(),
                segment(gop(), SECOND).assets(),
                "{name}, chunk {chunk}"
            );
        }
        // Memory follows what arrives, never the claim.
        assert!(most_buffered(&bytes) < 2 << 20, "{name}");
    }
}

#[test]
fn a_large_mdat_with_no_moof_before_it_is_damage() {
    let (bytes, at) = with_lie_before_second_moof(&header(b"mdat", GIB));
    let o = segment(&bytes, SECOND);
    assert_eq!(o.exit_code(), 0, "{}", o.summary());
    assert_eq!(
        o.warnings(),
        [format!(
            "mdat at byte {at}: claims {GIB} bytes, an mdat with no moof before it; read as damage; 8 bytes of damaged data at byte {at} skipped; resynchronised at the moof at byte {}",
            at + 8
        )]
    );
    assert_eq!(o.assets(), segment(gop(), SECOND).assets());
    assert!(most_buffered(&bytes) < 2 << 20);
}

#[test]
fn a_lie_covering_garbage_resyncs_inside_the_claimed_range() {
    // The claim covers 100 KB of garbage, then the real fragments.
    let mut lie = header(b"free", GIB);
    lie.extend(std::iter::repeat(0x5a).take(100_000));
    let (bytes, at) = with_lie_before_second_moof(&lie);
    let o = segment(&bytes, SECOND);
    assert_eq!(o.exit_code(), 0, "{}", o.summary());
    assert!(
        o.warned(&format!(
            "free at byte {at}: claims {GIB} bytes, more than can plausibly follow between fragments; read as damage; {} bytes of damaged data at byte {at} skipped; resynchronised at the moof at byte {}",
            lie.len(),
            at + lie.len()
        )),
        "{}",
        o.summary()
    );
    assert_eq!(o.assets(), segment(gop(), SECOND).assets());
}

#[test]
fn small_boxes_between_fragments_are_still_believed() {
    let (bytes, _) = with_lie_before_second_moof(&[header(b"free", 1000), vec![0; 992]].concat());
    let o = segment(&bytes, SECOND);
    assert_eq!(o.exit_code(), 0, "{}", o.summary());
    assert!(o.warnings().is_empty(), "{}", o.summary());
    assert_eq!(o.assets(), segment(gop(), SECOND).assets());
}
