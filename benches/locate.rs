//! Whole-process time of `backset locate` on a synthetic 1,000,000-asset
//! index, against `true` (process start-up) and against a 1,000-asset
//! index: locate must not grow linearly with the index.
//!
//!     cargo bench --bench locate

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use backset::capture::maps::{Entry, Maps};
use backset::stream::descriptor::{Descriptor, VERSION};
use backset::stream::index::{Record, HEADER_LEN, MAGIC, RECORD_LEN};
use backset::stream::naming::Naming;

const TIMESCALE: u32 = 1000;
const ROUNDS: usize = 40;

fn record(s: u64) -> Record {
    Record {
        sequence: s,
        start: s * 2000,
        duration: 2000,
        datastamp: s * 1_000_000,
        size: 1_000_000 + 200,
        header_len: 200,
        entries: 2,
        published_us: 1_700_000_000_000_000 + s * 2_000_000,
        init: 0,
    }
}

/// A stream directory with `n` index records; only assets a query may
/// answer with exist as files (their maps, behind an `ftyp`).
fn build(dir: &Path, n: u64) {
    std::fs::create_dir_all(dir).unwrap();
    let mut index = Vec::with_capacity(HEADER_LEN + n as usize * RECORD_LEN);
    index.extend_from_slice(MAGIC);
    index.extend_from_slice(&1u32.to_be_bytes());
    index.extend_from_slice(&(RECORD_LEN as u32).to_be_bytes());
    index.extend_from_slice(&TIMESCALE.to_be_bytes());
    index.resize(HEADER_LEN, 0);
    for s in 0..n {
        index.extend_from_slice(&record(s).encode());
    }
    std::fs::write(dir.join("index.bin"), index).unwrap();
    let naming = Naming::default();
    let wanted = (n.saturating_sub(100)..n).chain([n / 2 - 1, n / 2]);
    for s in wanted {
        let r = record(s);
        let maps = Maps {
            sequence: s,
            timescale: TIMESCALE,
            start: r.start,
            duration: r.duration,
            start_datastamp: r.datastamp,
            entries: (0..2)
                .map(|k| Entry {
                    timestamp: r.start + k * 1000,
                    datastamp: r.datastamp + k * 500_000,
                    offset: 200 + k * 500_000,
                    wallclock_us: r.published_us - 2_000_000 + k * 1_000_000,
                })
                .collect(),
        };
        let mut bytes = vec![
            0, 0, 0, 16, b'f', b't', b'y', b'p', b'i', b's', b'o', b'6', 0, 0, 0, 0,
        ];
        maps.encode(&mut bytes);
        std::fs::write(dir.join(naming.name(s)), bytes).unwrap();
    }
    let d = Descriptor {
        version: VERSION,
        prefix: naming.prefix.clone(),
        pattern: naming.pattern(),
        index: "index.bin".into(),
        timescale: TIMESCALE,
        interval_us: 2_000_000,
        size: None,
        max_duration_us: None,
        tracks: vec![],
        first_sequence: 0,
        keep_us: None,
        keep_assets: None,
        started_us: 0,
        anchor_us: None,
        composition_offset: None,
        ended: false,
        ended_us: None,
    };
    std::fs::write(dir.join("stream.json"), serde_json::to_vec(&d).unwrap()).unwrap();
}

/// Median wall time of a command over ROUNDS runs, in ms.
fn median_ms(program: &str, args: &[&str]) -> f64 {
    let mut times: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            let o = Command::new(program).args(args).output().unwrap();
            assert!(
                o.status.success(),
                "{program} {args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[ROUNDS / 2]
}

fn main() {
    let tmp = std::env::temp_dir().join(format!("backset-locate-bench-{}", std::process::id()));
    let (small, large) = (tmp.join("1k"), tmp.join("1M"));
    build(&small, 1_000);
    build(&large, 1_000_000);
    let bin = env!("CARGO_BIN_EXE_backset");
    let base = median_ms("true", &[]);
    let s = small.to_str().unwrap();
    let l = large.to_str().unwrap();
    let rows = [
        (
            "locate 1k --backset 30s",
            median_ms(bin, &["locate", s, "--backset", "30s", "--json"]),
        ),
        (
            "locate 1M --backset 30s",
            median_ms(bin, &["locate", l, "--backset", "30s", "--json"]),
        ),
        (
            "locate 1M --at 277h46m40s",
            median_ms(bin, &["locate", l, "--at", "277h46m40s", "--json"]),
        ),
        (
            "locate 1M --datastamp 500GB",
            median_ms(bin, &["locate", l, "--datastamp", "500GB", "--json"]),
        ),
    ];
    println!("whole-process median of {ROUNDS} runs; `true` takes {base:.2} ms");
    println!("{:<30} {:>9} {:>10}", "command", "ms", "x true");
    for (name, ms) in &rows {
        println!("{name:<30} {ms:>9.2} {:>10.2}", ms / base);
    }
    println!(
        "1M / 1k index: {:.2}x (1000x more records)",
        rows[1].1 / rows[0].1
    );
    let _ = std::fs::remove_dir_all(&tmp);
}
