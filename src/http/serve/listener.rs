//! The accept loop, with the limits a server facing the open internet
//! needs (like nginx's): a connection must send its request head within
//! the header timeout of connecting or of its previous answer; one that
//! moves no byte either way for the idle timeout is closed (keep-alive
//! idle, or a stalled sender or receiver); heads are bounded in size; and
//! open connections are capped: at the cap, the connection idle the
//! longest is closed to make room, and a new one is refused only when
//! every connection is busy answering. `axum::serve` offers none of this,
//! so connections are driven by hyper directly, each with a watchdog.

use std::collections::HashMap;
use std::convert::Infallible;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::extract::ConnectInfo;
use axum::http::{Request, Response};
use axum::Router;
use bytes::Bytes;
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use tower::ServiceExt;

use super::{lock, Peer};

/// How long answers under way get to finish once the server is told to
/// stop.
const GRACE: Duration = Duration::from_secs(1);

/// The limits on connections (see the module doc).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    /// Bytes a request head may take (and a connection may queue to send).
    pub max_header_bytes: usize,
}

/// What a connection has been doing, in milliseconds since the server
/// started (0: never).
#[derive(Default)]
struct Activity {
    /// The last byte read or written.
    last: AtomicU64,
    /// When the pending request head began (connect, or its first byte
    /// after an answer); 0 while a request is being answered.
    head_from: AtomicU64,
    /// Requests being answered (a body still being sent counts).
    answering: AtomicU32,
}

struct Open {
    activity: Arc<Activity>,
    close: Arc<Notify>,
}

/// The open connections, for the cap and for shutdown.
struct Registry {
    epoch: Instant,
    open: Mutex<HashMap<u64, Open>>,
}

impl Registry {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    /// Closes the connection idle the longest (no request being answered);
    /// false when every connection is busy.
    fn close_oldest_idle(&self) -> bool {
        let mut open = lock(&self.open);
        let oldest = open
            .iter()
            .filter(|(_, c)| c.activity.answering.load(Ordering::Relaxed) == 0)
            // Milliseconds tie often: the older connection (lower id) first.
            .min_by_key(|(id, c)| (c.activity.last.load(Ordering::Relaxed), **id))
            .map(|(id, _)| *id);
        let Some(c) = oldest.and_then(|id| open.remove(&id)) else {
            return false;
        };
        c.close.notify_one();
        true
    }
}

/// Serves `app` on `listener` until `stop` completes, then lets answers
/// under way finish for a moment.
pub async fn run(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    stop: impl std::future::Future<Output = ()>,
) {
    let registry = Arc::new(Registry {
        epoch: Instant::now(),
        open: Mutex::new(HashMap::new()),
    });
    let (stopping, stopped) = watch::channel(false);
    tokio::pin!(stop);
    let mut next_id = 0u64;
    loop {
        let accepted = tokio::select! {
            () = &mut stop => break,
            a = listener.accept() => a,
        };
        let (stream, addr) = match accepted {
            Ok(a) => a,
            Err(_) => {
                // Out of descriptors (EMFILE) or the peer gave up already:
                // make room and breathe rather than spin.
                registry.close_oldest_idle();
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if lock(&registry.open).len() >= limits.max_connections && !registry.close_oldest_idle() {
            continue;
        }
        next_id += 1;
        let peer = Peer {
            addr,
            fd: stream.as_raw_fd(),
        };
        let activity = Arc::new(Activity::default());
        activity.head_from.store(registry.now(), Ordering::Relaxed);
        activity.last.store(registry.now(), Ordering::Relaxed);
        let close = Arc::new(Notify::new());
        let open = Open {
            activity: Arc::clone(&activity),
            close: Arc::clone(&close),
        };
        lock(&registry.open).insert(next_id, open);
        let conn = Connection {
            id: next_id,
            registry: Arc::clone(&registry),
            activity,
            close,
            limits,
        };
        tokio::spawn(conn.run(stream, peer, app.clone(), stopped.clone()));
    }
    drop(listener);
    let _ = stopping.send(true);
    let deadline = Instant::now() + GRACE;
    while !lock(&registry.open).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

struct Connection {
    id: u64,
    registry: Arc<Registry>,
    activity: Arc<Activity>,
    close: Arc<Notify>,
    limits: Limits,
}

impl Connection {
    async fn run(
        self,
        stream: TcpStream,
        peer: Peer,
        app: Router,
        mut stop: watch::Receiver<bool>,
    ) {
        let io = TokioIo::new(Watched {
            inner: stream,
            activity: Arc::clone(&self.activity),
            registry: Arc::clone(&self.registry),
        });
        let (activity, registry) = (Arc::clone(&self.activity), Arc::clone(&self.registry));
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            answer(
                app.clone(),
                request,
                peer,
                Arc::clone(&activity),
                Arc::clone(&registry),
            )
        });
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            // The watchdog below keeps the time; hyper's own header timer
            // would also cut keep-alive idle at the header timeout.
            .header_read_timeout(None)
            .keep_alive(true)
            .max_buf_size(self.limits.max_header_bytes.max(8192))
            .max_headers(100);
        let conn = http.serve_connection(io, service);
        tokio::pin!(conn);
        tokio::select! {
            _ = conn.as_mut() => {}
            () = self.watchdog() => {}
            () = self.close.notified() => {}
            () = stopped(&mut stop) => {
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(GRACE, conn.as_mut()).await;
            }
        }
        lock(&self.registry.open).remove(&self.id);
    }

    /// Completes when the connection has overrun its header or idle time.
    async fn watchdog(&self) {
        let a = &self.activity;
        loop {
            let head_from = a.head_from.load(Ordering::Relaxed);
            let due = if a.answering.load(Ordering::Relaxed) == 0 && head_from != 0 {
                head_from + self.limits.header_timeout.as_millis() as u64
            } else {
                a.last.load(Ordering::Relaxed) + self.limits.idle_timeout.as_millis() as u64
            };
            let now = self.registry.now();
            if now >= due {
                return;
            }
            // Woken at least twice a second: a head starting meanwhile may
            // bring the deadline forward.
            tokio::time::sleep(Duration::from_millis((due - now).min(500))).await;
        }
    }
}

/// Completes once the server is told to stop.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|&s| s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// One request through the router, with its peer as `ConnectInfo`; the
/// connection counts as answering until the response body is done.
async fn answer(
    app: Router,
    mut request: Request<Incoming>,
    peer: Peer,
    activity: Arc<Activity>,
    registry: Arc<Registry>,
) -> Result<Response<Tracked>, Infallible> {
    activity.answering.fetch_add(1, Ordering::Relaxed);
    activity.head_from.store(0, Ordering::Relaxed);
    let guard = Answering { activity, registry };
    request.extensions_mut().insert(ConnectInfo(peer));
    let response = app.oneshot(request.map(Body::new)).await?;
    Ok(response.map(|body| Tracked {
        body,
        _guard: guard,
    }))
}

/// Ends a request's answering when dropped (its body sent or abandoned).
struct Answering {
    activity: Arc<Activity>,
    registry: Arc<Registry>,
}

impl Drop for Answering {
    fn drop(&mut self) {
        let now = self.registry.now();
        self.activity.last.store(now, Ordering::Relaxed);
        self.activity.answering.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that holds its request's [`Answering`].
struct Tracked {
    body: Body,
    _guard: Answering,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// The socket, noting each byte moved in the connection's [`Activity`].
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
    registry: Arc<Registry>,
}

impl Watched {
    fn moved(&self, read: bool) {
        let now = self.registry.now();
        self.activity.last.store(now, Ordering::Relaxed);
        let idle = self.activity.answering.load(Ordering::Relaxed) == 0;
        if read && idle {
            // The first byte of the next head starts its clock; later
            // bytes do not restart it (a head trickled in is still late).
            let _ = self.activity.head_from.compare_exchange(
                0,
                now,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.moved(true);
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.moved(false);
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.moved(false);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
