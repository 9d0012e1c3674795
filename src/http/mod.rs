//! The stream over HTTP: [`api`] holds the answers' serde types, written by
//! the server and read by the client; `serve` is the origin server
//! (assets, backset parameters, `locate`, the HLS and DASH playlists
//! rendered by [`crate::stream::playlists`], and what it learns of its
//! audience); `follow` the client that plays a stream from its own
//! backset; [`cmcd`] reads and writes what players say of themselves
//! (CTA-5004).

pub mod api;
pub mod cmcd;
#[cfg(feature = "follow")]
pub mod follow;
#[cfg(feature = "serve")]
pub mod serve;
