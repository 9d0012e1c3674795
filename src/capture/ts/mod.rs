//! MPEG-TS input: an adapter, free of I/O, that turns a transport stream
//! fed in chunks of any size into the fragmented-MP4 boxes the
//! [`Segmenter`](crate::capture::segmenter::Segmenter) already takes, so
//! maps, assets, the index and the lossless guarantees hold unchanged.
//!
//! The way through: [`sync`] cuts packets (resynchronising past garbage),
//! [`demux`] follows PAT → PMT, checks continuity counters and the PCR and
//! gathers PES packets ([`pes`]) and SCTE-35 sections ([`psi`]); [`track`]
//! turns each PES into samples, with [`annexb`] (H.264/HEVC to
//! length-prefixed, parameter sets read by
//! [`capture::sps`](crate::capture::sps)), [`adts`] (AAC) and
//! [`clock`] (33-bit wraps, jumps); [`muxer`] writes the initialisation
//! ([`moov`]), `emsg` boxes from SCTE-35 ([`scte35`]) and one `moof` +
//! `mdat` per GOP. Damage is never fatal: each kind is a warning, and what
//! it touched is dropped up to the next point the stream can go on from.

mod adts;
mod annexb;
mod clock;
mod demux;
mod moov;
mod muxer;
mod packet;
mod pes;
pub mod psi;
pub mod scte35;
mod sync;
mod track;

use bytes::Bytes;

use crate::capture::framing::RawBox;
use crate::Result;

use demux::{Demux, Unit};
use muxer::Muxer;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transport_stream_is_told_from_its_sync_bytes_even_cut_mid_packet() {
        let mut ts = vec![0u8; 5 * 188];
        for p in ts.chunks_mut(188) {
            p[0] = 0x47;
        }
        assert!(is_transport_stream(&ts));
        assert!(is_transport_stream(&ts[100..]));
        assert!(is_transport_stream(&ts[..2 * 188 + 1]));
        assert!(!is_transport_stream(&ts[..188]));
        let mp4 = b"\0\0\0\x20ftypisom\0\0\x02\0isomiso2avc1mp41".repeat(40);
        assert!(!is_transport_stream(&mp4));
    }
}

/// How many bytes [`is_transport_stream`] wants to see to be sure.
pub const PROBE: usize = 5 * packet::PACKET;

/// Whether a capture's first bytes are a transport stream: sync bytes 188
/// bytes apart, four of them (or as many as have arrived, at least two),
/// from the start or from within the first packet, so that a capture cut
/// mid-packet is still taken (the bytes before are skipped with a warning).
pub fn is_transport_stream(head: &[u8]) -> bool {
    let at = |start: usize| {
        let syncs = head.get(start..).map_or(0, |h| {
            h.iter()
                .step_by(packet::PACKET)
                .take(4)
                .take_while(|&&b| b == packet::SYNC)
                .count()
        });
        syncs == 4 || syncs >= 2 && head.len() < start + 4 * packet::PACKET
    };
    (0..packet::PACKET.min(head.len()))
        .any(|start| at(start) && head.len() > start + packet::PACKET)
}

/// The adapter: transport stream bytes in, top-level MP4 boxes out.
#[derive(Default)]
pub struct TsIngest {
    sync: sync::Sync,
    demux: Demux,
    muxer: Muxer,
    units: Vec<Unit>,
    boxes: Vec<Vec<u8>>,
    /// Offset of the next box in the MP4 stream made.
    offset: u64,
}

impl TsIngest {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next bytes of the transport stream; the boxes they
    /// complete go to `out`, what was wrong with them to `warnings`.
    pub fn push(
        &mut self,
        chunk: &[u8],
        out: &mut Vec<RawBox>,
        warnings: &mut Vec<String>,
    ) -> Result<()> {
        self.feed(chunk, false, warnings);
        self.drain(out, warnings)
    }

    /// The end of the transport stream: what is held is written.
    pub fn finish(&mut self, out: &mut Vec<RawBox>, warnings: &mut Vec<String>) -> Result<()> {
        self.feed(&[], true, warnings);
        self.demux.finish(&mut self.units, warnings);
        self.drain(out, warnings)?;
        self.muxer.finish(&mut self.boxes, warnings)?;
        self.emit(out);
        Ok(())
    }

    fn feed(&mut self, chunk: &[u8], last: bool, warnings: &mut Vec<String>) {
        let (demux, units) = (&mut self.demux, &mut self.units);
        let mut found = Vec::new();
        self.sync.push(chunk, last, warnings, |p, offset| {
            demux.packet(p, offset, units, &mut found);
        });
        warnings.append(&mut found);
    }

    fn drain(&mut self, out: &mut Vec<RawBox>, warnings: &mut Vec<String>) -> Result<()> {
        for unit in std::mem::take(&mut self.units) {
            match unit {
                Unit::Program(streams) => self.muxer.program(&streams, &mut self.boxes)?,
                Unit::Pes(pid, pes) => self.muxer.pes(pid, pes, &mut self.boxes, warnings)?,
                Unit::Lost(pid) => self.muxer.lost(pid),
                Unit::Section(s, offset) => self.muxer.section(&s, offset, warnings)?,
            }
        }
        self.emit(out);
        Ok(())
    }

    /// The boxes written, as the framer would have cut them.
    fn emit(&mut self, out: &mut Vec<RawBox>) {
        for b in self.boxes.drain(..) {
            let header_len = if b.get(..4) == Some(&[0, 0, 0, 1]) {
                16
            } else {
                8
            };
            let kind = [b[4], b[5], b[6], b[7]];
            let len = b.len() as u64;
            out.push(RawBox {
                offset: self.offset,
                kind,
                header_len,
                bytes: Bytes::from(b),
                skipped_before: None,
                doubted: None,
            });
            self.offset += len;
        }
    }
}
