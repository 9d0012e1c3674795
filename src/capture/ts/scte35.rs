//! SCTE-35 splice information sections (stream type 0x86) read for what an
//! `emsg` needs: when the splice happens (the splice time plus the PTS
//! adjustment, a 33-bit program time), how long the break is and the
//! event's id. The section itself is the `emsg`'s message, as the
//! `urn:scte:scte35:2013:bin` scheme carries it.

use super::psi::intact;

/// The scheme DASH and CMAF name binary SCTE-35 in `emsg` by.
pub const SCHEME: &str = "urn:scte:scte35:2013:bin";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Splice {
    /// The splice time on the program's 33-bit PTS clock; `None` for an
    /// immediate splice or a command without a time.
    pub pts: Option<u64>,
    /// The break's duration (90 kHz).
    pub duration: Option<u64>,
    pub event_id: Option<u32>,
    /// A splice_insert's `out_of_network_indicator`: true for a break
    /// starting (cue out), false for the return (cue in); `None` for other
    /// commands.
    pub out_of_network: Option<bool>,
    /// The whole section, CRC included.
    pub section: Vec<u8>,
}

/// Reads a splice information section; `None` when it is not one, is
/// damaged or encrypted.
pub fn parse(section: &[u8]) -> Option<Splice> {
    if section.first() != Some(&0xfc) || !intact(section) || section.len() < 18 {
        return None;
    }
    if section[4] & 0x80 != 0 {
        return None;
    }
    let adjustment = (u64::from(section[4] & 1) << 32)
        | u64::from(u32::from_be_bytes([
            section[5], section[6], section[7], section[8],
        ]));
    let command = section.get(14..section.len() - 4)?;
    let mut splice = Splice {
        pts: None,
        duration: None,
        event_id: None,
        out_of_network: None,
        section: section.to_vec(),
    };
    match section[13] {
        0x05 => insert(command, &mut splice)?,
        0x06 => splice.pts = splice_time(command)?.0,
        _ => {}
    }
    splice.pts = splice.pts.map(|t| (t + adjustment) & ((1 << 33) - 1));
    Some(splice)
}

/// A splice_insert command.
fn insert(c: &[u8], splice: &mut Splice) -> Option<()> {
    splice.event_id = Some(u32::from_be_bytes(c.get(..4)?.try_into().ok()?));
    if c.get(4)? & 0x80 != 0 {
        // Cancelled: no time, no break.
        return Some(());
    }
    let flags = *c.get(5)?;
    splice.out_of_network = Some(flags & 0x80 != 0);
    let (program, has_duration, immediate) =
        (flags & 0x40 != 0, flags & 0x20 != 0, flags & 0x10 != 0);
    let mut at = 6;
    if program && !immediate {
        let (pts, len) = splice_time(&c[at..])?;
        splice.pts = pts;
        at += len;
    } else if !program {
        // Component splices: each component's tag, then its time.
        let count = usize::from(*c.get(at)?);
        at += 1;
        for _ in 0..count {
            at += 1;
            if !immediate {
                at += splice_time(c.get(at..)?)?.1;
            }
        }
    }
    if has_duration {
        splice.duration = Some(stamp33(c.get(at..at + 5)?));
    }
    Some(())
}

/// A splice_time(): the time if specified, and its length in bytes.
fn splice_time(c: &[u8]) -> Option<(Option<u64>, usize)> {
    if c.first()? & 0x80 == 0 {
        return Some((None, 1));
    }
    Some((Some(stamp33(c.get(..5)?)), 5))
}

/// A 33-bit value in the low bit of the first byte and the next four.
fn stamp33(b: &[u8]) -> u64 {
    (u64::from(b[0] & 1) << 32) | u64::from(u32::from_be_bytes([b[1], b[2], b[3], b[4]]))
}

/// A splice_insert section (for tests here and in tests/): an out-of-network
/// splice at `pts` with a break of `duration`, both 90 kHz.
pub fn build_splice_insert(event_id: u32, pts: u64, duration: u64) -> Vec<u8> {
    let mut command = event_id.to_be_bytes().to_vec();
    command.extend_from_slice(&[0x7f, 0xef]);
    command.push(0xfe | (pts >> 32) as u8);
    command.extend_from_slice(&(pts as u32).to_be_bytes());
    command.push(0xfe | (duration >> 32) as u8);
    command.extend_from_slice(&(duration as u32).to_be_bytes());
    command.extend_from_slice(&[0, 1, 0, 0]);
    let len = 11 + command.len() + 2 + 4;
    let mut s = vec![
        0xfc,
        0x30 | (len >> 8) as u8,
        len as u8,
        0,
        0,
        0,
        0,
        0,
        0,
        0xff,
    ];
    s.extend_from_slice(&[
        0xff,
        0xf0 | (command.len() >> 8) as u8,
        command.len() as u8,
        0x05,
    ]);
    s.extend_from_slice(&command);
    s.extend_from_slice(&[0, 0]);
    let crc = super::psi::crc32(&s);
    s.extend_from_slice(&crc.to_be_bytes());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_splice_insert_and_refuses_damage() {
        let s = build_splice_insert(42, (1 << 33) - 90, 30 * 90_000);
        let splice = parse(&s).unwrap();
        assert_eq!(splice.event_id, Some(42));
        assert_eq!(splice.pts, Some((1 << 33) - 90));
        assert_eq!(splice.duration, Some(30 * 90_000));
        let mut bad = s.clone();
        bad[20] ^= 4;
        assert!(parse(&bad).is_none());
    }
}
