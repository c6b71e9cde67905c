#![cfg(feature = "gst")]
//! `rtmpclientsink` publishing to a real nginx-rtmp (`record all`); the recordings are compared
//! with what the element was given.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::flv::FlvFile;
use common::gstrun::{pipeline, play_to_eos};
use common::gstsrc::demux;
use common::{NginxRtmp, media, read_flv};
use gst::prelude::*;

const EOS_TIMEOUT: Duration = Duration::from_secs(90);
const RECORD_TIMEOUT: Duration = Duration::from_secs(15);

/// Runs a pipeline description to EOS (panics on error/timeout) and returns the element
/// messages of the sinks.
fn run(launch: &str, tweak: impl FnOnce(&gst::Pipeline)) -> Vec<gst::Structure> {
    let p = pipeline(launch);
    tweak(&p);
    play_to_eos(&p, launch, EOS_TIMEOUT, |_| {})
}

fn recording(srv: &NginxRtmp, stream: &str) -> FlvFile {
    let path = srv
        .wait_recording(stream, RECORD_TIMEOUT)
        .unwrap_or_else(|| panic!("no finished recording of {stream}"));
    let flv = read_flv(&path).expect("recording parses");
    assert!(!flv.truncated, "recording truncated");
    assert_decodes(&path, false);
    flv
}

/// `ffmpeg -v error -i FILE -f null -` prints nothing. The null muxer gets FLV's millisecond
/// time base: with its default 1/framerate, 30 fps video starting about half a frame after the
/// audio (a live pipeline's random phase) rounds every third frame onto the previous one and is
/// reported as non-monotonic DTS although the file is fine. With `lenient_null_muxer`, its
/// complaints about equal frame timestamps are not decode errors and are ignored.
fn assert_decodes(path: &Path, lenient_null_muxer: bool) {
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-enc_time_base", "1:1000", "-f", "null", "-"])
        .output()
        .expect("run ffmpeg");
    let errs = String::from_utf8_lossy(&out.stderr);
    let errs: Vec<&str> = errs
        .lines()
        .filter(|l| {
            !(lenient_null_muxer && l.contains("non monotonically increasing dts to muxer"))
        })
        .filter(|l| !l.trim().is_empty())
        // ffmpeg's log can flush the repeat count of messages below the shown level; a repeated
        // error still shows its first instance.
        .filter(|l| !l.trim_start().starts_with("Last message repeated"))
        .collect();
    assert!(
        out.status.success() && errs.is_empty(),
        "decode errors: {errs:?}"
    );
}

/// Running time (ms) of the first buffer's PTS on a pad, once one passed.
type FirstTime = Arc<Mutex<Option<i64>>>;

fn first_running_time(pad: &gst::Pad) -> FirstTime {
    let first = FirstTime::default();
    let f = first.clone();
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let rt = info.buffer().and_then(|b| b.pts()).and_then(|pts| {
            let ev = pad.sticky_event::<gst::event::Segment>(0)?;
            let seg = ev.segment().downcast_ref::<gst::ClockTime>()?.clone();
            Some(match seg.to_running_time_full(pts)? {
                gst::Signed::Positive(t) => t.mseconds() as i64,
                gst::Signed::Negative(t) => -(t.mseconds() as i64),
            })
        });
        *f.lock().unwrap() = rt;
        gst::PadProbeReturn::Remove
    });
    first
}

fn cts(t: &common::FlvTag) -> i64 {
    t.video_header()
        .and_then(|h| h.composition_time)
        .unwrap_or(0) as i64
}

#[test]
fn a_matroska_b_frames_and_aac_arrive_byte_identical_with_source_pts() {
    let Some(srv) = NginxRtmp::start_default() else {
        return;
    };
    let Some(mkv) = media::h264_aac_mkv(30, 1280, 720, 2000, 2) else {
        return;
    };
    let (src_v, src_a) = demux(&mkv);
    assert!(src_v.len() >= 890, "{} source video frames", src_v.len());
    let msgs = run(
        &format!(
            "filesrc location={} ! matroskademux name=d \
             d.video_0 ! queue ! rtmpclientsink name=s sync=false location={} \
             d.audio_0 ! queue ! s.audio",
            mkv.display(),
            srv.url("live", "mkv")
        ),
        |_| {},
    );
    assert!(msgs.iter().any(|s| s.name() == "rtmp-publishing"));
    let path = srv
        .wait_recording("mkv", RECORD_TIMEOUT)
        .expect("recording");
    let rec = read_flv(&path).expect("recording parses");
    assert!(!rec.truncated);
    // The first frames sit 23 ms apart from the rest in running time (see `demux`), which the
    // null muxer's 1/fps rounding reports; decoding itself must be clean.
    assert_decodes(&path, true);
    rec.assert_timeline();

    let v = rec.video_frames();
    let a = rec.audio_frames();
    assert_eq!(v.len(), src_v.len(), "video frames lost");
    assert_eq!(a.len(), src_a.len(), "audio frames lost");
    let offset = v[0].pts() - src_v[0].pts_ms;
    for (i, (t, s)) in v.iter().zip(&src_v).enumerate() {
        assert!(t.data[5..] == s.data[..], "video frame {i} differs");
        assert_eq!(t.is_keyframe(), s.key, "keyframe flag of frame {i}");
        assert_eq!(t.pts() - offset, s.pts_ms, "PTS of video frame {i}");
    }
    for (i, (t, s)) in a.iter().zip(&src_a).enumerate() {
        assert!(t.data[2..] == s.data[..], "audio frame {i} differs");
        let d = t.timestamp as i64 - offset - s.pts_ms;
        assert!(
            d.abs() <= 1,
            "audio frame {i} off by {d} ms from the video base"
        );
    }
    let b_frames = v.iter().filter(|t| cts(t) > 0).count();
    assert!(
        b_frames > 100,
        "only {b_frames} frames with composition time"
    );
}

#[test]
fn b_live_x264_byte_stream_and_adts() {
    let Some(srv) = NginxRtmp::start_default() else {
        return;
    };
    let mut firsts: [FirstTime; 2] = Default::default();
    let msgs = run(
        &format!(
            "videotestsrc is-live=true num-buffers=150 ! video/x-raw,width=640,height=360,framerate=30/1 ! \
             x264enc bframes=2 key-int-max=60 ! video/x-h264,stream-format=byte-stream ! \
             rtmpclientsink name=s location={} \
             audiotestsrc is-live=true num-buffers=235 ! audio/x-raw,rate=48000,channels=2 ! avenc_aac ! aacparse ! \
             audio/mpeg,stream-format=adts ! s.audio",
            srv.url("live", "live")
        ),
        |p| {
            let s = p.by_name("s").unwrap();
            firsts = ["sink", "audio"].map(|n| first_running_time(&s.static_pad(n).unwrap()));
        },
    );
    let rec = recording(&srv, "live");
    rec.assert_timeline();
    assert_eq!(rec.video_frames().len(), 150);
    let audio = rec.audio_frames().len();
    assert!((230..=240).contains(&audio), "{audio} audio frames");
    // Both tracks on one base: the recording keeps the running-time offset between the first
    // video PTS and the first audio frame that the element was given (the sources themselves
    // may start a few hundred ms apart on a loaded machine).
    let [v_in, a_in] = firsts.map(|f| f.lock().unwrap().expect("a buffer on each pad"));
    let v0 = rec.video_frames()[0].pts();
    let a0 = rec.audio_frames()[0].timestamp as i64;
    assert!(
        ((a0 - v0) - (a_in - v_in)).abs() <= 2,
        "recorded: video starts at {v0} ms, audio at {a0} ms; given: video at {v_in} ms, \
         audio at {a_in} ms of running time"
    );
    for n in ["rtmp-connected", "rtmp-publishing", "rtmp-disconnected"] {
        assert!(msgs.iter().any(|s| s.name() == n), "no {n}");
    }
}

#[test]
fn c_audio_only() {
    let Some(srv) = NginxRtmp::start_default() else {
        return;
    };
    run(
        &format!(
            "audiotestsrc num-buffers=200 ! audio/x-raw,rate=44100,channels=1 ! avenc_aac ! aacparse ! \
             audio/mpeg,stream-format=raw ! rtmpclientsink sync=false location={}",
            srv.url("live", "audio")
        ),
        |_| {},
    );
    let rec = recording(&srv, "audio");
    assert!(rec.video_frames().is_empty());
    assert!(rec.tags.iter().all(|t| !t.is_video()));
    let n = rec.audio_frames().len();
    assert!((195..=205).contains(&n), "{n} audio frames");
    rec.assert_timeline();
    assert_eq!(rec.audio_frames()[0].timestamp, 0);
}

#[test]
fn d_video_only() {
    let Some(srv) = NginxRtmp::start_default() else {
        return;
    };
    run(
        &format!(
            "videotestsrc num-buffers=90 ! video/x-raw,width=320,height=240,framerate=30/1 ! \
             x264enc bframes=3 ! video/x-h264,stream-format=byte-stream ! \
             rtmpclientsink sync=false location={}",
            srv.url("live", "video")
        ),
        |_| {},
    );
    let rec = recording(&srv, "video");
    assert!(rec.audio_frames().is_empty());
    assert_eq!(rec.video_frames().len(), 90);
    rec.assert_timeline();
}

#[test]
fn e_resolution_change_mid_stream() {
    let Some(srv) = NginxRtmp::start_default() else {
        return;
    };
    run(
        &format!(
            "videotestsrc num-buffers=120 ! capsfilter name=cf caps=video/x-raw,width=320,height=240,framerate=30/1 ! \
             x264enc key-int-max=30 ! video/x-h264,stream-format=byte-stream ! \
             rtmpclientsink sync=false location={}",
            srv.url("live", "resize")
        ),
        |p| {
            let cf = p.by_name("cf").unwrap();
            let count = std::sync::atomic::AtomicU32::new(0);
            let cf2 = cf.clone();
            cf.static_pad("sink")
                .unwrap()
                .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                    if count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 60 {
                        cf2.set_property(
                            "caps",
                            gst::Caps::builder("video/x-raw")
                                .field("width", 640)
                                .field("height", 480)
                                .field("framerate", gst::Fraction::new(30, 1))
                                .build(),
                        );
                    }
                    gst::PadProbeReturn::Ok
                });
        },
    );
    let rec = recording(&srv, "resize");
    rec.assert_timeline();
    let headers: Vec<_> = rec
        .av_tags_dedup()
        .into_iter()
        .filter(|t| t.is_avc_sequence_header())
        .collect();
    assert_eq!(
        headers.len(),
        2,
        "a new sequence header for the new resolution"
    );
    assert!(headers[1].timestamp > 0);
    assert_eq!(rec.video_frames().len(), 120);
}

#[test]
fn f_two_elements_two_stream_keys_at_once() {
    let Some(srv) = NginxRtmp::start_default() else {
        return;
    };
    run(
        &format!(
            "videotestsrc num-buffers=90 ! video/x-raw,width=320,height=240,framerate=30/1 ! \
             x264enc ! video/x-h264,stream-format=avc ! rtmpclientsink name=one sync=false location={} \
             videotestsrc num-buffers=60 pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 ! \
             x264enc ! video/x-h264,stream-format=byte-stream ! rtmpclientsink name=two sync=false location={}",
            srv.url("live", "one"),
            srv.url("live", "two")
        ),
        |_| {},
    );
    assert_eq!(recording(&srv, "one").video_frames().len(), 90);
    assert_eq!(recording(&srv, "two").video_frames().len(), 60);
}

#[test]
fn g_sync_connect_ping_and_stats() {
    let Some(srv) = NginxRtmp::start_default() else {
        return;
    };
    let p = pipeline(&format!(
        "videotestsrc is-live=true num-buffers=200 ! video/x-raw,width=320,height=240,framerate=30/1 ! \
         x264enc tune=zerolatency key-int-max=30 ! video/x-h264,stream-format=avc ! \
         rtmpclientsink name=s async-connect=false location={}",
        srv.url("live", "ping")
    ));
    // async-connect=false: the state change itself publishes (or fails).
    p.set_state(gst::State::Paused).unwrap();
    let bus = p.bus().unwrap();
    let publishing = bus
        .iter_timed(gst::ClockTime::ZERO)
        .any(|m| m.structure().is_some_and(|s| s.name() == "rtmp-publishing"));
    assert!(publishing, "publishing before start() returned");
    p.set_state(gst::State::Playing).unwrap();
    let mut rtt = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let msg = bus
            .timed_pop(gst::ClockTime::from_mseconds(200))
            .filter(|_| Instant::now() < deadline);
        let Some(msg) = msg else {
            assert!(Instant::now() < deadline, "no EOS");
            continue;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("{}", e.error()),
            gst::MessageView::Element(e) => {
                if let Some(s) = e.structure().filter(|s| s.name() == "rtmp-ping") {
                    rtt = Some(s.get::<u32>("rtt-ms").unwrap());
                }
            }
            _ => {}
        }
    }
    let stats = p.by_name("s").unwrap().property::<gst::Structure>("stats");
    p.set_state(gst::State::Null).unwrap();
    let rtt = rtt.expect("an rtmp-ping message within 6.7 s of publishing");
    assert!(rtt < 1000, "{rtt} ms on loopback");
    assert_eq!(stats.get::<u64>("video-frames").unwrap(), 200, "{stats}");
    // 200 frames, the sequence header and the AVC end of sequence at EOS.
    assert_eq!(stats.get::<u64>("video-messages").unwrap(), 202, "{stats}");
    assert!(stats.get::<u64>("bytes-sent").unwrap() > 10_000, "{stats}");
    assert!(stats.get::<u64>("bitrate").unwrap() > 0, "{stats}");
    assert_eq!(stats.get::<u32>("out-chunk-size").unwrap(), 4096, "{stats}");
    assert_eq!(stats.get::<u64>("queue-depth-ms").unwrap(), 0, "{stats}");
    assert_eq!(recording(&srv, "ping").video_frames().len(), 200);
}

#[test]
fn h_rtmps_with_a_private_ca_and_unknown_ca_refused() {
    let dir = common::TempDir::new("element-tls");
    let Some((ca, cert, key)) = common::tls::generate_test_ca_and_cert(
        &dir.join("pki"),
        &["localhost", "127.0.0.1"],
        false,
    ) else {
        return;
    };
    let Some(srv) = NginxRtmp::start(common::NginxOptions::default().tls(common::TlsFront {
        cert_pem_path: cert,
        key_pem_path: key,
    })) else {
        return;
    };
    let url = srv.tls_url("localhost", "live", "tls");
    run(
        &format!(
            "videotestsrc num-buffers=60 ! video/x-raw,width=320,height=240,framerate=30/1 ! \
             x264enc ! video/x-h264,stream-format=avc ! rtmpclientsink sync=false location={url} \
             tls-ca-file={}",
            ca.display()
        ),
        |_| {},
    );
    assert_eq!(recording(&srv, "tls").video_frames().len(), 60);

    // Without the CA: a clear TLS error, no publish.
    let p = pipeline(&format!(
        "videotestsrc is-live=true ! x264enc ! rtmpclientsink timeout=3 location={}",
        srv.tls_url("localhost", "live", "tls2")
    ));
    p.set_state(gst::State::Playing).unwrap();
    let msg = p
        .bus()
        .unwrap()
        .timed_pop_filtered(gst::ClockTime::from_seconds(5), &[gst::MessageType::Error])
        .expect("TLS error");
    p.set_state(gst::State::Null).unwrap();
    let gst::MessageView::Error(e) = msg.view() else {
        unreachable!()
    };
    assert!(
        e.error().matches(gst::ResourceError::OpenWrite),
        "{}",
        e.error()
    );
    assert!(e.error().message().contains("TLS"), "{}", e.error());
}
