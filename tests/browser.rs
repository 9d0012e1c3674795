//! A real browser: Debian's Chromium, headless, plays the served HLS
//! playlist with hls.js, CMCD on, under the id the server issued it;
//! playback advances, it starts behind live by the backset its playlist
//! recommended, and `/backset.json` for that viewer reports the throughput
//! and buffer the player sent (CMCD `mtp`, `bl`). `.ci/run` installs
//! Chromium and the npm packages (tests/browser); where they are missing the
//! test says so and passes.

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
    eprintln!("browser: {result}");
    let offset = -result["playlistOffset"].as_f64().unwrap_or(f64::NAN);
    let behind = result["startBehind"].as_f64().unwrap_or(f64::NAN);
    eprintln!(
        "browser: started {behind:.2} s behind live; its playlist asked {offset:.2} s, /backset.json before it played {:.2} s, an unmeasured viewer {recommended:.2} s",
        result["issuedRecommended"].as_f64().unwrap_or(f64::NAN)
    );
    let segment = result["targetDuration"].as_f64().unwrap();
    assert!(
        behind >= offset - segment && behind <= offset + 2.0 * segment,
        "started {behind:.2} s behind live; its playlist recommended {offset:.2} s: {result}"
    );
    player_facts_reach_the_server(&result);
}

/// hls.js sent CMCD under the id the server issued, and `/backset.json`
/// for that id reports the player's own measurement (`mtp`, rounded to
/// 100 kbit/s as CMCD has it) and buffer (`bl`) as sent on its last requests.
fn player_facts_reach_the_server(result: &serde_json::Value) {
    let backset = &result["backset"];
    let viewer = &backset["viewer"];
    eprintln!(
        "browser: {} requests with CMCD; last mtp {} kbit/s (hls.js estimate {:.0} bit/s), last bl {} ms; /backset.json: {} bit/s from the {}, buffer {} s, {} clients",
        result["cmcdRequests"],
        result["mtpSent"],
        result["bandwidthEstimate"].as_f64().unwrap_or(f64::NAN),
        result["blSent"],
        viewer["throughput_bps"],
        viewer["throughput_source"],
        viewer["buffer_s"],
        backset["audience"]["clients"],
    );
    let client = result["client"].as_str().unwrap_or_default();
    assert!(client.starts_with('v'), "an issued id: {result}");
    assert_eq!(backset["client"], client, "the same viewer: {result}");
    let last = result["lastCmcd"].clone();
    assert_eq!(
        last["sid"],
        format!("\"{client}\""),
        "hls.js sends the issued id as CMCD sid: {last}"
    );
    let mtp = result["mtpSent"].as_f64().expect("hls.js sent mtp");
    assert!(mtp > 0.0 && mtp % 100.0 == 0.0, "mtp {mtp} kbit/s");
    assert_eq!(viewer["throughput_source"], "player", "{viewer}");
    assert_eq!(
        viewer["throughput_bps"].as_f64(),
        Some(mtp * 1000.0),
        "/backset.json reports the mtp of the last request: {viewer}"
    );
    let bl = result["blSent"].as_f64().expect("hls.js sent bl");
    assert_eq!(viewer["buffer_s"].as_f64(), Some(bl / 1000.0), "{viewer}");
    assert!(
        backset["audience"]["clients"].as_u64() >= Some(1),
        "{backset}"
    );
}
