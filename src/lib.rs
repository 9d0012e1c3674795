//! backset: cut a live fragmented-MP4 capture into self-contained media assets,
//! each carrying a timestamp map and a datastamp map of its entry points.
//!
//! Data flows one way, by stage:
//! - [`capture`]: the I/O-free core, capture bytes → boxes → fragments →
//!   pieces at key frames → finished assets with their maps;
//! - [`stream`]: the stream directory, published atomically and read by
//!   `locate`, `verify` and the server;
//! - [`http`]: the server and the client;
//! - [`policy`]: what backset each viewer is advised and draws.

#[cfg(feature = "store")]
pub mod bucket;
pub mod capture;
pub mod error;
pub mod http;
pub mod policy;
pub mod stream;
pub mod units;

pub use error::{Error, Result};
