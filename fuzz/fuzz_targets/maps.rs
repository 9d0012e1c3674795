//! The maps box decoder; whatever decodes must encode back to the same bytes.
#![no_main]
use backset::capture::maps::Maps;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Maps::decode(data) {
        let mut out = Vec::new();
        m.encode(&mut out);
        assert_eq!(out.as_slice(), &data[..out.len()]);
    }
});
