//! Event messages (`emsg`: SCTE-35 ad markers, ID3 timed metadata) and
//! producer reference times (`prft`) of the capture, carried into the
//! assets. Each goes with the `moof` it preceded and is written just before
//! that fragment's first piece, its times moved onto the asset's timeline:
//! a version-1 `emsg`'s presentation time and a `prft`'s media time by the
//! shift the timeline gave their track; a version-0 `emsg`'s time, relative
//! to the fragment it preceded, is made absolute on reading and relative to
//! the written fragment on writing (version 1 when it cannot be).

use mp4_atom::{Decode, Emsg, EmsgTimestamp, Encode, Prft};

use crate::capture::fragment::Fragment;
use crate::capture::framing::RawBox;
use crate::capture::init::Init;
use crate::capture::timeline::Timeline;
use crate::{Error, Result};

/// One box to carry, with its time on the asset's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InBand {
    Emsg {
        emsg: Emsg,
        /// Presentation time, in the message's timescale, on the reference
        /// track's timeline as the assets carry it.
        time: i128,
    },
    /// `media_time` already moved onto the assets' timeline.
    Prft(Prft),
}

/// Decodes an `emsg` or `prft` box of the capture.
pub(crate) fn read(b: &RawBox) -> Result<Decoded> {
    let bad =
        |e: mp4_atom::Error| Error::bad_box(b.offset, b.kind_str(), format!("cannot decode: {e}"));
    let mut bytes = &b.bytes[..];
    Ok(match &b.kind {
        b"emsg" => Decoded::Emsg(Emsg::decode(&mut bytes).map_err(bad)?),
        _ => Decoded::Prft(Prft::decode(&mut bytes).map_err(bad)?),
    })
}

/// A box as the capture has it, times not yet moved.
#[derive(Debug, Clone)]
pub(crate) enum Decoded {
    Emsg(Emsg),
    Prft(Prft),
}

impl Decoded {
    /// Moves its times onto the assets' timeline; `following` is the
    /// fragment it preceded, already on that timeline.
    pub fn rebase(self, init: &Init, timeline: &Timeline, following: &Fragment) -> InBand {
        let reference = init.reference();
        let ref_scale = init.tracks[reference].timescale;
        match self {
            Decoded::Emsg(emsg) => {
                let scale = emsg.timescale;
                let time = match emsg.presentation_time {
                    EmsgTimestamp::Relative(delta) => {
                        let anchor = earliest_pts(init, following).unwrap_or(0);
                        rescale_i(anchor, ref_scale, scale) + i128::from(delta)
                    }
                    EmsgTimestamp::Absolute(time) => {
                        let shift = timeline.shift(reference).unwrap_or(0);
                        i128::from(time) + rescale_i(shift, ref_scale, scale)
                    }
                };
                InBand::Emsg { emsg, time }
            }
            Decoded::Prft(mut prft) => {
                if let Some(t) = init.track_index(prft.reference_track_id) {
                    let shift = timeline.shift(t).unwrap_or(0);
                    let moved = i128::from(prft.media_time) + shift;
                    prft.media_time = u64::try_from(moved).unwrap_or(0);
                }
                InBand::Prft(prft)
            }
        }
    }
}

impl InBand {
    /// Appends the box; `anchor` is the earliest presentation time of the
    /// reference track in the fragment written after it, in its ticks,
    /// for a version-0 `emsg`.
    pub(crate) fn write(
        &self,
        out: &mut Vec<u8>,
        anchor: Option<i128>,
        ref_scale: u32,
    ) -> Result<()> {
        let fail = |e: mp4_atom::Error| Error::Internal(format!("cannot write an event box: {e}"));
        match self {
            InBand::Prft(prft) => prft.encode(out).map_err(fail),
            InBand::Emsg { emsg, time } => {
                let mut emsg = emsg.clone();
                let time = (*time).max(0);
                let relative = matches!(emsg.presentation_time, EmsgTimestamp::Relative(_));
                let delta = anchor
                    .map(|a| time - rescale_i(a, ref_scale, emsg.timescale))
                    .and_then(|d| u32::try_from(d).ok());
                emsg.presentation_time = match (relative, delta) {
                    (true, Some(delta)) => EmsgTimestamp::Relative(delta),
                    _ => EmsgTimestamp::Absolute(u64::try_from(time).unwrap_or(0)),
                };
                emsg.encode(out).map_err(fail)
            }
        }
    }
}

/// The earliest presentation time of the reference track in `fragment`
/// (of any track, moved to its ticks, when it has none).
pub(crate) fn earliest_pts(init: &Init, fragment: &Fragment) -> Option<i128> {
    let reference = init.reference();
    let of = |want_reference: bool| {
        fragment
            .runs
            .iter()
            .filter(|r| !want_reference || r.track == reference)
            .flat_map(|r| {
                let scale = init.tracks[r.track].timescale;
                fragment.samples[r.samples.clone()]
                    .iter()
                    .map(move |s| rescale_i(s.pts(), scale, init.tracks[reference].timescale))
            })
            .min()
    };
    of(true).or_else(|| of(false))
}

/// `value` ticks of `from` per second in ticks of `to`, rounded down.
pub(crate) fn rescale_i(value: i128, from: u32, to: u32) -> i128 {
    if from == to || from == 0 {
        return value;
    }
    (value * i128::from(to)).div_euclid(i128::from(from))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emsg(time: EmsgTimestamp) -> Emsg {
        Emsg {
            timescale: 1000,
            presentation_time: time,
            event_duration: 2000,
            id: 7,
            scheme_id_uri: "urn:scte:scte35:2013:bin".into(),
            value: String::new(),
            message_data: vec![0xfc, 0x30],
        }
    }

    fn written(e: &InBand, anchor: Option<i128>) -> Emsg {
        let mut out = Vec::new();
        e.write(&mut out, anchor, 90_000).unwrap();
        Emsg::decode(&mut out.as_slice()).unwrap()
    }

    #[test]
    fn a_relative_time_is_made_relative_to_the_written_fragment() {
        let e = InBand::Emsg {
            emsg: emsg(EmsgTimestamp::Relative(0)),
            time: 5500,
        };
        // The fragment written after it starts at 5 s (90 kHz).
        let back = written(&e, Some(450_000));
        assert_eq!(back.presentation_time, EmsgTimestamp::Relative(500));
        // It starts after the event: the time is written as absolute.
        let back = written(&e, Some(540_000));
        assert_eq!(back.presentation_time, EmsgTimestamp::Absolute(5500));
    }

    #[test]
    fn an_absolute_time_stays_absolute() {
        let e = InBand::Emsg {
            emsg: emsg(EmsgTimestamp::Absolute(1)),
            time: 12_000,
        };
        let back = written(&e, Some(0));
        assert_eq!(back.presentation_time, EmsgTimestamp::Absolute(12_000));
        assert_eq!((back.id, back.event_duration), (7, 2000));
    }
}
