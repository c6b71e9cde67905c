//! `RtmpClient` against real servers: an H.264 stream with B-frames plus AAC is published tag by
//! tag to nginx-rtmp (`record all`) and to `ffmpeg -listen 1`, and the recordings must hold the
//! same payloads, timestamps and composition times, in order, with nothing missing.

mod common;

use std::path::Path;
use std::time::Duration;

use common::flvpublish::{assert_same_frames, publish, source};
use common::{FfmpegListen, NginxRtmp, TempDir, read_flv};
use gstrtmpclient::rtmp::{ClientOptions, ConnectCapabilities, RtmpClient};

const RECORD_TIMEOUT: Duration = Duration::from_secs(15);

#[test]
fn publishes_b_frames_and_aac_to_nginx_byte_identical() {
    let Some(src) = source() else { return };
    let Some(nginx) = NginxRtmp::start_default() else {
        return;
    };
    publish(&nginx.url("live", "lib"), &src, &ClientOptions::default());
    let rec = nginx
        .wait_recording("lib", RECORD_TIMEOUT)
        .expect("nginx wrote the recording");
    assert_same_frames(&src, &read_flv(&rec).unwrap(), "nginx");
}

#[test]
fn publishes_with_enhanced_capabilities_to_a_legacy_server() {
    // nginx-rtmp does not know E-RTMP: the extra connect fields must not disturb it, and it
    // reports no capabilities back.
    let Some(nginx) = NginxRtmp::start_default() else {
        return;
    };
    let url = nginx.url("live", "caps");
    let client = RtmpClient::connect_with_capabilities(
        &url,
        "live",
        &ConnectCapabilities::publisher_default(),
    )
    .expect("connect with capabilities");
    assert!(client.server_capabilities().is_empty());
    assert_eq!(
        client.tc_url(),
        format!("rtmp://127.0.0.1:{}/live", nginx.port())
    );
    client.close().unwrap();
}

#[test]
fn publishes_b_frames_and_aac_to_ffmpeg_listen() {
    let Some(src) = source() else { return };
    let dir = TempDir::new("client-ffmpeg");
    let Some(mut server) = FfmpegListen::start(dir.path()) else {
        return;
    };
    publish(&server.url(), &src, &ClientOptions::default());
    let out = server
        .wait_output(RECORD_TIMEOUT)
        .unwrap_or_else(|| panic!("ffmpeg wrote no output: {}", server.log()));
    let rec = read_flv(Path::new(&out)).unwrap();
    assert_same_frames(&src, &rec, "ffmpeg");
}
