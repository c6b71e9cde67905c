//! `rtmps://` through `RtmpClient`: a real TLS terminator (nginx `stream` module with a
//! certificate made at test time) in front of the real nginx-rtmp, a full A/V publish compared
//! frame by frame, and each certificate failure ending in a clear error within the timeout with
//! no media reaching the server.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::flvpublish::{assert_same_frames, publish, source};
use common::tls::tls_server;
use common::{NginxRtmp, TempDir, read_flv};
use gstrtmpclient::rtmp::tls::{CHECK_ALL, CHECK_UNKNOWN_CA, TlsOptions};
use gstrtmpclient::rtmp::{ClientOptions, Error, RtmpClient};

const TIMEOUT: Duration = Duration::from_secs(3);

fn options(ca: Option<PathBuf>, checks: u32) -> ClientOptions {
    ClientOptions {
        timeout: TIMEOUT,
        tls: TlsOptions {
            ca_file: ca,
            checks,
            ..TlsOptions::default()
        },
        ..ClientOptions::default()
    }
}

/// Connecting fails with the expected error, quickly, and nothing was published.
fn assert_refused(nginx: &NginxRtmp, url: &str, opts: &ClientOptions, expect: &str) -> Error {
    let start = Instant::now();
    let err = RtmpClient::connect_with_options(url, opts).expect_err("connect must fail");
    let took = start.elapsed();
    assert!(
        took < TIMEOUT + Duration::from_secs(1),
        "{expect}: took {took:?}"
    );
    assert!(
        err.to_string().contains(expect),
        "expected '{expect}' in: {err}"
    );
    assert!(
        !nginx.error_log().contains("publish: name="),
        "no publish may reach the server"
    );
    err
}

#[test]
fn publishes_over_rtmps_with_a_private_ca() {
    let dir = TempDir::new("tls-ok");
    let Some(src) = source() else { return };
    let Some((nginx, ca)) = tls_server(&dir, &["localhost", "127.0.0.1"], false) else {
        return;
    };
    let url = nginx.tls_url("localhost", "live", "tlskey");
    publish(&url, &src, &options(Some(ca), CHECK_ALL));
    let rec = nginx
        .wait_recording("tlskey", Duration::from_secs(15))
        .expect("recording over TLS");
    assert_same_frames(&src, &read_flv(&rec).unwrap(), "rtmps");
}

#[test]
fn unknown_ca_is_refused() {
    let dir = TempDir::new("tls-unknown-ca");
    let Some((nginx, _ca)) = tls_server(&dir, &["localhost"], false) else {
        return;
    };
    let url = nginx.tls_url("localhost", "live", "key");
    let err = assert_refused(&nginx, &url, &options(None, CHECK_ALL), "unknown CA");
    assert!(matches!(err, Error::Tls(_)));
}

#[test]
fn unknown_ca_is_accepted_only_when_relaxed_explicitly() {
    let dir = TempDir::new("tls-relaxed");
    let Some((nginx, _ca)) = tls_server(&dir, &["localhost"], false) else {
        return;
    };
    let url = nginx.tls_url("localhost", "live", "relaxed");
    let client =
        RtmpClient::connect_with_options(&url, &options(None, CHECK_ALL & !CHECK_UNKNOWN_CA))
            .expect("relaxed CA check connects");
    client.close().unwrap();
    // The name is still checked when only the CA check is relaxed.
    let url = nginx.tls_url("127.0.0.1", "live", "relaxed2");
    let err = RtmpClient::connect_with_options(&url, &options(None, CHECK_ALL & !CHECK_UNKNOWN_CA))
        .expect_err("wrong name must still fail");
    assert!(
        err.to_string().contains("not valid for the host name"),
        "{err}"
    );
}

#[test]
fn wrong_host_name_is_refused() {
    let dir = TempDir::new("tls-wrong-host");
    let Some((nginx, ca)) = tls_server(&dir, &["other.example"], false) else {
        return;
    };
    let url = nginx.tls_url("localhost", "live", "key");
    assert_refused(
        &nginx,
        &url,
        &options(Some(ca), CHECK_ALL),
        "not valid for the host name localhost",
    );
}

#[test]
fn expired_certificate_is_refused() {
    let dir = TempDir::new("tls-expired");
    let Some((nginx, ca)) = tls_server(&dir, &["localhost"], true) else {
        return;
    };
    let url = nginx.tls_url("localhost", "live", "key");
    assert_refused(&nginx, &url, &options(Some(ca), CHECK_ALL), "has expired");
}

#[test]
fn plain_rtmp_server_behind_rtmps_url_fails_within_timeout() {
    let Some(nginx) = NginxRtmp::start_default() else {
        return;
    };
    let url = format!("rtmps://127.0.0.1:{}/live/key", nginx.port());
    let err = assert_refused(
        &nginx,
        &url,
        &options(None, CHECK_ALL & !CHECK_UNKNOWN_CA),
        "TLS",
    );
    assert!(
        matches!(err, Error::TimedOut { .. } | Error::Tls(_)),
        "{err:?}"
    );
}
