//! S3-compatible object storage as a stream directory (`s3://bucket/prefix`).
//!
//! The stream's objects have the names its files have on disk, except the
//! index: objects cannot be appended to, so it is kept as immutable chunks
//! and a small head object ([`index_form`]). [`location`] parses the URL,
//! [`client`] talks to the store (through the `object_store` crate,
//! configured by the standard `AWS_*` variables).

pub mod client;
pub mod index_form;
pub mod location;
pub mod mirror;
pub mod publish;
pub mod stream_reader;
pub mod verify;

#[cfg(test)]
mod tests;

pub use client::Bucket;
pub use location::{Location, StreamDir};
