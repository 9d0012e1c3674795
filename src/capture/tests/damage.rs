//! Damaged byte streams: garbage before, between and instead of boxes,
//! impossible sizes, boxes out of order, captures cut anywhere. Each case
//! gets the error or warning naming the byte offset and the box, and
//! publishes exactly what was complete before the damage, unchanged.

use super::edit::{boxes, nth_box, without_box};
use super::support::*;
use crate::Error;

fn gop() -> &'static [u8] {
    fixture("h264-aac-gop.mp4")
}

/// The samples of a capture's fragments from the `from`-th on.
fn media_from(bytes: &[u8], from: usize) -> Tracks {
    let parsed = parse(bytes);
    let mut tracks = Tracks::new();
    for f in &parsed.fragments[from..] {
        media(&parsed.init, f, &mut tracks);
    }
    tracks
}

fn assert_fails(o: &Outcome, text: &str) {
    assert_eq!(o.exit_code(), 2, "{}", o.summary());
    assert!(o.error_text().contains(text), "{}", o.summary());
    assert!(o.assets().is_empty(), "{}", o.summary());
}

#[test]
fn a_playlist_is_not_an_mp4() {
    let o = segment(b"#EXTM3U\n#EXT-X-VERSION:7\n", SECOND);
    assert!(matches!(o.error, Some(Error::NotMp4 { offset: 0, .. })));
    assert_fails(&o, "not a fragmented MP4: byte 0");
}

#[test]
fn garbage_without_a_capture_is_not_an_mp4() {
    let o = segment(&[0x55; 3000], SECOND);
    assert_fails(
        &o,
        "not a fragmented MP4: byte 0: expected a box, found no ftyp or moov in its 3000 bytes",
    );
    // The search for a capture's start gives up after 1 MiB.
    let o = segment(&vec![0x55; 2 << 20], SECOND);
    assert_fails(&o, "found no ftyp or moov in the first 1048576 bytes");
}

#[test]
fn an_empty_capture_fails_naming_where_it_ended() {
    let o = segment(b"", SECOND);
    assert!(matches!(o.error, Some(Error::Empty { offset: 0 })), "{o:?}");
    let init_end = nth_box(gop(), b"moov", 0).end();
    let o = segment(&gop()[..init_end], SECOND);
    assert_fails(&o, &format!("the capture ended at byte {init_end}"));
    assert_eq!(o.starts().len(), 1, "the initialisation was read");
}

#[test]
fn an_impossible_box_size_names_the_box_and_offset() {
    let mut bytes = gop().to_vec();
    let moov = nth_box(&bytes, b"moov", 0).offset;
    bytes[moov..moov + 4].copy_from_slice(&4u32.to_be_bytes());
    let o = segment(&bytes, SECOND);
    assert_fails(&o, &format!("moov at byte {moov}: impossible size 4"));
}

#[test]
fn a_box_claiming_gigabytes_is_skipped_without_allocating_them() {
    let mut bytes = gop().to_vec();
    let moof = nth_box(&bytes, b"moof", 0).offset;
    bytes[moof..moof + 4].copy_from_slice(&1u32.to_be_bytes());
    bytes.splice(moof + 8..moof + 8, 0xffff_ffffu64.to_be_bytes());
    let o = segment(&bytes, SECOND);
    assert_eq!(o.exit_code(), 0, "{}", o.summary());
    assert!(
        o.warned(&format!("damaged data at byte {moof} skipped")),
        "{}",
        o.summary()
    );
    // The first GOP is lost, the rest published.
    assert_eq!(o.assets().len(), 2, "{}", o.summary());
    assert_same_media(&media_from(gop(), 1), &assets_media(&o.assets()), "");
    o.assert_intact("after a 4 GB claim");
}

#[test]
fn a_moof_before_any_moov_is_refused() {
    let moof = nth_box(gop(), b"moof", 0).offset;
    let o = segment(&gop()[moof..], SECOND);
    assert!(matches!(o.error, Some(Error::MoofBeforeMoov { offset: 0 })));
    assert_fails(&o, "moof at byte 0 comes before any moov");
}

#[test]
fn a_capture_truncated_before_any_fragment_fails() {
    let o = segment(&gop()[..500], SECOND);
    assert!(
        matches!(&o.error, Some(Error::Truncated { offset: 28, kind, have: 472, need: 1249 }) if kind == "moov"),
        "{}",
        o.summary()
    );
    assert_fails(&o, "truncated moov at byte 28");
}

#[test]
fn a_truncated_last_fragment_is_dropped_and_the_rest_published_unchanged() {
    let whole = segment(gop(), SECOND);
    let cut = gop().len() - 1000;
    let o = segment(&gop()[..cut], SECOND);
    assert_eq!(o.exit_code(), 0, "{}", o.summary());
    let last_mdat = nth_box(gop(), b"mdat", 2);
    // The capture ends with an mfra after its last mdat.
    let (at, have, need) = (last_mdat.offset, cut - last_mdat.offset, last_mdat.size);
    assert_eq!(
        o.warnings(),
        [format!(
            "truncated mdat at byte {at}: {have} of {need} bytes arrived before the end; the incomplete fragment was dropped"
        )]
    );
    // One GOP per asset: the last one is not published, the others are
    // those of the whole capture.
    assert_eq!(o.assets(), whole.assets()[..2]);
}

#[test]
fn garbage_between_boxes_is_skipped_and_nothing_is_lost() {
    let mut bytes = gop().to_vec();
    let second_moof = nth_box(&bytes, b"moof", 1).offset;
    bytes.splice(
        second_moof..second_moof,
        [0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0],
    );
    let o = segment(&bytes, SECOND);
    assert_eq!(o.exit_code(), 0, "{}", o.summary());
    assert_eq!(
        o.warnings(),
        [format!(
            "8 bytes of damaged data at byte {second_moof} skipped; resynchronised at the moof at byte {}",
            second_moof + 8
        )]
    );
    assert_eq!(o.assets(), segment(gop(), SECOND).assets());
}

#[test]
fn a_garbage_prefix_is_skipped_to_the_capture() {
    let mut bytes = b"capture tool v1.2 starting\n".to_vec();
    bytes.extend_from_slice(gop());
    let o = segment(&bytes, SECOND);
    assert_eq!(o.exit_code(), 0, "{}", o.summary());
    assert_eq!(
        o.warnings(),
        ["27 bytes of damaged data at byte 0 skipped; resynchronised at the ftyp at byte 27"]
    );
    assert_eq!(o.assets().len(), 3);
    assert_eq!(o.assets(), segment(gop(), SECOND).assets());
}

#[test]
fn a_moof_without_its_mdat_is_dropped() {
    let second = nth_box(gop(), b"moof", 1);
    let bytes = without_box(gop(), second.end());
    let o = segment(&bytes, SECOND);
    assert_eq!(o.exit_code(), 0, "{}", o.summary());
    assert_eq!(
        o.warnings(),
        [format!(
            "moof at byte {}: no mdat follows it; fragment dropped",
            second.offset
        )]
    );
    let mut want = media_from(gop(), 0);
    let second_gop = media_from(gop(), 1);
    let third_gop = media_from(gop(), 2);
    for (track, samples) in &mut want {
        let (from, to) = (
            samples.len() - second_gop[track].len(),
            third_gop[track].len(),
        );
        samples.drain(from..samples.len() - to);
    }
    assert_same_media(&want, &assets_media(&o.assets()), "without the second mdat");
    o.assert_intact("without the second mdat");
}

#[test]
fn an_mdat_without_its_moof_is_skipped() {
    let second = nth_box(gop(), b"moof", 1);
    let o = segment(&without_box(gop(), second.offset), SECOND);
    assert_eq!(o.exit_code(), 0, "{}", o.summary());
    assert_eq!(
        o.warnings(),
        [format!(
            "mdat at byte {}: no moof before it; skipped",
            second.offset
        )]
    );
    assert_eq!(o.assets().len(), 2);
    o.assert_intact("without the second moof");
}

#[test]
fn a_trun_pointing_outside_its_mdat_drops_the_fragment() {
    let mut bytes = gop().to_vec();
    let moof = nth_box(&bytes, b"moof", 0).offset;
    let trun = moof
        + bytes[moof..]
            .windows(4)
            .position(|w| w == b"trun")
            .expect("trun")
        - 4;
    bytes[trun + 16..trun + 20].copy_from_slice(&0x7fff_0000u32.to_be_bytes());
    let o = segment(&bytes, SECOND);
    assert_eq!(o.exit_code(), 0, "{}", o.summary());
    let [w] = o.warnings()[..] else {
        panic!("{}", o.summary())
    };
    assert!(
        w.starts_with(&format!("trun at byte {moof}: track 1 sample 0"))
            && w.contains("outside the mdat")
            && w.ends_with("fragment dropped"),
        "{w}"
    );
    // The first GOP is gone; the transmission starts at the second.
    assert_eq!(o.assets().len(), 2);
    assert_eq!(o.assets()[0].maps().start, 0);
    assert_same_media(&media_from(gop(), 1), &assets_media(&o.assets()), "");
    o.assert_intact("after a bad trun");
}

/// The whole capture's assets, but the last published one may end early:
/// its body is a prefix of the whole capture's asset of that sequence.
fn assert_prefix_of(whole: &Outcome, cut: &Outcome, what: &str) {
    let (all, some) = (whole.assets(), cut.assets());
    let Some((last, before)) = some.split_last() else {
        panic!("{what}: nothing published")
    };
    assert_eq!(before, &all[..before.len()], "{what}");
    let full = all[before.len()];
    assert_eq!(last.maps().sequence, full.maps().sequence, "{what}");
    assert!(full.body().starts_with(last.body()), "{what}");
    let entries = &full.maps().entries[..last.maps().entries.len()];
    assert_eq!(last.maps().entries, entries, "{what}");
}

/// The README cites this test: a capture cut at any box boundary or in the
/// middle of any box fails with an offset before its first complete
/// fragment, and after it publishes what was complete, with a warning.
#[test]
fn truncated_at_every_box_boundary_and_mid_box() {
    let bytes = fixture("h264-aac-fragdur.mp4");
    let whole = segment(bytes, SECOND);
    let all = boxes(bytes);
    let first_fragment_end = nth_box(bytes, b"mdat", 0).end();
    for b in &all {
        for cut in [b.offset, b.offset + 4, b.offset + b.size / 2, b.end() - 1] {
            let o = segment(&bytes[..cut], SECOND);
            let kind = String::from_utf8_lossy(&b.kind);
            let what = format!(
                "cut at byte {cut} ({kind} at {}): {}",
                b.offset,
                o.summary()
            );
            if cut < first_fragment_end {
                assert_eq!(o.exit_code(), 2, "{what}");
                assert!(o.error_text().contains("byte"), "{what}");
                assert!(o.assets().is_empty(), "{what}");
                continue;
            }
            assert_eq!(o.exit_code(), 0, "{what}");
            let clean_cut = cut == b.offset && &b.kind != b"mdat";
            match clean_cut {
                true => assert!(o.warnings().is_empty(), "{what}"),
                false => assert!(
                    o.warnings().len() == 1 && o.warnings()[0].starts_with("truncated "),
                    "{what}"
                ),
            }
            o.assert_intact(&what);
            assert_prefix_of(&whole, &o, &what);
        }
    }
}

#[test]
fn no_prefix_of_a_capture_makes_it_panic() {
    let bytes = gop();
    let cuts = (0..3000).chain((3000..bytes.len()).step_by(997));
    for cut in cuts {
        let o = segment(&bytes[..cut], SECOND);
        let what = format!("cut at {cut}: {}", o.summary());
        match &o.error {
            Some(e) => {
                assert!(e.is_bad_input() && o.assets().is_empty(), "{what}");
                assert!(e.to_string().contains("byte"), "{what}");
            }
            None => assert!(!o.assets().is_empty(), "{what}"),
        }
    }
}
