//! The client side: a backset drawn from the server's advice. Most draws
//! equal the recommended backset; a share `less` falls below it (never below
//! zero), a share `more` above it (always below the maximum). Reproducible
//! from a seed, so a client id always draws the same sequence. The
//! distribution is named [`DISTRIBUTION`]; advice for any other is refused.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Advice, DISTRIBUTION};
use crate::Error;

/// Ok when `name` is the distribution this build draws from, a usage error
/// naming the one it knows otherwise: a client must not draw from advice
/// meant for another shape.
pub fn known_distribution(name: &str) -> Result<(), Error> {
    if name == DISTRIBUTION {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "unknown backset distribution {name:?}: this backset draws from {DISTRIBUTION}"
        )))
    }
}

/// A client's random source, seeded from its id.
pub struct Drawer {
    rng: ChaCha8Rng,
}

impl Drawer {
    pub fn new(seed: u64) -> Drawer {
        Drawer {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// Seeds from a client id (FNV-1a of its bytes: stable across builds).
    pub fn for_client(id: &str) -> Drawer {
        let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        Drawer::new(hash)
    }

    /// One backset, seconds.
    pub fn draw(&mut self, advice: &Advice) -> f64 {
        let r = advice.recommended_s.max(0.0);
        let m = advice.maximum_s.max(r);
        let c = advice.coefficients;
        let u: f64 = self.rng.random();
        if u < c.less && r > 0.0 {
            r - self.truncated_exponential(c.down_s, r)
        } else if u >= c.less && u < c.less + c.more && m > r {
            r + self.truncated_exponential(c.up_s, m - r)
        } else {
            r
        }
    }

    /// An exponential distance of mean `scale`, conditioned to lie strictly
    /// inside (0, limit).
    fn truncated_exponential(&mut self, scale: f64, limit: f64) -> f64 {
        // Open interval (0, 1) so the result never touches either end.
        let v: f64 = self.rng.random_range(f64::EPSILON..1.0 - f64::EPSILON);
        let x = if scale <= 0.0 {
            v * limit
        } else {
            -scale * (1.0 - v * (1.0 - (-limit / scale).exp())).ln()
        };
        x.clamp(limit * 1e-9, limit * (1.0 - 1e-9))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Coefficients;
    use proptest::prelude::*;

    fn advice(r: f64, m: f64, less: f64, more: f64, down: f64, up: f64) -> Advice {
        Advice {
            recommended_s: r,
            maximum_s: m,
            coefficients: Coefficients {
                less,
                more,
                down_s: down,
                up_s: up,
            },
        }
    }

    #[test]
    fn the_same_client_draws_the_same_backsets() {
        let a = advice(20.0, 60.0, 0.1, 0.2, 4.0, 8.0);
        let first: Vec<f64> = (0..20)
            .map(|_| 0.0)
            .scan(Drawer::for_client("viewer-42"), |d, _| Some(d.draw(&a)))
            .collect();
        let again: Vec<f64> = (0..20)
            .map(|_| 0.0)
            .scan(Drawer::for_client("viewer-42"), |d, _| Some(d.draw(&a)))
            .collect();
        let other: Vec<f64> = (0..20)
            .map(|_| 0.0)
            .scan(Drawer::for_client("viewer-43"), |d, _| Some(d.draw(&a)))
            .collect();
        assert_eq!(first, again);
        assert_ne!(first, other);
    }

    #[test]
    fn only_the_known_distribution_is_drawn_from() {
        assert!(known_distribution(DISTRIBUTION).is_ok());
        let err = known_distribution("backset-point-mass-exp-tails/2").unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains(DISTRIBUTION), "{err}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]
        #[test]
        fn shares_follow_the_coefficients_over_100000_draws(
            r in 0.5f64..60.0,
            extra in 0.5f64..120.0,
            less in 0.0f64..0.25,
            more in 0.0f64..0.24,
            down in 0.1f64..20.0,
            up in 0.1f64..40.0,
            seed in any::<u64>(),
        ) {
            let a = advice(r, r + extra, less, more, down, up);
            let mut d = Drawer::new(seed);
            let n = 100_000;
            let (mut below, mut equal, mut above) = (0usize, 0usize, 0usize);
            for _ in 0..n {
                let b = d.draw(&a);
                prop_assert!(b >= 0.0, "negative draw {b}");
                prop_assert!(b <= r + extra, "draw {b} past the maximum");
                if b < r { below += 1 } else if b > r { above += 1; prop_assert!(b < r + extra) } else { equal += 1 }
            }
            // Binomial standard deviation at n = 100000 is at most 0.0016: allow 5 of them.
            let tol = 0.008;
            prop_assert!((below as f64 / n as f64 - less).abs() < tol, "below {below}");
            prop_assert!((above as f64 / n as f64 - more).abs() < tol, "above {above}");
            prop_assert!(equal * 2 > n, "most draws equal the recommended backset");
        }
    }
}
