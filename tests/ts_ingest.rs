//! MPEG-TS input: real ffmpeg transport streams (H.264 + AAC, HEVC + AAC,
//! and one whose 33-bit PTS/DTS wrap mid-file) cut into the same fMP4
//! assets as an MP4 capture. Lossless means every decoded frame of every
//! stream of the TS equals the assets' played back to back. Damage (a
//! broken packet, lost packets, garbage, a PMT change) gives warnings and
//! leaves what was published before it as it would have been; SCTE-35
//! sections come out as `emsg` boxes; and the capture can come over UDP.

mod common;

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use backset::capture::asset::Assembler;
use backset::capture::segmenter::{Config, Event, Segmenter};
use backset::capture::ts::{psi, scte35, TsIngest};
use common::{fixture, records, run, segment, stderr};

const TS_FIXTURES: &[&str] = &["h264-aac.ts", "hevc-aac.ts", "h264-aac-wrap.ts"];
const PACKET: usize = 188;
const VIDEO_PID: u16 = 0x100;
const PMT_PID: u16 = 0x1000;

/// Decoded frames (size and hash) of each kind of stream, `v` and `a`.
fn decoded(path: &Path) -> BTreeMap<&'static str, Vec<String>> {
    let mut streams = BTreeMap::new();
    for kind in ["v", "a"] {
        let o = Command::new("ffmpeg")
            .args(["-v", "error", "-nostdin", "-i"])
            .arg(path)
            .args(["-map", &format!("0:{kind}"), "-fps_mode", "passthrough"])
            .args(["-f", "framemd5", "-"])
            .output()
            .expect("ffmpeg runs");
        assert!(
            o.status.success(),
            "ffmpeg on {}: {}",
            path.display(),
            stderr(&o)
        );
        let frames: Vec<String> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| {
                l.split(',')
                    .skip(4)
                    .map(str::trim)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        streams.insert(kind, frames);
    }
    streams
}

fn assert_same_decoded(ts: &Path, assets: &Path, what: &str) {
    let (want, got) = (decoded(ts), decoded(assets));
    for kind in ["v", "a"] {
        assert!(!want[kind].is_empty(), "{what}: no {kind} frames in the TS");
        if let Some(i) = (0..want[kind].len().max(got[kind].len()))
            .find(|&i| want[kind].get(i) != got[kind].get(i))
        {
            panic!(
                "{what}: {kind} frame {i} differs: want {:?}, got {:?} ({} vs {} frames)",
                want[kind].get(i),
                got[kind].get(i),
                want[kind].len(),
                got[kind].len()
            );
        }
    }
}

/// The assets of `out` back to back.
fn played(out: &Path, dest: &Path) {
    common::concatenated(out, dest);
}

#[test]
fn h264_hevc_and_a_pts_wrap_are_cut_losslessly_with_continuous_stamps() {
    for name in TS_FIXTURES {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let o = segment(&out, &fixture(name), &[]);
        let log = stderr(&o);
        assert!(
            !log.contains("jump"),
            "{name}: no clock jump in a clean capture: {log}"
        );
        let all = dir.path().join("all.mp4");
        played(&out, &all);
        assert_same_decoded(&fixture(name), &all, name);
        let recs = records(&out);
        assert!(recs.len() >= 2, "{name}: {} assets", recs.len());
        for pair in recs.windows(2) {
            assert_eq!(
                pair[1].start,
                pair[0].start + pair[0].duration,
                "{name}: stamps continue"
            );
            assert!(pair[1].start > pair[0].start);
        }
        let total: u64 = recs.iter().map(|r| r.duration).sum();
        let seconds = total as f64 / 90_000.0;
        assert!((4.9..=6.1).contains(&seconds), "{name}: {seconds} s in all");
        assert!(
            run(&["verify", out.to_str().unwrap()]).status.success(),
            "{name}: verify"
        );
    }
}

#[test]
fn a_transport_stream_on_standard_input_makes_the_same_assets_as_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let (from_file, from_pipe) = (dir.path().join("file"), dir.path().join("pipe"));
    segment(&from_file, &fixture("h264-aac.ts"), &[]);
    let mut child = common::backset()
        .args(["segment", from_pipe.to_str().unwrap(), "-", "-q"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let bytes = std::fs::read(fixture("h264-aac.ts")).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Odd-sized writes: packets arrive split across reads.
    for chunk in bytes.chunks(1000) {
        std::io::Write::write_all(&mut stdin, chunk).unwrap();
    }
    drop(stdin);
    assert!(child.wait_with_output().unwrap().status.success());
    // Receive times differ; what was cut does not.
    let cut = |d: &Path| {
        records(d)
            .iter()
            .map(|r| (r.start, r.duration, r.size, r.entries))
            .collect::<Vec<_>>()
    };
    assert!(!cut(&from_file).is_empty());
    assert_eq!(cut(&from_file), cut(&from_pipe));
}

/// What the adapter and the segmenter make of a capture, in process.
struct Ingested {
    assets: Vec<Vec<u8>>,
    warnings: Vec<String>,
    /// The index in `assets` of the first asset of each initialisation.
    inits: Vec<usize>,
    boxes: Vec<backset::capture::framing::RawBox>,
}

fn ingest(ts: &[u8], chunk: usize) -> Ingested {
    let mut adapter = TsIngest::new();
    let mut segmenter = Segmenter::new(Config::default(), None);
    let mut made = Ingested {
        assets: Vec::new(),
        warnings: Vec::new(),
        inits: Vec::new(),
        boxes: Vec::new(),
    };
    let mut events = Vec::new();
    let mut boxes = Vec::new();
    let mut feed = |boxes: &mut Vec<_>, made: &mut Ingested, events: &mut Vec<Event>| {
        for b in boxes.drain(..) {
            made.boxes.push(Clone::clone(&b));
            segmenter
                .push_box(b, 0, events)
                .expect("the segmenter takes the adapter's boxes");
        }
    };
    for c in ts.chunks(chunk) {
        adapter.push(c, &mut boxes, &mut made.warnings).unwrap();
        feed(&mut boxes, &mut made, &mut events);
    }
    adapter.finish(&mut boxes, &mut made.warnings).unwrap();
    feed(&mut boxes, &mut made, &mut events);
    segmenter.finish(&mut events).unwrap();
    let mut assembler = Assembler::default();
    for e in events {
        match assembler.take(e) {
            Some(Event::Asset(a)) => made.assets.push(a.slices().collect::<Vec<_>>().concat()),
            Some(Event::Started { .. }) => made.inits.push(made.assets.len()),
            Some(Event::Warning(w)) => made.warnings.push(w),
            _ => {}
        }
    }
    made
}

fn packets(ts: &[u8]) -> Vec<&[u8]> {
    ts.chunks(PACKET).collect()
}

fn pid(p: &[u8]) -> u16 {
    (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2])
}

/// The index of the first video packet at or after `fraction` of the file.
fn video_packet_at(ts: &[u8], fraction: f64) -> usize {
    let ps = packets(ts);
    let from = (ps.len() as f64 * fraction) as usize;
    (from..ps.len()).find(|&i| pid(ps[i]) == VIDEO_PID).unwrap()
}

/// Runs a damaged capture and checks the containment every kind of damage
/// must give: warnings, no failure, the first asset as a clean run made it,
/// and assets after the damage.
fn contained(damaged: &[u8], expect: &str) -> Ingested {
    let clean = ingest(&std::fs::read(fixture("h264-aac.ts")).unwrap(), 4096);
    let got = ingest(damaged, 1316);
    assert!(
        got.warnings.iter().any(|w| w.contains(expect)),
        "expected a warning with {expect:?}: {:?}",
        got.warnings
    );
    assert_eq!(
        got.assets[0], clean.assets[0],
        "the asset before the damage is untouched"
    );
    assert!(
        got.assets.len() >= clean.assets.len() - 1,
        "{} assets",
        got.assets.len()
    );
    got
}

#[test]
fn a_damaged_packet_lost_packets_and_garbage_are_warned_about_and_contained() {
    let ts = std::fs::read(fixture("h264-aac.ts")).unwrap();
    let at = video_packet_at(&ts, 0.7) * PACKET;

    let mut broken = ts.clone();
    broken[at] = 0x00;
    broken[at + 1] ^= 0x5a;
    contained(&broken, "continuity counter");

    let mut marked = ts.clone();
    marked[at + 1] |= 0x80;
    contained(&marked, "transport error indicator");

    let mut lost = ts[..at].to_vec();
    lost.extend_from_slice(&ts[at + 5 * PACKET..]);
    let got = contained(&lost, "packet(s) lost");
    assert!(
        got.warnings
            .iter()
            .any(|w| w.contains("video frame(s) dropped")),
        "{:?}",
        got.warnings
    );

    let mut garbage = ts[..at].to_vec();
    garbage.extend((0..1000u32).map(|i| {
        if i % 97 == 0 {
            0x47
        } else {
            (i * 31 % 251) as u8
        }
    }));
    garbage.extend_from_slice(&ts[at..]);
    let got = contained(&garbage, "skipped 1000 byte(s)");
    let clean = ingest(&ts, 4096);
    assert_eq!(
        got.assets, clean.assets,
        "garbage between whole packets loses nothing"
    );
}

#[test]
fn a_pmt_change_mid_stream_starts_a_new_initialisation_and_both_halves_are_lossless() {
    let (h264, hevc) = (
        std::fs::read(fixture("h264-aac.ts")).unwrap(),
        std::fs::read(fixture("hevc-aac.ts")).unwrap(),
    );
    let got = ingest(&[h264.as_slice(), &hevc].concat(), 65536);
    assert!(
        got.warnings.iter().any(|w| w.contains("PMT")),
        "{:?}",
        got.warnings
    );
    assert_eq!(got.inits.len(), 2, "a second moov: {:?}", got.inits);
    let dir = tempfile::tempdir().unwrap();
    let halves = [
        (&got.assets[..got.inits[1]], "h264-aac.ts"),
        (&got.assets[got.inits[1]..], "hevc-aac.ts"),
    ];
    for (assets, source) in halves {
        let path = dir.path().join(format!("{source}.mp4"));
        std::fs::write(&path, assets.concat()).unwrap();
        assert_same_decoded(&fixture(source), &path, source);
    }
}

/// One packet of `pid` carrying `section` (pointer field 0, stuffing after).
fn section_packet(pid: u16, cc: u8, section: &[u8]) -> Vec<u8> {
    let mut p = vec![
        0x47,
        0x40 | (pid >> 8) as u8,
        pid as u8,
        0x10 | (cc & 0x0f),
        0,
    ];
    p.extend_from_slice(section);
    p.resize(PACKET, 0xff);
    p
}

#[test]
fn scte35_sections_come_out_as_emsg_before_the_next_moof() {
    use mp4_atom::{Decode, Emsg, EmsgTimestamp};
    let ts = std::fs::read(fixture("h264-aac.ts")).unwrap();
    let pmt = psi::build_pmt(
        0,
        VIDEO_PID,
        &[(0x1b, VIDEO_PID), (0x0f, 0x101), (0x86, 0x102)],
    );
    // The first video PTS is 1.4833 s (133500); the splice is 4 s later.
    let section = scte35::build_splice_insert(7, 133_500 + 4 * 90_000, 30 * 90_000);
    let insert_at = video_packet_at(&ts, 0.5);
    let mut with = Vec::new();
    let mut pmt_cc = 0u8;
    for (i, p) in packets(&ts).into_iter().enumerate() {
        if i == insert_at {
            with.extend(section_packet(0x102, 0, &section));
        }
        if pid(p) == PMT_PID {
            with.extend(section_packet(PMT_PID, pmt_cc, &pmt));
            pmt_cc += 1;
        } else {
            with.extend_from_slice(p);
        }
    }
    assert!(pmt_cc > 0, "the fixture's PMT is on PID 0x1000");
    let got = ingest(&with, 1316);
    let at = got
        .boxes
        .iter()
        .position(|b| &b.kind == b"emsg")
        .expect("an emsg is written");
    assert_eq!(
        &got.boxes[at + 1].kind,
        b"moof",
        "the emsg comes right before a moof"
    );
    assert_eq!(got.boxes.iter().filter(|b| &b.kind == b"emsg").count(), 1);
    let emsg = Emsg::decode(&mut got.boxes[at].bytes.as_ref()).unwrap();
    assert_eq!(emsg.scheme_id_uri, "urn:scte:scte35:2013:bin");
    assert_eq!(emsg.timescale, 90_000);
    assert_eq!(
        emsg.presentation_time,
        EmsgTimestamp::Absolute(133_500 + 4 * 90_000)
    );
    assert_eq!((emsg.id, emsg.event_duration), (7, 30 * 90_000));
    assert_eq!(emsg.message_data, section);
    // The markers change nothing else.
    assert_eq!(got.assets.len(), ingest(&ts, 1316).assets.len());
}

/// Sends h264-aac.ts to `segment udp://{host}:PORT` in 1316-byte
/// datagrams and checks the assets are lossless; `false` (with the reason
/// printed) when this machine cannot send there.
fn over_udp(host: &str, bind: &str, multicast: bool) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let port = UdpSocket::bind((bind, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("udp:{}{host}:{port}", "//");
    let mut child = common::backset()
        .args([
            "segment",
            out.to_str().unwrap(),
            &address,
            "-q",
            "--idle-timeout",
            "1s",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the port is taken (and the group joined): then datagrams
    // are received.
    let deadline = Instant::now() + Duration::from_secs(10);
    while UdpSocket::bind((bind, port)).is_ok() {
        assert!(Instant::now() < deadline, "segment never bound {address}");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let sender = UdpSocket::bind((bind, 0)).unwrap();
    if multicast {
        sender.set_multicast_loop_v4(true).unwrap();
    }
    let ts = std::fs::read(fixture("h264-aac.ts")).unwrap();
    for datagram in ts.chunks(7 * PACKET) {
        if let Err(e) = sender.send_to(datagram, (host, port)) {
            eprintln!("cannot send to {address} here ({e}); skipped");
            let _ = child.kill();
            let _ = child.wait();
            return false;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let all = dir.path().join("all.mp4");
    played(&out, &all);
    assert_same_decoded(&fixture("h264-aac.ts"), &all, &address);
    true
}

#[test]
fn a_transport_stream_over_udp_is_cut_losslessly_and_ends_after_the_idle_timeout() {
    assert!(over_udp("127.0.0.1", "127.0.0.1", false));
}

#[test]
fn a_multicast_group_is_joined() {
    // Sent on the default multicast interface and looped back; a machine
    // without a route for multicast cannot send and skips.
    over_udp("239.255.42.7", "0.0.0.0", true);
}

#[test]
fn a_damaged_capture_end_to_end_exits_0_with_warnings_and_verifies() {
    let ts = std::fs::read(fixture("hevc-aac.ts")).unwrap();
    let at = video_packet_at(&ts, 0.6) * PACKET;
    let mut damaged = ts[..at].to_vec();
    damaged.extend_from_slice(b"not a packet at all");
    damaged.extend_from_slice(&ts[at + 3 * PACKET..]);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("damaged.ts");
    std::fs::write(&input, damaged).unwrap();
    let out = dir.path().join("out");
    let o = segment(&out, &input, &[]);
    let log = stderr(&o);
    assert!(log.contains("warning") && log.contains("skipped"), "{log}");
    assert!(records(&out).len() >= 2);
    assert!(run(&["verify", out.to_str().unwrap()]).status.success());
}

#[test]
fn randomly_damaged_transport_streams_never_fail_or_panic() {
    use rand::{Rng, SeedableRng};
    let captures: Vec<Vec<u8>> = TS_FIXTURES
        .iter()
        .map(|n| std::fs::read(fixture(n)).unwrap())
        .collect();
    for seed in 0..150u64 {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut damaged = captures[seed as usize % captures.len()].clone();
        for _ in 0..rng.random_range(1..60) {
            let at = rng.random_range(0..damaged.len());
            match rng.random_range(0..3) {
                0 => damaged[at] = rng.random(),
                1 => {
                    let end = (at + rng.random_range(1..2000)).min(damaged.len());
                    damaged.drain(at..end);
                }
                _ => {
                    let junk: Vec<u8> = (0..rng.random_range(1..400))
                        .map(|_| rng.random())
                        .collect();
                    damaged.splice(at..at, junk);
                }
            }
        }
        let got = ingest(&damaged, rng.random_range(1..5000));
        assert!(
            !got.assets.is_empty(),
            "seed {seed}: what is intact is published"
        );
    }
}
