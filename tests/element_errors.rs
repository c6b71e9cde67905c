#![cfg(feature = "gst")]
//! `rtmpclientsink` failures: each ends with a clear error on the bus within its time bound,
//! never hangs, never leaks the stream key, and the pipeline always reaches NULL quickly.

mod common;
use common::scripted;

use std::io::Read;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::NginxRtmp;
use gst::prelude::*;
use scripted::ServerPeer;

const KEY: &str = "sekritkey";

fn init() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstrtmpclient::plugin_register_static().expect("register plugin");
    });
}

/// A live H.264 pipeline into `rtmpclientsink name=s` with `props`.
fn pipeline(location: &str, props: &str) -> gst::Pipeline {
    init();
    let launch = format!(
        "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! \
         x264enc tune=zerolatency key-int-max=30 ! video/x-h264,stream-format=avc,alignment=au ! \
         rtmpclientsink name=s location={location} {props}"
    );
    gst::parse::launch(&launch)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap()
}

/// Plays until an error (returned) or `limit`; then sets NULL and checks that is quick.
fn expect_error(p: &gst::Pipeline, limit: Duration) -> (glib::Error, String, Duration) {
    let start = Instant::now();
    let _ = p.set_state(gst::State::Playing);
    let bus = p.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_nseconds(limit.saturating_sub(start.elapsed()).as_nanos() as u64),
            &[gst::MessageType::Error, gst::MessageType::Eos],
        )
        .unwrap_or_else(|| panic!("no error within {limit:?}"));
    let elapsed = start.elapsed();
    let (err, debug) = match msg.view() {
        gst::MessageView::Error(e) => (
            e.error(),
            e.debug().map(|d| d.to_string()).unwrap_or_default(),
        ),
        other => panic!("expected an error, got {other:?}"),
    };
    let t = Instant::now();
    p.set_state(gst::State::Null).unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "NULL took {:?}",
        t.elapsed()
    );
    assert!(
        !err.message().contains(KEY) && !debug.contains(KEY),
        "stream key leaked: {err} / {debug}"
    );
    (err, debug, elapsed)
}

use gst::glib;

#[test]
fn connection_refused() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let p = pipeline(&format!("rtmp://127.0.0.1:{port}/live/{KEY}"), "");
    let (err, _, t) = expect_error(&p, Duration::from_secs(5));
    assert!(err.matches(gst::ResourceError::OpenWrite), "{err:?}");
    assert!(
        err.message().starts_with(&format!(
            "Could not connect to 127.0.0.1:{port}: connection refused"
        )),
        "{err}"
    );
    assert!(t < Duration::from_secs(3), "{t:?}");
}

#[test]
fn unknown_host() {
    let p = pipeline(
        &format!("rtmp://no-such-host.invalid/live/{KEY}"),
        "timeout=5",
    );
    let (err, _, t) = expect_error(&p, Duration::from_secs(8));
    assert!(err.matches(gst::ResourceError::NotFound), "{err:?}");
    assert!(err.message().contains("no-such-host.invalid"), "{err}");
    assert!(t < Duration::from_secs(7), "{t:?}");
}

#[test]
fn bad_url_is_a_settings_error() {
    init();
    let el = gst::ElementFactory::make("rtmpclientsink").build().unwrap();
    // Invalid URLs are refused by the setter: the element keeps no location.
    el.set_property("location", format!("http://host/live/{KEY}"));
    assert_eq!(el.property::<Option<String>>("location"), None);
}

#[test]
fn server_that_never_answers_times_out() {
    // Accepts the TCP connection, reads, never answers the handshake.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            s.set_read_timeout(Some(Duration::from_millis(100))).ok();
            let mut buf = [0u8; 4096];
            let end = Instant::now() + Duration::from_secs(8);
            while Instant::now() < end {
                if let Ok(0) = s.read(&mut buf) {
                    break;
                }
            }
        }
    });
    let p = pipeline(&format!("rtmp://127.0.0.1:{port}/live/{KEY}"), "timeout=2");
    let (err, _, t) = expect_error(&p, Duration::from_secs(6));
    assert!(err.matches(gst::ResourceError::OpenWrite), "{err:?}");
    assert!(
        err.message()
            .to_lowercase()
            .contains("timed out while performing the rtmp handshake"),
        "{err}"
    );
    assert!(
        t >= Duration::from_millis(1900) && t < Duration::from_secs(4),
        "{t:?}"
    );
    server.join().unwrap();
}

#[test]
fn sync_connect_to_a_silent_server_fails_start_within_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let conn = listener.accept();
        std::thread::sleep(Duration::from_secs(4));
        drop(conn);
    });
    let p = pipeline(
        &format!("rtmp://127.0.0.1:{port}/live/{KEY}"),
        "timeout=1 async-connect=false",
    );
    let t = Instant::now();
    assert!(p.set_state(gst::State::Playing).is_err());
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    let msg = p
        .bus()
        .unwrap()
        .timed_pop_filtered(gst::ClockTime::from_seconds(1), &[gst::MessageType::Error])
        .expect("error message");
    let gst::MessageView::Error(e) = msg.view() else {
        unreachable!()
    };
    assert!(e.error().message().contains("Timed out"), "{}", e.error());
    p.set_state(gst::State::Null).unwrap();
    server.join().unwrap();
}

#[test]
fn publish_rejected_stream_name_in_use() {
    let Some(srv) = NginxRtmp::start_default() else {
        return;
    };
    let url = format!("rtmp://127.0.0.1:{}/live/{KEY}", srv.port());
    let first = pipeline(&url, "");
    first.set_state(gst::State::Playing).unwrap();
    // Wait until the first one publishes.
    let bus = first.bus().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = bus
            .timed_pop(gst::ClockTime::from_mseconds(100))
            .filter(|m| m.structure().is_some_and(|s| s.name() == "rtmp-publishing"));
        if m.is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "first publisher never started");
    }
    let second = pipeline(&url, "");
    let (err, _, t) = expect_error(&second, Duration::from_secs(10));
    assert!(err.matches(gst::ResourceError::OpenWrite), "{err:?}");
    assert!(
        err.message()
            .starts_with("Server rejected publish: NetStream.Publish.BadName"),
        "{err}"
    );
    assert!(t < Duration::from_secs(5), "{t:?}");
    first.set_state(gst::State::Null).unwrap();
}

#[test]
fn publish_denied_by_server_config() {
    let Some(srv) = NginxRtmp::start(
        common::NginxOptions::default().application("deny", "live on; deny publish all;"),
    ) else {
        return;
    };
    let p = pipeline(&format!("rtmp://127.0.0.1:{}/deny/{KEY}", srv.port()), "");
    let (err, _, t) = expect_error(&p, Duration::from_secs(10));
    assert!(err.matches(gst::ResourceError::OpenWrite), "{err:?}");
    assert!(err.message().contains("does not allow publishing"), "{err}");
    assert!(t < Duration::from_secs(5), "{t:?}");
}

#[test]
fn server_that_stops_reading_is_detected_and_stop_is_quick() {
    // Accepts the publish, then never reads again: the socket buffers fill, writes stall.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_millis(50))).ok();
        let mut peer = ServerPeer::new();
        let mut buf = vec![0u8; 65536];
        let end = Instant::now() + Duration::from_secs(10);
        let mut published = false;
        while !published && Instant::now() < end {
            if let Ok(n) = s.read(&mut buf) {
                if n == 0 {
                    return;
                }
                let msgs = peer.feed(&buf[..n]);
                published = peer.answer_publish_flow(&msgs, &[]);
                let out = peer.take_output();
                use std::io::Write;
                s.write_all(&out).unwrap();
            }
        }
        // Hold the connection without reading.
        std::thread::sleep(Duration::from_secs(8));
        drop(s);
    });
    init();
    // Big incompressible frames as fast as possible.
    let launch = format!(
        "videotestsrc pattern=snow ! video/x-raw,width=1280,height=720,framerate=60/1 ! \
         x264enc speed-preset=ultrafast bitrate=50000 key-int-max=10 ! \
         video/x-h264,stream-format=avc,alignment=au ! \
         rtmpclientsink name=s sync=false timeout=2 reconnect-attempts=0 \
         location=rtmp://127.0.0.1:{port}/live/{KEY}"
    );
    let p = gst::parse::launch(&launch)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let (err, _, t) = expect_error(&p, Duration::from_secs(12));
    assert!(err.matches(gst::ResourceError::Write), "{err:?}");
    assert!(
        err.message()
            .to_lowercase()
            .contains("timed out while sending data"),
        "{err}"
    );
    assert!(t < Duration::from_secs(10), "{t:?}");
    server.join().unwrap();
}

#[test]
fn stop_during_a_stalled_write_is_quick() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_millis(50))).ok();
        let mut peer = ServerPeer::new();
        let mut buf = vec![0u8; 65536];
        let end = Instant::now() + Duration::from_secs(10);
        let mut published = false;
        while !published && Instant::now() < end {
            if let Ok(n) = s.read(&mut buf) {
                if n == 0 {
                    return;
                }
                let msgs = peer.feed(&buf[..n]);
                published = peer.answer_publish_flow(&msgs, &[]);
                let out = peer.take_output();
                use std::io::Write;
                s.write_all(&out).unwrap();
            }
        }
        std::thread::sleep(Duration::from_secs(6));
        drop(s);
    });
    init();
    let launch = format!(
        "videotestsrc pattern=snow ! video/x-raw,width=1280,height=720,framerate=60/1 ! \
         x264enc speed-preset=ultrafast bitrate=50000 key-int-max=10 ! \
         video/x-h264,stream-format=avc,alignment=au ! \
         rtmpclientsink name=s sync=false timeout=30 location=rtmp://127.0.0.1:{port}/live/{KEY}"
    );
    let p = gst::parse::launch(&launch)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    p.set_state(gst::State::Playing).unwrap();
    // Let the socket buffers fill up and the writer stall.
    std::thread::sleep(Duration::from_secs(3));
    let s = p.by_name("s").unwrap();
    let stats = s.property::<gst::Structure>("stats");
    assert!(stats.get::<u64>("bytes-sent").unwrap() > 0, "{stats}");
    let t = Instant::now();
    p.set_state(gst::State::Null).unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "NULL took {:?}",
        t.elapsed()
    );
    server.join().unwrap();
}
