//! Publishing an FLV file's tags through `RtmpClient` and comparing what a server recorded
//! with the source, tag by tag (shared by the library's real-server tests).

use gstrtmpclient::rtmp::amf0::Amf0Value;
use gstrtmpclient::rtmp::{ClientOptions, RtmpClient};

use super::flv::{FlvFile, FlvTag};
use super::{media, read_flv};

/// Source: 4 s of 320x240 H.264 with 2 B-frames (negative and positive composition times)
/// and AAC-LC, as FLV tags.
pub fn source() -> Option<FlvFile> {
    let path = media::h264_aac_flv(4, 320, 240, 2)?;
    Some(read_flv(&path).expect("source FLV parses"))
}

/// Publishes every audio/video tag of `src` through `RtmpClient`.
pub fn publish(url: &str, src: &FlvFile, options: &ClientOptions) {
    let mut client = RtmpClient::connect_with_options(url, options).expect("connect and publish");
    client
        .send_metadata(Amf0Value::EcmaArray(vec![
            ("width".into(), Amf0Value::Number(320.0)),
            ("height".into(), Amf0Value::Number(240.0)),
            ("videocodecid".into(), Amf0Value::Number(7.0)),
            ("audiocodecid".into(), Amf0Value::Number(10.0)),
        ]))
        .expect("metadata");
    for tag in &src.tags {
        if tag.is_avc_sequence_header() {
            client
                .send_video_sequence_header(tag.video_payload().unwrap())
                .unwrap();
        } else if tag.is_avc_nalu() {
            let h = tag.video_header().unwrap();
            client
                .send_video_with_composition_time(
                    tag.timestamp,
                    tag.is_keyframe(),
                    h.composition_time.unwrap(),
                    tag.video_payload().unwrap(),
                )
                .unwrap();
        } else if tag.is_aac_sequence_header() {
            client
                .send_audio_sequence_header(tag.audio_payload().unwrap())
                .unwrap();
        } else if tag.is_aac_raw() {
            client
                .send_audio(tag.timestamp, tag.audio_payload().unwrap())
                .unwrap();
        }
    }
    client.close().expect("clean close");
}

/// Tag by tag: same kind, timestamp, frame type, composition time and payload bytes.
pub fn assert_same_frames(src: &FlvFile, rec: &FlvFile, what: &str) {
    assert!(!rec.truncated, "{what}: recording is truncated");
    let pick = |f: &FlvFile| -> Vec<FlvTag> {
        f.tags
            .iter()
            .filter(|t| t.is_avc_nalu() || t.is_aac_raw())
            .cloned()
            .collect()
    };
    let (s, r) = (pick(src), pick(rec));
    assert!(s.len() > 100, "{what}: source has {} frames", s.len());
    assert!(
        s.iter()
            .any(|t| t.video_header().and_then(|h| h.composition_time) < Some(0))
            || s.iter()
                .any(|t| t.video_header().and_then(|h| h.composition_time) > Some(0)),
        "source must exercise composition times"
    );
    // Per track, the order and content must match exactly.
    for kind in [8u8, 9u8] {
        let st: Vec<&FlvTag> = s.iter().filter(|t| t.tag_type == kind).collect();
        let rt: Vec<&FlvTag> = r.iter().filter(|t| t.tag_type == kind).collect();
        assert_eq!(st.len(), rt.len(), "{what}: number of type-{kind} frames");
        for (i, (a, b)) in st.iter().zip(&rt).enumerate() {
            assert_eq!(
                a.timestamp, b.timestamp,
                "{what}: type-{kind} frame {i} timestamp"
            );
            if kind == 9 {
                assert_eq!(
                    a.video_header(),
                    b.video_header(),
                    "{what}: video frame {i} header (frame type, composition time)"
                );
            }
            assert!(
                a.data == b.data,
                "{what}: type-{kind} frame {i} payload differs"
            );
        }
    }
    let seq = |f: &FlvFile, video: bool| {
        f.tags
            .iter()
            .find(|t| {
                if video {
                    t.is_avc_sequence_header()
                } else {
                    t.is_aac_sequence_header()
                }
            })
            .map(|t| t.data.clone())
    };
    assert_eq!(seq(src, true), seq(rec, true), "{what}: avcC");
    assert_eq!(
        seq(src, false),
        seq(rec, false),
        "{what}: AudioSpecificConfig"
    );
}
