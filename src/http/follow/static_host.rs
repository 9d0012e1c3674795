//! Following from a static host: a plain file server or CDN serving the
//! stream directory's files, with no `backset serve` to answer
//! `/backset.json` or `/locate`. The machine reads what `serve` would have
//! read, over HTTP: `stream.json`, then `index.bin` by ranged GETs (its
//! 64-byte header and first record, then single 64-byte records), then the
//! maps of the assets `locate` looks into (`<asset>.maps`). From those it
//! makes the parameters and the entry point itself, with the same code
//! `serve` runs: [`crate::policy::advise::advise`] and
//! [`crate::stream::locate`].
//!
//! An object store (or a CDN or nginx in front of one) has no `index.bin`:
//! the index is a small head object, `index-head.bin`, and immutable chunks
//! of 1024 records (`crate::bucket::index_form`, which alone says where a
//! record is). When `index.bin` is not found, or `stream.json` names the
//! head as its index, the head is read whole (it counts the records and
//! holds the newest) and any other record by a ranged GET of its chunk: the
//! same O(log n) reads. Re-reading the head learns of newer records, as
//! re-reading `index.bin`'s length does. A build without the `store`
//! feature reads `index.bin` alone.
//!
//! Sans-IO by replay: a [`View`] holds what has been fetched so far; the
//! computations run over it and, at the first record or maps they lack,
//! stop and name it ([`Need`]). The machine fetches it and runs them again.
//! Each run goes one step further, so finding the end of the index (the
//! last record in its place, past any torn tail) and then the entry point
//! take O(log n) ranged GETs, never the whole index.
//!
//! The parameters: a static host knows nothing of its audience, so the
//! advice is the policy's for one viewer with no facts (as `backset advise`
//! gives with its defaults) over the stream's own retained window, mean
//! asset duration and bitrate (from the window's first and last records:
//! their timestamps and datastamps span it), and, once the probe has
//! measured it, this viewer's own throughput, as `serve` would advise it.

use std::cell::Cell;
use std::collections::HashMap;

use super::protocol::Request;
#[cfg(feature = "store")]
use crate::bucket::index_form::{Head, Place, CHUNK_RECORDS, HEAD};
use crate::capture::maps::Maps;
use crate::http::api::{AudienceFacts, Params, ViewerFacts};
use crate::policy::advise::{advise, Audience};
use crate::stream::descriptor::Descriptor;
use crate::stream::index::{decode_header, Record, HEADER_LEN, RECORD_LEN};
use crate::stream::locate::{self, seconds, Answer, LocateError, Source, Target};
use crate::stream::naming::Naming;
use crate::stream::store::INDEX_FILE;

/// What a computation over a [`View`] lacks: fetch it and run it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Need {
    /// Record at this position of the index.
    Record(u64),
    /// The maps of the asset of this record.
    Maps(Record),
}

/// How the host keeps the index.
#[derive(Debug)]
enum Form {
    /// `index.bin`, read by range: this many whole records by its length
    /// (the valid ones and any torn tail).
    File { whole: u64 },
    /// Object storage's form (`crate::bucket::index_form`): the head
    /// object, read whole, holds the newest records; the others are in
    /// immutable chunks, read by range. Every record it counts is valid.
    #[cfg(feature = "store")]
    Chunked(Head),
}

/// What the static host's files said so far.
#[derive(Debug)]
pub(super) struct View {
    pub timescale: u32,
    form: Form,
    /// The sequence of the record at position 0; `None` when the index
    /// holds none yet (or a damaged one).
    base: Option<u64>,
    /// Records fetched by position; `None`: torn, damaged or out of place.
    records: HashMap<u64, Option<Record>>,
    maps: HashMap<u64, Maps>,
    /// How many records are valid, once known ([`View::count`]).
    len: Option<u64>,
    /// The first thing a run of `locate` lacked.
    need: Cell<Option<Need>>,
}

impl View {
    /// The view from the first bytes of `index.bin` and its length.
    pub fn from_head(head: &[u8], size: u64) -> Result<View, String> {
        let timescale =
            decode_header(std::path::Path::new(INDEX_FILE), head).map_err(|e| e.to_string())?;
        let whole = size.saturating_sub(HEADER_LEN as u64) / RECORD_LEN as u64;
        let first = head.get(HEADER_LEN..).and_then(Record::decode);
        Ok(View {
            timescale,
            form: Form::File { whole },
            base: first.map(|r| r.sequence),
            records: first.map(|r| (0, Some(r))).into_iter().collect(),
            maps: HashMap::new(),
            len: None,
            need: Cell::new(None),
        })
    }

    /// The view from the head object of the index in object storage's
    /// form: it says how many records there are, and holds the newest.
    #[cfg(feature = "store")]
    pub fn from_store_head(bytes: &[u8]) -> Result<View, String> {
        let head = Head::decode(bytes)?;
        let count = head.count();
        Ok(View {
            timescale: head.timescale,
            base: (count > 0).then_some(head.base),
            form: Form::Chunked(head),
            records: HashMap::new(),
            maps: HashMap::new(),
            len: Some(count),
            need: Cell::new(None),
        })
    }

    /// Without the `store` feature this build reads `index.bin` alone.
    #[cfg(not(feature = "store"))]
    pub fn from_store_head(_: &[u8]) -> Result<View, String> {
        Err("this build reads no object storage index (feature `store`)".into())
    }

    /// The index's name, for what is said of it.
    fn name(&self) -> &'static str {
        match self.form {
            Form::File { .. } => INDEX_FILE,
            #[cfg(feature = "store")]
            Form::Chunked(_) => HEAD,
        }
    }

    /// A fresh head of the same index keeps what was fetched of it: valid
    /// records never change, an index only grows. What read as torn may
    /// have been completed since, so it is asked again. The records an
    /// older store head held are kept too: they are in a chunk by now.
    pub fn refresh(&mut self, newer: View) {
        let same = self.base.is_some()
            && self.base == newer.base
            && self.timescale == newer.timescale
            && match (&self.form, &newer.form) {
                (Form::File { .. }, Form::File { .. }) => {
                    self.records.get(&0) == newer.records.get(&0)
                }
                #[cfg(feature = "store")]
                (Form::Chunked(old), Form::Chunked(new)) => old.chunk <= new.chunk,
                #[cfg(feature = "store")]
                _ => false,
            };
        let (mut records, maps) = if same {
            self.records.retain(|_, r| r.is_some());
            (
                std::mem::take(&mut self.records),
                std::mem::take(&mut self.maps),
            )
        } else {
            Default::default()
        };
        #[cfg(feature = "store")]
        if let (true, Form::Chunked(old)) = (same, &self.form) {
            let from = old.chunk * CHUNK_RECORDS;
            records.extend((from..).zip(old.records.iter().map(|r| Some(*r))));
        }
        records.extend(newer.records);
        *self = View {
            records,
            maps,
            ..newer
        };
    }

    /// A fetched record: its bytes, decoded if whole and undamaged.
    pub fn add_record(&mut self, position: u64, bytes: &[u8]) {
        self.records.insert(position, Record::decode(bytes));
    }

    pub fn add_maps(&mut self, maps: Maps) {
        self.maps.insert(maps.sequence, maps);
    }

    fn get(&self, position: u64) -> Result<Option<Record>, Need> {
        if let Some(record) = self.records.get(&position) {
            return Ok(*record);
        }
        match &self.form {
            Form::File { .. } => Err(Need::Record(position)),
            #[cfg(feature = "store")]
            Form::Chunked(head) => match head.place(position) {
                Some(Place::Head(i)) => Ok(head.records.get(i).copied()),
                Some(Place::Chunk { .. }) => Err(Need::Record(position)),
                None => Ok(None),
            },
        }
    }

    /// The request that reads the record at `position`, which
    /// [`View::get`] lacked: a range of `index.bin`, or of the chunk
    /// object the store form keeps it in.
    pub fn record_request(&self, position: u64) -> Result<Request, String> {
        match &self.form {
            Form::File { .. } => Ok(Request::Record { position }),
            #[cfg(feature = "store")]
            Form::Chunked(head) => match head.place(position) {
                Some(Place::Chunk { name, range }) => Ok(Request::ChunkRecord {
                    name,
                    position,
                    range,
                }),
                _ => Err(format!("record {position} is in no chunk")),
            },
        }
    }

    /// Whether record `position` is whole and in its place (its sequence
    /// the first's plus its position), as `index.bin`'s readers check.
    fn fits(&self, base: u64, position: u64) -> Result<bool, Need> {
        Ok(self
            .get(position)?
            .is_some_and(|r| Some(r.sequence) == base.checked_add(position)))
    }

    /// How many records are valid. In `index.bin`: all whole ones if the
    /// last is in its place, else (a torn or damaged tail) a binary search
    /// for the last one that is, as [`crate::stream::index`] does on a
    /// file. The store form says it in its head.
    pub fn count(&mut self) -> Result<u64, Need> {
        if let Some(len) = self.len {
            return Ok(len);
        }
        let (Some(base), Form::File { whole: n }) = (self.base, &self.form) else {
            return Ok(0);
        };
        let n = *n;
        let len = if n == 0 || self.fits(base, n - 1)? {
            n
        } else {
            // Invariant: `lo` fits, `hi` does not.
            let (mut lo, mut hi) = (0, n - 1);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if self.fits(base, mid)? {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            lo + 1
        };
        self.len = Some(len);
        Ok(len)
    }

    /// The retained window's first and last positions (`stream.json`'s
    /// `first_sequence` on, within the valid records); `None` when no
    /// asset is published yet.
    fn window(&mut self, d: &Descriptor) -> Result<Option<(u64, u64)>, Need> {
        let len = self.count()?;
        let Some(base) = self.base.filter(|_| len > 0) else {
            return Ok(None);
        };
        let first = d.first_sequence.saturating_sub(base).min(len - 1);
        Ok(Some((first, len - 1)))
    }

    /// The parameters `serve` would answer for a viewer it knows nothing
    /// of but `throughput_bps`, from the retained window. `Ok(None)`: no
    /// asset yet; `Err(Ok(need))`: fetch that first; `Err(Err(why))`: the
    /// index contradicts itself.
    pub fn params(
        &mut self,
        d: &Descriptor,
        client: &str,
        throughput_bps: Option<f64>,
    ) -> Result<Option<Params>, Result<Need, String>> {
        let Some((first, last)) = self.window(d).map_err(Ok)? else {
            return Ok(None);
        };
        let name = self.name();
        let damaged = |p: u64| Err(format!("{name}: record {p} is damaged"));
        let Some(oldest) = self.get(first).map_err(Ok)? else {
            return Err(damaged(first));
        };
        let Some(newest) = self.get(last).map_err(Ok)? else {
            return Err(damaged(last));
        };
        Ok(Some(synthesize(
            d,
            client,
            throughput_bps,
            (&oldest, &newest),
            self.timescale,
        )))
    }

    /// `locate` over the retained window, clamped to it as `serve` asks.
    pub fn locate(
        &mut self,
        d: &Descriptor,
        target: Target,
    ) -> Result<Result<Answer, LocateError>, Need> {
        let Some((first, _)) = self.window(d)? else {
            return Ok(Err(LocateError::Empty));
        };
        self.need.set(None);
        let answer = locate::locate(&*self, first as usize, self.timescale, target, true);
        match self.need.take() {
            Some(need) => Err(need),
            None => Ok(answer),
        }
    }

    /// Records a lack, keeping the first (the one this run waits on).
    fn lack(&self, need: Need) {
        if self.need.get().is_none() {
            self.need.set(Some(need));
        }
    }
}

impl Source for View {
    fn count(&self) -> usize {
        self.len.unwrap_or(0) as usize
    }

    fn record(&self, i: usize) -> Option<Record> {
        match self.get(i as u64) {
            Ok(record) => record,
            Err(need) => {
                self.lack(need);
                None
            }
        }
    }

    fn maps(&self, record: &Record) -> Result<Maps, String> {
        match self.maps.get(&record.sequence) {
            Some(maps) => Ok(maps.clone()),
            None => {
                self.lack(Need::Maps(*record));
                Err("maps not fetched yet".into())
            }
        }
    }
}

/// The parameters from the window's oldest and newest records: the span
/// between them is the retained window, their datastamps its bytes.
fn synthesize(
    d: &Descriptor,
    client: &str,
    throughput_bps: Option<f64>,
    (oldest, newest): (&Record, &Record),
    timescale: u32,
) -> Params {
    let window_s = seconds(newest.end().saturating_sub(oldest.start), timescale).max(1e-3);
    let assets = newest.sequence.saturating_sub(oldest.sequence) + 1;
    let asset_s = window_s / assets as f64;
    let media = (newest.datastamp + newest.media_len()).saturating_sub(oldest.datastamp);
    let bitrate = media as f64 * 8.0 / window_s;
    let advice = advise(&Audience {
        clients: 1,
        same_region_share: 0.0,
        throughput_bps,
        history_bps: Vec::new(),
        bitrate_bps: bitrate.max(1.0),
        asset_duration_s: asset_s,
        window_s,
        dip_horizon_s: 20.0,
    });
    let naming = Naming::new(&d.prefix);
    Params {
        client: client.to_string(),
        coeffs: advice.coefficients.to_arg(),
        advice,
        live_edge_s: seconds(newest.end(), timescale),
        live_edge_sequence: newest.sequence,
        first_sequence: oldest.sequence,
        asset_duration_s: asset_s,
        bitrate_bps: bitrate as u64,
        prefix: d.prefix.clone(),
        pattern: naming.pattern(),
        ended: d.ended,
        viewer: ViewerFacts {
            throughput_bps,
            throughput_source: if throughput_bps.is_some() {
                "player"
            } else {
                "none"
            }
            .into(),
            ..ViewerFacts::default()
        },
        audience: AudienceFacts {
            clients: 1,
            same_region_share: 0.0,
        },
        distribution: Some(crate::policy::DISTRIBUTION.into()),
    }
}

/// `stream.json` as a static host serves it: refused if its version is
/// unknown or its prefix is no plain file name (names are built from it).
pub(super) fn descriptor(bytes: &[u8]) -> Result<Descriptor, String> {
    Descriptor::parse(std::path::Path::new("stream.json"), bytes).map_err(|e| e.to_string())
}

/// What the machine does with a static host's files.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Doing {
    /// Making the parameters a `/backset.json` would have answered.
    Params,
    /// Finding the entry point `/locate` would have answered.
    Locate { backset_s: f64 },
}

/// A static host as the machine knows it.
#[derive(Debug)]
pub(super) struct Host {
    pub descriptor: Option<Descriptor>,
    pub view: Option<View>,
    pub doing: Doing,
    /// Maps or index chunks found gone in a row: the window moved under
    /// the search, or the host has no maps files.
    pub gone: u32,
    /// The host keeps the index in object storage's form (a bucket, or a
    /// CDN in front of one): a head object and chunks, no `index.bin`.
    #[cfg(feature = "store")]
    chunked: bool,
}

impl Host {
    pub fn new() -> Host {
        Host {
            descriptor: None,
            view: None,
            doing: Doing::Params,
            gone: 0,
            #[cfg(feature = "store")]
            chunked: false,
        }
    }

    /// What reads the index's head, in the form the host keeps it in (as
    /// found, or as its `stream.json` names the index).
    pub fn head_request(&mut self) -> Request {
        #[cfg(feature = "store")]
        {
            let named = self.descriptor.as_ref().map(|d| d.index.as_str());
            if self.chunked || named == Some(HEAD) {
                self.chunked = true;
                return store_head();
            }
        }
        Request::IndexHead
    }

    /// `index.bin` is not there: the host may keep the index in object
    /// storage's form; what to read then, once (`None`: no index at all).
    pub fn no_index_file(&mut self) -> Option<Request> {
        #[cfg(feature = "store")]
        if !self.chunked {
            self.chunked = true;
            return Some(store_head());
        }
        None
    }
}

/// The store form's head object, whole: its header and at most a chunk's
/// worth of records.
#[cfg(feature = "store")]
fn store_head() -> Request {
    Request::StoreHead {
        name: HEAD.into(),
        len: (HEADER_LEN as u64) + CHUNK_RECORDS * RECORD_LEN as u64,
    }
}
