//! Where one input fragment is cut so that every video key frame begins a
//! fragment of its own: the entry points a client can start reading from.

use std::ops::Range;

use crate::capture::fragment::Fragment;
use crate::capture::init::{Init, TrackKind};

/// Consecutive samples of one input run that go into the same piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub run: usize,
    pub samples: Range<usize>,
}

/// What becomes one output fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// The sample (of the reference track) this piece is an entry point at,
    /// if it is one.
    pub entry: Option<usize>,
    pub parts: Vec<Part>,
}

/// One piece of the fragment being cut, with the held samples of other
/// fragments (by index) that fall in its time and go in front of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Slot {
    pub own: Piece,
    pub held: Vec<(usize, Piece)>,
}

/// Splits a fragment into pieces. With a video reference track, a piece
/// begins at each key frame; samples of other tracks go with the piece whose
/// key frame they do not precede in decode time. A fragment that opens with
/// a key frame keeps everything before its second key frame together, so a
/// feed already cut at key frames passes through unchanged. Without video,
/// a fragment is one piece and an entry point if it carries the reference
/// track.
#[cfg(test)]
pub(crate) fn split(fragment: &Fragment, init: &Init) -> Vec<Piece> {
    split_with(fragment, init, &[])
        .into_iter()
        .map(|s| s.own)
        .collect()
}

/// [`split`], with the samples of `held` fragments (other tracks, sent
/// before this video) distributed by decode time among its pieces.
pub(crate) fn split_with(fragment: &Fragment, init: &Init, held: &[Fragment]) -> Vec<Slot> {
    let reference = init.reference();
    if init.tracks[reference].kind != TrackKind::Video {
        let held = held.iter().enumerate().map(|(i, h)| (i, all(h))).collect();
        let own = whole(fragment, reference);
        return vec![Slot { own, held }];
    }
    let cuts = Cuts::of(fragment, reference, init.tracks[reference].timescale);
    let mut own = cuts.empty_pieces();
    for (run_index, run) in fragment.runs.iter().enumerate() {
        let scale = init.tracks[run.track].timescale;
        let piece_of = |i: usize| {
            if run.track == reference {
                cuts.by_order(i)
            } else {
                cuts.by_time(fragment.samples[i].dts, scale)
            }
        };
        distribute(&mut own, run_index, run.samples.clone(), piece_of);
    }
    let mut others: Vec<Vec<Piece>> = held.iter().map(|_| cuts.empty_pieces()).collect();
    for (h, pieces) in held.iter().zip(&mut others) {
        for (run_index, run) in h.runs.iter().enumerate() {
            let scale = init.tracks[run.track].timescale;
            let piece_of = |i: usize| cuts.by_time(h.samples[i].dts, scale);
            distribute(pieces, run_index, run.samples.clone(), piece_of);
        }
    }
    let mut slots: Vec<Slot> = own
        .into_iter()
        .map(|own| Slot {
            own,
            held: Vec::new(),
        })
        .collect();
    for (h, pieces) in others.into_iter().enumerate() {
        for (slot, piece) in slots.iter_mut().zip(pieces) {
            if !piece.parts.is_empty() {
                slot.held.push((h, piece));
            }
        }
    }
    slots.retain(|s| !s.own.parts.is_empty() || !s.held.is_empty());
    slots
}

/// A whole fragment as one piece that is no entry point.
pub(crate) fn all(fragment: &Fragment) -> Piece {
    Piece {
        entry: None,
        parts: fragment
            .runs
            .iter()
            .enumerate()
            .map(|(run, r)| Part {
                run,
                samples: r.samples.clone(),
            })
            .collect(),
    }
}

/// The reference track's samples, in decode order.
fn reference_samples(fragment: &Fragment, reference: usize) -> impl Iterator<Item = usize> + '_ {
    fragment
        .runs
        .iter()
        .filter(move |r| r.track == reference)
        .flat_map(|r| r.samples.clone())
}

/// A fragment as one piece, an entry point at its first reference sample.
fn whole(fragment: &Fragment, reference: usize) -> Piece {
    Piece {
        entry: reference_samples(fragment, reference).next(),
        ..all(fragment)
    }
}

/// Where the pieces of a fragment with a video reference track begin.
struct Cuts {
    /// Per piece: the reference decode time it begins at (`None`: the
    /// fragment's start) and the key frame it is an entry point at.
    at: Vec<(Option<u64>, Option<usize>)>,
    /// The reference track's timescale.
    scale: u128,
}

impl Cuts {
    fn of(fragment: &Fragment, reference: usize, timescale: u32) -> Cuts {
        let mut at = Vec::new();
        for (n, i) in reference_samples(fragment, reference).enumerate() {
            let sample = &fragment.samples[i];
            if n == 0 {
                at.push((None, sample.is_sync().then_some(i)));
            } else if sample.is_sync() {
                at.push((Some(sample.dts), Some(i)));
            }
        }
        if at.is_empty() {
            at.push((None, None));
        }
        Cuts {
            at,
            scale: u128::from(timescale),
        }
    }

    /// One empty piece per cut, to distribute samples into.
    fn empty_pieces(&self) -> Vec<Piece> {
        self.at
            .iter()
            .map(|&(_, entry)| Piece {
                entry,
                parts: Vec::new(),
            })
            .collect()
    }

    /// The piece of a sample of another track, decoded at `dts` in
    /// `timescale`: the last whose cut it does not precede.
    fn by_time(&self, dts: u64, timescale: u32) -> usize {
        let scale = u128::from(timescale);
        self.at
            .iter()
            .rposition(|(cut, _)| match cut {
                None => true,
                // dts / scale >= cut / self.scale, without rounding.
                Some(cut) => u128::from(dts) * self.scale >= u128::from(*cut) * scale,
            })
            .unwrap_or(0)
    }

    /// The piece of the reference track's sample `i`, by decode order, so a
    /// key frame opens its piece even where decode times repeat.
    fn by_order(&self, i: usize) -> usize {
        self.at
            .iter()
            .rposition(|(_, entry)| entry.is_none_or(|e| e <= i))
            .unwrap_or(0)
    }
}

/// Adds the samples of run `run` to their pieces, as stretches of
/// consecutive samples that go to the same piece.
fn distribute(
    pieces: &mut [Piece],
    run: usize,
    samples: Range<usize>,
    piece_of: impl Fn(usize) -> usize,
) {
    if samples.is_empty() {
        return;
    }
    let mut start = samples.start;
    let mut current = piece_of(start);
    for i in samples.clone().skip(1) {
        let p = piece_of(i);
        if p != current {
            pieces[current].parts.push(Part {
                run,
                samples: start..i,
            });
            start = i;
            current = p;
        }
    }
    pieces[current].parts.push(Part {
        run,
        samples: start..samples.end,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::fragment::{Run, Sample};
    use crate::capture::init::{SampleDefaults, Track};

    fn track(id: u32, kind: TrackKind, timescale: u32) -> Track {
        Track {
            id,
            kind,
            codec: "x".into(),
            codecs: "x".into(),
            timescale,
            width: None,
            height: None,
            channels: None,
            frame_rate: None,
            bitrate_bps: None,
            defaults: SampleDefaults::default(),
        }
    }

    fn init(tracks: Vec<Track>) -> Init {
        Init::with_tracks(tracks)
    }

    /// Video at 1000 Hz (40 ms frames), audio at 48 kHz (1024-sample frames).
    fn fragment(keys: &[bool], audio_frames: usize) -> Fragment {
        let mut samples = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            samples.push(Sample {
                dts: i as u64 * 40,
                duration: 40,
                size: 10,
                flags: if *key { 0 } else { 0x0001_0000 },
                cts: 0,
                data: i * 10,
            });
        }
        let v = 0..samples.len();
        for i in 0..audio_frames {
            samples.push(Sample {
                dts: i as u64 * 1024,
                duration: 1024,
                size: 5,
                flags: 0,
                cts: 0,
                data: 1000 + i * 5,
            });
        }
        Fragment {
            moof_offset: 0,
            mdat: bytes::Bytes::new(),
            runs: vec![
                Run {
                    track: 0,
                    description_index: None,
                    samples: v.clone(),
                },
                Run {
                    track: 1,
                    description_index: None,
                    samples: v.end..samples.len(),
                },
            ],
            samples,
            without_tfdt: vec![],
            events: vec![],
        }
    }

    fn av() -> Init {
        init(vec![
            track(1, TrackKind::Video, 1000),
            track(2, TrackKind::Audio, 48000),
        ])
    }

    #[test]
    fn a_fragment_per_gop_passes_through_whole() {
        let f = fragment(&[true, false, false, false], 7);
        let pieces = split(&f, &av());
        assert_eq!(pieces.len(), 1);
        assert_eq!(pieces[0].entry, Some(0));
        assert_eq!(pieces[0].parts.len(), 2);
    }

    #[test]
    fn every_key_frame_inside_a_fragment_begins_a_piece() {
        // Key frames at 0 ms and 120 ms; audio frames every 21.33 ms.
        let f = fragment(&[true, false, false, true, false], 9);
        let pieces = split(&f, &av());
        assert_eq!(pieces.len(), 2);
        assert_eq!(pieces[1].entry, Some(3));
        // Audio frames starting at or after 120 ms (the 6th, 106.7 ms, does not).
        assert_eq!(pieces[0].parts[1].samples, 5..11);
        assert_eq!(pieces[1].parts[1].samples, 11..14);
    }

    #[test]
    fn frames_before_the_first_key_frame_are_no_entry_point() {
        let f = fragment(&[false, false, true, false], 0);
        let pieces = split(&f, &av());
        assert_eq!(pieces.len(), 2);
        assert_eq!(pieces[0].entry, None);
        assert_eq!(pieces[0].parts[0].samples, 0..2);
        assert_eq!(pieces[1].entry, Some(2));
    }

    #[test]
    fn audio_only_fragments_are_entry_points_at_their_start() {
        let mut f = fragment(&[], 5);
        f.runs.remove(0);
        let a = init(vec![track(2, TrackKind::Audio, 48000)]);
        f.runs[0].track = 0;
        let pieces = split(&f, &a);
        assert_eq!(pieces.len(), 1);
        assert_eq!(pieces[0].entry, Some(0));
    }
}
