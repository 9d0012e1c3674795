//! The capture's initialisation (`ftyp` + `moov`): its tracks, and the bytes
//! every asset repeats so that it plays on its own.

use bytes::Bytes;
use mp4_atom::{Codec, Decode, Encode, Ftyp, Moov};
use serde::{Deserialize, Serialize};

use crate::capture::framing::RawBox;
use crate::capture::{codecs, frame_rate};
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackKind {
    Video,
    Audio,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Track {
    pub id: u32,
    pub kind: TrackKind,
    /// The sample entry's four-character code (`avc1`, `mp4a`, …).
    pub codec: String,
    /// The RFC 6381 codecs parameter (`avc1.64001f`, `mp4a.40.2`, …), as
    /// playlists name it; old `stream.json` files lack it.
    #[serde(default)]
    pub codecs: String,
    pub timescale: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<u16>,
    /// Frames per second of a video track (`frames` per `seconds`), from the
    /// timing its parameter sets declare, or else its `trex` default sample
    /// duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_rate: Option<FrameRate>,
    /// The bitrate the sample entry declares (`btrt`, or `esds` for MPEG-4
    /// audio), in bits per second, for playlists' `BANDWIDTH`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitrate_bps: Option<u64>,
    #[serde(skip)]
    pub(crate) defaults: SampleDefaults,
}

impl Track {
    /// One `trak` of a capture's `moov` at `offset`, with its `trex`
    /// defaults and what its sample entry tells.
    fn read(trak: &mp4_atom::Trak, mvex: &mp4_atom::Mvex, offset: u64) -> Result<Track> {
        let id = trak.tkhd.track_id;
        let timescale = trak.mdia.mdhd.timescale;
        if timescale == 0 {
            return Err(Error::bad_box(
                offset,
                "mdhd",
                format!("track {id} has timescale 0"),
            ));
        }
        let kind = match trak.mdia.hdlr.handler.as_ref() {
            b"vide" => TrackKind::Video,
            b"soun" => TrackKind::Audio,
            _ => TrackKind::Other,
        };
        let codec = trak.mdia.minf.stbl.stsd.codecs.first();
        let defaults = mvex
            .trex
            .iter()
            .find(|t| t.track_id == id)
            .map(|t| SampleDefaults {
                description_index: t.default_sample_description_index,
                duration: t.default_sample_duration,
                size: t.default_sample_size,
                flags: t.default_sample_flags,
            })
            .unwrap_or_default();
        let (width, height) = match kind {
            TrackKind::Video => (
                Some(trak.tkhd.width.integer()),
                Some(trak.tkhd.height.integer()),
            ),
            _ => (None, None),
        };
        Ok(Track {
            id,
            kind,
            codec: codec.map(codec_name).unwrap_or_else(|| "none".into()),
            codecs: codec
                .map(|c| codecs::rfc6381(c).unwrap_or_else(|| codec_name(c)))
                .unwrap_or_else(|| "none".into()),
            timescale,
            width,
            height,
            channels: codec.and_then(channels),
            frame_rate: match kind {
                TrackKind::Video => codec
                    .and_then(frame_rate::declared)
                    .or_else(|| frame_rate::of_duration(timescale, defaults.duration)),
                _ => None,
            },
            bitrate_bps: codec.and_then(codecs::bitrate_bps),
            defaults,
        })
    }
}

/// A frame rate as a ratio, so 30000/1001 stays exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameRate {
    pub frames: u32,
    pub seconds: u32,
}

impl FrameRate {
    pub fn per_second(&self) -> f64 {
        f64::from(self.frames) / f64::from(self.seconds.max(1))
    }
}

/// Per-track sample defaults from `trex`, the last resort when `tfhd` and
/// `trun` leave a field out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SampleDefaults {
    pub description_index: u32,
    pub duration: u32,
    pub size: u32,
    pub flags: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct Init {
    /// `ftyp` + `moov` exactly as the encoder wrote them (an `ftyp` is made
    /// if the capture had none), so each asset's initialisation is the
    /// capture's own.
    pub bytes: Bytes,
    pub tracks: Vec<Track>,
    moov: Bytes,
}

impl Init {
    pub fn parse(ftyp: Option<&RawBox>, moov: &RawBox) -> Result<Init> {
        let decoded =
            Moov::decode(&mut crate::capture::box_filter::essential(&moov.bytes).as_slice())
                .map_err(|e| Error::bad_box(moov.offset, "moov", format!("cannot decode: {e}")))?;
        let Some(mvex) = &decoded.mvex else {
            return Err(Error::bad_box(
                moov.offset,
                "moov",
                "no mvex box: this is a plain MP4, not a fragmented capture (use -movflags frag_keyframe+empty_moov)",
            ));
        };
        let tracks = decoded
            .trak
            .iter()
            .map(|trak| Track::read(trak, mvex, moov.offset))
            .collect::<Result<Vec<_>>>()?;
        if tracks.is_empty() {
            return Err(Error::bad_box(moov.offset, "moov", "no tracks"));
        }

        let mut bytes = Vec::with_capacity(moov.bytes.len() + 36);
        cmaf_ftyp(ftyp, &mut bytes)
            .map_err(|e| Error::bad_box(moov.offset, "ftyp", e.to_string()))?;
        bytes.extend_from_slice(&moov.bytes);
        Ok(Init {
            bytes: bytes.into(),
            tracks,
            moov: moov.bytes.clone(),
        })
    }

    /// An initialisation with only a track list, for pure tests of what
    /// depends on tracks alone.
    #[cfg(test)]
    pub(crate) fn with_tracks(tracks: Vec<Track>) -> Init {
        Init {
            bytes: Bytes::new(),
            tracks,
            moov: Bytes::new(),
        }
    }

    /// Whether a later `moov` describes the same stream as this one.
    pub fn same_moov(&self, moov: &RawBox) -> bool {
        self.moov == moov.bytes
    }

    pub fn track_index(&self, id: u32) -> Option<usize> {
        self.tracks.iter().position(|t| t.id == id)
    }

    /// The track whose key frames are the entry points: the first video
    /// track, or the first track of an audio-only stream.
    pub fn reference(&self) -> usize {
        self.tracks
            .iter()
            .position(|t| t.kind == TrackKind::Video)
            .unwrap_or(0)
    }
}

/// The `ftyp` every asset starts with: the capture's own, with the `cmfc`
/// brand added to its compatible brands when it lacks it (players and
/// packagers take `cmfc` as the promise of CMAF fragments, which every
/// asset's fragments are), or a made one when the capture had none or one
/// that does not decode.
fn cmaf_ftyp(ftyp: Option<&RawBox>, out: &mut Vec<u8>) -> mp4_atom::Result<()> {
    let cmfc = mp4_atom::FourCC::new(b"cmfc");
    let decoded = ftyp.and_then(|f| Ftyp::decode(&mut f.bytes.as_ref()).ok());
    match (ftyp, decoded) {
        (Some(f), Some(d)) if d.compatible_brands.contains(&cmfc) => {
            out.extend_from_slice(&f.bytes);
            Ok(())
        }
        (_, Some(mut d)) => {
            d.compatible_brands.push(cmfc);
            d.encode(out)
        }
        (_, None) => Ftyp {
            major_brand: b"iso6".into(),
            minor_version: 0,
            compatible_brands: vec![b"iso6".into(), cmfc, b"mp41".into()],
        }
        .encode(out),
    }
}

fn codec_name(codec: &Codec) -> String {
    let name = match codec {
        Codec::Avc1(_) => "avc1",
        Codec::Avc3(_) => "avc3",
        Codec::Hev1(_) => "hev1",
        Codec::Hvc1(_) => "hvc1",
        Codec::Vp08(_) => "vp08",
        Codec::Vp09(_) => "vp09",
        Codec::Av01(_) => "av01",
        Codec::Mp4a(_) => "mp4a",
        Codec::Opus(_) => "Opus",
        Codec::Mp3(_) => "mp3",
        Codec::Flac(_) => "fLaC",
        Codec::Ac3(_) => "ac-3",
        Codec::Eac3(_) => "ec-3",
        Codec::Tx3g(_) => "tx3g",
        Codec::Wvtt(_) => "wvtt",
        _ => "other",
    };
    name.into()
}

fn channels(codec: &Codec) -> Option<u16> {
    match codec {
        Codec::Mp4a(a) => Some(a.audio.channel_count),
        Codec::Opus(a) => Some(a.audio.channel_count),
        _ => None,
    }
}
