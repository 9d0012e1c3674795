//! The segmenter: an I/O-free state machine fed capture bytes, returning the
//! assets that are complete and any warnings. The caller owns files, clocks
//! and signals.

use crate::capture::asset::{AssetBuilder, FinishedAsset};
use crate::capture::fragment::{self, Fragment};
use crate::capture::fragment_writer::write_fragment;
use crate::capture::framing::{Framer, RawBox};
use crate::capture::init::{Init, Track};
use crate::capture::split::{split, Piece};
use crate::capture::stamps::{rescale, Clock, Datastamps};
use crate::capture::timeline::Timeline;
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// A new asset begins at the first entry point at or after the current
    /// asset's start plus this, in µs.
    pub interval_us: u64,
    /// A new asset begins at the first entry point once the current asset
    /// holds this many bytes of fragments.
    pub size: Option<u64>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            interval_us: 2_000_000,
            size: None,
        }
    }
}

/// Where a continued transmission goes on from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    pub next_sequence: u64,
    /// The live edge: end of the last asset, in `timescale` ticks.
    pub time_base: u64,
    pub next_datastamp: u64,
    pub timescale: u32,
}

#[derive(Debug)]
pub enum Event {
    /// The capture's initialisation was read: the tracks, and the timescale
    /// of the transmission's timestamps.
    Started {
        tracks: Vec<Track>,
        timescale: u32,
    },
    /// An asset is complete and may be published.
    Asset(FinishedAsset),
    Warning(String),
}

pub struct Segmenter {
    config: Config,
    resume: Option<Resume>,
    framer: Framer,
    /// The latest `ftyp`: it goes with the next `moov`.
    ftyp: Option<RawBox>,
    init: Option<Init>,
    moof: Option<RawBox>,
    next_dts: Vec<Option<u64>>,
    timeline: Timeline,
    clock: Option<Clock>,
    datastamps: Datastamps,
    asset: Option<AssetBuilder>,
    /// Transmission time where the open asset's reference track ends.
    asset_end: u64,
    /// End of the last closed asset: where a new initialisation goes on from.
    edge: u64,
    last_entry: Option<u64>,
    next_sequence: u64,
    fragment_sequence: u32,
    /// Samples dropped while waiting for a key frame to start from.
    dropped: u64,
    /// After damage, pieces are dropped until the next entry point.
    need_entry: bool,
    warned_tfdt: Vec<bool>,
    failed: bool,
    /// Capture offset just past the last box seen.
    consumed: u64,
}

impl Segmenter {
    pub fn new(config: Config, resume: Option<Resume>) -> Self {
        Segmenter {
            config,
            resume,
            framer: Framer::resyncing(),
            ftyp: None,
            init: None,
            moof: None,
            next_dts: Vec::new(),
            timeline: Timeline::new(0, None),
            clock: None,
            datastamps: Datastamps::starting_at(resume.map_or(0, |r| r.next_datastamp)),
            asset: None,
            asset_end: 0,
            edge: resume.map_or(0, |r| r.time_base),
            last_entry: None,
            next_sequence: resume.map_or(0, |r| r.next_sequence),
            fragment_sequence: 0,
            dropped: 0,
            need_entry: false,
            warned_tfdt: Vec::new(),
            failed: false,
            consumed: 0,
        }
    }

    /// Feeds capture bytes received at `now_us` (µs since the Unix epoch).
    /// What became ready is appended to `events`, also when an error stops
    /// the stream part-way.
    pub fn push(&mut self, chunk: &[u8], now_us: u64, events: &mut Vec<Event>) -> Result<()> {
        self.framer.push(chunk);
        let result = self.drain(now_us, events);
        self.failed |= result.is_err();
        result
    }

    fn drain(&mut self, now_us: u64, events: &mut Vec<Event>) -> Result<()> {
        while let Some(b) = self.framer.next_box()? {
            self.on_box(b, now_us, events)?;
        }
        Ok(())
    }

    /// Feeds one top-level box framed elsewhere (by a [`Framer`] reading
    /// straight from the input, which saves a copy of every byte).
    pub fn push_box(&mut self, b: RawBox, now_us: u64, events: &mut Vec<Event>) -> Result<()> {
        let result = self.on_box(b, now_us, events);
        self.failed |= result.is_err();
        result
    }

    /// The input has ended (or the process is asked to stop): publishes the
    /// open asset. A partial box at the end is a warning after good data and
    /// an error before any.
    pub fn finish(&mut self, events: &mut Vec<Event>) -> Result<()> {
        let tail = self.framer.unfinished();
        self.finish_with(tail, events)
    }

    /// [`Segmenter::finish`] when the boxes came through
    /// [`Segmenter::push_box`]: `tail` is what that framer had left
    /// ([`Framer::unfinished`]).
    pub fn finish_with(
        &mut self,
        tail: Option<(String, u64, u64, u64)>,
        events: &mut Vec<Event>,
    ) -> Result<()> {
        let unfinished = tail.map(|(kind, offset, have, need)| Error::Truncated {
            offset,
            kind,
            have,
            need,
        });
        let pending_moof = self.moof.take().map(|m| Error::Truncated {
            offset: m.offset,
            kind: "moof".into(),
            have: m.bytes.len() as u64,
            need: m.bytes.len() as u64 + 8,
        });
        // After an error the rest of the buffer is what failed, already reported.
        let problem = unfinished.or(pending_moof).filter(|_| !self.failed);
        match self.close_open_asset(None)? {
            Some(asset) => events.push(Event::Asset(asset)),
            None => {
                return Err(match problem {
                    Some(Error::Truncated {
                        offset, have, kind, ..
                    }) if self.init.is_none() && kind == "unsynchronised data" => Error::NotMp4 {
                        offset,
                        found: format!("no ftyp or moov in its {have} bytes"),
                    },
                    Some(p) => p,
                    None => Error::Empty {
                        offset: self.consumed,
                    },
                })
            }
        }
        if let Some(p) = problem {
            events.push(Event::Warning(format!(
                "{p}; the incomplete fragment was dropped"
            )));
        }
        Ok(())
    }

    /// Bytes waiting for the rest of their box.
    pub fn buffered(&self) -> usize {
        self.framer.buffered()
    }

    fn on_box(&mut self, b: RawBox, now_us: u64, events: &mut Vec<Event>) -> Result<()> {
        self.consumed = b.offset + b.bytes.len() as u64;
        if let Some((at, count)) = b.skipped_before {
            events.push(Event::Warning(format!(
                "{count} bytes of damaged data at byte {at} skipped; resynchronised at the {} at byte {}",
                b.kind_str(),
                b.offset
            )));
            self.damaged();
        }
        match &b.kind {
            b"ftyp" => self.ftyp = Some(b),
            b"moov" => self.on_moov(b, events)?,
            b"moof" => {
                if self.init.is_none() {
                    return Err(Error::MoofBeforeMoov { offset: b.offset });
                }
                if let Some(previous) = self.moof.replace(b) {
                    events.push(Event::Warning(format!(
                        "moof at byte {}: no mdat follows it; fragment dropped",
                        previous.offset
                    )));
                    self.damaged();
                }
            }
            b"mdat" => match self.moof.take() {
                Some(moof) => self.on_fragment(&moof, &b, now_us, events)?,
                None if self.init.is_none() => {
                    return Err(Error::bad_box(
                        b.offset,
                        "mdat",
                        "media data before any moov: not a fragmented capture",
                    ))
                }
                None => events.push(Event::Warning(format!(
                    "mdat at byte {}: no moof before it; skipped",
                    b.offset
                ))),
            },
            // sidx/styp/free/mfra/prft/emsg describe the input's layout or
            // are not carried yet; the assets have their own layout.
            _ => {}
        }
        Ok(())
    }

    /// Something was lost: what depends on it is dropped up to the next key
    /// frame, so no asset holds frames that cannot be decoded.
    fn damaged(&mut self) {
        self.need_entry = true;
    }

    fn on_moov(&mut self, b: RawBox, events: &mut Vec<Event>) -> Result<()> {
        if let Some(init) = &self.init {
            if init.same_moov(&b) {
                return Ok(());
            }
            // An encoder restart with new parameters: the open asset ends
            // here and the transmission goes on under the new initialisation.
            if let Some(asset) = self.close_open_asset(None)? {
                events.push(Event::Asset(asset));
            }
            events.push(Event::Warning(format!(
                "moov at byte {}: a new initialisation (encoder restart or new parameters); the next asset starts with it",
                b.offset
            )));
            let timescale = self.clock.as_ref().map_or(1, |c| c.timescale);
            self.resume = Some(Resume {
                next_sequence: self.next_sequence,
                time_base: self.edge,
                next_datastamp: self.datastamps.next(),
                timescale,
            });
            self.moof = None;
            self.last_entry = None;
        }
        let init = Init::parse(self.ftyp.as_ref(), &b)?;
        let reference = &init.tracks[init.reference()];
        let timescale = self.resume.map_or(reference.timescale, |r| r.timescale);
        self.clock = Some(Clock::new(
            timescale,
            reference.timescale,
            self.resume.map_or(0, |r| r.time_base),
        ));
        self.next_dts = vec![None; init.tracks.len()];
        self.timeline = Timeline::new(
            init.tracks.len(),
            self.resume.map(|r| (r.time_base, r.timescale)),
        );
        self.warned_tfdt = vec![false; init.tracks.len()];
        events.push(Event::Started {
            tracks: init.tracks.clone(),
            timescale,
        });
        self.init = Some(init);
        Ok(())
    }

    fn on_fragment(
        &mut self,
        moof: &RawBox,
        mdat: &RawBox,
        now_us: u64,
        events: &mut Vec<Event>,
    ) -> Result<()> {
        let Some(init) = self.init.take() else {
            return Err(Error::MoofBeforeMoov {
                offset: moof.offset,
            });
        };
        let mut warnings = Vec::new();
        let result = fragment::parse(&init, moof, mdat, &mut self.next_dts).and_then(|mut f| {
            self.timeline.normalise(&init, &mut f, &mut warnings)?;
            Ok(f)
        });
        let result = match result {
            Ok(f) => {
                for &t in &f.without_tfdt {
                    if !std::mem::replace(&mut self.warned_tfdt[t], true) {
                        warnings.push(format!(
                            "moof at byte {}: track {} has no tfdt; its decode times go on from the previous fragment",
                            f.moof_offset, init.tracks[t].id
                        ));
                    }
                }
                events.extend(warnings.into_iter().map(Event::Warning));
                self.on_pieces(&init, &f, now_us, events)
            }
            // A fragment that cannot be read is dropped, not the transmission.
            Err(e) if e.is_bad_input() => {
                events.push(Event::Warning(format!("{e}; fragment dropped")));
                self.damaged();
                Ok(())
            }
            Err(e) => Err(e),
        };
        self.init = Some(init);
        result
    }

    fn on_pieces(
        &mut self,
        init: &Init,
        fragment: &Fragment,
        now_us: u64,
        events: &mut Vec<Event>,
    ) -> Result<()> {
        let reference = init.reference();
        for piece in split(fragment, init) {
            let Some(clock) = self.clock.as_mut() else {
                return Err(Error::MoofBeforeMoov {
                    offset: fragment.moof_offset,
                });
            };
            let mut entry_ts = piece
                .entry
                .map(|i| clock.timestamp(fragment.samples[i].pts()));
            // Entry points must strictly follow each other in time.
            if let (Some(ts), Some(last)) = (entry_ts, self.last_entry) {
                if ts <= last {
                    events.push(Event::Warning(format!(
                        "moof at byte {}: a key frame at or before the previous one in time; not an entry point",
                        fragment.moof_offset
                    )));
                    entry_ts = None;
                }
            }
            if let Some(ts) = entry_ts {
                self.need_entry = false;
                if self.should_cut(ts) {
                    if let Some(asset) = self.close_asset(init, Some(ts))? {
                        events.push(Event::Asset(asset));
                    }
                }
                if self.asset.is_none() {
                    if self.dropped > 0 {
                        events.push(Event::Warning(format!(
                            "{} samples without a key frame to start from were dropped",
                            self.dropped
                        )));
                        self.dropped = 0;
                    }
                    self.asset = Some(AssetBuilder::new(
                        self.next_sequence,
                        ts,
                        self.datastamps.next(),
                    ));
                    self.next_sequence += 1;
                    self.asset_end = ts;
                }
                self.last_entry = Some(ts);
            }
            let asset = match self.asset.as_mut() {
                Some(asset) if !self.need_entry => asset,
                _ => {
                    self.dropped += piece_samples(&piece) as u64;
                    continue;
                }
            };
            self.fragment_sequence = self.fragment_sequence.wrapping_add(1);
            let sequence = self.fragment_sequence;
            let len = asset.add_fragment(entry_ts.map(|ts| (ts, now_us)), |out| {
                write_fragment(out, fragment, &piece, init, sequence)
            })?;
            self.datastamps.stamp(len);

            // Where the reference track's presentation ends so far.
            let end = piece
                .parts
                .iter()
                .filter(|p| fragment.runs[p.run].track == reference)
                .flat_map(|p| &fragment.samples[p.samples.clone()])
                .map(|s| s.pts() + i128::from(s.duration))
                .max();
            if let (Some(end), Some(clock)) = (end, self.clock.as_mut()) {
                if clock.started() {
                    self.asset_end = self.asset_end.max(clock.timestamp(end));
                }
            }
        }
        Ok(())
    }

    fn should_cut(&self, entry_ts: u64) -> bool {
        let Some(asset) = &self.asset else {
            return false;
        };
        let timescale = self.clock.as_ref().map_or(1, |c| c.timescale);
        let interval = rescale(self.config.interval_us, 1_000_000, timescale);
        entry_ts >= asset.start.saturating_add(interval)
            || self
                .config
                .size
                .is_some_and(|size| asset.body_len() >= size)
    }

    /// Finishes the open asset under the current initialisation.
    fn close_open_asset(&mut self, next_start: Option<u64>) -> Result<Option<FinishedAsset>> {
        let Some(init) = self.init.take() else {
            return Ok(None);
        };
        let closed = self.close_asset(&init, next_start);
        self.init = Some(init);
        closed
    }

    /// Finishes the open asset; it ends at `next_start`, or where its
    /// reference track ends if none follows.
    fn close_asset(
        &mut self,
        init: &Init,
        next_start: Option<u64>,
    ) -> Result<Option<FinishedAsset>> {
        let (Some(asset), Some(clock)) = (self.asset.take(), &self.clock) else {
            return Ok(None);
        };
        let end = next_start.unwrap_or(self.asset_end);
        self.edge = end;
        asset.finish(init, clock.timescale, end).map(Some)
    }
}

fn piece_samples(piece: &Piece) -> usize {
    piece.parts.iter().map(|p| p.samples.len()).sum()
}
