//! The publishing protocol: what the segmenter's events do to a stream
//! directory. The descriptor is written when the initialisation arrives and
//! marked `ended` at the finish; each asset is written atomically, then
//! indexed; retention moves the descriptor's `first_sequence` before it
//! deletes a file, so `locate` never hands out an asset about to vanish; the
//! HLS and DASH playlists are rewritten from the records the publisher
//! holds, never by reading its own directory back. No clock is read here:
//! every call is given the wall-clock time.

use std::path::PathBuf;

use crate::capture::asset::FinishedAsset;
use crate::capture::init::Track;
use crate::capture::maps::Maps;
use crate::capture::segmenter::{self, Event, Resume};
use crate::capture::stamps::rescale;
use crate::stream::descriptor::{self, Descriptor};
use crate::stream::events::{self, Event as InbandEvent};
use crate::stream::expiry::Expiry;
use crate::stream::index::{Record, Span};
use crate::stream::naming::Naming;
use crate::stream::playlists::{self, Listing};
use crate::stream::retention::Retention;
use crate::stream::store::{self, OutDir, INDEX_FILE};
use crate::stream::track_files::TrackFiles;
use crate::Result;

/// Where and how to publish: the plain form of `backset segment`'s flags.
#[derive(Debug, Clone)]
pub struct Config {
    pub dir: PathBuf,
    /// File name prefix of the assets.
    pub prefix: String,
    /// Start a new transmission, removing the one `dir` holds, instead of
    /// continuing it.
    pub new: bool,
    /// Make each publish durable before its index record is appended.
    pub fsync: bool,
    /// How the segmenter cuts; recorded in the descriptor.
    pub cut: segmenter::Config,
    /// Delete assets that end more than this many µs behind the live edge.
    pub keep_us: Option<u64>,
    /// Keep only the newest this many assets.
    pub keep_assets: Option<u64>,
    /// Keep `live.m3u8` up to date.
    pub hls: bool,
    /// Keep `live.mpd` up to date.
    pub dash: bool,
}

/// What handling an event did that the caller may want to tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    Published(Record),
    /// Something went wrong that does not stop the transmission (a capture
    /// oddity from the segmenter, an expired asset that could not be deleted).
    Warning(String),
}

pub struct Publisher {
    out: OutDir,
    descriptor: Descriptor,
    hls: bool,
    dash: bool,
    /// The retained records, oldest first, with the rules that expire them.
    /// Made when the transmission starts, and only if retention or the
    /// playlists need it; bounded by retention when there is one.
    window: Option<Retention>,
    published: u64,
    /// Init files and per-track segments beside the assets.
    tracks_out: TrackFiles,
    /// The initialisation generation of the newest asset, and its bytes
    /// (`None` before the first).
    generation: u32,
    generation_init: Option<Vec<u8>>,
    /// The in-band events (`emsg`) of the retained assets, by sequence, for
    /// the playlists; kept only when they are written.
    events: Vec<(u64, Vec<InbandEvent>)>,
    /// Expired assets whose files are kept a while yet.
    expiry: Expiry,
}

impl Publisher {
    /// Opens (creating) the stream directory. Without `new`, the
    /// transmission there is continued: the [`Resume`] is for the segmenter.
    pub fn open(config: Config, now_us: u64) -> Result<(Publisher, Option<Resume>)> {
        let naming = Naming::new(&config.prefix);
        let (out, resume) = OutDir::open(&config.dir, naming.clone(), config.new, config.fsync)?;
        let previous = match resume {
            Some(_) => store::read_descriptor(&config.dir)?,
            None => None,
        };
        let descriptor = Descriptor {
            version: descriptor::VERSION,
            prefix: naming.prefix.clone(),
            pattern: naming.pattern(),
            index: INDEX_FILE.into(),
            timescale: 0,
            interval_us: config.cut.interval_us,
            size: config.cut.size,
            max_duration_us: Some(config.cut.max_duration_us),
            tracks: Vec::new(),
            first_sequence: previous.as_ref().map_or(0, |d| d.first_sequence),
            keep_us: config.keep_us,
            keep_assets: config.keep_assets,
            started_us: previous.as_ref().map_or(now_us, |d| d.started_us),
            anchor_us: previous.as_ref().and_then(|d| d.anchor_us),
            composition_offset: previous.as_ref().and_then(|d| d.composition_offset),
            ended: false,
            ended_us: None,
        };
        // Files an earlier run kept past expiry for its players (it ended
        // or was killed before their time was up) go now.
        if let Some(d) = &previous {
            out.remove_expired_files(d.first_sequence)?;
        }
        // A continued transmission goes on in its last generation while
        // its moov stays the same.
        let generation = out.last_record()?.map(|r| r.init);
        let generation_init =
            generation.and_then(|g| std::fs::read(config.dir.join(naming.init_name(g))).ok());
        let publisher = Publisher {
            tracks_out: TrackFiles::new(
                &config.dir,
                naming,
                config.fsync,
                config.hls || config.dash,
                config.dash,
            ),
            generation: generation.unwrap_or(0),
            generation_init,
            events: Vec::new(),
            expiry: Expiry::default(),
            out,
            descriptor,
            hls: config.hls,
            dash: config.dash,
            window: None,
            published: 0,
        };
        Ok((publisher, resume))
    }

    /// Acts on one event of the segmenter. What is worth telling goes to
    /// `notes`, even when a later step fails.
    pub fn handle(&mut self, event: Event, now_us: u64, notes: &mut Vec<Note>) -> Result<()> {
        match event {
            Event::Started { tracks, timescale } => self.start(tracks, timescale, notes),
            Event::Fragment { sequence, bytes } => {
                self.out.append_fragment(sequence, &bytes)?;
                self.note_composition_offset(&bytes)?;
                self.tracks_out.append(sequence, &bytes)
            }
            Event::Asset(asset) => {
                self.enter_generation(&asset)?;
                self.anchor(&asset)?;
                self.tracks_out.publish(asset.sequence())?;
                let record = self.out.publish(&asset, now_us, self.generation)?;
                self.published += 1;
                self.scan_events(record.sequence, notes);
                let expired = match self.window.as_mut() {
                    Some(window) => window.push(record),
                    None => Vec::new(),
                };
                self.expire(&expired, now_us)?;
                self.remove_due(now_us, notes);
                self.write_playlists()?;
                notes.push(Note::Published(record));
                Ok(())
            }
            Event::Warning(w) => {
                notes.push(Note::Warning(w));
                Ok(())
            }
        }
    }

    /// Marks the transmission ended (if it ever started) and rewrites the
    /// playlists as complete.
    pub fn finish(&mut self, now_us: u64, notes: &mut Vec<Note>) -> Result<()> {
        if self.descriptor.timescale == 0 {
            return Ok(());
        }
        self.descriptor.ended = true;
        self.descriptor.ended_us = Some(now_us);
        self.out.write_descriptor(&self.descriptor)?;
        self.write_playlists()?;
        // Nothing is listed any more past the ended window: what expired
        // goes now rather than outlive the writer.
        self.remove_due(u64::MAX, notes);
        Ok(())
    }

    /// Assets published by this publisher (not counting a resumed
    /// transmission's earlier ones).
    pub fn published(&self) -> u64 {
        self.published
    }

    pub fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    pub fn asset_path(&self, sequence: u64) -> PathBuf {
        self.out.asset_path(sequence)
    }

    /// The initialisation arrived (again, after an encoder restart): the
    /// index opens, the descriptor gets the tracks, and the first time, the
    /// window is filled from what a resumed transmission retains.
    fn start(&mut self, tracks: Vec<Track>, timescale: u32, notes: &mut Vec<Note>) -> Result<()> {
        self.out.start(timescale)?;
        self.descriptor.timescale = timescale;
        self.tracks_out
            .set_tracks(tracks.iter().map(|t| t.id).collect());
        self.descriptor.tracks = tracks;
        self.out.write_descriptor(&self.descriptor)?;
        if self.window.is_some() {
            return Ok(());
        }
        let keep_ticks = self
            .descriptor
            .keep_us
            .map(|us| rescale(us, 1_000_000, timescale));
        self.window = Retention::new(keep_ticks, self.descriptor.keep_assets)
            .or_else(|| (self.hls || self.dash).then(Retention::keep_all));
        let Some(window) = self.window.as_mut() else {
            return Ok(());
        };
        let mut expired = Vec::new();
        let retained = self.out.records_from(self.descriptor.first_sequence)?;
        for record in &retained {
            expired.extend(window.push(*record));
        }
        for record in retained {
            self.scan_events(record.sequence, notes);
        }
        // A continued transmission under a tighter rule: what the earlier run kept beyond the rule was listed by no
        // playlist since that run ended: it goes at once.
        self.expire(&expired, 0)?;
        self.remove_due(u64::MAX, notes);
        Ok(())
    }

    /// Writes the init files of the asset's initialisation when it starts
    /// a generation: the first asset, or the first after the capture's
    /// `moov` changed.
    fn enter_generation(&mut self, asset: &FinishedAsset) -> Result<()> {
        let maps = Maps::encoded_len(asset.maps.entries.len());
        let init = &asset.header[..asset.header.len().saturating_sub(maps)];
        if self.generation_init.as_deref() == Some(init) {
            return Ok(());
        }
        if self.generation_init.is_some() {
            self.generation += 1;
        }
        self.tracks_out.write_inits(self.generation, init)?;
        self.generation_init = Some(init.to_vec());
        Ok(())
    }

    /// Finds the in-band events of a published asset for the playlists
    /// (read back from its file: they are a few boxes among its fragments).
    fn scan_events(&mut self, sequence: u64, notes: &mut Vec<Note>) {
        if !self.hls && !self.dash {
            return;
        }
        let path = self.out.asset_path(sequence);
        let found = std::fs::read(&path)
            .map_err(crate::Error::io(&path))
            .and_then(|bytes| events::scan(&bytes));
        match found {
            Ok(scan) if !scan.events.is_empty() => self.events.push((sequence, scan.events)),
            Ok(_) => {}
            Err(e) => notes.push(Note::Warning(format!(
                "{}: its events are left out of the playlists: {e}",
                path.display()
            ))),
        }
    }

    /// The in-band events of the retained assets, in order.
    fn retained_events(&self) -> Vec<InbandEvent> {
        self.events
            .iter()
            .flat_map(|(_, e)| e.iter().cloned())
            .collect()
    }

    /// Records the reference track's composition offset from the first
    /// fragment that has a sample of it (the asset's key frame), for the
    /// MPD's times (`Descriptor::composition_offset`).
    fn note_composition_offset(&mut self, fragment: &[bytes::Bytes]) -> Result<()> {
        if self.descriptor.composition_offset.is_some() {
            return Ok(());
        }
        let tracks = &self.descriptor.tracks;
        let Some(track) = tracks
            .iter()
            .find(|t| t.kind == crate::capture::init::TrackKind::Video)
            .or(tracks.first())
        else {
            return Ok(());
        };
        let joined: Vec<u8> = fragment.iter().flat_map(|b| b.iter().copied()).collect();
        let Some(cts) = crate::stream::track_view::first_composition_offset(&joined, track.id)
        else {
            return Ok(());
        };
        let ticks = rescale(
            u64::try_from(cts).unwrap_or(0),
            track.timescale,
            self.descriptor.timescale,
        );
        self.descriptor.composition_offset = Some(ticks);
        self.out.write_descriptor(&self.descriptor)
    }

    /// Records when media time 0 was received, from the first entry point
    /// published (its receive time less its media time).
    fn anchor(&mut self, asset: &FinishedAsset) -> Result<()> {
        if self.descriptor.anchor_us.is_some() {
            return Ok(());
        }
        let Some(first) = asset.maps.entries.first() else {
            return Ok(());
        };
        let media_us = rescale(first.timestamp, asset.maps.timescale, 1_000_000);
        self.descriptor.anchor_us = Some(first.wallclock_us.saturating_sub(media_us));
        self.out.write_descriptor(&self.descriptor)
    }

    /// Moves the window's start in the descriptor first, then deletes, so
    /// `locate` never answers with an asset about to disappear.
    fn expire(&mut self, expired: &[Record], now_us: u64) -> Result<()> {
        let Some(last) = expired.last() else {
            return Ok(());
        };
        self.descriptor.first_sequence = self
            .window
            .as_ref()
            .and_then(Retention::first)
            .unwrap_or(last.sequence + 1);
        self.out.write_descriptor(&self.descriptor)?;
        let first = self.descriptor.first_sequence;
        self.events.retain(|(sequence, _)| *sequence >= first);
        // Kept for its own duration plus the playlist's, as RFC 8216 6.2.2
        // asks, and never less than a second.
        let kept: Vec<Record> = self.window.iter().flat_map(|w| w.kept().copied()).collect();
        let window_s = Span::of(&kept, self.descriptor.timescale).seconds;
        for r in expired {
            let own_s = crate::stream::locate::seconds(r.duration, self.descriptor.timescale);
            let grace_us = ((own_s + window_s) * 1e6).max(1e6) as u64;
            self.expiry
                .defer(r.sequence, r.init, now_us.saturating_add(grace_us));
        }
        Ok(())
    }

    /// Deletes the files of expired assets whose time is up (all of them at
    /// `u64::MAX`), then the init files no asset kept or pending uses.
    fn remove_due(&mut self, now_us: u64, notes: &mut Vec<Note>) {
        for sequence in self.expiry.due(now_us) {
            let removed = self
                .out
                .remove_asset(sequence)
                .and_then(|()| self.tracks_out.remove_segments(sequence));
            if let Err(e) = removed {
                notes.push(Note::Warning(e.to_string()));
            }
        }
        let kept = self
            .window
            .as_ref()
            .and_then(|w| w.kept().next())
            .map(|r| r.init);
        let oldest = match (self.expiry.oldest_generation(), kept) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).unwrap_or(0),
        };
        if oldest > 0 {
            if let Err(e) = self.tracks_out.remove_inits_before(oldest) {
                notes.push(Note::Warning(e.to_string()));
            }
        }
    }

    /// Rewrites the playlists (each atomically) from the retained records:
    /// players that read files rather than `backset serve` start three
    /// assets back.
    fn write_playlists(&self) -> Result<()> {
        if !self.hls && !self.dash {
            return Ok(());
        }
        let records: Vec<Record> = self.window.iter().flat_map(|w| w.kept().copied()).collect();
        let timescale = self.descriptor.timescale;
        let span = Span::of(&records, timescale);
        let events = self.retained_events();
        let listing = Listing {
            events: &events,
            descriptor: &self.descriptor,
            records: &records,
            naming: self.out.naming(),
            timescale,
            ended: self.descriptor.ended,
            start_behind_s: 3.0 * span.asset_seconds,
            started_us: self.descriptor.started_us,
            bitrate_bps: span.bitrate_bps as u64,
            client: None,
        };
        if self.hls {
            // The media playlist first: the multivariant one names it.
            self.out
                .write_file(playlists::HLS_MEDIA, playlists::hls(&listing).as_bytes())?;
            self.out.write_file(
                playlists::HLS_MULTIVARIANT,
                playlists::multivariant(&listing).as_bytes(),
            )?;
        }
        if self.dash {
            self.out
                .write_file("live.mpd", playlists::dash(&listing).as_bytes())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::capture::segmenter::Segmenter;
    use crate::stream::index::Index;
    use crate::stream::reader::Stream;

    const CAPTURE: &[u8] = include_bytes!("../../fixtures/h264-aac-gop.mp4");
    /// Wall-clock time the tests pretend it is, µs.
    const T0: u64 = 1_764_000_000_000_000;

    fn config(dir: &Path) -> Config {
        Config {
            dir: dir.to_path_buf(),
            prefix: "asset".into(),
            new: false,
            fsync: false,
            cut: segmenter::Config::default(),
            keep_us: None,
            keep_assets: None,
            hls: false,
            dash: false,
        }
    }

    /// The capture's events, as the segmenter returns them when the whole
    /// file arrives at once.
    fn events(resume: Option<Resume>) -> Vec<Event> {
        let mut segmenter = Segmenter::new(segmenter::Config::default(), resume);
        let mut events = Vec::new();
        segmenter.push(CAPTURE, T0, &mut events).unwrap();
        segmenter.finish(&mut events).unwrap();
        events
    }

    /// The events in steps: each is the fragments before an event, then
    /// that event.
    fn steps(resume: Option<Resume>) -> Vec<Vec<Event>> {
        let mut steps = vec![Vec::new()];
        for event in events(resume) {
            let fragment = matches!(event, Event::Fragment { .. });
            steps.last_mut().unwrap().push(event);
            if !fragment {
                steps.push(Vec::new());
            }
        }
        steps.pop();
        steps
    }

    /// Publishes the whole capture into `config.dir`, calling `after` once
    /// each step is handled; returns the notes.
    fn publish_with(config: Config, mut after: impl FnMut(&Publisher)) -> Vec<Note> {
        let (mut publisher, resume) = Publisher::open(config, T0).unwrap();
        let mut notes = Vec::new();
        for (i, step) in steps(resume).into_iter().enumerate() {
            let now = T0 + (i as u64 + 1) * 2_000_000;
            for event in step {
                publisher.handle(event, now, &mut notes).unwrap();
            }
            after(&publisher);
        }
        publisher.finish(T0 + 60_000_000, &mut Vec::new()).unwrap();
        after(&publisher);
        notes
    }

    fn publish(config: Config) -> Vec<Note> {
        publish_with(config, |_| {})
    }

    fn published(notes: &[Note]) -> Vec<Record> {
        notes
            .iter()
            .filter_map(|n| match n {
                Note::Published(r) => Some(*r),
                Note::Warning(_) => None,
            })
            .collect()
    }

    fn descriptor(dir: &Path) -> Descriptor {
        store::read_descriptor(dir).unwrap().unwrap()
    }

    fn index(dir: &Path) -> Vec<Record> {
        let index = Index::open(&dir.join(INDEX_FILE)).unwrap();
        index.iter().map(Option::unwrap).collect()
    }

    /// The playlists as a reader of the directory renders them: how the
    /// publisher made them before it kept its records in memory.
    fn as_a_reader_renders(dir: &Path) -> (String, String) {
        let stream = Stream::open(dir).unwrap();
        let records: Vec<_> = stream.retained().collect();
        let span = Span::of(&records, stream.index.timescale);
        let listing = Listing {
            events: &[],
            descriptor: &stream.descriptor,
            records: &records,
            naming: &stream.naming,
            timescale: stream.index.timescale,
            ended: stream.descriptor.ended,
            start_behind_s: 3.0 * span.asset_seconds,
            started_us: stream.descriptor.started_us,
            bitrate_bps: span.bitrate_bps as u64,
            client: None,
        };
        (playlists::hls(&listing), playlists::dash(&listing))
    }

    #[test]
    fn assets_appear_under_predictable_names_and_are_indexed_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let notes = publish(config(dir.path()));
        let records = published(&notes);
        assert_eq!(records.len(), 3, "a 6 s capture with 2 s GOPs");
        assert_eq!(index(dir.path()), records);
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.sequence, i as u64);
            assert_eq!(r.published_us, T0 + (i as u64 + 2) * 2_000_000);
            let asset = std::fs::metadata(dir.path().join(format!("asset-{i:08}.mp4"))).unwrap();
            assert_eq!(asset.len(), r.size);
        }
        for pair in records.windows(2) {
            assert_eq!(pair[0].end(), pair[1].start);
            assert_eq!(pair[0].datastamp + pair[0].media_len(), pair[1].datastamp);
        }
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let expected = [
            ".lock",
            "asset-00000000.mp4",
            "asset-00000000.mp4.maps",
            "asset-00000001.mp4",
            "asset-00000001.mp4.maps",
            "asset-00000002.mp4",
            "asset-00000002.mp4.maps",
            "index.bin",
            "stream.json",
        ];
        assert_eq!(
            names, expected,
            "no temporary file, no playlist left; the writer's lock stays"
        );
        let naming = Naming::default();
        for r in index(dir.path()) {
            let asset = std::fs::read(dir.path().join(naming.name(r.sequence))).unwrap();
            let maps = std::fs::read(dir.path().join(naming.maps_name(r.sequence))).unwrap();
            let start = r.header_len as usize - maps.len();
            assert_eq!(
                asset[start..r.header_len as usize],
                maps,
                "the maps box, alone"
            );
        }
    }

    #[test]
    fn the_descriptor_is_written_when_init_arrives_and_ended_at_the_finish() {
        let dir = tempfile::tempdir().unwrap();
        let (mut publisher, resume) = Publisher::open(config(dir.path()), T0).unwrap();
        assert_eq!(resume, None);
        let mut events = events(None).into_iter();
        let started = events.next().unwrap();
        assert!(matches!(started, Event::Started { .. }));
        assert!(store::read_descriptor(dir.path()).unwrap().is_none());

        publisher.handle(started, T0, &mut Vec::new()).unwrap();
        let d = descriptor(dir.path());
        assert_eq!((d.timescale, d.tracks.len(), d.started_us), (12288, 2, T0));
        assert_eq!((d.ended, d.ended_us, d.first_sequence), (false, None, 0));
        assert_eq!(d.pattern, "asset-%08d.mp4");

        for event in events {
            publisher.handle(event, T0 + 1, &mut Vec::new()).unwrap();
        }
        assert!(!descriptor(dir.path()).ended);
        publisher.finish(T0 + 9, &mut Vec::new()).unwrap();
        let d = descriptor(dir.path());
        assert_eq!((d.ended, d.ended_us), (true, Some(T0 + 9)));
        // As written, down to what the file leaves out (track defaults).
        let json = |d: &Descriptor| serde_json::to_string(d).unwrap();
        assert_eq!(json(&d), json(publisher.descriptor()));
    }

    #[test]
    fn a_publisher_that_never_started_writes_no_descriptor() {
        let dir = tempfile::tempdir().unwrap();
        let (mut publisher, _) = Publisher::open(config(dir.path()), T0).unwrap();
        publisher.finish(T0, &mut Vec::new()).unwrap();
        assert!(store::read_descriptor(dir.path()).unwrap().is_none());
        assert_eq!(publisher.published(), 0);
    }

    #[test]
    fn retention_moves_first_sequence_before_deleting_files() {
        let dir = tempfile::tempdir().unwrap();
        let (d, asset) = (dir.path(), |s: u64| {
            dir.path().join(format!("asset-{s:08}.mp4"))
        });
        let (mut publisher, _) = Publisher::open(
            Config {
                keep_assets: Some(2),
                ..config(d)
            },
            T0,
        )
        .unwrap();
        let mut notes = Vec::new();
        let mut events = steps(None).into_iter().flatten().peekable();
        for _ in 0..3 {
            while let Some(Event::Fragment { .. }) = events.peek() {
                publisher
                    .handle(events.next().unwrap(), T0, &mut notes)
                    .unwrap();
            }
            publisher
                .handle(events.next().unwrap(), T0, &mut notes)
                .unwrap();
        }
        assert_eq!(published(&notes).len(), 2);
        assert_eq!(descriptor(d).first_sequence, 0);
        // Asset 0 cannot be deleted (a directory stands in its place): the
        // descriptor has let it go all the same, since it moves first.
        std::fs::remove_file(asset(0)).unwrap();
        std::fs::create_dir(asset(0)).unwrap();
        std::fs::write(asset(0).join("x"), b"x").unwrap();
        for event in events {
            publisher.handle(event, T0, &mut notes).unwrap();
        }
        assert_eq!(descriptor(d).first_sequence, 1);
        assert!(matches!(notes.get(2), Some(Note::Published(r)) if r.sequence == 2));
        // Its files are kept a while for players that listed it; then the
        // failed deletion is a warning, not a failure.
        publisher.finish(T0 + 1, &mut notes).unwrap();
        assert!(matches!(notes.get(3), Some(Note::Warning(w)) if w.contains("asset-00000000.mp4")));
        assert!(asset(1).is_file() && asset(2).is_file());
        assert_eq!(index(d).len(), 3, "the index keeps every record");
    }

    #[test]
    fn playlists_are_written_when_enabled_as_a_reader_would_render_them() {
        for keep_assets in [None, Some(2)] {
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path();
            let enabled = Config {
                keep_assets,
                hls: true,
                dash: true,
                ..config(d)
            };
            let mut checked = 0;
            publish_with(enabled, |p| {
                if p.published() == 0 {
                    assert!(!d.join("live.m3u8").exists());
                    return;
                }
                let (hls, dash) = as_a_reader_renders(d);
                assert_eq!(
                    std::fs::read_to_string(d.join("live-av.m3u8")).unwrap(),
                    hls
                );
                assert!(std::fs::read_to_string(d.join("live.m3u8"))
                    .unwrap()
                    .ends_with("\nlive-av.m3u8\n"));
                assert_eq!(std::fs::read_to_string(d.join("live.mpd")).unwrap(), dash);
                checked += 1;
            });
            assert_eq!(checked, 4, "after each of 3 publishes and at the finish");
            let hls = std::fs::read_to_string(d.join("live-av.m3u8")).unwrap();
            assert!(hls.ends_with("#EXT-X-ENDLIST\n"));
            let first = if keep_assets.is_some() { 1 } else { 0 };
            assert!(hls.contains(&format!("#EXT-X-MEDIA-SEQUENCE:{first}\n")));
            assert_eq!(hls.matches("#EXTINF:").count(), 3 - first);
        }
        let dir = tempfile::tempdir().unwrap();
        publish(config(dir.path()));
        assert!(!dir.path().join("live.m3u8").exists() && !dir.path().join("live.mpd").exists());
    }

    #[test]
    fn a_resumed_publisher_continues_the_sequence() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        publish(config(d));
        let (_, resume) = Publisher::open(config(d), T0 + 1).unwrap();
        let resume = resume.unwrap();
        assert_eq!((resume.next_sequence, resume.timescale), (3, 12288));

        let again = published(&publish(Config {
            hls: true,
            ..config(d)
        }));
        let sequences: Vec<u64> = again.iter().map(|r| r.sequence).collect();
        assert_eq!(sequences, [3, 4, 5]);
        let all = index(d);
        assert_eq!(all.len(), 6);
        assert!(all.windows(2).all(|p| p[0].end() == p[1].start));
        let desc = descriptor(d);
        assert_eq!(
            (desc.started_us, desc.ended),
            (T0, true),
            "the first run's start"
        );
        assert_eq!(
            as_a_reader_renders(d).0,
            std::fs::read_to_string(d.join("live-av.m3u8")).unwrap()
        );

        let fresh = published(&publish(Config {
            new: true,
            ..config(d)
        }));
        assert_eq!(fresh.first().map(|r| r.sequence), Some(0));
        assert_eq!(index(d).len(), 3);
    }

    #[test]
    fn an_index_without_records_does_not_impose_its_timescale() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(INDEX_FILE);
        // A run that received an initialisation at 1000 ticks/s, then stopped.
        crate::stream::index::IndexWriter::open(&path, 1000, false).unwrap();
        publish(config(dir.path()));
        assert_eq!(Index::open(&path).unwrap().timescale, 12288);
        assert_eq!(index(dir.path()).len(), 3);
    }

    #[test]
    fn a_resumed_publisher_under_a_tighter_rule_expires_at_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        publish(config(d));
        let (mut publisher, resume) = Publisher::open(
            Config {
                keep_assets: Some(2),
                ..config(d)
            },
            T0,
        )
        .unwrap();
        let started = events(resume).into_iter().next().unwrap();
        publisher.handle(started, T0, &mut Vec::new()).unwrap();
        assert_eq!(descriptor(d).first_sequence, 1);
        assert!(!d.join("asset-00000000.mp4").exists());
        assert!(d.join("asset-00000001.mp4").exists());
    }

    /// Publishes until the first failure, with `name` a directory from the
    /// start: the publish of that file cannot complete.
    fn fail_on(name: &str) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            hls: true,
            ..config(dir.path())
        };
        let (mut publisher, resume) = Publisher::open(config, T0).unwrap();
        std::fs::create_dir(dir.path().join(name)).unwrap();
        let mut notes = Vec::new();
        let failed = events(resume)
            .into_iter()
            .find_map(|event| publisher.handle(event, T0, &mut notes).err())
            .expect("a publish fails");
        (dir, failed.to_string())
    }

    #[test]
    fn no_temporary_file_is_left_by_a_failed_publish_of_any_file() {
        for name in ["stream.json", "asset-00000001.mp4", "live.m3u8"] {
            let (dir, failed) = fail_on(name);
            assert!(failed.contains(name), "{name}: {failed}");
            let leftovers: Vec<String> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains("partial"))
                .collect();
            assert!(leftovers.is_empty(), "{name}: {leftovers:?}");
        }
    }
}
