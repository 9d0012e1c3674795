//! Breaking captures the way real feeds break: finding top-level boxes,
//! re-encoding `moof`s after an edit. The fixtures use 32-bit box sizes and
//! trun data offsets relative to the `moof`, which is all this handles.

use mp4_atom::{Decode, Encode, Moof};

/// A top-level box of a capture.
#[derive(Debug, Clone, Copy)]
pub struct TopBox {
    pub offset: usize,
    pub kind: [u8; 4],
    pub size: usize,
}

impl TopBox {
    pub fn end(&self) -> usize {
        self.offset + self.size
    }
}

pub fn boxes(bytes: &[u8]) -> Vec<TopBox> {
    let mut out = vec![];
    let mut offset = 0;
    while let Some(head) = bytes.get(offset..offset + 8) {
        let size = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let kind = [head[4], head[5], head[6], head[7]];
        assert!(size >= 8, "box {kind:?} at {offset}: size {size}");
        out.push(TopBox { offset, kind, size });
        offset += size;
    }
    out
}

/// The `n`-th (from 0) top-level box of `kind`.
pub fn nth_box(bytes: &[u8], kind: &[u8; 4], n: usize) -> TopBox {
    boxes(bytes)
        .into_iter()
        .filter(|b| &b.kind == kind)
        .nth(n)
        .unwrap_or_else(|| panic!("no {n}-th {}", String::from_utf8_lossy(kind)))
}

/// The capture without the top-level box at `offset`.
pub fn without_box(bytes: &[u8], offset: usize) -> Vec<u8> {
    let b = boxes(bytes)
        .into_iter()
        .find(|b| b.offset == offset)
        .expect("a box there");
    [&bytes[..b.offset], &bytes[b.end()..]].concat()
}

/// Re-encodes the moofs from the `from`-th on after `edit(n, moof)`; trun
/// data offsets follow a change of the moof's size.
pub fn edit_moofs(bytes: &[u8], from: usize, mut edit: impl FnMut(usize, &mut Moof)) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut n = 0;
    for b in boxes(bytes) {
        let raw = &bytes[b.offset..b.end()];
        if &b.kind != b"moof" || n < from {
            n += usize::from(&b.kind == b"moof");
            out.extend_from_slice(raw);
            continue;
        }
        let mut moof = Moof::decode(&mut &raw[..]).expect("a moof");
        edit(n, &mut moof);
        let mut encoded = Vec::new();
        moof.encode(&mut encoded).expect("encodes");
        let delta = encoded.len() as i32 - b.size as i32;
        for trun in moof.traf.iter_mut().flat_map(|t| &mut t.trun) {
            trun.data_offset = trun.data_offset.map(|d| d + delta);
        }
        encoded.clear();
        moof.encode(&mut encoded).expect("encodes");
        out.extend_from_slice(&encoded);
        n += 1;
    }
    out
}

/// Sets every traf's tfdt, from the `from`-th moof on, to
/// `f(track_id, original)`.
pub fn set_tfdt(bytes: &[u8], from: usize, mut f: impl FnMut(u32, u64) -> u64) -> Vec<u8> {
    edit_moofs(bytes, from, |_, moof| {
        for traf in &mut moof.traf {
            if let Some(t) = traf.tfdt.as_mut() {
                t.base_media_decode_time = f(traf.tfhd.track_id, t.base_media_decode_time);
            }
        }
    })
}
