//! Writes one piece of an input fragment as an output fragment: a new
//! `moof` (one `traf` per track, explicit per-sample fields, default base is
//! the `moof`) and an `mdat` holding the piece's sample bytes, copied as
//! whole ranges, never sample by sample.

use bytes::Bytes;
use mp4_atom::{Encode, Mfhd, Moof, Tfdt, Tfhd, Traf, Trun, TrunEntry};

use crate::capture::fragment::Fragment;
use crate::capture::init::Init;
use crate::capture::split::Piece;
use crate::{Error, Result};

/// Appends `moof` + `mdat` for `piece` to `out`: the boxes' headers as one
/// new buffer, the sample data as slices of the capture's `mdat`.
pub fn write_fragment(
    out: &mut Vec<Bytes>,
    fragment: &Fragment,
    piece: &Piece,
    init: &Init,
    sequence: u32,
) -> Result<()> {
    let fail = |e: mp4_atom::Error| {
        Error::bad_box(fragment.moof_offset, "moof", format!("cannot rewrite: {e}"))
    };

    let mut moof = Moof {
        mfhd: Mfhd {
            sequence_number: sequence,
        },
        traf: Vec::new(),
    };
    let mut payload_len = 0u64;
    // For each traf, the parts its truns carry, in order.
    let mut traf_parts: Vec<Vec<&crate::capture::split::Part>> = Vec::new();
    for part in &piece.parts {
        let run = &fragment.runs[part.run];
        let samples = &fragment.samples[part.samples.clone()];
        let Some(first) = samples.first() else {
            continue;
        };
        let track = &init.tracks[run.track];
        let entries: Vec<TrunEntry> = samples
            .iter()
            .map(|s| TrunEntry {
                duration: Some(s.duration),
                size: Some(s.size),
                flags: Some(s.flags),
                cts: Some(s.cts),
            })
            .collect();
        let trun = Trun {
            data_offset: Some(0),
            samples: entries.into(),
        };
        payload_len += samples.iter().map(|s| u64::from(s.size)).sum::<u64>();
        match moof.traf.iter().position(|t| t.tfhd.track_id == track.id) {
            Some(t) => {
                moof.traf[t].trun.push(trun);
                traf_parts[t].push(part);
            }
            None => {
                traf_parts.push(vec![part]);
                let dts = first.dts;
                moof.traf.push(Traf {
                    tfhd: Tfhd {
                        track_id: track.id,
                        sample_description_index: run.description_index,
                        default_base_is_moof: true,
                        ..Default::default()
                    },
                    tfdt: Some(Tfdt {
                        base_media_decode_time: dts,
                    }),
                    trun: vec![trun],
                    ..Default::default()
                });
            }
        }
    }

    // The moof's size does not depend on the offsets' values: measure it,
    // then fill them in.
    let mut probe = Vec::new();
    moof.encode(&mut probe).map_err(fail)?;
    let mdat_header: u64 = if payload_len + 8 > u64::from(u32::MAX) {
        16
    } else {
        8
    };
    let mut data_offset = probe.len() as u64 + mdat_header;
    for (traf, parts) in moof.traf.iter_mut().zip(&traf_parts) {
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
    let mut head = Vec::with_capacity(probe.len() + mdat_header as usize);
    moof.encode(&mut head).map_err(fail)?;
    if mdat_header == 8 {
        head.extend_from_slice(&((payload_len + 8) as u32).to_be_bytes());
        head.extend_from_slice(b"mdat");
    } else {
        head.extend_from_slice(&1u32.to_be_bytes());
        head.extend_from_slice(b"mdat");
        head.extend_from_slice(&(payload_len + 16).to_be_bytes());
    }
    out.push(head.into());
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
    Ok(())
}

fn part_bytes(fragment: &Fragment, part: &crate::capture::split::Part) -> u64 {
    fragment.samples[part.samples.clone()]
        .iter()
        .map(|s| u64::from(s.size))
        .sum()
}
