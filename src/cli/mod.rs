//! Flag definitions (the one place they live) and dispatch.

mod inspect;
mod segment;

#[cfg(test)]
mod man;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Cut a live fragmented-MP4 capture into self-contained media assets with
/// timestamp and datastamp maps, and find where a viewer set back from live
/// should start.
#[derive(Debug, Parser)]
#[command(name = "backset", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Segment(SegmentArgs),
    Inspect(InspectArgs),
}

/// Read a fragmented-MP4 capture from a file or standard input and cut it,
/// at key frames, into media assets published atomically in OUTDIR.
///
/// Each asset is `ftyp` + `moov` (the capture's own), a maps box (timestamp
/// and datastamp of every entry point), then `moof`+`mdat` fragments; every
/// video key frame begins a fragment. Assets are named `<prefix>-<N, 8
/// digits>.mp4`, N from 0, written under a temporary name and renamed into
/// place, then recorded in OUTDIR/index.bin. OUTDIR/stream.json describes
/// the stream and says when the transmission has ended. On end of input,
/// SIGINT or SIGTERM the last asset is published and the exit status is 0.
/// Exit status 2: bad usage or bad input (the message names the byte offset
/// and box).
#[derive(Debug, Args)]
pub struct SegmentArgs {
    /// The stream directory (created if missing).
    pub outdir: PathBuf,
    /// The capture: a file, or `-` (the default) for standard input.
    #[arg(default_value = "-")]
    pub input: String,
    /// Start a new asset at the first key frame at or after the current
    /// asset's start plus this duration (30s, 1m30s, 2500ms, 1.5s).
    #[arg(long, default_value = "2s", value_name = "DURATION")]
    pub interval: String,
    /// Start a new asset at the first key frame once the current asset holds
    /// this many bytes of fragments (512KiB, 4MB, 1000000). With --interval,
    /// whichever comes first.
    #[arg(long, value_name = "BYTES")]
    pub size: Option<String>,
    /// File name prefix of the assets.
    #[arg(long, default_value = "asset")]
    pub prefix: String,
    /// Start a new transmission: remove the index, descriptor and assets a
    /// previous run left in OUTDIR instead of continuing it.
    #[arg(long)]
    pub new: bool,
    /// Make each publish durable (fsync the asset and the directory) before
    /// its index record is appended.
    #[arg(long)]
    pub fsync: bool,
    /// Print only warnings and errors, not a line per published asset.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Print an asset's sequence number, start, duration and maps: the
/// timestamp, datastamp, byte offset and receive time of each entry point.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The asset file.
    pub asset: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Segment(args) => segment::run(args),
        Command::Inspect(args) => inspect::run(args),
    }
}

/// Exit status for an error: 2 for bad usage or input, 1 otherwise.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<backset::Error>() {
        Some(err) if !err.is_bad_input() => 1,
        _ => 2,
    }
}
