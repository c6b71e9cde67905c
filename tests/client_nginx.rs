//! `RtmpClient` against real servers: an H.264 stream with B-frames plus AAC is published tag by
//! tag to nginx-rtmp (`record all`) and to `ffmpeg -listen 1`, and the recordings must hold the
//! same payloads, timestamps and composition times, in order, with nothing missing.

mod common;

use std::path::Path;
use std::time::Duration;

use common::flv::{FlvFile, FlvTag};
use common::{FfmpegListen, NginxRtmp, TempDir, media, read_flv};
use gstrtmpclient::rtmp::amf0::Amf0Value;
use gstrtmpclient::rtmp::{ConnectCapabilities, RtmpClient};

const RECORD_TIMEOUT: Duration = Duration::from_secs(15);

/// Source: 4 s of 320x240 H.264 with 2 B-frames (negative and positive composition times)
/// and AAC-LC, as FLV tags.
fn source() -> Option<FlvFile> {
    let path = media::h264_aac_flv(4, 320, 240, 2)?;
    Some(read_flv(&path).expect("source FLV parses"))
}

/// Publishes every audio/video tag of `src` through `RtmpClient`.
fn publish(url: &str, src: &FlvFile, caps: Option<&ConnectCapabilities>) {
    let mut client = match caps {
        Some(c) => RtmpClient::connect_with_capabilities(url, "live", c),
        None => RtmpClient::connect(url),
    }
    .expect("connect and publish");
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
fn assert_same_frames(src: &FlvFile, rec: &FlvFile, what: &str) {
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

#[test]
fn publishes_b_frames_and_aac_to_nginx_byte_identical() {
    let Some(src) = source() else { return };
    let Some(nginx) = NginxRtmp::start_default() else {
        return;
    };
    publish(&nginx.url("live", "lib"), &src, None);
    let rec = nginx
        .wait_recording("lib", RECORD_TIMEOUT)
        .expect("nginx wrote the recording");
    assert_same_frames(&src, &read_flv(&rec).unwrap(), "nginx");
}

#[test]
fn publishes_with_enhanced_capabilities_to_a_legacy_server() {
    // nginx-rtmp does not know E-RTMP: the extra connect fields must not disturb it, and it
    // reports no capabilities back.
    let Some(nginx) = NginxRtmp::start_default() else {
        return;
    };
    let url = nginx.url("live", "caps");
    let client = RtmpClient::connect_with_capabilities(
        &url,
        "live",
        &ConnectCapabilities::publisher_default(),
    )
    .expect("connect with capabilities");
    assert!(client.server_capabilities().is_empty());
    assert_eq!(
        client.tc_url(),
        format!("rtmp://127.0.0.1:{}/live", nginx.port())
    );
    client.close().unwrap();
}

#[test]
fn publishes_b_frames_and_aac_to_ffmpeg_listen() {
    let Some(src) = source() else { return };
    let dir = TempDir::new("client-ffmpeg");
    let Some(mut server) = FfmpegListen::start(dir.path()) else {
        return;
    };
    publish(&server.url(), &src, None);
    let out = server
        .wait_output(RECORD_TIMEOUT)
        .unwrap_or_else(|| panic!("ffmpeg wrote no output: {}", server.log()));
    let rec = read_flv(Path::new(&out)).unwrap();
    assert_same_frames(&src, &rec, "ffmpeg");
}
