//! serve: the server's runtime, from its flags; from a store, over the
//! replica's mirror (`bucket::mirror::replica`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use backset::bucket::mirror::replica::Replica;
use backset::bucket::StreamDir;
use backset::units::{parse_duration_us, parse_size};

use super::ServeArgs;

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
        StreamDir::Bucket(location) => Some(Replica::start(
            location,
            args.mirror_dir.as_deref(),
            args.mirror_window,
            Box::new(|m| eprintln!("backset: {m}")),
        )?),
    };
    let dir = match &replica {
        Some(r) => r.dir().to_path_buf(),
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
