//! Two `serve` replicas of one stream behind nginx (an upstream with
//! failover), sharing the audience in one Redis: viewers follow through
//! nginx, both replicas count the same audience, one replica is killed
//! mid-stream and the viewers go on (the longest stall is reported), and
//! every viewer's stream is the transmission's tail, frame for frame.

mod common;

use std::io::Write;
use std::process::Child;
use std::time::Duration;

use common::live::{
    audience_clients, long_capture, longest_stall, paced_segment, start_server_with, viewer,
    wait_for_assets,
};
use common::nginx::{balancer_config, free_port, nginx_or_skip, start_nginx};
use common::redis::start_redis_on;
use common::{concatenated, decode_errors, framemd5, payloads};

const VIEWERS: usize = 3;

#[test]
fn viewers_go_on_through_nginx_when_a_replica_dies() {
    let test = "viewers_go_on_through_nginx_when_a_replica_dies";
    let Some(bin) = nginx_or_skip(test) else {
        return;
    };
    let Some((_redis, redis_url)) = start_redis_on(free_port()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // 18 s of media in real time, assets of 1 s.
    let bytes = long_capture();
    let pause = Duration::from_secs_f64(18.0 / (bytes.len() / 4096 + 1) as f64);
    let (mut segment, feeder) = paced_segment(&out, bytes, 4096, pause, &["--interval", "1s"]);
    wait_for_assets(&out, 2);
    let shared = ["--audience", redis_url.as_str()];
    let (mut a, a_url) = start_server_with(&out, "127.0.0.1:0", &shared);
    let (_b, b_url) = start_server_with(&out, "127.0.0.1:0", &shared);
    let config = balancer_config(&[&a_url, &b_url]);
    let (_nginx, url, _) = start_nginx(&bin, &dir.path().join("nginx"), &config);
    wait_for_assets(&out, 5);

    let outputs: Vec<_> = (0..VIEWERS)
        .map(|n| dir.path().join(format!("v{n}.mp4")))
        .collect();
    let viewers: Vec<Child> = outputs
        .iter()
        .enumerate()
        .map(|(n, o)| viewer(&url, o, &format!("viewer-{n}")))
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    // Both replicas advise from the same audience: the viewers, whichever
    // replica each request went to.
    let (on_a, on_b) = (audience_clients(&a_url), audience_clients(&b_url));
    assert!(
        on_a >= VIEWERS as u64 && on_b >= VIEWERS as u64,
        "A counts {on_a}, B {on_b}"
    );
    assert!(on_a.abs_diff(on_b) <= 1, "A counts {on_a}, B {on_b}");

    // Replica A dies mid-stream; nginx sends everything to B.
    a.0.kill().unwrap();
    let _ = a.0.wait();
    feeder.join().unwrap();
    assert!(segment.wait().unwrap().success());

    let whole = dir.path().join("whole.mp4");
    concatenated(&out, &whole);
    let all = payloads(&framemd5(&whole))["0"].clone();
    let mut stalls = Vec::new();
    for (n, (child, output)) in viewers.into_iter().zip(&outputs).enumerate() {
        let o = child.wait_with_output().unwrap();
        let log = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "viewer {n}: {log}");
        assert_eq!(decode_errors(output), "", "viewer {n}");
        let video = payloads(&framemd5(output))["0"].clone();
        assert!(
            video.len() > all.len() / 2,
            "viewer {n}: {} frames",
            video.len()
        );
        assert_eq!(
            &all[all.len() - video.len()..],
            &video[..],
            "viewer {n}: not the tail"
        );
        stalls.push(longest_stall(&log));
    }
    let longest = stalls.iter().copied().fold(0.0, f64::max);
    let _ = writeln!(
        std::io::stderr(),
        "replicas: A counted {on_a} viewers, B {on_b}; after A was killed the longest stall was {longest:.3} s ({stalls:?})"
    );
    assert!(longest < 3.0, "a viewer stalled {longest:.3} s");
}
