//! `follow` from a plain static file server, nginx from Debian, serving the
//! directory `segment` is filling from a paced real capture: no `backset
//! serve` anywhere. What the followers write is checked with ffmpeg against
//! the transmission's tail; what `--save` keeps is checked by `verify`,
//! `locate` and `serve`, and a second `--save` run continues the first.
//! The same from nginx serving the stream as an object store holds it (no
//! `index.bin`: `index-head.bin` and chunks), as a CDN in front of a bucket
//! would: [`store_layout`].

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use common::live::{long_capture, paced_segment, start_server, wait_for_assets};
use common::nginx::{nginx_or_skip, start_nginx, Nginx};
use common::{
    backset, concatenated, decode_errors, framemd5, payloads, records, video_packet_flags,
};

/// nginx serving `root` as static files (ranges and sendfile are its
/// defaults).
fn start_static(bin: &Path, dir: &Path, root: &Path) -> (Nginx, String, PathBuf) {
    let http = format!(
        "sendfile on;\ntypes {{ application/json json; video/mp4 mp4; }}\n\
         server {{ listen 127.0.0.1:PORT; root {}; }}",
        root.display()
    );
    start_nginx(bin, dir, &http)
}

/// `follow URL ARGS…` writing to `out`, its log piped.
fn follow(url: &str, out: &Path, args: &[&str]) -> Child {
    backset()
        .args(["follow", url])
        .args(args)
        .stdout(std::fs::File::create(out).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a follower; its log.
fn finished(name: &str, child: Child) -> String {
    let o = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{name}: {log}");
    log
}

/// What `stream` plays is exactly the end of what `whole` plays, from a
/// key frame on.
fn assert_tail(whole: &[String], stream: &Path, name: &str) {
    assert_eq!(decode_errors(stream), "", "{name}");
    let video = payloads(&framemd5(stream))["0"].clone();
    assert!(
        !video.is_empty() && video.len() < whole.len(),
        "{name}: {} frames",
        video.len()
    );
    assert_eq!(
        &whole[whole.len() - video.len()..],
        &video[..],
        "{name}: not the transmission's tail"
    );
    assert!(video_packet_flags(stream)[0].starts_with('K'), "{name}");
}

#[test]
fn follow_from_plain_nginx_and_save_a_stream_that_resumes() {
    let test = "follow_from_plain_nginx_and_save_a_stream_that_resumes";
    let Some(bin) = nginx_or_skip(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (out, save) = (dir.path().join("out"), dir.path().join("saved"));
    std::fs::create_dir_all(dir.path().join("nginx")).unwrap();
    // 18 s of media over about 9 s: an asset of 1 s every half second.
    let bytes = long_capture();
    let pause = Duration::from_secs_f64(9.0 / (bytes.len() / 4096 + 1) as f64);
    let (mut segment, feeder) = paced_segment(&out, bytes, 4096, pause, &["--interval", "1s"]);
    let (nginx, url, access) = start_static(&bin, &dir.path().join("nginx"), &out);
    wait_for_assets(&out, 4);

    // A viewer that draws its own backset, and a first --save run that
    // stops mid-stream.
    let drawn = dir.path().join("drawn.mp4");
    let viewer = follow(&url, &drawn, &["--client", "drawn"]);
    let first_run = dir.path().join("saved-1.mp4");
    let s = save.to_str().unwrap();
    let saver = follow(
        &url,
        &first_run,
        &[
            "--backset",
            "2s",
            "--save",
            s,
            "--for",
            "2s",
            "--client",
            "saver",
        ],
    );
    let log = finished("first --save run", saver);
    assert!(log.contains("a static host"), "{log}");
    let kept = records(&save);
    let next = kept.last().expect("the first run kept assets").sequence + 1;
    assert!(!segment_ended(&out), "the first run must stop mid-stream");

    // The second run goes on from the next asset, to the end.
    let second_run = dir.path().join("saved-2.mp4");
    let saver = follow(&url, &second_run, &["--save", s, "--client", "saver"]);
    feeder.join().unwrap();
    assert!(segment.wait().unwrap().success());
    let log = finished("second --save run", saver);
    assert!(
        log.contains(&format!("resuming the saved stream at asset-{next:08}.mp4")),
        "{log}"
    );
    let viewer_log = finished("viewer", viewer);
    assert!(viewer_log.contains("advised"), "{viewer_log}");
    drop(nginx);

    let whole = dir.path().join("whole.mp4");
    concatenated(&out, &whole);
    let all_video = payloads(&framemd5(&whole))["0"].clone();
    assert_tail(&all_video, &drawn, "the viewer");
    assert_tail(&all_video, &second_run, "the second --save run");
    assert_eq!(decode_errors(&first_run), "");

    check_saved(&out, &save, &access);
    served_again(&save, dir.path());
}

#[cfg(feature = "store")]
mod store_layout {
    //! A stream directory published, as it grows, into a second directory
    //! in the layout `segment s3://…` gives a bucket, then followed from
    //! nginx serving that one.

    use std::collections::HashMap;
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use backset::bucket::index_form::{Head, HEAD};
    use backset::stream::index::Index;

    use super::common::live::{long_capture, paced_segment, wait_for_assets};
    use super::common::nginx::nginx_or_skip;
    use super::common::{concatenated, decode_errors, framemd5, payloads, records};
    use super::{assert_tail, check_saved, finished, follow, start_static};

    /// What a pass has published: each file's length and modification time.
    type Published = HashMap<String, (u64, SystemTime)>;

    /// Writes `to/name` whole under a temporary name, then renames it: as a
    /// store makes an object visible, whole or not at all.
    fn put(to: &Path, name: &str, bytes: &[u8]) {
        let tmp = to.join(format!(".{name}.partial"));
        std::fs::write(&tmp, bytes).unwrap();
        std::fs::rename(&tmp, to.join(name)).unwrap();
    }

    /// One pass of publishing `from` into `to` as a bucket holds a stream:
    /// every file but `index.bin` under its own name; the index as full
    /// chunks and `index-head.bin`, built by `Head::push` over the records
    /// as the publisher builds them. In the publisher's order: the assets
    /// the records name, then the chunks, then the head, `stream.json`
    /// last.
    fn publish(from: &Path, to: &Path, published: &mut Published) {
        let Ok(index) = Index::open(&from.join("index.bin")) else {
            return;
        };
        let records: Vec<_> = index.iter().map_while(|r| r).collect();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || name == "index.bin" || name == "stream.json" {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            let stamp = (meta.len(), meta.modified().unwrap());
            if published.get(&name) != Some(&stamp) {
                if let Ok(bytes) = std::fs::read(entry.path()) {
                    put(to, &name, &bytes);
                    published.insert(name, stamp);
                }
            }
        }
        let mut head = Head::empty(index.timescale, 0);
        for record in records {
            if let Some((chunk, bytes)) = head.push(record) {
                if !to.join(&chunk).exists() {
                    put(to, &chunk, &bytes);
                }
            }
        }
        put(to, HEAD, &head.encode());
        if let Ok(bytes) = std::fs::read(from.join("stream.json")) {
            put(to, "stream.json", &bytes);
        }
    }

    /// Publishes `from` into `to` every 50 ms until `stop`, then once more.
    fn publisher(from: &Path, to: &Path, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
        let (from, to) = (from.to_path_buf(), to.to_path_buf());
        std::fs::create_dir_all(&to).unwrap();
        std::thread::spawn(move || {
            let mut published = Published::new();
            while !stop.load(Ordering::Relaxed) {
                publish(&from, &to, &mut published);
                std::thread::sleep(Duration::from_millis(50));
            }
            publish(&from, &to, &mut published);
        })
    }

    #[test]
    fn follow_and_save_from_nginx_serving_an_object_stores_layout() {
        let test = "follow_and_save_from_nginx_serving_an_object_stores_layout";
        let Some(bin) = nginx_or_skip(test) else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let (out, bucket) = (dir.path().join("out"), dir.path().join("bucket"));
        let save = dir.path().join("saved");
        // 18 s of media over about 9 s: an asset of 1 s every half second.
        let bytes = long_capture();
        let pause = Duration::from_secs_f64(9.0 / (bytes.len() / 4096 + 1) as f64);
        let (mut segment, feeder) = paced_segment(&out, bytes, 4096, pause, &["--interval", "1s"]);
        let stop = Arc::new(AtomicBool::new(false));
        let publishing = publisher(&out, &bucket, stop.clone());
        let (nginx, url, access) = start_static(&bin, &dir.path().join("nginx"), &bucket);
        wait_for_assets(&out, 4);
        while !bucket.join(HEAD).exists() {
            std::thread::sleep(Duration::from_millis(20));
        }

        // A viewer that draws its own backset (the head read again after
        // its probe), and a --save run to the end.
        let drawn = dir.path().join("drawn.mp4");
        let viewer = follow(&url, &drawn, &["--client", "drawn"]);
        let kept = dir.path().join("kept.mp4");
        let s = save.to_str().unwrap();
        let saver = follow(
            &url,
            &kept,
            &["--backset", "2s", "--save", s, "--client", "saver"],
        );
        feeder.join().unwrap();
        assert!(segment.wait().unwrap().success());
        stop.store(true, Ordering::Relaxed);
        publishing.join().unwrap();
        let saver_log = finished("--save run", saver);
        let viewer_log = finished("viewer", viewer);
        drop(nginx);
        for log in [&saver_log, &viewer_log] {
            assert!(log.contains("a static host"), "{log}");
            assert!(
                log.contains("reading the index as object storage keeps it: index-head.bin"),
                "{log}"
            );
        }
        assert!(viewer_log.contains("advised"), "{viewer_log}");

        // The bucket's layout: no index.bin, a head holding every record.
        assert!(!bucket.join("index.bin").exists());
        let head = Head::decode(&std::fs::read(bucket.join(HEAD)).unwrap()).unwrap();
        assert_eq!(head.count(), records(&out).len() as u64);
        let requests = std::fs::read_to_string(&access).unwrap();
        for client in ["drawn", "saver"] {
            let asked = |what: &str| {
                requests
                    .lines()
                    .filter(|l| l.starts_with(&format!("{client} {what}")))
                    .count()
            };
            assert_eq!(asked("/index.bin 404"), 1, "{client}: {requests}");
            assert!(asked("/index-head.bin 200") >= 2, "{client}: {requests}");
        }

        let whole = dir.path().join("whole.mp4");
        concatenated(&out, &whole);
        let all_video = payloads(&framemd5(&whole))["0"].clone();
        assert_tail(&all_video, &drawn, "the viewer");
        assert_tail(&all_video, &kept, "the --save run");
        assert_eq!(decode_errors(&kept), "");
        // Saved as a local stream directory, with its own index.bin.
        assert!(save.join("index.bin").exists());
        check_saved(&out, &save, &access);
    }
}

fn segment_ended(out: &Path) -> bool {
    std::fs::read_to_string(out.join("stream.json")).is_ok_and(|s| s.contains("\"ended\": true"))
}

/// The saved directory holds the transmission from the first run's first
/// asset to its end, byte for byte, each asset fetched once.
fn check_saved(out: &Path, save: &Path, access: &Path) {
    let saved = records(save);
    let published = records(out);
    assert_eq!(
        saved.last().unwrap().sequence,
        published.last().unwrap().sequence
    );
    let log = std::fs::read_to_string(access).unwrap();
    for r in &saved {
        let name = format!("asset-{:08}.mp4", r.sequence);
        assert_eq!(
            std::fs::read(save.join(&name)).unwrap(),
            std::fs::read(out.join(&name)).unwrap(),
            "{name}"
        );
        assert!(save.join(format!("{name}.maps")).exists(), "{name}.maps");
        let gets = log
            .lines()
            .filter(|l| l.starts_with("saver ") && l.contains(&format!("/{name} ")))
            .filter(|l| l.ends_with(" 200"))
            .count();
        assert_eq!(gets, 1, "{name} downloaded {gets} times by the savers");
    }
    let verify = backset()
        .args(["verify", save.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    let locate = backset()
        .args([
            "locate",
            save.to_str().unwrap(),
            "--backset",
            "2s",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        locate.status.success(),
        "{}",
        String::from_utf8_lossy(&locate.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&locate.stdout).unwrap();
    let newest = saved.last().unwrap().sequence;
    let sequence = answer["sequence"].as_u64().unwrap();
    assert!(sequence + 3 >= newest && sequence <= newest, "{answer}");
}

/// `serve` reads the saved directory: a follower of it gets a playable
/// stream.
fn served_again(save: &Path, dir: &Path) {
    let (server, url) = start_server(save, "127.0.0.1:0");
    let again = dir.join("again.mp4");
    let log = finished(
        "follower of the saved stream",
        follow(&url, &again, &["--backset", "3s"]),
    );
    assert!(log.contains("the transmission has ended"), "{log}");
    drop(server);
    assert_eq!(decode_errors(&again), "");
    assert!(std::fs::metadata(&again).unwrap().len() > 0);
}
