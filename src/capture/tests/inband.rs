//! `emsg` and `prft` boxes of a real capture carried into the assets: in
//! the asset of the fragment they preceded, at their transmission times.

use mp4_atom::{Decode, Emsg, Prft};

use super::support::*;
use crate::stream::events::{scan, SCTE35_SCHEME};

/// The boxes of `kind` in a capture, decoded.
fn in_capture<T: Decode>(capture: &[u8], kind: &[u8; 4]) -> Vec<T> {
    parse(capture)
        .boxes
        .iter()
        .filter(|b| &b.kind == kind)
        .map(|b| T::decode(&mut &b.bytes[..]).unwrap())
        .collect()
}

/// Seconds of the first video sample's presentation: the transmission's 0.
fn first_pts_s(capture: &[u8]) -> f64 {
    let p = parse(capture);
    let f = &p.fragments[0];
    let run = f
        .runs
        .iter()
        .find(|r| r.track == p.init.reference())
        .unwrap();
    let scale = p.init.tracks[run.track].timescale;
    f.samples[run.samples.start].pts() as f64 / f64::from(scale)
}

#[test]
fn scte35_messages_land_in_their_assets_at_their_times() {
    let capture = fixture("h264-aac-emsg.mp4");
    let o = segment(capture, SECOND);
    assert!(o.warnings().is_empty(), "{}", o.summary());
    let sent: Vec<Emsg> = in_capture(capture, b"emsg");
    assert_eq!(sent.len(), 2);
    let mut found = Vec::new();
    for a in o.assets() {
        let scale = f64::from(a.maps().timescale);
        for e in scan(&a.bytes).unwrap().events {
            let at = past_events(&a.bytes, e.offset as usize);
            assert_eq!(&a.bytes[at + 4..at + 8], b"moof", "{e:?}");
            found.push((a.maps().start as f64 / scale, e));
        }
    }
    assert_eq!(found.len(), 2, "{found:?}");
    let (start, out) = &found[0];
    // Before the second fragment (1 s), 0.5 s into it, for 2 s.
    assert_eq!(
        (out.id, out.version, out.scheme.as_str()),
        (1001, 0, SCTE35_SCHEME)
    );
    assert_eq!(*start, 1.0);
    assert!((out.time_s - 1.5).abs() < 1e-3, "{out:?}");
    assert_eq!(out.duration_s, Some(2.0));
    assert_eq!(out.message, sent[0].message_data);
    let (start, back) = &found[1];
    // Before the fourth fragment (3 s), at 3.5 s of the track's media time.
    assert_eq!((back.id, back.version), (1002, 1));
    assert_eq!(*start, 3.0);
    let want = 3.5 - first_pts_s(capture);
    assert!((back.time_s - want).abs() < 1e-3, "{back:?}, want {want}");
    assert_eq!(back.message, sent[1].message_data);
}

#[test]
fn producer_reference_times_keep_their_wall_clock_and_follow_the_media() {
    for name in ["h264-aac-cmaf-prft.mp4", "cmaf-styp-prft.mp4"] {
        let capture = fixture(name);
        let o = segment(capture, SECOND);
        let sent: Vec<Prft> = in_capture(capture, b"prft");
        let mut carried = Vec::new();
        for a in o.assets() {
            let scale = f64::from(a.maps().timescale);
            let (start, end) = (a.maps().start as f64 / scale, a.end() as f64 / scale);
            for p in scan(&a.bytes).unwrap().producer_times {
                assert!(
                    p.time_s >= start - 0.1 && p.time_s < end,
                    "{name}: {p:?} in {start}..{end}"
                );
                carried.push(p.ntp);
            }
        }
        let want: Vec<u64> = sent.iter().map(|p| p.ntp_timestamp).collect();
        assert_eq!(carried, want, "{name}: every prft, in order");
    }
}
