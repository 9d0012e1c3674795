//! A stream directory on an object store, opened for reading: what `locate`
//! reads of it. `stream.json` and `index-head.bin` are read once, when it is
//! opened; a record outside the head costs one ranged GET of its chunk and
//! an asset's maps one GET of `<asset>.maps` (the object `segment` writes
//! beside each asset), so a binary search over the index takes O(log n)
//! small reads and never a listing. The search itself is the one local
//! directories use, [`crate::stream::locate`], over this [`Source`].

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::PathBuf;

use crate::bucket::client::Bucket;
use crate::bucket::index_form::{Head, Place, HEAD};
use crate::capture::maps::Maps;
use crate::stream::descriptor::{self, Descriptor};
use crate::stream::index::Record;
use crate::stream::locate::{self, Answer, LocateError, Source, Target};
use crate::stream::naming::Naming;
use crate::{Error, Result};

pub struct BucketStream {
    bucket: Bucket,
    pub descriptor: Descriptor,
    pub naming: Naming,
    pub head: Head,
    /// GETs made since the stream was opened (head and descriptor left out).
    reads: Cell<u64>,
    /// Records read from chunks, by position: chunks never change.
    records: RefCell<HashMap<u64, Record>>,
    /// The first failure of the store met inside a search, which the
    /// [`Source`] interface cannot return; [`BucketStream::locate`] does.
    failure: RefCell<Option<Error>>,
}

/// An error about the object `name` of `bucket`, named by its URL.
pub(crate) fn bad_object(bucket: &Bucket, name: &str, reason: impl Into<String>) -> Error {
    Error::BadFile {
        path: PathBuf::from(bucket.location().url_of(name)),
        reason: reason.into(),
    }
}

impl BucketStream {
    /// Reads the descriptor and the index head; a prefix without
    /// `stream.json` is not a stream directory.
    pub fn open(bucket: Bucket) -> Result<BucketStream> {
        let descriptor = read_descriptor(&bucket)?.ok_or_else(|| {
            bad_object(
                &bucket,
                descriptor::FILE,
                "no stream.json: not a backset stream directory",
            )
        })?;
        let head = read_head(&bucket, descriptor.timescale)?;
        Ok(BucketStream {
            naming: Naming::new(&descriptor.prefix),
            descriptor,
            head,
            bucket,
            reads: Cell::new(0),
            records: RefCell::new(HashMap::new()),
            failure: RefCell::new(None),
        })
    }

    pub fn bucket(&self) -> &Bucket {
        &self.bucket
    }

    /// `s3://bucket/prefix/name` of one of the stream's objects.
    pub fn url_of(&self, name: &str) -> String {
        self.bucket.location().url_of(name)
    }

    /// GETs made for records and maps since the stream was opened.
    pub fn reads(&self) -> u64 {
        self.reads.get()
    }

    /// Index position of the oldest retained asset.
    pub(crate) fn first(&self) -> usize {
        let first = self
            .descriptor
            .first_sequence
            .saturating_sub(self.head.base);
        usize::try_from(first).unwrap_or(usize::MAX)
    }

    /// Resolves `target` as a local directory's `locate` does. The outer
    /// error is the store's (unreachable, an index chunk missing or
    /// damaged); the inner result is the answer or why there is none.
    pub fn locate(&self, target: Target, clamp: bool) -> Result<Result<Answer, LocateError>> {
        let answer = locate::locate(self, self.first(), self.head.timescale, target, clamp);
        match self.failure.borrow_mut().take() {
            Some(e) => Err(e),
            None => Ok(answer),
        }
    }

    /// Seconds of transmission time.
    pub fn seconds(&self, ticks: u64) -> f64 {
        locate::seconds(ticks, self.head.timescale)
    }

    /// Record `position`, read from its chunk; `Err` when the store failed
    /// or the chunk does not hold it. A chunk missing before the retained
    /// window is retention's doing: no record, no failure.
    fn chunk_record(
        &self,
        position: u64,
        name: &str,
        range: std::ops::Range<u64>,
    ) -> Result<Option<Record>> {
        self.reads.set(self.reads.get() + 1);
        let Some(bytes) = self.bucket.get_range(name, range)? else {
            if position < self.first() as u64 {
                return Ok(None);
            }
            return Err(bad_object(
                &self.bucket,
                name,
                format!(
                    "missing, yet the index head counts {} records",
                    self.head.count()
                ),
            ));
        };
        match Record::decode(&bytes).filter(|r| self.head.in_place(position, r)) {
            Some(r) => Ok(Some(r)),
            None => Err(bad_object(
                &self.bucket,
                name,
                format!("record {position} is damaged or out of place"),
            )),
        }
    }
}

impl Source for BucketStream {
    fn count(&self) -> usize {
        usize::try_from(self.head.count()).unwrap_or(usize::MAX)
    }

    fn record(&self, i: usize) -> Option<Record> {
        let position = i as u64;
        match self.head.place(position)? {
            Place::Head(at) => self.head.records.get(at).copied(),
            Place::Chunk { name, range } => {
                if let Some(r) = self.records.borrow().get(&position) {
                    return Some(*r);
                }
                match self.chunk_record(position, &name, range) {
                    Ok(r) => {
                        if let Some(r) = r {
                            self.records.borrow_mut().insert(position, r);
                        }
                        r
                    }
                    Err(e) => {
                        self.failure.borrow_mut().get_or_insert(e);
                        None
                    }
                }
            }
        }
    }

    fn maps(&self, record: &Record) -> Result<Maps, String> {
        let name = self.naming.maps_name(record.sequence);
        self.reads.set(self.reads.get() + 1);
        let url = self.url_of(&name);
        match self.bucket.get(&name) {
            Ok(Some(bytes)) => Maps::decode(&bytes).map_err(|e| format!("{url}: {e}")),
            Ok(None) => Err(format!("{url}: missing")),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// The store's `stream.json`, `None` when there is none; read by the rules
/// of a local one ([`Descriptor::parse`]).
pub fn read_descriptor(bucket: &Bucket) -> Result<Option<Descriptor>> {
    let Some(bytes) = bucket.get(descriptor::FILE)? else {
        return Ok(None);
    };
    let path = PathBuf::from(bucket.location().url_of(descriptor::FILE));
    Descriptor::parse(&path, &bytes).map(Some)
}

/// The index head; a stream whose first asset is not published yet may
/// have none, which reads as an empty index of the descriptor's `timescale`.
pub fn read_head(bucket: &Bucket, timescale: u32) -> Result<Head> {
    Ok(read_stored_head(bucket)?.unwrap_or_else(|| Head::empty(timescale, 0)))
}

/// The index head as the store has it, `None` when there is none.
pub fn read_stored_head(bucket: &Bucket) -> Result<Option<Head>> {
    match bucket.get(HEAD)? {
        Some(bytes) => Head::decode(&bytes)
            .map(Some)
            .map_err(|reason| bad_object(bucket, HEAD, reason)),
        None => Ok(None),
    }
}
