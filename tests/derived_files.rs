//! The files players need beside the assets (each generation's init, all
//! tracks and one per track; each asset's fragments per track): written by
//! `segment --hls --dash`, and answered by `serve` from the assets alone
//! for a directory made without them, byte for byte the same.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use common::live::*;
use common::*;

fn get(url: &str, range: Option<&str>) -> (u16, Vec<u8>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = agent.get(url);
    if let Some(r) = range {
        req = req.header("range", r);
    }
    let mut resp = req.call().unwrap();
    let body = resp.body_mut().read_to_vec().unwrap();
    (resp.status().as_u16(), body)
}

/// The init files and track segments in `out`, by name.
fn derived(out: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .filter(|(n, _)| n.contains("-init-") || n.ends_with(".m4s"))
        .map(|(n, p)| (n, std::fs::read(p).unwrap()))
        .collect()
}

#[test]
fn serve_derives_what_segment_dash_writes_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let (written, plain) = (dir.path().join("written"), dir.path().join("plain"));
    let capture = fixture("h264-aac-gop.mp4");
    assert!(segment(&written, &capture, &["--hls", "--dash"])
        .status
        .success());
    assert!(segment(&plain, &capture, &[]).status.success());
    let files = derived(&written);
    assert!(
        derived(&plain).is_empty(),
        "nothing derived without playlists"
    );
    // 3 assets × 2 tracks, and generation 0 whole and per track.
    assert_eq!(files.len(), 9, "{:?}", files.keys());
    let (mut server, url) = start_server(&plain, "127.0.0.1:0");
    for (name, bytes) in &files {
        let (code, body) = get(&format!("{url}{name}"), None);
        assert_eq!(code, 200, "{name}");
        assert!(
            body == *bytes,
            "{name}: served bytes differ from the written file"
        );
    }
    let (code, part) = get(
        &format!("{url}asset-00000001.track2.m4s"),
        Some("bytes=8-15"),
    );
    assert_eq!(
        (code, part.as_slice()),
        (206, &files["asset-00000001.track2.m4s"][8..16])
    );
    assert_eq!(get(&format!("{url}asset-00000009.track1.m4s"), None).0, 404);
    assert_eq!(get(&format!("{url}asset-init-0001.mp4"), None).0, 404);
    assert_eq!(
        get(&format!("{url}asset-00000001.track01.m4s"), None).0,
        404
    );
    let (code, time) = get(&format!("{url}time"), None);
    let time = humantime::parse_rfc3339(std::str::from_utf8(&time).unwrap().trim()).unwrap();
    let off = time
        .duration_since(SystemTime::now())
        .unwrap_or_else(|e| e.duration());
    assert!(code == 200 && off < Duration::from_secs(2), "{off:?}");
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn derived_files_go_with_the_assets_they_come_from() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let args = ["--interval", "0.5s", "--keep-assets", "2", "--dash"];
    assert!(segment(&out, &fixture("h264-aac-fragdur.mp4"), &args)
        .status
        .success());
    let names: Vec<String> = derived(&out).into_keys().collect();
    assert!(names.contains(&"asset-init-0000.track1.mp4".to_string()));
    assert!(
        !names.iter().any(|n| n.starts_with("asset-00000000.")),
        "{names:?}"
    );
    let (mut server, url) = start_server(&out, "127.0.0.1:0");
    assert_eq!(get(&format!("{url}asset-00000000.track1.m4s"), None).0, 404);
    for name in &names {
        assert_eq!(get(&format!("{url}{name}"), None).0, 200, "{name}");
    }
    let _ = server.kill();
    let _ = server.wait();
}
