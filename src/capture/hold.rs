//! Samples that wait so that each goes to the asset of its time. Encoders
//! that write one `moof` per track (GStreamer's `mp4mux`, ffmpeg's
//! `separate_moof`) send a track's samples before or after the video of the
//! same time. Which asset a sample belongs to depends on where the video's
//! key frames fall, so samples of other tracks are held until the video has
//! reached their decode time; and a video fragment with a key frame waits
//! until the other tracks have reached that key frame, so the asset before
//! it gets all of its audio first ([`Order`]). Samples decided before any
//! asset is open (ahead of the first key frame) are set aside the same way
//! and go into the asset that opens, after its key frame's fragment. What
//! is held is copied out of its `mdat`, so the input fragment it came from
//! is not kept alive; the queues are bounded.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::capture::fragment::{Fragment, Run, Sample};
use crate::capture::init::{Init, TrackKind};

/// How much may wait, in sample bytes, per queue.
pub const MAX_HELD_BYTES: usize = 16 << 20;
/// How long a stretch of samples may wait, in seconds, per queue.
pub const MAX_HELD_S: u64 = 10;

/// A queue of held fragments, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    fragments: VecDeque<Fragment>,
    bytes: usize,
}

impl Queue {
    /// Adds a fragment, if there is one, at the back.
    pub fn extend(&mut self, fragment: Option<Fragment>) {
        if let Some(fragment) = fragment {
            self.bytes += fragment.mdat.len();
            self.fragments.push_back(fragment);
        }
    }

    fn pop(&mut self) -> Option<Fragment> {
        let f = self.fragments.pop_front()?;
        self.bytes -= f.mdat.len();
        Some(f)
    }

    /// Sample bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Everything held, oldest first.
    pub fn take_all(&mut self) -> Vec<Fragment> {
        self.bytes = 0;
        self.fragments.drain(..).collect()
    }

    /// The oldest fragment, once the queue holds more than its limits: too
    /// many bytes, or samples further apart in time than [`MAX_HELD_S`].
    pub fn over_limit(&mut self, init: &Init) -> Option<Fragment> {
        let too_long = self.span_s(init).is_some_and(|s| s > MAX_HELD_S as f64);
        if self.bytes <= MAX_HELD_BYTES && !too_long {
            return None;
        }
        self.pop()
    }

    /// Seconds from the earliest held sample to the end of the latest.
    fn span_s(&self, init: &Init) -> Option<f64> {
        let mut span: Option<(f64, f64)> = None;
        for f in &self.fragments {
            for r in &f.runs {
                let scale = f64::from(init.tracks[r.track].timescale.max(1));
                for s in &f.samples[r.samples.clone()] {
                    let start = s.dts as f64 / scale;
                    let end = start + f64::from(s.duration) / scale;
                    span = Some(span.map_or((start, end), |(a, b)| (a.min(start), b.max(end))));
                }
            }
        }
        span.map(|(a, b)| b - a)
    }

    /// Takes out the held samples decoded before `until` (in `scale`
    /// ticks), as fragments oldest first; the rest stays.
    pub fn take_before(&mut self, init: &Init, until: u64, scale: u32) -> Vec<Fragment> {
        let mut taken = Vec::new();
        for f in std::mem::take(&mut self.fragments) {
            let (before, after) = divide(&f, init, until, scale);
            taken.extend(before);
            self.fragments.extend(after);
        }
        self.bytes = self.fragments.iter().map(|f| f.mdat.len()).sum();
        taken
    }
}

/// Where each track has got to, and the fragments that wait for the others.
#[derive(Debug)]
pub(crate) struct Order {
    /// Samples of other tracks sent ahead of the video of their time.
    pub waiting: Queue,
    /// Video fragments with a key frame that other tracks have not reached.
    video: Queue,
    /// Per track, where its latest sample ends in decode time (its ticks).
    reach: Vec<Option<u64>>,
    /// Per track, given up on: the video went on without it.
    absent: Vec<bool>,
    /// Where the placed video ends in decode time (its ticks).
    pub video_end: Option<u64>,
}

impl Order {
    pub fn new(tracks: usize) -> Self {
        Order {
            waiting: Queue::default(),
            video: Queue::default(),
            reach: vec![None; tracks],
            absent: vec![false; tracks],
            video_end: None,
        }
    }

    /// Bytes held in both queues.
    pub fn bytes(&self) -> usize {
        self.waiting.bytes() + self.video.bytes()
    }

    /// Notes how far each track of `fragment` reaches.
    pub fn note(&mut self, fragment: &Fragment) {
        for r in &fragment.runs {
            let end = fragment.samples[r.samples.clone()]
                .iter()
                .map(|s| s.dts.saturating_add(u64::from(s.duration)))
                .max();
            let reach = &mut self.reach[r.track];
            *reach = (*reach).max(end);
            self.absent[r.track] = false;
        }
    }

    /// Queues a video fragment.
    pub fn push_video(&mut self, fragment: Fragment) {
        self.video.extend(Some(fragment));
    }

    /// The next video fragment that can be placed: every other track has
    /// reached its last key frame (or it has none). Past the queue's limits
    /// the oldest goes anyway, and the lagging tracks are returned (by id)
    /// and counted absent until they come.
    pub fn next_video(&mut self, init: &Init) -> Option<(Fragment, Vec<u32>)> {
        let front = self.video.fragments.front()?;
        let lagging = self.lagging(init, front);
        if lagging.is_empty() {
            return self.video.pop().map(|f| (f, Vec::new()));
        }
        let oldest = self.video.over_limit(init)?;
        for &t in &lagging {
            self.absent[t] = true;
        }
        let ids = lagging.iter().map(|&t| init.tracks[t].id).collect();
        Some((oldest, ids))
    }

    /// All queued video, oldest first (the input ends).
    pub fn take_video(&mut self) -> Vec<Fragment> {
        self.video.take_all()
    }

    /// The tracks other than video, not given up on, that have not reached
    /// the last key frame of `fragment`.
    fn lagging(&self, init: &Init, fragment: &Fragment) -> Vec<usize> {
        let reference = init.reference();
        let scale = init.tracks[reference].timescale;
        let last_key = fragment
            .runs
            .iter()
            .filter(|r| r.track == reference)
            .flat_map(|r| &fragment.samples[r.samples.clone()])
            .filter(|s| s.is_sync())
            .map(|s| s.dts)
            .max();
        let Some(key) = last_key else {
            return Vec::new();
        };
        (0..init.tracks.len())
            .filter(|&t| init.tracks[t].kind != TrackKind::Video && !self.absent[t])
            .filter(|&t| self.reach[t].is_none_or(|r| before(init, t, r, key, scale)))
            .collect()
    }
}

/// Whether a sample of track `t` decoded at `dts` comes before `until`
/// (in `scale` ticks), without rounding.
pub(crate) fn before(init: &Init, t: usize, dts: u64, until: u64, scale: u32) -> bool {
    let own = u128::from(init.tracks[t].timescale);
    u128::from(dts) * u128::from(scale) < u128::from(until) * own
}

/// `fragment` cut in two by decode time: the samples before `until` (in
/// `scale` ticks) and those from it on, each a fragment of its own holding
/// a copy of its samples' bytes.
pub(crate) fn divide(
    fragment: &Fragment,
    init: &Init,
    until: u64,
    scale: u32,
) -> (Option<Fragment>, Option<Fragment>) {
    let early = |t: usize, i: usize| before(init, t, fragment.samples[i].dts, until, scale);
    let (first, mut second) = (
        select(fragment, early),
        select(fragment, |t, i| !early(t, i)),
    );
    // The events before the fragment go with its first part.
    if let (Some(_), Some(second)) = (&first, &mut second) {
        second.events.clear();
    }
    (first, second)
}

/// The samples of `fragment` that `keep` selects (by track and sample
/// index), as a fragment of their own with a compact copy of their bytes;
/// `None` if there are none.
pub(crate) fn select(fragment: &Fragment, keep: impl Fn(usize, usize) -> bool) -> Option<Fragment> {
    let mut out = Fragment {
        moof_offset: fragment.moof_offset,
        mdat: Bytes::new(),
        runs: Vec::new(),
        samples: Vec::new(),
        without_tfdt: Vec::new(),
        events: fragment.events.clone(),
    };
    let mut data = Vec::new();
    for run in &fragment.runs {
        let first = out.samples.len();
        for (i, s) in fragment.samples[run.samples.clone()].iter().enumerate() {
            if !keep(run.track, run.samples.start + i) {
                continue;
            }
            let bytes = &fragment.mdat[s.data..s.data + s.size as usize];
            out.samples.push(Sample {
                data: data.len(),
                ..*s
            });
            data.extend_from_slice(bytes);
        }
        if out.samples.len() > first {
            out.runs.push(Run {
                track: run.track,
                description_index: run.description_index,
                samples: first..out.samples.len(),
            });
        }
    }
    out.mdat = data.into();
    (!out.samples.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::init::{SampleDefaults, Track, TrackKind};

    fn init() -> Init {
        let track = |id, kind, timescale| Track {
            id,
            kind,
            codec: "x".into(),
            codecs: "x".into(),
            timescale,
            width: None,
            height: None,
            channels: None,
            frame_rate: None,
            bitrate_bps: None,
            defaults: SampleDefaults::default(),
        };
        Init::with_tracks(vec![
            track(1, TrackKind::Video, 1000),
            track(2, TrackKind::Audio, 48000),
        ])
    }

    /// Audio frames of 1024 ticks at 48 kHz, each `size` bytes of its index.
    fn audio(frames: u64, size: u32) -> Fragment {
        let samples: Vec<Sample> = (0..frames)
            .map(|i| Sample {
                dts: i * 1024,
                duration: 1024,
                size,
                flags: 0,
                cts: 0,
                data: (i * u64::from(size)) as usize,
            })
            .collect();
        let mdat: Vec<u8> = (0..frames)
            .flat_map(|i| std::iter::repeat_n(i as u8, size as usize))
            .collect();
        Fragment {
            moof_offset: 7,
            mdat: mdat.into(),
            runs: vec![Run {
                track: 1,
                description_index: None,
                samples: 0..frames as usize,
            }],
            samples,
            without_tfdt: vec![],
            events: vec![],
        }
    }

    #[test]
    fn a_fragment_divides_at_a_time_with_its_bytes() {
        // 100 ms at 1000 Hz: frames at 0, 21.3, 42.7, 64, 85.3 ms go before.
        let (a, b) = divide(&audio(8, 3), &init(), 100, 1000);
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.samples.len(), 5);
        assert_eq!(b.samples.len(), 3);
        assert_eq!(b.samples[0].dts, 5 * 1024);
        assert_eq!(b.samples[0].data, 0);
        assert_eq!(&b.mdat[..], &[5, 5, 5, 6, 6, 6, 7, 7, 7]);
        assert_eq!(b.runs[0].samples, 0..3);
    }

    #[test]
    fn a_queue_gives_up_what_is_decided_and_keeps_the_rest() {
        let mut q = Queue::default();
        q.extend(Some(audio(10, 2)));
        assert_eq!(q.bytes(), 20);
        let taken = q.take_before(&init(), 100, 1000);
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].samples.len(), 5);
        assert_eq!(q.bytes(), 10);
        assert!(q.over_limit(&init()).is_none());
        assert_eq!(q.take_all().len(), 1);
        assert_eq!(q.bytes(), 0);
    }

    /// Video at 1000 Hz: `frames` of 40 ms from `first`, the first a key frame.
    fn video(first: u64, frames: u64) -> Fragment {
        let samples: Vec<Sample> = (0..frames)
            .map(|i| Sample {
                dts: first + i * 40,
                duration: 40,
                size: 1,
                flags: if i == 0 { 0 } else { 0x0001_0000 },
                cts: 0,
                data: i as usize,
            })
            .collect();
        Fragment {
            moof_offset: first,
            mdat: vec![0; frames as usize].into(),
            runs: vec![Run {
                track: 0,
                description_index: None,
                samples: 0..frames as usize,
            }],
            samples,
            without_tfdt: vec![],
            events: vec![],
        }
    }

    #[test]
    fn video_with_a_key_frame_waits_until_the_audio_reaches_it() {
        let mut order = Order::new(2);
        order.note(&video(0, 25));
        order.push_video(video(0, 25));
        // No audio yet: the key frame at 0 waits for it.
        assert!(order.next_video(&init()).is_none());
        // Audio to 0.53 s reaches it; the next GOP (1 s) waits again.
        order.note(&audio(25, 1));
        assert!(order
            .next_video(&init())
            .is_some_and(|(_, lagging)| lagging.is_empty()));
        order.push_video(video(1000, 25));
        assert!(order.next_video(&init()).is_none());
        assert_eq!(order.bytes(), 25);
    }

    #[test]
    fn video_goes_on_without_a_track_that_stays_away() {
        let mut order = Order::new(2);
        // 11 s of GOPs, no audio ever.
        for gop in 0..11 {
            order.push_video(video(gop * 1000, 25));
        }
        let (first, lagging) = order.next_video(&init()).unwrap();
        assert_eq!((first.moof_offset, lagging), (0, vec![2]));
        // Given up on: the rest goes without waiting or warning.
        let (_, lagging) = order.next_video(&init()).unwrap();
        assert!(lagging.is_empty());
    }

    #[test]
    fn a_queue_over_its_time_limit_gives_up_its_oldest() {
        let mut q = Queue::default();
        // 11 s of audio.
        q.extend(Some(audio(48 * 11, 1)));
        assert!(q.over_limit(&init()).is_some());
        assert_eq!(q.bytes(), 0);
    }
}
