#![cfg(feature = "gst")]
//! Secrets never leak: stream keys, query tokens and passwords must not appear in any log line
//! at any debug level, any error or any bus message. A child process runs real publishes
//! (rtmp and rtmps to nginx-rtmp, a refused connection, a rejected publish, Adobe
//! authentication with a right and a wrong password, a reset connection and the reconnect) with `GST_DEBUG=*:9`, and the parent scans
//! everything it printed.
//!
//! Pipelines are built in code and the secrets set as properties: `gst-launch-1.0` itself logs
//! its whole command line at debug level, which is GStreamer's parser, not this element.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::authserver::{PASSWORD, adobe_verdict, auth_server};
use common::tls::generate_test_ca_and_cert;
use common::{FaultProxy, NginxOptions, NginxRtmp, TempDir, TlsFront, free_port, wait_for};
use gst::prelude::*;

const KEY: &str = "SkEyZ7741";
const TOKEN: &str = "TkNq9902";
const URL_PASSWORD: &str = "UpWd3318";
const WRONG_PASSWORD: &str = "WrOnG5521";
const CHILD_ENV: &str = "RTMPCLIENT_SECRETS_CHILD";

/// Every secret the child uses; none may appear in its output.
fn secrets() -> [&'static str; 5] {
    [KEY, TOKEN, URL_PASSWORD, WRONG_PASSWORD, PASSWORD]
}

#[test]
fn secrets_never_appear_in_debug_logs_errors_or_messages() {
    // The same test, started again by itself as the child that publishes.
    if std::env::var_os(CHILD_ENV).is_some() {
        child_publishes();
        return;
    }
    let dir = TempDir::new("secrets");
    let Some((front, ca)) = tls_front(dir.path()) else {
        return;
    };
    let Some(nginx) = NginxRtmp::start(
        NginxOptions::default()
            .application("deny", "live on; deny publish all;")
            .tls(front),
    ) else {
        return;
    };
    let (auth, _) = auth_server(adobe_verdict);
    let (auth_wrong, _) = auth_server(adobe_verdict);
    let log = dir.join("child.log");
    let out = std::fs::File::create(&log).unwrap();
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "secrets_never_appear_in_debug_logs_errors_or_messages",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .env("GST_DEBUG", "*:9")
        .env("GST_DEBUG_NO_COLOR", "1")
        .env("CHILD_NGINX_PORT", nginx.port().to_string())
        .env("CHILD_TLS_PORT", nginx.tls_port().unwrap().to_string())
        .env("CHILD_CA", &ca)
        .env("CHILD_AUTH_PORT", auth.port.to_string())
        .env("CHILD_AUTH_WRONG_PORT", auth_wrong.port.to_string())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .status()
        .expect("run the child");
    let text = String::from_utf8_lossy(&std::fs::read(&log).unwrap()).into_owned();
    assert!(status.success(), "child failed: {}", tail(&text));

    // The child ran every scenario with the expected outcome.
    for expected in [
        "SCENARIO rtmp: ok",
        "SCENARIO rtmps: ok",
        "SCENARIO refused: error",
        "SCENARIO denied: error",
        "SCENARIO auth-ok: ok",
        "SCENARIO auth-wrong: error",
        "SCENARIO reconnect: ok",
    ] {
        assert!(
            text.contains(expected),
            "missing '{expected}' in child output"
        );
    }
    // Logging really happened at full verbosity and did mention the URLs, redacted.
    let lines = text.lines().count();
    assert!(lines > 10_000, "only {lines} lines of output");
    assert!(
        text.contains("/live/****"),
        "redacted URLs expected in the logs"
    );
    for secret in secrets() {
        let hits: Vec<&str> = text
            .lines()
            .filter(|l| l.contains(secret))
            .take(3)
            .collect();
        assert!(
            hits.is_empty(),
            "secret '{secret}' leaked:\n{}",
            hits.join("\n")
        );
    }
    eprintln!(
        "scanned {lines} lines ({} bytes): no secret found",
        text.len()
    );
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn tls_front(dir: &Path) -> Option<(TlsFront, PathBuf)> {
    let (ca, cert, key) = generate_test_ca_and_cert(&dir.join("pki"), &["localhost"], false)?;
    Some((
        TlsFront {
            cert_pem_path: cert,
            key_pem_path: key,
        },
        ca,
    ))
}

/// The child's part: every scenario with the secrets set, at `GST_DEBUG=*:9`.
fn child_publishes() {
    gst::init().unwrap();
    gstrtmpclient::plugin_register_static().unwrap();
    let env = |k: &str| std::env::var(k).unwrap();
    let port = env("CHILD_NGINX_PORT");
    type Scenario = (&'static str, String, Vec<(&'static str, String)>);
    let scenarios: Vec<Scenario> = vec![
        (
            "rtmp",
            format!("rtmp://user:{URL_PASSWORD}@127.0.0.1:{port}/live/{KEY}?token={TOKEN}"),
            vec![],
        ),
        (
            "rtmps",
            format!("rtmps://localhost:{}/live/{KEY}2", env("CHILD_TLS_PORT")),
            vec![("tls-ca-file", env("CHILD_CA"))],
        ),
        (
            "refused",
            format!("rtmp://127.0.0.1:{}/live/{KEY}?token={TOKEN}", free_port()),
            vec![],
        ),
        (
            "denied",
            format!("rtmp://127.0.0.1:{port}/deny/{KEY}"),
            vec![],
        ),
        (
            "auth-ok",
            format!("rtmp://127.0.0.1:{}/live/{KEY}", env("CHILD_AUTH_PORT")),
            vec![("username", "bob".into()), ("password", PASSWORD.into())],
        ),
        (
            "auth-wrong",
            format!(
                "rtmp://127.0.0.1:{}/live/{KEY}",
                env("CHILD_AUTH_WRONG_PORT")
            ),
            vec![
                ("username", "bob".into()),
                ("password", WRONG_PASSWORD.into()),
            ],
        ),
    ];
    for (name, location, props) in scenarios {
        let outcome = match publish(&location, &props, false, |_| {}) {
            Ok(_) => "ok".to_string(),
            Err(e) => format!("error: {e}"),
        };
        println!("SCENARIO {name}: {outcome}");
    }

    // Reconnect: the connection is reset once the publish runs; the element reconnects.
    let upstream = format!("127.0.0.1:{port}").parse().unwrap();
    let proxy = FaultProxy::start(upstream);
    let location = format!(
        "rtmp://user:{URL_PASSWORD}@127.0.0.1:{}/live/{KEY}3?token={TOKEN}",
        proxy.port()
    );
    let mut reset = false;
    let outcome = publish(&location, &[], true, |s| {
        if s.name() == "rtmp-publishing" && !reset {
            reset = true;
            // Once media flows (the element reconnects only a publish that carried media).
            let sent = proxy.bytes_up();
            wait_for(Duration::from_secs(3), || proxy.bytes_up() > sent + 20_000);
            proxy.reset_all();
        }
    });
    let outcome = match outcome {
        Ok(names) if names.iter().filter(|n| *n == "rtmp-publishing").count() >= 2 => {
            "ok".to_string()
        }
        Ok(names) => format!("no reconnect: {names:?}"),
        Err(e) => format!("error: {e}"),
    };
    println!("SCENARIO reconnect: {outcome}");
}

/// Publishes A/V (one second, or three seconds live) and returns the names of the element
/// messages, or the bus error text (messages are printed, so they are scanned too).
fn publish(
    location: &str,
    props: &[(&str, String)],
    live: bool,
    mut on_message: impl FnMut(&gst::StructureRef),
) -> Result<Vec<String>, String> {
    let (frames, live) = if live { (90, "true") } else { (30, "false") };
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc is-live={live} num-buffers={frames} ! video/x-raw,width=320,height=240,framerate=30/1 \
         ! x264enc tune=zerolatency key-int-max=15 ! rtmpclientsink name=s timeout=5 \
         audiotestsrc is-live={live} num-buffers={} ! avenc_aac ! s.audio",
        frames * 4 / 3
    ))
    .map_err(|e| e.to_string())?
    .downcast::<gst::Pipeline>()
    .map_err(|_| "not a pipeline".to_string())?;
    let sink = pipeline.by_name("s").ok_or("no sink")?;
    sink.set_property("location", location);
    for (k, v) in props {
        sink.set_property(k, v);
    }
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| e.to_string())?;
    let bus = pipeline.bus().ok_or("no bus")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut result = Err("no EOS within 30 s".to_string());
    let mut names = Vec::new();
    while Instant::now() < deadline {
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => {
                result = Ok(std::mem::take(&mut names));
                break;
            }
            gst::MessageView::Error(e) => {
                result = Err(format!("{} ({:?})", e.error(), e.debug()));
                break;
            }
            gst::MessageView::Element(e) => {
                if let Some(s) = e.structure() {
                    println!("bus: {s}");
                    names.push(s.name().to_string());
                    on_message(s);
                }
            }
            _ => {}
        }
    }
    println!("result: {result:?}");
    let _ = pipeline.set_state(gst::State::Null);
    result
}
