//! One input fragment (`moof` + its `mdat`) resolved into samples: every
//! field filled from `trun`, `tfhd` or `trex`, every sample located in the
//! `mdat` payload, every decode time known.

use bytes::Bytes;
use mp4_atom::{Decode, Moof, Tfhd, Traf, Trun};

use crate::capture::framing::RawBox;
use crate::capture::inband::InBand;
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
    /// The `emsg` and `prft` boxes that came before its `moof`.
    pub events: Vec<InBand>,
}

impl Fragment {
    #[cfg(test)]
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
    let payload = mdat.bytes.slice(mdat.header_len..);
    let mut resolver = Resolver {
        init,
        at,
        mdat_offset: mdat.offset,
        payload_start: mdat.offset + mdat.header_len as u64,
        payload_len: payload.len() as u64,
        runs: Vec::new(),
        samples: Vec::new(),
        without_tfdt: Vec::new(),
    };
    let mut previous_traf_end: Option<u64> = None;
    for traf in &decoded.traf {
        previous_traf_end = Some(resolver.traf(traf, previous_traf_end, next_dts)?);
    }
    Ok(Fragment {
        moof_offset: at,
        mdat: payload,
        runs: resolver.runs,
        samples: resolver.samples,
        without_tfdt: resolver.without_tfdt,
        events: Vec::new(),
    })
}

/// Collects one fragment's runs and samples, `traf` by `traf`.
struct Resolver<'a> {
    init: &'a Init,
    /// Where the `moof` starts in the capture.
    at: u64,
    mdat_offset: u64,
    /// Where the `mdat` payload starts in the capture, and its length.
    payload_start: u64,
    payload_len: u64,
    runs: Vec<Run>,
    samples: Vec<Sample>,
    without_tfdt: Vec<usize>,
}

impl Resolver<'_> {
    /// Resolves one `traf`; returns where its data ends in the capture,
    /// which is where the next `traf`'s data starts unless it says.
    fn traf(
        &mut self,
        traf: &Traf,
        previous_traf_end: Option<u64>,
        next_dts: &mut [Option<u64>],
    ) -> Result<u64> {
        let tfhd = &traf.tfhd;
        let track = self.init.track_index(tfhd.track_id).ok_or_else(|| {
            Error::bad_box(
                self.at,
                "moof",
                format!(
                    "traf for track {} which the moov does not declare",
                    tfhd.track_id
                ),
            )
        })?;
        let base = match (tfhd.base_data_offset, previous_traf_end) {
            (Some(base), _) => base,
            (None, Some(end)) if !tfhd.default_base_is_moof => end,
            _ => self.at,
        };
        if traf.tfdt.is_none() {
            self.without_tfdt.push(track);
        }
        let mut dts = match (&traf.tfdt, next_dts[track]) {
            (Some(tfdt), _) => tfdt.base_media_decode_time,
            (None, Some(next)) => next,
            (None, None) => 0,
        };
        let mut cursor = base;
        for trun in &traf.trun {
            let position = match trun.data_offset {
                Some(off) => base.checked_add_signed(i64::from(off)).ok_or_else(|| {
                    Error::bad_box(
                        self.at,
                        "trun",
                        format!("data offset {off} points before the start of the capture"),
                    )
                })?,
                None => cursor,
            };
            (cursor, dts) = self.trun(track, tfhd, trun, position, dts)?;
        }
        next_dts[track] = Some(dts);
        Ok(cursor)
    }

    /// Resolves one `trun` whose first sample lies at capture offset
    /// `position` and decodes at `dts`; returns where its samples end, in
    /// the capture and in decode time.
    fn trun(
        &mut self,
        track: usize,
        tfhd: &Tfhd,
        trun: &Trun,
        mut position: u64,
        mut dts: u64,
    ) -> Result<(u64, u64)> {
        let defaults = self.init.tracks[track].defaults;
        let first = self.samples.len();
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
            let data = self.locate(tfhd.track_id, i, position, size)?;
            self.samples.push(Sample {
                dts,
                duration,
                size,
                flags,
                cts: entry.cts.unwrap_or(0),
                data,
            });
            // A 64-bit clock may wrap here; the timeline mends it.
            dts = dts.wrapping_add(u64::from(duration));
            position += u64::from(size);
        }
        if self.samples.len() > first {
            self.runs.push(Run {
                track,
                description_index: tfhd.sample_description_index,
                samples: first..self.samples.len(),
            });
        }
        Ok((position, dts))
    }

    /// Where sample `i` of track `track_id`, `size` bytes at capture offset
    /// `position`, starts in the `mdat` payload; an error unless all of it
    /// lies there.
    fn locate(&self, track_id: u32, i: usize, position: u64, size: u32) -> Result<usize> {
        let relative = position.checked_sub(self.payload_start).filter(|r| {
            r.checked_add(u64::from(size))
                .is_some_and(|end| end <= self.payload_len)
        });
        relative.map(|r| r as usize).ok_or_else(|| {
            Error::bad_box(
                self.at,
                "trun",
                format!(
                    "track {track_id} sample {i} ({size} bytes at byte {position}) lies outside the mdat at byte {} ({} payload bytes)",
                    self.mdat_offset, self.payload_len
                ),
            )
        })
    }
}
