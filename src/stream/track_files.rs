//! The files a stream directory holds for players beside its assets: each
//! initialisation generation as its own files (all tracks, and one per
//! track), and with `--dash` each asset's fragments of one track alone
//! (`stream::track_view`). Inits are written before the first asset that
//! uses them is indexed and deleted once no retained asset does; a track
//! segment is renamed into place before its asset's index record is
//! appended and deleted with the asset, so a playlist never names a file
//! that is not (yet, or any more) there.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::stream::naming::{Name, Naming};
use crate::stream::store::write_atomically;
use crate::stream::track_view;
use crate::{Error, Result};

pub(crate) struct TrackFiles {
    dir: PathBuf,
    naming: Naming,
    fsync: bool,
    /// Write init files (for playlists: `--hls` or `--dash`).
    inits: bool,
    /// Write per-track segments (`--dash`).
    split: bool,
    /// The tracks of the current generation, by id.
    tracks: Vec<u32>,
    /// The open asset's per-track segments so far, as temporary files.
    open: Option<(u64, Vec<Partial>)>,
}

/// A track segment being written, under a temporary name that goes unless
/// it is renamed into place.
struct Partial {
    track: u32,
    path: PathBuf,
    file: File,
    done: bool,
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl TrackFiles {
    pub fn new(dir: &Path, naming: Naming, fsync: bool, inits: bool, split: bool) -> TrackFiles {
        TrackFiles {
            dir: dir.to_path_buf(),
            naming,
            fsync,
            inits,
            split,
            tracks: Vec::new(),
            open: None,
        }
    }

    /// The tracks of the initialisation that arrived, by id: what the
    /// fragments that follow are cut into.
    pub fn set_tracks(&mut self, tracks: Vec<u32>) {
        self.tracks = tracks;
    }

    /// Writes generation `generation`'s init files, all tracks and each
    /// track alone, unless they are there already (a continued
    /// transmission).
    pub fn write_inits(&self, generation: u32, init: &[u8]) -> Result<()> {
        let tracks = &self.tracks;
        if !self.inits {
            return Ok(());
        }
        let whole = self.dir.join(self.naming.init_name(generation));
        if !whole.exists() {
            write_atomically(&whole, self.fsync, |f| f.write_all(init))?;
        }
        for &id in tracks.iter() {
            let path = self.dir.join(self.naming.track_init_name(generation, id));
            if !path.exists() {
                let bytes = track_view::track_init(init, id)?;
                write_atomically(&path, self.fsync, |f| f.write_all(&bytes))?;
            }
        }
        Ok(())
    }

    /// Appends one fragment of the open asset `sequence`, cut per track.
    pub fn append(&mut self, sequence: u64, fragment: &[Bytes]) -> Result<()> {
        if !self.split {
            return Ok(());
        }
        if self.open.as_ref().is_none_or(|(s, _)| *s != sequence) {
            self.open = Some((sequence, self.create(sequence)?));
        }
        let joined: Vec<u8> = fragment.iter().flat_map(|b| b.iter().copied()).collect();
        let Some((_, partials)) = self.open.as_mut() else {
            return Ok(());
        };
        let mut cut = Vec::with_capacity(joined.len());
        for p in partials.iter_mut() {
            cut.clear();
            track_view::track_fragments(&joined, p.track, &mut cut)?;
            p.file.write_all(&cut).map_err(Error::io(&p.path))?;
        }
        Ok(())
    }

    fn create(&self, sequence: u64) -> Result<Vec<Partial>> {
        self.tracks
            .iter()
            .map(|&track| {
                let name = self.naming.track_segment_name(sequence, track);
                let path = self.dir.join(format!(".{name}.partial"));
                let file = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&path)
                    .map_err(Error::io(&path))?;
                Ok(Partial {
                    track,
                    path,
                    file,
                    done: false,
                })
            })
            .collect()
    }

    /// Renames asset `sequence`'s track segments into place.
    pub fn publish(&mut self, sequence: u64) -> Result<()> {
        let Some((open, mut partials)) = self.open.take() else {
            return Ok(());
        };
        if open != sequence {
            return Ok(());
        }
        for p in &mut partials {
            if self.fsync {
                p.file.sync_all().map_err(Error::io(&p.path))?;
            }
            let path = self
                .dir
                .join(self.naming.track_segment_name(sequence, p.track));
            fs::rename(&p.path, &path).map_err(Error::io(&path))?;
            p.done = true;
        }
        Ok(())
    }

    /// Deletes asset `sequence`'s track segments.
    pub fn remove_segments(&self, sequence: u64) -> Result<()> {
        for &track in &self.tracks {
            remove(
                &self
                    .dir
                    .join(self.naming.track_segment_name(sequence, track)),
            )?;
        }
        Ok(())
    }

    /// Deletes the init files of generations before `first`: no retained
    /// asset uses them any more.
    pub fn remove_inits_before(&self, first: u32) -> Result<()> {
        for entry in fs::read_dir(&self.dir).map_err(Error::io(&self.dir))? {
            let entry = entry.map_err(Error::io(&self.dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let old = match self.naming.parse(&name) {
                Some(Name::Init(g) | Name::TrackInit(g, _)) => g < first,
                _ => false,
            };
            if old {
                remove(&entry.path())?;
            }
        }
        Ok(())
    }
}

fn remove(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::Io {
            path: path.to_path_buf(),
            err: e,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::capture::segmenter::{self, Event, Segmenter};
    use crate::capture::tests::support::fixture;
    use crate::stream::index::Record;
    use crate::stream::publisher::{Config, Note, Publisher};

    const T0: u64 = 1_764_000_000_000_000;

    fn config(dir: &Path, keep_assets: Option<u64>) -> Config {
        Config {
            dir: dir.to_path_buf(),
            prefix: "asset".into(),
            new: false,
            fsync: false,
            cut: segmenter::Config::default(),
            keep_us: None,
            keep_assets,
            hls: true,
            dash: true,
        }
    }

    /// The events of two captures back to back (the encoder restarted
    /// with another codec: a second generation).
    fn two_generations() -> Vec<Event> {
        let mut segmenter = Segmenter::new(segmenter::Config::default(), None);
        let mut events: Vec<Event> = Vec::new();
        for name in ["h264-aac-gop.mp4", "hevc-aac-separate-moof.mp4"] {
            segmenter.push(fixture(name), T0, &mut events).unwrap();
        }
        segmenter.finish(&mut events).unwrap();
        events
    }

    /// Publishes [`two_generations`] with `--hls --dash`.
    fn publish(dir: &Path, keep_assets: Option<u64>) -> Vec<Record> {
        let (mut publisher, _) = Publisher::open(config(dir, keep_assets), T0).unwrap();
        let events = two_generations();
        let mut notes = Vec::new();
        for event in events {
            publisher.handle(event, T0, &mut notes).unwrap();
        }
        publisher.finish(T0, &mut notes).unwrap();
        notes
            .into_iter()
            .filter_map(|n| match n {
                Note::Published(r) => Some(r),
                Note::Warning(_) => None,
            })
            .collect()
    }

    fn files(dir: &Path) -> BTreeSet<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("init") || n.ends_with(".m4s"))
            .collect()
    }

    #[test]
    fn each_generation_has_its_inits_and_each_asset_its_track_segments() {
        let dir = tempfile::tempdir().unwrap();
        let records = publish(dir.path(), None);
        let generations: Vec<u32> = records.iter().map(|r| r.init).collect();
        assert_eq!(generations.first(), Some(&0));
        assert_eq!(generations.last(), Some(&1), "{generations:?}");
        assert!(generations
            .windows(2)
            .all(|w| w[1] == w[0] || w[1] == w[0] + 1));
        let n = Naming::default();
        let mut want: BTreeSet<String> = (0..2)
            .flat_map(|g| {
                [
                    n.init_name(g),
                    n.track_init_name(g, 1),
                    n.track_init_name(g, 2),
                ]
            })
            .collect();
        want.extend(
            records
                .iter()
                .flat_map(|r| [1, 2].map(|t| n.track_segment_name(r.sequence, t))),
        );
        assert_eq!(files(dir.path()), want);
        for r in &records {
            let asset = fs::read(dir.path().join(n.name(r.sequence))).unwrap();
            let init = fs::read(dir.path().join(n.init_name(r.init))).unwrap();
            assert!(
                asset.starts_with(&init),
                "asset {} in generation {}",
                r.sequence,
                r.init
            );
            for t in [1, 2] {
                let mut cut = Vec::new();
                track_view::track_fragments(&asset[r.header_len as usize..], t, &mut cut).unwrap();
                let file = fs::read(dir.path().join(n.track_segment_name(r.sequence, t))).unwrap();
                assert!(
                    file == cut && !cut.is_empty(),
                    "asset {} track {t}",
                    r.sequence
                );
            }
        }
    }

    #[test]
    fn retention_takes_the_track_segments_with_their_asset_and_unused_inits() {
        let dir = tempfile::tempdir().unwrap();
        let records = publish(dir.path(), Some(2));
        let n = Naming::default();
        let kept = &records[records.len() - 2..];
        assert!(
            kept.iter().all(|r| r.init == 1),
            "the newest two are of generation 1"
        );
        let mut want: BTreeSet<String> = [
            n.init_name(1),
            n.track_init_name(1, 1),
            n.track_init_name(1, 2),
        ]
        .into();
        want.extend(
            kept.iter()
                .flat_map(|r| [1, 2].map(|t| n.track_segment_name(r.sequence, t))),
        );
        assert_eq!(files(dir.path()), want);
    }

    #[test]
    fn an_expired_assets_files_stay_while_players_may_still_fetch_it() {
        let dir = tempfile::tempdir().unwrap();
        let (mut publisher, _) = Publisher::open(config(dir.path(), Some(2)), T0).unwrap();
        let n = Naming::default();
        let on_disk = |s: u64| dir.path().join(n.name(s)).is_file();
        let (mut notes, mut published, mut now) = (Vec::new(), 0, T0);
        for event in two_generations() {
            let asset = matches!(event, Event::Asset(_));
            publisher.handle(event, now, &mut notes).unwrap();
            if asset {
                published += 1;
                // Assets 3 s apart: a 2 s one expires with 4 s of
                // playlist behind it, so 6 s of grace: two publishes.
                now += 3_000_000;
            }
            if published == 3 {
                assert!(on_disk(0), "asset 0 just left the playlists: still there");
            }
        }
        assert_eq!(publisher.descriptor().first_sequence, published - 2);
        assert!(published >= 5, "{published} assets");
        assert!(!on_disk(0), "6 s after it expired, asset 0 is gone");
        assert!(on_disk(published - 3), "the last to expire is still kept");
        publisher.finish(now, &mut notes).unwrap();
        assert!(!on_disk(published - 3), "the end takes what was kept");
        let failed = |n: &Note| matches!(n, Note::Warning(w) if w.contains("asset-0"));
        assert!(
            !notes.iter().any(failed),
            "every deletion worked: {notes:?}"
        );
    }
}
