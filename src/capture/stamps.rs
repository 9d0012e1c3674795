//! Timestamps and datastamps: where a key frame sits in the transmission, by
//! time and by data.

/// `value` ticks of `from` per second in ticks of `to`, rounded to nearest.
pub fn rescale(value: u64, from: u32, to: u32) -> u64 {
    if from == to || from == 0 {
        return value;
    }
    let scaled = (u128::from(value) * u128::from(to) + u128::from(from) / 2) / u128::from(from);
    u64::try_from(scaled).unwrap_or(u64::MAX)
}

/// Turns the reference track's presentation times into transmission time:
/// the transmission's first entry point is at `base` (0 for a new
/// transmission, the live edge for a continued one).
#[derive(Debug, Clone)]
pub(crate) struct Clock {
    /// Ticks per second of transmission time.
    pub timescale: u32,
    reference_timescale: u32,
    base: u64,
    origin: Option<i128>,
}

impl Clock {
    pub fn new(timescale: u32, reference_timescale: u32, base: u64) -> Self {
        Clock {
            timescale,
            reference_timescale,
            base,
            origin: None,
        }
    }

    /// Transmission time of a presentation time of the reference track. The
    /// first call fixes the origin; earlier times clamp to it.
    pub fn timestamp(&mut self, pts: i128) -> u64 {
        let origin = *self.origin.get_or_insert(pts);
        let since = u64::try_from(pts - origin).unwrap_or(0);
        self.base + rescale(since, self.reference_timescale, self.timescale)
    }

    pub fn started(&self) -> bool {
        self.origin.is_some()
    }
}

/// The running count of emitted fragment bytes: the datastamp of whatever
/// fragment comes next.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Datastamps {
    next: u64,
}

impl Datastamps {
    pub fn starting_at(next: u64) -> Self {
        Datastamps { next }
    }

    /// The datastamp of a fragment of `len` bytes emitted now.
    pub fn stamp(&mut self, len: u64) -> u64 {
        let at = self.next;
        self.next += len;
        at
    }

    pub fn next(&self) -> u64 {
        self.next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rescale_rounds_to_nearest() {
        assert_eq!(rescale(90_000, 90_000, 1000), 1000);
        assert_eq!(rescale(1001, 30_000, 1_000_000), 33_367);
        assert_eq!(rescale(5, 7, 7), 5);
    }

    #[test]
    fn the_clock_starts_at_the_base_and_only_grows() {
        let mut c = Clock::new(1000, 90_000, 5000);
        assert_eq!(c.timestamp(900_000), 5000);
        assert_eq!(c.timestamp(990_000), 6000);
        assert_eq!(c.timestamp(0), 5000);
    }

    #[test]
    fn datastamps_are_the_running_byte_count() {
        let mut d = Datastamps::starting_at(100);
        assert_eq!(d.stamp(10), 100);
        assert_eq!(d.stamp(5), 110);
        assert_eq!(d.next(), 115);
    }
}
