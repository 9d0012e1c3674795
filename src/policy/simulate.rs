//! A discrete-event simulation of a live stream and its viewers, comparing
//! where viewers start: (a) at the live edge, (b) three assets back for all
//! (hls.js's default), (c) the backset policy (advise + draw per viewer).
//!
//! The stream publishes asset `k` (media `[kA, (k+1)A)`) at time `(k+1)A`.
//! Each viewer joins at a random time, starts at the asset holding the newest
//! key frame at or before `live edge − backset` (one GOP per asset), then
//! fetches the following assets in order, one at a time, each as soon as it
//! is published and the viewer's buffer ahead is under `max_buffer`; it
//! plays from when its first asset has arrived. Its throughput follows its
//! own trace (piecewise constant). Viewers do not share bandwidth: what the
//! simulation measures per viewer is stalls, start-up and latency, and per
//! asset how many viewers fetch it at the same moment (server and cache load).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal};
use serde::Serialize;

use super::advise::{advise, Audience};
use super::draw::Drawer;

#[derive(Debug, Clone)]
pub struct Config {
    pub viewers: usize,
    /// Length of the simulated broadcast, s.
    pub duration_s: f64,
    /// Viewers join uniformly over `join_over_s`, starting once the
    /// retained window is full (or at the last moment that leaves the
    /// span inside the broadcast).
    pub join_over_s: f64,
    pub asset_duration_s: f64,
    pub bitrate_bps: f64,
    pub traces: Traces,
    /// How far ahead of its play position a viewer fetches, s.
    pub max_buffer_s: f64,
    /// Retained window, s.
    pub window_s: f64,
    pub seed: u64,
}

#[derive(Debug, Clone)]
pub enum Traces {
    /// Each viewer's mean throughput is log-normal around `mean_bps` with
    /// coefficient of variation `viewer_cv`; every `step_s` its throughput
    /// is log-normal around its mean with coefficient of variation `cv`,
    /// each step's logarithm correlated with the last by `correlation`, so
    /// dips last (an AR(1) process in log space).
    Model {
        mean_bps: f64,
        viewer_cv: f64,
        cv: f64,
        correlation: f64,
        step_s: f64,
    },
    /// Measured throughput, bits/s: one column per series, one row per
    /// `step_s`. Viewer `i` replays column `i mod columns` from a row of its
    /// own, wrapping around.
    Measured { columns: Vec<Vec<f64>>, step_s: f64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    LiveEdge,
    ThreeAssets,
    Policy,
}

impl Strategy {
    pub const ALL: [Strategy; 3] = [Strategy::LiveEdge, Strategy::ThreeAssets, Strategy::Policy];

    pub fn label(&self) -> &'static str {
        match self {
            Strategy::LiveEdge => "(a) live edge",
            Strategy::ThreeAssets => "(b) 3 assets",
            Strategy::Policy => "(c) backset policy",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub strategy: Strategy,
    /// Per viewer, mean over viewers.
    pub rebuffer_events: f64,
    pub rebuffer_s: f64,
    /// Share of viewers that stalled at least once.
    pub viewers_stalled: f64,
    pub startup_s: f64,
    /// Mean of (wall time − media position) over the session, s.
    pub latency_s: f64,
    /// The most viewers fetching one asset at the same moment.
    pub peak_requests: usize,
    /// The same, counting only the first asset each viewer fetches: the
    /// load a crowd of joining viewers puts on one asset.
    pub peak_join_requests: usize,
    /// The same, per asset.
    pub requests_per_asset: Vec<usize>,
    /// Backsets the viewers started at (achieved), s.
    pub backsets_s: Vec<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub viewers: usize,
    pub assets: usize,
    pub outcomes: Vec<Outcome>,
}

struct Viewer {
    join: f64,
    /// Throughput per step, bits/s, from the join on.
    trace: Vec<f64>,
    step: f64,
    /// Samples from before the join: what the server knows of its history.
    history: Vec<f64>,
    region: usize,
}

impl Viewer {
    fn rate_at(&self, t: f64) -> f64 {
        let i = (((t - self.join) / self.step).floor().max(0.0) as usize).min(self.trace.len() - 1);
        self.trace[i].max(1.0)
    }

    /// When a download of `bits` started at `start` completes.
    fn download_end(&self, start: f64, bits: f64) -> f64 {
        // Step by index, not by recomputing it from times: rounding must not
        // leave the clock on a step boundary forever.
        let last = self.trace.len() - 1;
        let mut k = (((start - self.join) / self.step).floor().max(0.0) as usize).min(last);
        let (mut t, mut left) = (start, bits);
        loop {
            let rate = self.trace[k].max(1.0);
            let step_end = self.join + (k + 1) as f64 * self.step;
            let capacity = rate * (step_end - t).max(0.0);
            if k == last || capacity >= left {
                return t + left / rate;
            }
            left -= capacity;
            t = t.max(step_end);
            k += 1;
        }
    }
}

fn viewers(config: &Config) -> Vec<Viewer> {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let a = config.asset_duration_s;
    // Regions of unequal size: where viewers cluster.
    let region_weights = [0.5, 0.25, 0.15, 0.1];
    let first_join = config
        .window_s
        .min(config.duration_s - config.join_over_s)
        .max(a);
    (0..config.viewers)
        .map(|i| {
            let join = first_join + rng.random::<f64>() * config.join_over_s;
            let u: f64 = rng.random();
            let mut acc = 0.0;
            let region = region_weights
                .iter()
                .position(|w| {
                    acc += w;
                    u < acc
                })
                .unwrap_or(0);
            let (trace, history, step) = match &config.traces {
                Traces::Model {
                    mean_bps,
                    viewer_cv,
                    cv,
                    correlation,
                    step_s,
                } => {
                    let own = lognormal(*mean_bps, *viewer_cv).sample(&mut rng);
                    let steps = (config.duration_s / step_s).ceil() as usize + 1;
                    // History: the same process, sampled well before the join.
                    let past = correlated(&mut rng, own, *cv, *correlation, 80);
                    let history = past.iter().step_by(10).copied().collect();
                    (
                        correlated(&mut rng, own, *cv, *correlation, steps),
                        history,
                        *step_s,
                    )
                }
                Traces::Measured { columns, step_s } => {
                    let column = &columns[i % columns.len()];
                    let from = rng.random_range(0..column.len());
                    let steps = (config.duration_s / step_s).ceil() as usize + 1;
                    let at = |k: usize| column[(from + k) % column.len()];
                    // History: the samples just before its replay starts.
                    let history = (1..=8.min(column.len()))
                        .map(|k| at(column.len() - k))
                        .collect();
                    ((0..steps).map(at).collect(), history, *step_s)
                }
            };
            Viewer {
                join,
                trace,
                step,
                history,
                region,
            }
        })
        .collect()
}

/// `n` log-normal samples of mean `mean` and coefficient of variation `cv`
/// whose logarithms follow an AR(1) process with coefficient `rho`.
fn correlated(rng: &mut ChaCha8Rng, mean: f64, cv: f64, rho: f64, n: usize) -> Vec<f64> {
    let sigma = (1.0 + cv * cv).ln().sqrt();
    let mu = mean.max(1.0).ln() - sigma * sigma / 2.0;
    let rho = rho.clamp(0.0, 0.999);
    let normal = rand_distr::StandardNormal;
    let mut x: f64 = normal.sample(rng);
    (0..n)
        .map(|_| {
            let e: f64 = normal.sample(rng);
            x = rho * x + (1.0 - rho * rho).sqrt() * e;
            (mu + sigma * x).exp()
        })
        .collect()
}

/// A log-normal distribution with the given mean and coefficient of variation.
fn lognormal(mean: f64, cv: f64) -> LogNormal<f64> {
    let sigma2 = (1.0 + cv * cv).ln();
    let mu = mean.max(1.0).ln() - sigma2 / 2.0;
    LogNormal::new(mu, sigma2.sqrt())
        .unwrap_or_else(|_| LogNormal::new(mean.max(1.0).ln(), 0.0).expect("sigma 0 is valid"))
}

struct Session {
    stalls: usize,
    stalled_s: f64,
    startup_s: f64,
    latency_s: f64,
    backset_s: f64,
    /// (asset, request start, request end)
    requests: Vec<(usize, f64, f64)>,
}

/// Where a viewer joining at `join` with `backset` starts: the live edge
/// then, and the first asset it fetches.
fn start_asset(config: &Config, join: f64, backset: f64) -> (f64, usize) {
    let a = config.asset_duration_s;
    // The live edge is the end of the newest published asset; the newest
    // key frame at or before the target opens an asset no newer than it.
    let edge = (join / a).floor() * a;
    let newest = ((edge / a).round() as usize).saturating_sub(1);
    let target = (edge - backset).max(edge - config.window_s + a).max(0.0);
    (edge, ((target / a).floor() as usize).min(newest))
}

/// One viewer's player as the clock moves: where it plays, what has
/// arrived, and the running totals a [`Session`] reports.
struct Playback {
    now: f64,
    /// Media position.
    pos: f64,
    /// Media end of what has arrived.
    buffered: f64,
    playing: bool,
    stall_since: Option<f64>,
    stalls: usize,
    stalled_s: f64,
    startup_s: f64,
    latency_sum: f64,
    latency_time: f64,
}

impl Playback {
    fn new(join: f64, pos: f64) -> Playback {
        Playback {
            now: join,
            pos,
            buffered: pos,
            playing: false,
            stall_since: None,
            stalls: 0,
            stalled_s: 0.0,
            startup_s: 0.0,
            latency_sum: 0.0,
            latency_time: 0.0,
        }
    }

    /// Moves the clock to `t`, playing what is buffered.
    fn advance(&mut self, t: f64) {
        if t <= self.now {
            return;
        }
        if self.playing && self.stall_since.is_none() {
            let played = (t - self.now).min(self.buffered - self.pos);
            // Latency while playing: wall time minus media position, integrated.
            self.latency_sum +=
                ((self.now - self.pos) + (self.now + played - (self.pos + played))) / 2.0 * played;
            self.latency_time += played;
            self.pos += played;
            if self.pos >= self.buffered - 1e-9 && t > self.now + played {
                self.stall_since = Some(self.now + played);
            }
        }
        self.now = t;
    }

    /// When the request for the asset published at `published` goes out:
    /// as soon as it exists and the buffer ahead is under `max_buffer`.
    fn request_time(&self, published: f64, max_buffer: f64) -> f64 {
        let mut request = self.now.max(published);
        if self.playing && self.stall_since.is_none() {
            let ahead = self.buffered - (self.pos + (request - self.now));
            if ahead > max_buffer {
                request += ahead - max_buffer;
            }
        }
        request
    }

    /// An asset of `a` seconds arrived at `done`: a stall ends, or play starts.
    fn arrived(&mut self, a: f64, done: f64, join: f64) {
        self.buffered += a;
        if let Some(since) = self.stall_since.take() {
            self.stalls += 1;
            self.stalled_s += done - since;
        }
        if !self.playing {
            self.playing = true;
            self.startup_s = done - join;
        }
    }
}

fn watch(config: &Config, viewer: &Viewer, backset: f64) -> Session {
    let a = config.asset_duration_s;
    let bits = a * config.bitrate_bps;
    let (edge, first) = start_asset(config, viewer.join, backset);
    let mut play = Playback::new(viewer.join, first as f64 * a);
    let mut requests = Vec::new();
    for asset in first.. {
        let request = play.request_time((asset + 1) as f64 * a, config.max_buffer_s);
        if request >= config.duration_s {
            break;
        }
        play.advance(request);
        let done = viewer.download_end(request, bits);
        requests.push((asset, request, done));
        play.advance(done);
        play.arrived(a, done, viewer.join);
    }
    Session {
        stalls: play.stalls,
        stalled_s: play.stalled_s,
        startup_s: play.startup_s,
        latency_s: if play.latency_time > 0.0 {
            play.latency_sum / play.latency_time
        } else {
            0.0
        },
        backset_s: edge - first as f64 * a,
        requests,
    }
}

pub fn simulate(config: &Config) -> Report {
    let viewers = viewers(config);
    let assets = (config.duration_s / config.asset_duration_s).ceil() as usize + 1;
    let outcomes = Strategy::ALL
        .iter()
        .map(|&strategy| {
            let sessions: Vec<Session> = viewers
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let backset = match strategy {
                        Strategy::LiveEdge => 0.0,
                        Strategy::ThreeAssets => 3.0 * config.asset_duration_s,
                        Strategy::Policy => {
                            let present: Vec<&Viewer> =
                                viewers.iter().filter(|o| o.join <= v.join).collect();
                            let same = present.iter().filter(|o| o.region == v.region).count();
                            let advice = advise(&Audience {
                                clients: present.len() as u64,
                                same_region_share: same as f64 / present.len().max(1) as f64,
                                throughput_bps: Some(v.rate_at(v.join)),
                                history_bps: v.history.clone(),
                                bitrate_bps: config.bitrate_bps,
                                asset_duration_s: config.asset_duration_s,
                                window_s: config.window_s,
                                dip_horizon_s: 20.0,
                            });
                            Drawer::for_client(&format!("viewer-{i}")).draw(&advice)
                        }
                    };
                    watch(config, v, backset)
                })
                .collect();
            summarize(strategy, &sessions, assets)
        })
        .collect();
    Report {
        viewers: config.viewers,
        assets,
        outcomes,
    }
}

fn summarize(strategy: Strategy, sessions: &[Session], assets: usize) -> Outcome {
    let n = sessions.len().max(1) as f64;
    let mean = |f: &dyn Fn(&Session) -> f64| sessions.iter().map(f).sum::<f64>() / n;
    let requests_per_asset = peak_overlaps(sessions.iter().flat_map(|s| s.requests.iter()), assets);
    let join_requests = peak_overlaps(sessions.iter().filter_map(|s| s.requests.first()), assets);
    Outcome {
        strategy,
        rebuffer_events: mean(&|s| s.stalls as f64),
        rebuffer_s: mean(&|s| s.stalled_s),
        viewers_stalled: mean(&|s| if s.stalls > 0 { 1.0 } else { 0.0 }),
        startup_s: mean(&|s| s.startup_s),
        latency_s: mean(&|s| s.latency_s),
        peak_requests: requests_per_asset.iter().copied().max().unwrap_or(0),
        peak_join_requests: join_requests.iter().copied().max().unwrap_or(0),
        requests_per_asset,
        backsets_s: sessions.iter().map(|s| s.backset_s).collect(),
    }
}

/// Per asset, the most requests in flight at once.
fn peak_overlaps<'a>(
    requests: impl Iterator<Item = &'a (usize, f64, f64)>,
    assets: usize,
) -> Vec<usize> {
    let mut per_asset: Vec<Vec<(f64, i32)>> = vec![Vec::new(); assets];
    for &(asset, start, end) in requests {
        if let Some(events) = per_asset.get_mut(asset) {
            events.push((start, 1));
            events.push((end, -1));
        }
    }
    per_asset
        .into_iter()
        .map(|mut events| {
            // Ends before starts at the same instant: back to back is no overlap.
            events.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
            let (mut now, mut peak) = (0i32, 0i32);
            for (_, d) in events {
                now += d;
                peak = peak.max(now);
            }
            peak as usize
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(seed: u64) -> Config {
        Config {
            viewers: 60,
            duration_s: 240.0,
            join_over_s: 60.0,
            asset_duration_s: 2.0,
            bitrate_bps: 3e6,
            traces: Traces::Model {
                mean_bps: 6e6,
                viewer_cv: 0.6,
                cv: 0.5,
                correlation: 0.9,
                step_s: 1.0,
            },
            max_buffer_s: 30.0,
            window_s: 120.0,
            seed,
        }
    }

    #[test]
    fn the_simulation_is_deterministic_for_a_seed() {
        let a = serde_json::to_string(&simulate(&config(7))).unwrap();
        let b = serde_json::to_string(&simulate(&config(7))).unwrap();
        let c = serde_json::to_string(&simulate(&config(8))).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn a_steady_fast_viewer_never_stalls_and_a_starved_one_does() {
        let c = config(1);
        let steady = Viewer {
            join: 10.0,
            trace: vec![30e6; 300],
            step: 1.0,
            history: vec![30e6],
            region: 0,
        };
        let s = watch(&c, &steady, 6.0);
        assert_eq!(s.stalls, 0);
        assert!((s.backset_s - 6.0).abs() < 1e-9);
        assert!(s.startup_s < 0.3);
        let starved = Viewer {
            trace: vec![1e6; 300],
            ..steady
        };
        assert!(watch(&c, &starved, 6.0).stalls > 0);
    }

    #[test]
    fn live_edge_viewers_all_fetch_the_newest_asset_together() {
        let report = simulate(&config(3));
        let live = &report.outcomes[0];
        let policy = &report.outcomes[2];
        // The newest key frame at or before the live edge opens the newest asset.
        assert!(live.backsets_s.iter().all(|b| *b >= 2.0 && *b < 4.0));
        assert!(policy.backsets_s.iter().any(|b| *b > 4.0));
        assert!(live.latency_s < policy.latency_s);
    }
}
