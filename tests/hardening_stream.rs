//! The stream directory under attack (issue 13), end to end: one writer per
//! directory, names only from the validated pattern, unknown versions
//! refused, and an index whose tail is garbage, a huge sparse hole or a
//! forged record answered at once and reported by `verify`.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use backset::stream::index::Record;
use common::*;

const FIXTURE: &str = "h264-aac-fragdur.mp4";

/// Every file in `dir` with its bytes and modification time.
fn snapshot(dir: &Path) -> BTreeMap<String, (Vec<u8>, SystemTime)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let modified = e.metadata().unwrap().modified().unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            (name, (std::fs::read(e.path()).unwrap(), modified))
        })
        .collect()
}

/// Waits until `dir` holds an indexed asset and has not changed for a
/// while: the writer is waiting for input.
fn settled(dir: &Path) -> BTreeMap<String, (Vec<u8>, SystemTime)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = BTreeMap::new();
    loop {
        assert!(Instant::now() < deadline, "the first writer never settled");
        std::thread::sleep(Duration::from_millis(300));
        let now = if dir.join("index.bin").exists() && !records(dir).is_empty() {
            snapshot(dir)
        } else {
            BTreeMap::new()
        };
        if !now.is_empty() && now == last {
            return now;
        }
        last = now;
    }
}

#[test]
fn a_second_segment_exits_1_at_once_naming_the_writer_and_writes_nothing() {
    let bytes = std::fs::read(fixture(FIXTURE)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut first = backset()
        .args([
            "segment",
            out.to_str().unwrap(),
            "-",
            "-q",
            "--interval",
            "1s",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut feed = first.stdin.take().unwrap();
    // Most of the capture, then nothing: the writer waits on its pipe.
    feed.write_all(&bytes[..bytes.len() * 2 / 3]).unwrap();
    let before = settled(&out);
    let pid = first.id().to_string();
    assert_eq!(before[".lock"].0, format!("{pid}\n").into_bytes());

    let input = fixture(FIXTURE);
    for extra in [&[][..], &["--new"][..]] {
        let started = Instant::now();
        let mut args = vec!["segment", out.to_str().unwrap(), input.to_str().unwrap()];
        args.extend_from_slice(extra);
        let second = run(&args);
        assert!(started.elapsed() < Duration::from_secs(5), "{extra:?}");
        assert_eq!(
            second.status.code(),
            Some(1),
            "{extra:?}: {}",
            stderr(&second)
        );
        let said = stderr(&second);
        assert!(said.contains(&format!("pid {pid}")), "{said}");
        assert!(!said.contains("panicked"), "{said}");
        assert_eq!(snapshot(&out), before, "{extra:?}: nothing written");
    }

    feed.write_all(&bytes[bytes.len() * 2 / 3..]).unwrap();
    drop(feed);
    assert!(first.wait().unwrap().success());
    let published = records(&out);
    for pair in published.windows(2) {
        assert_eq!(pair[0].sequence + 1, pair[1].sequence);
    }
    let v = run(&["verify", out.to_str().unwrap()]);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
    // The lock went with the writer: the next run goes on.
    segment(&out, &input, &["--new"]);
}

fn stream() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    segment(&out, &fixture(FIXTURE), &[]);
    (dir, out)
}

fn locate(out: &Path) -> Output {
    run(&["locate", out.to_str().unwrap(), "--backset", "1s", "--json"])
}

fn verify(out: &Path) -> (Option<i32>, String) {
    let v = run(&["verify", out.to_str().unwrap()]);
    assert!(!stderr(&v).contains("panicked"), "{}", stderr(&v));
    (
        v.status.code(),
        String::from_utf8_lossy(&v.stdout).into_owned(),
    )
}

fn index_len(out: &Path) -> u64 {
    std::fs::metadata(out.join("index.bin")).unwrap().len()
}

#[test]
fn a_sparse_tail_of_zeros_answers_locate_at_once() {
    let (_dir, out) = stream();
    let answer = locate(&out);
    assert!(answer.status.success(), "{}", stderr(&answer));
    let valid = index_len(&out);
    for hole in [1u64 << 30, 100 << 30] {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(out.join("index.bin"))
            .unwrap();
        f.set_len(valid + hole).unwrap();
        let started = Instant::now();
        let o = locate(&out);
        let took = started.elapsed();
        assert!(took < Duration::from_millis(500), "{hole} bytes: {took:?}");
        assert_eq!(o.stdout, answer.stdout, "{}", stderr(&o));
        let started = Instant::now();
        let (code, said) = verify(&out);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(code, Some(1), "{said}");
        let garbage = format!("index.bin at byte {valid}: {hole} bytes of garbage");
        assert!(said.contains(&garbage), "{said}");
    }
}

#[test]
fn serve_answers_and_stops_at_once_whatever_the_index_holds() {
    let (_dir, out) = stream();
    let valid = index_len(&out);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(out.join("index.bin"))
        .unwrap();
    f.set_len(valid + (100 << 30)).unwrap();
    let (mut server, url) = common::live::start_server(&out, "127.0.0.1:0");
    let asked = Instant::now();
    let answer = ureq::get(format!("{url}backset.json"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "{:?}",
        asked.elapsed()
    );
    assert!(answer.contains("recommended_s"), "{answer}");
    let pid = pid_of(&server);
    // SAFETY: a signal to the child this test started and still owns.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let stopping = Instant::now();
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        assert!(
            stopping.elapsed() < Duration::from_secs(1),
            "still serving 1 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "{status:?}");
}

fn pid_of(child: &std::process::Child) -> i32 {
    i32::try_from(child.id()).unwrap()
}

#[test]
fn a_random_tail_is_reported_by_verify_with_its_offset_and_size() {
    let (_dir, out) = stream();
    let valid = index_len(&out);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let tail: Vec<u8> = (0..10 << 20)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(out.join("index.bin"))
        .unwrap();
    f.write_all(&tail).unwrap();
    let (code, said) = verify(&out);
    assert_eq!(code, Some(1), "{said}");
    let garbage = format!("index.bin at byte {valid}: {} bytes of garbage", 10 << 20);
    assert!(said.contains(&garbage), "{said}");
    assert!(locate(&out).status.success());
}

#[test]
fn a_forged_record_does_not_move_the_live_edge() {
    let (_dir, out) = stream();
    let answer = locate(&out);
    let valid = index_len(&out);
    let last = *records(&out).last().unwrap();
    let forged = Record {
        sequence: last.sequence + 1,
        start: u64::MAX,
        ..last
    };
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(out.join("index.bin"))
        .unwrap();
    f.write_all(&forged.encode()).unwrap();
    let o = locate(&out);
    assert_eq!(o.stdout, answer.stdout, "{}", stderr(&o));
    let (code, said) = verify(&out);
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains(&format!("index.bin at byte {valid}: 64 bytes of garbage")),
        "{said}"
    );
}

/// `stream.json` edited by `edit`; each reader refuses it with exit 2 and
/// a message containing `says`.
fn refused(edit: impl Fn(&mut serde_json::Value), says: &str) {
    let (_dir, out) = stream();
    let path = out.join("stream.json");
    let mut d: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut d);
    std::fs::write(&path, serde_json::to_vec(&d).unwrap()).unwrap();
    for o in [locate(&out), run(&["verify", out.to_str().unwrap()])] {
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        let said = stderr(&o);
        assert!(
            said.contains("stream.json") && said.contains(says),
            "{said}"
        );
        assert!(o.stdout.is_empty(), "nothing answered");
    }
}

#[test]
fn a_prefix_that_is_a_path_is_refused_by_readers() {
    refused(
        |d| d["prefix"] = "../../../../etc/passwd".into(),
        "bad prefix",
    );
    refused(|d| d["prefix"] = "x".repeat(65).into(), "bad prefix");
}

#[test]
fn unknown_versions_are_refused_naming_the_file_and_the_version() {
    refused(
        |d| d["version"] = 2.into(),
        "stream.json version 2 is not supported",
    );
    let (_dir, out) = stream();
    let path = out.join("index.bin");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8..12].copy_from_slice(&3u32.to_be_bytes());
    std::fs::write(&path, bytes).unwrap();
    let o = locate(&out);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("index.bin: index version 3 is not supported"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_prefix_with_dots_or_too_long_is_refused_by_segment() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let input = fixture(FIXTURE);
    for prefix in ["a..b", &"x".repeat(65)] {
        let o = run(&[
            "segment",
            out.to_str().unwrap(),
            input.to_str().unwrap(),
            "--prefix",
            prefix,
        ]);
        assert_eq!(o.status.code(), Some(2), "{prefix}");
        assert!(stderr(&o).contains("bad prefix"), "{}", stderr(&o));
    }
}
