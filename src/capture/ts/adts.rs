//! AAC in ADTS frames (how MPEG-TS carries it) to raw AAC frames, one MP4
//! sample each, and the AudioSpecificConfig that the `esds` carries.

/// What an ADTS header says about the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AacConfig {
    /// The audio object type (2 = AAC LC).
    pub object_type: u8,
    pub freq_index: u8,
    pub channel_config: u8,
}

const RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

impl AacConfig {
    pub fn sample_rate(&self) -> u32 {
        RATES
            .get(usize::from(self.freq_index))
            .copied()
            .unwrap_or(0)
    }

    /// The AudioSpecificConfig, two bytes.
    pub fn audio_specific_config(&self) -> [u8; 2] {
        [
            (self.object_type << 3) | (self.freq_index >> 1),
            ((self.freq_index & 1) << 7) | (self.channel_config << 3),
        ]
    }
}

/// One raw AAC frame of a PES payload (1024 samples per frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Frame<'a> {
    pub config: AacConfig,
    pub data: &'a [u8],
}

/// Splits a PES payload into its ADTS frames. Returns the frames and the
/// number of bytes that were not a whole frame (damage).
pub(crate) fn frames(mut data: &[u8]) -> (Vec<Frame<'_>>, usize) {
    let mut out = Vec::new();
    let mut skipped = 0;
    while !data.is_empty() {
        match frame(data) {
            Some((f, len)) => {
                out.push(f);
                data = &data[len..];
            }
            None => {
                // Look for the next sync word.
                let next = (1..data.len())
                    .find(|&i| data[i] == 0xff && data.get(i + 1).is_some_and(|b| b & 0xf6 == 0xf0))
                    .unwrap_or(data.len());
                skipped += next;
                data = &data[next..];
            }
        }
    }
    (out, skipped)
}

/// The ADTS frame at the start of `data` and its whole length.
fn frame(data: &[u8]) -> Option<(Frame<'_>, usize)> {
    let h = data.get(..7)?;
    if h[0] != 0xff || h[1] & 0xf6 != 0xf0 {
        return None;
    }
    let protection_absent = h[1] & 1 == 1;
    let header_len = if protection_absent { 7 } else { 9 };
    let len = (usize::from(h[3] & 0x03) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
    // One raw data block per frame is what MP4 samples can carry as is.
    if len <= header_len || len > data.len() || h[6] & 0x03 != 0 {
        return None;
    }
    let config = AacConfig {
        object_type: (h[2] >> 6) + 1,
        freq_index: (h[2] >> 2) & 0x0f,
        channel_config: ((h[2] & 1) << 2) | (h[3] >> 6),
    };
    if config.sample_rate() == 0 {
        return None;
    }
    Some((
        Frame {
            config,
            data: &data[header_len..len],
        },
        len,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adts(payload: &[u8]) -> Vec<u8> {
        let len = payload.len() + 7;
        let mut h = vec![
            0xff,
            0xf1,
            (1 << 6) | (3 << 2),
            (2 << 6) | (len >> 11) as u8,
            (len >> 3) as u8,
            ((len as u8) << 5) | 0x1f,
            0xfc,
        ];
        h.extend_from_slice(payload);
        h
    }

    #[test]
    fn splits_frames_reads_the_config_and_skips_damage() {
        let data = [adts(&[1, 2, 3]), vec![9, 9], adts(&[4; 10])].concat();
        let (frames, skipped) = frames(&data);
        assert_eq!(frames.len(), 2);
        assert_eq!(skipped, 2);
        assert_eq!(frames[0].data, [1, 2, 3]);
        let c = frames[1].config;
        assert_eq!(
            (c.object_type, c.sample_rate(), c.channel_config),
            (2, 48000, 2)
        );
        assert_eq!(c.audio_specific_config(), [0x11, 0x90]);
    }
}
