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
//! | 56 | init generation u32 (which `moov`: see `Naming::init_name`) |
//! | 60 | FNV-1a checksum of bytes 0..60, u32 |
//!
//! A record is appended with one `write` after its asset is renamed into
//! place. Records are fixed-size and their sequences consecutive, so the
//! valid part of an index is found from its length in O(log n) reads: the
//! last whole record is checked and, if it is not the record its position
//! promises (checksum, sequence = first sequence + position, fields that do
//! not overflow), a binary search finds the last one that is. What follows
//! (a write caught half-way, garbage, a sparse hole) is the tail: readers
//! ignore it, `verify` reports it and the next writer cuts it off.

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
    /// The asset's initialisation generation: 0 for the first `moov`, one
    /// more at each change of `moov` (indexes older than this field read 0).
    pub init: u32,
}

/// What a run of consecutive records says of the stream: how long it is,
/// its mean asset duration and its mean bitrate (over the fragments, the
/// headers every asset repeats left out).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span {
    /// Never under a millisecond, so rates stay finite.
    pub seconds: f64,
    pub asset_seconds: f64,
    pub bitrate_bps: f64,
}

impl Span {
    pub fn of(records: &[Record], timescale: u32) -> Span {
        let ticks: u64 = records.iter().map(|r| r.duration).sum();
        let seconds = crate::stream::locate::seconds(ticks, timescale).max(1e-3);
        let media: u64 = records.iter().map(|r| r.media_len()).sum();
        Span {
            seconds,
            asset_seconds: seconds / records.len().max(1) as f64,
            bitrate_bps: media as f64 * 8.0 / seconds,
        }
    }
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
            init: 0,
        }
    }

    /// The end of the asset, ticks. Decoded records are known not to
    /// overflow here; saturating keeps any other record from wrapping.
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.duration)
    }

    /// Bytes of fragments in the asset: what its datastamps advance by.
    pub fn media_len(&self) -> u64 {
        self.size.saturating_sub(u64::from(self.header_len))
    }

    /// Whether the record's sums stay in range: a forged start near 2^64
    /// must not wrap the live edge back to 0.
    fn plausible(&self) -> bool {
        self.start.checked_add(self.duration).is_some()
            && self
                .size
                .checked_sub(u64::from(self.header_len))
                .and_then(|media| self.datastamp.checked_add(media))
                .is_some()
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
        out[56..60].copy_from_slice(&self.init.to_be_bytes());
        let sum = fnv1a(&out[..60]);
        out[60..64].copy_from_slice(&sum.to_be_bytes());
        out
    }

    /// `None` when the checksum does not match (a torn or damaged record)
    /// or its fields overflow (a forged one).
    pub fn decode(bytes: &[u8]) -> Option<Record> {
        let bytes: &[u8; RECORD_LEN] = bytes.get(..RECORD_LEN)?.try_into().ok()?;
        let u64_at = |i: usize| u64::from_be_bytes(bytes[i..i + 8].try_into().unwrap_or_default());
        let u32_at = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap_or_default());
        if u32_at(60) != fnv1a(&bytes[..60]) {
            return None;
        }
        let record = Record {
            sequence: u64_at(0),
            start: u64_at(8),
            duration: u64_at(16),
            datastamp: u64_at(24),
            size: u64_at(32),
            header_len: u32_at(40),
            entries: u32_at(44),
            published_us: u64_at(48),
            init: u32_at(56),
        };
        record.plausible().then_some(record)
    }
}

fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

pub(crate) fn encode_header(timescale: u32) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_be_bytes());
    h[12..16].copy_from_slice(&(RECORD_LEN as u32).to_be_bytes());
    h[16..20].copy_from_slice(&timescale.to_be_bytes());
    h
}

pub(crate) fn decode_header(path: &Path, bytes: &[u8]) -> Result<u32> {
    let bad = |reason: String| Error::BadFile {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.len() < HEADER_LEN || &bytes[0..8] != MAGIC {
        return Err(bad("not a backset index (bad magic)".into()));
    }
    let field = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    if field(8) != VERSION {
        return Err(bad(format!(
            "index version {} is not supported by this build (it reads version {VERSION})",
            field(8)
        )));
    }
    if field(12) != RECORD_LEN as u32 {
        return Err(bad(format!(
            "index record size {} is not supported by this build (it reads {RECORD_LEN})",
            field(12)
        )));
    }
    let timescale = field(16);
    if timescale == 0 {
        return Err(bad("index timescale is 0".into()));
    }
    Ok(timescale)
}

/// How many records of `records` (the bytes after the header) are valid:
/// the longest prefix the ends of which are records whose sequence is the
/// first one's plus their position. Reads O(log n) records, never scans.
fn valid_len(records: &[u8]) -> usize {
    let n = records.len() / RECORD_LEN;
    let Some(first) = Record::decode(records) else {
        return 0;
    };
    let fits = |i: usize| in_place(records, first.sequence, i).is_some();
    if fits(n - 1) {
        return n;
    }
    // Invariant: record `lo` fits, record `hi` does not.
    let (mut lo, mut hi) = (0, n - 1);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo + 1
}

/// Record `i` of `records` if it is whole and in its place: its sequence is
/// `base + i`.
fn in_place(records: &[u8], base: u64, i: usize) -> Option<Record> {
    let r = Record::decode(records.get(i.checked_mul(RECORD_LEN)?..)?)?;
    (Some(r.sequence) == base.checked_add(i as u64)).then_some(r)
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
        // A record caught mid-write, or anything after it, is not part of
        // the index.
        let len = valid_len(&map[HEADER_LEN..]);
        Ok(Index {
            map: Some(map),
            timescale,
            len,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// What follows the valid records, as (byte offset, size): a torn
    /// append, garbage or a hole. `None` when the file ends on a record.
    pub fn tail(&self) -> Option<(u64, u64)> {
        let total = self.map.as_ref()?.len();
        let valid = HEADER_LEN + self.len * RECORD_LEN;
        (total > valid).then(|| (valid as u64, (total - valid) as u64))
    }

    /// Record `i`; `None` past the valid part, and for a damaged record or
    /// one out of its place (a sequence other than the first's plus `i`).
    pub(crate) fn get(&self, i: usize) -> Option<Record> {
        if i >= self.len {
            return None;
        }
        let records = &self.map.as_ref()?[HEADER_LEN..];
        let base = Record::decode(records)?.sequence;
        in_place(records, base, i)
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
            crate::stream::store::write_atomically(path, fsync, |f| {
                f.write_all(&encode_header(timescale))
            })?;
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
            init: 0,
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

    /// An index of `n` records from sequence 0, then `tail` appended.
    fn index_with_tail(n: u64, tail: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.bin");
        let (mut w, _) = IndexWriter::open(&path, 1000, false).unwrap();
        for s in 0..n {
            w.append(&record(s)).unwrap();
        }
        drop(w);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(tail).unwrap();
        (dir, path)
    }

    #[test]
    fn a_huge_sparse_tail_is_found_without_a_scan() {
        let (_dir, path) = index_with_tail(5, &[]);
        let valid = (HEADER_LEN + 5 * RECORD_LEN) as u64;
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        // Sparse: no disk is used, and a scan would read 100 GB of zeros.
        f.set_len(valid + (100 << 30)).unwrap();
        // A scan of 100 GB takes minutes; the search takes microseconds.
        // The bound is far from both, so a loaded machine cannot fail it.
        let started = std::time::Instant::now();
        let index = Index::open(&path).unwrap();
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
        assert_eq!(index.len(), 5);
        assert_eq!(index.last(), Some(record(4)));
        assert_eq!(index.tail(), Some((valid, 100 << 30)));
    }

    #[test]
    fn the_valid_part_ends_at_the_last_record_in_its_place() {
        let garbage: Vec<u8> = (0..10 * RECORD_LEN as u32 + 7)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        // Checksums right but the wrong sequences: not this index's records.
        let strangers = [record(40).encode(), record(2).encode()].concat();
        for (tail, why) in [
            (&garbage[..], "garbage"),
            (&strangers[..], "records out of place"),
            (&[0u8; 3 * RECORD_LEN][..], "zeros"),
        ] {
            let (_dir, path) = index_with_tail(7, tail);
            let index = Index::open(&path).unwrap();
            assert_eq!(index.len(), 7, "{why}");
            let valid = (HEADER_LEN + 7 * RECORD_LEN) as u64;
            assert_eq!(index.tail(), Some((valid, tail.len() as u64)), "{why}");
        }
        // A record in its place at the end vouches for the length: damage
        // before it reads as missing records (which `verify` reports as a
        // sequence gap), never as records out of place.
        let then_in_place = [&strangers[..], &record(9).encode()[..]].concat();
        let (_dir, path) = index_with_tail(7, &then_in_place);
        let index = Index::open(&path).unwrap();
        assert_eq!((index.len(), index.tail()), (10, None));
        assert_eq!((index.get(7), index.get(8)), (None, None));
        assert_eq!(index.last(), Some(record(9)));
        let (_dir, path) = index_with_tail(0, &garbage);
        assert_eq!(Index::open(&path).unwrap().len(), 0);
    }

    #[test]
    fn a_forged_record_that_would_wrap_is_damage() {
        let forged = Record {
            start: u64::MAX,
            ..record(3)
        };
        assert_eq!(Record::decode(&forged.encode()), None);
        let huge_data = Record {
            datastamp: u64::MAX - 10,
            ..record(3)
        };
        assert_eq!(Record::decode(&huge_data.encode()), None);
        let (_dir, path) = index_with_tail(3, &forged.encode());
        let index = Index::open(&path).unwrap();
        assert_eq!(index.last(), Some(record(2)), "the live edge stays put");
        assert_eq!(forged.end(), u64::MAX, "saturates rather than wraps");
    }

    #[test]
    fn an_unknown_version_is_refused_by_number() {
        let (_dir, path) = index_with_tail(1, &[]);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[8..12].copy_from_slice(&2u32.to_be_bytes());
        std::fs::write(&path, &bytes).unwrap();
        let e = Index::open(&path).err().unwrap().to_string();
        assert!(
            e.contains("index.bin") && e.contains("index version 2"),
            "{e}"
        );
    }
}
