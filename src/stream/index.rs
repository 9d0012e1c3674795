//! The directory's index: one fixed-size record per published asset,
//! append-only, so a reader can memory-map it and binary-search it.
//!
//! File layout: a 64-byte header (`BKSTIDX1`, version u32, record size u32,
//! timescale u32, zeros), then 64-byte records, big-endian:
//!
//! | offset | field |
//! |---|---|
//! | 0 | sequence u64 |
//! | 8 | start timestamp u64 (ticks of the header's timescale) |
//! | 16 | duration u64 (ticks) |
//! | 24 | start datastamp u64 |
//! | 32 | asset file size u64 |
//! | 40 | header length u32 (bytes before the first `moof`) |
//! | 44 | entry-point count u32 |
//! | 48 | wall-clock publish time u64 (µs since the Unix epoch) |
//! | 56 | reserved u32 (0) |
//! | 60 | FNV-1a checksum of bytes 0..60, u32 |
//!
//! A record is appended with one `write` after its asset is renamed into
//! place; a reader that meets a record whose checksum does not match (a
//! write caught half-way) stops before it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::capture::asset::FinishedAsset;
use crate::{Error, Result};

pub const MAGIC: &[u8; 8] = b"BKSTIDX1";
pub const HEADER_LEN: usize = 64;
pub const RECORD_LEN: usize = 64;
const VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub sequence: u64,
    pub start: u64,
    pub duration: u64,
    pub datastamp: u64,
    pub size: u64,
    pub header_len: u32,
    pub entries: u32,
    pub published_us: u64,
}

impl Record {
    /// The record of a finished asset published at `published_us`.
    pub(crate) fn of(asset: &FinishedAsset, published_us: u64) -> Record {
        Record {
            sequence: asset.maps.sequence,
            start: asset.maps.start,
            duration: asset.maps.duration,
            datastamp: asset.maps.start_datastamp,
            size: asset.size(),
            header_len: asset.header.len() as u32,
            entries: asset.maps.entries.len() as u32,
            published_us,
        }
    }

    pub fn end(&self) -> u64 {
        self.start + self.duration
    }

    /// Bytes of fragments in the asset: what its datastamps advance by.
    pub fn media_len(&self) -> u64 {
        self.size - u64::from(self.header_len)
    }

    pub fn encode(&self) -> [u8; RECORD_LEN] {
        let mut out = [0u8; RECORD_LEN];
        out[0..8].copy_from_slice(&self.sequence.to_be_bytes());
        out[8..16].copy_from_slice(&self.start.to_be_bytes());
        out[16..24].copy_from_slice(&self.duration.to_be_bytes());
        out[24..32].copy_from_slice(&self.datastamp.to_be_bytes());
        out[32..40].copy_from_slice(&self.size.to_be_bytes());
        out[40..44].copy_from_slice(&self.header_len.to_be_bytes());
        out[44..48].copy_from_slice(&self.entries.to_be_bytes());
        out[48..56].copy_from_slice(&self.published_us.to_be_bytes());
        let sum = fnv1a(&out[..60]);
        out[60..64].copy_from_slice(&sum.to_be_bytes());
        out
    }

    /// `None` when the checksum does not match (a torn or damaged record).
    pub fn decode(bytes: &[u8]) -> Option<Record> {
        let bytes: &[u8; RECORD_LEN] = bytes.get(..RECORD_LEN)?.try_into().ok()?;
        let u64_at = |i: usize| u64::from_be_bytes(bytes[i..i + 8].try_into().unwrap_or_default());
        let u32_at = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap_or_default());
        if u32_at(60) != fnv1a(&bytes[..60]) {
            return None;
        }
        Some(Record {
            sequence: u64_at(0),
            start: u64_at(8),
            duration: u64_at(16),
            datastamp: u64_at(24),
            size: u64_at(32),
            header_len: u32_at(40),
            entries: u32_at(44),
            published_us: u64_at(48),
        })
    }
}

fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

fn encode_header(timescale: u32) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_be_bytes());
    h[12..16].copy_from_slice(&(RECORD_LEN as u32).to_be_bytes());
    h[16..20].copy_from_slice(&timescale.to_be_bytes());
    h
}

fn decode_header(path: &Path, bytes: &[u8]) -> Result<u32> {
    let bad = |reason: &str| Error::BadFile {
        path: path.to_path_buf(),
        reason: reason.into(),
    };
    if bytes.len() < HEADER_LEN || &bytes[0..8] != MAGIC {
        return Err(bad("not a backset index (bad magic)"));
    }
    let field = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    if field(8) != VERSION || field(12) != RECORD_LEN as u32 {
        return Err(bad(
            "index version or record size not supported by this build",
        ));
    }
    let timescale = field(16);
    if timescale == 0 {
        return Err(bad("index timescale is 0"));
    }
    Ok(timescale)
}

/// A read-only, memory-mapped view of an index.
pub struct Index {
    map: Option<memmap2::Mmap>,
    pub timescale: u32,
    len: usize,
}

impl Index {
    pub fn open(path: &Path) -> Result<Index> {
        let file = File::open(path).map_err(Error::io(path))?;
        // SAFETY: the index is only ever appended to; bytes already written
        // never change under the map, and the length is fixed at map time.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(Error::io(path))?;
        let timescale = decode_header(path, &map)?;
        let mut len = (map.len() - HEADER_LEN) / RECORD_LEN;
        // A record caught mid-write is not part of the index yet.
        while len > 0 && Record::decode(&map[HEADER_LEN + (len - 1) * RECORD_LEN..]).is_none() {
            len -= 1;
        }
        Ok(Index {
            map: Some(map),
            timescale,
            len,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn get(&self, i: usize) -> Option<Record> {
        if i >= self.len {
            return None;
        }
        let map = self.map.as_ref()?;
        Record::decode(&map[HEADER_LEN + i * RECORD_LEN..])
    }

    pub fn last(&self) -> Option<Record> {
        self.len.checked_sub(1).and_then(|i| self.get(i))
    }

    pub fn iter(&self) -> impl Iterator<Item = Option<Record>> + '_ {
        (0..self.len).map(|i| self.get(i))
    }
}

/// Appends records; opening repairs a tail left by a crash mid-append.
pub(crate) struct IndexWriter {
    file: File,
    path: PathBuf,
    fsync: bool,
}

impl IndexWriter {
    /// Opens an index, creating it with `timescale` if there is none (an
    /// existing index keeps its own). Returns the writer and the last record.
    pub(crate) fn open(
        path: &Path,
        timescale: u32,
        fsync: bool,
    ) -> Result<(IndexWriter, Option<Record>)> {
        let io = Error::io(path);
        if !path.exists() {
            let tmp = path.with_extension("partial");
            std::fs::write(&tmp, encode_header(timescale)).map_err(Error::io(&tmp))?;
            std::fs::rename(&tmp, path).map_err(Error::io(path))?;
        }
        let (last, valid_len) = {
            let index = Index::open(path)?;
            (index.last(), HEADER_LEN + index.len() * RECORD_LEN)
        };
        let file = OpenOptions::new().append(true).open(path).map_err(io)?;
        // Drop a torn tail so the next record lands on a record boundary.
        if file.metadata().map_err(Error::io(path))?.len() != valid_len as u64 {
            file.set_len(valid_len as u64).map_err(Error::io(path))?;
        }
        Ok((
            IndexWriter {
                file,
                path: path.to_path_buf(),
                fsync,
            },
            last,
        ))
    }

    pub(crate) fn append(&mut self, record: &Record) -> Result<()> {
        self.file
            .write_all(&record.encode())
            .map_err(Error::io(&self.path))?;
        if self.fsync {
            self.file.sync_data().map_err(Error::io(&self.path))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(sequence: u64) -> Record {
        Record {
            sequence,
            start: sequence * 2000,
            duration: 2000,
            datastamp: sequence * 50_000,
            size: 51_000,
            header_len: 1000,
            entries: 1,
            published_us: 1_764_000_000_000_000 + sequence,
        }
    }

    #[test]
    fn records_round_trip_and_torn_ones_are_refused() {
        let r = record(5);
        let bytes = r.encode();
        assert_eq!(Record::decode(&bytes), Some(r));
        let mut torn = bytes;
        torn[20] ^= 1;
        assert_eq!(Record::decode(&torn), None);
        assert_eq!(Record::decode(&bytes[..10]), None);
    }

    #[test]
    fn an_index_appends_and_survives_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index");
        let (mut w, last) = IndexWriter::open(&path, 1000, false).unwrap();
        assert_eq!(last, None);
        for s in 0..3 {
            w.append(&record(s)).unwrap();
        }
        drop(w);
        // A crash half-way through a fourth append.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&record(3).encode()[..30]).unwrap();
        drop(f);

        let index = Index::open(&path).unwrap();
        assert_eq!(index.len(), 3);
        assert_eq!(index.timescale, 1000);
        assert_eq!(index.last(), Some(record(2)));

        let (mut w, last) = IndexWriter::open(&path, 7, false).unwrap();
        assert_eq!(last, Some(record(2)));
        w.append(&record(3)).unwrap();
        let index = Index::open(&path).unwrap();
        assert_eq!(index.timescale, 1000, "the existing header kept");
        assert_eq!(index.get(3), Some(record(3)));
    }
}
