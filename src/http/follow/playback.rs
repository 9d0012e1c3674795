//! What a player fed by `follow` would feel, without a player: a virtual
//! playhead that starts when the first media is written and advances at
//! real speed (1× the machine's clock). The buffer is the media time written
//! minus the playhead. When the playhead reaches the end of what was
//! written, playback stalls until more media is written, then resumes: each
//! such stop is one stall, and its length counts towards the stalled time.
//! Waiting for an asset that is late is therefore no stall while the buffer
//! still holds media, and a slow fetch is one as soon as the buffer is empty.

/// A wait shorter than this is no stall (the float error of a buffer that
/// runs out exactly as the next asset is written).
const EPSILON_S: f64 = 1e-6;

/// The playhead, on the machine's clock in seconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Playback {
    /// When the first media was written.
    started_s: Option<f64>,
    /// Media time written, s.
    written_s: f64,
    /// Time spent in stalls that have ended, s.
    stalled_s: f64,
    /// When the stall under way began (the playhead reached the end).
    stall_since_s: Option<f64>,
    stalls: u32,
}

impl Playback {
    /// When the playhead reaches (or reached) the end of what was written.
    fn dry_at(&self) -> Option<f64> {
        self.started_s
            .map(|start| start + self.stalled_s + self.written_s)
    }

    /// Whether playback has started.
    pub fn started(&self) -> bool {
        self.started_s.is_some()
    }

    /// The buffer at `now_s`: media written ahead of the playhead, s; `None`
    /// before playback starts.
    pub fn buffer_s(&self, now_s: f64) -> Option<f64> {
        if self.stall_since_s.is_some() {
            return Some(0.0);
        }
        self.dry_at().map(|dry| (dry - now_s).max(0.0))
    }

    /// The playhead's position in the media written, s.
    pub fn played_s(&self, now_s: f64) -> f64 {
        match self.started_s {
            Some(_) => self.written_s - self.buffer_s(now_s).unwrap_or(0.0),
            None => 0.0,
        }
    }

    /// Whether playback is stopped for want of media at `now_s`.
    pub fn starved(&self, now_s: f64) -> bool {
        self.stall_since_s.is_some() || self.dry_at().is_some_and(|dry| now_s > dry + EPSILON_S)
    }

    /// Looks at the playhead at `now_s`: true the first time it is found at
    /// the end of what was written (a new stall, counted).
    pub fn ran_dry(&mut self, now_s: f64) -> bool {
        if self.stall_since_s.is_some() || !self.starved(now_s) {
            return false;
        }
        self.stall_since_s = self.dry_at();
        self.stalls += 1;
        true
    }

    /// `media_s` of media written at `now_s`: starts playback, or extends
    /// the buffer. A stall under way ends; its length is returned.
    pub fn wrote(&mut self, now_s: f64, media_s: f64) -> Option<f64> {
        let media_s = media_s.max(0.0);
        if self.started_s.is_none() {
            self.started_s = Some(now_s);
            self.written_s = media_s;
            return None;
        }
        // A stall nobody looked at while it happened still counts.
        self.ran_dry(now_s);
        let stalled = self.stall_since_s.take().map(|since| {
            let s = (now_s - since).max(0.0);
            self.stalled_s += s;
            s
        });
        self.written_s += media_s;
        stalled
    }

    pub fn stalls(&self) -> u32 {
        self.stalls
    }

    /// Time spent stalled up to `now_s`, the stall under way included.
    pub fn stalled_s(&self, now_s: f64) -> f64 {
        self.stalled_s
            + self
                .stall_since_s
                .map_or(0.0, |since| (now_s - since).max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_drains_at_real_speed_and_a_late_write_is_one_stall() {
        let mut p = Playback::default();
        assert_eq!(p.buffer_s(0.0), None);
        assert!(!p.ran_dry(5.0), "no stall before playback starts");
        p.wrote(1.0, 1.5);
        assert_eq!(p.buffer_s(2.0), Some(0.5));
        // Written just as the buffer ran out: no stall.
        assert_eq!(p.wrote(2.5, 1.0), None);
        assert_eq!(p.buffer_s(3.0), Some(0.5));
        assert!(!p.ran_dry(3.5));
        assert!(p.ran_dry(3.6) && !p.ran_dry(4.0), "counted once");
        assert!(p.starved(4.0));
        assert_eq!(p.buffer_s(4.0), Some(0.0));
        let stalled = p.wrote(4.5, 1.0).unwrap();
        assert!((stalled - 1.0).abs() < 1e-9, "{stalled}");
        // Playback resumed at 4.5 with one second written.
        assert_eq!(p.buffer_s(5.0), Some(0.5));
        assert_eq!(p.played_s(5.0), 3.0);
        assert!((p.stalled_s(9.0) - 1.0).abs() < 1e-9);
        assert_eq!(p.stalls(), 1);
    }

    #[test]
    fn a_stall_seen_only_when_the_media_comes_still_counts() {
        let mut p = Playback::default();
        p.wrote(0.0, 1.0);
        let stalled = p.wrote(3.0, 1.0).unwrap();
        assert!((stalled - 2.0).abs() < 1e-9);
        assert_eq!(p.stalls(), 1);
        // A stall under way at the end counts up to then.
        assert!(p.ran_dry(4.5));
        assert!((p.stalled_s(5.0) - 3.0).abs() < 1e-9);
    }
}
