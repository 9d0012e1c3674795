//! Playlists for standard players, rendered as text from index records: a
//! live HLS multivariant playlist naming one media playlist (CMAF fMP4:
//! each asset's media part is one segment, addressed by byte range, with
//! its generation's init file as `EXT-X-MAP`) and a live DASH MPD (one
//! Adaptation Set per track over the per-track files beside the assets, one
//! Period per `moov`). No I/O: the publisher writes them beside the assets from
//! the records it holds, the server renders them per client.

mod dash;
mod dash_set;
mod dash_timing;
mod hls;
pub mod markers;
mod multivariant;

pub use dash::dash;
pub use hls::{hls, start_offset_s, target_duration};
pub use multivariant::{multivariant, MEDIA as HLS_MEDIA, MULTIVARIANT as HLS_MULTIVARIANT};

use crate::stream::descriptor::Descriptor;
use crate::stream::events::Event;
use crate::stream::index::Record;
use crate::stream::naming::Naming;

/// What both playlists are made from.
pub struct Listing<'a> {
    /// The stream's tracks, interval and start, as `stream.json` says.
    pub descriptor: &'a Descriptor,
    pub records: &'a [Record],
    pub naming: &'a Naming,
    /// How far behind live a player should start, s (the recommended backset).
    pub start_behind_s: f64,
    /// Mean bitrate of the stream, bits/s.
    pub bitrate_bps: u64,
    /// The in-band events (`emsg`) of the listed assets, in order.
    pub events: &'a [Event],
    // HLS:
    /// The viewer the playlists are rendered for (its `?client=` id), carried
    /// into the URLs they name; none for the files the publisher writes.
    pub client: Option<&'a str>,
}

impl Listing<'_> {
    pub(super) fn secs(&self, ticks: u64) -> f64 {
        ticks as f64 / f64::from(self.descriptor.timescale.max(1))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(crate) fn records() -> Vec<Record> {
        (3..6)
            .map(|s| Record {
                sequence: s,
                start: s * 24576,
                duration: 24576,
                datastamp: s * 50_000,
                size: 51_440,
                header_len: 1440,
                entries: 1,
                published_us: 1_764_000_000_000_000 + s * 2_000_000,
                init: 0,
            })
            .collect()
    }

    /// A video + audio stream's descriptor, as a real capture gives it.
    pub(crate) fn descriptor() -> Descriptor {
        let json = r#"{"version":1,"prefix":"asset","pattern":"asset-%08d.mp4",
            "index":"index.bin","timescale":12288,"interval_us":2000000,
            "tracks":[{"id":1,"kind":"video","codec":"avc1","codecs":"avc1.64000d",
              "timescale":12288,"width":320,"height":180,
              "frame_rate":{"frames":24,"seconds":1}},
             {"id":2,"kind":"audio","codec":"mp4a","codecs":"mp4a.40.2",
              "timescale":48000,"channels":2}],
            "first_sequence":3,"started_us":1764000000000000,"ended":false}"#;
        serde_json::from_str(json).expect("a valid descriptor")
    }

    /// `d` once its transmission has ended.
    pub(crate) fn ended(d: &Descriptor) -> Descriptor {
        Descriptor {
            ended: true,
            ..d.clone()
        }
    }

    pub(crate) fn listing<'a>(
        descriptor: &'a Descriptor,
        records: &'a [Record],
        naming: &'a Naming,
    ) -> Listing<'a> {
        Listing {
            events: &[],
            descriptor,
            records,
            naming,
            start_behind_s: 6.5,
            bitrate_bps: 200_000,
            client: None,
        }
    }
}
