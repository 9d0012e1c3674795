//! A media asset being assembled: the length of its fragments and the map
//! entries of its entry points, then the finished file's header (init +
//! maps). The fragments themselves leave as they are made (the segmenter's
//! `Event::Fragment`), so an asset that never ends is never held in memory:
//! the header, whose length depends on the entry count, goes in front when
//! it is published. [`Assembler`] puts whole assets back together for
//! in-process users.

use bytes::Bytes;

use crate::capture::init::Init;
use crate::capture::maps::{Entry, Maps};
use crate::capture::segmenter::Event;
use crate::{Error, Result};

/// An entry point as recorded while the asset is open; its file offset is
/// known only once the header length is.
#[derive(Debug, Clone, Copy)]
struct OpenEntry {
    timestamp: u64,
    body_offset: u64,
    wallclock_us: u64,
}

#[derive(Debug)]
pub(crate) struct AssetBuilder {
    pub sequence: u64,
    pub start: u64,
    pub start_datastamp: u64,
    body_len: u64,
    entries: Vec<OpenEntry>,
}

impl AssetBuilder {
    pub fn new(sequence: u64, start: u64, start_datastamp: u64) -> Self {
        AssetBuilder {
            sequence,
            start,
            start_datastamp,
            body_len: 0,
            entries: Vec::new(),
        }
    }

    /// Bytes of fragments so far.
    pub fn body_len(&self) -> u64 {
        self.body_len
    }

    /// Counts in one fragment written by `write` and returns its byte
    /// ranges (encoded boxes and slices of the capture's own `mdat`s, never
    /// copied), for the caller to pass on; `entry` marks it as an entry
    /// point at that timestamp, received at that wall-clock time.
    pub fn add_fragment(
        &mut self,
        entry: Option<(u64, u64)>,
        write: impl FnOnce(&mut Vec<Bytes>) -> Result<()>,
    ) -> Result<Vec<Bytes>> {
        let before = self.body_len;
        let mut pieces = Vec::new();
        write(&mut pieces)?;
        let len: u64 = pieces.iter().map(|b| b.len() as u64).sum();
        self.body_len += len;
        if let Some((timestamp, wallclock_us)) = entry {
            self.entries.push(OpenEntry {
                timestamp,
                body_offset: before,
                wallclock_us,
            });
        }
        Ok(pieces)
    }

    /// Closes the asset at transmission time `end`.
    pub fn finish(self, init: &Init, timescale: u32, end: u64) -> Result<FinishedAsset> {
        let maps_len = Maps::encoded_len(self.entries.len());
        let header_len = init.bytes.len() + maps_len;
        let maps = Maps {
            sequence: self.sequence,
            timescale,
            start: self.start,
            duration: end.saturating_sub(self.start),
            start_datastamp: self.start_datastamp,
            entries: self
                .entries
                .iter()
                .map(|e| Entry {
                    timestamp: e.timestamp,
                    datastamp: self.start_datastamp + e.body_offset,
                    offset: header_len as u64 + e.body_offset,
                    wallclock_us: e.wallclock_us,
                })
                .collect(),
        };
        let mut header = Vec::with_capacity(header_len);
        header.extend_from_slice(&init.bytes);
        maps.encode(&mut header);
        if header.len() != header_len {
            return Err(Error::Internal("maps box length mismatch".into()));
        }
        Ok(FinishedAsset {
            header,
            body: Vec::new(),
            body_len: self.body_len,
            maps,
        })
    }
}

/// A complete asset, ready to be written out: `header` (ftyp, moov, maps)
/// then the fragments (a valid fMP4 media segment on its own), `body_len`
/// bytes. From the segmenter, `body` is empty: the fragments went out
/// before, as `Event::Fragment`s; an [`Assembler`] puts them back.
#[derive(Debug, Clone)]
pub struct FinishedAsset {
    pub header: Vec<u8>,
    /// The fragments as byte ranges to write in order, when held here.
    pub body: Vec<Bytes>,
    pub body_len: u64,
    pub maps: Maps,
}

impl FinishedAsset {
    pub fn sequence(&self) -> u64 {
        self.maps.sequence
    }

    pub fn size(&self) -> u64 {
        self.header.len() as u64 + self.body_len
    }

    /// The whole file's bytes in order, when the body is held here.
    pub fn slices(&self) -> impl Iterator<Item = &[u8]> {
        std::iter::once(self.header.as_slice()).chain(self.body.iter().map(|b| b.as_ref()))
    }
}

/// Puts whole assets back together from the segmenter's events, for
/// in-process users (tests, checks) that want each asset's bytes: it holds
/// the open asset's fragments, so it is not for unbounded streams.
#[derive(Debug, Default)]
pub struct Assembler {
    body: Vec<Bytes>,
}

impl Assembler {
    /// Takes in one event: a fragment is kept, and a finished asset gets
    /// the fragments kept since the previous one. Returns the event unless
    /// it was a fragment.
    pub fn take(&mut self, event: Event) -> Option<Event> {
        match event {
            Event::Fragment { bytes, .. } => {
                self.body.extend(bytes);
                None
            }
            Event::Asset(mut asset) => {
                asset.body = std::mem::take(&mut self.body);
                Some(Event::Asset(asset))
            }
            other => Some(other),
        }
    }
}
