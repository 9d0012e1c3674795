use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use backset::bucket::{Bucket, Location, StreamDir};
use backset::capture::maps::Maps;
use backset::stream::events::{scan, Scan};
use backset::stream::maps_reader::maps_in;
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
    /// The asset's `emsg` boxes (SCTE-35, ID3...).
    events: Vec<EventReport>,
    /// The asset's `prft` boxes.
    producer_times: Vec<PrftReport>,
}

#[derive(Serialize)]
struct EventReport {
    /// Seconds of transmission time.
    time: f64,
    duration: Option<f64>,
    scheme: String,
    value: String,
    id: u32,
    version: u8,
    offset: u64,
    /// The message bytes, in hex.
    message: String,
}

#[derive(Serialize)]
struct PrftReport {
    /// Seconds of transmission time of the media time it stands for.
    time: f64,
    track_id: u32,
    /// The wall clock it gives, in seconds since the Unix epoch.
    utc: f64,
    offset: u64,
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
    let (name, maps, bytes) = match object_of(&args.asset)? {
        Some((loc, object)) => fetch(&Bucket::connect(&loc)?, &object)?,
        None => {
            let maps = backset::stream::maps_reader::read_maps(&args.asset)?;
            let bytes = std::fs::read(&args.asset)
                .with_context(|| format!("reading {}", args.asset.display()))?;
            (args.asset.to_string_lossy().into_owned(), maps, bytes)
        }
    };
    let scanned = scan(&bytes)?;
    let report = report(&name, &maps, scanned);
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
    print_in_band(&report)?;
    Ok(ExitCode::SUCCESS)
}

/// The stream directory and object name of an `s3://bucket/prefix/name`
/// argument; `None` for a file.
fn object_of(asset: &Path) -> anyhow::Result<Option<(Location, String)>> {
    let Some(given) = asset.to_str().filter(|s| s.contains("://")) else {
        return Ok(None);
    };
    let loc = match StreamDir::parse(given).map_err(backset::Error::Usage)? {
        StreamDir::Local(_) => return Ok(None),
        StreamDir::Bucket(loc) => loc,
    };
    let (prefix, object) = loc.prefix.rsplit_once('/').unwrap_or(("", &loc.prefix));
    if object.is_empty() {
        let why = format!("{given}: names a bucket, not an asset object in it");
        return Err(backset::Error::Usage(why).into());
    }
    let object = object.to_string();
    let loc = Location {
        prefix: prefix.to_string(),
        ..loc
    };
    Ok(Some((loc, object)))
}

/// An asset object fetched whole: its URL, its maps and its bytes, as a
/// file is read.
fn fetch(bucket: &Bucket, object: &str) -> anyhow::Result<(String, Maps, Vec<u8>)> {
    let url = bucket.location().url_of(object);
    let bad = |reason: String| backset::Error::BadFile {
        path: PathBuf::from(&url),
        reason,
    };
    let bytes = bucket
        .get(object)?
        .ok_or_else(|| bad("no such object".into()))?;
    let maps = maps_in(&bytes).map_err(bad)?;
    Ok((url.clone(), maps, bytes.to_vec()))
}

/// The `emsg` and `prft` lines of the text report.
fn print_in_band(report: &Report) -> anyhow::Result<()> {
    for e in &report.events {
        let duration = e.duration.map_or("unknown".into(), |d| format!("{d:.3} s"));
        outln!(
            "emsg at {:.3} s (byte {}): {} value \"{}\" id {}, duration {duration}, {} message bytes",
            e.time,
            e.offset,
            e.scheme,
            e.value,
            e.id,
            e.message.len() / 2
        )?;
    }
    for p in &report.producer_times {
        outln!(
            "prft at {:.3} s (byte {}): track {} produced at {:.3} (Unix seconds)",
            p.time,
            p.offset,
            p.track_id,
            p.utc
        )?;
    }
    Ok(())
}

fn report(asset: &str, maps: &Maps, scanned: Scan) -> Report {
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
        events: scanned
            .events
            .into_iter()
            .map(|e| EventReport {
                time: e.time_s,
                duration: e.duration_s,
                scheme: e.scheme,
                value: e.value,
                id: e.id,
                version: e.version,
                offset: e.offset,
                message: e.message.iter().map(|b| format!("{b:02x}")).collect(),
            })
            .collect(),
        producer_times: scanned
            .producer_times
            .iter()
            .map(|p| PrftReport {
                time: p.time_s,
                track_id: p.track_id,
                utc: p.unix_s(),
                offset: p.offset,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use backset::bucket::client::Caching;
    use backset::capture::segmenter::{self, Segmenter};
    use backset::stream::publisher::{Config, Publisher};

    #[test]
    fn an_s3_url_names_a_stream_directory_and_an_object_in_it() {
        let (loc, object) = object_of(Path::new("s3://live/ch1/a/asset-00000003.mp4"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (loc.bucket.as_str(), loc.prefix.as_str()),
            ("live", "ch1/a")
        );
        assert_eq!(object, "asset-00000003.mp4");
        let (root, object) = object_of(Path::new("s3://live/asset.mp4"))
            .unwrap()
            .unwrap();
        assert_eq!((root.prefix.as_str(), object.as_str()), ("", "asset.mp4"));
        assert!(object_of(Path::new("s3://live")).is_err());
        assert!(object_of(Path::new("gs://live/a.mp4")).is_err());
        assert!(object_of(Path::new("out/asset-00000003.mp4"))
            .unwrap()
            .is_none());
    }

    /// An asset really cut and published from a fixture, in `dir`.
    fn an_asset(dir: &Path) -> PathBuf {
        let capture = include_bytes!("../../fixtures/h264-aac-emsg.mp4");
        let cut = segmenter::Config::default();
        let config = Config {
            dir: dir.to_path_buf(),
            prefix: "asset".into(),
            new: false,
            fsync: false,
            cut,
            keep_us: None,
            keep_assets: None,
            hls: false,
            dash: false,
        };
        let (mut publisher, _) = Publisher::open(config, 1).unwrap();
        let mut events = Vec::new();
        let mut segmenter = Segmenter::new(cut, None);
        segmenter.push(capture, 1, &mut events).unwrap();
        segmenter.finish(&mut events).unwrap();
        for event in events {
            publisher.handle(event, 2, &mut Vec::new()).unwrap();
        }
        dir.join("asset-00000001.mp4")
    }

    #[test]
    fn an_object_is_inspected_as_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = an_asset(dir.path());
        let bytes = std::fs::read(&path).unwrap();
        let (loc, object) = object_of(Path::new("s3://live/ch1/asset-00000001.mp4"))
            .unwrap()
            .unwrap();
        let bucket = Bucket::in_memory(&loc).unwrap();
        bucket
            .put(&object, bytes.clone().into(), Caching::Immutable)
            .unwrap();
        let (url, maps, fetched) = fetch(&bucket, &object).unwrap();
        assert_eq!(url, "s3://live/ch1/asset-00000001.mp4");
        assert_eq!(fetched, bytes);
        let local = backset::stream::maps_reader::read_maps(&path).unwrap();
        assert_eq!(maps, local);
        let json = |name: &str, maps: &Maps| {
            let mut r = serde_json::to_value(report(name, maps, scan(&bytes).unwrap())).unwrap();
            r["asset"] = serde_json::Value::Null;
            r
        };
        let from_store = json(&url, &maps);
        assert_eq!(from_store, json("file", &local));
        assert!(
            !from_store["events"].as_array().unwrap().is_empty(),
            "{from_store}"
        );
        let err = fetch(&bucket, "asset-00000009.mp4").unwrap_err();
        assert_eq!(
            err.to_string(),
            "s3://live/ch1/asset-00000009.mp4: no such object"
        );
    }
}
