//! The fragment writer against the fragment parser: what
//! [`write_fragment`] writes for a piece, parsed back by
//! [`fragment::parse`], is the piece's samples (sizes, durations, flags,
//! composition offsets, decode times, bytes), track by track.

use bytes::Bytes;
use mp4_atom::{Decode, Moof};

use super::support::*;
use crate::capture::fragment::{self, Fragment, Run, Sample};
use crate::capture::fragment_writer::write_fragment;
use crate::capture::framing::Framer;
use crate::capture::init::{Init, SampleDefaults, Track, TrackKind};
use crate::capture::split::{split, Part, Piece};

/// The samples a piece holds, by track id, in the order the writer puts
/// them: each track's parts in piece order.
fn piece_media(init: &Init, f: &Fragment, piece: &Piece) -> Tracks {
    let mut tracks = Tracks::new();
    for part in &piece.parts {
        let only = Fragment {
            runs: vec![Run {
                samples: part.samples.clone(),
                ..f.runs[part.run].clone()
            }],
            ..f.clone()
        };
        media(init, &only, &mut tracks);
    }
    tracks
}

/// Writes `piece` and parses it back; checks the boxes on the way.
fn write_and_parse(init: &Init, f: &Fragment, piece: &Piece, sequence: u32) -> Fragment {
    let mut out = Vec::new();
    write_fragment(&mut out, f, piece, init, sequence).expect("writes");
    let written: Vec<u8> = out.iter().flat_map(|b| b.iter().copied()).collect();
    let mut framer = Framer::default();
    framer.push(&written);
    let moof = framer.next_box().expect("frames").expect("a moof");
    let mdat = framer.next_box().expect("frames").expect("an mdat");
    assert_eq!((&moof.kind, &mdat.kind), (b"moof", b"mdat"));
    assert!(framer.next_box().expect("frames").is_none(), "nothing else");
    assert_eq!(framer.unfinished(), None);
    let decoded = Moof::decode(&mut &moof.bytes[..]).expect("decodes");
    assert_eq!(decoded.mfhd.sequence_number, sequence);
    for traf in &decoded.traf {
        assert!(traf.tfdt.is_some() && traf.tfhd.default_base_is_moof);
    }
    // A fresh parser: every decode time must come from the written tfdt.
    let mut next_dts = vec![None; init.tracks.len()];
    fragment::parse(init, &moof, &mdat, &mut next_dts).expect("parses back")
}

#[test]
fn every_piece_of_every_fixture_reads_back_as_written() {
    for (name, bytes) in FIXTURES {
        let input = parse(bytes);
        let mut sequence = 0u32;
        for f in &input.fragments {
            let pieces = split(f, &input.init);
            let mut seen = 0;
            for piece in &pieces {
                sequence += 1;
                let back = write_and_parse(&input.init, f, piece, sequence);
                let mut got = Tracks::new();
                media(&input.init, &back, &mut got);
                let what = format!("{name}: moof at {}, piece {piece:?}", f.moof_offset);
                assert_same_media(&piece_media(&input.init, f, piece), &got, &what);
                for run in &back.runs {
                    let mut originals = piece.parts.iter().map(|p| &f.runs[p.run]);
                    let original = originals.find(|r| r.track == run.track);
                    let index = original.map(|r| r.description_index);
                    assert_eq!(index, Some(run.description_index), "{what}");
                }
                seen += back.samples.len();
            }
            assert_eq!(seen, f.samples.len(), "{name}: each sample in one piece");
        }
    }
}

#[test]
fn a_whole_fragment_reads_back_as_written() {
    for (name, bytes) in FIXTURES {
        let input = parse(bytes);
        for f in &input.fragments {
            let whole = Piece {
                entry: None,
                parts: (0..f.runs.len())
                    .map(|run| Part {
                        run,
                        samples: f.runs[run].samples.clone(),
                    })
                    .collect(),
            };
            let back = write_and_parse(&input.init, f, &whole, 7);
            let (mut want, mut got) = (Tracks::new(), Tracks::new());
            media(&input.init, f, &mut want);
            media(&input.init, &back, &mut got);
            assert_same_media(&want, &got, &format!("{name}: moof at {}", f.moof_offset));
        }
    }
}

/// A run whose samples are not back to back in the `mdat` (legal, never
/// seen from encoders), with negative composition offsets and a decode
/// time past 32 bits.
#[test]
fn scattered_samples_and_negative_composition_offsets_read_back() {
    let init = Init::with_tracks(vec![Track {
        id: 3,
        kind: TrackKind::Video,
        codec: "avc1".into(),
        codecs: "avc1".into(),
        timescale: 90_000,
        width: None,
        height: None,
        channels: None,
        frame_rate: None,
        bitrate_bps: None,
        defaults: SampleDefaults::default(),
    }]);
    let mdat: Bytes = (0..=255u8).collect::<Vec<_>>().into();
    let sample = |dts: u64, data: usize, size: u32, cts: i64, flags: u32| Sample {
        dts,
        duration: 3000,
        size,
        flags,
        cts,
        data,
    };
    let base = 1u64 << 33;
    let f = Fragment {
        moof_offset: 5000,
        mdat,
        runs: vec![Run {
            track: 0,
            description_index: Some(1),
            samples: 0..4,
        }],
        samples: vec![
            sample(base, 10, 7, 0, 0x0200_0000),
            sample(base + 3000, 100, 3, -3000, 0x0101_0000),
            sample(base + 6000, 20, 1, 6000, 0x0101_0000),
            sample(base + 9000, 200, 50, -6000, 0x0101_0000),
        ],
        without_tfdt: vec![],
        events: vec![],
    };
    let piece = Piece {
        entry: Some(0),
        parts: vec![Part {
            run: 0,
            samples: 1..4,
        }],
    };
    let back = write_and_parse(&init, &f, &piece, u32::MAX);
    let mut got = Tracks::new();
    media(&init, &back, &mut got);
    assert_same_media(&piece_media(&init, &f, &piece), &got, "scattered");
    assert_eq!(got[&3][0].dts, base + 3000);
    assert_eq!(got[&3][2].bytes, f.mdat.slice(200..250));
}
