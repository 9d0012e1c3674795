//! The uploader: makes the store hold what the spool holds. The segmenter
//! publishes into the spool (a local stream directory, every guarantee of
//! `stream::store`), and each step here copies what is new to the store in
//! the order readers rely on: an asset's objects, then the index head that
//! names it, then `stream.json` and the playlists. Expired assets' objects
//! are deleted after the same hold the publisher keeps files for (RFC 8216
//! 6.2.2). An asset uploaded and a few assets old leaves the spool, so the
//! spool holds what is not yet on the store and little else.
//!
//! Nothing is kept only in memory that a restart needs: the store's head
//! says what was uploaded, the spool's index what was published.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::latency::Latency;
use crate::bucket::client::{Bucket, Caching};
use crate::bucket::index_form::{chunk_name, Head, Place, CHUNK_RECORDS, HEAD};
use crate::bucket::stream_reader::{read_descriptor, read_stored_head};
use crate::stream::descriptor::{self, Descriptor};
use crate::stream::expiry::Expiry;
use crate::stream::index::{Index, Record, Span};
use crate::stream::naming::{Name, Naming};
use crate::stream::store::INDEX_FILE;
use crate::{Error, Result};

/// Uploaded assets kept in the spool, newest first: the publisher may
/// still read the newest back (its events), and a resume reads the last.
const KEEP_LOCAL: u64 = 3;
/// Assets uploaded per step before the head is written: readers see
/// progress while a backlog drains.
const BATCH: usize = 16;

/// The files of the spool that are rewritten as the stream goes on.
const LIVE_FILES: [&str; 3] = ["live.m3u8", "live-av.m3u8", "live.mpd"];

pub struct Uploader {
    bucket: Bucket,
    spool: PathBuf,
    replace: bool,
    head: Option<Head>,
    /// The newest sequence on the store.
    uploaded: Option<u64>,
    /// Sequences below this have left the spool.
    trimmed: u64,
    /// The descriptor's `first_sequence` when last seen.
    first_sequence: u64,
    /// Index chunks below this one are deleted (or never were).
    chunks_gone: u64,
    inits: BTreeSet<String>,
    expiry: Expiry,
    live: Vec<(String, Vec<u8>)>,
    pub latency: Latency,
}

impl Uploader {
    /// With `replace` (`segment --new`), whatever the store holds under the
    /// prefix is deleted before the first upload.
    pub fn new(bucket: Bucket, spool: &Path, replace: bool) -> Uploader {
        Uploader {
            bucket,
            spool: spool.to_path_buf(),
            replace,
            head: None,
            uploaded: None,
            trimmed: 0,
            first_sequence: 0,
            chunks_gone: 0,
            inits: BTreeSet::new(),
            expiry: Expiry::default(),
            live: Vec::new(),
            latency: Latency::default(),
        }
    }

    pub fn bucket(&self) -> &Bucket {
        &self.bucket
    }

    /// Published records the store does not have yet.
    pub fn backlog(&self) -> Result<u64> {
        let Some(last) = self.spool_index()?.and_then(|i| i.last()) else {
            return Ok(0);
        };
        Ok(match self.uploaded {
            Some(u) => last.sequence.saturating_sub(u),
            None => last.sequence + 1,
        })
    }

    /// One pass: uploads up to a batch of new assets, the head, the
    /// descriptor and playlists, then deletes what expired. Whether there
    /// was anything new.
    pub fn step(&mut self, now_us: u64) -> Result<bool> {
        // Read before the index: the publisher rewrites them after it
        // appends a record, so they name no record this index lacks.
        let live: Vec<(&str, Vec<u8>)> = LIVE_FILES
            .iter()
            .filter_map(|&name| Some((name, std::fs::read(self.spool.join(name)).ok()?)))
            .collect();
        let Some((descriptor, raw)) = self.spool_descriptor()? else {
            return Ok(false);
        };
        let Some(index) = self.spool_index()? else {
            return Ok(false);
        };
        let naming = Naming::new(&descriptor.prefix);
        if self.head.is_none() {
            self.open_store(&descriptor, &index, &naming)?;
        }
        // One more than a batch tells whether this batch catches up.
        let mut batch = self.pending(&index, BATCH + 1);
        let caught_up = batch.len() <= BATCH;
        batch.truncate(BATCH);
        for r in &batch {
            self.upload_asset(r, &descriptor, &naming)?;
        }
        if !batch.is_empty() {
            self.put_head(&batch)?;
            let visible = wall_us();
            for r in &batch {
                self.latency.add(visible.saturating_sub(r.published_us));
            }
        }
        // While a backlog drains, the playlists would name assets not up
        // yet, and an ended descriptor would end the stream early.
        self.put_live(
            descriptor::FILE,
            store_descriptor(&descriptor, raw, caught_up),
        )?;
        if caught_up {
            for (name, bytes) in live {
                self.put_live(name, bytes)?;
            }
        }
        self.expire(&descriptor, &index, &naming, now_us)?;
        self.trim(&naming)?;
        Ok(!batch.is_empty())
    }

    /// Uploads everything and deletes every expired object: the
    /// transmission has ended. What is left in the spool.
    #[cfg(test)]
    pub fn drain(&mut self, now_us: u64) -> Result<u64> {
        while self.step(now_us)? {}
        self.finish_step(now_us)
    }

    /// One step of finishing: a batch while there is a backlog; once there
    /// is none, every expired object goes. What is left in the spool.
    pub fn finish_step(&mut self, now_us: u64) -> Result<u64> {
        if self.step(now_us)? {
            return self.backlog();
        }
        let Some((descriptor, _)) = self.spool_descriptor()? else {
            return Ok(0);
        };
        let naming = Naming::new(&descriptor.prefix);
        for sequence in self.expiry.due(u64::MAX) {
            self.delete_asset(sequence, &descriptor, &naming)?;
        }
        self.remove_gone_inits()?;
        self.backlog()
    }

    /// Before the spool is opened: refuses a spool that does not continue
    /// the store's transmission (unless replacing it). A store that cannot
    /// be asked is the caller's to judge.
    pub fn preflight(&self) -> Result<()> {
        if self.replace {
            return Ok(());
        }
        match read_stored_head(&self.bucket)? {
            Some(head) => self.check_continues(&head, self.spool_index()?.as_ref()),
            None => Ok(()),
        }
    }

    fn spool_descriptor(&self) -> Result<Option<(Descriptor, Vec<u8>)>> {
        let path = self.spool.join(descriptor::FILE);
        match std::fs::read(&path) {
            Ok(raw) => Ok(Some((Descriptor::parse(&path, &raw)?, raw))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Io { path, err: e }),
        }
    }

    fn spool_index(&self) -> Result<Option<Index>> {
        let path = self.spool.join(INDEX_FILE);
        if !path.exists() {
            return Ok(None);
        }
        Index::open(&path).map(Some)
    }

    /// Reads what the store has and checks the spool continues it.
    fn open_store(&mut self, d: &Descriptor, index: &Index, naming: &Naming) -> Result<()> {
        if self.replace {
            self.remove_everything()?;
        }
        let head = match read_stored_head(&self.bucket)? {
            Some(head) => {
                self.check_continues(&head, Some(index))?;
                head
            }
            None => Head::empty(d.timescale, 0),
        };
        self.uploaded = head
            .records
            .last()
            .map(|r| r.sequence)
            .or_else(|| (head.count() > 0).then(|| head.base + head.count() - 1));
        // The window the store last showed: what left it since goes after
        // the hold, as any expiry does.
        let stored_first = read_descriptor(&self.bucket)?.map(|s| s.first_sequence);
        self.first_sequence = stored_first
            .unwrap_or(d.first_sequence)
            .min(d.first_sequence);
        self.trimmed = self
            .uploaded
            .map_or(0, |u| u.saturating_sub(KEEP_LOCAL) + 1);
        self.head = Some(head);
        self.remove_expired_leftovers(d, naming)
    }

    /// The store's newest record must be the spool's record of the same
    /// sequence: otherwise they hold different transmissions.
    fn check_continues(&self, head: &Head, index: Option<&Index>) -> Result<()> {
        let Some(stored) = self.stored_last(head)? else {
            return Ok(());
        };
        let spooled = index.and_then(|index| {
            let base = index.get(0).map_or(0, |r| r.sequence);
            index.get(usize::try_from(stored.sequence.checked_sub(base)?).ok()?)
        });
        if spooled == Some(stored) {
            return Ok(());
        }
        Err(Error::Usage(format!(
            "{}: the store holds a transmission the spool {} does not continue (its asset {} differs \
             or is missing there); give the spool it was written with, or --new to replace it",
            self.bucket.location(),
            self.spool.display(),
            stored.sequence
        )))
    }

    /// The store's newest record: in the head, or, when the head has just
    /// moved on to an empty chunk, the last of the chunk before.
    fn stored_last(&self, head: &Head) -> Result<Option<Record>> {
        if let Some(last) = head.records.last() {
            return Ok(Some(*last));
        }
        let Some(Place::Chunk { name, range }) =
            head.count().checked_sub(1).and_then(|p| head.place(p))
        else {
            return Ok(None);
        };
        let bytes = self.bucket.get_range(&name, range)?;
        let record = bytes.as_deref().and_then(Record::decode);
        match record.filter(|r| head.in_place(head.count() - 1, r)) {
            Some(r) => Ok(Some(r)),
            None => Err(Error::BadFile {
                path: self.bucket.location().url_of(&name).into(),
                reason: "the store's newest index record is missing or damaged".into(),
            }),
        }
    }

    /// The next records the store lacks, at most `limit` of them.
    fn pending(&self, index: &Index, limit: usize) -> Vec<Record> {
        let base = index.get(0).map_or(0, |r| r.sequence);
        let from = self.uploaded.map_or(0, |u| (u + 1).saturating_sub(base));
        (usize::try_from(from).unwrap_or(usize::MAX)..index.len())
            .map_while(|i| index.get(i))
            .take(limit)
            .collect()
    }

    /// The asset, its maps, its track segments, and its generation's init
    /// files the first time one of its assets goes up.
    fn upload_asset(&mut self, r: &Record, d: &Descriptor, naming: &Naming) -> Result<()> {
        let asset = naming.name(r.sequence);
        let Some(bytes) = self.read_spool(&asset)? else {
            // Retention let it go while it waited (a store slower than the
            // window, perhaps during this very step): its record goes up,
            // as an expired one's.
            let first = self
                .spool_descriptor()?
                .map_or(d.first_sequence, |(now, _)| now.first_sequence);
            if r.sequence < first {
                return Ok(());
            }
            return Err(Error::BadFile {
                path: self.spool.join(&asset),
                reason:
                    "published in the spool's index but gone from the spool; it cannot be uploaded"
                        .into(),
            });
        };
        self.bucket.put(&asset, bytes, Caching::Immutable)?;
        let mut names = vec![naming.maps_name(r.sequence)];
        names.extend(
            d.tracks
                .iter()
                .map(|t| naming.track_segment_name(r.sequence, t.id)),
        );
        for name in names {
            if let Some(bytes) = self.read_spool(&name)? {
                self.bucket.put(&name, bytes, Caching::Immutable)?;
            }
        }
        let mut inits = vec![naming.init_name(r.init)];
        inits.extend(
            d.tracks
                .iter()
                .map(|t| naming.track_init_name(r.init, t.id)),
        );
        for name in inits {
            if self.inits.contains(&name) {
                continue;
            }
            if let Some(bytes) = self.read_spool(&name)? {
                self.bucket.put(&name, bytes, Caching::Immutable)?;
                self.inits.insert(name);
            }
        }
        Ok(())
    }

    fn read_spool(&self, name: &str) -> Result<Option<Bytes>> {
        let path = self.spool.join(name);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(Bytes::from(bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Io { path, err: e }),
        }
    }

    /// A full chunk goes up before the head that moves past it.
    /// Works on a copy of the head, kept only once every put succeeded: a
    /// failed put must not leave records pushed twice on the retry.
    fn put_head(&mut self, batch: &[Record]) -> Result<()> {
        let Some(mut head) = self.head.clone() else {
            return Err(Error::Internal("the store's head was not read".into()));
        };
        for r in batch {
            if let Some((name, chunk)) = head.push(*r) {
                self.bucket
                    .put(&name, Bytes::from(chunk), Caching::Immutable)?;
            }
        }
        self.bucket
            .put(HEAD, Bytes::from(head.encode()), Caching::Live)?;
        self.head = Some(head);
        self.uploaded = batch.last().map(|r| r.sequence).or(self.uploaded);
        Ok(())
    }

    /// Puts a rewritten file when it changed since its last upload.
    fn put_live(&mut self, name: &str, bytes: Vec<u8>) -> Result<()> {
        if self.live.iter().any(|(n, b)| n == name && *b == bytes) {
            return Ok(());
        }
        self.bucket
            .put(name, Bytes::from(bytes.clone()), Caching::Live)?;
        self.live.retain(|(n, _)| n != name);
        self.live.push((name.to_string(), bytes));
        Ok(())
    }
}

/// The spool's `stream.json` as the store has it: its index is the head
/// object, which tells a reader (a CDN client) the index's form; not ended
/// while records wait to go up.
fn store_descriptor(d: &Descriptor, raw: Vec<u8>, caught_up: bool) -> Vec<u8> {
    let mut d = d.clone();
    d.index = HEAD.to_string();
    if !caught_up {
        d.ended = false;
        d.ended_us = None;
    }
    serde_json::to_vec_pretty(&d).unwrap_or(raw)
}

pub(crate) fn wall_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

impl Uploader {
    /// Defers the deletion of assets the window left, by the publisher's
    /// rule: their own duration plus the window's, at least a second.
    fn expire(
        &mut self,
        d: &Descriptor,
        index: &Index,
        naming: &Naming,
        now_us: u64,
    ) -> Result<()> {
        let first = d.first_sequence.min(self.uploaded.map_or(0, |u| u + 1));
        if first > self.first_sequence {
            let base = index.get(0).map_or(0, |r| r.sequence);
            let record = |s: u64| index.get(usize::try_from(s.checked_sub(base)?).ok()?);
            let kept: Vec<Record> = (first..=self.uploaded.unwrap_or(0))
                .filter_map(record)
                .collect();
            let window_s = Span::of(&kept, d.timescale).seconds;
            for s in self.first_sequence..first {
                let (own, init) = record(s).map_or((0, 0), |r| (r.duration, r.init));
                let own_s = crate::stream::locate::seconds(own, d.timescale);
                let hold_us = ((own_s + window_s) * 1e6).max(1e6) as u64;
                self.expiry.defer(s, init, now_us.saturating_add(hold_us));
            }
            self.first_sequence = first;
        }
        for sequence in self.expiry.due(now_us) {
            self.delete_asset(sequence, d, naming)?;
        }
        self.remove_gone_inits()?;
        self.remove_expired_chunks(d.first_sequence)
    }

    /// An index chunk goes once every asset it lists has gone: readers
    /// never read a record before the window, and a replica mirroring a
    /// held asset has read its record already.
    fn remove_expired_chunks(&mut self, first: u64) -> Result<()> {
        let Some(head) = self.head.as_ref() else {
            return Ok(());
        };
        let gone_below = self.expiry.oldest().unwrap_or(first).min(first);
        while self.chunks_gone < head.chunk {
            let last = head.base + (self.chunks_gone + 1) * CHUNK_RECORDS - 1;
            if last >= gone_below {
                break;
            }
            self.bucket.delete(&chunk_name(self.chunks_gone))?;
            self.chunks_gone += 1;
        }
        Ok(())
    }

    fn delete_asset(&self, sequence: u64, d: &Descriptor, naming: &Naming) -> Result<()> {
        self.bucket.delete(&naming.name(sequence))?;
        self.bucket.delete(&naming.maps_name(sequence))?;
        for t in &d.tracks {
            self.bucket
                .delete(&naming.track_segment_name(sequence, t.id))?;
        }
        Ok(())
    }

    /// An init file the publisher deleted from the spool (no asset kept
    /// or held uses it) goes from the store too.
    fn remove_gone_inits(&mut self) -> Result<()> {
        let gone: Vec<String> = self
            .inits
            .iter()
            .filter(|n| !self.spool.join(n).exists())
            .cloned()
            .collect();
        for name in gone {
            self.bucket.delete(&name)?;
            self.inits.remove(&name);
        }
        Ok(())
    }

    /// Uploaded assets a few behind the newest leave the spool.
    fn trim(&mut self, naming: &Naming) -> Result<()> {
        let Some(upto) = self.uploaded.and_then(|u| u.checked_sub(KEEP_LOCAL)) else {
            return Ok(());
        };
        if upto < self.trimmed {
            return Ok(());
        }
        for entry in std::fs::read_dir(&self.spool).map_err(Error::io(&self.spool))? {
            let entry = entry.map_err(Error::io(&self.spool))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let old = matches!(
                naming.parse(&name),
                Some(Name::Asset(n) | Name::Maps(n) | Name::TrackSegment(n, _)) if n <= upto
            );
            if !old {
                continue;
            }
            // The publisher's own retention may have taken it meanwhile.
            match std::fs::remove_file(entry.path()) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::Io {
                        path: entry.path(),
                        err: e,
                    })
                }
                _ => {}
            }
        }
        self.trimmed = upto + 1;
        Ok(())
    }

    /// After a restart the hold of assets that expired before it is not
    /// known: their objects go at once.
    fn remove_expired_leftovers(&mut self, d: &Descriptor, naming: &Naming) -> Result<()> {
        for (name, _) in self.bucket.list()? {
            let expired = matches!(
                naming.parse(&name),
                Some(Name::Asset(n) | Name::Maps(n) | Name::TrackSegment(n, _)) if n < d.first_sequence
            );
            if expired {
                self.bucket.delete(&name)?;
            }
        }
        // Chunks are deleted in order: the first one left is where to go
        // on from.
        self.chunks_gone = self.head.as_ref().map_or(0, |head| {
            let expired = d.first_sequence.saturating_sub(head.base) / CHUNK_RECORDS;
            expired.min(head.chunk)
        });
        // Only the last few can be left from a run killed mid-deletion;
        // the rest went long ago.
        for c in self.chunks_gone.saturating_sub(8)..self.chunks_gone {
            self.bucket.delete(&chunk_name(c))?;
        }
        Ok(())
    }

    /// `--new`: the store's transmission under this prefix goes.
    /// Only objects directly under the prefix (another stream may live in
    /// a folder below it), and those that name others first, so no reader
    /// is sent to an object already gone.
    fn remove_everything(&mut self) -> Result<()> {
        for name in [descriptor::FILE, HEAD].into_iter().chain(LIVE_FILES) {
            self.bucket.delete(name)?;
        }
        for (name, _) in self.bucket.list()? {
            if name != super::lease::LEASE && !name.contains('/') {
                self.bucket.delete(&name)?;
            }
        }
        self.replace = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bucket::location::Location;

    #[test]
    fn new_replaces_only_the_prefixs_own_objects() {
        let bucket = Bucket::in_memory(&Location::new("live", "")).unwrap();
        for name in [
            "stream.json",
            "asset-00000001.mp4",
            "ch1/asset-00000001.mp4",
            ".lease",
        ] {
            bucket
                .put(name, Bytes::from_static(b"x"), Caching::Immutable)
                .unwrap();
        }
        let mut u = Uploader::new(bucket, Path::new("/nonexistent"), true);
        u.remove_everything().unwrap();
        let left: Vec<String> = u
            .bucket
            .list()
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(
            left,
            vec![".lease".to_string(), "ch1/asset-00000001.mp4".to_string()]
        );
    }

    #[test]
    fn an_index_chunk_goes_once_every_asset_it_lists_has_gone() {
        let bucket = Bucket::in_memory(&Location::new("live", "ch1")).unwrap();
        for c in 0..4 {
            bucket
                .put(&chunk_name(c), Bytes::from_static(b"x"), Caching::Immutable)
                .unwrap();
        }
        let mut u = Uploader::new(bucket, Path::new("/nonexistent"), false);
        u.head = Some(Head {
            chunk: 4,
            ..Head::empty(1000, 0)
        });
        // Asset 1500 is still held: chunk 1 (1024..2047) stays for it.
        u.expiry.defer(1500, 0, 10);
        u.remove_expired_chunks(2100).unwrap();
        let left = |u: &Uploader| {
            (0..4)
                .filter(|&c| u.bucket.get(&chunk_name(c)).unwrap().is_some())
                .collect::<Vec<_>>()
        };
        assert_eq!(left(&u), vec![1, 2, 3]);
        u.expiry.due(10);
        u.remove_expired_chunks(2100).unwrap();
        assert_eq!(left(&u), vec![2, 3]);
        // Every full chunk may go; the head is not one.
        u.remove_expired_chunks(u64::MAX).unwrap();
        assert_eq!(left(&u), Vec::<u64>::new());
        assert_eq!(u.chunks_gone, 4);
    }
}
