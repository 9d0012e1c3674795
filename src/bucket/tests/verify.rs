//! `verify` on a bucket: clean where the local directory is, and the
//! damage a store can hold named by object.

use bytes::Bytes;

use super::support::{location, put, put_index, segmented, to_bucket, CAPTURE, T0};
use crate::bucket::client::{Bucket, Caching};
use crate::bucket::index_form::{chunk_name, Head, HEAD};
use crate::bucket::verify::verify_bucket;
use crate::stream::index::Record;
use crate::stream::verify::{verify_dir, Problem, Report};

fn verify(bucket: &Bucket) -> Report {
    verify_bucket(bucket.another().unwrap(), &mut |_, _| {}).unwrap()
}

fn said(list: &[Problem]) -> Vec<(String, Option<u64>, String)> {
    let mut all: Vec<_> = list
        .iter()
        .map(|p| (p.file.clone(), p.offset, p.problem.clone()))
        .collect();
    all.sort();
    all
}

#[test]
fn a_clean_stream_verifies_as_its_local_directory_does() {
    for finish in [false, true] {
        let dir = segmented(CAPTURE, 2_000_000, Some(5), 4, finish);
        let local = verify_dir(dir.path(), &mut |_, _| {}).unwrap();
        let mut calls = 0;
        let report = verify_bucket(to_bucket(dir.path()), &mut |done, total| {
            calls += 1;
            assert_eq!(total, 5);
            assert_eq!(done, calls);
        })
        .unwrap();
        assert!(report.ok, "{:?}", report.problems);
        assert_eq!((report.assets_checked, calls), (5, 5));
        assert_eq!(said(&report.notes), said(&local.notes));
        assert_eq!(said(&report.problems), said(&local.problems));
        if !finish {
            // Expired assets kept a while for the players that listed them.
            assert!(!report.notes.is_empty());
        }
    }
}

#[test]
fn damaged_and_missing_objects_are_named() {
    let dir = segmented(CAPTURE, 2_000_000, Some(5), 4, true);
    let bucket = to_bucket(dir.path());
    let name = |s: u64| format!("asset-{s:08}.mp4");
    // An mdat whose type is damaged: its moof has no mdat after it.
    let mut asset = bucket.get(&name(8)).unwrap().unwrap().to_vec();
    let at = asset.windows(4).position(|w| w == b"mdat").unwrap();
    asset[at] ^= 0x20;
    put(&bucket, &name(8), asset);
    bucket.delete(&name(9)).unwrap();
    bucket.delete(&format!("{}.maps", name(10))).unwrap();
    put(
        &bucket,
        &format!("{}.maps", name(11)),
        b"not the maps".to_vec(),
    );
    // Asset 12 would be a publish in progress (a note); 20 is unlisted.
    put(&bucket, &name(20), b"anything".to_vec());
    let report = verify(&bucket);
    assert!(!report.ok);
    let problems = said(&report.problems);
    let mdat_at = (at - 4) as u64;
    assert!(
        problems
            .iter()
            .any(|p| p.0 == name(8) && p.1 == Some(mdat_at)),
        "{problems:?}"
    );
    let expected = [
        (name(9), None, "listed in the index but missing".to_string()),
        (
            format!("{}.maps", name(10)),
            None,
            "missing: segment writes each asset's maps beside it".into(),
        ),
        (
            format!("{}.maps", name(11)),
            None,
            format!("differs from the maps box of {}", name(11)),
        ),
        (
            name(20),
            None,
            "an asset file the index does not list (or lists as expired)".into(),
        ),
    ];
    for e in expected {
        assert!(problems.contains(&e), "{e:?} not in {problems:?}");
    }
    assert!(problems.iter().all(|p| p.0 != name(7)), "{problems:?}");
}

fn record(s: u64) -> Record {
    Record {
        sequence: s,
        start: s * 2000,
        duration: 2000,
        datastamp: s * 4000,
        size: 4100,
        header_len: 100,
        entries: 4,
        published_us: T0,
        init: 0,
    }
}

/// A store holding `n` records, all expired, and a transmission that has
/// ended: only the index is checked.
fn index_only(n: u64) -> (Bucket, Head) {
    let bucket = Bucket::in_memory(&location()).unwrap();
    let descriptor = serde_json::json!({
        "version": 1, "prefix": "asset", "pattern": "asset-%08d.mp4", "index": "index.bin",
        "timescale": 1000, "interval_us": 2_000_000, "tracks": [], "first_sequence": n,
        "started_us": T0, "ended": true,
    });
    put(&bucket, "stream.json", descriptor.to_string().into_bytes());
    let records: Vec<Record> = (0..n).map(record).collect();
    let head = put_index(&bucket, 1000, &records);
    (bucket, head)
}

#[test]
fn index_chunks_damaged_missing_or_beyond_the_head_are_named() {
    let (bucket, head) = index_only(3 * 1024 + 10);
    assert_eq!(head.chunk, 3);
    let report = verify(&bucket);
    assert!(report.ok && report.notes.is_empty(), "{report:?}");
    // Wholly expired chunks may go: retention's doing.
    bucket.delete(&chunk_name(0)).unwrap();
    assert!(verify(&bucket).ok);

    let mut chunk = bucket.get(&chunk_name(1)).unwrap().unwrap().to_vec();
    chunk[64 + 5 * 64 + 3] ^= 1;
    put(&bucket, &chunk_name(1), chunk);
    put(&bucket, &chunk_name(3), vec![0; 64]);
    put(&bucket, &chunk_name(7), vec![0; 64]);
    let mut damaged_head = head.encode();
    damaged_head.extend_from_slice(&[0xff; 64]);
    let live = Caching::Live;
    bucket.put(HEAD, Bytes::from(damaged_head), live).unwrap();
    let report = verify(&bucket);
    assert_eq!(
        said(&report.problems),
        [
            (chunk_name(1), None, "sequence gap: 1028 then 1030".into()),
            (
                chunk_name(1),
                Some(64 + 5 * 64),
                "record 1029 is damaged or out of place".into()
            ),
            (
                chunk_name(7),
                None,
                "an index chunk beyond the head (which is at chunk 3)".into()
            ),
            (
                HEAD.into(),
                Some(64 + 10 * 64),
                "64 bytes after the last valid record: damaged or out-of-place records".into()
            ),
        ]
    );
    assert_eq!(
        said(&report.notes),
        [(
            chunk_name(3),
            None,
            "written but not indexed yet: a publish in progress or interrupted (a restarted segment removes it)".into()
        )]
    );
}
