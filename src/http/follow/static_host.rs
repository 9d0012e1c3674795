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

use crate::capture::maps::Maps;
use crate::http::api::{AudienceFacts, Params, ViewerFacts};
use crate::policy::advise::{advise, Audience};
use crate::stream::descriptor::Descriptor;
use crate::stream::index::{decode_header, Record, HEADER_LEN, RECORD_LEN};
use crate::stream::locate::{self, seconds, Answer, LocateError, Source, Target};
use crate::stream::naming::Naming;

/// What a computation over a [`View`] lacks: fetch it and run it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Need {
    /// Record at this position of the index.
    Record(u64),
    /// The maps of the asset of this record.
    Maps(Record),
}

/// What the static host's files said so far.
#[derive(Debug)]
pub(super) struct View {
    pub timescale: u32,
    /// Whole records in the index when its head was read (the valid ones
    /// and any torn tail).
    whole: u64,
    /// Record 0; `None` when the index holds none yet (or a damaged one).
    base: Option<Record>,
    /// Records fetched by position; `None`: torn, damaged or out of place.
    records: HashMap<u64, Option<Record>>,
    maps: HashMap<u64, Maps>,
    /// How many records are valid, once known ([`View::count`]).
    len: Option<u64>,
    /// The first thing a run of `locate` lacked.
    need: Cell<Option<Need>>,
}

impl View {
    /// The view from the index's first bytes and its length.
    pub fn from_head(head: &[u8], size: u64) -> Result<View, String> {
        let timescale =
            decode_header(std::path::Path::new("index.bin"), head).map_err(|e| e.to_string())?;
        let whole = size.saturating_sub(HEADER_LEN as u64) / RECORD_LEN as u64;
        let base = head.get(HEADER_LEN..).and_then(Record::decode);
        Ok(View {
            timescale,
            whole,
            base,
            records: HashMap::new(),
            maps: HashMap::new(),
            len: None,
            need: Cell::new(None),
        })
    }

    /// A fresh head of the same index keeps what was fetched of it: valid
    /// records never change, an index only grows. What read as torn may
    /// have been completed since, so it is asked again.
    pub fn refresh(&mut self, newer: View) {
        let same = self.base.is_some() && self.base == newer.base;
        let (records, maps) = if same {
            self.records.retain(|_, r| r.is_some());
            (
                std::mem::take(&mut self.records),
                std::mem::take(&mut self.maps),
            )
        } else {
            Default::default()
        };
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
        if position == 0 {
            return Ok(self.base);
        }
        self.records
            .get(&position)
            .copied()
            .ok_or(Need::Record(position))
    }

    /// Whether record `position` is whole and in its place (its sequence
    /// the first's plus its position), as `index.bin`'s readers check.
    fn fits(&self, base: u64, position: u64) -> Result<bool, Need> {
        Ok(self
            .get(position)?
            .is_some_and(|r| Some(r.sequence) == base.checked_add(position)))
    }

    /// How many records are valid: all whole ones if the last is in its
    /// place, else (a torn or damaged tail) a binary search for the last
    /// one that is, as [`crate::stream::index`] does on a file.
    pub fn count(&mut self) -> Result<u64, Need> {
        if let Some(len) = self.len {
            return Ok(len);
        }
        let (Some(base), n) = (self.base, self.whole) else {
            return Ok(0);
        };
        let len = if n == 0 || self.fits(base.sequence, n - 1)? {
            n
        } else {
            // Invariant: `lo` fits, `hi` does not.
            let (mut lo, mut hi) = (0, n - 1);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if self.fits(base.sequence, mid)? {
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
        let first = d.first_sequence.saturating_sub(base.sequence).min(len - 1);
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
        let damaged = |p: u64| Err(format!("index.bin: record {p} is damaged"));
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
    /// Maps found gone in a row: the window moved under the search, or
    /// the host has no maps files.
    pub gone: u32,
}

impl Host {
    pub fn new() -> Host {
        Host {
            descriptor: None,
            view: None,
            doing: Doing::Params,
            gone: 0,
        }
    }
}
