//! The initialisation this adapter writes for a program: `ftyp` + `moov`
//! with `mvex`, one track per elementary stream, sample entries built from
//! the streams' own parameter sets (`avc1`/`avcC`, `hvc1`/`hvcC`) and ADTS
//! headers (`mp4a`/`esds`).

use mp4_atom::esds::{DecoderConfig, DecoderSpecific, EsDescriptor, SLConfig};
use mp4_atom::{
    Audio, Avc1, Avcc, Codec, Dinf, Dref, DrefEntry, Encode, Esds, FourCC, Ftyp, Hdlr, Hvc1,
    HvcCArray, Hvcc, Mdhd, Mdia, Minf, Moov, Mp4a, Mvex, Mvhd, Smhd, Stbl, Stco, Stsd, Tkhd, Trak,
    Trex, Url, Visual, Vmhd,
};

use super::adts::AacConfig;
use super::annexb::{ParamSets, VideoCodec};
use crate::capture::sps::SpsInfo;
use crate::{Error, Result};

/// The video timescale: the TS clock's own, so no stamp is rounded.
pub(crate) const VIDEO_TIMESCALE: u32 = 90_000;

/// What one track's sample entry is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry {
    Video {
        codec: VideoCodec,
        params: ParamSets,
        info: SpsInfo,
    },
    Audio(AacConfig),
}

impl Entry {
    pub fn timescale(&self) -> u32 {
        match self {
            Entry::Video { .. } => VIDEO_TIMESCALE,
            Entry::Audio(c) => c.sample_rate(),
        }
    }
}

/// `ftyp` + `moov` for these tracks, numbered from 1 in order.
pub(crate) fn init(entries: &[Entry]) -> Result<(Vec<u8>, Vec<u8>)> {
    let fail =
        |e: mp4_atom::Error| Error::Internal(format!("writing a moov for MPEG-TS input: {e}"));
    let ftyp = Ftyp {
        major_brand: FourCC::new(b"iso6"),
        minor_version: 0,
        compatible_brands: [b"iso6", b"cmfc", b"isom", b"mp41"]
            .map(FourCC::new)
            .to_vec(),
    };
    let mut trak = Vec::new();
    let mut trex = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let id = i as u32 + 1;
        trak.push(track(id, entry)?);
        trex.push(Trex {
            track_id: id,
            default_sample_description_index: 1,
            ..Default::default()
        });
    }
    let moov = Moov {
        mvhd: Mvhd {
            rate: 1.into(),
            volume: 1.into(),
            next_track_id: entries.len() as u32 + 1,
            ..Default::default()
        },
        mvex: Some(Mvex { mehd: None, trex }),
        trak,
        ..Default::default()
    };
    let (mut f, mut m) = (Vec::new(), Vec::new());
    ftyp.encode(&mut f).map_err(fail)?;
    moov.encode(&mut m).map_err(fail)?;
    Ok((f, m))
}

fn track(id: u32, entry: &Entry) -> Result<Trak> {
    let (handler, codec, size) = match entry {
        Entry::Video {
            codec,
            params,
            info,
        } => {
            let visual = Visual {
                data_reference_index: 1,
                width: info.width,
                height: info.height,
                ..Default::default()
            };
            let c = match codec {
                VideoCodec::H264 => Codec::Avc1(Avc1 {
                    visual,
                    avcc: avcc(params)?,
                    ..Default::default()
                }),
                VideoCodec::Hevc => Codec::Hvc1(Hvc1 {
                    visual,
                    hvcc: hvcc(params, info),
                    ..Default::default()
                }),
            };
            (b"vide", c, Some((info.width, info.height)))
        }
        Entry::Audio(config) => (b"soun", Codec::Mp4a(mp4a(id, config)), None),
    };
    let (width, height) = size.unwrap_or((0, 0));
    Ok(Trak {
        tkhd: Tkhd {
            track_id: id,
            enabled: true,
            in_movie: true,
            volume: if size.is_none() { 1.into() } else { 0.into() },
            width: width.into(),
            height: height.into(),
            ..Default::default()
        },
        mdia: Mdia {
            mdhd: Mdhd {
                timescale: entry.timescale(),
                language: "und".into(),
                ..Default::default()
            },
            hdlr: Hdlr {
                handler: FourCC::new(handler),
                name: if size.is_some() { "Video" } else { "Audio" }.into(),
            },
            minf: Minf {
                vmhd: size.map(|_| Vmhd::default()),
                smhd: if size.is_none() {
                    Some(Smhd::default())
                } else {
                    None
                },
                dinf: Dinf {
                    dref: Dref {
                        entries: vec![DrefEntry::Url(Url::default())],
                    },
                },
                stbl: Stbl {
                    stsd: Stsd {
                        codecs: vec![codec],
                    },
                    stco: Some(Stco::default()),
                    ..Default::default()
                },
                ..Default::default()
            },
        },
        ..Default::default()
    })
}

fn avcc(params: &ParamSets) -> Result<Avcc> {
    let sps = params.sps.first().filter(|s| s.len() >= 4).ok_or_else(|| {
        Error::Internal("an H.264 stream without a usable SPS reached the moov".into())
    })?;
    Ok(Avcc {
        configuration_version: 1,
        avc_profile_indication: sps[1],
        profile_compatibility: sps[2],
        avc_level_indication: sps[3],
        length_size: 4,
        sequence_parameter_sets: params.sps.clone(),
        picture_parameter_sets: params.pps.clone(),
        ext: None,
    })
}

fn hvcc(params: &ParamSets, info: &SpsInfo) -> Hvcc {
    let p = &info.general_ptl;
    let array = |nal_unit_type, nalus: &Vec<Vec<u8>>| HvcCArray {
        completeness: true,
        nal_unit_type,
        nalus: nalus.clone(),
    };
    Hvcc {
        configuration_version: 1,
        general_profile_space: p[0] >> 6,
        general_tier_flag: p[0] & 0x20 != 0,
        general_profile_idc: p[0] & 0x1f,
        general_profile_compatibility_flags: [p[1], p[2], p[3], p[4]],
        general_constraint_indicator_flags: [p[5], p[6], p[7], p[8], p[9], p[10]],
        general_level_idc: p[11],
        chroma_format_idc: info.chroma_format_idc,
        bit_depth_luma_minus8: info.bit_depth_luma_minus8,
        bit_depth_chroma_minus8: info.bit_depth_chroma_minus8,
        num_temporal_layers: info.max_sub_layers,
        temporal_id_nested: info.temporal_id_nested,
        length_size_minus_one: 3,
        arrays: vec![
            array(32, &params.vps),
            array(33, &params.sps),
            array(34, &params.pps),
        ],
        ..Hvcc::new()
    }
}

fn mp4a(id: u32, config: &AacConfig) -> Mp4a {
    Mp4a {
        audio: Audio {
            data_reference_index: 1,
            channel_count: u16::from(config.channel_config.max(1)),
            sample_size: 16,
            sample_rate: (config.sample_rate().min(65535) as u16).into(),
        },
        esds: Esds {
            es_desc: EsDescriptor {
                es_id: id as u16,
                dec_config: DecoderConfig {
                    object_type_indication: 0x40,
                    stream_type: 0x05,
                    dec_specific: Some(DecoderSpecific {
                        profile: config.object_type,
                        freq_index: config.freq_index,
                        chan_conf: config.channel_config,
                        raw: config.audio_specific_config().to_vec(),
                    }),
                    ..Default::default()
                },
                sl_config: SLConfig::default(),
                ..Default::default()
            },
        },
        btrt: None,
        taic: None,
    }
}
