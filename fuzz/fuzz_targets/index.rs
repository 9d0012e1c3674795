//! The index reader on arbitrary file contents, and the record decoder.
#![no_main]
use backset::stream::index::{Index, Record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(r) = Record::decode(data) {
        assert_eq!(Record::decode(&r.encode()), Some(r));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("index.bin");
    std::fs::write(&path, data).expect("write");
    if let Ok(index) = Index::open(&path) {
        for r in index.iter() {
            let _ = r;
        }
        let _ = index.last();
    }
});
