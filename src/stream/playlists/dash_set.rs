//! One DASH Adaptation Set: one component (a track) of one Period, with its
//! one Representation, addressed by a `SegmentTemplate` over the per-track
//! files written beside the assets (the generation's per-track init, and
//! asset N's per-track segment as `$Number$`, `startNumber` the first
//! listed asset) and a `SegmentTimeline` of the assets' times.

use std::fmt::Write;

use crate::capture::init::{Track, TrackKind};

use super::dash_timing::{Period, Timing};
use super::Listing;

/// The DASH-IF audio channel configuration scheme (a channel count).
const CHANNELS_SCHEME: &str = "urn:mpeg:dash:23003:3:audio_channel_configuration:2011";

/// What an audio track is assumed to take per channel when its sample
/// entry declares no bitrate: the stream's measured bitrate is then split
/// between the components, and `@bandwidth` must be there.
const AUDIO_BPS_PER_CHANNEL: u64 = 64_000;

/// The media segment pattern of a track: [`Naming::track_segment_name`]
/// with the number left to the player.
///
/// [`Naming::track_segment_name`]: crate::stream::naming::Naming::track_segment_name
pub(super) fn media_pattern(l: &Listing, track: &Track) -> String {
    format!("{}-$Number%08d$.track{}.m4s", l.naming.prefix, track.id)
}

/// `@bandwidth` of a track's Representation, bits/s: what its sample entry
/// declares, or else its share of the measured bitrate (audio at a typical
/// rate per channel, video the rest).
pub(super) fn bandwidth(l: &Listing, track: &Track) -> u64 {
    let measured = l.bitrate_bps.max(1);
    let audio = |t: &Track| {
        t.bitrate_bps
            .unwrap_or(AUDIO_BPS_PER_CHANNEL * u64::from(t.channels.unwrap_or(2).max(1)))
    };
    if let Some(declared) = track.bitrate_bps.filter(|&b| b > 0) {
        return declared;
    }
    match track.kind {
        TrackKind::Audio => audio(track).min(measured),
        _ => {
            let audios: u64 = l
                .descriptor
                .tracks
                .iter()
                .filter(|t| t.kind == TrackKind::Audio)
                .map(audio)
                .sum();
            measured.saturating_sub(audios).max(measured / 2).max(1)
        }
    }
}

/// The Adaptation Set of `track` in `period`; other kinds of track
/// (subtitles, data) are left out.
pub(super) fn adaptation_set(out: &mut String, l: &Listing, t: &Timing, p: &Period, track: &Track) {
    let (kind, mime) = match track.kind {
        TrackKind::Video => ("video", "video/mp4"),
        TrackKind::Audio => ("audio", "audio/mp4"),
        TrackKind::Other => return,
    };
    let _ = writeln!(
        out,
        "    <AdaptationSet id=\"{}\" contentType=\"{kind}\" mimeType=\"{mime}\" segmentAlignment=\"true\" startWithSAP=\"1\">",
        track.id
    );
    // The segments carry the capture's `emsg` boxes; players read them once
    // the set names their scheme.
    out.push_str(&super::markers::dash_inband(l.events, "      "));
    let codecs = if track.codecs.is_empty() {
        &track.codec
    } else {
        &track.codecs
    };
    let _ = write!(
        out,
        "      <Representation id=\"{kind}{}\" codecs=\"{codecs}\" bandwidth=\"{}\"",
        track.id,
        bandwidth(l, track)
    );
    match track.kind {
        TrackKind::Video => video_attributes(out, track),
        _ => {
            let _ = writeln!(out, " audioSamplingRate=\"{}\">", track.timescale);
            let _ = writeln!(
                out,
                "        <AudioChannelConfiguration schemeIdUri=\"{CHANNELS_SCHEME}\" value=\"{}\"/>",
                track.channels.unwrap_or(2)
            );
        }
    }
    template(out, l, t, p, track);
    out.push_str("      </Representation>\n    </AdaptationSet>\n");
}

fn video_attributes(out: &mut String, track: &Track) {
    if let (Some(w), Some(h)) = (track.width, track.height) {
        let _ = write!(out, " width=\"{w}\" height=\"{h}\" sar=\"1:1\"");
    }
    if let Some(f) = track.frame_rate.filter(|f| f.frames > 0 && f.seconds > 0) {
        if f.seconds == 1 {
            let _ = write!(out, " frameRate=\"{}\"", f.frames);
        } else {
            let _ = write!(out, " frameRate=\"{}/{}\"", f.frames, f.seconds);
        }
    }
    out.push_str(">\n");
}

/// The `SegmentTemplate` and its timeline: each asset's start and length in
/// the track's timescale, every `S` with its own `t` so a gap between
/// assets stays a gap.
fn template(out: &mut String, l: &Listing, t: &Timing, p: &Period, track: &Track) {
    let first = p.records.first().map_or(0, |r| r.sequence);
    let _ = write!(
        out,
        "        <SegmentTemplate timescale=\"{}\" initialization=\"{}\" media=\"{}\" startNumber=\"{first}\"",
        track.timescale,
        l.naming.track_init_name(p.generation, track.id),
        media_pattern(l, track)
    );
    let offset = t.offset(p, track);
    if offset > 0 {
        let _ = write!(out, " presentationTimeOffset=\"{offset}\"");
    }
    out.push_str(">\n          <SegmentTimeline>\n");
    let mut expected = None;
    for r in p.records {
        let start = t.media(r.start, track.timescale);
        let d = t.media(r.end(), track.timescale).saturating_sub(start);
        // `$Number$` counts `S` entries from `startNumber`: the retained
        // records are consecutive, so entry i is asset first + i.
        if expected == Some(start) {
            let _ = writeln!(out, "            <S d=\"{d}\"/>");
        } else {
            let _ = writeln!(out, "            <S t=\"{start}\" d=\"{d}\"/>");
        }
        expected = Some(start + d);
    }
    out.push_str("          </SegmentTimeline>\n        </SegmentTemplate>\n");
}
