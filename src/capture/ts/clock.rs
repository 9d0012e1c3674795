//! The program's 90 kHz clock: 33-bit PTS/DTS unwrapped into a timeline
//! that only grows, and jumps (an encoder restart, a splice, a PCR
//! discontinuity) mended so each stream goes on where it left off.
//!
//! A wrap is told from a jump by size: consecutive stamps of a stream are
//! at most seconds apart, so the difference taken modulo 2^33 and read as
//! signed is the true step. A step forward of more than `MAX_STEP` or back
//! of more than `MAX_BACK` is a jump; the first stream to jump sets a new
//! offset for the program, and the others take it when it explains their
//! own jump, so they stay in sync with each other.

/// Stamps wrap at 2^33 ticks of 90 kHz (26.5 hours).
pub(crate) const WRAP: i64 = 1 << 33;

/// The largest believable step forward between two stamps of one stream.
const MAX_STEP: i64 = 10 * 90_000;

/// The largest believable step back (a PTS behind the previous one by the
/// B-frame reordering; a DTS never goes back).
const MAX_BACK: i64 = 90_000;

/// What all streams of a program share: the offset added to unwrapped
/// stamps, and how many times it changed.
#[derive(Debug, Default)]
pub(crate) struct Program {
    offset: i64,
    generation: u32,
}

/// One stream's clock.
#[derive(Debug, Default)]
pub(crate) struct StreamClock {
    /// The last stamp, unwrapped.
    unwrapped: Option<i64>,
    offset: i64,
    generation: u32,
    /// The last placed stamp and the step before it.
    last: Option<i64>,
    step: i64,
}

/// A jump that was mended: how far the clock moved, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Jump(pub f64);

impl StreamClock {
    /// Places a 33-bit stamp that should follow this stream's last one on
    /// the program's timeline (90 kHz). A jump is mended and returned.
    pub fn place(&mut self, raw: u64, program: &mut Program) -> (i64, Option<Jump>) {
        let unwrapped = self.unwrap(raw);
        let mut placed = unwrapped + self.offset;
        let mut jump = None;
        if let Some(last) = self.last {
            if !believable(placed - last) {
                let theirs = unwrapped + program.offset;
                if program.generation != self.generation && believable(theirs - last) {
                    self.offset = program.offset;
                } else {
                    self.offset = last + self.step.max(1) - unwrapped;
                    program.offset = self.offset;
                    program.generation += 1;
                    jump = Some(Jump((placed - last) as f64 / 90_000.0));
                }
                self.generation = program.generation;
                placed = unwrapped + self.offset;
            }
            if placed > last {
                self.step = placed - last;
            }
        } else {
            self.offset = program.offset;
            self.generation = program.generation;
            placed = unwrapped + self.offset;
        }
        self.last = Some(placed);
        (placed, jump)
    }

    /// A stamp related to the last placed one (a PTS to its DTS): the same
    /// unwrapping and offset, no jump check.
    pub fn beside(&self, raw: u64, placed: i64) -> i64 {
        let Some(last) = self.unwrapped else {
            return placed;
        };
        placed + signed_step(last, raw)
    }

    /// The last placed stamp.
    pub fn last(&self) -> Option<i64> {
        self.last
    }

    /// Where a 33-bit stamp of this stream's clock (a splice time) lies on
    /// the program's timeline, next to the last placed stamp.
    pub fn at(&self, raw: u64) -> Option<i64> {
        Some(self.last? + signed_step(self.unwrapped?, raw))
    }

    /// The 33-bit stamp as a step from the last one.
    fn unwrap(&mut self, raw: u64) -> i64 {
        let unwrapped = match self.unwrapped {
            None => (raw as i64) & (WRAP - 1),
            Some(last) => last + signed_step(last, raw),
        };
        self.unwrapped = Some(unwrapped);
        unwrapped
    }
}

/// The step from `last` (unwrapped) to the 33-bit `raw`, read as the
/// shorter way round the 2^33 circle.
fn signed_step(last: i64, raw: u64) -> i64 {
    let d = ((raw as i64) - last).rem_euclid(WRAP);
    if d >= WRAP / 2 {
        d - WRAP
    } else {
        d
    }
}

fn believable(step: i64) -> bool {
    (-MAX_BACK..=MAX_STEP).contains(&step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwraps_across_2_to_the_33() {
        let mut program = Program::default();
        let mut clock = StreamClock::default();
        let start = WRAP as u64 - 3000;
        let (a, _) = clock.place(start, &mut program);
        let (b, jump) = clock.place(3000, &mut program);
        assert_eq!(b - a, 6000);
        assert!(jump.is_none());
        assert_eq!(clock.beside(3000 + 1500, b), b + 1500);
        // A PTS just before the wrap beside a DTS just after it.
        assert_eq!(clock.beside(WRAP as u64 - 10, b), b - 3010);
    }

    #[test]
    fn a_jump_goes_on_from_the_last_step_and_the_other_stream_follows() {
        let mut program = Program::default();
        let (mut video, mut audio) = (StreamClock::default(), StreamClock::default());
        video.place(900_000, &mut program);
        audio.place(900_500, &mut program);
        let (v, _) = video.place(903_000, &mut program);
        audio.place(902_420, &mut program);
        // Both restart at 1000 (an encoder restart), audio 500 ticks later.
        let (v2, jump) = video.place(1_000, &mut program);
        assert!(jump.is_some_and(|j| j.0 < -9.0));
        assert_eq!(v2, v + 3000);
        let (a2, jump) = audio.place(1_500, &mut program);
        assert!(jump.is_none(), "the audio takes the program's new offset");
        assert_eq!(a2 - v2, 500);
    }
}
