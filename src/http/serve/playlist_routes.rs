//! The live HLS and DASH playlists, each starting this client at its
//! recommended backset.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::params::advice_for;
use super::{client_of, unavailable, AppState, Peer, Shared};
use crate::stream::playlists::{self, Listing};

fn listing_response(
    state: &Shared,
    addr: SocketAddr,
    headers: &HeaderMap,
    content_type: &'static str,
    render: fn(&Listing) -> String,
) -> Response {
    let stream = match state.stream() {
        Ok(s) => s,
        Err(e) => return unavailable(e),
    };
    let client = client_of(headers, None, addr);
    let Some(params) = advice_for(&stream, state, &client) else {
        return (StatusCode::SERVICE_UNAVAILABLE, "no asset published yet\n").into_response();
    };
    let records: Vec<_> = stream.retained().collect();
    let text = render(&Listing {
        records: &records,
        naming: &stream.naming,
        timescale: stream.index.timescale,
        ended: stream.descriptor.ended,
        start_behind_s: params.advice.recommended_s,
        started_us: stream.descriptor.started_us,
        bitrate_bps: params.bitrate_bps,
    });
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        text,
    )
        .into_response()
}

pub async fn hls(
    State(state): State<AppState>,
    ConnectInfo(Peer { addr, .. }): ConnectInfo<Peer>,
    headers: HeaderMap,
) -> Response {
    listing_response(
        &state,
        addr,
        &headers,
        "application/vnd.apple.mpegurl",
        playlists::hls,
    )
}

pub async fn dash(
    State(state): State<AppState>,
    ConnectInfo(Peer { addr, .. }): ConnectInfo<Peer>,
    headers: HeaderMap,
) -> Response {
    listing_response(
        &state,
        addr,
        &headers,
        "application/dash+xml",
        playlists::dash,
    )
}
