//! Each track's decode times on the transmission's timeline: moved to go on
//! from the live edge when a transmission continues over a new capture, and
//! mended where the encoder's clock jumps (a restart without a new `moov`, a
//! 32- or 64-bit `tfdt` wrapping, a clock step), so stamps only ever grow.
//!
//! A 64-bit wrap cannot go on past 2^64 in a 64-bit decode time, so a track
//! whose clock starts in the top half of the range (no real clock is there:
//! 2^63 ticks of 90 kHz are three million years) is moved down by 2^63
//! ticks first; its wrap is then mended like any other. Raw times are
//! reckoned in 128 bits, and a wrap inside one run goes on past 2^64.

use crate::capture::fragment::Fragment;
use crate::capture::init::Init;
use crate::capture::stamps::rescale;
use crate::{Error, Result};

/// A forward gap longer than this (seconds) is a clock jump, not a pause.
pub const MAX_GAP_S: u64 = 60;

/// Raw decode times from here up are a clock that may wrap at 2^64.
const TOP: u64 = 1 << 63;

#[derive(Debug, Clone)]
pub struct Timeline {
    /// Added to each track's raw decode times.
    shift: Vec<Option<i128>>,
    /// Raw decode time each track's next sample should have.
    expected: Vec<Option<i128>>,
    /// Where a continued transmission goes on from: (ticks, timescale).
    base: Option<(u64, u32)>,
}

impl Timeline {
    pub fn new(tracks: usize, base: Option<(u64, u32)>) -> Self {
        Timeline {
            shift: vec![None; tracks],
            expected: vec![None; tracks],
            base,
        }
    }

    /// What is added to track `t`'s raw decode times, once it has one.
    pub fn shift(&self, t: usize) -> Option<i128> {
        self.shift.get(t).copied().flatten()
    }

    /// Moves the fragment's decode times onto the transmission's timeline.
    /// A jump is mended so the track goes on where it left off; each one is
    /// reported in `warnings`.
    pub fn normalise(
        &mut self,
        init: &Init,
        fragment: &mut Fragment,
        warnings: &mut Vec<String>,
    ) -> Result<()> {
        let mut seen = vec![false; init.tracks.len()];
        for run in &fragment.runs {
            let t = run.track;
            let first = fragment.samples[run.samples.start].dts;
            if !std::mem::replace(&mut seen[t], true) {
                let timescale = init.tracks[t].timescale;
                if let Some(gap) = self.place(t, first, timescale) {
                    warnings.push(format!(
                        "moof at byte {}: track {} decode time jumps by {:.3} s (tfdt {first}, expected {}); its stamps go on from where they were",
                        fragment.moof_offset,
                        init.tracks[t].id,
                        gap as f64 / f64::from(timescale),
                        i128::from(first) - gap
                    ));
                }
            }
            let shift = self.shift[t].unwrap_or(0);
            for s in &mut fragment.samples[run.samples.clone()] {
                // Within a run times only grow: a smaller one wrapped at 2^64.
                let raw = i128::from(s.dts) + if s.dts < first { 1 << 64 } else { 0 };
                s.dts = u64::try_from(raw + shift).map_err(|_| {
                    Error::bad_box(
                        fragment.moof_offset,
                        "tfdt",
                        "decode time out of range after mending a jump",
                    )
                })?;
                self.expected[t] = Some(raw + i128::from(s.duration));
            }
        }
        Ok(())
    }

    /// Places track `t`'s run starting at raw decode time `first`: its
    /// shift when the track is new, a new shift when its clock jumped.
    /// Returns the jump, in ticks, when there was one.
    fn place(&mut self, t: usize, first: u64, timescale: u32) -> Option<i128> {
        let first = i128::from(first);
        match (self.shift[t], self.expected[t]) {
            (None, _) => {
                self.shift[t] = Some(match self.base {
                    Some((ticks, scale)) => i128::from(rescale(ticks, scale, timescale)) - first,
                    None if first >= i128::from(TOP) => -i128::from(TOP),
                    None => 0,
                });
                None
            }
            (Some(shift), Some(expected)) => {
                let gap = first - expected;
                if gap >= 0 && gap <= i128::from(MAX_GAP_S) * i128::from(timescale) {
                    return None;
                }
                self.shift[t] = Some(shift - gap);
                Some(gap)
            }
            (Some(_), None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::fragment::{Run, Sample};
    use crate::capture::init::{SampleDefaults, Track, TrackKind};

    fn init() -> Init {
        Init::with_tracks(vec![Track {
            id: 1,
            kind: TrackKind::Video,
            codec: "avc1".into(),
            codecs: "avc1".into(),
            timescale: 1000,
            width: None,
            height: None,
            channels: None,
            frame_rate: None,
            bitrate_bps: None,
            defaults: SampleDefaults::default(),
        }])
    }

    fn fragment(first_dts: u64) -> Fragment {
        let samples = (0..3)
            .map(|i| Sample {
                dts: first_dts + i * 40,
                duration: 40,
                size: 1,
                flags: 0,
                cts: 0,
                data: 0,
            })
            .collect();
        Fragment {
            moof_offset: 0,
            mdat: bytes::Bytes::new(),
            runs: vec![Run {
                track: 0,
                description_index: None,
                samples: 0..3,
            }],
            samples,
            without_tfdt: vec![],
            events: vec![],
        }
    }

    #[test]
    fn jumps_back_and_forward_are_mended_and_reported() {
        let mut t = Timeline::new(1, None);
        let mut w = vec![];
        let mut f = fragment(1000);
        t.normalise(&init(), &mut f, &mut w).unwrap();
        assert_eq!(f.samples[0].dts, 1000);
        // A wrap of a 32-bit tfdt: back to 0.
        let mut f = fragment(0);
        t.normalise(&init(), &mut f, &mut w).unwrap();
        assert_eq!(f.samples[0].dts, 1120);
        // An hour ahead.
        let mut f = fragment(120 + 3_600_000);
        t.normalise(&init(), &mut f, &mut w).unwrap();
        assert_eq!(f.samples[0].dts, 1240);
        // A short gap is time that passed: kept.
        let mut f = fragment(120 + 3_600_000 + 120 + 2000);
        t.normalise(&init(), &mut f, &mut w).unwrap();
        assert_eq!(f.samples[0].dts, 1240 + 120 + 2000);
        assert_eq!(w.len(), 2, "{w:?}");
    }

    #[test]
    fn a_continued_transmission_goes_on_from_its_base() {
        let mut t = Timeline::new(1, Some((6000, 1000)));
        let mut f = fragment(90_000);
        t.normalise(&init(), &mut f, &mut vec![]).unwrap();
        assert_eq!(f.samples[0].dts, 6000);
    }
}
