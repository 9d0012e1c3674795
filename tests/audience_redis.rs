//! Two `serve` replicas of one stream sharing the audience in a real Redis
//! (`serve --audience redis://…`): each advises from the whole audience,
//! an id one issued is known to the other, a player's CMCD reported to one
//! is what the other advises from, and a Redis that goes away costs the
//! advice its facts, never an answer.

mod common;

use std::time::{Duration, Instant};

use common::live::*;
use common::redis::{start_redis_on, Redis};
use common::*;

fn start_redis() -> Option<(Redis, String)> {
    start_redis_on(common::nginx::free_port())
}

fn get(url: &str, headers: &[(&str, &str)]) -> (u16, Vec<u8>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = agent.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut resp = req.call().unwrap();
    let body = resp.body_mut().read_to_vec().unwrap();
    (resp.status().as_u16(), body)
}

fn params(url: &str, client: Option<&str>, region: &str) -> serde_json::Value {
    let query = client.map_or(String::new(), |c| format!("?client={c}"));
    let (code, body) = get(
        &format!("{url}backset.json{query}"),
        &[("x-region", region)],
    );
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

#[test]
fn replicas_advise_from_the_whole_audience_in_redis() {
    let Some((redis, redis_url)) = start_redis() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    assert!(segment(&out, &fixture("h264-aac-gop.mp4"), &[])
        .status
        .success());
    let shared = ["--audience", redis_url.as_str()];
    let (_a, a) = start_server_with(&out, "127.0.0.1:0", &shared);
    let (_b, b) = start_server_with(&out, "127.0.0.1:0", &shared);

    let me = params(&a, None, "r1")["client"]
        .as_str()
        .unwrap()
        .to_string();
    for (url, viewer, region) in [(&a, "a1", "r1"), (&a, "a2", "r1"), (&a, "a3", "r1")]
        .into_iter()
        .chain([(&b, "b1", "r2"), (&b, "b2", "r2")])
    {
        let headers = [("x-backset-client", viewer), ("x-region", region)];
        assert_eq!(get(&format!("{url}asset-00000001.mp4"), &headers).0, 200);
    }
    // The player says what it measured, to replica A.
    let session = format!("sid=\"{me}\"");
    let cmcd = [
        ("x-region", "r1"),
        ("cmcd-request", "mtp=5000"),
        ("cmcd-session", session.as_str()),
    ];
    assert_eq!(get(&format!("{a}asset-00000002.mp4"), &cmcd).0, 200);

    // Replica B knows the id A issued, the whole audience and what the
    // player told A.
    let answer = params(&b, Some(&me), "r1");
    assert_eq!(answer["client"], me.as_str(), "B verifies A's id");
    assert_eq!(answer["audience"]["clients"], 6, "{answer}");
    let share = answer["audience"]["same_region_share"].as_f64().unwrap();
    assert!((share - 4.0 / 6.0).abs() < 1e-9, "{answer}");
    assert_eq!(answer["viewer"]["throughput_source"], "player", "{answer}");
    assert_eq!(answer["viewer"]["throughput_bps"], 5_000_000.0, "{answer}");
    assert_eq!(params(&a, Some(&me), "r1")["audience"]["clients"], 6);

    // Without Redis the replicas still answer, without audience facts.
    let port: u16 = redis_url
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches("/0")
        .parse()
        .unwrap();
    drop(redis);
    let started = Instant::now();
    let answer = params(&a, Some(&me), "r1");
    assert_eq!(answer["audience"]["clients"], 0, "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(get(&format!("{b}asset-00000001.mp4"), &[]).0, 200);

    // Redis back (empty): the replicas reconnect by themselves.
    let (_redis, _) = start_redis_on(port).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while params(&a, Some(&me), "r1")["audience"]["clients"] != 1 {
        assert!(Instant::now() < deadline, "replica A never reconnected");
        std::thread::sleep(Duration::from_millis(200));
    }
}
