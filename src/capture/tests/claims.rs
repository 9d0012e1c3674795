//! Claims not believed: a box between fragments claiming far more than can
//! follow is damage to resync past, not a reason to buffer a gigabyte and
//! drop what it covers; an asset whose key frames stop is cut for safety
//! all the same, so neither memory nor an asset grows without bound.

use mp4_atom::TrunSamples;

use super::edit::{edit_moofs, nth_box};
use super::support::*;
use crate::capture::segmenter::{Config, Event, Segmenter};

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
    lie.extend(std::iter::repeat_n(0x5a, 100_000));
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

/// The capture with every video key frame after the first made a
/// dependent frame: a GOP that never ends.
fn key_frames_stop(capture: &[u8]) -> Vec<u8> {
    const DEPENDENT: u32 = 0x0101_0000;
    edit_moofs(capture, 0, |n, moof| {
        for traf in moof.traf.iter_mut().filter(|t| t.tfhd.track_id == 1) {
            for trun in &mut traf.trun {
                match &mut trun.samples {
                    TrunSamples::Explicit(entries) => {
                        let from = usize::from(n == 0);
                        for e in entries.iter_mut().skip(from) {
                            e.flags = Some(DEPENDENT);
                        }
                    }
                    TrunSamples::Inherited { first_flags, .. } if n > 0 => {
                        *first_flags = Some(DEPENDENT);
                    }
                    TrunSamples::Inherited { .. } => {}
                }
            }
        }
    })
}

#[test]
fn an_endless_gop_is_cut_for_safety_into_bounded_assets() {
    let endless = key_frames_stop(fixture("h264-aac-fragdur.mp4"));
    let media = capture_media(&endless);
    assert_eq!(
        media[&1].iter().filter(|s| s.flags & 0x1_0000 == 0).count(),
        1
    );
    let max_size = 30_000;
    for (what, config) in [
        (
            "by duration",
            Config {
                max_duration_us: 1_500_000,
                ..every(SECOND)
            },
        ),
        (
            "by size",
            Config {
                max_size,
                ..every(SECOND)
            },
        ),
    ] {
        let o = Feed::new(config).run(&endless);
        assert_eq!(o.exit_code(), 0, "{what}: {}", o.summary());
        let assets = o.assets();
        assert!(assets.len() >= 3, "{what}: {}", o.summary());
        // Bounded: each cut comes at the first fragment past a limit.
        let parsed = parse(&endless);
        let fragment = parsed
            .boxes
            .iter()
            .map(|b| b.bytes.len())
            .max()
            .unwrap_or(0);
        let fragment_s = parsed
            .fragments
            .iter()
            .map(|f| {
                let video =
                    f.samples.iter().zip(0..).filter(|(_, i)| {
                        f.runs.iter().any(|r| r.track == 0 && r.samples.contains(i))
                    });
                video.map(|(s, _)| u64::from(s.duration)).sum::<u64>()
            })
            .max()
            .unwrap_or(0) as f64
            / VIDEO_TIMESCALE as f64;
        let limit_s = config.max_duration_us as f64 / 1e6;
        for a in &assets {
            let duration_s = a.maps().duration as f64 / VIDEO_TIMESCALE as f64;
            assert!(duration_s <= limit_s + fragment_s + 0.01, "{what}: {a:?}");
            assert!(
                a.asset.body_len < config.max_size + 2 * fragment as u64,
                "{what}: {a:?}"
            );
        }
        // The first starts at the key frame; the others have no entry point.
        assert_eq!(assets[0].maps().entries.len(), 1, "{what}");
        assert!(
            assets[1..].iter().all(|a| a.maps().entries.is_empty()),
            "{what}"
        );
        let cuts = o
            .warnings()
            .iter()
            .filter(|w| w.contains("without a key frame to cut at"))
            .count();
        assert_eq!(cuts, assets.len() - 1, "{what}: {}", o.summary());
        // Nothing lost, and verify accepts every asset.
        o.assert_intact(what);
        assert_same_media(&media, &assets_media(&assets), what);
    }
}

#[test]
fn a_key_frame_after_a_safety_cut_ends_the_keyless_asset() {
    // Key frames stop after the first and come back in the fourth fragment
    // (fragments: 0-1.5 s, 1.5-3 s, 3-4.5 s, 4.5-6 s with one at 5.5 s).
    let capture = fixture("h264-aac-fragdur.mp4");
    let endless = key_frames_stop(capture);
    let back = [
        &endless[..nth_box(&endless, b"moof", 3).offset],
        &capture[nth_box(capture, b"moof", 3).offset..],
    ]
    .concat();
    let config = Config {
        max_duration_us: 1_500_000,
        ..every(SECOND)
    };
    let o = Feed::new(config).run(&back);
    assert_eq!(o.exit_code(), 0, "{}", o.summary());
    o.assert_intact("key frames back");
    let assets = o.assets();
    let last = assets.last().expect("assets");
    assert!(!last.maps().entries.is_empty(), "{}", o.summary());
    assert_eq!(last.maps().entries[0].timestamp, last.maps().start);
    assert!(
        assets[assets.len() - 2].maps().entries.is_empty(),
        "{}",
        o.summary()
    );
}

/// Feeds `capture` in `chunk`-byte reads through a segmenter and a
/// publisher into `dir`, as `backset segment` does; after each read, checks
/// `check(held bytes, body file length)`. Returns the published file.
fn publish_in_reads(
    capture: &[u8],
    chunk: usize,
    dir: &std::path::Path,
    mut check: impl FnMut(usize, u64),
) -> Vec<u8> {
    use crate::stream::publisher::{Config as Out, Publisher};
    let out = Out {
        dir: dir.to_path_buf(),
        prefix: "asset".into(),
        new: false,
        fsync: false,
        cut: Config::default(),
        keep_us: None,
        keep_assets: None,
        hls: false,
        dash: false,
    };
    let (mut publisher, resume) = Publisher::open(out, NOW).unwrap();
    let mut segmenter = Segmenter::new(Config::default(), resume);
    let (mut events, mut notes) = (Vec::new(), Vec::new());
    let body = dir.join(".asset-00000000.mp4.body.partial");
    for c in capture.chunks(chunk) {
        segmenter.push(c, NOW, &mut events).unwrap();
        for e in events.drain(..) {
            publisher.handle(e, NOW, &mut notes).unwrap();
        }
        let on_disk = std::fs::metadata(&body).map_or(0, |m| m.len());
        check(segmenter.held_bytes(), on_disk);
    }
    segmenter.finish(&mut events).unwrap();
    for e in events.drain(..) {
        // Samples held for video that never came are written at the end:
        // the body as it is just before the publish.
        if matches!(e, Event::Asset(_)) {
            let on_disk = std::fs::metadata(&body).map_or(0, |m| m.len());
            check(segmenter.held_bytes(), on_disk);
        }
        publisher.handle(e, NOW, &mut notes).unwrap();
    }
    publisher.finish(NOW, &mut Vec::new()).unwrap();
    assert!(!body.exists(), "the body file goes at the publish");
    std::fs::read(dir.join("asset-00000000.mp4")).unwrap()
}

#[test]
fn an_asset_that_never_ends_is_held_on_disk_not_in_memory() {
    let endless = key_frames_stop(fixture("h264-aac-fragdur.mp4"));
    let fragment = parse(&endless)
        .boxes
        .iter()
        .map(|b| b.bytes.len())
        .max()
        .unwrap_or(0);
    let chunk = 4096;
    let dir = tempfile::tempdir().unwrap();
    let (mut max_held, mut grown) = (0, Vec::new());
    let file = publish_in_reads(&endless, chunk, dir.path(), |held, on_disk| {
        max_held = max_held.max(held);
        if grown.last() != Some(&on_disk) {
            grown.push(on_disk);
        }
    });
    // The whole capture is one asset (no limit reached), yet the segmenter
    // never held more than a box being framed plus one read.
    let whole = Feed::new(Config::default()).run(&endless);
    let assets = whole.assets();
    assert_eq!(assets.len(), 1, "{}", whole.summary());
    assert_eq!(file, assets[0].bytes, "as assembled in-process");
    assert!(
        max_held <= fragment + chunk,
        "held {max_held} bytes; a fragment is {fragment}"
    );
    let asset = assets[0].asset.body_len as usize;
    assert!(max_held < asset / 2, "held {max_held} of {asset} bytes");
    // The open asset grew on disk fragment by fragment before its publish.
    assert!(grown.len() >= 4, "body file lengths {grown:?}");
    assert!(grown.windows(2).all(|p| p[0] < p[1]), "{grown:?}");
    assert_eq!(*grown.last().unwrap(), assets[0].asset.body_len);
}
