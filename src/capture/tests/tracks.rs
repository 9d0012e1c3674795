//! What the `Started` event tells of each fixture's tracks, the facts
//! playlists name them by: the RFC 6381 codecs string, the exact frame rate
//! and the declared bitrate; and the `cmfc` brand in every asset's `ftyp`.

use mp4_atom::{Decode, FourCC, Ftyp};

use super::support::*;
use crate::capture::init::FrameRate;

const fn fps(frames: u32, seconds: u32) -> Option<FrameRate> {
    Some(FrameRate { frames, seconds })
}

/// One track's codecs, frame rate and declared bitrate.
type Expected = (&'static str, Option<FrameRate>, u64);

/// Per fixture, per track: codecs, frame rate, declared bitrate. The codecs
/// strings are those ffmpeg's DASH muxer writes for the fixtures (`ffmpeg -i
/// X.mp4 -c copy -f dash x.mpd`), except HEVC, for which ffmpeg 5.1 writes a
/// bare `hvc1`: there the string is Annex E's for the hvcC (Main, compatible
/// with Main and Main 10, level 2 = 60, progressive and frame-only = 0x90),
/// as ffprobe's "Main" and "level=60" confirm. Frame rates and bitrates are
/// fixtures/make.sh's `rate=`, `-b:v` and `-b:a`.
const EXPECTED: [(&str, &[Expected]); 12] = [
    (
        "h264-aac-gop.mp4",
        &[
            ("avc1.64000c", fps(24, 1), 150_000),
            ("mp4a.40.2", None, 48_000),
        ],
    ),
    (
        "h264-aac-fragdur.mp4",
        &[
            ("avc1.64000c", fps(24, 1), 150_000),
            ("mp4a.40.2", None, 48_000),
        ],
    ),
    (
        "h264-every-frame.mp4",
        &[("avc1.64000c", fps(25, 1), 150_000)],
    ),
    (
        "hevc-aac-separate-moof.mp4",
        &[
            ("hvc1.1.6.L60.90", fps(30000, 1001), 150_000),
            ("mp4a.40.2", None, 48_000),
        ],
    ),
    ("aac-only.mp4", &[("mp4a.40.2", None, 64_000)]),
    ("opus-only.mp4", &[("opus", None, 48_000)]),
    // GStreamer's x264enc fed 4:4:4 video (its default caps here) makes
    // High 4:4:4 Predictive (profile 244); its mp4mux declares the
    // bitrates it measured.
    (
        "gst-h264-aac-frag1s.mp4",
        &[
            ("avc1.f4000c", fps(24, 1), 158_174),
            ("mp4a.40.2", None, 72_000),
        ],
    ),
    (
        "gst-h264-aac-frag2500ms.mp4",
        &[
            ("avc1.f4000c", fps(24, 1), 157_117),
            ("mp4a.40.2", None, 72_000),
        ],
    ),
    (
        "cmaf-styp-prft.mp4",
        &[("avc1.64000c", fps(24, 1), 150_000)],
    ),
    (
        "h264-aac-global-sidx.mp4",
        &[
            ("avc1.64000c", fps(24, 1), 150_000),
            ("mp4a.40.2", None, 48_000),
        ],
    ),
    (
        "h264-aac-cmaf-prft.mp4",
        &[
            ("avc1.64000c", fps(24, 1), 150_000),
            ("mp4a.40.2", None, 48_000),
        ],
    ),
    (
        "h264-aac-emsg.mp4",
        &[
            ("avc1.64000c", fps(24, 1), 150_000),
            ("mp4a.40.2", None, 48_000),
        ],
    ),
];

#[test]
fn every_fixtures_tracks_carry_codecs_frame_rate_and_bitrate() {
    assert_eq!(EXPECTED.len(), FIXTURES.len());
    for (name, want) in EXPECTED {
        let o = segment(fixture(name), 2 * SECOND);
        let starts = o.starts();
        let got: Vec<_> = starts[0]
            .0
            .iter()
            .map(|t| (t.codecs.as_str(), t.frame_rate, t.bitrate_bps.unwrap_or(0)))
            .collect();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn every_asset_declares_cmfc_and_keeps_the_encoders_brands() {
    let cmfc = FourCC::new(b"cmfc");
    for (name, bytes) in FIXTURES {
        let capture = Ftyp::decode(&mut &bytes[..]).expect("the fixture starts with ftyp");
        let mut want = capture.clone();
        if !capture.compatible_brands.contains(&cmfc) {
            want.compatible_brands.push(cmfc);
        }
        let o = segment(bytes, 2 * SECOND);
        assert!(!o.assets().is_empty(), "{name}");
        for asset in o.assets() {
            let ftyp = Ftyp::decode(&mut &asset.bytes[..]).expect("an asset starts with ftyp");
            assert_eq!(ftyp, want, "{name}");
        }
    }
}
