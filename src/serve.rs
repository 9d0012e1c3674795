//! The media server: a stream directory over HTTP. Assets by predictable
//! name, whole or by byte range; each client's backset parameters; `locate`;
//! HLS and DASH playlists. Only the directory's own assets, `stream.json`
//! and `index.bin` are served, and an asset only once it is published and
//! while it is retained.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::StreamExt;
use serde::Serialize;
use tower::ServiceExt;
use tower_http::cors::CorsLayer;
use tower_http::services::ServeFile;

use crate::audience::{region_of, AudienceLog};
use crate::locate::{Answer, Target};
use crate::playlist::{self, Listing};
use crate::policy::advise::{advise, Audience};
use crate::policy::Advice;
use crate::stream::Stream;
use crate::units::{parse_duration_us, parse_size};
use crate::{Error, Result};

/// How long a read of the directory's index is reused.
const REFRESH: Duration = Duration::from_millis(200);

struct Shared {
    dir: PathBuf,
    audience: Mutex<AudienceLog>,
    stream: Mutex<Option<(Instant, Arc<Stream>)>>,
}

type AppState = Arc<Shared>;

impl Shared {
    fn saw(&self, client: &str, headers: &HeaderMap, addr: SocketAddr) {
        self.audience
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .seen(client, &region(headers, addr), now_us());
    }

    fn stream(&self) -> std::result::Result<Arc<Stream>, String> {
        let mut cached = self.stream.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, s)) = cached.as_ref() {
            if at.elapsed() < REFRESH {
                return Ok(Arc::clone(s));
            }
        }
        match Stream::open(&self.dir) {
            Ok(s) => {
                let s = Arc::new(s);
                *cached = Some((Instant::now(), Arc::clone(&s)));
                Ok(s)
            }
            Err(e) => Err(format!("no stream yet: {e}\n")),
        }
    }
}

/// Serves `dir` on `listen` until SIGINT/SIGTERM; `ready` gets the bound
/// address (useful with port 0).
pub async fn serve(dir: PathBuf, listen: SocketAddr, ready: impl FnOnce(SocketAddr)) -> Result<()> {
    let state = Arc::new(Shared {
        dir: dir.clone(),
        audience: Mutex::new(AudienceLog::new(30_000_000)),
        stream: Mutex::new(None),
    });
    let app = Router::new()
        .route("/backset.json", get(params))
        .route("/locate", get(locate))
        .route("/live.m3u8", get(hls))
        .route("/live.mpd", get(dash))
        .route("/{name}", get(file))
        .layer(CorsLayer::permissive())
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| Error::Usage(format!("cannot listen on {listen}: {e}")))?;
    let local = listener.local_addr().map_err(Error::io(dir.clone()))?;
    ready(local);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown())
    .await
    .map_err(Error::io(dir))
}

async fn shutdown() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Who is asking: the id a backset client sends, else its address.
fn client_of(headers: &HeaderMap, query: Option<&str>, addr: SocketAddr) -> String {
    headers
        .get("x-backset-client")
        .and_then(|v| v.to_str().ok())
        .or(query)
        .map_or_else(|| addr.ip().to_string(), str::to_string)
}

fn region(headers: &HeaderMap, addr: SocketAddr) -> String {
    region_of(
        headers.get("x-region").and_then(|v| v.to_str().ok()),
        addr.ip(),
    )
}

fn unavailable(why: String) -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, why).into_response()
}

fn not_found(why: String) -> Response {
    (StatusCode::NOT_FOUND, why + "\n").into_response()
}

async fn file(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    let stream = match state.stream() {
        Ok(s) => s,
        Err(e) => return unavailable(e),
    };
    if name == crate::descriptor::FILE || name == crate::outdir::INDEX_FILE {
        let mut r = serve_file(state.dir.join(&name), request).await;
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        return r;
    }
    let Some(sequence) = stream.naming.sequence_of(&name) else {
        return not_found(format!("{name}: not an asset of this stream"));
    };
    let Some(record) = stream.record(sequence) else {
        let newest = stream.index.last().map(|r| r.sequence);
        return if newest.is_some_and(|n| sequence <= n) {
            not_found(format!(
                "{name}: expired (the oldest retained asset is {})",
                stream.descriptor.first_sequence
            ))
        } else {
            not_found(format!("{name}: not published yet"))
        };
    };
    let client = client_of(request.headers(), None, addr);
    state.saw(&client, request.headers(), addr);
    let mut response = serve_file(stream.asset_path(sequence), request).await;
    let headers = response.headers_mut();
    let etag = format!(
        "\"{}-{}-{}\"",
        record.sequence, record.size, record.published_us
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    // Published assets never change.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    measured(response, state, client)
}

async fn serve_file(path: PathBuf, request: Request) -> Response {
    // One read per asset of a few MB rather than 64 KiB at a time.
    match ServeFile::new(path)
        .with_buf_chunk_size(1 << 20)
        .oneshot(request)
        .await
    {
        Ok(r) => r.map(Body::new),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

/// Times the body's delivery and records the client's throughput when it
/// is done (or abandoned).
fn measured(response: Response, state: AppState, client: String) -> Response {
    struct Timing {
        state: AppState,
        client: String,
        start: Instant,
        bytes: u64,
    }
    impl Drop for Timing {
        fn drop(&mut self) {
            let secs = self.start.elapsed().as_secs_f64();
            self.state
                .audience
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .measured(&self.client, self.bytes, secs);
        }
    }
    let (parts, body) = response.into_parts();
    let mut timing = Timing {
        state,
        client,
        start: Instant::now(),
        bytes: 0,
    };
    let counted = body.into_data_stream().map(move |chunk| {
        // The whole guard moves into the closure, so it drops with the body.
        let timing = &mut timing;
        if let Ok(c) = &chunk {
            timing.bytes += c.len() as u64;
        }
        chunk
    });
    Response::from_parts(parts, Body::from_stream(counted))
}

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

fn advice_for(stream: &Stream, state: &Shared, client: &str) -> Option<Params> {
    let records: Vec<_> = stream.retained().collect();
    let newest = records.last()?;
    let total_ticks: u64 = records.iter().map(|r| r.duration).sum();
    let total_s = stream.seconds(total_ticks).max(1e-3);
    let bitrate = records.iter().map(|r| r.media_len()).sum::<u64>() as f64 * 8.0 / total_s;
    let asset_s = total_s / records.len() as f64;
    let facts = state
        .audience
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .facts(client, now_us());
    let advice = advise(&Audience {
        clients: facts.clients.max(1),
        same_region_share: facts.same_region_share,
        // A client not measured yet is planned for at the stream's bitrate.
        throughput_bps: facts.current_bps.unwrap_or(bitrate),
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
struct ClientQuery {
    client: Option<String>,
}

async fn params(
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

fn json<T: Serialize>(value: &T) -> Response {
    let body = serde_json::to_string(value).unwrap_or_default();
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

#[derive(serde::Deserialize)]
struct LocateQuery {
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

async fn locate(State(state): State<AppState>, Query(q): Query<LocateQuery>) -> Response {
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

async fn hls(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    listing_response(
        &state,
        addr,
        &headers,
        "application/vnd.apple.mpegurl",
        playlist::hls,
    )
}

async fn dash(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    listing_response(
        &state,
        addr,
        &headers,
        "application/dash+xml",
        playlist::dash,
    )
}
