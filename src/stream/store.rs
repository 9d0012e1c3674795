//! The live directory: assets published atomically under predictable names,
//! the index appended after each publish, the stream descriptor.
//!
//! One writer per directory: [`OutDir::open`] takes an exclusive lock on
//! `.lock` (holding the writer's pid) before it touches anything, and keeps
//! it while the `OutDir` lives. Readers never take it. Every file is
//! written through `write_atomically`, which leaves no temporary behind
//! when it fails.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::capture::asset::FinishedAsset;
use crate::capture::maps::Maps;
use crate::capture::segmenter::Resume;
use crate::stream::descriptor::{self, Descriptor};
use crate::stream::index::{Index, IndexWriter, Record};
use crate::stream::naming::{Name, Naming};
use crate::{Error, Result};

pub const INDEX_FILE: &str = "index.bin";
/// The writer's lock file; its content is the holder's pid, for messages.
pub const LOCK_FILE: &str = ".lock";

pub struct OutDir {
    dir: PathBuf,
    naming: Naming,
    index: Option<IndexWriter>,
    fsync: bool,
    /// The open asset's fragments so far, on disk.
    body: Option<BodyFile>,
    /// Held for the writer's whole life: the lock goes with the descriptor.
    _lock: File,
}

impl OutDir {
    /// Opens (creating) a stream directory. Without `new`, an existing
    /// transmission there is continued: the returned [`Resume`] says where.
    /// With `new`, its index, descriptor and assets are removed first.
    pub fn open(
        dir: &Path,
        naming: Naming,
        new: bool,
        fsync: bool,
    ) -> Result<(OutDir, Option<Resume>)> {
        naming.validate().map_err(Error::Usage)?;
        fs::create_dir_all(dir).map_err(Error::io(dir))?;
        // Before anything is read or deleted: a second writer must leave
        // the directory exactly as it found it.
        let lock = lock(dir)?;
        let index_path = dir.join(INDEX_FILE);
        if new {
            remove_transmission(dir, &naming)?;
        }
        let resume = if index_path.exists() {
            let index = Index::open(&index_path)?;
            let resume = match index.last() {
                Some(last) => Some(Resume {
                    next_sequence: last.sequence.checked_add(1).ok_or_else(|| Error::BadFile {
                        path: index_path.clone(),
                        reason: format!("sequence {} cannot be followed", last.sequence),
                    })?,
                    time_base: last.end(),
                    next_datastamp: last.datastamp + last.media_len(),
                    timescale: index.timescale,
                }),
                None => None,
            };
            if resume.is_none() {
                // An index with no record continues nothing; the next one
                // must be headed by this transmission's timescale, not the
                // one of a run that never published.
                drop(index);
                fs::remove_file(&index_path).map_err(Error::io(&index_path))?;
            }
            resume
        } else {
            None
        };
        clean_interrupted(dir, &naming, resume.map_or(0, |r| r.next_sequence))?;
        Ok((
            OutDir {
                dir: dir.to_path_buf(),
                naming,
                index: None,
                fsync,
                body: None,
                _lock: lock,
            },
            resume,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    pub fn naming(&self) -> &Naming {
        &self.naming
    }

    pub fn asset_path(&self, sequence: u64) -> PathBuf {
        self.dir.join(self.naming.name(sequence))
    }

    /// Opens the index for appending, creating it with the transmission's
    /// timescale if this is a new transmission.
    pub fn start(&mut self, timescale: u32) -> Result<()> {
        let (writer, _) = IndexWriter::open(&self.dir.join(INDEX_FILE), timescale, self.fsync)?;
        self.index = Some(writer);
        Ok(())
    }

    /// Appends a fragment of the open asset `sequence` to its body file. A
    /// body file of another asset (one that never finished) goes first.
    pub fn append_fragment(&mut self, sequence: u64, bytes: &[Bytes]) -> Result<()> {
        if self.body.as_ref().is_some_and(|b| b.sequence != sequence) {
            self.body = None;
        }
        if self.body.is_none() {
            self.body = Some(BodyFile::create(&self.asset_path(sequence), sequence)?);
        }
        let Some(body) = self.body.as_mut() else {
            return Err(Error::Internal("no body file".into()));
        };
        let Err(err) = write_all_vectored(&mut body.file, bytes) else {
            return Ok(());
        };
        let path = body.path.clone();
        // The asset cannot be whole: its publish fails on the length.
        self.body = None;
        Err(Error::Io { path, err })
    }

    /// Writes the asset under a temporary name (its header, the fragments
    /// it holds, then its body file), renames it into place, then appends
    /// its index record: a reader that finds a record finds the whole
    /// asset. The body file goes whatever happens.
    pub fn publish(
        &mut self,
        asset: &FinishedAsset,
        published_us: u64,
        generation: u32,
    ) -> Result<Record> {
        let final_path = self.asset_path(asset.sequence());
        let mut body = self.body.take().filter(|b| b.sequence == asset.sequence());
        write_atomically(&final_path, self.fsync, |f| {
            f.write_all(&asset.header)?;
            write_all_vectored(f, &asset.body)?;
            if let Some(body) = body.as_mut() {
                body.file.rewind()?;
                std::io::copy(&mut body.file, f)?;
            }
            if f.stream_position()? != asset.size() {
                return Err(std::io::Error::other(format!(
                    "asset {} has {} bytes, its maps say {}",
                    asset.sequence(),
                    f.stream_position()?,
                    asset.size()
                )));
            }
            Ok(())
        })?;
        drop(body);
        if self.fsync {
            File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(Error::io(&self.dir))?;
        }
        let record = Record {
            init: generation,
            ..Record::of(asset, published_us)
        };
        let maps = &asset.header[asset.header.len() - Maps::encoded_len(record.entries as usize)..];
        let maps_path = self.dir.join(self.naming.maps_name(record.sequence));
        write_atomically(&maps_path, self.fsync, |f| f.write_all(maps))?;
        let index = self
            .index
            .as_mut()
            .ok_or_else(|| Error::Internal("index not started".into()))?;
        index.append(&record)?;
        Ok(record)
    }

    /// Deletes an expired asset. Called only after the descriptor no longer
    /// lists it, so `locate` does not hand it out.
    pub fn remove_asset(&self, sequence: u64) -> Result<()> {
        let maps = self.dir.join(self.naming.maps_name(sequence));
        for path in [self.asset_path(sequence), maps] {
            match fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::Io { path, err: e })
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Deletes the files of assets before `first` (the asset, its maps, its
    /// track segments) that an earlier writer kept past their expiry.
    pub fn remove_expired_files(&self, first: u64) -> Result<()> {
        for entry in fs::read_dir(&self.dir).map_err(Error::io(&self.dir))? {
            let entry = entry.map_err(Error::io(&self.dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let expired = match self.naming.parse(&name) {
                Some(Name::Asset(n) | Name::TrackSegment(n, _) | Name::Maps(n)) => n < first,
                _ => false,
            };
            if expired {
                fs::remove_file(entry.path()).map_err(Error::io(entry.path()))?;
            }
        }
        Ok(())
    }

    /// The newest index record, if any.
    pub fn last_record(&self) -> Result<Option<Record>> {
        let path = self.dir.join(INDEX_FILE);
        if !path.exists() {
            return Ok(None);
        }
        Ok(Index::open(&path)?.last())
    }

    /// The index records from `first` (a sequence number) on.
    pub fn records_from(&self, first: u64) -> Result<Vec<Record>> {
        let path = self.dir.join(INDEX_FILE);
        if !path.exists() {
            return Ok(Vec::new());
        }
        let index = Index::open(&path)?;
        let base = index.get(0).map_or(0, |r| r.sequence);
        let skip = first.saturating_sub(base) as usize;
        Ok(index.iter().skip(skip).flatten().collect())
    }

    /// Writes a small file of the stream (a playlist) atomically.
    pub fn write_file(&self, name: &str, bytes: &[u8]) -> Result<()> {
        write_atomically(&self.dir.join(name), false, |f| f.write_all(bytes))
    }

    pub fn write_descriptor(&self, d: &Descriptor) -> Result<()> {
        write_descriptor(&self.dir, d)
    }
}

/// Writes `dir`'s descriptor atomically.
pub(crate) fn write_descriptor(dir: &Path, d: &Descriptor) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(d).map_err(|e| Error::Internal(e.to_string()))?;
    write_atomically(&dir.join(descriptor::FILE), false, |f| f.write_all(&bytes))
}

/// The open asset's fragments, appended as they come; removed when dropped
/// (published, abandoned or failed), so none outlives its writer.
struct BodyFile {
    sequence: u64,
    path: PathBuf,
    file: File,
}

impl BodyFile {
    /// Creates the body file beside the asset at `asset`.
    fn create(asset: &Path, sequence: u64) -> Result<BodyFile> {
        let name = asset
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let path = asset.with_file_name(format!(".{name}.body.partial"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(Error::io(&path))?;
        Ok(BodyFile {
            sequence,
            path,
            file,
        })
    }
}

impl Drop for BodyFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Writes byte ranges with as few system calls as the kernel allows.
fn write_all_vectored(f: &mut File, pieces: &[Bytes]) -> std::io::Result<()> {
    use std::io::IoSlice;
    let all: Vec<&[u8]> = pieces
        .iter()
        .map(|b| b.as_ref())
        .filter(|s| !s.is_empty())
        .collect();
    // The kernel takes at most IOV_MAX (1024) slices per call.
    for batch in all.chunks(1024) {
        let mut slices: Vec<IoSlice> = batch.iter().map(|s| IoSlice::new(s)).collect();
        let mut rest = &mut slices[..];
        while !rest.is_empty() {
            let n = f.write_vectored(rest)?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            IoSlice::advance_slices(&mut rest, n);
        }
    }
    Ok(())
}

/// The directory's descriptor, `None` when there is none; one of an
/// unknown version or with a prefix that is not a plain name is refused.
pub fn read_descriptor(dir: &Path) -> Result<Option<Descriptor>> {
    let path = dir.join(descriptor::FILE);
    match fs::read(&path) {
        Ok(bytes) => Descriptor::parse(&path, &bytes).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Io { path, err: e }),
    }
}

/// Writes `path` under a temporary name beside it (`.<name>.partial`), then
/// renames it into place, so a reader finds the old file or the new one,
/// never half of one. Whatever fails, the temporary file goes: a full disk
/// must not leave debris behind.
pub(crate) fn write_atomically(
    path: &Path,
    fsync: bool,
    write: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.partial"));
    let written = (|| {
        let mut f = File::create(&tmp)?;
        write(&mut f)?;
        if fsync {
            f.sync_all()?;
        }
        Ok(())
    })();
    let done = match written {
        Ok(()) => fs::rename(&tmp, path).map_err(Error::io(path)),
        Err(err) => Err(Error::Io {
            path: tmp.clone(),
            err,
        }),
    };
    if done.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    done
}

/// Takes the directory's writer lock without waiting, and writes this
/// process's pid into it. Held by another: an error naming its pid, and
/// nothing in the directory changed.
pub(crate) fn lock(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(Error::io(&path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = (&file).take(32).read_to_string(&mut holder);
            let holder = match holder.trim().parse::<u32>() {
                Ok(pid) => format!("pid {pid}"),
                Err(_) => "pid unknown".into(),
            };
            return Err(Error::Io {
                path: dir.to_path_buf(),
                err: std::io::Error::new(
                    std::io::ErrorKind::WouldBlock,
                    format!(
                        "another backset ({holder}) is writing here and holds {LOCK_FILE}: one writer per directory"
                    ),
                ),
            });
        }
        Err(TryLockError::Error(err)) => return Err(Error::Io { path, err }),
    }
    let pid = format!("{}\n", std::process::id());
    file.set_len(0)
        .and_then(|()| file.write_all(pid.as_bytes()))
        .map_err(Error::io(&path))?;
    Ok(file)
}

/// A run that was killed may have left a temporary file, or an asset renamed
/// into place whose index record was never appended: neither was ever
/// published, so both go.
fn clean_interrupted(dir: &Path, naming: &Naming, next_sequence: u64) -> Result<()> {
    for entry in fs::read_dir(dir).map_err(Error::io(dir))? {
        let entry = entry.map_err(Error::io(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let partial = name.starts_with('.') && name.ends_with(".partial");
        let unindexed = match naming.parse(&name) {
            Some(Name::Asset(n) | Name::TrackSegment(n, _) | Name::Maps(n)) => n >= next_sequence,
            _ => false,
        };
        if partial || unindexed {
            fs::remove_file(entry.path()).map_err(Error::io(entry.path()))?;
        }
    }
    Ok(())
}

/// Removes what a transmission left in `dir`: its index, descriptor,
/// assets, init files and track segments of this naming and temporary files. Nothing else is touched.
pub(crate) fn remove_transmission(dir: &Path, naming: &Naming) -> Result<()> {
    for entry in fs::read_dir(dir).map_err(Error::io(dir))? {
        let entry = entry.map_err(Error::io(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = name == INDEX_FILE
            || name == "live.m3u8"
            || name == "live.mpd"
            || name == descriptor::FILE
            || naming.parse(&name).is_some()
            || (name.starts_with('.') && name.ends_with(".partial"));
        if ours {
            fs::remove_file(entry.path()).map_err(Error::io(entry.path()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// Every file in `dir` with its bytes and modification time.
    fn snapshot(dir: &Path) -> BTreeMap<String, (Vec<u8>, std::time::SystemTime)> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let modified = e.metadata().unwrap().modified().unwrap();
                let bytes = fs::read(e.path()).unwrap_or_default();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    (bytes, modified),
                )
            })
            .collect()
    }

    fn names(dir: &Path) -> Vec<String> {
        snapshot(dir).into_keys().collect()
    }

    #[test]
    fn a_second_writer_is_refused_with_the_holders_pid_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (first, _) = OutDir::open(dir.path(), Naming::default(), false, false).unwrap();
        first.write_file("stream.json", b"{}").unwrap();
        fs::write(dir.path().join("asset-00000000.mp4"), b"x").unwrap();
        fs::write(dir.path().join(".asset-00000001.mp4.partial"), b"x").unwrap();
        let before = snapshot(dir.path());
        let pid = std::process::id().to_string();
        assert_eq!(before[LOCK_FILE].0, format!("{pid}\n").into_bytes());
        for new in [false, true] {
            let e = OutDir::open(dir.path(), Naming::default(), new, false)
                .err()
                .unwrap();
            assert_eq!(e.exit_code(), 1);
            let text = e.to_string();
            assert!(text.contains(&format!("pid {pid}")), "{text}");
            assert_eq!(snapshot(dir.path()), before, "--new {new}");
        }
        drop(first);
        let (_again, _) = OutDir::open(dir.path(), Naming::default(), true, false).unwrap();
        assert_eq!(
            names(dir.path()),
            [LOCK_FILE],
            "the lock went with the writer"
        );
    }

    #[test]
    fn a_failed_write_or_rename_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stream.json");
        let full = || std::io::Error::from(std::io::ErrorKind::StorageFull);
        let e = write_atomically(&path, false, |f| {
            f.write_all(b"{").and_then(|()| Err(full()))
        });
        assert!(e.is_err());
        assert_eq!(names(dir.path()), Vec::<String>::new(), "write failed");

        // A directory where the file goes: the rename fails.
        fs::create_dir(&path).unwrap();
        let e = write_atomically(&path, true, |f| f.write_all(b"{}"));
        assert!(e.is_err());
        assert_eq!(names(dir.path()), ["stream.json"], "rename failed");
        write_atomically(&dir.path().join("other"), false, |f| f.write_all(b"1")).unwrap();
        assert_eq!(fs::read(dir.path().join("other")).unwrap(), b"1");
    }

    fn descriptor_json(version: u32, prefix: &str) -> String {
        format!(
            r#"{{"version":{version},"prefix":{prefix:?},"pattern":"x","index":"index.bin",
            "timescale":1000,"interval_us":2000000,"tracks":[],"started_us":0,"ended":false}}"#
        )
    }

    #[test]
    fn a_descriptor_of_another_version_or_with_a_path_for_a_prefix_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(descriptor::FILE);
        fs::write(&path, descriptor_json(1, "cam1")).unwrap();
        assert_eq!(read_descriptor(dir.path()).unwrap().unwrap().prefix, "cam1");
        for (json, says) in [
            (
                descriptor_json(2, "cam1"),
                "stream.json version 2 is not supported",
            ),
            (descriptor_json(1, "../../../../etc/passwd"), "bad prefix"),
            (descriptor_json(1, &"x".repeat(65)), "bad prefix"),
            (r#"{"prefix":"cam1"}"#.into(), "no version"),
            (
                r#"{"version":"1"}"#.into(),
                "version \"1\" is not supported",
            ),
        ] {
            fs::write(&path, &json).unwrap();
            let e = read_descriptor(dir.path()).err().unwrap();
            assert_eq!(e.exit_code(), 2);
            let text = e.to_string();
            assert!(
                text.contains(says) && text.contains("stream.json"),
                "{text}"
            );
        }
    }
}
