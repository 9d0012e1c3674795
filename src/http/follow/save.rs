//! `follow --save DIR`: every whole asset follow fetches is also kept in
//! DIR as a stream directory of its own, one that `locate`, `verify` and
//! `serve` read like the one `segment` writes: the asset under its own
//! name, its maps beside it (`<asset>.maps`), its record appended to
//! `index.bin`, the generation's init file, and `stream.json`. Each file is
//! written whole under a temporary name and renamed ([`write_atomically`]);
//! the record goes last, so a record always names a whole asset.
//!
//! Resumable: opening DIR again reads its index; [`Saver::next`] is the
//! asset to go on from, and an asset already saved is never written again.
//! An index cannot skip a sequence: an asset that expired on the host
//! before it could be kept ends the run with an error rather than leave a
//! directory that `verify` refuses. One writer per directory, as for
//! `segment`: DIR's `.lock` is held while saving.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::capture::framing::Framer;
use crate::capture::init::{Init, Track};
use crate::capture::maps::Maps;
use crate::stream::descriptor::{self, Descriptor};
use crate::stream::index::{IndexWriter, Record};
use crate::stream::maps_reader::{maps_in, Layout};
use crate::stream::naming::Naming;
use crate::stream::store::{lock, read_descriptor, write_atomically, write_descriptor, INDEX_FILE};
use crate::{Error, Result};

pub struct Saver {
    dir: PathBuf,
    descriptor: Option<Descriptor>,
    index: Option<IndexWriter>,
    last: Option<Record>,
    /// The newest saved asset's init (`ftyp` + `moov`), and its generation.
    init: Vec<u8>,
    generation: u32,
    _lock: File,
}

impl Saver {
    /// Opens (creating) DIR, continuing what an earlier run saved there.
    pub fn open(dir: &Path) -> Result<Saver> {
        fs::create_dir_all(dir).map_err(Error::io(dir))?;
        let lock = lock(dir)?;
        let descriptor = read_descriptor(dir)?;
        let index_path = dir.join(INDEX_FILE);
        let mut saver = Saver {
            dir: dir.to_path_buf(),
            descriptor,
            index: None,
            last: None,
            init: Vec::new(),
            generation: 0,
            _lock: lock,
        };
        if let (Some(d), true) = (&saver.descriptor, index_path.exists()) {
            let (writer, last) = IndexWriter::open(&index_path, d.timescale, false)?;
            saver.index = Some(writer);
            if let Some(last) = last {
                let naming = Naming::new(&d.prefix);
                let path = dir.join(naming.name(last.sequence));
                let bytes = fs::read(&path).map_err(Error::io(&path))?;
                let maps = Layout::of(&bytes).maps.unwrap_or_default();
                saver.init = bytes[..maps.start].to_vec();
                saver.generation = last.init;
                saver.last = Some(last);
            }
        }
        Ok(saver)
    }

    /// The asset to go on from: the one after the last saved.
    pub fn next(&self) -> Option<u64> {
        self.last.and_then(|r| r.sequence.checked_add(1))
    }

    /// The host's `stream.json`, when follow read one: the saved
    /// descriptor takes its shape (interval, tracks, anchor) from it.
    pub fn source(&mut self, host: &Descriptor) {
        if self.descriptor.is_none() {
            self.descriptor = Some(Descriptor {
                first_sequence: 0,
                keep_us: None,
                keep_assets: None,
                ended: false,
                ended_us: None,
                index: INDEX_FILE.into(),
                ..host.clone()
            });
        }
    }

    /// Keeps asset `name`, fetched whole, after the last one kept.
    pub fn save(&mut self, name: &str, bytes: &[u8], now_us: u64) -> Result<()> {
        let bad = |why: String| Error::BadAnswer(format!("{name}: {why}"));
        let layout = Layout::of(bytes);
        let (Some(maps_at), Some(first_moof)) = (layout.maps, layout.first_moof) else {
            return Err(bad("no maps box, or no moof after it".into()));
        };
        let maps = maps_in(bytes).map_err(bad)?;
        if self.index.is_some() && self.naming().name(maps.sequence) != name {
            return Err(Error::Usage(format!(
                "{}: it holds another stream than the one of {name}; save to a new directory",
                self.dir.display()
            )));
        }
        if let Some(last) = self.last {
            if maps.sequence <= last.sequence {
                return Ok(()); // kept already
            }
            if Some(maps.sequence) != last.sequence.checked_add(1) || last.end() != maps.start {
                return Err(Error::Network(format!(
                    "{name} does not follow {} in {}: the assets between expired on the host before they could be kept, and an index cannot skip them; save to a new directory",
                    self.naming().name(last.sequence),
                    self.dir.display()
                )));
            }
        }
        let init = &bytes[..maps_at.start];
        self.start(name, &maps, init, now_us)?;
        self.reopen()?;
        let naming = self.naming();
        if self.init != init {
            if !self.init.is_empty() {
                self.generation += 1;
            }
            self.init = init.to_vec();
            let path = self.dir.join(naming.init_name(self.generation));
            write_atomically(&path, false, |f| f.write_all(init))?;
        }
        let record = Record {
            sequence: maps.sequence,
            start: maps.start,
            duration: maps.duration,
            datastamp: maps.start_datastamp,
            size: bytes.len() as u64,
            header_len: u32::try_from(first_moof).map_err(|_| bad("header too long".into()))?,
            entries: maps.entries.len() as u32,
            published_us: now_us,
            init: self.generation,
        };
        write_atomically(&self.dir.join(name), false, |f| f.write_all(bytes))?;
        let maps_path = self.dir.join(naming.maps_name(maps.sequence));
        write_atomically(&maps_path, false, |f| f.write_all(&bytes[maps_at]))?;
        self.index
            .as_mut()
            .ok_or_else(|| Error::Internal("save: no index".into()))?
            .append(&record)?;
        self.last = Some(record);
        Ok(())
    }

    /// The transmission ended and its last asset is kept: so says DIR.
    pub fn ended(&mut self, now_us: u64) -> Result<()> {
        let Some(d) = self.descriptor.as_mut().filter(|_| self.last.is_some()) else {
            return Ok(());
        };
        d.ended = true;
        d.ended_us = Some(now_us);
        let d = d.clone();
        write_descriptor(&self.dir, &d)
    }

    /// A directory a run that saw the end left: more follows now.
    fn reopen(&mut self) -> Result<()> {
        let Some(d) = self.descriptor.as_mut().filter(|d| d.ended) else {
            return Ok(());
        };
        d.ended = false;
        d.ended_us = None;
        let d = d.clone();
        write_descriptor(&self.dir, &d)
    }

    fn naming(&self) -> Naming {
        self.descriptor
            .as_ref()
            .map_or_else(Naming::default, |d| Naming::new(&d.prefix))
    }

    /// Before the first asset of a new directory: its descriptor, then its
    /// index, headed by the assets' timescale.
    fn start(&mut self, name: &str, maps: &Maps, init: &[u8], now_us: u64) -> Result<()> {
        if self.index.is_some() {
            return Ok(());
        }
        let suffix = format!("-{:08}.mp4", maps.sequence);
        let prefix = name.strip_suffix(&suffix).unwrap_or("asset");
        let tracks = tracks(init).map_err(|why| Error::BadAnswer(format!("{name}: {why}")))?;
        let d = match self.descriptor.take() {
            Some(d) => Descriptor {
                first_sequence: maps.sequence,
                ..d
            },
            None => Descriptor {
                version: descriptor::VERSION,
                prefix: prefix.into(),
                pattern: Naming::new(prefix).pattern(),
                index: INDEX_FILE.into(),
                timescale: maps.timescale,
                interval_us: maps.duration.saturating_mul(1_000_000)
                    / u64::from(maps.timescale.max(1)),
                size: None,
                // Not known from the assets; playlists fall back on the interval.
                max_duration_us: None,
                tracks,
                first_sequence: maps.sequence,
                keep_us: None,
                keep_assets: None,
                started_us: now_us,
                anchor_us: None,
                composition_offset: None,
                ended: false,
                ended_us: None,
            },
        };
        write_descriptor(&self.dir, &d)?;
        self.descriptor = Some(d);
        let (writer, _) = IndexWriter::open(&self.dir.join(INDEX_FILE), maps.timescale, false)?;
        self.index = Some(writer);
        Ok(())
    }
}

/// The tracks of an init (`ftyp` + `moov`), for the saved `stream.json`.
fn tracks(init: &[u8]) -> std::result::Result<Vec<Track>, String> {
    let mut framer = Framer::default();
    framer.push(init);
    let mut boxes = Vec::new();
    while let Some(b) = framer.next_box().map_err(|e| e.to_string())? {
        boxes.push(b);
    }
    let find = |kind: &[u8; 4]| boxes.iter().find(|b| &b.kind == kind);
    let moov = find(b"moov").ok_or("no moov in the asset")?;
    Init::parse(find(b"ftyp"), moov)
        .map(|init| init.tracks)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::tests::support::{fixture, segment, SECOND};
    use crate::stream::reader::Stream;
    use crate::stream::verify::verify_dir;

    /// A real transmission's assets, as a host serves them: (name, bytes).
    fn assets() -> Vec<(String, Vec<u8>)> {
        let naming = Naming::default();
        segment(fixture("h264-every-frame.mp4"), SECOND)
            .assets()
            .iter()
            .map(|p| (naming.name(p.maps().sequence), p.bytes.clone()))
            .collect()
    }

    #[test]
    fn what_is_kept_is_a_stream_directory_and_a_reopen_goes_on() {
        let a = assets();
        assert!(a.len() >= 4, "{} assets", a.len());
        let dir = tempfile::tempdir().unwrap();
        let mut saver = Saver::open(dir.path()).unwrap();
        assert_eq!(saver.next(), None);
        for (name, bytes) in &a[..2] {
            saver.save(name, bytes, 7).unwrap();
        }
        drop(saver);

        let mut saver = Saver::open(dir.path()).unwrap();
        assert_eq!(saver.next(), Some(2));
        // Kept already: not written twice.
        saver.save(&a[1].0, &a[1].1, 8).unwrap();
        let gap = saver.save(&a[3].0, &a[3].1, 8).unwrap_err().to_string();
        assert!(gap.contains("cannot skip"), "{gap}");
        saver.save(&a[2].0, &a[2].1, 8).unwrap();
        saver.ended(9).unwrap();
        drop(saver);

        let report = verify_dir(dir.path(), &mut |_, _| {}).unwrap();
        assert!(report.ok, "{:?}", report.problems);
        assert_eq!(report.assets_checked, 3);
        let stream = Stream::open(dir.path()).unwrap();
        let kept: Vec<u64> = stream.retained().map(|r| r.sequence).collect();
        assert_eq!(kept, [0, 1, 2]);
        assert!(stream.descriptor.ended);
        assert!(!stream.descriptor.tracks.is_empty());
        for (name, bytes) in &a[..3] {
            assert_eq!(&fs::read(dir.path().join(name)).unwrap(), bytes);
        }
        assert!(dir.path().join("asset-00000002.mp4.maps").exists());
        assert!(dir.path().join("asset-init-0000.mp4").exists());
    }

    #[test]
    fn one_saver_per_directory_and_one_stream() {
        let a = assets();
        let dir = tempfile::tempdir().unwrap();
        let mut saver = Saver::open(dir.path()).unwrap();
        let second = Saver::open(dir.path()).err().unwrap().to_string();
        assert!(second.contains("one writer per directory"), "{second}");
        saver.save(&a[0].0, &a[0].1, 1).unwrap();
        let other = a[1].0.replace("asset", "other");
        let e = saver.save(&other, &a[1].1, 1).unwrap_err().to_string();
        assert!(e.contains("another stream"), "{e}");
    }
}
