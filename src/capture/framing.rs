//! Top-level box framing of a byte stream that arrives in arbitrary chunks.
//!
//! Nothing here allocates what a header merely claims: a box's bytes are
//! buffered only as they arrive, and a size past `MAX_BOX` is refused.
//! Once a live capture is under way a claim is also weighed against what
//! can follow between fragments: only an `mdat` after its `moof` may be
//! large (`MAX_CLAIM` for anything else), so a lying size is read as
//! damage and the framer resynchronises on the next `moof` inside the
//! claimed range instead of buffering and discarding all of it.
//! `read_header` is the crate's one reader of box headers.

use bytes::{Bytes, BytesMut};

use crate::{Error, Result};

/// The largest top-level box accepted: one fragment of even a 100 Mbps feed
/// with 10 s GOPs stays far below this.
pub(crate) const MAX_BOX: u64 = 1 << 30;

/// The largest box believed between fragments other than a `moof`'s
/// `mdat`: a `moof`, `free`, `sidx`, `emsg` or a new `moov` is kilobytes.
pub(crate) const MAX_CLAIM: u64 = 4 << 20;

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
    /// Damaged bytes skipped just before this box: (capture offset, count).
    pub skipped_before: Option<(u64, u64)>,
    /// Why that skip began when it was a box whose claimed size was not
    /// believed (its kind, offset and claim).
    pub doubted: Option<String>,
}

impl RawBox {
    pub fn payload(&self) -> &[u8] {
        &self.bytes[self.header_len..]
    }

    pub fn kind_str(&self) -> String {
        fourcc(self.kind)
    }
}

/// What a box header says: the box's kind, the header's own length (8, or
/// 16 with a 64-bit size) and what it claims of the whole box's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BoxHeader {
    pub kind: [u8; 4],
    pub len: usize,
    pub size: Claim,
}

/// A box header's size field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    /// The whole box's size, header included, as stated: it may be
    /// impossible (smaller than the header) or huge.
    Size(u64),
    /// Size 0: the box runs to the end of the file.
    ToEnd,
    /// A 64-bit size whose bytes have not all arrived.
    Pending,
}

/// Reads the box header at the start of `bytes`: `None` before its first 8
/// bytes have arrived. The claim is reported, not judged, since each caller
/// accepts different sizes and names a refused one in its own message
/// (mp4-atom's `Header` refuses a size smaller than the header without
/// saying what it was, and waits for a 64-bit size before giving the kind).
pub(crate) fn read_header(bytes: &[u8]) -> Option<BoxHeader> {
    let &[s0, s1, s2, s3, k0, k1, k2, k3] = bytes.get(..8)? else {
        return None;
    };
    let (len, size) = match u32::from_be_bytes([s0, s1, s2, s3]) {
        0 => (8, Claim::ToEnd),
        1 => match bytes.get(8..16).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
            Some(large) => (16, Claim::Size(u64::from_be_bytes(large))),
            None => (16, Claim::Pending),
        },
        n => (8, Claim::Size(u64::from(n))),
    };
    Some(BoxHeader {
        kind: [k0, k1, k2, k3],
        len,
        size,
    })
}

pub(crate) fn fourcc(kind: [u8; 4]) -> String {
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
    /// Skip damaged stretches to the next plausible box instead of failing.
    resync: bool,
    /// Bytes skipped since the last box: (capture offset, count).
    skipped: Option<(u64, u64)>,
    /// The buffer's first bytes are kept from a skip and not yet checked.
    scanning: bool,
    seen_moov: bool,
    /// A `moof` came and its `mdat` has not: only then may an `mdat` be large.
    moof_pending: bool,
    /// Why the current skip began, when it was a doubted claim.
    doubted: Option<String>,
}

/// How far a garbage prefix is searched for the capture's first box before
/// the input is declared not an MP4.
pub(crate) const PREFIX_SEARCH: u64 = 1 << 20;
/// How far damaged data is searched for the next fragment before giving up.
pub(crate) const RESYNC_SEARCH: u64 = 64 << 20;

impl Framer {
    /// A framer for live captures: a damaged stretch is skipped to the next
    /// plausible box (an `ftyp` or `moov` at the start, a `moof` opening
    /// with its `mfhd` later), and reported on the next box ([`RawBox::skipped_before`]).
    pub fn resyncing() -> Framer {
        Framer {
            resync: true,
            ..Framer::default()
        }
    }

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
            Ok(Some((kind, _, size))) if self.doubt(kind, size).is_none() => (size as usize)
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
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    pub(crate) fn buffered(&self) -> usize {
        self.filled
    }

    /// The next complete box, or `None` until more bytes arrive.
    pub fn next_box(&mut self) -> Result<Option<RawBox>> {
        let header = loop {
            let claim = self.peek_claim().and_then(|h| self.believe(h));
            match claim.and_then(|h| self.within_limit(h)) {
                Ok(h) => break h,
                // Damage is skipped before the capture starts and once it
                // is under way, never inside its initialisation.
                Err(e) if self.resync && (!self.seen_any || self.seen_moov) => {
                    if !self.skip_to_candidate(e)? {
                        return Ok(None);
                    }
                }
                Err(e) => return Err(e),
            }
        };
        let Some((kind, header_len, size)) = header else {
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
        self.seen_moov |= &kind == b"moov";
        match &kind {
            b"moof" => self.moof_pending = true,
            b"mdat" | b"moov" => self.moof_pending = false,
            _ => {}
        }
        Ok(Some(RawBox {
            offset,
            kind,
            header_len,
            bytes,
            skipped_before: self.skipped.take(),
            doubted: self.doubted.take(),
        }))
    }

    /// Passes a header whose claim can be believed; a doubted one is
    /// damage to resync past, its reason kept for the warning at the next
    /// box.
    fn believe(
        &mut self,
        header: Option<([u8; 4], usize, u64)>,
    ) -> Result<Option<([u8; 4], usize, u64)>> {
        let Some(doubt) = header.and_then(|(kind, _, size)| self.doubt(kind, size)) else {
            return Ok(header);
        };
        if self.skipped.is_none() {
            self.doubted = Some(doubt.to_string());
        }
        Err(doubt)
    }

    /// Whether a live capture under way should not believe a box of `kind`
    /// claiming `size` bytes: only a `moof`'s `mdat` may be large.
    fn doubt(&self, kind: [u8; 4], size: u64) -> Option<Error> {
        let media = &kind == b"mdat" && self.moof_pending;
        if !self.resync || !self.seen_moov || media || size <= MAX_CLAIM {
            return None;
        }
        let why = if &kind == b"mdat" {
            "an mdat with no moof before it"
        } else {
            "more than can plausibly follow between fragments"
        };
        Some(Error::bad_box(
            self.offset,
            fourcc(kind),
            format!("claims {size} bytes, {why}; read as damage"),
        ))
    }

    /// Drops bytes up to the next plausible box start. Returns false when
    /// none is in the buffer yet (the last bytes are kept: a box header may
    /// straddle the next read). Gives up with `cause` past the search limit.
    fn skip_to_candidate(&mut self, cause: Error) -> Result<bool> {
        let data = &self.buf[..self.filled];
        // A candidate is judged on its first 16 bytes: a 32-bit header (as
        // encoders write moof, ftyp and moov) and, for a moof, its first
        // child's kind.
        let plausible = |p: usize| -> bool {
            let Some(head) = data.get(p..p + 16).and_then(read_header) else {
                return false;
            };
            let sized = |max: u64| {
                head.len == 8 && matches!(head.size, Claim::Size(s) if (16..=max).contains(&s))
            };
            let kind = &head.kind;
            if self.seen_any {
                let child = data.get(p + 8..p + 16).and_then(read_header);
                sized(MAX_CLAIM) && kind == b"moof" && child.is_some_and(|c| &c.kind == b"mfhd")
            } else {
                sized(MAX_BOX) && (kind == b"ftyp" || kind == b"moov" || kind == b"styp")
            }
        };
        let from = usize::from(!self.scanning);
        let found = (from..self.filled.saturating_sub(15)).find(|&p| plausible(p));
        let drop = found.unwrap_or_else(|| self.filled.saturating_sub(15));
        let (start, count) = self.skipped.unwrap_or((self.offset, 0));
        let count = count + drop as u64;
        let limit = if self.seen_any {
            RESYNC_SEARCH
        } else {
            PREFIX_SEARCH
        };
        if count > limit {
            return Err(match cause {
                Error::NotMp4 { .. } => Error::NotMp4 {
                    offset: start,
                    found: format!("no ftyp or moov in the first {limit} bytes"),
                },
                _ => Error::bad_box(
                    start,
                    "stream",
                    format!("lost sync and found no moof in the next {limit} bytes ({cause})"),
                ),
            });
        }
        let _ = self.buf.split_to(drop);
        self.filled -= drop;
        self.offset += drop as u64;
        self.skipped = Some((start, count));
        self.scanning = found.is_none();
        Ok(found.is_some())
    }

    /// What is left unfinished when the input ends: the box, its offset, how
    /// much of it arrived and its full size.
    pub fn unfinished(&self) -> Option<(String, u64, u64, u64)> {
        if let (true, Some((start, count))) = (self.scanning, self.skipped) {
            let count = count + self.filled as u64;
            return Some(("unsynchronised data".into(), start, count, count));
        }
        if self.filled == 0 {
            return None;
        }
        let have = self.filled as u64;
        let Some(header) = read_header(&self.buf[..self.filled]) else {
            return Some(("box header".into(), self.offset, have, 8));
        };
        let kind = fourcc(header.kind);
        let need = match self.peek_header() {
            Ok(Some((_, _, size))) => size,
            _ => have,
        };
        Some((kind, self.offset, have, need))
    }

    /// The header of the box the buffer starts with, checked for a top-level
    /// box a live capture can frame: (kind, header length, whole size). The
    /// size is at least the header's, not yet checked against any limit.
    fn peek_claim(&self) -> Result<Option<([u8; 4], usize, u64)>> {
        let Some(header) = read_header(&self.buf[..self.filled]) else {
            return Ok(None);
        };
        let kind = header.kind;
        if !TOP_LEVEL.contains(&&kind) {
            if !self.seen_any {
                return Err(Error::NotMp4 {
                    offset: self.offset,
                    found: format!("{:?}", String::from_utf8_lossy(&self.buf[..8])),
                });
            }
            return Err(Error::bad_box(
                self.offset,
                fourcc(kind),
                "not a top-level box of a fragmented MP4 (the stream is corrupt or misaligned)",
            ));
        }
        let size =
            match header.size {
                Claim::Size(size) => size,
                Claim::ToEnd => return Err(Error::bad_box(
                    self.offset,
                    fourcc(kind),
                    "size 0 (box runs to the end of the file) cannot be framed in a live capture",
                )),
                Claim::Pending => return Ok(None),
            };
        let header_len = header.len;
        if size < header_len as u64 {
            return Err(Error::bad_box(
                self.offset,
                fourcc(kind),
                format!("impossible size {size}: smaller than its own {header_len}-byte header"),
            ));
        }
        Ok(Some((kind, header_len, size)))
    }

    /// [`Framer::peek_claim`] with the size checked against [`MAX_BOX`].
    fn peek_header(&self) -> Result<Option<([u8; 4], usize, u64)>> {
        self.peek_claim().and_then(|h| self.within_limit(h))
    }

    fn within_limit(
        &self,
        header: Option<([u8; 4], usize, u64)>,
    ) -> Result<Option<([u8; 4], usize, u64)>> {
        match header {
            Some((kind, _, size)) if size > MAX_BOX => Err(Error::bad_box(
                self.offset,
                fourcc(kind),
                format!("impossible size {size}: larger than the {MAX_BOX}-byte limit for one box"),
            )),
            _ => Ok(header),
        }
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
    fn headers_are_read_with_32_and_64_bit_sizes_and_claims_kept() {
        let h = |bytes: &[u8]| read_header(bytes).map(|h| (h.len, h.size));
        let mdat = |size: u32| [&size.to_be_bytes()[..], b"mdat"].concat();
        assert_eq!(h(&mdat(9)[..7]), None);
        assert_eq!(read_header(&mdat(9)).map(|h| h.kind), Some(*b"mdat"));
        assert_eq!(h(&mdat(9)), Some((8, Claim::Size(9))));
        assert_eq!(h(&mdat(0)), Some((8, Claim::ToEnd)));
        // Impossible sizes are reported for the caller to name.
        assert_eq!(h(&mdat(3)), Some((8, Claim::Size(3))));
        let large = [mdat(1), (1u64 << 32).to_be_bytes().to_vec()].concat();
        assert_eq!(h(&large[..12]), Some((16, Claim::Pending)));
        assert_eq!(h(&large), Some((16, Claim::Size(1 << 32))));
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
    fn a_resyncing_framer_skips_garbage_to_the_next_fragment() {
        let moof = {
            let mut m = 24u32.to_be_bytes().to_vec();
            m.extend_from_slice(b"moof");
            m.extend(boxed(b"mfhd", &[0; 8]));
            m
        };
        let mut stream = b"banner\n".to_vec();
        stream.extend(boxed(b"ftyp", b"isom\0\0\0\0"));
        stream.extend(boxed(b"moov", &[0; 8]));
        stream.extend_from_slice(&[0xee; 40]);
        stream.extend(&moof);
        for chunk in [1, 5, 1000] {
            let mut f = Framer::resyncing();
            let mut got = vec![];
            for c in stream.chunks(chunk) {
                f.push(c);
                while let Some(b) = f.next_box().unwrap() {
                    got.push((b.kind, b.offset, b.skipped_before));
                }
            }
            assert_eq!(
                got,
                vec![
                    (*b"ftyp", 7, Some((0, 7))),
                    (*b"moov", 23, None),
                    (*b"moof", 79, Some((39, 40)))
                ],
                "chunk {chunk}"
            );
        }
        let mut f = Framer::resyncing();
        f.push(&[0x55; 2 << 20]);
        assert!(matches!(f.next_box(), Err(Error::NotMp4 { offset: 0, .. })));
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
