//! The machine's hands: executes each [`Action`] with ureq, the process's
//! output, `std::thread::sleep` and an `Instant`, and feeds the outcome back
//! with the time it came. It also times each fetch, from the request sent to
//! the body's last byte read, for the machine to measure the link. Every
//! decision lives in the machine.
//!
//! Nothing a server does makes it hang or grow: a body is read no further
//! than its request's limit (one byte more, to know it is over), a
//! `Content-Length` over the limit is refused before reading, and every
//! request, its body included, must end within [`TIMEOUT`] (a server that
//! sends its headers then trickles is cut there, and retried).

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use super::machine::{Config, Machine, Report, Stopped};
use super::protocol::{Action, Fetch, Input, Reply, Request};
use super::save::Saver;
use crate::{Error, Result};

/// The longest a request may take, from sending it to its body's last byte.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Follows the stream at `config.url`, writing it to `out` and what
/// happens to `log`, until the transmission ends, `out` is closed or
/// `config.run_for` has passed. With `config.save`, every whole asset
/// fetched is also kept there ([`Saver`]), and a directory an earlier run
/// saved into is continued from its next asset.
pub fn follow(config: &Config, out: &mut dyn Write, log: &mut dyn Write) -> Result<Report> {
    let mut saver = config.save.as_deref().map(Saver::open).transpose()?;
    let mut config = config.clone();
    config.resume_from = config.resume_from.or(saver.as_ref().and_then(Saver::next));
    config.epoch_us = now_us();
    let mut machine = Machine::new(config);
    let http = Http::new(machine.base(), TIMEOUT);
    let clock = Instant::now();
    let mut next = Ok(machine.start(Duration::ZERO));
    loop {
        // What the machine said comes out before an error it ends with.
        for line in machine.said() {
            let _ = writeln!(log, "backset: {line}");
        }
        let input = match next? {
            Action::Fetch(fetch) => {
                let reply = http.get(&fetch);
                if let Some(saver) = saver.as_mut() {
                    keep(saver, &fetch.request, &reply)?;
                }
                Input::Reply(reply)
            }
            Action::Write(bytes) => emit(out, &bytes)?,
            Action::WaitUntil(at) => {
                std::thread::sleep(at.saturating_sub(clock.elapsed()));
                Input::Woke
            }
            Action::Stop(report) => {
                if let Some(saver) = saver.as_mut().filter(|_| report.stopped == Stopped::Ended) {
                    saver.ended(now_us())?;
                }
                return Ok(report);
            }
        };
        next = machine.handle(clock.elapsed(), input);
    }
}

/// What `--save` keeps of an answer: every whole asset (not the probe,
/// which is not in sequence), and the host's `stream.json` for the shape
/// of the saved one.
fn keep(saver: &mut Saver, request: &Request, reply: &Reply) -> Result<()> {
    let Reply::Body { bytes, .. } = reply else {
        return Ok(());
    };
    match request {
        Request::Asset { name } => saver.save(name, bytes, now_us()),
        Request::Descriptor => {
            if let Ok(d) = super::static_host::descriptor(bytes) {
                saver.source(&d);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

pub(super) struct Http {
    agent: ureq::Agent,
    base: String,
}

impl Http {
    /// An agent for `base` whose every request ends within `timeout`.
    pub(super) fn new(base: &str, timeout: Duration) -> Http {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .build()
            .into();
        Http {
            agent,
            base: base.to_string(),
        }
    }

    /// One GET, timed; a 404 is an answer, anything else but 200/206 a
    /// failure; a body over the request's limit is [`Reply::TooLong`].
    pub(super) fn get(&self, fetch: &Fetch) -> Reply {
        let url = format!("{}{}", self.base, fetch.request.path());
        let mut call = self.agent.get(&url);
        for (name, value) in fetch.headers() {
            call = call.header(name, value);
        }
        let sent = Instant::now();
        match call.call() {
            Ok(mut response) => match response.status().as_u16() {
                code @ (200 | 206) => {
                    let range = response
                        .headers()
                        .get("content-range")
                        .and_then(|v| v.to_str().ok())
                        .and_then(range_total);
                    let limit = fetch.request.limit();
                    if response.body().content_length().is_some_and(|n| n > limit) {
                        return Reply::TooLong;
                    }
                    let mut bytes = Vec::new();
                    let mut body = response.body_mut().as_reader().take(limit + 1);
                    match body.read_to_end(&mut bytes) {
                        Ok(n) if n as u64 > limit => Reply::TooLong,
                        Ok(n) => Reply::Body {
                            bytes,
                            took: sent.elapsed(),
                            size: if code == 206 { range } else { Some(n as u64) },
                        },
                        Err(e) => Reply::Failed(format!("reading {url}: {e}")),
                    }
                }
                404 => Reply::NotFound,
                code => Reply::Failed(format!("{url}: HTTP {code}")),
            },
            Err(e) => Reply::Failed(format!("{url}: {e}")),
        }
    }
}

/// The whole file's length in a `Content-Range: bytes 0-127/4096`; `None`
/// when the length is unknown (`*`) or the header is malformed.
fn range_total(value: &str) -> Option<u64> {
    let (_, total) = value.trim().strip_prefix("bytes ")?.rsplit_once('/')?;
    total.trim().parse().ok()
}

/// Writes; a reader that went away ends the run cleanly.
fn emit(out: &mut dyn Write, bytes: &[u8]) -> Result<Input> {
    match out.write_all(bytes).and_then(|_| out.flush()) {
        Ok(()) => Ok(Input::Written),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(Input::Closed),
        Err(e) => Err(Error::Io {
            path: "standard output".into(),
            err: e,
        }),
    }
}
