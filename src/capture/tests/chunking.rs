//! The events a capture gives do not depend on how its bytes arrive, and
//! they say what the specification says: assets cut at the first key frame
//! past the interval, each opening with a key frame, entry offsets at
//! `moof`s, datastamps the running count of fragment bytes, timestamps the
//! key frames' presentation times, continuous across assets and runs.

use super::edit::nth_box;
use super::support::*;
use crate::capture::framing::Framer;
use crate::capture::init::TrackKind;
use crate::capture::segmenter::{Config, Resume, Segmenter};
use crate::capture::stamps::rescale;

const CHUNKS: [usize; 3] = [1, 7, 4096];

fn assert_same_events(whole: &Outcome, other: &Outcome, what: &str) {
    assert_eq!(
        whole.error_text(),
        other.error_text(),
        "{what}: the error differs"
    );
    let n = whole.events.len().max(other.events.len());
    if let Some(i) = (0..n).find(|&i| whole.events.get(i) != other.events.get(i)) {
        panic!(
            "{what}: event {i} differs: whole {:?}, chunked {:?}",
            whole.events.get(i),
            other.events.get(i)
        );
    }
}

#[test]
fn every_chunking_gives_the_same_events() {
    for (name, bytes) in FIXTURES {
        let whole = segment(bytes, SECOND);
        assert_eq!(whole.exit_code(), 0, "{name}: {}", whole.summary());
        assert!(whole.warnings().is_empty(), "{name}: {}", whole.summary());
        for chunk in CHUNKS {
            let chunked = Feed::new(every(SECOND)).chunk(chunk).run(bytes);
            assert_same_events(&whole, &chunked, &format!("{name} in {chunk}-byte chunks"));
        }
    }
}

#[test]
fn damage_is_handled_the_same_however_the_bytes_arrive() {
    let clean = fixture("h264-aac-gop.mp4");
    let second_moof = nth_box(clean, b"moof", 1).offset;
    let mut bytes = b"capture tool v1.2 starting\n".to_vec();
    bytes.extend_from_slice(&clean[..second_moof]);
    bytes.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0]);
    bytes.extend_from_slice(&clean[second_moof..clean.len() - 1000]);
    let whole = segment(&bytes, SECOND);
    assert_eq!(whole.exit_code(), 0, "{}", whole.summary());
    assert_eq!(whole.warnings().len(), 3, "{}", whole.summary());
    for chunk in CHUNKS {
        let chunked = Feed::new(every(SECOND)).chunk(chunk).run(&bytes);
        assert_same_events(&whole, &chunked, &format!("damaged, {chunk}-byte chunks"));
    }
}

/// As `backset segment` feeds it: a framer reads the input and hands over
/// whole boxes, and what it had left goes to `finish_with`.
fn segment_boxes(capture: &[u8]) -> Outcome {
    let mut segmenter = Segmenter::new(every(SECOND), None);
    let mut framer = Framer::resyncing();
    framer.push(capture);
    let (mut events, mut failure) = (Vec::new(), None);
    loop {
        let pushed = match framer.next_box() {
            Ok(Some(b)) => segmenter.push_box(b, NOW, &mut events),
            Ok(None) => break,
            Err(e) => Err(e),
        };
        if let Err(e) = pushed {
            failure = Some(e);
            break;
        }
    }
    let tail = framer.unfinished().filter(|_| failure.is_none());
    let finished = segmenter.finish_with(tail, &mut events);
    let events = seen(events);
    if !events.iter().any(|e| matches!(e, Seen::Asset(_))) {
        failure = failure.or(finished.err());
    }
    Outcome {
        events,
        error: failure,
    }
}

#[test]
fn boxes_framed_outside_give_the_same_events_as_bytes() {
    let gop = fixture("h264-aac-gop.mp4");
    let moov = nth_box(gop, b"moov", 0).offset;
    let mut impossible = gop.to_vec();
    impossible[moov..moov + 4].copy_from_slice(&4u32.to_be_bytes());
    let mut prefixed = b"capture tool v1.2 starting\n".to_vec();
    prefixed.extend_from_slice(&gop[..gop.len() - 1000]);
    let cases: [(&str, &[u8]); 5] = [
        ("whole", gop),
        ("prefixed and truncated", &prefixed),
        ("impossible moov size", &impossible),
        ("cut in the moov", &gop[..500]),
        ("garbage", &[0x55; 3000]),
    ];
    for (what, bytes) in cases {
        assert_same_events(&segment(bytes, SECOND), &segment_boxes(bytes), what);
    }
}

/// Asset starts in ms of transmission time.
fn starts_ms(o: &Outcome) -> Vec<u64> {
    let timescale = u64::from(o.starts()[0].1);
    o.assets()
        .iter()
        .map(|a| (a.maps().start * 1000 + timescale / 2) / timescale)
        .collect()
}

#[test]
fn interval_cuts_at_the_first_key_frame_after_it() {
    // h264-aac-fragdur: key frames at 0, 0.75, 2.083, 2.5, 4.208, 5.5 s.
    let cases: [(&str, u64, &[u64]); 6] = [
        ("h264-aac-fragdur.mp4", 2 * SECOND, &[0, 2083, 4208]),
        ("h264-aac-fragdur.mp4", SECOND, &[0, 2083, 4208, 5500]),
        ("h264-aac-fragdur.mp4", 10 * SECOND, &[0]),
        ("h264-aac-gop.mp4", SECOND, &[0, 2000, 4000]),
        ("h264-every-frame.mp4", 2 * SECOND, &[0, 2000]),
        ("aac-only.mp4", 2 * SECOND, &[0, 2005, 4011, 6016]),
    ];
    for (name, interval, want) in cases {
        let o = segment(fixture(name), interval);
        assert_eq!(starts_ms(&o), want, "{name} every {interval} µs");
        o.assert_intact(name);
    }
}

#[test]
fn size_cuts_at_the_first_key_frame_once_reached() {
    let size = 20 * 1024;
    let config = Config {
        interval_us: 3600 * SECOND,
        size: Some(size),
        ..Config::default()
    };
    let o = Feed::new(config).run(fixture("h264-every-frame.mp4"));
    let assets = o.assets();
    assert!(assets.len() >= 2, "{}", o.summary());
    for a in &assets[..assets.len() - 1] {
        assert!(a.asset.body_len >= size, "{a:?} cut before the size");
        let last_entry = a.maps().entries.last().expect("an entry").datastamp;
        assert!(
            last_entry - a.maps().start_datastamp < size,
            "{a:?} went past a key frame after reaching the size"
        );
    }
}

/// The key frames of the reference track, as (presentation time, decode
/// time) in its timescale.
fn key_frames(bytes: &[u8]) -> Vec<(i128, u64)> {
    let p = parse(bytes);
    let reference = p.init.reference();
    p.fragments
        .iter()
        .flat_map(|f| {
            f.runs
                .iter()
                .filter(|r| r.track == reference)
                .flat_map(|r| f.run_samples(r))
        })
        .filter(|s| s.is_sync())
        .map(|s| (s.pts(), s.dts))
        .collect()
}

#[test]
fn each_asset_opens_with_a_key_frame_and_its_entries_point_at_moofs() {
    for (name, bytes) in FIXTURES {
        let o = segment(bytes, SECOND);
        let input = parse(bytes);
        let video = input.init.tracks[input.init.reference()].kind == TrackKind::Video;
        let mut entries = 0;
        for a in o.assets() {
            let maps = a.maps();
            let header_len = a.asset.header.len() as u64;
            assert_eq!(maps.entries[0].offset, header_len, "{name}: {a:?}");
            let asset = parse(&a.bytes);
            let reference = asset.init.reference();
            for e in &maps.entries {
                let at = past_events(&a.bytes, e.offset as usize);
                assert_eq!(&a.bytes[at + 4..at + 8], b"moof", "{name}: entry {e:?}");
                let f = asset
                    .fragments
                    .iter()
                    .find(|f| f.moof_offset == at as u64)
                    .expect("the entry's fragment");
                let first = f.runs.iter().find(|r| r.track == reference);
                let first = first.map(|r| f.samples[r.samples.start]);
                assert!(
                    first.is_some_and(|s| s.is_sync()),
                    "{name}: entry {e:?} opens no key frame"
                );
            }
            entries += maps.entries.len();
        }
        // One entry point per video key frame; without video, per fragment.
        let want = match video {
            true => key_frames(bytes).len(),
            false => input.fragments.len(),
        };
        assert_eq!(entries, want, "{name}");
    }
}

#[test]
fn datastamps_count_fragment_bytes_and_timestamps_are_presentation_times() {
    for (name, bytes) in FIXTURES {
        let o = segment(bytes, SECOND);
        o.assert_intact(name);
        let assets = o.assets();
        assert_eq!(assets[0].maps().start, 0, "{name}");
        assert_eq!(assets[0].maps().start_datastamp, 0, "{name}");
        let mut last: Option<(u64, u64)> = None;
        for a in &assets {
            let (maps, header_len) = (a.maps(), a.asset.header.len() as u64);
            assert!(maps.duration > 0, "{name}: {a:?}");
            assert_eq!(a.bytes.len() as u64, header_len + a.asset.body_len);
            assert_eq!(maps.entries[0].timestamp, maps.start, "{name}: {a:?}");
            for e in &maps.entries {
                assert_eq!(e.datastamp, maps.start_datastamp + e.offset - header_len);
                assert!(
                    (maps.start..a.end()).contains(&e.timestamp),
                    "{name}: {e:?}"
                );
                assert!(
                    last.is_none_or(|(ts, ds)| e.timestamp > ts && e.datastamp > ds),
                    "{name}: stamps must strictly increase at {e:?}"
                );
                last = Some((e.timestamp, e.datastamp));
            }
        }
        let total: u64 = assets.iter().map(|a| a.asset.body_len).sum();
        let after = assets
            .last()
            .map(|a| a.maps().start_datastamp + a.asset.body_len);
        assert_eq!(after, Some(total), "{name}");
    }
}

#[test]
fn entry_timestamps_are_the_key_frames_on_the_transmission_clock() {
    for name in ["h264-aac-fragdur.mp4", "hevc-aac-separate-moof.mp4"] {
        let bytes = fixture(name);
        let keys = key_frames(bytes);
        let origin = keys[0].0;
        let want: Vec<u64> = keys.iter().map(|k| (k.0 - origin) as u64).collect();
        let o = segment(bytes, SECOND);
        let got: Vec<u64> = o
            .assets()
            .iter()
            .flat_map(|a| a.maps().entries.iter().map(|e| e.timestamp))
            .collect();
        assert_eq!(got, want, "{name}");
        // The last asset ends where the reference track's presentation does.
        let input = parse(bytes);
        let reference = input.init.reference();
        let end = input
            .fragments
            .iter()
            .flat_map(|f| f.runs.iter().map(move |r| (f, r)))
            .filter(|(_, r)| r.track == reference)
            .flat_map(|(f, r)| f.run_samples(r))
            .map(|s| s.pts() + i128::from(s.duration))
            .max();
        let last = o.assets().last().map(|a| i128::from(a.end()));
        assert_eq!(last, end.map(|e| e - origin), "{name}");
    }
}

#[test]
fn no_sample_is_lost_doubled_or_changed() {
    for (name, bytes) in FIXTURES {
        for interval in [SECOND, 3 * SECOND] {
            let o = segment(bytes, interval);
            assert_same_media(
                &capture_media(bytes),
                &assets_media(&o.assets()),
                &format!("{name} every {interval} µs"),
            );
        }
    }
}

#[test]
fn an_entry_carries_the_wall_clock_its_fragment_completed_at() {
    let bytes = fixture("h264-aac-fragdur.mp4");
    // The clock reads the number of bytes received so far.
    let feed = Feed {
        clock: |received| received,
        ..Feed::new(every(SECOND)).chunk(1)
    };
    let o = feed.run(bytes);
    let input = parse(bytes);
    let mdat_ends: Vec<u64> = input
        .boxes
        .iter()
        .filter(|b| &b.kind == b"mdat")
        .map(|b| b.offset + b.bytes.len() as u64)
        .collect();
    let mut clocks: Vec<u64> = o
        .assets()
        .iter()
        .flat_map(|a| a.maps().entries.iter().map(|e| e.wallclock_us))
        .collect();
    // Key frames at 0 and 0.75 s share the first fragment; 2.083 and 2.5
    // the second; 4.208 the third, 5.5 the fourth.
    assert_eq!(clocks.len(), 6);
    clocks.dedup();
    assert_eq!(clocks, mdat_ends[..4], "{}", o.summary());
}

#[test]
fn a_resumed_transmission_goes_on_from_the_edge() {
    let bytes = fixture("h264-aac-gop.mp4");
    let first = segment(bytes, SECOND);
    let last = *first.assets().last().expect("assets");
    let timescale = first.starts()[0].1;
    let resume = Resume {
        next_sequence: last.maps().sequence + 1,
        time_base: last.end(),
        next_datastamp: last.maps().start_datastamp + last.asset.body_len,
        timescale,
    };
    let second = Feed {
        resume: Some(resume),
        ..Feed::new(every(SECOND))
    }
    .run(bytes);
    let both = Outcome {
        events: first.events.iter().chain(&second.events).cloned().collect(),
        error: None,
    };
    both.assert_intact("two runs");
    assert_eq!(both.assets().len(), 6);
    // Each track's decode times go on from the edge, in its own timescale.
    let tracks = &second.starts()[0].0;
    let mut want = capture_media(bytes);
    for (id, samples) in &mut want {
        let scale = tracks
            .iter()
            .find(|t| t.id == *id)
            .expect("track")
            .timescale;
        let shift = rescale(resume.time_base, timescale, scale) - samples[0].dts;
        samples.iter_mut().for_each(|s| s.dts += shift);
    }
    assert_same_media(&want, &assets_media(&second.assets()), "resumed");
}
