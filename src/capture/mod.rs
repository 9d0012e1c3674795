//! The capture core: capture bytes in, finished assets out, no I/O.
//!
//! [`framing`] cuts the byte stream into top-level boxes (resynchronising past
//! damage) and holds the core's one box-header reader; [`init`] reads the
//! tracks of a `moov` (named for playlists by [`codecs`], timed by
//! `frame_rate`) and `fragment` the samples of one `moof`+`mdat`, both
//! decoding only what `box_filter` keeps of the box tree; `timeline`
//! continues decode times across runs and mends clock jumps; `split` cuts
//! fragments into pieces that start at key frames; `fragment_writer` writes
//! each piece as one `moof`+`mdat`; [`stamps`] computes timestamps and
//! datastamps; [`asset`] assembles the headers, the [`maps`] box and the
//! fragments. [`segmenter`] is the state machine that ties them together:
//! fed byte chunks, it returns finished assets and warnings, and the caller
//! owns files, clocks and signals. [`ts`] turns an MPEG-TS capture into the
//! fragmented-MP4 boxes the segmenter takes.
//!
//! Outside the crate, the segmenter, the framer, the maps box, tracks and
//! finished assets are the interface; the rest is `pub(crate)`.

pub mod asset;
pub(crate) mod box_filter;
pub mod codecs;
pub(crate) mod fragment;
pub(crate) mod fragment_writer;
pub(crate) mod frame_rate;
pub mod framing;
pub(crate) mod hold;
pub mod inband;
pub mod init;
pub mod maps;
pub mod segmenter;
pub(crate) mod split;
pub(crate) mod sps;
pub mod stamps;
pub(crate) mod timeline;
pub mod ts;

#[cfg(test)]
pub(crate) mod tests;
