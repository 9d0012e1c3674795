//! Files derived from the assets, for players: each initialisation
//! generation on its own (all tracks, or one), each asset's fragments of
//! one track, and each asset's maps on their own. `segment --hls/--dash` writes them beside the assets; a
//! directory made without them is served all the same, by deriving them
//! from the asset they come from (`stream::track_view`, the same bytes).
//! Either way, one is answered only while an asset it comes from is
//! retained.

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use bytes::Bytes;

use super::assets::{from_file, from_memory, held, immutable, refused, Held, MP4};
use super::cache::Key;
use super::files;
use super::{not_found, AppState};
use crate::capture::maps::Maps;
use crate::stream::index::Record;
use crate::stream::naming::Name;
use crate::stream::reader::Stream;
use crate::stream::track_view;

/// The answer for a derived file `name` (not an asset).
pub async fn answer(
    state: &AppState,
    stream: &Stream,
    name: Name,
    headers: &HeaderMap,
) -> Response {
    let file_name = stream.naming.render(name);
    let path = state.dir.join(&file_name);
    // What expired is answered while its files are still kept for the
    // players that listed it (`stream::expiry`).
    let kept = |r: Record| {
        let on_disk = path.is_file() || stream.asset_path(r.sequence).is_file();
        on_disk.then_some(r)
    };
    let source = match name {
        Name::Init(g) | Name::TrackInit(g, _) => stream
            .retained()
            .find(|r| r.init == g)
            // An older generation's file, kept for its expired assets.
            .or_else(|| path.is_file().then(|| stream.retained().next()).flatten()),
        Name::TrackSegment(sequence, _) | Name::Maps(sequence) => stream
            .record(sequence)
            .or_else(|| stream.indexed(sequence).and_then(kept)),
        Name::Asset(_) => None,
    };
    let Some(record) = source else {
        return not_found(format!("{file_name}: no retained asset it belongs to"));
    };
    let kind = match name {
        Name::Maps(_) => "application/octet-stream",
        _ => MP4,
    };
    let mut response = if path.is_file() {
        from_file(path, None, headers, kind).await
    } else {
        match derive(state, stream, name, &record).await {
            Ok(bytes) => from_memory(bytes, None, headers, kind),
            Err(response) => return response,
        }
    };
    let etag = format!(
        "\"{}-{}-{}-{file_name}\"",
        record.sequence, record.size, record.published_us
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, v);
    }
    immutable(response)
}

/// The file's bytes, made from the asset `record` it comes from.
async fn derive(
    state: &AppState,
    stream: &Stream,
    name: Name,
    record: &Record,
) -> Result<Bytes, Response> {
    let key = Key {
        sequence: record.sequence,
        published_us: record.published_us,
        size: record.size,
    };
    let path = stream.asset_path(record.sequence);
    let asset = match held(state, key, &path).await {
        Held::Memory(bytes, _) => bytes,
        Held::File => {
            let read = async {
                let (file, len) = files::open(path, Some(key.size)).await?;
                files::read_all(file, len).await
            };
            read.await.map_err(refused)?
        }
        Held::Refused(r) => return Err(refused(r)),
    };
    let header_len = (record.header_len as usize).min(asset.len());
    let init_len = header_len.saturating_sub(Maps::encoded_len(record.entries as usize));
    let made = match name {
        Name::Init(_) => Ok(asset.slice(..init_len)),
        Name::TrackInit(_, id) => track_view::track_init(&asset[..init_len], id).map(Bytes::from),
        Name::TrackSegment(_, id) => {
            let mut out = Vec::with_capacity(asset.len() - header_len);
            track_view::track_fragments(&asset[header_len..], id, &mut out).map(|()| out.into())
        }
        Name::Maps(_) => Ok(asset.slice(init_len..header_len)),
        Name::Asset(_) => Ok(asset),
    };
    made.map_err(|e| not_found(format!("{}: {e}", stream.naming.render(name))))
}
