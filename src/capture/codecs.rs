//! What a playlist needs to name a track, read from its sample entry: the
//! RFC 6381 `codecs` parameter (`avc1.64001f`, `hvc1.1.6.L93.B0`,
//! `mp4a.40.2`, …) and the bitrate the entry declares. Players choose a
//! decoder from the `codecs` string before fetching a byte, so it has to be
//! the one the bitstream's own configuration record implies, formatted the
//! way browsers match it (ISO/IEC 14496-15 Annex E for AVC and HEVC, RFC 6381
//! §3.3 for MPEG-4 audio, the VP9 and AV1 ISOBMFF bindings for those).

use mp4_atom::{Av1c, Avcc, Btrt, Codec, Hvcc, VpcC};

/// The RFC 6381 codecs parameter of a sample entry. An entry mp4-atom does
/// not know is named by its four-character code alone, which is what RFC
/// 6381 asks of a codec without parameters; `None` for the entries (PCM,
/// JPEG, metadata) that no playlist names.
pub fn rfc6381(codec: &Codec) -> Option<String> {
    Some(match codec {
        Codec::Avc1(c) => avc("avc1", &c.avcc),
        Codec::Avc3(c) => avc("avc3", &c.avcc),
        Codec::Hvc1(c) => hevc("hvc1", &c.hvcc),
        Codec::Hev1(c) => hevc("hev1", &c.hvcc),
        Codec::Vp09(c) => vp("vp09", &c.vpcc),
        Codec::Vp08(c) => vp("vp08", &c.vpcc),
        Codec::Av01(c) => av1(&c.av1c),
        Codec::Mp4a(c) => {
            let config = &c.esds.es_desc.dec_config;
            mp4a(
                config.object_type_indication,
                config.dec_specific.as_ref().map(audio_object_type),
            )
        }
        // Browsers name MP3 in MP4 by its MPEG-1 audio object type.
        Codec::Mp3(_) => "mp4a.6B".into(),
        // The Opus and FLAC ISOBMFF bindings register these names as is.
        Codec::Opus(_) => "opus".into(),
        Codec::Flac(_) => "fLaC".into(),
        Codec::Ac3(_) => "ac-3".into(),
        Codec::Eac3(_) => "ec-3".into(),
        Codec::Tx3g(_) => "tx3g".into(),
        Codec::Wvtt(_) => "wvtt".into(),
        Codec::Unknown(kind, _) => kind.to_string(),
        _ => return None,
    })
}

/// The bitrate a sample entry declares, in bits per second: its `btrt` box,
/// or for MPEG-4 audio the `esds` decoder configuration. Of the average
/// and the maximum the larger is taken, since playlists' `BANDWIDTH` is a
/// peak; `None` when the entry declares neither.
pub fn bitrate_bps(codec: &Codec) -> Option<u64> {
    let btrt = match codec {
        Codec::Avc1(c) => c.btrt.as_ref(),
        Codec::Avc3(c) => c.btrt.as_ref(),
        Codec::Hvc1(c) => c.btrt.as_ref(),
        Codec::Hev1(c) => c.btrt.as_ref(),
        Codec::Vp08(c) => c.btrt.as_ref(),
        Codec::Vp09(c) => c.btrt.as_ref(),
        Codec::Av01(c) => c.btrt.as_ref(),
        Codec::Mp4a(c) => c.btrt.as_ref(),
        Codec::Opus(c) => c.btrt.as_ref(),
        _ => None,
    };
    let declared = |avg: u32, max: u32| Some(u64::from(avg.max(max))).filter(|&b| b > 0);
    btrt.and_then(|b: &Btrt| declared(b.avg_bitrate, b.max_bitrate))
        .or_else(|| match codec {
            Codec::Mp4a(c) => {
                let config = &c.esds.es_desc.dec_config;
                declared(config.avg_bitrate, config.max_bitrate)
            }
            _ => None,
        })
}

/// `avc1.PPCCLL`: profile_idc, the constraint-set flags byte and level_idc
/// of the avcC, two hex digits each.
fn avc(fourcc: &str, avcc: &Avcc) -> String {
    format!(
        "{fourcc}.{:02x}{:02x}{:02x}",
        avcc.avc_profile_indication, avcc.profile_compatibility, avcc.avc_level_indication
    )
}

/// ISO/IEC 14496-15 Annex E: profile space letter and profile idc; the 32
/// compatibility flags in reverse bit order, in hex without leading zeros;
/// tier letter and level idc; then the six constraint bytes in hex, each
/// after a dot, the trailing zero bytes left out.
fn hevc(fourcc: &str, hvcc: &Hvcc) -> String {
    let space = match hvcc.general_profile_space {
        1 => "A",
        2 => "B",
        3 => "C",
        _ => "",
    };
    let compatibility = u32::from_be_bytes(hvcc.general_profile_compatibility_flags).reverse_bits();
    let tier = if hvcc.general_tier_flag { 'H' } else { 'L' };
    let mut out = format!(
        "{fourcc}.{space}{}.{compatibility:X}.{tier}{}",
        hvcc.general_profile_idc, hvcc.general_level_idc
    );
    let constraints = &hvcc.general_constraint_indicator_flags;
    let kept = constraints
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |last| last + 1);
    for byte in &constraints[..kept] {
        out.push_str(&format!(".{byte:X}"));
    }
    out
}

/// `vp09.PP.LL.DD`: profile, level and bit depth, two decimal digits each
/// (the short form, which leaves the colour fields at their defaults).
fn vp(fourcc: &str, vpcc: &VpcC) -> String {
    format!(
        "{fourcc}.{:02}.{:02}.{:02}",
        vpcc.profile, vpcc.level, vpcc.bit_depth
    )
}

/// `av01.P.LLT.DD`: profile, level index in two digits with the tier
/// letter, and bit depth (the AV1 ISOBMFF binding's short form).
fn av1(av1c: &Av1c) -> String {
    let tier = if av1c.seq_tier_0 { 'H' } else { 'M' };
    let depth = match (av1c.high_bitdepth, av1c.twelve_bit) {
        (true, true) => 12,
        (true, false) => 10,
        _ => 8,
    };
    format!(
        "av01.{}.{:02}{tier}.{depth:02}",
        av1c.seq_profile, av1c.seq_level_idx_0
    )
}

/// RFC 6381 §3.3: the object type indication in hex, and for MPEG-4 audio
/// (0x40) the audio object type in decimal, which tells AAC-LC (2) from
/// HE-AAC (5), HE-AAC v2 (29) or MP3 (34).
fn mp4a(object_type: u8, audio_object_type: Option<u8>) -> String {
    match (object_type, audio_object_type) {
        (0x40, Some(aot)) if aot > 0 => format!("mp4a.40.{aot}"),
        _ => format!("mp4a.{object_type:02X}"),
    }
}

/// The audio object type at the start of an AudioSpecificConfig: five bits,
/// or 31 as an escape followed by six more bits counting from 32 (ISO/IEC
/// 14496-3 §1.6.2.1). Read from the raw bytes, since the escape needs the
/// second byte; 0 when the config is too short.
fn audio_object_type(specific: &mp4_atom::esds::DecoderSpecific) -> u8 {
    let raw = &specific.raw;
    match (raw.first(), raw.get(1)) {
        (Some(&a), _) if a >> 3 != 31 => a >> 3,
        (Some(&a), Some(&b)) => 32 + (((a & 0x07) << 3) | (b >> 5)),
        // A config built in memory, without its bytes.
        (None, _) => specific.profile,
        (Some(_), None) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mp4_atom::esds::{DecoderConfig, DecoderSpecific, EsDescriptor};
    use mp4_atom::{Audio, Esds, Hvc1, Mp4a};

    fn hvcc(
        space: u8,
        tier: bool,
        profile: u8,
        compatibility: [u8; 4],
        constraints: [u8; 6],
        level: u8,
    ) -> Codec {
        Codec::Hvc1(Hvc1 {
            hvcc: Hvcc {
                general_profile_space: space,
                general_tier_flag: tier,
                general_profile_idc: profile,
                general_profile_compatibility_flags: compatibility,
                general_constraint_indicator_flags: constraints,
                general_level_idc: level,
                ..Hvcc::new()
            },
            ..Default::default()
        })
    }

    fn aac(object_type: u8, raw: &[u8], avg: u32, max: u32) -> Codec {
        Codec::Mp4a(Mp4a {
            audio: Audio {
                data_reference_index: 1,
                channel_count: 2,
                sample_size: 16,
                sample_rate: 48000.into(),
            },
            esds: Esds {
                es_desc: EsDescriptor {
                    dec_config: DecoderConfig {
                        object_type_indication: object_type,
                        avg_bitrate: avg,
                        max_bitrate: max,
                        dec_specific: Some(DecoderSpecific {
                            raw: raw.to_vec(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                    ..Default::default()
                },
            },
            btrt: None,
            taic: None,
        })
    }

    #[test]
    fn hevc_main_as_apple_and_the_spec_write_it() {
        // Main profile, compatible with Main and Main 10, progressive and
        // frame-only: the Annex E example.
        let c = hvcc(0, false, 1, [0x60, 0, 0, 0], [0xb0, 0, 0, 0, 0, 0], 93);
        assert_eq!(rfc6381(&c).as_deref(), Some("hvc1.1.6.L93.B0"));
    }

    #[test]
    fn hevc_profile_space_tier_and_inner_zero_constraint_bytes() {
        // Main 10 (idc 2) compatible with profile 2 only, high tier, level
        // 5.1; a zero constraint byte between non-zero ones stays.
        let c = hvcc(1, true, 2, [0x20, 0, 0, 0], [0x90, 0, 0x08, 0, 0, 0], 153);
        assert_eq!(rfc6381(&c).as_deref(), Some("hvc1.A2.4.H153.90.0.8"));
        // No constraint flags at all: nothing after the level.
        let c = hvcc(0, false, 4, [0x08, 0, 0, 0x01], [0; 6], 120);
        assert_eq!(rfc6381(&c).as_deref(), Some("hvc1.4.80000010.L120"));
    }

    #[test]
    fn avc_is_six_lowercase_hex_digits() {
        let c = Codec::Avc1(mp4_atom::Avc1 {
            avcc: Avcc {
                avc_profile_indication: 0x42,
                profile_compatibility: 0xc0,
                avc_level_indication: 0x1e,
                ..Default::default()
            },
            ..Default::default()
        });
        assert_eq!(rfc6381(&c).as_deref(), Some("avc1.42c01e"));
    }

    #[test]
    fn aac_object_types_including_the_escape() {
        // AAC-LC, 48 kHz stereo.
        assert_eq!(
            rfc6381(&aac(0x40, &[0x11, 0x90], 0, 0)).as_deref(),
            Some("mp4a.40.2")
        );
        // HE-AAC with explicit hierarchical signalling (SBR, AOT 5).
        assert_eq!(
            rfc6381(&aac(0x40, &[0x2b, 0x10], 0, 0)).as_deref(),
            Some("mp4a.40.5")
        );
        // Escape: 31 then 6 bits 000010 → 32 + 2 = 34 (MPEG-1 layer 3).
        assert_eq!(
            rfc6381(&aac(0x40, &[0xf8, 0x40], 0, 0)).as_deref(),
            Some("mp4a.40.34")
        );
        // Escape to USAC (AOT 42): 31, then 001010.
        assert_eq!(
            rfc6381(&aac(0x40, &[0xf9, 0x40, 0], 0, 0)).as_deref(),
            Some("mp4a.40.42")
        );
        // MP3 by its own object type indication: no audio object type.
        assert_eq!(rfc6381(&aac(0x6b, &[], 0, 0)).as_deref(), Some("mp4a.6B"));
    }

    #[test]
    fn bitrate_is_the_declared_peak() {
        assert_eq!(
            bitrate_bps(&aac(0x40, &[0x11, 0x90], 48000, 0)),
            Some(48000)
        );
        assert_eq!(
            bitrate_bps(&aac(0x40, &[0x11, 0x90], 48000, 64000)),
            Some(64000)
        );
        assert_eq!(bitrate_bps(&aac(0x40, &[0x11, 0x90], 0, 0)), None);
    }

    #[test]
    fn vp9_and_av1_levels_have_two_digits() {
        let vp9 = Codec::Vp09(mp4_atom::Vp09 {
            vpcc: VpcC {
                profile: 0,
                level: 31,
                bit_depth: 8,
                ..Default::default()
            },
            ..Default::default()
        });
        assert_eq!(rfc6381(&vp9).as_deref(), Some("vp09.00.31.08"));
        let av1 = Codec::Av01(mp4_atom::Av01 {
            av1c: Av1c {
                seq_profile: 0,
                seq_level_idx_0: 4,
                high_bitdepth: true,
                ..Default::default()
            },
            ..Default::default()
        });
        assert_eq!(rfc6381(&av1).as_deref(), Some("av01.0.04M.10"));
    }
}
