//! The stream over HTTP: [`serve`] is the origin server (assets, backset
//! parameters, `locate`, the HLS and DASH playlists rendered by
//! [`crate::stream::playlists`], and what it learns of its audience),
//! [`follow`] the client that plays a stream from its own backset.

#[cfg(feature = "follow")]
pub mod follow;
#[cfg(feature = "serve")]
pub mod serve;
