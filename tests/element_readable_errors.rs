#![cfg(feature = "gst")]
//! Errors a person can read: the bus error of `rtmpclientsink` for short stream keys (a refused
//! port, a real nginx-rtmp that denies the publish) and for hostile servers is a plain sentence
//! that says what to do. No text is garbled by redaction (`****` inside a word), none carries
//! Rust Debug output, none contains the stream key, and each failure ends the pipeline (ERROR on
//! the bus) within `timeout` + 2 s. Every text is printed on a line starting with `[errors]`.

mod common;

use std::time::{Duration, Instant};

use common::scripted::{Next, ScriptedTcpServer, Turn, command_of};
use common::{NginxOptions, NginxRtmp, free_port};
use gst::prelude::*;
use gstrtmpclient::rtmp::message::msg_type;

/// Short stream keys: a substring mask would hit nearly every word.
const KEYS: [&str; 5] = ["e", "k", "test", "live", "demo"];
/// The element's `timeout` (seconds): small, to keep the test fast.
const TIMEOUT_S: u64 = 2;
/// What a protocol violation tells the user to do.
const NOT_RTMP: &str = "check that the URL points to a working RTMP server.";
/// Rust Debug output that must never reach a user.
const DEBUG_TOKENS: [&str; 12] = [
    "Some(",
    "None",
    "Err(",
    "Ok(",
    "{ ",
    " }",
    "Kind(",
    "Os {",
    "OtherError",
    "Custom {",
    "kind:",
    "\\\"",
];

fn init() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstrtmpclient::plugin_register_static().expect("register plugin");
    });
}

/// The bus error of one failed publish.
struct Failure {
    text: String,
    debug: String,
    elapsed: Duration,
}

/// Publishes live H.264 to `location` and returns the bus error (panics on EOS or none within
/// `timeout` + 2 s, the bound every failure must meet).
fn publish_error(location: &str) -> Failure {
    init();
    let launch = format!(
        "videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=30/1 ! \
         x264enc tune=zerolatency key-int-max=30 ! rtmpclientsink name=s timeout={TIMEOUT_S}"
    );
    let p = gst::parse::launch(&launch)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    p.by_name("s").unwrap().set_property("location", location);
    let bound = Duration::from_secs(TIMEOUT_S + 2);
    let start = Instant::now();
    let _ = p.set_state(gst::State::Playing);
    let msg = p.bus().unwrap().timed_pop_filtered(
        gst::ClockTime::from_nseconds(bound.as_nanos() as u64),
        &[gst::MessageType::Error, gst::MessageType::Eos],
    );
    let elapsed = start.elapsed();
    let failure = match msg.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Error(e)) => Failure {
            text: e.error().message().to_string(),
            debug: e.debug().map(|d| d.to_string()).unwrap_or_default(),
            elapsed,
        },
        Some(other) => panic!("expected an error, got {other:?}"),
        None => panic!("no ERROR on the bus within {bound:?} (timeout={TIMEOUT_S})"),
    };
    p.set_state(gst::State::Null).unwrap();
    failure
}

/// True if `token` occurs in `text` as a whole word (not inside a longer alphanumeric word).
fn has_token(text: &str, token: &str) -> bool {
    text.split(|c: char| !c.is_alphanumeric())
        .any(|w| w == token)
}

/// The checks every user-visible error text must pass (and that it does not contain `key`);
/// `advice` is the part that says what to do in this case.
fn assert_readable(what: &str, key: &str, f: &Failure, advice: &str) {
    assert_sentence(what, key, f, advice);
    for s in [&f.text, &f.debug] {
        assert!(!has_token(s, key), "{what}: stream key '{key}' in: {s}");
    }
}

/// [`assert_readable`] but for a key that is also a word of the text: no key check here.
fn assert_sentence(what: &str, key: &str, f: &Failure, advice: &str) {
    println!(
        "[errors] {what} (key '{key}', {:.1} s): {}",
        f.elapsed.as_secs_f64(),
        f.text
    );
    let t = &f.text;
    assert!(
        t.chars().next().is_some_and(char::is_uppercase),
        "{what}: not a sentence: {t}"
    );
    assert!(
        t.ends_with(['.', '?']),
        "{what}: does not end like a sentence: {t}"
    );
    for s in [t.as_str(), f.debug.as_str()] {
        for (i, _) in s.match_indices("****") {
            let before = s[..i].chars().next_back();
            let after = s[i + 4..].chars().next();
            assert!(
                !before.is_some_and(char::is_alphanumeric)
                    && !after.is_some_and(char::is_alphanumeric),
                "{what}: mask inside a word: {s}"
            );
        }
        for d in DEBUG_TOKENS {
            assert!(!s.contains(d), "{what}: Debug text '{d}' in: {s}");
        }
    }
    assert!(
        t.contains(advice),
        "{what}: the text does not say what to do ('{advice}'): {t}"
    );
    assert!(
        f.elapsed <= Duration::from_secs(TIMEOUT_S + 2),
        "{what}: took {:?}",
        f.elapsed
    );
}

#[test]
fn short_keys_against_a_refused_port() {
    let port = free_port();
    let mut texts = Vec::new();
    for key in KEYS {
        let f = publish_error(&format!("rtmp://127.0.0.1:{port}/app/{key}"));
        assert_readable(
            "refused port",
            key,
            &f,
            "is the RTMP server running and is the port right?",
        );
        assert!(
            f.text
                .starts_with(&format!("Could not connect to 127.0.0.1:{port}")),
            "{}",
            f.text
        );
        texts.push(f.text);
    }
    // The key has no influence on the text at all.
    assert!(texts.windows(2).all(|w| w[0] == w[1]), "{texts:#?}");
}

#[test]
fn short_keys_against_nginx_that_denies_publishing() {
    let Some(srv) =
        NginxRtmp::start(NginxOptions::default().application("deny", "live on; deny publish all;"))
    else {
        return;
    };
    let mut texts = Vec::new();
    for key in KEYS {
        let f = publish_error(&format!("rtmp://127.0.0.1:{}/deny/{key}", srv.port()));
        assert_readable(
            "nginx deny publish",
            key,
            &f,
            "check that the server allows publishing",
        );
        assert!(f.text.contains("/deny/****"), "{}", f.text);
        texts.push(f.text);
    }
    assert!(texts.windows(2).all(|w| w[0] == w[1]), "{texts:#?}");
}

/// Runs `script` as the server for one publish with `key` and checks the error it causes.
fn hostile(
    what: &str,
    key: &str,
    advice: &str,
    script: impl FnMut(Turn<'_>) -> Next + Send + 'static,
) -> Failure {
    let server = ScriptedTcpServer::start(Duration::from_secs(15), script);
    let f = publish_error(&format!("rtmp://127.0.0.1:{}/app/{key}", server.port));
    assert_readable(what, key, &f, advice);
    server.join();
    f
}

/// A script that completes the handshake, waits for `connect` and then sends `bytes` (raw, no
/// chunking) and keeps the connection open.
fn after_connect(bytes: Vec<u8>) -> impl FnMut(Turn<'_>) -> Next + Send + 'static {
    move |turn: Turn<'_>| {
        let connect = turn
            .new
            .iter()
            .filter_map(command_of)
            .any(|c| c.name == "connect");
        if connect {
            turn.peer.send_raw(&bytes);
            Next::DrainUntilClose
        } else {
            Next::Continue
        }
    }
}

/// A full type-0 chunk header on `csid` (< 64) announcing a message of `len` bytes.
fn chunk_header(csid: u8, len: u32, type_id: u8) -> Vec<u8> {
    let mut h = vec![csid, 0, 0, 0];
    h.extend_from_slice(&len.to_be_bytes()[1..]);
    h.push(type_id);
    h.extend_from_slice(&[0, 0, 0, 0]);
    h
}

#[test]
fn keys_that_are_words_of_the_texts_leave_them_alone() {
    // Keys long enough for the last-resort mask, and words our own texts use: our texts never
    // carry a secret, so they are never masked.
    let port = free_port();
    let refused = |key: &str| publish_error(&format!("rtmp://127.0.0.1:{port}/app/{key}"));
    let closing = |key: &str| {
        let server = ScriptedTcpServer::start(Duration::from_secs(15), |turn: Turn<'_>| {
            turn.peer.take_output();
            Next::Close
        });
        let f = publish_error(&format!("rtmp://127.0.0.1:{}/app/{key}", server.port));
        server.join();
        f
    };
    let reference = [refused("k").text, closing("k").text];
    for key in ["server", "stream"] {
        for (f, advice, reference) in [
            (refused(key), "is the RTMP server running", &reference[0]),
            (closing(key), "check the server's log", &reference[1]),
        ] {
            assert_sentence("word key", key, &f, advice);
            // The same text as with any other key: the key changed nothing.
            assert_eq!(&f.text, reference);
            assert!(!f.debug.contains(&format!("/{key}")), "{}", f.debug);
        }
    }
}

#[test]
fn server_closing_at_once() {
    let f = hostile("closing at once", "e", "check the server's log", |turn| {
        // Drop the S0+S1+S2 the peer queued: close without a byte.
        turn.peer.take_output();
        Next::Close
    });
    assert!(f.text.contains("closed the connection"), "{}", f.text);
}

#[test]
fn server_with_a_bad_handshake_version() {
    let f = hostile(
        "bad handshake version",
        "k",
        "is this an RTMP port?",
        |turn| {
            let mut out = turn.peer.take_output();
            if let Some(v) = out.first_mut() {
                *v = 9;
            }
            turn.peer.send_raw(&out);
            Next::DrainUntilClose
        },
    );
    assert!(f.text.contains("version 9"), "{}", f.text);
}

#[test]
fn silent_server() {
    let f = hostile("silence", "test", "or raise the timeout", |turn| {
        turn.peer.take_output();
        Next::Continue
    });
    assert!(f.text.contains("Timed out"), "{}", f.text);
    assert!(
        f.elapsed >= Duration::from_millis(TIMEOUT_S * 1000 - 100),
        "{:?}",
        f.elapsed
    );
}

#[test]
fn server_sending_garbage() {
    // Deterministic pseudo-random bytes (xorshift).
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let garbage: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    hostile("garbage bytes", "live", NOT_RTMP, after_connect(garbage));
}

#[test]
fn server_sending_deeply_nested_amf() {
    // `_result` whose command object nests 1000 objects.
    let mut body = vec![0x02, 0x00, 0x07];
    body.extend_from_slice(b"_result");
    body.push(0x00);
    body.extend_from_slice(&1.0f64.to_be_bytes());
    for _ in 0..1000 {
        body.extend_from_slice(&[0x03, 0x00, 0x01, b'a']);
    }
    let mut bytes = chunk_header(3, body.len() as u32, msg_type::COMMAND_AMF0);
    // Split into 128-byte chunks with type-3 headers.
    for (i, c) in body.chunks(128).enumerate() {
        if i > 0 {
            bytes.push(0xC3);
        }
        bytes.extend_from_slice(c);
    }
    let f = hostile("deeply nested AMF", "demo", NOT_RTMP, after_connect(bytes));
    assert!(f.text.contains("nested"), "{}", f.text);
}

#[test]
fn server_claiming_a_huge_message() {
    let bytes = chunk_header(3, 0xFF_FFFF, msg_type::COMMAND_AMF0);
    let f = hostile("huge message length", "e", NOT_RTMP, after_connect(bytes));
    assert!(f.text.contains("16777215"), "{}", f.text);
}

#[test]
fn server_using_many_chunk_streams() {
    // A partial message (first 128 of 1000 bytes) on each of 200 chunk streams.
    let mut bytes = Vec::new();
    for csid in 3u32..203 {
        if csid < 64 {
            bytes.push(csid as u8);
        } else {
            bytes.extend_from_slice(&[0, (csid - 64) as u8]);
        }
        bytes.extend_from_slice(&chunk_header(0, 1000, msg_type::AUDIO)[1..]);
        bytes.extend_from_slice(&[0u8; 128]);
    }
    let f = hostile("many chunk streams", "k", NOT_RTMP, after_connect(bytes));
    assert!(f.text.contains("chunk streams"), "{}", f.text);
}

#[test]
fn server_setting_chunk_size_zero() {
    let mut bytes = chunk_header(2, 4, msg_type::SET_CHUNK_SIZE);
    bytes.extend_from_slice(&0u32.to_be_bytes());
    let f = hostile("chunk size 0", "test", NOT_RTMP, after_connect(bytes));
    assert!(f.text.contains("chunk size 0"), "{}", f.text);
}

#[test]
fn server_echoing_a_long_key_in_its_rejection() {
    // A server's own text is not ours: a key of 6 characters or more is masked where it stands
    // as a whole word, and nothing else is touched (the unit tests of `rtmp::url` cover the
    // word boundaries).
    const LONG_KEY: &str = "s3cr3tKey9";
    let f = hostile(
        "publish rejected, key echoed",
        LONG_KEY,
        "check the stream key",
        |turn| {
            let (publish, rest): (Vec<_>, Vec<_>) = turn
                .new
                .into_iter()
                .partition(|m| command_of(m).is_some_and(|c| c.name == "publish"));
            turn.peer.answer_publish_flow(&rest, &[]);
            if publish.is_empty() {
                return Next::Continue;
            }
            turn.peer.send_status(
                1,
                "error",
                "NetStream.Publish.BadName",
                &format!("{LONG_KEY} is already publishing"),
                vec![],
            );
            Next::DrainUntilClose
        },
    );
    assert!(!f.text.contains(LONG_KEY), "{}", f.text);
    assert!(
        f.text.starts_with(
            "Server rejected publish: NetStream.Publish.BadName (\"**** is already publishing\")"
        ),
        "{}",
        f.text
    );
}
