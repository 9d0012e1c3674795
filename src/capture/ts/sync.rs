//! Packet alignment: cuts a byte stream that arrives in chunks of any size
//! into 188-byte packets, and finds the packet grid again after garbage, a
//! truncated packet or a damaged sync byte. A packet is believed when the
//! byte after it is a sync byte too; after a loss, three sync bytes 188
//! bytes apart are needed, so stray 0x47 bytes in garbage are not taken
//! for a packet start.

use super::packet::{PACKET, SYNC};

#[derive(Debug, Default)]
pub(crate) struct Sync {
    /// Bytes not yet cut into packets.
    buf: Vec<u8>,
    /// Input offset of `buf[0]`.
    start: u64,
    locked: bool,
    /// Bytes skipped since the grid was lost: (offset, count).
    skipping: Option<(u64, u64)>,
}

impl Sync {
    /// Cuts what `chunk` completes into packets, handing each to `each`
    /// with its input offset. With `last`, the end of input: a packet that
    /// no byte follows is believed on its own.
    pub fn push(
        &mut self,
        chunk: &[u8],
        last: bool,
        warnings: &mut Vec<String>,
        mut each: impl FnMut(&[u8], u64),
    ) {
        self.buf.extend_from_slice(chunk);
        let mut at = 0;
        while self.buf.len() - at >= PACKET {
            if self.buf[at] == SYNC
                && self.follows(at + PACKET, if self.locked { 0 } else { 1 }, last)
            {
                self.resynced(warnings);
                self.locked = true;
                each(&self.buf[at..at + PACKET], self.start + at as u64);
                at += PACKET;
                continue;
            }
            if self.buf[at] == SYNC && self.waiting(at, last) {
                break;
            }
            // Not a packet start: skip a byte and look again.
            if self.locked {
                self.locked = false;
            }
            let offset = self.start + at as u64;
            let skip = self.skipping.get_or_insert((offset, 0));
            skip.1 += 1;
            at += 1;
        }
        if last && self.buf.len() > at {
            let offset = self.start + at as u64;
            let rest = (self.buf.len() - at) as u64;
            warnings.push(format!(
                "transport stream ends with {rest} byte(s) of an incomplete packet at byte {offset}"
            ));
            at = self.buf.len();
        }
        if last {
            self.resynced(warnings);
        }
        self.buf.drain(..at);
        self.start += at as u64;
    }

    /// Whether sync bytes stand at `at` and `more` packets after it; bytes
    /// that have not arrived count as sync bytes only at the end of input.
    fn follows(&self, at: usize, more: usize, last: bool) -> bool {
        (0..=more).all(|k| match self.buf.get(at + k * PACKET) {
            Some(&b) => b == SYNC,
            None => last,
        })
    }

    /// Whether the packet at `at` cannot be judged before more bytes come.
    fn waiting(&self, at: usize, last: bool) -> bool {
        let needed = if self.locked { 1 } else { 3 };
        !last && self.buf.len() < at + PACKET * needed + 1 && self.follows_so_far(at)
    }

    /// Whether every sync position that has arrived holds a sync byte.
    fn follows_so_far(&self, at: usize) -> bool {
        (at..self.buf.len())
            .step_by(PACKET)
            .all(|i| self.buf[i] == SYNC)
    }

    fn resynced(&mut self, warnings: &mut Vec<String>) {
        if let Some((offset, count)) = self.skipping.take() {
            warnings.push(format!(
                "transport stream: skipped {count} byte(s) that are not packets at byte {offset}"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(n: u8) -> Vec<u8> {
        let mut p = vec![n; PACKET];
        p[0] = SYNC;
        p
    }

    fn cut(input: &[u8], chunk: usize) -> (Vec<(u8, u64)>, Vec<String>) {
        let mut sync = Sync::default();
        let mut got = Vec::new();
        let mut warnings = Vec::new();
        for c in input.chunks(chunk) {
            sync.push(c, false, &mut warnings, |p, o| got.push((p[1], o)));
        }
        sync.push(&[], true, &mut warnings, |p, o| got.push((p[1], o)));
        (got, warnings)
    }

    #[test]
    fn cuts_packets_whatever_the_chunks() {
        let input: Vec<u8> = (1..=5).flat_map(packet).collect();
        for chunk in [1, 7, 188, 500, 4096] {
            let (got, warnings) = cut(&input, chunk);
            assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
            assert_eq!(got[4].1, 4 * 188);
            assert!(warnings.is_empty(), "{warnings:?}");
        }
    }

    #[test]
    fn skips_garbage_with_stray_sync_bytes_between_packets() {
        let mut input: Vec<u8> = (1..=3).flat_map(packet).collect();
        input.extend_from_slice(&[0x47, 1, 2, 0x47, 0x47, 9, 9]);
        input.extend((4..=7).flat_map(packet));
        let (got, warnings) = cut(&input, 100);
        assert_eq!(
            got.iter().map(|g| g.0).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5, 6, 7]
        );
        assert_eq!(got[3].1, 3 * 188 + 7);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("skipped 7 byte(s)"), "{warnings:?}");
    }

    #[test]
    fn drops_a_truncated_packet() {
        let mut input: Vec<u8> = (1..=2).flat_map(packet).collect();
        input.extend_from_slice(&packet(3)[..100]);
        input.extend((4..=6).flat_map(packet));
        let (got, warnings) = cut(&input, 64);
        assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), [1, 2, 4, 5, 6]);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
    }
}
