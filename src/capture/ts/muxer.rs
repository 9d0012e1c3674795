//! The fragmented-MP4 writer: gathers the program's tracks, writes the
//! initialisation once every track's sample entry is known (or after two
//! seconds without one, leaving the silent track out), then one `moof` +
//! `mdat` per video GOP with the audio of the same time interleaved, each
//! preceded by the `emsg` boxes of the SCTE-35 sections that came before
//! it. A new sample entry or a new set of streams ends the fragment and
//! starts a new initialisation, which the segmenter takes as an encoder
//! restart.

use mp4_atom::{
    Emsg, EmsgTimestamp, Encode, Header, Mfhd, Moof, Tfdt, Tfhd, Traf, Trun, TrunEntry,
};

use super::annexb::VideoCodec;
use super::clock::{Program, StreamClock};
use super::moov::{self, Entry};
use super::pes::Pes;
use super::psi::{Stream, AAC_ADTS, H264, HEVC};
use super::scte35;
use super::track::{to_90k, Kind, Sample, Track};
use crate::{Error, Result};

/// How long the initialisation waits for a silent track (90 kHz).
const INIT_WAIT: i64 = 2 * 90_000;

/// A fragment is cut without a key frame once video spans this (90 kHz),
/// to bound memory and latency when key frames are rare.
const MAX_FRAGMENT: i64 = 4 * 90_000;

/// How long an audio-only fragment is (90 kHz).
const AUDIO_FRAGMENT: i64 = 90_000;

/// How far video may run ahead of lagging audio before the fragment is cut
/// without it (90 kHz).
const AUDIO_LAG: i64 = 90_000;

const SYNC_FLAGS: u32 = 0x0200_0000;
const NON_SYNC_FLAGS: u32 = 0x0101_0000;

#[derive(Default)]
pub(crate) struct Muxer {
    tracks: Vec<Track>,
    program: Program,
    /// Indexes of the tracks in the initialisation written, in track-id
    /// order; `None` until it is written.
    init: Option<Vec<usize>>,
    sequence: u32,
    emsg: Vec<Vec<u8>>,
    next_event_id: u32,
}

impl Muxer {
    /// The program's streams (first seen, or changed): what is held is
    /// written, and a new initialisation follows. A stream that keeps its
    /// PID keeps its clock, so times go on.
    pub fn program(&mut self, streams: &[Stream], out: &mut Vec<Vec<u8>>) -> Result<()> {
        self.flush_all(out)?;
        let mut old = std::mem::take(&mut self.tracks);
        for s in streams {
            let kind = match s.stream_type {
                H264 => Kind::Video(VideoCodec::H264),
                HEVC => Kind::Video(VideoCodec::Hevc),
                AAC_ADTS => Kind::Audio,
                _ => continue,
            };
            let clock = old
                .iter_mut()
                .find(|t| t.pid == s.pid)
                .map(|t| std::mem::take(&mut t.clock))
                .unwrap_or_else(StreamClock::default);
            self.tracks.push(Track::new(s.pid, kind, clock));
        }
        self.init = None;
        Ok(())
    }

    pub fn pes(
        &mut self,
        pid: u16,
        pes: Pes,
        out: &mut Vec<Vec<u8>>,
        warnings: &mut Vec<String>,
    ) -> Result<()> {
        let Some(t) = self.tracks.iter().position(|t| t.pid == pid) else {
            return Ok(());
        };
        let pushed = self.tracks[t].push(pes, &mut self.program, warnings);
        if let Some(cut) = pushed.new_entry {
            self.new_entry(t, cut, out, warnings)?;
        }
        self.flush_ready(out, warnings)
    }

    pub fn lost(&mut self, pid: u16) {
        if let Some(t) = self.tracks.iter_mut().find(|t| t.pid == pid) {
            t.lost();
        }
    }

    /// Track `t`'s sample entry changed at queue index `cut`: what came
    /// before is written under the old initialisation.
    fn new_entry(
        &mut self,
        t: usize,
        cut: usize,
        out: &mut Vec<Vec<u8>>,
        warnings: &mut Vec<String>,
    ) -> Result<()> {
        let queue = &mut self.tracks[t].queue;
        let newer = queue.split_off(cut.min(queue.len()));
        if let Some(init) = &self.init {
            if init.contains(&t) {
                warnings.push(format!(
                    "PID 0x{:x}: new codec parameters; a new initialisation follows",
                    self.tracks[t].pid
                ));
            }
            self.write_all_queued(out)?;
            self.init = None;
        }
        // Before any initialisation, samples under older parameters have
        // nothing to be written with.
        self.tracks[t].queue = newer;
        Ok(())
    }

    /// An SCTE-35 section: an `emsg` before the next fragment, timed by the
    /// splice time on the video's (or first track's) clock.
    pub fn section(
        &mut self,
        section: &[u8],
        offset: u64,
        warnings: &mut Vec<String>,
    ) -> Result<()> {
        let Some(splice) = scte35::parse(section) else {
            warnings.push(format!(
                "SCTE-35 section at byte {offset} is damaged, encrypted or not a splice_info_section; dropped"
            ));
            return Ok(());
        };
        let reference = self
            .tracks
            .iter()
            .find(|t| matches!(t.kind, Kind::Video(_)))
            .or(self.tracks.first());
        let now = reference.and_then(|t| t.clock.last());
        let time = match (splice.pts, reference) {
            (Some(raw), Some(t)) => t.clock.at(raw).or(now),
            _ => now,
        };
        let id = splice.event_id.unwrap_or_else(|| {
            self.next_event_id += 1;
            self.next_event_id
        });
        let emsg = Emsg {
            timescale: moov::VIDEO_TIMESCALE,
            presentation_time: EmsgTimestamp::Absolute(time.unwrap_or(0).max(0) as u64),
            event_duration: splice
                .duration
                .map_or(u32::MAX, |d| u32::try_from(d).unwrap_or(u32::MAX - 1)),
            id,
            scheme_id_uri: scte35::SCHEME.into(),
            value: String::new(),
            message_data: splice.section,
        };
        let mut bytes = Vec::new();
        emsg.encode(&mut bytes).map_err(encode_error)?;
        self.emsg.push(bytes);
        Ok(())
    }

    /// The end of input: everything held is written.
    pub fn finish(&mut self, out: &mut Vec<Vec<u8>>, warnings: &mut Vec<String>) -> Result<()> {
        for t in &mut self.tracks {
            t.finish(warnings);
        }
        if self.init.is_none() {
            self.write_init(out, warnings, true)?;
        }
        self.flush_all(out)
    }

    /// Writes whatever is held under the current initialisation.
    fn flush_all(&mut self, out: &mut Vec<Vec<u8>>) -> Result<()> {
        for t in &mut self.tracks {
            t.close();
        }
        self.write_all_queued(out)
    }

    fn write_all_queued(&mut self, out: &mut Vec<Vec<u8>>) -> Result<()> {
        let Some(init) = self.init.clone() else {
            return Ok(());
        };
        let parts: Vec<(u32, Vec<Sample>)> = init
            .iter()
            .enumerate()
            .map(|(i, &t)| (i as u32 + 1, std::mem::take(&mut self.tracks[t].queue)))
            .collect();
        self.write_fragment(parts, out)
    }

    /// Writes the fragments that are ready: each video GOP once the audio
    /// has caught up with its end.
    fn flush_ready(&mut self, out: &mut Vec<Vec<u8>>, warnings: &mut Vec<String>) -> Result<()> {
        if self.init.is_none() && !self.write_init(out, warnings, false)? {
            return Ok(());
        }
        while let Some(cut) = self.next_cut() {
            let Some(init) = self.init.clone() else {
                return Ok(());
            };
            let mut parts = Vec::with_capacity(init.len());
            for (i, &t) in init.iter().enumerate() {
                let track = &mut self.tracks[t];
                let ts = track.timescale();
                let n = track
                    .queue
                    .iter()
                    .take_while(|s| to_90k(s.dts, ts) < cut)
                    .count();
                let rest = track.queue.split_off(n);
                parts.push((i as u32 + 1, std::mem::replace(&mut track.queue, rest)));
            }
            self.write_fragment(parts, out)?;
        }
        Ok(())
    }

    /// Where the next fragment ends (90 kHz): the next key frame once the
    /// audio has reached it, or a time limit. Without video, or once the
    /// video has stalled, audio goes out a second at a time.
    fn next_cut(&self) -> Option<i64> {
        let init = self.init.as_ref()?;
        let tracks: Vec<&Track> = init.iter().map(|&t| &self.tracks[t]).collect();
        let video = tracks.iter().find(|t| matches!(t.kind, Kind::Video(_)));
        let audio = tracks.iter().find(|t| matches!(t.kind, Kind::Audio));
        if let Some(cut) = video.and_then(|v| video_cut(v, &tracks)) {
            return Some(cut);
        }
        let audio = audio?;
        let stalled = match video.and_then(|v| v.newest_90k()) {
            Some(newest) => audio.newest_90k()? - newest > MAX_FRAGMENT,
            None => true,
        };
        let end = to_90k(audio.queue.first()?.dts, audio.timescale()) + AUDIO_FRAGMENT;
        (stalled && audio.newest_90k()? >= end).then_some(end)
    }

    /// Writes `ftyp` + `moov` once every track has its sample entry, or
    /// (after `INIT_WAIT`, or with `now`) with the tracks that have one.
    /// Returns whether an initialisation is in force.
    fn write_init(
        &mut self,
        out: &mut Vec<Vec<u8>>,
        warnings: &mut Vec<String>,
        now: bool,
    ) -> Result<bool> {
        let ready: Vec<usize> = (0..self.tracks.len())
            .filter(|&t| self.tracks[t].entry.is_some())
            .collect();
        if ready.is_empty() {
            return Ok(false);
        }
        if ready.len() < self.tracks.len() && !now {
            let span = ready.iter().filter_map(|&t| {
                let tr = &self.tracks[t];
                Some(tr.newest_90k()? - to_90k(tr.queue.first()?.dts, tr.timescale()))
            });
            if span.max().is_none_or(|s| s < INIT_WAIT) {
                return Ok(false);
            }
        }
        for t in &mut self.tracks {
            if t.entry.is_none() {
                warnings.push(format!(
                    "PID 0x{:x} sent nothing usable before the initialisation; it is left out",
                    t.pid
                ));
            }
        }
        let entries: Vec<Entry> = ready
            .iter()
            .filter_map(|&t| self.tracks[t].entry.clone())
            .collect();
        let (ftyp, moov) = moov::init(&entries)?;
        out.push(ftyp);
        out.push(moov);
        self.init = Some(ready);
        Ok(true)
    }

    /// Writes the `emsg` boxes waiting, then `moof` + `mdat` of `parts`
    /// (track id, samples), leaving out tracks without samples.
    fn write_fragment(
        &mut self,
        parts: Vec<(u32, Vec<Sample>)>,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<()> {
        let parts: Vec<(u32, Vec<Sample>)> =
            parts.into_iter().filter(|(_, s)| !s.is_empty()).collect();
        if parts.is_empty() {
            return Ok(());
        }
        out.append(&mut self.emsg);
        self.sequence += 1;
        let mut moof = Moof {
            mfhd: Mfhd {
                sequence_number: self.sequence,
            },
            traf: parts
                .iter()
                .map(|(id, samples)| traf(*id, samples))
                .collect(),
        };
        let payload: usize = parts
            .iter()
            .flat_map(|(_, s)| s)
            .map(|s| s.data.len())
            .sum();
        let mut mdat = Vec::with_capacity(payload + 16);
        Header {
            kind: b"mdat".into(),
            size: Some(payload),
        }
        .encode(&mut mdat)
        .map_err(encode_error)?;
        let mut probe = Vec::new();
        moof.encode(&mut probe).map_err(encode_error)?;
        let mut offset = probe.len() + mdat.len();
        for (traf, (_, samples)) in moof.traf.iter_mut().zip(&parts) {
            traf.trun[0].data_offset = Some(i32::try_from(offset).map_err(|_| {
                Error::Internal("an MPEG-TS fragment too large for a 32-bit data offset".into())
            })?);
            offset += samples.iter().map(|s| s.data.len()).sum::<usize>();
        }
        let mut head = Vec::with_capacity(probe.len());
        moof.encode(&mut head).map_err(encode_error)?;
        for s in parts.iter().flat_map(|(_, s)| s) {
            mdat.extend_from_slice(&s.data);
        }
        out.push(head);
        out.push(mdat);
        Ok(())
    }
}

/// The video's next cut: its next key frame (or a time limit without
/// one) once every audio track has reached it or lags too far behind.
fn video_cut(video: &Track, tracks: &[&Track]) -> Option<i64> {
    let first = video.queue.first()?;
    let last = video.queue.last()?;
    let cut = match video.queue.iter().skip(1).find(|s| s.key) {
        Some(key) => key.dts,
        None if last.dts - first.dts >= MAX_FRAGMENT => last.dts,
        None => return None,
    };
    let newest = video.newest_90k()?;
    let audio_ready = tracks
        .iter()
        .filter(|t| matches!(t.kind, Kind::Audio))
        .all(|a| a.newest_90k().is_some_and(|n| n >= cut) || newest - cut >= AUDIO_LAG);
    audio_ready.then_some(cut)
}

fn traf(id: u32, samples: &[Sample]) -> Traf {
    let entries: Vec<TrunEntry> = samples
        .iter()
        .map(|s| TrunEntry {
            duration: Some(s.duration),
            size: Some(s.data.len() as u32),
            flags: Some(if s.key { SYNC_FLAGS } else { NON_SYNC_FLAGS }),
            cts: Some(s.cts),
        })
        .collect();
    Traf {
        tfhd: Tfhd {
            track_id: id,
            sample_description_index: Some(1),
            default_base_is_moof: true,
            ..Default::default()
        },
        tfdt: Some(Tfdt {
            base_media_decode_time: samples.first().map_or(0, |s| s.dts.max(0) as u64),
        }),
        trun: vec![Trun {
            data_offset: Some(0),
            samples: entries.into(),
        }],
        ..Default::default()
    }
}

fn encode_error(e: mp4_atom::Error) -> Error {
    Error::Internal(format!("writing MP4 boxes for MPEG-TS input: {e}"))
}
