//! Expired assets' files, kept a while after the playlists stop naming
//! them: a player that read a playlist just before the window moved still
//! fetches what it listed (RFC 8216 6.2.2: a segment removed from the
//! playlist stays available for its duration plus the playlist's), and a
//! server that reread the index a moment ago does not name a file that has
//! just gone. The descriptor's `first_sequence` moves at once, so `locate`
//! never hands one out; the files go when their time is up, and all of them
//! when the transmission ends.

use std::collections::VecDeque;

#[derive(Debug, Default)]
pub(crate) struct Expiry {
    /// (sequence, init generation, when its files may go, µs), oldest first.
    pending: VecDeque<(u64, u32, u64)>,
}

impl Expiry {
    /// Asset `sequence` (of generation `generation`) expired; its files may
    /// go at `due_us`.
    pub fn defer(&mut self, sequence: u64, generation: u32, due_us: u64) {
        self.pending.push_back((sequence, generation, due_us));
    }

    /// The assets whose files may go at `now_us` (all of them when `now_us`
    /// is `u64::MAX`), taken off the list.
    pub fn due(&mut self, now_us: u64) -> Vec<u64> {
        let mut due = Vec::new();
        while let Some(&(sequence, _, at)) = self.pending.front() {
            if at > now_us {
                break;
            }
            due.push(sequence);
            self.pending.pop_front();
        }
        due
    }

    /// The oldest asset whose files are still kept.
    #[cfg_attr(not(feature = "store"), allow(dead_code))]
    pub fn oldest(&self) -> Option<u64> {
        self.pending.front().map(|&(sequence, _, _)| sequence)
    }

    /// The oldest generation whose files are still kept for a pending asset.
    pub fn oldest_generation(&self) -> Option<u32> {
        self.pending.iter().map(|&(_, g, _)| g).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_go_in_order_when_their_time_is_up() {
        let mut e = Expiry::default();
        e.defer(3, 0, 100);
        e.defer(4, 1, 200);
        assert_eq!(e.due(99), Vec::<u64>::new());
        assert_eq!(e.oldest_generation(), Some(0));
        assert_eq!(e.due(150), vec![3]);
        assert_eq!(e.oldest_generation(), Some(1));
        e.defer(5, 1, 300);
        assert_eq!(e.due(u64::MAX), vec![4, 5]);
        assert_eq!(e.oldest_generation(), None);
    }
}
