//! The newest assets, held in memory. A live audience asks for the same few
//! assets near the live edge over and over; answering those from memory
//! saves an open, a metadata call and a read per request. Published assets
//! never change, and a key names one publish (sequence, time, size), so an
//! entry is never stale: a new transmission in the same directory has
//! other publish times.

use std::collections::VecDeque;

use bytes::Bytes;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub sequence: u64,
    pub published_us: u64,
    pub size: u64,
}

/// Least recently used assets up to a byte budget.
#[derive(Debug)]
pub struct RecentAssets {
    budget: u64,
    held: u64,
    // Few entries (budget / asset size), so a scan beats a map here.
    entries: VecDeque<(Key, Bytes)>,
}

impl RecentAssets {
    pub fn new(budget: u64) -> Self {
        RecentAssets {
            budget,
            held: 0,
            entries: VecDeque::new(),
        }
    }

    /// Whether an asset of `size` bytes would be kept at all.
    pub fn fits(&self, size: u64) -> bool {
        size <= self.budget
    }

    pub fn get(&mut self, key: Key) -> Option<Bytes> {
        let at = self.entries.iter().position(|(k, _)| *k == key)?;
        let entry = self.entries.remove(at)?;
        let bytes = entry.1.clone();
        self.entries.push_back(entry);
        Some(bytes)
    }

    pub fn put(&mut self, key: Key, bytes: Bytes) {
        let size = bytes.len() as u64;
        if !self.fits(size) || self.entries.iter().any(|(k, _)| *k == key) {
            return;
        }
        while self.held + size > self.budget {
            match self.entries.pop_front() {
                Some((_, old)) => self.held -= old.len() as u64,
                None => break,
            }
        }
        self.held += size;
        self.entries.push_back((key, bytes));
    }

    #[cfg(test)]
    fn held(&self) -> u64 {
        self.held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(sequence: u64) -> Key {
        Key {
            sequence,
            published_us: 1000 + sequence,
            size: 10,
        }
    }

    #[test]
    fn the_least_recently_used_asset_goes_first_and_the_budget_holds() {
        let mut c = RecentAssets::new(30);
        for s in 0..3 {
            c.put(key(s), Bytes::from(vec![s as u8; 10]));
        }
        assert!(c.get(key(0)).is_some(), "0 is now the most recent");
        c.put(key(3), Bytes::from(vec![3; 10]));
        assert!(c.get(key(1)).is_none(), "1 was least recently used");
        assert_eq!(c.get(key(0)).unwrap()[0], 0);
        assert!(c.get(key(2)).is_some() && c.get(key(3)).is_some());
        assert_eq!(c.held(), 30);
    }

    #[test]
    fn another_publish_of_the_same_sequence_is_another_asset() {
        let mut c = RecentAssets::new(100);
        c.put(key(5), Bytes::from_static(b"0123456789"));
        let again = Key {
            published_us: 99,
            ..key(5)
        };
        assert!(c.get(again).is_none());
    }

    #[test]
    fn an_asset_over_the_budget_is_not_kept_and_evicts_nothing() {
        let mut c = RecentAssets::new(15);
        c.put(key(0), Bytes::from(vec![0; 10]));
        c.put(key(1), Bytes::from(vec![0; 20]));
        assert!(c.get(key(0)).is_some());
        assert_eq!(c.held(), 10);
        let mut off = RecentAssets::new(0);
        off.put(key(0), Bytes::from(vec![0; 10]));
        assert_eq!(off.held(), 0);
    }
}
