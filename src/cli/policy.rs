//! advise, draw, simulate: flags in, the policy module's values out.

use std::io::Read;
use std::process::ExitCode;

use anyhow::Context;
use backset::policy::advise::{advise as advise_for, region_share, Audience};
use backset::policy::draw::{known_distribution, Drawer};
use backset::policy::{Advice, Coefficients, DISTRIBUTION};
use backset::units::{parse_duration_us, parse_rate};
use backset::Error;
use serde::Serialize;

use super::out::{out, outln};
use super::{AdviseArgs, DrawArgs};

pub(super) fn seconds(text: &str) -> anyhow::Result<f64> {
    Ok(parse_duration_us(text)? as f64 / 1e6)
}

pub(super) fn usage(text: impl Into<String>) -> anyhow::Error {
    Error::Usage(text.into()).into()
}

pub fn advise(args: AdviseArgs) -> anyhow::Result<ExitCode> {
    let audience = match &args.facts {
        Some(file) => read_facts(file)?,
        None => audience_from_flags(&args)?,
    };
    audience.validate().map_err(usage)?;
    let advice = advise_for(&audience);
    #[derive(Serialize)]
    struct Out {
        #[serde(flatten)]
        advice: Advice,
        /// What `draw --distribution` checks.
        distribution: &'static str,
        coeffs: String,
    }
    if args.json {
        let out = Out {
            advice,
            distribution: DISTRIBUTION,
            coeffs: advice.coefficients.to_arg(),
        };
        outln!("{}", serde_json::to_string(&out).context("encoding JSON")?)?;
    } else {
        outln!("recommended  {:.3} s", advice.recommended_s)?;
        outln!("maximum      {:.3} s", advice.maximum_s)?;
        outln!("coefficients {}", advice.coefficients.to_arg())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The facts as a JSON object, from a file or (`-`) standard input.
fn read_facts(file: &str) -> anyhow::Result<Audience> {
    let mut text = String::new();
    if file == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading facts from standard input")?;
    } else {
        text = std::fs::read_to_string(file).map_err(Error::io(file))?;
    }
    serde_json::from_str::<Audience>(&text).map_err(|e| usage(format!("bad facts JSON: {e}")))
}

fn audience_from_flags(args: &AdviseArgs) -> anyhow::Result<Audience> {
    let share = same_region_share(args)?;
    let history = match &args.history {
        Some(list) => list
            .split(',')
            .map(|r| parse_rate(r).map_err(Into::into))
            .collect::<anyhow::Result<Vec<f64>>>()?,
        None => Vec::new(),
    };
    Ok(Audience {
        clients: args.clients,
        same_region_share: share,
        throughput_bps: Some(parse_rate(
            args.throughput
                .as_deref()
                .ok_or_else(|| usage("--throughput is needed (or --facts)"))?,
        )?),
        history_bps: history,
        bitrate_bps: parse_rate(
            args.bitrate
                .as_deref()
                .ok_or_else(|| usage("--bitrate is needed (or --facts)"))?,
        )?,
        asset_duration_s: seconds(&args.asset_duration)?,
        window_s: seconds(&args.window)?,
        dip_horizon_s: seconds(&args.dip_horizon)?,
    })
}

/// --regions with --region, or --same-region, or none (0).
fn same_region_share(args: &AdviseArgs) -> anyhow::Result<f64> {
    Ok(match (&args.regions, &args.region, args.same_region) {
        (Some(list), Some(region), _) => {
            let counts = list
                .split(',')
                .map(|kv| {
                    let (k, v) = kv
                        .split_once('=')
                        .ok_or_else(|| usage(format!("bad region count {kv:?}: write eu=120")))?;
                    let n = v
                        .trim()
                        .parse::<u64>()
                        .map_err(|_| usage(format!("bad count in {kv:?}")))?;
                    Ok((k.trim().to_string(), n))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            region_share(&counts, region)
        }
        (_, _, Some(share)) => share,
        _ => 0.0,
    })
}

pub fn draw(args: DrawArgs) -> anyhow::Result<ExitCode> {
    if let Some(name) = &args.distribution {
        known_distribution(name)?;
    }
    let advice = Advice {
        recommended_s: seconds(&args.recommended)?,
        maximum_s: seconds(&args.max)?,
        coefficients: Coefficients::parse(&args.coeffs).map_err(usage)?,
    };
    if advice.maximum_s < advice.recommended_s {
        return Err(usage("--max must not be below --recommended"));
    }
    let mut drawer = match &args.client {
        Some(id) => Drawer::for_client(id),
        None => Drawer::new(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
                ^ u64::from(std::process::id()),
        ),
    };
    let backsets: Vec<f64> = (0..args.count).map(|_| drawer.draw(&advice)).collect();
    if args.json {
        #[derive(Serialize)]
        struct Out<'a> {
            recommended: f64,
            maximum: f64,
            backsets: &'a [f64],
        }
        let out = Out {
            recommended: advice.recommended_s,
            maximum: advice.maximum_s,
            backsets: &backsets,
        };
        outln!("{}", serde_json::to_string(&out).context("encoding JSON")?)?;
    } else {
        let mut text = String::new();
        for b in &backsets {
            text.push_str(&format!("{b:.3}\n"));
        }
        out!("{text}")?;
    }
    Ok(ExitCode::SUCCESS)
}
