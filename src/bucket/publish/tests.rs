//! The uploader on a real capture published into a spool, in-process,
//! against an in-memory object store: what reaches the store, in what
//! order, what leaves the spool and what a restart does.

use std::path::Path;

use crate::bucket::client::Bucket;
use crate::bucket::index_form::{Head, HEAD};
use crate::bucket::location::Location;
use crate::capture::segmenter::{self, Event, Segmenter};
use crate::stream::descriptor::Descriptor;
use crate::stream::index::Index;
use crate::stream::naming::Naming;
use crate::stream::publisher::{Config, Publisher};
use crate::stream::store::INDEX_FILE;

use super::uploader::Uploader;

const CAPTURE: &[u8] = include_bytes!("../../../fixtures/aac-only.mp4");
const T0: u64 = 1_764_000_000_000_000;

fn bucket() -> Bucket {
    Bucket::in_memory(&Location::new("live", "ch1")).unwrap()
}

fn config(dir: &Path, keep_assets: Option<u64>) -> Config {
    Config {
        dir: dir.to_path_buf(),
        prefix: "asset".into(),
        new: false,
        fsync: false,
        cut: segmenter::Config {
            interval_us: 1_000_000,
            ..segmenter::Config::default()
        },
        keep_us: None,
        keep_assets,
        hls: true,
        dash: false,
    }
}

/// Publishes the capture into `spool`, stepping `uploader` after every
/// event with the time it is; returns that time at the end.
fn publish_and_upload(spool: &Path, keep: Option<u64>, uploader: &mut Uploader) -> u64 {
    let (mut publisher, resume) = Publisher::open(config(spool, keep), T0).unwrap();
    let mut segmenter = Segmenter::new(config(spool, keep).cut, resume);
    let mut events: Vec<Event> = Vec::new();
    segmenter.push(CAPTURE, T0, &mut events).unwrap();
    segmenter.finish(&mut events).unwrap();
    let mut now = T0;
    for event in events {
        now += 100_000;
        publisher.handle(event, now, &mut Vec::new()).unwrap();
        uploader.step(now).unwrap();
    }
    publisher.finish(now, &mut Vec::new()).unwrap();
    now
}

#[test]
fn the_store_holds_the_spools_stream_and_the_spool_lets_uploaded_assets_go() {
    let spool = tempfile::tempdir().unwrap();
    let mut uploader = Uploader::new(bucket(), spool.path(), false);
    let end = publish_and_upload(spool.path(), None, &mut uploader);
    assert_eq!(uploader.drain(end + 60_000_000).unwrap(), 0);
    let b = uploader.bucket();

    let index = Index::open(&spool.path().join(INDEX_FILE)).unwrap();
    let records: Vec<_> = index.iter().map(Option::unwrap).collect();
    assert!(records.len() >= 6, "{} assets", records.len());
    let head = Head::decode(&b.get(HEAD).unwrap().unwrap()).unwrap();
    assert_eq!(head.records, records, "the head holds every record");

    let d: Descriptor = serde_json::from_slice(&b.get("stream.json").unwrap().unwrap()).unwrap();
    assert_eq!(d.index, HEAD);
    assert!(d.ended);
    let naming = Naming::new("asset");
    let names: Vec<String> = b.list().unwrap().into_iter().map(|(n, _)| n).collect();
    for r in &records {
        let kept = r.sequence >= d.first_sequence;
        let name = naming.name(r.sequence);
        assert_eq!(names.contains(&name), kept, "{name}: kept {kept}");
    }
    // The spool keeps only the newest few assets, all of them on the store.
    let last = records.last().unwrap().sequence;
    for r in &records {
        let local = spool.path().join(naming.name(r.sequence));
        assert_eq!(local.exists(), r.sequence + 3 > last, "{}", local.display());
        if local.exists() {
            let stored = b.get(&naming.name(r.sequence)).unwrap().unwrap();
            assert_eq!(stored, std::fs::read(&local).unwrap());
        }
    }
    assert!(names.contains(&"live.m3u8".to_string()));
    assert!(names.iter().any(|n| n.starts_with("asset-init-")));
}

#[test]
fn a_restart_uploads_what_the_store_lacks_and_another_spool_is_refused() {
    let spool = tempfile::tempdir().unwrap();
    let b = bucket();
    // A store that took nothing: every publish stays in the spool.
    let (mut publisher, resume) = Publisher::open(config(spool.path(), None), T0).unwrap();
    let mut segmenter = Segmenter::new(config(spool.path(), None).cut, resume);
    let mut events = Vec::new();
    segmenter.push(CAPTURE, T0, &mut events).unwrap();
    segmenter.finish(&mut events).unwrap();
    for event in events {
        publisher.handle(event, T0, &mut Vec::new()).unwrap();
    }
    drop(publisher);
    let mut later = Uploader::new(b.another().unwrap(), spool.path(), false);
    assert!(later.backlog().unwrap() > 0);
    later.preflight().unwrap();
    assert_eq!(later.drain(T0).unwrap(), 0);
    let head = Head::decode(&b.get(HEAD).unwrap().unwrap()).unwrap();
    let index = Index::open(&spool.path().join(INDEX_FILE)).unwrap();
    assert_eq!(head.count(), index.iter().count() as u64);

    let other = tempfile::tempdir().unwrap();
    let stranger = Uploader::new(b.another().unwrap(), other.path(), false);
    let refused = stranger.preflight().unwrap_err().to_string();
    assert!(refused.contains("does not continue"), "{refused}");
    assert!(Uploader::new(b.another().unwrap(), other.path(), true)
        .preflight()
        .is_ok());
}

#[test]
fn expired_assets_leave_the_store_after_their_hold() {
    let spool = tempfile::tempdir().unwrap();
    let mut uploader = Uploader::new(bucket(), spool.path(), false);
    let end = publish_and_upload(spool.path(), Some(2), &mut uploader);
    let b = uploader.bucket();
    let d: Descriptor = serde_json::from_slice(&b.get("stream.json").unwrap().unwrap()).unwrap();
    let naming = Naming::new("asset");
    // Within the hold the newest expired asset is still there for players
    // that listed it.
    assert!(d.first_sequence >= 4, "first {}", d.first_sequence);
    assert!(b.get(&naming.name(d.first_sequence - 1)).unwrap().is_some());
    uploader.drain(end + 60_000_000).unwrap();
    let b = uploader.bucket();
    for s in 0..d.first_sequence {
        assert!(
            b.get(&naming.name(s)).unwrap().is_none(),
            "asset {s} expired"
        );
        assert!(b.get(&naming.maps_name(s)).unwrap().is_none(), "maps {s}");
    }
    for s in d.first_sequence..d.first_sequence + 2 {
        assert!(b.get(&naming.name(s)).unwrap().is_some(), "asset {s} kept");
    }
}

#[test]
fn assets_retention_let_go_before_the_store_took_them_go_up_as_records_only() {
    let spool = tempfile::tempdir().unwrap();
    let b = bucket();
    let keep = Some(2);
    let (mut publisher, resume) = Publisher::open(config(spool.path(), keep), T0).unwrap();
    let mut segmenter = Segmenter::new(config(spool.path(), keep).cut, resume);
    let mut events = Vec::new();
    segmenter.push(CAPTURE, T0, &mut events).unwrap();
    segmenter.finish(&mut events).unwrap();
    for event in events {
        publisher.handle(event, T0, &mut Vec::new()).unwrap();
    }
    // The end deletes every expired file: the store had taken none.
    publisher.finish(T0, &mut Vec::new()).unwrap();
    let mut later = Uploader::new(b.another().unwrap(), spool.path(), false);
    assert_eq!(later.drain(T0).unwrap(), 0);
    let head = Head::decode(&b.get(HEAD).unwrap().unwrap()).unwrap();
    let d: Descriptor = serde_json::from_slice(&b.get("stream.json").unwrap().unwrap()).unwrap();
    assert_eq!(head.count(), head.records.last().unwrap().sequence + 1);
    let naming = Naming::new("asset");
    for r in &head.records {
        let there = b.get(&naming.name(r.sequence)).unwrap().is_some();
        assert_eq!(
            there,
            r.sequence >= d.first_sequence,
            "asset {}",
            r.sequence
        );
    }
}

#[test]
fn while_a_backlog_drains_nothing_names_an_asset_not_up_yet() {
    let spool = tempfile::tempdir().unwrap();
    let b = bucket();
    // Three captures back to back: more assets than one step uploads.
    let capture = CAPTURE.repeat(3);
    let (mut publisher, resume) = Publisher::open(config(spool.path(), None), T0).unwrap();
    let mut segmenter = Segmenter::new(config(spool.path(), None).cut, resume);
    let mut events = Vec::new();
    segmenter.push(&capture, T0, &mut events).unwrap();
    segmenter.finish(&mut events).unwrap();
    for event in events {
        publisher.handle(event, T0, &mut Vec::new()).unwrap();
    }
    publisher.finish(T0, &mut Vec::new()).unwrap();
    let mut uploader = Uploader::new(b.another().unwrap(), spool.path(), false);
    assert!(uploader.backlog().unwrap() > 16);
    uploader.step(T0).unwrap();
    let d: Descriptor = serde_json::from_slice(&b.get("stream.json").unwrap().unwrap()).unwrap();
    assert!(!d.ended, "ended while records wait");
    assert!(
        b.get("live.m3u8").unwrap().is_none(),
        "a playlist naming assets not up yet"
    );
    assert_eq!(uploader.drain(T0).unwrap(), 0);
    let d: Descriptor = serde_json::from_slice(&b.get("stream.json").unwrap().unwrap()).unwrap();
    assert!(d.ended);
    assert!(b.get("live.m3u8").unwrap().is_some());
}
