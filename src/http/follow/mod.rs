//! The client: gets its backset parameters from a server, draws its
//! backset, asks `locate` for the asset and the key frame to start from,
//! and writes one continuous fMP4 stream: the initialisation once, the
//! fragments from that key frame on, then the following assets' fragments
//! by predictable name, in order, as they are published.
//!
//! [`machine`] makes every decision on a clock it is given; [`driver`]
//! carries them out over HTTP with real time.

pub mod driver;
pub mod machine;
#[cfg(test)]
mod tests;

pub use driver::follow;
pub use machine::{Action, Config, Input, Machine, Reply, Report, Request};
