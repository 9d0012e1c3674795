//! The maps box: an asset's timestamp map and datastamp map, one entry per
//! entry point, stored before the first fragment in a top-level `uuid` box
//! that players skip.
//!
//! Layout (all integers big-endian), version 1:
//!
//! | bytes | field |
//! |---|---|
//! | 4 | box size |
//! | 4 | `uuid` |
//! | 16 | `MAPS_UUID` |
//! | 1 | version (1) |
//! | 3 | flags (0; no flag is defined, and a box with one set is refused) |
//! | 8 | sequence number of the asset |
//! | 4 | timescale of every time below (ticks per second) |
//! | 8 | start: timestamp of the asset's first entry point |
//! | 8 | duration: start of the next asset minus start |
//! | 8 | datastamp of the asset's first fragment |
//! | 4 | entry count N |
//! | 32 × N | entries: timestamp u64, datastamp u64, offset u64 (byte in this file where the entry point's `moof` starts), wall-clock receive time u64 (µs since the Unix epoch) |

use serde::{Deserialize, Serialize};

use crate::capture::framing::{read_header, Claim};

/// The `uuid` extended type of the maps box.
pub(crate) const MAPS_UUID: [u8; 16] = [
    0x62, 0x61, 0x63, 0x6b, 0x73, 0x65, 0x74, 0x2d, 0x9c, 0x3e, 0x4a, 0x1f, 0x8d, 0x52, 0x6e, 0x01,
];
pub(crate) const VERSION: u8 = 1;
const FIXED: usize = 8 + 16 + 4 + 8 + 4 + 8 + 8 + 8 + 4;
const ENTRY: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Presentation time of the key frame since the transmission started.
    pub timestamp: u64,
    /// Bytes of the transmission's fragments before this key frame's fragment.
    pub datastamp: u64,
    /// Where this key frame's `moof` starts in the asset file.
    pub offset: u64,
    /// When its fragment was received, µs since the Unix epoch.
    pub wallclock_us: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Maps {
    pub sequence: u64,
    pub timescale: u32,
    pub start: u64,
    pub duration: u64,
    pub start_datastamp: u64,
    pub entries: Vec<Entry>,
}

impl Maps {
    pub(crate) fn encoded_len(entries: usize) -> usize {
        FIXED + ENTRY * entries
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        let size = Self::encoded_len(self.entries.len()) as u32;
        out.reserve(size as usize);
        out.extend_from_slice(&size.to_be_bytes());
        out.extend_from_slice(b"uuid");
        out.extend_from_slice(&MAPS_UUID);
        out.extend_from_slice(&[VERSION, 0, 0, 0]);
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.timescale.to_be_bytes());
        out.extend_from_slice(&self.start.to_be_bytes());
        out.extend_from_slice(&self.duration.to_be_bytes());
        out.extend_from_slice(&self.start_datastamp.to_be_bytes());
        out.extend_from_slice(&(self.entries.len() as u32).to_be_bytes());
        for e in &self.entries {
            for v in [e.timestamp, e.datastamp, e.offset, e.wallclock_us] {
                out.extend_from_slice(&v.to_be_bytes());
            }
        }
    }

    /// Whether a whole top-level box (header included) is a maps box: a
    /// `uuid` box with a 32-bit size, as the layout above has it.
    pub(crate) fn is_maps_box(bytes: &[u8]) -> bool {
        read_header(bytes).is_some_and(|h| &h.kind == b"uuid" && h.len == 8)
            && bytes.get(8..24) == Some(&MAPS_UUID[..])
    }

    /// Decodes a whole maps box, header included.
    pub fn decode(bytes: &[u8]) -> Result<Maps, String> {
        if !Self::is_maps_box(bytes) {
            return Err("not a backset maps box".into());
        }
        if bytes.len() < FIXED {
            return Err(format!(
                "maps box of {} bytes is shorter than its {FIXED}-byte header",
                bytes.len()
            ));
        }
        let mut r = Reader(&bytes[24..]);
        let word = r.u32();
        let (version, flags) = (word >> 24, word & 0x00ff_ffff);
        if version != u32::from(VERSION) {
            return Err(format!(
                "maps box version {version} is not supported (this build reads {VERSION})"
            ));
        }
        // No flag is defined: one that is set means a writer this build does
        // not know, whose fields it would misread.
        if flags != 0 {
            return Err(format!("maps box flags {flags:#08x} are not defined"));
        }
        let sequence = r.u64();
        let timescale = r.u32();
        let start = r.u64();
        let duration = r.u64();
        let start_datastamp = r.u64();
        let count = r.u32() as usize;
        let declared = read_header(bytes).map(|h| h.size);
        if declared != Some(Claim::Size(bytes.len() as u64))
            || Self::encoded_len(count) != bytes.len()
        {
            return Err(format!(
                "maps box claims {count} entries but holds {} bytes of them",
                bytes.len().saturating_sub(FIXED)
            ));
        }
        let entries = (0..count)
            .map(|_| Entry {
                timestamp: r.u64(),
                datastamp: r.u64(),
                offset: r.u64(),
                wallclock_us: r.u64(),
            })
            .collect();
        Ok(Maps {
            sequence,
            timescale,
            start,
            duration,
            start_datastamp,
            entries,
        })
    }
}

/// Reads fields whose presence the caller has already checked by length.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let n = N.min(self.0.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        out
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.take())
    }
    fn u64(&mut self) -> u64 {
        u64::from_be_bytes(self.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Maps {
        Maps {
            sequence: 7,
            timescale: 12288,
            start: 172_032,
            duration: 24_576,
            start_datastamp: 1_000_000,
            entries: vec![
                Entry {
                    timestamp: 172_032,
                    datastamp: 1_000_000,
                    offset: 1400,
                    wallclock_us: 1_764_000_000_000_000,
                },
                Entry {
                    timestamp: 184_320,
                    datastamp: 1_050_000,
                    offset: 51_400,
                    wallclock_us: 1_764_000_000_500_000,
                },
            ],
        }
    }

    #[test]
    fn round_trips() {
        let m = sample();
        let mut out = Vec::new();
        m.encode(&mut out);
        assert_eq!(out.len(), Maps::encoded_len(2));
        assert!(Maps::is_maps_box(&out));
        assert_eq!(Maps::decode(&out).unwrap(), m);
    }

    #[test]
    fn a_lying_count_is_refused() {
        let mut out = Vec::new();
        sample().encode(&mut out);
        let n = out.len();
        out[n - 4 * 32 - 4 + 3] = 0xff; // entry count's low byte
        assert!(Maps::decode(&out).unwrap_err().contains("claims"));
        assert!(Maps::decode(&out[..30]).is_err());
        out.truncate(40);
        assert!(Maps::decode(&out).is_err());
    }

    /// Found by `fuzz/run.sh maps`: flags were ignored, so a box with a
    /// flag set decoded and re-encoded to other bytes.
    #[test]
    fn flags_that_are_set_are_refused() {
        let mut out = Vec::new();
        sample().encode(&mut out);
        out[25] = 2;
        assert!(Maps::decode(&out).unwrap_err().contains("flags"));
    }
}
