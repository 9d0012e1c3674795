//! The segmenter: an I/O-free state machine fed capture bytes, returning the
//! assets that are complete and any warnings. The caller owns files, clocks
//! and signals.
//!
//! Each fragment of the open asset is handed out as it is made
//! ([`Event::Fragment`]); the finished asset's event carries its header
//! only. So what the segmenter holds is about one input fragment whatever
//! an asset's size ([`Segmenter::held_bytes`]).
//!
//! Samples go to assets by time, not by where they sit in the capture:
//! with one `moof` per track, audio sent ahead of its video waits for it
//! and video with a key frame waits for the audio before it
//! (`capture::hold`); what waits is bounded. Only video before a
//! key frame to start from is ever dropped. `emsg` and `prft` boxes go
//! into the asset before the fragment they preceded
//! ([`crate::capture::inband`]).
//!
//! Assets are cut at entry points (key frames), so each starts with one. A
//! stream whose key frames stop would make one unbounded asset; the safety
//! limits of [`Config`] cut it anyway at
//! the next fragment once it is too long or too large. The asset after such
//! a cut starts without a key frame: its maps list no entry point, a player
//! may not start from it, and `locate` never points into it. The first key
//! frame that comes ends it and opens an ordinary asset there.

use bytes::Bytes;

use crate::capture::asset::{AssetBuilder, FinishedAsset};
use crate::capture::fragment::{self, Fragment};
use crate::capture::fragment_writer::write_fragment;
use crate::capture::framing::{Framer, RawBox};
use crate::capture::hold::{self, divide, select, Order, Queue};
use crate::capture::inband::{self, Decoded, InBand};
use crate::capture::init::{Init, Track, TrackKind};
use crate::capture::split::{all, split_with, Piece};
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
    /// Safety limit: once the open asset is this long (µs), it is cut at the
    /// next fragment even without a key frame there.
    pub max_duration_us: u64,
    /// Safety limit: once the open asset holds this many bytes of
    /// fragments, it is cut at the next fragment even without a key frame.
    pub max_size: u64,
}

/// The default safety limits: far above any asset cut at key frames.
pub const MAX_DURATION_US: u64 = 60_000_000;
pub const MAX_SIZE: u64 = 256 << 20;

impl Default for Config {
    fn default() -> Self {
        Config {
            interval_us: 2_000_000,
            size: None,
            max_duration_us: MAX_DURATION_US,
            max_size: MAX_SIZE,
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
    /// The next fragment of the open asset `sequence`, as byte ranges to
    /// write in order; the asset's file is its header then these.
    Fragment {
        sequence: u64,
        bytes: Vec<Bytes>,
    },
    /// An asset is complete and may be published: its header and maps,
    /// after all its fragments.
    Asset(FinishedAsset),
    Warning(String),
}

/// The state machine. Its state is grouped by how long it lives: the
/// `Transmission` for the whole run, an `InitState` per `moov`, an
/// `OpenAsset` per asset, and `Recovery` from damage to the next entry
/// point.
pub struct Segmenter {
    config: Config,
    framer: Framer,
    run: Transmission,
    /// `None` before the first `moov`.
    init: Option<InitState>,
    /// `None` until the first entry point, and between a cut and the next.
    asset: Option<OpenAsset>,
    recovery: Recovery,
}

/// What lives for the whole run, across initialisations and assets.
struct Transmission {
    /// Where the next initialisation's timeline goes on from: the caller's,
    /// then the live edge at each new `moov`.
    resume: Option<Resume>,
    /// The latest `ftyp`: it goes with the next `moov`.
    ftyp: Option<RawBox>,
    /// `emsg` and `prft` boxes waiting for the `moof` they precede.
    inband: Vec<Decoded>,
    datastamps: Datastamps,
    next_sequence: u64,
    fragment_sequence: u32,
    /// End of the last closed asset: where a new initialisation goes on from.
    edge: u64,
    /// Capture offset just past the last box seen.
    consumed: u64,
    /// When the last box was received (µs since the epoch): the receive
    /// time of what is placed at the end.
    now_us: u64,
    /// An error stopped the input; what is left unread belongs to that
    /// error, already reported.
    failed: bool,
}

/// What one `moov` sets up; the next `moov` replaces all of it.
struct InitState {
    init: Init,
    /// Transmission time of the reference track's presentation times.
    clock: Clock,
    timeline: Timeline,
    /// Per track, the decode time after the last fragment, for a `traf`
    /// without `tfdt`.
    next_dts: Vec<Option<u64>>,
    /// Per track, whether a missing `tfdt` was reported already.
    warned_tfdt: Vec<bool>,
    /// A `moof` waiting for its `mdat`.
    moof: Option<RawBox>,
    /// Transmission time of the last entry point: the next must follow it.
    last_entry: Option<u64>,
    /// With a video reference track: video and other tracks waiting for
    /// each other.
    order: Order,
    /// Samples of other tracks placed while no asset was open: they go
    /// into the next asset, just after its first entry point.
    aside: Queue,
    /// Whether samples were placed without video for waiting too long.
    warned_wait: bool,
}

/// The asset being assembled, from its first entry point to the next cut.
struct OpenAsset {
    builder: AssetBuilder,
    /// Transmission time where its reference track ends so far.
    end: u64,
    /// Opened by a safety cut, not at an entry point: the next entry point
    /// ends it.
    keyless: bool,
}

/// Samples are dropped until an entry point: before the first one, and after
/// damage, so no asset holds frames that cannot be decoded.
#[derive(Debug, Default)]
struct Recovery {
    /// Damage was seen and no entry point has followed yet.
    need_entry: bool,
    /// Video samples dropped while waiting for a key frame to start from,
    /// per track.
    dropped: std::collections::BTreeMap<usize, u64>,
}

impl Segmenter {
    pub fn new(config: Config, resume: Option<Resume>) -> Self {
        Segmenter {
            config,
            framer: Framer::resyncing(),
            run: Transmission::new(resume),
            init: None,
            asset: None,
            recovery: Recovery::default(),
        }
    }

    /// Feeds capture bytes received at `now_us` (µs since the Unix epoch).
    /// What became ready is appended to `events`, also when an error stops
    /// the stream part-way.
    pub fn push(&mut self, chunk: &[u8], now_us: u64, events: &mut Vec<Event>) -> Result<()> {
        self.framer.push(chunk);
        let result = self.drain(now_us, events);
        self.run.failed |= result.is_err();
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
        self.run.failed |= result.is_err();
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
        let pending_moof = self.init.as_mut().and_then(|s| s.moof.take());
        let pending_moof = pending_moof.map(|m| Error::Truncated {
            offset: m.offset,
            kind: "moof".into(),
            have: m.bytes.len() as u64,
            need: m.bytes.len() as u64 + 8,
        });
        // After an error the rest of the buffer is what failed, already reported.
        let problem = unfinished.or(pending_moof).filter(|_| !self.run.failed);
        self.release_held(events)?;
        let unplaced = std::mem::take(&mut self.run.inband).len();
        if unplaced > 0 {
            events.push(Event::Warning(format!(
                "{unplaced} emsg/prft box(es) at the end of the input precede no fragment; dropped"
            )));
        }
        match self.close_open_asset()? {
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
                        offset: self.run.consumed,
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

    /// Bytes of capture the segmenter holds between calls: the partial box
    /// being framed, a `moof` waiting for its `mdat`, and samples waiting
    /// to be placed in time (bounded by `capture::hold`). The open asset's
    /// fragments are not among them: they left as events.
    pub fn held_bytes(&self) -> usize {
        let moof = self.init.as_ref().and_then(|s| s.moof.as_ref());
        let held = self
            .init
            .as_ref()
            .map_or(0, |s| s.order.bytes() + s.aside.bytes());
        self.framer.buffered() + moof.map_or(0, |m| m.bytes.len()) + held
    }

    fn on_box(&mut self, b: RawBox, now_us: u64, events: &mut Vec<Event>) -> Result<()> {
        self.run.consumed = b.offset + b.bytes.len() as u64;
        self.run.now_us = now_us;
        if let Some((at, count)) = b.skipped_before {
            let cause = b
                .doubted
                .as_deref()
                .map_or(String::new(), |d| format!("{d}; "));
            events.push(Event::Warning(format!(
                "{cause}{count} bytes of damaged data at byte {at} skipped; resynchronised at the {} at byte {}",
                b.kind_str(),
                b.offset
            )));
            self.recovery.damaged();
        }
        match &b.kind {
            b"ftyp" => self.run.ftyp = Some(b),
            b"moov" => self.on_moov(b, events)?,
            b"moof" => {
                let Some(state) = self.init.as_mut() else {
                    return Err(Error::MoofBeforeMoov { offset: b.offset });
                };
                if let Some(previous) = state.moof.replace(b) {
                    events.push(Event::Warning(format!(
                        "moof at byte {}: no mdat follows it; fragment dropped",
                        previous.offset
                    )));
                    self.recovery.damaged();
                }
            }
            b"mdat" => match self.init.as_mut().map(|s| s.moof.take()) {
                Some(Some(moof)) => self.on_fragment(&moof, &b, now_us, events)?,
                Some(None) => events.push(Event::Warning(format!(
                    "mdat at byte {}: no moof before it; skipped",
                    b.offset
                ))),
                None => {
                    return Err(Error::bad_box(
                        b.offset,
                        "mdat",
                        "media data before any moov: not a fragmented capture",
                    ))
                }
            },
            b"emsg" | b"prft" => match inband::read(&b) {
                Ok(d) => self.run.inband.push(d),
                Err(e) => events.push(Event::Warning(format!("{e}; dropped"))),
            },
            // sidx/styp/free/mfra describe the input's layout; the assets
            // have their own.
            _ => {}
        }
        Ok(())
    }

    fn on_moov(&mut self, b: RawBox, events: &mut Vec<Event>) -> Result<()> {
        if let Some(state) = &self.init {
            if state.init.same_moov(&b) {
                return Ok(());
            }
            self.restart(&b, events)?;
        }
        let state = InitState::new(self.run.ftyp.as_ref(), &b, self.run.resume)?;
        events.push(Event::Started {
            tracks: state.init.tracks.clone(),
            timescale: state.clock.timescale,
        });
        self.init = Some(state);
        Ok(())
    }

    /// A new `moov` (an encoder restart or new parameters): the open asset
    /// ends here and the transmission goes on from the live edge under the
    /// new initialisation.
    fn restart(&mut self, moov: &RawBox, events: &mut Vec<Event>) -> Result<()> {
        self.release_held(events)?;
        if let Some(asset) = self.close_open_asset()? {
            events.push(Event::Asset(asset));
        }
        events.push(Event::Warning(format!(
            "moov at byte {}: a new initialisation (encoder restart or new parameters); the next asset starts with it",
            moov.offset
        )));
        if let Some(state) = self.init.as_mut() {
            self.run.resume = Some(self.run.resume_point(state.clock.timescale));
            // What waited on the old initialisation goes with it.
            state.moof = None;
            state.last_entry = None;
        }
        Ok(())
    }

    fn on_fragment(
        &mut self,
        moof: &RawBox,
        mdat: &RawBox,
        now_us: u64,
        events: &mut Vec<Event>,
    ) -> Result<()> {
        // Out of `self` while the pieces go into the open asset.
        let Some(mut state) = self.init.take() else {
            return Err(Error::MoofBeforeMoov {
                offset: moof.offset,
            });
        };
        let result = match state.read_fragment(moof, mdat, events) {
            Ok(mut f) => {
                f.events = std::mem::take(&mut self.run.inband)
                    .into_iter()
                    .map(|d| d.rebase(&state.init, &state.timeline, &f))
                    .collect();
                self.on_pieces(&mut state, f, now_us, events)
            }
            // A fragment that cannot be read is dropped, not the transmission.
            Err(e) if e.is_bad_input() => {
                events.push(Event::Warning(format!("{e}; fragment dropped")));
                self.recovery.damaged();
                Ok(())
            }
            Err(e) => Err(e),
        };
        self.init = Some(state);
        result
    }

    /// Places a fragment in time. Without a video reference track it is
    /// cut at once; with one, video and other tracks wait for each other
    /// ([`hold::Order`]) and the video is cut as it can be placed.
    fn on_pieces(
        &mut self,
        state: &mut InitState,
        fragment: Fragment,
        now_us: u64,
        events: &mut Vec<Event>,
    ) -> Result<()> {
        let reference = state.init.reference();
        if state.init.tracks[reference].kind != TrackKind::Video {
            return self.place_video(state, &fragment, now_us, events);
        }
        state.order.note(&fragment);
        if fragment.runs.iter().any(|r| r.track == reference) {
            state.order.push_video(fragment);
        } else {
            self.place_others(state, &fragment, events)?;
        }
        while let Some((video, lagging)) = state.order.next_video(&state.init) {
            if !lagging.is_empty() {
                events.push(Event::Warning(format!(
                    "moof at byte {}: video waited more than {} s or {} MiB for track(s) {lagging:?} to reach its key frame; placed without them",
                    video.moof_offset,
                    hold::MAX_HELD_S,
                    hold::MAX_HELD_BYTES >> 20
                )));
            }
            self.place_video(state, &video, now_us, events)?;
        }
        Ok(())
    }

    /// Cuts a fragment with the reference track at its key frames and adds
    /// each piece to the open asset, closing it and opening the next at an
    /// entry point due a cut. Samples of other tracks waiting for this video
    /// follow the piece whose time they fall in.
    fn place_video(
        &mut self,
        state: &mut InitState,
        fragment: &Fragment,
        now_us: u64,
        events: &mut Vec<Event>,
    ) -> Result<()> {
        let held = state.take_reached(fragment);
        // Each fragment's events go before its first piece written.
        let mut own_events = fragment.events.as_slice();
        let mut held_events: Vec<&[InBand]> = held.iter().map(|h| h.events.as_slice()).collect();
        for slot in split_with(fragment, &state.init, &held) {
            let entry_ts = state.entry_point(fragment, &slot.own, events);
            if let Some(ts) = entry_ts {
                self.at_entry_point(state, ts, events)?;
            }
            if self.recovery.need_entry || self.asset.is_none() {
                let first = std::mem::take(&mut own_events);
                self.set_aside(state, fragment, &slot.own, first, events)?;
                for (h, piece) in &slot.held {
                    let first = std::mem::take(&mut held_events[*h]);
                    self.set_aside(state, &held[*h], piece, first, events)?;
                }
                continue;
            }
            if entry_ts.is_none() {
                self.safety_cut(state, fragment.moof_offset, events)?;
            }
            // The key frame's own fragment comes first, so the entry point
            // is a fragment that opens with it; the samples of other tracks
            // of the same time follow in fragments of their own.
            let mut entry = entry_ts.map(|ts| (ts, now_us));
            if !slot.own.parts.is_empty() {
                let first = std::mem::take(&mut own_events);
                self.add_piece(state, fragment, &slot.own, entry.take(), first, events)?;
            }
            for f in state.aside.take_all() {
                self.add_piece(state, &f, &all(&f), entry.take(), &f.events, events)?;
            }
            for (h, piece) in &slot.held {
                let first = std::mem::take(&mut held_events[*h]);
                self.add_piece(state, &held[*h], piece, entry.take(), first, events)?;
            }
        }
        Ok(())
    }

    /// A fragment without video: placed as far as the video has come; the
    /// rest waits for it, within limits.
    fn place_others(
        &mut self,
        state: &mut InitState,
        fragment: &Fragment,
        events: &mut Vec<Event>,
    ) -> Result<()> {
        let reference = state.init.reference();
        let scale = state.init.tracks[reference].timescale;
        let (ready, later) = match state.order.video_end {
            Some(end) => divide(fragment, &state.init, end, scale),
            None => (None, select(fragment, |_, _| true)),
        };
        state.order.waiting.extend(later);
        if let Some(ready) = ready {
            self.add_late(state, &ready, events)?;
        }
        while let Some(f) = state.order.waiting.over_limit(&state.init) {
            if !std::mem::replace(&mut state.warned_wait, true) {
                events.push(Event::Warning(format!(
                    "moof at byte {}: samples of other tracks waited more than {} s or {} MiB for the video of their time; placed without it",
                    f.moof_offset,
                    hold::MAX_HELD_S,
                    hold::MAX_HELD_BYTES >> 20
                )));
            }
            self.add_late(state, &f, events)?;
        }
        Ok(())
    }

    /// Samples of other tracks whose video has gone by: into the open
    /// asset, or aside for the next.
    fn add_late(
        &mut self,
        state: &mut InitState,
        fragment: &Fragment,
        events: &mut Vec<Event>,
    ) -> Result<()> {
        let piece = all(fragment);
        if self.asset.is_none() {
            return self.set_aside(state, fragment, &piece, &fragment.events, events);
        }
        self.safety_cut(state, fragment.moof_offset, events)?;
        self.add_piece(state, fragment, &piece, None, &fragment.events, events)
    }

    /// A piece no asset can start with: its video samples are dropped
    /// (they need the key frame before them); samples of other tracks go
    /// into the open asset when one is (damage was seen), else aside for
    /// the next asset, within limits; `inband`, the events before the
    /// fragment when this is its first piece, go with them.
    fn set_aside(
        &mut self,
        state: &mut InitState,
        fragment: &Fragment,
        piece: &Piece,
        inband: &[InBand],
        events: &mut Vec<Event>,
    ) -> Result<()> {
        let video = |t: usize| state.init.tracks[t].kind == TrackKind::Video;
        for part in &piece.parts {
            let t = fragment.runs[part.run].track;
            if video(t) {
                *self.recovery.dropped.entry(t).or_default() += part.samples.len() as u64;
            }
        }
        let mine = |i: usize| piece.parts.iter().any(|p| p.samples.contains(&i));
        let Some(mut others) = select(fragment, |t, i| !video(t) && mine(i)) else {
            return Ok(());
        };
        others.events = inband.to_vec();
        if self.asset.is_some() {
            return self.add_piece(state, &others, &all(&others), None, inband, events);
        }
        state.aside.extend(Some(others));
        while let Some(f) = state.aside.over_limit(&state.init) {
            events.push(Event::Warning(format!(
                "moof at byte {}: {} samples waited for a video key frame to start from for more than {} s or {} MiB; dropped",
                f.moof_offset,
                f.samples.len(),
                hold::MAX_HELD_S,
                hold::MAX_HELD_BYTES >> 20
            )));
        }
        Ok(())
    }

    /// Places everything still held (the input ends, or a new `moov`
    /// comes): waiting video as it is, then waiting samples of other tracks
    /// into the open asset; those set aside for an
    /// asset that never opened are dropped with a warning.
    fn release_held(&mut self, events: &mut Vec<Event>) -> Result<()> {
        let Some(mut state) = self.init.take() else {
            return Ok(());
        };
        let (mut result, now_us) = (Ok(()), self.run.now_us);
        for f in state.order.take_video() {
            result = result.and_then(|()| self.place_video(&mut state, &f, now_us, events));
        }
        for f in state.order.waiting.take_all() {
            result = result.and_then(|()| self.add_late(&mut state, &f, events));
        }
        let lost: usize = state.aside.take_all().iter().map(|f| f.samples.len()).sum();
        if lost > 0 {
            events.push(Event::Warning(format!(
                "{lost} samples of tracks other than video came before any key frame to start from; dropped at the end"
            )));
        }
        self.init = Some(state);
        result
    }

    /// An entry point at transmission time `ts`: the end of recovery, a cut
    /// if one is due, and the start of an asset if none is open.
    fn at_entry_point(
        &mut self,
        state: &mut InitState,
        ts: u64,
        events: &mut Vec<Event>,
    ) -> Result<()> {
        self.recovery.need_entry = false;
        if self.should_cut(state, ts) {
            if let Some(asset) = self.close_asset(state, Some(ts))? {
                events.push(Event::Asset(asset));
            }
        }
        for (t, n) in std::mem::take(&mut self.recovery.dropped) {
            let track = &state.init.tracks[t];
            events.push(Event::Warning(format!(
                "{n} samples of video track {} ({}) without a key frame to start from were dropped",
                track.id, track.codec
            )));
        }
        if self.asset.is_none() {
            self.asset = Some(self.run.open_asset(ts));
        }
        state.last_entry = Some(ts);
        Ok(())
    }

    /// Writes `piece` into the open asset as one fragment, handed out in
    /// `events`, after the event boxes `inband`; `entry` marks it as an
    /// entry point: (timestamp, wall-clock receive time), at the event boxes
    /// when there are any, so a client starting there has them.
    fn add_piece(
        &mut self,
        state: &mut InitState,
        fragment: &Fragment,
        piece: &Piece,
        entry: Option<(u64, u64)>,
        inband: &[InBand],
        events: &mut Vec<Event>,
    ) -> Result<()> {
        let Some(asset) = self.asset.as_mut() else {
            return Ok(());
        };
        self.run.fragment_sequence = self.run.fragment_sequence.wrapping_add(1);
        let sequence = self.run.fragment_sequence;
        let bytes = asset.builder.add_fragment(entry, |out| {
            write_inband(out, inband, fragment, piece, &state.init)?;
            write_fragment(out, fragment, piece, &state.init, sequence)
        })?;
        self.run
            .datastamps
            .stamp(bytes.iter().map(|b| b.len() as u64).sum());
        events.push(Event::Fragment {
            sequence: asset.builder.sequence,
            bytes,
        });
        let end = reference_end(fragment, piece, state.init.reference());
        if let Some(end) = end.filter(|_| state.clock.started()) {
            asset.end = asset.end.max(state.clock.timestamp(end));
        }
        Ok(())
    }

    /// Cuts the open asset, without an entry point, once it has outgrown a
    /// safety limit: the next one opens where it ends, before the fragment
    /// of the `moof` at `moof_offset`.
    fn safety_cut(
        &mut self,
        state: &InitState,
        moof_offset: u64,
        events: &mut Vec<Event>,
    ) -> Result<()> {
        let Some(asset) = &self.asset else {
            return Ok(());
        };
        let (cfg, timescale) = (&self.config, state.clock.timescale);
        let duration = asset.end.saturating_sub(asset.builder.start);
        let too_long = duration >= rescale(cfg.max_duration_us, 1_000_000, timescale);
        let too_large = asset.builder.body_len() >= cfg.max_size;
        if !too_long && !too_large {
            return Ok(());
        }
        let (sequence, size, end) = (asset.builder.sequence, asset.builder.body_len(), asset.end);
        if let Some(closed) = self.close_asset(state, Some(end))? {
            events.push(Event::Asset(closed));
        }
        events.push(Event::Warning(format!(
            "moof at byte {moof_offset}: asset {sequence} reached {:.3} s and {size} bytes without a key frame to cut at; cut here, and the next asset has no entry point until a key frame comes",
            duration as f64 / f64::from(timescale.max(1))
        )));
        let mut next = self.run.open_asset(end);
        next.keyless = true;
        self.asset = Some(next);
        Ok(())
    }

    fn should_cut(&self, state: &InitState, entry_ts: u64) -> bool {
        let Some(asset) = &self.asset else {
            return false;
        };
        let interval = rescale(self.config.interval_us, 1_000_000, state.clock.timescale);
        asset.keyless
            || entry_ts >= asset.builder.start.saturating_add(interval)
            || self
                .config
                .size
                .is_some_and(|size| asset.builder.body_len() >= size)
    }

    /// Finishes the open asset under the current initialisation.
    fn close_open_asset(&mut self) -> Result<Option<FinishedAsset>> {
        let Some(state) = self.init.take() else {
            return Ok(None);
        };
        let closed = self.close_asset(&state, None);
        self.init = Some(state);
        closed
    }

    /// Finishes the open asset; it ends at `next_start`, or where its
    /// reference track ends if none follows.
    fn close_asset(
        &mut self,
        state: &InitState,
        next_start: Option<u64>,
    ) -> Result<Option<FinishedAsset>> {
        let Some(asset) = self.asset.take() else {
            return Ok(None);
        };
        let end = next_start.unwrap_or(asset.end);
        self.run.edge = end;
        asset
            .builder
            .finish(&state.init, state.clock.timescale, end)
            .map(Some)
    }
}

impl Transmission {
    fn new(resume: Option<Resume>) -> Self {
        Transmission {
            resume,
            ftyp: None,
            inband: Vec::new(),
            datastamps: Datastamps::starting_at(resume.map_or(0, |r| r.next_datastamp)),
            next_sequence: resume.map_or(0, |r| r.next_sequence),
            fragment_sequence: 0,
            edge: resume.map_or(0, |r| r.time_base),
            consumed: 0,
            now_us: 0,
            failed: false,
        }
    }

    /// Where the transmission stands now, in transmission time of
    /// `timescale`: what a new initialisation goes on from.
    fn resume_point(&self, timescale: u32) -> Resume {
        Resume {
            next_sequence: self.next_sequence,
            time_base: self.edge,
            next_datastamp: self.datastamps.next(),
            timescale,
        }
    }

    /// Opens the next asset at the entry point at transmission time `start`.
    fn open_asset(&mut self, start: u64) -> OpenAsset {
        let builder = AssetBuilder::new(self.next_sequence, start, self.datastamps.next());
        self.next_sequence += 1;
        OpenAsset {
            builder,
            end: start,
            keyless: false,
        }
    }
}

impl InitState {
    /// Reads a `moov` (with the `ftyp` before it); a continued transmission
    /// goes on from `resume`, in its timescale.
    fn new(ftyp: Option<&RawBox>, moov: &RawBox, resume: Option<Resume>) -> Result<Self> {
        let init = Init::parse(ftyp, moov)?;
        let reference = &init.tracks[init.reference()];
        let timescale = resume.map_or(reference.timescale, |r| r.timescale);
        let clock = Clock::new(
            timescale,
            reference.timescale,
            resume.map_or(0, |r| r.time_base),
        );
        let tracks = init.tracks.len();
        Ok(InitState {
            clock,
            timeline: Timeline::new(tracks, resume.map(|r| (r.time_base, r.timescale))),
            next_dts: vec![None; tracks],
            warned_tfdt: vec![false; tracks],
            moof: None,
            last_entry: None,
            order: Order::new(tracks),
            aside: Queue::default(),
            warned_wait: false,
            init,
        })
    }

    /// Resolves `moof` + `mdat` onto the transmission's timeline. Its
    /// warnings go to `events` only if it can be read.
    fn read_fragment(
        &mut self,
        moof: &RawBox,
        mdat: &RawBox,
        events: &mut Vec<Event>,
    ) -> Result<Fragment> {
        let mut f = fragment::parse(&self.init, moof, mdat, &mut self.next_dts)?;
        let mut warnings = Vec::new();
        self.timeline.normalise(&self.init, &mut f, &mut warnings)?;
        for &t in &f.without_tfdt {
            if !std::mem::replace(&mut self.warned_tfdt[t], true) {
                warnings.push(format!(
                    "moof at byte {}: track {} has no tfdt; its decode times go on from the previous fragment",
                    f.moof_offset, self.init.tracks[t].id
                ));
            }
        }
        events.extend(warnings.into_iter().map(Event::Warning));
        Ok(f)
    }

    /// The samples of other tracks waiting for video that `fragment`, a
    /// fragment with video, reaches; the video placed now ends with it.
    fn take_reached(&mut self, fragment: &Fragment) -> Vec<Fragment> {
        let reference = self.init.reference();
        if self.init.tracks[reference].kind != TrackKind::Video {
            return Vec::new();
        }
        let end = fragment
            .runs
            .iter()
            .filter(|r| r.track == reference)
            .flat_map(|r| &fragment.samples[r.samples.clone()])
            .map(|s| s.dts.saturating_add(u64::from(s.duration)))
            .max();
        let Some(end) = end.max(self.order.video_end) else {
            return Vec::new();
        };
        self.order.video_end = Some(end);
        let scale = self.init.tracks[reference].timescale;
        self.order.waiting.take_before(&self.init, end, scale)
    }

    /// The transmission time `piece` is an entry point at, if it is one.
    /// Entry points must strictly follow each other in time.
    fn entry_point(
        &mut self,
        fragment: &Fragment,
        piece: &Piece,
        events: &mut Vec<Event>,
    ) -> Option<u64> {
        let ts = self.clock.timestamp(fragment.samples[piece.entry?].pts());
        if self.last_entry.is_some_and(|last| ts <= last) {
            events.push(Event::Warning(format!(
                "moof at byte {}: a key frame at or before the previous one in time; not an entry point",
                fragment.moof_offset
            )));
            return None;
        }
        Some(ts)
    }
}

impl Recovery {
    /// Something was lost: what depends on it is dropped up to the next key
    /// frame.
    fn damaged(&mut self) {
        self.need_entry = true;
    }
}

/// Writes the event boxes that go before `piece`, their relative times
/// taken from the piece's earliest reference presentation time.
fn write_inband(
    out: &mut Vec<Bytes>,
    inband: &[InBand],
    fragment: &Fragment,
    piece: &Piece,
    init: &Init,
) -> Result<()> {
    if inband.is_empty() {
        return Ok(());
    }
    let reference = init.reference();
    let anchor = piece
        .parts
        .iter()
        .filter(|p| fragment.runs[p.run].track == reference)
        .flat_map(|p| &fragment.samples[p.samples.clone()])
        .map(|s| s.pts())
        .min();
    let mut head = Vec::new();
    for e in inband {
        e.write(&mut head, anchor, init.tracks[reference].timescale)?;
    }
    out.push(head.into());
    Ok(())
}

/// Where the reference track's presentation ends in `piece`, in its own
/// ticks.
fn reference_end(fragment: &Fragment, piece: &Piece, reference: usize) -> Option<i128> {
    piece
        .parts
        .iter()
        .filter(|p| fragment.runs[p.run].track == reference)
        .flat_map(|p| &fragment.samples[p.samples.clone()])
        .map(|s| s.pts() + i128::from(s.duration))
        .max()
}
