//! The DASH MPD (ISO/IEC 23009-1, live profile): one Period per
//! initialisation generation, in it one Adaptation Set per component
//! (video, audio), each a `SegmentTemplate` over the per-track files beside
//! the assets; `dynamic` while the transmission goes on, with `UTCTiming`
//! so players need no public time server, `static` with its duration once
//! it has ended. [`dash_timing`](super::dash_timing) places it in time,
//! [`dash_set`](super::dash_set) writes each component.

use std::fmt::Write;
use std::time::{Duration, UNIX_EPOCH};

use super::dash_set::adaptation_set;
use super::dash_timing::Timing;
use super::Listing;

const PROFILE: &str = "urn:mpeg:dash:profile:isoff-live:2011";

/// Whole segments a live player is kept behind the edge at least: with two
/// it always has the last complete segment and the one before in reach,
/// whatever backset is recommended.
const MIN_DELAY_SEGMENTS: f64 = 2.0;

pub fn dash(listing: &Listing) -> String {
    let l = &listed(listing);
    let timing = Timing::of(l);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    mpd_element(&mut out, l, &timing);
    for p in timing.periods(l.records) {
        let _ = writeln!(
            out,
            "  <Period id=\"p{}\" start=\"{}\">",
            p.generation,
            duration(p.start_s)
        );
        for track in &l.descriptor.tracks {
            adaptation_set(&mut out, l, &timing, &p, track);
        }
        out.push_str("  </Period>\n");
    }
    if !l.descriptor.ended {
        // The server's own clock (`serve` answers `/time`); a static host
        // has no such file, and the players then read the `Date` header of
        // the MPD itself.
        out.push_str(
            "  <UTCTiming schemeIdUri=\"urn:mpeg:dash:utc:http-iso:2014\" value=\"time\"/>\n  \
             <UTCTiming schemeIdUri=\"urn:mpeg:dash:utc:http-head:2014\" value=\"live.mpd\"/>\n",
        );
    }
    out.push_str("</MPD>\n");
    out
}

/// What the MPD lists: a live stream under retention leaves out its oldest
/// asset, the one deleted next. A player never starts there (see
/// [`delay_s`]), and a server answering from a view a moment old (`serve`
/// rereads the index every 200 ms) would otherwise name an asset that is
/// already gone.
fn listed<'a>(l: &Listing<'a>) -> Listing<'a> {
    let retention = l.descriptor.keep_assets.is_some() || l.descriptor.keep_us.is_some();
    let records = match l.records {
        [_, rest @ ..] if retention && !l.descriptor.ended && !rest.is_empty() => rest,
        all => all,
    };
    Listing { records, ..*l }
}

/// The `MPD` element's attributes: its type, clock and buffer figures.
fn mpd_element(out: &mut String, l: &Listing, timing: &Timing) {
    let longest = l.records.iter().map(|r| r.duration).max().unwrap_or(0);
    let longest_s = l.secs(longest).max(l.descriptor.interval_us as f64 / 1e6);
    let _ = write!(
        out,
        "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" profiles=\"{PROFILE}\" minBufferTime=\"{}\"",
        duration(longest_s)
    );
    if l.descriptor.ended {
        let _ = write!(
            out,
            " type=\"static\" mediaPresentationDuration=\"{}\"",
            duration(timing.duration_s(l.records))
        );
    } else {
        let anchor = l.descriptor.anchor_us.unwrap_or(l.descriptor.started_us);
        let published = l.records.last().map_or(anchor, |r| r.published_us);
        let window: u64 = l.records.iter().map(|r| r.duration).sum();
        let delay = delay_s(l, longest_s);
        let _ = write!(
            out,
            " type=\"dynamic\" availabilityStartTime=\"{}\" publishTime=\"{}\" \
             minimumUpdatePeriod=\"{}\" timeShiftBufferDepth=\"{}\" suggestedPresentationDelay=\"{}\"",
            iso(anchor),
            iso(published),
            duration(l.descriptor.interval_us as f64 / 1e6),
            duration(l.secs(window)),
            duration(delay)
        );
    }
    out.push_str(">\n");
}

/// `suggestedPresentationDelay`, s: the recommended backset, but at least
/// two of the longest assets and, under retention, no deeper than leaves
/// two assets of the retained span ahead of the oldest: Shaka Player starts
/// a segment behind the delay, and at the oldest asset it would ask for the
/// one retention deletes next (404s with `--keep-assets 4` and a 3-asset
/// backset).
fn delay_s(l: &Listing, longest_s: f64) -> f64 {
    let kept_s = match (l.descriptor.keep_assets, l.descriptor.keep_us) {
        (Some(n), _) => Some(n as f64 * longest_s),
        (None, Some(us)) => Some(us as f64 / 1e6),
        (None, None) => None,
    };
    let room = kept_s.map_or(f64::INFINITY, |k| k - MIN_DELAY_SEGMENTS * longest_s);
    l.start_behind_s
        .min(room)
        .max(MIN_DELAY_SEGMENTS * longest_s)
}

/// An `xs:dateTime` in UTC, to the millisecond.
fn iso(us: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_micros(us)).to_string()
}

/// An `xs:duration` in seconds, to the millisecond.
fn duration(s: f64) -> String {
    format!("PT{:.3}S", s.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::naming::Naming;
    use crate::stream::playlists::tests::{descriptor, ended, listing, records};

    #[test]
    fn a_live_mpd_has_one_adaptation_set_per_component_with_codecs() {
        let (d, rs, n) = (descriptor(), records(), Naming::default());
        let text = dash(&listing(&d, &rs, &n));
        assert!(text.contains("type=\"dynamic\""), "{text}");
        assert_eq!(text.matches("<AdaptationSet").count(), 2, "{text}");
        assert!(text.contains("contentType=\"video\" mimeType=\"video/mp4\""));
        assert!(text.contains("contentType=\"audio\" mimeType=\"audio/mp4\""));
        assert!(text.contains("codecs=\"avc1.64000d\""), "{text}");
        assert!(text.contains("codecs=\"mp4a.40.2\""), "{text}");
        assert!(text.contains("width=\"320\" height=\"180\" sar=\"1:1\" frameRate=\"24\""));
        assert!(text.contains("audioSamplingRate=\"48000\""));
        assert!(text.contains("audio_channel_configuration:2011\" value=\"2\""));
        assert_eq!(text.matches("bandwidth=\"").count(), 2);
        assert!(text.contains("profiles=\"urn:mpeg:dash:profile:isoff-live:2011\""));
        assert!(!text.contains("SegmentList"));
    }

    #[test]
    fn segments_are_addressed_per_track_from_the_first_retained_number() {
        let (d, rs, n) = (descriptor(), records(), Naming::default());
        let text = dash(&listing(&d, &rs, &n));
        assert!(text.contains(
            "<SegmentTemplate timescale=\"12288\" initialization=\"asset-init-0000.track1.mp4\" \
             media=\"asset-$Number%08d$.track1.m4s\" startNumber=\"3\">"
        ), "{text}");
        assert!(text.contains(
            "initialization=\"asset-init-0000.track2.mp4\" media=\"asset-$Number%08d$.track2.m4s\""
        ));
        // The pattern is the naming's, number for number.
        let l = listing(&d, &rs, &n);
        let pattern = super::super::dash_set::media_pattern(&l, &d.tracks[0]);
        assert_eq!(
            pattern.replace("$Number%08d$", "00000007"),
            n.track_segment_name(7, 1)
        );
        // Video in its timescale, audio in its own (48000 / 12288 times).
        assert!(text.contains("<S t=\"73728\" d=\"24576\"/>\n            <S d=\"24576\"/>"));
        assert!(text.contains("<S t=\"288000\" d=\"96000\"/>"), "{text}");
        assert_eq!(text.matches("<S ").count(), 6);
    }

    #[test]
    fn a_live_mpd_keeps_players_at_least_two_segments_back_and_names_a_clock() {
        let (d, rs, n) = (descriptor(), records(), Naming::default());
        let text = dash(&listing(&d, &rs, &n));
        assert!(
            text.contains("suggestedPresentationDelay=\"PT6.500S\""),
            "{text}"
        );
        let mut young = listing(&d, &rs, &n);
        young.start_behind_s = 0.0;
        assert!(dash(&young).contains("suggestedPresentationDelay=\"PT4.000S\""));
        // Four assets kept: no deeper than two assets from the oldest.
        let mut kept = d.clone();
        kept.keep_assets = Some(4);
        let four = dash(&listing(&kept, &rs, &n));
        assert!(
            four.contains("suggestedPresentationDelay=\"PT4.000S\""),
            "{four}"
        );
        kept.keep_assets = Some(8);
        let eight = dash(&listing(&kept, &rs, &n));
        assert!(
            eight.contains("suggestedPresentationDelay=\"PT6.500S\""),
            "{eight}"
        );
        assert!(text.contains("timeShiftBufferDepth=\"PT6.000S\""));
        assert!(text.contains("minimumUpdatePeriod=\"PT2.000S\""));
        assert!(text.contains("minBufferTime=\"PT2.000S\""));
        assert!(
            text.contains("availabilityStartTime=\"2025-11-24T16:00:00.000Z\""),
            "{text}"
        );
        assert!(
            text.contains("publishTime=\"2025-11-24T16:00:10.000Z\""),
            "{text}"
        );
        assert!(text.contains("<Period id=\"p0\" start=\"PT0.000S\">"));
        assert!(!text.contains("presentationTimeOffset"));
        assert!(text.contains("urn:mpeg:dash:utc:http-iso:2014\" value=\"time\""));
        assert!(text.contains("urn:mpeg:dash:utc:http-head:2014\" value=\"live.mpd\""));
    }

    #[test]
    fn an_ended_mpd_is_static_from_its_first_retained_segment() {
        let (d, rs, n) = (descriptor(), records(), Naming::default());
        let e = ended(&d);
        let text = dash(&listing(&e, &rs, &n));
        assert!(
            text.contains("type=\"static\" mediaPresentationDuration=\"PT6.000S\""),
            "{text}"
        );
        assert!(!text.contains("availabilityStartTime") && !text.contains("UTCTiming"));
        assert!(text.contains("startNumber=\"3\" presentationTimeOffset=\"73728\">"));
        assert!(text.contains("presentationTimeOffset=\"288000\""));
    }

    #[test]
    fn a_new_moov_starts_a_new_period_with_its_own_init() {
        let (d, n) = (descriptor(), Naming::default());
        let mut rs = records();
        rs[2].init = 1;
        let text = dash(&listing(&d, &rs, &n));
        assert_eq!(text.matches("<Period ").count(), 2, "{text}");
        assert!(
            text.contains("<Period id=\"p1\" start=\"PT10.000S\">"),
            "{text}"
        );
        assert!(text.contains(
            "initialization=\"asset-init-0001.track1.mp4\" media=\"asset-$Number%08d$.track1.m4s\" \
             startNumber=\"5\" presentationTimeOffset=\"122880\">"
        ), "{text}");
        let e = ended(&d);
        let ended = dash(&listing(&e, &rs, &n));
        assert!(
            ended.contains("<Period id=\"p1\" start=\"PT4.000S\">"),
            "{ended}"
        );
    }

    #[test]
    fn an_audio_only_stream_is_audio_with_its_declared_bitrate() {
        let json = r#"{"version":1,"prefix":"asset","pattern":"asset-%08d.mp4",
            "index":"index.bin","timescale":48000,"interval_us":2000000,
            "tracks":[{"id":1,"kind":"audio","codec":"mp4a","codecs":"mp4a.40.2",
              "timescale":48000,"channels":1,"bitrate_bps":69000}],
            "first_sequence":0,"started_us":1764000000000000,"ended":false}"#;
        let d: crate::stream::descriptor::Descriptor = serde_json::from_str(json).unwrap();
        let (rs, n) = (records(), Naming::default());
        let text = dash(&listing(&d, &rs, &n));
        assert_eq!(text.matches("<AdaptationSet").count(), 1, "{text}");
        assert!(
            text.contains("contentType=\"audio\" mimeType=\"audio/mp4\""),
            "{text}"
        );
        assert!(!text.contains("video"), "{text}");
        assert!(
            text.contains("codecs=\"mp4a.40.2\" bandwidth=\"69000\""),
            "{text}"
        );
        assert!(text.contains("audio_channel_configuration:2011\" value=\"1\""));
    }

    #[test]
    fn each_adaptation_set_names_the_in_band_event_schemes() {
        let (d, rs, n) = (descriptor(), records(), Naming::default());
        let events = [crate::stream::events::Event {
            offset: 0,
            version: 1,
            scheme: "urn:scte:scte35:2013:bin".into(),
            value: String::new(),
            id: 7,
            time_s: 7.0,
            duration_s: None,
            message: vec![0xFC],
        }];
        let mut l = listing(&d, &rs, &n);
        l.events = &events;
        let text = dash(&l);
        let inband = "<InbandEventStream schemeIdUri=\"urn:scte:scte35:2013:bin\" value=\"\"/>";
        assert_eq!(text.matches(inband).count(), 2, "{text}");
        assert!(!dash(&listing(&d, &rs, &n)).contains("InbandEventStream"));
    }
}
