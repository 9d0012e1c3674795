//! The media server: a stream directory over HTTP. Assets by predictable
//! name, whole or by byte range; each client's backset parameters; `locate`;
//! HLS and DASH playlists. Only the directory's own assets, `stream.json`
//! and `index.bin` are served, and an asset only once it is published and
//! while it is retained.

mod assets;
mod audience;
pub(crate) mod audience_log;
mod audience_redis;
mod cache;
pub(crate) mod client_id;
pub(crate) mod delivery;
mod derived;
mod event_cache;
mod files;
mod flight;
mod listener;
mod params;
mod playlist_routes;
mod range;
pub(crate) mod viewer;

pub use crate::http::api::Params;
pub use listener::Limits;

use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use tower_http::cors::CorsLayer;

use crate::http::serve::audience::Audience;
use crate::http::serve::audience_log::AudienceLog;
use crate::http::serve::audience_redis::RedisAudience;
use crate::stream::reader::Stream;
use crate::{Error, Result};
use cache::RecentAssets;
use client_id::Issuer;
use flight::Flights;
use viewer::{Asker, ViewerQuery};

/// A viewer counts in the audience this long after its last request, µs.
const ACTIVE_US: u64 = 30_000_000;

/// How long a read of the directory's index is reused.
const REFRESH: Duration = Duration::from_millis(200);

#[derive(Debug, Clone)]
pub struct Config {
    pub dir: PathBuf,
    pub listen: SocketAddr,
    /// Memory for the most recently requested assets, bytes (0: none).
    pub cache_bytes: u64,
    /// Viewers the audience log holds at most.
    pub max_viewers: usize,
    /// Bytes the asset reads shared by waiting requests may hold together
    /// (past it, answers come from the files a piece at a time).
    pub shared_read_bytes: u64,
    pub limits: Limits,
    /// Keep the audience in Redis at this URL (`redis://host:port/db`),
    /// shared by every replica, instead of in this process.
    pub audience: Option<String>,
}

impl Config {
    /// The defaults of `backset serve` for `dir` on `listen`.
    pub fn new(dir: PathBuf, listen: SocketAddr) -> Config {
        Config {
            dir,
            listen,
            cache_bytes: 64 << 20,
            max_viewers: 100_000,
            shared_read_bytes: 32 << 20,
            limits: Limits {
                header_timeout: Duration::from_secs(10),
                idle_timeout: Duration::from_secs(60),
                max_connections: 10_000,
                max_header_bytes: 32 << 10,
            },
            audience: None,
        }
    }
}

struct Shared {
    dir: PathBuf,
    audience: Audience,
    stream: Mutex<Option<(Instant, Arc<Stream>)>>,
    /// Issues viewer ids and checks them, under a secret drawn at start.
    ids: Issuer,
    cache: Mutex<RecentAssets>,
    flights: Flights,
    /// The in-band events of assets the playlists listed.
    events: event_cache::EventCache,
}

type AppState = Arc<Shared>;

/// Who a request came from: the peer's address, and the connection's
/// socket, whose `TCP_INFO` says what the peer acknowledged.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub addr: SocketAddr,
    pub fd: RawFd,
}

/// A panic elsewhere must not take the server's bookkeeping down with it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// The viewer behind a request, recorded as seen now.
    async fn saw(&self, headers: &HeaderMap, query: &ViewerQuery, addr: SocketAddr) -> Asker {
        let asker = viewer::asker(&self.ids, headers, query, addr);
        self.record(&asker).await;
        asker
    }

    async fn record(&self, asker: &Asker) {
        self.audience
            .seen(&asker.key, &asker.region, &asker.cmcd, now_us())
            .await;
    }

    /// A new id for a viewer that has none the server can verify.
    fn issue(&self) -> String {
        self.ids.issue(rand::random())
    }

    fn stream(&self) -> std::result::Result<Arc<Stream>, String> {
        let mut cached = lock(&self.stream);
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

/// Serves the directory until SIGINT/SIGTERM; `ready` gets the bound
/// address (useful with port 0).
pub async fn serve(config: Config, ready: impl FnOnce(SocketAddr)) -> Result<()> {
    let Config {
        dir,
        listen,
        cache_bytes,
        max_viewers,
        shared_read_bytes,
        limits,
        audience,
    } = config;
    let (audience, secret) = match &audience {
        Some(url) => {
            let redis = RedisAudience::connect(url, ACTIVE_US, max_viewers).await?;
            let secret = redis.secret();
            (Audience::redis(redis), secret)
        }
        None => (
            Audience::Memory(Mutex::new(AudienceLog::new(ACTIVE_US, max_viewers))),
            rand::random(),
        ),
    };
    let state = Arc::new(Shared {
        dir: dir.clone(),
        audience,
        stream: Mutex::new(None),
        ids: Issuer::new(secret),
        cache: Mutex::new(RecentAssets::new(cache_bytes)),
        flights: Flights::new(shared_read_bytes),
        events: event_cache::EventCache::default(),
    });
    let app = Router::new()
        .route("/backset.json", get(params::params))
        .route("/locate", get(params::locate))
        .route("/live.m3u8", get(playlist_routes::hls))
        .route("/live-av.m3u8", get(playlist_routes::hls_media))
        .route("/live.mpd", get(playlist_routes::dash))
        .route("/time", get(time))
        .route("/{name}", get(assets::file))
        .layer(CorsLayer::permissive())
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| Error::Network(format!("cannot listen on {listen}: {e}")))?;
    let local = listener.local_addr().map_err(Error::io(dir.clone()))?;
    ready(local);
    listener::run(listener, app, limits, shutdown()).await;
    Ok(())
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

/// The server's clock for players' `UTCTiming`
/// (`urn:mpeg:dash:utc:http-iso:2014`): ISO 8601 UTC, milliseconds.
async fn time() -> Response {
    let now = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
    ([(header::CACHE_CONTROL, "no-store")], now).into_response()
}

fn unavailable(why: String) -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, why).into_response()
}

fn not_found(why: String) -> Response {
    (StatusCode::NOT_FOUND, why + "\n").into_response()
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
