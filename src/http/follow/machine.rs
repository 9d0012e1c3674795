//! The client's decisions, without I/O: a [`Machine`] is fed what happened
//! (an answer arrived, bytes were written, a wait ended) and the time it
//! happened, and says what to do next ([`Action`]): fetch something, write
//! bytes, wait until a time, or stop. It never reads a clock, sleeps or
//! touches a socket, so its tests run whole sessions on a fake clock.
//!
//! The session:
//!
//! 1. `/backset.json`. Its answer names the stream's shape and carries
//!    `client`, the id the server issued this viewer (a `--client` the
//!    server issued earlier comes back unchanged). Every later request
//!    carries that id, as `X-Backset-Client` and as CMCD `sid`, so the
//!    server files what it measures under this viewer and no other.
//! 2. Measure before drawing. A new viewer has no facts, so the first
//!    advice is generic. The machine fetches one whole asset, the newest
//!    published, as a probe; the driver times it (request sent to last byte
//!    read), the throughput is its bits over that time. It then asks
//!    `/backset.json` again with CMCD `mtp` (that throughput, kbit/s) and
//!    `su` (starting up): by then the server holds both its own kernel
//!    measurement of the probe's delivery and the player's `mtp`, and
//!    advises from them. The backset is drawn (seeded by `--client`) from
//!    this second advice, in the distribution the server names, refused if
//!    it is not [`DISTRIBUTION`]. With `--backset` nothing is drawn: no
//!    probe, no second advice.
//! 3. `locate` (on the live edge's clock or, with `--clock wall`, the wall
//!    clock's) for the entry point; the asset's header (init and maps), the
//!    init written once, the asset from the entry point's `moof` on; then
//!    every following asset by predictable name, polled until published.
//!    With `--save` the first asset is fetched whole instead (the driver
//!    keeps every whole asset); resuming a save starts at its next asset,
//!    whole, with no probe, draw or `locate`.
//!
//! A 404 for the first `/backset.json` means a static host (a file server
//! or CDN): the machine then reads `stream.json` and `index.bin` (or, on an
//! object store, `index-head.bin` and the index's chunks) and the assets'
//! maps by range, and makes the parameters and the entry point itself
//! ([`super::static_host`]); its polls read `stream.json` alone (the index
//! again only once the transmission has ended, for its last asset).
//! Everything else is the same session.
//!
//! Every request carries CMCD: `sid`, `mtp` (the latest throughput of this
//! viewer's own asset fetches), `bl` (its buffer, ms), `bs` when it starved
//! since the previous request, `su` while starting or stalled. The buffer
//! is a virtual player's (`Playback`): a playhead that starts when the
//! entry point's fragments are written and advances at real speed; a stall
//! is the playhead reaching the end of the media written, and lasts until
//! the next asset is written. Meanwhile the machine skips to the window's
//! start when the next asset expired, ends after the last asset of an ended
//! transmission or once it has followed for `run_for` (a wait is cut short
//! there; a fetch still under way then is dropped when it ends, and the
//! report describes the run up to `run_for`), and retries an unreachable
//! server with backoff until `retry_for` has passed.

use std::time::Duration;

use serde::Serialize;

use super::playback::Playback;
use super::protocol::{Action, Clock, Fetch, Input, Reply, Request};
use super::static_host::{self, Doing, Host, Need, View};
use super::trust;
use crate::capture::maps::Maps;
use crate::http::api::{Located, Params};
use crate::http::cmcd::Cmcd;
use crate::policy::draw::Drawer;
use crate::policy::DISTRIBUTION;
use crate::stream::locate::{seconds, Target};
use crate::stream::maps_reader::{maps_in, Layout};
use crate::stream::naming::Naming;
use crate::{Error, Result};

/// The first wait before retrying a failed request; it doubles each time
/// up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// What the user asked for.
#[derive(Debug, Clone)]
pub struct Config {
    /// The server's root, like `http://127.0.0.1:8080/`.
    pub url: String,
    /// Seeds the draw (the same id draws the same backset from the same
    /// advice); sent as the viewer's id until the server issues one.
    pub client: String,
    /// Use this backset (s) instead of measuring and drawing one.
    pub backset_s: Option<f64>,
    /// How long to keep retrying an unreachable server.
    pub retry_for: Duration,
    /// What the backset is measured from.
    pub clock: Clock,
    /// Stop after following this long (from the start).
    pub run_for: Option<Duration>,
    /// Keep every asset fetched here (`--save`): the first one is then
    /// fetched whole, not from its entry point, so it can be kept too.
    pub save: Option<std::path::PathBuf>,
    /// Start at this asset, from its first `moof`, instead of drawing and
    /// locating: where an earlier `--save` run into the same directory
    /// stopped.
    pub resume_from: Option<u64>,
    /// The wall-clock time when the machine's clock reads zero, µs since
    /// the Unix epoch: what `--clock wall` is measured from when the
    /// machine locates on a static host itself.
    pub epoch_us: u64,
}

/// Why a run stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stopped {
    /// After the last asset of an ended transmission.
    #[default]
    Ended,
    /// The output's reader went away.
    Closed,
    /// It had followed for `run_for`.
    Time,
}

/// What a follow run did: the CLI's summary line and `--report`'s JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// The id the server issued this viewer (the `--client` sent, if no
    /// answer carried one).
    pub client: String,
    /// The advice the backset was drawn from (with `--backset`, the first
    /// answer's).
    pub recommended_s: f64,
    pub maximum_s: f64,
    /// The distribution drawn from; none when the backset was given.
    pub distribution: Option<String>,
    /// The backset drawn, or given.
    pub drawn_s: f64,
    /// What `locate` achieved: the entry point's distance behind the live
    /// edge (or the wall clock).
    pub achieved_s: f64,
    pub first_sequence: u64,
    pub last_sequence: u64,
    /// Times the virtual playhead reached the end of the media written.
    pub stalls: u32,
    pub stalled_s: f64,
    /// The probe's throughput, bit/s.
    pub probe_throughput_bps: Option<f64>,
    /// All the bits of its asset fetches (the probe included) over all the
    /// time they took, bit/s.
    pub throughput_bps: Option<f64>,
    /// The buffer when it stopped, s.
    pub buffer_s: f64,
    /// How long it ran, s.
    pub followed_s: f64,
    pub stopped: Stopped,
}

/// What the machine waits for.
#[derive(Debug)]
enum Awaiting {
    Reply(Request),
    /// The end of a backoff, then the request again.
    Retry(Request),
    Written(Then),
    /// The end of a poll interval, then the parameters again.
    Poll,
    Stopped,
}

/// What follows a write.
#[derive(Debug, Clone, Copy)]
enum Then {
    /// The init is out: the entry point's fragments next.
    Fragments,
    /// The first asset's fragments are out, this much media: playback
    /// starts; follow.
    Following { media_s: f64 },
    /// A following asset is out: the one after it.
    Advance { media_s: f64 },
}

/// What a `/backset.json` answer is for.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stage {
    /// The first: the shape and an id.
    Opening,
    /// After the probe: the advice to draw from.
    Advising,
    /// While following: has the window moved, has the transmission ended.
    Following,
}

/// What the first parameters said.
#[derive(Debug)]
struct Shape {
    naming: Naming,
    asset_duration_s: f64,
    poll: Duration,
}

/// This viewer's own measurements of its asset fetches.
#[derive(Debug, Default)]
struct Meter {
    latest_bps: Option<f64>,
    bits: f64,
    seconds: f64,
}

impl Meter {
    fn sample(&mut self, bytes: usize, took: Duration) {
        let s = took.as_secs_f64();
        // Nothing to learn from an empty body or an untimed fetch.
        if bytes == 0 || s <= 0.0 {
            return;
        }
        let bits = bytes as f64 * 8.0;
        self.latest_bps = Some(bits / s);
        self.bits += bits;
        self.seconds += s;
    }

    fn mean_bps(&self) -> Option<f64> {
        (self.seconds > 0.0).then(|| self.bits / self.seconds)
    }
}

pub struct Machine {
    config: Config,
    /// The server's root, ending in `/`.
    base: String,
    /// The id sent: `--client` until the server issues one.
    id: String,
    awaiting: Awaiting,
    stage: Stage,
    /// When the request in flight was first tried, and the next backoff.
    tried_since: Duration,
    backoff: Duration,
    shape: Option<Shape>,
    located: Option<Located>,
    init: Vec<u8>,
    /// Media in the first asset from the entry point on, s.
    first_media_s: f64,
    /// The next asset to fetch.
    next: u64,
    /// The latest parameters' word on the transmission.
    ended: bool,
    live_edge: u64,
    live_edge_s: f64,
    /// A static host (no `/backset.json`): what its files said.
    host: Option<Host>,
    /// With `--save`, the entry point's offset in the first asset, which is
    /// fetched whole.
    entry: Option<u64>,
    playback: Playback,
    meter: Meter,
    /// A stall happened that no request has told the server of yet.
    starved_untold: bool,
    report: Report,
    said: Vec<String>,
}

impl Machine {
    pub fn new(config: Config) -> Machine {
        let base = if config.url.ends_with('/') {
            config.url.clone()
        } else {
            format!("{}/", config.url)
        };
        Machine {
            id: config.client.clone(),
            report: Report {
                client: config.client.clone(),
                ..Report::default()
            },
            config,
            base,
            awaiting: Awaiting::Stopped,
            stage: Stage::Opening,
            tried_since: Duration::ZERO,
            backoff: RETRY_FIRST,
            shape: None,
            located: None,
            init: Vec::new(),
            first_media_s: 0.0,
            next: 0,
            ended: false,
            live_edge: 0,
            live_edge_s: 0.0,
            host: None,
            entry: None,
            playback: Playback::default(),
            meter: Meter::default(),
            starved_untold: false,
            said: Vec::new(),
        }
    }

    /// The server's root, ending in `/`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The first action: ask for the backset parameters.
    pub fn start(&mut self, now: Duration) -> Action {
        self.fetch(now, Request::Params)
    }

    /// The lines to log since the last call, without the `backset: ` prefix.
    pub fn said(&mut self) -> Vec<String> {
        std::mem::take(&mut self.said)
    }

    /// Takes what happened at `now` and says what to do next. An error ends
    /// the run: the server gave no stream, an unexpected answer, a
    /// distribution this client does not know, or it stayed unreachable
    /// past `retry_for`.
    pub fn handle(&mut self, now: Duration, input: Input) -> Result<Action> {
        let awaiting = std::mem::replace(&mut self.awaiting, Awaiting::Stopped);
        if matches!(awaiting, Awaiting::Stopped) {
            return Err(unexpected(&awaiting, &input));
        }
        // Past the end of `run_for` (a fetch can end after it): the report
        // describes the run up to that end, what came later is dropped.
        if let Some(end) = self.config.run_for.filter(|&end| now >= end) {
            self.watch(end);
            self.said
                .push(format!("followed for {:.3} s; stopping", end.as_secs_f64()));
            return Ok(self.stop(end, Stopped::Time));
        }
        self.watch(now);
        match (awaiting, input) {
            (Awaiting::Reply(request), Input::Reply(reply)) => self.replied(now, request, reply),
            (Awaiting::Retry(request), Input::Woke) => Ok(self.send(now, request)),
            (Awaiting::Poll, Input::Woke) => Ok(self.ask_params(now)),
            (Awaiting::Written(_), Input::Closed) => Ok(self.stop(now, Stopped::Closed)),
            (Awaiting::Written(then), Input::Written) => self.written(now, then),
            (awaiting, input) => Err(unexpected(&awaiting, &input)),
        }
    }

    /// Looks at the virtual playhead: a stall is logged once, when first
    /// seen. After the last asset of an ended transmission the buffer runs
    /// out by design.
    fn watch(&mut self, now: Duration) {
        if self.finished() || !self.playback.ran_dry(now.as_secs_f64()) {
            return;
        }
        self.starved_untold = true;
        let waiting = self.shape.as_ref().map(|s| s.naming.name(self.next));
        self.said.push(format!(
            "stall: the buffer ran dry after {:.3} s of playback, waiting for {}",
            self.playback.played_s(now.as_secs_f64()),
            waiting.unwrap_or_default()
        ));
    }

    /// Whether no asset is left to follow.
    fn finished(&self) -> bool {
        self.ended && self.next > self.live_edge
    }

    fn stop(&mut self, now: Duration, why: Stopped) -> Action {
        self.awaiting = Awaiting::Stopped;
        let now_s = now.as_secs_f64();
        let report = &mut self.report;
        report.stopped = why;
        report.stalls = self.playback.stalls();
        report.stalled_s = self.playback.stalled_s(now_s);
        report.buffer_s = self.playback.buffer_s(now_s).unwrap_or(0.0);
        report.throughput_bps = self.meter.mean_bps();
        report.followed_s = now_s;
        Action::Stop(report.clone())
    }

    /// A new request: its retry budget starts now.
    fn fetch(&mut self, now: Duration, request: Request) -> Action {
        self.tried_since = now;
        self.backoff = RETRY_FIRST;
        self.send(now, request)
    }

    fn send(&mut self, now: Duration, request: Request) -> Action {
        let cmcd = self.cmcd(now);
        self.awaiting = Awaiting::Reply(request.clone());
        Action::Fetch(Fetch { request, cmcd })
    }

    /// What this viewer says of itself on a request made at `now`.
    fn cmcd(&mut self, now: Duration) -> Cmcd {
        let now_s = now.as_secs_f64();
        let starving = self.playback.starved(now_s);
        Cmcd {
            sid: Some(self.id.clone()),
            mtp_kbps: self
                .meter
                .latest_bps
                .map(|bps| (bps / 1000.0).round() as u64),
            bl_ms: self
                .playback
                .buffer_s(now_s)
                .map(|s| (s * 1000.0).round() as u64),
            bs: std::mem::take(&mut self.starved_untold) || starving,
            su: !self.playback.started() || starving,
        }
    }

    fn write(&mut self, bytes: Vec<u8>, then: Then) -> Action {
        self.awaiting = Awaiting::Written(then);
        Action::Write(bytes)
    }

    /// Waits until `at`, or until the end of `run_for` if that comes first.
    fn wait_until(&self, at: Duration) -> Action {
        Action::WaitUntil(self.config.run_for.map_or(at, |end| at.min(end)))
    }

    /// Waits and tries again, doubling the wait, until `retry_for` has
    /// passed since the request was first tried.
    fn failed(&mut self, now: Duration, request: Request, why: String) -> Result<Action> {
        if now.saturating_sub(self.tried_since) > self.config.retry_for {
            return Err(Error::Network(format!(
                "giving up after {:?}: {why}",
                self.config.retry_for
            )));
        }
        let delay = self.backoff;
        self.said.push(format!("{why}; retrying in {delay:?}"));
        self.backoff = (delay * 2).min(RETRY_MAX);
        self.awaiting = Awaiting::Retry(request);
        Ok(self.wait_until(now + delay))
    }

    /// A reply: a failure is retried; media timed on the way.
    fn replied(&mut self, now: Duration, request: Request, reply: Reply) -> Result<Action> {
        match reply {
            Reply::Failed(why) => self.failed(now, request, why),
            Reply::NotFound => self.answered(now, request, None, None),
            Reply::TooLong => Err(self.too_long(&request)),
            Reply::Body { bytes, .. } if bytes.len() as u64 > request.limit() => {
                Err(self.too_long(&request))
            }
            Reply::Body { bytes, took, size } => {
                if request.measures() {
                    self.meter.sample(bytes.len(), took);
                }
                self.answered(now, request, Some(bytes), size)
            }
        }
    }

    /// An answer: a body (and the whole file's size if said), or `None`
    /// for a 404.
    fn answered(
        &mut self,
        now: Duration,
        request: Request,
        body: Option<Vec<u8>>,
        size: Option<u64>,
    ) -> Result<Action> {
        match request {
            Request::Params => self.params(now, body),
            Request::Probe { name } => Ok(self.probed(now, &name, body.is_some())),
            Request::Locate { .. } => {
                let body = body.ok_or_else(|| self.no_stream())?;
                let located = self.parse(&request, &body)?;
                let naming = &self
                    .shape
                    .as_ref()
                    .ok_or_else(|| internal("parameters"))?
                    .naming;
                trust::located(&located, naming).map_err(|why| self.bad_answer(&request, why))?;
                self.located(now, located)
            }
            Request::Header { asset, .. } => self.header(asset, body),
            Request::From { asset, .. } => {
                let body = body.ok_or_else(|| vanished(&asset))?;
                let media_s = self.first_media_s;
                Ok(self.write(body, Then::Following { media_s }))
            }
            Request::Asset { name } => self.asset(now, name, body),
            Request::Descriptor => self.descriptor_read(now, body),
            Request::IndexHead => self.head_read(now, body, size),
            Request::StoreHead { .. } => {
                let body = body.ok_or_else(|| self.no_stream())?;
                let view = View::from_store_head(&body);
                self.view_read(now, &request, view)
            }
            Request::Record { position } => {
                let body = body.ok_or_else(|| self.no_stream())?;
                self.view_mut()?.add_record(position, &body);
                self.static_step(now)
            }
            Request::ChunkRecord { position, .. } => self.chunk_read(now, request, position, body),
            Request::Maps { .. } => self.maps_read(now, request, body),
        }
    }

    /// A `/backset.json` answer, for what it was asked.
    fn params(&mut self, now: Duration, body: Option<Vec<u8>>) -> Result<Action> {
        let params = match body {
            Some(body) => {
                let params = self.parse::<Params>(&Request::Params, &body)?;
                trust::params(&params).map_err(|why| self.bad_answer(&Request::Params, why))?;
                Some(params)
            }
            None if self.stage == Stage::Following => None,
            None if self.stage == Stage::Opening => return Ok(self.go_static(now)),
            None => return Err(self.no_stream()),
        };
        self.take_params(now, params)
    }

    /// Parameters, from a server or made from a static host's files, for
    /// what they were asked.
    fn take_params(&mut self, now: Duration, params: Option<Params>) -> Result<Action> {
        if let Some(params) = &params {
            self.adopt(params);
        }
        match (self.stage, params) {
            (Stage::Opening, Some(params)) => self.opened(now, &params),
            (Stage::Advising, Some(params)) => self.advised(now, &params),
            (_, params) => self.polled(now, params.map(|p| p.first_sequence)),
        }
    }

    /// What every answer says: the viewer's id (a restarted server issues
    /// a new one), and whether the transmission has ended.
    fn adopt(&mut self, params: &Params) {
        if !params.client.is_empty() && params.client != self.id {
            self.said
                .push(format!("the server knows this viewer as {}", params.client));
            self.id = params.client.clone();
            self.report.client = params.client.clone();
        }
        self.ended = params.ended;
        self.live_edge = params.live_edge_sequence;
        self.live_edge_s = params.live_edge_s;
    }

    fn no_stream(&self) -> Error {
        Error::Network(format!("{}: no stream published there yet", self.base))
    }

    fn parse<T: for<'de> serde::Deserialize<'de>>(
        &self,
        request: &Request,
        body: &[u8],
    ) -> Result<T> {
        serde_json::from_slice(body)
            .map_err(|e| self.bad_answer(request, format!("unexpected answer: {e}")))
    }

    /// An answer outside the protocol, named with the URL it came from.
    fn bad_answer(&self, request: &Request, why: impl std::fmt::Display) -> Error {
        Error::BadAnswer(format!("{}{}: {why}", self.base, request.path()))
    }

    fn too_long(&self, request: &Request) -> Error {
        let limit = request.limit();
        // A whole file where a range was asked: a host that ignores Range.
        let hint = match request {
            Request::IndexHead
            | Request::Record { .. }
            | Request::ChunkRecord { .. }
            | Request::Header { .. } => " (does the host answer Range requests?)",
            _ => "",
        };
        self.bad_answer(
            request,
            format!("the answer is longer than {limit} bytes; refused{hint}"),
        )
    }

    /// The first parameters: the stream's shape; then the probe, or with a
    /// given backset straight to `locate`.
    fn opened(&mut self, now: Duration, params: &Params) -> Result<Action> {
        let shape = Shape {
            naming: Naming::new(&params.prefix),
            asset_duration_s: params.asset_duration_s,
            // Often enough to fetch an asset soon after it is published.
            poll: Duration::from_secs_f64((params.asset_duration_s / 4.0).clamp(0.05, 1.0)),
        };
        let probe = shape.naming.name(params.live_edge_sequence);
        self.shape = Some(shape);
        self.report.recommended_s = params.advice.recommended_s;
        self.report.maximum_s = params.advice.maximum_s;
        if let Some(next) = self.config.resume_from {
            return self.resume(now, next);
        }
        match self.config.backset_s {
            Some(backset_s) => self.locate(now, backset_s),
            None => {
                self.stage = Stage::Advising;
                Ok(self.fetch(now, Request::Probe { name: probe }))
            }
        }
    }

    /// Goes on where an earlier `--save` run stopped: asset `next`, whole.
    fn resume(&mut self, now: Duration, next: u64) -> Result<Action> {
        self.stage = Stage::Following;
        self.next = next;
        self.report.first_sequence = next;
        self.report.last_sequence = next;
        let shape = self.shape.as_ref().ok_or_else(|| internal("parameters"))?;
        self.said.push(format!(
            "resuming the saved stream at {}",
            shape.naming.name(next)
        ));
        self.fetch_next(now)
    }

    /// The probe is in (or was gone): ask again, saying what it measured.
    fn probed(&mut self, now: Duration, name: &str, arrived: bool) -> Action {
        self.report.probe_throughput_bps = self.meter.latest_bps.filter(|_| arrived);
        self.said.push(match (arrived, self.meter.latest_bps) {
            (true, Some(bps)) => format!("probe: {name} at {:.3} Mbit/s", bps / 1e6),
            (true, None) => format!("probe: {name} arrived too fast to time"),
            (false, _) => format!("probe: {name} is gone; asking without a measurement"),
        });
        self.ask_params(now)
    }

    /// The advice after the probe: draw from it.
    fn advised(&mut self, now: Duration, params: &Params) -> Result<Action> {
        known_distribution(params)?;
        let drawn = Drawer::for_client(&self.config.client).draw(&params.advice);
        let advice = &params.advice;
        self.report.recommended_s = advice.recommended_s;
        self.report.maximum_s = advice.maximum_s;
        self.report.distribution = Some(DISTRIBUTION.to_string());
        let viewer = &params.viewer;
        self.said.push(format!(
            "advised {:.3} s (maximum {:.3} s) for a throughput of {} ({})",
            advice.recommended_s,
            advice.maximum_s,
            viewer
                .throughput_bps
                .map_or("none".into(), |bps| format!("{:.3} Mbit/s", bps / 1e6)),
            if viewer.throughput_source.is_empty() {
                "unmeasured"
            } else {
                &viewer.throughput_source
            },
        ));
        self.locate(now, drawn)
    }

    fn locate(&mut self, now: Duration, backset_s: f64) -> Result<Action> {
        self.report.drawn_s = backset_s;
        self.stage = Stage::Following;
        if let Some(host) = &mut self.host {
            // The machine locates itself, over the files it has read.
            host.doing = Doing::Locate { backset_s };
            self.tried_since = now;
            self.backoff = RETRY_FIRST;
            return self.static_step(now);
        }
        let clock = self.config.clock;
        Ok(self.fetch(now, Request::Locate { backset_s, clock }))
    }

    /// The entry point, as `locate` answered it: fetch the asset's header.
    fn located(&mut self, now: Duration, located: Located) -> Result<Action> {
        let answer = &located.answer;
        self.next = successor(answer.sequence)?;
        self.report.achieved_s = answer.backset;
        self.report.first_sequence = answer.sequence;
        self.report.last_sequence = answer.sequence;
        self.said.push(format!(
            "following {} from {} byte {}: backset drawn {:.3} s, achieved {:.3} s{}",
            self.base,
            located.asset,
            answer.offset,
            self.report.drawn_s,
            answer.backset,
            match self.config.clock {
                Clock::Live => "",
                Clock::Wall => " behind the wall clock",
            }
        ));
        let request = if self.config.save.is_some() {
            // Fetched whole, to be kept whole; written from the entry point.
            self.entry = Some(answer.offset);
            self.next = answer.sequence;
            Request::Asset {
                name: located.asset.clone(),
            }
        } else {
            Request::Header {
                asset: located.asset.clone(),
                len: u64::from(answer.header_len),
            }
        };
        self.located = Some(located);
        Ok(self.fetch(now, request))
    }

    /// The first asset's header: write its init (what precedes the maps);
    /// its maps say how much media follows the entry point.
    fn header(&mut self, asset: String, body: Option<Vec<u8>>) -> Result<Action> {
        let header = body.ok_or_else(|| vanished(&asset))?;
        let Some(maps) = Layout::of(&header).maps else {
            return Err(Error::BadAnswer(format!(
                "{asset}: no maps box in its header"
            )));
        };
        self.init = header[..maps.start].to_vec();
        self.first_media_s = self.entry_media_s(&header);
        Ok(self.write(self.init.clone(), Then::Fragments))
    }

    /// Media time from the entry point to the end of its asset: the
    /// asset's end minus the entry point's timestamp, from its maps (the
    /// asset duration the server gave when they cannot be read).
    fn entry_media_s(&self, header: &[u8]) -> f64 {
        let fallback = self.shape.as_ref().map_or(0.0, |s| s.asset_duration_s);
        let (Ok(maps), Some(located)) = (maps_in(header), &self.located) else {
            return fallback;
        };
        let answer = &located.answer;
        let at = maps
            .entries
            .iter()
            .find(|e| e.offset == answer.offset)
            .map_or(answer.timestamp_ticks, |e| e.timestamp);
        let end = maps.start.saturating_add(maps.duration);
        let media_s = seconds(end.saturating_sub(at), maps.timescale);
        // Maps are the server's word too: an absurd duration is not played.
        if media_s <= trust::LONGEST_ASSET_S {
            media_s
        } else {
            fallback
        }
    }

    fn written(&mut self, now: Duration, then: Then) -> Result<Action> {
        match then {
            Then::Fragments => {
                let located = self
                    .located
                    .as_ref()
                    .ok_or_else(|| internal("entry point"))?;
                let request = Request::From {
                    asset: located.asset.clone(),
                    offset: located.answer.offset,
                };
                Ok(self.fetch(now, request))
            }
            Then::Following { media_s } => {
                self.play(now, media_s);
                self.fetch_next(now)
            }
            Then::Advance { media_s } => {
                self.report.last_sequence = self.next;
                self.next = successor(self.next)?;
                self.play(now, media_s);
                self.fetch_next(now)
            }
        }
    }

    /// Media reached the player: playback starts, or goes on.
    fn play(&mut self, now: Duration, media_s: f64) {
        if let Some(stalled) = self.playback.wrote(now.as_secs_f64(), media_s) {
            self.said
                .push(format!("playing again after {stalled:.3} s stalled"));
        }
    }

    fn fetch_next(&mut self, now: Duration) -> Result<Action> {
        let shape = self.shape.as_ref().ok_or_else(|| internal("parameters"))?;
        let name = shape.naming.name(self.next);
        Ok(self.fetch(now, Request::Asset { name }))
    }

    /// A following asset, or a 404 for it: write its fragments, end, or
    /// wait and poll.
    fn asset(&mut self, now: Duration, name: String, body: Option<Vec<u8>>) -> Result<Action> {
        let shape = self.shape.as_ref().ok_or_else(|| internal("parameters"))?;
        let Some(mut asset) = body else {
            if self.finished() {
                let last = shape.naming.name(self.next.saturating_sub(1));
                self.said
                    .push(format!("the transmission has ended after {last}"));
                return Ok(self.stop(now, Stopped::Ended));
            }
            self.awaiting = Awaiting::Poll;
            return Ok(self.wait_until(now + shape.poll));
        };
        let Some(first_moof) = Layout::of(&asset).first_moof else {
            return Err(Error::BadAnswer(format!("{name}: no moof in it")));
        };
        if self.init.is_empty() {
            return self.first_whole(name, asset, first_moof);
        }
        if first_moof >= self.init.len() && !asset.starts_with(&self.init) {
            self.said.push(format!(
                "warning: {name} has a new initialisation; players may need to restart"
            ));
        }
        let media_s = maps_in(&asset)
            .ok()
            .filter(|m| m.timescale > 0)
            .map(|m| seconds(m.duration, m.timescale))
            .filter(|&s| s <= trust::LONGEST_ASSET_S)
            .unwrap_or(shape.asset_duration_s);
        asset.drain(..first_moof);
        Ok(self.write(asset, Then::Advance { media_s }))
    }

    /// Fresh parameters while waiting: has the next asset expired? Then the
    /// next asset again (whether the transmission ended was adopted).
    fn polled(&mut self, now: Duration, first: Option<u64>) -> Result<Action> {
        // Fallen behind the retained window: go on from its start (every
        // asset opens with a key frame), with a gap.
        if let Some(first) = first {
            if first > self.next {
                // Its first key frame, not the entry point that expired.
                self.entry = None;
                if let Some(shape) = &self.shape {
                    self.said.push(format!(
                        "{} expired before it could be fetched; skipping to {}",
                        shape.naming.name(self.next),
                        shape.naming.name(first)
                    ));
                }
                self.next = first;
            }
        }
        self.fetch_next(now)
    }
}

/// The first asset when it came whole (`--save`, or resuming one): its
/// init, then its fragments from the entry point (or its first `moof`).
impl Machine {
    fn first_whole(&mut self, name: String, asset: Vec<u8>, first_moof: usize) -> Result<Action> {
        let Some(maps) = Layout::of(&asset).maps else {
            return Err(Error::BadAnswer(format!(
                "{name}: no maps box in its header"
            )));
        };
        let from = match self.entry {
            Some(offset) => usize::try_from(offset)
                .ok()
                .filter(|&o| o >= first_moof && o < asset.len())
                .ok_or_else(|| {
                    Error::BadAnswer(format!("{name}: its entry point {offset} is not in it"))
                })?,
            None => first_moof,
        };
        let fallback = self.shape.as_ref().map_or(0.0, |s| s.asset_duration_s);
        let parsed = maps_in(&asset).ok().filter(|m| m.timescale > 0);
        let media_s = match (&self.entry, &parsed) {
            (Some(_), _) => self.entry_media_s(&asset),
            (None, Some(m)) => seconds(m.duration, m.timescale).min(trust::LONGEST_ASSET_S),
            (None, None) => fallback,
        };
        if self.located.is_none() {
            // Resumed: how far behind the live edge it starts.
            if let Some(m) = &parsed {
                self.report.achieved_s =
                    (self.live_edge_s - seconds(m.start, m.timescale)).max(0.0);
            }
        }
        self.init = asset[..maps.start].to_vec();
        let mut out = self.init.clone();
        out.extend_from_slice(&asset[from..]);
        Ok(self.write(out, Then::Advance { media_s }))
    }
}

/// A static host: its files stand for `/backset.json` and `/locate`
/// ([`static_host`]).
impl Machine {
    /// Asks for the parameters: `/backset.json`, or on a static host the
    /// files that stand for it, from `stream.json` on.
    fn ask_params(&mut self, now: Duration) -> Action {
        match &mut self.host {
            Some(host) => {
                host.doing = Doing::Params;
                self.fetch(now, Request::Descriptor)
            }
            None => self.fetch(now, Request::Params),
        }
    }

    /// No `/backset.json` at the root: a plain file server or CDN.
    fn go_static(&mut self, now: Duration) -> Action {
        self.said.push(format!(
            "{}: no backset.json, a static host: reading stream.json and index.bin",
            self.base
        ));
        self.host = Some(Host::new());
        self.fetch(now, Request::Descriptor)
    }

    fn host_mut(&mut self) -> Result<&mut Host> {
        self.host.as_mut().ok_or_else(|| internal("static host"))
    }

    fn view_mut(&mut self) -> Result<&mut View> {
        self.host_mut()?
            .view
            .as_mut()
            .ok_or_else(|| internal("index head"))
    }

    /// `stream.json`. While following, it says all a poll needs (the
    /// window's start) unless the transmission ended: then the index, for
    /// its last asset.
    fn descriptor_read(&mut self, now: Duration, body: Option<Vec<u8>>) -> Result<Action> {
        let body = body.ok_or_else(|| self.no_stream())?;
        let d = static_host::descriptor(&body)
            .map_err(|why| self.bad_answer(&Request::Descriptor, why))?;
        let (first, ended) = (d.first_sequence, d.ended);
        let following = self.stage == Stage::Following;
        let host = self.host_mut()?;
        host.descriptor = Some(d);
        if following && host.doing == Doing::Params && !ended {
            self.ended = false;
            return self.polled(now, Some(first));
        }
        let request = host.head_request();
        Ok(self.send(now, request))
    }

    /// The index's header and first record, and its length.
    fn head_read(
        &mut self,
        now: Duration,
        body: Option<Vec<u8>>,
        size: Option<u64>,
    ) -> Result<Action> {
        let Some(body) = body else {
            // No index.bin: perhaps the index in object storage's form.
            let request = self.host_mut()?.no_index_file();
            let request = request.ok_or_else(|| self.no_stream())?;
            self.said.push(format!(
                "no {}, reading the index as object storage keeps it: {}",
                Request::IndexHead.path(),
                request.path()
            ));
            return Ok(self.send(now, request));
        };
        // The index's length is how many records it holds: a host that
        // does not say it cannot be followed by range.
        let size = size.ok_or_else(|| {
            self.bad_answer(&Request::IndexHead, "no length in its Content-Range")
        })?;
        let view = View::from_head(&body, size);
        self.view_read(now, &Request::IndexHead, view)
    }

    /// A fresh view of the index (from `index.bin`'s first bytes or the
    /// store form's head object) replaces the one held, keeping what was
    /// fetched of the same index.
    fn view_read(
        &mut self,
        now: Duration,
        request: &Request,
        view: std::result::Result<View, String>,
    ) -> Result<Action> {
        let view = view.map_err(|why| self.bad_answer(request, why))?;
        let host = self.host_mut()?;
        match &mut host.view {
            Some(old) => old.refresh(view),
            None => host.view = Some(view),
        }
        self.static_step(now)
    }

    /// A record from one of the store form's chunks. A chunk is immutable,
    /// so gone means retention deleted it as the window moved under the
    /// search: read the window again (a few times, then give up).
    fn chunk_read(
        &mut self,
        now: Duration,
        request: Request,
        position: u64,
        body: Option<Vec<u8>>,
    ) -> Result<Action> {
        let Some(body) = body else {
            return self.gone(now, request, "not found, again and again");
        };
        self.view_mut()?.add_record(position, &body);
        self.host_mut()?.gone = 0;
        self.static_step(now)
    }

    /// What a static host's search needed is not there: the window moved
    /// under it; read it again, a few times, then the host is missing it.
    fn gone(&mut self, now: Duration, request: Request, why: &str) -> Result<Action> {
        let host = self.host_mut()?;
        host.gone += 1;
        if host.gone > 3 {
            return Err(self.bad_answer(&request, why));
        }
        Ok(self.send(now, Request::Descriptor))
    }

    /// An asset's maps for the search; gone means the window moved under
    /// it: read it again (a few times, then the host is missing them).
    fn maps_read(
        &mut self,
        now: Duration,
        request: Request,
        body: Option<Vec<u8>>,
    ) -> Result<Action> {
        let Some(body) = body else {
            let why = "not found, again and again: does this host publish each asset's maps?";
            return self.gone(now, request, why);
        };
        let maps = Maps::decode(&body).map_err(|why| self.bad_answer(&request, why))?;
        let view = self.view_mut()?;
        if maps.timescale != view.timescale {
            let why = format!(
                "timescale {} is not the index's {}",
                maps.timescale, view.timescale
            );
            return Err(self.bad_answer(&request, why));
        }
        view.add_maps(maps);
        self.host_mut()?.gone = 0;
        self.static_step(now)
    }

    /// Runs what the static host's files are read for, as far as they go:
    /// fetches what it lacks, or acts on the parameters or entry point.
    fn static_step(&mut self, now: Duration) -> Result<Action> {
        let throughput = self.meter.latest_bps;
        let client = self.id.clone();
        let now_us = self.config.epoch_us.saturating_add(now.as_micros() as u64);
        let clock = self.config.clock;
        let Some(Host {
            descriptor: Some(d),
            view: Some(view),
            doing,
            ..
        }) = &mut self.host
        else {
            return Err(internal("static host's files"));
        };
        let naming = Naming::new(&d.prefix);
        let need = match *doing {
            Doing::Params => match view.params(d, &client, throughput) {
                Ok(Some(params)) => {
                    trust::params(&params)
                        .map_err(|why| self.bad_answer(&Request::IndexHead, why))?;
                    return self.take_params(now, Some(params));
                }
                Ok(None) => {
                    let why = format!("{}: no asset published yet", self.base);
                    return self.failed(now, Request::Descriptor, why);
                }
                Err(Err(why)) => return Err(self.bad_answer(&Request::IndexHead, why)),
                Err(Ok(need)) => need,
            },
            Doing::Locate { backset_s } => {
                let us = (backset_s * 1e6).round() as u64;
                let target = match clock {
                    Clock::Live => Target::Backset { us },
                    Clock::Wall => Target::WallBackset { us, now_us },
                };
                match view.locate(d, target) {
                    Ok(Ok(answer)) => {
                        let located = Located {
                            asset: naming.name(answer.sequence),
                            answer,
                        };
                        trust::located(&located, &naming)
                            .map_err(|why| self.bad_answer(&Request::IndexHead, why))?;
                        return self.located(now, located);
                    }
                    Ok(Err(e)) => return Err(Error::Network(format!("{}: {e}", self.base))),
                    Err(need) => need,
                }
            }
        };
        let request = match need {
            Need::Record(position) => view
                .record_request(position)
                .map_err(|why| Error::Internal(format!("follow: {why}")))?,
            Need::Maps(record) => Request::Maps {
                name: naming.maps_name(record.sequence),
                len: (Maps::encoded_len(record.entries as usize) as u64).min(trust::HEADER_LIMIT),
            },
        };
        Ok(self.send(now, request))
    }
}

/// Advice in a distribution this client does not draw from is refused: it
/// would be misread. A server that names none predates the names.
fn known_distribution(params: &Params) -> Result<()> {
    match params.distribution.as_deref() {
        None => Ok(()),
        Some(name) => crate::policy::draw::known_distribution(name)
            .map_err(|e| Error::Network(format!("the server's advice: {e}"))),
    }
}

fn unexpected(awaiting: &Awaiting, input: &Input) -> Error {
    Error::Internal(format!(
        "follow: {} while awaiting {awaiting:?}",
        match input {
            Input::Reply(_) => "a reply",
            Input::Written => "a write",
            Input::Closed => "a closed output",
            Input::Woke => "a wake-up",
        }
    ))
}

/// A step taken before what it needs: a bug in the machine, not an input.
fn internal(missing: &str) -> Error {
    Error::Internal(format!("follow: went on without the {missing}"))
}

/// The sequence after `sequence`: none after 2^64 − 1, where wrapping to 0
/// would replay the stream from its start, forever.
fn successor(sequence: u64) -> Result<u64> {
    sequence.checked_add(1).ok_or_else(|| {
        Error::BadAnswer(format!(
            "asset sequence {sequence} has no successor: the server's sequences are forged or wrapped"
        ))
    })
}

fn vanished(asset: &str) -> Error {
    Error::Network(format!("{asset} vanished before it could be read"))
}
