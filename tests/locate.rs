//! `backset locate` and `backset verify` end to end on the real fixtures.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::live::paced_segment;
use common::*;

/// Key frames of this fixture: 0, 0.75, 2.083, 2.5, 4.208, 5.5 s; live edge 6 s.
const FRAGDUR: &str = "h264-aac-fragdur.mp4";
const LONGEST_GOP: f64 = 1.71;

fn locate_json(out: &Path, args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let mut all = vec!["locate", out.to_str().unwrap(), "--json"];
    all.extend_from_slice(args);
    let o = run(&all);
    let v = serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
    (o.status.code(), v, stderr(&o))
}

/// The asset's headers plus its bytes from `offset` on, as a client would
/// fetch them.
fn from_offset(asset: &Path, offset: u64, header_len: u64, dest: &Path) {
    let bytes = std::fs::read(asset).unwrap();
    let mut v = bytes[..header_len as usize].to_vec();
    v.extend_from_slice(&bytes[offset as usize..]);
    std::fs::write(dest, v).unwrap();
}

#[test]
fn a_backset_resolves_to_a_key_frame_that_plays_from_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    segment(&out, &fixture(FRAGDUR), &["--interval", "1s"]);
    for backset in [0.0, 0.4, 1.0, 2.0, 3.5, 5.0, 6.0] {
        let (code, v, err) = locate_json(&out, &["--backset", &format!("{backset}s")]);
        assert_eq!(code, Some(0), "{err}");
        let achieved = v["backset"].as_f64().unwrap();
        assert!(
            achieved >= backset - 1e-9 && achieved < backset + LONGEST_GOP,
            "backset {backset}: achieved {achieved}"
        );
        assert!((6.0 - v["timestamp"].as_f64().unwrap() - achieved).abs() < 1e-6);
        let asset = Path::new(v["path"].as_str().unwrap());
        assert_eq!(
            asset.file_name().unwrap().to_str().unwrap(),
            v["asset"].as_str().unwrap()
        );
        let cut = dir.path().join("cut.mp4");
        from_offset(
            asset,
            v["offset"].as_u64().unwrap(),
            v["header_len"].as_u64().unwrap(),
            &cut,
        );
        assert_eq!(decode_errors(&cut), "", "backset {backset}");
        let flags = video_packet_flags(&cut);
        assert!(flags[0].starts_with('K'));
        // It plays exactly the asset's frames from that key frame on (24 fps).
        let record = records(&out)[v["sequence"].as_u64().unwrap() as usize];
        let end = (record.start + record.duration) as f64 / 12288.0;
        let frames = (end - v["timestamp"].as_f64().unwrap()) * 24.0;
        assert_eq!(flags.len(), frames.round() as usize, "backset {backset}");
    }
}

#[test]
fn at_and_datastamp_resolve_the_same_way() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    segment(&out, &fixture(FRAGDUR), &["--interval", "1s"]);
    let (code, v, _) = locate_json(&out, &["--at", "2.4s"]);
    assert_eq!(code, Some(0));
    assert!((v["timestamp"].as_f64().unwrap() - 2.0833).abs() < 1e-3);
    let ds = v["datastamp"].as_u64().unwrap();
    let (_, by_data, _) = locate_json(&out, &["--datastamp", &(ds + 10).to_string()]);
    assert_eq!(by_data["datastamp"].as_u64(), Some(ds));
    assert_eq!(by_data["offset"], v["offset"]);
    let (_, exact, _) = locate_json(&out, &["--datastamp", &ds.to_string()]);
    assert_eq!(exact["datastamp"].as_u64(), Some(ds));
    let (code, _, err) = locate_json(&out, &["--at", "1h02m"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("not transmitted yet"), "{err}");
    let text = run(&["locate", out.to_str().unwrap(), "--at", "2.4s"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("key frame at 2.083 s"));
}

#[test]
fn older_than_the_window_fails_unless_clamped() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    segment(
        &out,
        &fixture(FRAGDUR),
        &["--interval", "0.5s", "--keep-assets", "2"],
    );
    assert!(
        !out.join("asset-00000000.mp4").exists(),
        "expired assets are deleted"
    );
    let (code, _, err) = locate_json(&out, &["--backset", "5s"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("older than the retained window (assets 3..=4, 4.208 s to 6.000 s)"),
        "{err}"
    );
    let (code, v, _) = locate_json(&out, &["--backset", "5s", "--clamp"]);
    assert_eq!(code, Some(0));
    assert_eq!(v["sequence"], 3);
    assert_eq!(v["window"]["oldest_sequence"], 3);
    let verify = run(&["verify", out.to_str().unwrap()]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

#[test]
fn keep_deletes_by_time_behind_the_live_edge() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    segment(
        &out,
        &fixture(FRAGDUR),
        &["--interval", "0.5s", "--keep", "2s"],
    );
    // Edge 6 s: assets ending after 4 s are kept (2.083-4.208, 4.208-5.5, 5.5-6).
    let (_, v, _) = locate_json(&out, &["--backset", "0s"]);
    assert_eq!(v["window"]["oldest_sequence"], 2);
    assert!(!out.join("asset-00000001.mp4").exists());
    assert!(out.join("asset-00000002.mp4").exists());
}

#[test]
fn the_wall_clock_measures_from_now_on_receive_times() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    segment(&out, &fixture(FRAGDUR), &["--interval", "1s"]);
    std::thread::sleep(Duration::from_millis(1200));
    let (code, v, err) = locate_json(&out, &["--backset", "1s", "--clock", "wall"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(v["backset"].as_f64().unwrap() >= 1.0);
    // Everything was received at once, a second ago: the newest key frame.
    assert!((v["timestamp"].as_f64().unwrap() - 5.5).abs() < 1e-3);
    let (code, _, _) = locate_json(&out, &["--backset", "1h", "--clock", "wall"]);
    assert_eq!(code, Some(1));
}

#[test]
fn bad_usage_and_missing_streams_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&["locate", dir.path().to_str().unwrap(), "--backset", "3s"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not a backset stream directory"));
    let o = run(&["locate", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["locate", dir.path().to_str().unwrap(), "--backset", "soon"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("bad duration"));
}

#[test]
fn verify_passes_on_a_good_directory_and_lists_each_problem() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    segment(&out, &fixture("h264-aac-gop.mp4"), &["--interval", "1s"]);
    let good = run(&["verify", out.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&good.stdout).unwrap();
    assert_eq!(good.status.code(), Some(0), "{v}");
    assert_eq!(v["assets_checked"], 3);

    // Damage: a moof's size in asset 1, asset 2 gone, a stray asset name.
    let a1 = out.join("asset-00000001.mp4");
    let m = maps(&a1);
    let mut bytes = std::fs::read(&a1).unwrap();
    let at = m.entries[0].offset as usize;
    bytes[at + 3] ^= 0x40;
    std::fs::write(&a1, bytes).unwrap();
    std::fs::remove_file(out.join("asset-00000002.mp4")).unwrap();
    std::fs::write(out.join("asset-00000009.mp4"), b"stray").unwrap();
    let bad = run(&["verify", out.to_str().unwrap(), "--json"]);
    assert_eq!(bad.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&bad.stdout).unwrap();
    let problems = v["problems"].as_array().unwrap();
    let about = |file: &str| problems.iter().filter(|p| p["file"] == file).count();
    assert!(about("asset-00000001.mp4") >= 1, "{v}");
    assert!(
        problems
            .iter()
            .any(|p| p["file"] == "asset-00000001.mp4" && p["offset"] == at as u64),
        "{v}"
    );
    assert_eq!(about("asset-00000002.mp4"), 1, "{v}");
    assert_eq!(about("asset-00000009.mp4"), 1, "{v}");
    assert_eq!(about("asset-00000000.mp4"), 0, "{v}");
    let text = run(&["verify", out.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&text.stdout).contains(&format!("asset-00000001.mp4 at byte {at}"))
    );
}

#[test]
fn locate_never_returns_an_unpublished_asset_while_segment_writes() {
    let bytes = std::fs::read(fixture("h264-every-frame.mp4")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // A paced feed: the 4 s capture over about 2 s.
    let (mut child, feeder) = paced_segment(
        &out,
        bytes,
        2048,
        Duration::from_millis(40),
        &["--interval", "0.2s"],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut answers, mut sequences) = (0, std::collections::BTreeSet::new());
    while !feeder.is_finished() && Instant::now() < deadline {
        let (code, v, err) = locate_json(&out, &["--backset", "0s"]);
        if code == Some(0) {
            let path = Path::new(v["path"].as_str().unwrap()).to_path_buf();
            let record = records(&out)
                .into_iter()
                .find(|r| r.sequence == v["sequence"].as_u64().unwrap())
                .unwrap();
            let len = std::fs::metadata(&path).unwrap().len();
            assert_eq!(len, record.size, "a located asset is complete");
            assert!(v["offset"].as_u64().unwrap() < len);
            answers += 1;
            sequences.insert(record.sequence);
        } else {
            // Before the first publish there is nothing to answer yet.
            assert!(
                err.contains("not a backset stream directory") || err.contains("no asset"),
                "{err}"
            );
        }
    }
    feeder.join().unwrap();
    assert!(child.wait().unwrap().success());
    assert!(answers >= 5, "only {answers} answers");
    assert!(sequences.len() >= 3, "the live edge moved: {sequences:?}");
    assert!(run(&["verify", out.to_str().unwrap()]).status.success());
}
