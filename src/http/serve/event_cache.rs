//! The in-band events (`emsg`) of the assets the playlists list, found once
//! per asset: an asset never changes once published, so its scan is kept,
//! keyed by the publish (sequence, publish time) and bounded by count, and
//! each playlist request reads only assets published since the last one.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use lru::LruCache;

use super::lock;
use crate::stream::events::{self, Event};
use crate::stream::index::Record;

/// Assets whose scans are kept: far more than a live window lists.
const KEPT: usize = 4096;

type Key = (u64, u64);

pub struct EventCache {
    scans: Mutex<LruCache<Key, Arc<Vec<Event>>>>,
}

impl Default for EventCache {
    fn default() -> Self {
        EventCache {
            scans: Mutex::new(LruCache::new(
                NonZeroUsize::new(KEPT).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }
}

impl EventCache {
    /// The events of `records`' assets (at `path_of` each), in order. An
    /// asset that cannot be read or scanned contributes none (it may have
    /// just expired); it is tried again next time.
    pub async fn events(&self, records: &[Record], path_of: impl Fn(u64) -> PathBuf) -> Vec<Event> {
        let key = |r: &Record| (r.sequence, r.published_us);
        let missing: Vec<(Key, PathBuf)> = {
            let mut scans = lock(&self.scans);
            records
                .iter()
                .filter(|r| scans.get(&key(r)).is_none())
                .map(|r| (key(r), path_of(r.sequence)))
                .collect()
        };
        if !missing.is_empty() {
            let found = tokio::task::spawn_blocking(move || {
                missing
                    .into_iter()
                    .filter_map(|(k, path)| {
                        let bytes = std::fs::read(path).ok()?;
                        Some((k, Arc::new(events::scan(&bytes).ok()?.events)))
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
            let mut scans = lock(&self.scans);
            for (k, e) in found {
                scans.put(k, e);
            }
        }
        let mut scans = lock(&self.scans);
        records
            .iter()
            .filter_map(|r| scans.get(&key(r)).cloned())
            .flat_map(|e| e.iter().cloned().collect::<Vec<_>>())
            .collect()
    }
}
