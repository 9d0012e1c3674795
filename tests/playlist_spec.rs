//! The playlists as the specs have them, read the way players read them:
//! `segment --hls --dash` fed a paced real capture (18 s, the encoder's
//! clock starting over twice), `serve` on loopback, and on every reload
//! (each 0.5 s) until the transmission ends, `/live.m3u8` with the media
//! playlist it names, and `/live.mpd`, each checked against RFC 8216 /
//! ISO 23009-1 and against the reloads before it (see `hls_check` and
//! `mpd_check`), with every URI they name fetched. With and without
//! `--keep-assets 4`. And ffmpeg, given the multivariant playlist of an
//! ended stream, reads the capture's packets back exactly.

mod common;
#[path = "playlist_spec/fetch.rs"]
mod fetch;
#[path = "playlist_spec/hls_check.rs"]
mod hls_check;
#[path = "playlist_spec/mpd_check.rs"]
mod mpd_check;

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use common::live::*;
use common::*;

/// A live transmission the test owns: segment, its feeder and serve.
struct Run {
    segment: Child,
    _server: Server,
    url: String,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.segment.kill();
        let _ = self.segment.wait();
    }
}

/// `segment --interval 1s --hls --dash EXTRA` on the 18 s capture fed in
/// real time, and serve.
fn live_run(extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let bytes = long_capture();
    let pause = Duration::from_secs_f64(18.0 / (bytes.len() / 4096 + 1) as f64);
    let mut args = vec!["--interval", "1s", "--hls", "--dash"];
    args.extend_from_slice(extra);
    let (segment, _feeder) = paced_segment(&out, bytes, 4096, pause, &args);
    let (server, url) = start_server(&out, "127.0.0.1:0");
    Run {
        segment,
        _server: server,
        url,
        out,
        _dir: dir,
    }
}

/// Calls `reload` with the server's URL every half second from the first
/// asset until a reload after the transmission ended; its first error
/// fails the test.
fn watch_live(extra: &[&str], mut reload: impl FnMut(&str) -> Result<(), String>) {
    let mut run = live_run(extra);
    wait_for_assets(&run.out, 1);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ended = run.segment.try_wait().unwrap().is_some();
        if let Err(e) = reload(&run.url) {
            panic!("reload at {} assets: {e}", records(&run.out).len());
        }
        if ended {
            return;
        }
        assert!(Instant::now() < deadline, "the transmission never ended");
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn hls_live(extra: &[&str]) -> hls_check::Watch {
    let mut watch = hls_check::Watch::default();
    watch_live(extra, |url| watch.reload(url));
    let last = watch.last.as_ref().expect("reloaded");
    eprintln!(
        "hls {extra:?}: {} reloads, target {:?} s, {} URIs fetched, {} expired between playlist and fetch: {:?}",
        watch.reloads,
        watch.target,
        watch.fetched,
        watch.raced.len(),
        watch.raced
    );
    assert!(watch.reloads >= 10, "{} reloads", watch.reloads);
    assert!(last.ended, "the last reload lists the end: {last:?}");
    assert_eq!(watch.target, Some(2), "twice the 1 s interval");
    watch
}

#[test]
fn hls_holds_rfc_8216_on_every_reload_while_live() {
    let watch = hls_live(&[]);
    let last = watch.last.unwrap();
    assert_eq!((last.sequence, last.segments.len()), (0, 9), "{last:?}");
    assert!(last.independent);
}

#[test]
fn hls_holds_rfc_8216_on_every_reload_while_live_with_keep_assets_4() {
    let watch = hls_live(&["--keep-assets", "4"]);
    let last = watch.last.unwrap();
    assert_eq!((last.sequence, last.segments.len()), (5, 4), "{last:?}");
}

fn dash_live(extra: &[&str]) {
    let mut watch = mpd_check::Watch::default();
    watch_live(extra, |url| watch.reload(url));
    eprintln!(
        "dash {extra:?}: {} reloads, {} Representations, {} URLs fetched, {} expired between MPD and fetch: {:?}",
        watch.reloads,
        watch.representations,
        watch.fetched,
        watch.raced.len(),
        watch.raced
    );
    assert!(watch.reloads >= 10, "{} reloads", watch.reloads);
    assert_eq!(
        watch.kind, "static",
        "the last reload is of the ended stream"
    );
}

#[test]
fn dash_mpd_names_codecs_and_only_urls_that_exist_on_every_reload_while_live() {
    dash_live(&[]);
}

#[test]
fn dash_mpd_names_codecs_and_only_urls_that_exist_on_every_reload_with_keep_assets_4() {
    dash_live(&["--keep-assets", "4"]);
}

#[test]
fn ffmpeg_reads_the_multivariant_playlist_of_an_ended_stream_as_the_capture() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let capture = fixture("h264-aac-gop.mp4");
    segment(&out, &capture, &["--interval", "1s", "--hls"]);
    let want = framemd5(&capture);
    // As files beside the assets, and as served.
    assert_same_frames(&want, &framemd5(&out.join("live.m3u8")), "live.m3u8 file");
    let (_server, url) = start_server(&out, "127.0.0.1:0");
    let served = format!("{url}live.m3u8");
    assert_same_frames(&want, &framemd5(Path::new(&served)), "served live.m3u8");
}
