//! One writer per stream on the store, as `.lock` is on disk: the writer
//! holds `.lease`, an object naming it and when its hold runs out, taken
//! and renewed only by conditional puts (create-if-absent, then
//! update-if-unchanged). Two writers racing for it cannot both win: the
//! store accepts one put and answers the other 412. A writer that stops
//! renewing (killed, cut off) loses the lease when it runs out, so a
//! replacement can take over without anyone clearing it by hand; on the
//! same host, at once if the holder's process is gone.

use bytes::Bytes;
use object_store::UpdateVersion;
use serde::{Deserialize, Serialize};

use crate::bucket::client::Bucket;
use crate::{Error, Result};

pub const LEASE: &str = ".lease";
/// How long a lease holds without renewal.
pub const TERM_US: u64 = 30_000_000;
/// Renewed this often, so a renewal can fail twice before the term ends.
pub const RENEW_US: u64 = 10_000_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Hold {
    holder: String,
    expires_us: u64,
    /// Which process holds it, and in which process table: a writer
    /// restarted on the same machine after a crash need not wait out the
    /// term of a dead one.
    #[serde(default)]
    processes: String,
    #[serde(default)]
    pid: u32,
}

impl Hold {
    /// Whether it still binds: in its term and, when held from this very
    /// process table, by a process that is alive.
    fn binds(&self, now_us: u64) -> bool {
        let here = processes();
        let dead_here = !here.is_empty()
            && self.processes == here
            && self.pid != 0
            && !std::path::Path::new(&format!("/proc/{}", self.pid)).exists();
        self.expires_us > now_us && !dead_here
    }
}

/// This machine's boot and PID namespace: two holds with the same one see
/// the same processes (a hostname does not say that: containers share
/// one). Empty where `/proc` does not tell, and then no hold is judged by
/// its process.
fn processes() -> String {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id");
    let namespace = std::fs::read_link("/proc/self/ns/pid");
    match (boot, namespace) {
        (Ok(boot), Ok(ns)) => format!("{} {}", boot.trim(), ns.display()),
        _ => String::new(),
    }
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// Why the lease is not ours.
#[derive(Debug)]
pub enum Refused {
    /// Another writer holds it until then.
    Held { holder: String, expires_us: u64 },
    /// The store could not be asked.
    Unreachable(Error),
}

pub struct Lease {
    holder: String,
    version: UpdateVersion,
    renewed_us: u64,
}

fn body(holder: &str, now_us: u64) -> Bytes {
    let hold = Hold {
        holder: holder.to_string(),
        expires_us: now_us.saturating_add(TERM_US),
        processes: processes(),
        pid: std::process::id(),
    };
    Bytes::from(serde_json::to_vec(&hold).unwrap_or_default())
}

impl Lease {
    /// Takes the lease: creates it, or replaces one whose term has run out.
    pub fn take(bucket: &Bucket, holder: &str, now_us: u64) -> Result<Lease, Refused> {
        let put = |version| bucket.put_if(LEASE, body(holder, now_us), version);
        let taken = |version| Lease {
            holder: holder.to_string(),
            version,
            renewed_us: now_us,
        };
        match put(None).map_err(Refused::Unreachable)? {
            Ok(version) => return Ok(taken(version)),
            Err(_conflict) => {}
        }
        let Some((bytes, version)) = bucket.get_versioned(LEASE).map_err(Refused::Unreachable)?
        else {
            // Released between our put and our read: try once more.
            return match put(None).map_err(Refused::Unreachable)? {
                Ok(version) => Ok(taken(version)),
                Err(_) => Err(Refused::Held {
                    holder: "a writer that took it just now".into(),
                    expires_us: now_us + TERM_US,
                }),
            };
        };
        // A lease that does not parse was not written by a backset writer
        // still alive: treat it as run out.
        let hold: Option<Hold> = serde_json::from_slice(&bytes).ok();
        if let Some(h) = hold.filter(|h| h.binds(now_us) && h.holder != holder) {
            return Err(Refused::Held {
                holder: h.holder,
                expires_us: h.expires_us,
            });
        }
        match put(Some(version)).map_err(Refused::Unreachable)? {
            Ok(version) => Ok(taken(version)),
            Err(_) => Err(Refused::Held {
                holder: "a writer that took it just now".into(),
                expires_us: now_us + TERM_US,
            }),
        }
    }

    /// Renews the lease when due. `Err` when another writer took it over:
    /// publishing must stop.
    pub fn renew(&mut self, bucket: &Bucket, now_us: u64) -> Result<()> {
        if now_us < self.renewed_us.saturating_add(RENEW_US) {
            return Ok(());
        }
        let put = bucket.put_if(
            LEASE,
            body(&self.holder, now_us),
            Some(self.version.clone()),
        )?;
        match put {
            Ok(version) => {
                self.version = version;
                self.renewed_us = now_us;
                Ok(())
            }
            Err(_) => Err(Error::Network(format!(
                "{}: the writer's lease was taken over by another writer; this one stops publishing",
                bucket.location().url_of(LEASE)
            ))),
        }
    }

    /// Gives the lease up at the end of the transmission: first run out
    /// (only if it is still ours, so another writer's is never touched),
    /// then deleted.
    pub fn release(self, bucket: &Bucket, now_us: u64) -> Result<()> {
        let over = body(&self.holder, now_us.saturating_sub(TERM_US));
        match bucket.put_if(LEASE, over, Some(self.version))? {
            Ok(_) => bucket.delete(LEASE),
            Err(_) => Ok(()),
        }
    }
}

/// Who this writer is, for the lease and for the message a second writer
/// gets.
pub fn holder() -> String {
    format!("backset segment, pid {} on {}", std::process::id(), host())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bucket::location::Location;

    fn bucket() -> Bucket {
        Bucket::in_memory(&Location::new("live", "ch1")).unwrap()
    }

    #[test]
    fn one_holder_at_a_time_until_its_term_runs_out() {
        let b = bucket();
        let mut first = Lease::take(&b, "a", 0).map_err(|_| ()).unwrap();
        match Lease::take(&b, "b", 1_000_000) {
            Err(Refused::Held { holder, expires_us }) => {
                assert_eq!((holder.as_str(), expires_us), ("a", TERM_US))
            }
            _ => panic!("a second writer must be refused"),
        }
        first.renew(&b, RENEW_US).unwrap();
        // Renewed at 10 s: b is still refused at 35 s, takes over at 41 s.
        assert!(Lease::take(&b, "b", 35_000_000).is_err());
        let second = Lease::take(&b, "b", 41_000_000).map_err(|_| ()).unwrap();
        // The first writer finds out at its next renewal.
        assert!(first.renew(&b, 42_000_000).is_err());
        second.release(&b, 42_000_000).unwrap();
        assert!(Lease::take(&b, "c", 42_000_000).is_ok());
    }

    #[test]
    fn a_dead_holder_on_this_host_does_not_bind() {
        let b = bucket();
        let dead = Hold {
            holder: "backset segment, pid 4194304 on here".into(),
            expires_us: u64::MAX,
            processes: processes(),
            pid: 4_194_304 + 1,
        };
        b.put_if(LEASE, Bytes::from(serde_json::to_vec(&dead).unwrap()), None)
            .unwrap()
            .unwrap();
        assert!(Lease::take(&b, "restarted", 1).is_ok());
        let elsewhere = Hold {
            processes: "another machine's".into(),
            ..dead
        };
        b.put(
            LEASE,
            Bytes::from(serde_json::to_vec(&elsewhere).unwrap()),
            crate::bucket::client::Caching::None,
        )
        .unwrap();
        assert!(matches!(
            Lease::take(&b, "restarted", 1),
            Err(Refused::Held { .. })
        ));
    }
}
