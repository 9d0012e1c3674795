//! The live DASH MPD.

use std::fmt::Write;
use std::time::{Duration, UNIX_EPOCH};

use super::Listing;

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
    use crate::stream::naming::Naming;
    use crate::stream::playlists::tests::{descriptor, listing, records};

    #[test]
    fn dash_lists_the_same_ranges_with_the_delay_and_window() {
        let (d, rs, n) = (descriptor(), records(), Naming::default());
        let text = dash(&listing(&d, &rs, &n, false));
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
        assert!(dash(&listing(&d, &rs, &n, true)).contains("type=\"static\""));
    }
}
