//! Every command whose reader goes away (`backset inspect … | head -1`)
//! exits 0 and says nothing: no panic, no backtrace. Standard output is a
//! pipe whose read end is closed before the command writes (every write
//! fails with EPIPE, deterministically), or after one line was read.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Output, Stdio};

use common::{asset_paths, backset, fixture, segment};

const COEFFS: &str = "less=0.1,more=0.2,down=1s,up=2s";

/// Runs `args` with standard output a pipe nobody reads.
fn closed_early(args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let child = backset()
        .args(args)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Runs `args`, reads one line of its output and closes the pipe (`head -1`).
fn closed_after_a_line(args: &[&str]) -> Output {
    let mut child = backset()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(!line.is_empty(), "{args:?} wrote nothing");
    child.wait_with_output().unwrap()
}

fn assert_quiet(args: &[&str], o: &Output) {
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.code() == Some(0) && stderr.is_empty(),
        "{args:?}: {:?}, stderr {stderr:?}",
        o.status
    );
}

fn stream(dir: &Path) -> (String, String) {
    let out = dir.join("out");
    segment(&out, &fixture("h264-aac-gop.mp4"), &[]);
    let asset = asset_paths(&out)[0].to_str().unwrap().to_string();
    (out.to_str().unwrap().to_string(), asset)
}

/// A draw long enough that its reader goes away before it ends.
const DRAW: [&str; 9] = [
    "draw",
    "-n",
    "100000",
    "--recommended",
    "2s",
    "--max",
    "4s",
    "--coeffs",
    COEFFS,
];

#[test]
fn every_command_exits_quietly_when_its_reader_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    let (out, asset) = stream(dir.path());
    let draw = DRAW;
    let commands: Vec<Vec<&str>> = vec![
        vec!["inspect", &asset],
        vec!["inspect", &asset, "--json"],
        vec!["verify", &out],
        vec!["verify", &out, "--json"],
        vec!["locate", &out, "--backset", "1s", "--clamp"],
        vec!["locate", &out, "--backset", "1s", "--clamp", "--json"],
        draw.to_vec(),
        [draw.as_slice(), &["--json"]].concat(),
        vec!["advise", "--throughput", "3Mbps", "--bitrate", "2Mbps"],
        vec![
            "advise",
            "--throughput",
            "3Mbps",
            "--bitrate",
            "2Mbps",
            "--json",
        ],
        vec!["simulate", "--viewers", "20", "--duration", "1m"],
        vec!["simulate", "--viewers", "20", "--duration", "1m", "--json"],
    ];
    for args in &commands {
        assert_quiet(args, &closed_early(args));
    }
}

#[test]
fn a_reader_that_takes_one_line_then_goes_is_no_failure() {
    let dir = tempfile::tempdir().unwrap();
    let (_, asset) = stream(dir.path());
    let draw = DRAW;
    for args in [draw.as_slice(), &["inspect", &asset]] {
        assert_quiet(args, &closed_after_a_line(args));
    }
}
