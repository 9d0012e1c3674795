//! The demultiplexer: routes packets by PID, follows the PAT to the first
//! program's PMT, checks continuity counters and the PCR, and gathers PES
//! packets and SCTE-35 sections. Damage is reported, never fatal: a lost
//! packet drops the PES or section it was part of, and the stream goes on
//! from the next one.

use super::clock::WRAP;
use super::packet::{self, Packet};
use super::pes::{Gatherer, Pes};
use super::psi::{self, Program, Sections, Stream, AAC_ADTS, H264, HEVC, SCTE35};

/// What the demultiplexer hands on, in stream order.
#[derive(Debug)]
pub(crate) enum Unit {
    /// The program's streams, when first seen and whenever the PMT changes
    /// them.
    Program(Vec<Stream>),
    Pes(u16, Pes),
    /// Packets of this PID were lost or damaged.
    Lost(u16),
    /// An SCTE-35 section, with the offset of the packet it ended in.
    Section(Vec<u8>, u64),
}

const NULL_PID: u16 = 0x1fff;
const NO_CC: u8 = 0xff;

pub(crate) struct Demux {
    pat: Sections,
    pmt: Sections,
    pmt_pid: Option<u16>,
    program: Option<Program>,
    pes: Vec<(u16, Gatherer)>,
    scte: Vec<(u16, Sections)>,
    cc: Vec<u8>,
    /// The last PCR of the program's PCR PID.
    pcr: Option<u64>,
    warned_scrambled: bool,
    warned_types: Vec<(u16, u8)>,
    sections: Vec<Vec<u8>>,
    gathered: Vec<Result<Pes, super::pes::Unreadable>>,
}

impl Default for Demux {
    fn default() -> Self {
        Demux {
            pat: Sections::default(),
            pmt: Sections::default(),
            pmt_pid: None,
            program: None,
            pes: Vec::new(),
            scte: Vec::new(),
            cc: vec![NO_CC; 8192],
            pcr: None,
            warned_scrambled: false,
            warned_types: Vec::new(),
            sections: Vec::new(),
            gathered: Vec::new(),
        }
    }
}

impl Demux {
    /// Takes one 188-byte packet that began at input `offset`.
    pub fn packet(
        &mut self,
        bytes: &[u8],
        offset: u64,
        out: &mut Vec<Unit>,
        warnings: &mut Vec<String>,
    ) {
        let Some(p) = packet::parse(bytes) else {
            let pid = (u16::from(bytes[1] & 0x1f) << 8) | u16::from(bytes[2]);
            warnings.push(format!(
                "transport stream packet at byte {offset} (PID 0x{pid:x}): adaptation field longer than the packet; dropped"
            ));
            self.lost(pid, out);
            return;
        };
        if p.damaged {
            warnings.push(format!(
                "transport stream packet at byte {offset} (PID 0x{:x}) is marked damaged (transport error indicator); dropped",
                p.pid
            ));
            self.lost(p.pid, out);
            return;
        }
        if p.pid == NULL_PID || !self.continuous(&p, offset, out, warnings) {
            return;
        }
        if self
            .program
            .as_ref()
            .is_some_and(|prog| prog.pcr_pid == p.pid)
        {
            self.check_pcr(&p, offset, warnings);
        }
        if p.scrambled {
            if !std::mem::replace(&mut self.warned_scrambled, true) {
                warnings.push(format!(
                    "scrambled packets from byte {offset} (PID 0x{:x}) on: they cannot be read and are dropped",
                    p.pid
                ));
            }
            return;
        }
        self.route(&p, offset, out, warnings);
    }

    /// The end of input: what was gathered goes out.
    pub fn finish(&mut self, out: &mut Vec<Unit>, warnings: &mut Vec<String>) {
        for (pid, g) in &mut self.pes {
            g.finish(&mut self.gathered);
            hand_on(*pid, &mut self.gathered, out, warnings);
        }
    }

    /// Checks the continuity counter; false when the packet is a duplicate
    /// to drop. A gap is reported and the PID's unfinished unit dropped.
    fn continuous(
        &mut self,
        p: &Packet,
        offset: u64,
        out: &mut Vec<Unit>,
        warnings: &mut Vec<String>,
    ) -> bool {
        if !p.has_payload {
            return true;
        }
        let last = std::mem::replace(&mut self.cc[usize::from(p.pid)], p.cc);
        if last == NO_CC || p.discontinuity || p.cc == (last + 1) & 0x0f {
            return true;
        }
        if p.cc == last {
            // A packet may be sent twice; the copy is dropped.
            return false;
        }
        let missing = (p.cc + 16 - last - 1) & 0x0f;
        warnings.push(format!(
            "PID 0x{:x}: continuity counter jumps from {last} to {} at byte {offset}: at least {missing} packet(s) lost",
            p.pid, p.cc
        ));
        self.lost(p.pid, out);
        true
    }

    fn check_pcr(&mut self, p: &Packet, offset: u64, warnings: &mut Vec<String>) {
        let Some(pcr) = p.pcr else {
            return;
        };
        if let Some(last) = self.pcr.replace(pcr) {
            let mut step = (pcr as i64 - last as i64).rem_euclid(WRAP);
            if step >= WRAP / 2 {
                step -= WRAP;
            }
            if !(0..=90_000).contains(&step) {
                warnings.push(format!(
                    "PCR jumps by {:.3} s at byte {offset}{}: timestamps are resynchronised to go on",
                    step as f64 / 90_000.0,
                    if p.discontinuity { " (signalled discontinuity)" } else { "" }
                ));
            }
        }
    }

    fn lost(&mut self, pid: u16, out: &mut Vec<Unit>) {
        if let Some((_, g)) = self.pes.iter_mut().find(|(p, _)| *p == pid) {
            g.lost();
            out.push(Unit::Lost(pid));
        } else if let Some((_, s)) = self.scte.iter_mut().find(|(p, _)| *p == pid) {
            s.lost();
        } else if pid == 0 {
            self.pat.lost();
        } else if Some(pid) == self.pmt_pid {
            self.pmt.lost();
        }
    }

    fn route(&mut self, p: &Packet, offset: u64, out: &mut Vec<Unit>, warnings: &mut Vec<String>) {
        if let Some((pid, g)) = self.pes.iter_mut().find(|(pid, _)| *pid == p.pid) {
            g.push(p.start, p.payload, offset, &mut self.gathered);
            hand_on(*pid, &mut self.gathered, out, warnings);
        } else if let Some((_, s)) = self.scte.iter_mut().find(|(pid, _)| *pid == p.pid) {
            s.push(p.start, p.payload, &mut self.sections);
            out.extend(self.sections.drain(..).map(|s| Unit::Section(s, offset)));
        } else if p.pid == 0 {
            self.pat.push(p.start, p.payload, &mut self.sections);
            for s in std::mem::take(&mut self.sections) {
                match psi::pat_pmt_pid(&s) {
                    Some(pid) if Some(pid) != self.pmt_pid => {
                        self.pmt_pid = Some(pid);
                        self.pmt = Sections::default();
                    }
                    Some(_) => {}
                    None => warnings.push(format!("unreadable PAT at byte {offset}; ignored")),
                }
            }
        } else if Some(p.pid) == self.pmt_pid {
            self.pmt.push(p.start, p.payload, &mut self.sections);
            for s in std::mem::take(&mut self.sections) {
                match psi::pmt(&s) {
                    Some(program) => self.on_pmt(program, offset, out, warnings),
                    None => warnings.push(format!("unreadable PMT at byte {offset}; ignored")),
                }
            }
        }
    }

    /// A PMT: a new program when its streams differ from the current one's.
    fn on_pmt(
        &mut self,
        program: Program,
        offset: u64,
        out: &mut Vec<Unit>,
        warnings: &mut Vec<String>,
    ) {
        if let Some(old) = &self.program {
            if old.streams == program.streams {
                self.program = Some(program);
                return;
            }
            warnings.push(format!(
                "PMT at byte {offset} (version {} → {}) changes the program's streams: a new initialisation follows",
                old.version, program.version
            ));
        }
        self.finish(out, warnings);
        self.pes.clear();
        self.scte.clear();
        let mut streams = Vec::new();
        for s in &program.streams {
            match s.stream_type {
                H264 | HEVC | AAC_ADTS => self.pes.push((s.pid, Gatherer::default())),
                SCTE35 => self.scte.push((s.pid, Sections::default())),
                other => {
                    if !self.warned_types.contains(&(s.pid, other)) {
                        self.warned_types.push((s.pid, other));
                        warnings.push(format!(
                            "PID 0x{:x} has stream type 0x{other:02x}, which is not carried (H.264, HEVC, AAC in ADTS and SCTE-35 are)",
                            s.pid
                        ));
                    }
                    continue;
                }
            }
            streams.push(*s);
        }
        self.pcr = None;
        self.program = Some(program);
        out.push(Unit::Program(streams));
    }
}

/// Hands gathered PES packets on; an unreadable one is reported and
/// counts as lost.
fn hand_on(
    pid: u16,
    gathered: &mut Vec<Result<Pes, super::pes::Unreadable>>,
    out: &mut Vec<Unit>,
    warnings: &mut Vec<String>,
) {
    for g in gathered.drain(..) {
        match g {
            Ok(pes) => out.push(Unit::Pes(pid, pes)),
            Err(e) => {
                warnings.push(format!(
                    "PES on PID 0x{pid:x} at byte {}: {}; dropped",
                    e.offset, e.why
                ));
                out.push(Unit::Lost(pid));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::ts::packet::PACKET;

    fn packet(pid: u16, start: bool, cc: u8, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![
            0x47,
            (u8::from(start) << 6) | (pid >> 8) as u8,
            pid as u8,
            0x10 | cc,
        ];
        p.extend_from_slice(payload);
        p.resize(PACKET, 0xff);
        p
    }

    fn section(bytes: &[u8]) -> Vec<u8> {
        [&[0][..], bytes].concat()
    }

    /// PAT → PMT 0x1000 → an H.264 stream on 0x100.
    fn program(demux: &mut Demux, out: &mut Vec<Unit>, warnings: &mut Vec<String>) {
        let mut pat = vec![0x00, 0xb0, 13, 0, 1, 0xc1, 0, 0, 0, 1, 0xf0, 0x00];
        let crc = psi::crc32(&pat);
        pat.extend_from_slice(&crc.to_be_bytes());
        demux.packet(&packet(0, true, 0, &section(&pat)), 0, out, warnings);
        let pmt = psi::build_pmt(0, 0x100, &[(H264, 0x100)]);
        demux.packet(&packet(0x1000, true, 0, &section(&pmt)), 188, out, warnings);
    }

    #[test]
    fn a_duplicate_is_dropped_silently_and_a_gap_is_reported_as_a_loss() {
        let (mut demux, mut out, mut warnings) = (Demux::default(), Vec::new(), Vec::new());
        program(&mut demux, &mut out, &mut warnings);
        assert!(matches!(&out[..], [Unit::Program(s)] if s.len() == 1));
        out.clear();
        let pes = [0, 0, 1, 0xe0, 0, 0, 0x80, 0, 0, 9, 9];
        demux.packet(&packet(0x100, true, 0, &pes), 376, &mut out, &mut warnings);
        demux.packet(
            &packet(0x100, false, 0, &[7; 10]),
            564,
            &mut out,
            &mut warnings,
        );
        assert!(warnings.is_empty() && out.is_empty(), "{warnings:?}");
        demux.packet(
            &packet(0x100, false, 3, &[7; 10]),
            752,
            &mut out,
            &mut warnings,
        );
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].contains("at least 2 packet(s) lost"),
            "{warnings:?}"
        );
        assert!(matches!(&out[..], [Unit::Lost(0x100)]));
    }
}
