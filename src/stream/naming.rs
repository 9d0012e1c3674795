//! Predictable names: asset N's name is a pure function of the prefix and N.

use serde::{Deserialize, Serialize};

/// The longest prefix accepted, in bytes: names stay far below any file
/// system's limit.
pub const MAX_PREFIX_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Naming {
    pub prefix: String,
}

impl Default for Naming {
    fn default() -> Self {
        Naming {
            prefix: "asset".into(),
        }
    }
}

impl Naming {
    pub fn new(prefix: impl Into<String>) -> Self {
        Naming {
            prefix: prefix.into(),
        }
    }

    /// `<prefix>-<N, 8 digits>.mp4`; N past 99,999,999 simply gets more digits.
    pub fn name(&self, sequence: u64) -> String {
        format!("{}-{:08}.mp4", self.prefix, sequence)
    }

    /// The initialisation (`ftyp`+`moov`) of generation `generation`, as its
    /// own file: it lives as long as an asset that uses it is kept, so a
    /// playlist can name it without naming an asset retention deletes next.
    /// A generation is a run of assets with the same `moov` (the index
    /// record's `init`); it changes only when the capture's `moov` does.
    pub fn init_name(&self, generation: u32) -> String {
        format!("{}-init-{:04}.mp4", self.prefix, generation)
    }

    /// The initialisation of one track of generation `generation` (a `moov`
    /// with that track alone), for players that want one component per
    /// Representation (DASH).
    pub fn track_init_name(&self, generation: u32, track_id: u32) -> String {
        format!(
            "{}-init-{:04}.track{}.mp4",
            self.prefix, generation, track_id
        )
    }

    /// Asset N's fragments of one track alone (a CMAF media segment).
    pub fn track_segment_name(&self, sequence: u64, track_id: u32) -> String {
        format!("{}-{:08}.track{}.m4s", self.prefix, sequence, track_id)
    }

    /// Asset N's maps on their own: the same bytes as the maps box inside
    /// it, for a client that wants the entry points without the asset.
    pub fn maps_name(&self, sequence: u64) -> String {
        format!("{}.maps", self.name(sequence))
    }

    /// The pattern as documented for clients (printf style).
    pub fn pattern(&self) -> String {
        format!("{}-%08d.mp4", self.prefix)
    }

    /// The sequence number of a file name of this pattern, if it is one.
    pub(crate) fn sequence_of(&self, name: &str) -> Option<u64> {
        let digits = name
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix('-')?
            .strip_suffix(".mp4")?;
        if digits.len() < 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: u64 = digits.parse().ok()?;
        (self.name(n) == name).then_some(n)
    }

    /// What a file name of this stream names, if it is one of its names:
    /// only the exact rendering of a name is one (no leading `+`, no
    /// missing zeros), so a name maps to one file and back.
    pub fn parse(&self, name: &str) -> Option<Name> {
        let rest = name.strip_prefix(self.prefix.as_str())?.strip_prefix('-')?;
        let number = |digits: &str| -> Option<u64> {
            digits
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| digits.parse().ok())?
        };
        let parsed = if let Some(init) = rest.strip_prefix("init-") {
            let init = init.strip_suffix(".mp4")?;
            match init.split_once(".track") {
                Some((g, id)) => Name::TrackInit(
                    u32::try_from(number(g)?).ok()?,
                    u32::try_from(number(id)?).ok()?,
                ),
                None => Name::Init(u32::try_from(number(init)?).ok()?),
            }
        } else if let Some(segment) = rest.strip_suffix(".m4s") {
            let (n, id) = segment.split_once(".track")?;
            Name::TrackSegment(number(n)?, u32::try_from(number(id)?).ok()?)
        } else if let Some(asset) = rest.strip_suffix(".mp4.maps") {
            Name::Maps(number(asset)?)
        } else {
            Name::Asset(number(rest.strip_suffix(".mp4")?)?)
        };
        (self.render(parsed) == name).then_some(parsed)
    }

    /// The file name of `name`.
    pub fn render(&self, name: Name) -> String {
        match name {
            Name::Asset(n) => self.name(n),
            Name::Init(g) => self.init_name(g),
            Name::TrackInit(g, id) => self.track_init_name(g, id),
            Name::TrackSegment(n, id) => self.track_segment_name(n, id),
            Name::Maps(n) => self.maps_name(n),
        }
    }

    /// Prefixes end up in file names: keep them to one path component of
    /// bounded length, whether they come from `--prefix` or from a
    /// `stream.json` someone else wrote.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let ok = !self.prefix.is_empty()
            && self.prefix.len() <= MAX_PREFIX_LEN
            && !self.prefix.starts_with('.')
            && !self.prefix.contains("..")
            && self
                .prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if ok {
            Ok(())
        } else {
            Err(format!(
                "bad prefix {:?}: use at most {MAX_PREFIX_LEN} letters, digits, '-', '_' or '.', \
                 not starting with '.' nor containing '..'",
                self.prefix
            ))
        }
    }
}

/// The files of a stream, by what they hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Name {
    /// Asset N, self-contained.
    Asset(u64),
    /// The initialisation of a generation, all tracks.
    Init(u32),
    /// The initialisation of a generation, one track (generation, track id).
    TrackInit(u32, u32),
    /// Asset N's fragments of one track (sequence, track id).
    TrackSegment(u64, u32),
    /// Asset N's maps box, on its own.
    Maps(u64),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nth_name_is_known_without_listing() {
        let n = Naming::default();
        assert_eq!(n.name(0), "asset-00000000.mp4");
        assert_eq!(n.name(3), "asset-00000003.mp4");
        assert_eq!(n.sequence_of("asset-00000003.mp4"), Some(3));
        assert_eq!(n.sequence_of("asset-3.mp4"), None);
        assert_eq!(n.sequence_of("other-00000003.mp4"), None);
        assert_eq!(n.sequence_of("asset-000000003.mp4"), None);
        assert_eq!(Naming::new("cam1").name(123_456_789), "cam1-123456789.mp4");
        assert!(Naming::new("../x").validate().is_err());
    }

    #[test]
    fn every_name_parses_back_and_near_misses_do_not() {
        let n = Naming::new("cam-1.a");
        for name in [
            Name::Asset(7),
            Name::Asset(123_456_789),
            Name::Init(0),
            Name::Init(12),
            Name::TrackInit(3, 2),
            Name::TrackSegment(7, 1),
            Name::Maps(7),
        ] {
            assert_eq!(n.parse(&n.render(name)), Some(name), "{name:?}");
        }
        assert_eq!(n.init_name(1), "cam-1.a-init-0001.mp4");
        assert_eq!(n.track_segment_name(7, 2), "cam-1.a-00000007.track2.m4s");
        for bad in [
            "cam-1.a-init-1.mp4",
            "cam-1.a-init-0001.track.mp4",
            "cam-1.a-00000007.track+2.m4s",
            "cam-1.a-00000007.track02.m4s",
            "cam-1.a-0000007.mp4",
            "cam-1.a-00000007.m4s",
            "cam-1.a-00000007.maps",
            "other-00000007.mp4",
        ] {
            assert_eq!(n.parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn prefixes_stay_one_bounded_path_component() {
        for bad in [
            "",
            "../../../../etc/passwd",
            "a/b",
            "a\\b",
            "a\0b",
            "..",
            "a..b",
            ".hidden",
            "caf\u{e9}",
            &"x".repeat(MAX_PREFIX_LEN + 1),
        ] {
            assert!(Naming::new(bad).validate().is_err(), "{bad:?} accepted");
        }
        for good in ["asset", "cam-1_a.b", &"x".repeat(MAX_PREFIX_LEN)] {
            assert_eq!(Naming::new(good).validate(), Ok(()), "{good:?} refused");
        }
    }
}
