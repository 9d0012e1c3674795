//! What the `Started` event tells of each fixture's tracks, the facts
//! playlists name them by: the RFC 6381 codecs string, the exact frame rate
//! and the declared bitrate; and the `cmfc` brand in every asset's `ftyp`.

use super::support::*;

#[test]
fn print_tracks() {
    for (name, bytes) in FIXTURES {
        let o = segment(bytes, 2 * SECOND);
        for t in o.starts()[0].0 {
            eprintln!("{name}: {} {} {:?} {:?}", t.codec, t.codecs, t.frame_rate, t.bitrate_bps);
        }
    }
}
