//! What the machine and its driver say to each other: the requests the
//! machine wants made (with the headers that go with them), what came of
//! them, and the actions it asks for. Plain data: the driver turns a
//! [`Fetch`] into a GET, the tests into a scripted answer.

use std::ops::Range;
use std::time::Duration;

use super::machine::Report;
use super::trust::{ASSET_LIMIT, JSON_LIMIT};
use crate::http::cmcd::Cmcd;
use crate::stream::index::{HEADER_LEN, RECORD_LEN};

/// The bytes [`Request::IndexHead`] asks for: the header and one record.
pub const HEAD_LEN: u64 = (HEADER_LEN + RECORD_LEN) as u64;

/// The first and last byte of record `position` in `index.bin`
/// (saturating: a position that far is past any index and simply 416s).
fn record_range(position: u64) -> (u64, u64) {
    let from = position
        .saturating_mul(RECORD_LEN as u64)
        .saturating_add(HEADER_LEN as u64);
    (from, from.saturating_add(RECORD_LEN as u64 - 1))
}

/// What `--backset` is measured from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Clock {
    /// The live edge: the end of the newest published asset.
    #[default]
    Live,
    /// The wall clock, on the key frames' receive times.
    Wall,
}

/// A GET the driver makes, relative to the server's root.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// `backset.json`: this viewer's advice and the stream's shape.
    Params,
    /// The newest published asset, whole, timed to measure the link.
    Probe { name: String },
    /// `locate` for a backset, clamped to the retained window.
    Locate { backset_s: f64, clock: Clock },
    /// An asset's first `len` bytes: its init and its maps.
    Header { asset: String, len: u64 },
    /// An asset from byte `offset` (the entry point's `moof`) on.
    From { asset: String, offset: u64 },
    /// A whole asset.
    Asset { name: String },
    /// `stream.json`, on a static host (one with no `backset.json`): the
    /// stream's prefix, retained window and whether it has ended.
    Descriptor,
    /// `index.bin`'s header and first record (its first 128 bytes); the
    /// answer's [`Reply::Body::size`] is the index's length, hence how many
    /// records it holds.
    IndexHead,
    /// Record `position` of `index.bin` (its 64 bytes, by range).
    Record { position: u64 },
    /// The index in object storage's form, where there is no `index.bin`:
    /// its head object (`index-head.bin`), whole, at most `len` bytes.
    /// Its name and its longest length are the store form's
    /// (`crate::bucket::index_form`), given by the caller.
    StoreHead { name: String, len: u64 },
    /// Record `position` of the index in object storage's form: the bytes
    /// `range` of the immutable chunk object `name`.
    ChunkRecord {
        name: String,
        position: u64,
        range: Range<u64>,
    },
    /// An asset's maps on their own (`<asset>.maps`), `len` bytes as its
    /// record's entry count says.
    Maps { name: String, len: u64 },
}

impl Request {
    /// The path and query, relative to the server's root.
    pub fn path(&self) -> String {
        match self {
            Request::Params => "backset.json".into(),
            Request::Locate { backset_s, clock } => format!(
                "locate?backset={backset_s:.6}s&clamp=1{}",
                match clock {
                    Clock::Live => "",
                    Clock::Wall => "&clock=wall",
                }
            ),
            Request::Header { asset, .. } | Request::From { asset, .. } => asset.clone(),
            Request::Asset { name } | Request::Probe { name } => name.clone(),
            Request::Descriptor => "stream.json".into(),
            Request::IndexHead | Request::Record { .. } => "index.bin".into(),
            Request::Maps { name, .. }
            | Request::StoreHead { name, .. }
            | Request::ChunkRecord { name, .. } => name.clone(),
        }
    }

    /// The `Range` header's value, if the request wants part of an asset.
    pub fn range(&self) -> Option<String> {
        match self {
            Request::Header { len, .. } => Some(format!("bytes=0-{}", len.saturating_sub(1))),
            Request::From { offset, .. } => Some(format!("bytes={offset}-")),
            Request::IndexHead => Some(format!("bytes=0-{}", HEAD_LEN - 1)),
            Request::Record { position } => {
                let (from, to) = record_range(*position);
                Some(format!("bytes={from}-{to}"))
            }
            Request::ChunkRecord { range, .. } => Some(format!(
                "bytes={}-{}",
                range.start,
                range.end.saturating_sub(1)
            )),
            _ => None,
        }
    }

    /// The most bytes its answer may hold: a JSON answer's limit, the
    /// header's announced length, an asset's limit. A longer body is read
    /// no further and refused.
    pub fn limit(&self) -> u64 {
        match self {
            Request::Params | Request::Locate { .. } | Request::Descriptor => JSON_LIMIT,
            Request::Header { len, .. }
            | Request::Maps { len, .. }
            | Request::StoreHead { len, .. } => *len,
            Request::IndexHead => HEAD_LEN,
            Request::Record { .. } => RECORD_LEN as u64,
            Request::ChunkRecord { range, .. } => range.end.saturating_sub(range.start),
            Request::Probe { .. } | Request::From { .. } | Request::Asset { .. } => ASSET_LIMIT,
        }
    }

    /// Whether the answer carries media whose transfer measures the link
    /// (a header of a few kilobytes or a JSON answer says more about the
    /// round trip than about the throughput).
    pub fn measures(&self) -> bool {
        matches!(
            self,
            Request::Probe { .. } | Request::From { .. } | Request::Asset { .. }
        )
    }
}

/// A request and what the viewer says of itself with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetch {
    pub request: Request,
    /// Its `sid` is the viewer's id, also sent as `X-Backset-Client`.
    pub cmcd: Cmcd,
}

impl Fetch {
    /// Every header to send: the viewer's id, the range, the CMCD headers.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = Vec::new();
        if let Some(id) = &self.cmcd.sid {
            headers.push(("X-Backset-Client", id.clone()));
        }
        if let Some(range) = self.request.range() {
            headers.push(("Range", range));
        }
        headers.extend(self.cmcd.headers());
        headers
    }
}

/// How a request went.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// 200 or 206, the whole body, and how long the fetch took from the
    /// request sent to the body's last byte read (the driver measures it).
    /// `size` is the whole file's length when the answer says it: a 206's
    /// `Content-Range` total, a 200's body length.
    Body {
        bytes: Vec<u8>,
        took: Duration,
        size: Option<u64>,
    },
    /// 404: an answer (not published yet, expired), not a failure.
    NotFound,
    /// Unreachable, another status, or a body cut short: retried.
    Failed(String),
    /// 200 or 206 with a body (or a `Content-Length`) over the request's
    /// [`Request::limit`]: refused, not retried.
    TooLong,
}

/// What happened, fed to [`super::Machine::handle`].
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The answer to the last [`Action::Fetch`].
    Reply(Reply),
    /// The last [`Action::Write`] went through.
    Written,
    /// The output's reader went away.
    Closed,
    /// The time of the last [`Action::WaitUntil`] came.
    Woke,
}

/// What to do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Fetch(Fetch),
    Write(Vec<u8>),
    /// Wait until this time (on the clock [`super::Machine::handle`] is fed).
    WaitUntil(Duration),
    /// The run is over: the transmission ended, the output was closed, or
    /// the time to follow for has passed.
    Stop(Report),
}
