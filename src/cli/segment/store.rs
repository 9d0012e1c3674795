//! `segment` onto an object store: where the spool is, starting the upload
//! and reporting how it ended.

use std::path::PathBuf;
use std::time::Duration;

use backset::bucket::publish::Publishing;
use backset::bucket::{Bucket, Location, StreamDir};
use backset::units::parse_duration_us;

use super::super::SegmentArgs;
use super::say;

/// The directory the publisher writes: OUTDIR itself, or the spool of a
/// store.
pub fn local_dir(args: &SegmentArgs) -> anyhow::Result<PathBuf> {
    Ok(match &args.outdir {
        StreamDir::Local(dir) => dir.clone(),
        StreamDir::Bucket(l) => args.spool.clone().unwrap_or_else(|| default_spool(l)),
    })
}

fn default_spool(l: &Location) -> PathBuf {
    let mut p = PathBuf::from("/var/tmp/backset-spool").join(&l.bucket);
    if !l.prefix.is_empty() {
        p.push(&l.prefix);
    }
    p
}

/// The upload, when OUTDIR is on a store.
pub fn start(args: &SegmentArgs) -> anyhow::Result<Option<Publishing>> {
    let StreamDir::Bucket(location) = &args.outdir else {
        return Ok(None);
    };
    // Checked before the lease is taken, so a bad flag costs nothing.
    parse_duration_us(&args.drain_timeout)?;
    let bucket = Bucket::connect(location)?;
    let spool = local_dir(args)?;
    let say_it: Box<dyn Fn(String) + Send> = Box::new(|m| say(format_args!("backset: {m}")));
    Ok(Some(Publishing::start(bucket, &spool, args.new, say_it)?))
}

/// Waits for the store to take the spool, and says how publishing went.
pub fn finish(publishing: Publishing, args: &SegmentArgs) -> backset::Result<()> {
    let timeout = parse_duration_us(&args.drain_timeout).unwrap_or(60_000_000);
    let outcome = publishing.finish(Duration::from_micros(timeout));
    let ms = |v: Option<u64>| v.map_or_else(|| "-".into(), |v| v.to_string());
    say(format_args!(
        "store: published {} assets to {}; complete → visible p50 {} ms, p99 {} ms",
        outcome.uploaded,
        args.outdir,
        ms(outcome.p50_ms),
        ms(outcome.p99_ms)
    ));
    if let Some(e) = outcome.error {
        return Err(e);
    }
    if outcome.backlog > 0 {
        return Err(backset::Error::Network(format!(
            "{}: {} published assets are not on the store yet; they wait in the spool {}, \
             and the next `segment` with this spool uploads them first",
            args.outdir,
            outcome.backlog,
            local_dir(args).map_or_else(|_| "?".into(), |p| p.display().to_string())
        )));
    }
    Ok(())
}
