//! A local mirror of a stream directory on an object store, for `serve
//! s3://…`: the replica keeps the stream's files in a directory of its own
//! and serves that directory as it serves any other, so its derived files,
//! playlists, memory cache and audience work unchanged, and the replica
//! itself holds nothing the store does not.
//!
//! A sync reads `stream.json` and `index-head.bin`, then, for each record
//! the mirror lacks, fetches the asset (its size checked against the
//! record), writes it atomically, and appends the record verbatim to the
//! local `index.bin`; `stream.json` is written last. The mirror starts at
//! the store's oldest retained asset (or the newest `--mirror-window`), so
//! the local index may begin at any sequence. Records before the mirror's
//! window are appended without their assets, as expired, so the index stays
//! one run. Each generation's init files are written from the first asset
//! of it (the bytes `serve` would derive), so they outlive their assets'
//! retention as on the writer's side. Retention follows the store's with
//! the writer's hold ([`crate::stream::expiry`]). What to do is decided in
//! [`plan`], without IO.
//!
//! The mirror's calls are blocking ([`Bucket`]): run it on a thread of its
//! own, never inside the server's runtime.

pub mod plan;
pub mod replica;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use crate::bucket::index_form::{chunk_name, Head, CHUNK_RECORDS, HEAD};
use crate::bucket::stream_reader::{read_descriptor, read_stored_head};
use crate::bucket::Bucket;
use crate::capture::maps::Maps;
use crate::stream::descriptor::{self, Descriptor};
use crate::stream::expiry::Expiry;
use crate::stream::index::{Index, IndexWriter, Record, Span, HEADER_LEN, RECORD_LEN};
use crate::stream::locate::seconds;
use crate::stream::naming::Naming;
use crate::stream::store::{self, write_atomically, INDEX_FILE};
use crate::stream::track_files::TrackFiles;
use crate::{Error, Result};
use plan::{continues, plan, Local, Plan};

/// A stream directory on a store, mirrored into a local directory.
pub struct Mirror {
    bucket: Bucket,
    dir: PathBuf,
    window: Option<u64>,
    expiry: Expiry,
    /// The window's start the last sync held expired assets up to; `None`
    /// before the first sync, which also holds what an earlier run of the
    /// mirror left before the window.
    expired_to: Option<u64>,
}

/// What one sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Synced {
    /// The mirror held another transmission and was emptied.
    pub restarted: bool,
    /// Records appended to the local index.
    pub appended: u64,
    /// Assets fetched from the store.
    pub fetched: u64,
    /// Expired assets whose files were deleted.
    pub removed: u64,
}

impl Mirror {
    /// A mirror of `bucket`'s stream in `dir` (which must exist), keeping at
    /// most the newest `window` assets (`None`: all the store retains).
    pub fn new(bucket: Bucket, dir: &Path, window: Option<u64>) -> Mirror {
        Mirror {
            bucket,
            dir: dir.to_path_buf(),
            window,
            expiry: Expiry::default(),
            expired_to: None,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Brings the mirror up to the store; `now_us` is the wall clock, µs
    /// since the Unix epoch (expired assets go when their hold is over).
    pub fn sync(&mut self, now_us: u64) -> Result<Synced> {
        let store = self.store_descriptor()?;
        let head = self.store_head(&store)?;
        let mut done = Synced::default();
        let local = self.local().unwrap_or_else(|_| Local {
            // Unreadable: whatever it is, it is not a mirror to continue.
            started_us: Some(u64::MAX),
            ..Local::default()
        });
        let mut course = plan(&local, &store, &head, self.window);
        let mut records = match course.restart {
            true => None,
            false => self.store_records(&head, course.from)?,
        };
        let broken = match (&local.last, records.as_ref().and_then(|r| r.first())) {
            (Some(last), Some(next)) => !course.restart && !continues(last, next),
            _ => false,
        };
        if course.restart || broken || records.is_none() {
            self.start_over(&store)?;
            done.restarted = true;
            course = plan(&Local::default(), &store, &head, self.window);
            records = self.store_records(&head, course.from)?;
        }
        let records = records.ok_or_else(|| {
            Error::BadAnswer(format!(
                "{}: an index chunk of a retained asset is missing",
                self.bucket.location()
            ))
        })?;
        let old_first = match (done.restarted, self.expired_to) {
            (true, _) => course.first,
            (false, Some(first)) => first,
            (false, None) => self.local_base()?.unwrap_or(course.first),
        };
        self.append(&store, &head, &records, course, &mut done)?;
        self.write_descriptor(&store, course.first)?;
        self.expire(old_first, course.first, now_us, store.ended, &mut done)?;
        self.expired_to = Some(course.first);
        Ok(done)
    }

    /// Whether the store holds a stream at all (a replica may start before
    /// the encoder does).
    pub fn published(&self) -> Result<bool> {
        Ok(self.bucket.get(descriptor::FILE)?.is_some())
    }

    /// The store's descriptor; none is an error: the prefix holds no stream.
    fn store_descriptor(&self) -> Result<Descriptor> {
        read_descriptor(&self.bucket)?.ok_or_else(|| {
            Error::Usage(format!(
                "{}: no such object: no stream has been published at {}",
                self.bucket.location().url_of(descriptor::FILE),
                self.bucket.location()
            ))
        })
    }

    /// The store's index head; none yet is an empty index.
    fn store_head(&self, store: &Descriptor) -> Result<Head> {
        let bad = |reason: String| Error::BadFile {
            path: self.bucket.location().url_of(HEAD).into(),
            reason,
        };
        let Some(head) = read_stored_head(&self.bucket)? else {
            return Ok(Head::empty(store.timescale, store.first_sequence));
        };
        if head.timescale != store.timescale {
            return Err(bad(format!(
                "timescale {}, stream.json says {}",
                head.timescale, store.timescale
            )));
        }
        Ok(head)
    }

    /// The store's records from index position `from` on: one GET per full
    /// chunk, the rest from the head. `None` when a chunk they are in has
    /// gone (retention deleted it).
    fn store_records(&self, head: &Head, from: u64) -> Result<Option<Vec<Record>>> {
        let mut out = Vec::new();
        for chunk in from / CHUNK_RECORDS..head.chunk {
            let name = chunk_name(chunk);
            let Some(bytes) = self.bucket.get(&name)? else {
                return Ok(None);
            };
            let first = chunk * CHUNK_RECORDS;
            let body = bytes.get(HEADER_LEN..).unwrap_or_default();
            for (i, raw) in body.chunks_exact(RECORD_LEN).enumerate() {
                let position = first + i as u64;
                let record = Record::decode(raw).filter(|r| head.in_place(position, r));
                let Some(record) = record else {
                    return Err(Error::BadFile {
                        path: self.bucket.location().url_of(&name).into(),
                        reason: format!("record {i} is damaged or out of place"),
                    });
                };
                if position >= from {
                    out.push(record);
                }
            }
            if body.len() / RECORD_LEN != CHUNK_RECORDS as usize {
                return Err(Error::BadFile {
                    path: self.bucket.location().url_of(&name).into(),
                    reason: format!("{} records, not {CHUNK_RECORDS}", body.len() / RECORD_LEN),
                });
            }
        }
        let in_head = from.saturating_sub(head.chunk * CHUNK_RECORDS) as usize;
        out.extend(head.records.iter().skip(in_head));
        Ok(Some(out))
    }

    /// What the mirror directory holds.
    fn local(&self) -> Result<Local> {
        let descriptor = store::read_descriptor(&self.dir)?;
        let path = self.dir.join(INDEX_FILE);
        let index = match path.exists() {
            true => Some(Index::open(&path)?),
            false => None,
        };
        Ok(Local {
            started_us: descriptor.as_ref().map(|d| d.started_us),
            first_sequence: descriptor.as_ref().map_or(0, |d| d.first_sequence),
            timescale: index.as_ref().map(|i| i.timescale),
            last: index.as_ref().and_then(Index::last),
        })
    }

    /// The sequence of the local index's first record.
    fn local_base(&self) -> Result<Option<u64>> {
        let path = self.dir.join(INDEX_FILE);
        if !path.exists() {
            return Ok(None);
        }
        Ok(Index::open(&path)?.get(0).map(|r| r.sequence))
    }

    /// Empties the mirror: the descriptor first, so the server stops
    /// naming what goes next.
    fn start_over(&mut self, store: &Descriptor) -> Result<()> {
        let prefix = store::read_descriptor(&self.dir)
            .ok()
            .flatten()
            .map_or_else(|| store.prefix.clone(), |d| d.prefix);
        remove_file(&self.dir.join(descriptor::FILE))?;
        store::remove_transmission(&self.dir, &Naming::new(&prefix))?;
        if prefix != store.prefix {
            store::remove_transmission(&self.dir, &Naming::new(&store.prefix))?;
        }
        self.expiry = Expiry::default();
        Ok(())
    }

    /// Appends `records` to the local index, each after its asset (fetched
    /// only from `course.first` on). When the window's start moves, the
    /// descriptor says so before any record past it lands.
    fn append(
        &self,
        store: &Descriptor,
        head: &Head,
        records: &[Record],
        course: Plan,
        done: &mut Synced,
    ) -> Result<()> {
        if let Some(mut local) = store::read_descriptor(&self.dir)? {
            if course.first > local.first_sequence {
                local.first_sequence = course.first;
                store::write_descriptor(&self.dir, &local)?;
            }
        }
        let (mut index, _) = IndexWriter::open(&self.dir.join(INDEX_FILE), head.timescale, false)?;
        let naming = Naming::new(&store.prefix);
        let mut inits = TrackFiles::new(&self.dir, naming.clone(), false, true, false);
        inits.set_tracks(store.tracks.iter().map(|t| t.id).collect());
        for record in records {
            if record.sequence >= course.first {
                self.fetch(&naming, record, &inits)?;
                done.fetched += 1;
            }
            index.append(record)?;
            done.appended += 1;
        }
        Ok(())
    }

    /// Fetches asset `record` into the mirror, and its generation's init
    /// files if they are not there yet. One already there whole (a mirror
    /// stopped between the asset and its record) is kept.
    fn fetch(&self, naming: &Naming, record: &Record, inits: &TrackFiles) -> Result<()> {
        let name = naming.name(record.sequence);
        let path = self.dir.join(&name);
        let on_disk = std::fs::metadata(&path).is_ok_and(|m| m.len() == record.size);
        let bytes = match on_disk {
            true => std::fs::read(&path).map_err(Error::io(&path))?.into(),
            false => self.bucket.get(&name)?.ok_or_else(|| {
                Error::BadAnswer(format!(
                    "{}: the index lists it but the store has no such object",
                    self.bucket.location().url_of(&name)
                ))
            })?,
        };
        if bytes.len() as u64 != record.size {
            return Err(Error::BadAnswer(format!(
                "{}: {} bytes, its index record says {}",
                self.bucket.location().url_of(&name),
                bytes.len(),
                record.size
            )));
        }
        if !on_disk {
            write_atomically(&path, false, |f| std::io::Write::write_all(f, &bytes))?;
        }
        let header_len = (record.header_len as usize).min(bytes.len());
        let init_len = header_len.saturating_sub(Maps::encoded_len(record.entries as usize));
        inits.write_inits(record.init, &bytes[..init_len])
    }

    /// Writes the store's descriptor as the mirror's, its window starting
    /// at `first`.
    fn write_descriptor(&self, store: &Descriptor, first: u64) -> Result<()> {
        let mut local = store.clone();
        local.first_sequence = first;
        local.index = INDEX_FILE.into();
        if let Some(n) = self.window {
            local.keep_assets = Some(store.keep_assets.map_or(n, |k| k.min(n)));
        }
        if store::read_descriptor(&self.dir).ok().flatten().as_ref() == Some(&local) {
            return Ok(());
        }
        store::write_descriptor(&self.dir, &local)
    }

    /// Holds the assets from `old_first` to `first` (now expired) for their
    /// own duration plus the window's, as the writer does, then deletes
    /// those whose hold is over (all of them once the transmission ended),
    /// and the init files no kept asset uses.
    fn expire(
        &mut self,
        old_first: u64,
        first: u64,
        now_us: u64,
        ended: bool,
        done: &mut Synced,
    ) -> Result<()> {
        let path = self.dir.join(INDEX_FILE);
        let index = Index::open(&path)?;
        let base = index.get(0).map_or(first, |r| r.sequence);
        let position = |s: u64| usize::try_from(s.saturating_sub(base)).unwrap_or(usize::MAX);
        let kept: Vec<Record> = (position(first)..index.len())
            .filter_map(|i| index.get(i))
            .collect();
        let window_s = Span::of(&kept, index.timescale).seconds;
        let naming = match store::read_descriptor(&self.dir)? {
            Some(d) => Naming::new(d.prefix),
            None => return Ok(()),
        };
        for i in position(old_first)..position(first).min(index.len()) {
            let Some(r) = index.get(i) else { continue };
            if self.dir.join(naming.name(r.sequence)).exists() {
                let own_s = seconds(r.duration, index.timescale);
                let hold_us = ((own_s + window_s) * 1e6).max(1e6) as u64;
                self.expiry
                    .defer(r.sequence, r.init, now_us.saturating_add(hold_us));
            }
        }
        for sequence in self.expiry.due(if ended { u64::MAX } else { now_us }) {
            remove_file(&self.dir.join(naming.name(sequence)))?;
            remove_file(&self.dir.join(naming.maps_name(sequence)))?;
            done.removed += 1;
        }
        let oldest = match (
            self.expiry.oldest_generation(),
            kept.first().map(|r| r.init),
        ) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).unwrap_or(0),
        };
        TrackFiles::new(&self.dir, naming, false, true, false).remove_inits_before(oldest)
    }
}

fn remove_file(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path)(e)),
        _ => Ok(()),
    }
}
