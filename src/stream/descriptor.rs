//! The stream descriptor (`stream.json`): what a client needs to know about
//! the transmission without reading an asset.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::capture::init::Track;
use crate::stream::naming::Naming;
use crate::{Error, Result};

pub(crate) const FILE: &str = "stream.json";
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    pub version: u32,
    /// File name prefix of the assets.
    pub prefix: String,
    /// printf-style pattern of asset names, N from 0.
    pub pattern: String,
    /// The index file, beside this one.
    pub index: String,
    /// Ticks per second of every timestamp in the maps and the index.
    pub timescale: u32,
    /// Target asset duration in µs (`--interval`).
    pub interval_us: u64,
    /// Target asset size in bytes (`--size`), if cutting by data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The cutter's safety limit on an asset's duration in µs
    /// (`--max-asset-duration`): the longest asset it makes, so the HLS
    /// target duration, fixed for the playlist's life, is known before the
    /// first asset. Older `stream.json` files lack it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration_us: Option<u64>,
    pub tracks: Vec<Track>,
    /// The oldest asset still kept; older ones were deleted by retention.
    #[serde(default)]
    pub first_sequence: u64,
    /// Retention window behind the live edge in µs (`--keep`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_us: Option<u64>,
    /// Number of assets kept (`--keep-assets`), if limited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_assets: Option<u64>,
    /// Wall-clock start of the transmission, µs since the Unix epoch.
    pub started_us: u64,
    /// Wall-clock time at which media time 0 of the transmission was
    /// received, µs since the Unix epoch: the first key frame's receive
    /// time less its media time. What playlists anchor wall-clock times on
    /// (`availabilityStartTime`, `EXT-X-PROGRAM-DATE-TIME`); unknown until
    /// the first asset with an entry point is published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor_us: Option<u64>,
    /// How much later than its decode time the reference track's first key
    /// frame is presented in the assets (its composition offset: B-frames),
    /// in `timescale` ticks. Timestamps are presentation times, decode
    /// times in the assets start at 0, so this is where a player that
    /// buffers by composition time (MSE) finds transmission time 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub composition_offset: Option<u64>,
    /// True once the transmission has ended: no asset follows the last one.
    pub ended: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_us: Option<u64>,
}

impl Descriptor {
    /// Reads a descriptor someone else wrote: a version this build does not
    /// know is refused before its fields are trusted, and the prefix must be
    /// one that `--prefix` would accept, since readers build paths from it.
    pub(crate) fn parse(path: &Path, bytes: &[u8]) -> Result<Descriptor> {
        let bad = |reason: String| Error::BadFile {
            path: path.to_path_buf(),
            reason,
        };
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        match value.get("version") {
            Some(v) if v.as_u64() == Some(u64::from(VERSION)) => {}
            Some(v) => {
                return Err(bad(format!(
                    "stream.json version {v} is not supported by this build (it reads version {VERSION})"
                )))
            }
            None => return Err(bad("stream.json has no version".into())),
        }
        let d: Descriptor = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
        Naming::new(&d.prefix).validate().map_err(bad)?;
        Ok(d)
    }
}
