//! A live stream for tests: `segment` fed a paced real capture, `serve` on a
//! free loopback port.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::{backset, fixture, records};

/// Three runs of a 6 s capture back to back: 18 s of transmission, the
/// encoder's clock starting over twice (mended by segment).
pub fn long_capture() -> Vec<u8> {
    let one = std::fs::read(fixture("h264-aac-gop.mp4")).unwrap();
    [one.clone(), one.clone(), one].concat()
}

pub struct Live {
    pub segment: Child,
    pub feeder: Option<std::thread::JoinHandle<()>>,
    pub server: Server,
    pub url: String,
    pub out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.segment.kill();
        let _ = self.server.wait();
        let _ = self.segment.wait();
    }
}

/// A `serve` process a test owns: killed when it is dropped, also when the
/// test panics, so no server outlives its test (an orphan would hold the
/// test harness's output open, and its port).
pub struct Server(pub Child);

impl std::ops::Deref for Server {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Server {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn start_server(out: &Path, listen: &str) -> (Server, String) {
    start_server_with(out, listen, &[])
}

pub fn start_server_with(out: &Path, listen: &str, args: &[&str]) -> (Server, String) {
    let mut serve = backset();
    serve
        .args(["serve", out.to_str().unwrap(), "--listen", listen])
        .args(args);
    start_serving(serve)
}

/// Starts a `serve` command and reads the address it listens on.
pub fn start_serving(mut serve: std::process::Command) -> (Server, String) {
    let mut server = Server(serve.stderr(Stdio::piped()).spawn().unwrap());
    // A replica on a store says what it mirrored before it listens.
    let mut lines = BufReader::new(server.stderr.take().unwrap()).lines();
    let line = lines
        .find_map(|l| l.ok().filter(|l| l.contains("http://")))
        .unwrap_or_default();
    let url = line.trim().rsplit(' ').next().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    (server, url)
}

/// `segment OUT - ARGS…` fed `bytes` in `chunk`-byte pieces every `pause`;
/// the feeder stops quietly when segment goes away.
pub fn paced_segment(
    out: &Path,
    bytes: Vec<u8>,
    chunk: usize,
    pause: Duration,
    args: &[&str],
) -> (Child, std::thread::JoinHandle<()>) {
    let mut segment = backset();
    segment
        .args(["segment", out.to_str().unwrap(), "-", "-q"])
        .args(args)
        .stderr(Stdio::null());
    feed(segment, bytes, chunk, pause)
}

/// Starts `segment` (a command reading standard input) and feeds it
/// `bytes` in `chunk`-byte pieces every `pause`; the feeder stops quietly
/// when segment goes away.
pub fn feed(
    mut segment: std::process::Command,
    bytes: Vec<u8>,
    chunk: usize,
    pause: Duration,
) -> (Child, std::thread::JoinHandle<()>) {
    let mut segment = segment.stdin(Stdio::piped()).spawn().unwrap();
    let mut stdin = segment.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        for c in bytes.chunks(chunk) {
            if stdin.write_all(c).is_err() {
                return;
            }
            std::thread::sleep(pause);
        }
    });
    (segment, feeder)
}

/// `follow URL` at a 3 s backset as viewer `client`, writing to `out`.
pub fn viewer(url: &str, out: &Path, client: &str) -> Child {
    backset()
        .args(["follow", url, "--backset", "3s", "--retry-for", "20s"])
        .args(["--client", client])
        .stdout(std::fs::File::create(out).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The longest stall a follower logged, s.
pub fn longest_stall(log: &str) -> f64 {
    log.lines()
        .filter_map(|l| l.split("playing again after ").nth(1))
        .filter_map(|rest| rest.split(' ').next()?.parse::<f64>().ok())
        .fold(0.0, f64::max)
}

/// The viewers a server's `/backset.json` counts.
#[cfg(feature = "follow")]
pub fn audience_clients(url: &str) -> u64 {
    let mut resp = ureq::get(&format!("{url}backset.json")).call().unwrap();
    let body: serde_json::Value = serde_json::from_reader(resp.body_mut().as_reader()).unwrap();
    body["audience"]["clients"].as_u64().unwrap()
}

/// Starts segment on a paced feed of `bytes` (about `seconds` of wall time)
/// and serve on a free loopback port.
pub fn live(bytes: Vec<u8>, seconds: f64) -> Live {
    live_with(bytes, seconds, &["--interval", "1s", "--hls", "--dash"])
}

/// [`live`] with segment's arguments given.
pub fn live_with(bytes: Vec<u8>, seconds: f64, args: &[&str]) -> Live {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let pause = Duration::from_secs_f64(seconds / (bytes.len() / 4096 + 1) as f64);
    let (segment, feeder) = paced_segment(&out, bytes, 4096, pause, args);
    let (server, url) = start_server(&out, "127.0.0.1:0");
    Live {
        segment,
        feeder: Some(feeder),
        server,
        url,
        out,
        _dir: dir,
    }
}

impl Live {
    /// Waits for the transmission to end (segment exits once fed).
    pub fn wait_ended(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.segment.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "segment never finished");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The longest asset in `out`, s (the fixtures' timescale is 12288): how
/// far a player's live start may be off.
pub fn longest_asset_s(out: &Path) -> f64 {
    records(out)
        .iter()
        .map(|r| r.duration as f64 / 12288.0)
        .fold(0.0, f64::max)
}

pub fn wait_for_assets(out: &Path, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if out.join("index.bin").exists() && records(out).len() >= n {
            return;
        }
        assert!(Instant::now() < deadline, "{n} assets never appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
}
