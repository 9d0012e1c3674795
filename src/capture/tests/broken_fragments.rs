//! Fragments that frame fine but say odd things: decode times that jump or
//! wrap (at 2^32 or 2^64), a missing `tfdt`, zero durations, a track the
//! `moov` never declared, a new `moov` mid-stream. The segmenter mends or drops each
//! with a warning naming the `moof`, and the stamps run on.

use std::collections::HashMap;

use mp4_atom::TrunSamples;

use super::edit::{edit_moofs, nth_box, set_tfdt};
use super::support::*;
use crate::capture::maps::Maps;

fn fragdur() -> &'static [u8] {
    fixture("h264-aac-fragdur.mp4")
}

/// Seconds of transmission the assets cover.
fn duration_s(o: &Outcome) -> f64 {
    let end = o.assets().last().map_or(0, |a| a.end());
    end as f64 / VIDEO_TIMESCALE as f64
}

#[test]
fn decode_time_jumps_forward_and_backward_are_mended() {
    let hour = |track: u32| match track {
        1 => VIDEO_TIMESCALE * 3600,
        _ => 48000 * 3600,
    };
    let third_moof = nth_box(fragdur(), b"moof", 2).offset;
    for (name, jumped) in [
        ("forward", set_tfdt(fragdur(), 2, |t, v| v + hour(t))),
        ("backward", set_tfdt(fragdur(), 2, |_, v| v / 10)),
    ] {
        let o = segment(&jumped, SECOND);
        assert_eq!(o.exit_code(), 0, "{name}: {}", o.summary());
        assert!(
            o.warned(&format!(
                "moof at byte {third_moof}: track 1 decode time jumps by"
            )),
            "{name}: {}",
            o.summary()
        );
        o.assert_intact(name);
        // Mended to go on where they were: the encoder's own decode times.
        assert_same_media(&capture_media(fragdur()), &assets_media(&o.assets()), name);
        assert!(
            (duration_s(&o) - 6.0).abs() < 0.1,
            "{name}: {}",
            duration_s(&o)
        );
    }
}

#[test]
fn a_wrapping_32_bit_decode_time_is_mended() {
    // Put the wrap at the third fragment: before it, times sit just under 2^32.
    let mut at_wrap = HashMap::new();
    let _ = set_tfdt(fragdur(), 2, |t, v| {
        at_wrap.entry(t).or_insert(v);
        v
    });
    let lift = |t: u32| (1u64 << 32) - at_wrap[&t];
    let wrapped = set_tfdt(fragdur(), 0, |t, v| (v + lift(t)) % (1u64 << 32));
    let o = segment(&wrapped, SECOND);
    assert_eq!(o.exit_code(), 0, "{}", o.summary());
    assert!(o.warned("decode time jumps by"), "{}", o.summary());
    o.assert_intact("wrapped");
    assert!((duration_s(&o) - 6.0).abs() < 0.1, "{}", duration_s(&o));
    // The decode times go on past 2^32 instead of wrapping.
    let mut want = capture_media(fragdur());
    for (track, samples) in &mut want {
        samples.iter_mut().for_each(|s| s.dts += lift(*track));
    }
    assert_same_media(&want, &assets_media(&o.assets()), "wrapped");
}

#[test]
fn a_wrapping_64_bit_decode_time_is_mended() {
    // The third fragment's decode times, per track, and its video's second.
    let mut at_third = HashMap::new();
    let _ = set_tfdt(fragdur(), 2, |t, v| {
        at_third.entry(t).or_insert(v);
        v
    });
    let tick = |t: u32| if t == 1 { VIDEO_TIMESCALE } else { 48000 };
    // The wrap falls between fragments, then inside the third one.
    for (name, past) in [("between fragments", 0), ("inside a fragment", 1)] {
        let wrap_at = |t: u32| at_third[&t] + past * tick(t);
        let lift = |t: u32| 0u64.wrapping_sub(wrap_at(t));
        let wrapped = set_tfdt(fragdur(), 0, |t, v| v.wrapping_add(lift(t)));
        let o = segment(&wrapped, SECOND);
        assert_eq!(o.exit_code(), 0, "{name}: {}", o.summary());
        assert!(o.warned("decode time jumps by"), "{name}: {}", o.summary());
        o.assert_intact(name);
        assert!(
            (duration_s(&o) - 6.0).abs() < 0.1,
            "{name}: {}",
            duration_s(&o)
        );
        // Moved down by 2^63 ticks, the decode times go on past the wrap.
        let mut want = capture_media(fragdur());
        for (track, samples) in &mut want {
            let moved = (1u64 << 63) - wrap_at(*track);
            samples.iter_mut().for_each(|s| s.dts += moved);
        }
        assert_same_media(&want, &assets_media(&o.assets()), name);
    }
}

#[test]
fn zero_duration_and_duplicate_samples_are_kept() {
    // All video samples of the second fragment get duration 0: they share
    // one decode time.
    let broken = edit_moofs(fragdur(), 1, |n, moof| {
        if n == 1 {
            for traf in moof.traf.iter_mut().filter(|t| t.tfhd.track_id == 1) {
                traf.tfhd.default_sample_duration = Some(0);
            }
        }
    });
    let o = segment(&broken, SECOND);
    assert_eq!(o.exit_code(), 0, "{}", o.summary());
    o.assert_intact("zero durations");
    // Kept as sent, none lost or doubled.
    let kept = capture_media(&broken);
    assert!(kept[&1].iter().filter(|s| s.duration == 0).count() > 10);
    assert_same_media(&kept, &assets_media(&o.assets()), "zero durations");
}

#[test]
fn a_missing_tfdt_carries_decode_times_on() {
    let without = edit_moofs(fragdur(), 1, |_, moof| {
        for traf in &mut moof.traf {
            traf.tfdt = None;
        }
    });
    let o = segment(&without, SECOND);
    assert_eq!(o.exit_code(), 0, "{}", o.summary());
    // Once per track, at the first moof without one.
    let second_moof = nth_box(&without, b"moof", 1).offset;
    assert_eq!(
        o.warnings(),
        [1, 2].map(|t| format!(
            "moof at byte {second_moof}: track {t} has no tfdt; its decode times go on from the previous fragment"
        ))
    );
    o.assert_intact("without tfdt");
    // The encoder's own decode times were continuous: carrying them on
    // rebuilds exactly the capture.
    assert_same_media(&capture_media(fragdur()), &assets_media(&o.assets()), "");
}

#[test]
fn a_traf_for_a_track_the_moov_does_not_declare_drops_its_fragment() {
    let gop = fixture("h264-aac-gop.mp4");
    let broken = edit_moofs(gop, 0, |n, moof| {
        if n == 0 {
            moof.traf[0].tfhd.track_id = 9;
        }
    });
    let o = segment(&broken, SECOND);
    assert_eq!(o.exit_code(), 0, "{}", o.summary());
    let moof = nth_box(&broken, b"moof", 0).offset;
    assert_eq!(
        o.warnings(),
        [format!(
            "moof at byte {moof}: traf for track 9 which the moov does not declare; fragment dropped"
        )]
    );
    assert_eq!(o.assets().len(), 2);
    o.assert_intact("undeclared track");
}

/// The capture's `ftyp` with `cmfc` appended to its compatible brands
/// (which ffmpeg does not write), then its `moov` as it is.
fn cmaf_init(capture: &[u8]) -> Vec<u8> {
    use mp4_atom::{Decode, Encode, Ftyp};
    let ftyp = nth_box(capture, b"ftyp", 0);
    let mut decoded = Ftyp::decode(&mut &capture[ftyp.offset..ftyp.end()]).expect("an ftyp");
    assert!(!decoded.compatible_brands.contains(&b"cmfc".into()));
    decoded.compatible_brands.push(b"cmfc".into());
    let mut init = Vec::new();
    decoded.encode(&mut init).expect("encodes");
    let moov = nth_box(capture, b"moov", 0);
    init.extend_from_slice(&capture[moov.offset..moov.end()]);
    init
}

#[test]
fn a_new_moov_starts_a_new_asset_and_the_transmission_goes_on() {
    let h264 = fixture("h264-aac-gop.mp4");
    let hevc = fixture("hevc-aac-separate-moof.mp4");
    let o = segment(&[h264, hevc].concat(), 2 * SECOND);
    assert_eq!(o.exit_code(), 0, "{}", o.summary());
    let second_moov = h264.len() + nth_box(hevc, b"moov", 0).offset;
    assert_eq!(
        o.warnings(),
        [format!(
            "moov at byte {second_moov}: a new initialisation (encoder restart or new parameters); the next asset starts with it"
        )]
    );
    // The second initialisation keeps the transmission's timescale.
    let codecs: Vec<_> = o
        .starts()
        .iter()
        .map(|(t, s)| (t[0].codec.clone(), *s))
        .collect();
    assert_eq!(codecs, [("avc1".into(), 12288), ("hvc1".into(), 12288)]);
    // Each asset carries its own capture's initialisation: the `moov`
    // unchanged, after the capture's `ftyp` with `cmfc` added.
    let inits: Vec<&[u8]> = o
        .assets()
        .iter()
        .map(|a| {
            let maps_len = Maps::encoded_len(a.maps().entries.len());
            &a.asset.header[..a.asset.header.len() - maps_len]
        })
        .collect();
    let (h264_init, hevc_init) = (cmaf_init(h264), cmaf_init(hevc));
    assert_eq!(inits.iter().filter(|i| **i == h264_init).count(), 3);
    assert!(inits.len() > 3 && inits[3..].iter().all(|i| *i == hevc_init));
    // 6 s of H.264, then 5 s of HEVC, without a gap.
    o.assert_intact("across the new moov");
    assert!((duration_s(&o) - 11.0).abs() < 0.1, "{}", duration_s(&o));
}

#[test]
fn a_key_frame_not_after_the_previous_one_is_no_entry_point() {
    // The second fragment holds key frames at 2.083 s and 2.5 s: present
    // the second at the time of the first.
    let input = parse(fragdur());
    let f = &input.fragments[1];
    let video = f.runs.iter().find(|r| r.track == 0).expect("video");
    let keys: Vec<usize> = (0..video.samples.len())
        .filter(|&i| f.samples[video.samples.start + i].is_sync())
        .collect();
    assert_eq!(keys.len(), 2);
    let (first, second) = (f.samples[video.samples.start + keys[0]], keys[1]);
    let dts = f.samples[video.samples.start + second].dts;
    let cts = first.pts() as i64 - dts as i64;
    let broken = edit_moofs(fragdur(), 1, |n, moof| {
        if n == 1 {
            assert_eq!(moof.traf[0].tfhd.track_id, 1, "video first");
            if let TrunSamples::Explicit(entries) = &mut moof.traf[0].trun[0].samples {
                entries[second].cts = Some(cts);
            }
        }
    });
    let o = segment(&broken, SECOND);
    assert_eq!(o.exit_code(), 0, "{}", o.summary());
    let moof = nth_box(&broken, b"moof", 1).offset;
    assert_eq!(
        o.warnings(),
        [format!(
            "moof at byte {moof}: a key frame at or before the previous one in time; not an entry point"
        )]
    );
    // Kept, but five entry points for six key frames.
    let entries: usize = o.assets().iter().map(|a| a.maps().entries.len()).sum();
    assert_eq!(entries, 5);
    assert_same_media(&capture_media(&broken), &assets_media(&o.assets()), "");
    o.assert_intact("a key frame out of order");
}
