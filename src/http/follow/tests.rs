//! Whole follow sessions on a fake clock, in milliseconds: a scripted
//! server answers each request from what is published at that time, and
//! time moves only when the machine asks to wait. No sockets, no sleeps.

use std::ops::Range;
use std::time::Duration;

use super::machine::{Action, Config, Input, Machine, Reply, Report, Request};
use crate::capture::maps::{Entry, Maps};
use crate::http::api::{Located, Params};
use crate::policy::draw::Drawer;
use crate::policy::{Advice, Coefficients};
use crate::stream::locate::{Answer, Window};
use crate::stream::naming::Naming;
use crate::Error;

const ASSET_MS: u64 = 1000;
/// The fake server's root, `http://fake/` (in two pieces: the line
/// counter of the style tools reads `//` in a string as a comment).
const URL: &str = concat!("http:/", "/fake/");
const REFUSED: &str = concat!("http:/", "/fake/: Connection refused");
/// Assets from this one on carry another `moov`.
const NEW_INIT_FROM: u64 = 100;

fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut b = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    b.extend_from_slice(kind);
    b.extend_from_slice(body);
    b
}

/// One fake asset: init, maps, then two fragments (two entry points), each
/// marked with its sequence so the output shows where it came from.
struct Asset {
    bytes: Vec<u8>,
    header_len: usize,
    /// Where the second fragment's `moof` starts: the entry point locate
    /// answers.
    second_moof: usize,
}

fn asset(sequence: u64) -> Asset {
    let moov = if sequence < NEW_INIT_FROM {
        b"init"
    } else {
        b"new!"
    };
    let init = [bx(b"ftyp", b"isom"), bx(b"moov", moov)].concat();
    let fragment = |i: u8| {
        let mark = [sequence.to_be_bytes().as_slice(), &[i]].concat();
        [bx(b"moof", &mark), bx(b"mdat", &mark)].concat()
    };
    let header_len = init.len() + Maps::encoded_len(2);
    let second_moof = header_len + fragment(0).len();
    let entry = |offset: usize| Entry {
        timestamp: 0,
        datastamp: 0,
        offset: offset as u64,
        wallclock_us: 0,
    };
    let mut bytes = init;
    Maps {
        sequence,
        timescale: 1000,
        start: sequence * ASSET_MS,
        duration: ASSET_MS,
        start_datastamp: 0,
        entries: vec![entry(header_len), entry(second_moof)],
    }
    .encode(&mut bytes);
    bytes.extend([fragment(0), fragment(1)].concat());
    Asset {
        bytes,
        header_len,
        second_moof,
    }
}

/// What a follower should write from asset `sequence` on: from its first
/// `moof`, or from its entry point when it is the one located.
fn fragments(sequence: u64, located: bool) -> Vec<u8> {
    let a = asset(sequence);
    let from = if located { a.second_moof } else { a.header_len };
    a.bytes[from..].to_vec()
}

/// The scripted server: when each asset is published and expires, when the
/// transmission ends, when the server is unreachable, all in ms.
struct Server {
    /// (published, expires) per sequence, from 0.
    assets: Vec<(u64, u64)>,
    ended_at: u64,
    down: Range<u64>,
    /// The asset `locate` answers.
    locate_to: u64,
    /// Nothing published: 404 for the parameters.
    no_stream: bool,
    naming: Naming,
}

impl Server {
    /// Assets `0..count`, asset n published at `n * ASSET_MS - shift` (the
    /// first few already at 0), never expiring; the transmission ends when
    /// the last one is published.
    fn regular(count: u64, shift: u64, locate_to: u64) -> Server {
        let assets: Vec<_> = (0..count)
            .map(|n| ((n * ASSET_MS).saturating_sub(shift), u64::MAX))
            .collect();
        Server {
            ended_at: assets.last().map_or(0, |a| a.0),
            assets,
            down: 0..0,
            locate_to,
            no_stream: false,
            naming: Naming::new("asset"),
        }
    }

    fn visible(&self, sequence: u64, t: u64) -> bool {
        usize::try_from(sequence)
            .ok()
            .and_then(|i| self.assets.get(i))
            .is_some_and(|&(p, e)| p <= t && t < e)
    }

    fn answer(&self, request: &Request, t: u64) -> Reply {
        if self.down.contains(&t) {
            return Reply::Failed(REFUSED.into());
        }
        if self.no_stream {
            return Reply::NotFound;
        }
        let json = |v: serde_json::Value| Reply::Body(v.to_string().into_bytes());
        match request {
            Request::Params => json(serde_json::to_value(self.params(t)).unwrap()),
            Request::Locate { backset_s } => {
                json(serde_json::to_value(self.located(*backset_s)).unwrap())
            }
            Request::Header { asset: name, len } => self.part(name, t, 0, Some(*len as usize)),
            Request::From {
                asset: name,
                offset,
            } => self.part(name, t, *offset as usize, None),
            Request::Asset { name } => self.part(name, t, 0, None),
        }
    }

    fn part(&self, name: &str, t: u64, from: usize, len: Option<usize>) -> Reply {
        match self.naming.sequence_of(name) {
            Some(s) if self.visible(s, t) => {
                let bytes = asset(s).bytes;
                let to = len.map_or(bytes.len(), |l| from + l);
                Reply::Body(bytes[from..to].to_vec())
            }
            _ => Reply::NotFound,
        }
    }

    fn params(&self, t: u64) -> Params {
        let visible: Vec<u64> = (0..self.assets.len() as u64)
            .filter(|&s| self.visible(s, t))
            .collect();
        let newest = visible.last().copied().unwrap_or(0);
        Params {
            client: "test".into(),
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
            live_edge_s: ((newest + 1) * ASSET_MS) as f64 / 1000.0,
            live_edge_sequence: newest,
            first_sequence: visible.first().copied().unwrap_or(0),
            asset_duration_s: ASSET_MS as f64 / 1000.0,
            bitrate_bps: 1_000_000,
            prefix: "asset".into(),
            pattern: self.naming.pattern(),
            ended: t >= self.ended_at,
            viewer: Default::default(),
            audience: Default::default(),
        }
    }

    fn located(&self, backset_s: f64) -> Located {
        let a = asset(self.locate_to);
        Located {
            asset: self.naming.name(self.locate_to),
            answer: Answer {
                sequence: self.locate_to,
                offset: a.second_moof as u64,
                entry: 1,
                timestamp: 0.0,
                timestamp_ticks: 0,
                datastamp: 0,
                wallclock_us: 0,
                backset: backset_s + 0.25,
                header_len: a.header_len as u32,
                window: Window {
                    oldest_sequence: 0,
                    newest_sequence: 0,
                    start: 0.0,
                    end: 0.0,
                },
            },
        }
    }
}

/// A session's record.
struct Run {
    result: Result<Report, Error>,
    out: Vec<u8>,
    said: Vec<String>,
    /// Each request with the time it was made, ms.
    requests: Vec<(u64, Request)>,
    /// The time the run ended, ms.
    end: u64,
}

fn config(backset_s: Option<f64>, retry_for_ms: u64) -> Config {
    Config {
        url: URL.trim_end_matches('/').into(),
        client: "test".into(),
        backset_s,
        retry_for: Duration::from_millis(retry_for_ms),
    }
}

/// Runs the machine against `server`; the output closes after
/// `writes_allowed` writes.
fn run(server: &Server, config: Config, writes_allowed: usize) -> Run {
    let ms = |d: Duration| d.as_millis() as u64;
    let mut machine = Machine::new(config);
    let mut now = Duration::ZERO;
    let (mut out, mut said, mut requests, mut writes) = (vec![], vec![], vec![], 0);
    let mut next = Ok(machine.start(now));
    let result = loop {
        said.extend(machine.said());
        assert!(requests.len() < 10_000, "runs away: {said:?}");
        let input = match next {
            Err(e) => break Err(e),
            Ok(Action::Stop(report)) => break Ok(report),
            Ok(Action::Fetch(request)) => {
                let reply = server.answer(&request, ms(now));
                requests.push((ms(now), request));
                Input::Reply(reply)
            }
            Ok(Action::Write(_)) if writes == writes_allowed => Input::Closed,
            Ok(Action::Write(bytes)) => {
                writes += 1;
                out.extend(bytes);
                Input::Written
            }
            Ok(Action::WaitUntil(at)) => {
                assert!(at > now, "waits forward");
                now = at;
                Input::Woke
            }
        };
        next = machine.handle(now, input);
    };
    Run {
        result,
        out,
        said,
        requests,
        end: ms(now),
    }
}

/// What a follower of `server` from `first` to `last` writes.
fn expected(first: u64, last: u64) -> Vec<u8> {
    let a = asset(first);
    let mut out = a.bytes[..a.header_len - Maps::encoded_len(2)].to_vec();
    out.extend(fragments(first, true));
    for s in first + 1..=last {
        out.extend(fragments(s, false));
    }
    out
}

fn fetched(run: &Run, name: &str) -> Vec<u64> {
    run.requests
        .iter()
        .filter(|(_, r)| matches!(r, Request::Asset { name: n } if n == name))
        .map(|(t, _)| *t)
        .collect()
}

#[test]
fn starts_at_locates_entry_point_then_follows_three_assets_and_ends() {
    // Assets 0..=2 published at 0, 3 at 1000, 4 at 2000, 5 at 3000; ended then.
    let server = Server::regular(6, 2 * ASSET_MS, 2);
    let run = run(&server, config(Some(3.0), 30_000), usize::MAX);
    assert_eq!(
        run.result.as_ref().unwrap(),
        &Report {
            backset_drawn_s: 3.0,
            backset_achieved_s: 3.25,
            first_sequence: 2,
            last_sequence: 5,
            stalls: 0,
            output_closed: false,
        }
    );
    // The init once, the located asset from its entry point, then 3..=5.
    assert_eq!(run.out, expected(2, 5));
    let a = asset(2);
    let name = "asset-00000002.mp4".to_string();
    let opening: Vec<_> = run.requests[..4].iter().map(|(_, r)| r.clone()).collect();
    assert_eq!(
        opening,
        [
            Request::Params,
            Request::Locate { backset_s: 3.0 },
            Request::Header {
                asset: name.clone(),
                len: a.header_len as u64
            },
            Request::From {
                asset: name,
                offset: a.second_moof as u64
            },
        ]
    );
    assert_eq!(opening[1].path(), "locate?backset=3.000000s&clamp=1");
    assert_eq!(
        opening[3].range(),
        Some(format!("bytes={}-", a.second_moof))
    );
    // Polled every asset duration / 4 until published, fetched at once then.
    assert_eq!(
        fetched(&run, "asset-00000003.mp4"),
        [0, 250, 500, 750, 1000]
    );
    assert_eq!(*fetched(&run, "asset-00000005.mp4").last().unwrap(), 3000);
    // Asset 6 is missing at 3000; the next poll learns the end.
    assert_eq!(run.end, 3250);
    assert_eq!(
        run.said[0],
        format!(
            "following {URL} from asset-00000002.mp4 byte {}: \
             backset drawn 3.000 s, achieved 3.250 s",
            a.second_moof
        )
    );
    assert_eq!(
        run.said.last().unwrap(),
        "the transmission has ended after asset-00000005.mp4"
    );
}

#[test]
fn a_backset_not_given_is_drawn_from_the_advice() {
    let server = Server::regular(3, 2 * ASSET_MS, 1);
    let run = run(&server, config(None, 30_000), usize::MAX);
    let drawn = Drawer::for_client("test").draw(&server.params(0).advice);
    assert_eq!(run.result.unwrap().backset_drawn_s, drawn);
    assert_eq!(run.requests[1].1, Request::Locate { backset_s: drawn });
}

#[test]
fn a_late_asset_counts_one_stall_however_long_the_wait() {
    // Asset 3 is 3 s late: 1.5 asset durations pass after 1500 ms.
    let mut server = Server::regular(5, 2 * ASSET_MS, 2);
    server.assets[3].0 = 4000;
    server.assets[4].0 = 4500;
    server.ended_at = 4500;
    let run = run(&server, config(Some(3.0), 30_000), usize::MAX);
    let report = run.result.as_ref().unwrap();
    assert_eq!((report.stalls, report.last_sequence), (1, 4));
    let stalls: Vec<_> = run.said.iter().filter(|l| l.starts_with("stall")).collect();
    assert_eq!(stalls, ["stall: waiting for asset-00000003.mp4"]);
    assert!(fetched(&run, "asset-00000003.mp4").len() > 10);
    assert_eq!(run.out, expected(2, 4));
}

#[test]
fn an_expired_asset_is_skipped_to_the_windows_start() {
    // Asset 3 expires before it could ever be fetched: the window moved on.
    let mut server = Server::regular(6, 2 * ASSET_MS, 2);
    server.assets[3] = (1000, 1000);
    for a in &mut server.assets[..3] {
        a.1 = 1000;
    }
    let run = run(&server, config(Some(3.0), 30_000), usize::MAX);
    let report = run.result.unwrap();
    assert_eq!((report.first_sequence, report.last_sequence), (2, 5));
    assert!(run.said.contains(
        &"asset-00000003.mp4 expired before it could be fetched; skipping to asset-00000004.mp4"
            .to_string()
    ));
    let mut want = expected(2, 2);
    want.extend(fragments(4, false));
    want.extend(fragments(5, false));
    assert_eq!(run.out, want);
}

#[test]
fn an_ended_transmission_stops_after_its_last_asset_without_polling() {
    let mut server = Server::regular(4, 10 * ASSET_MS, 1);
    server.ended_at = 0;
    let run = run(&server, config(Some(1.0), 30_000), usize::MAX);
    assert_eq!(run.result.as_ref().unwrap().last_sequence, 3);
    assert_eq!(fetched(&run, "asset-00000004.mp4"), [0]);
    assert_eq!(run.end, 0);
    assert_eq!(run.out, expected(1, 3));
}

#[test]
fn an_unreachable_server_is_retried_with_backoff() {
    let mut server = Server::regular(6, 2 * ASSET_MS, 2);
    server.down = 100..1700;
    let run = run(&server, config(Some(3.0), 30_000), usize::MAX);
    assert_eq!(run.result.unwrap().last_sequence, 5);
    let waits: Vec<_> = run
        .said
        .iter()
        .filter_map(|l| l.split("retrying in ").nth(1))
        .collect();
    // Down from the poll at 250 ms: retried at 450, 850, 1650, back at 3250.
    assert_eq!(waits, ["200ms", "400ms", "800ms", "1.6s"]);
    assert!(run.said[1].starts_with(REFUSED));
    assert_eq!(run.out, expected(2, 5));
}

#[test]
fn a_server_unreachable_past_retry_for_is_given_up() {
    let mut server = Server::regular(6, 2 * ASSET_MS, 2);
    server.down = 500..u64::MAX;
    let run = run(&server, config(Some(3.0), 3_000), usize::MAX);
    let err = run.result.unwrap_err();
    assert!(matches!(err, Error::Network(_)) && err.exit_code() == 1);
    assert_eq!(err.to_string(), format!("giving up after 3s: {REFUSED}"));
    // First failure at 500; waits 200, 400, 800, 1600 (3000 ms, not past
    // the limit), 3200: given up at 6700.
    assert_eq!(run.end, 6700);
    assert_eq!(run.out, expected(2, 2));
}

#[test]
fn a_closed_output_stops_the_run() {
    let server = Server::regular(6, 2 * ASSET_MS, 2);
    for writes in [0, 1, 3] {
        let run = run(&server, config(Some(3.0), 30_000), writes);
        let report = run.result.unwrap();
        assert!(report.output_closed, "{writes}");
        // The first asset counts as followed once its fragments are out.
        assert_eq!(report.last_sequence, 2 + writes.saturating_sub(2) as u64);
    }
}

#[test]
fn no_stream_is_a_network_error() {
    let mut server = Server::regular(3, 2 * ASSET_MS, 1);
    server.no_stream = true;
    let err = run(&server, config(Some(1.0), 30_000), usize::MAX)
        .result
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{URL}: no stream published there yet")
    );
    assert_eq!(err.exit_code(), 1);
}

#[test]
fn a_new_initialisation_is_warned_of_and_followed() {
    let server = Server::regular(
        NEW_INIT_FROM + 2,
        NEW_INIT_FROM * ASSET_MS,
        NEW_INIT_FROM - 1,
    );
    let run = run(&server, config(Some(1.0), 30_000), usize::MAX);
    assert_eq!(run.result.unwrap().last_sequence, NEW_INIT_FROM + 1);
    let warning = run.said.iter().find(|l| l.starts_with("warning"));
    assert_eq!(
        warning.unwrap(),
        "warning: asset-00000100.mp4 has a new initialisation; players may need to restart"
    );
}
