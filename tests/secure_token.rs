//! `secure_token`: the answer to a server's `secureToken` challenge, judged against two
//! published clients run at test time on the very same challenge and key: GStreamer's
//! `rtmp2sink` (`secure-token`, gst-plugins-bad's port of the TEA code) and librtmp (through
//! GStreamer's `rtmpsink`, `token=` in the location), both from Debian. The scripted server
//! puts the challenge into `_result(connect)` and records every `secureTokenResponse`.
//!
//! The challenges are made here by encrypting a known text; the published clients must answer
//! exactly that text (which also proves this file's encryption right), and so must ours.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::scripted::{Next, ScriptedTcpServer, ServerPeer, command_names, command_of};
use common::util::{TempDir, is_ci, loud, read_lossy, require_binary, terminate_child};
use gstrtmpclient::rtmp::amf0::Amf0Value;
use gstrtmpclient::rtmp::chunk::ChunkBatch;
use gstrtmpclient::rtmp::message::{Message, msg_type};
use gstrtmpclient::rtmp::securetoken::{self, SecureToken};
use gstrtmpclient::rtmp::session::{PublishConfig, Session, SessionState};
use gstrtmpclient::rtmp::url::RtmpUrl;
use gstrtmpclient::rtmp::{ClientOptions, Error, RtmpClient};

const LIMIT: Duration = Duration::from_secs(20);

/// Keys of every length class (short: zero-padded, 16, long: cut) and texts of 2 to 8 words
/// (XXTEA needs two words at least: one word cannot be decrypted, by any of the clients).
const VECTORS: &[(&str, &str)] = &[
    ("s3cr3t-k", "TokenOK!"),
    ("sixteen-byte-key", "abcDEF123456"),
    ("0123456789abcdefEXTRA", "wowza-securetoken-plaintext-0032"),
    ("k", "WXYZ1234"),
];

/// Where the scripted server puts the challenge.
#[derive(Clone, Copy, PartialEq)]
enum Place {
    /// The information object of `_result(connect)` (where Wowza puts it and rtmp2 looks).
    Info,
    /// The properties object (librtmp looks everywhere).
    Properties,
}

// --- the challenge: XXTEA encryption, written from the cipher's description ---------------

fn key_words(key: &str) -> [u32; 4] {
    let mut k = [0u8; 16];
    for (d, s) in k.iter_mut().zip(key.bytes()) {
        *d = s;
    }
    [0, 1, 2, 3].map(|i| u32::from_le_bytes(k[4 * i..4 * i + 4].try_into().unwrap()))
}

/// Corrected Block TEA encryption (Wheeler, Needham 1998) of `text` (words of 4 bytes)
/// as lowercase hex of its little-endian words.
fn challenge_for(key: &str, text: &str) -> String {
    assert!(
        text.len().is_multiple_of(4) && text.len() >= 8,
        "two whole words at least"
    );
    let k = key_words(key);
    let mut v: Vec<u32> = text
        .as_bytes()
        .chunks(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let n = v.len();
    let mut sum = 0u32;
    let mut z = v[n - 1];
    for _ in 0..6 + 52 / n {
        sum = sum.wrapping_add(0x9e37_79b9);
        let e = ((sum >> 2) & 3) as usize;
        for p in 0..n {
            let y = v[(p + 1) % n];
            let mx = (((z >> 5) ^ (y << 2)).wrapping_add((y >> 3) ^ (z << 4)))
                ^ ((sum ^ y).wrapping_add(k[(p & 3) ^ e] ^ z));
            v[p] = v[p].wrapping_add(mx);
            z = v[p];
        }
    }
    v.iter()
        .flat_map(|w| w.to_le_bytes())
        .map(|b| format!("{b:02x}"))
        .collect()
}

// --- the scripted server --------------------------------------------------------------------

/// The `_result(connect)` nginx-rtmp would send, with `secureToken` at `place`.
fn answer_connect(peer: &mut ServerPeer, txn: f64, challenge: &str, place: Place) {
    let token = (
        "secureToken".to_string(),
        Amf0Value::String(challenge.into()),
    );
    let mut props = vec![(
        "fmsVer".to_string(),
        Amf0Value::String("FMS/3,5,7,7009".into()),
    )];
    let mut info = vec![
        ("level".to_string(), Amf0Value::String("status".into())),
        (
            "code".to_string(),
            Amf0Value::String("NetConnection.Connect.Success".into()),
        ),
        (
            "description".to_string(),
            Amf0Value::String("Connection succeeded.".into()),
        ),
        ("objectEncoding".to_string(), Amf0Value::Number(0.0)),
    ];
    match place {
        Place::Info => info.push(token),
        Place::Properties => props.push(token),
    }
    peer.send(
        2,
        0,
        msg_type::WINDOW_ACK_SIZE,
        0,
        &2_500_000u32.to_be_bytes(),
    );
    peer.send_command(
        0,
        "_result",
        txn,
        Amf0Value::Object(props),
        vec![Amf0Value::Object(info)],
    );
}

/// One turn of the script: connect is answered with the challenge, the rest of the publish
/// flow as nginx-rtmp does. True once `publish` was answered.
fn serve_turn(peer: &mut ServerPeer, new: &[Message], challenge: &str, place: Place) -> bool {
    let mut rest = Vec::new();
    for m in new {
        match command_of(m) {
            Some(c) if c.name == "connect" => {
                answer_connect(peer, c.transaction_id, challenge, place)
            }
            _ => rest.push(m.clone()),
        }
    }
    peer.answer_publish_flow(&rest, &[])
}

/// A server for one connection that closes once the publish was answered (every client
/// answers the challenge before `createStream`, so by then the answer is in).
fn challenge_server(challenge: &str, place: Place) -> ScriptedTcpServer {
    challenge_server_then(challenge, place, || Next::Close)
}

/// The same server, doing `after()` once the publish was answered: the element test keeps
/// the connection open until the element closes it, so that a server hang-up cannot race
/// the state change that waits for publishing.
fn challenge_server_then(challenge: &str, place: Place, after: fn() -> Next) -> ScriptedTcpServer {
    let challenge = challenge.to_string();
    ScriptedTcpServer::start(LIMIT, move |turn| {
        if serve_turn(turn.peer, &turn.new, &challenge, place) {
            after()
        } else {
            Next::Continue
        }
    })
}

/// What the client sent as `secureTokenResponse`: (transaction id, command object, args).
struct Response {
    txn: f64,
    object: Amf0Value,
    args: Vec<Amf0Value>,
}

impl Response {
    fn text(&self) -> Option<&str> {
        self.args.first().and_then(Amf0Value::as_str)
    }
}

fn responses(peer: &ServerPeer) -> Vec<Response> {
    peer.received
        .iter()
        .filter_map(command_of)
        .filter(|c| c.name == "secureTokenResponse")
        .map(|c| Response {
            txn: c.transaction_id,
            object: c.command_object,
            args: c.args,
        })
        .collect()
}

// --- the published clients ------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Published {
    /// gst-plugins-bad rtmp2sink, property `secure-token`.
    Rtmp2sink,
    /// librtmp through gst-plugins-bad rtmpsink, option `token=` after the URL.
    Librtmp,
}

/// True when gst-launch-1.0 and both published clients' elements are here (skip or fail by
/// the usual rule otherwise).
fn published_clients_available() -> bool {
    if !require_binary("gst-launch-1.0") || !require_binary("gst-inspect-1.0") {
        return false;
    }
    for element in ["rtmp2sink", "rtmpsink", "fakesrc", "appsrc"] {
        let ok = Command::new("gst-inspect-1.0")
            .args(["--exists", element])
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            assert!(
                !is_ci(),
                "GStreamer element {element} missing (Debian gstreamer1.0-plugins-bad), and \
                 CI is set"
            );
            loud(&format!(
                "\n*** SKIPPING TEST: GStreamer element {element} not found \
                 (Debian package gstreamer1.0-plugins-bad).\n"
            ));
            return false;
        }
    }
    true
}

fn spawn_published(client: Published, url: &str, key: &str, log: &Path) -> Child {
    let args: Vec<String> = match client {
        // rtmp2sink connects as it starts, so a source that never pushes is enough.
        Published::Rtmp2sink => vec![
            "appsrc".into(),
            "!".into(),
            "rtmp2sink".into(),
            format!("location={url}"),
            format!("secure-token={key}"),
        ],
        // rtmpsink connects on its first buffer; librtmp reads options after the URL.
        Published::Librtmp => vec![
            "fakesrc".into(),
            "num-buffers=1".into(),
            "sizetype=fixed".into(),
            "sizemax=16".into(),
            "!".into(),
            "rtmpsink".into(),
            format!("location=\"{url} token={key}\""),
        ],
    };
    let out = std::fs::File::create(log).expect("log file");
    Command::new("gst-launch-1.0")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("log file"))
        .stderr(out)
        .spawn()
        .expect("gst-launch-1.0 starts")
}

/// Runs `client` against a challenge server; returns everything the server received.
fn run_published(client: Published, key: &str, challenge: &str, place: Place) -> ServerPeer {
    let dir = TempDir::new("secure-token");
    let log = dir.join("gst-launch.log");
    let server = challenge_server(challenge, place);
    let mut child = spawn_published(client, &server.url(), key, &log);
    let peer = server.join();
    terminate_child(&mut child, Duration::from_secs(2));
    assert!(
        command_names(&peer).iter().any(|n| n == "createStream"),
        "{client:?} did not get as far as createStream; server saw {:?}; its output:\n{}",
        command_names(&peer),
        read_lossy(&log)
    );
    peer
}

/// Our `RtmpClient` against a challenge server.
fn run_ours(key: Option<&str>, challenge: &str, place: Place) -> (Result<(), Error>, ServerPeer) {
    let server = challenge_server(challenge, place);
    let options = ClientOptions {
        secure_token: key.map(String::from),
        ..ClientOptions::default()
    };
    let result = RtmpClient::connect_with_options(&server.url(), &options).map(drop);
    (result, server.join())
}

// --- tests ----------------------------------------------------------------------------------

#[test]
fn answers_match_rtmp2sink_and_librtmp() {
    if !published_clients_available() {
        return;
    }
    for &(key, text) in VECTORS {
        let challenge = challenge_for(key, text);
        let mut answers = Vec::new();
        for client in [Published::Rtmp2sink, Published::Librtmp] {
            let peer = run_published(client, key, &challenge, Place::Info);
            let got = responses(&peer);
            assert_eq!(
                got.len(),
                1,
                "{client:?}: one secureTokenResponse ({key:?})"
            );
            let answer = got[0].text().map(String::from);
            // The challenge is an encryption of `text`: a published client answers `text`.
            assert_eq!(answer.as_deref(), Some(text), "{client:?} key {key:?}");
            answers.push((client, got.into_iter().next().unwrap()));
        }

        let (result, peer) = run_ours(Some(key), &challenge, Place::Info);
        result.expect("our publish succeeds after answering");
        let ours = responses(&peer);
        assert_eq!(ours.len(), 1, "one secureTokenResponse ({key:?})");
        for (client, theirs) in &answers {
            assert_eq!(
                ours[0].text(),
                theirs.text(),
                "answer vs {client:?} ({key:?})"
            );
            // The same command form: transaction 0, null command object, the text.
            assert_eq!(ours[0].txn, theirs.txn, "transaction id vs {client:?}");
            assert_eq!(
                ours[0].object, theirs.object,
                "command object vs {client:?}"
            );
            assert_eq!(
                ours[0].args.len(),
                theirs.args.len(),
                "arguments vs {client:?}"
            );
        }
        // Answered before the publish goes on, as librtmp does.
        let names = command_names(&peer);
        let at = |n: &str| names.iter().position(|c| c == n);
        assert!(
            at("secureTokenResponse") < at("createStream"),
            "order: {names:?}"
        );
        // The library function gives the same answer.
        assert_eq!(securetoken::answer(key, &challenge).as_deref(), Ok(text));
        assert_eq!(
            securetoken::answer(key, &challenge.to_uppercase()).as_deref(),
            Ok(text),
            "upper-case hex"
        );
    }
}

#[test]
fn challenge_in_the_properties_is_answered_as_librtmp_does() {
    if !published_clients_available() {
        return;
    }
    let (key, text) = VECTORS[2];
    let challenge = challenge_for(key, text);
    let librtmp = responses(&run_published(
        Published::Librtmp,
        key,
        &challenge,
        Place::Properties,
    ));
    let (result, peer) = run_ours(Some(key), &challenge, Place::Properties);
    result.expect("publish succeeds");
    let ours = responses(&peer);
    assert_eq!(
        librtmp.len(),
        1,
        "librtmp answers a challenge in the properties"
    );
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0].text(), librtmp[0].text());
    assert_eq!(ours[0].text(), Some(text));
}

#[test]
fn a_wrong_key_fails_with_a_sentence_that_names_the_setting() {
    let (key, text) = VECTORS[2];
    let challenge = challenge_for(key, text);
    let (result, peer) = run_ours(Some("not-the-right-key"), &challenge, Place::Info);
    let err = result.expect_err("a wrong key cannot answer");
    assert!(matches!(err, Error::AuthenticationFailed(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("secure-token"), "{msg}");
    assert!(
        !msg.contains("not-the-right-key") && !msg.contains(&challenge),
        "{msg}"
    );
    assert!(responses(&peer).is_empty(), "no garbled answer is sent");
    assert!(!command_names(&peer).iter().any(|n| n == "createStream"));
}

/// Drives a sans-IO session against the scripted peer until both sides are quiet.
fn pump(client: &mut Session, server: &mut ServerPeer, challenge: Option<&str>) {
    for _ in 0..100 {
        let mut batch = ChunkBatch::new();
        client.drain_transmit(&mut batch);
        let up = batch.to_vec();
        let msgs = server.feed(&up);
        match challenge {
            Some(c) => {
                serve_turn(server, &msgs, c, Place::Info);
            }
            None => {
                server.answer_publish_flow(&msgs, &[]);
            }
        }
        let down = server.take_output();
        if up.is_empty() && down.is_empty() {
            return;
        }
        if !down.is_empty() {
            client
                .handle_input(&down)
                .expect("session accepts the server");
        }
    }
    panic!("pump did not settle");
}

#[test]
fn without_a_key_the_challenge_is_noted_and_left_unanswered() {
    let url = RtmpUrl::parse("rtmp://127.0.0.1/live/key").unwrap();
    let (key, text) = VECTORS[0];
    let challenge = challenge_for(key, text);

    let mut client = Session::new(PublishConfig::new(url.clone()));
    let mut server = ServerPeer::new();
    pump(&mut client, &mut server, Some(&challenge));
    assert_eq!(client.state(), SessionState::Publishing);
    assert!(client.secure_token_challenged());
    assert!(responses(&server).is_empty());

    // With the key, the same exchange carries the answer.
    let config = PublishConfig {
        secure_token: Some(SecureToken::new(key)),
        ..PublishConfig::new(url.clone())
    };
    let mut client = Session::new(config);
    let mut server = ServerPeer::new();
    pump(&mut client, &mut server, Some(&challenge));
    assert_eq!(client.state(), SessionState::Publishing);
    assert_eq!(responses(&server)[0].text(), Some(text));

    // No challenge: nothing is noted, nothing sent, even with a key.
    let config = PublishConfig {
        secure_token: Some(SecureToken::new(key)),
        ..PublishConfig::new(url)
    };
    let mut client = Session::new(config);
    let mut server = ServerPeer::new();
    pump(&mut client, &mut server, None);
    assert_eq!(client.state(), SessionState::Publishing);
    assert!(!client.secure_token_challenged());
    assert!(responses(&server).is_empty());
}

/// The element's `secure-token` property reaches the same answer (it goes through
/// `ClientOptions::secure_token`).
#[cfg(feature = "gst")]
#[test]
fn element_property_answers_the_challenge() {
    use gst::prelude::*;
    common::gstsrc::init();
    let (key, text) = VECTORS[0];
    let challenge = challenge_for(key, text);
    let server = challenge_server_then(&challenge, Place::Info, || Next::DrainUntilClose);
    let pipeline = gst::parse::launch(&format!(
        "appsrc caps=video/x-h264,stream-format=avc,alignment=au ! \
         rtmpclientsink name=s async-connect=false location={}",
        server.url()
    ))
    .expect("pipeline");
    let pipeline = pipeline.downcast::<gst::Bin>().expect("bin");
    let sink = pipeline.by_name("s").expect("sink");
    sink.set_property("secure-token", key);
    // Write-only like `password`: the key can never be read back.
    let spec = sink.find_property("secure-token").expect("property");
    assert!(!spec.flags().contains(gst::glib::ParamFlags::READABLE));
    // With async-connect=false, PAUSED is reached only once publishing started.
    let result = pipeline.set_state(gst::State::Paused);
    pipeline.set_state(gst::State::Null).expect("to NULL");
    let peer = server.join();
    assert!(result.is_ok(), "publish failed: {result:?}");
    let got = responses(&peer);
    assert_eq!(got.len(), 1, "one secureTokenResponse");
    assert_eq!(got[0].text(), Some(text));
}
