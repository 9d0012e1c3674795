//! The HLS multivariant playlist (`live.m3u8`), the URL players are given:
//! one variant, the muxed media playlist (`live-av.m3u8`), described so a
//! player can choose it without fetching anything else: `CODECS` from the
//! tracks' RFC 6381 strings, `RESOLUTION` and `FRAME-RATE` of the video,
//! `BANDWIDTH` the highest segment bitrate retained and `AVERAGE-BANDWIDTH`
//! the mean. A viewer's id (`?client=`) is carried into the media
//! playlist's URL, so the server starts that viewer at its own backset.

use std::fmt::Write;

use super::Listing;
use crate::capture::init::{Track, TrackKind};

/// The multivariant playlist's name, the URL players are given.
pub const MULTIVARIANT: &str = "live.m3u8";
/// The media playlist it names: audio and video muxed in one.
pub const MEDIA: &str = "live-av.m3u8";

/// Tags of RFC 8216 version 1 only (the attributes used are compatible
/// with every version), so no `EXT-X-VERSION`.
pub fn multivariant(l: &Listing) -> String {
    let mut out = String::from("#EXTM3U\n");
    let (peak, mean) = bitrates(l);
    let _ = write!(
        out,
        "#EXT-X-STREAM-INF:BANDWIDTH={peak},AVERAGE-BANDWIDTH={mean}"
    );
    let av: Vec<&Track> = l
        .descriptor
        .tracks
        .iter()
        .filter(|t| t.kind != TrackKind::Other)
        .collect();
    // A CODECS naming a track wrongly makes players drop the variant
    // (hls.js: manifestIncompatibleCodecsError); where a track has no full
    // RFC 6381 string (an older stream.json, a sample entry not understood)
    // there is none, and players read the codecs from the init.
    if !av.is_empty() && av.iter().all(|t| rfc6381(&t.codecs)) {
        let codecs: Vec<&str> = av.iter().map(|t| t.codecs.as_str()).collect();
        let _ = write!(out, ",CODECS=\"{}\"", codecs.join(","));
    }
    if let Some(v) = av.iter().find(|t| t.kind == TrackKind::Video) {
        if let (Some(w), Some(h)) = (v.width, v.height) {
            let _ = write!(out, ",RESOLUTION={w}x{h}");
        }
        if let Some(rate) = v.frame_rate {
            let _ = write!(out, ",FRAME-RATE={:.3}", rate.per_second());
        }
    }
    out.push('\n');
    out.push_str(MEDIA);
    if let Some(client) = l.client {
        let _ = write!(out, "?client={}", query_escaped(client));
    }
    out.push('\n');
    out
}

/// Whether `codecs` is a full RFC 6381 string: a sample entry's code with
/// its profile or object type (`avc1.64001f`, `mp4a.40.2`), or one of the
/// codes that need none. A bare `avc1` or `mp4a` names no decoder.
fn rfc6381(codecs: &str) -> bool {
    codecs.contains('.') || matches!(codecs, "opus" | "Opus" | "ac-3" | "ec-3" | "fLaC")
}

/// The highest and the mean bitrate of the retained segments, bits/s
/// (rounded up; at least 1): what a segment costs to fetch in its own
/// duration, and over the whole window.
fn bitrates(l: &Listing) -> (u64, u64) {
    let rate = |bytes: u64, ticks: u64| (bytes as f64 * 8.0 / l.secs(ticks).max(1e-3)).ceil();
    let peak = l
        .records
        .iter()
        .map(|r| rate(r.media_len(), r.duration))
        .fold(0.0, f64::max);
    let bytes = l.records.iter().map(|r| r.media_len()).sum();
    let ticks = l.records.iter().map(|r| r.duration).sum();
    let mean = rate(bytes, ticks);
    ((peak.max(mean) as u64).max(1), (mean as u64).max(1))
}

/// `value` as a query argument: unreserved characters as they are, the
/// rest percent-encoded (an id the server did not issue may hold anything).
fn query_escaped(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::naming::Naming;
    use crate::stream::playlists::tests::{descriptor, listing, records};

    #[test]
    fn one_variant_described_by_codecs_resolution_rate_and_bandwidths() {
        let (d, mut rs, n) = (descriptor(), records(), Naming::default());
        // 50 000 bytes in 2 s, and one asset twice as large.
        rs[1].size += 50_000;
        let text = multivariant(&listing(&d, &rs, &n));
        assert_eq!(
            text,
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=400000,AVERAGE-BANDWIDTH=266667,\
             CODECS=\"avc1.64000d,mp4a.40.2\",RESOLUTION=320x180,FRAME-RATE=24.000\n\
             live-av.m3u8\n"
        );
    }

    #[test]
    fn the_viewers_id_goes_on_to_the_media_playlist_escaped() {
        let (d, rs, n) = (descriptor(), records(), Naming::default());
        let mut l = listing(&d, &rs, &n);
        l.client = Some("v0a1b");
        assert!(multivariant(&l).ends_with("\nlive-av.m3u8?client=v0a1b\n"));
        l.client = Some("a b&c=\"\n");
        assert!(multivariant(&l).ends_with("\nlive-av.m3u8?client=a%20b%26c%3D%22%0A\n"));
    }

    #[test]
    fn codecs_are_left_out_unless_every_track_has_a_full_string() {
        let (mut d, rs, n) = (descriptor(), records(), Naming::default());
        for bare in ["", "mp4a"] {
            d.tracks[1].codecs = bare.into();
            let text = multivariant(&listing(&d, &rs, &n));
            assert!(!text.contains("CODECS"), "{text}");
        }
        d.tracks.remove(0);
        d.tracks[0].codecs = "opus".into();
        let text = multivariant(&listing(&d, &rs, &n));
        assert!(text.contains(",CODECS=\"opus\"\n"), "{text}");
        assert!(!text.contains("RESOLUTION") && !text.contains("FRAME-RATE"));
    }
}
