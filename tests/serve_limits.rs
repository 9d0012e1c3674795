//! `serve` under the pressure an attacker can apply: thousands of
//! connections that never finish their request head, a cap on
//! connections, oversized heads, an asset swapped for a link to a file
//! outside the directory, and odd ranges answered alike from memory and
//! from the file.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::live::start_server_with;
use common::*;

type Reply = (u16, Vec<u8>);

/// These tests hold thousands of sockets and time answers: one at a time,
/// so one's load is not another's latency.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn get(url: &str, headers: &[(&str, &str)]) -> Reply {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let mut req = agent.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut resp = req.call().unwrap();
    let body = resp.body_mut().read_to_vec().unwrap();
    (resp.status().as_u16(), body)
}

/// A stream directory segmented from a fixture, in a temporary directory.
fn stream() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    segment(&out, &fixture("h264-aac-gop.mp4"), &["--interval", "1s"]);
    (dir, out)
}

fn host(url: &str) -> String {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}

/// So this process can hold a few thousand sockets.
fn raise_descriptor_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain reads and writes of the struct given.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
    }
}

/// Connections that send part of a request line and then nothing.
fn slow(addr: &str, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /asset-0000").unwrap();
            s
        })
        .collect()
}

/// Whether the server has closed `s` (end of stream or reset).
fn closed(mut s: &TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut buf = [0; 64];
    match s.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[test]
fn slow_heads_neither_block_others_nor_stay_open_past_the_header_timeout() {
    let _serial = serial();
    raise_descriptor_limit();
    let (_dir, out) = stream();
    let (mut server, url) = start_server_with(&out, "127.0.0.1:0", &["--header-timeout", "2s"]);
    let started = Instant::now();
    let mut held = slow(&host(&url), 2000);
    let asked = Instant::now();
    let (code, body) = get(&format!("{url}asset-00000000.mp4"), &[]);
    assert_eq!(code, 200);
    assert_eq!(body.len() as u64, records(&out)[0].size);
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "answered in {:?} beside 2,000 slow connections",
        asked.elapsed()
    );
    let still_open = held.iter().filter(|s| !closed(s)).count();
    assert!(
        started.elapsed() > Duration::from_secs(2) || still_open > 1900,
        "closed before the header timeout: {} of 2000",
        2000 - still_open
    );
    std::thread::sleep(Duration::from_secs(3).saturating_sub(started.elapsed()));
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut open = held.len();
    while open > 0 && Instant::now() < deadline {
        held.retain(|s| !closed(s));
        open = held.len();
    }
    assert_eq!(open, 0, "slow connections still open after the timeout");
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn at_the_connection_cap_the_oldest_idle_connection_makes_room() {
    let _serial = serial();
    let (_dir, out) = stream();
    let (mut server, url) = start_server_with(&out, "127.0.0.1:0", &["--max-connections", "50"]);
    let held = slow(&host(&url), 100);
    std::thread::sleep(Duration::from_millis(200));
    let asked = Instant::now();
    assert_eq!(get(&format!("{url}backset.json"), &[]).0, 200);
    assert!(asked.elapsed() < Duration::from_secs(1));
    // The server closes them as it accepts the newer ones: give it time.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut first_closed = held[..10].iter().filter(|s| closed(s)).count();
    while first_closed < 10 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        first_closed = held[..10].iter().filter(|s| closed(s)).count();
    }
    let newest_open = held[90..].iter().filter(|s| !closed(s)).count();
    assert_eq!(
        (first_closed, newest_open),
        (10, 10),
        "oldest idle go first"
    );
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn an_oversized_request_head_is_refused() {
    let _serial = serial();
    let (_dir, out) = stream();
    let (mut server, url) = start_server_with(&out, "127.0.0.1:0", &[]);
    let mut s = TcpStream::connect(host(&url)).unwrap();
    let big = "x".repeat(64 * 1024);
    let head = format!("GET /backset.json HTTP/1.1\r\nHost: a\r\nX-Big: {big}\r\n\r\n");
    let _ = s.write_all(head.as_bytes());
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer}"
    );
    // An ordinary head on a new connection is answered.
    assert_eq!(get(&format!("{url}backset.json"), &[]).0, 200);
    let _ = server.kill();
    let _ = server.wait();
}

/// Replaces the asset at `path` with a link to a file outside the directory
/// holding `bytes`.
fn link_outside(path: &Path, outside: &Path, bytes: &[u8]) {
    std::fs::write(outside, bytes).unwrap();
    std::fs::remove_file(path).unwrap();
    std::os::unix::fs::symlink(outside, path).unwrap();
}

#[test]
fn an_asset_replaced_by_a_link_or_another_size_is_never_served() {
    let _serial = serial();
    let (dir, out) = stream();
    let recs = records(&out);
    let secret = vec![b'S'; recs[1].size as usize];
    let asset = out.join("asset-00000001.mp4");
    link_outside(&asset, &dir.path().join("secret"), &secret);
    std::fs::write(out.join("asset-00000002.mp4"), b"short").unwrap();
    for cache in ["64MiB", "0"] {
        let (mut server, url) = start_server_with(&out, "127.0.0.1:0", &["--cache", cache]);
        for range in [None, Some("bytes=0-99")] {
            let h: Vec<(&str, &str)> = range.map(|r| ("range", r)).into_iter().collect();
            let (code, body) = get(&format!("{url}asset-00000001.mp4"), &h);
            assert_eq!(code, 404, "--cache {cache} {range:?}");
            assert!(
                !body.contains(&b'S'),
                "the outside file's bytes were served"
            );
            let (code, body) = get(&format!("{url}asset-00000002.mp4"), &h);
            let message = String::from_utf8_lossy(&body);
            assert_eq!(code, 500, "--cache {cache}: {message}");
            assert!(message.contains("index record"), "{message}");
        }
        assert_eq!(get(&format!("{url}asset-00000000.mp4"), &[]).0, 200);
        let _ = server.kill();
        let _ = server.wait();
    }
}

#[test]
fn odd_ranges_are_answered_alike_from_memory_and_from_the_file() {
    let _serial = serial();
    let (_dir, out) = stream();
    let (mut memory, m) = start_server_with(&out, "127.0.0.1:0", &[]);
    let (mut file, f) = start_server_with(
        &out,
        "127.0.0.1:0",
        &["--cache", "0", "--shared-reads", "0"],
    );
    let size = records(&out)[0].size;
    let ranges = [
        "bytes=0-0,1-1",
        "bytes=abc",
        "bytes=-0",
        "bytes=0-0",
        "bytes=-5",
        "bytes=5-",
        "bytes=3-1",
        &format!("bytes={size}-"),
        &format!("bytes=10-{}", size + 100),
    ];
    for range in ranges {
        let from_memory = get(&format!("{m}asset-00000000.mp4"), &[("range", range)]);
        let from_file = get(&format!("{f}asset-00000000.mp4"), &[("range", range)]);
        assert_eq!(from_memory, from_file, "{range}");
    }
    let status = |r: &str| get(&format!("{m}asset-00000000.mp4"), &[("range", r)]).0;
    assert_eq!(
        [
            status("bytes=0-0,1-1"),
            status("bytes=abc"),
            status("bytes=-0")
        ],
        [200, 200, 416]
    );
    for s in [&mut memory, &mut file] {
        let _ = s.kill();
        let _ = s.wait();
    }
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let _serial = serial();
    let (_dir, out) = stream();
    let (mut server, url) = start_server_with(&out, "127.0.0.1:0", &["--idle-timeout", "1s"]);
    let mut s = TcpStream::connect(host(&url)).unwrap();
    s.write_all(b"GET /backset.json HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut head = [0; 12];
    s.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    let answered = Instant::now();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    let idle = answered.elapsed();
    assert!(
        idle > Duration::from_millis(500) && idle < Duration::from_secs(3),
        "closed after {idle:?}"
    );
    let _ = server.kill();
    let _ = server.wait();
}
