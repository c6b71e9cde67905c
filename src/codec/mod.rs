//! Media-format records for RTMP publishing, free of GStreamer: H.264 (Annex-B/AVCC, avcC),
//! H.265 (hvcC), AV1 (OBUs, av1C), VP9 (frame header, vpcC), AAC (ADTS, AudioSpecificConfig),
//! Opus (OpusHead), FLAC (STREAMINFO), AC-3/E-AC-3 and MP3 frame headers, the codec list
//! ([`Codec`]) and FLV tag bodies (legacy and Enhanced RTMP).
//!
//! Everything here works on plain byte slices. Input is treated as untrusted: every parser
//! returns [`Result`], never panics and never allocates more than a small multiple of its input.
#![deny(missing_docs)]

pub mod aac;
pub mod ac3;
pub mod av1;
mod bits;
pub mod colour;
pub mod error;
pub mod flac;
pub mod flv;
pub mod h264;
pub mod hevc;
pub mod id;
pub mod mp3;
pub mod opus;
pub mod vp9;

#[cfg(test)]
mod robustness_enhanced;
#[cfg(test)]
mod testutil;

pub use error::{Error, Result};
pub use id::{Codec, MediaKind};

#[cfg(test)]
mod robustness_tests {
    //! Feeds random and mutated inputs to every parser: none may panic, and whatever parses
    //! must survive a serialise/parse round trip where the format defines one.

    use super::aac::{self, AudioSpecificConfig};
    use super::flv::{self, AvMultitrackType, FrameType, ModEx, VideoPacketType, VideoTrack};
    use super::h264::{self, AvcDecoderConfigurationRecord};
    use super::testutil::{Shake, shake};

    /// Valid inputs of every kind, to be mutated.
    fn seeds() -> Vec<Vec<u8>> {
        let sps = vec![
            0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x6a, 0x02, 0x02,
            0x02, 0x80, 0x00, 0x00, 0x03, 0x00, 0x80, 0x00, 0x00, 0x1e, 0x47, 0x8c, 0x18, 0xcb,
        ];
        let pps = vec![0x68, 0xeb, 0xec, 0xb2, 0x2c];
        let record = AvcDecoderConfigurationRecord::from_parameter_sets(
            std::slice::from_ref(&sps),
            std::slice::from_ref(&pps),
        )
        .unwrap()
        .to_bytes();
        let mut annexb = vec![0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1];
        annexb.extend_from_slice(&sps);
        annexb.extend_from_slice(&[0, 0, 0, 1, 0x65, 0x88, 0x80, 0, 0, 1, 0x0c, 0xff]);
        let mut avcc = Vec::new();
        h264::annexb_to_avcc(&annexb, &mut avcc).unwrap();

        let mut seeds = vec![
            sps,
            pps,
            record,
            annexb,
            avcc,
            vec![0xff, 0xf1, 0x50, 0x80, 0x01, 0x5f, 0xfc, 0xa1, 0xa2, 0xa3],
            vec![
                0xff, 0xf0, 0x50, 0x80, 0x01, 0x7f, 0xfc, 0xc1, 0xc2, 0xb1, 0xb2,
            ],
            vec![0x12, 0x10],
            vec![0x13, 0x10, 0x56, 0xe5, 0x98],
            vec![0xf9, 0x46, 0x40],
            vec![0x17, 0x80, 0x18, 0x1c, 0x88],
            flv::build_avc_video(
                FrameType::Key,
                flv::AvcPacketType::Nalu,
                -40,
                &[0, 0, 0, 1, 0x65],
            ),
            flv::build_aac_audio(flv::AacPacketType::Raw, &[0x21]),
        ];
        let mut v = Vec::new();
        flv::write_ex_video(
            &mut v,
            FrameType::Key,
            VideoPacketType::CodedFrames,
            flv::AVC1,
            33,
            &[ModEx::TimestampOffsetNano(12345)],
            &[1, 2, 3],
        )
        .unwrap();
        seeds.push(v);
        for kind in [
            AvMultitrackType::OneTrack,
            AvMultitrackType::ManyTracks,
            AvMultitrackType::ManyTracksManyCodecs,
        ] {
            let tracks: &[VideoTrack<'_>] = if kind == AvMultitrackType::OneTrack {
                &[VideoTrack {
                    track_id: 1,
                    fourcc: flv::HVC1,
                    composition_time: -1,
                    data: &[5],
                }]
            } else {
                &[
                    VideoTrack {
                        track_id: 0,
                        fourcc: flv::HVC1,
                        composition_time: 2,
                        data: &[6],
                    },
                    VideoTrack {
                        track_id: 1,
                        fourcc: flv::HVC1,
                        composition_time: 0,
                        data: &[],
                    },
                ]
            };
            let mut v = Vec::new();
            flv::write_ex_video_multitrack(
                &mut v,
                FrameType::Inter,
                VideoPacketType::CodedFrames,
                kind,
                &[ModEx::Other {
                    mod_ex_type: 3,
                    data: &[9, 9],
                }],
                tracks,
            )
            .unwrap();
            seeds.push(v);
            let mut a = Vec::new();
            flv::write_ex_audio_multitrack(
                &mut a,
                flv::AudioPacketType::CodedFrames,
                kind,
                &[],
                &[flv::AudioTrack {
                    track_id: 0,
                    fourcc: flv::OPUS,
                    data: &[7, 7],
                }],
            )
            .unwrap();
            seeds.push(a);
        }
        seeds
    }

    /// Runs every parser on `data`; round-trip checks where the format defines one. Returns
    /// how many parsers accepted the input, so the test can check mutations still reach the
    /// deep paths.
    fn exercise(data: &[u8]) -> usize {
        let mut accepted = 0;
        let _ = h264::annexb_nals(data).count();
        let mut out = Vec::new();
        let converted = h264::annexb_to_avcc(data, &mut out);
        if let Ok(view) = h264::AvccView::from_annexb(data) {
            // The zero-copy view is the copy, and borrows its NAL units from the input.
            assert_eq!(converted, Ok(h264::access_unit_info(view.nals(data))));
            assert_eq!(view.parts(data).collect::<Vec<_>>().concat(), out);
            let input = data.as_ptr_range();
            assert!(view.nals(data).all(|n| input.contains(&n.as_ptr())));
        }
        for length_size in [1, 2, 3, 4] {
            let _ = h264::avcc_nals(data, length_size).count();
            let _ = h264::avcc_info(data, length_size);
        }
        accepted += usize::from(h264::parse_sps(data).is_ok());
        if let Ok(record) = AvcDecoderConfigurationRecord::parse(data) {
            accepted += 1;
            let bytes = record.to_bytes();
            assert_eq!(AvcDecoderConfigurationRecord::parse(&bytes), Ok(record));
            let _ = AvcDecoderConfigurationRecord::from_parameter_sets(&[data.to_vec()], &[]);
        }
        let _ = AvcDecoderConfigurationRecord::from_parameter_sets(
            &[data.to_vec()],
            &[vec![0x68, 0xce]],
        );
        let _ = aac::parse_adts_header(data);
        let _ = aac::adts_frames(data).count();
        accepted += aac::adts_frames(data).filter(Result::is_ok).count();
        if let Ok(asc) = AudioSpecificConfig::parse(data) {
            accepted += 1;
            assert_eq!(asc.to_bytes(), data);
        }
        accepted += usize::from(flv::parse_video(data).is_ok());
        accepted += usize::from(flv::parse_audio(data).is_ok());
        accepted
    }

    #[test]
    fn random_and_mutated_inputs_never_panic() {
        let accepted = shake(
            &Shake {
                rng_seed: 0x9e37_79b9_7f4a_7c15,
                rounds: 10_000,
                seeds: &seeds(),
                first_bytes: &[0x17, 0x27, 0x91, 0x96, 0x97, 0xaf, 0x95, 0x97, 0x67, 0xff],
                inserted: &[0x00, 0x01, 0x03, 0xff],
            },
            exercise,
        );
        // Mutations must not all be rejected at the first byte.
        assert!(accepted > 5_000, "only {accepted} inputs accepted");
    }
}
