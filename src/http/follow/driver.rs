//! The machine's hands: executes each [`Action`] with ureq, the process's
//! output, `std::thread::sleep` and an `Instant`, and feeds the outcome back
//! with the time it came. Every decision lives in the machine.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use super::machine::{Action, Config, Input, Machine, Reply, Report, Request};
use crate::{Error, Result};

/// Follows the stream at `config.url`, writing it to `out` and what
/// happens to `log`, until the transmission ends or `out` is closed.
pub fn follow(config: &Config, out: &mut dyn Write, log: &mut dyn Write) -> Result<Report> {
    let mut machine = Machine::new(config.clone());
    let http = Http::new(machine.base(), &config.client);
    let clock = Instant::now();
    let mut next = Ok(machine.start(Duration::ZERO));
    loop {
        // What the machine said comes out before an error it ends with.
        for line in machine.said() {
            let _ = writeln!(log, "backset: {line}");
        }
        let input = match next? {
            Action::Fetch(request) => Input::Reply(http.get(&request)),
            Action::Write(bytes) => emit(out, &bytes)?,
            Action::WaitUntil(at) => {
                std::thread::sleep(at.saturating_sub(clock.elapsed()));
                Input::Woke
            }
            Action::Stop(report) => return Ok(report),
        };
        next = machine.handle(clock.elapsed(), input);
    }
}

struct Http {
    agent: ureq::Agent,
    base: String,
    id: String,
}

impl Http {
    fn new(base: &str, id: &str) -> Http {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Http {
            agent,
            base: base.to_string(),
            id: id.to_string(),
        }
    }

    /// One GET; a 404 is an answer, anything else but 200/206 a failure.
    fn get(&self, request: &Request) -> Reply {
        let url = format!("{}{}", self.base, request.path());
        let mut call = self.agent.get(&url).header("x-backset-client", &self.id);
        if let Some(range) = request.range() {
            call = call.header("range", range);
        }
        match call.call() {
            Ok(mut response) => match response.status().as_u16() {
                200 | 206 => {
                    let mut body = Vec::new();
                    match response.body_mut().as_reader().read_to_end(&mut body) {
                        Ok(_) => Reply::Body(body),
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
