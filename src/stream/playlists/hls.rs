//! The live HLS media playlist.

use std::fmt::Write;
use std::time::{Duration, UNIX_EPOCH};

use super::Listing;

pub fn hls(l: &Listing) -> String {
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    let target = l
        .records
        .iter()
        .map(|r| l.secs(r.duration).ceil() as u64)
        .max()
        .unwrap_or(1)
        .max(1);
    let first = l.records.first().map_or(0, |r| r.sequence);
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{target}");
    let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{first}");
    if !l.ended {
        let _ = writeln!(
            out,
            "#EXT-X-START:TIME-OFFSET=-{:.3},PRECISE=YES",
            l.start_behind_s
        );
    }
    let mut map: Option<u64> = None;
    for r in l.records {
        let name = l.naming.name(r.sequence);
        let init = Listing::init_len(r);
        // A new map only where the initialisation changes size (an encoder
        // restart): players then keep one init across segments.
        if map != Some(init) {
            let _ = writeln!(out, "#EXT-X-MAP:URI=\"{name}\",BYTERANGE=\"{init}@0\"");
            map = Some(init);
        }
        let published = UNIX_EPOCH
            + Duration::from_micros(
                r.published_us
                    .saturating_sub((l.secs(r.duration) * 1e6) as u64),
            );
        let _ = writeln!(
            out,
            "#EXT-X-PROGRAM-DATE-TIME:{}",
            humantime::format_rfc3339_millis(published)
        );
        let _ = writeln!(out, "#EXTINF:{:.5},", l.secs(r.duration));
        let _ = writeln!(out, "#EXT-X-BYTERANGE:{}@{}", r.media_len(), r.header_len);
        let _ = writeln!(out, "{name}");
    }
    if l.ended {
        out.push_str("#EXT-X-ENDLIST\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::naming::Naming;
    use crate::stream::playlists::tests::{descriptor, listing, records};

    #[test]
    fn hls_addresses_each_assets_media_part_by_byte_range() {
        let (d, rs, n) = (descriptor(), records(), Naming::default());
        let text = hls(&listing(&d, &rs, &n, false));
        assert!(text.starts_with("#EXTM3U\n#EXT-X-VERSION:7\n"));
        assert!(text.contains("#EXT-X-TARGETDURATION:2\n"));
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:3\n"));
        assert!(text.contains("#EXT-X-START:TIME-OFFSET=-6.500,PRECISE=YES\n"));
        assert_eq!(
            text.matches("#EXT-X-MAP:URI=\"asset-00000003.mp4\",BYTERANGE=\"1340@0\"")
                .count(),
            1
        );
        assert_eq!(text.matches("#EXT-X-BYTERANGE:50000@1440\n").count(), 3);
        assert!(
            text.contains("#EXTINF:2.00000,\n#EXT-X-BYTERANGE:50000@1440\nasset-00000005.mp4\n")
        );
        assert!(!text.contains("ENDLIST"));
        assert!(hls(&listing(&d, &rs, &n, true)).ends_with("#EXT-X-ENDLIST\n"));
    }
}
