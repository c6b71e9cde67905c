//! The sans-IO publishing core against a scripted server peer: every protocol rule of the
//! publish flow, exchanged in memory without sockets or clocks.

#[path = "common/scripted.rs"]
mod scripted;

use gstrtmpclient::rtmp::amf0::Amf0Value;
use gstrtmpclient::rtmp::amf3::Amf3Value;
use gstrtmpclient::rtmp::caps::{CAPS_EX_MULTITRACK, CAPS_EX_RECONNECT, ConnectCapabilities};
use gstrtmpclient::rtmp::chunk::ChunkBatch;
use gstrtmpclient::rtmp::message::{Message, UserControl, msg_type, parse_aggregate};
use gstrtmpclient::rtmp::session::{ClientEvent, PublishConfig, Session, SessionState};
use gstrtmpclient::rtmp::url::RtmpUrl;
use gstrtmpclient::rtmp::{Error, amf0};
use scripted::{ServerPeer, command_of};

fn config(url: &str) -> PublishConfig {
    PublishConfig::new(RtmpUrl::parse(url).unwrap())
}

/// Moves bytes both ways until neither side has anything to say. `script` sees each batch of
/// client messages. Returns the first client error, if any.
fn pump(
    client: &mut Session,
    server: &mut ServerPeer,
    mut script: impl FnMut(&mut ServerPeer, &[Message]),
) -> Result<(), Error> {
    for _ in 0..1000 {
        let mut batch = ChunkBatch::new();
        client.drain_transmit(&mut batch);
        let up = batch.to_vec();
        let msgs = server.feed(&up);
        script(server, &msgs);
        let down = server.take_output();
        if up.is_empty() && down.is_empty() {
            return Ok(());
        }
        if !down.is_empty() {
            client.handle_input(&down)?;
        }
    }
    panic!("pump did not settle");
}

fn events(client: &mut Session) -> Vec<ClientEvent> {
    std::iter::from_fn(|| client.poll_event()).collect()
}

/// A session that reached Publishing against a nginx-like scripted peer.
fn publishing(
    cfg: PublishConfig,
    props: &[(&str, Amf0Value)],
) -> (Session, ServerPeer, Vec<ClientEvent>) {
    let mut client = Session::new(cfg);
    let mut server = ServerPeer::new();
    let props: Vec<(&str, Amf0Value)> = props.to_vec();
    pump(&mut client, &mut server, |s, m| {
        s.answer_publish_flow(m, &props);
    })
    .expect("publish flow succeeds");
    assert_eq!(client.state(), SessionState::Publishing);
    let ev = events(&mut client);
    (client, server, ev)
}

fn send_video(client: &mut Session, server: &mut ServerPeer, ts: u32, body: &[u8]) -> Message {
    let mut batch = ChunkBatch::new();
    client
        .write_media(msg_type::VIDEO, ts, &[&body[..1], &body[1..]], &mut batch)
        .unwrap();
    let msgs = server.feed(&batch.to_vec());
    msgs.into_iter()
        .rfind(|m| m.msg_type_id == msg_type::VIDEO)
        .expect("video message arrives")
}

#[test]
fn publish_flow_sends_the_fmle_command_sequence() {
    let (client, server, ev) = publishing(config("rtmp://127.0.0.1/app/inst/key?tok=1"), &[]);
    let names: Vec<String> = server
        .received
        .iter()
        .filter_map(command_of)
        .map(|c| c.name)
        .collect();
    assert_eq!(
        names,
        [
            "connect",
            "releaseStream",
            "FCPublish",
            "createStream",
            "publish"
        ]
    );
    let connect = command_of(&server.received[1]).unwrap();
    assert_eq!(
        connect
            .command_object
            .get("app")
            .and_then(Amf0Value::as_str),
        Some("app/inst")
    );
    assert_eq!(
        connect
            .command_object
            .get("tcUrl")
            .and_then(Amf0Value::as_str),
        Some("rtmp://127.0.0.1:1935/app/inst")
    );
    let publish = server.received.iter().rev().find_map(command_of).unwrap();
    assert_eq!(publish.args[0].as_str(), Some("key?tok=1"));
    assert_eq!(publish.args[1].as_str(), Some("live"));
    // SetChunkSize(4096) precedes connect.
    assert_eq!(server.received[0].msg_type_id, msg_type::SET_CHUNK_SIZE);
    assert_eq!(server.received[0].payload, 4096u32.to_be_bytes());
    assert!(matches!(ev[0], ClientEvent::Connected { .. }));
    assert!(
        ev.iter()
            .any(|e| matches!(e, ClientEvent::Publishing { stream_id: 1 }))
    );
    assert_eq!(client.stream_id(), 1);
}

#[test]
fn server_capabilities_are_parsed_from_result() {
    let mut cfg = config("rtmp://127.0.0.1/live/key");
    cfg.capabilities = ConnectCapabilities::publisher_default();
    let (client, server, ev) = publishing(
        cfg,
        &[
            (
                "fourCcList",
                Amf0Value::StrictArray(vec![Amf0Value::String("hvc1".into())]),
            ),
            (
                "videoFourCcInfoMap",
                Amf0Value::object([("*", Amf0Value::Number(4.0))]),
            ),
            (
                "capsEx",
                Amf0Value::Number(f64::from(CAPS_EX_RECONNECT | CAPS_EX_MULTITRACK)),
            ),
        ],
    );
    let caps = client.server_capabilities();
    assert!(!caps.is_empty());
    assert_eq!(caps.four_cc_list, vec!["hvc1".to_string()]);
    assert_eq!(caps.video_four_cc_info_map, vec![("*".to_string(), 4)]);
    assert!(caps.has_caps_ex(CAPS_EX_RECONNECT | CAPS_EX_MULTITRACK));
    match &ev[0] {
        ClientEvent::Connected {
            fms_version,
            capabilities,
        } => {
            assert_eq!(fms_version.as_deref(), Some("FMS/3,0,1,123"));
            assert_eq!(capabilities, caps);
        }
        other => panic!("unexpected {other:?}"),
    }
    // The client advertised its own block after the legacy fields.
    let connect = server
        .received
        .iter()
        .filter_map(command_of)
        .next()
        .unwrap();
    assert_eq!(
        connect
            .command_object
            .get("capsEx")
            .and_then(Amf0Value::as_f64),
        Some(f64::from(CAPS_EX_RECONNECT))
    );
}

#[test]
fn legacy_server_gives_empty_capabilities() {
    let (client, _, _) = publishing(config("rtmp://127.0.0.1/live/key"), &[]);
    assert!(client.server_capabilities().is_empty());
}

#[test]
fn reconnect_request_with_and_without_tc_url() {
    let (mut client, mut server, _) = publishing(config("rtmp://127.0.0.1/live/key"), &[]);
    server.send_status(
        0,
        "status",
        "NetConnection.Connect.ReconnectRequest",
        "Please move",
        vec![("tcUrl", Amf0Value::String("rtmp://other:1935/live".into()))],
    );
    server.send_status(
        0,
        "status",
        "NetConnection.Connect.ReconnectRequest",
        "again",
        vec![],
    );
    client.handle_input(&server.take_output()).unwrap();
    let ev = events(&mut client);
    assert_eq!(
        ev,
        vec![
            ClientEvent::ReconnectRequest {
                tc_url: Some("rtmp://other:1935/live".into()),
                description: "Please move".into()
            },
            ClientEvent::ReconnectRequest {
                tc_url: None,
                description: "again".into()
            },
        ]
    );
}

#[test]
fn ping_request_is_answered_and_ping_response_surfaced() {
    let (mut client, mut server, _) = publishing(config("rtmp://127.0.0.1/live/key"), &[]);
    server.send_user_control(UserControl::PingRequest(123_456));
    client.handle_input(&server.take_output()).unwrap();
    assert!(
        events(&mut client).is_empty(),
        "ping requests are housekeeping"
    );
    let mut batch = ChunkBatch::new();
    client.drain_transmit(&mut batch);
    let msgs = server.feed(&batch.to_vec());
    assert_eq!(msgs.len(), 1);
    assert_eq!(
        UserControl::decode(&msgs[0].payload).unwrap(),
        UserControl::PingResponse(123_456)
    );

    client.send_ping_request(77).unwrap();
    let mut batch = ChunkBatch::new();
    client.drain_transmit(&mut batch);
    let msgs = server.feed(&batch.to_vec());
    assert_eq!(
        UserControl::decode(&msgs[0].payload).unwrap(),
        UserControl::PingRequest(77)
    );
    server.send_user_control(UserControl::PingResponse(77));
    client.handle_input(&server.take_output()).unwrap();
    assert_eq!(
        events(&mut client),
        vec![ClientEvent::PingResponse { timestamp_ms: 77 }]
    );
}

#[test]
fn stream_eof_and_status_after_publishing_are_events() {
    let (mut client, mut server, _) = publishing(config("rtmp://127.0.0.1/live/key"), &[]);
    server.send_status(1, "status", "NetStream.Publish.Idle", "idle", vec![]);
    server.send_user_control(UserControl::StreamEof(1));
    client.handle_input(&server.take_output()).unwrap();
    assert_eq!(
        events(&mut client),
        vec![
            ClientEvent::OnStatus {
                level: "status".into(),
                code: "NetStream.Publish.Idle".into(),
                description: "idle".into()
            },
            ClientEvent::StreamEof(1)
        ]
    );
}

#[test]
fn publish_rejected_carries_code_and_redacted_description() {
    let mut client = Session::new(config("rtmp://127.0.0.1/live/sekrit"));
    let mut server = ServerPeer::new();
    let err = pump(&mut client, &mut server, |s, msgs| {
        for m in msgs {
            if command_of(m).is_some_and(|c| c.name == "publish") {
                s.send_status(
                    1,
                    "error",
                    "NetStream.Publish.BadName",
                    "sekrit is already publishing",
                    vec![],
                );
            }
        }
        s.answer_publish_flow(
            &msgs
                .iter()
                .filter(|m| command_of(m).is_none_or(|c| c.name != "publish"))
                .cloned()
                .collect::<Vec<_>>(),
            &[],
        );
    })
    .unwrap_err();
    match &err {
        Error::PublishRejected { code, description } => {
            assert_eq!(code, "NetStream.Publish.BadName");
            assert_eq!(description, "**** is already publishing");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("NetStream.Publish.BadName"));
    assert!(!err.to_string().contains("sekrit"));
    assert_eq!(client.state(), SessionState::Closed);
}

#[test]
fn connect_rejected_is_an_error() {
    let mut client = Session::new(config("rtmp://127.0.0.1/live/key"));
    let mut server = ServerPeer::new();
    let err = pump(&mut client, &mut server, |s, msgs| {
        for m in msgs {
            if let Some(c) = command_of(m).filter(|c| c.name == "connect") {
                s.send_command(
                    0,
                    "_error",
                    c.transaction_id,
                    Amf0Value::Null,
                    vec![Amf0Value::object([
                        ("level", Amf0Value::String("error".into())),
                        (
                            "code",
                            Amf0Value::String("NetConnection.Connect.Rejected".into()),
                        ),
                        ("description", Amf0Value::String("app not found".into())),
                    ])],
                );
            }
        }
    })
    .unwrap_err();
    assert!(
        matches!(&err, Error::ConnectRejected { code, description } if code == "NetConnection.Connect.Rejected" && description == "app not found"),
        "{err:?}"
    );
}

#[test]
fn release_stream_and_fcpublish_errors_are_tolerated() {
    let mut client = Session::new(config("rtmp://127.0.0.1/live/key"));
    let mut server = ServerPeer::new();
    pump(&mut client, &mut server, |s, msgs| {
        for m in msgs {
            if let Some(c) =
                command_of(m).filter(|c| c.name == "releaseStream" || c.name == "FCPublish")
            {
                s.send_command(0, "_error", c.transaction_id, Amf0Value::Null, vec![]);
            }
        }
        s.answer_publish_flow(msgs, &[]);
    })
    .unwrap();
    assert_eq!(client.state(), SessionState::Publishing);
    assert!(
        !events(&mut client)
            .iter()
            .any(|e| matches!(e, ClientEvent::ErrorReply { .. }))
    );
}

#[test]
fn server_chunk_size_change_mid_stream_is_honoured() {
    let (mut client, mut server, _) = publishing(config("rtmp://127.0.0.1/live/key"), &[]);
    // A status bigger than the default 128-byte chunk, sent after raising the chunk size.
    server.set_chunk_size(60_000);
    let long = "x".repeat(5000);
    server.send_status(1, "status", "NetStream.Custom", &long, vec![]);
    server.set_chunk_size(1);
    server.send_status(1, "status", "NetStream.Tiny", "t", vec![]);
    client.handle_input(&server.take_output()).unwrap();
    let ev = events(&mut client);
    assert!(
        matches!(&ev[0], ClientEvent::OnStatus { description, .. } if description.len() == 5000)
    );
    assert!(matches!(&ev[1], ClientEvent::OnStatus { code, .. } if code == "NetStream.Tiny"));
    assert_eq!(client.stats().in_chunk_size, 1);
}

#[test]
fn timestamps_cross_extended_range_and_wrap() {
    let (mut client, mut server, _) = publishing(config("rtmp://127.0.0.1/live/key"), &[]);
    let body = vec![0x27u8; 10_000]; // spans several 4096-byte chunks
    for ts in [
        0u32,
        0x00FF_FFFE,
        0x00FF_FFFF,
        0x0100_0000,
        0x0100_0010,
        0xFFFF_FFF0,
        5,
        40,
    ] {
        let m = send_video(&mut client, &mut server, ts, &body);
        assert_eq!(m.timestamp, ts, "timestamp {ts:#x} survives chunking");
        assert_eq!(m.payload, body);
        assert_eq!(m.msg_stream_id, 1);
    }
}

#[test]
fn window_acknowledgements_are_sent() {
    let (mut client, mut server, _) = publishing(config("rtmp://127.0.0.1/live/key"), &[]);
    server.send(2, 0, msg_type::WINDOW_ACK_SIZE, 0, &1000u32.to_be_bytes());
    client.handle_input(&server.take_output()).unwrap();
    let mut acks = Vec::new();
    for i in 0..10 {
        server.send_status(1, "status", "NetStream.Info", &format!("{i:0>300}"), vec![]);
        client.handle_input(&server.take_output()).unwrap();
        let mut batch = ChunkBatch::new();
        client.drain_transmit(&mut batch);
        for m in server.feed(&batch.to_vec()) {
            if m.msg_type_id == msg_type::ACKNOWLEDGEMENT {
                acks.push(u32::from_be_bytes(m.payload[..4].try_into().unwrap()));
            }
        }
    }
    assert!(acks.len() >= 2, "acks: {acks:?}");
    assert!(
        acks.windows(2).all(|w| w[1] - w[0] >= 1000),
        "acks: {acks:?}"
    );
    let last = u64::from(*acks.last().unwrap());
    let received = client.stats().bytes_received;
    assert!(
        last <= received && received - last < 1000,
        "last ack {last}, received {received}"
    );
}

#[test]
fn peer_bandwidth_hard_is_announced_back() {
    let (client, server, _) = publishing(config("rtmp://127.0.0.1/live/key"), &[]);
    // answer_publish_flow sent SetPeerBandwidth(5_000_000, dynamic) before any hard limit:
    // the client announces its default window once.
    let announced: Vec<u32> = server
        .received
        .iter()
        .filter(|m| m.msg_type_id == msg_type::WINDOW_ACK_SIZE)
        .map(|m| u32::from_be_bytes(m.payload[..4].try_into().unwrap()))
        .collect();
    assert_eq!(announced.len(), 1);
    let mut client = client;
    let mut server = server;
    server.send(2, 0, msg_type::SET_PEER_BANDWIDTH, 0, &[0, 0, 0x10, 0, 0]); // hard 4096
    server.send(2, 0, msg_type::SET_PEER_BANDWIDTH, 0, &[0, 0, 0x20, 0, 1]); // soft larger: ignored
    client.handle_input(&server.take_output()).unwrap();
    assert_eq!(client.stats().out_window_ack_size, 4096);
    let mut batch = ChunkBatch::new();
    client.drain_transmit(&mut batch);
    let msgs = server.feed(&batch.to_vec());
    let wins: Vec<u32> = msgs
        .iter()
        .filter(|m| m.msg_type_id == msg_type::WINDOW_ACK_SIZE)
        .map(|m| u32::from_be_bytes(m.payload[..4].try_into().unwrap()))
        .collect();
    assert_eq!(wins, vec![4096]);
}

#[test]
fn aggregate_round_trip() {
    let (mut client, mut server, _) = publishing(config("rtmp://127.0.0.1/live/key"), &[]);
    let subs = vec![
        Message::new(msg_type::VIDEO, 1000, 77, vec![0x17, 1, 0, 0, 0, 9, 9]),
        Message::new(msg_type::AUDIO, 1010, 77, vec![0xAF, 1, 5, 5]),
    ];
    client.send_aggregate(&subs).unwrap();
    let mut batch = ChunkBatch::new();
    client.drain_transmit(&mut batch);
    let msgs = server.feed(&batch.to_vec());
    let agg = msgs
        .iter()
        .find(|m| m.msg_type_id == msg_type::AGGREGATE)
        .unwrap();
    assert_eq!(agg.timestamp, 1000);
    assert_eq!(agg.msg_stream_id, 1);
    let back = parse_aggregate(&agg.payload, agg.timestamp, agg.msg_stream_id).unwrap();
    assert_eq!(back.len(), 2);
    assert_eq!((back[0].timestamp, back[1].timestamp), (1000, 1010));
    assert_eq!(back[0].payload, subs[0].payload);
    assert_eq!(back[1].payload, subs[1].payload);
    assert!(back.iter().all(|m| m.msg_stream_id == 1));
}

#[test]
fn metadata_amf0_and_amf3_round_trip() {
    let (mut client, mut server, _) = publishing(config("rtmp://127.0.0.1/live/key"), &[]);
    let meta0 = Amf0Value::EcmaArray(vec![
        ("width".into(), Amf0Value::Number(1280.0)),
        ("encoder".into(), Amf0Value::String("test".into())),
    ]);
    client.send_metadata(0, &meta0).unwrap();
    let meta3 = Amf3Value::Array {
        assoc: vec![("width".into(), Amf3Value::Integer(1280))],
        dense: vec![],
    };
    client.send_metadata_amf3(0, &meta3).unwrap();
    let mut batch = ChunkBatch::new();
    client.drain_transmit(&mut batch);
    let msgs = server.feed(&batch.to_vec());
    let d0 = msgs
        .iter()
        .find(|m| m.msg_type_id == msg_type::DATA_AMF0)
        .unwrap();
    assert_eq!(
        amf0::decode_all(&d0.payload).unwrap(),
        vec![
            Amf0Value::String("@setDataFrame".into()),
            Amf0Value::String("onMetaData".into()),
            meta0
        ]
    );
    let d3 = msgs
        .iter()
        .find(|m| m.msg_type_id == msg_type::DATA_AMF3)
        .unwrap();
    assert_eq!(
        d3.payload[0], 0,
        "AMF3 data messages start with a format byte"
    );
    let values = amf0::decode_all(&d3.payload[1..]).unwrap();
    assert_eq!(values[1], Amf0Value::String("onMetaData".into()));
    assert_eq!(values[2], Amf0Value::AvmPlus(meta3));
}

#[test]
fn media_before_publishing_is_refused() {
    let mut client = Session::new(config("rtmp://127.0.0.1/live/key"));
    let mut batch = ChunkBatch::new();
    let err = client
        .write_media(msg_type::VIDEO, 0, &[&[1, 2, 3][..]], &mut batch)
        .unwrap_err();
    assert!(matches!(err, Error::InvalidState(_)));
}

#[test]
fn close_sends_stop_commands() {
    let (mut client, mut server, _) = publishing(config("rtmp://127.0.0.1/live/key"), &[]);
    client.close();
    assert_eq!(client.state(), SessionState::Closed);
    let mut batch = ChunkBatch::new();
    client.drain_transmit(&mut batch);
    let names: Vec<String> = server
        .feed(&batch.to_vec())
        .iter()
        .filter_map(command_of)
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["FCUnpublish", "deleteStream"]);
}

#[test]
fn tls_or_http_answers_give_a_clear_handshake_error() {
    for (first, hint) in [(0x16u8, "rtmps"), (b'H', "HTTP")] {
        let mut client = Session::new(config("rtmp://127.0.0.1/live/key"));
        let err = client.handle_input(&[first, 3, 1, 0, 0]).unwrap_err();
        assert!(matches!(err, Error::Handshake(_)), "{err:?}");
        assert!(err.to_string().contains(hint), "{err}");
    }
}

#[test]
fn a_key_echoed_in_a_status_code_or_description_is_masked_as_a_whole_word_only() {
    let mut client = Session::new(config("rtmp://127.0.0.1/live/SkEyZ7741"));
    let mut server = ServerPeer::new();
    let err = pump(&mut client, &mut server, |s, msgs| {
        let (publish, rest): (Vec<Message>, Vec<Message>) = msgs
            .iter()
            .cloned()
            .partition(|m| command_of(m).is_some_and(|c| c.name == "publish"));
        s.answer_publish_flow(&rest, &[]);
        if !publish.is_empty() {
            s.send_status(
                1,
                "error",
                "NetStream.Publish.SkEyZ7741",
                "SkEyZ7741 is taken; xSkEyZ7741 is another word",
                vec![],
            );
        }
    })
    .unwrap_err();
    match &err {
        Error::PublishRejected { code, description } => {
            assert_eq!(code, "NetStream.Publish.****");
            assert_eq!(description, "**** is taken; xSkEyZ7741 is another word");
        }
        other => panic!("unexpected {other:?}"),
    }
}
