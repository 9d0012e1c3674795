//! The server side: from what the server knows of the audience and of one
//! client, a recommended backset, a maximum backset and the coefficients of
//! the distribution that client draws from.
//!
//! The model, in four steps (all times in seconds, rates in bits/s):
//!
//! 1. **How fast can this client fetch, at worst?** From the current and
//!    historical throughput samples: mean μ, standard deviation σ. The low
//!    throughput is `T_low = max(min(current, μ − σ), bitrate / 100)`: a
//!    client that is slow now or unsteady over time is planned for at its
//!    dips, not its average. Headroom `h = T_low / bitrate`.
//! 2. **Recommended backset** `R = max(3A, A + A/h + D·max(0, 1 − h)) + A·cv`
//!    with `A` the asset duration, `D` the dip horizon (default
//!    20 s) and `cv = σ / μ` (at most 2): one asset (the one it starts with),
//!    the time to fetch the next asset at the low throughput, the buffer that
//!    drains while it plays through a dip of `D` seconds at the low
//!    throughput, never under three assets, plus slack in proportion to how
//!    unsteady the client is. A fast, steady client gets three assets; a slow
//!    or unsteady one more, enough not to rebuffer through its measured dips.
//!    (The floor and the `cv` term came from tuning with `backset simulate`:
//!    with the first model, `A + A/h + D·max(0, 1 − h)` alone, fast clients
//!    got about two assets and stalled more often than with a fixed
//!    three-asset backset: 45% of viewers stalled against 41%.)
//! 3. **Spread from the audience.** `crowd = min(1, log10(1 + clients) / 4)`
//!    (1 client: 0; 10,000: 1) and `s = crowd · (0.5 + 0.5 · same_region)`
//!    where `same_region` is the share of those clients in this client's
//!    region (clients close together share links and caches, so they are
//!    spread more). Then `less = 0.05 + 0.10 s`, `more = 0.10 + 0.20 s`
//!    (their sum stays under 0.45, so most draws equal `R`), `down = A (0.5 +
//!    s)`, `up = A (1 + 2 s)`: a large or tightly clustered audience puts more
//!    viewers on more assets at once.
//! 4. **Maximum** `M = min(window − A, R + 3 · up)`: a few `up` spreads past
//!    `R`, but never so far back that the start asset could expire before it
//!    is fetched. If the window cannot hold `R`, `R = M = window − A`.

use serde::{Deserialize, Serialize};

use super::{Advice, Coefficients};

/// What the server knows when a client asks for its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Audience {
    /// Clients currently downloading the transmission.
    pub clients: u64,
    /// Share of those clients in the requesting client's region, 0 to 1.
    #[serde(default)]
    pub same_region_share: f64,
    /// The client's measured throughput now, bits/s.
    pub throughput_bps: f64,
    /// The client's historical throughput samples, bits/s.
    #[serde(default)]
    pub history_bps: Vec<f64>,
    /// The stream's bitrate, bits/s.
    pub bitrate_bps: f64,
    /// Duration of one asset, s.
    pub asset_duration_s: f64,
    /// The retained window (how far back assets exist), s.
    pub window_s: f64,
    /// How long a throughput dip the buffer must ride out, s.
    #[serde(default = "default_dip")]
    pub dip_horizon_s: f64,
}

fn default_dip() -> f64 {
    20.0
}

impl Audience {
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("bitrate", self.bitrate_bps),
            ("asset duration", self.asset_duration_s),
            ("window", self.window_s),
        ];
        for (name, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("{name} must be a positive number, not {v}"));
            }
        }
        if !(0.0..=1.0).contains(&self.same_region_share) {
            return Err(format!(
                "same-region share {} must lie in 0..1",
                self.same_region_share
            ));
        }
        let rates = std::iter::once(self.throughput_bps).chain(self.history_bps.iter().copied());
        if rates.clone().any(|t| !t.is_finite() || t < 0.0)
            || !self.dip_horizon_s.is_finite()
            || self.dip_horizon_s < 0.0
        {
            return Err("throughputs and the dip horizon must be finite and >= 0".into());
        }
        Ok(())
    }
}

/// Share of `clients` per region that are in `region`.
pub fn region_share(counts: &[(String, u64)], region: &str) -> f64 {
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    let here: u64 = counts
        .iter()
        .filter(|(r, _)| r == region)
        .map(|(_, n)| n)
        .sum();
    if total == 0 {
        0.0
    } else {
        here as f64 / total as f64
    }
}

/// The least recommended backset, in assets: the HLS rule of starting three
/// target durations from the end. Tuned with `backset simulate`: without it,
/// fast clients got about two assets and stalled more often than with (b).
pub const FLOOR_ASSETS: f64 = 3.0;

pub fn advise(a: &Audience) -> Advice {
    let samples: Vec<f64> = std::iter::once(a.throughput_bps)
        .chain(a.history_bps.iter().copied())
        .collect();
    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
    let variance = samples.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / samples.len() as f64;
    let low = a
        .throughput_bps
        .min(mean - variance.sqrt())
        .max(a.bitrate_bps / 100.0);
    let headroom = low / a.bitrate_bps;
    let asset = a.asset_duration_s;

    let needed = asset + asset / headroom + a.dip_horizon_s * (1.0 - headroom).max(0.0);
    // Unsteady clients also get slack for the spread of their fetch times.
    let cv = (variance.sqrt() / mean.max(1.0)).min(2.0);
    let recommended = needed.max(FLOOR_ASSETS * asset) + asset * cv;

    let crowd = ((1.0 + a.clients as f64).log10() / 4.0).min(1.0);
    let s = crowd * (0.5 + 0.5 * a.same_region_share);
    let coefficients = Coefficients {
        less: 0.05 + 0.10 * s,
        more: 0.10 + 0.20 * s,
        down_s: asset * (0.5 + s),
        up_s: asset * (1.0 + 2.0 * s),
    };

    let cap = (a.window_s - asset).max(0.0);
    let recommended = recommended.min(cap);
    let maximum = (recommended + 3.0 * coefficients.up_s)
        .min(cap)
        .max(recommended);
    Advice {
        recommended_s: recommended,
        maximum_s: maximum,
        coefficients,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn audience() -> Audience {
        Audience {
            clients: 10,
            same_region_share: 0.2,
            throughput_bps: 20e6,
            history_bps: vec![19e6, 21e6, 20e6],
            bitrate_bps: 4e6,
            asset_duration_s: 2.0,
            window_s: 120.0,
            dip_horizon_s: 20.0,
        }
    }

    #[test]
    fn a_slow_or_unsteady_client_gets_a_larger_backset() {
        let fast = advise(&audience());
        let slow = advise(&Audience {
            throughput_bps: 3e6,
            history_bps: vec![3e6, 3.2e6],
            ..audience()
        });
        let unsteady = advise(&Audience {
            history_bps: vec![2e6, 30e6, 3e6, 25e6],
            ..audience()
        });
        let dipping = advise(&Audience {
            throughput_bps: 3e6,
            ..audience()
        });
        assert!(
            (6.0..6.2).contains(&fast.recommended_s),
            "three assets for a fast, steady client: {fast:?}"
        );
        assert!(slow.recommended_s > fast.recommended_s + 3.0, "{slow:?}");
        assert!(
            unsteady.recommended_s > fast.recommended_s + 1.0,
            "{unsteady:?}"
        );
        assert!(
            dipping.recommended_s > fast.recommended_s + 4.0,
            "below the bitrate now: buffer for a dip"
        );
    }

    #[test]
    fn a_large_or_clustered_audience_is_spread_wider() {
        let few = advise(&audience());
        let many = advise(&Audience {
            clients: 5000,
            ..audience()
        });
        let clustered = advise(&Audience {
            clients: 5000,
            same_region_share: 0.9,
            ..audience()
        });
        for (a, b) in [(few, many), (many, clustered)] {
            assert!(b.coefficients.less > a.coefficients.less);
            assert!(b.coefficients.more > a.coefficients.more);
            assert!(b.coefficients.up_s > a.coefficients.up_s);
            assert!(b.maximum_s - b.recommended_s > a.maximum_s - a.recommended_s);
        }
        assert!(
            clustered.coefficients.validate().is_ok(),
            "most draws stay at the recommendation"
        );
    }

    #[test]
    fn the_window_bounds_the_maximum() {
        let small = advise(&Audience {
            window_s: 10.0,
            throughput_bps: 1e6,
            ..audience()
        });
        assert_eq!(small.maximum_s, 8.0);
        assert!(small.recommended_s <= 8.0);
        assert!(advise(&audience()).maximum_s <= 118.0);
        assert_eq!(
            region_share(&[("eu".into(), 30), ("us".into(), 10)], "eu"),
            0.75
        );
    }
}
