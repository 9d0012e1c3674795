//! DASH with the players users have: dash.js and Shaka Player in Debian's
//! Chromium (headless) and ffmpeg's DASH client, each on the MPD `serve`
//! answers, while the stream is live and once it has ended, with every
//! asset kept and with `--keep-assets 4`. The browser players must load
//! without errors or failed requests, start live near the MPD's
//! `suggestedPresentationDelay` (the recommended backset, never under two
//! segments: see `assert_live_start`), play on without stalling, and play
//! an ended stream from its start to its end; ffmpeg must read the very
//! frames of the capture (live with retention: up to its end). `.ci/run` installs
//! Chromium and the npm packages (tests/browser); where they are missing the
//! browser part says so and passes.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::live::*;
use common::*;

/// Times the 6 s fixture is sent, back to back (the encoder's clock
/// starting over each time): 30 s live, time for a browser to start on a
/// loaded machine.
const LOOPS: usize = 5;

/// A live stream with DASH on, served: segment fed the fixture `LOOPS`
/// times in real time, with `extra` arguments.
fn start(extra: &[&str]) -> Live {
    let one = std::fs::read(fixture("h264-aac-gop.mp4")).unwrap();
    let mut args = vec!["--interval", "1s", "--dash"];
    args.extend_from_slice(extra);
    live_with(one.repeat(LOOPS), 6.0 * LOOPS as f64, &args)
}

fn mpd(s: &Live) -> String {
    format!("{}live.mpd", s.url)
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

/// A player loaded, played on and never stalled; `what` names the run.
fn assert_played(r: &serde_json::Value, what: &str) {
    eprintln!("{what}: {r}");
    assert!(r["error"].is_null(), "{what}: {r}");
    assert_eq!(r["errors"], serde_json::json!([]), "{what}: {r}");
    assert_eq!(r["failed"], serde_json::json!([]), "{what}: a 404: {r}");
    assert_eq!(r["advanced"], true, "{what}: playback advances: {r}");
    assert_eq!(r["stalls"], 0, "{what}: stalled: {r}");
}

/// A live start near the MPD's delay, measured two ways: behind the wall
/// clock (what dash.js aims at; Shaka Player counts its edge one segment
/// further back) and behind the live edge (the end of the last segment
/// listed, as the HLS test measures it), which trails the clock by up to an
/// asset and the wait for the next key frame that closes it.
fn assert_live_start(r: &serde_json::Value, asset_s: f64, what: &str) {
    assert_played(r, what);
    let delay = r["mpd"]["delay"].as_f64().unwrap();
    let clock = r["startBehindClock"].as_f64().unwrap();
    let edge = r["startBehindEdge"].as_f64().unwrap();
    eprintln!(
        "{what}: started {edge:.2} s behind the edge, {clock:.2} s behind the clock; the MPD asked {delay:.2} s (one asset {asset_s:.2} s)"
    );
    assert!(
        edge >= delay - 2.0 * asset_s && edge <= delay + asset_s,
        "{what}: {r}"
    );
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

/// The packets of the whole transmission, per stream: the fixture's,
/// `LOOPS` times over.
fn whole_capture() -> BTreeMap<String, Vec<String>> {
    payloads(&framemd5(&fixture("h264-aac-gop.mp4")))
        .into_iter()
        .map(|(k, v)| (k, vec![v; LOOPS].concat()))
        .collect()
}

/// ffmpeg as a DASH client on one stream of an MPD (`-map 0:N`): with both
/// streams in one process its DASH demuxer ends at the first stream's end
/// and drops the audio that runs on past the last video frame. Its output
/// is read as it comes (a pipe holds less than the listing) and flushed
/// packet by packet, so stopping it loses nothing; it is killed when
/// dropped, also when the test fails.
struct Ffmpeg {
    stream: &'static str,
    child: Child,
    reader: Option<std::thread::JoinHandle<String>>,
}

impl Ffmpeg {
    fn start(mpd: &str, stream: &'static str) -> Ffmpeg {
        let mut child = Command::new("ffmpeg")
            .args(["-v", "error", "-nostdin", "-i", mpd])
            .args(["-map", &format!("0:{stream}"), "-c", "copy"])
            .args(["-flush_packets", "1", "-f", "framemd5", "-"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg runs");
        let mut stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
            text
        });
        Ffmpeg {
            stream,
            child,
            reader: Some(reader),
        }
    }

    /// The packets read, once ffmpeg ends or `deadline` passes: following
    /// a live MPD, ffmpeg 5.1 goes on asking for the segment after the last
    /// once the MPD has turned static, and ignores SIGTERM while it does.
    fn packets(mut self, deadline: Instant) -> Vec<String> {
        while self.child.try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let text = self.reader.take().unwrap().join().unwrap();
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once(',').map(|(_, rest)| rest.trim().to_string()))
            .collect()
    }
}

impl Drop for Ffmpeg {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// ffmpeg's DASH client on each stream of `mpd`.
fn ffmpeg_dash(mpd: &str) -> Vec<Ffmpeg> {
    vec![Ffmpeg::start(mpd, "0"), Ffmpeg::start(mpd, "1")]
}

/// What each `ffmpeg_dash` process read, by stream, as `payloads` has it.
fn frames_of(clients: Vec<Ffmpeg>, deadline: Instant) -> BTreeMap<String, Vec<String>> {
    let mut streams = BTreeMap::new();
    for client in clients {
        let stream = client.stream.to_string();
        let packets = client.packets(deadline);
        eprintln!("ffmpeg DASH stream {stream}: {} packets", packets.len());
        streams.insert(stream, packets);
    }
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

/// `got` ends with all of `want`, per stream.
fn assert_ends_with(
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
            other.len() >= lines.len(),
            "{what}: stream {stream}: {} of {} packets",
            other.len(),
            lines.len()
        );
        assert_eq!(
            &other[other.len() - lines.len()..],
            &lines[..],
            "{what}: stream {stream}"
        );
    }
}

/// One scenario at a time: two live streams, two browsers and four
/// ffmpegs at once are more than a 2-core CI machine plays in real time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn scenario(extra: &[&str], what: &str) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut s = start(extra);
    wait_for_assets(&s.out, 3);
    let live_ffmpeg = ffmpeg_dash(&mpd(&s));
    if browsers_ready() {
        let live = play(&mpd(&s), 6);
        let asset_s = longest_asset_s(&s.out);
        assert_live_start(&live["dashjs"], asset_s, &format!("dash.js live {what}"));
        assert_live_start(&live["shaka"], asset_s, &format!("Shaka live {what}"));
    }
    s.wait_ended();
    let dest = s.out.parent().unwrap().join("capture.mp4");
    retained_capture(&s.out, &dest);
    let want = payloads(&framemd5(&dest));
    let live = frames_of(live_ffmpeg, Instant::now() + Duration::from_secs(20));
    if extra.is_empty() {
        assert_tail_of(&whole_capture(), &live, &format!("ffmpeg DASH live {what}"));
    } else {
        // ffmpeg 5.1 mixes up a timeline's positions and `$Number$` once
        // `startNumber` moves: on each reload it reads some segments again.
        // It still follows the stream to its very end.
        assert_ends_with(&want, &live, &format!("ffmpeg DASH live {what}"));
    }
    let ended = frames_of(
        ffmpeg_dash(&mpd(&s)),
        Instant::now() + Duration::from_secs(30),
    );
    assert_same_frames(&want, &ended, &format!("ffmpeg DASH ended {what}"));
    if browsers_ready() {
        let ended = play(&mpd(&s), 2);
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
