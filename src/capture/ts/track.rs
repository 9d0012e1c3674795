//! One elementary stream on its way to an MP4 track: its clock, its sample
//! entry once known, and its samples, each held until the next one gives
//! its duration. Video waits for a key frame (at the start and after
//! damage); audio frames get consecutive times unless the PES times move
//! away from them by more than half a frame.

use super::adts;
use super::annexb::{self, VideoCodec};
use super::clock::{Program, StreamClock};
use super::moov::{Entry, VIDEO_TIMESCALE};
use super::pes::Pes;
use crate::capture::sps;

/// Samples per AAC frame.
const AAC_FRAME: i64 = 1024;

#[derive(Debug, Clone)]
pub(crate) struct Sample {
    /// Decode time in the track's timescale.
    pub dts: i64,
    /// Presentation minus decode time.
    pub cts: i64,
    pub duration: u32,
    pub key: bool,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Video(VideoCodec),
    Audio,
}

pub(crate) struct Track {
    pub pid: u16,
    pub kind: Kind,
    pub clock: StreamClock,
    pub entry: Option<Entry>,
    /// Samples whose durations are known, in decode order.
    pub queue: Vec<Sample>,
    /// The newest sample, waiting for the next one's time.
    pending: Option<Sample>,
    /// Video only: dropping frames until a key frame.
    waiting_key: bool,
    /// Frames dropped while waiting.
    pub dropped: u64,
    /// Audio only: the time the next frame follows on at.
    next_audio: Option<i64>,
}

/// What pushing a PES did that the muxer must act on.
#[derive(Debug, Default)]
pub(crate) struct Pushed {
    /// The sample entry changed: samples before `cut` (a queue index)
    /// belong to the old initialisation.
    pub new_entry: Option<usize>,
}

impl Track {
    pub fn new(pid: u16, kind: Kind, clock: StreamClock) -> Self {
        Track {
            pid,
            kind,
            clock,
            entry: None,
            queue: Vec::new(),
            pending: None,
            waiting_key: true,
            dropped: 0,
            next_audio: None,
        }
    }

    pub fn timescale(&self) -> u32 {
        self.entry
            .as_ref()
            .map_or(VIDEO_TIMESCALE, Entry::timescale)
    }

    /// Packets were lost: video waits for the next key frame.
    pub fn lost(&mut self) {
        if matches!(self.kind, Kind::Video(_)) {
            self.waiting_key = true;
        }
    }

    /// The time of the newest sample, in seconds × 90 000.
    pub fn newest_90k(&self) -> Option<i64> {
        let s = self.pending.as_ref().or(self.queue.last())?;
        Some(to_90k(s.dts, self.timescale()))
    }

    /// The end of input: frames dropped while waiting for a key frame that
    /// never came are reported.
    pub fn finish(&mut self, warnings: &mut Vec<String>) {
        if self.dropped > 0 {
            warnings.push(format!(
                "PID 0x{:x}: the last {} video frame(s) dropped: no key frame came to decode them from",
                self.pid, self.dropped
            ));
            self.dropped = 0;
        }
        self.close();
    }

    /// Moves the pending sample to the queue, guessing its duration from
    /// the one before (the end of input, or a new initialisation).
    pub fn close(&mut self) {
        if let Some(mut last) = self.pending.take() {
            last.duration = self
                .queue
                .last()
                .map_or(self.default_duration(), |s| s.duration);
            self.queue.push(last);
        }
    }

    fn default_duration(&self) -> u32 {
        match self.kind {
            Kind::Video(_) => 3000,
            Kind::Audio => AAC_FRAME as u32,
        }
    }

    pub fn push(&mut self, pes: Pes, program: &mut Program, warnings: &mut Vec<String>) -> Pushed {
        match self.kind {
            Kind::Video(codec) => self.push_video(codec, pes, program, warnings),
            Kind::Audio => self.push_audio(pes, program, warnings),
        }
    }

    fn push_video(
        &mut self,
        codec: VideoCodec,
        pes: Pes,
        program: &mut Program,
        warnings: &mut Vec<String>,
    ) -> Pushed {
        let mut data = Vec::with_capacity(pes.data.len() + 16);
        let converted = annexb::convert(codec, &pes.data, &mut data);
        let Some(raw_dts) = pes.dts.or(pes.pts) else {
            // No time: the rest of the access unit before.
            if let Some(p) = &mut self.pending {
                p.data.extend_from_slice(&data);
            }
            return Pushed::default();
        };
        let (dts, jump) = self.clock.place(raw_dts, program);
        self.report_jump(jump, pes.offset, warnings);
        let pts = pes.pts.map_or(dts, |p| self.clock.beside(p, dts));
        let mut pushed = Pushed::default();
        if converted.key {
            match self.entry_of(codec, &converted.params) {
                Some(entry) if self.entry.as_ref() != Some(&entry) => {
                    pushed.new_entry = Some(self.queue.len() + usize::from(self.pending.is_some()));
                    self.entry = Some(entry);
                }
                Some(_) => {}
                None if self.entry.is_none() => {
                    self.dropped += 1;
                    return pushed;
                }
                None => {}
            }
            if std::mem::replace(&mut self.waiting_key, false) && self.dropped > 0 {
                warnings.push(format!(
                    "PID 0x{:x}: {} video frame(s) before the key frame at byte {} dropped (nothing to decode them from)",
                    self.pid, self.dropped, pes.offset
                ));
                self.dropped = 0;
            }
        } else if self.waiting_key {
            self.dropped += 1;
            return pushed;
        }
        self.follow(Sample {
            dts,
            cts: pts - dts,
            duration: 0,
            key: converted.key,
            data,
        });
        pushed
    }

    /// The sample entry a key frame's parameter sets make, if they are
    /// complete and readable.
    fn entry_of(&self, codec: VideoCodec, params: &annexb::ParamSets) -> Option<Entry> {
        if !params.is_complete(codec) {
            return self.entry.clone();
        }
        let info = match codec {
            VideoCodec::H264 => sps::h264(&params.sps[0]),
            VideoCodec::Hevc => sps::hevc(&params.sps[0]),
        }?;
        Some(Entry::Video {
            codec,
            params: params.clone(),
            info,
        })
    }

    /// Makes `next` the pending sample; the one before learns its duration.
    fn follow(&mut self, next: Sample) {
        if let Some(mut prev) = self.pending.take() {
            prev.duration = u32::try_from((next.dts - prev.dts).max(1)).unwrap_or(u32::MAX);
            self.queue.push(prev);
        }
        self.pending = Some(next);
    }

    fn push_audio(
        &mut self,
        pes: Pes,
        program: &mut Program,
        warnings: &mut Vec<String>,
    ) -> Pushed {
        let (frames, skipped) = adts::frames(&pes.data);
        if skipped > 0 {
            warnings.push(format!(
                "PID 0x{:x}: {skipped} byte(s) of the audio PES at byte {} are not ADTS frames; skipped",
                self.pid, pes.offset
            ));
        }
        let mut pushed = Pushed::default();
        let Some(first) = frames.first() else {
            return pushed;
        };
        if self.entry != Some(Entry::Audio(first.config)) {
            pushed.new_entry = Some(self.queue.len() + usize::from(self.pending.is_some()));
            self.entry = Some(Entry::Audio(first.config));
            self.next_audio = None;
        }
        let rate = i64::from(first.config.sample_rate());
        let mut t = match pes.pts {
            Some(raw) => {
                let (placed, jump) = self.clock.place(raw, program);
                self.report_jump(jump, pes.offset, warnings);
                let t = placed * rate / 90_000;
                // Frames follow on; only a gap moves them (a track never
                // goes back, so an overlap after a splice is closed up).
                match self.next_audio {
                    Some(next) if t < next + AAC_FRAME / 2 => next,
                    _ => t,
                }
            }
            None => self.next_audio.unwrap_or(0),
        };
        for f in frames.iter().filter(|f| f.config == first.config) {
            self.follow(Sample {
                dts: t,
                cts: 0,
                duration: 0,
                key: true,
                data: f.data.to_vec(),
            });
            t += AAC_FRAME;
        }
        self.next_audio = Some(t);
        pushed
    }

    fn report_jump(
        &self,
        jump: Option<super::clock::Jump>,
        offset: u64,
        warnings: &mut Vec<String>,
    ) {
        if let Some(j) = jump {
            warnings.push(format!(
                "PID 0x{:x}: timestamps jump by {:.3} s at byte {offset} (a clock discontinuity or an encoder restart); resynchronised to go on",
                self.pid, j.0
            ));
        }
    }
}

pub(crate) fn to_90k(t: i64, timescale: u32) -> i64 {
    (i128::from(t) * 90_000 / i128::from(timescale.max(1))) as i64
}
