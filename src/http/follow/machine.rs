//! The client's decisions, without I/O: a [`Machine`] is fed what happened
//! (an answer arrived, bytes were written, a wait ended) and the time it
//! happened, and says what to do next ([`Action`]): fetch something, write
//! bytes, wait until a time, or stop. It never reads a clock, sleeps or
//! touches a socket, so its tests run whole sessions on a fake clock.
//!
//! The session: the backset parameters, a backset (drawn unless given),
//! `locate` for the entry point, the asset's header (init and maps) then the
//! asset from the entry point's `moof` on; then every following asset by
//! predictable name, polled until published. Meanwhile it counts stalls,
//! skips to the window's start when the next asset expired, ends after the
//! last asset of an ended transmission, and retries an unreachable server
//! with backoff until `retry_for` has passed.

use std::time::Duration;

use crate::http::api::{Located, Params};
use crate::policy::draw::Drawer;
use crate::stream::maps_reader::Layout;
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
    pub client: String,
    /// Use this backset (s) instead of drawing one.
    pub backset_s: Option<f64>,
    /// How long to keep retrying an unreachable server.
    pub retry_for: Duration,
}

/// What a follow run did, for the caller to report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub backset_drawn_s: f64,
    pub backset_achieved_s: f64,
    pub first_sequence: u64,
    pub last_sequence: u64,
    pub stalls: u32,
    /// True when the output was closed by its reader.
    pub output_closed: bool,
}

/// A GET the driver makes, relative to the server's root.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// `backset.json`: this client's parameters and the stream's shape.
    Params,
    /// `locate` for a backset, clamped to the retained window.
    Locate { backset_s: f64 },
    /// An asset's first `len` bytes: its init and its maps.
    Header { asset: String, len: u64 },
    /// An asset from byte `offset` (the entry point's `moof`) on.
    From { asset: String, offset: u64 },
    /// A whole asset.
    Asset { name: String },
}

impl Request {
    /// The path and query, relative to the server's root.
    pub fn path(&self) -> String {
        match self {
            Request::Params => "backset.json".into(),
            Request::Locate { backset_s } => format!("locate?backset={backset_s:.6}s&clamp=1"),
            Request::Header { asset, .. } | Request::From { asset, .. } => asset.clone(),
            Request::Asset { name } => name.clone(),
        }
    }

    /// The `Range` header's value, if the request wants part of an asset.
    pub fn range(&self) -> Option<String> {
        match self {
            Request::Header { len, .. } => Some(format!("bytes=0-{}", len.saturating_sub(1))),
            Request::From { offset, .. } => Some(format!("bytes={offset}-")),
            _ => None,
        }
    }
}

/// How a request went.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// 200 or 206, and the whole body.
    Body(Vec<u8>),
    /// 404: an answer (not published yet, expired), not a failure.
    NotFound,
    /// Unreachable, another status, or a body cut short: retried.
    Failed(String),
}

/// What happened, fed to [`Machine::handle`].
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The answer to the last [`Action::Fetch`].
    Reply(Reply),
    /// The last [`Action::Write`] went through.
    Written,
    /// The output's reader went away.
    Closed,
    /// The time of the last [`Action::WaitUntil`] came.
    Woke,
}

/// What to do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Fetch(Request),
    Write(Vec<u8>),
    /// Wait until this time (on the clock [`Machine::handle`] is fed).
    WaitUntil(Duration),
    /// The run is over: the transmission ended or the output was closed.
    Stop(Report),
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
    /// The first asset is out: follow.
    Following,
    /// A following asset is out: the one after it.
    Advance,
}

/// What the parameters said when the run started.
#[derive(Debug)]
struct Shape {
    naming: Naming,
    asset_duration_s: f64,
    poll: Duration,
}

pub struct Machine {
    config: Config,
    /// The server's root, ending in `/`.
    base: String,
    awaiting: Awaiting,
    /// When the request in flight was first tried, and the next backoff.
    tried_since: Duration,
    backoff: Duration,
    shape: Option<Shape>,
    located: Option<Located>,
    init: Vec<u8>,
    /// The next asset to fetch.
    next: u64,
    ended: bool,
    waiting_since: Duration,
    stalled: bool,
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
            config,
            base,
            awaiting: Awaiting::Stopped,
            tried_since: Duration::ZERO,
            backoff: RETRY_FIRST,
            shape: None,
            located: None,
            init: Vec::new(),
            next: 0,
            ended: false,
            waiting_since: Duration::ZERO,
            stalled: false,
            report: Report::default(),
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
    /// the run: the server gave no stream, an unexpected answer, or it stayed
    /// unreachable past `retry_for`.
    pub fn handle(&mut self, now: Duration, input: Input) -> Result<Action> {
        match (
            std::mem::replace(&mut self.awaiting, Awaiting::Stopped),
            input,
        ) {
            (Awaiting::Reply(request), Input::Reply(Reply::Failed(why))) => {
                self.failed(now, request, why)
            }
            (Awaiting::Reply(request), Input::Reply(Reply::Body(body))) => {
                self.answered(now, request, Some(body))
            }
            (Awaiting::Reply(request), Input::Reply(Reply::NotFound)) => {
                self.answered(now, request, None)
            }
            (Awaiting::Retry(request), Input::Woke) => Ok(self.send(request)),
            (Awaiting::Poll, Input::Woke) => Ok(self.fetch(now, Request::Params)),
            (Awaiting::Written(_), Input::Closed) => {
                self.report.output_closed = true;
                Ok(Action::Stop(self.report.clone()))
            }
            (Awaiting::Written(then), Input::Written) => self.written(now, then),
            (awaiting, input) => Err(Error::Internal(format!(
                "follow: {} while awaiting {awaiting:?}",
                match input {
                    Input::Reply(_) => "a reply",
                    Input::Written => "a write",
                    Input::Closed => "a closed output",
                    Input::Woke => "a wake-up",
                }
            ))),
        }
    }

    /// A new request: its retry budget starts now.
    fn fetch(&mut self, now: Duration, request: Request) -> Action {
        self.tried_since = now;
        self.backoff = RETRY_FIRST;
        self.send(request)
    }

    fn send(&mut self, request: Request) -> Action {
        self.awaiting = Awaiting::Reply(request.clone());
        Action::Fetch(request)
    }

    fn write(&mut self, bytes: Vec<u8>, then: Then) -> Action {
        self.awaiting = Awaiting::Written(then);
        Action::Write(bytes)
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
        Ok(Action::WaitUntil(now + delay))
    }

    /// An answer: a body, or `None` for a 404.
    fn answered(
        &mut self,
        now: Duration,
        request: Request,
        body: Option<Vec<u8>>,
    ) -> Result<Action> {
        match request {
            Request::Params if self.shape.is_none() => {
                let body = body.ok_or_else(|| self.no_stream())?;
                let params = self.parse(&request, &body)?;
                Ok(self.begin(now, params))
            }
            Request::Params => self.polled(now, body),
            Request::Locate { .. } => {
                let body = body.ok_or_else(|| self.no_stream())?;
                let located = self.parse(&request, &body)?;
                Ok(self.located(now, located))
            }
            Request::Header { asset, .. } => self.header(asset, body),
            Request::From { asset, .. } => {
                let body = body.ok_or_else(|| vanished(&asset))?;
                Ok(self.write(body, Then::Following))
            }
            Request::Asset { name } => self.asset(now, name, body),
        }
    }

    fn no_stream(&self) -> Error {
        Error::Network(format!("{}: no stream published there yet", self.base))
    }

    fn parse<T: for<'de> serde::Deserialize<'de>>(
        &self,
        request: &Request,
        body: &[u8],
    ) -> Result<T> {
        serde_json::from_slice(body).map_err(|e| {
            Error::Network(format!(
                "{}{}: unexpected answer: {e}",
                self.base,
                request.path()
            ))
        })
    }

    /// The first parameters: the stream's shape and this client's backset.
    fn begin(&mut self, now: Duration, params: Params) -> Action {
        let drawn = match self.config.backset_s {
            Some(b) => b,
            None => Drawer::for_client(&self.config.client).draw(&params.advice),
        };
        self.report.backset_drawn_s = drawn;
        self.ended = params.ended;
        self.shape = Some(Shape {
            naming: Naming::new(&params.prefix),
            asset_duration_s: params.asset_duration_s,
            // Often enough to fetch an asset soon after it is published.
            poll: Duration::from_secs_f64((params.asset_duration_s / 4.0).clamp(0.05, 1.0)),
        });
        self.fetch(now, Request::Locate { backset_s: drawn })
    }

    /// The entry point, as `locate` answered it: fetch the asset's header.
    fn located(&mut self, now: Duration, located: Located) -> Action {
        let answer = &located.answer;
        self.report.backset_achieved_s = answer.backset;
        self.report.first_sequence = answer.sequence;
        self.report.last_sequence = answer.sequence;
        self.next = answer.sequence + 1;
        self.said.push(format!(
            "following {} from {} byte {}: backset drawn {:.3} s, achieved {:.3} s",
            self.base, located.asset, answer.offset, self.report.backset_drawn_s, answer.backset
        ));
        let request = Request::Header {
            asset: located.asset.clone(),
            len: u64::from(answer.header_len),
        };
        self.located = Some(located);
        self.fetch(now, request)
    }

    /// The first asset's header: write its init (what precedes the maps).
    fn header(&mut self, asset: String, body: Option<Vec<u8>>) -> Result<Action> {
        let header = body.ok_or_else(|| vanished(&asset))?;
        let Some(maps) = Layout::of(&header).maps else {
            return Err(Error::BadFile {
                path: asset.into(),
                reason: "no maps box in its header".into(),
            });
        };
        self.init = header[..maps.start].to_vec();
        Ok(self.write(self.init.clone(), Then::Fragments))
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
            Then::Following | Then::Advance => {
                if matches!(then, Then::Advance) {
                    self.report.last_sequence = self.next;
                    self.next += 1;
                }
                self.waiting_since = now;
                self.stalled = false;
                self.fetch_next(now)
            }
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
            if self.ended {
                let last = shape.naming.name(self.next.saturating_sub(1));
                self.said
                    .push(format!("the transmission has ended after {last}"));
                return Ok(Action::Stop(self.report.clone()));
            }
            // An asset is due every asset duration; longer is a stall.
            let waited = now.saturating_sub(self.waiting_since).as_secs_f64();
            if !self.stalled && waited > shape.asset_duration_s * 1.5 {
                self.stalled = true;
                self.report.stalls += 1;
                self.said.push(format!("stall: waiting for {name}"));
            }
            self.awaiting = Awaiting::Poll;
            return Ok(Action::WaitUntil(now + shape.poll));
        };
        let Some(first_moof) = Layout::of(&asset).first_moof else {
            return Err(Error::BadFile {
                path: name.into(),
                reason: "no moof in it".into(),
            });
        };
        if first_moof >= self.init.len() && !asset.starts_with(&self.init) {
            self.said.push(format!(
                "warning: {name} has a new initialisation; players may need to restart"
            ));
        }
        asset.drain(..first_moof);
        Ok(self.write(asset, Then::Advance))
    }

    /// Fresh parameters while waiting: has the transmission ended, has the
    /// next asset expired? Then the next asset again.
    fn polled(&mut self, now: Duration, body: Option<Vec<u8>>) -> Result<Action> {
        if let Some(body) = body {
            let params: Params = self.parse(&Request::Params, &body)?;
            self.ended = params.ended && params.live_edge_sequence < self.next;
            // Fallen behind the retained window: go on from its start (every
            // asset opens with a key frame), with a gap.
            if params.first_sequence > self.next {
                if let Some(shape) = &self.shape {
                    self.said.push(format!(
                        "{} expired before it could be fetched; skipping to {}",
                        shape.naming.name(self.next),
                        shape.naming.name(params.first_sequence)
                    ));
                }
                self.next = params.first_sequence;
            }
        }
        self.fetch_next(now)
    }
}

/// A step taken before what it needs: a bug in the machine, not an input.
fn internal(missing: &str) -> Error {
    Error::Internal(format!("follow: went on without the {missing}"))
}

fn vanished(asset: &str) -> Error {
    Error::Network(format!("{asset} vanished before it could be read"))
}
