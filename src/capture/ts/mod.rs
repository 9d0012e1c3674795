//! MPEG-TS input: an adapter, free of I/O, that turns a transport stream
//! fed in chunks of any size into the fragmented-MP4 boxes the
//! [`Segmenter`](crate::capture::segmenter::Segmenter) already takes, so
//! maps, assets, the index and the lossless guarantees hold unchanged.
//!
//! The way through: [`sync`] cuts packets (resynchronising past garbage),
//! [`demux`] follows PAT → PMT, checks continuity counters and the PCR and
//! gathers PES packets ([`pes`]) and SCTE-35 sections ([`psi`]); [`track`]
//! turns each PES into samples, with [`annexb`] (H.264/HEVC to
//! length-prefixed, parameter sets read by [`sps`]), [`adts`] (AAC) and
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
mod sps;
mod sync;
mod track;

use bytes::Bytes;

use crate::capture::framing::RawBox;
use crate::Result;

use demux::{Demux, Unit};
use muxer::Muxer;

/// Whether a capture's first bytes are a transport stream: sync bytes 188
/// bytes apart (as many as have arrived, at least two).
pub fn is_transport_stream(head: &[u8]) -> bool {
    head.len() > packet::PACKET
        && head
            .iter()
            .step_by(packet::PACKET)
            .take(4)
            .all(|&b| b == packet::SYNC)
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
