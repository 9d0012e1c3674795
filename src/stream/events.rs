//! The in-band events of an asset: its `emsg` boxes (SCTE-35 ad markers,
//! ID3 timed metadata) and `prft` boxes, with their times in transmission
//! seconds. The segmenter writes each just before the fragment it went with
//! in the capture ([`crate::capture::inband`]); this finds them again from
//! the asset's bytes alone, for `inspect` and for the playlists (DASH
//! `InbandEventStream`, HLS `EXT-X-DATERANGE`).
//!
//! Times are placed through the asset's own maps: the first entry point's
//! transmission time is the presentation time of the key frame its fragment
//! opens with, and media time runs at one second per second from there.

use mp4_atom::{Decode, Emsg, EmsgTimestamp, Prft};

use crate::capture::fragment::{self, Fragment};
use crate::capture::framing::{Framer, RawBox};
use crate::capture::init::Init;
use crate::capture::maps::Maps;
use crate::{Error, Result};

/// One `emsg` of an asset.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Byte offset of the box in the asset.
    pub offset: u64,
    /// 0 (time relative to the fragment after it) or 1 (absolute).
    pub version: u8,
    pub scheme: String,
    pub value: String,
    pub id: u32,
    /// Presentation time, in transmission seconds.
    pub time_s: f64,
    /// `None`: unknown (0xFFFFFFFF in the box).
    pub duration_s: Option<f64>,
    /// The message (for SCTE-35, a splice_info_section).
    pub message: Vec<u8>,
}

/// One `prft` of an asset: a wall-clock time for a media time.
#[derive(Debug, Clone, PartialEq)]
pub struct ProducerTime {
    pub offset: u64,
    pub track_id: u32,
    /// NTP time (seconds since 1900, 32.32 fixed point), as the encoder wrote it.
    pub ntp: u64,
    /// The media time it stands for, in transmission seconds.
    pub time_s: f64,
}

impl ProducerTime {
    /// The NTP time as seconds since the Unix epoch.
    pub fn unix_s(&self) -> f64 {
        const NTP_TO_UNIX: f64 = 2_208_988_800.0;
        (self.ntp >> 32) as f64 + (self.ntp & 0xFFFF_FFFF) as f64 / 4_294_967_296.0 - NTP_TO_UNIX
    }
}

/// What [`scan`] finds in an asset.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scan {
    pub events: Vec<Event>,
    pub producer_times: Vec<ProducerTime>,
}

/// The scheme SCTE 214-1 gives SCTE-35 splice_info_sections in `emsg`.
pub const SCTE35_SCHEME: &str = crate::capture::ts::scte35::SCHEME;

/// Finds the `emsg` and `prft` boxes of a whole asset.
pub fn scan(asset: &[u8]) -> Result<Scan> {
    let boxes = top_boxes(asset)?;
    let find = |kind: &[u8; 4]| boxes.iter().find(|b| &b.kind == kind);
    let moov = find(b"moov").ok_or_else(|| Error::bad_box(0, "moov", "the asset has no moov"))?;
    let init = Init::parse(find(b"ftyp"), moov)?;
    let maps_box = boxes
        .iter()
        .find(|b| Maps::is_maps_box(&b.bytes))
        .ok_or_else(|| Error::bad_box(0, "uuid", "the asset has no maps box"))?;
    let maps =
        Maps::decode(&maps_box.bytes).map_err(|e| Error::bad_box(maps_box.offset, "uuid", e))?;
    let fragments = fragments(&init, &boxes)?;
    let clock = AssetClock::of(&init, &maps, &fragments);
    let mut scan = Scan::default();
    for (i, b) in boxes.iter().enumerate() {
        let next = fragments.iter().find(|(at, _)| *at > i).map(|(_, f)| f);
        let bad = |e: mp4_atom::Error| {
            Error::bad_box(b.offset, b.kind_str(), format!("cannot decode: {e}"))
        };
        match &b.kind {
            b"emsg" => {
                let emsg = Emsg::decode(&mut &b.bytes[..]).map_err(bad)?;
                scan.events.push(clock.event(&init, b.offset, emsg, next));
            }
            b"prft" => {
                let prft = Prft::decode(&mut &b.bytes[..]).map_err(bad)?;
                scan.producer_times
                    .push(clock.producer_time(&init, b.offset, &prft));
            }
            _ => {}
        }
    }
    Ok(scan)
}

fn top_boxes(asset: &[u8]) -> Result<Vec<RawBox>> {
    let mut framer = Framer::default();
    framer.push(asset);
    let mut boxes = Vec::new();
    while let Some(b) = framer.next_box()? {
        boxes.push(b);
    }
    Ok(boxes)
}

/// The asset's fragments, each with the index of its `moof` among `boxes`.
fn fragments(init: &Init, boxes: &[RawBox]) -> Result<Vec<(usize, Fragment)>> {
    let mut next_dts = vec![None; init.tracks.len()];
    let mut out = Vec::new();
    for (i, pair) in boxes.windows(2).enumerate() {
        if &pair[0].kind == b"moof" && &pair[1].kind == b"mdat" {
            out.push((i, fragment::parse(init, &pair[0], &pair[1], &mut next_dts)?));
        }
    }
    Ok(out)
}

/// Media seconds to transmission seconds for one asset.
struct AssetClock {
    /// A transmission time and the media time (seconds) it stands for.
    transmission_s: f64,
    media_s: f64,
}

impl AssetClock {
    /// Anchored at the first entry point's key frame, or for an asset with
    /// none at its start and its first fragment's earliest time.
    fn of(init: &Init, maps: &Maps, fragments: &[(usize, Fragment)]) -> AssetClock {
        let scale = f64::from(maps.timescale.max(1));
        let reference = init.reference();
        let ref_scale = f64::from(init.tracks[reference].timescale.max(1));
        let entry = maps.entries.first();
        let anchored = entry.and_then(|e| {
            let f = fragments
                .iter()
                .map(|(_, f)| f)
                .find(|f| f.moof_offset >= e.offset)?;
            let run = f.runs.iter().find(|r| r.track == reference)?;
            let key = f.samples[run.samples.start].pts();
            Some((e.timestamp as f64 / scale, key as f64 / ref_scale))
        });
        let (transmission_s, media_s) = anchored.unwrap_or_else(|| {
            let first = fragments
                .first()
                .and_then(|(_, f)| crate::capture::inband::earliest_pts(init, f));
            (
                maps.start as f64 / scale,
                first.unwrap_or(0) as f64 / ref_scale,
            )
        });
        AssetClock {
            transmission_s,
            media_s,
        }
    }

    fn seconds(&self, media_s: f64) -> f64 {
        self.transmission_s + media_s - self.media_s
    }

    /// An `emsg` before the fragment `next`.
    fn event(&self, init: &Init, offset: u64, emsg: Emsg, next: Option<&Fragment>) -> Event {
        let scale = f64::from(emsg.timescale.max(1));
        let ref_scale = f64::from(init.tracks[init.reference()].timescale.max(1));
        let (version, media_s) = match emsg.presentation_time {
            EmsgTimestamp::Relative(delta) => {
                let anchor = next.and_then(|f| crate::capture::inband::earliest_pts(init, f));
                (
                    0,
                    anchor.unwrap_or(0) as f64 / ref_scale + f64::from(delta) / scale,
                )
            }
            EmsgTimestamp::Absolute(time) => (1, time as f64 / scale),
        };
        Event {
            offset,
            version,
            scheme: emsg.scheme_id_uri,
            value: emsg.value,
            id: emsg.id,
            time_s: self.seconds(media_s),
            duration_s: (emsg.event_duration != u32::MAX)
                .then(|| f64::from(emsg.event_duration) / scale),
            message: emsg.message_data,
        }
    }

    fn producer_time(&self, init: &Init, offset: u64, prft: &Prft) -> ProducerTime {
        let scale = init
            .track_index(prft.reference_track_id)
            .map_or(1, |t| init.tracks[t].timescale.max(1));
        ProducerTime {
            offset,
            track_id: prft.reference_track_id,
            ntp: prft.ntp_timestamp,
            time_s: self.seconds(prft.media_time as f64 / f64::from(scale)),
        }
    }
}
