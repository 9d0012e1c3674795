//! Checking a stream directory: every asset against the index and against
//! its own maps, and the index against itself.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;

use crate::capture::fragment;
use crate::capture::framing::{Framer, RawBox};
use crate::capture::init::{Init, TrackKind};
use crate::capture::maps::Maps;
use crate::stream::descriptor::Descriptor;
use crate::stream::index::{Index, Record};
use crate::stream::naming::Naming;
use crate::stream::store::{read_descriptor, INDEX_FILE};
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

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub ok: bool,
    pub assets_checked: u64,
    pub problems: Vec<Problem>,
    /// Not problems: an asset being published (renamed into place, its
    /// index record not yet appended), a temporary file.
    pub notes: Vec<Problem>,
}

/// Checks one asset's bytes against its index record; problems come as
/// (byte offset, text).
pub fn check_asset(bytes: &[u8], record: &Record) -> Vec<(Option<u64>, String)> {
    let mut problems = Vec::new();
    let mut say = |offset: Option<u64>, text: String| problems.push((offset, text));
    if bytes.len() as u64 != record.size {
        say(
            None,
            format!("size {} but the index says {}", bytes.len(), record.size),
        );
    }
    let mut framer = Framer::default();
    framer.push(bytes);
    let mut boxes: Vec<RawBox> = Vec::new();
    loop {
        match framer.next_box() {
            Ok(Some(b)) => boxes.push(b),
            Ok(None) => break,
            Err(e) => {
                say(Some(framer.offset()), e.to_string());
                break;
            }
        }
    }
    if let Some((kind, offset, have, need)) = framer.unfinished() {
        say(
            Some(offset),
            format!("truncated {kind}: {have} of {need} bytes"),
        );
    }
    let find = |kind: &[u8; 4]| boxes.iter().find(|b| &b.kind == kind);
    let (Some(moov), Some(first_moof)) = (find(b"moov"), find(b"moof")) else {
        say(None, "no moov or no moof".into());
        return problems;
    };
    let init = match Init::parse(find(b"ftyp"), moov) {
        Ok(i) => i,
        Err(e) => {
            say(Some(moov.offset), e.to_string());
            return problems;
        }
    };
    if first_moof.offset != u64::from(record.header_len) {
        say(
            Some(first_moof.offset),
            format!(
                "first moof at byte {} but the index says the header is {} bytes",
                first_moof.offset, record.header_len
            ),
        );
    }
    let Some(maps_box) = boxes.iter().find(|b| Maps::is_maps_box(&b.bytes)) else {
        say(None, "no maps box".into());
        return problems;
    };
    let maps = match Maps::decode(&maps_box.bytes) {
        Ok(m) => m,
        Err(e) => {
            say(Some(maps_box.offset), e);
            return problems;
        }
    };
    if (
        maps.sequence,
        maps.start,
        maps.duration,
        maps.start_datastamp,
        maps.entries.len() as u64,
    ) != (
        record.sequence,
        record.start,
        record.duration,
        record.datastamp,
        u64::from(record.entries),
    ) {
        say(Some(maps_box.offset), "maps disagree with the index record (sequence, start, duration, datastamp or entry count)".into());
    }

    // Which fragments open with a key frame of the reference track.
    let reference = init.reference();
    let video = init.tracks[reference].kind == TrackKind::Video;
    let mut starts_with_key = BTreeSet::new();
    let mut next_dts = vec![None; init.tracks.len()];
    let mut first_video_checked = false;
    for pair in boxes.windows(2) {
        let (moof, mdat) = (&pair[0], &pair[1]);
        if &moof.kind != b"moof" {
            continue;
        }
        if &mdat.kind != b"mdat" {
            say(Some(moof.offset), "moof not followed by its mdat".into());
            continue;
        }
        match fragment::parse(&init, moof, mdat, &mut next_dts) {
            Ok(f) => {
                let first_ref = f
                    .runs
                    .iter()
                    .find(|r| r.track == reference)
                    .map(|r| f.samples[r.samples.start]);
                if let Some(s) = first_ref {
                    if !video || s.is_sync() {
                        starts_with_key.insert(moof.offset);
                    }
                    if video && !first_video_checked && !s.is_sync() {
                        say(
                            Some(moof.offset),
                            "the asset's first video sample is not a key frame".into(),
                        );
                    }
                    first_video_checked = true;
                }
            }
            Err(e) => say(Some(moof.offset), e.to_string()),
        }
    }

    let mut previous: Option<(u64, u64)> = None;
    for (n, e) in maps.entries.iter().enumerate() {
        let at = Some(e.offset);
        if !starts_with_key.contains(&e.offset) {
            say(
                at,
                format!("entry {n} does not point at a moof that opens with a key frame"),
            );
        }
        let expected = (record.datastamp + e.offset).checked_sub(u64::from(record.header_len));
        if Some(e.datastamp) != expected {
            say(
                at,
                format!(
                    "entry {n} datastamp {} disagrees with its offset (expected {expected:?})",
                    e.datastamp
                ),
            );
        }
        if e.timestamp < record.start || e.timestamp >= record.end() {
            say(
                at,
                format!(
                    "entry {n} timestamp {} lies outside the asset's interval",
                    e.timestamp
                ),
            );
        }
        if let Some((ts, ds)) = previous {
            if e.timestamp <= ts || e.datastamp <= ds {
                say(
                    at,
                    format!("entry {n}: timestamps and datastamps must strictly increase"),
                );
            }
        }
        previous = Some((e.timestamp, e.datastamp));
    }
    if maps.entries.first().map(|e| e.timestamp) != Some(record.start) {
        say(
            Some(maps_box.offset),
            "the first entry point is not at the asset's start".into(),
        );
    }
    problems
}

/// Checks the whole directory. `progress(done, total)` is called as assets
/// are checked.
pub fn verify_dir(dir: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<Report> {
    let descriptor: Descriptor = read_descriptor(dir)?.ok_or_else(|| Error::BadFile {
        path: dir.to_path_buf(),
        reason: "no stream.json: not a backset stream directory".into(),
    })?;
    let naming = Naming::new(&descriptor.prefix);
    let index = Index::open(&dir.join(INDEX_FILE))?;
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let index_name = INDEX_FILE.to_string();

    let records: Vec<Record> = index.iter().flatten().collect();
    for pair in records.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let problem = if b.sequence != a.sequence + 1 {
            Some(format!("sequence gap: {} then {}", a.sequence, b.sequence))
        } else if a.end() != b.start {
            Some(format!(
                "timestamps not continuous between assets {} and {}",
                a.sequence, b.sequence
            ))
        } else if a.datastamp + a.media_len() != b.datastamp {
            Some(format!(
                "datastamps not continuous between assets {} and {}",
                a.sequence, b.sequence
            ))
        } else {
            None
        };
        if let Some(problem) = problem {
            problems.push(Problem {
                file: index_name.clone(),
                offset: None,
                problem,
            });
        }
    }

    let retained: Vec<&Record> = records
        .iter()
        .filter(|r| r.sequence >= descriptor.first_sequence)
        .collect();
    let total = retained.len() as u64;
    for (done, record) in retained.iter().enumerate() {
        let name = naming.name(record.sequence);
        match std::fs::read(dir.join(&name)) {
            Ok(bytes) => {
                for (offset, problem) in check_asset(&bytes, record) {
                    problems.push(Problem {
                        file: name.clone(),
                        offset,
                        problem,
                    });
                }
            }
            Err(e) => problems.push(Problem {
                file: name.clone(),
                offset: None,
                problem: format!("listed in the index but unreadable: {e}"),
            }),
        }
        progress(done as u64 + 1, total);
    }

    // Files that look like assets but the index does not list as retained.
    let listed: BTreeSet<u64> = retained.iter().map(|r| r.sequence).collect();
    for entry in walkdir::WalkDir::new(dir).min_depth(1).max_depth(1) {
        let entry = entry.map_err(|e| Error::BadFile {
            path: dir.to_path_buf(),
            reason: e.to_string(),
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(sequence) = naming.sequence_of(&name) {
            let next = records.last().map_or(0, |r| r.sequence + 1);
            if sequence == next {
                notes.push(Problem {
                    file: name,
                    offset: None,
                    problem: "written but not indexed yet: a publish in progress or interrupted (a restarted segment removes it)".into(),
                });
            } else if !listed.contains(&sequence) {
                problems.push(Problem {
                    file: name,
                    offset: None,
                    problem: "an asset file the index does not list (or lists as expired)".into(),
                });
            }
        }
    }
    Ok(Report {
        ok: problems.is_empty(),
        assets_checked: total,
        problems,
        notes,
    })
}
