//! Top-level box framing of a byte stream that arrives in arbitrary chunks.
//!
//! Nothing here allocates what a header merely claims: a box's bytes are
//! buffered only as they arrive, and a size past [`MAX_BOX`] is refused.

use bytes::{Buf, Bytes, BytesMut};

use crate::{Error, Result};

/// The largest top-level box accepted: one fragment of even a 100 Mbps feed
/// with 10 s GOPs stays far below this.
pub const MAX_BOX: u64 = 1 << 30;

/// How much of a box's claimed size is reserved ahead of its bytes: enough
/// to grow a large `mdat` in one step, too little for a lie to matter.
const RESERVE_AHEAD: usize = 64 << 20;

/// A complete top-level box and where it started in the capture.
#[derive(Debug, Clone)]
pub struct RawBox {
    pub offset: u64,
    pub kind: [u8; 4],
    pub header_len: usize,
    /// The whole box, header included.
    pub bytes: Bytes,
}

impl RawBox {
    pub fn payload(&self) -> &[u8] {
        &self.bytes[self.header_len..]
    }

    pub fn kind_str(&self) -> String {
        fourcc(self.kind)
    }
}

pub fn fourcc(kind: [u8; 4]) -> String {
    if kind.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        String::from_utf8_lossy(&kind).into_owned()
    } else {
        format!(
            "0x{}",
            kind.iter().map(|b| format!("{b:02x}")).collect::<String>()
        )
    }
}

/// Boxes that may stand at the top level of a fragmented MP4 stream.
const TOP_LEVEL: &[&[u8; 4]] = &[
    b"ftyp", b"styp", b"moov", b"moof", b"mdat", b"sidx", b"ssix", b"free", b"skip", b"mfra",
    b"emsg", b"prft", b"uuid", b"meta", b"pdin", b"wide",
];

/// The least room a fresh buffer gets.
const CHUNK: usize = 256 << 10;

#[derive(Debug, Default)]
pub struct Framer {
    /// `buf[..filled]` holds capture bytes not yet returned as boxes;
    /// `buf[filled..]` is zeroed room that reads land in directly.
    buf: BytesMut,
    filled: usize,
    /// Capture offset of `buf[0]`.
    offset: u64,
    seen_any: bool,
}

impl Framer {
    /// Appends bytes received elsewhere.
    pub fn push(&mut self, chunk: &[u8]) {
        self.make_room(chunk.len());
        self.buf[self.filled..self.filled + chunk.len()].copy_from_slice(chunk);
        self.filled += chunk.len();
    }

    /// Reads once from `r` straight into the buffer (no intermediate copy).
    /// Returns what `read` returned: 0 at end of input.
    pub fn read_from(&mut self, r: &mut (impl std::io::Read + ?Sized)) -> std::io::Result<usize> {
        self.make_room(1);
        let n = r.read(&mut self.buf[self.filled..])?;
        self.filled += n;
        Ok(n)
    }

    /// Ensures `at_least` bytes of room after the data. A fresh buffer is
    /// sized for the rest of the box being read (within limits), so a large
    /// `mdat` is read into place rather than copied as it grows; only the
    /// part of a box already received moves. Zeroed allocations come from
    /// the allocator already zero, so this costs no pass over the memory.
    fn make_room(&mut self, at_least: usize) {
        if self.buf.len() - self.filled >= at_least {
            return;
        }
        let rest = match self.peek_header() {
            Ok(Some((_, _, size))) => (size as usize)
                .saturating_sub(self.filled)
                .min(RESERVE_AHEAD),
            _ => 0,
        };
        let room = at_least.max(rest).max(CHUNK);
        let mut fresh = BytesMut::zeroed(self.filled + room);
        fresh[..self.filled].copy_from_slice(&self.buf[..self.filled]);
        self.buf = fresh;
    }

    /// Capture offset of the first byte not yet returned as a box.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn buffered(&self) -> usize {
        self.filled
    }

    /// The next complete box, or `None` until more bytes arrive.
    pub fn next_box(&mut self) -> Result<Option<RawBox>> {
        let Some((kind, header_len, size)) = self.peek_header()? else {
            return Ok(None);
        };
        if (self.filled as u64) < size {
            return Ok(None);
        }
        let bytes = self.buf.split_to(size as usize).freeze();
        self.filled -= size as usize;
        let offset = self.offset;
        self.offset += size;
        self.seen_any = true;
        Ok(Some(RawBox {
            offset,
            kind,
            header_len,
            bytes,
        }))
    }

    /// What is left unfinished when the input ends: the box, its offset, how
    /// much of it arrived and its full size.
    pub fn unfinished(&self) -> Option<(String, u64, u64, u64)> {
        if self.filled == 0 {
            return None;
        }
        let have = self.filled as u64;
        if have < 8 {
            return Some(("box header".into(), self.offset, have, 8));
        }
        let kind = fourcc([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]);
        let need = match self.peek_header() {
            Ok(Some((_, _, size))) => size,
            _ => have,
        };
        Some((kind, self.offset, have, need))
    }

    fn peek_header(&self) -> Result<Option<([u8; 4], usize, u64)>> {
        if self.filled < 8 {
            return Ok(None);
        }
        let mut head = &self.buf[..self.filled];
        let size32 = head.get_u32();
        let kind: [u8; 4] = [head[0], head[1], head[2], head[3]];
        head.advance(4);
        if !TOP_LEVEL.contains(&&kind) {
            if !self.seen_any {
                return Err(Error::NotMp4 {
                    offset: self.offset,
                    found: format!(
                        "{:?}",
                        String::from_utf8_lossy(&self.buf[..8])
                    ),
                });
            }
            return Err(Error::bad_box(
                self.offset,
                fourcc(kind),
                "not a top-level box of a fragmented MP4 (the stream is corrupt or misaligned)",
            ));
        }
        let (header_len, size) =
            match size32 {
                0 => return Err(Error::bad_box(
                    self.offset,
                    fourcc(kind),
                    "size 0 (box runs to the end of the file) cannot be framed in a live capture",
                )),
                1 => {
                    if head.len() < 8 {
                        return Ok(None);
                    }
                    (16usize, head.get_u64())
                }
                n => (8usize, u64::from(n)),
            };
        if size < header_len as u64 {
            return Err(Error::bad_box(
                self.offset,
                fourcc(kind),
                format!("impossible size {size}: smaller than its own {header_len}-byte header"),
            ));
        }
        if size > MAX_BOX {
            return Err(Error::bad_box(
                self.offset,
                fourcc(kind),
                format!("impossible size {size}: larger than the {MAX_BOX}-byte limit for one box"),
            ));
        }
        Ok(Some((kind, header_len, size)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn boxes_come_out_whole_whatever_the_chunking() {
        let mut stream = boxed(b"ftyp", b"isom\0\0\0\0");
        stream.extend(boxed(b"free", &[7; 100]));
        for chunk in [1, 3, 7, 500] {
            let mut f = Framer::default();
            let mut got = vec![];
            for c in stream.chunks(chunk) {
                f.push(c);
                while let Some(b) = f.next_box().unwrap() {
                    got.push((b.kind, b.offset, b.bytes.len()));
                }
            }
            assert_eq!(got, vec![(*b"ftyp", 0, 16), (*b"free", 16, 108)]);
            assert!(f.unfinished().is_none());
        }
    }

    #[test]
    fn lies_and_garbage_are_refused_with_their_offset() {
        let mut f = Framer::default();
        f.push(b"GIF89a\0\0\0\0\0\0");
        assert!(matches!(f.next_box(), Err(Error::NotMp4 { offset: 0, .. })));

        let mut f = Framer::default();
        f.push(&boxed(b"ftyp", b"isom\0\0\0\0"));
        f.push(&[0, 0, 0, 4, b'm', b'o', b'o', b'f']);
        f.next_box().unwrap();
        let err = f.next_box().unwrap_err().to_string();
        assert!(
            err.contains("moof at byte 16") && err.contains("impossible size 4"),
            "{err}"
        );

        let mut f = Framer::default();
        f.push(&[
            0, 0, 0, 1, b'm', b'd', b'a', b't', 0xff, 0, 0, 0, 0, 0, 0, 0,
        ]);
        assert!(f.next_box().unwrap_err().to_string().contains("limit"));
    }

    #[test]
    fn a_partial_tail_is_reported_not_returned() {
        let mut f = Framer::default();
        let b = boxed(b"mdat", &[1; 50]);
        f.push(&b[..30]);
        assert!(f.next_box().unwrap().is_none());
        assert_eq!(f.unfinished(), Some(("mdat".into(), 0, 30, 58)));
    }
}
