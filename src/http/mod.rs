//! The stream over HTTP: [`playlists`] renders HLS and DASH from the index,
//! [`serve`] is the origin server (assets, backset parameters, `locate`,
//! playlists, and what it learns of its audience), [`follow`] the client
//! that plays a stream from its own backset; [`cmcd`] reads and writes what
//! players say of themselves (CTA-5004).

pub mod cmcd;
#[cfg(feature = "follow")]
pub mod follow;
pub mod playlists;
#[cfg(feature = "serve")]
pub mod serve;
