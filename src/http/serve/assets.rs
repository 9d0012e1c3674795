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

use super::audience_log::MIN_MEASURED_BYTES;
use super::cache::Key;
use super::delivery::{tcp_info, Meter, Reading};
use super::files::{self, Refusal};
use super::flight::Flight;
use super::range;
use super::viewer::ViewerQuery;
use super::{derived, lock, not_found, unavailable, AppState, Peer};
use crate::stream::naming::Name;

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
        let kind = if name == crate::stream::descriptor::FILE {
            "application/json"
        } else {
            "application/octet-stream"
        };
        let mut r = from_file(state.dir.join(&name), None, request.headers(), kind).await;
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        return r;
    }
    let query = Query::<ViewerQuery>::try_from_uri(request.uri())
        .map_or_else(|_| ViewerQuery::default(), |q| q.0);
    let client = state.saw(request.headers(), &query, addr).await.key;
    let sequence = match stream.naming.parse(&name) {
        Some(Name::Asset(sequence)) => sequence,
        Some(other) => {
            let response = derived::answer(&state, &stream, other, request.headers()).await;
            return measured(response, state, client, fd);
        }
        None => return not_found(format!("{name}: not a file of this stream")),
    };
    // An expired asset is answered while its file is still kept for the
    // players that listed it.
    let kept = || {
        stream
            .indexed(sequence)
            .filter(|_| stream.asset_path(sequence).is_file())
    };
    let Some(record) = stream.record(sequence).or_else(kept) else {
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
            Held::Memory(bytes, flight) => from_memory(bytes, flight, request.headers(), MP4),
            Held::File => from_file(path, Some(key.size), request.headers(), MP4).await,
            Held::Refused(r) => refused(r),
        }
    };
    response.headers_mut().insert(header::ETAG, etag);
    measured(immutable(response), state, client, fd)
}

/// Published files never change (an error about one may).
pub(super) fn immutable(mut response: Response) -> Response {
    let status = response.status();
    if !status.is_client_error() && !status.is_server_error() {
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        );
    }
    response
}

pub(super) const MP4: &str = "video/mp4";

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

/// Where an asset's answer comes from.
pub(super) enum Held {
    /// Its bytes, and the read that produced them while that is shared.
    Memory(Bytes, Option<Arc<Flight>>),
    /// Its file, a piece at a time (shared reads are at their budget).
    File,
    Refused(Refusal),
}

/// The asset from memory: from the cache, or from the one read every
/// request waiting for it shares (kept in the cache if it fits); from its
/// file when the reads in flight already hold their budget.
pub(super) async fn held(state: &AppState, key: Key, path: &std::path::Path) -> Held {
    if let Some(bytes) = lock(&state.cache).get(key) {
        return Held::Memory(bytes, None);
    }
    let Some(flight) = state.flights.join(key) else {
        return Held::File;
    };
    let read = async {
        let (file, len) = files::open(path.to_path_buf(), Some(key.size)).await?;
        let bytes = files::read_all(file, len).await?;
        lock(&state.cache).put(key, bytes.clone());
        Ok(bytes)
    };
    match flight.bytes(read).await {
        Ok(bytes) => Held::Memory(bytes, Some(flight)),
        Err(r) => Held::Refused(r),
    }
}

pub(super) fn refused(r: Refusal) -> Response {
    (r.status, r.message + "\n").into_response()
}

/// The answer to the request's Range for a body of `len` bytes, the body
/// made by `body` from the selected inclusive byte span.
fn ranged(
    headers: &HeaderMap,
    len: u64,
    kind: &'static str,
    body: impl FnOnce(u64, u64) -> Body,
) -> Response {
    let wanted = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, start, end) = match range::answer(wanted, len) {
        range::Answer::Whole => (StatusCode::OK, 0, len),
        range::Answer::Part { start, end } => (StatusCode::PARTIAL_CONTENT, start, end + 1),
        range::Answer::Unsatisfiable => {
            let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
    };
    let mut response = Response::new(if start < end {
        body(start, end - 1)
    } else {
        Body::empty()
    });
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    if status == StatusCode::PARTIAL_CONTENT {
        let span = format!("bytes {start}-{}/{len}", end - 1);
        if let Ok(v) = HeaderValue::from_str(&span) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    response
}

/// From memory, in pieces; the body holds the shared read while it is sent.
pub(super) fn from_memory(
    bytes: Bytes,
    flight: Option<Arc<Flight>>,
    headers: &HeaderMap,
    kind: &'static str,
) -> Response {
    ranged(headers, bytes.len() as u64, kind, |start, end| {
        let body = bytes.slice(start as usize..=end as usize);
        let pieces: Vec<Bytes> = (0..body.len())
            .step_by(PIECE)
            .map(|at| body.slice(at..body.len().min(at + PIECE)))
            .collect();
        Body::from_stream(futures_util::stream::iter(pieces.into_iter().map(
            move |p| {
                let _shared = &flight;
                Ok::<_, std::convert::Infallible>(p)
            },
        )))
    })
}

/// From the file (opened as [`files::open`] allows, `expected` bytes long
/// if given), only the bytes the range selects, a piece at a time.
pub async fn from_file(
    path: PathBuf,
    expected: Option<u64>,
    headers: &HeaderMap,
    kind: &'static str,
) -> Response {
    match files::open(path, expected).await {
        Ok((file, len)) => ranged(headers, len, kind, |start, end| {
            files::body(file, start, end)
        }),
        Err(r) => refused(r),
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
                state.audience.measured(&client, bytes, secs).await;
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
