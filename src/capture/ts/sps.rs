//! What the sample entry needs from a sequence parameter set: the picture
//! size for `tkhd` and the visual sample entry, and for HEVC the profile,
//! tier, level, chroma format and bit depths that `hvcC` repeats.

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
    pub max_sub_layers: u8,
    pub temporal_id_nested: bool,
}

/// A reader of RBSP bits (emulation prevention bytes removed first).
struct Bits {
    data: Vec<u8>,
    at: usize,
}

impl Bits {
    fn new(nal: &[u8], header: usize) -> Self {
        let mut data = Vec::with_capacity(nal.len());
        let mut zeros = 0;
        for &b in nal.iter().skip(header) {
            if zeros >= 2 && b == 3 {
                zeros = 0;
                continue;
            }
            zeros = if b == 0 { zeros + 1 } else { 0 };
            data.push(b);
        }
        Bits { data, at: 0 }
    }

    fn bit(&mut self) -> Option<u32> {
        let byte = *self.data.get(self.at / 8)?;
        let bit = (byte >> (7 - self.at % 8)) & 1;
        self.at += 1;
        Some(u32::from(bit))
    }

    fn bits(&mut self, n: u32) -> Option<u32> {
        (0..n).try_fold(0u32, |v, _| Some((v << 1) | self.bit()?))
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        self.at += n;
        (self.at <= self.data.len() * 8).then_some(())
    }

    /// Unsigned Exp-Golomb.
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        Some((1u32 << zeros) - 1 + self.bits(zeros)?)
    }

    fn se(&mut self) -> Option<i32> {
        let v = self.ue()?;
        Some(if v % 2 == 1 {
            v.div_ceil(2) as i32
        } else {
            -((v / 2) as i32)
        })
    }
}

/// Reads an H.264 SPS NAL unit (header byte included).
pub(crate) fn h264(nal: &[u8]) -> Option<SpsInfo> {
    let mut b = Bits::new(nal, 1);
    let profile = b.bits(8)?;
    b.skip(16)?;
    b.ue()?;
    let mut info = SpsInfo {
        chroma_format_idc: 1,
        ..Default::default()
    };
    if [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135].contains(&profile) {
        info.chroma_format_idc = b.ue()? as u8;
        if info.chroma_format_idc == 3 {
            b.skip(1)?;
        }
        info.bit_depth_luma_minus8 = b.ue()? as u8;
        info.bit_depth_chroma_minus8 = b.ue()? as u8;
        b.skip(1)?;
        if b.bit()? == 1 {
            let lists = if info.chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if b.bit()? == 1 {
                    skip_scaling_list(&mut b, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    b.ue()?;
    match b.ue()? {
        0 => {
            b.ue()?;
        }
        1 => {
            b.skip(1)?;
            b.se()?;
            b.se()?;
            for _ in 0..b.ue()? {
                b.se()?;
            }
        }
        _ => {}
    }
    b.ue()?;
    b.skip(1)?;
    let width_mbs = u64::from(b.ue()?) + 1;
    let height_units = u64::from(b.ue()?) + 1;
    let frame_mbs_only = b.bit()?;
    if frame_mbs_only == 0 {
        b.skip(1)?;
    }
    b.skip(1)?;
    let crop = if b.bit()? == 1 {
        [b.ue()?, b.ue()?, b.ue()?, b.ue()?]
    } else {
        [0; 4]
    };
    // In 64 bits: a damaged SPS may claim anything.
    let fields = u64::from(2 - frame_mbs_only);
    let (unit_x, unit_y) = match info.chroma_format_idc {
        1 => (2, 2 * fields),
        2 => (2, fields),
        _ => (1, fields),
    };
    let crop = crop.map(u64::from);
    let width = (width_mbs * 16).checked_sub(unit_x * (crop[0] + crop[1]))?;
    let height = (fields * height_units * 16).checked_sub(unit_y * (crop[2] + crop[3]))?;
    info.width = u16::try_from(width).ok()?;
    info.height = u16::try_from(height).ok()?;
    Some(info)
}

fn skip_scaling_list(b: &mut Bits, size: usize) -> Option<()> {
    let (mut last, mut next) = (8i32, 8i32);
    for _ in 0..size {
        if next != 0 {
            next = (last + b.se()? + 256) % 256;
        }
        if next != 0 {
            last = next;
        }
    }
    Some(())
}

/// Reads an HEVC SPS NAL unit (2-byte header included).
pub(crate) fn hevc(nal: &[u8]) -> Option<SpsInfo> {
    let mut b = Bits::new(nal, 2);
    b.skip(4)?;
    let max_sub_layers_minus1 = b.bits(3)?;
    let temporal_id_nested = b.bit()? == 1;
    let mut general_ptl = [0u8; 12];
    for byte in &mut general_ptl {
        *byte = b.bits(8)? as u8;
    }
    // Sub-layer profile/level presence flags, then their fields.
    let mut present = Vec::new();
    for _ in 0..max_sub_layers_minus1 {
        present.push((b.bit()?, b.bit()?));
    }
    if max_sub_layers_minus1 > 0 {
        b.skip(2 * (8 - max_sub_layers_minus1 as usize))?;
    }
    for (profile, level) in present {
        b.skip(88 * profile as usize + 8 * level as usize)?;
    }
    b.ue()?;
    let chroma_format_idc = b.ue()?;
    if chroma_format_idc == 3 {
        b.skip(1)?;
    }
    let mut width = u64::from(b.ue()?);
    let mut height = u64::from(b.ue()?);
    if b.bit()? == 1 {
        let (sub_w, sub_h) = match chroma_format_idc {
            1 => (2, 2),
            2 => (2, 1),
            _ => (1, 1),
        };
        let [l, r, t, bo] = [b.ue()?, b.ue()?, b.ue()?, b.ue()?].map(u64::from);
        width = width.checked_sub(sub_w * (l + r))?;
        height = height.checked_sub(sub_h * (t + bo))?;
    }
    Some(SpsInfo {
        width: u16::try_from(width).ok()?,
        height: u16::try_from(height).ok()?,
        chroma_format_idc: chroma_format_idc as u8,
        bit_depth_luma_minus8: b.ue()? as u8,
        bit_depth_chroma_minus8: b.ue()? as u8,
        general_ptl,
        max_sub_layers: max_sub_layers_minus1 as u8 + 1,
        temporal_id_nested,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_size_of_an_x264_sps() {
        // x264, High profile, 320x180 (cropped from 320x192).
        let sps = [
            0x67, 0x64, 0x00, 0x0c, 0xac, 0xd9, 0x41, 0x41, 0x9f, 0x9f, 0x01, 0x10, 0x00, 0x00,
            0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0x00, 0xf1, 0x42, 0x99, 0x60,
        ];
        let info = h264(&sps).unwrap();
        assert_eq!((info.width, info.height), (320, 180));
        assert_eq!(info.chroma_format_idc, 1);
    }

    #[test]
    fn reads_an_x265_sps() {
        let sps = [
            0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00,
            0x00, 0x03, 0x00, 0x3c, 0xa0, 0x0a, 0x08, 0x0c, 0x1f, 0x3e, 0x59, 0x59, 0x52, 0x93,
            0x0b, 0xc0, 0x5a, 0x02, 0x00, 0x00, 0x07, 0xd2, 0x00, 0x00, 0xea, 0x60, 0x10,
        ];
        let info = hevc(&sps).unwrap();
        assert_eq!((info.width, info.height), (320, 180));
        assert_eq!(info.general_ptl[0], 0x01, "Main profile");
        assert_eq!(info.general_ptl[11], 0x3c, "level 2");
        assert_eq!((info.chroma_format_idc, info.bit_depth_luma_minus8), (1, 0));
    }

    #[test]
    fn truncated_input_is_none_not_a_panic() {
        assert!(h264(&[0x67, 0x64]).is_none());
        assert!(hevc(&[0x42, 0x01, 0x01]).is_none());
    }
}
