//! Top-level box framing on arbitrary bytes.
#![no_main]
use backset::capture::framing::Framer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut f = Framer::default();
    f.push(data);
    while let Ok(Some(b)) = f.next_box() {
        assert!(b.bytes.len() >= b.header_len);
    }
    let _ = f.unfinished();
});
