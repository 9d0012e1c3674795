//! Which assets a live directory keeps: a time window behind the live edge
//! (`--keep`, like DASH `timeShiftBufferDepth`) and/or a number of assets
//! (`--keep-assets`, like HLS `hls_list_size`). With both, an asset is kept
//! while either rule keeps it.

use std::collections::VecDeque;

use crate::stream::index::Record;

#[derive(Debug, Clone)]
pub struct Retention {
    /// Keep assets that end within this many ticks of the live edge.
    keep_ticks: Option<u64>,
    keep_assets: Option<u64>,
    kept: VecDeque<Record>,
}

impl Retention {
    /// `None` when nothing is to be deleted.
    pub fn new(keep_ticks: Option<u64>, keep_assets: Option<u64>) -> Option<Retention> {
        (keep_ticks.is_some() || keep_assets.is_some()).then(|| Retention {
            keep_ticks,
            keep_assets: keep_assets.map(|n| n.max(1)),
            kept: VecDeque::new(),
        })
    }

    /// A window with no rule: every asset is kept. What the publisher holds
    /// to render playlists when nothing expires.
    pub fn keep_all() -> Retention {
        Retention {
            keep_ticks: None,
            keep_assets: None,
            kept: VecDeque::new(),
        }
    }

    /// Adds a published asset; returns the records that expire.
    pub fn push(&mut self, record: Record) -> Vec<Record> {
        self.kept.push_back(record);
        let edge = record.end();
        let mut expired = Vec::new();
        while self.kept.len() > 1 {
            let Some(oldest) = self.kept.front() else {
                break;
            };
            let by_count = self.keep_assets.is_some_and(|n| self.kept.len() as u64 > n);
            let by_time = self
                .keep_ticks
                .is_some_and(|d| oldest.end().saturating_add(d) <= edge);
            // Expire only when every rule given agrees.
            let expire = match (self.keep_ticks, self.keep_assets) {
                (Some(_), Some(_)) => by_count && by_time,
                (Some(_), None) => by_time,
                (None, Some(_)) => by_count,
                (None, None) => false,
            };
            if !expire {
                break;
            }
            expired.push(*oldest);
            self.kept.pop_front();
        }
        expired
    }

    /// The oldest kept sequence number.
    pub fn first(&self) -> Option<u64> {
        self.kept.front().map(|r| r.sequence)
    }

    /// The kept records, oldest first.
    pub fn kept(&self) -> impl Iterator<Item = &Record> {
        self.kept.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(s: u64) -> Record {
        Record {
            sequence: s,
            start: s * 2000,
            duration: 2000,
            datastamp: 0,
            size: 0,
            header_len: 0,
            entries: 1,
            published_us: 0,
            init: 0,
        }
    }

    #[test]
    fn a_count_keeps_the_newest_n() {
        let mut r = Retention::new(None, Some(3)).unwrap();
        let expired: Vec<u64> = (0..6)
            .flat_map(|s| r.push(rec(s)))
            .map(|r| r.sequence)
            .collect();
        assert_eq!(expired, vec![0, 1, 2]);
        assert_eq!(r.first(), Some(3));
    }

    #[test]
    fn a_window_keeps_assets_that_end_inside_it() {
        let mut r = Retention::new(Some(5000), None).unwrap();
        let expired: Vec<u64> = (0..6)
            .flat_map(|s| r.push(rec(s)))
            .map(|r| r.sequence)
            .collect();
        // Edge 12 s: assets ending after 7 s are kept (3: 6-8 s, 4, 5).
        assert_eq!(expired, vec![0, 1, 2]);
        assert_eq!(r.first(), Some(3));
    }

    #[test]
    fn with_both_an_asset_is_kept_while_either_keeps_it() {
        let mut r = Retention::new(Some(5000), Some(5)).unwrap();
        let expired: Vec<u64> = (0..6)
            .flat_map(|s| r.push(rec(s)))
            .map(|r| r.sequence)
            .collect();
        assert_eq!(expired, vec![0]);
        assert!(Retention::new(None, None).is_none());
    }

    #[test]
    fn with_no_rule_every_asset_is_kept() {
        let mut r = Retention::keep_all();
        let expired: Vec<u64> = (0..6)
            .flat_map(|s| r.push(rec(s)))
            .map(|r| r.sequence)
            .collect();
        assert!(expired.is_empty());
        assert_eq!(
            r.kept().map(|r| r.sequence).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4, 5]
        );
    }
}
