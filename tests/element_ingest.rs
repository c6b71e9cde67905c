//! `ingest-rules`: streams published to nginx-rtmp with a service's rules post
//! `rtmp-ingest-warning` for what breaks them (a 10 s keyframe interval for YouTube, 32 kHz
//! audio for Twitch), once each, and nothing for a compliant stream; what the server records
//! is the stream as it came (the checks only look).

#![cfg(feature = "gst")]

mod common;

use std::time::Duration;

use common::gstrun::{require_elements, run_to_eos};
use common::{NginxOptions, NginxRtmp, read_flv};

const LIMIT: Duration = Duration::from_secs(60);

fn warnings(msgs: &[gst::Structure]) -> Vec<&gst::Structure> {
    msgs.iter()
        .filter(|s| s.name() == "rtmp-ingest-warning")
        .collect()
}

/// The one ingest warning among `msgs`, which must be `rule`'s `check` with `measured`.
fn the_warning<'a>(
    msgs: &'a [gst::Structure],
    rule: &str,
    check: &str,
    measured: &str,
) -> &'a gst::Structure {
    let w = warnings(msgs);
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(field(w[0], "rule"), rule);
    assert_eq!(field(w[0], "check"), check);
    assert_eq!(field(w[0], "measured"), measured);
    w[0]
}

fn field<'a>(s: &'a gst::Structure, name: &str) -> &'a str {
    s.get::<&str>(name)
        .unwrap_or_else(|e| panic!("{name} in {s}: {e}"))
}

#[test]
fn ten_second_keyframe_interval_breaks_youtube_rules_once() {
    if !require_elements(&["videotestsrc", "x264enc"]) {
        return;
    }
    let Some(nginx) = NginxRtmp::start(NginxOptions::default().record(true)) else {
        return;
    };
    // key-int-max=300 at 30 fps: keyframes at 0 s and 10 s (a still picture has no scene cut).
    let launch = format!(
        "videotestsrc num-buffers=320 ! video/x-raw,width=320,height=240,framerate=30/1 ! \
         x264enc key-int-max=300 speed-preset=ultrafast ! \
         rtmpclientsink ingest-rules=youtube sync=false location={}",
        nginx.url("live", "gop10")
    );
    let msgs = run_to_eos(&launch, LIMIT);
    let w = the_warning(&msgs, "youtube", "keyframe-interval", "10 s");
    assert_eq!(field(w, "limit"), "4 s");
    assert!(field(w, "description").contains("10 s"), "{w}");
    // The stream was not changed: every frame, both keyframes, recorded.
    let path = nginx
        .wait_recording("gop10", Duration::from_secs(10))
        .expect("recording");
    let flv = read_flv(&path).unwrap();
    let video: Vec<_> = flv
        .tags
        .iter()
        .filter(|t| t.tag_type == 9 && t.data.get(1) == Some(&1))
        .collect();
    assert_eq!(video.len(), 320, "video frames recorded");
    let keys: Vec<u32> = video
        .iter()
        .filter(|t| t.data[0] >> 4 == 1)
        .map(|t| t.timestamp)
        .collect();
    assert_eq!(keys, vec![0, 10_000], "keyframes recorded");
}

#[test]
fn compliant_stream_gets_no_warning_from_any_service() {
    if !require_elements(&["videotestsrc", "x264enc", "audiotestsrc", "voaacenc"]) {
        return;
    }
    let Some(nginx) = NginxRtmp::start_default() else {
        return;
    };
    for rules in ["youtube", "twitch", "facebook"] {
        // 2 s GOPs, 48 kHz AAC, a small picture at a low bitrate: within every rule.
        let launch = format!(
            "videotestsrc num-buffers=300 ! video/x-raw,width=320,height=240,framerate=30/1 ! \
             x264enc key-int-max=60 bitrate=500 speed-preset=ultrafast ! s. \
             audiotestsrc num-buffers=470 ! audio/x-raw,rate=48000 ! voaacenc ! s.audio \
             rtmpclientsink name=s ingest-rules={rules} sync=false location={}",
            nginx.url("live", rules)
        );
        let msgs = run_to_eos(&launch, LIMIT);
        assert!(
            msgs.iter().any(|s| s.name() == "rtmp-publishing"),
            "{rules}: not published"
        );
        let w = warnings(&msgs);
        assert!(w.is_empty(), "{rules}: {w:?}");
    }
}

#[test]
fn audio_rate_outside_44_1_and_48_khz_warns() {
    if !require_elements(&["videotestsrc", "x264enc", "audiotestsrc", "voaacenc"]) {
        return;
    }
    let Some(nginx) = NginxRtmp::start_default() else {
        return;
    };
    let launch = format!(
        "videotestsrc num-buffers=90 ! video/x-raw,width=320,height=240,framerate=30/1 ! \
         x264enc key-int-max=60 speed-preset=ultrafast ! s. \
         audiotestsrc num-buffers=100 ! audio/x-raw,rate=32000 ! voaacenc ! s.audio \
         rtmpclientsink name=s ingest-rules=twitch sync=false location={}",
        nginx.url("live", "rate32")
    );
    let msgs = run_to_eos(&launch, LIMIT);
    let w = the_warning(&msgs, "twitch", "audio-rate", "32000 Hz");
    assert_eq!(field(w, "limit"), "44100 or 48000 Hz");
}

/// Codecs a service does not take on single-track RTMP: HEVC for Twitch (H.264 only), Opus for
/// Facebook (H.264 + AAC). One warning each, naming the codec; the stream still goes out.
#[test]
fn a_codec_the_service_does_not_take_warns() {
    if !require_elements(&["videotestsrc", "x265enc", "x264enc", "opusenc"]) {
        return;
    }
    let Some(nginx) = NginxRtmp::start(NginxOptions::default()) else {
        return;
    };
    let hevc = format!(
        "videotestsrc num-buffers=30 ! video/x-raw,format=I420,width=160,height=120,framerate=30/1 ! \
         x265enc speed-preset=ultrafast key-int-max=30 ! h265parse ! \
         rtmpclientsink ingest-rules=twitch sync=false location={}",
        nginx.url("live", "hevc")
    );
    let msgs = run_to_eos(&hevc, LIMIT);
    the_warning(&msgs, "twitch", "video-codec", "HEVC");

    let opus = format!(
        "rtmpclientsink name=s ingest-rules=facebook sync=false location={} \
         videotestsrc num-buffers=30 ! video/x-raw,width=160,height=120,framerate=30/1 ! \
         x264enc speed-preset=ultrafast key-int-max=30 ! s.sink \
         audiotestsrc num-buffers=50 ! audio/x-raw,rate=48000 ! opusenc ! s.audio",
        nginx.url("live", "opus")
    );
    let msgs = run_to_eos(&opus, LIMIT);
    the_warning(&msgs, "facebook", "audio-codec", "Opus");
}
