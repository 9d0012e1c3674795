//! `verify` on a bucket: clean where the local directory is, and the
//! damage a store can hold named by object.
