//! backset: cut a live fragmented-MP4 capture into self-contained media assets,
//! each carrying a timestamp map and a datastamp map of its entry points.
//!
//! Data flows one way through the modules:
//! capture bytes → [`framing`] (top-level boxes) → [`init`] (tracks) and
//! [`fragment`] (samples of one `moof`+`mdat`) → [`split`] (pieces that start at
//! key frames) → [`rewrite`] (one `moof`+`mdat` per piece) → [`asset`] (headers,
//! [`maps`], fragments) → [`index`] and [`outdir`] (the live directory).
//! [`segmenter`] is the I/O-free state machine tying them together.

pub mod asset;
pub mod audience;
pub mod descriptor;
pub mod error;
pub mod follow;
pub mod fragment;
pub mod framing;
pub mod index;
pub mod init;
pub mod inspect;
pub mod locate;
pub mod maps;
pub mod naming;
pub mod outdir;
pub mod playlist;
pub mod policy;
pub mod prune;
pub mod retention;
pub mod rewrite;
pub mod segmenter;
pub mod serve;
pub mod split;
pub mod stamps;
pub mod stream;
pub mod timeline;
pub mod units;
pub mod verify;

pub use error::{Error, Result};
