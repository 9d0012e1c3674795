//! follow: the client's configuration from its flags, its report on stderr
//! and, with --report, as JSON in a file.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use backset::http::follow::{Clock, Config, Report, Stopped};
use backset::units::parse_duration_us;

use super::{ClockArg, FollowArgs};

pub fn run(args: FollowArgs) -> anyhow::Result<ExitCode> {
    let client = args.client.unwrap_or_else(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        format!("follow-{}-{nanos}", std::process::id())
    });
    let duration = |text: &str| parse_duration_us(text).map(Duration::from_micros);
    let config = Config {
        url: args.url,
        client,
        backset_s: args
            .backset
            .as_deref()
            .map(duration)
            .transpose()?
            .map(|d| d.as_secs_f64()),
        retry_for: duration(&args.retry_for)?,
        clock: match args.clock {
            ClockArg::Live => Clock::Live,
            ClockArg::Wall => Clock::Wall,
        },
        run_for: args.run_for.as_deref().map(duration).transpose()?,
        save: args.save,
        resume_from: None,
        // The driver reads the wall clock when it starts.
        epoch_us: 0,
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut log = std::io::stderr();
    let report = backset::http::follow::follow(&config, &mut out, &mut log)?;
    let _ = writeln!(log, "backset: {}", summary(&report));
    if let Some(path) = args.report {
        let json = serde_json::to_string_pretty(&report).context("encoding the report")?;
        std::fs::write(&path, json + "\n")
            .with_context(|| format!("writing the report to {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn summary(report: &Report) -> String {
    format!(
        "followed assets {}..={}, backset {:.3} s, {} stall(s), {:.3} s stalled{}",
        report.first_sequence,
        report.last_sequence,
        report.achieved_s,
        report.stalls,
        report.stalled_s,
        if report.stopped == Stopped::Closed {
            ", output closed"
        } else {
            ""
        }
    )
}
