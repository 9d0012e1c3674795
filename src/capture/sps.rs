//! The one reader of sequence parameter sets, for both of their users: a
//! `moov`'s video track timed by its declared frame rate
//! ([`frame_rate`](super::frame_rate)), and the MPEG-TS input building a
//! sample entry (`tkhd` size, the visual sample entry, and for HEVC the
//! profile, tier, level, chroma format and bit depths that `hvcC` repeats).
//!
//! H.264 is parsed by `scuffle-h264`; the picture size is worked out here
//! from its fields, because its `width()`/`height()` subtract the cropping
//! unchecked and take a crop unit of 2 whatever the chroma format and field
//! coding. HEVC is read by hand up to the VUI timing: `scuffle-h265` 0.2.2
//! panics (an arithmetic overflow) on damaged SPSs, as bit-flipping the one
//! the damage test below uses shows, and a capture must never cause that.
//! Anything that does not parse gives `None`, never a panic.

use crate::capture::frame_rate::ratio;
use crate::capture::init::FrameRate;

/// The fields read from an SPS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SpsInfo {
    pub width: u16,
    pub height: u16,
    pub chroma_format_idc: u8,
    pub bit_depth_luma_minus8: u8,
    pub bit_depth_chroma_minus8: u8,
    /// HEVC only: the 12 bytes of general profile, tier and level.
    pub general_ptl: [u8; 12],
    /// HEVC only (1 for H.264): `sps_max_sub_layers_minus1 + 1`.
    pub max_sub_layers: u8,
    /// HEVC only: `sps_temporal_id_nesting_flag`.
    pub temporal_id_nested: bool,
    /// The VUI timing as an exact rate; `None` where the SPS declares none
    /// (or its VUI is damaged).
    pub frame_rate: Option<FrameRate>,
}

/// Reads an H.264 SPS NAL unit (header byte included).
pub(crate) fn h264(nal: &[u8]) -> Option<SpsInfo> {
    // The crate's exp-Golomb reader wraps past 63 leading zeros and then
    // subtracts below zero, a panic where overflow is checked; a real SPS
    // never has 64 zero bits in a row (its longest is the timing's 62).
    if zero_run_bits(nal) >= 64 {
        return None;
    }
    let sps = scuffle_h264::Sps::parse_with_emulation_prevention(nal).ok()?;
    let (chroma, luma_depth, chroma_depth) = sps.ext.as_ref().map_or((1, 0, 0), |e| {
        (
            e.chroma_format_idc,
            e.bit_depth_luma_minus8,
            e.bit_depth_chroma_minus8,
        )
    });
    // §7.4.2.1.1: frame_mbs_only_flag is 0 exactly when the crate keeps
    // mb_adaptive_frame_field_flag; the crop unit follows it and chroma.
    let fields = if sps.mb_adaptive_frame_field_flag.is_some() {
        2
    } else {
        1
    };
    let (unit_x, unit_y) = match chroma {
        1 => (2, 2 * fields),
        2 => (2, fields),
        _ => (1, fields),
    };
    let crop = sps.frame_crop_info.as_ref().map_or([0; 4], |c| {
        [
            c.frame_crop_left_offset,
            c.frame_crop_right_offset,
            c.frame_crop_top_offset,
            c.frame_crop_bottom_offset,
        ]
    });
    let coded_width = sps
        .pic_width_in_mbs_minus1
        .checked_add(1)?
        .checked_mul(16)?;
    let coded_height =
        (sps.pic_height_in_map_units_minus1.checked_add(1)?).checked_mul(16 * fields)?;
    // Annex E: a frame lasts two ticks.
    let frame_rate = sps.timing_info.as_ref().and_then(|t| {
        ratio(
            u64::from(t.time_scale.get()),
            2 * u64::from(t.num_units_in_tick.get()),
        )
    });
    Some(SpsInfo {
        width: cropped(coded_width, unit_x, crop[0], crop[1])?,
        height: cropped(coded_height, unit_y, crop[2], crop[3])?,
        chroma_format_idc: chroma,
        bit_depth_luma_minus8: luma_depth,
        bit_depth_chroma_minus8: chroma_depth,
        max_sub_layers: 1,
        frame_rate,
        ..SpsInfo::default()
    })
}

/// The longest run of zero bits in a NAL unit's payload, its emulation
/// prevention bytes dropped as the crate drops them.
fn zero_run_bits(nal: &[u8]) -> u32 {
    let (mut longest, mut run, mut zeros) = (0, 0, 0);
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        if b == 0 {
            run += 8;
        } else {
            longest = longest.max(run + b.leading_zeros());
            run = b.trailing_zeros();
        }
    }
    longest.max(run)
}

/// `coded` less `unit` times the two crop offsets, as a sample entry's
/// 16-bit size; `None` for a crop larger than the picture or a size too
/// large, since a damaged SPS may claim anything.
fn cropped(coded: u64, unit: u64, a: u64, b: u64) -> Option<u16> {
    let crop = a.checked_add(b)?.checked_mul(unit)?;
    u16::try_from(coded.checked_sub(crop)?).ok()
}

/// Reads an HEVC SPS NAL unit (2-byte header included): ISO/IEC 23008-2
/// §7.3.2.2 up to the bit depths, then on to the VUI timing, which alone
/// may be missing or unreadable.
pub(crate) fn hevc(nal: &[u8]) -> Option<SpsInfo> {
    let mut r = Bits::new(nal.get(2..)?);
    r.bits(4)?; // sps_video_parameter_set_id
    let sub_layers = r.bits(3)?; // sps_max_sub_layers_minus1
    let temporal_id_nested = r.bits(1)? == 1;
    let general_ptl = profile_tier_level(&mut r, sub_layers)?;
    r.ue()?; // sps_seq_parameter_set_id
    let chroma = r.ue()?;
    if chroma == 3 {
        r.bits(1)?; // separate_colour_plane_flag
    }
    let coded_width = r.ue()?;
    let coded_height = r.ue()?;
    let crop = if r.bits(1)? == 1 {
        [r.ue()?, r.ue()?, r.ue()?, r.ue()?] // conf_win_*_offset
    } else {
        [0; 4]
    };
    let (unit_x, unit_y) = match chroma {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    let info = SpsInfo {
        width: cropped(coded_width, unit_x, crop[0], crop[1])?,
        height: cropped(coded_height, unit_y, crop[2], crop[3])?,
        chroma_format_idc: u8::try_from(chroma).ok()?,
        bit_depth_luma_minus8: u8::try_from(r.ue()?).ok()?,
        bit_depth_chroma_minus8: u8::try_from(r.ue()?).ok()?,
        general_ptl,
        max_sub_layers: u8::try_from(sub_layers + 1).ok()?,
        temporal_id_nested,
        frame_rate: None,
    };
    Some(SpsInfo {
        frame_rate: hevc_timing(&mut r, sub_layers),
        ..info
    })
}

/// From `log2_max_pic_order_cnt_lsb_minus4` to the VUI: the SPS's VUI
/// timing, a frame per `num_units_in_tick`. (x265 leaves the VPS's timing
/// out.)
fn hevc_timing(r: &mut Bits, sub_layers: u64) -> Option<FrameRate> {
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
        skip_hevc_scaling_lists(r)?;
    }
    r.bits(2)?; // amp_enabled_flag, sample_adaptive_offset_enabled_flag
    if r.bits(1)? == 1 {
        r.bits(8)?; // pcm sample bit depths
        r.ue()?; // log2_min_pcm_luma_coding_block_size_minus3
        r.ue()?; // log2_diff_max_min_pcm_luma_coding_block_size
        r.bits(1)?; // pcm_loop_filter_disabled_flag
    }
    skip_short_term_ref_pic_sets(r)?;
    if r.bits(1)? == 1 {
        for _ in 0..r.ue()? {
            r.skip(poc_lsb_bits + 1)?; // lt_ref_pic_poc_lsb_sps, used flag
        }
    }
    r.bits(2)?; // sps_temporal_mvp_enabled_flag, strong_intra_smoothing
    if r.bits(1)? == 0 {
        return None; // no VUI
    }
    hevc_vui_timing(r)
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

/// §7.3.3 with profilePresentFlag 1: the general profile and level (the
/// 12 bytes `hvcC` repeats), then each sub-layer's, as its flags say.
fn profile_tier_level(r: &mut Bits, sub_layers: u64) -> Option<[u8; 12]> {
    let mut general = [0u8; 12];
    for byte in &mut general {
        *byte = u8::try_from(r.bits(8)?).ok()?;
    }
    let mut present = Vec::with_capacity(sub_layers as usize);
    for _ in 0..sub_layers {
        present.push((r.bits(1)? == 1, r.bits(1)? == 1));
    }
    if sub_layers > 0 {
        r.bits(2 * (8 - sub_layers as u32))?; // reserved_zero_2bits
    }
    for (profile, level) in present {
        if profile {
            r.skip(88)?;
        }
        if level {
            r.bits(8)?;
        }
    }
    Some(general)
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

    /// `n` bits (at most 64) as an unsigned number.
    fn bits(&mut self, n: u32) -> Option<u64> {
        debug_assert!(n <= 64);
        let mut v = 0u64;
        for _ in 0..n {
            v = (v << 1) | self.bit()?;
        }
        Some(v)
    }

    /// Passes over `n` bits, however many.
    fn skip(&mut self, n: u32) -> Option<()> {
        for _ in 0..n {
            self.bit()?;
        }
        Some(())
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
pub(crate) mod tests {
    use super::*;

    /// Bytes from hex digits, for SPSs quoted from the fixtures.
    pub(crate) fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The SPS of fixtures/h264-aac-gop.mp4 (x264, High, level 1.2,
    /// 320x180 cropped from 320x192, 24 fps).
    pub(crate) const X264: &str = "6764000cacd941419f9f011000000300100000030300f1429960";
    /// The SPS of fixtures/hevc-aac-separate-moof.mp4 (x265, Main, level 2,
    /// 320x180, 30000/1001 in the VUI).
    pub(crate) const X265: &str = concat!(
        "420101016000000300900000030000030",
        "03ca00a080c1f3e595952930bc05a0200",
        "0007d20000ea6010"
    );

    #[test]
    fn x264_sps_at_24_fps() {
        assert_eq!(
            h264(&hex(X264)).and_then(|i| i.frame_rate),
            Some(FrameRate {
                frames: 24,
                seconds: 1
            })
        );
    }

    #[test]
    fn reads_the_size_of_an_x264_sps() {
        let info = h264(&hex(X264)).unwrap();
        assert_eq!((info.width, info.height), (320, 180));
        assert_eq!(info.chroma_format_idc, 1);
        assert_eq!(
            (info.bit_depth_luma_minus8, info.bit_depth_chroma_minus8),
            (0, 0)
        );
    }

    #[test]
    fn reads_an_x265_sps() {
        let info = hevc(&hex(X265)).unwrap();
        assert_eq!((info.width, info.height), (320, 180));
        assert_eq!(info.general_ptl[0], 0x01, "Main profile");
        assert_eq!(info.general_ptl[11], 0x3c, "level 2");
        assert_eq!((info.chroma_format_idc, info.bit_depth_luma_minus8), (1, 0));
        assert_eq!((info.max_sub_layers, info.temporal_id_nested), (1, true));
        assert_eq!(
            info.frame_rate,
            Some(FrameRate {
                frames: 30000,
                seconds: 1001
            })
        );
    }

    #[test]
    fn an_hevc_sps_cut_before_its_timing_keeps_its_size() {
        let sps = hex(X265);
        let info = hevc(&sps[..sps.len() - 8]).unwrap();
        assert_eq!((info.width, info.height), (320, 180));
        assert_eq!(info.frame_rate, None);
    }

    #[test]
    fn truncated_input_is_none_not_a_panic() {
        assert!(h264(&[0x67, 0x64]).is_none());
        assert!(hevc(&[0x42, 0x01, 0x01]).is_none());
    }

    #[test]
    fn a_cut_sps_gives_none() {
        let sps = hex("6764000cacd941419f9f0110");
        assert_eq!(h264(&sps), None);
    }

    #[test]
    fn emulation_prevention_bytes_are_skipped() {
        let mut r = Bits::new(&[0x00, 0x00, 0x03, 0x01, 0xff]);
        assert_eq!(r.bits(24), Some(1));
        assert_eq!(r.bits(8), Some(0xff));
        assert_eq!(r.bits(1), None);
    }

    #[test]
    fn zero_runs_are_measured_across_bytes() {
        assert_eq!(zero_run_bits(&[0x80, 0x00, 0x01]), 22);
        assert_eq!(zero_run_bits(&[0xff, 0x10, 0x00]), 12);
        assert_eq!(zero_run_bits(&[0xff]), 0);
        assert_eq!(zero_run_bits(&[0x00, 0x00, 0x03, 0x00, 0x01]), 31);
    }

    #[test]
    fn an_h264_sps_with_a_long_zero_run_is_none_not_a_panic() {
        // seq_parameter_set_id as an exp-Golomb code of 72 leading zeros
        // and 72 zero bits after its 1: the crate's reader wraps it to 0
        // and subtracts 1. Emulation prevention hides no zeros from the
        // check.
        let mut sps = vec![0x67, 0x64, 0x00, 0x0c];
        sps.extend([0; 9]);
        sps.push(0x80);
        sps.extend([0; 10]);
        assert_eq!(h264(&sps), None);
        let escaped: Vec<u8> = sps
            .iter()
            .flat_map(|&b| if b == 0 { vec![0, 0, 3] } else { vec![b] })
            .collect();
        assert_eq!(h264(&escaped), None);
    }

    #[test]
    fn damaged_parameter_sets_give_none_or_a_rate_never_a_panic() {
        let (avc, hevc_sps) = (hex(X264), hex(X265));
        assert!(h264(&avc).and_then(|i| i.frame_rate).is_some());
        assert!(hevc(&hevc_sps).and_then(|i| i.frame_rate).is_some());
        for (i, base) in [avc, hevc_sps].iter().enumerate() {
            for cut in 0..base.len() {
                for bit in 0..8 * cut.max(1) {
                    let mut nal = base[..cut].to_vec();
                    if let Some(b) = nal.get_mut(bit / 8) {
                        *b ^= 1 << (bit % 8);
                    }
                    let _ = if i == 0 { h264(&nal) } else { hevc(&nal) };
                }
            }
        }
    }
}
