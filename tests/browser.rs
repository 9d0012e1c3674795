//! A real browser: Debian's Chromium, headless, plays the served HLS
//! playlist with hls.js, CMCD on, under the id the server issued it;
//! playback advances, it starts behind live by the backset its playlist
//! recommended, and `/backset.json` for that viewer reports the throughput
//! and buffer the player sent (CMCD `mtp`, `bl`). And hls.js plays the
//! multivariant playlist live and once ended, with every asset kept and
//! with `--keep-assets 4`: no error, no failed request, no stall, a live
//! start within one asset of the playlist's `EXT-X-START`, an ended stream
//! played from its start to its end. `.ci/run` installs Chromium and the
//! npm packages (tests/browser); where they are missing the test says so
//! and passes.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

use common::live::*;

/// One browser at a time: the tests here measure live starts, which a
/// machine busy starting three Chromiums would make late.
static ONE_BROWSER: Mutex<()> = Mutex::new(());

fn one_browser() -> MutexGuard<'static, ()> {
    ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn hls_js_in_chromium_starts_behind_live_by_the_recommended_backset_and_plays() {
    let _browser = one_browser();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/play.mjs");
    let modules = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/node_modules/hls.js");
    if !Path::new("/usr/bin/chromium").exists() || !modules.exists() {
        eprintln!("skipped: needs /usr/bin/chromium and `npm install` in tests/browser (.ci/run does both)");
        return;
    }
    // 30 s of capture, fed in real time: a live stream, still live when
    // Chromium has started on a loaded machine.
    let capture = std::fs::read(common::fixture("h264-aac-gop.mp4")).unwrap();
    let live = live(capture.repeat(5), 30.0);
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

fn hls_js_ready() -> bool {
    let modules = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/node_modules/hls.js");
    let ready = Path::new("/usr/bin/chromium").exists() && modules.exists();
    if !ready {
        eprintln!("skipped: needs /usr/bin/chromium and `npm install` in tests/browser (.ci/run does both)");
    }
    ready
}

/// A live transmission with HLS on, served: segment fed the long capture
/// in real time, with `extra` arguments.
struct Transmission(Live);

impl std::ops::Deref for Transmission {
    type Target = Live;
    fn deref(&self) -> &Live {
        &self.0
    }
}

impl std::ops::DerefMut for Transmission {
    fn deref_mut(&mut self) -> &mut Live {
        &mut self.0
    }
}

impl Transmission {
    fn start(extra: &[&str]) -> Transmission {
        let mut args = vec!["--interval", "1s", "--hls"];
        args.extend_from_slice(extra);
        Transmission(live_with(long_capture(), 18.0, &args))
    }

    /// hls.js on the multivariant playlist, watched `watch` seconds.
    fn play(&self, watch: u32) -> serde_json::Value {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/hls.mjs");
        let o = Command::new("node")
            .arg(&script)
            .arg(format!("{}live.m3u8", self.url))
            .arg(watch.to_string())
            .output()
            .expect("node runs");
        let out = String::from_utf8_lossy(&o.stdout);
        serde_json::from_str(out.trim().lines().last().unwrap_or("{}"))
            .unwrap_or_else(|e| panic!("{e}: {out} {}", String::from_utf8_lossy(&o.stderr)))
    }
}

/// hls.js loaded the variant the multivariant playlist describes, asked
/// for the media playlist under its id, played on and never stalled.
fn assert_played(r: &serde_json::Value, what: &str) {
    eprintln!("{what}: {r}");
    assert!(r["error"].is_null(), "{what}: {r}");
    assert_eq!(r["errors"], serde_json::json!([]), "{what}: {r}");
    assert_eq!(r["nonFatal"], serde_json::json!([]), "{what}: {r}");
    assert_eq!(
        r["failed"],
        serde_json::json!([]),
        "{what}: a failed request: {r}"
    );
    assert_eq!(r["advanced"], true, "{what}: playback advances: {r}");
    assert_eq!(r["stalls"], 0, "{what}: stalled: {r}");
    let client = r["client"].as_str().unwrap_or("?");
    assert!(
        r["mediaUrl"]
            .as_str()
            .is_some_and(|u| u.ends_with(&format!("live-av.m3u8?client={client}"))),
        "{what}: the media playlist under the viewer's id: {r}"
    );
    assert!(r["levels"][0]["codecs"].as_str().is_some(), "{what}: {r}");
}

fn assert_live_start(r: &serde_json::Value, asset_s: f64, what: &str) {
    assert_played(r, what);
    assert_eq!(r["live"], true, "{what}: {r}");
    let offset = -r["playlistOffset"].as_f64().unwrap_or(f64::NAN);
    let target = r["targetDuration"].as_f64().unwrap_or(f64::NAN);
    let behind = r["startBehind"].as_f64().unwrap_or(f64::NAN);
    eprintln!(
        "{what}: started {behind:.2} s behind live; EXT-X-START asked {offset:.2} s (target {target} s, /backset.json {:.2} s, one asset {asset_s:.2} s)",
        r["issuedRecommended"].as_f64().unwrap_or(f64::NAN)
    );
    assert!(offset >= 3.0 * target, "{what}: {r}");
    assert!((behind - offset).abs() <= asset_s, "{what}: {r}");
}

fn assert_played_to_end(r: &serde_json::Value, what: &str) {
    assert_played(r, what);
    assert_eq!(r["live"], false, "{what}: {r}");
    let duration = r["totalduration"].as_f64().unwrap_or(f64::NAN);
    let start = r["startTime"].as_f64().unwrap_or(f64::NAN);
    let ended = r["ended"].as_f64().unwrap_or(f64::NAN);
    eprintln!("{what}: played {start:.2} s to {ended:.2} s of {duration:.2} s");
    assert!(start < 0.5, "{what}: starts at the start: {r}");
    assert!(
        (ended - duration).abs() < 0.5,
        "{what}: stops at the end: {r}"
    );
}

/// One transmission: hls.js joins it live (after 4 assets), then, once it
/// has ended, plays it from its start to its end.
fn live_then_ended(extra: &[&str]) {
    let _browser = one_browser();
    let mut t = Transmission::start(extra);
    wait_for_assets(&t.out, 4);
    let live = t.play(5);
    assert_live_start(
        &live,
        longest_asset_s(&t.out),
        &format!("hls.js live {extra:?}"),
    );
    t.wait_ended();
    let ended = t.play(2);
    assert_played_to_end(&ended, &format!("hls.js ended {extra:?}"));
}

#[test]
fn hls_js_plays_the_multivariant_playlist_live_and_ended() {
    if hls_js_ready() {
        live_then_ended(&[]);
    }
}

#[test]
fn hls_js_plays_the_multivariant_playlist_live_and_ended_with_keep_assets_4() {
    if hls_js_ready() {
        live_then_ended(&["--keep-assets", "4"]);
    }
}
