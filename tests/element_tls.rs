#![cfg(feature = "gst")]
//! `rtmpclientsink` over `rtmps://`: a real TLS terminator (nginx `stream` module, certificate
//! made at test time) in front of the real nginx-rtmp. A full A/V publish is verified frame by
//! frame; each certificate problem ends with a clear error within `timeout`, and no publish
//! reaches the server.

mod common;

use std::time::{Duration, Instant};

use common::gstrun::{pipeline, run_to_eos};
use common::gstsrc::demux;
use common::tls::{self_signed_ca_true_cert, tls_server, tls_server_with, tls_server_with_cert};
use common::{NginxOptions, NginxRtmp, TempDir, media, read_flv};
use gst::prelude::*;

const TIMEOUT_S: u64 = 3;

/// Runs `launch` until EOS or an error; returns the error text (None on EOS).
fn run(launch: &str, limit: Duration) -> (Option<String>, Duration) {
    let p = pipeline(launch);
    let start = Instant::now();
    p.set_state(gst::State::Playing).unwrap();
    let msg = p
        .bus()
        .unwrap()
        .timed_pop_filtered(
            gst::ClockTime::from_nseconds(limit.as_nanos() as u64),
            &[gst::MessageType::Error, gst::MessageType::Eos],
        )
        .unwrap_or_else(|| panic!("neither EOS nor error within {limit:?}"));
    let took = start.elapsed();
    p.set_state(gst::State::Null).unwrap();
    match msg.view() {
        gst::MessageView::Error(e) => {
            assert!(
                e.error().matches(gst::ResourceError::OpenWrite),
                "{}",
                e.error()
            );
            (Some(e.error().message().to_string()), took)
        }
        _ => (None, took),
    }
}

/// Checks the recording of `stream` against the demuxer's frames of `mkv`, frame by frame.
fn assert_recorded_as_demuxed(nginx: &NginxRtmp, stream: &str, mkv: &std::path::Path) {
    let (src_v, src_a) = demux(mkv);
    let rec = nginx
        .wait_recording(stream, Duration::from_secs(20))
        .expect("recording over TLS");
    let rec = read_flv(&rec).unwrap();
    assert!(!rec.truncated, "recording is truncated");
    let (v, a) = (rec.video_frames(), rec.audio_frames());
    assert_eq!(v.len(), src_v.len(), "video frames");
    assert_eq!(a.len(), src_a.len(), "audio frames");
    let offset = v[0].pts() - src_v[0].pts_ms;
    for (i, (t, s)) in v.iter().zip(&src_v).enumerate() {
        assert!(t.data[5..] == s.data[..], "video frame {i} differs");
        assert_eq!(t.pts() - offset, s.pts_ms, "PTS of video frame {i}");
        assert_eq!(t.is_keyframe(), s.key, "keyframe flag of frame {i}");
    }
    for (i, (t, s)) in a.iter().zip(&src_a).enumerate() {
        assert!(t.data[2..] == s.data[..], "audio frame {i} differs");
    }
}

/// 720p noise through x264enc at a fixed low quantizer: every access unit is over 1 MB (16+
/// times rustls' 64 KiB output buffer), with AAC audio. `aud=false` keeps the element's
/// access-unit-delimiter handling out of this transport test.
fn big_frames_mkv(dir: &TempDir) -> std::path::PathBuf {
    let path = dir.join("big-frames.mkv");
    let launch = format!(
        "videotestsrc pattern=snow num-buffers=12 \
         ! video/x-raw,width=1280,height=720,framerate=30/1 \
         ! x264enc speed-preset=ultrafast pass=quant quantizer=12 key-int-max=6 aud=false \
         ! h264parse ! matroskamux name=m ! filesink location={} \
         audiotestsrc num-buffers=18 samplesperbuffer=1024 \
         ! audio/x-raw,rate=44100,channels=2 ! avenc_aac ! aacparse ! m.",
        path.display()
    );
    run_to_eos(&launch, Duration::from_secs(60));
    path
}

#[test]
fn publishes_access_units_over_one_megabyte_over_rtmps_frame_by_frame() {
    let dir = TempDir::new("element-tls-big");
    // nginx-rtmp drops messages over `max_message` (1 MB by default).
    let opts = NginxOptions::default().server_directive("max_message 8M;");
    let Some((nginx, ca)) = tls_server_with(&dir, &["localhost"], opts) else {
        return;
    };
    let mkv = big_frames_mkv(&dir);
    let (src_v, _) = demux(&mkv);
    let smallest = src_v.iter().map(|f| f.data.len()).min().unwrap_or(0);
    assert!(
        src_v.len() >= 10 && smallest >= 1_000_000,
        "{} access units, smallest {smallest} bytes: the media must have frames over 1 MB",
        src_v.len()
    );
    let (err, _) = run(
        &format!(
            "filesrc location={} ! matroskademux name=d \
             d.video_0 ! queue ! rtmpclientsink name=s sync=false location={} tls-ca-file={} \
             d.audio_0 ! queue ! s.audio",
            mkv.display(),
            nginx.tls_url("localhost", "live", "tlsbig"),
            ca.display()
        ),
        Duration::from_secs(60),
    );
    assert_eq!(err, None);
    assert_recorded_as_demuxed(&nginx, "tlsbig", &mkv);
}

#[test]
fn publishes_matroska_av_over_rtmps_frame_by_frame() {
    let dir = TempDir::new("element-tls-av");
    let Some((nginx, ca)) = tls_server(&dir, &["localhost"], false) else {
        return;
    };
    let Some(mkv) = media::h264_aac_mkv(4, 320, 240, 500, 2) else {
        return;
    };
    let (err, _) = run(
        &format!(
            "filesrc location={} ! matroskademux name=d \
             d.video_0 ! queue ! rtmpclientsink name=s sync=false location={} tls-ca-file={} \
             d.audio_0 ! queue ! s.audio",
            mkv.display(),
            nginx.tls_url("localhost", "live", "tlsav"),
            ca.display()
        ),
        Duration::from_secs(60),
    );
    assert_eq!(err, None);
    assert_recorded_as_demuxed(&nginx, "tlsav", &mkv);
}

/// A live source into `location`: the error must come within `timeout` + 1 s, say `expect`,
/// and nothing may be published.
fn assert_refused(nginx: &NginxRtmp, location: &str, extra: &str, expect: &str) {
    let (err, took) = run(
        &format!(
            "videotestsrc is-live=true ! video/x-raw,width=160,height=120 ! x264enc tune=zerolatency \
             ! rtmpclientsink timeout={TIMEOUT_S} location={location} {extra}"
        ),
        Duration::from_secs(TIMEOUT_S + 5),
    );
    let err = err.expect("an error, not EOS");
    assert!(err.contains(expect), "expected '{expect}' in: {err}");
    assert!(
        took < Duration::from_secs(TIMEOUT_S + 1),
        "{expect}: took {took:?}"
    );
    assert!(
        !nginx.error_log().contains("publish: name="),
        "no publish may reach the server"
    );
}

#[test]
fn unknown_ca_wrong_host_and_expired_certificate_are_refused() {
    let dir = TempDir::new("element-tls-bad");
    let Some((nginx, ca)) = tls_server(&dir, &["localhost"], false) else {
        return;
    };
    let url = nginx.tls_url("localhost", "live", "key");
    assert_refused(&nginx, &url, "", "unknown CA");
    let wrong_host = nginx.tls_url("127.0.0.1", "live", "key");
    let with_ca = format!("tls-ca-file={}", ca.display());
    assert_refused(&nginx, &wrong_host, &with_ca, "not valid for the host name");

    let dir2 = TempDir::new("element-tls-expired");
    let Some((expired, ca2)) = tls_server(&dir2, &["localhost"], true) else {
        return;
    };
    assert_refused(
        &expired,
        &expired.tls_url("localhost", "live", "key"),
        &format!("tls-ca-file={}", ca2.display()),
        "has expired",
    );
}

#[test]
fn plain_rtmp_server_behind_an_rtmps_url_fails_within_timeout() {
    let Some(nginx) = NginxRtmp::start_default() else {
        return;
    };
    let url = format!("rtmps://127.0.0.1:{}/live/key", nginx.port());
    assert_refused(&nginx, &url, "tls-validation-flags=0", "TLS");
}

/// openssl's default self-signed certificate (CA:TRUE) as `tls-ca-file`: the bus error says,
/// in plain words, that a CA certificate is used as the server certificate, how to make a
/// proper one, and which flag relaxes the check; and that flag really lets the publish through.
#[test]
fn self_signed_ca_certificate_error_says_what_to_do() {
    let dir = TempDir::new("element-tls-ca-true");
    let Some((cert, key)) = self_signed_ca_true_cert(&dir.join("pki"), "localhost") else {
        return;
    };
    let Some(nginx) = tls_server_with_cert(&cert, &key) else {
        return;
    };
    let url = nginx.tls_url("localhost", "live", "catrue");
    let with_ca = format!("tls-ca-file={}", cert.display());
    let (err, _) = run(
        &format!(
            "videotestsrc is-live=true ! video/x-raw,width=160,height=120 ! x264enc tune=zerolatency \
             ! rtmpclientsink timeout={TIMEOUT_S} location={url} {with_ca}"
        ),
        Duration::from_secs(TIMEOUT_S + 5),
    );
    let err = err.expect("an error, not EOS");
    for expect in [
        "is a CA certificate",
        "used as the server certificate",
        "CA:FALSE",
        "tls-validation-flags",
        "64",
    ] {
        assert!(err.contains(expect), "expected '{expect}' in: {err}");
    }
    for debug in ["Other(", "OtherError", "CaUsedAsEndEntity", "{", "::"] {
        assert!(!err.contains(debug), "Debug text '{debug}' in: {err}");
    }
    assert!(
        !nginx.error_log().contains("publish: name="),
        "no publish may reach the server"
    );
    // The relaxation the text names (all checks but bit 64) publishes.
    let (err, _) = run(
        &format!(
            "videotestsrc num-buffers=30 ! video/x-raw,width=160,height=120,framerate=30/1 \
             ! x264enc tune=zerolatency ! rtmpclientsink timeout={TIMEOUT_S} location={url} \
             {with_ca} tls-validation-flags=31"
        ),
        Duration::from_secs(30),
    );
    assert_eq!(
        err, None,
        "tls-validation-flags=31 must accept the certificate"
    );
    assert!(
        nginx.wait_log("publish: name='catrue'", Duration::from_secs(5)),
        "the relaxed publish reached the server"
    );
}
