//! `locate` on a bucket: the same answers as on the local directory it was
//! copied from, in O(log n) reads of a large index.

use super::support::{location, put, put_index, segmented, to_bucket, CAPTURE, T0};
use crate::bucket::client::Bucket;
use crate::bucket::index_form::chunk_name;
use crate::bucket::stream_reader::BucketStream;
use crate::capture::maps::{Entry, Maps};
use crate::stream::index::Record;
use crate::stream::locate::Target;
use crate::stream::reader::Stream;

#[test]
fn locate_on_the_bucket_answers_as_on_the_local_directory() {
    let dir = segmented(CAPTURE, 2_000_000, Some(5), 4, false);
    let local = Stream::open(dir.path()).unwrap();
    let remote = BucketStream::open(to_bucket(dir.path())).unwrap();
    assert!(
        remote.descriptor.first_sequence >= 2,
        "retention expired some"
    );
    assert_eq!(remote.descriptor, local.descriptor);
    // Assets 7..=11 retained of 12: 14.1 s to 24.0 s, datastamps from 368,159.
    assert_eq!(remote.descriptor.first_sequence, 7);
    let s = 1_000_000;
    let now_us = T0 + 10 * s;
    let targets = [
        Target::Backset { us: 0 },
        Target::Backset { us: 300_000 },
        Target::Backset { us: s },
        Target::Backset { us: 4 * s },
        Target::Backset { us: 9_500_000 },
        Target::Backset { us: 15 * s },
        Target::At { us: 0 },
        Target::At { us: 14_500_000 },
        Target::At { us: 16 * s },
        Target::At { us: 20_200_000 },
        Target::At { us: 23_900_000 },
        Target::At { us: 60 * s },
        Target::Datastamp { bytes: 0 },
        Target::Datastamp { bytes: 400_000 },
        Target::Datastamp { bytes: 500_000 },
        Target::Datastamp { bytes: 600_000 },
        Target::Datastamp { bytes: 1 << 40 },
        Target::WallBackset { us: 5 * s, now_us },
        Target::WallBackset { us: 30 * s, now_us },
    ];
    let mut answered = 0;
    for target in targets {
        for clamp in [false, true] {
            let want = local.locate(target, clamp);
            let got = remote.locate(target, clamp).unwrap();
            assert_eq!(got, want, "{target:?} clamp {clamp}");
            answered += usize::from(got.is_ok());
        }
    }
    assert!(
        answered >= 24,
        "only {answered} answers: the targets miss the window"
    );
}

/// Assets of 2 s (timescale 1000), key frames every 500 ms.
fn record(s: u64) -> Record {
    Record {
        sequence: s,
        start: s * 2000,
        duration: 2000,
        datastamp: s * 4000,
        size: 4100,
        header_len: 100,
        entries: 4,
        published_us: T0 + (s + 1) * 2_000_000,
        init: 0,
    }
}

fn maps_of(r: &Record) -> Vec<u8> {
    let maps = Maps {
        sequence: r.sequence,
        timescale: 1000,
        start: r.start,
        duration: r.duration,
        start_datastamp: r.datastamp,
        entries: (0..4)
            .map(|k| Entry {
                timestamp: r.start + k * 500,
                datastamp: r.datastamp + k * 1000,
                offset: 100 + k * 1000,
                wallclock_us: r.published_us,
            })
            .collect(),
    };
    let mut out = Vec::new();
    maps.encode(&mut out);
    out
}

/// A store holding `n` records, `first` on retained, and the maps of the
/// assets named.
fn large(n: u64, first: u64, maps_for: &[u64]) -> Bucket {
    let bucket = Bucket::in_memory(&location()).unwrap();
    let descriptor = serde_json::json!({
        "version": 1, "prefix": "asset", "pattern": "asset-%08d.mp4", "index": "index.bin",
        "timescale": 1000, "interval_us": 2_000_000, "tracks": [], "first_sequence": first,
        "started_us": T0, "ended": false,
    });
    put(&bucket, "stream.json", descriptor.to_string().into_bytes());
    let records: Vec<Record> = (0..n).map(record).collect();
    put_index(&bucket, 1000, &records);
    for &s in maps_for {
        put(
            &bucket,
            &format!("asset-{s:08}.mp4.maps"),
            maps_of(&record(s)),
        );
    }
    bucket
}

#[test]
fn a_locate_among_100000_records_takes_a_few_ranged_reads() {
    let stream = BucketStream::open(large(100_000, 0, &[99_985])).unwrap();
    assert_eq!(stream.head.count(), 100_000);
    let a = stream
        .locate(Target::Backset { us: 30_000_000 }, false)
        .unwrap()
        .unwrap();
    assert_eq!((a.sequence, a.entry, a.offset), (99_985, 0, 100));
    // Near the live edge, the search's last steps are in the head.
    let near_edge = stream.reads();
    assert!((5..=12).contains(&near_edge), "{near_edge} reads");
    let a = stream
        .locate(
            Target::At {
                us: 100_001_000_000,
            },
            false,
        )
        .unwrap()
        .unwrap_err();
    // log2(100,000) ≈ 17 records, then the one asset's maps (absent here).
    assert_eq!(
        a.to_string(),
        "asset 50000: s3://live/ch1/asset-00050000.mp4.maps: missing"
    );
    let middle = stream.reads() - near_edge;
    assert!((15..=25).contains(&middle), "{middle} reads");
}

#[test]
fn chunks_deleted_before_the_window_are_not_missed_and_one_inside_it_is_named() {
    let bucket = large(100_000, 50_000, &[50_000]);
    // Chunk 48 holds positions 49,152..50,175: the oldest retained record.
    for chunk in 0..48 {
        bucket.delete(&chunk_name(chunk)).unwrap();
    }
    let other = bucket.another().unwrap();
    let stream = BucketStream::open(bucket).unwrap();
    let a = stream
        .locate(Target::Backset { us: 1 << 40 }, true)
        .unwrap()
        .unwrap();
    assert_eq!((a.sequence, a.entry), (50_000, 0));

    other.delete(&chunk_name(60)).unwrap();
    let stream = BucketStream::open(other).unwrap();
    let err = stream
        .locate(
            Target::At {
                us: 61 * 1024 * 2_000_000,
            },
            false,
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "s3://live/ch1/index-00000060.bin: missing, yet the index head counts 100000 records"
    );
}

#[test]
fn a_prefix_without_stream_json_is_not_a_stream_directory() {
    let bucket = Bucket::in_memory(&location()).unwrap();
    let err = BucketStream::open(bucket).err().unwrap();
    assert_eq!(
        err.to_string(),
        "s3://live/ch1/stream.json: no stream.json: not a backset stream directory"
    );
    assert!(err.is_bad_input());
}
