//! In-process tests of the capture core: real captures fed to the
//! segmenter as bytes, no process, no disk. [`chunking`] holds the facts
//! about the events a capture gives however it arrives, [`round_trip`] the
//! fragment writer against the fragment parser, [`damage`] and
//! [`broken_fragments`] what the segmenter decides about damaged input,
//! [`tracks`] what the `Started` tracks and the assets' `ftyp` tell players,
//! [`ordering`] how samples of per-track fragments are placed in time.
//! [`support`] drives the segmenter as `backset segment` does and reads
//! assets back into samples; [`edit`] breaks captures.

mod broken_fragments;
mod chunking;
mod claims;
mod damage;
mod edit;
mod inband;
mod ordering;
mod round_trip;
pub(crate) mod support;
mod tracks;
