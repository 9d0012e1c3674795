//! The distributed path on real engines: a paced capture segmented into an
//! S3-compatible store (moto's server), two `serve` replicas on the store
//! sharing the audience in Redis behind an nginx upstream, a viewer through
//! nginx caching the bucket itself (the CDN case, no `serve` at all), one
//! replica killed mid-stream. Every viewer's output is checked with ffmpeg
//! against the capture's tail; `locate` and `verify` read the store. A
//! second test cuts the writer off its store and shows the spool keeping
//! everything until a restart publishes it, and a second writer refused.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use backset::bucket::index_form::Head;
use common::live::{audience_clients, feed, long_capture, longest_stall, start_serving, viewer};
use common::nginx::{balancer_config, free_port, nginx_or_skip, start_cdn, start_nginx};
use common::redis::start_redis_on;
use common::s3::S3Server;
use common::{backset, concatenated, decode_errors, fixture, framemd5, payloads, stderr};

const STREAM: &str = "s3://live/ch1";

/// A `backset` command that uses `s3`'s buckets.
fn on(s3: &S3Server, args: &[&str]) -> Command {
    let mut cmd = backset();
    cmd.args(args).envs(s3.env());
    cmd
}

/// Records on the store, read anonymously as any client would.
fn stored(s3: &S3Server, prefix: &str) -> u64 {
    let url = s3.url("live", &format!("{prefix}/index-head.bin"));
    match ureq::get(&url).call() {
        Ok(mut r) => Head::decode(&r.body_mut().read_to_vec().unwrap()).map_or(0, |h| h.count()),
        Err(_) => 0,
    }
}

fn wait_stored(s3: &S3Server, prefix: &str, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while stored(s3, prefix) < n {
        assert!(
            Instant::now() < deadline,
            "{n} assets never reached the store"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `segment STREAM` fed `bytes` over about `seconds`.
fn paced(
    s3: &S3Server,
    spool: &Path,
    bytes: Vec<u8>,
    seconds: f64,
) -> (Child, std::thread::JoinHandle<()>) {
    let args = [
        "segment",
        STREAM,
        "-",
        "--interval",
        "1s",
        "--hls",
        "--dash",
    ];
    let mut segment = on(s3, &args);
    segment
        .arg("--spool")
        .arg(spool)
        .stderr(Stdio::piped())
        .stdout(Stdio::null());
    let pause = Duration::from_secs_f64(seconds / (bytes.len() / 4096 + 1) as f64);
    feed(segment, bytes, 4096, pause)
}

/// The capture's video frames, from the same bytes cut into a local
/// directory: the reference every viewer's tail is held to.
fn reference_frames(bytes: &[u8], dir: &Path) -> Vec<String> {
    let capture = dir.join("capture.mp4");
    std::fs::write(&capture, bytes).unwrap();
    let local = dir.join("reference");
    let out = common::segment(&local, &capture, &["--interval", "1s"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let whole = dir.join("whole.mp4");
    concatenated(&local, &whole);
    payloads(&framemd5(&whole))["0"].clone()
}

#[test]
fn replicas_on_the_store_and_a_cdn_on_the_bucket_carry_the_stream() {
    let test = "replicas_on_the_store_and_a_cdn_on_the_bucket_carry_the_stream";
    let Some(nginx) = nginx_or_skip(test) else {
        return;
    };
    let Some(s3) = S3Server::start() else {
        return;
    };
    let Some((_redis, redis_url)) = start_redis_on(free_port()) else {
        return;
    };
    s3.create_bucket("live", true);
    let dir = tempfile::tempdir().unwrap();
    let bytes = long_capture();
    let all = reference_frames(&bytes, dir.path());

    // 18 s of media in real time into the store, assets of 1 s.
    let (segment, feeder) = paced(&s3, &dir.path().join("spool"), bytes, 18.0);
    wait_stored(&s3, "ch1", 2);
    let replica = |n: &str| {
        let mut cmd = on(&s3, &["serve", STREAM, "--listen", "127.0.0.1:0"]);
        cmd.args(["--audience", &redis_url, "--mirror-dir"])
            .arg(dir.path().join(format!("mirror-{n}")));
        start_serving(cmd)
    };
    let (mut a, a_url) = replica("a");
    let (_b, b_url) = replica("b");
    let (_lb, lb_url, _) = start_nginx(
        &nginx,
        &dir.path().join("nginx-lb"),
        &balancer_config(&[&a_url, &b_url]),
    );
    let (_cdn, cdn_url, _) = start_cdn(
        &nginx,
        &dir.path().join("nginx-cdn"),
        &s3.url("live", "ch1/"),
    );
    wait_stored(&s3, "ch1", 5);

    let names = ["replicas-0", "replicas-1", "cdn"];
    let outputs: Vec<_> = names
        .iter()
        .map(|n| dir.path().join(format!("{n}.mp4")))
        .collect();
    let viewers: Vec<Child> = names
        .iter()
        .zip(&outputs)
        .map(|(n, o)| {
            viewer(
                if n.starts_with("cdn") {
                    &cdn_url
                } else {
                    &lb_url
                },
                o,
                n,
            )
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    let (on_a, on_b) = (audience_clients(&a_url), audience_clients(&b_url));
    assert!(on_a >= 2 && on_b >= 2, "A counts {on_a}, B {on_b}");
    assert!(on_a.abs_diff(on_b) <= 1, "A counts {on_a}, B {on_b}");

    a.0.kill().unwrap();
    let _ = a.0.wait();
    feeder.join().unwrap();
    let published = segment.wait_with_output().unwrap();
    let log = stderr(&published);
    assert!(published.status.success(), "{log}");
    let latency = log
        .lines()
        .find(|l| l.starts_with("store: "))
        .unwrap_or_default()
        .to_string();

    let mut stalls = Vec::new();
    for ((name, child), output) in names.iter().zip(viewers).zip(&outputs) {
        let o = child.wait_with_output().unwrap();
        let log = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{name}: {log}");
        assert_eq!(decode_errors(output), "", "{name}");
        let video = payloads(&framemd5(output))["0"].clone();
        assert!(
            video.len() > all.len() / 2,
            "{name}: {} frames",
            video.len()
        );
        assert_eq!(
            &all[all.len() - video.len()..],
            &video[..],
            "{name}: not the tail"
        );
        stalls.push(longest_stall(&log));
    }
    let longest = stalls.iter().copied().fold(0.0, f64::max);
    let _ = writeln!(
        std::io::stderr(),
        "store: A counted {on_a} viewers, B {on_b}; after A was killed the longest stall was \
         {longest:.3} s ({names:?}: {stalls:?}); {latency}"
    );
    assert!(longest < 3.0, "a viewer stalled {longest:.3} s");

    // The readers on the store itself.
    let verify = on(&s3, &["verify", STREAM]).output().unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    let located = on(&s3, &["locate", STREAM, "--backset", "5s", "--json"])
        .output()
        .unwrap();
    assert!(located.status.success(), "{}", stderr(&located));
    let answer: serde_json::Value = serde_json::from_slice(&located.stdout).unwrap();
    let path = answer["path"].as_str().unwrap_or_default();
    assert!(path.starts_with("s3://live/ch1/asset-"), "{answer}");
}

#[test]
fn a_store_out_of_reach_costs_nothing_the_spool_keeps_and_one_writer_holds_the_lease() {
    let Some(s3) = S3Server::start() else {
        return;
    };
    s3.create_bucket("live", true);
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let capture = fixture("aac-only.mp4");
    let capture = capture.to_str().unwrap();
    let segment = |endpoint: &str, spool: &Path| {
        on(
            &s3,
            &[
                "segment",
                "s3://live/ch2",
                capture,
                "--interval",
                "1s",
                "-q",
            ],
        )
        .env("AWS_ENDPOINT_URL", endpoint)
        .args(["--drain-timeout", "2s", "--spool"])
        .arg(spool)
        .output()
        .unwrap()
    };

    // Nothing listens here: the capture is cut all the same, and kept.
    let cut_off = segment(&format!("http://127.0.0.1:{}", free_port()), &spool);
    assert_eq!(cut_off.status.code(), Some(1), "{}", stderr(&cut_off));
    assert!(
        stderr(&cut_off).contains("wait in the spool"),
        "{}",
        stderr(&cut_off)
    );
    assert_eq!(stored(&s3, "ch2"), 0);
    let spooled = common::records(&spool).len() as u64;
    assert!(spooled >= 6, "{spooled} assets spooled");

    // The next run with the spool publishes it first, then its own capture.
    let again = segment(&s3.endpoint(), &spool);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(stored(&s3, "ch2"), 2 * spooled);
    let verify = on(&s3, &["verify", "s3://live/ch2"]).output().unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );

    // Another spool does not continue this transmission: refused, and the
    // store is left as it was.
    let stranger = segment(&s3.endpoint(), &dir.path().join("other"));
    assert_eq!(stranger.status.code(), Some(2), "{}", stderr(&stranger));
    assert!(
        stderr(&stranger).contains("does not continue"),
        "{}",
        stderr(&stranger)
    );
    assert_eq!(stored(&s3, "ch2"), 2 * spooled);

    // While a writer holds the lease, a second one is refused by name.
    let (mut first, feeder) = {
        let spool3 = dir.path().join("spool3");
        let mut cmd = on(&s3, &["segment", "s3://live/ch3", "-", "-q", "--spool"]);
        let mut child = cmd
            .arg(&spool3)
            .stdin(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let bytes = std::fs::read(fixture("aac-only.mp4")).unwrap();
        let feeder = std::thread::spawn(move || {
            for c in bytes.chunks(1024) {
                let _ = stdin.write_all(c);
                std::thread::sleep(Duration::from_millis(60));
            }
        });
        (child, feeder)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while ureq::get(&s3.url("live", "ch3/.lease")).call().is_err() {
        assert!(
            Instant::now() < deadline,
            "the first writer never took the lease"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = on(&s3, &["segment", "s3://live/ch3", capture, "-q", "--spool"])
        .arg(dir.path().join("spool4"))
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1), "{}", stderr(&second));
    assert!(
        stderr(&second).contains("holds this stream's lease"),
        "{}",
        stderr(&second)
    );
    feeder.join().unwrap();
    assert!(first.wait().unwrap().success());
    // Released at the end: the next writer may take it.
    assert!(ureq::get(&s3.url("live", "ch3/.lease")).call().is_err());

    // A writer killed mid-stream leaves its lease; restarted at once on the
    // same host with its spool, it takes over from the dead one.
    let spool5 = dir.path().join("spool5");
    let mut killed = on(
        &s3,
        &[
            "segment",
            "s3://live/ch5",
            "-",
            "-q",
            "--interval",
            "1s",
            "--spool",
        ],
    )
    .arg(&spool5)
    .stdin(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let mut stdin = killed.stdin.take().unwrap();
    let bytes = std::fs::read(fixture("aac-only.mp4")).unwrap();
    for c in bytes.chunks(2048) {
        stdin.write_all(c).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        if stored(&s3, "ch5") >= 2 {
            break;
        }
    }
    wait_stored(&s3, "ch5", 2);
    killed.kill().unwrap();
    let _ = killed.wait();
    assert!(ureq::get(&s3.url("live", "ch5/.lease")).call().is_ok());
    let restarted = on(
        &s3,
        &[
            "segment",
            "s3://live/ch5",
            capture,
            "-q",
            "--interval",
            "1s",
            "--spool",
        ],
    )
    .arg(&spool5)
    .output()
    .unwrap();
    assert!(restarted.status.success(), "{}", stderr(&restarted));
    let verify = on(&s3, &["verify", "s3://live/ch5"]).output().unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    assert_eq!(stored(&s3, "ch5"), common::records(&spool5).len() as u64);
}
