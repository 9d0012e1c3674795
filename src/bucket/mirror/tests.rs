//! The mirror against a store in memory holding a really segmented
//! fixture, uploaded as `segment s3://…` leaves a stream: the same object
//! names as the files, the index as a head and chunks.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use bytes::Bytes;

use super::{Mirror, Synced};
use crate::bucket::client::Caching;
use crate::bucket::tests::support::{location, put_index};
use crate::bucket::Bucket;
use crate::capture::segmenter::{self, Segmenter};
use crate::stream::descriptor::Descriptor;
use crate::stream::index::{Index, Record};
use crate::stream::locate::Target;
use crate::stream::naming::{Name, Naming};
use crate::stream::publisher::{Config, Note, Publisher};
use crate::stream::reader::Stream;
use crate::stream::store::{self, INDEX_FILE};
use crate::stream::verify::verify_dir;

const CAPTURE: &[u8] = include_bytes!("../../../fixtures/h264-aac-fragdur.mp4");
/// Wall-clock time the tests pretend it is, µs.
const T0: u64 = 1_764_000_000_000_000;

/// Test support: a fixture segmented into a local directory, and that
/// directory uploaded into a bucket as a store stream directory.
struct Source {
    dir: tempfile::TempDir,
    records: Vec<Record>,
}

impl Source {
    /// The fixture cut by the segmenter and published by the publisher,
    /// the whole capture at once.
    fn segmented() -> Source {
        let dir = tempfile::tempdir().unwrap();
        // Short assets: enough of them to expire some and keep some.
        let cut = segmenter::Config {
            interval_us: 500_000,
            ..segmenter::Config::default()
        };
        let config = Config {
            dir: dir.path().to_path_buf(),
            prefix: "asset".into(),
            new: false,
            fsync: false,
            cut,
            keep_us: None,
            keep_assets: None,
            hls: false,
            dash: false,
        };
        let (mut publisher, resume) = Publisher::open(config, T0).unwrap();
        let mut segmenter = Segmenter::new(cut, resume);
        let mut events = Vec::new();
        segmenter.push(CAPTURE, T0, &mut events).unwrap();
        segmenter.finish(&mut events).unwrap();
        let mut notes = Vec::new();
        for event in events {
            publisher.handle(event, T0, &mut notes).unwrap();
        }
        publisher.finish(T0, &mut notes).unwrap();
        let records: Vec<Record> = notes
            .iter()
            .filter_map(|n| match n {
                Note::Published(r) => Some(*r),
                Note::Warning(_) => None,
            })
            .collect();
        assert!(records.len() >= 4, "{} assets", records.len());
        Source { dir, records }
    }

    fn descriptor(&self) -> Descriptor {
        store::read_descriptor(self.dir.path()).unwrap().unwrap()
    }

    /// Uploads the stream as it was once its first `upto` assets were
    /// published (`first_sequence` and `started_us` as given): every file
    /// but index.bin under its own name, then the index as head and chunks.
    fn upload(&self, bucket: &Bucket, upto: usize, first_sequence: u64, started_us: u64) {
        let naming = Naming::default();
        for entry in fs::read_dir(self.dir.path()).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            let sequence = match naming.parse(&name) {
                Some(Name::Asset(n) | Name::Maps(n) | Name::TrackSegment(n, _)) => Some(n),
                _ => None,
            };
            let skip = name == INDEX_FILE
                || name == "stream.json"
                || name.starts_with('.')
                || sequence.is_some_and(|n| n >= upto as u64);
            if !skip {
                let bytes = fs::read(self.dir.path().join(&name)).unwrap();
                bucket.put(&name, bytes.into(), Caching::Immutable).unwrap();
            }
        }
        put_index(bucket, self.descriptor().timescale, &self.records[..upto]);
        let mut d = self.descriptor();
        d.first_sequence = first_sequence;
        d.started_us = started_us;
        d.ended = upto == self.records.len();
        let json = serde_json::to_vec(&d).unwrap();
        bucket
            .put("stream.json", json.into(), Caching::Live)
            .unwrap();
    }
}

fn bucket() -> Bucket {
    Bucket::in_memory(&location()).unwrap()
}

fn mirror(bucket: &Bucket, dir: &Path, window: Option<u64>) -> Mirror {
    Mirror::new(bucket.another().unwrap(), dir, window)
}

fn local_records(dir: &Path) -> Vec<Record> {
    let index = Index::open(&dir.join(INDEX_FILE)).unwrap();
    index.iter().map(Option::unwrap).collect()
}

fn assets_on_disk(dir: &Path) -> BTreeSet<u64> {
    fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            Naming::default().sequence_of(&name)
        })
        .collect()
}

fn first_sequence(dir: &Path) -> u64 {
    store::read_descriptor(dir).unwrap().unwrap().first_sequence
}

#[test]
fn a_synced_mirror_verifies_holds_the_same_assets_and_locates_as_its_source() {
    let source = Source::segmented();
    let n = source.records.len();
    let bucket = bucket();
    source.upload(&bucket, n, 0, T0);
    let dir = tempfile::tempdir().unwrap();
    let done = mirror(&bucket, dir.path(), None).sync(T0).unwrap();
    assert_eq!((done.appended, done.fetched), (n as u64, n as u64));
    let report = verify_dir(dir.path(), &mut |_, _| {}).unwrap();
    assert!(report.ok, "{:?}", report.problems);
    assert_eq!(report.assets_checked, n as u64);
    let naming = Naming::default();
    for r in &source.records {
        let name = naming.name(r.sequence);
        let mirrored = fs::read(dir.path().join(&name)).unwrap();
        assert_eq!(
            mirrored,
            fs::read(source.dir.path().join(&name)).unwrap(),
            "{name}"
        );
    }
    assert_eq!(local_records(dir.path()), source.records);
    assert!(dir.path().join("asset-init-0000.mp4").is_file());
    let (theirs, ours) = (
        Stream::open(source.dir.path()).unwrap(),
        Stream::open(dir.path()).unwrap(),
    );
    for target in [
        Target::Backset { us: 0 },
        Target::Backset { us: 3_000_000 },
        Target::At { us: 2_500_000 },
        Target::Datastamp { bytes: 40_000 },
    ] {
        assert_eq!(
            ours.locate(target, true),
            theirs.locate(target, true),
            "{target:?}"
        );
    }
    assert_eq!(ours.descriptor, source.descriptor());
}

#[test]
fn records_published_after_a_sync_are_exactly_what_the_next_one_adds() {
    let source = Source::segmented();
    let n = source.records.len();
    let bucket = bucket();
    source.upload(&bucket, 2, 0, T0);
    let dir = tempfile::tempdir().unwrap();
    let mut m = mirror(&bucket, dir.path(), None);
    assert_eq!(m.sync(T0).unwrap().appended, 2);
    assert_eq!(m.sync(T0).unwrap(), Synced::default(), "nothing new");
    source.upload(&bucket, n, 0, T0);
    let done = m.sync(T0).unwrap();
    let added = (n - 2) as u64;
    assert_eq!(
        (done.appended, done.fetched, done.restarted),
        (added, added, false)
    );
    assert_eq!(local_records(dir.path()), source.records);
    assert_eq!(assets_on_disk(dir.path()).len(), n);
    assert!(verify_dir(dir.path(), &mut |_, _| {}).unwrap().ok);
}

#[test]
fn a_window_of_n_mirrors_the_newest_n_and_moves_with_the_stream() {
    let source = Source::segmented();
    let n = source.records.len() as u64;
    let bucket = bucket();
    source.upload(&bucket, 3, 0, T0);
    let dir = tempfile::tempdir().unwrap();
    let mut m = mirror(&bucket, dir.path(), Some(2));
    let done = m.sync(T0).unwrap();
    assert_eq!(
        (done.appended, done.fetched),
        (2, 2),
        "the index starts at the window"
    );
    assert_eq!(local_records(dir.path())[0].sequence, 1);
    assert_eq!(first_sequence(dir.path()), 1);
    assert_eq!(assets_on_disk(dir.path()), BTreeSet::from([1, 2]));

    source.upload(&bucket, n as usize, 0, T0);
    let done = m.sync(T0 + 1).unwrap();
    assert_eq!(done.appended, n - 3);
    assert_eq!(first_sequence(dir.path()), n - 2);
    // The transmission ended: what left the window goes at once.
    assert_eq!(assets_on_disk(dir.path()), BTreeSet::from([n - 2, n - 1]));
    let d = store::read_descriptor(dir.path()).unwrap().unwrap();
    assert_eq!(d.keep_assets, Some(2));
    let report = verify_dir(dir.path(), &mut |_, _| {}).unwrap();
    assert!(report.ok, "{:?}", report.problems);
    assert_eq!(report.assets_checked, 2);
}

#[test]
fn assets_the_store_expired_are_kept_for_the_hold_then_deleted() {
    let source = Source::segmented();
    let n = source.records.len();
    let bucket = bucket();
    source.upload(&bucket, n - 1, 0, T0);
    let dir = tempfile::tempdir().unwrap();
    let mut m = mirror(&bucket, dir.path(), None);
    m.sync(T0).unwrap();
    // The store's retention moves on past assets 0 and 1 and deletes them.
    for s in 0..2 {
        bucket.delete(&Naming::default().name(s)).unwrap();
    }
    source.upload(&bucket, n - 1, 2, T0);
    m.sync(T0 + 1_000_000).unwrap();
    assert_eq!(first_sequence(dir.path()), 2, "the window moved at once");
    assert!(
        assets_on_disk(dir.path()).contains(&0),
        "held for the players that listed it"
    );
    let report = verify_dir(dir.path(), &mut |_, _| {}).unwrap();
    assert!(report.ok, "{:?}", report.problems);
    assert_eq!(report.notes.len(), 2, "{:?}", report.notes);
    let done = m.sync(T0 + 60_000_000).unwrap();
    assert_eq!(done.removed, 2);
    assert!(!assets_on_disk(dir.path()).contains(&0));
    assert!(!dir.path().join("asset-00000000.mp4.maps").exists());
    assert!(
        dir.path().join("asset-init-0000.mp4").is_file(),
        "its generation is still in use"
    );
}

#[test]
fn a_new_transmission_at_the_prefix_starts_the_mirror_over() {
    let source = Source::segmented();
    let n = source.records.len();
    let bucket = bucket();
    source.upload(&bucket, n, 0, T0);
    let dir = tempfile::tempdir().unwrap();
    let mut m = mirror(&bucket, dir.path(), None);
    m.sync(T0).unwrap();

    let again = self::bucket();
    source.upload(&again, 2, 0, T0 + 5);
    let mut m = mirror(&again, dir.path(), None);
    let done = m.sync(T0).unwrap();
    assert!(done.restarted);
    assert_eq!(done.appended, 2);
    assert_eq!(assets_on_disk(dir.path()), BTreeSet::from([0, 1]));
    assert_eq!(
        store::read_descriptor(dir.path())
            .unwrap()
            .unwrap()
            .started_us,
        T0 + 5
    );
    assert!(verify_dir(dir.path(), &mut |_, _| {}).unwrap().ok);

    // Same start time, but a history that does not continue the mirror's.
    let mut other = source.records[..3].to_vec();
    other[2].start += 1;
    put_index(&again, source.descriptor().timescale, &other);
    again
        .put(
            "asset-00000002.mp4",
            fs::read(source.dir.path().join("asset-00000002.mp4"))
                .unwrap()
                .into(),
            Caching::Immutable,
        )
        .unwrap();
    let done = m.sync(T0).unwrap();
    assert!(done.restarted);
    assert_eq!(done.appended, 3);
}

#[test]
fn a_prefix_without_a_stream_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let e = mirror(&bucket(), dir.path(), None).sync(T0).err().unwrap();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("s3://live/ch1/stream.json"), "{e}");
}

/// A stream past a chunk: synthetic records and assets (the mirror checks
/// sizes, not contents).
#[test]
fn records_in_full_chunks_are_read_one_get_per_chunk() {
    let bucket = bucket();
    let record = |sequence: u64| Record {
        sequence,
        start: sequence * 2000,
        duration: 2000,
        datastamp: sequence * 100,
        size: 150,
        header_len: 50,
        entries: 0,
        published_us: T0,
        init: 0,
    };
    let json = r#"{"version":1,"prefix":"asset","pattern":"asset-%08d.mp4","index":"index.bin",
        "timescale":1000,"interval_us":2000000,"tracks":[],"started_us":7,"ended":false}"#;
    bucket
        .put("stream.json", Bytes::from(json), Caching::Live)
        .unwrap();
    let records: Vec<Record> = (0..1030).map(record).collect();
    for r in &records {
        let name = Naming::default().name(r.sequence);
        bucket
            .put(&name, vec![0u8; 150].into(), Caching::Immutable)
            .unwrap();
    }
    put_index(&bucket, 1000, &records[..6]);
    let dir = tempfile::tempdir().unwrap();
    let mut m = mirror(&bucket, dir.path(), Some(10));
    assert_eq!(m.sync(T0).unwrap().fetched, 6);
    put_index(&bucket, 1000, &records);
    let done = m.sync(T0).unwrap();
    assert_eq!((done.appended, done.fetched), (1024, 10));
    assert_eq!(local_records(dir.path()), records);
    assert_eq!(first_sequence(dir.path()), 1020);
    // A chunk gone (deleted by the store's retention) while the mirror is
    // behind it: the mirror starts over at the window.
    let dir = tempfile::tempdir().unwrap();
    let mut m = mirror(&bucket, dir.path(), Some(4));
    put_index(&bucket, 1000, &records[..6]);
    m.sync(T0).unwrap();
    put_index(&bucket, 1000, &records);
    bucket.delete("index-00000000.bin").unwrap();
    let done = m.sync(T0).unwrap();
    assert!(done.restarted);
    assert_eq!(local_records(dir.path()), records[1026..]);
}

#[test]
fn a_mirror_left_by_an_earlier_run_is_continued_and_what_it_held_goes() {
    let source = Source::segmented();
    let n = source.records.len();
    let bucket = bucket();
    source.upload(&bucket, n - 2, 0, T0);
    let dir = tempfile::tempdir().unwrap();
    let mut earlier = mirror(&bucket, dir.path(), None);
    earlier.sync(T0).unwrap();
    // The store expires two assets; the replica holds them, then stops.
    source.upload(&bucket, n - 2, 2, T0);
    earlier.sync(T0).unwrap();
    drop(earlier);
    source.upload(&bucket, n - 1, 2, T0);
    let mut m = mirror(&bucket, dir.path(), None);
    let done = m.sync(T0).unwrap();
    assert_eq!((done.restarted, done.appended, done.fetched), (false, 1, 1));
    assert!(assets_on_disk(dir.path()).contains(&1), "held");
    let done = m.sync(T0 + 60_000_000).unwrap();
    assert_eq!(done.removed, 2);
    assert_eq!(assets_on_disk(dir.path()), (2..n as u64 - 1).collect());
    assert_eq!(local_records(dir.path()), source.records[..n - 1]);
}
