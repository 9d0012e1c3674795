//! In-process tests of the capture core: real captures fed to the
//! segmenter as bytes, no process, no disk.
