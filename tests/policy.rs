//! `backset advise`, `draw` and `simulate` from the command line.

mod common;

use common::*;

fn json(args: &[&str]) -> serde_json::Value {
    let o = run(args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn advise_gives_slow_clients_more_and_prints_what_draw_reads() {
    let fast = json(&[
        "advise",
        "--throughput",
        "20Mbps",
        "--history",
        "19Mbps,21Mbps",
        "--bitrate",
        "4Mbps",
        "--json",
    ]);
    let slow = json(&[
        "advise",
        "--throughput",
        "3Mbps",
        "--history",
        "3Mbps,3.5Mbps",
        "--bitrate",
        "4Mbps",
        "--json",
    ]);
    assert!(slow["recommended_s"].as_f64() > fast["recommended_s"].as_f64());
    let crowd = json(&[
        "advise",
        "--clients",
        "5000",
        "--regions",
        "eu=4000,us=1000",
        "--region",
        "eu",
        "--throughput",
        "20Mbps",
        "--bitrate",
        "4Mbps",
        "--json",
    ]);
    assert!(crowd["coefficients"]["more"].as_f64() > fast["coefficients"]["more"].as_f64());
    let distribution = fast["distribution"].as_str().unwrap();
    assert_eq!(distribution, "backset-point-mass-exp-tails/1");
    let coeffs = fast["coeffs"].as_str().unwrap();
    let rec = format!("{}s", fast["recommended_s"].as_f64().unwrap());
    let max = format!("{}s", fast["maximum_s"].as_f64().unwrap());
    let drawn = json(&[
        "draw",
        "--recommended",
        &rec,
        "--max",
        &max,
        "--coeffs",
        coeffs,
        "--distribution",
        distribution,
        "-n",
        "2000",
        "--client",
        "a",
        "--json",
    ]);
    let backsets = drawn["backsets"].as_array().unwrap();
    assert_eq!(backsets.len(), 2000);
    let r = drawn["recommended"].as_f64().unwrap();
    assert!((r - fast["recommended_s"].as_f64().unwrap()).abs() < 1e-5);
    let equal = backsets.iter().filter(|b| b.as_f64() == Some(r)).count();
    assert!(equal > 1000, "most draws equal the recommendation: {equal}");
    assert!(backsets
        .iter()
        .all(|b| b.as_f64().unwrap() <= fast["maximum_s"].as_f64().unwrap()));
}

#[test]
fn a_faster_client_is_never_pushed_further_back() {
    // Issue 12: one fast sample among slow ones used to give the maximum.
    let at = |now: &str| {
        json(&[
            "advise",
            "--throughput",
            now,
            "--history",
            "5Mbps,6Mbps",
            "--bitrate",
            "3Mbps",
            "--json",
        ])["recommended_s"]
            .as_f64()
            .unwrap()
    };
    let (fast, slow) = (at("50Mbps"), at("2Mbps"));
    assert!(fast < slow, "50 Mbit/s: {fast} s, 2 Mbit/s: {slow} s");
    assert!(
        fast < 7.0,
        "a client well above the bitrate starts near three assets: {fast}"
    );
}

#[test]
fn draw_refuses_a_distribution_it_does_not_know() {
    let args = |name: &str| {
        run(&[
            "draw",
            "--recommended",
            "6s",
            "--max",
            "20s",
            "--coeffs",
            "less=0.1,more=0.2,down=2s,up=4s",
            "--distribution",
            name,
        ])
    };
    let unknown = args("backset-uniform/1");
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("backset-point-mass-exp-tails/1"),
        "{}",
        stderr(&unknown)
    );
    assert!(args("backset-point-mass-exp-tails/1").status.success());
}

#[test]
fn advise_reads_facts_as_json_on_stdin() {
    use std::io::Write;
    let mut child = backset()
        .args(["advise", "--facts", "-", "--json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"clients": 10, "throughput_bps": 2e6, "bitrate_bps": 3e6, "asset_duration_s": 2, "window_s": 30}"#)
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["maximum_s"].as_f64().unwrap() <= 28.0);
    assert!(v["recommended_s"].as_f64().unwrap() > 6.0);
}

#[test]
fn a_client_id_draws_the_same_backsets_every_time() {
    let args = [
        "draw",
        "--recommended",
        "20s",
        "--max",
        "60s",
        "--coeffs",
        "less=0.2,more=0.2,down=5s,up=10s",
        "-n",
        "50",
        "--client",
        "viewer-7",
    ];
    let a = run(&args);
    let b = run(&args);
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout);
    let bad = run(&[
        "draw",
        "--recommended",
        "20s",
        "--max",
        "60s",
        "--coeffs",
        "less=0.4,more=0.3,down=5s,up=10s",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("below 0.5"));
}

#[test]
fn simulate_is_deterministic_and_draws_its_chart() {
    let dir = tempfile::tempdir().unwrap();
    let plot = dir.path().join("chart.svg");
    let args = [
        "simulate",
        "--viewers",
        "80",
        "--duration",
        "4m",
        "--join-over",
        "10s",
        "--seed",
        "3",
        "--json",
    ];
    let a = json(&args);
    assert_eq!(a, json(&args));
    let outcomes = a["outcomes"].as_array().unwrap();
    assert_eq!(outcomes.len(), 3);
    // Joining together, the live-edge viewers all start on the newest asset;
    // the policy's draws spread them.
    assert!(
        outcomes[2]["peak_join_requests"].as_u64() < outcomes[0]["peak_join_requests"].as_u64()
    );
    let o = run(&[
        "simulate",
        "--viewers",
        "30",
        "--duration",
        "3m",
        "--plot",
        plot.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("(c) backset policy"));
    assert!(std::fs::read_to_string(&plot).unwrap().starts_with("<svg"));
}

#[test]
fn simulate_replays_measured_throughput() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("trace.csv");
    let mut text = String::from("a,b\n");
    for i in 0..120 {
        text.push_str(&format!("{},{}\n", if i % 20 < 5 { 1e6 } else { 8e6 }, 5e6));
    }
    std::fs::write(&csv, text).unwrap();
    let v = json(&[
        "simulate",
        "--viewers",
        "20",
        "--duration",
        "3m",
        "--trace",
        csv.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(v["viewers"], 20);
    std::fs::write(&csv, "a,b\n1,x\n").unwrap();
    let bad = run(&["simulate", "--trace", csv.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2));
}
