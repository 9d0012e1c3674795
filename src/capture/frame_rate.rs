//! A video track's frame rate from the timing its parameter sets declare:
//! the VUI (`num_units_in_tick`, `time_scale`) of the H.264 or HEVC
//! sequence parameter set, read by [`sps`](super::sps). The `moov` alone
//! gives no frame rate in a fragmented capture (its sample tables are
//! empty), and sample durations round it (30000/1001 in a 10007 timescale
//! is 333 or 334 ticks), while the declared timing is the encoder's exact
//! ratio, known before the first fragment. A parameter set that does not
//! parse or declares no timing gives `None`; then a `trex` default
//! duration may still say the rate ([`of_duration`]).

use mp4_atom::Codec;

use crate::capture::init::FrameRate;
use crate::capture::sps;

/// The frame rate a video sample entry's parameter sets declare.
pub fn declared(codec: &Codec) -> Option<FrameRate> {
    match codec {
        Codec::Avc1(c) => sps::h264(c.avcc.sequence_parameter_sets.first()?)?.frame_rate,
        Codec::Avc3(c) => sps::h264(c.avcc.sequence_parameter_sets.first()?)?.frame_rate,
        Codec::Hvc1(c) => hevc_sps(&c.hvcc),
        Codec::Hev1(c) => hevc_sps(&c.hvcc),
        _ => None,
    }
}

/// The rate of frames that each last `duration` ticks of `timescale`: what
/// a `trex` default sample duration implies when the parameter sets are
/// silent. Over 1000 frames a second is a placeholder duration, not a rate.
pub fn of_duration(timescale: u32, duration: u32) -> Option<FrameRate> {
    ratio(u64::from(timescale), u64::from(duration)).filter(|r| r.per_second() <= 1000.0)
}

/// `frames` per `seconds` in lowest terms; `None` for a zero or an
/// unrepresentable ratio.
pub(crate) fn ratio(frames: u64, seconds: u64) -> Option<FrameRate> {
    if frames == 0 || seconds == 0 {
        return None;
    }
    let (mut a, mut b) = (frames, seconds);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    Some(FrameRate {
        frames: u32::try_from(frames / a).ok()?,
        seconds: u32::try_from(seconds / a).ok()?,
    })
}

/// HEVC: the timing of the first SPS in `hvcC` (x265 leaves the VPS's
/// timing out).
fn hevc_sps(hvcc: &mp4_atom::Hvcc) -> Option<FrameRate> {
    const SPS: u8 = 33;
    let nal = hvcc
        .arrays
        .iter()
        .filter(|a| a.nal_unit_type == SPS)
        .find_map(|a| a.nalus.first())?;
    sps::hevc(nal)?.frame_rate
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::sps::tests::{hex, X264, X265};

    #[test]
    fn x264_avcc_at_24_fps() {
        // The SPS of fixtures/h264-aac-gop.mp4, through the sample entry.
        let sps = hex(X264);
        let avcc = mp4_atom::Avcc {
            configuration_version: 1,
            avc_profile_indication: sps[1],
            profile_compatibility: sps[2],
            avc_level_indication: sps[3],
            length_size: 4,
            sequence_parameter_sets: vec![sps],
            picture_parameter_sets: vec![],
            ext: None,
        };
        assert_eq!(
            declared(&Codec::Avc1(mp4_atom::Avc1 {
                avcc,
                ..Default::default()
            })),
            Some(FrameRate {
                frames: 24,
                seconds: 1
            })
        );
    }

    #[test]
    fn x265_sps_at_30000_1001() {
        // The VPS and SPS of fixtures/hevc-aac-separate-moof.mp4 (Main,
        // level 2, 320x180): x265 times only the SPS's VUI.
        let vps = hex("40010c01ffff01600000030090000003000003003c959409");
        let sps = hex(X265);
        let array = |nal_unit_type, nal: Vec<u8>| mp4_atom::HvcCArray {
            completeness: true,
            nal_unit_type,
            nalus: vec![nal],
        };
        let hvcc = mp4_atom::Hvcc {
            arrays: vec![array(32, vps), array(33, sps.clone())],
            ..mp4_atom::Hvcc::new()
        };
        assert_eq!(
            hevc_sps(&hvcc),
            Some(FrameRate {
                frames: 30000,
                seconds: 1001
            })
        );
        // Cut before the timing: none, not a wrong rate.
        let cut = mp4_atom::Hvcc {
            arrays: vec![array(33, sps[..sps.len() - 8].to_vec())],
            ..mp4_atom::Hvcc::new()
        };
        assert_eq!(hevc_sps(&cut), None);
    }

    #[test]
    fn a_default_duration_gives_a_rate() {
        assert_eq!(
            of_duration(90000, 3003),
            Some(FrameRate {
                frames: 30000,
                seconds: 1001
            })
        );
        assert_eq!(of_duration(12288, 0), None);
        assert_eq!(of_duration(90000, 1), None);
    }

    #[test]
    fn ratios_are_kept_exact_in_lowest_terms() {
        assert_eq!(
            ratio(60000, 2 * 1001),
            Some(FrameRate {
                frames: 30000,
                seconds: 1001
            })
        );
        assert_eq!(ratio(0, 1), None);
        assert_eq!(ratio(1 << 40, 1), None);
    }
}
