//! The blocking `RtmpClient` over real loopback TCP against a scripted server: events, errors,
//! timeouts and the close sequence.

#[path = "common/scripted.rs"]
mod scripted;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use gstrtmpclient::rtmp::amf0::Amf0Value;
use gstrtmpclient::rtmp::message::{UserControl, msg_type};
use gstrtmpclient::rtmp::{ClientEvent, ClientOptions, Error, RtmpClient};
use scripted::{Next, ScriptedTcpServer, command_of};

const LIMIT: Duration = Duration::from_secs(20);

/// A server that completes the publish flow, then runs `after` on every later turn.
fn server_then<F>(mut after: F) -> ScriptedTcpServer
where
    F: FnMut(&mut scripted::ServerPeer, &[gstrtmpclient::rtmp::Message]) -> Next + Send + 'static,
{
    let mut published = false;
    ScriptedTcpServer::start(LIMIT, move |turn| {
        if !published {
            published = turn.peer.answer_publish_flow(&turn.new, &[]);
            if published {
                return after(turn.peer, &[]);
            }
            return Next::Continue;
        }
        after(turn.peer, &turn.new)
    })
}

#[test]
fn stream_eof_then_none() {
    let server = server_then(|peer, _| {
        peer.send_user_control(UserControl::StreamEof(1));
        Next::DrainUntilClose
    });
    let mut client = RtmpClient::connect(&server.url()).unwrap();
    assert_eq!(
        client.poll_event().unwrap(),
        Some(ClientEvent::StreamBegin(1))
    );
    assert_eq!(
        client.poll_event().unwrap(),
        Some(ClientEvent::StreamEof(1))
    );
    assert_eq!(client.poll_event().unwrap(), None);
    assert_eq!(client.poll_event().unwrap(), None);
    client.close().unwrap();
    server.join();
}

#[test]
fn socket_eof_gives_none() {
    let server = server_then(|_, _| Next::Close);
    let mut client = RtmpClient::connect(&server.url()).unwrap();
    let mut seen = Vec::new();
    while let Some(e) = client.poll_event().unwrap() {
        seen.push(e);
    }
    assert_eq!(seen, vec![ClientEvent::StreamBegin(1)]);
    server.join();
}

#[test]
fn ping_request_is_answered_while_polling() {
    let mut step = 0;
    let server = server_then(move |peer, new| {
        step += 1;
        if step == 1 {
            peer.send_user_control(UserControl::PingRequest(4242));
            return Next::Continue;
        }
        if new.iter().any(|m| {
            m.msg_type_id == msg_type::USER_CONTROL
                && UserControl::decode(&m.payload).ok() == Some(UserControl::PingResponse(4242))
        }) {
            peer.send_user_control(UserControl::PingResponse(7));
            peer.send_user_control(UserControl::StreamEof(1));
            return Next::DrainUntilClose;
        }
        Next::Continue
    });
    let mut client = RtmpClient::connect(&server.url()).unwrap();
    client.send_ping_request(7).unwrap();
    let mut events = Vec::new();
    while let Some(e) = client.poll_event().unwrap() {
        events.push(e);
    }
    assert!(
        events.contains(&ClientEvent::PingResponse { timestamp_ms: 7 }),
        "{events:?}"
    );
    client.close().unwrap();
    let peer = server.join();
    assert!(
        peer.received
            .iter()
            .any(|m| m.msg_type_id == msg_type::USER_CONTROL
                && UserControl::decode(&m.payload).ok() == Some(UserControl::PingResponse(4242)))
    );
}

#[test]
fn reconnect_request_surfaces_and_resolves() {
    let server = server_then(|peer, _| {
        peer.send_status(
            0,
            "status",
            "NetConnection.Connect.ReconnectRequest",
            "maintenance",
            vec![("tcUrl", Amf0Value::String("//192.0.2.1/live2".into()))],
        );
        Next::DrainUntilClose
    });
    let mut client = RtmpClient::connect(&server.url()).unwrap();
    let ev = loop {
        match client.poll_event().unwrap() {
            Some(ClientEvent::ReconnectRequest {
                tc_url,
                description,
            }) => break (tc_url, description),
            Some(_) => continue,
            None => panic!("no reconnect request"),
        }
    };
    assert_eq!(ev.1, "maintenance");
    assert_eq!(
        client.resolve_reconnect_url(ev.0.as_deref()),
        "rtmp://192.0.2.1/live2"
    );
    assert_eq!(
        client.resolve_reconnect_url(None),
        format!("rtmp://127.0.0.1:{}/live", server.port)
    );
    client.close().unwrap();
    server.join();
}

#[test]
fn publish_rejected_reports_code() {
    let server = ScriptedTcpServer::start(LIMIT, |turn| {
        let publish = turn
            .new
            .iter()
            .any(|m| command_of(m).is_some_and(|c| c.name == "publish"));
        let rest: Vec<_> = turn
            .new
            .iter()
            .filter(|m| command_of(m).is_none_or(|c| c.name != "publish"))
            .cloned()
            .collect();
        turn.peer.answer_publish_flow(&rest, &[]);
        if publish {
            turn.peer.send_status(
                1,
                "error",
                "NetStream.Publish.BadName",
                "Already publishing",
                vec![],
            );
        }
        Next::Continue
    });
    let err = RtmpClient::connect(&server.url()).unwrap_err();
    assert!(
        matches!(&err, Error::PublishRejected { code, .. } if code == "NetStream.Publish.BadName"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "server rejected publish: NetStream.Publish.BadName (\"Already publishing\"); check the \
         stream key, and that no other publisher is using it."
    );
}

#[test]
fn silent_server_times_out_within_the_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts (through the backlog) but never answers.
    let options = ClientOptions {
        timeout: Duration::from_secs(1),
        ..ClientOptions::default()
    };
    let start = Instant::now();
    let err =
        RtmpClient::connect_with_options(&format!("rtmp://127.0.0.1:{port}/live/key"), &options)
            .unwrap_err();
    let took = start.elapsed();
    assert!(matches!(&err, Error::TimedOut { .. }), "{err:?}");
    assert!(err.to_string().contains("handshake"), "{err}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    drop(listener);
}

#[test]
fn close_sends_stop_commands_then_half_closes() {
    let server = server_then(|_, _| Next::Continue);
    let mut client = RtmpClient::connect(&server.url()).unwrap();
    client
        .send_video_sequence_header(&[1, 0x64, 0, 0x1f, 0xff, 0xe0, 0xe1, 0])
        .unwrap();
    client
        .send_video_with_composition_time(40, true, -40, &[0, 0, 0, 1, 0x65])
        .unwrap();
    client.close().unwrap();
    let peer = server.join();
    let names: Vec<String> = peer
        .received
        .iter()
        .filter_map(command_of)
        .map(|c| c.name)
        .collect();
    assert_eq!(names[names.len() - 2..], ["FCUnpublish", "deleteStream"]);
    let video: Vec<_> = peer
        .received
        .iter()
        .filter(|m| m.msg_type_id == msg_type::VIDEO)
        .collect();
    assert_eq!(video.len(), 2);
    assert_eq!(video[0].payload[..2], [0x17, 0]);
    // composition time -40 as SI24
    assert_eq!(video[1].payload[..5], [0x17, 1, 0xFF, 0xFF, 0xD8]);
    assert_eq!(video[1].timestamp, 40);
}
