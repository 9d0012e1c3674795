//! Flag definitions (the one place they live) and dispatch.

mod inspect;
mod locate;
mod segment;
mod verify;

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
    Locate(LocateArgs),
    Inspect(InspectArgs),
    Verify(VerifyArgs),
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
    /// Delete assets that end more than this long before the live edge
    /// (like DASH timeShiftBufferDepth). With --keep-assets, an asset is
    /// kept while either keeps it.
    #[arg(long, value_name = "DURATION")]
    pub keep: Option<String>,
    /// Keep only the newest N assets (like HLS hls_list_size).
    #[arg(long, value_name = "N")]
    pub keep_assets: Option<u64>,
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

/// Resolve a backset (or a transmission time, or a datastamp) to the asset,
/// the byte offset inside it and the key frame a viewer starts from.
///
/// The answer is the newest key frame at or before the target, so the
/// achieved backset is at least the one asked for and less than it plus one
/// GOP. Reading the asset's first `header_len` bytes and then the bytes from
/// `offset` on plays from that key frame. Only the memory-mapped index
/// (binary search) and the one asset's maps are read. Exit status 1 when
/// the target is older than the retained window (unless --clamp) or not
/// transmitted yet.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("target").required(true).args(["backset", "at", "datastamp"]))]
pub struct LocateArgs {
    /// The stream directory.
    pub outdir: PathBuf,
    /// How far behind live to start (30s, 1m30s, 2500ms).
    #[arg(long, value_name = "DURATION")]
    pub backset: Option<String>,
    /// A transmission time to start at (1h02m, 90s).
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// An amount of transmission data to start at (1GiB, 500000).
    #[arg(long, value_name = "BYTES")]
    pub datastamp: Option<String>,
    /// What --backset is measured from: the live edge (end of the newest
    /// asset) or the current wall-clock time, on the key frames' receive
    /// times.
    #[arg(long, value_enum, default_value_t = ClockArg::Live)]
    pub clock: ClockArg,
    /// Answer the oldest retained key frame when the target is older than the
    /// retained window, instead of failing.
    #[arg(long)]
    pub clamp: bool,
    /// Print one JSON object instead of a line of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClockArg {
    Live,
    Wall,
}

/// Check every asset of a stream directory against the index and against
/// its own maps: entry points are key frames, offsets point at `moof` boxes,
/// timestamps are continuous, datastamps increase and agree with sizes,
/// names are predictable, no sequence number is missing. Lists every problem
/// with the file and byte offset; exit status 1 if there is any.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The stream directory.
    pub outdir: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Segment(args) => segment::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Locate(args) => locate::run(args),
        Command::Verify(args) => verify::run(args),
    }
}

/// Exit status for an error: 2 for bad usage or input, 1 otherwise.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<backset::locate::LocateError>().is_some() {
        return 1;
    }
    match e.downcast_ref::<backset::Error>() {
        Some(err) if !err.is_bad_input() => 1,
        _ => 2,
    }
}
