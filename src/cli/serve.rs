//! serve: the server's runtime, from its flags; from a store, the mirror
//! it serves and the thread that keeps the mirror in step.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use backset::bucket::mirror::Mirror;
use backset::bucket::{Bucket, Location, StreamDir};
use backset::units::{parse_duration_us, parse_size};

use super::ServeArgs;

/// How often the mirror asks the store for what is new.
const SYNC_EVERY: Duration = Duration::from_millis(200);
/// The longest wait between tries while the store is unreachable.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Descriptors kept back from the connection cap for the listener, the
/// files being answered and the runtime's own.
const SPARE_FDS: u64 = 64;

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    // The mirror syncs once before the server's runtime exists: the
    // store's client blocks on a runtime of its own.
    let replica = match &args.outdir {
        StreamDir::Local(dir) => {
            if args.mirror_dir.is_some() || args.mirror_window.is_some() {
                return Err(backset::Error::Usage(format!(
                    "{}: --mirror-dir and --mirror-window apply only to a stream directory on an object store",
                    dir.display()
                ))
                .into());
            }
            None
        }
        StreamDir::Bucket(location) => Some(Replica::start(location, &args)?),
    };
    let dir = match &replica {
        Some(r) => r.dir.clone(),
        None => args
            .outdir
            .local("serve")
            .map_err(backset::Error::Usage)?
            .clone(),
    };
    let served = serve(args, dir);
    drop(replica);
    served
}

/// A replica of a stream on a store: its mirror directory and the thread
/// that syncs it. Dropping it stops the thread and removes a directory it
/// made itself.
struct Replica {
    dir: PathBuf,
    /// The directory is this process's own (no --mirror-dir): removed at exit.
    owned: bool,
    stop: Arc<AtomicBool>,
}

impl Replica {
    /// Connects, syncs once (so the server starts with the stream), then
    /// leaves a thread syncing.
    fn start(location: &Location, args: &ServeArgs) -> anyhow::Result<Replica> {
        let bucket = Bucket::connect(location)?;
        let (dir, owned) = match &args.mirror_dir {
            Some(dir) => (dir.clone(), false),
            None => (
                std::env::temp_dir().join(format!("backset-mirror-{}", std::process::id())),
                true,
            ),
        };
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating the mirror directory {}", dir.display()))?;
        let replica = Replica {
            dir: dir.clone(),
            owned,
            stop: Arc::new(AtomicBool::new(false)),
        };
        let mut mirror = Mirror::new(bucket, &dir, args.mirror_window);
        let first = mirror
            .sync(now_us())
            .with_context(|| format!("mirroring {location} into {}", dir.display()))?;
        eprintln!(
            "backset: mirroring {location} into {} ({} assets fetched)",
            dir.display(),
            first.fetched
        );
        let stop = Arc::clone(&replica.stop);
        let location = location.to_string();
        std::thread::Builder::new()
            .name("mirror-sync".into())
            .spawn(move || keep_syncing(mirror, location, &stop))
            .context("starting the mirror's thread")?;
        Ok(replica)
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if self.owned {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Syncs every [`SYNC_EVERY`] until `stop`. A failing store is retried
/// with a backoff up to [`MAX_BACKOFF`], and said once per outage; the
/// server goes on serving what the mirror holds meanwhile.
fn keep_syncing(mut mirror: Mirror, location: String, stop: &AtomicBool) {
    let mut wait = SYNC_EVERY;
    let mut failing = false;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(wait);
        if stop.load(Ordering::Relaxed) {
            break;
        }
        match mirror.sync(now_us()) {
            Ok(done) => {
                if failing {
                    eprintln!("backset: {location} answers again; the mirror is in step");
                }
                if done.restarted {
                    eprintln!(
                        "backset: {location} holds a new transmission: the mirror started over on it"
                    );
                }
                failing = false;
                wait = SYNC_EVERY;
            }
            Err(e) => {
                if !failing {
                    eprintln!("backset: syncing {location}: {e}; serving what the mirror holds and retrying");
                }
                failing = true;
                wait = (wait * 2).min(MAX_BACKOFF);
            }
        }
    }
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn serve(args: ServeArgs, dir: PathBuf) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the server's runtime")?;
    let mut config = backset::http::serve::Config::new(dir, args.listen);
    config.cache_bytes = parse_size(&args.cache)?;
    config.max_viewers = args.max_viewers;
    config.audience = args.audience;
    config.shared_read_bytes = parse_size(&args.shared_reads)?;
    config.limits.header_timeout = Duration::from_micros(parse_duration_us(&args.header_timeout)?);
    config.limits.idle_timeout = Duration::from_micros(parse_duration_us(&args.idle_timeout)?);
    config.limits.max_header_bytes =
        usize::try_from(parse_size(&args.max_header_size)?).unwrap_or(usize::MAX);
    let fds = raise_descriptor_limit();
    config.limits.max_connections = args
        .max_connections
        .min(usize::try_from(fds.saturating_sub(SPARE_FDS)).unwrap_or(usize::MAX))
        .max(1);
    runtime.block_on(backset::http::serve::serve(config, |addr| {
        eprintln!("backset: serving on http://{addr}/");
    }))?;
    Ok(ExitCode::SUCCESS)
}

/// Raises this process's open-file limit to its hard limit (each
/// connection is a descriptor) and returns the limit now in force.
fn raise_descriptor_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            ..limit
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
            return raised.rlim_cur;
        }
    }
    limit.rlim_cur
}
