//! What `serve` learns of each viewer is what the viewer received: readers
//! on loopback with a small receive buffer, each reading at its own pace,
//! are measured at that pace (from the kernel's acknowledged bytes), not at
//! the speed the server handed bytes to its socket.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::live::start_server;
use common::*;

/// A 4 s 720p capture at about 4 Mbit/s: two assets of about 1 MB.
fn big_capture(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("big.mp4");
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=1280x720:rate=25:duration=4")
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-b:v", "4M"])
        .args([
            "-g",
            "50",
            "-f",
            "mp4",
            "-movflags",
            "frag_keyframe+empty_moov",
        ])
        .arg(&path)
        .status()
        .expect("ffmpeg");
    assert!(status.success());
    path
}

fn json(addr: SocketAddr, path: &str, client: Option<&str>) -> serde_json::Value {
    let mut req = ureq::get(format!("http://{addr}{path}"));
    if let Some(c) = client {
        req = req.header("X-Backset-Client", c);
    }
    let body = req.call().unwrap().body_mut().read_to_string().unwrap();
    serde_json::from_str(&body).unwrap()
}

/// Fetches `path` over a socket with a small receive buffer, reading at
/// `bps`; returns the body length.
fn paced_get(addr: SocketAddr, path: &str, client: &str, bps: f64) -> usize {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&addr.into()).unwrap();
    let mut stream: std::net::TcpStream = socket.into();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nX-Backset-Client: {client}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let start = Instant::now();
    let (mut got, mut buf) = (0usize, [0u8; 2048]);
    loop {
        let due = start + Duration::from_secs_f64(got as f64 * 8.0 / bps);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        match stream.read(&mut buf).unwrap() {
            0 => return got,
            n => got += n,
        }
    }
}

#[test]
fn throttled_readers_are_measured_at_the_pace_they_read() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let capture = big_capture(dir.path());
    assert!(segment(&out, &capture, &["--interval", "2s"])
        .status
        .success());
    let (mut server, url) = start_server(&out, "127.0.0.1:0");
    let addr: SocketAddr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let asset = format!(
        "/{}",
        asset_paths(&out)[0].file_name().unwrap().to_str().unwrap()
    );
    let readers: Vec<_> = [1.5e6, 3e6, 8e6]
        .into_iter()
        .map(|bps| {
            let client = json(addr, "/backset.json", None)["client"]
                .as_str()
                .unwrap()
                .to_string();
            let asset = asset.clone();
            std::thread::spawn(move || {
                let len = paced_get(addr, &asset, &client, bps);
                assert!(len > 500_000, "{len} bytes");
                (bps, client)
            })
        })
        .collect();
    let mut seen = Vec::new();
    for r in readers {
        let (bps, client) = r.join().unwrap();
        // The last acknowledgement lands within a poll of the last read.
        std::thread::sleep(Duration::from_millis(300));
        let facts = json(addr, "/backset.json", Some(&client));
        let measured = facts["viewer"]["throughput_bps"].as_f64().unwrap_or(0.0);
        seen.push((bps, measured));
        assert_eq!(facts["viewer"]["throughput_source"], "server");
    }
    let _ = server.kill();
    let _ = server.wait();
    for (bps, measured) in &seen {
        let ratio = measured / bps;
        assert!(
            (0.75..=1.25).contains(&ratio),
            "read at {bps} bit/s, measured {measured} bit/s (all: {seen:?})"
        );
    }
}
