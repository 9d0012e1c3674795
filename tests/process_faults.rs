//! The process killed at any moment, a closed stderr, a full disk: nothing
//! published is lost, the directory stays consistent, and a restart goes on.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::live::paced_segment;
use common::*;

fn verify_ok(out: &Path) {
    let v = run(&["verify", out.to_str().unwrap(), "--json"]);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
}

#[test]
fn sigkill_at_random_moments_loses_nothing_published_and_a_restart_goes_on() {
    let bytes = std::fs::read(fixture("h264-every-frame.mp4")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // Deterministic "random" kill moments, from a few ms to past the end.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut published_before = 0;
    for round in 0..8 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let kill_after = Duration::from_millis(5 + seed % 900);
        let (mut child, feeder) = paced_segment(
            &out,
            bytes.clone(),
            4096,
            Duration::from_millis(15),
            &["--interval", "0.2s"],
        );
        std::thread::sleep(kill_after);
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let _ = feeder.join();

        if !out.join("index.bin").exists() {
            continue;
        }
        verify_ok(&out);
        let records = records(&out);
        assert!(
            records.len() >= published_before,
            "round {round}: published assets disappeared"
        );
        published_before = records.len();
        // Names are only ever complete assets: each one's size is its record's.
        for r in &records {
            let path = out.join(format!("asset-{:08}.mp4", r.sequence));
            assert_eq!(
                std::fs::metadata(&path).unwrap().len(),
                r.size,
                "round {round}"
            );
        }
    }
    // A clean run afterwards goes on from where the killed ones stopped.
    let before = records(&out);
    segment(
        &out,
        &fixture("h264-every-frame.mp4"),
        &["--interval", "0.2s"],
    );
    let after = records(&out);
    assert!(after.len() > before.len());
    for pair in after.windows(2) {
        assert_eq!(pair[0].sequence + 1, pair[1].sequence);
        assert_eq!(pair[0].start + pair[0].duration, pair[1].start);
        assert_eq!(pair[0].datastamp + pair[0].media_len(), pair[1].datastamp);
    }
    verify_ok(&out);
    let leftovers: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".partial"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "a restart clears temporary files: {leftovers:?}"
    );
}

#[test]
fn a_closed_stderr_does_not_stop_segment() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut child = backset()
        .args([
            "segment",
            out.to_str().unwrap(),
            fixture("h264-aac-gop.mp4").to_str().unwrap(),
            "--interval",
            "1s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close the read ends at once: every line it writes meets a broken pipe.
    drop(child.stdout.take());
    drop(child.stderr.take());
    assert!(child.wait().unwrap().success());
    assert_eq!(records(&out).len(), 3);
    verify_ok(&out);
}

/// Mounts a small tmpfs; `None` where this machine does not allow it.
fn small_disk(dir: &Path, size: &str) -> Option<Mount> {
    std::fs::create_dir_all(dir).ok()?;
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .stderr(Stdio::null())
        .status()
        .ok()?
        .success();
    ok.then(|| Mount(dir.to_path_buf()))
}

struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_is_reported_and_what_was_published_stays_intact() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk");
    let Some(_mount) = small_disk(&disk, "120k") else {
        eprintln!("skipped: this machine cannot mount a tmpfs");
        return;
    };
    let out = disk.join("out");
    let o = run(&[
        "segment",
        out.to_str().unwrap(),
        fixture("h264-aac-fragdur.mp4").to_str().unwrap(),
        "--interval",
        "0.5s",
        "-q",
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "a full disk is a machine error: {}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("No space left on device"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("asset-0000"),
        "the message names the file: {}",
        stderr(&o)
    );
    let records = records(&out);
    assert!(!records.is_empty(), "some assets fitted");
    verify_ok(&out);
    for asset in asset_paths(&out) {
        assert_eq!(decode_errors(&asset), "");
    }
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.ends_with(".partial")),
        "the failed asset's temporary file is removed: {names:?}"
    );
}
