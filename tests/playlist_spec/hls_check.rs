//! What RFC 8216 asks of a live HLS playlist across reloads, checked on
//! each reload of `live.m3u8` (multivariant) and the media playlist it
//! names: a fixed `EXT-X-TARGETDURATION` that every `EXTINF` rounds to at
//! most, an `EXT-X-START` at least three target durations from the end, a
//! media sequence that never goes back and always names the same segment,
//! program-date-times spaced by the durations, and no URI that 404s.

use std::collections::BTreeMap;

use super::fetch::{fetch, resolve, Fetched};

/// One segment of a media playlist.
#[derive(Debug, Clone)]
pub struct Segment {
    pub uri: String,
    pub duration: f64,
    /// (length, offset) of `EXT-X-BYTERANGE`.
    pub range: Option<(u64, u64)>,
    pub date_ms: Option<i64>,
    pub discontinuity: bool,
}

#[derive(Debug, Default)]
pub struct Media {
    pub version: u32,
    pub target: u64,
    pub sequence: u64,
    pub discontinuity_sequence: u64,
    pub start_offset: Option<f64>,
    pub independent: bool,
    pub ended: bool,
    pub maps: Vec<String>,
    pub segments: Vec<Segment>,
}

/// `NAME=value,NAME="quoted, value"` as pairs, quotes removed.
pub fn attributes(list: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let (mut key, mut value, mut in_value, mut quoted) =
        (String::new(), String::new(), false, false);
    for c in list.chars().chain(std::iter::once(',')) {
        match c {
            '"' => quoted = !quoted,
            '=' if !in_value => in_value = true,
            ',' if !quoted => {
                out.insert(std::mem::take(&mut key), std::mem::take(&mut value));
                in_value = false;
            }
            c if in_value => value.push(c),
            c => key.push(c),
        }
    }
    out
}

/// Milliseconds since the epoch of an RFC 3339 date-time.
fn date_ms(text: &str) -> Option<i64> {
    let t = humantime::parse_rfc3339(text).ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    Some(d.as_millis() as i64)
}

pub fn parse_media(text: &str) -> Result<Media, String> {
    let mut lines = text.lines();
    if lines.next() != Some("#EXTM3U") {
        return Err("no #EXTM3U first".into());
    }
    let mut m = Media::default();
    let mut next = Segment {
        uri: String::new(),
        duration: f64::NAN,
        range: None,
        date_ms: None,
        discontinuity: false,
    };
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let (tag, value) = line.split_once(':').unwrap_or((line, ""));
        let num = |v: &str| v.parse::<u64>().map_err(|e| format!("{line}: {e}"));
        match tag {
            "#EXT-X-VERSION" => m.version = num(value)? as u32,
            "#EXT-X-TARGETDURATION" => m.target = num(value)?,
            "#EXT-X-MEDIA-SEQUENCE" => m.sequence = num(value)?,
            "#EXT-X-DISCONTINUITY-SEQUENCE" => m.discontinuity_sequence = num(value)?,
            "#EXT-X-INDEPENDENT-SEGMENTS" => m.independent = true,
            "#EXT-X-ENDLIST" => m.ended = true,
            "#EXT-X-DISCONTINUITY" => next.discontinuity = true,
            "#EXT-X-START" => {
                let a = attributes(value);
                let offset = a.get("TIME-OFFSET").ok_or(format!("{line}: no offset"))?;
                m.start_offset = Some(offset.parse().map_err(|e| format!("{line}: {e}"))?);
            }
            "#EXT-X-MAP" => {
                let a = attributes(value);
                if a.contains_key("BYTERANGE") {
                    return Err(format!("{line}: the map is a whole init file"));
                }
                m.maps
                    .push(a.get("URI").cloned().ok_or(format!("{line}: no URI"))?);
            }
            "#EXT-X-PROGRAM-DATE-TIME" => next.date_ms = date_ms(value),
            "#EXTINF" => {
                let d = value.split(',').next().unwrap_or("");
                next.duration = d.parse().map_err(|e| format!("{line}: {e}"))?;
            }
            "#EXT-X-BYTERANGE" => {
                let (len, off) = value.split_once('@').ok_or(format!("{line}: no offset"))?;
                next.range = Some((num(len)?, num(off)?));
            }
            t if t.starts_with('#') => {}
            _ => {
                next.uri = line.to_string();
                let done = std::mem::replace(
                    &mut next,
                    Segment {
                        uri: String::new(),
                        duration: f64::NAN,
                        range: None,
                        date_ms: None,
                        discontinuity: false,
                    },
                );
                m.segments.push(done);
            }
        }
    }
    Ok(m)
}

/// The one variant of the multivariant playlist: its attributes and URI.
pub fn parse_multivariant(text: &str) -> Result<(BTreeMap<String, String>, String), String> {
    let lines: Vec<&str> = text.lines().collect();
    if lines.first() != Some(&"#EXTM3U") {
        return Err("no #EXTM3U first".into());
    }
    let at = lines
        .iter()
        .position(|l| l.starts_with("#EXT-X-STREAM-INF:"))
        .ok_or("no EXT-X-STREAM-INF")?;
    if lines.iter().any(|l| l.starts_with("#EXTINF")) {
        return Err("segments in a multivariant playlist".into());
    }
    let attrs = attributes(&lines[at]["#EXT-X-STREAM-INF:".len()..]);
    let uri = lines.get(at + 1).ok_or("no URI after EXT-X-STREAM-INF")?;
    Ok((attrs, uri.to_string()))
}

/// What is kept from one reload to the next.
#[derive(Debug, Default)]
pub struct Watch {
    pub reloads: usize,
    pub target: Option<u64>,
    sequence: u64,
    discontinuity_sequence: u64,
    /// Media sequence number → URI, as first listed.
    named: BTreeMap<u64, String>,
    /// URIs that 404'd after their playlist was read but were no longer
    /// listed by the next one: expired in between.
    pub raced: Vec<String>,
    pub fetched: usize,
    pub last: Option<Media>,
}

impl Watch {
    /// Reads `live.m3u8` from `base` and the media playlist it names, and
    /// checks them against each other and against the earlier reloads.
    pub fn reload(&mut self, base: &str) -> Result<(), String> {
        let multivariant = format!("{base}live.m3u8");
        let (attrs, uri) = parse_multivariant(&text_of(&multivariant)?)?;
        check_variant(&attrs)?;
        let media_url = resolve(&multivariant, &uri);
        let text = text_of(&media_url)?;
        let m = parse_media(&text).map_err(|e| format!("{e}\n{text}"))?;
        self.check(&m).map_err(|e| format!("{e}\n{text}"))?;
        let at_most = self.urls_fetch(&media_url, &m)?;
        self.fetched += at_most;
        self.reloads += 1;
        self.last = Some(m);
        Ok(())
    }

    fn check(&mut self, m: &Media) -> Result<(), String> {
        let target = *self.target.get_or_insert(m.target);
        if m.target != target {
            return Err(format!("target duration {target} became {}", m.target));
        }
        if !m.maps.is_empty() && m.version < 6 {
            return Err(format!("EXT-X-MAP needs version 6, says {}", m.version));
        }
        if m.sequence < self.sequence || m.discontinuity_sequence < self.discontinuity_sequence {
            return Err(format!(
                "media sequence {} (discontinuity {}) after {} ({})",
                m.sequence, m.discontinuity_sequence, self.sequence, self.discontinuity_sequence
            ));
        }
        (self.sequence, self.discontinuity_sequence) = (m.sequence, m.discontinuity_sequence);
        for (i, s) in m.segments.iter().enumerate() {
            if s.duration.round() as u64 > target {
                return Err(format!("EXTINF {} rounds above {target}", s.duration));
            }
            let n = m.sequence + i as u64;
            let first = self.named.entry(n).or_insert_with(|| s.uri.clone());
            if *first != s.uri {
                return Err(format!("sequence {n} named {first}, now {}", s.uri));
            }
        }
        check_dates(&m.segments)?;
        match (m.ended, m.start_offset) {
            (false, None) => Err("a live playlist without EXT-X-START".into()),
            (false, Some(o)) if -o < 3.0 * target as f64 - 1e-6 => Err(format!(
                "EXT-X-START {o} is closer than 3 target durations ({target} s) to the end"
            )),
            _ => Ok(()),
        }
    }

    /// Fetches every map and segment the playlist names (by its byte
    /// range); a 404 fails unless a fresh playlist no longer names it.
    fn urls_fetch(&mut self, media_url: &str, m: &Media) -> Result<usize, String> {
        let mut wanted: Vec<(String, Option<(u64, u64)>)> = m
            .maps
            .iter()
            .map(|u| (resolve(media_url, u), None))
            .collect();
        wanted.extend(
            m.segments
                .iter()
                .map(|s| (resolve(media_url, &s.uri), s.range)),
        );
        for (url, range) in &wanted {
            match fetch(url, *range)? {
                Fetched::Ok => {}
                Fetched::NotFound => {
                    let again = parse_media(&text_of(media_url)?)?;
                    let named = again
                        .maps
                        .iter()
                        .chain(again.segments.iter().map(|s| &s.uri));
                    if named.map(|u| resolve(media_url, u)).any(|u| &u == url) {
                        return Err(format!("404 on {url}, which the playlist still names"));
                    }
                    self.raced.push(url.clone());
                }
            }
        }
        Ok(wanted.len())
    }
}

/// The variant's description: what a player needs to choose it.
fn check_variant(a: &BTreeMap<String, String>) -> Result<(), String> {
    let num = |k: &str| a.get(k).and_then(|v| v.parse::<u64>().ok());
    let (peak, mean) = (num("BANDWIDTH"), num("AVERAGE-BANDWIDTH"));
    if !matches!((peak, mean), (Some(p), Some(m)) if p >= m && m > 0) {
        return Err(format!(
            "BANDWIDTH {peak:?}, AVERAGE-BANDWIDTH {mean:?}: {a:?}"
        ));
    }
    let codecs = a.get("CODECS").ok_or(format!("no CODECS: {a:?}"))?;
    // RFC 6381: a sample entry's code alone names no profile or object type.
    let full = codecs.split(',').all(|c| {
        let c = c.trim();
        c.contains('.') || matches!(c, "opus" | "Opus" | "ac-3" | "ec-3" | "fLaC")
    });
    if !full {
        return Err(format!("CODECS {codecs:?} are not RFC 6381 strings"));
    }
    if a.get("RESOLUTION").is_none() || a.get("FRAME-RATE").is_none() {
        return Err(format!("video without RESOLUTION or FRAME-RATE: {a:?}"));
    }
    Ok(())
}

/// Each program-date-time is the one before plus its segment's duration,
/// within a frame, except across a discontinuity.
fn check_dates(segments: &[Segment]) -> Result<(), String> {
    for pair in segments.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let (Some(da), Some(db)) = (a.date_ms, b.date_ms) else {
            return Err(format!(
                "no EXT-X-PROGRAM-DATE-TIME on {} or {}",
                a.uri, b.uri
            ));
        };
        let gap = (db - da) as f64 / 1000.0;
        if !b.discontinuity && (gap - a.duration).abs() > 0.05 {
            return Err(format!(
                "{} is dated {gap:.3} s after {}, which lasts {:.3} s",
                b.uri, a.uri, a.duration
            ));
        }
    }
    Ok(())
}

fn text_of(url: &str) -> Result<String, String> {
    super::fetch::text(url)
}

#[test]
fn the_checks_catch_what_rfc_8216_forbids() {
    let playlist = |target: u64, sequence: u64, extinf: f64, start: f64| {
        parse_media(&format!(
            "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:{sequence}\n\
             #EXT-X-START:TIME-OFFSET=-{start}\n#EXT-X-MAP:URI=\"i.mp4\"\n\
             #EXT-X-PROGRAM-DATE-TIME:2025-01-01T00:00:00.000Z\n#EXTINF:{extinf},\n#EXT-X-BYTERANGE:10@5\na-{sequence}.mp4\n\
             #EXT-X-PROGRAM-DATE-TIME:2025-01-01T00:00:02.000Z\n#EXTINF:2.0,\na-{}.mp4\n",
            sequence + 1
        ))
        .unwrap()
    };
    let mut w = Watch::default();
    assert_eq!(w.check(&playlist(2, 3, 2.0, 6.0)), Ok(()));
    assert_eq!(playlist(2, 3, 2.0, 6.0).segments[0].range, Some((10, 5)));
    assert!(w
        .check(&playlist(3, 3, 2.0, 9.0))
        .unwrap_err()
        .contains("target"));
    assert!(w
        .check(&playlist(2, 2, 2.0, 6.0))
        .unwrap_err()
        .contains("sequence"));
    assert!(w
        .check(&playlist(2, 4, 2.6, 6.0))
        .unwrap_err()
        .contains("EXTINF"));
    assert!(w
        .check(&playlist(2, 4, 2.0, 5.9))
        .unwrap_err()
        .contains("closer"));
    // 1.5 s of media dated 2 s apart.
    assert!(w
        .check(&playlist(2, 4, 1.5, 6.0))
        .unwrap_err()
        .contains("dated"));
    assert_eq!(w.check(&playlist(2, 4, 2.0, 6.0)), Ok(()));
}
