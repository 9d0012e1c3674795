use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::out::outln;
use super::VerifyArgs;

pub fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    // A bar only for a person watching, never in a pipe or a log.
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
    if std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("verify {bar:40} {pos}/{len} assets {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
    }
    let report = backset::stream::verify::verify_dir(
        args.outdir.local("verify").map_err(backset::Error::Usage)?,
        &mut |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        },
    )?;
    bar.finish_and_clear();
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&report).context("encoding JSON")?
        )?;
    } else {
        for p in &report.problems {
            match p.offset {
                Some(o) => outln!("{} at byte {o}: {}", p.file, p.problem)?,
                None => outln!("{}: {}", p.file, p.problem)?,
            }
        }
        for n in &report.notes {
            outln!("note: {}: {}", n.file, n.problem)?;
        }
        outln!(
            "{} assets checked, {} problem(s)",
            report.assets_checked,
            report.problems.len()
        )?;
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
