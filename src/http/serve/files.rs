//! Files of the stream directory opened as the server may serve them:
//! never through a symbolic link (`O_NOFOLLOW`), only regular files, and an
//! asset only if its size is the one its index record says, so that a
//! link or a file swapped into the directory can never put anything else
//! on the wire. A file answer is read a piece at a time, from the offset
//! the range asks for, so its memory is a piece per connection whatever
//! the asset's size.

use std::fs::File;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::http::StatusCode;
use bytes::Bytes;

/// File answers are read this much at a time.
pub const PIECE: u64 = 64 * 1024;

/// Why a file is not served: the status and a message for the client.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub status: StatusCode,
    pub message: String,
}

fn refusal(status: StatusCode, message: String) -> Refusal {
    Refusal { status, message }
}

/// `path` opened for reading if it is a regular file (not a link, FIFO or
/// device) and, when `expected` is given, exactly that long; with its
/// length.
pub async fn open(path: PathBuf, expected: Option<u64>) -> Result<(Arc<File>, u64), Refusal> {
    tokio::task::spawn_blocking(move || open_now(&path, expected))
        .await
        .unwrap_or_else(|e| {
            Err(refusal(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("opening a file: {e}"),
            ))
        })
}

fn open_now(path: &Path, expected: Option<u64>) -> Result<(Arc<File>, u64), Refusal> {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    // O_NONBLOCK: opening a FIFO put in the asset's place must not wait
    // for a writer; it is refused below as not a regular file.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => not_regular(&name),
            _ if e.kind() == std::io::ErrorKind::NotFound => {
                refusal(StatusCode::NOT_FOUND, format!("{name}: no longer on disk"))
            }
            _ => refusal(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("{name}: cannot open: {e}"),
            ),
        })?;
    let meta = file.metadata().map_err(|e| {
        refusal(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{name}: cannot read its metadata: {e}"),
        )
    })?;
    if !meta.file_type().is_file() {
        return Err(not_regular(&name));
    }
    let len = meta.len();
    if let Some(size) = expected.filter(|&s| s != len) {
        return Err(refusal(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{name}: {len} bytes on disk, its index record says {size}; not served"),
        ));
    }
    Ok((Arc::new(file), len))
}

fn not_regular(name: &str) -> Refusal {
    refusal(
        StatusCode::NOT_FOUND,
        format!(
            "{name}: not a regular file of this stream (a link or special file is never served)"
        ),
    )
}

/// The whole of an opened file of `len` bytes, in one read.
pub async fn read_all(file: Arc<File>, len: u64) -> Result<Bytes, Refusal> {
    read_at(file, 0, len).await
}

async fn read_at(file: Arc<File>, at: u64, len: u64) -> Result<Bytes, Refusal> {
    let read = tokio::task::spawn_blocking(move || {
        let mut buf = vec![0; usize::try_from(len).map_err(std::io::Error::other)?];
        file.read_exact_at(&mut buf, at).map(|()| Bytes::from(buf))
    })
    .await;
    match read {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => Err(refusal(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reading a file: {e}"),
        )),
        Err(e) => Err(refusal(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reading a file: {e}"),
        )),
    }
}

/// Bytes `start..=end` of `file` as a body read a [`PIECE`] at a time, each
/// piece only when the connection has taken the previous one.
pub fn body(file: Arc<File>, start: u64, end: u64) -> Body {
    let pieces = futures_util::stream::unfold(start, move |at| {
        let file = Arc::clone(&file);
        async move {
            if at > end {
                return None;
            }
            let n = PIECE.min(end - at + 1);
            let piece = read_at(file, at, n)
                .await
                .map_err(|r| std::io::Error::other(r.message));
            Some((piece, at + n))
        }
    });
    Body::from_stream(pieces)
}
