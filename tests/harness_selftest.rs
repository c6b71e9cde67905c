//! Proves the shared test harness (tests/common) against the real tools: nginx-rtmp
//! records exactly what ffmpeg publishes, the ffmpeg listen server works, the TLS front
//! end and test certificates work, nginx restarts on the same port, and the FLV reader
//! agrees with ffprobe.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::ffmpeg::publish_file;
use common::flv::{self, FlvFile, parse_avc_config, split_nalus};
use common::{FfmpegListen, NginxOptions, NginxRtmp, TempDir, TlsFront, ffprobe, media};

const PUBLISH_TIMEOUT: Duration = Duration::from_secs(30);
const RECORD_TIMEOUT: Duration = Duration::from_secs(10);

fn small_flv() -> Option<std::path::PathBuf> {
    media::h264_aac_flv(3, 320, 240, 2)
}

/// Asserts that two FLV files carry the same audio/video tags (bodies and timestamps),
/// ignoring repeated identical sequence headers (nginx-rtmp's recorder repeats the AAC
/// one) and script tags (nginx does not record onMetaData).
fn assert_same_av_tags(src: &FlvFile, rec: &FlvFile) {
    assert!(!rec.truncated, "recording is truncated");
    assert_eq!(
        src.video_frames().len(),
        rec.video_frames().len(),
        "video frame count"
    );
    assert_eq!(
        src.audio_frames().len(),
        rec.audio_frames().len(),
        "audio frame count"
    );
    fn split(f: &FlvFile, ty: u8) -> Vec<&flv::FlvTag> {
        f.av_tags_dedup()
            .into_iter()
            .filter(|t| t.tag_type == ty)
            .collect()
    }
    let (sv, rv) = (split(src, 9), split(rec, 9));
    let (sa, ra) = (split(src, 8), split(rec, 8));
    assert_eq!(sv.len(), rv.len(), "video tag count");
    assert_eq!(sa.len(), ra.len(), "audio tag count");
    for (i, (s, r)) in sv.iter().zip(&rv).chain(sa.iter().zip(&ra)).enumerate() {
        assert_eq!(s.tag_type, r.tag_type, "tag #{i} type");
        assert_eq!(s.timestamp, r.timestamp, "tag #{i} timestamp");
        assert!(
            s.data == r.data,
            "tag #{i} body differs ({} vs {} bytes)",
            s.data.len(),
            r.data.len()
        );
    }
}

#[test]
fn nginx_records_what_ffmpeg_publishes() {
    if !common::require_binaries(&["nginx", "ffmpeg", "ffprobe"]) {
        return;
    }
    let t0 = Instant::now();
    let Some(src) = small_flv() else { return };
    let t_media = t0.elapsed();
    let Some(srv) = NginxRtmp::start_default() else {
        return;
    };
    let t_start = t0.elapsed();

    let (ok, err) = publish_file(&src, &srv.url("live", "selftest"), PUBLISH_TIMEOUT);
    assert!(
        ok,
        "ffmpeg publish failed: {err}\nnginx log:\n{}",
        srv.error_log()
    );
    let rec = srv
        .wait_recording("selftest", RECORD_TIMEOUT)
        .unwrap_or_else(|| panic!("no finished recording; nginx log:\n{}", srv.error_log()));
    let t_rec = t0.elapsed();

    let src_flv = flv::read_flv(&src).unwrap();
    let rec_flv = flv::read_flv(&rec).unwrap();
    assert!(src_flv.has_video && src_flv.has_audio);
    assert_eq!(src_flv.video_frames().len(), 90, "3 s at 30 fps");
    assert_same_av_tags(&src_flv, &rec_flv);

    // The generated media really has B-frames: some composition times are > 0 and
    // decode order differs from presentation order.
    let v = src_flv.video_frames();
    assert!(v[0].is_keyframe());
    assert!(
        v.iter()
            .any(|t| t.video_header().unwrap().composition_time.unwrap() > 0)
    );
    assert!(
        v.windows(2).any(|w| w[1].pts() < w[0].pts()),
        "no reordering: no B-frames?"
    );
    let seq = src_flv
        .video_tags()
        .into_iter()
        .find(|t| t.is_avc_sequence_header())
        .unwrap();
    let cfg = parse_avc_config(seq.video_payload().unwrap()).unwrap();
    assert_eq!((cfg.sps.len(), cfg.pps.len(), cfg.length_size), (1, 1, 4));
    assert_eq!(cfg.profile, 77, "Main profile (B-frames)");
    for t in &v {
        let nalus = split_nalus(t.video_payload().unwrap(), cfg.length_size).unwrap();
        assert!(!nalus.is_empty());
    }
    assert!(src_flv.audio_tags()[0].is_aac_sequence_header());
    let meta = src_flv.metadata().expect("onMetaData");
    assert_eq!(meta.get("width").and_then(|v| v.as_f64()), Some(320.0));

    // ffprobe agrees: same packets, same hashes and timestamps.
    let ps = ffprobe::packets(&src).unwrap();
    let pr = ffprobe::packets(&rec).unwrap();
    assert_eq!(ps.iter().filter(|p| p.stream_type == 'v').count(), 90);
    assert!(ps.iter().filter(|p| p.stream_type == 'a').count() > 120);
    assert_eq!(
        ps, pr,
        "ffprobe packets differ between source and recording"
    );
    assert_eq!(
        ffprobe::decode_errors(&rec),
        "",
        "recording does not decode cleanly"
    );
    let streams = ffprobe::streams(&rec).unwrap();
    assert_eq!(streams.len(), 2);
    assert!(
        streams
            .iter()
            .any(|s| s.codec_name == "h264" && s.width == Some(320))
    );
    assert!(
        streams
            .iter()
            .any(|s| s.codec_name == "aac" && s.channels == Some(2))
    );

    eprintln!(
        "[timing] media {t_media:.2?}, nginx up at {t_start:.2?}, recording done at {t_rec:.2?}, \
         all checks at {:.2?}",
        t0.elapsed()
    );
}

#[test]
fn ffmpeg_listen_server_receives_publish() {
    if !common::require_binaries(&["ffmpeg", "ffprobe"]) {
        return;
    }
    let Some(src) = small_flv() else { return };
    let dir = TempDir::new("ffmpeg-listen");
    let Some(mut server) = FfmpegListen::start(dir.path()) else {
        return;
    };
    let (ok, err) = publish_file(&src, &server.url(), PUBLISH_TIMEOUT);
    assert!(
        ok,
        "publish to ffmpeg -listen failed: {err}\nserver log: {}",
        server.log()
    );
    let out = server
        .wait_output(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("ffmpeg listen server wrote nothing: {}", server.log()));
    let a = flv::read_flv(&src).unwrap();
    let b = flv::read_flv(&out).unwrap();
    assert_same_av_tags(&a, &b);
    assert_eq!(
        ffprobe::packets(&src).unwrap(),
        ffprobe::packets(&out).unwrap()
    );
}

fn openssl_verify(ca: &Path, cert: &Path, host: &str) -> bool {
    Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(ca)
        .args(["-verify_ip", host])
        .arg(cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn test_certificates_verify_as_intended() {
    if !common::require_binary("openssl") {
        return;
    }
    let dir = TempDir::new("certs");
    let good = dir.join("good");
    let (ca, cert, key) =
        common::tls::generate_test_ca_and_cert(&good, &["127.0.0.1", "localhost"], false).unwrap();
    assert!(key.exists());
    assert!(openssl_verify(&ca, &cert, "127.0.0.1"));
    assert!(
        !openssl_verify(&ca, &cert, "127.0.0.2"),
        "wrong IP must not verify"
    );
    let (ca2, exp, _) =
        common::tls::generate_test_ca_and_cert(&dir.join("expired"), &["127.0.0.1"], true).unwrap();
    assert!(
        !openssl_verify(&ca2, &exp, "127.0.0.1"),
        "expired cert must not verify"
    );
    assert!(
        !openssl_verify(&ca2, &cert, "127.0.0.1"),
        "cert from another CA must not verify"
    );
}

#[test]
fn nginx_tls_front_end_proxies_rtmps() {
    if !common::require_binaries(&["nginx", "ffmpeg", "openssl"]) {
        return;
    }
    let Some(src) = small_flv() else { return };
    let certs = TempDir::new("tls-certs");
    let (ca, cert, key) =
        common::tls::generate_test_ca_and_cert(certs.path(), &["127.0.0.1", "localhost"], false)
            .unwrap();
    let opts = NginxOptions::default().tls(TlsFront {
        cert_pem_path: cert,
        key_pem_path: key,
    });
    let Some(srv) = NginxRtmp::start(opts) else {
        return;
    };
    let tls_port = srv.tls_port().unwrap();

    // The front end presents our certificate, and it verifies against our CA for "localhost".
    let out = Command::new("openssl")
        .args(["s_client", "-brief", "-verify_return_error", "-connect"])
        .arg(format!("127.0.0.1:{tls_port}"))
        .arg("-CAfile")
        .arg(&ca)
        .args(["-verify_hostname", "localhost"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Verification: OK"), "s_client: {text}");

    let (ok, err) = publish_file(
        &src,
        &srv.tls_url("127.0.0.1", "live", "tls"),
        PUBLISH_TIMEOUT,
    );
    assert!(
        ok,
        "rtmps publish failed: {err}\nnginx log:\n{}",
        srv.error_log()
    );
    let rec = srv
        .wait_recording("tls", RECORD_TIMEOUT)
        .expect("recording via TLS");
    assert_same_av_tags(&flv::read_flv(&src).unwrap(), &flv::read_flv(&rec).unwrap());
}

#[test]
fn nginx_restarts_on_same_port_and_denies_per_application() {
    if !common::require_binaries(&["nginx", "ffmpeg"]) {
        return;
    }
    let Some(src) = small_flv() else { return };
    let opts = NginxOptions::default()
        .live_directive("record_append on;")
        .application("closed", "live on; deny publish all;")
        .application(
            "second",
            "live on; record all; record_path {record_dir}; record_suffix .second.flv; record_unique off;",
        );
    let Some(mut srv) = NginxRtmp::start(opts) else {
        return;
    };
    let port = srv.port();
    assert!(srv.config_text().contains("deny publish all;"));

    let (ok, err) = publish_file(&src, &srv.url("live", "a"), PUBLISH_TIMEOUT);
    assert!(ok, "{err}");
    let first = std::fs::metadata(srv.wait_recording("a", RECORD_TIMEOUT).unwrap())
        .unwrap()
        .len();

    // Denied application: nginx refuses and records nothing. (ffmpeg's own exit status
    // is not reliable here: it may have sent everything before nginx closes.)
    let _ = publish_file(&src, &srv.url("closed", "denied"), PUBLISH_TIMEOUT);
    assert!(srv.wait_log("access forbidden by rule", Duration::from_secs(5)));
    assert!(!srv.recording("denied").exists());

    // Second application records with its own suffix.
    let (ok, err) = publish_file(&src, &srv.url("second", "b"), PUBLISH_TIMEOUT);
    assert!(ok, "{err}");
    let second = srv.record_dir().join("b.second.flv");
    assert!(common::wait_for(RECORD_TIMEOUT, || second.exists()));

    // Crash in the middle of a live publish, then restart on the same port (the port has
    // connections in TIME_WAIT then); a new publish appends to the recording.
    let mut live = Command::new(common::util::find_binary("ffmpeg").unwrap())
        .args(["-nostdin", "-loglevel", "quiet", "-re", "-i"])
        .arg(&src)
        .args(["-c", "copy", "-f", "flv"])
        .arg(srv.url("live", "crash"))
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        common::wait_for(Duration::from_secs(5), || srv.is_publishing("crash")),
        "live publish did not start"
    );
    srv.kill();
    let _ = common::util::wait_child(&mut live, Duration::from_secs(10))
        .or_else(|| live.kill().ok().and(live.wait().ok()));
    assert!(
        !common::util::tcp_accepts(port),
        "port still open after kill"
    );
    srv.restart();
    assert_eq!(srv.port(), port);
    assert!(srv.is_running());
    let (ok, err) = publish_file(&src, &srv.url("live", "a"), PUBLISH_TIMEOUT);
    assert!(
        ok,
        "publish after restart failed: {err}\n{}",
        srv.error_log()
    );
    let deadline = Instant::now() + RECORD_TIMEOUT;
    assert!(
        common::wait_until(deadline, || {
            srv.publishers_disconnected("a")
                && std::fs::metadata(srv.recording("a")).is_ok_and(|m| m.len() > first)
        }),
        "recording did not grow after restart (record_append)"
    );
    srv.stop();
    assert!(!srv.is_running());
}

#[test]
fn flv_reader_handles_truncation_and_extended_timestamps() {
    // Header + one 1-byte script tag with timestamp 0x01020304, then a cut-off tag.
    let mut b = b"FLV\x01\x05\x00\x00\x00\x09".to_vec();
    b.extend([0, 0, 0, 0]);
    b.extend([18, 0, 0, 1, 0x02, 0x03, 0x04, 0x01, 0, 0, 0, 0x05]);
    b.extend([0, 0, 0, 12]);
    b.extend([9, 0, 0, 10, 0, 0, 0]);
    let f = flv::parse_flv(&b).unwrap();
    assert!(f.has_audio && f.has_video && f.truncated);
    assert_eq!(f.tags.len(), 1);
    assert_eq!(f.tags[0].timestamp, 0x0102_0304);
    // Negative composition time (SI24).
    let t = flv::FlvTag {
        tag_type: 9,
        timestamp: 100,
        stream_id: 0,
        data: vec![0x27, 1, 0xff, 0xff, 0xd8],
    };
    assert_eq!(t.video_header().unwrap().composition_time, Some(-40));
    assert_eq!(t.pts(), 60);
    // Bad PreviousTagSize is an error.
    let mut bad = b"FLV\x01\x01\x00\x00\x00\x09".to_vec();
    bad.extend([0, 0, 0, 7]);
    assert!(flv::parse_flv(&bad).is_err());
}

#[test]
fn missing_binary_skips_or_fails_under_ci() {
    let name = "definitely-not-installed-rtmpclient-tool";
    assert!(common::util::find_binary(name).is_none());
    assert!(common::util::find_binary("sh").is_some());
    if common::util::is_ci() {
        // Under CI a missing tool is a failure, never a skip.
        assert!(std::panic::catch_unwind(|| common::require_binary(name)).is_err());
    }
    // (Outside CI require_binary would print the loud SKIPPING banner and return false;
    // not exercised here so that scripts/test does not report a bogus skip.)
}

/// Generates every kind of test media and checks it with ffprobe; prints how long each
/// took (`cargo test --test harness_selftest media -- --nocapture`). The 30 s 720p file
/// takes ~4-5 s on 2 cores.
#[test]
fn media_generation_timings() {
    if !common::require_binaries(&["ffmpeg", "ffprobe"]) {
        return;
    }
    let t = Instant::now();
    let flv = media::h264_aac_flv(3, 320, 240, 2).unwrap();
    eprintln!(
        "[timing] h264_aac_flv(3, 320x240, bf2): {:.2?}",
        t.elapsed()
    );
    let t = Instant::now();
    let mkv = media::h264_aac_mkv(30, 1280, 720, 2000, 2).unwrap();
    eprintln!(
        "[timing] h264_aac_mkv(30, 1280x720, 2000k, bf2): {:.2?}",
        t.elapsed()
    );
    let t = Instant::now();
    let h264 = media::h264_annexb(3, 320, 240, 2).unwrap();
    eprintln!("[timing] h264_annexb(3, 320x240, bf2): {:.2?}", t.elapsed());
    let t = Instant::now();
    let aac = media::aac_adts(3, 48_000, 2).unwrap();
    eprintln!("[timing] aac_adts(3, 48k, 2ch): {:.2?}", t.elapsed());
    // Cached: a second call is free.
    let t = Instant::now();
    assert_eq!(media::h264_aac_mkv(30, 1280, 720, 2000, 2).unwrap(), mkv);
    assert!(t.elapsed() < Duration::from_millis(50));

    let s = ffprobe::streams(&mkv).unwrap();
    assert_eq!(s.len(), 2);
    assert_eq!((s[0].width, s[0].height), (Some(1280), Some(720)));
    let v = ffprobe::packets_of(&mkv, 'v').unwrap();
    assert_eq!(v.len(), 900);
    assert_eq!(
        v.iter().filter(|p| p.is_key()).count(),
        30,
        "one keyframe per second"
    );
    assert!(v.iter().any(|p| p.pts_ms != p.dts_ms), "B-frames expected");
    let d = ffprobe::duration_s(&mkv).unwrap();
    assert!((29.9..30.2).contains(&d), "duration {d}");
    assert_eq!(ffprobe::packets_of(&h264, 'v').unwrap().len(), 90);
    let a = ffprobe::streams(&aac).unwrap();
    assert_eq!((a[0].sample_rate, a[0].channels), (Some(48_000), Some(2)));
    assert!(ffprobe::packets_of(&flv, 'a').unwrap().len() > 120);
    for f in [&flv, &mkv, &h264, &aac] {
        eprintln!(
            "  {} bytes  {}",
            std::fs::metadata(f).unwrap().len(),
            f.display()
        );
    }
}
