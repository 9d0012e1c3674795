//! Program-specific information: sections reassembled from packet payloads
//! (a section may span packets, and a packet may hold several), checked by
//! their CRC, and the two tables the demultiplexer needs read from them:
//! the PAT (where the program's PMT is) and the PMT (its elementary
//! streams and their types).

/// Stream types this adapter turns into tracks or events.
pub(crate) const H264: u8 = 0x1b;
pub(crate) const HEVC: u8 = 0x24;
pub(crate) const AAC_ADTS: u8 = 0x0f;
pub(crate) const SCTE35: u8 = 0x86;

/// Reassembles the sections of one PID.
#[derive(Debug, Default)]
pub(crate) struct Sections {
    buf: Vec<u8>,
    /// A section has started and its bytes are being gathered.
    active: bool,
}

impl Sections {
    /// Adds a packet's payload; complete sections go to `out`.
    pub fn push(&mut self, start: bool, payload: &[u8], out: &mut Vec<Vec<u8>>) {
        if start {
            let Some((&pointer, rest)) = payload.split_first() else {
                return;
            };
            let pointer = usize::from(pointer).min(rest.len());
            if self.active {
                self.buf.extend_from_slice(&rest[..pointer]);
                self.drain(out);
            }
            self.buf.clear();
            self.buf.extend_from_slice(&rest[pointer..]);
            self.active = true;
        } else if self.active {
            self.buf.extend_from_slice(payload);
        }
        self.drain(out);
    }

    /// A packet of this PID was lost: the section being gathered is
    /// incomplete and is dropped.
    pub fn lost(&mut self) {
        self.buf.clear();
        self.active = false;
    }

    fn drain(&mut self, out: &mut Vec<Vec<u8>>) {
        while self.active && self.buf.len() >= 3 {
            if self.buf[0] == 0xff {
                // Stuffing: no more sections in this payload.
                self.lost();
                return;
            }
            let len = 3 + ((usize::from(self.buf[1] & 0x0f) << 8) | usize::from(self.buf[2]));
            if self.buf.len() < len {
                return;
            }
            out.push(self.buf[..len].to_vec());
            self.buf.drain(..len);
        }
    }
}

/// CRC-32/MPEG-2 of `bytes`; 0 over a whole section means it is intact.
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04c1_1db7
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Whether a long-form section (PAT, PMT, SCTE-35) is intact.
pub(crate) fn intact(section: &[u8]) -> bool {
    section.len() >= 8 && crc32(section) == 0
}

/// The PMT PID of the first program a PAT lists.
pub(crate) fn pat_pmt_pid(section: &[u8]) -> Option<u16> {
    if section.first() != Some(&0x00) || !intact(section) || section.len() < 12 {
        return None;
    }
    section[8..section.len() - 4]
        .chunks_exact(4)
        .find(|e| u16::from_be_bytes([e[0], e[1]]) != 0)
        .map(|e| (u16::from(e[2] & 0x1f) << 8) | u16::from(e[3]))
}

/// One elementary stream of a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stream {
    pub pid: u16,
    pub stream_type: u8,
}

/// A program as its PMT describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Program {
    pub version: u8,
    pub pcr_pid: u16,
    pub streams: Vec<Stream>,
}

/// Reads a PMT section; `None` when it is not one or is damaged.
pub(crate) fn pmt(section: &[u8]) -> Option<Program> {
    if section.first() != Some(&0x02) || !intact(section) || section.len() < 16 {
        return None;
    }
    let end = section.len() - 4;
    let info_len = (usize::from(section[10] & 0x0f) << 8) | usize::from(section[11]);
    let mut at = 12 + info_len;
    let mut streams = Vec::new();
    while at + 5 <= end {
        let e = &section[at..at + 5];
        streams.push(Stream {
            stream_type: e[0],
            pid: (u16::from(e[1] & 0x1f) << 8) | u16::from(e[2]),
        });
        at += 5 + ((usize::from(e[3] & 0x0f) << 8) | usize::from(e[4]));
    }
    Some(Program {
        version: (section[5] >> 1) & 0x1f,
        pcr_pid: (u16::from(section[8] & 0x1f) << 8) | u16::from(section[9]),
        streams,
    })
}

/// Builds a PMT section (for tests here and in tests/): the inverse of
/// [`pmt`], with no descriptors.
pub fn build_pmt(version: u8, pcr_pid: u16, streams: &[(u8, u16)]) -> Vec<u8> {
    let len = 9 + 5 * streams.len() + 4;
    let mut s = vec![
        0x02,
        0xb0 | ((len >> 8) as u8 & 0x0f),
        len as u8,
        0x00,
        0x01,
        0xc1 | ((version & 0x1f) << 1),
        0x00,
        0x00,
        0xe0 | (pcr_pid >> 8) as u8,
        pcr_pid as u8,
        0xf0,
        0x00,
    ];
    for &(stream_type, pid) in streams {
        s.extend_from_slice(&[stream_type, 0xe0 | (pid >> 8) as u8, pid as u8, 0xf0, 0x00]);
    }
    let crc = crc32(&s);
    s.extend_from_slice(&crc.to_be_bytes());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_pmt_reads_back_and_damage_is_refused() {
        let s = build_pmt(
            3,
            0x100,
            &[(H264, 0x100), (AAC_ADTS, 0x101), (SCTE35, 0x102)],
        );
        let p = pmt(&s).unwrap();
        assert_eq!(p.version, 3);
        assert_eq!(p.pcr_pid, 0x100);
        assert_eq!(p.streams.len(), 3);
        assert_eq!(
            p.streams[2],
            Stream {
                pid: 0x102,
                stream_type: SCTE35
            }
        );
        let mut bad = s.clone();
        bad[14] ^= 1;
        assert!(pmt(&bad).is_none());
    }

    #[test]
    fn sections_span_packets_and_share_them() {
        let s = build_pmt(0, 0x100, &[(H264, 0x100)]);
        let mut sections = Sections::default();
        let mut out = Vec::new();
        // Pointer 0, the first 10 bytes; then the rest, a second section
        // right after it, and stuffing.
        let mut first = vec![0];
        first.extend_from_slice(&s[..10]);
        sections.push(true, &first, &mut out);
        assert!(out.is_empty());
        let mut second = s[10..].to_vec();
        second.extend_from_slice(&s);
        second.extend_from_slice(&[0xff; 20]);
        sections.push(false, &second, &mut out);
        assert_eq!(out, vec![s.clone(), s]);
    }
}
