//! What a client asks before it plays: its backset parameters (from the
//! policy's `advise`, fed the audience log) and `locate` over HTTP.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::{client_of, json, lock, not_found, now_us, unavailable, AppState, Shared};
use crate::policy::advise::{advise, Audience};
use crate::policy::Advice;
use crate::stream::locate::{Answer, Target};
use crate::stream::reader::Stream;
use crate::units::{parse_duration_us, parse_size};
use crate::Error;

/// What the server hands a client: its backset parameters and the stream's
/// shape.
#[derive(Serialize)]
pub struct Params {
    pub client: String,
    #[serde(flatten)]
    pub advice: Advice,
    /// The coefficients as `backset draw --coeffs` reads them.
    pub coeffs: String,
    /// End of the newest published asset, s of transmission time.
    pub live_edge_s: f64,
    pub live_edge_sequence: u64,
    pub first_sequence: u64,
    pub asset_duration_s: f64,
    pub bitrate_bps: u64,
    pub prefix: String,
    pub pattern: String,
    pub ended: bool,
}

pub(super) fn advice_for(stream: &Stream, state: &Shared, client: &str) -> Option<Params> {
    let records: Vec<_> = stream.retained().collect();
    let newest = records.last()?;
    let total_ticks: u64 = records.iter().map(|r| r.duration).sum();
    let total_s = stream.seconds(total_ticks).max(1e-3);
    let bitrate = records.iter().map(|r| r.media_len()).sum::<u64>() as f64 * 8.0 / total_s;
    let asset_s = total_s / records.len() as f64;
    let facts = lock(&state.audience).facts(client, now_us());
    let advice = advise(&Audience {
        clients: facts.clients.max(1),
        same_region_share: facts.same_region_share,
        // A client not measured yet is planned for at the stream's bitrate.
        throughput_bps: facts.current_bps,
        history_bps: facts.history_bps,
        bitrate_bps: bitrate.max(1.0),
        asset_duration_s: asset_s,
        window_s: total_s,
        dip_horizon_s: 20.0,
    });
    Some(Params {
        client: client.to_string(),
        coeffs: advice.coefficients.to_arg(),
        advice,
        live_edge_s: stream.seconds(newest.end()),
        live_edge_sequence: newest.sequence,
        first_sequence: records[0].sequence,
        asset_duration_s: asset_s,
        bitrate_bps: bitrate as u64,
        prefix: stream.naming.prefix.clone(),
        pattern: stream.naming.pattern(),
        ended: stream.descriptor.ended,
    })
}

#[derive(serde::Deserialize)]
pub struct ClientQuery {
    client: Option<String>,
}

pub async fn params(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Query(q): Query<ClientQuery>,
    headers: HeaderMap,
) -> Response {
    let stream = match state.stream() {
        Ok(s) => s,
        Err(e) => return unavailable(e),
    };
    let client = client_of(&headers, q.client.as_deref(), addr);
    state.saw(&client, &headers, addr);
    match advice_for(&stream, &state, &client) {
        Some(p) => json(&p),
        None => (StatusCode::SERVICE_UNAVAILABLE, "no asset published yet\n").into_response(),
    }
}

#[derive(serde::Deserialize)]
pub struct LocateQuery {
    backset: Option<String>,
    at: Option<String>,
    datastamp: Option<String>,
    clamp: Option<String>,
}

#[derive(Serialize)]
struct Located {
    asset: String,
    #[serde(flatten)]
    answer: Answer,
}

pub async fn locate(State(state): State<AppState>, Query(q): Query<LocateQuery>) -> Response {
    let stream = match state.stream() {
        Ok(s) => s,
        Err(e) => return unavailable(e),
    };
    let target = match (&q.backset, &q.at, &q.datastamp) {
        (Some(d), None, None) => parse_duration_us(d).map(|us| Target::Backset { us }),
        (None, Some(t), None) => parse_duration_us(t).map(|us| Target::At { us }),
        (None, None, Some(b)) => parse_size(b).map(|bytes| Target::Datastamp { bytes }),
        _ => Err(Error::Usage("give one of backset=, at=, datastamp=".into())),
    };
    let target = match target {
        Ok(t) => t,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    let clamp = q.clamp.as_deref().is_some_and(|c| c != "0" && c != "false");
    match stream.locate(target, clamp) {
        Ok(answer) => json(&Located {
            asset: stream.naming.name(answer.sequence),
            answer,
        }),
        Err(e) => not_found(e.to_string()),
    }
}
