//! Assets by predictable name, whole or by byte range: from memory for the
//! newest ones, from the file otherwise; each response's delivery to the
//! viewer is measured into the audience log.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use tower::ServiceExt;
use tower_http::services::ServeFile;

use super::audience_log::MIN_MEASURED_BYTES;
use super::cache::Key;
use super::delivery::{tcp_info, Meter, Reading};
use super::viewer::ViewerQuery;
use super::{lock, not_found, unavailable, AppState, Peer};

/// Memory answers go out in pieces this size, so the time to deliver them
/// follows the connection, not a single hand-off.
const PIECE: usize = 256 * 1024;

pub async fn file(
    State(state): State<AppState>,
    ConnectInfo(Peer { addr, fd }): ConnectInfo<Peer>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    let stream = match state.stream() {
        Ok(s) => s,
        Err(e) => return unavailable(e),
    };
    if name == crate::stream::descriptor::FILE || name == crate::stream::store::INDEX_FILE {
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
    let query = Query::<ViewerQuery>::try_from_uri(request.uri())
        .map_or_else(|_| ViewerQuery::default(), |q| q.0);
    let client = state.saw(request.headers(), &query, addr).key;
    let etag = format!(
        "\"{}-{}-{}\"",
        record.sequence, record.size, record.published_us
    );
    let etag = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\""));
    let mut response = if matches_etag(request.headers(), &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let key = Key {
            sequence,
            published_us: record.published_us,
            size: record.size,
        };
        let path = stream.asset_path(sequence);
        match held(&state, key, &path).await {
            Some(bytes) => from_memory(bytes, request.headers()),
            None => serve_file(path, request).await,
        }
    };
    let headers = response.headers_mut();
    headers.insert(header::ETAG, etag);
    // Published assets never change.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    measured(response, state, client, fd)
}

fn matches_etag(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let Some(wanted) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let ours = etag.as_bytes();
    wanted.split(',').map(str::trim).any(|w| {
        w == "*" || w.as_bytes() == ours || w.strip_prefix("W/").map(str::as_bytes) == Some(ours)
    })
}

/// The asset from memory, read into memory first if it fits; `None` when
/// it is to be served from its file (too large, or gone meanwhile, where
/// the file path answers 404).
async fn held(state: &AppState, key: Key, path: &std::path::Path) -> Option<Bytes> {
    {
        let mut cache = lock(&state.cache);
        if let Some(bytes) = cache.get(key) {
            return Some(bytes);
        }
        if !cache.fits(key.size) {
            return None;
        }
    }
    let bytes = Bytes::from(tokio::fs::read(path).await.ok()?);
    if bytes.len() as u64 != key.size {
        return None;
    }
    lock(&state.cache).put(key, bytes.clone());
    Some(bytes)
}

/// Whole, or one byte range (206); a range past the end is 416. A malformed
/// or multi-part Range is ignored (the whole asset), as RFC 9110 allows.
fn from_memory(bytes: Bytes, headers: &HeaderMap) -> Response {
    let len = bytes.len() as u64;
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| http_range_header::parse_range_header(v).ok())
        .map(|parsed| parsed.validate(len));
    let (status, body, content_range) = match range {
        Some(Ok(ranges)) if ranges.len() == 1 && *ranges[0].start() < len => {
            let (start, end) = (*ranges[0].start(), *ranges[0].end());
            let body = bytes.slice(start as usize..=end as usize);
            let content_range = format!("bytes {start}-{end}/{len}");
            (StatusCode::PARTIAL_CONTENT, body, Some(content_range))
        }
        Some(Ok(ranges)) if ranges.len() > 1 => (StatusCode::OK, bytes, None),
        Some(_) => {
            let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
        None => (StatusCode::OK, bytes, None),
    };
    let pieces: Vec<Bytes> = (0..body.len())
        .step_by(PIECE)
        .map(|at| body.slice(at..body.len().min(at + PIECE)))
        .collect();
    let length = body.len();
    let mut response = Response::new(Body::from_stream(futures_util::stream::iter(
        pieces.into_iter().map(Ok::<_, std::convert::Infallible>),
    )));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp4"));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    if let Some(v) = content_range.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.insert(header::CONTENT_RANGE, v);
    }
    response
}

pub async fn serve_file(path: PathBuf, request: Request) -> Response {
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

/// Times the body's delivery to the viewer (see [`super::delivery`]) and
/// records the viewer's throughput once the kernel says the viewer has
/// acknowledged all of it. A body abandoned half-way is not measured.
fn measured(response: Response, state: AppState, client: String, fd: RawFd) -> Response {
    // The socket is held by its own descriptor while measuring: the
    // connection's number may be reused once hyper closes it.
    // SAFETY: `fd` is the connection this request arrived on, open while the
    // request is being answered.
    let Ok(socket) = unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned() else {
        return response;
    };
    let total = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let (parts, body) = response.into_parts();
    let Some(total) = total.filter(|&t| t >= MIN_MEASURED_BYTES) else {
        return Response::from_parts(parts, body);
    };
    let mut delivery = Delivery {
        state,
        client,
        socket: Some(socket),
        start: None,
        handed: 0,
        total,
    };
    let counted = body.into_data_stream().map(move |chunk| {
        // The whole guard moves into the closure, so it drops with the body.
        let delivery = &mut delivery;
        if let Ok(c) = &chunk {
            delivery.handed(c.len() as u64);
        }
        chunk
    });
    Response::from_parts(parts, Body::from_stream(counted))
}

struct Delivery {
    state: AppState,
    client: String,
    socket: Option<OwnedFd>,
    /// When the first byte was handed over, and the acknowledged count then.
    start: Option<(Instant, u64)>,
    handed: u64,
    total: u64,
}

impl Delivery {
    fn handed(&mut self, bytes: u64) {
        if self.start.is_none() {
            let acked = self.socket.as_ref().and_then(|s| tcp_info(s.as_raw_fd()));
            self.start = acked.map(|i| (Instant::now(), i.bytes_acked));
        }
        self.handed += bytes;
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        let (Some((start, acked)), Some(socket)) = (self.start, self.socket.take()) else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.handed < self.total {
            return;
        }
        let meter = Meter::new(Duration::ZERO, acked, self.handed);
        let (state, client, bytes) = (
            Arc::clone(&self.state),
            std::mem::take(&mut self.client),
            self.handed,
        );
        runtime.spawn(async move {
            if let Some(secs) = until_acknowledged(meter, start, socket).await {
                lock(&state.audience).measured(&client, bytes, secs);
            }
        });
    }
}

/// Reads the kernel's count until the meter says the body was delivered
/// (its time, s) or gives up.
async fn until_acknowledged(mut meter: Meter, start: Instant, socket: OwnedFd) -> Option<f64> {
    loop {
        let acked = tcp_info(socket.as_raw_fd())?.bytes_acked;
        match meter.read(start.elapsed(), acked) {
            Reading::Delivered { secs, .. } => return Some(secs),
            Reading::Again(wait) => tokio::time::sleep(wait).await,
            Reading::GaveUp => return None,
        }
    }
}
