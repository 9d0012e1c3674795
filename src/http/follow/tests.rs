//! Whole follow sessions on a fake clock, in milliseconds: a scripted
//! server answers each request from what is published at that time, over a
//! link of a given rate (a fetch moves the clock by the time its body takes
//! to cross it), and time moves only when the machine asks to wait or a
//! fetch takes time. No sockets, no sleeps.

use std::ops::Range;
use std::time::Duration;

use super::machine::{Config, Machine, Report, Stopped};
use super::protocol::{Action, Clock, Fetch, Input, Reply, Request};
use crate::capture::maps::{Entry, Maps};
use crate::http::api::{Located, Params, ViewerFacts};
use crate::http::cmcd::Cmcd;
use crate::policy::draw::Drawer;
use crate::policy::{Advice, Coefficients, DISTRIBUTION};
use crate::stream::index::Record;
use crate::stream::locate::{Answer, Window};
use crate::stream::maps_reader::Layout;
use crate::stream::naming::Naming;
use crate::Error;

#[cfg(feature = "store")]
mod store;

const ASSET_MS: u64 = 1000;
/// The fake server's root, `http://fake/` (in two pieces: the line
/// counter of the style tools reads `//` in a string as a comment).
const URL: &str = concat!("http:/", "/fake/");
const REFUSED: &str = concat!("http:/", "/fake/: Connection refused");
/// Assets from this one on carry another `moov`.
const NEW_INIT_FROM: u64 = 100;
/// The id the fake server issues.
const ISSUED: &str = "v-issued";
/// Media bytes in each fragment, so that a link's rate matters.
const PAYLOAD: usize = 1000;

fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut b = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    b.extend_from_slice(kind);
    b.extend_from_slice(body);
    b
}

/// One fake asset: init, maps, then two fragments of half an asset each
/// (two entry points), each marked with its sequence so the output shows
/// where it came from.
struct Asset {
    bytes: Vec<u8>,
    header_len: usize,
    /// Where the second fragment's `moof` starts, half an asset in.
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
        let media = [mark.as_slice(), &[0; PAYLOAD]].concat();
        [bx(b"moof", &mark), bx(b"mdat", &media)].concat()
    };
    let header_len = init.len() + Maps::encoded_len(2);
    let second_moof = header_len + fragment(0).len();
    let entry = |offset: usize, timestamp: u64| Entry {
        timestamp,
        datastamp: 0,
        offset: offset as u64,
        wallclock_us: 0,
    };
    let start = sequence * ASSET_MS;
    let mut bytes = init;
    Maps {
        sequence,
        timescale: 1000,
        start,
        duration: ASSET_MS,
        start_datastamp: 0,
        entries: vec![
            entry(header_len, start),
            entry(second_moof, start + ASSET_MS / 2),
        ],
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
/// `moof`, or from its second entry point when it is the one located.
fn fragments(sequence: u64, located: bool) -> Vec<u8> {
    let a = asset(sequence);
    let from = if located { a.second_moof } else { a.header_len };
    a.bytes[from..].to_vec()
}

/// The scripted server: when each asset is published and expires, when the
/// transmission ends, when the server is unreachable (all in ms), the
/// link's rate, the distribution it names.
struct Server {
    /// (published, expires) per sequence, from 0.
    assets: Vec<(u64, u64)>,
    ended_at: u64,
    down: Range<u64>,
    /// Nothing published: 404 for the parameters.
    no_stream: bool,
    /// The link's rate; `None`: fetches take no time.
    rate_bps: Option<f64>,
    distribution: Option<String>,
    naming: Naming,
    /// Hostile edits: to every `/backset.json` and `/locate` answer, spaces
    /// after each JSON answer, bytes past an asked-for header.
    edit_params: fn(&mut Params),
    edit_located: fn(&mut Located),
    json_padding: usize,
    header_extra: usize,
    /// A plain file server: no `backset.json` nor `locate`, the stream's
    /// files only (`stream.json`, `index.bin` by range, `<asset>.maps`).
    statik: bool,
    /// Bytes after the index's last record: a torn append.
    torn_tail: Vec<u8>,
    /// The index in object storage's form (head object and chunks), no
    /// `index.bin` ([`store`]).
    store: Option<StoreForm>,
}

/// How a static host keeps the index in object storage's form.
#[derive(Debug, Clone, Copy, PartialEq)]
struct StoreForm {
    /// `stream.json` names the head object as the index.
    named: bool,
}

impl Server {
    /// Assets `0..count`, asset n published at `n * ASSET_MS - shift` (the
    /// first few already at 0), never expiring; the transmission ends when
    /// the last one is published.
    fn regular(count: u64, shift: u64) -> Server {
        let assets: Vec<_> = (0..count)
            .map(|n| ((n * ASSET_MS).saturating_sub(shift), u64::MAX))
            .collect();
        Server {
            ended_at: assets.last().map_or(0, |a| a.0),
            assets,
            down: 0..0,
            no_stream: false,
            rate_bps: None,
            distribution: Some(DISTRIBUTION.into()),
            naming: Naming::new("asset"),
            edit_params: |_| {},
            edit_located: |_| {},
            json_padding: 0,
            header_extra: 0,
            statik: false,
            torn_tail: Vec::new(),
            store: None,
        }
    }

    /// The same stream on a static host.
    fn static_host(mut self) -> Server {
        self.statik = true;
        self
    }

    fn visible(&self, sequence: u64, t: u64) -> bool {
        usize::try_from(sequence)
            .ok()
            .and_then(|i| self.assets.get(i))
            .is_some_and(|&(p, e)| p <= t && t < e)
    }

    /// The answer, and how long its body took to arrive.
    fn answer(&self, fetch: &Fetch, t: u64) -> Reply {
        if self.down.contains(&t) {
            return Reply::Failed(REFUSED.into());
        }
        if self.no_stream {
            return Reply::NotFound;
        }
        let json = |v: serde_json::Value| {
            Some((v.to_string() + &" ".repeat(self.json_padding)).into_bytes())
        };
        if self.statik {
            return self.file(&fetch.request, t);
        }
        let bytes = match &fetch.request {
            Request::Params => {
                let mut params = self.params(t, &fetch.cmcd);
                (self.edit_params)(&mut params);
                json(serde_json::to_value(params).unwrap())
            }
            Request::Locate { backset_s, .. } => {
                let mut located = self.located(*backset_s, t);
                (self.edit_located)(&mut located);
                json(serde_json::to_value(located).unwrap())
            }
            Request::Header { asset: name, len } => {
                self.part(name, t, 0, Some(*len as usize + self.header_extra))
            }
            Request::From {
                asset: name,
                offset,
            } => self.part(name, t, *offset as usize, None),
            Request::Asset { name } | Request::Probe { name } => self.part(name, t, 0, None),
            _ => None,
        };
        match bytes {
            Some(bytes) => Reply::Body {
                took: self.rate_bps.map_or(Duration::ZERO, |rate| {
                    Duration::from_secs_f64(bytes.len() as f64 * 8.0 / rate)
                }),
                size: Some(bytes.len() as u64),
                bytes,
            },
            None => Reply::NotFound,
        }
    }

    /// A static host's answer: its files, by range where asked.
    fn file(&self, request: &Request, t: u64) -> Reply {
        let whole = match request {
            Request::Params | Request::Locate { .. } => None,
            Request::Descriptor => Some(self.descriptor(t)),
            Request::IndexHead | Request::Record { .. } if self.store.is_none() => {
                Some(self.index(t))
            }
            Request::IndexHead | Request::Record { .. } => None,
            Request::StoreHead { name, .. } | Request::ChunkRecord { name, .. } => {
                self.store_object(name, t)
            }
            Request::Maps { name, .. } => {
                let asset = name.strip_suffix(".maps").unwrap_or_default();
                self.part(asset, t, 0, None).map(|bytes| {
                    let maps = Layout::of(&bytes).maps.unwrap();
                    bytes[maps].to_vec()
                })
            }
            Request::Asset { name } | Request::Probe { name } => self.part(name, t, 0, None),
            Request::Header { asset, .. } | Request::From { asset, .. } => {
                self.part(asset, t, 0, None)
            }
        };
        let Some(whole) = whole else {
            return Reply::NotFound;
        };
        let size = whole.len() as u64;
        let bytes = match request.range() {
            Some(range) => {
                let (from, to) = range
                    .strip_prefix("bytes=")
                    .unwrap()
                    .split_once('-')
                    .unwrap();
                let from = from.parse::<usize>().unwrap();
                let to = to
                    .parse::<usize>()
                    .map_or(whole.len(), |to| (to + 1).min(whole.len()));
                whole[from.min(to)..to].to_vec()
            }
            None => whole,
        };
        Reply::Body {
            took: self.rate_bps.map_or(Duration::ZERO, |rate| {
                Duration::from_secs_f64(bytes.len() as f64 * 8.0 / rate)
            }),
            bytes,
            size: Some(size),
        }
    }

    /// `stream.json` at `t`.
    fn descriptor(&self, t: u64) -> Vec<u8> {
        let (first, _) = self.window(t);
        serde_json::json!({
            "version": 1, "prefix": "asset", "pattern": self.naming.pattern(),
            "index": if self.store.is_some_and(|s| s.named) { "index-head.bin" } else { "index.bin" },
            "timescale": 1000, "interval_us": ASSET_MS * 1000,
            "tracks": [], "first_sequence": first, "started_us": 0,
            "ended": t >= self.ended_at,
        })
        .to_string()
        .into_bytes()
    }

    /// `index.bin` at `t`: a record for every asset published by then
    /// (expired ones included, as retention leaves them), then the tail.
    fn index(&self, t: u64) -> Vec<u8> {
        let mut bytes = b"BKSTIDX1".to_vec();
        for field in [1u32, 64, 1000] {
            bytes.extend(field.to_be_bytes());
        }
        bytes.resize(64, 0);
        for record in self.records(t) {
            bytes.extend(record.encode());
        }
        bytes.extend(&self.torn_tail);
        bytes
    }

    /// The index's records at `t`: one for every asset published by then.
    fn records(&self, t: u64) -> impl Iterator<Item = Record> + '_ {
        // Every fake asset has the same length.
        let a = asset(0);
        let published = self
            .assets
            .iter()
            .enumerate()
            .filter(move |(_, a)| a.0 <= t);
        published.map(move |(s, _)| {
            let s = s as u64;
            Record {
                sequence: s,
                start: s * ASSET_MS,
                duration: ASSET_MS,
                datastamp: s * (a.bytes.len() - a.header_len) as u64,
                size: a.bytes.len() as u64,
                header_len: a.header_len as u32,
                entries: 2,
                published_us: 0,
                init: 0,
            }
        })
    }

    /// Without the `store` feature there is no object storage form.
    #[cfg(not(feature = "store"))]
    fn store_object(&self, _: &str, _: u64) -> Option<Vec<u8>> {
        None
    }

    fn part(&self, name: &str, t: u64, from: usize, len: Option<usize>) -> Option<Vec<u8>> {
        let s = self
            .naming
            .sequence_of(name)
            .filter(|&s| self.visible(s, t))?;
        let bytes = asset(s).bytes;
        let to = len.map_or(bytes.len(), |l| from + l);
        Some(bytes[from..to].to_vec())
    }

    /// The published window at `t`: (first, newest).
    fn window(&self, t: u64) -> (u64, u64) {
        let visible: Vec<u64> = (0..self.assets.len() as u64)
            .filter(|&s| self.visible(s, t))
            .collect();
        (
            visible.first().copied().unwrap_or(0),
            visible.last().copied().unwrap_or(0),
        )
    }

    /// The advice: 2 s for a viewer it knows nothing of, more the slower
    /// the throughput the viewer reports.
    fn params(&self, t: u64, cmcd: &Cmcd) -> Params {
        let (first, newest) = self.window(t);
        let throughput = cmcd.mtp_bps();
        // As advise does: the maximum never reaches past the window.
        let window_s = ((newest + 1 - first) * ASSET_MS) as f64 / 1000.0;
        let maximum_s = window_s.min(4.0);
        Params {
            client: ISSUED.into(),
            advice: Advice {
                recommended_s: throughput
                    .map_or(2.0, |bps| (1e5 / bps).clamp(0.5, 3.5))
                    .min(maximum_s),
                maximum_s,
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
            first_sequence: first,
            asset_duration_s: ASSET_MS as f64 / 1000.0,
            bitrate_bps: 1_000_000,
            prefix: "asset".into(),
            pattern: self.naming.pattern(),
            ended: t >= self.ended_at,
            viewer: ViewerFacts {
                throughput_bps: throughput,
                throughput_source: if throughput.is_some() {
                    "player"
                } else {
                    "none"
                }
                .into(),
                ..ViewerFacts::default()
            },
            audience: Default::default(),
            distribution: self.distribution.clone(),
        }
    }

    /// Locate as the server answers it: the newest entry point (two per
    /// asset, half an asset apart) at or before the live edge minus the
    /// backset, clamped to the window.
    fn located(&self, backset_s: f64, t: u64) -> Located {
        let (first, newest) = self.window(t);
        let edge = (newest + 1) as f64;
        let half = (((edge - backset_s) * 2.0).floor() as i64)
            .clamp(first as i64 * 2, newest as i64 * 2 + 1) as u64;
        let (sequence, entry) = (half / 2, (half % 2) as usize);
        let a = asset(sequence);
        Located {
            asset: self.naming.name(sequence),
            answer: Answer {
                sequence,
                offset: [a.header_len, a.second_moof][entry] as u64,
                entry,
                timestamp: half as f64 / 2.0,
                timestamp_ticks: half * ASSET_MS / 2,
                datastamp: 0,
                wallclock_us: 0,
                backset: edge - half as f64 / 2.0,
                header_len: a.header_len as u32,
                window: Window {
                    oldest_sequence: first,
                    newest_sequence: newest,
                    start: first as f64,
                    end: edge,
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
    requests: Vec<(u64, Fetch)>,
    /// The time the run ended, ms.
    end: u64,
}

fn config(backset_s: Option<f64>, retry_for_ms: u64) -> Config {
    Config {
        url: URL.trim_end_matches('/').into(),
        client: "test".into(),
        backset_s,
        retry_for: Duration::from_millis(retry_for_ms),
        clock: Clock::Live,
        run_for: None,
        save: None,
        resume_from: None,
        epoch_us: 0,
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
            Ok(Action::Fetch(fetch)) => {
                let reply = server.answer(&fetch, ms(now));
                requests.push((ms(now), fetch));
                if let Reply::Body { took, .. } = &reply {
                    now += *took;
                }
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

/// What a follower of `server` from `first` (its second entry point) to
/// `last` writes.
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
        .filter(|(_, f)| matches!(&f.request, Request::Asset { name: n } if n == name))
        .map(|(t, _)| *t)
        .collect()
}

fn requests(run: &Run) -> Vec<Request> {
    run.requests
        .iter()
        .map(|(_, f)| f.request.clone())
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6 * b.abs().max(1.0)
}

#[test]
fn starts_at_locates_entry_point_then_follows_three_assets_and_ends() {
    // Assets 0..=2 published at 0, 3 at 1000, 4 at 2000, 5 at 3000; ended then.
    let server = Server::regular(6, 2 * ASSET_MS);
    let run = run(&server, config(Some(2.5), 30_000), usize::MAX);
    let report = run.result.as_ref().unwrap();
    assert_eq!(
        (
            report.drawn_s,
            report.achieved_s,
            report.distribution.clone()
        ),
        (2.5, 2.5, None)
    );
    assert_eq!((report.first_sequence, report.last_sequence), (0, 5));
    assert_eq!((report.stalls, report.stopped), (0, Stopped::Ended));
    // The init once, the located asset from its entry point, then 1..=5.
    assert_eq!(run.out, expected(0, 5));
    let a = asset(0);
    let name = "asset-00000000.mp4".to_string();
    let opening = &requests(&run)[..4];
    let locate = Request::Locate {
        backset_s: 2.5,
        clock: Clock::Live,
    };
    assert_eq!(
        opening,
        [
            Request::Params,
            locate.clone(),
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
    assert_eq!(locate.path(), "locate?backset=2.500000s&clamp=1");
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
    // The poll at 3000 learnt the end with asset 5: asset 6 is not awaited.
    assert_eq!(run.end, 3000);
    let following = format!(
        "following {URL} from asset-00000000.mp4 byte {}: \
         backset drawn 2.500 s, achieved 2.500 s",
        a.second_moof
    );
    assert!(run.said.contains(&following), "{:?}", run.said);
    assert_eq!(
        run.said.last().unwrap(),
        "the transmission has ended after asset-00000005.mp4"
    );
}

#[test]
fn the_issued_id_names_every_later_request() {
    let server = Server::regular(6, 2 * ASSET_MS);
    let run = run(&server, config(Some(2.5), 30_000), usize::MAX);
    let report = run.result.as_ref().unwrap();
    assert_eq!(report.client, ISSUED);
    assert!(run
        .said
        .contains(&format!("the server knows this viewer as {ISSUED}")));
    // The first asks under --client; every later one under the issued id,
    // as X-Backset-Client and CMCD sid.
    let (first, later) = run.requests.split_first().unwrap();
    assert_eq!(first.1.cmcd.sid.as_deref(), Some("test"));
    assert!(later.len() > 10);
    for (_, fetch) in later {
        assert_eq!(fetch.cmcd.sid.as_deref(), Some(ISSUED));
        let headers = fetch.headers();
        assert_eq!(headers[0], ("X-Backset-Client", ISSUED.to_string()));
        assert!(headers.contains(&("CMCD-Session", format!("sid=\"{ISSUED}\""))));
    }
}

#[test]
fn a_new_viewer_measures_its_link_then_draws_from_the_advice_for_it() {
    // 40 kbit/s: the fake server advises 2 s to a viewer it knows nothing
    // of, 1e5 / 40e3 = 2.5 s to this one once measured.
    let mut server = Server::regular(6, 2 * ASSET_MS);
    server.rate_bps = Some(40_000.0);
    let run = run(&server, config(None, 30_000), usize::MAX);
    let report = run.result.as_ref().unwrap();
    let r = requests(&run);
    assert_eq!(r[0], Request::Params);
    assert_eq!(
        r[1],
        Request::Probe {
            name: "asset-00000002.mp4".into()
        },
        "the newest published asset"
    );
    assert_eq!(r[2], Request::Params);
    assert!(matches!(r[3], Request::Locate { .. }));
    // The first asked with nothing measured; the second with the probe's
    // throughput, starting up.
    let (asked, probe, again) = (&run.requests[0].1, &run.requests[1].1, &run.requests[2].1);
    assert_eq!((asked.cmcd.mtp_kbps, asked.cmcd.su), (None, true));
    assert_eq!((probe.cmcd.mtp_kbps, probe.cmcd.bl_ms), (None, None));
    assert_eq!((again.cmcd.mtp_kbps, again.cmcd.su), (Some(40), true));
    assert!(close(report.probe_throughput_bps.unwrap(), 40_000.0));
    // Drawn, seeded by --client, from the second advice: 1e5 / 40e3 = 2.5 s.
    let advice = server.params(0, &again.cmcd).advice;
    assert_eq!(advice.recommended_s, 2.5);
    let drawn = Drawer::for_client("test").draw(&advice);
    assert_eq!(report.drawn_s, drawn);
    assert_eq!(
        r[3],
        Request::Locate {
            backset_s: drawn,
            clock: Clock::Live
        }
    );
    // Three assets retained at the start: the maximum is the window, 3 s.
    assert_eq!((report.recommended_s, report.maximum_s), (2.5, 3.0));
    assert_eq!(report.distribution.as_deref(), Some(DISTRIBUTION));
    assert!(close(report.throughput_bps.unwrap(), 40_000.0));
    assert!(run
        .said
        .iter()
        .any(|l| l.starts_with("probe: asset-00000002.mp4 at 0.040 Mbit/s")));
}

#[test]
fn a_given_backset_is_not_probed_for() {
    let server = Server::regular(6, 2 * ASSET_MS);
    let run = run(&server, config(Some(2.5), 30_000), usize::MAX);
    let r = requests(&run);
    assert!(!r.iter().any(|r| matches!(r, Request::Probe { .. })));
    assert!(matches!(r[..2], [Request::Params, Request::Locate { .. }]));
    assert_eq!(run.result.unwrap().probe_throughput_bps, None);
}

/// Assets 0..count all published at 0 (the transmission ended), followed
/// from asset 0's second entry point (half an asset of media) over a link
/// on which a whole asset takes `asset_ms`.
fn behind_a_link(count: u64, asset_ms: f64) -> (Server, Config) {
    let mut server = Server::regular(count, count * ASSET_MS);
    let bits = asset(0).bytes.len() as f64 * 8.0;
    server.rate_bps = Some(bits / (asset_ms / 1000.0));
    (server, config(Some(count as f64 - 0.5), 30_000))
}

#[test]
fn every_request_says_the_buffer_and_the_measured_throughput() {
    // A whole asset takes 250 ms: the buffer grows by 750 ms per asset.
    let (server, config) = behind_a_link(6, 250.0);
    let run = run(&server, config, usize::MAX);
    let report = run.result.as_ref().unwrap();
    assert_eq!((report.stalls, report.last_sequence), (0, 5));
    let rate = server.rate_bps.unwrap();
    let assets: Vec<_> = run
        .requests
        .iter()
        .filter(|(_, f)| matches!(f.request, Request::Asset { .. }))
        .map(|(t, f)| (*t, f.cmcd.clone()))
        .collect();
    // Before the first asset: the entry point's half asset is buffered,
    // the From fetch measured the link; playback has started.
    let (t0, first) = &assets[0];
    assert_eq!(first.bl_ms, Some(500));
    assert_eq!(first.mtp_kbps, Some((rate / 1000.0).round() as u64));
    assert!(!first.su && !first.bs);
    // Each asset adds 1000 ms of media and costs 250 ms of playback.
    for (i, (t, cmcd)) in assets.iter().enumerate().take(5) {
        assert_eq!(*t, t0 + 250 * i as u64);
        assert_eq!(cmcd.bl_ms, Some(500 + 750 * i as u64), "{i}");
    }
    let headers = Fetch {
        request: Request::Asset { name: "a".into() },
        cmcd: first.clone(),
    }
    .headers();
    assert!(headers.contains(&(
        "CMCD-Request",
        format!("bl=500,mtp={}", first.mtp_kbps.unwrap())
    )));
    assert!(close(report.throughput_bps.unwrap(), rate));
    assert!(report.probe_throughput_bps.is_none());
}

#[test]
fn a_buffer_that_runs_dry_stalls_until_the_next_asset_is_written() {
    // A whole asset takes 1.5 s to fetch and plays for 1 s: from half an
    // asset buffered, the first wait stalls 1 s, every later one 0.5 s.
    let (server, config) = behind_a_link(6, 1500.0);
    let run = run(&server, config, usize::MAX);
    let report = run.result.as_ref().unwrap();
    assert_eq!(report.stalls, 5);
    assert!(close(report.stalled_s, 3.0), "{}", report.stalled_s);
    let stalls: Vec<_> = run
        .said
        .iter()
        .filter(|l| l.starts_with("stall: "))
        .collect();
    assert_eq!(stalls.len(), 5);
    assert_eq!(
        stalls[0],
        "stall: the buffer ran dry after 0.500 s of playback, waiting for asset-00000001.mp4"
    );
    assert!(run
        .said
        .contains(&"playing again after 1.000 s stalled".to_string()));
    assert!(run
        .said
        .contains(&"playing again after 0.500 s stalled".to_string()));
    // The request after each stall says so; while it is under way the
    // player is recovering (su) and its buffer is empty.
    let after: Vec<_> = run
        .requests
        .iter()
        .filter(|(_, f)| matches!(f.request, Request::Asset { .. }))
        .map(|(_, f)| (f.cmcd.bs, f.cmcd.su, f.cmcd.bl_ms))
        .collect();
    assert_eq!(after[0], (false, false, Some(500)));
    assert!(after[1..5].iter().all(|c| *c == (true, false, Some(1000))));
    assert_eq!(run.out, expected(0, 5));
}

#[test]
fn a_late_asset_stalls_once_the_buffer_is_spent_and_for_as_long() {
    // From asset 0's entry point at t=0, 2.5 s are buffered (0.5 + 1 + 1).
    // Asset 3 comes at 4 s instead of 1 s: 1.5 s stalled, one stall.
    let mut server = Server::regular(5, 2 * ASSET_MS);
    server.assets[3].0 = 4000;
    server.assets[4].0 = 4500;
    server.ended_at = 4500;
    let run = run(&server, config(Some(2.5), 30_000), usize::MAX);
    let report = run.result.as_ref().unwrap();
    assert_eq!((report.stalls, report.last_sequence), (1, 4));
    assert!(close(report.stalled_s, 1.5), "{}", report.stalled_s);
    let stalls: Vec<_> = run.said.iter().filter(|l| l.starts_with("stall")).collect();
    assert_eq!(
        stalls,
        ["stall: the buffer ran dry after 2.500 s of playback, waiting for asset-00000003.mp4"]
    );
    assert!(fetched(&run, "asset-00000003.mp4").len() > 10);
    assert_eq!(run.out, expected(0, 4));
}

#[test]
fn a_late_asset_is_no_stall_while_the_buffer_holds() {
    // Asset 3 is 1.4 s late, the buffer 2.5 s deep: playback never stops.
    let mut server = Server::regular(5, 2 * ASSET_MS);
    server.assets[3].0 = 2400;
    server.assets[4].0 = 2500;
    server.ended_at = 2500;
    let run = run(&server, config(Some(2.5), 30_000), usize::MAX);
    let report = run.result.as_ref().unwrap();
    assert_eq!((report.stalls, report.stalled_s), (0, 0.0));
    assert!(!run.said.iter().any(|l| l.starts_with("stall")));
    assert!(run.requests.iter().all(|(_, f)| !f.cmcd.bs));
}

#[test]
fn following_for_a_while_stops_cleanly_and_reports() {
    let server = Server::regular(100, 2 * ASSET_MS);
    let mut config = config(Some(2.5), 30_000);
    config.run_for = Some(Duration::from_secs(5));
    let run = run(&server, config, usize::MAX);
    let report = run.result.unwrap();
    // The last poll's wait is cut short at 5 s; asset 6 came at 4 s.
    assert_eq!(run.end, 5000);
    assert_eq!((report.stopped, report.last_sequence), (Stopped::Time, 6));
    assert_eq!(report.followed_s, 5.0);
    assert_eq!(report.stalls, 0);
    // 6.5 s of media written (half of asset 0, then 1..=6), 5 s played.
    assert!(close(report.buffer_s, 1.5), "{}", report.buffer_s);
    assert_eq!(run.said.last().unwrap(), "followed for 5.000 s; stopping");
    let json = serde_json::to_value(&report).unwrap();
    for key in [
        "client",
        "recommended_s",
        "maximum_s",
        "drawn_s",
        "achieved_s",
        "first_sequence",
        "last_sequence",
        "stalls",
        "stalled_s",
        "probe_throughput_bps",
        "throughput_bps",
        "distribution",
        "stopped",
    ] {
        assert!(json.get(key).is_some(), "{key} missing: {json}");
    }
    assert_eq!(json["stopped"], "time");
    assert_eq!(json["client"], ISSUED);
}

#[test]
fn a_run_cut_short_in_a_stall_counts_it_to_the_end() {
    let (server, config) = behind_a_link(6, 1500.0);
    // Playback starts as asset 1 is asked for; it runs dry half a second
    // later. The run is to end half a second after that, while asset 1 is
    // still on its way: the report stops there.
    let started = fetched(
        &run(&server, config.clone(), usize::MAX),
        "asset-00000001.mp4",
    )[0];
    let mut config = config;
    config.run_for = Some(Duration::from_millis(started + 1000));
    let run = run(&server, config, usize::MAX);
    let report = run.result.unwrap();
    assert_eq!((report.stopped, report.stalls), (Stopped::Time, 1));
    assert!(
        (report.stalled_s - 0.5).abs() < 0.002,
        "{}",
        report.stalled_s
    );
    assert_eq!(report.buffer_s, 0.0);
}

#[test]
fn advice_in_an_unknown_distribution_is_refused() {
    let mut server = Server::regular(6, 2 * ASSET_MS);
    server.distribution = Some("backset-other/9".into());
    let err = run(&server, config(None, 30_000), usize::MAX)
        .result
        .unwrap_err();
    assert!(matches!(err, Error::Network(_)) && err.exit_code() == 1);
    let text = err.to_string();
    assert!(
        text.contains("\"backset-other/9\"") && text.contains(DISTRIBUTION),
        "{text}"
    );
    // Named or not, a backset that is given is not drawn.
    assert!(run(&server, config(Some(2.5), 30_000), usize::MAX)
        .result
        .is_ok());
    server.distribution = None;
    assert!(run(&server, config(None, 30_000), usize::MAX)
        .result
        .is_ok());
}

#[test]
fn the_wall_clock_is_asked_of_locate() {
    let server = Server::regular(6, 2 * ASSET_MS);
    let mut config = config(Some(2.5), 30_000);
    config.clock = Clock::Wall;
    let run = run(&server, config, usize::MAX);
    let locate = &requests(&run)[1];
    assert_eq!(locate.path(), "locate?backset=2.500000s&clamp=1&clock=wall");
    assert!(run
        .said
        .iter()
        .any(|l| l.ends_with("achieved 2.500 s behind the wall clock")));
}

#[test]
fn an_expired_asset_is_skipped_to_the_windows_start() {
    // Asset 3 expires before it could ever be fetched: the window moved on.
    let mut server = Server::regular(6, 2 * ASSET_MS);
    server.assets[3] = (1000, 1000);
    for a in &mut server.assets[..3] {
        a.1 = 1000;
    }
    let run = run(&server, config(Some(0.5), 30_000), usize::MAX);
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
    let mut server = Server::regular(4, 10 * ASSET_MS);
    server.ended_at = 0;
    let run = run(&server, config(Some(2.5), 30_000), usize::MAX);
    let report = run.result.as_ref().unwrap();
    assert_eq!((report.last_sequence, report.stopped), (3, Stopped::Ended));
    assert_eq!(fetched(&run, "asset-00000004.mp4"), [0]);
    assert_eq!(run.end, 0);
    assert_eq!(run.out, expected(1, 3));
}

#[test]
fn an_unreachable_server_is_retried_with_backoff() {
    let mut server = Server::regular(6, 2 * ASSET_MS);
    server.down = 100..1700;
    let run = run(&server, config(Some(0.5), 30_000), usize::MAX);
    assert_eq!(run.result.unwrap().last_sequence, 5);
    let waits: Vec<_> = run
        .said
        .iter()
        .filter_map(|l| l.split("retrying in ").nth(1))
        .collect();
    // Down from the poll at 250 ms: retried at 450, 850, 1650, back at 3250.
    assert_eq!(waits, ["200ms", "400ms", "800ms", "1.6s"]);
    assert!(run.said.iter().any(|l| l.starts_with(REFUSED)));
    assert_eq!(run.out, expected(2, 5));
}

#[test]
fn a_server_unreachable_past_retry_for_is_given_up() {
    let mut server = Server::regular(6, 2 * ASSET_MS);
    server.down = 500..u64::MAX;
    let run = run(&server, config(Some(0.5), 3_000), usize::MAX);
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
    let server = Server::regular(6, 2 * ASSET_MS);
    for writes in [0, 1, 3] {
        let run = run(&server, config(Some(0.5), 30_000), writes);
        let report = run.result.unwrap();
        assert_eq!(report.stopped, Stopped::Closed, "{writes}");
        // The first asset counts as followed once its fragments are out.
        assert_eq!(report.last_sequence, 2 + writes.saturating_sub(2) as u64);
    }
}

#[test]
fn no_stream_is_a_network_error() {
    let mut server = Server::regular(3, 2 * ASSET_MS);
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
    let server = Server::regular(NEW_INIT_FROM + 2, NEW_INIT_FROM * ASSET_MS);
    let run = run(&server, config(Some(1.5), 30_000), usize::MAX);
    let report = run.result.unwrap();
    assert_eq!(
        (report.first_sequence, report.last_sequence),
        (NEW_INIT_FROM - 1, NEW_INIT_FROM + 1)
    );
    let warning = run.said.iter().find(|l| l.starts_with("warning"));
    assert_eq!(
        warning.unwrap(),
        "warning: asset-00000100.mp4 has a new initialisation; players may need to restart"
    );
}

/// A hostile edit to an answer.
type Edit<T> = fn(&mut T);

/// Runs against a server whose answers were edited; the error it ends with.
fn refused(server: &Server) -> Error {
    let run = run(server, config(Some(1.5), 30_000), usize::MAX);
    let err = run.result.unwrap_err();
    assert!(
        matches!(err, Error::BadAnswer(_)) && err.exit_code() == 2,
        "{err:?}"
    );
    err
}

#[test]
fn every_value_in_the_parameters_is_checked() {
    let cases: [(Edit<Params>, &str); 17] = [
        (
            |p| p.advice.recommended_s = -1000.0,
            "recommended_s -1000.0 is not a duration",
        ),
        (
            |p| p.advice.maximum_s = 1e300,
            "maximum_s 1e300 s is over the limit",
        ),
        (
            |p| p.advice.recommended_s = 5.0,
            "recommended_s 5.0 is over maximum_s 3.0",
        ),
        (
            |p| p.advice.coefficients.less = 1.5,
            "less 1.5 is not a share",
        ),
        (
            |p| p.advice.coefficients.more = 1.0,
            "less + more 1.1 is not a share",
        ),
        (
            |p| p.advice.coefficients.down_s = -1.0,
            "down_s -1.0 is not a duration",
        ),
        (
            |p| p.advice.coefficients.up_s = 1e9,
            "up_s 1000000000.0 s is over the limit",
        ),
        (
            |p| p.live_edge_s = -3.0,
            "live_edge_s -3.0 is not a duration",
        ),
        (|p| p.asset_duration_s = 0.0, "asset_duration_s is 0"),
        (
            |p| p.asset_duration_s = 1e6,
            "asset_duration_s 1000000.0 s is over the limit",
        ),
        (
            |p| p.asset_duration_s = -1.0,
            "asset_duration_s -1.0 is not a duration",
        ),
        (
            |p| p.first_sequence = p.live_edge_sequence + 1,
            "is past live_edge_sequence",
        ),
        (
            |p| {
                p.advice.maximum_s = 3.5;
                p.advice.recommended_s = 3.5;
            },
            "maximum_s 3.5 is past the retained window of 3.000 s",
        ),
        (
            |p| p.viewer.throughput_bps = Some(-1.0),
            "viewer.throughput_bps -1.0 is",
        ),
        (
            |p| p.prefix = "../../etc/passwd".into(),
            "not a file name prefix",
        ),
        (|p| p.prefix = String::new(), "not a file name prefix"),
        (
            |p| p.client = "v\r\nX-Evil: 1".into(),
            "client \"v\\r\\nX-Evil: 1\" is not a token",
        ),
    ];
    for (edit, want) in cases {
        let mut server = Server::regular(6, 2 * ASSET_MS);
        server.edit_params = edit;
        let text = refused(&server).to_string();
        assert!(
            text.starts_with(&format!("{URL}backset.json: ")) && text.contains(want),
            "{text} / {want}"
        );
    }
}

#[test]
fn an_unparsable_answer_is_a_bad_answer() {
    // JSON has no NaN: serde writes null, which is no number.
    let mut server = Server::regular(6, 2 * ASSET_MS);
    server.edit_params = |p| p.advice.recommended_s = f64::NAN;
    assert!(refused(&server).to_string().contains("unexpected answer:"));
}

#[test]
fn every_value_in_locates_answer_is_checked() {
    let cases: [(Edit<Located>, &str); 8] = [
        (
            |l| l.answer.backset = -1000.0,
            "backset -1000.0 is not a duration",
        ),
        (
            |l| l.answer.timestamp = -1.0,
            "timestamp -1.0 is not a duration",
        ),
        (
            |l| l.answer.header_len = 0,
            "header_len 0 is not between 1 and",
        ),
        (
            |l| l.answer.offset = 3,
            "offset 3 is not between the header's end",
        ),
        (
            |l| l.answer.offset = 1 << 40,
            "offset 1099511627776 is not between",
        ),
        (
            |l| l.asset = "../../etc/passwd".into(),
            "\"../../etc/passwd\" is not the name of sequence",
        ),
        (
            |l| l.answer.window.newest_sequence = 0,
            "is outside its window",
        ),
        (
            |l| l.answer.window.oldest_sequence = 5,
            "is outside its window",
        ),
    ];
    for (edit, want) in cases {
        let mut server = Server::regular(6, 2 * ASSET_MS);
        server.edit_located = edit;
        let text = refused(&server).to_string();
        assert!(
            text.starts_with(&format!("{URL}locate?backset=1.500000s")) && text.contains(want),
            "{text} / {want}"
        );
    }
}

#[test]
fn the_last_sequence_there_can_be_does_not_wrap_to_the_first() {
    let mut server = Server::regular(6, 2 * ASSET_MS);
    server.edit_located = |l| {
        l.answer.sequence = u64::MAX;
        l.answer.window.newest_sequence = u64::MAX;
        l.asset = Naming::new("asset").name(u64::MAX);
    };
    let run = run(&server, config(Some(1.5), 30_000), usize::MAX);
    let err = run.result.as_ref().unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert_eq!(
        err.to_string(),
        "asset sequence 18446744073709551615 has no successor: the server's sequences are forged or wrapped"
    );
    // Refused before anything was fetched from it, let alone replayed.
    assert!(run.out.is_empty());
    assert_eq!(requests(&run).len(), 2);
}

#[test]
fn a_body_over_its_limit_is_refused_not_retried() {
    // Valid JSON, padded past 1 MiB.
    let mut server = Server::regular(6, 2 * ASSET_MS);
    server.json_padding = 1 << 20;
    let text = refused(&server).to_string();
    assert_eq!(
        text,
        format!("{URL}backset.json: the answer is longer than 1048576 bytes; refused")
    );
    // A header longer than locate announced.
    let mut server = Server::regular(6, 2 * ASSET_MS);
    server.header_extra = 1;
    let text = refused(&server).to_string();
    assert!(text.contains("the answer is longer than"), "{text}");
}

#[test]
fn each_request_has_its_limit() {
    let asset = || "asset-00000001.mp4".to_string();
    let limits = [
        (Request::Params, 1 << 20),
        (
            Request::Locate {
                backset_s: 1.0,
                clock: Clock::Live,
            },
            1 << 20,
        ),
        (
            Request::Header {
                asset: asset(),
                len: 700,
            },
            700,
        ),
        (
            Request::From {
                asset: asset(),
                offset: 700,
            },
            512 << 20,
        ),
        (Request::Asset { name: asset() }, 512 << 20),
        (Request::Probe { name: asset() }, 512 << 20),
    ];
    for (request, limit) in limits {
        assert_eq!(request.limit(), limit, "{request:?}");
    }
}

/// A one-connection HTTP server on a real socket: reads the request's
/// head, then `respond` writes whatever it likes. Returns its root URL.
fn hostile(respond: fn(&mut std::net::TcpStream)) -> String {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        let mut head = Vec::new();
        let mut byte = [0; 1];
        while !head.ends_with(b"\r\n\r\n") && socket.read(&mut byte).unwrap_or(0) == 1 {
            head.push(byte[0]);
        }
        respond(&mut socket);
    });
    format!(concat!("http:/", "/127.0.0.1:{}/"), port)
}

fn get(url: &str, request: Request, timeout: Duration) -> Reply {
    let http = super::driver::Http::new(url, timeout);
    http.get(&Fetch {
        request,
        cmcd: Cmcd::default(),
    })
}

#[test]
fn an_endless_body_is_read_no_further_than_its_limit() {
    use std::io::Write;
    let url = hostile(|socket| {
        let _ = socket.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        let chunk = [b"10000\r\n".as_slice(), &[b' '; 0x10000], b"\r\n"].concat();
        while socket.write_all(&chunk).is_ok() {}
    });
    let started = std::time::Instant::now();
    assert_eq!(
        get(&url, Request::Params, Duration::from_secs(20)),
        Reply::TooLong
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_length_over_the_limit_is_refused_before_reading() {
    use std::io::Write;
    let url = hostile(|socket| {
        let _ = socket.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1048577\r\n\r\n{}");
        std::thread::sleep(Duration::from_secs(5));
    });
    let started = std::time::Instant::now();
    assert_eq!(
        get(&url, Request::Params, Duration::from_secs(20)),
        Reply::TooLong
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn a_server_that_trickles_is_cut_at_the_timeout() {
    use std::io::Write;
    let url = hostile(|socket| {
        let _ = socket.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
        for _ in 0..100 {
            if socket.write_all(b" ").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let started = std::time::Instant::now();
    let reply = get(&url, Request::Params, Duration::from_millis(700));
    assert!(
        matches!(&reply, Reply::Failed(why) if why.contains("timeout") || why.contains("Timeout")),
        "{reply:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// A static host's run and the same stream's run against `serve`.
fn both(server: Server, config: Config) -> (Run, Run) {
    let served = run(&server, config.clone(), usize::MAX);
    let statik = run(&server.static_host(), config, usize::MAX);
    (served, statik)
}

#[test]
fn a_static_host_is_followed_from_its_files_as_serve_would_answer() {
    let (served, statik) = both(Server::regular(6, 2 * ASSET_MS), config(Some(2.5), 30_000));
    let report = statik.result.as_ref().unwrap();
    // The same entry point, bytes and end as `serve`'s locate gives.
    assert_eq!(statik.out, expected(0, 5));
    assert_eq!(statik.out, served.out);
    assert_eq!((report.achieved_s, report.first_sequence), (2.5, 0));
    assert_eq!((report.last_sequence, report.stopped), (5, Stopped::Ended));
    let r = requests(&statik);
    assert_eq!(
        r[..3],
        [Request::Params, Request::Descriptor, Request::IndexHead]
    );
    assert_eq!(r[2].range().as_deref(), Some("bytes=0-127"));
    assert!(!r.iter().any(|r| matches!(r, Request::Locate { .. })));
    // The maps of the asset located into, on their own.
    assert!(r.contains(&Request::Maps {
        name: "asset-00000000.mp4.maps".into(),
        len: Maps::encoded_len(2) as u64
    }));
    assert!(statik.said[0].contains("no backset.json, a static host"));
}

#[test]
fn a_long_index_is_searched_with_few_ranged_reads_past_a_torn_tail() {
    // 100,000 assets all published, then half a record: a crash mid-append.
    let mut server = Server::regular(100_000, 100_000 * ASSET_MS).static_host();
    server.ended_at = u64::MAX;
    server.torn_tail = vec![7; 40];
    let mut config = config(Some(3.5), 30_000);
    config.run_for = Some(Duration::from_millis(1));
    let run = run(&server, config, usize::MAX);
    let report = run.result.as_ref().unwrap();
    // Live edge at 100,000 s; 3.5 s back lands on asset 99,996's second entry.
    assert_eq!((report.first_sequence, report.achieved_s), (99_996, 3.5));
    let records: Vec<u64> = requests(&run)
        .iter()
        .filter_map(|r| match r {
            Request::Record { position } => Some(*position),
            _ => None,
        })
        .collect();
    // The last whole record, then a search of log2(100,000) ≈ 17 steps.
    assert!(
        records.len() <= 2 * 17 + 2,
        "{} records read",
        records.len()
    );
    assert!(records.contains(&99_999));
    assert!(Request::Record { position: 2 }.range() == Some("bytes=192-255".into()));
}

#[test]
fn a_torn_tail_of_whole_records_is_found_by_binary_search() {
    // Three records' worth of zeros after the last: not records in place.
    let mut server = Server::regular(1000, 1000 * ASSET_MS).static_host();
    server.torn_tail = vec![0; 3 * 64];
    let mut config = config(Some(0.5), 30_000);
    config.run_for = Some(Duration::from_millis(1));
    let run = run(&server, config, usize::MAX);
    let report = run.result.as_ref().unwrap();
    assert_eq!(
        report.first_sequence, 999,
        "the live edge is the last valid record"
    );
    let reads = requests(&run)
        .iter()
        .filter(|r| matches!(r, Request::Record { .. }))
        .count();
    assert!(reads <= 2 * 10 + 2, "{reads} records read");
}

#[test]
fn a_static_host_advises_from_the_window_and_the_measured_link() {
    let mut server = Server::regular(6, 2 * ASSET_MS).static_host();
    server.rate_bps = Some(40_000.0);
    let run = run(&server, config(None, 30_000), usize::MAX);
    let report = run.result.as_ref().unwrap();
    let r = requests(&run);
    let probe = r
        .iter()
        .position(|r| matches!(r, Request::Probe { .. }))
        .unwrap();
    // After the probe: the files again, not a second backset.json.
    assert_eq!(r.iter().filter(|r| **r == Request::Params).count(), 1);
    assert_eq!(r[probe + 1], Request::Descriptor);
    // advise() for one viewer at 40 kbit/s over the window of three 1 s
    // assets: capped at the window less an asset.
    let bps = report.probe_throughput_bps.unwrap();
    assert!(close(bps, 40_000.0));
    assert!(report.recommended_s <= report.maximum_s && report.maximum_s <= 2.0 + 1e-9);
    assert_eq!(report.distribution.as_deref(), Some(DISTRIBUTION));
    assert_eq!(report.stopped, Stopped::Ended);
}

#[test]
fn a_static_host_is_polled_on_its_descriptor_alone_until_it_ends() {
    let server = Server::regular(6, 2 * ASSET_MS).static_host();
    let run = run(&server, config(Some(2.5), 30_000), usize::MAX);
    let r = requests(&run);
    let first_asset = r
        .iter()
        .position(|r| matches!(r, Request::Asset { .. }))
        .unwrap();
    let heads = r[first_asset..]
        .iter()
        .filter(|r| **r == Request::IndexHead)
        .count();
    // Polls read stream.json; the index once more only when it has ended,
    // for the last asset.
    assert!(r[first_asset..].contains(&Request::Descriptor));
    assert_eq!(heads, 1, "{r:?}");
    assert_eq!(run.result.unwrap().last_sequence, 5);
}

#[test]
fn saving_fetches_the_first_asset_whole_and_writes_the_same() {
    for statik in [false, true] {
        let mut server = Server::regular(6, 2 * ASSET_MS);
        server.statik = statik;
        let mut config = config(Some(2.5), 30_000);
        config.save = Some("unused by the machine".into());
        let run = run(&server, config, usize::MAX);
        assert_eq!(run.out, expected(0, 5), "static: {statik}");
        let r = requests(&run);
        assert!(!r
            .iter()
            .any(|r| matches!(r, Request::Header { .. } | Request::From { .. })));
        assert_eq!(fetched(&run, "asset-00000000.mp4"), [0]);
    }
}

#[test]
fn a_resumed_save_goes_on_from_its_next_asset_without_drawing() {
    for statik in [false, true] {
        let mut server = Server::regular(6, 2 * ASSET_MS);
        server.statik = statik;
        let mut config = config(None, 30_000);
        config.resume_from = Some(2);
        let run = run(&server, config, usize::MAX);
        let report = run.result.as_ref().unwrap();
        let a = asset(2);
        let mut want = a.bytes[..a.header_len - Maps::encoded_len(2)].to_vec();
        for s in 2..=5 {
            want.extend(fragments(s, false));
        }
        assert_eq!(run.out, want, "static: {statik}");
        assert_eq!((report.first_sequence, report.last_sequence), (2, 5));
        let r = requests(&run);
        assert!(!r
            .iter()
            .any(|r| matches!(r, Request::Probe { .. } | Request::Locate { .. })));
        assert!(run
            .said
            .contains(&"resuming the saved stream at asset-00000002.mp4".into()));
    }
}

#[test]
fn a_static_host_without_maps_files_is_a_bad_answer_not_a_loop() {
    let server = Server::regular(6, 2 * ASSET_MS).static_host();
    // Maps answered 404 every time: the window is read again a few times.
    let mut machine = Machine::new(config(Some(2.5), 1000));
    let mut next = machine.start(Duration::ZERO);
    let mut requests = 0;
    let err = loop {
        requests += 1;
        assert!(requests < 100, "runs away");
        let Action::Fetch(fetch) = next else {
            panic!("{next:?}");
        };
        let reply = match fetch.request {
            Request::Maps { .. } => Reply::NotFound,
            _ => server.answer(&fetch, 0),
        };
        match machine.handle(Duration::ZERO, Input::Reply(reply)) {
            Ok(action) => next = action,
            Err(e) => break e,
        }
    };
    assert!(matches!(err, Error::BadAnswer(_)), "{err}");
    assert!(err.to_string().contains("maps"), "{err}");
}

#[test]
fn a_static_host_that_ignores_ranges_is_named_as_such() {
    let server = Server::regular(6, 2 * ASSET_MS).static_host();
    let mut machine = Machine::new(config(Some(2.5), 1000));
    let mut next = machine.start(Duration::ZERO);
    let err = loop {
        let Action::Fetch(fetch) = next else {
            panic!("{next:?}");
        };
        let reply = match fetch.request {
            // The whole index, as a server that ignores Range sends it.
            Request::IndexHead => Reply::TooLong,
            _ => server.answer(&fetch, 0),
        };
        match machine.handle(Duration::ZERO, Input::Reply(reply)) {
            Ok(action) => next = action,
            Err(e) => break e.to_string(),
        }
    };
    assert!(
        err.contains("index.bin") && err.contains("Range requests"),
        "{err}"
    );
}
