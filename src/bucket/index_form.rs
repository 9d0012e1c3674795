//! The index as object storage can grow it: objects cannot be appended to,
//! and rewriting one index object per asset would cost O(n) per publish.
//!
//! - `index-CCCCCCCC.bin`: chunk C, records C·1024 to C·1024+1023, written
//!   once when full and never changed (cached as immutable).
//! - `index-head.bin`: the records of the chunk being filled, rewritten at
//!   each publish; small (at most 1024 records, 64 KiB).
//!
//! Both have the layout of `index.bin` (a 64-byte header, then 64-byte
//! records), so one decoder reads all three. The head's header also carries,
//! big-endian, at byte 24 the number of the chunk it holds and at byte 32
//! the sequence of record 0 (chunks wholly expired may have been deleted).
//! A record's position i (from record 0) is in chunk i / 1024 at byte
//! 64 + 64·(i mod 1024): a reader finds any record with one ranged read,
//! and a binary search costs O(log n) reads, never a listing.
//!
//! The writer puts a full chunk before the head that moves past it, and an
//! asset before the head that names it.

use std::ops::Range;

use crate::stream::index::{encode_header, Record, HEADER_LEN, MAGIC, RECORD_LEN};

pub const CHUNK_RECORDS: u64 = 1024;
pub const HEAD: &str = "index-head.bin";

pub fn chunk_name(chunk: u64) -> String {
    format!("index-{chunk:08}.bin")
}

/// The head object, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub timescale: u32,
    /// The chunk whose records the head holds.
    pub chunk: u64,
    /// Sequence of the record at position 0.
    pub base: u64,
    pub records: Vec<Record>,
}

/// Where the record at a position is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// In the head, at this index of [`Head::records`].
    Head(usize),
    /// In a chunk object, at this byte range.
    Chunk { name: String, range: Range<u64> },
}

impl Head {
    pub fn empty(timescale: u32, base: u64) -> Head {
        Head {
            timescale,
            chunk: 0,
            base,
            records: Vec::new(),
        }
    }

    /// Records in the index, chunks and head together.
    pub fn count(&self) -> u64 {
        self.chunk * CHUNK_RECORDS + self.records.len() as u64
    }

    pub fn place(&self, position: u64) -> Option<Place> {
        if position >= self.count() {
            return None;
        }
        let chunk = position / CHUNK_RECORDS;
        let at = position % CHUNK_RECORDS;
        if chunk == self.chunk {
            return Some(Place::Head(at as usize));
        }
        let start = HEADER_LEN as u64 + at * RECORD_LEN as u64;
        Some(Place::Chunk {
            name: chunk_name(chunk),
            range: start..start + RECORD_LEN as u64,
        })
    }

    /// Whether `record`, read from position `position`, is the one that
    /// belongs there.
    pub fn in_place(&self, position: u64, record: &Record) -> bool {
        self.base.checked_add(position) == Some(record.sequence)
    }

    /// Adds the next record; when that fills the chunk, returns the chunk
    /// object (name, bytes) to put before the head, and the head moves on
    /// to the next chunk, empty.
    pub fn push(&mut self, record: Record) -> Option<(String, Vec<u8>)> {
        if self.count() == 0 {
            self.base = record.sequence;
        }
        self.records.push(record);
        if (self.records.len() as u64) < CHUNK_RECORDS {
            return None;
        }
        let full = encode_records(self.timescale, &self.records);
        let name = chunk_name(self.chunk);
        self.chunk += 1;
        self.records.clear();
        Some((name, full))
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = encode_records(self.timescale, &self.records);
        out[24..32].copy_from_slice(&self.chunk.to_be_bytes());
        out[32..40].copy_from_slice(&self.base.to_be_bytes());
        out
    }

    /// A head object's bytes; a reason when they are not one. Records that
    /// fail their checksum or are out of place end the valid part, as in
    /// `index.bin`.
    pub fn decode(bytes: &[u8]) -> Result<Head, String> {
        if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
            return Err("not a backset index head (bad magic)".into());
        }
        let timescale = crate::stream::index::decode_header(std::path::Path::new(HEAD), bytes)
            .map_err(|e| e.to_string())?;
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[i..i + 8]);
            u64::from_be_bytes(b)
        };
        let mut head = Head {
            timescale,
            chunk: u64_at(24),
            base: u64_at(32),
            records: Vec::new(),
        };
        // Not under the records' checksums: bounded here so that no
        // position or sequence worked out from them can overflow.
        let end = (head.chunk.checked_add(1))
            .and_then(|c| c.checked_mul(CHUNK_RECORDS))
            .and_then(|records| records.checked_add(head.base));
        if end.is_none_or(|e| e > u64::MAX / 2) {
            return Err(format!(
                "chunk {} from base sequence {} is out of range",
                head.chunk, head.base
            ));
        }
        for (i, raw) in bytes[HEADER_LEN..].chunks_exact(RECORD_LEN).enumerate() {
            let position = head.chunk * CHUNK_RECORDS + i as u64;
            match Record::decode(raw) {
                Some(r) if head.in_place(position, &r) && i < CHUNK_RECORDS as usize => {
                    head.records.push(r)
                }
                _ => break,
            }
        }
        Ok(head)
    }
}

fn encode_records(timescale: u32, records: &[Record]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + records.len() * RECORD_LEN);
    out.extend_from_slice(&encode_header(timescale));
    for r in records {
        out.extend_from_slice(&r.encode());
    }
    out
}

/// Test support: record `sequence` of a synthetic stream (assets of
/// 2000 ticks and 150 bytes).
#[cfg(test)]
pub(crate) fn record(sequence: u64) -> Record {
    Record {
        sequence,
        start: sequence * 2000,
        duration: 2000,
        datastamp: sequence * 100,
        size: 150,
        header_len: 50,
        entries: 1,
        published_us: 1,
        init: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_fill_then_the_head_moves_on_and_every_record_has_one_place() {
        let mut head = Head::empty(1000, 0);
        let mut chunks = Vec::new();
        for s in 7..7 + 2 * CHUNK_RECORDS + 5 {
            chunks.extend(head.push(record(s)));
        }
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[1].0, "index-00000001.bin");
        assert_eq!(
            (head.chunk, head.base, head.count()),
            (2, 7, 2 * CHUNK_RECORDS + 5)
        );
        let back = Head::decode(&head.encode()).unwrap();
        assert_eq!(back, head);
        // Position 1030 is chunk 1, record 6: one ranged read finds it.
        let Some(Place::Chunk { name, range }) = head.place(1030) else {
            panic!("not in a chunk")
        };
        assert_eq!(name, chunks[1].0);
        let bytes = &chunks[1].1[range.start as usize..range.end as usize];
        let r = Record::decode(bytes).unwrap();
        assert!(head.in_place(1030, &r));
        assert_eq!(r.sequence, 7 + 1030);
        assert_eq!(head.place(2 * CHUNK_RECORDS + 4), Some(Place::Head(4)));
        assert_eq!(head.place(2 * CHUNK_RECORDS + 5), None);
    }

    #[test]
    fn a_damaged_head_keeps_its_valid_records_and_garbage_is_refused() {
        let mut head = Head::empty(90000, 0);
        for s in 0..3 {
            head.push(record(s));
        }
        let mut bytes = head.encode();
        let last = bytes.len() - 3;
        bytes[last] ^= 0xff;
        assert_eq!(Head::decode(&bytes).unwrap().records.len(), 2);
        assert!(Head::decode(b"not an index at all, not even close to one; no").is_err());
    }
}
