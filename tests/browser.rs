//! A real browser: Debian's Chromium, headless, plays the served HLS
//! playlist with hls.js; playback advances, and it starts behind live by
//! the recommended backset. `.ci/run` installs Chromium and the npm packages
//! (tests/browser); where they are missing the test says so and passes.

mod common;

use std::path::Path;
use std::process::Command;

use common::live::*;

#[test]
fn hls_js_in_chromium_starts_behind_live_by_the_recommended_backset_and_plays() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/play.mjs");
    let modules = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/node_modules/hls.js");
    if !Path::new("/usr/bin/chromium").exists() || !modules.exists() {
        eprintln!("skipped: needs /usr/bin/chromium and `npm install` in tests/browser (.ci/run does both)");
        return;
    }
    // 18 s of capture, fed in real time: a live stream.
    let live = live(long_capture(), 18.0);
    wait_for_assets(&live.out, 5);
    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    let params: serde_json::Value = serde_json::from_slice(
        &agent
            .get(&format!("{}backset.json", live.url))
            .call()
            .unwrap()
            .body_mut()
            .read_to_vec()
            .unwrap(),
    )
    .unwrap();
    let recommended = params["recommended_s"].as_f64().unwrap();

    let o = Command::new("node")
        .arg(&script)
        .arg(format!("{}live.m3u8", live.url))
        .output()
        .expect("node runs");
    let out = String::from_utf8_lossy(&o.stdout);
    let result: serde_json::Value = serde_json::from_str(out.trim().lines().last().unwrap_or("{}"))
        .unwrap_or_else(|e| panic!("{e}: {out} {}", String::from_utf8_lossy(&o.stderr)));
    assert!(
        result["error"].is_null() && result["fatal"].is_null(),
        "{result}"
    );
    assert_eq!(result["advanced"], true, "playback advances: {result}");
    eprintln!("browser: {result}; recommended {recommended:.3} s");
    let behind = result["startBehind"].as_f64().unwrap();
    let segment = result["targetDuration"].as_f64().unwrap();
    assert!(
        behind >= recommended - segment && behind <= recommended + 2.0 * segment,
        "started {behind:.2} s behind live; recommended {recommended:.2} s: {result}"
    );
}
