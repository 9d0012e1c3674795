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
    /// Whether a fragment of the open asset came with an `emsg`.
    open_has_events: bool,
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
            open_has_events: false,
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
                // Event boxes open the fragment they go with: only an asset
                // that had one is read back for its events.
                let first = bytes.iter().find(|b| !b.is_empty());
                self.open_has_events |= first.is_some_and(|b| b.get(4..8) == Some(b"emsg"));
                self.tracks_out.append(sequence, &bytes)
            }
            Event::Asset(asset) => {
                self.enter_generation(&asset)?;
                self.anchor(&asset)?;
                self.tracks_out.publish(asset.sequence())?;
                let record = self.out.publish(&asset, now_us, self.generation)?;
                self.published += 1;
                if std::mem::take(&mut self.open_has_events) {
                    self.scan_events(record.sequence, notes);
                }
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
            start_behind_s: 3.0 * span.asset_seconds,
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
