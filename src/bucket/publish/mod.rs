//! `segment s3://bucket/prefix`: the segmenter publishes into a local spool
//! (a stream directory with every guarantee of `stream::store`) and a
//! thread uploads it ([`uploader`]), so a slow or unreachable store never
//! stalls reading the capture: the queue between them is the spool on
//! disk, and the only message is a wake-up that is dropped when one is
//! already waiting. Failures are retried with a backoff up to 30 s;
//! nothing is lost, since a restart with the same spool uploads what the
//! store lacks first. One writer per prefix ([`lease`]).

pub mod latency;
pub mod lease;
pub mod uploader;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::bucket::client::Bucket;
use crate::{Error, Result};
use lease::{Lease, Refused};
use uploader::{wall_us, Uploader};

/// How often the uploader looks at the spool without being woken.
const POLL: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

enum Msg {
    Wake,
    Finish(Instant),
}

/// What the upload came to.
#[derive(Debug)]
pub struct Outcome {
    /// Assets the store received.
    pub uploaded: u64,
    /// Published assets still only in the spool.
    pub backlog: u64,
    pub p50_ms: Option<u64>,
    pub p99_ms: Option<u64>,
    /// Why it stopped early, if it did.
    pub error: Option<Error>,
}

pub struct Publishing {
    tx: SyncSender<Msg>,
    thread: JoinHandle<Outcome>,
    stopped: Arc<AtomicBool>,
}

/// Messages for the person running the command.
pub type Say = Box<dyn Fn(String) + Send>;

impl Publishing {
    /// Takes the store's lease (a live lease of another writer is an
    /// error; an unreachable store is not: the uploader keeps trying) and
    /// starts the uploader, which waits for a first [`wake`](Self::wake)
    /// before it reads `spool`.
    pub fn start(bucket: Bucket, spool: &Path, replace: bool, say: Say) -> Result<Publishing> {
        let holder = lease::holder();
        let lease = match Lease::take(&bucket, &holder, wall_us()) {
            Ok(lease) => Some(lease),
            Err(Refused::Held { holder, expires_us }) => {
                return Err(held(&bucket, &holder, expires_us));
            }
            Err(Refused::Unreachable(e)) => {
                say(format!(
                    "warning: {e}; assets wait in the spool {} until it answers",
                    spool.display()
                ));
                None
            }
        };
        let uploader = Uploader::new(bucket, spool, replace);
        match uploader.preflight() {
            Err(Error::Network(m)) => say(format!("warning: {m}")),
            other => other?,
        }
        let stopped = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::sync_channel(1);
        let worker = Worker {
            uploader,
            stopped: Arc::clone(&stopped),
            holder,
            lease,
            say,
            failing: false,
        };
        let thread = std::thread::spawn(move || worker.run(rx));
        Ok(Publishing {
            tx,
            thread,
            stopped,
        })
    }

    /// Whether publishing has stopped for good (its reason was said): the
    /// capture should stop too rather than fill the spool.
    pub fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }

    /// The spool has something new. Never blocks.
    pub fn wake(&self) {
        let _ = self.tx.try_send(Msg::Wake);
    }

    /// Uploads what is left, waiting at most `timeout` for the store.
    pub fn finish(self, timeout: Duration) -> Outcome {
        let _ = self.tx.send(Msg::Finish(Instant::now() + timeout));
        self.thread.join().unwrap_or_else(|_| Outcome {
            uploaded: 0,
            backlog: 0,
            p50_ms: None,
            p99_ms: None,
            error: Some(Error::Internal("the uploader stopped".into())),
        })
    }
}

fn held(bucket: &Bucket, holder: &str, expires_us: u64) -> Error {
    let left_s = expires_us.saturating_sub(wall_us()) as f64 / 1e6;
    Error::Network(format!(
        "{}: another writer ({holder}) holds this stream's lease; it runs out in {left_s:.0} s unless renewed",
        bucket.location()
    ))
}

struct Worker {
    uploader: Uploader,
    stopped: Arc<AtomicBool>,
    holder: String,
    lease: Option<Lease>,
    say: Say,
    failing: bool,
}

impl Worker {
    fn run(mut self, rx: mpsc::Receiver<Msg>) -> Outcome {
        // Nothing until the first wake-up: the spool may still be being
        // opened (and, with --new, emptied).
        let mut deadline = match rx.recv() {
            Ok(Msg::Finish(at)) => Some(at),
            Ok(Msg::Wake) => None,
            Err(_) => Some(Instant::now()),
        };
        let mut wait = Duration::ZERO;
        loop {
            match rx.recv_timeout(wait) {
                Ok(Msg::Finish(at)) => deadline = Some(at),
                Ok(Msg::Wake) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => deadline = deadline.or(Some(Instant::now())),
            }
            let done = match self.turn(deadline.is_some()) {
                Ok(round) => {
                    self.recovered();
                    // A backlog drains without pauses; the lease is
                    // renewed at every round.
                    wait = if round == Round::Busy {
                        Duration::ZERO
                    } else {
                        POLL
                    };
                    round == Round::Done
                }
                Err(Stop(e)) => {
                    (self.say)(format!("error: {e}"));
                    self.stopped.store(true, Ordering::Relaxed);
                    return self.outcome(Some(e));
                }
                Err(Retry(e)) => {
                    self.failed(&e);
                    wait = (wait * 2).clamp(POLL, MAX_BACKOFF);
                    false
                }
            };
            if done {
                return self.outcome(None);
            }
            if deadline.is_some_and(|at| Instant::now() >= at) {
                return self.outcome(None);
            }
            if let Some(at) = deadline {
                wait = wait.min(at.saturating_duration_since(Instant::now()));
            }
        }
    }

    /// One round: a batch at most, so the lease is renewed between
    /// batches and the deadline checked.
    fn turn(&mut self, finishing: bool) -> Result<Round, Turn> {
        let now = wall_us();
        let bucket = self.uploader.bucket();
        let lease = match self.lease.as_mut() {
            Some(lease) => lease,
            None => match Lease::take(bucket, &self.holder, now) {
                Ok(lease) => self.lease.insert(lease),
                Err(Refused::Held { holder, expires_us }) => {
                    return Err(Stop(held(bucket, &holder, expires_us)))
                }
                Err(Refused::Unreachable(e)) => return Err(Retry(e)),
            },
        };
        lease.renew(bucket, now).map_err(|e| match e {
            Error::Network(m) if m.contains("taken over") => Stop(Error::Network(m)),
            other => Retry(other),
        })?;
        if !finishing {
            let busy = self.uploader.step(now).map_err(classify)?;
            return Ok(if busy { Round::Busy } else { Round::Idle });
        }
        if self.uploader.finish_step(now).map_err(classify)? > 0 {
            return Ok(Round::Busy);
        }
        if let Some(lease) = self.lease.take() {
            lease.release(self.uploader.bucket(), now).map_err(Retry)?;
        }
        Ok(Round::Done)
    }

    fn failed(&mut self, e: &Error) {
        if !self.failing {
            (self.say)(format!("warning: {e}; retrying, assets wait in the spool"));
            self.failing = true;
        }
    }

    fn recovered(&mut self) {
        if self.failing {
            (self.say)("the store answers again; uploading the spool".into());
            self.failing = false;
        }
    }

    fn outcome(self, error: Option<Error>) -> Outcome {
        let latency = &self.uploader.latency;
        Outcome {
            uploaded: latency.count(),
            backlog: self.uploader.backlog().unwrap_or(0),
            p50_ms: latency.quantile_ms(0.5),
            p99_ms: latency.quantile_ms(0.99),
            error,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Round {
    /// Nothing new.
    Idle,
    /// Uploaded something; more may wait.
    Busy,
    /// Finishing, and the store has everything.
    Done,
}

enum Turn {
    /// Publishing cannot go on (the lease is another writer's, the spool
    /// does not continue the store).
    Stop(Error),
    /// The store failed this time; try again later.
    Retry(Error),
}
use Turn::{Retry, Stop};

fn classify(e: Error) -> Turn {
    match e {
        Error::Network(_) => Retry(e),
        other => Stop(other),
    }
}

#[cfg(test)]
mod tests;
