//! `rtmps://` through `RtmpClient`: a real TLS terminator (nginx `stream` module with a
//! certificate made at test time) in front of the real nginx-rtmp, a full A/V publish compared
//! frame by frame, and each certificate failure ending in a clear error within the timeout with
//! no media reaching the server.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::flvpublish::{assert_same_frames, publish, source};
use common::tls::{
    generate_test_ca_and_cert, self_signed_ca_true_cert, tls_server, tls_server_with,
    tls_server_with_cert,
};
use common::{FaultProxy, NginxOptions, NginxRtmp, TempDir, read_flv};
use gstrtmpclient::rtmp::tls::{CHECK_ALL, CHECK_GENERIC_ERROR, CHECK_UNKNOWN_CA, TlsOptions};
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

/// Pseudo-random bytes (xorshift), different for each `seed`: a corrupted, reordered or
/// truncated frame cannot compare equal by accident.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// One AVC access unit of `len` bytes: a single length-prefixed NAL unit (IDR or non-IDR slice
/// header byte) filled with noise.
fn big_access_unit(seed: u64, len: usize, key: bool) -> Vec<u8> {
    let nal_len = len - 4;
    let mut au = Vec::with_capacity(len);
    au.extend_from_slice(&(nal_len as u32).to_be_bytes());
    au.push(if key { 0x65 } else { 0x41 });
    au.extend_from_slice(&noise(seed, nal_len - 1));
    au
}

#[test]
fn publishes_video_messages_over_one_megabyte_over_rtmps() {
    let dir = TempDir::new("tls-big");
    let Some(src) = source() else { return };
    // nginx-rtmp drops messages over `max_message` (1 MB by default).
    let opts = NginxOptions::default().server_directive("max_message 8M;");
    let Some((nginx, ca)) = tls_server_with(&dir, &["localhost"], opts) else {
        return;
    };
    let avcc = src
        .tags
        .iter()
        .find(|t| t.is_avc_sequence_header())
        .and_then(|t| t.video_payload())
        .expect("source avcC")
        .to_vec();
    let audio: Vec<Vec<u8>> = src
        .tags
        .iter()
        .filter(|t| t.is_aac_raw())
        .take(12)
        .map(|t| t.audio_payload().unwrap().to_vec())
        .collect();
    // 1.0 to 1.6 MB: each is 16+ times rustls' 64 KiB output buffer.
    let frames: Vec<(u32, bool, Vec<u8>)> = (0..12u32)
        .map(|i| {
            let key = i % 4 == 0;
            let len = 1_000_000 + (i as usize % 7) * 100_003;
            (i * 33, key, big_access_unit(u64::from(i) + 1, len, key))
        })
        .collect();
    let url = nginx.tls_url("localhost", "live", "tlsbig");
    let mut client = RtmpClient::connect_with_options(&url, &options(Some(ca), CHECK_ALL))
        .expect("connect over TLS");
    client.send_video_sequence_header(&avcc).unwrap();
    let asc = src
        .tags
        .iter()
        .find(|t| t.is_aac_sequence_header())
        .and_then(|t| t.audio_payload())
        .expect("source AudioSpecificConfig")
        .to_vec();
    client.send_audio_sequence_header(&asc).unwrap();
    for ((ts, key, au), aac) in frames.iter().zip(&audio) {
        client
            .send_video(*ts, *key, au)
            .unwrap_or_else(|e| panic!("video message of {} bytes at {ts} ms: {e}", au.len()));
        client.send_audio(*ts, aac).expect("audio between frames");
    }
    client.close().expect("clean close");

    let rec = nginx
        .wait_recording("tlsbig", Duration::from_secs(20))
        .expect("recording over TLS");
    let rec = read_flv(&rec).unwrap();
    assert!(!rec.truncated, "recording is truncated");
    let v = rec.video_frames();
    assert_eq!(
        v.len(),
        frames.len(),
        "video frames recorded (timestamps {:?})",
        v.iter().map(|t| t.timestamp).collect::<Vec<_>>()
    );
    for (i, (t, (ts, key, au))) in v.iter().zip(&frames).enumerate() {
        assert_eq!(t.timestamp, *ts, "timestamp of video frame {i}");
        assert_eq!(t.is_keyframe(), *key, "keyframe flag of video frame {i}");
        assert!(
            t.video_payload() == Some(au.as_slice()),
            "video frame {i} ({} bytes) differs from what was sent",
            au.len()
        );
    }
    let a = rec.audio_frames();
    assert_eq!(a.len(), audio.len(), "audio frames recorded");
    for (i, (t, aac)) in a.iter().zip(&audio).enumerate() {
        assert!(
            t.audio_payload() == Some(aac.as_slice()),
            "audio frame {i} differs"
        );
    }
}

/// openssl's default self-signed certificate (CA:TRUE) given as the CA file: the error says
/// what is wrong and what to do, in plain words, and the relaxation it names really works.
#[test]
fn self_signed_ca_certificate_as_server_certificate_is_explained() {
    let dir = TempDir::new("tls-ca-true");
    let Some((cert, key)) = self_signed_ca_true_cert(&dir.join("pki"), "localhost") else {
        return;
    };
    let Some(nginx) = tls_server_with_cert(&cert, &key) else {
        return;
    };
    let url = nginx.tls_url("localhost", "live", "catrue");
    let err = assert_refused(
        &nginx,
        &url,
        &options(Some(cert.clone()), CHECK_ALL),
        "is a CA certificate",
    );
    let text = err.to_string();
    for expect in [
        "used as the server certificate",
        "CA:FALSE",
        "tls-validation-flags",
        "64",
    ] {
        assert!(text.contains(expect), "expected '{expect}' in: {text}");
    }
    for debug in ["Other(", "OtherError", "CaUsedAsEndEntity", "{", "::"] {
        assert!(!text.contains(debug), "Debug text '{debug}' in: {text}");
    }
    // The flag the text names is the one that lets this certificate through.
    let client = RtmpClient::connect_with_options(
        &url,
        &options(Some(cert), CHECK_ALL & !CHECK_GENERIC_ERROR),
    )
    .expect("clearing the 'other' check accepts the CA:TRUE certificate");
    client.close().unwrap();
    // Relaxing that check does not relax trust: trusting another CA, the same certificate is
    // refused as not signed by a trusted authority.
    let (other_ca, _, _) =
        generate_test_ca_and_cert(&dir.join("other-pki"), &["localhost"], false).unwrap();
    let Err(err) = RtmpClient::connect_with_options(
        &url,
        &options(Some(other_ca), CHECK_ALL & !CHECK_GENERIC_ERROR),
    ) else {
        panic!("an untrusted CA:TRUE certificate must still be refused");
    };
    assert!(err.to_string().contains("unknown CA"), "{err}");
}

/// A server that stops reading in the middle of a TLS publish: the write that cannot move ends
/// with a timeout error once nothing moved for `timeout`, instead of hanging or failing at once.
#[test]
fn stalled_tls_write_times_out() {
    let dir = TempDir::new("tls-stall");
    let opts = NginxOptions::default().server_directive("max_message 8M;");
    let Some((nginx, ca)) = tls_server_with(&dir, &["localhost"], opts) else {
        return;
    };
    let tls_port = nginx.tls_port().expect("TLS front end");
    let proxy = FaultProxy::start(SocketAddr::from(([127, 0, 0, 1], tls_port)));
    let url = format!("rtmps://localhost:{}/live/stall", proxy.port());
    let timeout = Duration::from_secs(1);
    let mut client = RtmpClient::connect_with_options(
        &url,
        &ClientOptions {
            timeout,
            ..options(Some(ca), CHECK_ALL)
        },
    )
    .expect("connect over TLS");
    let frame = big_access_unit(9, 1_500_000, true);
    client.send_video(0, true, &frame).expect("first frame");
    proxy.stall_reads_from_client();
    // The socket buffers on the way take some frames first; 64 frames (96 MB) exceed them.
    let mut last_ok = Instant::now();
    let mut result = Ok(());
    for i in 1..64u32 {
        result = client.send_video(i * 33, true, &frame);
        if result.is_err() {
            break;
        }
        last_ok = Instant::now();
    }
    let blocked = last_ok.elapsed();
    let err = result.expect_err("a stalled server must make a write fail");
    assert!(matches!(err, Error::TimedOut { .. }), "{err}");
    assert!(err.to_string().contains("sending to the server"), "{err}");
    // The clock runs from the last byte that moved, and a receive queue that is not read still
    // takes a trickle for a while (the kernel compacts it), so allow some seconds beyond.
    assert!(
        blocked >= timeout && blocked < timeout + Duration::from_secs(10),
        "the stalled write failed after {blocked:?} (timeout {timeout:?})"
    );
}
