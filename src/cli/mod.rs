//! Flag definitions (the one place they live) and dispatch.

#[cfg(feature = "follow")]
mod follow;
mod inspect;
mod locate;
mod out;
mod policy;
mod segment;
#[cfg(feature = "serve")]
mod serve;
#[cfg(feature = "simulate")]
mod simulate;
mod verify;

#[cfg(test)]
mod man;

use std::path::PathBuf;

use backset::bucket::StreamDir;
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
    Advise(AdviseArgs),
    Draw(DrawArgs),
    #[cfg(feature = "simulate")]
    Simulate(SimulateArgs),
    #[cfg(feature = "serve")]
    Serve(ServeArgs),
    #[cfg(feature = "follow")]
    Follow(FollowArgs),
}

/// Read a fragmented-MP4 or MPEG-TS capture from a file, standard input or
/// UDP and cut it, at key frames, into media assets published atomically
/// in OUTDIR.
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
    /// The stream directory (created if missing), or `s3://bucket/prefix`
    /// on an S3-compatible store, configured by AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY, AWS_REGION and AWS_ENDPOINT_URL (an http://
    /// endpoint is allowed as given). Objects have the files' names; the
    /// index is `index-head.bin` plus immutable 1024-record chunks.
    #[arg(value_parser = stream_dir)]
    pub outdir: StreamDir,
    /// The capture: a file, `-` (the default) for standard input, or
    /// `udp://host:port` to receive datagrams there (a multicast group as
    /// host is joined). Fragmented MP4, or MPEG-TS (told by its sync
    /// bytes): H.264/HEVC and AAC become the same fMP4 assets, SCTE-35
    /// sections become `emsg` boxes.
    #[arg(default_value = "-")]
    pub input: String,
    /// End the input once no datagram has come for this long after the
    /// first (UDP input only; without it a UDP input ends on SIGINT or
    /// SIGTERM).
    #[arg(long, value_name = "DURATION")]
    pub idle_timeout: Option<String>,
    /// Start a new asset at the first key frame at or after the current
    /// asset's start plus this duration (30s, 1m30s, 2500ms, 1.5s).
    #[arg(long, default_value = "2s", value_name = "DURATION")]
    pub interval: String,
    /// Start a new asset at the first key frame once the current asset holds
    /// this many bytes of fragments (512KiB, 4MB, 1000000). With --interval,
    /// whichever comes first.
    #[arg(long, value_name = "BYTES")]
    pub size: Option<String>,
    /// Safety cut for a stream whose key frames stop: once the open asset is
    /// this long, cut it at the next fragment even without a key frame
    /// (default twice --interval with --hls or --dash, as the HLS target
    /// duration is made from it; else 60s, or twice --interval if more).
    /// The asset after such a cut starts without a key frame: its maps list
    /// no entry point, players may not start from it and locate never
    /// points into it; the next key frame ends it and starts an ordinary
    /// asset.
    #[arg(long, value_name = "DURATION")]
    pub max_asset_duration: Option<String>,
    /// Safety cut like --max-asset-duration, once the open asset holds this
    /// many bytes of fragments (default 256MiB, or twice --size if more).
    /// It bounds the memory an asset without key frames takes.
    #[arg(long, value_name = "BYTES")]
    pub max_asset_size: Option<String>,
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
    /// Keep OUTDIR/live.m3u8 (HLS multivariant playlist) and the media
    /// playlist it names, live-av.m3u8 (CMAF byte ranges), up to date after
    /// each publish.
    #[arg(long)]
    pub hls: bool,
    /// Keep OUTDIR/live.mpd (DASH) up to date after each publish.
    #[arg(long)]
    pub dash: bool,
    /// Make each publish durable (fsync the asset and the directory) before
    /// its index record is appended.
    #[arg(long)]
    pub fsync: bool,
    /// Print only warnings and errors, not a line per published asset.
    #[arg(long, short)]
    pub quiet: bool,
    /// With an `s3://` OUTDIR: the local stream directory assets are
    /// published into before they are uploaded, and where they wait while
    /// the store is slow or unreachable. A restart with the same spool
    /// uploads what the store lacks first. Default:
    /// /var/tmp/backset-spool/BUCKET/PREFIX.
    #[arg(long, value_name = "DIR")]
    pub spool: Option<PathBuf>,
    /// With an `s3://` OUTDIR: how long to wait, once the capture has
    /// ended, for the store to take what the spool still holds (exit
    /// status 1 if it does not; the spool keeps it).
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub drain_timeout: String,
}

/// Print an asset's sequence number, start, duration and maps: the
/// timestamp, datastamp, byte offset and receive time of each entry point.
///
/// The asset may be an object, s3://bucket/prefix/asset-00000003.mp4,
/// fetched whole from the store named by AWS_ACCESS_KEY_ID,
/// AWS_SECRET_ACCESS_KEY, AWS_REGION and AWS_ENDPOINT_URL (an S3-compatible
/// store; an http:// endpoint is allowed).
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The asset file, or an s3:// URL of an asset object.
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
///
/// The stream directory may be s3://bucket/prefix on the store named by
/// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION and AWS_ENDPOINT_URL
/// (an S3-compatible store; an http:// endpoint is allowed): the index is
/// then searched with O(log n) ranged reads of its chunks, never a listing,
/// and the path printed is the asset's s3:// URL.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("target").required(true).args(["backset", "at", "datastamp"]))]
pub struct LocateArgs {
    /// The stream directory.
    #[arg(value_parser = stream_dir)]
    pub outdir: StreamDir,
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
///
/// The stream directory may be s3://bucket/prefix on the store named by
/// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION and AWS_ENDPOINT_URL
/// (an S3-compatible store; an http:// endpoint is allowed): every index
/// chunk and asset object is read whole, each asset's .maps object is
/// checked against its maps box, and the prefix is listed once for objects
/// the index does not account for.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The stream directory.
    #[arg(value_parser = stream_dir)]
    pub outdir: StreamDir,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The server side of the backset policy: from audience facts, a
/// recommended backset, a maximum backset and the coefficients of the
/// distribution this client draws from.
///
/// The model: the client's low throughput is min(current, harmonic mean of
/// the current and historical samples), at least 1% of the bitrate (a client
/// never measured: the bitrate); headroom h = low / bitrate. Shortfall u =
/// root mean square of max(0, 1 − sample / 2·bitrate): how far the samples
/// fall short of twice the bitrate, 0 to 1. Recommended R = max(3A, A + A/h +
/// D·max(0, 1 − h)) + 4A·u (A asset duration, D dip horizon): the start
/// asset, fetching the next one at the low throughput, and the buffer a dip
/// of D seconds drains, never under three assets, plus slack for a client
/// without room for dips. More throughput, now or in any sample, never gives
/// a larger R, nor does a steadier history. Spread s = min(1, log10(1 +
/// clients)/4) · (0.5 + 0.5·same-region share): a large or clustered
/// audience is spread over more assets: less = 0.05 + 0.1s, more = 0.1 +
/// 0.2s, down = A(0.5 + s), up = A(1 + 2s). Maximum M = min(window − A, R +
/// 3·up). With --json the output also names the distribution these
/// parameterise (backset-point-mass-exp-tails/1), which `draw
/// --distribution` checks. Facts come as
/// flags or as a JSON object on standard input (--facts -).
#[derive(Debug, Args)]
pub struct AdviseArgs {
    /// Clients currently downloading the transmission.
    #[arg(long, default_value_t = 1)]
    pub clients: u64,
    /// Share (0 to 1) of those clients in this client's region.
    #[arg(long, value_name = "SHARE", conflicts_with = "regions")]
    pub same_region: Option<f64>,
    /// Clients per region, like eu=120,us=40; with --region.
    #[arg(long, value_name = "LIST", requires = "region")]
    pub regions: Option<String>,
    /// This client's region, one of --regions.
    #[arg(long)]
    pub region: Option<String>,
    /// This client's measured throughput now (3Mbps, 500kbps).
    #[arg(long, value_name = "RATE")]
    pub throughput: Option<String>,
    /// This client's historical throughput samples, comma-separated.
    #[arg(long, value_name = "RATES")]
    pub history: Option<String>,
    /// The stream's bitrate.
    #[arg(long, value_name = "RATE")]
    pub bitrate: Option<String>,
    /// Duration of one asset.
    #[arg(long, default_value = "2s", value_name = "DURATION")]
    pub asset_duration: String,
    /// The retained window: no backset may reach past it.
    #[arg(long, default_value = "60s", value_name = "DURATION")]
    pub window: String,
    /// How long a throughput dip the buffer must ride out.
    #[arg(long, default_value = "20s", value_name = "DURATION")]
    pub dip_horizon: String,
    /// Read the facts as a JSON object from FILE (`-`: standard input)
    /// instead of flags: clients, same_region_share, throughput_bps,
    /// history_bps, bitrate_bps, asset_duration_s, window_s, dip_horizon_s.
    #[arg(long, value_name = "FILE")]
    pub facts: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The client side: draw a backset from the server's recommended and
/// maximum backsets and coefficients. Most draws equal the recommended
/// backset; a share `less` falls below it (never below zero), a share `more`
/// above it (always below the maximum). With --client the draws are
/// reproducible: the same id always draws the same backsets.
#[derive(Debug, Args)]
pub struct DrawArgs {
    #[arg(long, value_name = "DURATION")]
    pub recommended: String,
    #[arg(long, value_name = "DURATION")]
    pub max: String,
    /// less=SHARE,more=SHARE,down=DURATION,up=DURATION, as `advise` prints.
    #[arg(long, value_name = "COEFFS")]
    pub coeffs: String,
    /// The distribution the advice parameterises, as `advise --json` names
    /// it; one this build does not draw from is refused. Default: the one
    /// it draws from (backset-point-mass-exp-tails/1).
    #[arg(long, value_name = "NAME")]
    pub distribution: Option<String>,
    /// Client id that seeds the draws; without it they are unpredictable.
    #[arg(long)]
    pub client: Option<String>,
    /// Number of draws.
    #[arg(short = 'n', default_value_t = 1)]
    pub count: usize,
    /// Print one JSON object instead of one backset (seconds) per line.
    #[arg(long)]
    pub json: bool,
}

/// Simulate a live stream and its viewers and compare where they start:
/// (a) at the live edge, (b) three assets back for all (hls.js's default),
/// (c) the backset policy. Reports rebuffering events and seconds per
/// viewer, the share of viewers that stalled, start-up delay, mean latency
/// behind live, and the peak number of viewers fetching one asset at the
/// same moment. Deterministic for a seed.
#[cfg(feature = "simulate")]
#[derive(Debug, Args)]
pub struct SimulateArgs {
    #[arg(long, default_value_t = 200)]
    pub viewers: usize,
    /// Length of the broadcast.
    #[arg(long, default_value = "10m", value_name = "DURATION")]
    pub duration: String,
    /// Viewers join uniformly over this span, from when the retained window
    /// is full.
    #[arg(long, default_value = "2m", value_name = "DURATION")]
    pub join_over: String,
    #[arg(long, default_value = "2s", value_name = "DURATION")]
    pub asset_duration: String,
    #[arg(long, default_value = "3Mbps", value_name = "RATE")]
    pub bitrate: String,
    /// Mean throughput of the viewers (log-normal across viewers).
    #[arg(long, default_value = "8Mbps", value_name = "RATE")]
    pub throughput: String,
    /// Coefficient of variation of mean throughput across viewers.
    #[arg(long, default_value_t = 0.6)]
    pub viewer_cv: f64,
    /// Coefficient of variation of each viewer's throughput over time.
    #[arg(long, default_value_t = 0.5)]
    pub cv: f64,
    /// Correlation of each step's throughput with the last (log space):
    /// how long dips last.
    #[arg(long, default_value_t = 0.9)]
    pub correlation: f64,
    /// Throughput changes every STEP.
    #[arg(long, default_value = "1s", value_name = "DURATION")]
    pub step: String,
    /// Measured throughput instead of the model: a CSV of bits/s, one
    /// column per series, one row per --step (a header line is skipped).
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// How far ahead of its play position a viewer fetches.
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub max_buffer: String,
    /// The retained window.
    #[arg(long, default_value = "2m", value_name = "DURATION")]
    pub window: String,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Write an SVG chart: the policy's backset histogram and each
    /// strategy's per-asset request load.
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
}

/// Serve a stream directory over HTTP while `segment` writes it.
///
/// URL layout: each asset at /<asset name>, whole or by byte range (Range,
/// 206, Accept-Ranges, ETag, Cache-Control for immutable assets; 404 before
/// it is published and after it expires); /backset.json, this client's
/// recommended and maximum backset and coefficients (from `advise`) with the
/// live edge, asset duration and naming pattern; /locate?backset=30s (or
/// at=, datastamp=, clamp=1) as `locate --json`; /live.m3u8 (HLS
/// multivariant, naming /live-av.m3u8, the media playlist) and /live.mpd;
/// /stream.json and /index.bin. Nothing else is served.
///
/// Audience facts kept for `advise`: clients downloading now (seen within 30
/// s), each client's throughput measured on every asset response of 64 KiB
/// or more (bytes over the time to hand them to the connection) with its
/// last 32 measurements as history, and a proximity signal: the X-Region
/// header a CDN sets, else the client's network (/24 for IPv4, /48 for
/// IPv6). A client is known by its X-Backset-Client header (or ?client= on
/// /backset.json), else its address.
#[cfg(feature = "serve")]
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The stream directory: a local folder, or `s3://bucket/prefix` on an
    /// S3-compatible object store, configured by the standard AWS
    /// variables: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION
    /// (default us-east-1) and AWS_ENDPOINT_URL for a store other than
    /// AWS's (an http:// endpoint is allowed as given). From a store, serve
    /// is a stateless replica: it mirrors the stream into a local directory
    /// (--mirror-dir), syncing every 200 ms, and serves that directory as
    /// it serves any other; while the store is unreachable it goes on
    /// serving what it holds and retries. Any number of replicas may serve
    /// one store (with --audience to share the audience).
    #[arg(value_parser = stream_dir)]
    pub outdir: StreamDir,
    /// Address and port to listen on (port 0 picks a free one; the address
    /// is printed on standard error).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Memory for the most recently requested assets (a live audience asks
    /// for the same few near the live edge); they are answered from memory
    /// instead of their files. 0 serves every request from its file.
    #[arg(long, value_name = "SIZE", default_value = "64MiB")]
    pub cache: String,
    /// Viewers the audience log holds at most; the least recently seen
    /// goes first. Bounds the server's memory whatever ids clients send.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub max_viewers: usize,
    /// Keep the audience facts (viewers per region, each viewer's
    /// throughput history, its player's CMCD) in Redis, shared by every
    /// serve replica of the stream, instead of in this process: each
    /// replica then advises from the whole audience. Keys live under
    /// backset:audience:, bounded by --max-viewers and expiring with the
    /// viewers; use one database per stream.
    #[arg(long, value_name = "redis://HOST:PORT/DB")]
    pub audience: Option<String>,
    /// Memory the asset reads shared by simultaneous requests may hold
    /// together (one read per asset, whatever the number of requests
    /// waiting for it, cached or not). Past it, answers are read from their
    /// files 64 KiB at a time.
    #[arg(long, value_name = "SIZE", default_value = "32MiB")]
    pub shared_reads: String,
    /// Close a connection that has not sent a whole request head this long
    /// after connecting or after its previous answer.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub header_timeout: String,
    /// Close a connection that has moved no byte either way this long
    /// (idle keep-alive, or a peer that stopped reading or sending).
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub idle_timeout: String,
    /// Open connections at most (lowered to what the descriptor limit
    /// allows). At the cap, the connection idle the longest is closed to
    /// make room; a new one is refused only if all are answering.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Bytes a request head (request line and headers) may take; a longer
    /// one is answered 431 and the connection closed. At least 8KiB.
    #[arg(long, value_name = "SIZE", default_value = "32KiB")]
    pub max_header_size: String,
    /// With an s3:// stream directory: keep the mirror in DIR (created if
    /// missing, kept at exit; a mirror of the same transmission left there
    /// is continued, one of another is replaced). Default: a new directory
    /// under the system's temporary directory, removed at exit.
    #[arg(long, value_name = "DIR")]
    pub mirror_dir: Option<std::path::PathBuf>,
    /// With an s3:// stream directory: mirror (and serve) at most the
    /// newest N assets rather than all the store retains; older ones are
    /// served by the store itself or not at all. Default: all retained.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub mirror_window: Option<u64>,
}

/// Follow a stream served by `backset serve`, or by any static file server
/// or CDN serving its directory, as one viewer, from the backset advised
/// to it, writing one continuous fMP4 stream to standard output.
///
/// Gets this viewer's backset parameters (and the id the server issues it),
/// fetches the newest asset to measure the link, asks again with that
/// measurement, draws a backset from the advice, finds the asset and the key
/// frame in the asset's own maps, and writes the initialisation, the
/// fragments from that key frame on, then the following assets' fragments
/// in order as they are published. Every
/// request carries CMCD (session id, measured throughput, buffer, buffer
/// starved, starting up). A virtual player starts when the first fragments
/// are written and plays at real speed: a stall is its playhead reaching the
/// end of what was written. Exits 0 after the last asset once the
/// transmission has ended, after --for, or when the reader of standard
/// output goes away. The achieved backset, each stall and a summary are
/// reported on standard error; --report writes the summary as JSON.
///
/// Nothing the server sends is trusted. A JSON answer over 1 MiB, an asset
/// over 512 MiB, a value out of range (a negative or non-finite duration, a
/// recommended backset over the maximum, a sequence with no successor, an
/// entry point outside its asset or window, a prefix that is no file name)
/// end the run with exit status 2. A server unreachable, or too slow (each
/// request must end within 30 s), for longer than --retry-for: exit 1.
///
/// A host with no /backset.json (a 404 there) is a static host: follow then
/// reads stream.json, finds the live edge and the entry point in index.bin
/// with a few ranged GETs (never the whole index) and the assets' .maps
/// files, and advises itself as serve would a viewer it knows nothing of
/// but its measured throughput. The host must answer Range requests.
#[cfg(feature = "follow")]
#[derive(Debug, Args)]
pub struct FollowArgs {
    /// The server's root, like http://127.0.0.1:8080/
    pub url: String,
    /// Start this far behind live instead of measuring the link and drawing
    /// a backset.
    #[arg(long, value_name = "DURATION")]
    pub backset: Option<String>,
    /// What the backset is measured from: the live edge (end of the newest
    /// asset) or the current wall-clock time, on the key frames' receive
    /// times.
    #[arg(long, value_enum, default_value_t = ClockArg::Live)]
    pub clock: ClockArg,
    /// Client id: seeds the draw (the same id draws the same backset from
    /// the same advice). Sent until the server issues this viewer its own
    /// id; an id the server issued earlier keeps the viewer's history.
    #[arg(long)]
    pub client: Option<String>,
    /// How long to keep retrying an unreachable server.
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub retry_for: String,
    /// Stop after following this long (exit 0).
    #[arg(long = "for", value_name = "DURATION")]
    pub run_for: Option<String>,
    /// At exit, write a JSON report here: client id, advice, drawn and
    /// achieved backsets, assets followed, stalls and stalled seconds,
    /// measured throughputs, distribution.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Also keep every asset followed in DIR, as a stream directory that
    /// locate, verify and serve read (assets, their maps, index.bin,
    /// stream.json). A DIR an earlier run saved into is continued from its
    /// next asset, without drawing a backset; an asset that expired before
    /// it could be kept ends the run (an index cannot skip it).
    #[arg(long, value_name = "DIR")]
    pub save: Option<PathBuf>,
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Segment(args) => segment::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Locate(args) => locate::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Advise(args) => policy::advise(args),
        Command::Draw(args) => policy::draw(args),
        #[cfg(feature = "simulate")]
        Command::Simulate(args) => simulate::run(args),
        #[cfg(feature = "serve")]
        Command::Serve(args) => serve::run(args),
        #[cfg(feature = "follow")]
        Command::Follow(args) => follow::run(args),
    }
}

pub use out::reader_gone;

/// Exit status for an error: the library's error says (2 for bad usage or
/// input, 1 for the machine, the network, backset itself); a `locate` "no"
/// is 1; anything else is the machine's (1): reading input, writing a
/// report, starting a runtime. Bad flags are `Error::Usage`, or clap's own.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<backset::stream::locate::LocateError>()
        .is_some()
    {
        return 1;
    }
    e.downcast_ref::<backset::Error>()
        .map_or(1, backset::Error::exit_code)
}

/// A stream directory: a local folder or `s3://bucket/prefix`; any other
/// URL is refused by name rather than taken for a folder called `gs:`.
fn stream_dir(given: &str) -> Result<StreamDir, String> {
    StreamDir::parse(given)
}
