//! A media asset being assembled: its fragments and the map entries of its
//! entry points, then the finished file (init + maps + fragments).

use bytes::Bytes;

use crate::capture::init::Init;
use crate::capture::maps::{Entry, Maps};
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
    /// The fragments as byte ranges: encoded boxes and slices of the
    /// capture's own `mdat`s, never copied.
    body: Vec<Bytes>,
    body_len: u64,
    entries: Vec<OpenEntry>,
}

impl AssetBuilder {
    pub fn new(sequence: u64, start: u64, start_datastamp: u64) -> Self {
        AssetBuilder {
            sequence,
            start,
            start_datastamp,
            body: Vec::new(),
            body_len: 0,
            entries: Vec::new(),
        }
    }

    /// Bytes of fragments so far.
    pub fn body_len(&self) -> u64 {
        self.body_len
    }

    /// Appends one fragment written by `write`; `entry` marks it as an entry
    /// point at that timestamp, received at that wall-clock time.
    pub fn add_fragment(
        &mut self,
        entry: Option<(u64, u64)>,
        write: impl FnOnce(&mut Vec<Bytes>) -> Result<()>,
    ) -> Result<u64> {
        let (before, pieces) = (self.body_len, self.body.len());
        if let Err(e) = write(&mut self.body) {
            self.body.truncate(pieces);
            return Err(e);
        }
        let len: u64 = self.body[pieces..].iter().map(|b| b.len() as u64).sum();
        self.body_len += len;
        if let Some((timestamp, wallclock_us)) = entry {
            self.entries.push(OpenEntry {
                timestamp,
                body_offset: before,
                wallclock_us,
            });
        }
        Ok(len)
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
            body: self.body,
            body_len: self.body_len,
            maps,
        })
    }
}

/// A complete asset, ready to be written out: `header` (ftyp, moov, maps)
/// then `body` (the fragments, a valid fMP4 media segment on its own), as
/// byte ranges to write in order.
#[derive(Debug, Clone)]
pub struct FinishedAsset {
    pub header: Vec<u8>,
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

    /// The whole file's bytes in order.
    pub fn slices(&self) -> impl Iterator<Item = &[u8]> {
        std::iter::once(self.header.as_slice()).chain(self.body.iter().map(|b| b.as_ref()))
    }
}
