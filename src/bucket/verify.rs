//! `verify` on an object store: the checks of a local directory
//! ([`crate::stream::verify`]: each asset against its record and its own
//! maps, the records against each other, stray asset files), fed from the
//! store. The index is read whole here (the head and every chunk), each
//! retained asset is fetched whole, its `<asset>.maps` object is compared
//! with the maps box inside it, and the prefix is listed once, for objects
//! the index does not account for. Problems name objects as a local report
//! names files, relative to the stream directory.

use std::collections::BTreeSet;
use std::path::Path;

use crate::bucket::client::Bucket;
use crate::bucket::index_form::{chunk_name, Head, Place, CHUNK_RECORDS, HEAD};
use crate::bucket::stream_reader::BucketStream;
use crate::stream::index::{decode_header, Record, HEADER_LEN, RECORD_LEN};
use crate::stream::maps_reader::Layout;
use crate::stream::verify::{check_asset, index_problems, stray, Problem, Report, Stray};
use crate::Result;

/// What verify found so far.
#[derive(Default)]
struct Findings {
    problems: Vec<Problem>,
    notes: Vec<Problem>,
}

impl Findings {
    fn problem(&mut self, file: &str, offset: Option<u64>, text: impl Into<String>) {
        self.problems.push(Problem::new(file, offset, text.into()));
    }
}

/// Checks the stream directory at `bucket`'s location. `progress(done,
/// total)` is called as assets are checked.
pub fn verify_bucket(bucket: Bucket, progress: &mut dyn FnMut(u64, u64)) -> Result<Report> {
    let stream = BucketStream::open(bucket)?;
    let mut found = Findings::default();
    let records = read_index(&stream, &mut found)?;
    for pair in records.windows(2) {
        let ((_, a), (position, b)) = (pair[0], pair[1]);
        for p in index_problems(&[a, b]) {
            found.problem(&object_of(&stream.head, position), None, p.problem);
        }
    }
    let first = stream.descriptor.first_sequence;
    let retained: Vec<Record> = records
        .iter()
        .map(|&(_, r)| r)
        .filter(|r| r.sequence >= first)
        .collect();
    check_assets(&stream, &retained, &mut found, progress)?;
    check_listing(&stream, &retained, &mut found)?;
    Ok(Report {
        ok: found.problems.is_empty(),
        assets_checked: retained.len() as u64,
        problems: found.problems,
        notes: found.notes,
    })
}

/// The object that holds the record at `position`.
fn object_of(head: &Head, position: u64) -> String {
    match head.place(position) {
        Some(Place::Chunk { name, .. }) => name,
        _ => HEAD.to_string(),
    }
}

/// Every record of the index with its position, chunks then head. A chunk
/// missing wholly before the retained window is retention's doing; any
/// other missing, short or damaged chunk is a problem, its valid records
/// kept.
fn read_index(stream: &BucketStream, found: &mut Findings) -> Result<Vec<(u64, Record)>> {
    let head = &stream.head;
    let first = stream.first() as u64;
    let mut records = Vec::new();
    // Retention deletes chunks wholly before the window, oldest first:
    // after a run of them missing, reading goes on from the window. A run
    // of missing ones in the window ends the reading, so a head that
    // counts more chunks than there are costs a few requests, not one per
    // chunk it claims.
    let (mut missing, mut gone) = (0, 0);
    let mut chunk = 0;
    while chunk < head.chunk {
        let name = chunk_name(chunk);
        let start = chunk * CHUNK_RECORDS;
        match stream.bucket().get(&name)? {
            Some(bytes) => {
                missing = 0;
                records.extend(chunk_records(head, &name, start, &bytes, found))
            }
            None if start + CHUNK_RECORDS <= first => {
                gone += 1;
                if gone == 64 {
                    chunk = chunk.max(first / CHUNK_RECORDS);
                    continue;
                }
            }
            None => {
                let why = format!(
                    "missing, yet the index head counts {} records",
                    head.count()
                );
                found.problem(&name, None, why);
                missing += 1;
                if missing == 8 && chunk + 1 < head.chunk {
                    let why = format!(
                        "8 chunks missing in a row: the chunks after {name}, up to chunk {}, were not read",
                        head.chunk - 1
                    );
                    found.problem(HEAD, None, why);
                    break;
                }
            }
        }
        chunk += 1;
    }
    let start = head.chunk * CHUNK_RECORDS;
    records.extend((start..).zip(head.records.iter().copied()));
    head_tail(stream, found)?;
    Ok(records)
}

/// The records of chunk `name`, whose first is at position `start`.
fn chunk_records(
    head: &Head,
    name: &str,
    start: u64,
    bytes: &[u8],
    found: &mut Findings,
) -> Vec<(u64, Record)> {
    if let Err(e) = decode_header(Path::new(name), bytes) {
        found.problem(name, Some(0), e.to_string());
        return Vec::new();
    }
    let body = &bytes[HEADER_LEN..];
    let mut records = Vec::new();
    let within = body.chunks_exact(RECORD_LEN).take(CHUNK_RECORDS as usize);
    for (i, raw) in within.enumerate() {
        let position = start + i as u64;
        match Record::decode(raw).filter(|r| head.in_place(position, r)) {
            Some(r) => records.push((position, r)),
            None => found.problem(
                name,
                Some((HEADER_LEN + i * RECORD_LEN) as u64),
                format!("record {position} is damaged or out of place"),
            ),
        }
    }
    if body.len() as u64 != CHUNK_RECORDS * RECORD_LEN as u64 {
        found.problem(
            name,
            None,
            format!(
                "{} bytes of records: a chunk holds exactly {CHUNK_RECORDS} records of {RECORD_LEN} bytes",
                body.len()
            ),
        );
    }
    records
}

/// Bytes after the head's valid records: the head is put whole, never
/// appended to, so anything there is damage.
fn head_tail(stream: &BucketStream, found: &mut Findings) -> Result<()> {
    let Some(bytes) = stream.bucket().get(HEAD)? else {
        return Ok(());
    };
    let valid = HEADER_LEN + stream.head.records.len() * RECORD_LEN;
    if bytes.len() > valid {
        found.problem(
            HEAD,
            Some(valid as u64),
            format!(
                "{} bytes after the last valid record: damaged or out-of-place records",
                bytes.len() - valid
            ),
        );
    }
    Ok(())
}

/// Each retained asset object against its record, and its `.maps` object
/// against the maps box inside it.
fn check_assets(
    stream: &BucketStream,
    retained: &[Record],
    found: &mut Findings,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<()> {
    let total = retained.len() as u64;
    for (done, record) in retained.iter().enumerate() {
        let name = stream.naming.name(record.sequence);
        match stream.bucket().get(&name)? {
            Some(bytes) => {
                for (offset, problem) in check_asset(&bytes, record) {
                    found.problem(&name, offset, problem);
                }
                check_maps_object(stream, record.sequence, &bytes, found)?;
            }
            None => found.problem(&name, None, "listed in the index but missing"),
        }
        progress(done as u64 + 1, total);
    }
    Ok(())
}

/// `<asset>.maps` holds the same bytes as the asset's maps box.
fn check_maps_object(
    stream: &BucketStream,
    sequence: u64,
    asset: &[u8],
    found: &mut Findings,
) -> Result<()> {
    let name = stream.naming.maps_name(sequence);
    let Some(maps) = stream.bucket().get(&name)? else {
        found.problem(
            &name,
            None,
            "missing: segment writes each asset's maps beside it",
        );
        return Ok(());
    };
    // An asset without a maps box is reported by `check_asset` already.
    let Some(range) = Layout::of(asset).maps else {
        return Ok(());
    };
    if asset[range] != maps[..] {
        found.problem(
            &name,
            None,
            format!(
                "differs from the maps box of {}",
                stream.naming.name(sequence)
            ),
        );
    }
    Ok(())
}

/// One listing of the prefix: asset objects the index does not list as
/// retained (as a local verify reports files), and index chunks beyond the
/// head.
fn check_listing(stream: &BucketStream, retained: &[Record], found: &mut Findings) -> Result<()> {
    let listed: BTreeSet<u64> = retained.iter().map(|r| r.sequence).collect();
    let head = &stream.head;
    let next = head.base.saturating_add(head.count());
    let d = &stream.descriptor;
    let kept_after_expiry = match d.ended || head.count() == 0 {
        true => 0..0,
        false => head.base..d.first_sequence,
    };
    for (name, _) in stream.bucket().list()? {
        if let Some(chunk) = chunk_number(&name) {
            chunk_beyond_head(head, chunk, &name, found);
            continue;
        }
        let Some(sequence) = stream.naming.sequence_of(&name) else {
            continue;
        };
        if let Some(s) = stray(sequence, next, &listed, kept_after_expiry.clone()) {
            let (problem, text) = s.said();
            let list = match problem {
                true => &mut found.problems,
                false => &mut found.notes,
            };
            list.push(Problem::new(&name, None, text.into()));
        }
    }
    Ok(())
}

/// The chunk an `index-CCCCCCCC.bin` object holds, if `name` is one.
fn chunk_number(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("index-")?.strip_suffix(".bin")?;
    let n = digits.parse().ok()?;
    (chunk_name(n) == name && digits.bytes().all(|b| b.is_ascii_digit())).then_some(n)
}

/// A chunk the head does not count yet: the next one is a publish caught
/// between the chunk's put and the head's; any later one does not belong.
fn chunk_beyond_head(head: &Head, chunk: u64, name: &str, found: &mut Findings) {
    if chunk < head.chunk {
        return;
    }
    if chunk == head.chunk {
        let (_, text) = Stray::Publishing.said();
        found.notes.push(Problem::new(name, None, text.into()));
    } else {
        found.problem(
            name,
            None,
            format!(
                "an index chunk beyond the head (which is at chunk {})",
                head.chunk
            ),
        );
    }
}
