//! The client: gets its backset parameters from a server, measures its
//! link and asks again, draws its backset, asks `locate` for the asset and
//! the key frame to start from, and writes one continuous fMP4 stream: the
//! initialisation once, the fragments from that key frame on, then the
//! following assets' fragments by predictable name, in order, as they are
//! published, while a virtual player counts the stalls a viewer would see.
//!
//! [`machine`] makes every decision on a clock it is given, `playback`
//! models the player, `static_host` reads a plain file server's
//! `stream.json` and index (`index.bin`, or an object store's head and
//! chunks) in place of `serve`'s answers, [`save`]
//! keeps what is fetched as a stream directory, [`trust`] bounds and checks
//! what a server says,
//! [`protocol`] is what the machine and `driver` say
//! to each other; the driver carries the decisions out over HTTP with real
//! time. The machine and its protocol are public: another driver (an
//! async one, a test harness) can run the same client.

pub(crate) mod driver;
pub mod machine;
pub(crate) mod playback;
pub mod protocol;
pub mod save;
mod static_host;
#[cfg(test)]
mod tests;
pub mod trust;

pub use driver::follow;
pub use machine::{Config, Machine, Report, Stopped};
pub use protocol::{Action, Clock, Fetch, Input, Reply, Request};
