//! Copies of `moov` and `moof` trees that keep only the boxes backset
//! reads, made before the box decoder sees them. Boxes backset never uses
//! (sample groups, subsample and auxiliary information, user data) are what
//! a damaged capture can turn against the decoder: mp4-atom 0.17 decodes a
//! version-0 `sgpd` of an unknown grouping type into entries that consume
//! no input, so an 895-byte capture claiming millions of them took 300 MB,
//! and one claiming 2^32 would exhaust memory. What is kept is copied as it
//! is; the capture's own bytes, not these copies, go into the assets.

use crate::capture::framing::{read_header, Claim};

/// Children kept inside each container that is walked; a container not
/// listed here is kept whole, as a leaf.
fn kept(container: &[u8; 4]) -> Option<&'static [&'static [u8; 4]]> {
    Some(match container {
        b"moov" => &[b"mvhd", b"trak", b"mvex"],
        b"trak" => &[b"tkhd", b"mdia"],
        b"mdia" => &[b"mdhd", b"hdlr", b"minf"],
        b"minf" => &[
            b"vmhd", b"smhd", b"nmhd", b"sthd", b"hmhd", b"dinf", b"stbl",
        ],
        b"stbl" => &[b"stsd", b"stts", b"stsc", b"stsz", b"stco", b"co64"],
        b"mvex" => &[b"mehd", b"trex"],
        b"moof" => &[b"mfhd", b"traf"],
        b"traf" => &[b"tfhd", b"tfdt", b"trun"],
        _ => return None,
    })
}

/// The box `bytes` (header included) with what backset does not read left
/// out. Anything malformed is copied unchanged from where it starts, so the
/// decoder reports it as it would have.
pub(crate) fn essential(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    copy_box(bytes, &mut out);
    out
}

/// One box at the start of `bytes`: (header length, box length, kind), for
/// a box that fits in `bytes` (8- or 16-byte header; size 0 runs to the end).
fn header(bytes: &[u8]) -> Option<(usize, usize, [u8; 4])> {
    let header = read_header(bytes)?;
    let size = match header.size {
        Claim::Size(size) => usize::try_from(size).ok()?,
        Claim::ToEnd => bytes.len(),
        Claim::Pending => return None,
    };
    (header.len <= size && size <= bytes.len()).then_some((header.len, size, header.kind))
}

fn copy_box(bytes: &[u8], out: &mut Vec<u8>) {
    let Some((header_len, size, kind)) = header(bytes) else {
        out.extend_from_slice(bytes);
        return;
    };
    let Some(children) = kept(&kind) else {
        out.extend_from_slice(&bytes[..size]);
        return;
    };
    let start = out.len();
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&kind);
    let mut rest = &bytes[header_len..size];
    while !rest.is_empty() {
        let Some((_, child_size, child)) = header(rest) else {
            out.extend_from_slice(rest);
            break;
        };
        if children.contains(&&child) {
            copy_box(&rest[..child_size], out);
        }
        rest = &rest[child_size..];
    }
    // No larger than the original, whose size was checked to fit in memory;
    // a 64-bit original is written back with a 32-bit size when it fits.
    let len = out.len() - start;
    match u32::try_from(len) {
        Ok(n) => out[start..start + 4].copy_from_slice(&n.to_be_bytes()),
        Err(_) => {
            out.truncate(start);
            out.extend_from_slice(&bytes[..size]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = ((8 + body.len()) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn unread_boxes_are_left_out_at_every_level() {
        let tfhd = bx(b"tfhd", &[0; 8]);
        let sgpd = bx(
            b"sgpd",
            &[0, 0, 0, 0, b'x', b'y', b'z', b'w', 255, 255, 255, 255],
        );
        let trun = bx(b"trun", &[0; 8]);
        let traf = bx(b"traf", &[tfhd.clone(), sgpd, trun.clone()].concat());
        let mfhd = bx(b"mfhd", &[0; 8]);
        let moof = bx(
            b"moof",
            &[mfhd.clone(), bx(b"udta", b"hello"), traf].concat(),
        );
        let want = bx(
            b"moof",
            &[mfhd, bx(b"traf", &[tfhd, trun].concat())].concat(),
        );
        assert_eq!(essential(&moof), want);
    }

    #[test]
    fn a_tree_with_nothing_to_leave_out_is_unchanged() {
        let stbl = bx(b"stbl", &bx(b"stsd", &[1, 2, 3]));
        let minf = bx(b"minf", &stbl);
        assert_eq!(essential(&minf), minf);
    }

    #[test]
    fn malformed_children_are_copied_for_the_decoder_to_report() {
        let mut moov = bx(b"moov", &bx(b"mvhd", &[0; 4]));
        moov.extend_from_slice(&[0, 0, 0, 99, b't', b'r']);
        let n = moov.len() as u32;
        moov[..4].copy_from_slice(&n.to_be_bytes());
        assert_eq!(essential(&moov), moov);
        assert_eq!(essential(&[0, 0]), vec![0, 0]);
    }
}
