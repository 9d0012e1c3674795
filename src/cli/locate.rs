use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use backset::index::{Index, Record};
use backset::locate::{locate, Answer, Source, Target};
use backset::maps::Maps;
use backset::naming::Naming;
use backset::outdir::{read_descriptor, INDEX_FILE};
use backset::units::{parse_duration_us, parse_size};
use serde::Serialize;

use super::{ClockArg, LocateArgs};

struct Dir<'a> {
    index: Index,
    dir: &'a Path,
    naming: Naming,
}

impl Source for Dir<'_> {
    fn count(&self) -> usize {
        self.index.len()
    }
    fn record(&self, i: usize) -> Option<Record> {
        self.index.get(i)
    }
    fn maps(&self, record: &Record) -> Result<Maps, String> {
        backset::inspect::read_maps(&self.dir.join(self.naming.name(record.sequence)))
            .map_err(|e| e.to_string())
    }
}

#[derive(Serialize)]
struct Output {
    asset: String,
    path: PathBuf,
    #[serde(flatten)]
    answer: Answer,
}

pub fn run(args: LocateArgs) -> anyhow::Result<ExitCode> {
    let target = if let Some(d) = &args.backset {
        let us = parse_duration_us(d)?;
        match args.clock {
            ClockArg::Live => Target::Backset { us },
            ClockArg::Wall => Target::WallBackset {
                us,
                now_us: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_micros() as u64),
            },
        }
    } else if let Some(t) = &args.at {
        Target::At {
            us: parse_duration_us(t)?,
        }
    } else if let Some(b) = &args.datastamp {
        Target::Datastamp {
            bytes: parse_size(b)?,
        }
    } else {
        return Err(backset::Error::Usage("give --backset, --at or --datastamp".into()).into());
    };
    let descriptor = read_descriptor(&args.outdir)?.ok_or_else(|| backset::Error::BadFile {
        path: args.outdir.clone(),
        reason: "no stream.json: not a backset stream directory".into(),
    })?;
    let dir = Dir {
        index: Index::open(&args.outdir.join(INDEX_FILE))?,
        dir: &args.outdir,
        naming: Naming::new(&descriptor.prefix),
    };
    let base = dir.index.get(0).map_or(0, |r| r.sequence);
    let first = descriptor.first_sequence.saturating_sub(base) as usize;
    let answer = locate(&dir, first, dir.index.timescale, target, args.clamp)?;
    let asset = dir.naming.name(answer.sequence);
    let out = Output {
        path: args.outdir.join(&asset),
        asset,
        answer,
    };
    if args.json {
        println!("{}", serde_json::to_string(&out).context("encoding JSON")?);
    } else {
        let a = &out.answer;
        println!(
            "{} offset {} (key frame at {:.3} s, datastamp {}), backset {:.3} s",
            out.path.display(),
            a.offset,
            a.timestamp,
            a.datastamp,
            a.backset
        );
    }
    Ok(ExitCode::SUCCESS)
}
