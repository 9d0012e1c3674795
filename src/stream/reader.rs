//! A stream directory opened for reading: its descriptor, its memory-mapped
//! index and its assets' maps. What `locate`, `serve` and the playlists read.

use std::path::{Path, PathBuf};

use crate::capture::maps::Maps;
use crate::stream::descriptor::Descriptor;
use crate::stream::index::{Index, Record};
use crate::stream::locate::{self, Answer, LocateError, Source, Target};
use crate::stream::naming::Naming;
use crate::stream::store::{read_descriptor, INDEX_FILE};
use crate::{Error, Result};

pub struct Stream {
    pub(crate) dir: PathBuf,
    pub(crate) descriptor: Descriptor,
    pub naming: Naming,
    pub index: Index,
}

impl Stream {
    pub fn open(dir: &Path) -> Result<Stream> {
        let descriptor = read_descriptor(dir)?.ok_or_else(|| Error::BadFile {
            path: dir.to_path_buf(),
            reason: "no stream.json: not a backset stream directory".into(),
        })?;
        let index = Index::open(&dir.join(INDEX_FILE))?;
        Ok(Stream {
            dir: dir.to_path_buf(),
            naming: Naming::new(&descriptor.prefix),
            descriptor,
            index,
        })
    }

    /// Index position of the oldest retained asset.
    pub(crate) fn first(&self) -> usize {
        let base = self.index.get(0).map_or(0, |r| r.sequence);
        self.descriptor.first_sequence.saturating_sub(base) as usize
    }

    /// The retained records, oldest first.
    pub fn retained(&self) -> impl Iterator<Item = Record> + '_ {
        (self.first()..self.index.len()).filter_map(|i| self.index.get(i))
    }

    /// The record of a published, retained asset.
    pub fn record(&self, sequence: u64) -> Option<Record> {
        let base = self.index.get(0)?.sequence;
        let i = usize::try_from(sequence.checked_sub(base)?).ok()?;
        (i >= self.first()).then(|| self.index.get(i)).flatten()
    }

    /// The record of asset `sequence`, retained or not: what a server
    /// answers an expired asset's files by while the writer still keeps
    /// them for players that listed it (`stream::expiry`).
    pub fn indexed(&self, sequence: u64) -> Option<Record> {
        let base = self.index.get(0)?.sequence;
        self.index
            .get(usize::try_from(sequence.checked_sub(base)?).ok()?)
    }

    pub(crate) fn asset_path(&self, sequence: u64) -> PathBuf {
        self.dir.join(self.naming.name(sequence))
    }

    pub fn locate(&self, target: Target, clamp: bool) -> Result<Answer, LocateError> {
        locate::locate(self, self.first(), self.index.timescale, target, clamp)
    }

    /// Seconds of transmission time.
    pub fn seconds(&self, ticks: u64) -> f64 {
        locate::seconds(ticks, self.index.timescale)
    }
}

impl Source for Stream {
    fn count(&self) -> usize {
        self.index.len()
    }
    fn record(&self, i: usize) -> Option<Record> {
        self.index.get(i)
    }
    fn maps(&self, record: &Record) -> Result<Maps, String> {
        crate::stream::maps_reader::read_maps(&self.asset_path(record.sequence))
            .map_err(|e| e.to_string())
    }
}
