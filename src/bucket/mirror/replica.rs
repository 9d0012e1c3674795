//! A `serve` replica's mirror kept in step: one sync before the server
//! starts (so it starts with the stream, if there is one yet), then a
//! thread syncing every 200 ms. A failing store is retried with a backoff up to 2 s and said
//! once per outage; the server goes on serving what the mirror holds.
//! Dropping the replica stops the thread and removes a mirror directory it
//! made itself.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::Mirror;
use crate::bucket::client::Bucket;
use crate::bucket::location::Location;
use crate::bucket::publish::Say;
use crate::{Error, Result};

/// How often the mirror asks the store for what is new.
const SYNC_EVERY: Duration = Duration::from_millis(200);
/// The longest wait between tries while the store is unreachable.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

pub struct Replica {
    dir: PathBuf,
    /// Made by this process (no directory given): removed when dropped.
    owned: bool,
    stop: Arc<AtomicBool>,
}

impl Replica {
    /// Mirrors `location` into `dir` (a fresh directory under the system's
    /// temporary one when `None`), the newest `window` assets at most.
    pub fn start(
        location: &Location,
        dir: Option<&Path>,
        window: Option<u64>,
        say: Say,
    ) -> Result<Replica> {
        let bucket = Bucket::connect(location)?;
        let (dir, owned) = match dir {
            Some(dir) => (dir.to_path_buf(), false),
            None => (
                std::env::temp_dir().join(format!("backset-mirror-{}", std::process::id())),
                true,
            ),
        };
        std::fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
        // From here a failed start removes the directory it made.
        let replica = Replica {
            dir: dir.clone(),
            owned,
            stop: Arc::new(AtomicBool::new(false)),
        };
        let mut mirror = Mirror::new(bucket, &dir, window);
        if mirror.published()? {
            let first = mirror.sync(wall_us())?;
            say(format!(
                "mirroring {location} into {} ({} assets fetched)",
                dir.display(),
                first.fetched
            ));
        } else {
            // As `serve` on an empty directory: 503 until a stream comes.
            say(format!(
                "no stream at {location} yet; mirroring into {} once one is published",
                dir.display()
            ));
        }
        let stop = Arc::clone(&replica.stop);
        let location = location.to_string();
        std::thread::Builder::new()
            .name("mirror-sync".into())
            .spawn(move || keep_syncing(mirror, &location, &stop, &say))
            .map_err(|e| Error::Internal(format!("starting the mirror's thread: {e}")))?;
        Ok(replica)
    }

    /// The directory the server serves.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if self.owned {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn keep_syncing(mut mirror: Mirror, location: &str, stop: &AtomicBool, say: &Say) {
    let mut wait = SYNC_EVERY;
    let mut failing = false;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(wait);
        if stop.load(Ordering::Relaxed) {
            break;
        }
        match mirror.sync(wall_us()) {
            Ok(done) => {
                if failing {
                    say(format!("{location} answers again; the mirror is in step"));
                }
                if done.restarted {
                    say(format!(
                        "{location} holds a new transmission: the mirror started over on it"
                    ));
                }
                failing = false;
                wait = SYNC_EVERY;
            }
            Err(e) => {
                if !failing {
                    say(format!(
                        "syncing {location}: {e}; serving what the mirror holds and retrying"
                    ));
                }
                failing = true;
                wait = (wait * 2).min(MAX_BACKOFF);
            }
        }
    }
}

fn wall_us() -> u64 {
    crate::bucket::publish::uploader::wall_us()
}
