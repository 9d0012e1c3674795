//! One track of an asset on its own, for players that want one component
//! per Representation (DASH): the initialisation with that track alone, and
//! the asset's fragments with that track's `traf` and sample bytes alone.
//! Pure functions of bytes, so `segment --dash` writes them beside each
//! asset and `serve` derives them from an asset it holds, identically.
//!
//! The `moov` is filtered as bytes, never decoded and re-encoded: what the
//! encoder wrote (edit lists, user data, sample entries mp4-atom does not
//! know) stays as it was. Fragments are the ones backset itself wrote
//! (`capture::fragment_writer`: offsets from the `moof`, every sample's size
//! explicit), so those are decoded and written anew.

use mp4_atom::{Decode, Encode, Header, Moof};

use crate::capture::framing::{read_header, Claim};
use crate::{Error, Result};

/// The top-level boxes of `bytes` as (kind, start, end); `what` names the
/// bytes in errors.
fn boxes(bytes: &[u8], what: &str) -> Result<Vec<([u8; 4], usize, usize)>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let bad = |why: &str| Error::bad_box(at as u64, what, why.to_string());
        let header = read_header(&bytes[at..]).ok_or_else(|| bad("truncated box header"))?;
        let len = match header.size {
            Claim::Size(n) => usize::try_from(n).map_err(|_| bad("box too large"))?,
            Claim::ToEnd => bytes.len() - at,
            Claim::Pending => return Err(bad("truncated box header")),
        };
        if len < header.len || at + len > bytes.len() {
            return Err(bad("box size runs past its container"));
        }
        out.push((header.kind, at, at + len));
        at += len;
    }
    Ok(out)
}

/// A box of `kind` around `payload`, its size field as small as it fits.
fn boxed(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 16);
    match u32::try_from(payload.len() + 8) {
        Ok(size) => out.extend_from_slice(&size.to_be_bytes()),
        Err(_) => {
            out.extend_from_slice(&1u32.to_be_bytes());
            out.extend_from_slice(kind);
            out.extend_from_slice(&(payload.len() as u64 + 16).to_be_bytes());
            out.extend_from_slice(payload);
            return out;
        }
    }
    out.extend_from_slice(kind);
    out.extend_from_slice(payload);
    out
}

/// The payload of a full box after its header (8 or 16 bytes).
fn payload(bytes: &[u8]) -> &[u8] {
    let len = read_header(bytes).map_or(8, |h| h.len);
    bytes.get(len..).unwrap_or_default()
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// The track id of a `trak`, from its `tkhd` (version 0: after two 32-bit
/// times; version 1: after two 64-bit ones).
fn trak_id(trak: &[u8]) -> Option<u32> {
    let inner = payload(trak);
    let (_, start, end) = boxes(inner, "trak")
        .ok()?
        .into_iter()
        .find(|(kind, _, _)| kind == b"tkhd")?;
    let tkhd = payload(&inner[start..end]);
    match tkhd.first()? {
        0 => u32_at(tkhd, 12),
        _ => u32_at(tkhd, 20),
    }
}

/// `mvex` with the `trex` of `track_id` alone.
fn mvex_of(mvex: &[u8], track_id: u32) -> Result<Vec<u8>> {
    let inner = payload(mvex);
    let mut kept = Vec::with_capacity(inner.len());
    for (kind, start, end) in boxes(inner, "mvex")? {
        let child = &inner[start..end];
        if &kind != b"trex" || u32_at(payload(child), 4) == Some(track_id) {
            kept.extend_from_slice(child);
        }
    }
    Ok(boxed(b"mvex", &kept))
}

/// The initialisation (`ftyp` + `moov`, as at the start of an asset) with
/// the track `track_id` alone; an error when it has no such track.
pub fn track_init(init: &[u8], track_id: u32) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(init.len());
    let mut found = false;
    for (kind, start, end) in boxes(init, "init")? {
        let top = &init[start..end];
        if &kind != b"moov" {
            out.extend_from_slice(top);
            continue;
        }
        let inner = payload(top);
        let mut kept = Vec::with_capacity(inner.len());
        for (kind, start, end) in boxes(inner, "moov")? {
            let child = &inner[start..end];
            match &kind {
                b"trak" if trak_id(child) == Some(track_id) => {
                    found = true;
                    kept.extend_from_slice(child);
                }
                b"trak" => {}
                b"mvex" => kept.extend(mvex_of(child, track_id)?),
                _ => kept.extend_from_slice(child),
            }
        }
        out.extend(boxed(b"moov", &kept));
    }
    if !found {
        return Err(Error::BadFile {
            path: "init".into(),
            reason: format!("no track {track_id} in the initialisation"),
        });
    }
    Ok(out)
}

/// The fragments of an asset's body (or of a whole asset: its `ftyp`,
/// `moov` and maps are left out) with track `track_id` alone, appended to
/// `out`. Event boxes (`emsg`, `prft`) are kept, before the fragment they
/// preceded; a fragment without the track leaves nothing, its events
/// included.
pub fn track_fragments(body: &[u8], track_id: u32, out: &mut Vec<u8>) -> Result<()> {
    let mut pending: Vec<&[u8]> = Vec::new();
    let mut moof: Option<(usize, usize)> = None;
    for (kind, start, end) in boxes(body, "asset")? {
        match &kind {
            b"moof" => moof = Some((start, end)),
            b"mdat" => {
                let Some((m_start, m_end)) = moof.take() else {
                    continue;
                };
                let before = out.len();
                for b in pending.drain(..) {
                    out.extend_from_slice(b);
                }
                if !one_fragment(body, (m_start, m_end), (start, end), track_id, out)? {
                    out.truncate(before);
                }
            }
            b"emsg" | b"prft" => pending.push(&body[start..end]),
            _ => {}
        }
    }
    Ok(())
}

/// The composition offset (presentation less decode time) of track
/// `track_id`'s first sample in `fragment` (boxes as an asset holds them),
/// in that track's ticks; `None` when it has no sample of the track or
/// cannot be read.
pub fn first_composition_offset(fragment: &[u8], track_id: u32) -> Option<i64> {
    let (_, start, end) = boxes(fragment, "fragment")
        .ok()?
        .into_iter()
        .find(|(kind, _, _)| kind == b"moof")?;
    let moof = Moof::decode(&mut &fragment[start..end]).ok()?;
    let traf = moof.traf.iter().find(|t| t.tfhd.track_id == track_id)?;
    let first = traf.trun.iter().find_map(|t| t.samples.iter().next())?;
    Some(first.cts.unwrap_or(0))
}

/// One `moof` + `mdat` cut down to a track; false when the track is not in it.
fn one_fragment(
    body: &[u8],
    (m_start, m_end): (usize, usize),
    (d_start, d_end): (usize, usize),
    track_id: u32,
    out: &mut Vec<u8>,
) -> Result<bool> {
    let fail = |why: String| Error::bad_box(m_start as u64, "moof", why);
    let mut decoded = Moof::decode(&mut &body[m_start..m_end])
        .map_err(|e| fail(format!("cannot decode: {e}")))?;
    decoded.traf.retain(|t| t.tfhd.track_id == track_id);
    let Some(traf) = decoded.traf.first_mut() else {
        return Ok(false);
    };
    if traf.tfhd.base_data_offset.is_some() || !traf.tfhd.default_base_is_moof {
        return Err(fail(
            "fragment not written by backset (data not addressed from the moof)".into(),
        ));
    }
    let mut data: Vec<(usize, usize)> = Vec::with_capacity(traf.trun.len());
    for trun in &traf.trun {
        let offset = usize::try_from(trun.data_offset.unwrap_or(0))
            .map_err(|_| fail("negative data offset".into()))?;
        let mut len = 0usize;
        for s in &trun.samples {
            len += s
                .size
                .ok_or_else(|| fail("a sample without its size".into()))?
                as usize;
        }
        let from = m_start + offset;
        if from < d_start || from + len > d_end {
            return Err(fail("sample data outside its mdat".into()));
        }
        data.push((from, from + len));
    }
    let payload_len: usize = data.iter().map(|(a, b)| b - a).sum();
    let encode_err = |e: mp4_atom::Error| fail(format!("cannot encode: {e}"));
    let mut mdat_header = Vec::with_capacity(16);
    Header {
        kind: b"mdat".into(),
        size: Some(payload_len),
    }
    .encode(&mut mdat_header)
    .map_err(encode_err)?;
    // The moof's size does not depend on the offsets' values.
    let mut probe = Vec::new();
    decoded.encode(&mut probe).map_err(encode_err)?;
    let mut at = probe.len() + mdat_header.len();
    for (trun, (a, b)) in decoded.traf[0].trun.iter_mut().zip(&data) {
        trun.data_offset = Some(i32::try_from(at).map_err(|_| fail("fragment too large".into()))?);
        at += b - a;
    }
    decoded.encode(out).map_err(encode_err)?;
    out.extend_from_slice(&mdat_header);
    for (a, b) in data {
        out.extend_from_slice(&body[a..b]);
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::maps::Maps;
    use crate::capture::tests::support::{
        assets_media, fixture, media, parse, segment, Published, Tracks,
    };

    /// The init of a published asset: its header without the maps.
    fn init_of(a: &Published) -> &[u8] {
        let maps = Maps::encoded_len(a.maps().entries.len());
        &a.asset.header[..a.asset.header.len() - maps]
    }

    /// Every track's samples, read back from the per-track files of each
    /// asset played back to back.
    fn per_track_media(assets: &[&Published]) -> Tracks {
        let mut tracks = Tracks::new();
        for a in assets {
            for track in &parse(&a.bytes).init.tracks {
                let mut file = track_init(init_of(a), track.id).expect("track init");
                let init_len = file.len();
                track_fragments(a.body(), track.id, &mut file).expect("fragments");
                let parsed = parse(&file);
                assert_eq!(parsed.init.tracks.len(), 1, "one track in its init");
                assert_eq!(parsed.init.tracks[0].id, track.id);
                assert!(file.len() > init_len, "track {} has fragments", track.id);
                for f in &parsed.fragments {
                    media(&parsed.init, f, &mut tracks);
                }
            }
        }
        tracks
    }

    #[test]
    fn each_track_alone_keeps_its_samples_and_drops_the_others() {
        for name in [
            "h264-aac-gop.mp4",
            "hevc-aac-separate-moof.mp4",
            "aac-only.mp4",
        ] {
            let outcome = segment(fixture(name), 2_000_000);
            let assets = outcome.assets();
            assert!(assets.len() > 1, "{name}");
            let want = assets_media(&assets);
            assert_eq!(per_track_media(&assets), want, "{name}");
        }
    }

    #[test]
    fn event_boxes_go_with_each_track() {
        let outcome = segment(fixture("h264-aac-emsg.mp4"), 2_000_000);
        let count = |bytes: &[u8]| {
            boxes(bytes, "x")
                .unwrap()
                .iter()
                .filter(|(k, _, _)| k == b"emsg")
                .count()
        };
        let mut carried = 0;
        for a in outcome.assets() {
            for track in [1, 2] {
                let mut out = Vec::new();
                track_fragments(a.body(), track, &mut out).unwrap();
                assert_eq!(count(&out), count(a.body()), "asset {}", a.maps().sequence);
            }
            carried += count(a.body());
        }
        assert!(
            carried >= 2,
            "the fixture's SCTE-35 events are in the assets"
        );
    }

    #[test]
    fn the_first_key_frame_is_presented_after_its_decode_time_with_b_frames() {
        let outcome = segment(fixture("h264-aac-gop.mp4"), 2_000_000);
        let body = outcome.assets()[0].body();
        // Two frames of 512 ticks: x264's B-frame delay at 24 fps, 12288 Hz.
        assert_eq!(first_composition_offset(body, 1), Some(1024));
        assert_eq!(first_composition_offset(body, 2), Some(0));
        assert_eq!(first_composition_offset(body, 9), None);
        assert_eq!(first_composition_offset(&body[..20], 1), None);
    }

    #[test]
    fn a_track_that_is_not_there_is_refused_and_damage_is_named() {
        let outcome = segment(fixture("h264-aac-gop.mp4"), 2_000_000);
        let a = outcome.assets()[0];
        assert!(track_init(init_of(a), 9).is_err());
        let mut out = Vec::new();
        track_fragments(a.body(), 9, &mut out).expect("no such track: nothing");
        assert!(out.is_empty());
        let cut = &a.body()[..a.body().len() - 5];
        let err = track_fragments(cut, 1, &mut out).expect_err("a cut body");
        assert!(err.to_string().contains("runs past"), "{err}");
    }
}
