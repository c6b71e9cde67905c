//! `rtmpclientsink` over `rtmps://`: a real TLS terminator (nginx `stream` module, certificate
//! made at test time) in front of the real nginx-rtmp. A full A/V publish is verified frame by
//! frame; each certificate problem ends with a clear error within `timeout`, and no publish
//! reaches the server.

mod common;

use std::time::{Duration, Instant};

use common::gstsrc::{demux, init};
use common::tls::tls_server;
use common::{NginxRtmp, TempDir, media, read_flv};
use gst::prelude::*;

const TIMEOUT_S: u64 = 3;

/// Runs `launch` until EOS or an error; returns the error text (None on EOS).
fn run(launch: &str, limit: Duration) -> (Option<String>, Duration) {
    init();
    let p = gst::parse::launch(launch)
        .unwrap_or_else(|e| panic!("{launch}: {e}"))
        .downcast::<gst::Pipeline>()
        .unwrap();
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

#[test]
fn publishes_matroska_av_over_rtmps_frame_by_frame() {
    let dir = TempDir::new("element-tls-av");
    let Some((nginx, ca)) = tls_server(&dir, &["localhost"], false) else {
        return;
    };
    let Some(mkv) = media::h264_aac_mkv(4, 320, 240, 500, 2) else {
        return;
    };
    let (src_v, src_a) = demux(&mkv);
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
    let rec = nginx
        .wait_recording("tlsav", Duration::from_secs(15))
        .expect("recording over TLS");
    let rec = read_flv(&rec).unwrap();
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
