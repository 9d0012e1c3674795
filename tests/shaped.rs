//! The per-viewer backset on real shaped links: `segment` on a paced live
//! capture at about 1 Mbit/s, `serve`, and `follow` viewers each behind its
//! own link (a network namespace joined to the host by a veth pair, a `tc`
//! `tbf` on the host end: the server's answers are shaped, see
//! common::netns). Four links, 0.9 Mbit/s (below the stream's bitrate),
//! 1.5 Mbit/s with scheduled dips to 0.5, 3 and 50 Mbit/s, each twice: one
//! viewer follows the server's advice, its twin starts at the live edge
//! (`--backset 0s`), all eight at once for 60 s.
//!
//! The claims: viewers on slow links are advised larger backsets than one
//! on a fast link, the slowest starts at an earlier asset than the fastest,
//! and a slow or dipping viewer stalls no more often at its advised backset
//! than at the live edge. The table is printed (`--nocapture`;
//! benches/shaped.sh runs it for the README).
//!
//! Each viewer has a fixed `--client` id, which seeds its draw: a run draws
//! what the last one did from the same advice.
//!
//! With env BACKSET_SHAPED_KEEP set, the stream, the viewers' reports and
//! logs are kept (the directory is printed).
//!
//! Needs root for the namespaces: elsewhere the tests say why and return,
//! under CI (env `CI`) they fail.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::live::wait_for_assets;
use common::netns::{links_or_skip, present, Link, Schedule};
use common::*;

const MBIT: u64 = 1_000_000;
/// Seconds of capture: the followers' start, their 60 s and some slack.
const CAPTURE_S: u32 = 80;
const FOLLOW_S: u64 = 60;
/// Assets (1 s each) published before the viewers arrive.
const ASSETS_BEFORE: usize = 10;

#[test]
fn shaped_links_carry_their_rate_and_follow_its_changes() {
    let Some(links) = links_or_skip("shaped links", &[900_000, 3 * MBIT, 50 * MBIT]) else {
        return;
    };
    let mut seen = Vec::new();
    for link in &links {
        // Two seconds' worth at the rate: long enough that the bucket's
        // initial burst and TCP's slow start weigh little.
        let bytes = (link.rate() / 4) as usize;
        seen.push((link.rate(), link.measure(bytes).expect("measured")));
    }
    links[1].set_rate(500_000).expect("rate changed");
    seen.push((500_000, links[1].measure(125_000).expect("measured")));
    links[1].set_rate(3 * MBIT).expect("rate changed back");
    seen.push((3 * MBIT, links[1].measure(750_000).expect("measured")));
    // One asset's worth (1 s at 1 Mbit/s), as a viewer's probe fetches.
    seen.push((
        links[0].rate(),
        links[0].measure(125_000).expect("measured"),
    ));
    for (rate, measured) in &seen {
        println!("shaped to {rate} bit/s: measured {measured:.0} bit/s");
    }
    for (rate, measured) in &seen {
        let ratio = measured / *rate as f64;
        assert!(
            (0.8..=1.2).contains(&ratio),
            "shaped to {rate} bit/s, measured {measured:.0} bit/s (all: {seen:?})"
        );
    }
    let names: Vec<String> = links.iter().flat_map(Link::names).collect();
    drop(links);
    assert_eq!(present(&names), Vec::<String>::new(), "links left behind");
}

/// An 80 s capture at about 1 Mbit/s: noisy 640x360 test pattern at 25 fps
/// (the noise keeps the encoder at its rate), H.264 at 900 kbit/s capped
/// at 1 Mbit/s, 1 s GOPs, AAC at 64 kbit/s, fragmented at key frames.
fn capture(dir: &Path) -> Vec<u8> {
    let path = dir.join("capture.mp4");
    let source = format!("testsrc2=size=640x360:rate=25:duration={CAPTURE_S},noise=alls=12:allf=t");
    let sine = format!("sine=frequency=440:sample_rate=48000:duration={CAPTURE_S}");
    let status = Command::new("ffmpeg")
        .args([
            "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", &source,
        ])
        .args(["-f", "lavfi", "-i", &sine])
        .args(["-c:v", "libx264", "-preset", "veryfast", "-b:v", "900k"])
        .args([
            "-maxrate",
            "1M",
            "-bufsize",
            "1M",
            "-g",
            "25",
            "-keyint_min",
            "25",
        ])
        .args(["-sc_threshold", "0", "-c:a", "aac", "-b:a", "64k"])
        .args(["-f", "mp4", "-movflags", "frag_keyframe+empty_moov"])
        .arg(&path)
        .status()
        .expect("ffmpeg runs (install it: apt-get install ffmpeg)");
    assert!(status.success(), "ffmpeg could not make the capture");
    std::fs::read(&path).unwrap()
}

/// `segment OUT - --interval 1s` fed `bytes` evenly over `seconds` of wall
/// time, each piece at its due time (no drift from oversleeping).
fn live_segment(out: &Path, bytes: Vec<u8>, seconds: f64) -> (Child, std::thread::JoinHandle<()>) {
    let mut segment = backset()
        .args([
            "segment",
            out.to_str().unwrap(),
            "-",
            "-q",
            "--interval",
            "1s",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = segment.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let start = Instant::now();
        let per_byte = seconds / bytes.len() as f64;
        for (i, c) in bytes.chunks(4096).enumerate() {
            let due = start + Duration::from_secs_f64((i * 4096) as f64 * per_byte);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            if stdin.write_all(c).is_err() {
                return;
            }
        }
    });
    (segment, feeder)
}

/// `serve OUT` on every address; the port.
fn serve(out: &Path) -> (Child, u16) {
    let mut server = backset()
        .args(["serve", out.to_str().unwrap(), "--listen", "0.0.0.0:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    (server, port)
}

/// The processes of a run, killed however the test ends (before the links
/// they run in are dropped: they are declared after them).
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One viewer: the link it sits behind, at the advised backset or at the
/// live edge.
struct Viewer {
    label: &'static str,
    /// `--client`: seeds the draw, so a run draws what the last one did
    /// from the same advice.
    client: String,
    advised: bool,
    link: Arc<Link>,
    report: PathBuf,
    log: PathBuf,
}

impl Viewer {
    /// `follow` inside the viewer's namespace, against the host's address
    /// on its link; its log lines stamped with the seconds since `t0`.
    fn start(&self, port: u16, t0: Instant) -> Child {
        let url = format!("http://{}:{port}/", self.link.host_ip);
        let mut c = self.link.command(env!("CARGO_BIN_EXE_backset"));
        c.args(["follow", &url, "--client", &self.client])
            .args(["--for", &format!("{FOLLOW_S}s")])
            .arg("--report")
            .arg(&self.report);
        if !self.advised {
            c.args(["--backset", "0s"]);
        }
        let mut child = c
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let mut log = std::fs::File::create(&self.log).unwrap();
        // Detached: it ends when follow closes its standard error.
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let _ = writeln!(log, "{:7.3} {line}", t0.elapsed().as_secs_f64());
            }
        });
        child
    }

    fn read_report(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(&self.report).unwrap_or_else(|e| {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            panic!(
                "{} ({}): no report ({e}); its log:\n{log}",
                self.label,
                self.mode()
            )
        });
        serde_json::from_str(&text).unwrap()
    }

    fn mode(&self) -> &'static str {
        if self.advised {
            "advised"
        } else {
            "live edge"
        }
    }
}

/// The four links' labels and rates, and the dipping one's schedule: from
/// 1.5 Mbit/s down to 0.5 for 5 s, three times, offsets from the viewers'
/// start.
const LINKS: [(&str, u64); 4] = [
    ("0.9 Mbit/s", 900_000),
    ("1.5 Mbit/s, dips to 0.5", 1_500_000),
    ("3 Mbit/s", 3 * MBIT),
    ("50 Mbit/s", 50 * MBIT),
];
const DIPPING: usize = 1;

fn dips() -> Vec<(Duration, u64)> {
    [12, 30, 48]
        .into_iter()
        .flat_map(|s| {
            [
                (Duration::from_secs(s), 500_000),
                (Duration::from_secs(s + 5), 1_500_000),
            ]
        })
        .collect()
}

/// The eight viewers (each link advised, then each at the live edge),
/// the links they sit behind kept alive by them.
fn viewers(dir: &Path, links: Vec<Link>) -> Vec<Viewer> {
    links
        .into_iter()
        .enumerate()
        .map(|(i, link)| {
            let (label, _) = LINKS[i % LINKS.len()];
            let advised = i < LINKS.len();
            Viewer {
                label,
                client: format!("shaped-{i}"),
                advised,
                link: Arc::new(link),
                report: dir.join(format!("report-{i}.json")),
                log: dir.join(format!("follow-{i}.log")),
            }
        })
        .collect()
}

/// Waits for the followers to stop on their own (`--for`), a minute and a
/// half at most; panics naming one that failed.
fn wait_all(procs: &mut Procs, viewers: &[Viewer]) {
    let deadline = Instant::now() + Duration::from_secs(FOLLOW_S + 30);
    for (child, v) in procs.0.iter_mut().zip(viewers) {
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let log = std::fs::read_to_string(&v.log).unwrap_or_default();
                assert!(
                    status.success(),
                    "{} ({}) failed: {status}\n{log}",
                    v.label,
                    v.mode()
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} ({}) never stopped",
                v.label,
                v.mode()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn num(report: &serde_json::Value, key: &str) -> f64 {
    report[key].as_f64().unwrap_or(f64::NAN)
}

/// A count the report must carry.
fn count(report: &serde_json::Value, key: &str) -> u64 {
    report[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no {key} in the report {report}"))
}

/// The table: per link, the advised viewer's measured throughput (its
/// probe, which the advice came from, and all its fetches), advice, drawn
/// and achieved backset and first asset, and stalls (stalled seconds)
/// advised vs at the live edge.
fn table(viewers: &[Viewer], reports: &[serde_json::Value]) -> String {
    let mut t = String::from(
        "| link | probe (Mbit/s) | measured (Mbit/s) | recommended (s) | drawn (s) \
         | achieved (s) | first asset | stalls, advised | stalls, live edge |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    let n = LINKS.len();
    for i in 0..n {
        let (a, e) = (&reports[i], &reports[i + n]);
        t.push_str(&format!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} (edge: {:.2}) | {} (edge: {}) \
             | {} ({:.1} s) | {} ({:.1} s) |\n",
            viewers[i].label,
            num(a, "probe_throughput_bps") / 1e6,
            num(a, "throughput_bps") / 1e6,
            num(a, "recommended_s"),
            num(a, "drawn_s"),
            num(a, "achieved_s"),
            num(e, "achieved_s"),
            a["first_sequence"],
            e["first_sequence"],
            a["stalls"],
            num(a, "stalled_s"),
            e["stalls"],
            num(e, "stalled_s"),
        ));
    }
    t
}

/// Runs the whole scenario on `links` (eight, in [`viewers`]' order); the
/// viewers and their reports.
fn run_scenario(links: Vec<Link>) -> (Vec<Viewer>, Vec<serde_json::Value>) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let bytes = capture(dir.path());
    println!(
        "stream: {:.2} Mbit/s, 1 s assets; {ASSETS_BEFORE} assets published before the viewers \
         arrive, each follows for {FOLLOW_S} s",
        bytes.len() as f64 * 8.0 / CAPTURE_S as f64 / 1e6
    );
    let viewers = viewers(dir.path(), links);
    let mut procs = Procs(Vec::new());
    let (segment, feeder) = live_segment(&out, bytes, CAPTURE_S as f64);
    procs.0.push(segment);
    let (server, port) = serve(&out);
    procs.0.push(server);
    wait_for_assets(&out, ASSETS_BEFORE);
    let dipping = [&viewers[DIPPING], &viewers[DIPPING + LINKS.len()]];
    let schedule = Schedule::start(dipping.iter().map(|v| v.link.clone()).collect(), dips());
    let t0 = Instant::now();
    let mut followers = Procs(viewers.iter().map(|v| v.start(port, t0)).collect());
    wait_all(&mut followers, &viewers);
    let failed = schedule.finish();
    assert!(failed.is_empty(), "rate changes failed: {failed:?}");
    drop(procs);
    let _ = feeder.join();
    let reports = viewers.iter().map(Viewer::read_report).collect();
    if std::env::var_os("BACKSET_SHAPED_KEEP").is_some() {
        println!(
            "kept the stream, reports and logs in {}",
            dir.keep().display()
        );
    }
    (viewers, reports)
}

#[test]
fn slow_and_dipping_viewers_start_further_back_and_stall_no_more_than_at_the_edge() {
    let rates: Vec<u64> = LINKS.iter().chain(LINKS.iter()).map(|l| l.1).collect();
    let Some(links) = links_or_skip("per-viewer backsets", &rates) else {
        return;
    };
    let (viewers, reports) = run_scenario(links);
    println!("{}", table(&viewers, &reports));
    let n = LINKS.len();
    let (slow, dipping, fast) = (&reports[0], &reports[DIPPING], &reports[n - 1]);
    for (label, r) in [("0.9", slow), ("dipping 1.5", dipping)] {
        assert!(
            num(r, "recommended_s") > num(fast, "recommended_s"),
            "the {label} Mbit/s viewer was recommended {} s, the 50 Mbit/s one {} s",
            r["recommended_s"],
            fast["recommended_s"]
        );
    }
    let (first_slow, first_fast) = (count(slow, "first_sequence"), count(fast, "first_sequence"));
    assert!(
        first_slow < first_fast,
        "the 0.9 Mbit/s viewer started at asset {first_slow}, the 50 Mbit/s one at {first_fast}"
    );
    for i in [0, DIPPING] {
        let (advised, edge) = (
            count(&reports[i], "stalls"),
            count(&reports[i + n], "stalls"),
        );
        assert!(
            advised <= edge,
            "{}: {advised} stalls at the advised backset, {edge} at the live edge",
            viewers[i].label
        );
    }
    let names: Vec<String> = viewers.iter().flat_map(|v| v.link.names()).collect();
    drop(viewers);
    assert_eq!(present(&names), Vec::<String>::new(), "links left behind");
}
