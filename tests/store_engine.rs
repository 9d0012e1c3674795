//! The store harness against the real engines: backset's bucket client on
//! moto's S3 server (plain http endpoint, conditional puts, ranged reads),
//! and nginx caching the bucket in front of anonymous readers (the CDN
//! case: the objects' own Cache-Control decides, ranges give 206).

mod common;

use backset::bucket::client::{Bucket, Caching};
use backset::bucket::location::Location;
use bytes::Bytes;

use common::nginx::{nginx_or_skip, start_cdn};
use common::s3::S3Server;

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// An answer's status, one header and body.
fn get(url: &str, range: Option<&str>) -> (u16, String, String, Vec<u8>) {
    let mut req = ureq::get(url);
    if let Some(r) = range {
        req = req.header("Range", r);
    }
    let mut res = req.call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let header = |name: &str| {
        res.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (cache_control, cache_status) = (header("cache-control"), header("x-cache-status"));
    let body = res.body_mut().read_to_vec().expect("body reads");
    (res.status().as_u16(), cache_control, cache_status, body)
}

#[test]
fn client_and_cdn_on_a_real_s3_server() {
    let Some(server) = S3Server::start() else {
        return;
    };
    let Some(nginx_bin) = nginx_or_skip("store_engine") else {
        return;
    };
    server.create_bucket("engine", true);
    // Bucket::connect reads the standard AWS variables, as the CLI does.
    // This is the only test of this binary, so no other thread reads the
    // environment while it is set.
    for (name, value) in server.env() {
        std::env::set_var(name, value);
    }
    let location = Location {
        bucket: "engine".into(),
        prefix: "ch1".into(),
    };
    let bucket = Bucket::connect(&location).expect("connects");

    // Not a multiple of anything, so a wrong range shows.
    let asset: Vec<u8> = (0..300_001u32).map(|i| (i * 7 % 251) as u8).collect();
    let name = "asset-00000001.mp4";
    bucket
        .put(name, Bytes::from(asset.clone()), Caching::Immutable)
        .expect("put");
    let part = bucket.get_range(name, 1000..5003).expect("ranged read");
    assert_eq!(part.as_deref(), Some(&asset[1000..5003]));
    assert_eq!(
        bucket.get_range("asset-00000002.mp4", 0..8).expect("read"),
        None
    );

    // Above MULTIPART_ABOVE an asset goes up in parts, and reads back as
    // one object, across the parts' joins and with its caching.
    let big: Vec<u8> = (0..40 * 1024 * 1024 + 17u32)
        .map(|i| (i * 13 % 241) as u8)
        .collect();
    let big_name = "asset-00000009.mp4";
    bucket
        .put(big_name, Bytes::from(big.clone()), Caching::Immutable)
        .expect("multipart put");
    let join = backset::bucket::client::MULTIPART_ABOVE as u64;
    for range in [join - 3..join + 5, 2 * join - 1..2 * join + 1] {
        let got = bucket.get_range(big_name, range.clone()).expect("read");
        let want = &big[range.start as usize..range.end as usize];
        assert_eq!(got.as_deref(), Some(want), "{range:?}");
    }
    let whole = bucket.get(big_name).expect("read").expect("there");
    assert!(whole == big, "the multipart object reads back other bytes");
    let url = server.url("engine", &format!("ch1/{big_name}"));
    let (status, cc, _, body) = get(&url, Some("bytes=0-99"));
    assert_eq!(
        (status, cc.as_str(), &body[..]),
        (206, IMMUTABLE, &big[..100])
    );

    // The single-writer lease: create once, then only from its version.
    let lease = "writer.lease";
    let first = bucket
        .put_if(lease, Bytes::from_static(b"a"), None)
        .expect("put_if")
        .expect("created");
    assert!(bucket
        .put_if(lease, Bytes::from_static(b"b"), None)
        .expect("put_if")
        .is_err());
    let second = bucket
        .put_if(lease, Bytes::from_static(b"c"), Some(first.clone()))
        .expect("put_if")
        .expect("updated from its version");
    assert!(
        bucket
            .put_if(lease, Bytes::from_static(b"d"), Some(first))
            .expect("put_if")
            .is_err(),
        "a stale version must conflict"
    );
    assert_eq!(bucket.get(lease).expect("get").as_deref(), Some(&b"c"[..]));
    assert_ne!(second.e_tag, None);

    // Anonymous readers straight from the store, then through the CDN.
    let (status, cc, _, body) = get(&server.url("engine", &format!("ch1/{name}")), None);
    assert_eq!(
        (status, cc.as_str(), body.len()),
        (200, IMMUTABLE, asset.len())
    );
    let dir = tempfile::tempdir().unwrap();
    let origin = format!("{}/", server.url("engine", "ch1"));
    let (_nginx, cdn, _log) = start_cdn(&nginx_bin, dir.path(), &origin);
    let (status, cc, cache, body) = get(&format!("{cdn}{name}"), None);
    assert_eq!(
        (status, cc.as_str(), cache.as_str()),
        (200, IMMUTABLE, "MISS")
    );
    assert!(body == asset, "the CDN gave other bytes");
    let (status, cc, cache, body) = get(&format!("{cdn}{name}"), Some("bytes=1000-5002"));
    assert_eq!(
        (status, cc.as_str(), cache.as_str()),
        (206, IMMUTABLE, "HIT")
    );
    assert!(body == asset[1000..5003], "the CDN's range is other bytes");
    // The lease says no-store: the CDN must go to the store every time.
    let (_, _, cache, _) = get(&format!("{cdn}{lease}"), None);
    let (status, cc, cache_again, body) = get(&format!("{cdn}{lease}"), None);
    assert_eq!(
        (status, cc.as_str(), body.as_slice()),
        (200, "no-store", &b"c"[..])
    );
    assert_eq!((cache.as_str(), cache_again.as_str()), ("MISS", "MISS"));
}
