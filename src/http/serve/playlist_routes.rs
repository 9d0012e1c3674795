//! The live HLS and DASH playlists, each starting this client at its
//! recommended backset: `/live.m3u8` (the HLS multivariant playlist, which
//! carries the viewer's `?client=` on to the media playlist it names),
//! `/live-av.m3u8` (the HLS media playlist) and `/live.mpd`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::params::advice_for;
use super::viewer::ViewerQuery;
use super::{unavailable, AppState, Peer, Shared};
use crate::stream::playlists::{self, Listing};

/// A playlist format: its media type and how it is rendered.
pub struct Format {
    content_type: &'static str,
    render: fn(&Listing) -> String,
}

const HLS: Format = Format {
    content_type: "application/vnd.apple.mpegurl",
    render: playlists::multivariant,
};
const HLS_MEDIA: Format = Format {
    content_type: "application/vnd.apple.mpegurl",
    render: playlists::hls,
};
const DASH: Format = Format {
    content_type: "application/dash+xml",
    render: playlists::dash,
};

pub async fn hls(
    state: State<AppState>,
    peer: ConnectInfo<Peer>,
    query: Query<ViewerQuery>,
    headers: HeaderMap,
) -> Response {
    listing(&state, peer.addr, &headers, &query, &HLS).await
}

pub async fn hls_media(
    state: State<AppState>,
    peer: ConnectInfo<Peer>,
    query: Query<ViewerQuery>,
    headers: HeaderMap,
) -> Response {
    listing(&state, peer.addr, &headers, &query, &HLS_MEDIA).await
}

pub async fn dash(
    state: State<AppState>,
    peer: ConnectInfo<Peer>,
    query: Query<ViewerQuery>,
    headers: HeaderMap,
) -> Response {
    listing(&state, peer.addr, &headers, &query, &DASH).await
}

async fn listing(
    state: &Shared,
    addr: SocketAddr,
    headers: &HeaderMap,
    query: &ViewerQuery,
    format: &Format,
) -> Response {
    let stream = match state.stream() {
        Ok(s) => s,
        Err(e) => return unavailable(e),
    };
    let asker = state.saw(headers, query, addr).await;
    let client = asker.key;
    // The id the media playlist's URL carries: the verified one however it
    // came (header, query, CMCD), else whatever `?client=` said.
    let carried = match asker.issued {
        true => Some(client.as_str()),
        false => query.client.as_deref(),
    };
    let Some(params) = advice_for(&stream, state, &client).await else {
        return (StatusCode::SERVICE_UNAVAILABLE, "no asset published yet\n").into_response();
    };
    let records: Vec<_> = stream.retained().collect();
    let events = state
        .events
        .events(&records, |sequence| stream.asset_path(sequence))
        .await;
    let text = (format.render)(&Listing {
        events: &events,
        descriptor: &stream.descriptor,
        records: &records,
        naming: &stream.naming,
        start_behind_s: params.advice.recommended_s,
        bitrate_bps: params.bitrate_bps,
        client: carried,
    });
    (
        [
            (header::CONTENT_TYPE, format.content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        text,
    )
        .into_response()
}
