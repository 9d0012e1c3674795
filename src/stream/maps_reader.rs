//! Reads an asset's own metadata: its maps, found before its first `moof`.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::capture::maps::Maps;
use crate::{Error, Result};

/// Reads the maps of the asset at `path`, without reading its fragments.
pub fn read_maps(path: &Path) -> Result<Maps> {
    let bad = |reason: String| Error::BadFile {
        path: path.to_path_buf(),
        reason,
    };
    let mut file = File::open(path).map_err(Error::io(path))?;
    let mut offset = 0u64;
    loop {
        let mut head = [0u8; 8];
        file.read_exact(&mut head)
            .map_err(|_| bad(format!("no backset maps box before byte {offset}")))?;
        let size = u64::from(u32::from_be_bytes([head[0], head[1], head[2], head[3]]));
        let kind = &head[4..8];
        if kind == b"moof" || kind == b"mdat" {
            return Err(bad(format!(
                "no backset maps box before the {} at byte {offset}",
                String::from_utf8_lossy(kind)
            )));
        }
        if size < 8 {
            return Err(bad(format!(
                "box at byte {offset} has impossible size {size}"
            )));
        }
        if kind == b"uuid" && size <= 64 << 20 {
            let mut rest = vec![0u8; size as usize - 8];
            file.read_exact(&mut rest)
                .map_err(|_| bad(format!("uuid box at byte {offset} is truncated")))?;
            let mut whole = head.to_vec();
            whole.extend_from_slice(&rest);
            if Maps::is_maps_box(&whole) {
                return Maps::decode(&whole)
                    .map_err(|e| bad(format!("maps box at byte {offset}: {e}")));
            }
        } else {
            file.seek(SeekFrom::Current((size - 8) as i64))
                .map_err(Error::io(path))?;
        }
        offset += size;
    }
}
