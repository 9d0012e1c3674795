//! The readers on an object store, in-process: a stream directory really
//! segmented from a fixture, copied into an in-memory bucket in the store's
//! form ([`support`]), then read by `locate` and `verify` on the bucket and
//! compared with the same commands on the local directory.

mod reader;
pub(crate) mod support;
mod verify;
