//! Publish latency (asset complete → object visible on the store) as a
//! histogram of whole milliseconds: fixed memory however long the stream.

/// Latencies over this are counted in the last bucket.
const CAP_MS: usize = 60_000;

#[derive(Debug)]
pub struct Latency {
    counts: Vec<u32>,
    total: u64,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            counts: vec![0; CAP_MS + 1],
            total: 0,
        }
    }
}

impl Latency {
    pub fn add(&mut self, us: u64) {
        let ms = usize::try_from(us / 1000).unwrap_or(CAP_MS).min(CAP_MS);
        self.counts[ms] = self.counts[ms].saturating_add(1);
        self.total += 1;
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// The latency (ms) at or under which `q` (0 to 1) of them fall.
    pub fn quantile_ms(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0u64;
        for (ms, &n) in self.counts.iter().enumerate() {
            seen += u64::from(n);
            if seen >= rank {
                return Some(ms as u64);
            }
        }
        Some(CAP_MS as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_a_known_spread() {
        let mut l = Latency::default();
        assert_eq!(l.quantile_ms(0.5), None);
        for ms in 1..=100u64 {
            l.add(ms * 1000 + 300);
        }
        assert_eq!(l.quantile_ms(0.5), Some(50));
        assert_eq!(l.quantile_ms(0.99), Some(99));
        l.add(u64::MAX);
        assert_eq!(l.quantile_ms(1.0), Some(CAP_MS as u64));
    }
}
