//! Checking a stream directory: every asset against the index and against
//! its own maps, and the index against itself.
//!
//! The checks are pure functions over bytes and records (`check_asset`,
//! `index_problems`, `stray`); [`verify_dir`] reads the directory and feeds
//! them.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;

use crate::capture::fragment;
use crate::capture::framing::{Framer, RawBox};
use crate::capture::init::{Init, TrackKind};
use crate::capture::maps::Maps;
use crate::stream::index::{Record, RECORD_LEN};
use crate::stream::naming::Naming;
use crate::stream::reader::Stream;
use crate::stream::store::INDEX_FILE;
use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The file concerned.
    pub file: String,
    /// Byte offset in that file, where one applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    pub problem: String,
}

impl Problem {
    pub(crate) fn new(file: &str, offset: Option<u64>, problem: String) -> Problem {
        Problem {
            file: file.to_string(),
            offset,
            problem,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub ok: bool,
    pub assets_checked: u64,
    pub problems: Vec<Problem>,
    /// Not problems: an asset being published (renamed into place, its
    /// index record not yet appended), a temporary file.
    pub notes: Vec<Problem>,
}

/// Problems in one asset as (byte offset, text), in the order found.
pub(crate) type Found = Vec<(Option<u64>, String)>;

/// Checks one asset's bytes against its index record.
pub(crate) fn check_asset(bytes: &[u8], record: &Record) -> Found {
    let mut found = Found::new();
    if bytes.len() as u64 != record.size {
        found.push((
            None,
            format!("size {} but the index says {}", bytes.len(), record.size),
        ));
    }
    let boxes = top_boxes(bytes, &mut found);
    let Some((init, maps, maps_at)) = header(&boxes, record, &mut found) else {
        return found;
    };
    // An asset cut for safety without a key frame has no entry point.
    let keyed = !maps.entries.is_empty();
    let starts_with_key = key_frame_moofs(&init, &boxes, keyed, &mut found);
    check_entries(&maps, record, &starts_with_key, &mut found);
    if keyed && maps.entries.first().map(|e| e.timestamp) != Some(record.start) {
        found.push((
            Some(maps_at),
            "the first entry point is not at the asset's start".into(),
        ));
    }
    found
}

/// The asset's top-level boxes, as far as they frame.
fn top_boxes(bytes: &[u8], found: &mut Found) -> Vec<RawBox> {
    let mut framer = Framer::default();
    framer.push(bytes);
    let mut boxes = Vec::new();
    loop {
        match framer.next_box() {
            Ok(Some(b)) => boxes.push(b),
            Ok(None) => break,
            Err(e) => {
                found.push((Some(framer.offset()), e.to_string()));
                break;
            }
        }
    }
    if let Some((kind, offset, have, need)) = framer.unfinished() {
        found.push((
            Some(offset),
            format!("truncated {kind}: {have} of {need} bytes"),
        ));
    }
    boxes
}

/// The asset's header: its init, and its maps (with the maps box's offset)
/// checked against the record. `None` when the rest cannot be checked.
fn header(boxes: &[RawBox], record: &Record, found: &mut Found) -> Option<(Init, Maps, u64)> {
    let find = |kind: &[u8; 4]| boxes.iter().find(|b| &b.kind == kind);
    // A fragment begins with the event boxes (emsg, prft) before its moof.
    let first_moof = boxes
        .iter()
        .find(|b| &b.kind == b"moof" || is_event_box(&b.kind));
    let (Some(moov), Some(first_moof)) = (find(b"moov"), first_moof) else {
        found.push((None, "no moov or no moof".into()));
        return None;
    };
    let init = match Init::parse(find(b"ftyp"), moov) {
        Ok(i) => i,
        Err(e) => {
            found.push((Some(moov.offset), e.to_string()));
            return None;
        }
    };
    if first_moof.offset != u64::from(record.header_len) {
        found.push((
            Some(first_moof.offset),
            format!(
                "first moof at byte {} but the index says the header is {} bytes",
                first_moof.offset, record.header_len
            ),
        ));
    }
    let Some(maps_box) = boxes.iter().find(|b| Maps::is_maps_box(&b.bytes)) else {
        found.push((None, "no maps box".into()));
        return None;
    };
    let maps = match Maps::decode(&maps_box.bytes) {
        Ok(m) => m,
        Err(e) => {
            found.push((Some(maps_box.offset), e));
            return None;
        }
    };
    let summary = |m: &Maps| {
        let count = m.entries.len() as u64;
        (m.sequence, m.start, m.duration, m.start_datastamp, count)
    };
    let indexed = (
        record.sequence,
        record.start,
        record.duration,
        record.datastamp,
        u64::from(record.entries),
    );
    if summary(&maps) != indexed {
        found.push((Some(maps_box.offset), "maps disagree with the index record (sequence, start, duration, datastamp or entry count)".into()));
    }
    Some((init, maps, maps_box.offset))
}

/// The offsets of the `moof`s whose fragment opens with a key frame of the
/// reference track (with any sample, for audio). Only a `keyed` asset must
/// open with a key frame.
fn key_frame_moofs(init: &Init, boxes: &[RawBox], keyed: bool, found: &mut Found) -> BTreeSet<u64> {
    let reference = init.reference();
    let video = init.tracks[reference].kind == TrackKind::Video;
    let mut starts_with_key = BTreeSet::new();
    let mut next_dts = vec![None; init.tracks.len()];
    let mut first_video_checked = false;
    // Where the fragment begins: at the event boxes before its moof.
    let mut events_at: Option<u64> = None;
    for pair in boxes.windows(2) {
        let (moof, mdat) = (&pair[0], &pair[1]);
        if is_event_box(&moof.kind) {
            events_at = events_at.or(Some(moof.offset));
            continue;
        }
        if &moof.kind != b"moof" {
            events_at = None;
            continue;
        }
        let start = events_at.take().unwrap_or(moof.offset);
        if &mdat.kind != b"mdat" {
            found.push((Some(moof.offset), "moof not followed by its mdat".into()));
            continue;
        }
        let f = match fragment::parse(init, moof, mdat, &mut next_dts) {
            Ok(f) => f,
            Err(e) => {
                found.push((Some(moof.offset), e.to_string()));
                continue;
            }
        };
        let first_ref = f
            .runs
            .iter()
            .find(|r| r.track == reference)
            .map(|r| f.samples[r.samples.start]);
        let Some(s) = first_ref else {
            continue;
        };
        if !video || s.is_sync() {
            starts_with_key.insert(start);
        }
        if keyed && video && !first_video_checked && !s.is_sync() {
            found.push((
                Some(moof.offset),
                "the asset's first video sample is not a key frame".into(),
            ));
        }
        first_video_checked = true;
    }
    starts_with_key
}

/// The boxes carried before a `moof` as part of its fragment.
fn is_event_box(kind: &[u8; 4]) -> bool {
    kind == b"emsg" || kind == b"prft"
}

/// Each entry point against the fragments, the record and the one before.
fn check_entries(maps: &Maps, record: &Record, starts_with_key: &BTreeSet<u64>, found: &mut Found) {
    let mut previous: Option<(u64, u64)> = None;
    for (n, e) in maps.entries.iter().enumerate() {
        let mut say = |text: String| found.push((Some(e.offset), text));
        if !starts_with_key.contains(&e.offset) {
            say(format!(
                "entry {n} does not point at a moof that opens with a key frame"
            ));
        }
        let expected = (record.datastamp.checked_add(e.offset))
            .and_then(|d| d.checked_sub(u64::from(record.header_len)));
        if Some(e.datastamp) != expected {
            say(format!(
                "entry {n} datastamp {} disagrees with its offset (expected {expected:?})",
                e.datastamp
            ));
        }
        if e.timestamp < record.start || e.timestamp >= record.end() {
            say(format!(
                "entry {n} timestamp {} lies outside the asset's interval",
                e.timestamp
            ));
        }
        if let Some((ts, ds)) = previous {
            if e.timestamp <= ts || e.datastamp <= ds {
                say(format!(
                    "entry {n}: timestamps and datastamps must strictly increase"
                ));
            }
        }
        previous = Some((e.timestamp, e.datastamp));
    }
}

/// Checks the whole directory. `progress(done, total)` is called as assets
/// are checked.
pub fn verify_dir(dir: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<Report> {
    let stream = Stream::open(dir)?;
    let records: Vec<Record> = stream.index.iter().flatten().collect();
    let mut problems = index_problems(&records);
    let mut notes = Vec::new();
    match index_tail(stream.index.tail()) {
        Some((true, p)) => problems.push(p),
        Some((false, n)) => notes.push(n),
        None => {}
    }
    let retained: Vec<&Record> = records
        .iter()
        .filter(|r| r.sequence >= stream.descriptor.first_sequence)
        .collect();
    problems.extend(check_assets(dir, &stream.naming, &retained, progress));

    let listed: BTreeSet<u64> = retained.iter().map(|r| r.sequence).collect();
    let next = records.last().map_or(0, |r| r.sequence.saturating_add(1));
    let kept_after_expiry = match stream.descriptor.ended {
        true => 0..0,
        false => records.first().map_or(0, |r| r.sequence)..stream.descriptor.first_sequence,
    };
    for name in file_names(dir)? {
        let Some(sequence) = stream.naming.sequence_of(&name) else {
            continue;
        };
        if let Some(s) = stray(sequence, next, &listed, kept_after_expiry.clone()) {
            let (problem, text) = s.said();
            let list = if problem { &mut problems } else { &mut notes };
            list.push(Problem::new(&name, None, text.into()));
        }
    }
    Ok(Report {
        ok: problems.is_empty(),
        assets_checked: retained.len() as u64,
        problems,
        notes,
    })
}

/// The index against itself: consecutive records follow on in sequence,
/// time and data.
pub(crate) fn index_problems(records: &[Record]) -> Vec<Problem> {
    let mut problems = Vec::new();
    for pair in records.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let problem = if Some(b.sequence) != a.sequence.checked_add(1) {
            format!("sequence gap: {} then {}", a.sequence, b.sequence)
        } else if a.end() != b.start {
            format!(
                "timestamps not continuous between assets {} and {}",
                a.sequence, b.sequence
            )
        } else if a.datastamp + a.media_len() != b.datastamp {
            format!(
                "datastamps not continuous between assets {} and {}",
                a.sequence, b.sequence
            )
        } else {
            continue;
        };
        problems.push(Problem::new(INDEX_FILE, None, problem));
    }
    problems
}

/// What follows the index's valid records, at (offset, size): less than a
/// record is an append caught half-way (a note: the next writer cuts it
/// off); more is damage, whatever it holds.
fn index_tail(tail: Option<(u64, u64)>) -> Option<(bool, Problem)> {
    let (offset, size) = tail?;
    let damage = size >= RECORD_LEN as u64;
    let text = if damage {
        format!("{size} bytes of garbage after the last valid record: not records of this index (torn, overwritten or forged)")
    } else {
        format!("a torn last record ({size} bytes): an append interrupted (a restarted segment removes it)")
    };
    Some((damage, Problem::new(INDEX_FILE, Some(offset), text)))
}

/// Each retained asset's file against its record.
fn check_assets(
    dir: &Path,
    naming: &Naming,
    retained: &[&Record],
    progress: &mut dyn FnMut(u64, u64),
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let total = retained.len() as u64;
    for (done, record) in retained.iter().enumerate() {
        let name = naming.name(record.sequence);
        match std::fs::read(dir.join(&name)) {
            Ok(bytes) => problems.extend(
                check_asset(&bytes, record)
                    .into_iter()
                    .map(|(offset, problem)| Problem::new(&name, offset, problem)),
            ),
            Err(e) => problems.push(Problem::new(
                &name,
                None,
                format!("listed in the index but unreadable: {e}"),
            )),
        }
        progress(done as u64 + 1, total);
    }
    problems
}

/// The names of the files directly in `dir`.
fn file_names(dir: &Path) -> Result<Vec<String>> {
    walkdir::WalkDir::new(dir)
        .min_depth(1)
        .max_depth(1)
        .into_iter()
        .map(|entry| {
            let entry = entry.map_err(|e| Error::BadFile {
                path: dir.to_path_buf(),
                reason: e.to_string(),
            })?;
            Ok(entry.file_name().to_string_lossy().into_owned())
        })
        .collect()
}

/// What an asset file the index does not list as retained is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stray {
    /// The next asset, renamed into place before its record is appended.
    Publishing,
    /// Expired while live: the writer keeps its files a while for the
    /// players that listed it (`stream::expiry`).
    Expired,
    /// Never indexed, or expired in a transmission that has ended.
    Unlisted,
}

impl Stray {
    /// Whether it is a problem (else a note), and what is said of it.
    pub(crate) fn said(self) -> (bool, &'static str) {
        match self {
            Stray::Expired => (false, "expired: kept a while for the players that listed it (deleted once its time is up or the transmission ends)"),
            Stray::Publishing => (false, "written but not indexed yet: a publish in progress or interrupted (a restarted segment removes it)"),
            Stray::Unlisted => (true, "an asset file the index does not list (or lists as expired)"),
        }
    }
}

/// Asset `sequence` found on disk, `next` the sequence the index expects
/// next, `listed` the retained ones, `expired` the indexed ones before them
/// while the transmission is live: `None` when the file belongs.
pub(crate) fn stray(
    sequence: u64,
    next: u64,
    listed: &BTreeSet<u64>,
    expired: std::ops::Range<u64>,
) -> Option<Stray> {
    if sequence == next {
        Some(Stray::Publishing)
    } else if expired.contains(&sequence) {
        Some(Stray::Expired)
    } else if !listed.contains(&sequence) {
        Some(Stray::Unlisted)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::asset::Assembler;
    use crate::capture::maps::Entry;
    use crate::capture::segmenter::{Config, Event, Segmenter};

    /// The assets of a real capture, cut in-process, with their records.
    fn assets() -> Vec<(Vec<u8>, Record)> {
        let capture = include_bytes!("../../fixtures/h264-aac-gop.mp4");
        let mut segmenter = Segmenter::new(Config::default(), None);
        let mut events = Vec::new();
        segmenter.push(capture, 0, &mut events).unwrap();
        segmenter.finish(&mut events).unwrap();
        let mut assembler = Assembler::default();
        events
            .into_iter()
            .filter_map(|e| assembler.take(e))
            .filter_map(|e| match e {
                Event::Asset(a) => {
                    Some((a.slices().collect::<Vec<_>>().concat(), Record::of(&a, 0)))
                }
                _ => None,
            })
            .collect()
    }

    fn texts(found: Found) -> Vec<String> {
        found.into_iter().map(|(_, t)| t).collect()
    }

    #[test]
    fn assets_just_cut_have_no_problems() {
        let assets = assets();
        assert!(assets.len() >= 2, "{} assets", assets.len());
        for (bytes, record) in &assets {
            assert_eq!(check_asset(bytes, record), Found::new(), "{record:?}");
        }
        let records: Vec<Record> = assets.iter().map(|(_, r)| *r).collect();
        assert_eq!(index_problems(&records), Vec::new());
    }

    #[test]
    fn an_asset_that_disagrees_with_its_record_says_where() {
        let (bytes, record) = assets().swap_remove(1);
        let wrong_size = Record {
            size: record.size + 1,
            ..record
        };
        let found = check_asset(&bytes, &wrong_size);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, None);
        assert!(found[0].1.starts_with("size "), "{found:?}");

        let wrong_header = Record {
            header_len: record.header_len + 1,
            ..record
        };
        let found = check_asset(&bytes, &wrong_header);
        assert_eq!(found[0].0, Some(u64::from(record.header_len)), "{found:?}");
        assert!(found[0].1.starts_with("first moof at byte"), "{found:?}");

        let wrong_datastamp = Record {
            datastamp: record.datastamp + 1,
            ..record
        };
        let found = texts(check_asset(&bytes, &wrong_datastamp));
        assert!(
            found[0].starts_with("maps disagree with the index record"),
            "{found:?}"
        );
        assert!(found[1..]
            .iter()
            .all(|t| t.contains("disagrees with its offset")));
    }

    #[test]
    fn a_truncated_or_unmarked_asset_is_reported() {
        let (bytes, record) = assets().swap_remove(0);
        let cut = &bytes[..bytes.len() - 10];
        let found = texts(check_asset(cut, &record));
        assert!(found[0].starts_with("size "), "{found:?}");
        assert!(found[1].starts_with("truncated mdat"), "{found:?}");

        // The maps box renamed to `free`: no longer backset's.
        let mut unmarked = bytes.clone();
        let at = bytes
            .windows(4)
            .position(|w| w == b"uuid")
            .expect("a uuid box");
        unmarked[at..at + 4].copy_from_slice(b"free");
        assert_eq!(texts(check_asset(&unmarked, &record)), ["no maps box"]);

        let found = texts(check_asset(&bytes[..40], &record));
        assert_eq!(found.last().map(String::as_str), Some("no moov or no moof"));
    }

    /// A record of 2 s (timescale 1000) whose 100-byte header is followed by
    /// four 1000-byte GOPs, and its maps.
    fn record_and_maps() -> (Record, Maps) {
        let record = Record {
            sequence: 3,
            start: 6000,
            duration: 2000,
            datastamp: 12_000,
            size: 4100,
            header_len: 100,
            entries: 4,
            published_us: 0,
            init: 0,
        };
        let entries = (0..4)
            .map(|k| Entry {
                timestamp: 6000 + k * 500,
                datastamp: 12_000 + k * 1000,
                offset: 100 + k * 1000,
                wallclock_us: 0,
            })
            .collect();
        let maps = Maps {
            sequence: 3,
            timescale: 1000,
            start: 6000,
            duration: 2000,
            start_datastamp: 12_000,
            entries,
        };
        (record, maps)
    }

    #[test]
    fn entry_points_are_checked_against_fragments_record_and_order() {
        let (record, mut maps) = record_and_maps();
        let keys: BTreeSet<u64> = maps.entries.iter().map(|e| e.offset).collect();
        let mut found = Found::new();
        check_entries(&maps, &record, &keys, &mut found);
        assert_eq!(found, Found::new());

        maps.entries[1].datastamp += 1;
        maps.entries[2].timestamp = 9000;
        maps.entries[3].timestamp = 6100;
        let no_key = keys.iter().copied().filter(|&o| o != 100).collect();
        check_entries(&maps, &record, &no_key, &mut found);
        assert_eq!(
            found,
            vec![
                (
                    Some(100),
                    "entry 0 does not point at a moof that opens with a key frame".into()
                ),
                (
                    Some(1100),
                    "entry 1 datastamp 13001 disagrees with its offset (expected Some(13000))"
                        .into()
                ),
                (
                    Some(2100),
                    "entry 2 timestamp 9000 lies outside the asset's interval".into()
                ),
                (
                    Some(3100),
                    "entry 3: timestamps and datastamps must strictly increase".into()
                ),
            ]
        );
    }

    #[test]
    fn a_damaged_index_names_the_first_break_of_each_pair() {
        let (r, _) = record_and_maps();
        let next = |r: Record| Record {
            sequence: r.sequence + 1,
            start: r.end(),
            datastamp: r.datastamp + r.media_len(),
            ..r
        };
        let clean = [r, next(r), next(next(r))];
        assert_eq!(index_problems(&clean), Vec::new());

        let gap = next(next(r));
        let late = Record {
            start: next(r).start + 1,
            ..next(r)
        };
        let off = Record {
            datastamp: next(r).datastamp + 1,
            ..next(r)
        };
        let said = |records: &[Record]| -> Vec<String> {
            index_problems(records)
                .into_iter()
                .map(|p| {
                    assert_eq!((p.file.as_str(), p.offset), (INDEX_FILE, None));
                    p.problem
                })
                .collect()
        };
        assert_eq!(said(&[r, gap]), ["sequence gap: 3 then 5"]);
        assert_eq!(
            said(&[r, late]),
            ["timestamps not continuous between assets 3 and 4"]
        );
        assert_eq!(
            said(&[r, off, next(off)]),
            ["datastamps not continuous between assets 3 and 4"]
        );
    }

    #[test]
    fn an_unlisted_asset_is_a_publish_in_progress_only_when_it_is_next() {
        let listed: BTreeSet<u64> = (5..10).collect();
        assert_eq!(stray(7, 10, &listed, 0..0), None);
        assert_eq!(stray(10, 10, &listed, 0..0), Some(Stray::Publishing));
        assert_eq!(stray(4, 10, &listed, 0..0), Some(Stray::Unlisted));
        assert_eq!(stray(4, 10, &listed, 3..5), Some(Stray::Expired));
        assert_eq!(stray(11, 10, &listed, 3..5), Some(Stray::Unlisted));
    }
}
