//! Finds an asset's own metadata, its maps box, among the top-level boxes
//! before its first `moof`: in bytes already read (`follow` fetches an
//! asset's header by range) or in a file (read box by box, fragments never
//! read). Box headers are read by [`crate::capture::framing`]'s reader.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::Path;

use crate::capture::framing::{read_header, Claim};
use crate::capture::maps::Maps;
use crate::{Error, Result};

/// A maps box larger than this is not one backset wrote (it would hold
/// two million entry points).
const MAX_MAPS_BOX: u64 = 64 << 20;

/// The top-level box at the start of `bytes`: (header length, whole size
/// if the header says, kind), read by the one box-header reader.
fn top_box(bytes: &[u8]) -> Option<(usize, Option<u64>, [u8; 4])> {
    let header = read_header(bytes)?;
    let size = match header.size {
        Claim::Size(size) if size >= header.len as u64 => Some(size),
        Claim::Size(_) | Claim::ToEnd => None,
        Claim::Pending => return None,
    };
    Some((header.len, size, header.kind))
}

/// Where an asset's header boxes lie in its first bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    /// The maps box, whole, if it lies within the bytes given.
    pub maps: Option<Range<usize>>,
    /// Where the first fragment starts (its `moof`, or the `emsg`/`prft`
    /// boxes before it), if it was reached.
    pub first_moof: Option<usize>,
}

impl Layout {
    /// Walks the top-level boxes of `bytes` up to the first fragment.
    pub fn of(bytes: &[u8]) -> Layout {
        let mut layout = Layout::default();
        let mut at = 0usize;
        while let Some((_, size, kind)) = top_box(&bytes[at..]) {
            if &kind == b"moof" || &kind == b"emsg" || &kind == b"prft" {
                layout.first_moof = Some(at);
                break;
            }
            // A box that runs to the end of the file, or claims less than a
            // header, ends the walk.
            let Some(size) = size.and_then(|s| usize::try_from(s).ok()) else {
                break;
            };
            let Some(end) = at.checked_add(size).filter(|&e| e <= bytes.len()) else {
                break;
            };
            if Maps::is_maps_box(&bytes[at..end]) {
                layout.maps = Some(at..end);
            }
            at = end;
        }
        layout
    }
}

/// The maps decoded from an asset's first bytes (at least its header).
pub fn maps_in(bytes: &[u8]) -> Result<Maps, String> {
    let layout = Layout::of(bytes);
    let Some(range) = layout.maps else {
        return Err(match layout.first_moof {
            Some(at) => format!("no backset maps box before the moof at byte {at}"),
            None => format!("no backset maps box in the first {} bytes", bytes.len()),
        });
    };
    let at = range.start;
    Maps::decode(&bytes[range]).map_err(|e| format!("maps box at byte {at}: {e}"))
}

/// Reads the maps of the asset at `path`, without reading its fragments.
pub fn read_maps(path: &Path) -> Result<Maps> {
    let bad = |reason: String| Error::BadFile {
        path: path.to_path_buf(),
        reason,
    };
    let mut file = File::open(path).map_err(Error::io(path))?;
    let mut offset = 0u64;
    loop {
        // Enough for a 64-bit header; a shorter read near the end is fine.
        let mut head = [0u8; 16];
        let got = read_up_to(&mut file, &mut head).map_err(Error::io(path))?;
        let Some((_, size, kind)) = top_box(&head[..got]) else {
            return Err(bad(format!("no backset maps box before byte {offset}")));
        };
        if &kind == b"moof" || &kind == b"mdat" {
            let kind = String::from_utf8_lossy(&kind);
            return Err(bad(format!(
                "no backset maps box before the {kind} at byte {offset}"
            )));
        }
        let Some(size) = size else {
            return Err(bad(format!(
                "box at byte {offset} runs to the end of the file or claims less than its own header size"
            )));
        };
        if &kind == b"uuid" && size <= MAX_MAPS_BOX {
            let mut whole = vec![0u8; size as usize];
            file.seek(SeekFrom::Start(offset))
                .map_err(Error::io(path))?;
            file.read_exact(&mut whole)
                .map_err(|_| bad(format!("uuid box at byte {offset} is truncated")))?;
            if Maps::is_maps_box(&whole) {
                return Maps::decode(&whole)
                    .map_err(|e| bad(format!("maps box at byte {offset}: {e}")));
            }
        }
        offset = offset
            .checked_add(size)
            .ok_or_else(|| bad(format!("box at byte {offset} claims {size} bytes")))?;
        file.seek(SeekFrom::Start(offset))
            .map_err(Error::io(path))?;
    }
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain_box(kind: &[u8; 4], body: usize) -> Vec<u8> {
        let mut b = ((body + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.resize(body + 8, 0);
        b
    }

    #[test]
    fn a_64_bit_box_header_is_walked_past() {
        let mut bytes = plain_box(b"ftyp", 8);
        // A 64-bit `free` of 24 bytes: size 1, kind, largesize.
        bytes.extend_from_slice(&1u32.to_be_bytes());
        bytes.extend_from_slice(b"free");
        bytes.extend_from_slice(&24u64.to_be_bytes());
        bytes.extend_from_slice(&[0; 8]);
        let moof_at = bytes.len();
        bytes.extend_from_slice(&plain_box(b"moof", 8));
        let layout = Layout::of(&bytes);
        assert_eq!(layout.first_moof, Some(moof_at));
        assert_eq!(layout.maps, None);
        assert!(maps_in(&bytes).unwrap_err().contains("before the moof"));
    }

    #[test]
    fn a_box_claiming_less_than_its_header_ends_the_walk() {
        let mut bytes = plain_box(b"ftyp", 8);
        bytes.extend_from_slice(&[0, 0, 0, 3]);
        bytes.extend_from_slice(b"free");
        assert_eq!(Layout::of(&bytes), Layout::default());
    }
}
