//! In-band events as the playlists signal them. DASH players read the
//! `emsg` boxes in the segments themselves once the Adaptation Set names
//! their scheme (`InbandEventStream`); HLS players learn of SCTE-35 splices
//! from the playlist (`EXT-X-DATERANGE`, RFC 8216 4.3.2.7.1): a cue out as
//! `SCTE35-OUT`, its return as `SCTE35-IN` under the same ID (and the same
//! START-DATE, with the break's DURATION), any other command as
//! `SCTE35-CMD`. Times are the events' transmission times on the
//! wall-clock anchor the program-date-times use.

use std::fmt::Write;
use std::time::{Duration, UNIX_EPOCH};

use crate::capture::ts::scte35;
use crate::stream::events::{Event, SCTE35_SCHEME};

/// The distinct (scheme, value) pairs of `events`, in first-seen order:
/// one `InbandEventStream` each.
pub fn inband_streams(events: &[Event]) -> Vec<(&str, &str)> {
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for e in events {
        let pair = (e.scheme.as_str(), e.value.as_str());
        if !seen.contains(&pair) {
            seen.push(pair);
        }
    }
    seen
}

/// `InbandEventStream` elements for an Adaptation Set, indented `indent`.
pub fn dash_inband(events: &[Event], indent: &str) -> String {
    let mut out = String::new();
    for (scheme, value) in inband_streams(events) {
        let _ = writeln!(
            out,
            "{indent}<InbandEventStream schemeIdUri=\"{}\" value=\"{}\"/>",
            xml(scheme),
            xml(value)
        );
    }
    out
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `EXT-X-DATERANGE` lines for the SCTE-35 events, times on `anchor_us`
/// (µs since the epoch at transmission time 0).
pub fn hls_dateranges(events: &[Event], anchor_us: u64) -> String {
    let date = |s: f64| {
        let us = anchor_us.saturating_add((s.max(0.0) * 1e6) as u64);
        humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_micros(us)).to_string()
    };
    let mut out = String::new();
    // Cue-outs by splice event id: a return names its break's start.
    let mut outs: Vec<(u32, f64)> = Vec::new();
    for e in events.iter().filter(|e| e.scheme == SCTE35_SCHEME) {
        let splice = scte35::parse(&e.message);
        let hex: String = e.message.iter().map(|b| format!("{b:02X}")).collect();
        let event_id = splice.as_ref().and_then(|s| s.event_id);
        let id = match event_id {
            Some(n) => format!("splice-{n}"),
            None => format!("emsg-{}-{}", e.id, (e.time_s * 1000.0).round() as i64),
        };
        let mut line = format!("#EXT-X-DATERANGE:ID=\"{id}\"");
        match (splice.and_then(|s| s.out_of_network), event_id) {
            (Some(true), Some(n)) => {
                outs.push((n, e.time_s));
                let _ = write!(line, ",START-DATE=\"{}\"", date(e.time_s));
                if let Some(d) = e.duration_s {
                    let _ = write!(line, ",PLANNED-DURATION={d:.3}");
                }
                let _ = write!(line, ",SCTE35-OUT=0x{hex}");
            }
            (Some(false), Some(n)) => {
                let start = outs.iter().rev().find(|(o, _)| *o == n).map(|(_, t)| *t);
                let _ = write!(line, ",START-DATE=\"{}\"", date(start.unwrap_or(e.time_s)));
                if let Some(start) = start {
                    let _ = write!(line, ",DURATION={:.3}", (e.time_s - start).max(0.0));
                }
                let _ = write!(line, ",SCTE35-IN=0x{hex}");
            }
            _ => {
                let _ = write!(
                    line,
                    ",START-DATE=\"{}\",SCTE35-CMD=0x{hex}",
                    date(e.time_s)
                );
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(time_s: f64, message: Vec<u8>) -> Event {
        Event {
            offset: 0,
            version: 1,
            scheme: SCTE35_SCHEME.into(),
            value: String::new(),
            id: 7,
            time_s,
            duration_s: Some(2.0),
            message,
        }
    }

    #[test]
    fn a_break_is_an_out_and_an_in_under_one_id() {
        let out = scte35::build_splice_insert(1001, 90_000, 180_000);
        let mut back = out.clone();
        // The same splice_insert with out_of_network_indicator cleared.
        back[19] &= 0x7f;
        let crc = crate::capture::ts::psi::crc32(&back[..back.len() - 4]);
        let n = back.len();
        back[n - 4..].copy_from_slice(&crc.to_be_bytes());
        let events = [event(1.5, out), event(3.5, back)];
        let text = hls_dateranges(&events, 1_764_000_000_000_000);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with("#EXT-X-DATERANGE:ID=\"splice-1001\",START-DATE=\"2025-11-24T16:00:01.500Z\",PLANNED-DURATION=2.000,SCTE35-OUT=0xFC"), "{text}");
        assert!(lines[1].starts_with("#EXT-X-DATERANGE:ID=\"splice-1001\",START-DATE=\"2025-11-24T16:00:01.500Z\",DURATION=2.000,SCTE35-IN=0xFC"), "{text}");
        assert_eq!(
            dash_inband(&events, "  "),
            "  <InbandEventStream schemeIdUri=\"urn:scte:scte35:2013:bin\" value=\"\"/>\n"
        );
    }
}
