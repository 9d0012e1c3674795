//! `backset follow` against a hostile server (a few lines of HTTP on a
//! std `TcpListener` thread): an endless `/backset.json`, the last sequence
//! there can be, negative values, a body cut short, no server at all. Each
//! ends at once with a clear message: exit 2 for an answer outside the
//! protocol, 1 for the network; never a hang, never a replay.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Output;
use std::time::{Duration, Instant};

use backset::http::api::{Located, Params};
use backset::policy::{Advice, Coefficients};
use backset::stream::locate::{Answer, Window};
use common::backset;

/// What the hostile server sends for a path.
type Respond = fn(&str, &mut TcpStream);

/// Serves every connection with `respond`, one request each.
fn hostile(respond: Respond) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for socket in listener.incoming() {
            let Ok(mut socket) = socket else { return };
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0; 1];
                while !head.ends_with(b"\r\n\r\n") && socket.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head);
                let path = head.split(' ').nth(1).unwrap_or("/").to_string();
                respond(&path, &mut socket);
            });
        }
    });
    format!("http://127.0.0.1:{port}/")
}

fn json(socket: &mut TcpStream, body: &str) {
    let _ = write!(
        socket,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn params(edit: fn(&mut Params)) -> String {
    let mut p = Params {
        client: "v-1".into(),
        advice: Advice {
            recommended_s: 2.0,
            maximum_s: 4.0,
            coefficients: Coefficients {
                less: 0.1,
                more: 0.2,
                down_s: 0.5,
                up_s: 1.0,
            },
        },
        coeffs: String::new(),
        live_edge_s: 10.0,
        live_edge_sequence: 4,
        first_sequence: 0,
        asset_duration_s: 2.0,
        bitrate_bps: 1_000_000,
        prefix: "asset".into(),
        pattern: "asset-%08d.mp4".into(),
        ended: false,
        viewer: Default::default(),
        audience: Default::default(),
        distribution: None,
    };
    edit(&mut p);
    serde_json::to_string(&p).unwrap()
}

fn located(sequence: u64, backset: f64) -> String {
    serde_json::to_string(&Located {
        asset: format!("asset-{sequence:08}.mp4"),
        answer: Answer {
            sequence,
            offset: 1000,
            entry: 0,
            timestamp: 8.0,
            timestamp_ticks: 8000,
            datastamp: 0,
            wallclock_us: 0,
            backset,
            header_len: 500,
            window: Window {
                oldest_sequence: 0,
                newest_sequence: sequence,
                start: 0.0,
                end: 10.0,
            },
        },
    })
    .unwrap()
}

/// Follows `url` with a given backset; insists it ends within 20 s.
fn follow(url: &str) -> (Output, String) {
    let started = Instant::now();
    let out = backset()
        .args(["follow", url, "--backset", "1s", "--retry-for", "1s"])
        .output()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (out, stderr)
}

fn assert_exit(out: &Output, stderr: &str, code: i32, want: &str) {
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert!(stderr.contains(want), "{stderr:?} lacks {want:?}");
    assert!(out.stdout.is_empty());
}

#[test]
fn an_endless_backset_json_is_cut_at_one_mebibyte() {
    let url = hostile(|_, socket| {
        let _ = socket.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        let chunk = [b"10000\r\n".as_slice(), &[b' '; 0x10000], b"\r\n"].concat();
        while socket.write_all(&chunk).is_ok() {}
    });
    let (out, stderr) = follow(&url);
    assert_exit(
        &out,
        &stderr,
        2,
        "backset.json: the answer is longer than 1048576 bytes; refused",
    );
}

#[test]
fn the_last_sequence_there_can_be_is_refused_not_wrapped() {
    let url = hostile(|path, socket| match path {
        "/backset.json" => json(
            socket,
            &params(|p| {
                p.live_edge_sequence = u64::MAX;
                p.first_sequence = u64::MAX - 4;
            }),
        ),
        _ if path.starts_with("/locate") => json(socket, &located(u64::MAX, 1.0)),
        // Nothing else is asked for: the run ends before any asset.
        _ => panic!("asked for {path}"),
    });
    let (out, stderr) = follow(&url);
    assert_exit(
        &out,
        &stderr,
        2,
        "asset sequence 18446744073709551615 has no successor",
    );
}

#[test]
fn negative_values_are_refused() {
    let url = hostile(|_, socket| json(socket, &params(|p| p.advice.recommended_s = -1000.0)));
    let (out, stderr) = follow(&url);
    assert_exit(
        &out,
        &stderr,
        2,
        "backset.json: recommended_s -1000.0 is not a duration",
    );
    let url = hostile(|path, socket| match path {
        "/backset.json" => json(socket, &params(|_| {})),
        _ => json(socket, &located(4, -1000.0)),
    });
    let (out, stderr) = follow(&url);
    assert_exit(&out, &stderr, 2, "backset -1000.0 is not a duration");
}

#[test]
fn a_body_cut_short_and_no_server_are_network_failures() {
    let url = hostile(|_, socket| {
        let _ = socket.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{\"client\"");
    });
    let (out, stderr) = follow(&url);
    assert_exit(&out, &stderr, 1, "giving up after 1s");
    // A port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (out, stderr) = follow(&format!("http://127.0.0.1:{port}/"));
    assert_exit(&out, &stderr, 1, "giving up after 1s");
}
