//! The stream directory: what the segmenter publishes and what every reader
//! opens.
//!
//! Names are a pure function of the prefix and the sequence ([`naming`]);
//! `index.bin` holds one fixed-size record per published asset ([`index`]);
//! `stream.json` describes the transmission ([`descriptor`]). The writing
//! side: [`publisher`] turns the segmenter's events into the directory (the
//! descriptor's lifecycle, retention's order, the playlists), [`store`]
//! writes assets atomically (write, then rename) and appends the index,
//! [`retention`] decides what expires and [`playlists`] renders HLS and DASH
//! from records. The reading side: [`reader`] opens a directory
//! (memory-mapped index, descriptor), [`maps_reader`] finds an asset's maps
//! box, [`locate`] resolves a backset, a time or a datastamp to an entry
//! point, [`verify`] checks a directory against itself, and [`events`] finds
//! an asset's in-band events (`emsg`, `prft`) with their transmission times.

pub mod descriptor;
pub mod events;
pub(crate) mod expiry;
pub mod index;
pub mod locate;
pub mod maps_reader;
pub mod naming;
pub mod playlists;
pub mod publisher;
pub mod reader;
pub mod retention;
pub mod store;
pub(crate) mod track_files;
pub mod track_view;
pub mod verify;

#[cfg(test)]
mod tests;
