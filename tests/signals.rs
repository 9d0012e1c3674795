//! A live run stopped by SIGINT/SIGTERM publishes its last asset, records
//! that the transmission ended, and exits 0.

mod common;

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

fn stop_with(signal: &str) {
    let bytes = std::fs::read(fixture("h264-aac-gop.mp4")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut child = backset()
        .args([
            "segment",
            out.to_str().unwrap(),
            "-",
            "--interval",
            "1s",
            "-q",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Two thirds of the capture: asset 0 is complete, asset 1 is open.
    stdin.write_all(&bytes[..bytes.len() * 2 / 3]).unwrap();
    stdin.flush().unwrap();
    let first = out.join("asset-00000000.mp4");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !first.exists() {
        assert!(Instant::now() < deadline, "asset 0 never appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !out.join("asset-00000001.mp4").exists(),
        "asset 1 is still open"
    );
    let status = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let o = child.wait_with_output().unwrap();
    drop(stdin);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let records = records(&out);
    assert_eq!(records.len(), 2, "the open asset is published on {signal}");
    for asset in asset_paths(&out) {
        assert_eq!(decode_errors(&asset), "");
    }
    let d: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("stream.json")).unwrap()).unwrap();
    assert_eq!(d["ended"], true);
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn sigterm_publishes_the_last_asset_and_ends_the_transmission() {
    stop_with("-TERM");
}

#[test]
fn sigint_publishes_the_last_asset_and_ends_the_transmission() {
    stop_with("-INT");
}
