//! What one sync of the mirror does, decided from what the mirror holds and
//! what the store says, without reading either: whether the mirror starts
//! over, which of the store's records it reads, and where its window starts.

use crate::bucket::index_form::Head;
use crate::stream::descriptor::Descriptor;
use crate::stream::index::Record;

/// What the mirror directory holds, as far as a sync cares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Local {
    /// `started_us` of the transmission mirrored (`None`: no stream.json).
    pub started_us: Option<u64>,
    /// The local stream.json's `first_sequence`.
    pub first_sequence: u64,
    /// The local index's timescale, when there is an index.
    pub timescale: Option<u32>,
    /// The local index's newest record.
    pub last: Option<Record>,
}

/// One sync's course.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// The mirror holds another transmission (or a history the store no
    /// longer continues): empty it first.
    pub restart: bool,
    /// The store's index position the records to append start at.
    pub from: u64,
    /// The mirror's `first_sequence` once synced: assets before it are
    /// not fetched (their records are appended all the same, so the local
    /// index stays one run of sequences).
    pub first: u64,
}

/// The sequence after the store's newest record.
pub fn end_of(head: &Head) -> u64 {
    head.base.saturating_add(head.count())
}

/// The oldest sequence the mirror wants: the store's oldest retained one,
/// or the newest `window` when that is fewer.
pub fn wanted(store: &Descriptor, head: &Head, window: Option<u64>) -> u64 {
    let end = end_of(head);
    let by_window = window.map_or(0, |n| end.saturating_sub(n));
    let wanted = store.first_sequence.max(by_window);
    if head.count() == 0 {
        return wanted;
    }
    wanted.clamp(head.base, end)
}

/// The sync to do. A mirror continues when its transmission started at the
/// same time as the store's, in the same timescale, and its newest record
/// is one the store's index holds (the record after it is checked against
/// it once read: [`continues`]).
pub fn plan(local: &Local, store: &Descriptor, head: &Head, window: Option<u64>) -> Plan {
    let wanted = wanted(store, head, window);
    let fresh = Plan {
        restart: local.started_us.is_some() || local.last.is_some(),
        from: wanted.saturating_sub(head.base),
        first: wanted,
    };
    if local.started_us.is_some_and(|s| s != store.started_us) {
        return fresh;
    }
    let Some(last) = local.last else {
        return Plan {
            restart: false,
            ..fresh
        };
    };
    let next = last.sequence.saturating_add(1);
    let held = head.count() > 0 && (head.base..=end_of(head)).contains(&next);
    if !held || local.timescale != Some(head.timescale) {
        return fresh;
    }
    Plan {
        restart: false,
        from: next - head.base,
        first: local.first_sequence.max(wanted),
    }
}

/// Whether `next` follows on from `last` in sequence, time and data: a new
/// transmission at the same prefix does not.
pub fn continues(last: &Record, next: &Record) -> bool {
    Some(next.sequence) == last.sequence.checked_add(1)
        && next.start == last.end()
        && Some(next.datastamp) == last.datastamp.checked_add(last.media_len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bucket::index_form::record;

    fn head(base: u64, n: u64) -> Head {
        let mut head = Head::empty(1000, base);
        for s in base..base + n {
            head.push(record(s));
        }
        head
    }

    fn store(first_sequence: u64, started_us: u64) -> Descriptor {
        let json = format!(
            r#"{{"version":1,"prefix":"asset","pattern":"asset-%08d.mp4","index":"index.bin",
            "timescale":1000,"interval_us":2000000,"tracks":[],"started_us":{started_us},
            "first_sequence":{first_sequence},"ended":false}}"#
        );
        Descriptor::parse(std::path::Path::new("stream.json"), json.as_bytes()).unwrap()
    }

    fn local(last: u64, first_sequence: u64) -> Local {
        Local {
            started_us: Some(7),
            first_sequence,
            timescale: Some(1000),
            last: Some(record(last)),
        }
    }

    #[test]
    fn an_empty_mirror_starts_at_the_oldest_retained_or_the_window() {
        let h = head(5, 20);
        let p = plan(&Local::default(), &store(12, 7), &h, None);
        assert_eq!(
            p,
            Plan {
                restart: false,
                from: 7,
                first: 12
            }
        );
        let p = plan(&Local::default(), &store(12, 7), &h, Some(3));
        assert_eq!(
            p,
            Plan {
                restart: false,
                from: 17,
                first: 22
            }
        );
        // A window wider than what is retained keeps what is retained.
        let p = plan(&Local::default(), &store(12, 7), &h, Some(100));
        assert_eq!(p.first, 12);
    }

    #[test]
    fn a_mirror_continues_from_its_newest_record_and_its_window_only_moves_on() {
        let h = head(5, 20);
        let p = plan(&local(14, 10), &store(12, 7), &h, None);
        assert_eq!(
            p,
            Plan {
                restart: false,
                from: 10,
                first: 12
            }
        );
        // Up to date: nothing to read.
        let p = plan(&local(24, 20), &store(12, 7), &h, None);
        assert_eq!(
            p,
            Plan {
                restart: false,
                from: 20,
                first: 20
            }
        );
        // Behind the store's retention: the records in between are read,
        // the assets not.
        let p = plan(&local(8, 5), &store(12, 7), &h, Some(2));
        assert_eq!(
            p,
            Plan {
                restart: false,
                from: 4,
                first: 23
            }
        );
    }

    #[test]
    fn another_transmission_or_a_history_the_store_lacks_starts_over() {
        let h = head(5, 20);
        let over = Plan {
            restart: true,
            from: 7,
            first: 12,
        };
        assert_eq!(
            plan(&local(14, 10), &store(12, 8), &h, None),
            over,
            "started_us"
        );
        assert_eq!(
            plan(&local(30, 10), &store(12, 7), &h, None),
            over,
            "ahead of the store"
        );
        assert_eq!(
            plan(&local(2, 0), &store(12, 7), &h, None),
            over,
            "before its record 0"
        );
        let mut other = local(14, 10);
        other.timescale = Some(90_000);
        assert_eq!(plan(&other, &store(12, 7), &h, None), over, "timescale");
        let empty = Head::empty(1000, 0);
        assert!(
            plan(&local(14, 10), &store(0, 7), &empty, None).restart,
            "an empty store"
        );
        assert!(continues(&record(3), &record(4)));
        let mut jump = record(4);
        jump.start += 1;
        assert!(!continues(&record(3), &jump));
        assert!(!continues(&record(3), &record(5)));
    }
}
