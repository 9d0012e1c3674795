use std::process::ExitCode;

use anyhow::Context;
use backset::capture::maps::Maps;
use serde::Serialize;

use super::out::outln;
use super::InspectArgs;

#[derive(Serialize)]
struct Report {
    asset: String,
    sequence: u64,
    timescale: u32,
    /// Seconds of transmission time.
    start: f64,
    duration: f64,
    datastamp: u64,
    entries: Vec<EntryReport>,
}

#[derive(Serialize)]
struct EntryReport {
    timestamp: f64,
    timestamp_ticks: u64,
    datastamp: u64,
    offset: u64,
    wallclock_us: u64,
}

pub fn run(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let maps = backset::stream::maps_reader::read_maps(&args.asset)?;
    let report = report(&args.asset.to_string_lossy(), &maps);
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&report).context("encoding JSON")?
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "{}: sequence {}, start {:.3} s, duration {:.3} s, datastamp {}, {} entry point(s)",
        report.asset,
        report.sequence,
        report.start,
        report.duration,
        report.datastamp,
        report.entries.len()
    )?;
    outln!(
        "{:>14} {:>14} {:>10} {:>20}",
        "timestamp(s)",
        "datastamp",
        "offset",
        "received(µs)"
    )?;
    for e in &report.entries {
        outln!(
            "{:>14.3} {:>14} {:>10} {:>20}",
            e.timestamp,
            e.datastamp,
            e.offset,
            e.wallclock_us
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn report(asset: &str, maps: &Maps) -> Report {
    let secs = |ticks: u64| ticks as f64 / f64::from(maps.timescale.max(1));
    Report {
        asset: asset.to_string(),
        sequence: maps.sequence,
        timescale: maps.timescale,
        start: secs(maps.start),
        duration: secs(maps.duration),
        datastamp: maps.start_datastamp,
        entries: maps
            .entries
            .iter()
            .map(|e| EntryReport {
                timestamp: secs(e.timestamp),
                timestamp_ticks: e.timestamp,
                datastamp: e.datastamp,
                offset: e.offset,
                wallclock_us: e.wallclock_us,
            })
            .collect(),
    }
}
