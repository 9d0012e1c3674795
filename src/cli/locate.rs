use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use backset::bucket::stream_reader::BucketStream;
use backset::bucket::{Bucket, StreamDir};
use backset::stream::locate::{Answer, Target};
use backset::stream::reader::Stream;
use backset::units::{parse_duration_us, parse_size};
use serde::Serialize;

use super::out::outln;
use super::{ClockArg, LocateArgs};

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
    let out = match &args.outdir {
        StreamDir::Local(dir) => {
            let stream = Stream::open(dir)?;
            let answer = stream.locate(target, args.clamp)?;
            let asset = stream.naming.name(answer.sequence);
            Output {
                path: dir.join(&asset),
                asset,
                answer,
            }
        }
        StreamDir::Bucket(loc) => {
            let stream = BucketStream::open(Bucket::connect(loc)?)?;
            let answer = stream.locate(target, args.clamp)??;
            let asset = stream.naming.name(answer.sequence);
            Output {
                path: PathBuf::from(stream.url_of(&asset)),
                asset,
                answer,
            }
        }
    };
    if args.json {
        outln!("{}", serde_json::to_string(&out).context("encoding JSON")?)?;
    } else {
        let a = &out.answer;
        outln!(
            "{} offset {} (key frame at {:.3} s, datastamp {}), backset {:.3} s",
            out.path.display(),
            a.offset,
            a.timestamp,
            a.datastamp,
            a.backset
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
