//! Codec and track negotiation at `connect`: what the library advertises for the codecs it
//! will send (`ClientOptions::media`), and how it judges the server's `_result` before any
//! media — against scripted servers (no capabilities, an excluding codec list, capsEx without
//! Multitrack, a full E-RTMP answer) and against real nginx-rtmp, which answers nothing.

mod common;

use std::time::Duration;

use common::scripted::{ScriptedTcpServer, amf_strings, command_names, connect_block};
use common::{NginxRtmp, read_flv};
use gstrtmpclient::codec::Codec;
use gstrtmpclient::codec::flv::{self, FrameType, VideoPacketType};
use gstrtmpclient::rtmp::amf0::Amf0Value;
use gstrtmpclient::rtmp::caps::{
    CAPS_EX_MODEX, CAPS_EX_MULTITRACK, CAPS_EX_RECONNECT, CAPS_EX_TIMESTAMP_NANO_OFFSET,
    ConnectCapabilities, Outcome, Refusal, Wanted,
};
use gstrtmpclient::rtmp::connection::establish;
use gstrtmpclient::rtmp::message::msg_type;
use gstrtmpclient::rtmp::session::SessionState;
use gstrtmpclient::rtmp::url::RtmpUrl;
use gstrtmpclient::rtmp::{ClientOptions, Error, RtmpClient};

const LIMIT: Duration = Duration::from_secs(20);
const RECORD_TIMEOUT: Duration = Duration::from_secs(15);

/// A server answering the publish flow with `props` in `_result(connect)`, then reading until
/// the client closes.
fn server(props: Vec<(&'static str, Amf0Value)>) -> ScriptedTcpServer {
    ScriptedTcpServer::publish_then_drain(LIMIT, props)
}

fn options(media: Wanted) -> ClientOptions {
    ClientOptions {
        media: Some(media),
        timeout: Duration::from_secs(5),
        ..ClientOptions::default()
    }
}

#[test]
fn a_server_without_capabilities_gets_the_publish_and_one_info() {
    let server = server(Vec::new());
    let url = RtmpUrl::parse(&server.url()).unwrap();
    let media = Wanted::new().track(Codec::H265, 0).track(Codec::Aac, 0);
    // The element's path: establish, then read the judgement off the session.
    let established = establish(&url, &options(media), &|| false).expect("publish starts");
    assert_eq!(established.session.state(), SessionState::Publishing);
    let negotiated = established
        .session
        .negotiated()
        .expect("judged at connect")
        .clone();
    assert_eq!(negotiated.outcome, Outcome::ServerSilent);
    assert!(!negotiated.send_mod_ex_nanos);
    assert_eq!(
        negotiated.info().as_deref(),
        Some("server did not say which codecs it accepts; sending HEVC (hvc1) anyway.")
    );
    drop(established);

    let peer = server.join();
    assert!(command_names(&peer).contains(&"publish".to_string()));
    // connect advertised exactly what is sent.
    let block = connect_block(&peer);
    assert_eq!(block.four_cc_list, ["hvc1", "mp4a"]);
    assert_eq!(block.video_four_cc_info_map, [("hvc1".to_string(), 2)]);
    assert_eq!(block.audio_four_cc_info_map, [("mp4a".to_string(), 2)]);
    assert_eq!(block.caps_ex, Some(CAPS_EX_RECONNECT));
}

#[test]
fn an_excluded_codec_is_refused_before_create_stream() {
    let server = server(vec![("fourCcList", amf_strings(&["avc1", "av01"]))]);
    let media = Wanted::new().track(Codec::H265, 0).track(Codec::Aac, 0);
    let err = RtmpClient::connect_with_options(&server.url(), &options(media)).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::NotAccepted(Refusal::Codec {
                codec: Codec::H265,
                ..
            })
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("server does not accept HEVC (hvc1); it lists avc1, av01; "),
        "{err}"
    );
    assert!(!err.is_transient(), "a refusal is not retried");
    let peer = server.join();
    // The server saw connect and nothing of a publish.
    assert_eq!(command_names(&peer), ["connect"]);
    assert!(
        !peer
            .received
            .iter()
            .any(|m| matches!(m.msg_type_id, msg_type::VIDEO | msg_type::AUDIO))
    );
}

#[test]
fn caps_ex_without_multitrack_refuses_tracks_above_0() {
    let server = server(vec![
        ("fourCcList", amf_strings(&["*"])),
        ("capsEx", Amf0Value::Number(f64::from(CAPS_EX_RECONNECT))),
    ]);
    let media = Wanted::new()
        .track(Codec::H264, 0)
        .track(Codec::H264, 1)
        .track(Codec::Aac, 0);
    let err = RtmpClient::connect_with_options(&server.url(), &options(media)).unwrap_err();
    assert!(
        matches!(&err, Error::NotAccepted(Refusal::Multitrack { caps_ex: 1 })),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with("server does not accept multitrack (capsEx 0x01); "),
        "{text}"
    );
    assert!(text.contains("remove the video_N/audio_N pads"), "{text}");
    let peer = server.join();
    assert_eq!(command_names(&peer), ["connect"]);
    // The client asked for multitrack.
    assert_eq!(
        connect_block(&peer).caps_ex,
        Some(CAPS_EX_RECONNECT | CAPS_EX_MULTITRACK)
    );
}

#[test]
fn a_full_answer_confirms_multitrack_and_allows_nano_offsets() {
    let all =
        CAPS_EX_RECONNECT | CAPS_EX_MULTITRACK | CAPS_EX_MODEX | CAPS_EX_TIMESTAMP_NANO_OFFSET;
    let server = server(vec![
        ("fourCcList", amf_strings(&["hvc1", "avc1", "mp4a", "Opus"])),
        (
            "videoFourCcInfoMap",
            Amf0Value::object([("*", Amf0Value::Number(4.0))]),
        ),
        ("capsEx", Amf0Value::Number(f64::from(all))),
    ]);
    let url = RtmpUrl::parse(&server.url()).unwrap();
    let media = Wanted::new()
        .track(Codec::H265, 0)
        .track(Codec::H264, 1)
        .track(Codec::Aac, 0)
        .track(Codec::Opus, 1)
        .with_nano_offsets(true);
    let established = establish(&url, &options(media), &|| false).expect("publish starts");
    let negotiated = established.session.negotiated().unwrap().clone();
    assert_eq!(negotiated.outcome, Outcome::Confirmed);
    assert!(negotiated.send_mod_ex_nanos);
    assert_eq!(negotiated.info(), None);
    drop(established);
    let peer = server.join();
    assert!(command_names(&peer).contains(&"publish".to_string()));
    let block = connect_block(&peer);
    assert_eq!(block.four_cc_list, ["hvc1", "avc1", "mp4a", "Opus"]);
    assert_eq!(block.caps_ex, Some(all));
}

#[test]
fn explicit_capabilities_are_advertised_as_given_and_media_still_judged() {
    let server = server(vec![("fourCcList", amf_strings(&["avc1"]))]);
    let opts = ClientOptions {
        capabilities: ConnectCapabilities::publisher_default(),
        ..options(Wanted::new().track(Codec::Av1, 0))
    };
    let err = RtmpClient::connect_with_options(&server.url(), &opts).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("server does not accept AV1 (av01); it lists avc1; "),
        "{err}"
    );
    let peer = server.join();
    assert_eq!(
        connect_block(&peer).four_cc_list,
        ConnectCapabilities::publisher_default().four_cc_list
    );
}

#[test]
fn nginx_without_capabilities_takes_an_advertised_hevc_publish() {
    let Some(nginx) = NginxRtmp::start_default() else {
        return;
    };
    let media = Wanted::new().track(Codec::H265, 0).track(Codec::Aac, 0);

    // The judgement on the element's path: nginx-rtmp answers no E-RTMP field.
    let url = RtmpUrl::parse(&nginx.url("live", "neg-judge")).unwrap();
    let established = establish(&url, &options(media.clone()), &|| false).expect("publish");
    let negotiated = established.session.negotiated().unwrap().clone();
    assert_eq!(negotiated.outcome, Outcome::ServerSilent);
    assert_eq!(
        negotiated.info().as_deref(),
        Some("server did not say which codecs it accepts; sending HEVC (hvc1) anyway.")
    );
    drop(established);

    // The library's path: advertise HEVC, publish hvc1 and AAC, and find the stream in the
    // recording.
    let mut client = RtmpClient::connect_with_options(&nginx.url("live", "neg"), &options(media))
        .expect("nginx takes the publish");
    assert!(client.server_capabilities().is_empty());
    assert!(nginx.is_publishing("neg"));
    // An hvcC-shaped body: what is checked is that nginx keeps the publish going.
    let hvcc = [
        1u8, 1, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 0x5d, 0xf0, 0, 0xfc, 0xfd, 0xf8, 0xf8, 0, 0,
        0x0f, 0,
    ];
    let (header, len) =
        flv::ex_video_header(FrameType::Key, VideoPacketType::SequenceStart, flv::HVC1, 0).unwrap();
    let start: Vec<u8> = [&header[..len], &hvcc[..]].concat();
    let (header, len) =
        flv::ex_video_header(FrameType::Key, VideoPacketType::CodedFrames, flv::HVC1, 0).unwrap();
    let frame: Vec<u8> = [&header[..len], &[0, 0, 0, 3, 0x26, 0x01, 0xaf][..]].concat();
    // AAC-LC 44.1 kHz stereo, then one frame.
    let asc = [0x12u8, 0x10];
    let aac_frame = [0x21u8, 0x10, 0x05, 0x00, 0xa0, 0x19, 0x33];
    client.send_tag(msg_type::VIDEO, 0, &start).unwrap();
    client.send_audio_sequence_header(&asc).unwrap();
    for ts in [0, 40, 80] {
        client.send_tag(msg_type::VIDEO, ts, &frame).unwrap();
        client.send_audio(ts, &aac_frame).unwrap();
    }
    client.close().unwrap();

    let rec = nginx
        .wait_recording("neg", RECORD_TIMEOUT)
        .expect("nginx wrote the recording");
    // nginx-rtmp's recorder starts video at a keyframe in the legacy sense (frame type 1);
    // an ExVideoTagHeader's first nibble is 9, so it records no enhanced video. Audio shows
    // the publish reached it intact: the AAC tags after the hvc1 ones are all there.
    let audio: Vec<(u32, Vec<u8>)> = read_flv(&rec)
        .unwrap()
        .tags
        .into_iter()
        .filter(|t| t.tag_type == common::flv::TAG_AUDIO)
        .map(|t| (t.timestamp, t.data))
        .collect();
    let tag = |body: &[u8], packet: u8| [&[0xaf, packet][..], body].concat();
    // nginx writes the sequence header it keeps at the start of a recording, then ours.
    let (headers, frames): (Vec<_>, Vec<_>) =
        audio.into_iter().partition(|(_, d)| d.get(1) == Some(&0));
    assert!(!headers.is_empty());
    assert!(
        headers.iter().all(|h| *h == (0, tag(&asc, 0))),
        "{headers:?}"
    );
    assert_eq!(
        frames,
        [
            (0, tag(&aac_frame, 1)),
            (40, tag(&aac_frame, 1)),
            (80, tag(&aac_frame, 1)),
        ]
    );
}
