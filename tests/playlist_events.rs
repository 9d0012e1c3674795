//! SCTE-35 carried from the capture's `emsg` boxes into both playlists:
//! `EXT-X-DATERANGE` (out and in under one ID) in the HLS media playlist
//! and an `InbandEventStream` in the MPD, in the files `segment` writes and
//! in what `serve` renders.

mod common;

use common::live::*;
use common::*;

fn text(url: &str) -> String {
    let mut resp = ureq::get(url).call().unwrap();
    resp.body_mut().read_to_string().unwrap()
}

fn dateranges(playlist: &str) -> Vec<&str> {
    playlist
        .lines()
        .filter(|l| l.starts_with("#EXT-X-DATERANGE:"))
        .collect()
}

#[test]
fn splices_in_the_capture_are_in_both_playlists() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let capture = fixture("h264-aac-emsg.mp4");
    assert!(segment(&out, &capture, &["--hls", "--dash"])
        .status
        .success());
    let written = std::fs::read_to_string(out.join("live-av.m3u8")).unwrap();
    let ranges = dateranges(&written);
    assert_eq!(ranges.len(), 2, "{written}");
    // The fixture's cue out (splice event 1001, 2 s break) and its return
    // (event 1002): each its own ID, since their splice event ids differ.
    assert!(
        ranges[0].starts_with("#EXT-X-DATERANGE:ID=\"splice-1001\"")
            && ranges[0].contains(",PLANNED-DURATION=2.000,SCTE35-OUT=0xFC"),
        "{ranges:?}"
    );
    assert!(
        ranges[1].starts_with("#EXT-X-DATERANGE:ID=\"splice-1002\"")
            && ranges[1].contains(",SCTE35-IN=0xFC"),
        "{ranges:?}"
    );
    // On the program-date-time timeline: out 1.5 s into the transmission,
    // back in at the track's 3.5 s, which is 3.417 s from its first key
    // frame (presented 2 frames late: B-frames).
    let first_pdt = written
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:"))
        .unwrap();
    let t = |s: &str| humantime::parse_rfc3339(s).unwrap();
    for (range, want) in ranges.iter().zip([1.5, 3.417]) {
        let start = &range.split("START-DATE=\"").nth(1).unwrap()[..24];
        let offset = t(start).duration_since(t(first_pdt)).unwrap();
        assert!(
            (offset.as_secs_f64() - want).abs() < 0.01,
            "{range}: {offset:?}"
        );
    }

    let mpd = std::fs::read_to_string(out.join("live.mpd")).unwrap();
    assert!(
        mpd.contains("<InbandEventStream schemeIdUri=\"urn:scte:scte35:2013:bin\""),
        "{mpd}"
    );

    let (mut server, url) = start_server(&out, "127.0.0.1:0");
    let served = text(&format!("{url}live-av.m3u8"));
    assert_eq!(dateranges(&served), ranges, "serve renders the same");
    assert!(text(&format!("{url}live.mpd")).contains("InbandEventStream"));
    let _ = server.kill();
    let _ = server.wait();
}
