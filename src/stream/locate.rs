//! Resolving a backset (or a transmission time, or a datastamp) to the
//! entry point a viewer starts from: a pure function over the index records
//! and one asset's maps, so it is tested without a disk.

use serde::{Deserialize, Serialize};

use crate::capture::maps::{Entry, Maps};
use crate::capture::stamps::rescale;
use crate::stream::index::Record;

/// What to resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A delay behind the live edge (end of the newest asset), µs.
    Backset { us: u64 },
    /// A delay behind the wall-clock time `now_us`, measured on the entry
    /// points' receive times.
    WallBackset { us: u64, now_us: u64 },
    /// Transmission time, µs.
    At { us: u64 },
    /// Transmission bytes.
    Datastamp { bytes: u64 },
}

/// Where the data comes from: the memory-mapped index and the asset files.
pub(crate) trait Source {
    /// Number of records in the index.
    fn count(&self) -> usize;
    fn record(&self, i: usize) -> Option<Record>;
    fn maps(&self, record: &Record) -> Result<Maps, String>;
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub oldest_sequence: u64,
    pub newest_sequence: u64,
    /// Transmission time of the oldest retained entry point, s.
    pub start: f64,
    /// The live edge, s.
    pub end: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub sequence: u64,
    /// Byte offset of the key frame's `moof` inside the asset.
    pub offset: u64,
    /// The key frame's position among the asset's entry points.
    pub entry: usize,
    /// Transmission time of the key frame, s.
    pub timestamp: f64,
    pub timestamp_ticks: u64,
    pub datastamp: u64,
    /// When the key frame was received, µs since the Unix epoch.
    pub wallclock_us: u64,
    /// The backset achieved, s: live edge (or, on the wall clock, now) minus
    /// the key frame's time.
    pub backset: f64,
    /// Header length of the asset: bytes `0..header_len` are its init and maps.
    pub header_len: u32,
    pub window: Window,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LocateError {
    #[error("no asset has been published yet")]
    Empty,
    #[error("the target ({target}) is older than the retained window ({window}); --clamp starts at the oldest retained key frame")]
    BeforeWindow { target: String, window: String },
    #[error("the target ({target}) is past the live edge ({edge}): not transmitted yet")]
    NotYet { target: String, edge: String },
    #[error("asset {sequence}: {reason}")]
    BadAsset { sequence: u64, reason: String },
}

/// The value entry points are ordered by for a kind of target.
type EntryKey = fn(&Entry) -> u64;

/// Ticks of `timescale` in seconds (a timescale of 0 read as 1).
pub(crate) fn seconds(ticks: u64, timescale: u32) -> f64 {
    ticks as f64 / f64::from(timescale.max(1))
}

/// Resolves `target` over records `first..src.count()` (the retained ones),
/// answering the newest entry point at or before it.
pub(crate) fn locate(
    src: &impl Source,
    first: usize,
    timescale: u32,
    target: Target,
    clamp: bool,
) -> Result<Answer, LocateError> {
    let len = src.count();
    let (Some(oldest), Some(newest)) = (
        src.record(first),
        len.checked_sub(1).and_then(|i| src.record(i)),
    ) else {
        return Err(LocateError::Empty);
    };
    let search = Search::new(src, first, timescale, target, clamp, oldest, &newest);
    let (key, wanted) = search.key_and_wanted(&newest)?;
    let Some(wanted) = wanted else {
        return search.before_window();
    };
    match search.last_record_at_or_before(len, wanted)? {
        Some(i) => search.scan_back(i, key, wanted),
        None => search.before_window(),
    }
}

/// One resolution: the retained window it answers from and what it does
/// with a target older than that window.
struct Search<'a, S> {
    src: &'a S,
    first: usize,
    timescale: u32,
    target: Target,
    clamp: bool,
    oldest: Record,
    /// The live edge, ticks: the end of the newest asset.
    edge: u64,
    window: Window,
}

impl<'a, S: Source> Search<'a, S> {
    fn new(
        src: &'a S,
        first: usize,
        timescale: u32,
        target: Target,
        clamp: bool,
        oldest: Record,
        newest: &Record,
    ) -> Self {
        let edge = newest.end();
        let window = Window {
            oldest_sequence: oldest.sequence,
            newest_sequence: newest.sequence,
            start: seconds(oldest.start, timescale),
            end: seconds(edge, timescale),
        };
        Search {
            src,
            first,
            timescale,
            target,
            clamp,
            oldest,
            edge,
            window,
        }
    }

    /// The key each entry point is ordered by, and the target in that key
    /// (`None`: before anything transmitted); a target past the live edge
    /// is refused.
    fn key_and_wanted(&self, newest: &Record) -> Result<(EntryKey, Option<u64>), LocateError> {
        let ticks = |us: u64| rescale(us, 1_000_000, self.timescale);
        Ok(match self.target {
            Target::Backset { us } => (|e| e.timestamp, self.edge.checked_sub(ticks(us))),
            Target::At { us } => {
                if ticks(us) > self.edge {
                    return Err(LocateError::NotYet {
                        target: format!("{:.3} s", us as f64 / 1e6),
                        edge: format!("{:.3} s", seconds(self.edge, self.timescale)),
                    });
                }
                (|e| e.timestamp, Some(ticks(us)))
            }
            Target::Datastamp { bytes } => {
                let end = newest.datastamp + newest.media_len();
                if bytes >= end {
                    return Err(LocateError::NotYet {
                        target: format!("datastamp {bytes}"),
                        edge: format!("datastamp {end}"),
                    });
                }
                (|e| e.datastamp, Some(bytes))
            }
            Target::WallBackset { us, now_us } => (|e| e.wallclock_us, now_us.checked_sub(us)),
        })
    }

    /// A lower bound of the keys of record `i`'s entry points.
    fn record_key(&self, r: &Record, i: usize) -> u64 {
        match self.target {
            Target::Datastamp { .. } => r.datastamp,
            // Asset i-2 was published when asset i-1's first key frame
            // arrived, before any key frame of asset i: a lower bound.
            Target::WallBackset { .. } => i
                .checked_sub(2)
                .and_then(|p| self.src.record(p))
                .map_or(0, |r| r.published_us),
            _ => r.start,
        }
    }

    /// Binary search: the last retained record whose lower bound is at or
    /// before `wanted`, `None` when even the oldest starts after it.
    fn last_record_at_or_before(
        &self,
        len: usize,
        wanted: u64,
    ) -> Result<Option<usize>, LocateError> {
        let (mut lo, mut hi) = (self.first, len);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let r = self.src.record(mid).ok_or(LocateError::Empty)?;
            if self.record_key(&r, mid) <= wanted {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok((lo > self.first).then(|| lo - 1))
    }

    /// The newest entry point at or before `wanted`, from record `i` back:
    /// it sits in that record or, on the wall clock, an earlier one.
    fn scan_back(&self, mut i: usize, key: EntryKey, wanted: u64) -> Result<Answer, LocateError> {
        loop {
            let record = self.src.record(i).ok_or(LocateError::Empty)?;
            let maps = self.maps(&record)?;
            if let Some(n) = maps.entries.iter().rposition(|e| key(e) <= wanted) {
                return Ok(self.answer(&record, &maps, n));
            }
            if i == self.first {
                return self.before_window();
            }
            i -= 1;
        }
    }

    /// A target older than the window: the oldest retained key frame with
    /// `clamp`, an error without.
    fn before_window(&self) -> Result<Answer, LocateError> {
        if !self.clamp {
            let w = &self.window;
            return Err(LocateError::BeforeWindow {
                target: describe(self.target, self.timescale, self.edge),
                window: format!(
                    "assets {}..={}, {:.3} s to {:.3} s",
                    w.oldest_sequence, w.newest_sequence, w.start, w.end
                ),
            });
        }
        let maps = self.maps(&self.oldest)?;
        if maps.entries.is_empty() {
            return Err(LocateError::BadAsset {
                sequence: self.oldest.sequence,
                reason: "no entry points".into(),
            });
        }
        Ok(self.answer(&self.oldest, &maps, 0))
    }

    fn maps(&self, record: &Record) -> Result<Maps, LocateError> {
        self.src
            .maps(record)
            .map_err(|reason| LocateError::BadAsset {
                sequence: record.sequence,
                reason,
            })
    }

    /// The answer for entry point `n` of `record`.
    fn answer(&self, record: &Record, maps: &Maps, n: usize) -> Answer {
        let e = maps.entries[n];
        let backset = match self.target {
            Target::WallBackset { now_us, .. } => {
                now_us.saturating_sub(e.wallclock_us) as f64 / 1e6
            }
            _ => seconds(self.edge.saturating_sub(e.timestamp), self.timescale),
        };
        Answer {
            sequence: record.sequence,
            offset: e.offset,
            entry: n,
            timestamp: seconds(e.timestamp, self.timescale),
            timestamp_ticks: e.timestamp,
            datastamp: e.datastamp,
            wallclock_us: e.wallclock_us,
            backset,
            header_len: record.header_len,
            window: self.window,
        }
    }
}

fn describe(target: Target, timescale: u32, edge: u64) -> String {
    match target {
        Target::Backset { us } => format!(
            "{:.3} s behind the live edge at {:.3} s",
            us as f64 / 1e6,
            seconds(edge, timescale)
        ),
        Target::WallBackset { us, .. } => format!("{:.3} s behind the wall clock", us as f64 / 1e6),
        Target::At { us } => format!("{:.3} s", us as f64 / 1e6),
        Target::Datastamp { bytes } => format!("datastamp {bytes}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Assets of 2 s (timescale 1000) with key frames every 500 ms, 1000
    /// bytes per GOP, published 2 s apart.
    struct Fake {
        records: Vec<Record>,
    }

    impl Fake {
        fn new(n: u64) -> Fake {
            let records = (0..n)
                .map(|s| Record {
                    sequence: s,
                    start: s * 2000,
                    duration: 2000,
                    datastamp: s * 4000,
                    size: 4100,
                    header_len: 100,
                    entries: 4,
                    published_us: 10_000_000 + (s + 1) * 2_000_000,
                    init: 0,
                })
                .collect();
            Fake { records }
        }
    }

    impl Source for Fake {
        fn count(&self) -> usize {
            self.records.len()
        }
        fn record(&self, i: usize) -> Option<Record> {
            self.records.get(i).copied()
        }
        fn maps(&self, r: &Record) -> Result<Maps, String> {
            Ok(Maps {
                sequence: r.sequence,
                timescale: 1000,
                start: r.start,
                duration: r.duration,
                start_datastamp: r.datastamp,
                entries: (0..4)
                    .map(|k| Entry {
                        timestamp: r.start + k * 500,
                        datastamp: r.datastamp + k * 1000,
                        offset: 100 + k * 1000,
                        // Received as the stream went, 2 s before publication of the asset's end.
                        wallclock_us: r.published_us - 2_000_000 + k * 500_000,
                    })
                    .collect(),
            })
        }
    }

    #[test]
    fn a_backset_resolves_to_the_newest_key_frame_at_or_before_the_target() {
        let f = Fake::new(10); // live edge 20 s
        let a = locate(&f, 0, 1000, Target::Backset { us: 3_200_000 }, false).unwrap();
        // Target 16.8 s: key frame at 16.5 s in asset 8, third entry.
        assert_eq!((a.sequence, a.entry, a.offset), (8, 1, 1100));
        assert!((a.backset - 3.5).abs() < 1e-9);
        assert!(a.backset >= 3.2 && a.backset < 3.2 + 0.5);
        let exact = locate(&f, 0, 1000, Target::Backset { us: 4_000_000 }, false).unwrap();
        assert_eq!((exact.sequence, exact.entry), (8, 0));
        let live = locate(&f, 0, 1000, Target::Backset { us: 0 }, false).unwrap();
        assert_eq!((live.sequence, live.entry), (9, 3));
    }

    #[test]
    fn at_and_datastamp_resolve_the_same_way() {
        let f = Fake::new(10);
        let a = locate(&f, 0, 1000, Target::At { us: 5_999_000 }, false).unwrap();
        assert_eq!((a.sequence, a.entry), (2, 3));
        let d = locate(
            &f,
            0,
            1000,
            Target::Datastamp {
                bytes: 4000 * 3 + 2500,
            },
            false,
        )
        .unwrap();
        assert_eq!((d.sequence, d.entry, d.datastamp), (3, 2, 14_000));
        assert!(matches!(
            locate(&f, 0, 1000, Target::At { us: 21_000_000 }, false),
            Err(LocateError::NotYet { .. })
        ));
    }

    #[test]
    fn the_wall_clock_uses_receive_times() {
        let f = Fake::new(10);
        // Asset 9 published at 30 s; its entries received at 28, 28.5, 29, 29.5 s.
        let a = locate(
            &f,
            0,
            1000,
            Target::WallBackset {
                us: 10_000_000,
                now_us: 38_700_000,
            },
            false,
        )
        .unwrap();
        // Target 28.7 s: the entry received at 28.5 s.
        assert_eq!((a.sequence, a.entry), (9, 1));
        assert!((a.backset - 10.2).abs() < 1e-9);
    }

    #[test]
    fn older_than_the_window_fails_or_clamps() {
        let f = Fake::new(10);
        let err = locate(&f, 5, 1000, Target::Backset { us: 15_000_000 }, false).unwrap_err();
        assert!(
            err.to_string()
                .contains("assets 5..=9, 10.000 s to 20.000 s"),
            "{err}"
        );
        let c = locate(&f, 5, 1000, Target::Backset { us: 15_000_000 }, true).unwrap();
        assert_eq!((c.sequence, c.entry), (5, 0));
        assert!(locate(&f, 0, 1000, Target::Backset { us: 25_000_000 }, false).is_err());
        assert_eq!(
            locate(&Fake::new(0), 0, 1000, Target::Backset { us: 0 }, false),
            Err(LocateError::Empty)
        );
    }

    #[test]
    fn an_empty_index_or_window_answers_empty() {
        let none = Fake::new(0);
        for clamp in [false, true] {
            for target in [
                Target::Backset { us: 0 },
                Target::At { us: 0 },
                Target::Datastamp { bytes: 0 },
            ] {
                assert_eq!(
                    locate(&none, 0, 1000, target, clamp),
                    Err(LocateError::Empty)
                );
            }
        }
        // Every record expired: the first retained position is past the end.
        let f = Fake::new(3);
        assert_eq!(
            locate(&f, 3, 1000, Target::Backset { us: 0 }, true),
            Err(LocateError::Empty)
        );
    }

    #[test]
    fn a_target_on_a_key_frame_answers_that_key_frame() {
        let f = Fake::new(10);
        // 6.5 s is asset 3's second key frame; one tick earlier is its first.
        let a = locate(&f, 0, 1000, Target::At { us: 6_500_000 }, false).unwrap();
        assert_eq!((a.sequence, a.entry, a.timestamp_ticks), (3, 1, 6500));
        let b = locate(&f, 0, 1000, Target::At { us: 6_499_000 }, false).unwrap();
        assert_eq!((b.sequence, b.entry), (3, 0));
        // An asset's first byte is its first key frame's datastamp.
        let d = locate(&f, 0, 1000, Target::Datastamp { bytes: 12_000 }, false).unwrap();
        assert_eq!((d.sequence, d.entry, d.datastamp), (3, 0, 12_000));
        // The live edge itself is transmitted; its last byte too, not the next one.
        let edge = locate(&f, 0, 1000, Target::At { us: 20_000_000 }, false).unwrap();
        assert_eq!((edge.sequence, edge.entry), (9, 3));
        assert!((edge.backset - 0.5).abs() < 1e-9);
        assert!(locate(&f, 0, 1000, Target::Datastamp { bytes: 39_999 }, false).is_ok());
        assert!(matches!(
            locate(&f, 0, 1000, Target::Datastamp { bytes: 40_000 }, false),
            Err(LocateError::NotYet { .. })
        ));
    }

    #[test]
    fn before_the_window_every_kind_of_target_fails_or_clamps() {
        let f = Fake::new(10);
        // Window: assets 5..=9, 10 s to 20 s, datastamps from 20,000.
        let targets = [
            Target::Backset { us: 12_000_000 },
            Target::At { us: 9_999_000 },
            Target::Datastamp { bytes: 19_999 },
            // Received before anything retained (asset 5's entries: 20..21.5 s).
            Target::WallBackset {
                us: 30_000_000,
                now_us: 45_000_000,
            },
        ];
        for target in targets {
            let err = locate(&f, 5, 1000, target, false).unwrap_err();
            assert!(
                matches!(err, LocateError::BeforeWindow { .. }),
                "{target:?}: {err}"
            );
            let c = locate(&f, 5, 1000, target, true).unwrap();
            assert_eq!((c.sequence, c.entry, c.offset), (5, 0, 100), "{target:?}");
        }
        // Before the transmission began: there is no key to search with.
        let err = locate(&f, 0, 1000, Target::Backset { us: 21_000_000 }, false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the target (21.000 s behind the live edge at 20.000 s) is older than the \
             retained window (assets 0..=9, 0.000 s to 20.000 s); --clamp starts at the \
             oldest retained key frame"
        );
        let c = locate(&f, 0, 1000, Target::Backset { us: 21_000_000 }, true).unwrap();
        assert_eq!((c.sequence, c.entry), (0, 0));
        assert!((c.backset - 20.0).abs() < 1e-9);
    }

    /// The fake's records, with maps from `M` (which may read the fake's).
    struct WithMaps<M>(Fake, M);

    impl<M: Fn(&Fake, &Record) -> Result<Maps, String>> Source for WithMaps<M> {
        fn count(&self) -> usize {
            self.0.count()
        }
        fn record(&self, i: usize) -> Option<Record> {
            self.0.record(i)
        }
        fn maps(&self, r: &Record) -> Result<Maps, String> {
            (self.1)(&self.0, r)
        }
    }

    #[test]
    fn an_unreadable_asset_is_named() {
        let b = WithMaps(Fake::new(4), |f: &Fake, r: &Record| match r.sequence {
            2 => Err("no backset maps box".into()),
            _ => Ok(Maps {
                entries: Vec::new(),
                ..f.maps(r)?
            }),
        });
        assert_eq!(
            locate(&b, 0, 1000, Target::At { us: 5_000_000 }, false),
            Err(LocateError::BadAsset {
                sequence: 2,
                reason: "no backset maps box".into()
            })
        );
        // Clamping to an oldest asset without entry points.
        let err = locate(&b, 0, 1000, Target::Backset { us: 9_000_000 }, true).unwrap_err();
        assert_eq!(err.to_string(), "asset 0: no entry points");
    }

    #[test]
    fn the_search_reads_one_asset_among_a_million() {
        let reads = std::cell::Cell::new(0);
        let c = WithMaps(Fake::new(1_000_000), |f: &Fake, r: &Record| {
            reads.set(reads.get() + 1);
            f.maps(r)
        });
        let a = locate(&c, 0, 1000, Target::Backset { us: 30_000_000 }, false).unwrap();
        assert_eq!(a.sequence, 999_985);
        assert_eq!(reads.get(), 1);
    }
}
