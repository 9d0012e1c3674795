//! What the in-process tests share: the fixtures as bytes, a driver that
//! feeds a capture to the segmenter the way `backset segment` does (and
//! decides the failure it would exit with), and readers that take captures
//! and assets back apart into samples, so "nothing lost, nothing changed"
//! is checked sample by sample without ffmpeg.

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;

use crate::capture::asset::{Assembler, FinishedAsset};
use crate::capture::fragment::{self, Fragment};
use crate::capture::framing::{Framer, RawBox};
use crate::capture::init::{Init, Track};
use crate::capture::maps::Maps;
use crate::capture::segmenter::{Config, Event, Resume, Segmenter};
use crate::stream::index::Record;
use crate::stream::verify::check_asset;
use crate::Error;

macro_rules! fixtures {
    ($($name:literal),* $(,)?) => {
        [$(($name, include_bytes!(concat!("../../../fixtures/", $name)) as &[u8])),*]
    };
}

/// Every bundled capture (see fixtures/make.sh), by file name.
pub const FIXTURES: [(&str, &[u8]); 12] = fixtures!(
    "h264-aac-gop.mp4",
    "h264-aac-fragdur.mp4",
    "h264-every-frame.mp4",
    "hevc-aac-separate-moof.mp4",
    "aac-only.mp4",
    "opus-only.mp4",
    "gst-h264-aac-frag1s.mp4",
    "gst-h264-aac-frag2500ms.mp4",
    "cmaf-styp-prft.mp4",
    "h264-aac-global-sidx.mp4",
    "h264-aac-cmaf-prft.mp4",
    "h264-aac-emsg.mp4",
);

pub fn fixture(name: &str) -> &'static [u8] {
    FIXTURES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, b)| *b)
        .unwrap_or_else(|| panic!("no fixture {name}"))
}

pub const SECOND: u64 = 1_000_000;
/// The wall clock the tests' captures arrive at, unless a test says otherwise.
pub const NOW: u64 = 1_700_000_000_000_000;
/// The video fixtures' timescale (and so their transmissions').
pub const VIDEO_TIMESCALE: u64 = 12288;

pub fn every(interval_us: u64) -> Config {
    Config {
        interval_us,
        size: None,
        ..Config::default()
    }
}

/// An asset as published: its maps and its file's bytes.
#[derive(Clone)]
pub struct Published {
    pub asset: FinishedAsset,
    pub bytes: Vec<u8>,
}

impl Published {
    pub fn maps(&self) -> &Maps {
        &self.asset.maps
    }

    pub fn end(&self) -> u64 {
        self.maps().start + self.maps().duration
    }

    /// The fragments, after the header.
    pub fn body(&self) -> &[u8] {
        &self.bytes[self.asset.header.len()..]
    }
}

impl PartialEq for Published {
    fn eq(&self, other: &Self) -> bool {
        self.asset.maps == other.asset.maps
            && self.asset.header.len() == other.asset.header.len()
            && self.bytes == other.bytes
    }
}

/// The maps and a checksum, not a hex dump of the file.
impl fmt::Debug for Published {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sum = self.bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
        });
        write!(
            f,
            "asset {:?}, {} bytes, fnv {sum:016x}",
            self.asset.maps,
            self.bytes.len()
        )
    }
}

/// One event, comparable.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    Started { tracks: Vec<Track>, timescale: u32 },
    Asset(Published),
    Warning(String),
}

/// The segmenter's events, comparable: each asset put back together from
/// the fragments handed out before it (the one place that does).
pub fn seen(events: Vec<Event>) -> Vec<Seen> {
    let mut assembler = Assembler::default();
    events
        .into_iter()
        .filter_map(|e| assembler.take(e))
        .map(|e| match e {
            Event::Started { tracks, timescale } => Seen::Started { tracks, timescale },
            Event::Asset(asset) => Seen::Asset(Published {
                bytes: asset.slices().flatten().copied().collect(),
                asset,
            }),
            Event::Warning(w) => Seen::Warning(w),
            Event::Fragment { .. } => unreachable!("the assembler keeps fragments"),
        })
        .collect()
}

/// What the segmenter made of a capture.
#[derive(Debug)]
pub struct Outcome {
    pub events: Vec<Seen>,
    /// What `backset segment` would stop with (exit status from
    /// [`Error::exit_code`]), `None` for success.
    pub error: Option<Error>,
}

impl Outcome {
    pub fn assets(&self) -> Vec<&Published> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Seen::Asset(a) => Some(a),
                _ => None,
            })
            .collect()
    }

    pub fn warnings(&self) -> Vec<&str> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Seen::Warning(w) => Some(w.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Whether a warning contains `text`.
    pub fn warned(&self, text: &str) -> bool {
        self.warnings().iter().any(|w| w.contains(text))
    }

    pub fn starts(&self) -> Vec<(&[Track], u32)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Seen::Started { tracks, timescale } => Some((tracks.as_slice(), *timescale)),
                _ => None,
            })
            .collect()
    }

    pub fn exit_code(&self) -> u8 {
        self.error.as_ref().map_or(0, Error::exit_code)
    }

    pub fn error_text(&self) -> String {
        self.error
            .as_ref()
            .map(Error::to_string)
            .unwrap_or_default()
    }

    /// A one-line account for assertion messages.
    pub fn summary(&self) -> String {
        format!(
            "exit {}, {} assets, error {:?}, warnings {:?}",
            self.exit_code(),
            self.assets().len(),
            self.error_text(),
            self.warnings()
        )
    }

    /// Nothing published is damaged: each asset passes `verify`'s own check
    /// against its index record, and the assets follow each other without
    /// a gap in sequence, time or data.
    pub fn assert_intact(&self, what: &str) {
        let assets = self.assets();
        for a in &assets {
            let problems = check_asset(&a.bytes, &Record::of(&a.asset, NOW));
            assert!(problems.is_empty(), "{what}: {a:?}: {problems:?}");
        }
        for pair in assets.windows(2) {
            let (a, b) = (pair[0].maps(), pair[1].maps());
            assert_eq!(a.sequence + 1, b.sequence, "{what}: sequence");
            assert_eq!(a.start + a.duration, b.start, "{what}: gap after {a:?}");
            assert_eq!(
                a.start_datastamp + pair[0].asset.body_len,
                b.start_datastamp,
                "{what}: datastamps skip after {a:?}"
            );
        }
    }
}

/// Feeds `capture` whole at [`NOW`], as `backset segment --interval`.
pub fn segment(capture: &[u8], interval_us: u64) -> Outcome {
    Feed::new(every(interval_us)).run(capture)
}

/// How a capture is fed to a segmenter.
pub struct Feed {
    pub config: Config,
    pub resume: Option<Resume>,
    /// Bytes per `push`; 0 is the whole capture at once.
    pub chunk: usize,
    /// The wall clock at each push, given the bytes pushed so far.
    pub clock: fn(u64) -> u64,
}

impl Feed {
    pub fn new(config: Config) -> Feed {
        Feed {
            config,
            resume: None,
            chunk: 0,
            clock: |_| NOW,
        }
    }

    pub fn chunk(self, chunk: usize) -> Feed {
        Feed { chunk, ..self }
    }

    /// Pushes the capture, then finishes it; after a failure the open asset
    /// is still published, and a failure at the end counts only when
    /// nothing was published, as in `backset segment`.
    pub fn run(&self, capture: &[u8]) -> Outcome {
        let mut segmenter = Segmenter::new(self.config, self.resume);
        let mut events = Vec::new();
        let mut failure = None;
        let chunk = if self.chunk == 0 {
            capture.len().max(1)
        } else {
            self.chunk
        };
        let mut pushed = 0u64;
        for c in capture.chunks(chunk) {
            pushed += c.len() as u64;
            if let Err(e) = segmenter.push(c, (self.clock)(pushed), &mut events) {
                failure = Some(e);
                break;
            }
        }
        let finished = segmenter.finish(&mut events);
        let events = seen(events);
        let published = events.iter().any(|e| matches!(e, Seen::Asset(_)));
        if let (None, false, Err(e)) = (&failure, published, finished) {
            failure = Some(e);
        }
        Outcome {
            events,
            error: failure,
        }
    }
}

/// A capture or an asset taken apart: its initialisation and fragments.
pub struct Parsed {
    pub init: Init,
    pub fragments: Vec<Fragment>,
    /// The top-level boxes, in order.
    pub boxes: Vec<RawBox>,
}

/// Where the `moof` of the fragment at `offset` is: past the event boxes
/// (`emsg`, `prft`) that open the fragment.
pub fn past_events(bytes: &[u8], mut offset: usize) -> usize {
    while matches!(&bytes[offset + 4..offset + 8], b"emsg" | b"prft") {
        let size = u32::from_be_bytes([
            bytes[offset],
            bytes[offset + 1],
            bytes[offset + 2],
            bytes[offset + 3],
        ]);
        offset += size as usize;
    }
    offset
}

/// Takes an undamaged capture or asset apart; panics on what it cannot read.
pub fn parse(bytes: &[u8]) -> Parsed {
    let mut framer = Framer::default();
    framer.push(bytes);
    let mut boxes = Vec::new();
    while let Some(b) = framer.next_box().expect("frames") {
        boxes.push(b);
    }
    assert_eq!(framer.unfinished(), None, "a whole file");
    let find = |kind: &[u8; 4]| boxes.iter().find(|b| &b.kind == kind);
    let init = Init::parse(find(b"ftyp"), find(b"moov").expect("a moov")).expect("init");
    let mut next_dts = vec![None; init.tracks.len()];
    let fragments = boxes
        .windows(2)
        .filter(|p| &p[0].kind == b"moof" && &p[1].kind == b"mdat")
        .map(|p| fragment::parse(&init, &p[0], &p[1], &mut next_dts).expect("fragment"))
        .collect();
    Parsed {
        init,
        fragments,
        boxes,
    }
}

/// One sample as a player sees it: times, flags and bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Media {
    pub dts: u64,
    pub duration: u32,
    pub cts: i64,
    pub flags: u32,
    pub bytes: Bytes,
}

impl fmt::Debug for Media {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "dts {} duration {} cts {} flags {:#x} {} bytes",
            self.dts,
            self.duration,
            self.cts,
            self.flags,
            self.bytes.len()
        )
    }
}

/// The samples of every track (by track id), in decode order.
pub type Tracks = BTreeMap<u32, Vec<Media>>;

pub fn media(init: &Init, fragment: &Fragment, into: &mut Tracks) {
    for run in &fragment.runs {
        let id = init.tracks[run.track].id;
        into.entry(id)
            .or_default()
            .extend(fragment.run_samples(run).iter().map(|s| Media {
                dts: s.dts,
                duration: s.duration,
                cts: s.cts,
                flags: s.flags,
                bytes: fragment.mdat.slice(s.data..s.data + s.size as usize),
            }));
    }
}

/// The samples of a capture.
pub fn capture_media(bytes: &[u8]) -> Tracks {
    let parsed = parse(bytes);
    let mut tracks = Tracks::new();
    for f in &parsed.fragments {
        media(&parsed.init, f, &mut tracks);
    }
    tracks
}

/// The samples of assets played back to back.
pub fn assets_media(assets: &[&Published]) -> Tracks {
    let mut tracks = Tracks::new();
    for a in assets {
        let parsed = parse(&a.bytes);
        for f in &parsed.fragments {
            media(&parsed.init, f, &mut tracks);
        }
    }
    tracks
}

/// Asserts two sample listings agree, naming the first difference.
pub fn assert_same_media(want: &Tracks, got: &Tracks, what: &str) {
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "{what}: tracks differ"
    );
    for (track, samples) in want {
        let other = &got[track];
        let differs = (0..samples.len().max(other.len())).find(|&i| samples.get(i) != other.get(i));
        if let Some(i) = differs {
            panic!(
                "{what}: track {track} differs at sample {i}: want {:?}, got {:?} ({} vs {} samples)",
                samples.get(i),
                other.get(i),
                samples.len(),
                other.len()
            );
        }
    }
}
