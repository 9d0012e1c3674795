//! One read of an asset for every request that wants it at once (single
//! flight). At the live edge a whole audience asks for the asset just
//! published within a few milliseconds: the first request reads it, the
//! others wait for that read and share its bytes, whether or not the
//! asset fits the cache. The bytes stay shared while any answer still
//! sends them, so a request arriving meanwhile shares them too. What the
//! reads in flight hold together is bounded: past the budget, a request
//! is answered from its file a piece at a time instead.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use tokio::sync::OnceCell;

use super::cache::Key;
use super::files::Refusal;
use super::lock;

/// The reads in flight, by asset.
pub struct Flights {
    flying: Mutex<HashMap<Key, Weak<Flight>>>,
    /// Bytes the live flights hold (or will once read).
    holding: Arc<AtomicU64>,
    budget: u64,
}

/// One read, shared. Dropped (and its bytes freed) with the last request
/// or answer holding it.
pub struct Flight {
    read: OnceCell<Result<Bytes, Refusal>>,
    size: u64,
    holding: Arc<AtomicU64>,
}

impl Drop for Flight {
    fn drop(&mut self) {
        self.holding.fetch_sub(self.size, Ordering::Relaxed);
    }
}

impl Flight {
    /// The asset's bytes: read by `read` if no one has yet, else what that
    /// read gave.
    pub async fn bytes<F>(&self, read: F) -> Result<Bytes, Refusal>
    where
        F: std::future::Future<Output = Result<Bytes, Refusal>>,
    {
        self.read.get_or_init(|| read).await.clone()
    }
}

impl Flights {
    pub fn new(budget: u64) -> Self {
        Flights {
            flying: Mutex::new(HashMap::new()),
            holding: Arc::new(AtomicU64::new(0)),
            budget,
        }
    }

    /// The flight for `key`: the one under way, else a new one if the
    /// budget allows it; `None` when it does not.
    pub fn join(&self, key: Key) -> Option<Arc<Flight>> {
        let mut flying = lock(&self.flying);
        if let Some(f) = flying.get(&key).and_then(Weak::upgrade) {
            return Some(f);
        }
        let held = self.holding.load(Ordering::Relaxed);
        if held.saturating_add(key.size) > self.budget {
            return None;
        }
        self.holding.fetch_add(key.size, Ordering::Relaxed);
        flying.retain(|_, f| f.strong_count() > 0);
        let flight = Arc::new(Flight {
            read: OnceCell::new(),
            size: key.size,
            holding: Arc::clone(&self.holding),
        });
        flying.insert(key, Arc::downgrade(&flight));
        Some(flight)
    }

    #[cfg(test)]
    pub fn holding(&self) -> u64 {
        self.holding.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn key(sequence: u64, size: u64) -> Key {
        Key {
            sequence,
            published_us: 7,
            size,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiting_requests_share_one_read_and_the_budget_holds() {
        let flights = Arc::new(Flights::new(100));
        let reads = Arc::new(AtomicUsize::new(0));
        let mut waiting = Vec::new();
        for _ in 0..50 {
            let (flights, reads) = (Arc::clone(&flights), Arc::clone(&reads));
            waiting.push(tokio::spawn(async move {
                let f = flights.join(key(1, 60)).expect("within the budget");
                let bytes = f
                    .bytes(async {
                        reads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        Ok(Bytes::from(vec![1; 60]))
                    })
                    .await;
                (f, bytes.map(|b| b.len()).ok())
            }));
        }
        let mut held = Vec::new();
        for w in waiting {
            let (f, len) = w.await.unwrap();
            assert_eq!(len, Some(60));
            held.push(f);
        }
        assert_eq!(reads.load(Ordering::SeqCst), 1, "one read for all");
        assert_eq!(flights.holding(), 60);
        assert!(flights.join(key(2, 60)).is_none(), "over the budget");
        drop(held);
        assert_eq!(flights.holding(), 0, "freed with the last holder");
        assert!(flights.join(key(2, 60)).is_some());
    }
}
