//! `serve` and `follow` as users run them: `segment` fed a paced real
//! capture, `serve` on loopback, several `follow` clients at different
//! backsets, each one's output checked by ffmpeg.

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::live::*;
use common::*;

type Reply = (u16, Vec<(String, String)>, Vec<u8>);

fn get(url: &str, range: Option<&str>) -> Reply {
    match range {
        Some(r) => get_with(url, &[("range", r)]),
        None => get_with(url, &[]),
    }
}

fn get_with(url: &str, headers: &[(&str, &str)]) -> Reply {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = agent.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut resp = req.call().unwrap();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = resp.body_mut().read_to_vec().unwrap();
    (resp.status().as_u16(), headers, body)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn followers_at_different_backsets_each_get_a_continuous_playable_stream() {
    let mut live = live(long_capture(), 6.0);
    wait_for_assets(&live.out, 5);
    let dir = live.out.parent().unwrap().to_path_buf();
    let followers: Vec<(String, Child)> =
        [("near", Some("1s")), ("far", Some("4s")), ("drawn", None)]
            .into_iter()
            .map(|(name, wanted)| {
                let mut args = vec![
                    "follow".to_string(),
                    live.url.clone(),
                    "--client".into(),
                    name.into(),
                ];
                if let Some(b) = wanted {
                    args.extend(["--backset".into(), b.into()]);
                }
                let child = backset()
                    .args(&args)
                    .stdout(std::fs::File::create(dir.join(format!("{name}.mp4"))).unwrap())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                (name.to_string(), child)
            })
            .collect();
    live.feeder.take().unwrap().join().unwrap();
    assert!(live.segment.wait().unwrap().success());

    // The whole transmission, for comparison.
    let whole = dir.join("whole.mp4");
    concatenated(&live.out, &whole);
    let all_video = payloads(&framemd5(&whole))["0"].clone();
    let mut achieved = vec![];
    for (name, child) in followers {
        let o = child.wait_with_output().unwrap();
        let log = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{name}: {log}");
        assert!(log.contains("the transmission has ended"), "{name}: {log}");
        let backset: f64 = log
            .split("achieved ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{name}: no achieved backset in {log}"));
        achieved.push(backset);
        let stream = dir.join(format!("{name}.mp4"));
        assert_eq!(decode_errors(&stream), "", "{name}");
        // What it played is exactly the transmission's tail, from its key frame on.
        let video = payloads(&framemd5(&stream))["0"].clone();
        assert!(!video.is_empty() && video.len() < all_video.len(), "{name}");
        assert_eq!(
            &all_video[all_video.len() - video.len()..],
            &video[..],
            "{name}: not the transmission's tail"
        );
        assert!(video_packet_flags(&stream)[0].starts_with('K'), "{name}");
    }
    assert!(
        achieved[0] >= 1.0 && achieved[1] >= 4.0 && achieved[1] > achieved[0],
        "{achieved:?}"
    );

    // The HLS playlist plays the whole transmission in ffmpeg.
    let hls = format!("{}live.m3u8", live.url);
    assert_same_frames(
        &payloads(&framemd5(&whole)),
        &payloads(&framemd5(Path::new(&hls))),
        "live.m3u8",
    );
    let (code, _, mpd) = get(&format!("{}live.mpd", live.url), None);
    let mpd = String::from_utf8(mpd).unwrap();
    assert_eq!(code, 200);
    assert!(
        mpd.contains("type=\"static\"")
            && mpd.contains("media=\"asset-$Number%08d$.track1.m4s\" startNumber=\"0\""),
        "{mpd}"
    );
    assert!(live.out.join("live.m3u8").exists() && live.out.join("live.mpd").exists());
}

#[test]
fn assets_are_served_whole_or_by_range_and_nothing_else_is() {
    let live = live(long_capture(), 3.0);
    wait_for_assets(&live.out, 3);
    let u = &live.url;
    let rec = records(&live.out)[1];

    let (code, headers, body) = get(&format!("{u}asset-00000001.mp4"), None);
    assert_eq!(code, 200);
    assert_eq!(body.len() as u64, rec.size);
    assert_eq!(header(&headers, "accept-ranges"), Some("bytes"));
    assert!(header(&headers, "etag").is_some());
    assert!(header(&headers, "cache-control")
        .unwrap()
        .contains("immutable"));

    // The portion from a key frame on, as a client fetches it.
    let m = maps(&live.out.join("asset-00000001.mp4"));
    let from = m.entries[0].offset;
    let (code, headers, part) = get(
        &format!("{u}asset-00000001.mp4"),
        Some(&format!("bytes={from}-")),
    );
    assert_eq!(code, 206);
    assert_eq!(part.len() as u64, rec.size - from);
    assert_eq!(&part[4..8], b"moof");
    assert!(header(&headers, "content-range")
        .unwrap()
        .starts_with(&format!("bytes {from}-")));

    // A client that has the asset is told it has not changed; a range past
    // the end is refused with the asset's size.
    let etag = header(&headers, "etag").unwrap().to_string();
    let asset = format!("{u}asset-00000001.mp4");
    assert_eq!(get_with(&asset, &[("if-none-match", &etag)]).0, 304);
    let (code, headers, _) = get(&asset, Some(&format!("bytes={}-", rec.size)));
    assert_eq!(code, 416);
    assert_eq!(
        header(&headers, "content-range"),
        Some(format!("bytes */{}", rec.size).as_str())
    );
    let (code, _, tail) = get(&asset, Some("bytes=-100"));
    assert_eq!((code, tail.as_slice()), (206, &body[body.len() - 100..]));

    // Served from memory (the default) or from the file, the same bytes.
    let (mut direct, d) = start_server_with(&live.out, "127.0.0.1:0", &["--cache", "0"]);
    for range in [
        None,
        Some(format!("bytes={from}-")),
        Some("bytes=8-99".into()),
    ] {
        let cached = get(&asset, range.as_deref());
        let file = get(&format!("{d}asset-00000001.mp4"), range.as_deref());
        assert_eq!((cached.0, &cached.2), (file.0, &file.2), "{range:?}");
        for h in ["content-length", "content-range", "content-type", "etag"] {
            assert_eq!(header(&cached.1, h), header(&file.1, h), "{h} {range:?}");
        }
    }
    let _ = direct.kill();
    let _ = direct.wait();

    assert_eq!(
        get(&format!("{u}asset-00009999.mp4"), None).0,
        404,
        "not published yet"
    );
    assert_eq!(get(&format!("{u}..%2fCargo.toml"), None).0, 404);
    assert_eq!(get(&format!("{u}%2e%2e/%2e%2e/etc/passwd"), None).0, 404);
    assert_eq!(get(&format!("{u}.asset-00000001.mp4.partial"), None).0, 404);

    let (code, _, body) = get(&format!("{u}backset.json?client=x"), None);
    assert_eq!(code, 200);
    let p: serde_json::Value = serde_json::from_slice(&body).unwrap();
    for key in [
        "recommended_s",
        "maximum_s",
        "coefficients",
        "live_edge_s",
        "asset_duration_s",
        "pattern",
    ] {
        assert!(!p[key].is_null(), "{key} missing: {p}");
    }
    assert!(p["maximum_s"].as_f64() >= p["recommended_s"].as_f64());
    let (code, _, body) = get(&format!("{u}locate?backset=1s"), None);
    assert_eq!(code, 200);
    let l: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(l["backset"].as_f64().unwrap() >= 1.0);
    assert_eq!(get(&format!("{u}locate?backset=soon"), None).0, 400);
}

#[test]
fn expired_assets_are_gone() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    segment(
        &out,
        &fixture("h264-aac-fragdur.mp4"),
        &["--interval", "0.5s", "--keep-assets", "2"],
    );
    let (mut server, url) = start_server(&out, "127.0.0.1:0");
    let (code, _, body) = get(&format!("{url}asset-00000000.mp4"), None);
    assert_eq!(code, 404);
    assert!(String::from_utf8_lossy(&body).contains("expired"));
    assert_eq!(get(&format!("{url}asset-00000004.mp4"), None).0, 200);
    let (_, _, m3u8) = get(&format!("{url}live-av.m3u8"), None);
    assert!(String::from_utf8_lossy(&m3u8).contains("#EXT-X-MEDIA-SEQUENCE:3"));
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn follow_exits_cleanly_when_its_reader_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    segment(&out, &fixture("h264-aac-gop.mp4"), &["--interval", "1s"]);
    let (mut server, url) = start_server(&out, "127.0.0.1:0");
    let mut follow = backset()
        .args(["follow", &url, "--backset", "5s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = follow.stdout.take().unwrap();
    let mut first = [0u8; 100];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    drop(stdout);
    let o = follow.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(&first[4..8], b"ftyp");
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn follow_survives_a_server_restart() {
    let mut live = live(long_capture(), 5.0);
    wait_for_assets(&live.out, 3);
    let dir = live.out.parent().unwrap().to_path_buf();
    let follow = backset()
        .args(["follow", &live.url, "--backset", "1s"])
        .stdout(std::fs::File::create(dir.join("f.mp4")).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let _ = live.server.kill();
    let _ = live.server.wait();
    std::thread::sleep(Duration::from_millis(1000));
    let listen = live
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let (server, _) = start_server(&live.out, &listen);
    live.server = server;
    live.feeder.take().unwrap().join().unwrap();
    assert!(live.segment.wait().unwrap().success());
    let o = follow.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{log}");
    assert!(
        log.contains("retrying"),
        "the outage was seen and survived: {log}"
    );
    assert_eq!(decode_errors(&dir.join("f.mp4")), "");
}

#[test]
fn follow_measures_its_link_reports_as_json_and_stops_after_for() {
    let live = live(long_capture(), 6.0);
    wait_for_assets(&live.out, 3);
    let dir = live.out.parent().unwrap().to_path_buf();
    let report = dir.join("report.json");
    let o = backset()
        .args(["follow", &live.url, "--client", "seed", "--clock", "wall"])
        .args(["--for", "2s", "--report", report.to_str().unwrap()])
        .stdout(std::fs::File::create(dir.join("f.mp4")).unwrap())
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{log}");
    assert!(log.contains("backset: probe: asset-"), "{log}");
    assert!(log.contains("behind the wall clock"), "{log}");
    assert!(log.contains(" s stalled"), "{log}");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["stopped"], "time", "{r}");
    assert_eq!(r["followed_s"], 2.0, "{r}");
    assert!(r["probe_throughput_bps"].as_f64().unwrap() > 0.0, "{r}");
    assert!(r["throughput_bps"].as_f64().unwrap() > 0.0, "{r}");
    assert!(r["distribution"].as_str().unwrap().contains('/'), "{r}");
    assert!(r["drawn_s"].as_f64().unwrap() <= r["maximum_s"].as_f64().unwrap());
    assert!(r["stalls"].as_u64().is_some() && r["stalled_s"].as_f64().is_some());
    // The server issued the id and holds the follower's own measurement
    // (CMCD mtp) under it.
    let id = r["client"].as_str().unwrap();
    assert_ne!(id, "seed");
    let (code, _, body) = get_with(
        &format!("{}backset.json", live.url),
        &[("x-backset-client", id)],
    );
    assert_eq!(code, 200);
    let p: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(p["client"], id, "{p}");
    assert_eq!(p["viewer"]["throughput_source"], "player", "{p}");

    // The wall clock over HTTP.
    let u = &live.url;
    let (code, _, body) = get(&format!("{u}locate?backset=1s&clock=wall&clamp=1"), None);
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    let l: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(l["backset"].as_f64().unwrap() >= 1.0, "{l}");
    assert_eq!(
        get(&format!("{u}locate?backset=1s&clock=sundial"), None).0,
        400
    );
}
