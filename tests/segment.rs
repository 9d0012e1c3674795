//! `backset segment` end to end on the real fixtures, checked with ffmpeg.

mod common;

use common::*;

#[test]
fn no_sample_is_lost_or_doubled_played_back_to_back() {
    for name in FIXTURES {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        segment(&out, &fixture(name), &["--interval", "1s"]);
        assert!(records(&out).len() >= 3, "{name}: expected several assets");
        let joined = dir.path().join("joined.mp4");
        concatenated(&out, &joined);
        let (a, b) = (framemd5(&fixture(name)), framemd5(&joined));
        assert!(!a.is_empty());
        assert_same_frames(&a, &b, &format!("{name} back to back"));
    }
}

#[test]
fn each_asset_plays_on_its_own_and_together_they_hold_every_sample() {
    for name in FIXTURES {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        segment(&out, &fixture(name), &["--interval", "1s"]);
        let mut together: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for asset in asset_paths(&out) {
            let errors = decode_errors(&asset);
            assert!(
                errors.is_empty(),
                "{name}: {} does not decode cleanly: {errors}",
                asset.display()
            );
            for (stream, lines) in framemd5(&asset) {
                together.entry(stream).or_default().extend(lines);
            }
        }
        assert_same_frames(
            &payloads(&framemd5(&fixture(name))),
            &payloads(&together),
            &format!("{name} asset by asset"),
        );
    }
}

#[test]
fn every_key_frame_is_an_entry_point_and_starts_its_asset() {
    for name in VIDEO_FIXTURES {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        segment(&out, &fixture(name), &["--interval", "1s"]);
        let keys = video_packet_flags(&fixture(name))
            .iter()
            .filter(|f| f.starts_with('K'))
            .count();
        let mut entries = 0;
        for asset in asset_paths(&out) {
            let bytes = std::fs::read(&asset).unwrap();
            let m = maps(&asset);
            entries += m.entries.len();
            for e in &m.entries {
                assert_eq!(
                    fragment_box_at(&bytes, e.offset as usize),
                    b"moof",
                    "{name}: entry offset {} is not a moof",
                    e.offset
                );
            }
            let flags = video_packet_flags(&asset);
            assert!(
                flags[0].starts_with('K'),
                "{name}: {} starts with a non-key frame",
                asset.display()
            );
            // Each entry point's fragment, read alone after the headers, starts with a key frame.
            let header_len = m.entries[0].offset as usize;
            for e in &m.entries {
                let cut = dir.path().join("cut.mp4");
                let mut b = bytes[..header_len].to_vec();
                b.extend_from_slice(&bytes[e.offset as usize..]);
                std::fs::write(&cut, b).unwrap();
                assert!(
                    video_packet_flags(&cut)[0].starts_with('K'),
                    "{name}: entry at {} is not a key frame",
                    e.offset
                );
            }
        }
        assert_eq!(entries, keys, "{name}: one entry point per key frame");
    }
}

#[test]
fn timestamps_are_continuous_and_datastamps_count_fragment_bytes() {
    for name in FIXTURES {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        segment(&out, &fixture(name), &["--interval", "1s"]);
        let records = records(&out);
        assert_eq!(records[0].start, 0);
        assert_eq!(records[0].datastamp, 0);
        let mut last_datastamp = None;
        for (i, (r, path)) in records.iter().zip(asset_paths(&out)).enumerate() {
            assert_eq!(r.sequence, i as u64);
            assert_eq!(std::fs::metadata(&path).unwrap().len(), r.size);
            if let Some(next) = records.get(i + 1) {
                assert_eq!(
                    r.start + r.duration,
                    next.start,
                    "{name}: gap or overlap after asset {i}"
                );
                assert_eq!(
                    r.datastamp + r.media_len(),
                    next.datastamp,
                    "{name}: datastamps skip after asset {i}"
                );
            }
            assert!(r.duration > 0);
            let m = maps(&path);
            assert_eq!(
                (m.sequence, m.start, m.duration, m.start_datastamp),
                (r.sequence, r.start, r.duration, r.datastamp)
            );
            assert_eq!(m.entries[0].timestamp, r.start);
            assert_eq!(m.entries[0].offset, u64::from(r.header_len));
            for e in &m.entries {
                assert_eq!(
                    e.datastamp,
                    r.datastamp + e.offset - u64::from(r.header_len)
                );
                assert!(
                    last_datastamp.is_none_or(|d| e.datastamp > d),
                    "{name}: datastamps must strictly increase"
                );
                assert!(e.timestamp >= r.start && e.timestamp < r.start + r.duration);
                last_datastamp = Some(e.datastamp);
            }
        }
    }
}

#[test]
fn interval_cuts_at_the_first_key_frame_after_it() {
    // Key frames at 0, 0.75, 2.083, 2.5, 4.208, 5.5 s.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    segment(
        &out,
        &fixture("h264-aac-fragdur.mp4"),
        &["--interval", "2s"],
    );
    let starts: Vec<f64> = records(&out)
        .iter()
        .map(|r| r.start as f64 / 12288.0)
        .collect();
    let rounded: Vec<i64> = starts.iter().map(|s| (s * 1000.0).round() as i64).collect();
    assert_eq!(rounded, vec![0, 2083, 4208]);
}

#[test]
fn size_cuts_at_the_first_key_frame_once_reached() {
    let size = 20 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    segment(
        &out,
        &fixture("h264-every-frame.mp4"),
        &["--interval", "1h", "--size", "20KiB"],
    );
    let records = records(&out);
    assert!(records.len() >= 2);
    for (r, path) in records
        .iter()
        .zip(asset_paths(&out))
        .take(records.len() - 1)
    {
        assert!(
            r.media_len() >= size,
            "asset {} cut before reaching the size",
            r.sequence
        );
        let last_entry = maps(&path).entries.last().unwrap().datastamp;
        assert!(
            last_entry - r.datastamp < size,
            "asset {} went past a key frame after reaching the size",
            r.sequence
        );
    }
}

#[test]
fn a_pipe_gives_the_same_assets_as_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let (from_file, from_pipe) = (dir.path().join("file"), dir.path().join("pipe"));
    let name = fixture("hevc-aac-separate-moof.mp4");
    segment(&from_file, &name, &[]);
    let o = backset()
        .args(["segment", from_pipe.to_str().unwrap(), "-", "-q"])
        .stdin(std::fs::File::open(&name).unwrap())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let strip = |rs: Vec<backset::stream::index::Record>| {
        rs.into_iter()
            .map(|r| (r.sequence, r.start, r.duration, r.datastamp, r.size))
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(records(&from_file)), strip(records(&from_pipe)));
}

#[test]
fn a_second_run_continues_the_transmission_unless_new() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    segment(&out, &fixture("h264-aac-gop.mp4"), &[]);
    let first = records(&out);
    segment(&out, &fixture("h264-aac-gop.mp4"), &[]);
    let both = records(&out);
    assert_eq!(both.len(), 2 * first.len());
    for pair in both.windows(2) {
        assert_eq!(pair[0].sequence + 1, pair[1].sequence);
        assert_eq!(pair[0].start + pair[0].duration, pair[1].start);
        assert_eq!(pair[0].datastamp + pair[0].media_len(), pair[1].datastamp);
    }
    // The continued assets' own decode times go on too: back to back, the
    // whole transmission plays as one stream.
    let joined = dir.path().join("joined.mp4");
    concatenated(&out, &joined);
    assert_eq!(decode_errors(&joined), "");
    let streams = framemd5(&joined);
    assert_eq!(
        streams["0"].len(),
        2 * framemd5(&fixture("h264-aac-gop.mp4"))["0"].len()
    );
    let descriptor: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("stream.json")).unwrap()).unwrap();
    assert_eq!(descriptor["ended"], true);

    segment(&out, &fixture("h264-aac-gop.mp4"), &["--new"]);
    assert_eq!(records(&out).len(), first.len());
    assert!(!out.join(format!("asset-{:08}.mp4", first.len())).exists());
}

#[test]
fn names_are_predictable_with_a_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    segment(&out, &fixture("aac-only.mp4"), &["--prefix", "cam1"]);
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".mp4"))
        .collect();
    let count = records(&out).len();
    for n in 0..count {
        assert!(names.contains(&format!("cam1-{n:08}.mp4")));
    }
    assert_eq!(names.len(), count, "no temporary or stray files: {names:?}");
    let d: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("stream.json")).unwrap()).unwrap();
    assert_eq!(d["pattern"], "cam1-%08d.mp4");
}

#[test]
fn inspect_prints_the_maps() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    segment(
        &out,
        &fixture("h264-aac-fragdur.mp4"),
        &["--interval", "2s"],
    );
    let asset = out.join("asset-00000001.mp4");
    let o = run(&["inspect", asset.to_str().unwrap(), "--json"]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["sequence"], 1);
    assert_eq!(v["entries"].as_array().unwrap().len(), 2);
    assert!((v["start"].as_f64().unwrap() - 2.0833).abs() < 0.001);
    assert!((v["entries"][1]["timestamp"].as_f64().unwrap() - 2.5).abs() < 0.001);
    let text = run(&["inspect", asset.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("sequence 1"));
    let bad = run(&["inspect", fixture("aac-only.mp4").to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("no backset maps box"));
}

#[test]
fn inspect_lists_the_scte35_messages_carried_through() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    segment(&out, &fixture("h264-aac-emsg.mp4"), &["--interval", "1s"]);
    let mut found = Vec::new();
    for asset in asset_paths(&out) {
        let o = run(&["inspect", asset.to_str().unwrap(), "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        for e in v["events"].as_array().unwrap() {
            found.push((v["sequence"].as_u64().unwrap(), e.clone()));
        }
    }
    assert_eq!(found.len(), 2, "{found:?}");
    // The ad break goes out at 1.5 s for 2 s, in the asset from 1 s.
    let (sequence, out_event) = &found[0];
    assert_eq!(*sequence, 1);
    assert_eq!(out_event["scheme"], "urn:scte:scte35:2013:bin");
    assert_eq!(out_event["id"], 1001);
    assert!((out_event["time"].as_f64().unwrap() - 1.5).abs() < 0.001);
    assert_eq!(out_event["duration"].as_f64(), Some(2.0));
    // A splice_info_section: table id 0xfc.
    assert!(out_event["message"].as_str().unwrap().starts_with("fc"));
    let (sequence, in_event) = &found[1];
    assert_eq!(*sequence, 3);
    assert_eq!(in_event["id"], 1002);
    let text = run(&["inspect", asset_paths(&out)[1].to_str().unwrap()]);
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    assert!(text.contains("emsg at 1.500 s"), "{text}");
}
