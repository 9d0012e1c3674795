//! Samples go to assets by time, whatever order an encoder writes its
//! per-track fragments in: GStreamer's `mp4mux` sends each second's audio
//! before its video, ffmpeg's `separate_moof` the other way round.

use mp4_atom::TrunSamples;

use super::edit::edit_moofs;
use super::support::*;

/// Seconds of a sample of track `id` (audio at 48 kHz in these fixtures,
/// video at the asset's timescale).
fn audio_seconds(asset: &Published) -> Vec<f64> {
    let parsed = parse(&asset.bytes);
    let audio = parsed.init.tracks.iter().position(|t| t.timescale == 48000);
    let mut out = Vec::new();
    for f in &parsed.fragments {
        for r in f.runs.iter().filter(|r| Some(r.track) == audio) {
            out.extend(
                f.samples[r.samples.clone()]
                    .iter()
                    .map(|s| s.dts as f64 / 48000.0),
            );
        }
    }
    out
}

#[test]
fn audio_sent_before_its_video_is_kept_and_placed_by_time() {
    for name in ["gst-h264-aac-frag1s.mp4", "gst-h264-aac-frag2500ms.mp4"] {
        let capture = fixture(name);
        let o = segment(capture, SECOND);
        assert_eq!(o.exit_code(), 0, "{name}: {}", o.summary());
        assert!(o.warnings().is_empty(), "{name}: {}", o.summary());
        let assets = o.assets();
        assert!(assets.len() >= 3, "{name}: {}", o.summary());
        assert_same_media(&capture_media(capture), &assets_media(&assets), name);
        for a in &assets {
            let scale = f64::from(a.maps().timescale);
            let (start, end) = (a.maps().start as f64 / scale, a.end() as f64 / scale);
            for t in audio_seconds(a) {
                // Within a frame of video (and of audio) of the asset's span.
                assert!(
                    t >= start - 0.05 && t < end + 0.05,
                    "{name}: audio at {t:.3} s in the asset of {start:.3}..{end:.3} s"
                );
            }
        }
    }
}

#[test]
fn audio_before_the_first_key_frame_waits_for_it_and_only_video_is_dropped() {
    const DEPENDENT: u32 = 0x0101_0000;
    // The first fragment's video made dependent frames: no key frame to
    // start from until the second fragment.
    let capture = edit_moofs(fixture("h264-aac-gop.mp4"), 0, |n, moof| {
        for traf in moof
            .traf
            .iter_mut()
            .filter(|t| t.tfhd.track_id == 1 && n == 0)
        {
            for trun in &mut traf.trun {
                if let TrunSamples::Explicit(entries) = &mut trun.samples {
                    entries.iter_mut().for_each(|e| e.flags = Some(DEPENDENT));
                }
            }
        }
    });
    let o = segment(&capture, SECOND);
    assert_eq!(o.exit_code(), 0, "{}", o.summary());
    let (want, got) = (capture_media(&capture), assets_media(&o.assets()));
    assert_eq!(want[&2].len(), got[&2].len(), "every audio frame is kept");
    let lost = want[&1].len() - got[&1].len();
    assert!(lost > 0);
    let warning = format!(
        "{lost} samples of video track 1 (avc1) without a key frame to start from were dropped"
    );
    assert!(o.warned(&warning), "{}", o.summary());
    assert_eq!(o.warnings().len(), 1, "{}", o.summary());
}
