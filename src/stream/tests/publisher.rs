//! The publishing protocol on a real capture, in-process: a temporary
//! directory, the wall clock passed in.

use std::path::Path;

use crate::capture::segmenter::Segmenter;
use crate::capture::segmenter::{self, Event, Resume};
use crate::stream::descriptor::Descriptor;
use crate::stream::index::Index;
use crate::stream::index::{Record, Span};
use crate::stream::naming::Naming;
use crate::stream::playlists::{self, Listing};
use crate::stream::publisher::{Config, Note, Publisher};
use crate::stream::reader::Stream;
use crate::stream::store::{self, INDEX_FILE};

const CAPTURE: &[u8] = include_bytes!("../../../fixtures/h264-aac-gop.mp4");
/// Wall-clock time the tests pretend it is, µs.
const T0: u64 = 1_764_000_000_000_000;

fn config(dir: &Path) -> Config {
    Config {
        dir: dir.to_path_buf(),
        prefix: "asset".into(),
        new: false,
        fsync: false,
        cut: segmenter::Config::default(),
        keep_us: None,
        keep_assets: None,
        hls: false,
        dash: false,
    }
}

/// The capture's events, as the segmenter returns them when the whole
/// file arrives at once.
fn events(resume: Option<Resume>) -> Vec<Event> {
    let mut segmenter = Segmenter::new(segmenter::Config::default(), resume);
    let mut events = Vec::new();
    segmenter.push(CAPTURE, T0, &mut events).unwrap();
    segmenter.finish(&mut events).unwrap();
    events
}

/// The events in steps: each is the fragments before an event, then
/// that event.
fn steps(resume: Option<Resume>) -> Vec<Vec<Event>> {
    let mut steps = vec![Vec::new()];
    for event in events(resume) {
        let fragment = matches!(event, Event::Fragment { .. });
        steps.last_mut().unwrap().push(event);
        if !fragment {
            steps.push(Vec::new());
        }
    }
    steps.pop();
    steps
}

/// Publishes the whole capture into `config.dir`, calling `after` once
/// each step is handled; returns the notes.
fn publish_with(config: Config, mut after: impl FnMut(&Publisher)) -> Vec<Note> {
    let (mut publisher, resume) = Publisher::open(config, T0).unwrap();
    let mut notes = Vec::new();
    for (i, step) in steps(resume).into_iter().enumerate() {
        let now = T0 + (i as u64 + 1) * 2_000_000;
        for event in step {
            publisher.handle(event, now, &mut notes).unwrap();
        }
        after(&publisher);
    }
    publisher.finish(T0 + 60_000_000, &mut Vec::new()).unwrap();
    after(&publisher);
    notes
}

fn publish(config: Config) -> Vec<Note> {
    publish_with(config, |_| {})
}

fn published(notes: &[Note]) -> Vec<Record> {
    notes
        .iter()
        .filter_map(|n| match n {
            Note::Published(r) => Some(*r),
            Note::Warning(_) => None,
        })
        .collect()
}

fn descriptor(dir: &Path) -> Descriptor {
    store::read_descriptor(dir).unwrap().unwrap()
}

fn index(dir: &Path) -> Vec<Record> {
    let index = Index::open(&dir.join(INDEX_FILE)).unwrap();
    index.iter().map(Option::unwrap).collect()
}

/// The playlists as a reader of the directory renders them: how the
/// publisher made them before it kept its records in memory.
fn as_a_reader_renders(dir: &Path) -> (String, String) {
    let stream = Stream::open(dir).unwrap();
    let records: Vec<_> = stream.retained().collect();
    let span = Span::of(&records, stream.index.timescale);
    let listing = Listing {
        events: &[],
        descriptor: &stream.descriptor,
        records: &records,
        naming: &stream.naming,
        start_behind_s: 3.0 * span.asset_seconds,
        bitrate_bps: span.bitrate_bps as u64,
        client: None,
    };
    (playlists::hls(&listing), playlists::dash(&listing))
}

#[test]
fn assets_appear_under_predictable_names_and_are_indexed_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let notes = publish(config(dir.path()));
    let records = published(&notes);
    assert_eq!(records.len(), 3, "a 6 s capture with 2 s GOPs");
    assert_eq!(index(dir.path()), records);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.sequence, i as u64);
        assert_eq!(r.published_us, T0 + (i as u64 + 2) * 2_000_000);
        let asset = std::fs::metadata(dir.path().join(format!("asset-{i:08}.mp4"))).unwrap();
        assert_eq!(asset.len(), r.size);
    }
    for pair in records.windows(2) {
        assert_eq!(pair[0].end(), pair[1].start);
        assert_eq!(pair[0].datastamp + pair[0].media_len(), pair[1].datastamp);
    }
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let expected = [
        ".lock",
        "asset-00000000.mp4",
        "asset-00000000.mp4.maps",
        "asset-00000001.mp4",
        "asset-00000001.mp4.maps",
        "asset-00000002.mp4",
        "asset-00000002.mp4.maps",
        "index.bin",
        "stream.json",
    ];
    assert_eq!(
        names, expected,
        "no temporary file, no playlist left; the writer's lock stays"
    );
    let naming = Naming::default();
    for r in index(dir.path()) {
        let asset = std::fs::read(dir.path().join(naming.name(r.sequence))).unwrap();
        let maps = std::fs::read(dir.path().join(naming.maps_name(r.sequence))).unwrap();
        let start = r.header_len as usize - maps.len();
        assert_eq!(
            asset[start..r.header_len as usize],
            maps,
            "the maps box, alone"
        );
    }
}

#[test]
fn the_descriptor_is_written_when_init_arrives_and_ended_at_the_finish() {
    let dir = tempfile::tempdir().unwrap();
    let (mut publisher, resume) = Publisher::open(config(dir.path()), T0).unwrap();
    assert_eq!(resume, None);
    let mut events = events(None).into_iter();
    let started = events.next().unwrap();
    assert!(matches!(started, Event::Started { .. }));
    assert!(store::read_descriptor(dir.path()).unwrap().is_none());

    publisher.handle(started, T0, &mut Vec::new()).unwrap();
    let d = descriptor(dir.path());
    assert_eq!((d.timescale, d.tracks.len(), d.started_us), (12288, 2, T0));
    assert_eq!((d.ended, d.ended_us, d.first_sequence), (false, None, 0));
    assert_eq!(d.pattern, "asset-%08d.mp4");

    for event in events {
        publisher.handle(event, T0 + 1, &mut Vec::new()).unwrap();
    }
    assert!(!descriptor(dir.path()).ended);
    publisher.finish(T0 + 9, &mut Vec::new()).unwrap();
    let d = descriptor(dir.path());
    assert_eq!((d.ended, d.ended_us), (true, Some(T0 + 9)));
    // As written, down to what the file leaves out (track defaults).
    let json = |d: &Descriptor| serde_json::to_string(d).unwrap();
    assert_eq!(json(&d), json(publisher.descriptor()));
}

#[test]
fn a_publisher_that_never_started_writes_no_descriptor() {
    let dir = tempfile::tempdir().unwrap();
    let (mut publisher, _) = Publisher::open(config(dir.path()), T0).unwrap();
    publisher.finish(T0, &mut Vec::new()).unwrap();
    assert!(store::read_descriptor(dir.path()).unwrap().is_none());
    assert_eq!(publisher.published(), 0);
}

#[test]
fn retention_moves_first_sequence_before_deleting_files() {
    let dir = tempfile::tempdir().unwrap();
    let (d, asset) = (dir.path(), |s: u64| {
        dir.path().join(format!("asset-{s:08}.mp4"))
    });
    let (mut publisher, _) = Publisher::open(
        Config {
            keep_assets: Some(2),
            ..config(d)
        },
        T0,
    )
    .unwrap();
    let mut notes = Vec::new();
    let mut events = steps(None).into_iter().flatten().peekable();
    for _ in 0..3 {
        while let Some(Event::Fragment { .. }) = events.peek() {
            publisher
                .handle(events.next().unwrap(), T0, &mut notes)
                .unwrap();
        }
        publisher
            .handle(events.next().unwrap(), T0, &mut notes)
            .unwrap();
    }
    assert_eq!(published(&notes).len(), 2);
    assert_eq!(descriptor(d).first_sequence, 0);
    // Asset 0 cannot be deleted (a directory stands in its place): the
    // descriptor has let it go all the same, since it moves first.
    std::fs::remove_file(asset(0)).unwrap();
    std::fs::create_dir(asset(0)).unwrap();
    std::fs::write(asset(0).join("x"), b"x").unwrap();
    for event in events {
        publisher.handle(event, T0, &mut notes).unwrap();
    }
    assert_eq!(descriptor(d).first_sequence, 1);
    assert!(matches!(notes.get(2), Some(Note::Published(r)) if r.sequence == 2));
    // Its files are kept a while for players that listed it; then the
    // failed deletion is a warning, not a failure.
    publisher.finish(T0 + 1, &mut notes).unwrap();
    assert!(matches!(notes.get(3), Some(Note::Warning(w)) if w.contains("asset-00000000.mp4")));
    assert!(asset(1).is_file() && asset(2).is_file());
    assert_eq!(index(d).len(), 3, "the index keeps every record");
}

#[test]
fn playlists_are_written_when_enabled_as_a_reader_would_render_them() {
    for keep_assets in [None, Some(2)] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let enabled = Config {
            keep_assets,
            hls: true,
            dash: true,
            ..config(d)
        };
        let mut checked = 0;
        publish_with(enabled, |p| {
            if p.published() == 0 {
                assert!(!d.join("live.m3u8").exists());
                return;
            }
            let (hls, dash) = as_a_reader_renders(d);
            assert_eq!(
                std::fs::read_to_string(d.join("live-av.m3u8")).unwrap(),
                hls
            );
            assert!(std::fs::read_to_string(d.join("live.m3u8"))
                .unwrap()
                .ends_with("\nlive-av.m3u8\n"));
            assert_eq!(std::fs::read_to_string(d.join("live.mpd")).unwrap(), dash);
            checked += 1;
        });
        assert_eq!(checked, 4, "after each of 3 publishes and at the finish");
        let hls = std::fs::read_to_string(d.join("live-av.m3u8")).unwrap();
        assert!(hls.ends_with("#EXT-X-ENDLIST\n"));
        let first = if keep_assets.is_some() { 1 } else { 0 };
        assert!(hls.contains(&format!("#EXT-X-MEDIA-SEQUENCE:{first}\n")));
        assert_eq!(hls.matches("#EXTINF:").count(), 3 - first);
    }
    let dir = tempfile::tempdir().unwrap();
    publish(config(dir.path()));
    assert!(!dir.path().join("live.m3u8").exists() && !dir.path().join("live.mpd").exists());
}

#[test]
fn a_resumed_publisher_continues_the_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    publish(config(d));
    let (_, resume) = Publisher::open(config(d), T0 + 1).unwrap();
    let resume = resume.unwrap();
    assert_eq!((resume.next_sequence, resume.timescale), (3, 12288));

    let again = published(&publish(Config {
        hls: true,
        ..config(d)
    }));
    let sequences: Vec<u64> = again.iter().map(|r| r.sequence).collect();
    assert_eq!(sequences, [3, 4, 5]);
    let all = index(d);
    assert_eq!(all.len(), 6);
    assert!(all.windows(2).all(|p| p[0].end() == p[1].start));
    let desc = descriptor(d);
    assert_eq!(
        (desc.started_us, desc.ended),
        (T0, true),
        "the first run's start"
    );
    assert_eq!(
        as_a_reader_renders(d).0,
        std::fs::read_to_string(d.join("live-av.m3u8")).unwrap()
    );

    let fresh = published(&publish(Config {
        new: true,
        ..config(d)
    }));
    assert_eq!(fresh.first().map(|r| r.sequence), Some(0));
    assert_eq!(index(d).len(), 3);
}

#[test]
fn an_index_without_records_does_not_impose_its_timescale() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(INDEX_FILE);
    // A run that received an initialisation at 1000 ticks/s, then stopped.
    crate::stream::index::IndexWriter::open(&path, 1000, false).unwrap();
    publish(config(dir.path()));
    assert_eq!(Index::open(&path).unwrap().timescale, 12288);
    assert_eq!(index(dir.path()).len(), 3);
}

#[test]
fn a_resumed_publisher_under_a_tighter_rule_expires_at_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    publish(config(d));
    let (mut publisher, resume) = Publisher::open(
        Config {
            keep_assets: Some(2),
            ..config(d)
        },
        T0,
    )
    .unwrap();
    let started = events(resume).into_iter().next().unwrap();
    publisher.handle(started, T0, &mut Vec::new()).unwrap();
    assert_eq!(descriptor(d).first_sequence, 1);
    assert!(!d.join("asset-00000000.mp4").exists());
    assert!(d.join("asset-00000001.mp4").exists());
}

/// Publishes until the first failure, with `name` a directory from the
/// start: the publish of that file cannot complete.
fn fail_on(name: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        hls: true,
        ..config(dir.path())
    };
    let (mut publisher, resume) = Publisher::open(config, T0).unwrap();
    std::fs::create_dir(dir.path().join(name)).unwrap();
    let mut notes = Vec::new();
    let failed = events(resume)
        .into_iter()
        .find_map(|event| publisher.handle(event, T0, &mut notes).err())
        .expect("a publish fails");
    (dir, failed.to_string())
}

#[test]
fn no_temporary_file_is_left_by_a_failed_publish_of_any_file() {
    for name in ["stream.json", "asset-00000001.mp4", "live.m3u8"] {
        let (dir, failed) = fail_on(name);
        assert!(failed.contains(name), "{name}: {failed}");
        let leftovers: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("partial"))
            .collect();
        assert!(leftovers.is_empty(), "{name}: {leftovers:?}");
    }
}
