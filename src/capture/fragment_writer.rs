//! Writes one piece of an input fragment as an output fragment: a new
//! `moof` (one `traf` per track, explicit per-sample fields, default base is
//! the `moof`) and an `mdat` holding the piece's sample bytes, copied as
//! whole ranges, never sample by sample.

use bytes::Bytes;
use mp4_atom::{Encode, Header, Mfhd, Moof, Tfdt, Tfhd, Traf, Trun, TrunEntry};

use crate::capture::fragment::{Fragment, Sample};
use crate::capture::init::Init;
use crate::capture::split::{Part, Piece};
use crate::{Error, Result};

/// Appends `moof` + `mdat` for `piece` to `out`: the boxes' headers as one
/// new buffer, the sample data as slices of the capture's `mdat`.
pub(crate) fn write_fragment(
    out: &mut Vec<Bytes>,
    fragment: &Fragment,
    piece: &Piece,
    init: &Init,
    sequence: u32,
) -> Result<()> {
    let fail = |e| rewrite_error(fragment, e);
    let (mut moof, traf_parts) = build_moof(fragment, piece, init, sequence);
    let payload_len: u64 = traf_parts
        .iter()
        .flatten()
        .map(|part| part_bytes(fragment, part))
        .sum();
    // mp4-atom's Header takes a 64-bit size when the box needs one.
    let mut mdat_header = Vec::with_capacity(16);
    Header {
        kind: b"mdat".into(),
        size: Some(payload_len as usize),
    }
    .encode(&mut mdat_header)
    .map_err(fail)?;
    set_data_offsets(&mut moof, &traf_parts, fragment, mdat_header.len())?;
    let mut head = Vec::new();
    moof.encode(&mut head).map_err(fail)?;
    head.extend_from_slice(&mdat_header);
    out.push(head.into());
    push_sample_data(out, fragment, &traf_parts);
    Ok(())
}

fn rewrite_error(fragment: &Fragment, e: mp4_atom::Error) -> Error {
    Error::bad_box(fragment.moof_offset, "moof", format!("cannot rewrite: {e}"))
}

/// The piece's `moof`: one `traf` per track, one `trun` per part, data
/// offsets not yet known. With it, for each `traf`, the parts its `trun`s
/// carry, in order.
fn build_moof<'p>(
    fragment: &Fragment,
    piece: &'p Piece,
    init: &Init,
    sequence: u32,
) -> (Moof, Vec<Vec<&'p Part>>) {
    let mut moof = Moof {
        mfhd: Mfhd {
            sequence_number: sequence,
        },
        traf: Vec::new(),
    };
    let mut traf_parts: Vec<Vec<&Part>> = Vec::new();
    for part in &piece.parts {
        let run = &fragment.runs[part.run];
        let samples = &fragment.samples[part.samples.clone()];
        let Some(first) = samples.first() else {
            continue;
        };
        let track = &init.tracks[run.track];
        let trun = trun_of(samples);
        match moof.traf.iter().position(|t| t.tfhd.track_id == track.id) {
            Some(t) => {
                moof.traf[t].trun.push(trun);
                traf_parts[t].push(part);
            }
            None => {
                traf_parts.push(vec![part]);
                moof.traf.push(Traf {
                    tfhd: Tfhd {
                        track_id: track.id,
                        sample_description_index: run.description_index,
                        default_base_is_moof: true,
                        ..Default::default()
                    },
                    tfdt: Some(Tfdt {
                        base_media_decode_time: first.dts,
                    }),
                    trun: vec![trun],
                    ..Default::default()
                });
            }
        }
    }
    (moof, traf_parts)
}

/// A `trun` with every sample's fields explicit.
fn trun_of(samples: &[Sample]) -> Trun {
    let entries: Vec<TrunEntry> = samples
        .iter()
        .map(|s| TrunEntry {
            duration: Some(s.duration),
            size: Some(s.size),
            flags: Some(s.flags),
            cts: Some(s.cts),
        })
        .collect();
    Trun {
        data_offset: Some(0),
        samples: entries.into(),
    }
}

/// Points each `trun` at its samples in the `mdat` that follows the `moof`.
/// The `moof`'s size does not depend on the offsets' values: it is measured,
/// then they are filled in.
fn set_data_offsets(
    moof: &mut Moof,
    traf_parts: &[Vec<&Part>],
    fragment: &Fragment,
    mdat_header_len: usize,
) -> Result<()> {
    let mut probe = Vec::new();
    moof.encode(&mut probe)
        .map_err(|e| rewrite_error(fragment, e))?;
    let mut data_offset = (probe.len() + mdat_header_len) as u64;
    for (traf, parts) in moof.traf.iter_mut().zip(traf_parts) {
        for (trun, part) in traf.trun.iter_mut().zip(parts) {
            trun.data_offset = Some(i32::try_from(data_offset).map_err(|_| {
                Error::bad_box(
                    fragment.moof_offset,
                    "trun",
                    "fragment too large for a 32-bit data offset",
                )
            })?);
            data_offset += part_bytes(fragment, part);
        }
    }
    Ok(())
}

/// Appends the parts' sample bytes, in `trun` order, as slices of the
/// capture's `mdat`.
fn push_sample_data(out: &mut Vec<Bytes>, fragment: &Fragment, traf_parts: &[Vec<&Part>]) {
    for part in traf_parts.iter().flatten() {
        let samples = &fragment.samples[part.samples.clone()];
        let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
            continue;
        };
        let end = last.data + last.size as usize;
        if (end - first.data) as u64 == part_bytes(fragment, part) {
            out.push(fragment.mdat.slice(first.data..end));
        } else {
            // A run whose samples are not back to back (legal, never seen
            // from encoders): copy them one by one.
            for s in samples {
                out.push(fragment.mdat.slice(s.data..s.data + s.size as usize));
            }
        }
    }
}

fn part_bytes(fragment: &Fragment, part: &Part) -> u64 {
    fragment.samples[part.samples.clone()]
        .iter()
        .map(|s| u64::from(s.size))
        .sum()
}
