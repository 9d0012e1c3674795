//! Playlists for standard players, rendered as text from index records: a
//! live HLS media playlist (CMAF fMP4: each asset's media part is one
//! segment, addressed by byte range, with the asset's own `ftyp`+`moov` as
//! `EXT-X-MAP`) and a live DASH MPD (a `SegmentList` of byte ranges on the
//! same assets). No I/O: the publisher writes them beside the assets from
//! the records it holds, the server renders them per client.

use std::fmt::Write;
use std::time::{Duration, UNIX_EPOCH};

use crate::capture::maps::Maps;
use crate::stream::index::Record;
use crate::stream::naming::Naming;

/// What both playlists are made from.
pub struct Listing<'a> {
    pub records: &'a [Record],
    pub naming: &'a Naming,
    pub timescale: u32,
    pub ended: bool,
    /// How far behind live a player should start, s (the recommended backset).
    pub start_behind_s: f64,
    /// Wall-clock start of the transmission, µs since the Unix epoch.
    pub started_us: u64,
    /// Mean bitrate of the stream, bits/s.
    pub bitrate_bps: u64,
}

impl Listing<'_> {
    fn secs(&self, ticks: u64) -> f64 {
        ticks as f64 / f64::from(self.timescale.max(1))
    }

    /// Bytes of `ftyp`+`moov` at the start of an asset (before its maps).
    fn init_len(r: &Record) -> u64 {
        u64::from(r.header_len).saturating_sub(Maps::encoded_len(r.entries as usize) as u64)
    }
}

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

pub fn dash(l: &Listing) -> String {
    let iso = |us: u64| {
        humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_micros(us)).to_string()
    };
    let window = l.records.iter().map(|r| r.duration).sum::<u64>();
    let kind = if l.ended { "static" } else { "dynamic" };
    let now_us = l.records.last().map_or(l.started_us, |r| r.published_us);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = write!(
        out,
        "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" profiles=\"urn:mpeg:dash:profile:isoff-live:2011\" type=\"{kind}\" \
         availabilityStartTime=\"{}\" publishTime=\"{}\" minBufferTime=\"PT2S\"",
        iso(l.started_us),
        iso(now_us)
    );
    if l.ended {
        let total = l.records.last().map_or(0, |r| r.end());
        let _ = write!(
            out,
            " mediaPresentationDuration=\"PT{:.3}S\"",
            l.secs(total)
        );
    } else {
        let _ = write!(
            out,
            " minimumUpdatePeriod=\"PT{:.3}S\" suggestedPresentationDelay=\"PT{:.3}S\" timeShiftBufferDepth=\"PT{:.3}S\"",
            l.records.last().map_or(2.0, |r| l.secs(r.duration)),
            l.start_behind_s,
            l.secs(window)
        );
    }
    out.push_str(">\n  <Period id=\"0\" start=\"PT0S\">\n");
    out.push_str(
        "    <AdaptationSet mimeType=\"video/mp4\" segmentAlignment=\"true\" startWithSAP=\"1\">\n",
    );
    let _ = writeln!(
        out,
        "      <Representation id=\"0\" bandwidth=\"{}\">",
        l.bitrate_bps.max(1)
    );
    let first = l.records.first().map_or(0, |r| r.sequence);
    let _ = writeln!(
        out,
        "        <SegmentList timescale=\"{}\" startNumber=\"{first}\">",
        l.timescale
    );
    if let Some(r) = l.records.first() {
        let _ = writeln!(
            out,
            "          <Initialization sourceURL=\"{}\" range=\"0-{}\"/>",
            l.naming.name(r.sequence),
            Listing::init_len(r).saturating_sub(1)
        );
    }
    out.push_str("          <SegmentTimeline>\n");
    for r in l.records {
        let _ = writeln!(
            out,
            "            <S t=\"{}\" d=\"{}\"/>",
            r.start, r.duration
        );
    }
    out.push_str("          </SegmentTimeline>\n");
    for r in l.records {
        let _ = writeln!(
            out,
            "          <SegmentURL media=\"{}\" mediaRange=\"{}-{}\"/>",
            l.naming.name(r.sequence),
            r.header_len,
            r.size.saturating_sub(1)
        );
    }
    out.push_str("        </SegmentList>\n      </Representation>\n    </AdaptationSet>\n  </Period>\n</MPD>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records() -> Vec<Record> {
        (3..6)
            .map(|s| Record {
                sequence: s,
                start: s * 24576,
                duration: 24576,
                datastamp: s * 50_000,
                size: 51_440,
                header_len: 1440,
                entries: 1,
                published_us: 1_764_000_000_000_000 + s * 2_000_000,
            })
            .collect()
    }

    fn listing<'a>(records: &'a [Record], naming: &'a Naming, ended: bool) -> Listing<'a> {
        Listing {
            records,
            naming,
            timescale: 12288,
            ended,
            start_behind_s: 6.5,
            started_us: 1_764_000_000_000_000,
            bitrate_bps: 200_000,
        }
    }

    #[test]
    fn hls_addresses_each_assets_media_part_by_byte_range() {
        let (rs, n) = (records(), Naming::default());
        let text = hls(&listing(&rs, &n, false));
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
        assert!(hls(&listing(&rs, &n, true)).ends_with("#EXT-X-ENDLIST\n"));
    }

    #[test]
    fn dash_lists_the_same_ranges_with_the_delay_and_window() {
        let (rs, n) = (records(), Naming::default());
        let text = dash(&listing(&rs, &n, false));
        assert!(text.contains("type=\"dynamic\""));
        assert!(text.contains("suggestedPresentationDelay=\"PT6.500S\""));
        assert!(text.contains("timeShiftBufferDepth=\"PT6.000S\""));
        assert!(
            text.contains("<Initialization sourceURL=\"asset-00000003.mp4\" range=\"0-1339\"/>")
        );
        assert!(
            text.contains("<SegmentURL media=\"asset-00000004.mp4\" mediaRange=\"1440-51439\"/>")
        );
        assert!(text.contains("<S t=\"73728\" d=\"24576\"/>"));
        assert!(dash(&listing(&rs, &n, true)).contains("type=\"static\""));
    }
}
