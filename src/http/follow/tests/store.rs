//! Whole follow sessions, on the fake clock, against a static host that
//! keeps the index as object storage does (a bucket's HTTP endpoint, or a
//! CDN or nginx in front of one): no `index.bin`, but `index-head.bin` and
//! immutable chunks of 1024 records ([`crate::bucket::index_form`]),
//! written by [`Head::push`] as the publisher writes them.

use super::*;
use crate::bucket::index_form::{chunk_name, Head, CHUNK_RECORDS, HEAD};
use crate::stream::locate::Source;
use crate::stream::store::INDEX_FILE;

use super::super::static_host::View;

/// The head object's longest length: a header and a chunk of records.
const HEAD_LIMIT: u64 = 64 + CHUNK_RECORDS * 64;

impl Server {
    /// The same stream on a static host in front of an object store;
    /// `named`: its `stream.json` names the head object as the index.
    fn store_host(mut self, named: bool) -> Server {
        self.statik = true;
        self.store = Some(StoreForm { named });
        self
    }

    /// An object of the index at `t`, as the publisher leaves it: the
    /// head, and each chunk the head moved past, deleted once every record
    /// in it is older than the window (retention).
    pub(super) fn store_object(&self, name: &str, t: u64) -> Option<Vec<u8>> {
        self.store?;
        let mut head = Head::empty(1000, 0);
        let mut chunks = Vec::new();
        for record in self.records(t) {
            chunks.extend(head.push(record));
        }
        if name == HEAD {
            return Some(head.encode());
        }
        let (first, _) = self.window(t);
        chunks
            .into_iter()
            .zip(1u64..)
            .find(|((n, _), end)| n == name && end * CHUNK_RECORDS > first)
            .map(|((_, bytes), _)| bytes)
    }
}

/// The chunk records a run read: (chunk, position, byte range).
fn chunk_reads(run: &Run) -> Vec<(String, u64, Range<u64>)> {
    requests(run)
        .into_iter()
        .filter_map(|r| match r {
            Request::ChunkRecord {
                name,
                position,
                range,
            } => Some((name, position, range)),
            _ => None,
        })
        .collect()
}

fn count(run: &Run, wanted: impl Fn(&Request) -> bool) -> usize {
    requests(run).iter().filter(|r| wanted(r)).count()
}

#[test]
fn a_store_hosts_head_is_read_when_there_is_no_index_bin() {
    let server = Server::regular(6, 2 * ASSET_MS);
    let served = run(&server, config(Some(2.5), 30_000), usize::MAX);
    let stored = run(
        &server.store_host(false),
        config(Some(2.5), 30_000),
        usize::MAX,
    );
    let report = stored.result.as_ref().unwrap();
    // The same entry point, bytes and end as `serve`'s locate gives.
    assert_eq!(stored.out, expected(0, 5));
    assert_eq!(stored.out, served.out);
    assert_eq!((report.achieved_s, report.first_sequence), (2.5, 0));
    assert_eq!((report.last_sequence, report.stopped), (5, Stopped::Ended));
    let r = requests(&stored);
    let head = Request::StoreHead {
        name: HEAD.into(),
        len: HEAD_LIMIT,
    };
    assert_eq!(
        r[..4],
        [
            Request::Params,
            Request::Descriptor,
            Request::IndexHead,
            head.clone()
        ]
    );
    assert_eq!(head.range(), None, "the head object is read whole");
    // index.bin is asked for once: the host's form is remembered, and the
    // head is read again when the transmission has ended.
    assert_eq!(count(&stored, |r| *r == Request::IndexHead), 1);
    assert_eq!(count(&stored, |r| *r == head), 2, "{r:?}");
    // Six records: all in the head, none read by range.
    assert!(!r
        .iter()
        .any(|r| matches!(r, Request::Record { .. } | Request::ChunkRecord { .. })));
    let said = format!("no {INDEX_FILE}, reading the index as object storage keeps it: {HEAD}");
    assert!(stored.said.contains(&said), "{:?}", stored.said);
}

#[test]
fn a_descriptor_that_names_the_head_is_believed_without_asking_for_index_bin() {
    let server = Server::regular(6, 2 * ASSET_MS).store_host(true);
    let run = run(&server, config(Some(2.5), 30_000), usize::MAX);
    assert_eq!(run.out, expected(0, 5));
    assert_eq!(count(&run, |r| *r == Request::IndexHead), 0);
    assert!(count(&run, |r| matches!(r, Request::StoreHead { .. })) > 0);
}

#[test]
fn a_long_chunked_index_is_searched_with_few_ranged_reads() {
    // 100,000 assets all published: 97 full chunks, 672 records in the head.
    let mut server = Server::regular(100_000, 100_000 * ASSET_MS).store_host(false);
    server.ended_at = u64::MAX;
    let mut config = config(Some(3.5), 30_000);
    config.run_for = Some(Duration::from_millis(1));
    let run = run(&server, config, usize::MAX);
    let report = run.result.as_ref().unwrap();
    // Live edge at 100,000 s; 3.5 s back lands on asset 99,996's second entry.
    assert_eq!((report.first_sequence, report.achieved_s), (99_996, 3.5));
    let reads = chunk_reads(&run);
    // A search of log2(100,000) ≈ 17 steps, the head's records not among
    // them (they came with it), and no index.bin record at all.
    assert!(!reads.is_empty() && reads.len() <= 17 + 2, "{reads:?}");
    let in_head = 97 * CHUNK_RECORDS;
    for (name, position, range) in &reads {
        assert!(*position < in_head, "{position} is in the head");
        assert_eq!(*name, chunk_name(position / CHUNK_RECORDS));
        let at = 64 + 64 * (position % CHUNK_RECORDS);
        assert_eq!(*range, at..at + 64);
    }
    assert_eq!(count(&run, |r| matches!(r, Request::Record { .. })), 0);
    assert_eq!(count(&run, |r| matches!(r, Request::StoreHead { .. })), 1);
    let (_, position, range) = &reads[0];
    assert_eq!(
        Request::ChunkRecord {
            name: String::new(),
            position: *position,
            range: range.clone()
        }
        .range(),
        Some(format!("bytes={}-{}", range.start, range.end - 1))
    );
}

#[test]
fn expired_chunks_are_deleted_and_the_search_keeps_to_the_window() {
    // 4000 assets, the first 1100 expired: chunk 0 (records 0 to 1023) is
    // deleted, chunk 1 holds the window's start.
    let mut server = Server::regular(4000, 4000 * ASSET_MS).store_host(false);
    server.ended_at = u64::MAX;
    for a in &mut server.assets[..1100] {
        a.1 = 0;
    }
    assert_eq!(server.store_object(&chunk_name(0), 0), None);
    assert!(server.store_object(&chunk_name(1), 0).is_some());
    let mut config = config(Some(3.5), 30_000);
    config.run_for = Some(Duration::from_millis(1));
    let run = run(&server, config, usize::MAX);
    assert_eq!(run.result.as_ref().unwrap().first_sequence, 3996);
    let reads = chunk_reads(&run);
    assert!(!reads.is_empty());
    assert!(reads.iter().all(|(_, p, _)| *p >= 1100), "{reads:?}");
}

#[test]
fn a_chunk_gone_under_the_search_reads_the_window_again_then_gives_up() {
    let server = Server::regular(4000, 4000 * ASSET_MS).store_host(false);
    // Every chunk answered 404: the window is read again a few times.
    let mut machine = Machine::new(config(Some(2.5), 1000));
    let mut next = machine.start(Duration::ZERO);
    let mut asked = Vec::new();
    let err = loop {
        assert!(asked.len() < 100, "runs away: {asked:?}");
        let Action::Fetch(fetch) = next else {
            panic!("{next:?}");
        };
        asked.push(fetch.request.clone());
        let reply = match fetch.request {
            Request::ChunkRecord { .. } => Reply::NotFound,
            _ => server.answer(&fetch, 4000 * ASSET_MS),
        };
        match machine.handle(Duration::ZERO, Input::Reply(reply)) {
            Ok(action) => next = action,
            Err(e) => break e,
        }
    };
    assert!(matches!(err, Error::BadAnswer(_)), "{err}");
    assert!(err.to_string().contains("index-0000000"), "{err}");
    let gone = asked
        .iter()
        .position(|r| matches!(r, Request::ChunkRecord { .. }))
        .unwrap();
    assert_eq!(asked[gone + 1], Request::Descriptor);
    assert!(matches!(asked[gone + 2], Request::StoreHead { .. }));
    let chunks = asked
        .iter()
        .filter(|r| matches!(r, Request::ChunkRecord { .. }))
        .count();
    assert_eq!(chunks, 4);
}

#[test]
fn a_fresh_head_keeps_the_records_the_older_one_held() {
    let server = Server::regular(3000, 0).store_host(false);
    let view_at = |t: u64| View::from_store_head(&server.store_object(HEAD, t).unwrap()).unwrap();
    // At 2000 s: chunk 0 full, records 1024 to 2000 in the head.
    let mut view = view_at(2_000 * ASSET_MS);
    assert_eq!(View::count(&mut view), Ok(2001));
    assert_eq!(Source::record(&view, 1500).map(|r| r.sequence), Some(1500));
    // At 2100 s the head has moved on to chunk 2: record 1500 is in chunk 1
    // now, yet known without reading it.
    let newer = view_at(2_100 * ASSET_MS);
    assert_eq!(Source::record(&newer, 1500), None, "a fresh view lacks it");
    view.refresh(newer);
    assert_eq!(View::count(&mut view), Ok(2101));
    assert_eq!(Source::record(&view, 1500).map(|r| r.sequence), Some(1500));
    assert_eq!(Source::record(&view, 2050).map(|r| r.sequence), Some(2050));
    assert_eq!(
        view.record_request(10),
        Ok(Request::ChunkRecord {
            name: chunk_name(0),
            position: 10,
            range: 64 + 640..64 + 704
        })
    );
}

#[test]
fn a_store_host_advises_from_the_window_and_the_measured_link() {
    let mut server = Server::regular(6, 2 * ASSET_MS).store_host(false);
    server.rate_bps = Some(40_000.0);
    let run = run(&server, config(None, 30_000), usize::MAX);
    let report = run.result.as_ref().unwrap();
    let r = requests(&run);
    let probe = r
        .iter()
        .position(|r| matches!(r, Request::Probe { .. }))
        .unwrap();
    // After the probe: stream.json and the head again, not index.bin.
    assert_eq!(r[probe + 1], Request::Descriptor);
    assert!(matches!(r[probe + 2], Request::StoreHead { .. }), "{r:?}");
    assert!(close(report.probe_throughput_bps.unwrap(), 40_000.0));
    assert!(report.recommended_s <= report.maximum_s && report.maximum_s <= 2.0 + 1e-9);
    assert_eq!(report.stopped, Stopped::Ended);
}

#[test]
fn saving_from_a_store_host_fetches_the_first_asset_whole() {
    let server = Server::regular(6, 2 * ASSET_MS).store_host(false);
    let mut config = config(Some(2.5), 30_000);
    config.save = Some("unused by the machine".into());
    let run = run(&server, config, usize::MAX);
    assert_eq!(run.out, expected(0, 5));
    assert_eq!(fetched(&run, "asset-00000000.mp4"), [0]);
    assert_eq!(
        count(&run, |r| matches!(
            r,
            Request::Header { .. } | Request::From { .. }
        )),
        0
    );
}
