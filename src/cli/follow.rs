//! follow: the client's configuration from its flags, its report on stderr.

use std::process::ExitCode;
use std::time::Duration;

use backset::units::parse_duration_us;

use super::FollowArgs;

pub fn run(args: FollowArgs) -> anyhow::Result<ExitCode> {
    let client = args.client.unwrap_or_else(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        format!("follow-{}-{nanos}", std::process::id())
    });
    let config = backset::http::follow::Config {
        url: args.url,
        client,
        backset_s: args
            .backset
            .as_deref()
            .map(parse_duration_us)
            .transpose()?
            .map(|us| us as f64 / 1e6),
        retry_for: Duration::from_micros(parse_duration_us(&args.retry_for)?),
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut log = std::io::stderr();
    let report = backset::http::follow::follow(&config, &mut out, &mut log)?;
    let _ = {
        use std::io::Write;
        writeln!(
            log,
            "backset: followed assets {}..={}, backset {:.3} s, {} stall(s){}",
            report.first_sequence,
            report.last_sequence,
            report.backset_achieved_s,
            report.stalls,
            if report.output_closed {
                ", output closed"
            } else {
                ""
            }
        )
    };
    Ok(ExitCode::SUCCESS)
}
