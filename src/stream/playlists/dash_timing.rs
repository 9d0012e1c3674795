//! Where the DASH MPD puts things in time. Segment times (`S@t`) are the
//! index's transmission times (0 at the first key frame's presentation)
//! in each track's own timescale; `availabilityStartTime` is the
//! wall-clock time at which transmission time 0 was received (the
//! descriptor's anchor), so a live Period starts at 0 with no
//! `presentationTimeOffset` and a segment is presented at its transmission
//! time. An ended stream is rebased so its presentation starts at 0 at its
//! first retained segment (each Period's `presentationTimeOffset` is its
//! first segment's time). A moov change starts a new Period, at its first
//! segment.
//!
//! `origin` is where the segments' own clock (their `tfdt` plus composition
//! offsets, what MSE buffers by) has transmission time 0: decode times
//! start at 0, so with B-frames it is the first key frame's composition
//! offset (83 ms in the `h264-aac-gop` fixture), which the descriptor
//! records (`composition_offset`). Every `S@t` is moved by it, so a B-frame
//! video track is buffered where its `S@t` say; the audio, whose samples
//! are presented at their decode times, then starts up to that much before
//! its `S@t`, which players take as a small overlap.

use crate::capture::init::Track;
use crate::capture::stamps::rescale;
use crate::stream::index::Record;

use super::Listing;

/// The MPD's clock: media time from the index's transmission time.
pub(super) struct Timing {
    /// Ticks per second of the records' times.
    timescale: u32,
    /// Media time of transmission time 0 (the first key frame's presentation
    /// time as the segments carry it), in `timescale` ticks: see the module
    /// doc.
    origin: u64,
    /// Presentation time 0, in media time `timescale` ticks: 0 live, the
    /// first retained segment once ended.
    base: u64,
}

/// One Period: the records of one initialisation generation.
pub(super) struct Period<'a> {
    pub generation: u32,
    pub records: &'a [Record],
    /// Period@start, s.
    pub start_s: f64,
    /// True for the first Period listed: a live one starts at 0.
    pub first: bool,
}

impl Timing {
    pub fn of(l: &Listing) -> Timing {
        let timescale = l.descriptor.timescale.max(1);
        let origin = l.descriptor.composition_offset.unwrap_or(0);
        let base = match (l.descriptor.ended, l.records.first()) {
            (true, Some(r)) => r.start + origin,
            _ => 0,
        };
        Timing {
            timescale,
            origin,
            base,
        }
    }

    /// Media time of a record's start in `track_timescale` ticks.
    pub fn media(&self, ticks: u64, track_timescale: u32) -> u64 {
        rescale(ticks + self.origin, self.timescale, track_timescale)
    }

    /// Presentation time (s, from the presentation's start) of transmission
    /// time `ticks`.
    pub fn presentation_s(&self, ticks: u64) -> f64 {
        (ticks + self.origin).saturating_sub(self.base) as f64 / f64::from(self.timescale)
    }

    /// `presentationTimeOffset` of a Period for a track: the media time at
    /// its start (none for a live stream's first Period, which starts at
    /// media time 0).
    pub fn offset(&self, period: &Period, track: &Track) -> u64 {
        match period.records.first() {
            Some(r) if !(period.first && self.base == 0) => self.media(r.start, track.timescale),
            _ => 0,
        }
    }

    /// The records split at each change of initialisation generation.
    pub fn periods<'a>(&self, records: &'a [Record]) -> Vec<Period<'a>> {
        let mut out = Vec::new();
        for run in records.chunk_by(|a, b| a.init == b.init) {
            let first = out.is_empty();
            out.push(Period {
                generation: run[0].init,
                records: run,
                start_s: if first {
                    0.0
                } else {
                    self.presentation_s(run[0].start)
                },
                first,
            });
        }
        out
    }

    /// The presentation's length once ended, s.
    pub fn duration_s(&self, records: &[Record]) -> f64 {
        records.last().map_or(0.0, |r| self.presentation_s(r.end()))
    }
}
