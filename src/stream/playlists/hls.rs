//! The live HLS media playlist (`live-av.m3u8`): each asset's media part is
//! one segment, addressed by byte range, and each initialisation generation
//! is its own init file (`EXT-X-MAP`), so the map's URL lives as long as a
//! segment that needs it and changes, after an `EXT-X-DISCONTINUITY`, only
//! when the capture's `moov` does. Everything RFC 8216 asks to stay put
//! while live is made from what is fixed for the transmission (the target
//! duration from the cutter's limit), not from the records of the moment.

use std::fmt::Write;
use std::time::{Duration, UNIX_EPOCH};

use super::Listing;
use crate::stream::index::Record;

/// `EXT-X-MAP` in a playlist that is not I-frames-only needs version 6
/// (RFC 8216 section 7); byte ranges (4) and fractional `EXTINF` (3) come
/// with it.
const VERSION: u32 = 6;

/// A client SHOULD NOT start closer to the end than this many target
/// durations (RFC 8216 6.3.3).
const START_TARGETS: f64 = 3.0;

pub fn hls(l: &Listing) -> String {
    let mut out = String::new();
    header(l, &mut out);
    let anchor = l.descriptor.anchor_us.unwrap_or(l.descriptor.started_us);
    out.push_str(&super::markers::hls_dateranges(l.events, anchor));
    let mut generation: Option<u32> = None;
    for r in l.records {
        if generation != Some(r.init) {
            // The first map needs no discontinuity: the sequence number
            // above already counts the generations retention dropped.
            if generation.is_some() {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}\"", l.naming.init_name(r.init));
            generation = Some(r.init);
        }
        let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{}", program_date_time(l, r));
        let _ = writeln!(out, "#EXTINF:{:.5},", l.secs(r.duration));
        let _ = writeln!(out, "#EXT-X-BYTERANGE:{}@{}", r.media_len(), r.header_len);
        let _ = writeln!(out, "{}", l.naming.name(r.sequence));
    }
    if l.descriptor.ended {
        out.push_str("#EXT-X-ENDLIST\n");
    }
    out
}

/// The tags before the first segment.
fn header(l: &Listing, out: &mut String) {
    let _ = writeln!(out, "#EXTM3U\n#EXT-X-VERSION:{VERSION}");
    let target = target_duration(l);
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{target}");
    let first = l.records.first();
    let _ = writeln!(
        out,
        "#EXT-X-MEDIA-SEQUENCE:{}",
        first.map_or(0, |r| r.sequence)
    );
    // A generation is one discontinuity: numbering each segment's
    // discontinuity sequence by its generation keeps it right whatever
    // retention drops, as long as generations follow one another.
    if let Some(g) = first.map(|r| r.init).filter(|&g| g > 0) {
        let _ = writeln!(out, "#EXT-X-DISCONTINUITY-SEQUENCE:{g}");
    }
    // An asset cut for safety starts without a key frame (its maps list
    // none); while one is listed the playlist cannot claim independence.
    if l.records.iter().all(|r| r.entries > 0) {
        out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    }
    if !l.descriptor.ended {
        let _ = writeln!(
            out,
            "#EXT-X-START:TIME-OFFSET=-{:.3},PRECISE=YES",
            start_offset_s(l)
        );
    }
}

/// `EXT-X-TARGETDURATION`, s: the longest asset the cutter makes, rounded
/// up, so it never changes while the playlist lives (RFC 8216 4.3.3.1:
/// each `EXTINF` rounded to the nearest integer is at most this). The cutter
/// stops an asset at its safety limit (`max_duration_us`); one without it
/// recorded (an older `stream.json`) is taken to have the default limit a
/// playlist gets, twice the interval, or its longest asset if longer.
pub fn target_duration(l: &Listing) -> u64 {
    let d = l.descriptor;
    let limit_s = match d.max_duration_us {
        Some(us) => us as f64 / 1e6,
        None => {
            let longest = l.records.iter().map(|r| r.duration).max().unwrap_or(0);
            (2.0 * d.interval_us as f64 / 1e6).max(l.secs(longest))
        }
    };
    (limit_s.ceil() as u64).max(1)
}

/// How far behind the end a player is told to start, s: the recommended
/// backset, but never closer than three target durations.
pub fn start_offset_s(l: &Listing) -> f64 {
    l.start_behind_s
        .max(START_TARGETS * target_duration(l) as f64)
}

/// The wall-clock time the segment's first sample was received: the
/// anchor (when media time 0 came) plus its media time, so segments are
/// spaced by their durations even when a file is cut faster than real time.
/// Before the anchor is known (no key frame published yet), the
/// transmission's start stands in.
fn program_date_time(l: &Listing, r: &Record) -> String {
    let anchor = l.descriptor.anchor_us.unwrap_or(l.descriptor.started_us);
    let us = anchor.saturating_add((l.secs(r.start) * 1e6).round() as u64);
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_micros(us)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::naming::Naming;
    use crate::stream::playlists::tests::{descriptor, ended, listing, records};

    #[test]
    fn hls_addresses_each_assets_media_part_by_byte_range_after_a_stable_map() {
        let (d, rs, n) = (descriptor(), records(), Naming::default());
        let text = hls(&listing(&d, &rs, &n));
        assert!(text.starts_with("#EXTM3U\n#EXT-X-VERSION:6\n"), "{text}");
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:3\n"));
        assert!(text.contains("#EXT-X-INDEPENDENT-SEGMENTS\n"));
        assert!(!text.contains("DISCONTINUITY"));
        assert_eq!(
            text.matches("#EXT-X-MAP:").count(),
            1,
            "one generation, one map: {text}"
        );
        assert!(text.contains("#EXT-X-MAP:URI=\"asset-init-0000.mp4\"\n"));
        assert_eq!(text.matches("#EXT-X-BYTERANGE:50000@1440\n").count(), 3);
        assert!(
            text.contains("#EXTINF:2.00000,\n#EXT-X-BYTERANGE:50000@1440\nasset-00000005.mp4\n")
        );
        assert!(!text.contains("ENDLIST"));
        let e = ended(&d);
        let ended = hls(&listing(&e, &rs, &n));
        assert!(ended.ends_with("#EXT-X-ENDLIST\n") && !ended.contains("EXT-X-START"));
    }

    #[test]
    fn the_target_comes_from_the_cutters_limit_and_the_start_keeps_three_targets_back() {
        let (mut d, rs, n) = (descriptor(), records(), Naming::default());
        // No limit recorded: twice the 2 s interval.
        let text = hls(&listing(&d, &rs, &n));
        assert!(text.contains("#EXT-X-TARGETDURATION:4\n"), "{text}");
        // 3 x 4 s is more than the 6.5 s recommended.
        assert!(text.contains("#EXT-X-START:TIME-OFFSET=-12.000,PRECISE=YES\n"));
        d.max_duration_us = Some(2_400_000);
        let text = hls(&listing(&d, &rs, &n));
        assert!(text.contains("#EXT-X-TARGETDURATION:3\n"), "{text}");
        assert!(text.contains("#EXT-X-START:TIME-OFFSET=-9.000,PRECISE=YES\n"));
        d.max_duration_us = Some(1_000_000);
        let mut l = listing(&d, &rs, &n);
        l.start_behind_s = 7.25;
        assert!(hls(&l).contains("#EXT-X-START:TIME-OFFSET=-7.250,PRECISE=YES\n"));
        // Whatever the records, the target stays.
        let short: Vec<Record> = rs.iter().map(|r| Record { duration: 1, ..*r }).collect();
        assert!(hls(&listing(&d, &short, &n)).contains("#EXT-X-TARGETDURATION:1\n"));
    }

    #[test]
    fn a_new_generation_gets_a_discontinuity_and_its_own_map() {
        let (d, mut rs, n) = (descriptor(), records(), Naming::default());
        rs[2].init = 1;
        let text = hls(&listing(&d, &rs, &n));
        assert!(
            text.contains(
                "asset-00000004.mp4\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"asset-init-0001.mp4\"\n"
            ),
            "{text}"
        );
        assert!(!text.contains("DISCONTINUITY-SEQUENCE"));
        // Retention dropped generation 0: the sequence counts it.
        let text = hls(&listing(&d, &rs[2..], &n));
        assert!(text.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"), "{text}");
        assert!(!text.contains("#EXT-X-DISCONTINUITY\n"));
    }

    #[test]
    fn an_asset_without_a_key_frame_withdraws_independence() {
        let (d, mut rs, n) = (descriptor(), records(), Naming::default());
        rs[1].entries = 0;
        let text = hls(&listing(&d, &rs, &n));
        assert!(!text.contains("INDEPENDENT"), "{text}");
    }

    #[test]
    fn program_date_times_follow_media_time_not_publish_time() {
        let (mut d, rs, n) = (descriptor(), records(), Naming::default());
        let text = hls(&listing(&d, &rs, &n));
        assert!(text.contains("#EXT-X-PROGRAM-DATE-TIME:2025-11-24T16:00:06.000Z\n"));
        // The anchor, once known, is 1.5 s after the start.
        d.anchor_us = Some(1_764_000_001_500_000);
        let text = hls(&listing(&d, &rs, &n));
        // Records start at 6, 8 and 10 s of media time.
        for (i, t) in ["16:00:07.500", "16:00:09.500", "16:00:11.500"]
            .iter()
            .enumerate()
        {
            assert!(
                text.contains(&format!("#EXT-X-PROGRAM-DATE-TIME:2025-11-24T{t}Z\n")),
                "segment {i}: {text}"
            );
        }
    }
}
