//! One 188-byte transport stream packet's header and adaptation field, read
//! without copying: the fields the demultiplexer routes and checks by.

/// The length of a transport stream packet.
pub(crate) const PACKET: usize = 188;

/// The byte every packet starts with.
pub(crate) const SYNC: u8 = 0x47;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Packet<'a> {
    pub pid: u16,
    /// Payload unit start: a PES packet or a section starts in this packet.
    pub start: bool,
    /// The transport error indicator: a demodulator flagged the packet.
    pub damaged: bool,
    pub scrambled: bool,
    pub cc: u8,
    pub has_payload: bool,
    /// The adaptation field's discontinuity indicator: counters and clocks
    /// may jump here on purpose.
    pub discontinuity: bool,
    /// The program clock reference's 33-bit base (90 kHz).
    pub pcr: Option<u64>,
    pub payload: &'a [u8],
}

/// Reads a packet that starts with the sync byte; `None` when its
/// adaptation field claims more than the packet holds.
pub(crate) fn parse(p: &[u8]) -> Option<Packet<'_>> {
    let header = p.get(..4)?;
    let control = (header[3] >> 4) & 3;
    let mut packet = Packet {
        pid: (u16::from(header[1] & 0x1f) << 8) | u16::from(header[2]),
        start: header[1] & 0x40 != 0,
        damaged: header[1] & 0x80 != 0,
        scrambled: header[3] >> 6 != 0,
        cc: header[3] & 0x0f,
        has_payload: control & 1 != 0,
        discontinuity: false,
        pcr: None,
        payload: &[],
    };
    let mut at = 4;
    if control & 2 != 0 {
        let len = usize::from(*p.get(4)?);
        let field = p.get(5..5 + len)?;
        if let Some(&flags) = field.first() {
            packet.discontinuity = flags & 0x80 != 0;
            if flags & 0x10 != 0 {
                let b = field.get(1..6)?;
                packet.pcr = Some(
                    (u64::from(b[0]) << 25)
                        | (u64::from(b[1]) << 17)
                        | (u64::from(b[2]) << 9)
                        | (u64::from(b[3]) << 1)
                        | (u64::from(b[4]) >> 7),
                );
            }
        }
        at = 5 + len;
    }
    if packet.has_payload {
        packet.payload = p.get(at..PACKET.min(p.len()))?;
    }
    Some(packet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pid_flags_and_pcr() {
        let mut p = [0xffu8; PACKET];
        p[..4].copy_from_slice(&[SYNC, 0x41, 0x00, 0x37]);
        // Adaptation field of 7 bytes: discontinuity + PCR 0x1_0000_0001.
        p[4..12].copy_from_slice(&[7, 0x90, 0x80, 0x00, 0x00, 0x00, 0x80, 0x00]);
        let packet = parse(&p).unwrap();
        assert_eq!(packet.pid, 0x100);
        assert!(packet.start && !packet.damaged && !packet.scrambled);
        assert_eq!(packet.cc, 7);
        assert!(packet.discontinuity);
        assert_eq!(packet.pcr, Some(0x1_0000_0001));
        assert_eq!(packet.payload.len(), PACKET - 12);
    }

    #[test]
    fn refuses_an_adaptation_field_longer_than_the_packet() {
        let mut p = [0u8; PACKET];
        p[..5].copy_from_slice(&[SYNC, 0x01, 0x00, 0x30, 200]);
        assert!(parse(&p).is_none());
    }
}
