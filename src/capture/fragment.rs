//! One input fragment (`moof` + its `mdat`) resolved into samples: every
//! field filled from `trun`, `tfhd` or `trex`, every sample located in the
//! `mdat` payload, every decode time known.

use bytes::Bytes;
use mp4_atom::{Decode, Moof};

use crate::capture::framing::RawBox;
use crate::capture::init::Init;
use crate::{Error, Result};

/// ISO/IEC 14496-12 sample_is_non_sync_sample.
const NON_SYNC: u32 = 0x0001_0000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub dts: u64,
    pub duration: u32,
    pub size: u32,
    pub flags: u32,
    pub cts: i64,
    /// Where the sample's bytes start in the `mdat` payload.
    pub data: usize,
}

impl Sample {
    pub fn is_sync(&self) -> bool {
        self.flags & NON_SYNC == 0
    }

    pub fn pts(&self) -> i128 {
        i128::from(self.dts) + i128::from(self.cts)
    }
}

/// The samples of one `trun`: contiguous in the `mdat` and in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// Index into [`Init::tracks`].
    pub track: usize,
    pub description_index: Option<u32>,
    pub samples: std::ops::Range<usize>,
}

#[derive(Debug, Clone)]
pub struct Fragment {
    pub moof_offset: u64,
    pub mdat: Bytes,
    pub runs: Vec<Run>,
    pub samples: Vec<Sample>,
    /// Tracks whose `traf` had no `tfdt`: their decode times were carried on
    /// from the previous fragment.
    pub without_tfdt: Vec<usize>,
}

impl Fragment {
    pub fn run_samples(&self, run: &Run) -> &[Sample] {
        &self.samples[run.samples.clone()]
    }
}

/// Resolves `moof` + `mdat`. `next_dts` holds, per track, the decode time
/// that follows the previous fragment, used when a `traf` has no `tfdt`;
/// it is advanced past this fragment.
pub fn parse(
    init: &Init,
    moof: &RawBox,
    mdat: &RawBox,
    next_dts: &mut [Option<u64>],
) -> Result<Fragment> {
    let at = moof.offset;
    let decoded = Moof::decode(&mut crate::capture::box_filter::essential(&moof.bytes).as_slice())
        .map_err(|e| Error::bad_box(at, "moof", format!("cannot decode: {e}")))?;
    let payload_start = mdat.offset + mdat.header_len as u64;
    let payload = mdat.bytes.slice(mdat.header_len..);

    let mut runs = Vec::new();
    let mut samples = Vec::new();
    let mut without_tfdt = Vec::new();
    let mut previous_traf_end: Option<u64> = None;
    for traf in &decoded.traf {
        let tfhd = &traf.tfhd;
        let track = init.track_index(tfhd.track_id).ok_or_else(|| {
            Error::bad_box(
                at,
                "moof",
                format!(
                    "traf for track {} which the moov does not declare",
                    tfhd.track_id
                ),
            )
        })?;
        let defaults = init.tracks[track].defaults;
        let base = match (tfhd.base_data_offset, previous_traf_end) {
            (Some(base), _) => base,
            (None, Some(end)) if !tfhd.default_base_is_moof => end,
            _ => moof.offset,
        };
        if traf.tfdt.is_none() {
            without_tfdt.push(track);
        }
        let mut dts = match (&traf.tfdt, next_dts[track]) {
            (Some(tfdt), _) => tfdt.base_media_decode_time,
            (None, Some(next)) => next,
            (None, None) => 0,
        };
        let mut cursor = base;
        for trun in &traf.trun {
            let mut position = match trun.data_offset {
                Some(off) => base.checked_add_signed(i64::from(off)).ok_or_else(|| {
                    Error::bad_box(
                        at,
                        "trun",
                        format!("data offset {off} points before the start of the capture"),
                    )
                })?,
                None => cursor,
            };
            let first = samples.len();
            for (i, entry) in trun.samples.iter().enumerate() {
                let size = entry
                    .size
                    .or(tfhd.default_sample_size)
                    .unwrap_or(defaults.size);
                let duration = entry
                    .duration
                    .or(tfhd.default_sample_duration)
                    .unwrap_or(defaults.duration);
                let flags = entry
                    .flags
                    .or(tfhd.default_sample_flags)
                    .unwrap_or(defaults.flags);
                let relative = position.checked_sub(payload_start).filter(|r| {
                    r.checked_add(u64::from(size))
                        .is_some_and(|end| end <= payload.len() as u64)
                });
                let Some(relative) = relative else {
                    return Err(Error::bad_box(
                        at,
                        "trun",
                        format!(
                            "track {} sample {i} ({size} bytes at byte {position}) lies outside the mdat at byte {} ({} payload bytes)",
                            tfhd.track_id,
                            mdat.offset,
                            payload.len()
                        ),
                    ));
                };
                samples.push(Sample {
                    dts,
                    duration,
                    size,
                    flags,
                    cts: entry.cts.unwrap_or(0),
                    data: relative as usize,
                });
                dts += u64::from(duration);
                position += u64::from(size);
            }
            cursor = position;
            if samples.len() > first {
                runs.push(Run {
                    track,
                    description_index: tfhd.sample_description_index,
                    samples: first..samples.len(),
                });
            }
        }
        next_dts[track] = Some(dts);
        previous_traf_end = Some(cursor);
    }
    Ok(Fragment {
        moof_offset: at,
        mdat: payload,
        runs,
        samples,
        without_tfdt,
    })
}
