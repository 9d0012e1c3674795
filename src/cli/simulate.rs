//! simulate: flags in, the simulation's report out (a table, JSON, a chart).

use std::process::ExitCode;

use anyhow::Context;
use backset::policy::simulate::{simulate as run_simulation, Config, Report, Traces};
use backset::units::parse_rate;
use backset::Error;

use super::out::outln;
use super::policy::{seconds, usage};
use super::SimulateArgs;

pub fn run(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let step_s = seconds(&args.step)?;
    let traces = match &args.trace {
        Some(path) => Traces::Measured {
            columns: read_trace(path)?,
            step_s,
        },
        None => Traces::Model {
            mean_bps: parse_rate(&args.throughput)?,
            viewer_cv: args.viewer_cv,
            cv: args.cv,
            correlation: args.correlation,
            step_s,
        },
    };
    let config = Config {
        viewers: args.viewers,
        duration_s: seconds(&args.duration)?,
        join_over_s: seconds(&args.join_over)?,
        asset_duration_s: seconds(&args.asset_duration)?,
        bitrate_bps: parse_rate(&args.bitrate)?,
        traces,
        max_buffer_s: seconds(&args.max_buffer)?,
        window_s: seconds(&args.window)?,
        seed: args.seed,
    };
    if config.viewers == 0
        || config.asset_duration_s <= 0.0
        || config.duration_s <= 0.0
        || step_s <= 0.0
    {
        return Err(usage(
            "viewers, duration, asset duration and step must be positive",
        ));
    }
    let report = run_simulation(&config);
    if let Some(path) = &args.plot {
        let svg = backset::policy::plot::svg(&report, config.asset_duration_s)
            .map_err(|e| anyhow::anyhow!(e))?;
        std::fs::write(path, svg).map_err(Error::io(path))?;
    }
    if args.json {
        outln!(
            "{}",
            serde_json::to_string(&report).context("encoding JSON")?
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "{} viewers, {} assets of {} s at {}",
        report.viewers,
        report.assets,
        config.asset_duration_s,
        args.bitrate
    )?;
    table(&report)?;
    Ok(ExitCode::SUCCESS)
}

/// One line per strategy, under a header.
fn table(report: &Report) -> anyhow::Result<()> {
    outln!(
        "{:<20} {:>13} {:>16} {:>10} {:>10} {:>10} {:>15} {:>15}",
        "strategy",
        "stalls/viewer",
        "stalled s/viewer",
        "% stalled",
        "startup s",
        "latency s",
        "peak req/asset",
        "peak join req"
    )?;
    for o in &report.outcomes {
        outln!(
            "{:<20} {:>13.2} {:>16.2} {:>10.1} {:>10.2} {:>10.2} {:>15} {:>15}",
            o.strategy.label(),
            o.rebuffer_events,
            o.rebuffer_s,
            o.viewers_stalled * 100.0,
            o.startup_s,
            o.latency_s,
            o.peak_requests,
            o.peak_join_requests
        )?;
    }
    Ok(())
}

/// Columns of bits/s; a first line that does not parse is a header.
fn read_trace(path: &std::path::Path) -> anyhow::Result<Vec<Vec<f64>>> {
    let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
    let mut columns: Vec<Vec<f64>> = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let cells: Result<Vec<f64>, _> = line.split(',').map(|c| c.trim().parse::<f64>()).collect();
        let Ok(cells) = cells else {
            if n == 0 {
                continue;
            }
            return Err(usage(format!(
                "{}: line {}: not a number",
                path.display(),
                n + 1
            )));
        };
        if columns.is_empty() {
            columns = vec![Vec::new(); cells.len()];
        }
        if cells.len() != columns.len() {
            return Err(usage(format!(
                "{}: line {}: {} columns, expected {}",
                path.display(),
                n + 1,
                cells.len(),
                columns.len()
            )));
        }
        for (c, v) in columns.iter_mut().zip(cells) {
            c.push(v);
        }
    }
    if columns.is_empty() || columns[0].is_empty() {
        return Err(usage(format!("{}: no throughput samples", path.display())));
    }
    Ok(columns)
}
