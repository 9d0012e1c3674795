//! The live HLS and DASH playlists, each starting this client at its
//! recommended backset.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::params::advice_for;
use super::viewer::ViewerQuery;
use super::{unavailable, AppState, Peer, Shared};
use crate::stream::playlists::{self, Listing};

fn listing_response(
    state: &Shared,
    addr: SocketAddr,
    headers: &HeaderMap,
    query: &ViewerQuery,
    content_type: &'static str,
    render: fn(&Listing) -> String,
) -> Response {
    let stream = match state.stream() {
        Ok(s) => s,
        Err(e) => return unavailable(e),
    };
    let client = state.saw(headers, query, addr).key;
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
    Query(query): Query<ViewerQuery>,
    headers: HeaderMap,
) -> Response {
    listing_response(
        &state,
        addr,
        &headers,
        &query,
        "application/vnd.apple.mpegurl",
        playlists::hls,
    )
}

pub async fn dash(
    State(state): State<AppState>,
    ConnectInfo(Peer { addr, .. }): ConnectInfo<Peer>,
    Query(query): Query<ViewerQuery>,
    headers: HeaderMap,
) -> Response {
    listing_response(
        &state,
        addr,
        &headers,
        &query,
        "application/dash+xml",
        playlists::dash,
    )
}
