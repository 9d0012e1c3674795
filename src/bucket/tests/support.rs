//! Test support only: stream directories for the bucket readers. A fixture
//! is segmented by the library's publisher into a temporary directory, and
//! that directory is copied into an in-memory bucket as `segment` would
//! have published it there: every file as an object of the same name,
//! except `index.bin`, whose records become `index-head.bin` and its
//! chunks.

use std::path::Path;

use bytes::Bytes;

use crate::bucket::client::{Bucket, Caching};
use crate::bucket::index_form::{Head, HEAD};
use crate::bucket::location::Location;
use crate::capture::segmenter::{self, Segmenter};
use crate::stream::index::{Index, Record};
use crate::stream::publisher::{Config, Publisher};
use crate::stream::store::INDEX_FILE;

/// 6 s of H.264 and AAC, key frames at irregular times (0, 0.83, 2.17,
/// 2.58, 4.29, 5.58 s): assets of 2 s hold two entry points each.
pub const CAPTURE: &[u8] = include_bytes!("../../../fixtures/h264-aac-fragdur.mp4");
/// Wall-clock time the tests pretend it is, µs.
pub const T0: u64 = 1_764_000_000_000_000;

pub fn location() -> Location {
    Location {
        bucket: "live".into(),
        prefix: "ch1".into(),
    }
}

/// Test support: `capture` segmented `runs` times over (each run
/// continuing the transmission, as a restarted `segment` does) into a new
/// temporary directory, in assets of `interval_us`, keeping the newest
/// `keep_assets`; the transmission left live (expired files kept a while)
/// unless `finish`.
pub fn segmented(
    capture: &[u8],
    interval_us: u64,
    keep_assets: Option<u64>,
    runs: u64,
    finish: bool,
) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let cut = segmenter::Config {
        interval_us,
        ..segmenter::Config::default()
    };
    let config = Config {
        dir: dir.path().to_path_buf(),
        prefix: "asset".into(),
        new: false,
        fsync: false,
        cut,
        keep_us: None,
        keep_assets,
        hls: false,
        dash: false,
    };
    let mut now = T0;
    for run in 0..runs {
        let (mut publisher, resume) = Publisher::open(config.clone(), now).expect("a publisher");
        let mut segmenter = Segmenter::new(cut, resume);
        let mut events = Vec::new();
        segmenter
            .push(capture, now, &mut events)
            .expect("a capture");
        segmenter.finish(&mut events).expect("a capture");
        for event in events {
            now += 100_000;
            publisher
                .handle(event, now, &mut Vec::new())
                .expect("published");
        }
        if finish && run + 1 == runs {
            publisher.finish(now, &mut Vec::new()).expect("finished");
        }
    }
    dir
}

/// Test support: an in-memory bucket holding `dir` as `segment` publishes
/// a stream directory on a store (dot files, the writer's, left out).
pub fn to_bucket(dir: &Path) -> Bucket {
    let bucket = Bucket::in_memory(&location()).expect("a bucket");
    for entry in std::fs::read_dir(dir).expect("the directory") {
        let entry = entry.expect("an entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == INDEX_FILE || name.starts_with('.') {
            continue;
        }
        let bytes = std::fs::read(entry.path()).expect("a file");
        put(&bucket, &name, bytes);
    }
    let index = Index::open(&dir.join(INDEX_FILE)).expect("an index");
    let records: Vec<Record> = index.iter().flatten().collect();
    put_index(&bucket, index.timescale, &records);
    bucket
}

/// Test support: `records` as the store's index, its chunks then its head.
pub fn put_index(bucket: &Bucket, timescale: u32, records: &[Record]) -> Head {
    let mut head = Head::empty(timescale, 0);
    for r in records {
        if let Some((name, chunk)) = head.push(*r) {
            put(bucket, &name, chunk);
        }
    }
    put(bucket, HEAD, head.encode());
    head
}

pub fn put(bucket: &Bucket, name: &str, bytes: Vec<u8>) {
    bucket
        .put(name, Bytes::from(bytes), Caching::Immutable)
        .expect("a put");
}
