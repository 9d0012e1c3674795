//! H.264 and HEVC access units from Annex B byte streams (start codes) to
//! the length-prefixed form MP4 carries, noting whether each is a key frame
//! and the parameter sets it repeats, which go into the sample entry.
//!
//! Parameter sets stay in the samples too, as encoders sent them: a key
//! frame then decodes from its own bytes even when they change. Access
//! unit delimiters are dropped; MP4 frames samples by itself.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VideoCodec {
    H264,
    Hevc,
}

/// The parameter sets of a stream, each kind in first-seen order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ParamSets {
    pub vps: Vec<Vec<u8>>,
    pub sps: Vec<Vec<u8>>,
    pub pps: Vec<Vec<u8>>,
}

impl ParamSets {
    pub fn is_complete(&self, codec: VideoCodec) -> bool {
        !self.sps.is_empty()
            && !self.pps.is_empty()
            && (codec == VideoCodec::H264 || !self.vps.is_empty())
    }
}

/// An access unit as MP4 sample bytes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Converted {
    pub key: bool,
    /// The parameter sets this access unit carries.
    pub params: ParamSets,
}

/// What a NAL unit is, by its type.
enum Kind {
    Key,
    Vps,
    Sps,
    Pps,
    Delimiter,
    Other,
}

fn kind(codec: VideoCodec, nal: &[u8]) -> Kind {
    let Some(&head) = nal.first() else {
        return Kind::Other;
    };
    match codec {
        VideoCodec::H264 => match head & 0x1f {
            5 => Kind::Key,
            7 => Kind::Sps,
            8 => Kind::Pps,
            9 => Kind::Delimiter,
            _ => Kind::Other,
        },
        VideoCodec::Hevc => match (head >> 1) & 0x3f {
            // IRAP pictures: BLA, IDR and CRA.
            16..=21 => Kind::Key,
            32 => Kind::Vps,
            33 => Kind::Sps,
            34 => Kind::Pps,
            35 => Kind::Delimiter,
            _ => Kind::Other,
        },
    }
}

/// Appends the access unit `annexb` to `out` as 4-byte length-prefixed NAL
/// units.
pub(crate) fn convert(codec: VideoCodec, annexb: &[u8], out: &mut Vec<u8>) -> Converted {
    let mut converted = Converted::default();
    for nal in nal_units(annexb) {
        match kind(codec, nal) {
            Kind::Delimiter => continue,
            Kind::Key => converted.key = true,
            Kind::Vps => push_new(&mut converted.params.vps, nal),
            Kind::Sps => push_new(&mut converted.params.sps, nal),
            Kind::Pps => push_new(&mut converted.params.pps, nal),
            Kind::Other => {}
        }
        out.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        out.extend_from_slice(nal);
    }
    converted
}

fn push_new(list: &mut Vec<Vec<u8>>, nal: &[u8]) {
    if !list.iter().any(|n| n == nal) {
        list.push(nal.to_vec());
    }
}

/// The NAL units between start codes (00 00 01, or 00 00 00 01), without
/// the zero bytes that belong to the next start code.
pub(crate) fn nal_units(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = match find_start(data) {
        Some(at) => &data[at..],
        None => &[][..],
    };
    std::iter::from_fn(move || {
        while !rest.is_empty() {
            let (nal, next) = match find_start(rest) {
                Some(at) => (&rest[..at - 3], &rest[at..]),
                None => (rest, &[][..]),
            };
            rest = next;
            let end = nal.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            if end > 0 {
                return Some(&nal[..end]);
            }
        }
        None
    })
}

/// The index just past the first 00 00 01 in `data`.
fn find_start(data: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = data[from..].iter().position(|&b| b == 1) {
        let at = from + i;
        if at >= 2 && data[at - 1] == 0 && data[at - 2] == 0 {
            return Some(at + 1);
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_start_codes_to_lengths_and_finds_key_frames_and_parameter_sets() {
        let annexb = [
            &[0, 0, 0, 1, 0x09, 0xf0][..],
            &[0, 0, 0, 1, 0x67, 1, 2, 3],
            &[0, 0, 1, 0x68, 4],
            &[0, 0, 1, 0x65, 0, 0, 3, 1, 9, 0, 0],
        ]
        .concat();
        let mut out = Vec::new();
        let c = convert(VideoCodec::H264, &annexb, &mut out);
        assert!(c.key);
        assert_eq!(c.params.sps, [vec![0x67, 1, 2, 3]]);
        assert_eq!(c.params.pps, [vec![0x68, 4]]);
        assert_eq!(
            out,
            [
                &[0, 0, 0, 4, 0x67, 1, 2, 3][..],
                &[0, 0, 0, 2, 0x68, 4],
                &[0, 0, 0, 6, 0x65, 0, 0, 3, 1, 9]
            ]
            .concat()
        );
    }

    #[test]
    fn hevc_cra_is_a_key_frame_and_a_trailing_picture_is_not() {
        let mut out = Vec::new();
        assert!(convert(VideoCodec::Hevc, &[0, 0, 1, 21 << 1, 1, 7], &mut out).key);
        assert!(!convert(VideoCodec::Hevc, &[0, 0, 1, 1 << 1, 1, 7], &mut out).key);
    }
}
