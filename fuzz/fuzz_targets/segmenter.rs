//! The whole core: box parser, fragment resolver, splitter and rewriter, on
//! arbitrary capture bytes fed in arbitrary chunks.
#![no_main]
use backset::capture::segmenter::{Config, Segmenter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the chunking, so splits inside boxes are explored.
    let (chunk, data) = match data.split_first() {
        Some((c, rest)) => (usize::from(*c) * 37 + 1, rest),
        None => return,
    };
    let mut s = Segmenter::new(
        Config {
            interval_us: 500_000,
            size: Some(20_000),
            ..Config::default()
        },
        None,
    );
    let mut events = Vec::new();
    for piece in data.chunks(chunk) {
        if s.push(piece, 0, &mut events).is_err() {
            break;
        }
        events.clear();
    }
    let _ = s.finish(&mut events);
});
