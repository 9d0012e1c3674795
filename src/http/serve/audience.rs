//! Where the audience facts live: this process's memory
//! ([`AudienceLog`], the default) or Redis shared by every replica
//! (`serve --audience redis://…`, [`RedisAudience`]). A Redis that fails
//! costs the advice its facts, never a request: the viewer is advised as
//! one nobody has measured yet, and the failure is reported on stderr at
//! most once a minute.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::audience_log::{AudienceLog, Facts};
use super::audience_redis::RedisAudience;
use super::{lock, now_us};
use crate::http::cmcd::Cmcd;

pub enum Audience {
    Memory(Mutex<AudienceLog>),
    Redis {
        redis: RedisAudience,
        /// When a failure was last reported, µs.
        reported_us: AtomicU64,
    },
}

impl Audience {
    pub fn redis(redis: RedisAudience) -> Audience {
        Audience::Redis {
            redis,
            reported_us: AtomicU64::new(0),
        }
    }

    pub async fn seen(&self, id: &str, region: &str, cmcd: &Cmcd, now_us: u64) {
        match self {
            Audience::Memory(log) => lock(log).seen(id, region, cmcd, now_us),
            Audience::Redis { redis, .. } => {
                let done = redis.seen(id, region, cmcd, now_us).await;
                self.report(done);
            }
        }
    }

    pub async fn measured(&self, id: &str, bytes: u64, secs: f64) {
        match self {
            Audience::Memory(log) => lock(log).measured(id, bytes, secs),
            Audience::Redis { redis, .. } => {
                let done = redis.measured(id, bytes, secs).await;
                self.report(done);
            }
        }
    }

    pub async fn facts(&self, id: &str, now_us: u64) -> Facts {
        match self {
            Audience::Memory(log) => lock(log).facts(id, now_us),
            Audience::Redis { redis, .. } => match redis.facts(id, now_us).await {
                Ok(facts) => facts,
                Err(e) => {
                    self.report(Err(e));
                    Facts::unknown()
                }
            },
        }
    }

    fn report(&self, done: crate::Result<()>) {
        let (Err(e), Audience::Redis { reported_us, .. }) = (done, self) else {
            return;
        };
        let now = now_us();
        let last = reported_us.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= 60_000_000
            && reported_us
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            // A closed stderr must not take the answer down with it.
            let _ = writeln!(
                std::io::stderr(),
                "backset: {e}; advising without audience facts meanwhile"
            );
        }
    }
}
