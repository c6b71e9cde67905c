//! Feeds random and mutated inputs to the Enhanced RTMP codec parsers (HEVC, AV1, VP9, Opus,
//! FLAC, AC-3, MP3): none may panic, and whatever parses must survive a serialise/parse round
//! trip where the format defines one. Same approach as `robustness_tests` in `mod.rs`.

use super::ac3;
use super::av1::{self, Av1CodecConfigurationRecord};
use super::flac::StreamInfo;
use super::hevc::{self, HevcDecoderConfigurationRecord};
use super::mp3;
use super::opus::OpusHead;
use super::testutil::{Shake, hex, shake};
use super::vp9::{self, VpCodecConfigurationRecord};

/// Valid inputs of every kind (real encoder output where possible), to be mutated.
fn seeds() -> Vec<Vec<u8>> {
    // x265 via h265parse, libaom via av1enc, libvpx via vp9enc, opusenc, flacenc.
    let hvcc = hex(
        "0101600000009000000000003ff000fcfdf8f800000f03200001001840010c01ffff01600000030090000003000003003f959409210001003042010101600000030090000003000003003fa0208316595952930bffc00040005a830303020000030002000003003c1022000100064401c073c089",
    );
    let record = HevcDecoderConfigurationRecord::parse(&hvcc).unwrap();
    let nal = |t| record.nal_units(t).next().unwrap().to_vec();
    let (vps, sps, pps) = (nal(hevc::NAL_VPS), nal(hevc::NAL_SPS), nal(hevc::NAL_PPS));
    let mut annexb = Vec::new();
    for n in [
        &[0x46, 0x01, 0x50][..],
        &vps,
        &sps,
        &pps,
        &[0x26, 0x01, 0xaf, 0x10],
    ] {
        annexb.extend_from_slice(&[0, 0, 0, 1]);
        annexb.extend_from_slice(n);
    }
    let mut length_prefixed = Vec::new();
    hevc::annexb_to_length_prefixed(&annexb, &mut length_prefixed).unwrap();
    let seq_obu = hex("0a0b00000002aff7f036be4010");
    let mut tu = hex("1200");
    tu.extend_from_slice(&seq_obu);
    tu.extend_from_slice(&hex("32031055557a01ff"));
    let av1c = Av1CodecConfigurationRecord::from_sequence_header_obu(&seq_obu)
        .unwrap()
        .to_bytes();
    let vp9_key = hex("824983422009f005f60038241c184200");
    let vpcc = hex("01000000000a820606060000");
    let opus_stereo = hex("4f707573486561640102380180bb0000000000");
    let opus_51 = hex("4f707573486561640106380180bb00000000010402000401020305");
    let flac = hex(
        "7f464c414301000002664c614300000022120012000000000000000ac442f00000000000000000000000000000000000000000",
    );
    let flac_start = StreamInfo::from_codec_config(&flac)
        .unwrap()
        .sequence_start();
    // AC-3 48 kHz 448 kbit/s 5.1 header; E-AC-3 independent 5.1 + dependent substream.
    let ac3 = hex("0b7700001e40e10000000000");
    let mut eac3 = hex("0b7702ff3f87c00000000000");
    eac3.resize(1536, 0);
    let mut dependent = hex("0b7740633487d02000000000");
    dependent.resize(200, 0);
    eac3.extend_from_slice(&dependent);
    let mp3 = hex("fffb9064000000");
    vec![
        hvcc,
        vps,
        sps,
        pps,
        annexb,
        length_prefixed,
        seq_obu,
        tu,
        av1c,
        vp9_key,
        vpcc,
        opus_stereo,
        opus_51,
        flac,
        flac_start,
        ac3,
        eac3,
        mp3,
    ]
}

/// Runs every parser on `data`, with round-trip checks. Returns how many parsers accepted the
/// input, so the test can check mutations still reach the deep paths.
fn exercise(data: &[u8]) -> usize {
    let mut accepted = 0;

    // HEVC
    let mut out = Vec::new();
    accepted += usize::from(hevc::annexb_to_length_prefixed(data, &mut out).is_ok());
    for length_size in [1, 2, 3, 4] {
        accepted += usize::from(hevc::length_prefixed_info(data, length_size).is_ok());
    }
    accepted += usize::from(hevc::parse_vps(data).is_ok());
    if let Ok(sps) = hevc::parse_sps(data) {
        accepted += 1;
        assert!(sps.width > 0 && sps.width <= sps.coded_width);
        assert!(sps.height > 0 && sps.height <= sps.coded_height);
    }
    if let Ok(record) = HevcDecoderConfigurationRecord::parse(data) {
        accepted += 1;
        assert_eq!(
            HevcDecoderConfigurationRecord::parse(&record.to_bytes()).as_ref(),
            Ok(&record)
        );
        let _ = record.sps_info();
    }
    let vps = hex("40010c01ffff01600000030090000003000003003f959409");
    if let Ok(record) = HevcDecoderConfigurationRecord::from_parameter_sets(
        &[vps.as_slice()],
        &[data],
        &[&[0x44, 0x01, 0xc0][..]],
    ) {
        accepted += 1;
        assert_eq!(
            HevcDecoderConfigurationRecord::parse(&record.to_bytes()).as_ref(),
            Ok(&record)
        );
    }

    // AV1
    accepted += av1::obus(data).filter(Result::is_ok).count();
    accepted += usize::from(av1::read_leb128(data).is_ok());
    accepted += usize::from(av1::parse_sequence_header(data).is_ok());
    let _ = av1::find_sequence_header(data);
    for reduced in [false, true] {
        if let Ok(tu) = av1::temporal_unit(data, reduced) {
            accepted += 1;
            let mut end = 0;
            for r in &tu.ranges {
                assert!(r.start >= end && r.start < r.end && r.end <= data.len());
                end = r.end;
            }
        }
    }
    if let Ok(record) = Av1CodecConfigurationRecord::parse(data) {
        accepted += 1;
        assert_eq!(
            Av1CodecConfigurationRecord::parse(&record.to_bytes()).as_ref(),
            Ok(&record)
        );
        let _ = record.sequence_header();
    }
    if let Ok(record) = Av1CodecConfigurationRecord::from_sequence_header_obu(data) {
        accepted += 1;
        assert_eq!(
            Av1CodecConfigurationRecord::parse(&record.to_bytes()).as_ref(),
            Ok(&record)
        );
    }

    // VP9
    if let Ok(header) = vp9::parse_frame_header(data) {
        accepted += 1;
        if let Ok(record) = VpCodecConfigurationRecord::from_keyframe(&header, None, false) {
            assert_eq!(
                VpCodecConfigurationRecord::parse(&record.to_bytes()).as_ref(),
                Ok(&record)
            );
        }
    }
    if let Ok(record) = VpCodecConfigurationRecord::parse(data) {
        accepted += 1;
        assert_eq!(
            VpCodecConfigurationRecord::parse(&record.to_bytes()).as_ref(),
            Ok(&record)
        );
    }

    // Opus, FLAC
    if let Ok(head) = OpusHead::parse(data) {
        accepted += 1;
        assert_eq!(OpusHead::parse(&head.to_bytes()).as_ref(), Ok(&head));
    }
    if let Ok(info) = StreamInfo::parse(data) {
        accepted += 1;
        assert_eq!(StreamInfo::parse(&info.to_bytes()).as_ref(), Ok(&info));
    }
    if let Ok(info) = StreamInfo::from_codec_config(data) {
        accepted += 1;
        assert_eq!(
            StreamInfo::from_codec_config(&info.sequence_start()).as_ref(),
            Ok(&info)
        );
    }

    // AC-3, E-AC-3, MP3
    accepted += usize::from(ac3::parse_header(data).is_ok());
    if let Ok(info) = ac3::frame_info(data) {
        accepted += 1;
        if let Some(mask) = info.channel_mask {
            assert_eq!(mask.count_ones(), u32::from(info.channels));
        }
    }
    accepted += usize::from(mp3::parse_header(data).is_ok());
    accepted
}

#[test]
fn random_and_mutated_inputs_never_panic() {
    let seeds = seeds();
    // The hand-assembled AC-3 / E-AC-3 seeds say what they should.
    assert_eq!(ac3::frame_info(&seeds[15]).unwrap().channels, 6);
    assert_eq!(
        ac3::frame_info(&seeds[16]).unwrap().channel_mask,
        Some(0x63f)
    );
    assert!(hevc::parse_vps(&hex("40010c01ffff01600000030090000003000003003f959409")).is_ok());
    let accepted = shake(
        &Shake {
            rng_seed: 0x2545_f491_4f6c_dd1d,
            rounds: 20_000,
            seeds: &seeds,
            first_bytes: &[0x01, 0x0a, 0x12, 0x42, 0x40, 0x81, 0x82, 0x0b, 0xff, 0x4f],
            inserted: &[0x00, 0x01, 0x03, 0xff, 0x80],
        },
        exercise,
    );
    // Mutations must not all be rejected at the first byte.
    assert!(accepted > 30_000, "only {accepted} inputs accepted");
}
