//! One stream directory on an object store, with blocking calls: the
//! segmenter's publisher, `locate` and `verify` are synchronous, so a
//! `Bucket` carries its own single-threaded runtime. Never call it from
//! inside another runtime (the server's mirror runs on a thread of its own).

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::memory::InMemory;
use object_store::path::Path as Key;
use object_store::{
    Attribute, Attributes, BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutMode,
    PutOptions, PutPayload, RetryConfig, UpdateVersion,
};
use tokio::io::AsyncWriteExt;

use super::location::Location;
use crate::{Error, Result};

/// Objects above this size are uploaded in parts.
pub const MULTIPART_ABOVE: usize = 16 * 1024 * 1024;

/// How an object may be cached downstream (CDNs, players).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caching {
    /// Assets, maps, init files, index chunks: never change once written.
    Immutable,
    /// The descriptor, the index head, playlists: rewritten as the stream
    /// goes on.
    Live,
    /// The writer's lease: never cached.
    None,
}

impl Caching {
    fn header(self) -> &'static str {
        match self {
            Caching::Immutable => "public, max-age=31536000, immutable",
            Caching::Live => "public, max-age=1",
            Caching::None => "no-store",
        }
    }
}

/// A conditional put found the object not in the state it required.
#[derive(Debug)]
pub struct Conflict;

pub struct Bucket {
    runtime: tokio::runtime::Runtime,
    store: Arc<dyn ObjectStore>,
    location: Location,
}

impl Bucket {
    /// The store named by `AWS_*` variables (`AWS_ENDPOINT_URL` for an
    /// S3-compatible store; an `http://` endpoint is allowed as given).
    pub fn connect(location: &Location) -> Result<Bucket> {
        let endpoint = std::env::var("AWS_ENDPOINT_URL")
            .or_else(|_| std::env::var("AWS_ENDPOINT"))
            .unwrap_or_default();
        let allow_http = endpoint.starts_with("http:")
            || std::env::var("AWS_ALLOW_HTTP").is_ok_and(|v| v == "true");
        let client = ClientOptions::new()
            .with_allow_http(allow_http)
            .with_timeout(Duration::from_secs(10))
            .with_connect_timeout(Duration::from_secs(3));
        // Few quick retries here: the publisher keeps its own backoff, and
        // a reader should fail in seconds, not the crate's three minutes.
        let retry = RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: 2,
            retry_timeout: Duration::from_secs(15),
        };
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&location.bucket)
            .with_client_options(client)
            .with_retry(retry);
        if std::env::var("AWS_REGION").is_err() && std::env::var("AWS_DEFAULT_REGION").is_err() {
            builder = builder.with_region("us-east-1");
        }
        let store = builder
            .build()
            .map_err(|e| Error::Usage(format!("{location}: {e}")))?;
        Bucket::over(Arc::new(store), location)
    }

    /// A bucket held in memory: for tests.
    pub fn in_memory(location: &Location) -> Result<Bucket> {
        Bucket::over(Arc::new(InMemory::new()), location)
    }

    /// Another handle on the same store (its own runtime): for a thread.
    pub fn another(&self) -> Result<Bucket> {
        Bucket::over(Arc::clone(&self.store), &self.location)
    }

    fn over(store: Arc<dyn ObjectStore>, location: &Location) -> Result<Bucket> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Internal(format!("starting a runtime: {e}")))?;
        Ok(Bucket {
            runtime,
            store,
            location: location.clone(),
        })
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    fn key(&self, name: &str) -> Key {
        Key::from(self.location.key(name))
    }

    fn failed(&self, name: &str, e: object_store::Error) -> Error {
        Error::Network(format!("{}: {}", self.location.url_of(name), brief(&e)))
    }

    /// The object `name`, or `None` if there is none.
    pub fn get(&self, name: &str) -> Result<Option<Bytes>> {
        Ok(self.get_versioned(name)?.map(|(bytes, _)| bytes))
    }

    /// The object and its version (for a conditional update).
    pub fn get_versioned(&self, name: &str) -> Result<Option<(Bytes, UpdateVersion)>> {
        let key = self.key(name);
        self.runtime.block_on(async {
            let got = match self.store.get(&key).await {
                Ok(got) => got,
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(self.failed(name, e)),
            };
            let version = UpdateVersion {
                e_tag: got.meta.e_tag.clone(),
                version: got.meta.version.clone(),
            };
            let bytes = got.bytes().await.map_err(|e| self.failed(name, e))?;
            Ok(Some((bytes, version)))
        })
    }

    /// Bytes `range` of `name`, or `None` if there is no such object.
    pub fn get_range(&self, name: &str, range: Range<u64>) -> Result<Option<Bytes>> {
        let key = self.key(name);
        match self.runtime.block_on(self.store.get_range(&key, range)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.failed(name, e)),
        }
    }

    /// Writes `name` whole (in parts above [`MULTIPART_ABOVE`]); a reader
    /// sees the old object or the new one, never a part.
    pub fn put(&self, name: &str, bytes: Bytes, caching: Caching) -> Result<()> {
        let key = self.key(name);
        let attributes = attributes(name, caching);
        let store = Arc::clone(&self.store);
        self.runtime
            .block_on(async move {
                if bytes.len() <= MULTIPART_ABOVE {
                    let options = PutOptions {
                        attributes,
                        ..Default::default()
                    };
                    store
                        .put_opts(&key, PutPayload::from(bytes), options)
                        .await?;
                    return Ok(());
                }
                let mut writer = BufWriter::with_capacity(store, key, MULTIPART_ABOVE)
                    .with_attributes(attributes);
                writer.write_all(&bytes).await?;
                writer.shutdown().await
            })
            .map_err(|e: std::io::Error| {
                Error::Network(format!("{}: {e}", self.location.url_of(name)))
            })
    }

    /// Writes `name` only if it does not exist (`None`) or is still at
    /// `version`; the new version, or [`Conflict`].
    pub fn put_if(
        &self,
        name: &str,
        bytes: Bytes,
        version: Option<UpdateVersion>,
    ) -> Result<std::result::Result<UpdateVersion, Conflict>> {
        let key = self.key(name);
        let options = PutOptions {
            mode: version.map_or(PutMode::Create, PutMode::Update),
            attributes: attributes(name, Caching::None),
            ..Default::default()
        };
        let put =
            self.runtime
                .block_on(self.store.put_opts(&key, PutPayload::from(bytes), options));
        match put {
            Ok(done) => Ok(Ok(UpdateVersion {
                e_tag: done.e_tag,
                version: done.version,
            })),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => Ok(Err(Conflict)),
            Err(e) => Err(self.failed(name, e)),
        }
    }

    /// Deletes `name`; an object already gone is not an error.
    pub fn delete(&self, name: &str) -> Result<()> {
        let key = self.key(name);
        match self.runtime.block_on(self.store.delete(&key)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.failed(name, e)),
        }
    }

    /// Every object under the prefix, as (name relative to it, size). Only
    /// for the writer's cleanup and `verify`: readers find objects by name.
    pub fn list(&self) -> Result<Vec<(String, u64)>> {
        let prefix =
            (!self.location.prefix.is_empty()).then(|| Key::from(self.location.prefix.as_str()));
        let strip = if self.location.prefix.is_empty() {
            0
        } else {
            self.location.prefix.len() + 1
        };
        self.runtime.block_on(async {
            let mut listing = self.store.list(prefix.as_ref());
            let mut out = Vec::new();
            while let Some(meta) = listing.next().await {
                let meta = meta.map_err(|e| self.failed("", e))?;
                let name = meta.location.as_ref().get(strip..).unwrap_or_default();
                out.push((name.to_string(), meta.size));
            }
            Ok(out)
        })
    }
}

fn attributes(name: &str, caching: Caching) -> Attributes {
    let mut a = Attributes::new();
    a.insert(Attribute::CacheControl, caching.header().into());
    a.insert(Attribute::ContentType, content_type(name).into());
    a
}

/// What a CDN or player is told an object is, by its name.
pub fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or_default() {
        "mp4" => "video/mp4",
        "m4s" => "video/iso.segment",
        "m3u8" => "application/vnd.apple.mpegurl",
        "mpd" => "application/dash+xml",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

/// The store's error without the response body it may quote at length.
fn brief(e: &object_store::Error) -> String {
    let full = e.to_string();
    match full.find(", body: ") {
        Some(at) => full[..at].to_string(),
        None => full,
    }
}
