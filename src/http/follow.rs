//! The client: gets its backset parameters from a server, draws its
//! backset, finds the asset and the key frame to start from (in the asset's
//! own maps), and writes one continuous fMP4 stream: the initialisation
//! once, the fragments from that key frame on, then the following assets'
//! fragments by predictable name, in order, as they are published.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::capture::maps::Maps;
use crate::policy::draw::Drawer;
use crate::policy::{Advice, Coefficients};
use crate::stream::naming::Naming;
use crate::{Error, Result};

pub struct Config {
    /// The server's root, like `http://127.0.0.1:8080/`.
    pub url: String,
    pub client: String,
    /// Use this backset (s) instead of drawing one.
    pub backset_s: Option<f64>,
    /// How long to keep retrying an unreachable server.
    pub retry_for: Duration,
}

#[derive(Deserialize)]
struct Params {
    recommended_s: f64,
    maximum_s: f64,
    coefficients: Coefficients,
    live_edge_s: f64,
    live_edge_sequence: u64,
    first_sequence: u64,
    asset_duration_s: f64,
    prefix: String,
    ended: bool,
}

#[derive(Deserialize)]
struct Located {
    asset: String,
    sequence: u64,
    header_len: u64,
}

/// What a follow run did, for the caller to report.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub backset_drawn_s: f64,
    pub backset_achieved_s: f64,
    pub first_sequence: u64,
    pub last_sequence: u64,
    pub stalls: u32,
    /// True when the output was closed by its reader.
    pub output_closed: bool,
}

enum Fetch {
    Body(Vec<u8>),
    NotFound,
}

struct Client {
    agent: ureq::Agent,
    base: String,
    id: String,
    retry_for: Duration,
}

impl Client {
    /// GETs `path` (with an optional Range), retrying while the server is
    /// unreachable or failing; a 404 is an answer, not a failure.
    fn get(&self, path: &str, range: Option<String>, log: &mut dyn Write) -> Result<Fetch> {
        let url = format!("{}{path}", self.base);
        let started = Instant::now();
        let mut delay = Duration::from_millis(200);
        loop {
            let mut request = self.agent.get(&url).header("x-backset-client", &self.id);
            if let Some(r) = &range {
                request = request.header("range", r);
            }
            let failure = match request.call() {
                Ok(mut response) => match response.status().as_u16() {
                    200 | 206 => {
                        let mut body = Vec::new();
                        match response.body_mut().as_reader().read_to_end(&mut body) {
                            Ok(_) => return Ok(Fetch::Body(body)),
                            Err(e) => format!("reading {url}: {e}"),
                        }
                    }
                    404 => return Ok(Fetch::NotFound),
                    code => format!("{url}: HTTP {code}"),
                },
                Err(e) => format!("{url}: {e}"),
            };
            if started.elapsed() > self.retry_for {
                return Err(Error::Network(format!(
                    "giving up after {:?}: {failure}",
                    self.retry_for
                )));
            }
            let _ = writeln!(log, "backset: {failure}; retrying in {delay:?}");
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    fn json<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        log: &mut dyn Write,
    ) -> Result<Option<T>> {
        match self.get(path, None, log)? {
            Fetch::Body(b) => serde_json::from_slice(&b).map(Some).map_err(|e| {
                Error::Network(format!("{}{path}: unexpected answer: {e}", self.base))
            }),
            Fetch::NotFound => Ok(None),
        }
    }
}

/// Where the top-level boxes of an asset's header start: (maps box, first
/// moof), found by walking the boxes.
fn header_layout(bytes: &[u8]) -> (Option<(usize, usize)>, Option<usize>) {
    let (mut o, mut maps) = (0usize, None);
    while o + 8 <= bytes.len() {
        let size =
            u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as usize;
        if &bytes[o + 4..o + 8] == b"moof" {
            return (maps, Some(o));
        }
        if size < 8 {
            break;
        }
        if bytes.len() >= o + size && Maps::is_maps_box(&bytes[o..o + size]) {
            maps = Some((o, size));
        }
        o += size;
    }
    (maps, None)
}

/// Writes; a reader that went away ends the run cleanly.
fn emit(out: &mut dyn Write, bytes: &[u8]) -> Result<bool> {
    match out.write_all(bytes).and_then(|_| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(Error::Io {
            path: "standard output".into(),
            err: e,
        }),
    }
}

pub fn follow(config: &Config, out: &mut dyn Write, log: &mut dyn Write) -> Result<Report> {
    let base = if config.url.ends_with('/') {
        config.url.clone()
    } else {
        format!("{}/", config.url)
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let client = Client {
        agent,
        base,
        id: config.client.clone(),
        retry_for: config.retry_for,
    };
    let no_stream = || Error::Network(format!("{}: no stream published there yet", client.base));
    let params: Params = client.json("backset.json", log)?.ok_or_else(no_stream)?;
    let drawn = match config.backset_s {
        Some(b) => b,
        None => Drawer::for_client(&config.client).draw(&Advice {
            recommended_s: params.recommended_s,
            maximum_s: params.maximum_s,
            coefficients: params.coefficients,
        }),
    };
    let located: Located = client
        .json(&format!("locate?backset={drawn:.6}s&clamp=1"), log)?
        .ok_or_else(no_stream)?;

    // The asset's own header: its init and its maps.
    let Fetch::Body(header) = client.get(
        &located.asset,
        Some(format!("bytes=0-{}", located.header_len.saturating_sub(1))),
        log,
    )?
    else {
        return Err(Error::Network(format!(
            "{} vanished before it could be read",
            located.asset
        )));
    };
    let (Some((maps_at, maps_len)), _) = header_layout(&header) else {
        return Err(Error::BadFile {
            path: located.asset.clone().into(),
            reason: "no maps box in its header".into(),
        });
    };
    let maps =
        Maps::decode(&header[maps_at..maps_at + maps_len]).map_err(|reason| Error::BadFile {
            path: located.asset.clone().into(),
            reason,
        })?;
    // The newest key frame at or before live edge − backset, from the maps.
    let target = ((params.live_edge_s - drawn).max(0.0) * f64::from(maps.timescale)) as u64;
    let entry = maps
        .entries
        .iter()
        .rev()
        .find(|e| e.timestamp <= target)
        .or(maps.entries.first())
        .copied()
        .ok_or_else(|| Error::BadFile {
            path: located.asset.clone().into(),
            reason: "no entry points".into(),
        })?;
    let achieved = params.live_edge_s - entry.timestamp as f64 / f64::from(maps.timescale.max(1));
    let _ = writeln!(
        log,
        "backset: following {} from {} byte {}: backset drawn {drawn:.3} s, achieved {achieved:.3} s",
        client.base, located.asset, entry.offset
    );

    let mut report = Report {
        backset_drawn_s: drawn,
        backset_achieved_s: achieved,
        first_sequence: located.sequence,
        last_sequence: located.sequence,
        stalls: 0,
        output_closed: false,
    };
    let init = &header[..maps_at];
    if !emit(out, init)? {
        report.output_closed = true;
        return Ok(report);
    }
    let Fetch::Body(rest) = client.get(
        &located.asset,
        Some(format!("bytes={}-", entry.offset)),
        log,
    )?
    else {
        return Err(Error::Network(format!(
            "{} vanished before it could be read",
            located.asset
        )));
    };
    if !emit(out, &rest)? {
        report.output_closed = true;
        return Ok(report);
    }

    // Then every following asset, by predictable name, as it is published.
    let naming = Naming::new(&params.prefix);
    let poll = Duration::from_secs_f64((params.asset_duration_s / 4.0).clamp(0.05, 1.0));
    let mut ended = params.ended;
    let mut sequence = located.sequence + 1;
    let mut waiting_since = Instant::now();
    let mut stalled = false;
    loop {
        let name = naming.name(sequence);
        match client.get(&name, None, log)? {
            Fetch::Body(asset) => {
                let (_, Some(first_moof)) = header_layout(&asset) else {
                    return Err(Error::BadFile {
                        path: name.into(),
                        reason: "no moof in it".into(),
                    });
                };
                if asset[..first_moof].len() >= init.len() && !asset.starts_with(init) {
                    let _ = writeln!(log, "backset: warning: {name} has a new initialisation; players may need to restart");
                }
                if !emit(out, &asset[first_moof..])? {
                    report.output_closed = true;
                    return Ok(report);
                }
                report.last_sequence = sequence;
                sequence += 1;
                waiting_since = Instant::now();
                stalled = false;
            }
            Fetch::NotFound if ended => {
                let _ = writeln!(
                    log,
                    "backset: the transmission has ended after {}",
                    naming.name(sequence - 1)
                );
                return Ok(report);
            }
            Fetch::NotFound => {
                // An asset is due every asset duration; longer is a stall.
                if !stalled && waiting_since.elapsed().as_secs_f64() > params.asset_duration_s * 1.5
                {
                    stalled = true;
                    report.stalls += 1;
                    let _ = writeln!(log, "backset: stall: waiting for {name}");
                }
                std::thread::sleep(poll);
                if let Some(p) = client.json::<Params>("backset.json", log)? {
                    ended = p.ended && p.live_edge_sequence < sequence;
                    // Fallen behind the retained window: go on from its start
                    // (every asset opens with a key frame), with a gap.
                    if p.first_sequence > sequence {
                        let _ = writeln!(
                            log,
                            "backset: {name} expired before it could be fetched; skipping to {}",
                            naming.name(p.first_sequence)
                        );
                        sequence = p.first_sequence;
                    }
                }
            }
        }
    }
}
