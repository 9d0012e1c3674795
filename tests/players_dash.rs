//! DASH with the players users have: dash.js and Shaka Player in Debian's
//! Chromium (headless) and ffmpeg's DASH client, each on the MPD `serve`
//! answers, while the stream is live and once it has ended, with every
//! asset kept and with `--keep-assets 4`. The browser players must load
//! without errors, start live within one asset of the MPD's
//! `suggestedPresentationDelay` (the recommended backset, never under two
//! segments), play on without stalling, and play an ended stream to its
//! end; ffmpeg must read the very frames of the capture. `.ci/run` installs
//! Chromium and the npm packages (tests/browser); where they are missing the
//! browser part says so and passes.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::live::*;
use common::*;

/// A live stream with DASH on, served: segment fed the long capture in
/// real time, with `extra` arguments.
struct Stream {
    segment: Child,
    _server: Server,
    url: String,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Stream {
    fn drop(&mut self) {
        let _ = self.segment.kill();
        let _ = self.segment.wait();
    }
}

impl Stream {
    fn start(extra: &[&str]) -> Stream {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let bytes = long_capture();
        let pause = Duration::from_secs_f64(18.0 / (bytes.len() / 4096 + 1) as f64);
        let mut args = vec!["--interval", "1s", "--dash"];
        args.extend_from_slice(extra);
        let (segment, _feeder) = paced_segment(&out, bytes, 4096, pause, &args);
        let (server, url) = start_server(&out, "127.0.0.1:0");
        Stream {
            segment,
            _server: server,
            url,
            out,
            _dir: dir,
        }
    }

    fn mpd(&self) -> String {
        format!("{}live.mpd", self.url)
    }

    /// Waits for the transmission to end (segment exits once fed).
    fn wait_ended(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.segment.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "segment never finished");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn browsers_ready() -> bool {
    let modules = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/node_modules");
    let ready = Path::new("/usr/bin/chromium").exists()
        && modules.join("dashjs").exists()
        && modules.join("shaka-player").exists();
    if !ready {
        eprintln!("browser part skipped: needs /usr/bin/chromium and `npm install` in tests/browser (.ci/run does both)");
    }
    ready
}

/// Both browser players on `mpd`, watched `watch` seconds.
fn play(mpd: &str, watch: u32) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/dash.mjs");
    let o = Command::new("node")
        .arg(&script)
        .arg(mpd)
        .arg(watch.to_string())
        .output()
        .expect("node runs");
    let out = String::from_utf8_lossy(&o.stdout);
    serde_json::from_str(out.trim().lines().last().unwrap_or("{}"))
        .unwrap_or_else(|e| panic!("{e}: {out} {}", String::from_utf8_lossy(&o.stderr)))
}

/// The longest asset, s: how far a start may be off (one asset).
fn longest_asset_s(out: &Path) -> f64 {
    let timescale = 12288.0;
    records(out)
        .iter()
        .map(|r| r.duration as f64 / timescale)
        .fold(0.0, f64::max)
}

/// A player loaded, played on and never stalled; `what` names the run.
fn assert_played(r: &serde_json::Value, what: &str) {
    eprintln!("{what}: {r}");
    assert!(r["error"].is_null(), "{what}: {r}");
    assert_eq!(r["errors"], serde_json::json!([]), "{what}: {r}");
    assert_eq!(r["failed"], serde_json::json!([]), "{what}: a 404: {r}");
    assert_eq!(r["advanced"], true, "{what}: playback advances: {r}");
    assert_eq!(r["stalls"], 0, "{what}: stalled: {r}");
}

/// A live start: within one asset of the MPD's delay behind the live edge
/// (the end of the last segment listed, as the HLS test measures it), and
/// no more than two assets behind the wall clock (Shaka Player counts its
/// edge one segment back, dash.js does not).
fn assert_live_start(r: &serde_json::Value, asset_s: f64, what: &str) {
    assert_played(r, what);
    let delay = r["mpd"]["delay"].as_f64().unwrap();
    let clock = r["startBehindClock"].as_f64().unwrap();
    let edge = r["startBehindEdge"].as_f64().unwrap();
    eprintln!(
        "{what}: started {edge:.2} s behind the edge, {clock:.2} s behind the clock; the MPD asked {delay:.2} s (one asset {asset_s:.2} s)"
    );
    assert!((edge - delay).abs() <= asset_s, "{what}: {r}");
    assert!(
        clock >= delay - asset_s && clock <= delay + 2.0 * asset_s,
        "{what}: {r}"
    );
}

/// An ended stream: played from its first retained segment to its end.
fn assert_played_to_end(r: &serde_json::Value, what: &str) {
    assert_played(r, what);
    assert_eq!(r["mpd"]["type"], "static", "{what}: {r}");
    let duration = r["mpd"]["duration"].as_f64().unwrap();
    let start = r["startTime"].as_f64().unwrap();
    let ended = r["ended"].as_f64().unwrap_or(f64::NAN);
    eprintln!("{what}: played {start:.2} s to {ended:.2} s of {duration:.2} s");
    assert!(start < 0.5, "{what}: starts at the start: {r}");
    assert!(
        (ended - duration).abs() < 0.5,
        "{what}: stops at the end: {r}"
    );
}

/// The retained assets back to back, as one file ffmpeg reads.
fn retained_capture(out: &Path, dest: &Path) {
    let mut bytes = Vec::new();
    for r in records(out) {
        let Ok(data) = std::fs::read(out.join(format!("asset-{:08}.mp4", r.sequence))) else {
            continue;
        };
        let from = if bytes.is_empty() {
            0
        } else {
            r.header_len as usize
        };
        bytes.extend_from_slice(&data[from..]);
    }
    std::fs::write(dest, bytes).unwrap();
}

/// The packets of the whole transmission, per stream: the fixture's, three
/// times over (as `long_capture` sends it).
fn whole_capture() -> BTreeMap<String, Vec<String>> {
    payloads(&framemd5(&fixture("h264-aac-gop.mp4")))
        .into_iter()
        .map(|(k, v)| (k, [v.clone(), v.clone(), v].concat()))
        .collect()
}

/// ffmpeg as a DASH client: the packets it reads from `mpd`, per stream.
fn ffmpeg_dash(mpd: &str) -> Child {
    Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-i", mpd])
        .args(["-map", "0", "-c", "copy", "-f", "framemd5", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffmpeg runs")
}

/// What a finished `ffmpeg_dash` read, as `framemd5` groups it; it is
/// stopped if it is still running at `deadline`.
fn frames_of(mut child: Child, deadline: Instant) -> BTreeMap<String, Vec<String>> {
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let o = child.wait_with_output().unwrap();
    let mut streams: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
    {
        if let Some((stream, rest)) = line.split_once(',') {
            streams
                .entry(stream.trim().into())
                .or_default()
                .push(rest.trim().into());
        }
    }
    eprintln!(
        "ffmpeg DASH: {} streams, stderr {}",
        streams.len(),
        String::from_utf8_lossy(&o.stderr)
    );
    payloads(&streams)
}

/// `got` is a run of `want`'s packets ending where `want` ends, per stream.
fn assert_tail_of(
    want: &BTreeMap<String, Vec<String>>,
    got: &BTreeMap<String, Vec<String>>,
    what: &str,
) {
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "{what}"
    );
    for (stream, lines) in want {
        let other = &got[stream];
        assert!(
            other.len() >= lines.len() / 4 && other.len() <= lines.len(),
            "{what}: stream {stream}: {} of {} packets",
            other.len(),
            lines.len()
        );
        assert_eq!(
            &lines[lines.len() - other.len()..],
            &other[..],
            "{what}: stream {stream}"
        );
    }
}

fn scenario(extra: &[&str], what: &str) {
    let mut s = Stream::start(extra);
    wait_for_assets(&s.out, 3);
    let live_ffmpeg = ffmpeg_dash(&s.mpd());
    if browsers_ready() {
        let live = play(&s.mpd(), 6);
        let asset_s = longest_asset_s(&s.out);
        assert_live_start(&live["dashjs"], asset_s, &format!("dash.js live {what}"));
        assert_live_start(&live["shaka"], asset_s, &format!("Shaka live {what}"));
    }
    s.wait_ended();
    let dest = s.out.parent().unwrap().join("capture.mp4");
    retained_capture(&s.out, &dest);
    let want = payloads(&framemd5(&dest));
    let live = frames_of(live_ffmpeg, Instant::now() + Duration::from_secs(20));
    assert_tail_of(&whole_capture(), &live, &format!("ffmpeg DASH live {what}"));
    let ended = frames_of(
        ffmpeg_dash(&s.mpd()),
        Instant::now() + Duration::from_secs(30),
    );
    assert_same_frames(&want, &ended, &format!("ffmpeg DASH ended {what}"));
    if browsers_ready() {
        let ended = play(&s.mpd(), 2);
        assert_played_to_end(&ended["dashjs"], &format!("dash.js ended {what}"));
        assert_played_to_end(&ended["shaka"], &format!("Shaka ended {what}"));
    }
}

#[test]
fn dash_js_shaka_and_ffmpeg_play_a_live_and_an_ended_stream() {
    scenario(&[], "keeping all");
}

#[test]
fn dash_js_shaka_and_ffmpeg_play_with_four_assets_kept() {
    scenario(&["--keep-assets", "4"], "--keep-assets 4");
}
