//! PES packets: gathered from the payloads of one PID and read for their
//! timestamps. A PES that declares its length is complete when that many
//! bytes have come (audio, so it is not held back a packet); one that does
//! not (video) is complete when the next starts.

/// The longest PES gathered: far above any access unit of a real feed, so
/// a stream whose PES never ends cannot take unbounded memory.
const MAX_PES: usize = 32 << 20;

/// A complete PES packet: its 33-bit timestamps and its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pes {
    pub pts: Option<u64>,
    pub dts: Option<u64>,
    pub data: Vec<u8>,
    /// Input offset of the packet the PES began in.
    pub offset: u64,
}

/// Gathers the PES packets of one PID.
#[derive(Debug, Default)]
pub(crate) struct Gatherer {
    buf: Vec<u8>,
    offset: u64,
    active: bool,
}

/// Why a PES could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unreadable {
    pub offset: u64,
    pub why: &'static str,
}

impl Gatherer {
    /// Adds a packet's payload; a PES it completes goes to `out`.
    pub fn push(
        &mut self,
        start: bool,
        payload: &[u8],
        offset: u64,
        out: &mut Vec<Result<Pes, Unreadable>>,
    ) {
        if start {
            self.complete(out);
            self.active = true;
            self.offset = offset;
        } else if !self.active {
            // The start of this PES was lost: wait for the next.
            return;
        }
        self.buf.extend_from_slice(payload);
        if self.buf.len() > MAX_PES {
            self.lost();
            out.push(Err(Unreadable {
                offset: self.offset,
                why: "PES longer than 32 MiB",
            }));
            return;
        }
        if let Some(len) = self.declared_len() {
            if self.buf.len() >= len {
                self.buf.truncate(len);
                self.complete(out);
            }
        }
    }

    /// A packet of this PID was lost: the PES being gathered is incomplete
    /// and is dropped. Returns whether there was one.
    pub fn lost(&mut self) -> bool {
        let had = self.active;
        self.buf.clear();
        self.active = false;
        had
    }

    /// The end of input (or of the program): what was gathered is complete.
    pub fn finish(&mut self, out: &mut Vec<Result<Pes, Unreadable>>) {
        self.complete(out);
    }

    /// The PES's whole length when its header declares one.
    fn declared_len(&self) -> Option<usize> {
        let len = usize::from(u16::from_be_bytes([*self.buf.get(4)?, *self.buf.get(5)?]));
        (len != 0).then_some(6 + len)
    }

    fn complete(&mut self, out: &mut Vec<Result<Pes, Unreadable>>) {
        if !std::mem::replace(&mut self.active, false) {
            return;
        }
        let buf = std::mem::take(&mut self.buf);
        out.push(read(buf, self.offset));
    }
}

/// Reads a PES packet's header.
fn read(mut buf: Vec<u8>, offset: u64) -> Result<Pes, Unreadable> {
    let bad = |why| Err(Unreadable { offset, why });
    if buf.len() < 9 || buf[..3] != [0, 0, 1] {
        return bad("no PES start code");
    }
    let header_len = 9 + usize::from(buf[8]);
    if buf.len() < header_len {
        return bad("PES header longer than the packet");
    }
    let flags = buf[7] >> 6;
    let pts = if flags & 2 != 0 {
        buf.get(9..14).map(timestamp)
    } else {
        None
    };
    let dts = if flags == 3 {
        buf.get(14..19).map(timestamp)
    } else {
        None
    };
    if flags & 2 != 0 && pts.is_none() || flags == 3 && dts.is_none() {
        return bad("PES header too short for its timestamps");
    }
    buf.drain(..header_len);
    Ok(Pes {
        pts,
        dts,
        data: buf,
        offset,
    })
}

/// A 33-bit timestamp in the 5-byte PES layout (marker bits ignored).
fn timestamp(b: &[u8]) -> u64 {
    (u64::from(b[0] >> 1 & 0x07) << 30)
        | (u64::from(b[1]) << 22)
        | (u64::from(b[2] >> 1) << 15)
        | (u64::from(b[3]) << 7)
        | u64::from(b[4] >> 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(prefix: u8, t: u64) -> [u8; 5] {
        [
            prefix << 4 | ((t >> 29) as u8 & 0x0e) | 1,
            (t >> 22) as u8,
            ((t >> 14) as u8 & 0xfe) | 1,
            (t >> 7) as u8,
            ((t << 1) as u8) | 1,
        ]
    }

    #[test]
    fn gathers_an_unbounded_pes_until_the_next_and_reads_its_stamps() {
        let pts = (1u64 << 33) - 5;
        let mut head = vec![0, 0, 1, 0xe0, 0, 0, 0x80, 0xc0, 10];
        head.extend_from_slice(&stamp(3, pts));
        head.extend_from_slice(&stamp(1, 1234));
        let mut g = Gatherer::default();
        let mut out = Vec::new();
        g.push(true, &[head.clone(), vec![7; 20]].concat(), 0, &mut out);
        g.push(false, &[8; 30], 188, &mut out);
        assert!(out.is_empty());
        g.push(true, &head, 376, &mut out);
        let pes = out.remove(0).unwrap();
        assert_eq!((pes.pts, pes.dts), (Some(pts), Some(1234)));
        assert_eq!(pes.data.len(), 50);
        assert_eq!(pes.offset, 0);
    }

    #[test]
    fn a_declared_length_completes_at_once_and_a_loss_drops_the_pes() {
        let mut head = vec![0, 0, 1, 0xc0, 0, 8 + 4, 0x80, 0x80, 5];
        head.extend_from_slice(&stamp(2, 90_000));
        head.extend_from_slice(&[1, 2, 3, 4, 0xff, 0xff]);
        let mut g = Gatherer::default();
        let mut out = Vec::new();
        g.push(true, &head, 0, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].as_ref().unwrap().data, [1, 2, 3, 4]);
        g.push(true, &head[..10], 188, &mut out);
        assert!(g.lost());
        g.push(false, &head[10..], 376, &mut out);
        assert_eq!(out.len(), 1);
    }
}
