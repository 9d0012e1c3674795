//! The audience kept in Redis, so that every `serve` replica behind a load
//! balancer advises from the whole audience, not the part it happened to
//! serve. The same facts as [`super::audience_log`], under keys that every
//! replica of a stream shares:
//!
//! | key | type | what |
//! |---|---|---|
//! | `backset:audience:active` | sorted set | viewer id → last seen (µs); the newest `capacity` kept |
//! | `backset:audience:region:<region>` | sorted set | the same, per region |
//! | `backset:audience:viewer:<id>` | hash | region, buffer_ms, starved, starting, starvations |
//! | `backset:audience:viewer:<id>:player` | list | CMCD `mtp` samples, bit/s, newest first, 32 kept |
//! | `backset:audience:viewer:<id>:delivered` | list | delivery rates measured by a replica, the same |
//!
//! Each request costs one pipeline of O(log n) commands; viewer keys expire
//! an hour after the viewer was last seen, the sorted sets are trimmed by
//! time and by count on every write, so Redis holds a bounded amount
//! whatever the clients send. `backset:audience:secret` holds the key viewer
//! ids are issued under, drawn by the first replica, so an id one replica
//! issued is known to all. Clocks are the replicas' own (µs since the
//! epoch): replicas a few ms apart count the same viewers.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::audience_log::{cut, Facts, Player, HISTORY, MAX_ID, MAX_REGION, MIN_MEASURED_BYTES};
use crate::http::cmcd::Cmcd;
use crate::{Error, Result};

const PREFIX: &str = "backset:audience";
/// A viewer's keys outlive its last request by this long, s.
const VIEWER_TTL_S: i64 = 3600;

#[derive(Clone)]
pub struct RedisAudience {
    redis: ConnectionManager,
    active_us: u64,
    capacity: usize,
    /// The key viewer ids are issued under, the same for every replica.
    secret: [u8; 32],
}

fn viewer_key(id: &str) -> String {
    format!("{PREFIX}:viewer:{id}")
}

fn region_key(region: &str) -> String {
    format!("{PREFIX}:region:{region}")
}

fn active_key() -> String {
    format!("{PREFIX}:active")
}

fn failed(e: redis::RedisError) -> Error {
    Error::Network(format!("audience in Redis: {e}"))
}

impl RedisAudience {
    /// Connects to `url` (`redis://host:port/db`); the connection is
    /// re-made by itself when Redis goes away and comes back.
    pub async fn connect(url: &str, active_us: u64, capacity: usize) -> Result<RedisAudience> {
        let client =
            redis::Client::open(url).map_err(|e| Error::Usage(format!("--audience {url}: {e}")))?;
        // A Redis gone away must cost a request milliseconds, not the
        // client library's default patience: the answer goes out without
        // audience facts and the connection is re-made in the background.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_millis(500)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let mut redis = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(failed)?;
        let secret = shared_secret(&mut redis).await?;
        Ok(RedisAudience {
            redis,
            active_us: active_us.max(1),
            capacity: capacity.max(1),
            secret,
        })
    }

    /// The key every replica issues viewer ids under, so that an id one
    /// replica issued is verified by the others.
    pub fn secret(&self) -> [u8; 32] {
        self.secret
    }

    /// The viewer `id` made a request at `now_us` from `region`, saying
    /// `cmcd` of itself.
    pub async fn seen(&self, id: &str, region: &str, cmcd: &Cmcd, now_us: u64) -> Result<()> {
        let (id, region) = (cut(id, MAX_ID), cut(region, MAX_REGION));
        let mut redis = self.redis.clone();
        let key = viewer_key(id);
        let before: Option<String> = redis::cmd("HGET")
            .arg(&key)
            .arg("region")
            .query_async(&mut redis)
            .await
            .map_err(failed)?;
        let horizon = now_us.saturating_sub(self.active_us);
        let keep = -(self.capacity as i64) - 1;
        let mut pipe = redis::pipe();
        if let Some(old) = before.filter(|old| old != region) {
            pipe.zrem(region_key(&old), id).ignore();
        }
        for set in [active_key(), region_key(region)] {
            pipe.zadd(&set, id, now_us).ignore();
            pipe.zrembyscore(&set, 0, horizon.saturating_sub(1))
                .ignore();
            pipe.zremrangebyrank(&set, 0, keep as isize).ignore();
        }
        pipe.hset(&key, "region", region).ignore();
        player_fields(&mut pipe, &key, cmcd);
        pipe.query_async::<()>(&mut redis).await.map_err(failed)
    }

    /// A transfer of `bytes` to viewer `id` was delivered in `secs`.
    pub async fn measured(&self, id: &str, bytes: u64, secs: f64) -> Result<()> {
        if bytes < MIN_MEASURED_BYTES || secs.is_nan() || secs <= 0.0 {
            return Ok(());
        }
        let key = format!("{}:delivered", viewer_key(cut(id, MAX_ID)));
        let mut pipe = redis::pipe();
        push(&mut pipe, &key, bytes as f64 * 8.0 / secs);
        pipe.expire(&key, VIEWER_TTL_S).ignore();
        let mut redis = self.redis.clone();
        pipe.query_async::<()>(&mut redis).await.map_err(failed)
    }

    /// The facts `advise` needs about viewer `id` and the whole audience.
    pub async fn facts(&self, id: &str, now_us: u64) -> Result<Facts> {
        let key = viewer_key(cut(id, MAX_ID));
        let horizon = now_us.saturating_sub(self.active_us);
        let mut redis = self.redis.clone();
        type Answer = (u64, Vec<Option<String>>, Vec<f64>, Vec<f64>);
        let (clients, fields, player, delivered): Answer = redis::pipe()
            .zrembyscore(active_key(), 0, horizon.saturating_sub(1))
            .ignore()
            .zcard(active_key())
            .cmd("HMGET")
            .arg(&key)
            .arg(&["region", "buffer_ms", "starved", "starting", "starvations"])
            .lrange(format!("{key}:player"), 0, -1)
            .lrange(format!("{key}:delivered"), 0, -1)
            .query_async(&mut redis)
            .await
            .map_err(failed)?;
        let field = |i: usize| fields.get(i).cloned().flatten();
        let same: u64 = match field(0) {
            Some(region) => redis::cmd("ZCOUNT")
                .arg(region_key(&region))
                .arg(horizon)
                .arg("+inf")
                .query_async(&mut redis)
                .await
                .map_err(failed)?,
            None => 0,
        };
        let (source, samples) = if !player.is_empty() {
            ("player", player)
        } else if !delivered.is_empty() {
            ("server", delivered)
        } else {
            ("none", Vec::new())
        };
        let flag = |i: usize| field(i).is_some_and(|v| v == "1");
        Ok(Facts {
            clients,
            same_region_share: if clients == 0 {
                0.0
            } else {
                same.min(clients) as f64 / clients as f64
            },
            current_bps: samples.first().copied(),
            history_bps: samples.iter().skip(1).copied().collect(),
            throughput_source: source,
            player: Player {
                buffer_ms: field(1).and_then(|v| v.parse().ok()),
                starved: flag(2),
                starting: flag(3),
            },
            starvations: field(4).and_then(|v| v.parse().ok()).unwrap_or(0),
        })
    }
}

/// The secret the first replica drew, stored in Redis with `SET NX`; the
/// others read it.
async fn shared_secret(redis: &mut ConnectionManager) -> Result<[u8; 32]> {
    let key = format!("{PREFIX}:secret");
    let drawn: [u8; 32] = rand::random();
    let hex: String = drawn.iter().map(|b| format!("{b:02x}")).collect();
    let (stored,): (String,) = redis::pipe()
        .cmd("SET")
        .arg(&key)
        .arg(&hex)
        .arg("NX")
        .ignore()
        .get(&key)
        .query_async(redis)
        .await
        .map_err(failed)?;
    let mut secret = [0u8; 32];
    for (i, byte) in secret.iter_mut().enumerate() {
        *byte = stored
            .get(2 * i..2 * i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .ok_or_else(|| {
                Error::Network(format!(
                    "audience in Redis: {key} is not a 64-digit hex key"
                ))
            })?;
    }
    Ok(secret)
}

/// What the player said of itself (CMCD), into the viewer's keys, which
/// then expire an hour after this request.
fn player_fields(pipe: &mut redis::Pipeline, key: &str, cmcd: &Cmcd) {
    if !cmcd.is_empty() {
        if let Some(bl) = cmcd.bl_ms {
            pipe.hset(key, "buffer_ms", bl).ignore();
        }
        pipe.hset(key, "starved", u8::from(cmcd.bs)).ignore();
        pipe.hset(key, "starting", u8::from(cmcd.su)).ignore();
        pipe.hincr(key, "starvations", u32::from(cmcd.bs)).ignore();
    }
    if let Some(bps) = cmcd.mtp_bps() {
        push(pipe, &format!("{key}:player"), bps);
    }
    for k in [
        key.to_string(),
        format!("{key}:player"),
        format!("{key}:delivered"),
    ] {
        pipe.expire(k, VIEWER_TTL_S).ignore();
    }
}

/// Pushes a sample to the front of a list kept to `HISTORY` samples.
fn push(pipe: &mut redis::Pipeline, key: &str, value: f64) {
    pipe.lpush(key, value).ignore();
    pipe.ltrim(key, 0, HISTORY as isize - 1).ignore();
}
