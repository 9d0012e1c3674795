//! A video track's frame rate from the timing its parameter sets declare:
//! the VUI (`num_units_in_tick`, `time_scale`) of the H.264 or HEVC
//! sequence parameter set. The H.264 SPS is read by `scuffle-h264`; the
//! HEVC SPS is read here up to its VUI timing, because `scuffle-h265`
//! 0.2.2 panics (an arithmetic overflow) on damaged ones, which the test
//! below finds and a capture must never cause. The `moov` alone gives no frame rate in a fragmented capture
//! (its sample tables are empty), and sample durations round it (30000/1001
//! in a 10007 timescale is 333 or 334 ticks), while the declared timing is
//! the encoder's exact ratio, known before the first fragment. A parameter
//! set that does not parse or declares no timing gives `None`.

use mp4_atom::Codec;

use crate::capture::init::FrameRate;

/// The frame rate a video sample entry's parameter sets declare.
pub fn declared(codec: &Codec) -> Option<FrameRate> {
    match codec {
        Codec::Avc1(c) => h264_sps(c.avcc.sequence_parameter_sets.first()?),
        Codec::Avc3(c) => h264_sps(c.avcc.sequence_parameter_sets.first()?),
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
fn ratio(frames: u64, seconds: u64) -> Option<FrameRate> {
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

/// H.264 (ISO/IEC 14496-10 Annex E): a frame lasts two ticks, so the rate
/// is `time_scale / (2 * num_units_in_tick)`. `nal` is the whole NAL unit.
fn h264_sps(nal: &[u8]) -> Option<FrameRate> {
    let sps = scuffle_h264::Sps::parse_with_emulation_prevention(nal).ok()?;
    let timing = sps.timing_info?;
    ratio(
        u64::from(timing.time_scale.get()),
        2 * u64::from(timing.num_units_in_tick.get()),
    )
}

/// HEVC (ISO/IEC 23008-2 §7.3.2.2 and Annex E): the SPS's VUI timing, a
/// frame per `num_units_in_tick`. (x265 leaves the VPS's timing out.)
fn hevc_sps(hvcc: &mp4_atom::Hvcc) -> Option<FrameRate> {
    const SPS: u8 = 33;
    let nal = hvcc
        .arrays
        .iter()
        .filter(|a| a.nal_unit_type == SPS)
        .find_map(|a| a.nalus.first())?;
    let mut r = Bits::new(nal.get(2..)?);
    r.bits(4)?; // sps_video_parameter_set_id
    let sub_layers = r.bits(3)?; // sps_max_sub_layers_minus1
    r.bits(1)?; // sps_temporal_id_nesting_flag
    skip_profile_tier_level(&mut r, sub_layers)?;
    r.ue()?; // sps_seq_parameter_set_id
    if r.ue()? == 3 {
        r.bits(1)?; // separate_colour_plane_flag
    }
    r.ue()?; // pic_width_in_luma_samples
    r.ue()?; // pic_height_in_luma_samples
    if r.bits(1)? == 1 {
        for _ in 0..4 {
            r.ue()?; // conf_win_*_offset
        }
    }
    r.ue()?; // bit_depth_luma_minus8
    r.ue()?; // bit_depth_chroma_minus8
    let poc_lsb_bits = u32::try_from(r.ue()?).ok()?.checked_add(4)?;
    let first = if r.bits(1)? == 1 { 0 } else { sub_layers };
    for _ in first..=sub_layers {
        r.ue()?; // sps_max_dec_pic_buffering_minus1
        r.ue()?; // sps_max_num_reorder_pics
        r.ue()?; // sps_max_latency_increase_plus1
    }
    for _ in 0..6 {
        r.ue()?; // coding and transform block sizes, hierarchy depths
    }
    if r.bits(1)? == 1 && r.bits(1)? == 1 {
        skip_hevc_scaling_lists(&mut r)?;
    }
    r.bits(2)?; // amp_enabled_flag, sample_adaptive_offset_enabled_flag
    if r.bits(1)? == 1 {
        r.bits(8)?; // pcm sample bit depths
        r.ue()?; // log2_min_pcm_luma_coding_block_size_minus3
        r.ue()?; // log2_diff_max_min_pcm_luma_coding_block_size
        r.bits(1)?; // pcm_loop_filter_disabled_flag
    }
    skip_short_term_ref_pic_sets(&mut r)?;
    if r.bits(1)? == 1 {
        for _ in 0..r.ue()? {
            r.bits(poc_lsb_bits + 1)?; // lt_ref_pic_poc_lsb_sps, used flag
        }
    }
    r.bits(2)?; // sps_temporal_mvp_enabled_flag, strong_intra_smoothing
    if r.bits(1)? == 0 {
        return None; // no VUI
    }
    hevc_vui_timing(&mut r)
}

/// Annex E.2.1 up to `vui_timing_info_present_flag` and the timing.
fn hevc_vui_timing(r: &mut Bits) -> Option<FrameRate> {
    if r.bits(1)? == 1 && r.bits(8)? == 255 {
        r.bits(32)?; // sar_width, sar_height of EXTENDED_SAR
    }
    if r.bits(1)? == 1 {
        r.bits(1)?; // overscan_appropriate_flag
    }
    if r.bits(1)? == 1 {
        r.bits(4)?; // video_format, video_full_range_flag
        if r.bits(1)? == 1 {
            r.bits(24)?; // colour primaries, transfer, matrix
        }
    }
    if r.bits(1)? == 1 {
        r.ue()?; // chroma_sample_loc_type_top_field
        r.ue()?; // chroma_sample_loc_type_bottom_field
    }
    r.bits(3)?; // neutral_chroma, field_seq, frame_field_info_present
    if r.bits(1)? == 1 {
        for _ in 0..4 {
            r.ue()?; // def_disp_win_*_offset
        }
    }
    if r.bits(1)? == 0 {
        return None; // no timing info
    }
    let units = r.bits(32)?;
    let time_scale = r.bits(32)?;
    ratio(time_scale, units)
}

/// §7.3.4: per size, per matrix, a prediction or a delta-coded list.
fn skip_hevc_scaling_lists(r: &mut Bits) -> Option<()> {
    for size in 0..4u32 {
        let step = if size == 3 { 3 } else { 1 };
        for _ in (0..6).step_by(step) {
            if r.bits(1)? == 0 {
                r.ue()?; // scaling_list_pred_matrix_id_delta
                continue;
            }
            if size > 1 {
                r.se()?; // scaling_list_dc_coef_minus8
            }
            for _ in 0..(1u32 << (4 + 2 * size)).min(64) {
                r.se()?; // scaling_list_delta_coef
            }
        }
    }
    Some(())
}

/// §7.3.7 for each of the SPS's sets: explicit lists of negative and
/// positive pictures, or a prediction from the previous set, whose
/// size is needed to read it.
fn skip_short_term_ref_pic_sets(r: &mut Bits) -> Option<()> {
    let sets = r.ue()?;
    if sets > 64 {
        return None;
    }
    let mut previous_pocs = 0u64;
    for index in 0..sets {
        if index != 0 && r.bits(1)? == 1 {
            r.bits(1)?; // delta_rps_sign
            r.ue()?; // abs_delta_rps_minus1
            let mut pocs = 0;
            for _ in 0..=previous_pocs {
                let used = r.bits(1)? == 1;
                if used || r.bits(1)? == 1 {
                    pocs += 1;
                }
            }
            previous_pocs = pocs;
        } else {
            let negative = r.ue()?;
            let positive = r.ue()?;
            if negative > 16 || positive > 16 {
                return None;
            }
            for _ in 0..negative + positive {
                r.ue()?; // delta_poc_s*_minus1
                r.bits(1)?; // used_by_curr_pic_s*_flag
            }
            previous_pocs = negative + positive;
        }
    }
    Some(())
}

/// §7.3.3 with profilePresentFlag 1: the general profile (88 bits) and
/// level (8), then each sub-layer's, as its flags say.
fn skip_profile_tier_level(r: &mut Bits, sub_layers: u64) -> Option<()> {
    r.bits(88)?;
    r.bits(8)?;
    let mut present = Vec::with_capacity(sub_layers as usize);
    for _ in 0..sub_layers {
        present.push((r.bits(1)? == 1, r.bits(1)? == 1));
    }
    if sub_layers > 0 {
        r.bits(2 * (8 - sub_layers as u32))?; // reserved_zero_2bits
    }
    for (profile, level) in present {
        if profile {
            r.bits(88)?;
        }
        if level {
            r.bits(8)?;
        }
    }
    Some(())
}

/// A big-endian bit reader over a NAL unit's payload, dropping the
/// emulation prevention bytes (`00 00 03`) as it goes.
struct Bits<'a> {
    bytes: &'a [u8],
    /// Index of the next byte to load.
    at: usize,
    /// Zero bytes just read, to spot an emulation prevention byte.
    zeros: u8,
    current: u8,
    /// Bits of `current` still unread.
    left: u32,
}

impl<'a> Bits<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Bits {
            bytes,
            at: 0,
            zeros: 0,
            current: 0,
            left: 0,
        }
    }

    fn bit(&mut self) -> Option<u64> {
        if self.left == 0 {
            let mut byte = *self.bytes.get(self.at)?;
            self.at += 1;
            if self.zeros >= 2 && byte == 3 {
                byte = *self.bytes.get(self.at)?;
                self.at += 1;
                self.zeros = 0;
            }
            self.zeros = if byte == 0 { self.zeros + 1 } else { 0 };
            self.current = byte;
            self.left = 8;
        }
        self.left -= 1;
        Some(u64::from((self.current >> self.left) & 1))
    }

    /// `n` bits (at most 64) as an unsigned number; wider fields are read
    /// by callers only to be skipped.
    fn bits(&mut self, n: u32) -> Option<u64> {
        let mut v = 0u64;
        for _ in 0..n {
            v = (v << 1) | self.bit()?;
        }
        Some(v)
    }

    /// Exp-Golomb `ue(v)`; more than 32 leading zeros is not a valid code.
    fn ue(&mut self) -> Option<u64> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 32 {
                return None;
            }
        }
        Some((1u64 << zeros) - 1 + self.bits(zeros)?)
    }

    /// Exp-Golomb `se(v)`.
    fn se(&mut self) -> Option<i64> {
        let k = i64::try_from(self.ue()?).ok()?;
        Some(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn x264_sps_at_24_fps() {
        // The SPS of fixtures/h264-aac-gop.mp4 (High, level 1.2, 320x180).
        let sps = hex("6764000cacd941419f9f011000000300100000030300f1429960");
        assert_eq!(
            h264_sps(&sps),
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
        let sps = hex(concat!(
            "420101016000000300900000030000030",
            "03ca00a080c1f3e595952930bc05a0200",
            "0007d20000ea6010"
        ));
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
    fn a_cut_sps_gives_none() {
        let sps = hex("6764000cacd941419f9f0110");
        assert_eq!(h264_sps(&sps), None);
    }

    #[test]
    fn emulation_prevention_bytes_are_skipped() {
        let mut r = Bits::new(&[0x00, 0x00, 0x03, 0x01, 0xff]);
        assert_eq!(r.bits(24), Some(1));
        assert_eq!(r.bits(8), Some(0xff));
        assert_eq!(r.bits(1), None);
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

    #[test]
    fn damaged_parameter_sets_give_none_or_a_rate_never_a_panic() {
        let sps = hex("6764000cacd941419f9f011000000300100000030300f1429960");
        let hevc = hex(
            "42010101600000030090000003000003003ca00a080c1f3e595952930bc05a02000007d20000ea6010",
        );
        for (i, base) in [sps, hevc].iter().enumerate() {
            for cut in 0..base.len() {
                for bit in 0..8 * cut.max(1) {
                    let mut nal = base[..cut].to_vec();
                    if let Some(b) = nal.get_mut(bit / 8) {
                        *b ^= 1 << (bit % 8);
                    }
                    let _ = if i == 0 {
                        h264_sps(&nal)
                    } else {
                        hevc_sps(&mp4_atom::Hvcc {
                            arrays: vec![mp4_atom::HvcCArray {
                                completeness: true,
                                nal_unit_type: 33,
                                nalus: vec![nal],
                            }],
                            ..mp4_atom::Hvcc::new()
                        })
                    };
                }
            }
        }
    }
}
