//! Each track's decode times on the transmission's timeline: moved to go on
//! from the live edge when a transmission continues over a new capture, and
//! mended where the encoder's clock jumps (a restart without a new `moov`, a
//! 32-bit `tfdt` wrapping, a clock step), so stamps only ever grow.

use crate::capture::fragment::Fragment;
use crate::capture::init::Init;
use crate::capture::stamps::rescale;
use crate::{Error, Result};

/// A forward gap longer than this (seconds) is a clock jump, not a pause.
pub const MAX_GAP_S: u64 = 60;

#[derive(Debug, Clone)]
pub struct Timeline {
    /// Added to each track's raw decode times.
    shift: Vec<Option<i64>>,
    /// Raw decode time each track's next sample should have.
    expected: Vec<Option<u64>>,
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
            let timescale = init.tracks[t].timescale;
            let first = fragment.samples[run.samples.start].dts;
            if !seen[t] {
                seen[t] = true;
                match (self.shift[t], self.expected[t]) {
                    (None, _) => {
                        let shift = match self.base {
                            Some((ticks, scale)) => {
                                i128::from(rescale(ticks, scale, timescale)) - i128::from(first)
                            }
                            None => 0,
                        };
                        self.shift[t] = Some(i64::try_from(shift).unwrap_or(0));
                    }
                    (Some(shift), Some(expected)) => {
                        let gap = i128::from(first) - i128::from(expected);
                        if gap < 0 || gap > i128::from(MAX_GAP_S) * i128::from(timescale) {
                            warnings.push(format!(
                                "moof at byte {}: track {} decode time jumps by {:.3} s (tfdt {first}, expected {expected}); its stamps go on from where they were",
                                fragment.moof_offset,
                                init.tracks[t].id,
                                gap as f64 / f64::from(timescale)
                            ));
                            self.shift[t] = i64::try_from(i128::from(shift) - gap).ok();
                        }
                    }
                    (Some(_), None) => {}
                }
            }
            let shift = self.shift[t].unwrap_or(0);
            for s in &mut fragment.samples[run.samples.clone()] {
                s.dts = s.dts.checked_add_signed(shift).ok_or_else(|| {
                    Error::bad_box(
                        fragment.moof_offset,
                        "tfdt",
                        "decode time out of range after mending a jump",
                    )
                })?;
            }
            if let Some(last) = fragment.run_samples(run).last() {
                let raw_end =
                    (i128::from(last.dts) - i128::from(shift) + i128::from(last.duration)).max(0);
                self.expected[t] = u64::try_from(raw_end).ok();
            }
        }
        Ok(())
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
            timescale: 1000,
            width: None,
            height: None,
            channels: None,
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
