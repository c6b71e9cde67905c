#![cfg(feature = "gst")]
//! `rtmpclientsink` staying live through faults, against real nginx-rtmp, the fault-injecting
//! proxy and scripted RTMP servers (loopback only, every wait bounded): reconnect after a server
//! restart, congestion (stall and throttle) with both policies, Enhanced RTMP reconnect
//! requests, dead peers, and the reconnect budget.
//!
//! Every figure the README quotes (reconnect time, queue time, memory, drops, NULL/EOS timings)
//! is printed by these tests as `[reliability] ...` lines (visible without `--nocapture`).

mod common;
use common::{rtmp_servers, scripted};

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::flv::{FlvFile, FlvTag};
use common::gstrun::{assert_no_key_on_bus, pipeline, pump_until, worth_keeping};
use common::gstsrc::init;
use common::util::{exclusive, has_subsequence, loud, shared, vm_rss_kb, wait_file_stable};
use common::{FaultProxy, NginxRtmp, ffprobe, media, read_flv};
use gst::prelude::*;
use gstrtmpclient::rtmp::amf0::Amf0Value;
use gstrtmpclient::rtmp::message::{Message, msg_type};
use rtmp_servers::{
    MultiServer, Reply, Script, audio_frames, connect_app, publish_only, request_reconnect,
    video_frames,
};

const KEY: &str = "sekritkey";

fn report(line: &str) {
    loud(&format!("[reliability] {line}\n"));
}

/// A live 320x240 30 fps H.264 stream (AVC, keyframe every second, no AUD) plus live AAC into
/// `rtmpclientsink name=s`. `video` is the x264enc tuning, `sink_props` extra properties.
fn live_av(url: &str, video: &str, sink_props: &str, buffers: Option<(u32, u32)>) -> String {
    let (vn, an) = match buffers {
        Some((v, a)) => (format!("num-buffers={v}"), format!("num-buffers={a}")),
        None => (String::new(), String::new()),
    };
    format!(
        "videotestsrc is-live=true pattern=snow {vn} ! video/x-raw,width=320,height=240,framerate=30/1 ! \
         x264enc {video} key-int-max=30 aud=false speed-preset=ultrafast ! \
         video/x-h264,stream-format=avc,alignment=au ! \
         rtmpclientsink name=s location={url} {sink_props} \
         audiotestsrc is-live=true {an} samplesperbuffer=1024 ! audio/x-raw,rate=48000,channels=2 ! \
         avenc_aac ! queue ! s.audio"
    )
}

/// zerolatency, no B-frames.
const ZEROLATENCY: &str = "tune=zerolatency bitrate=1000";

/// A running pipeline and what its bus said.
struct Run {
    p: gst::Pipeline,
    bus: gst::Bus,
    t0: Instant,
    /// Name of the rtmpclientsink.
    sink_name: String,
    /// Element messages of the sink, errors, warnings, EOS, with their arrival time.
    msgs: Vec<(Duration, gst::Message)>,
}

impl Run {
    fn new(launch: &str) -> Run {
        Run::with_sink(launch, "s")
    }

    fn with_sink(launch: &str, sink_name: &str) -> Run {
        let p = pipeline(launch);
        let bus = p.bus().unwrap();
        Run {
            p,
            bus,
            t0: Instant::now(),
            sink_name: sink_name.to_string(),
            msgs: Vec::new(),
        }
    }

    fn play(&mut self) {
        self.t0 = Instant::now();
        self.p.set_state(gst::State::Playing).expect("PLAYING");
    }

    fn sink(&self) -> gst::Element {
        self.p.by_name(&self.sink_name).unwrap()
    }

    fn stats(&self) -> gst::Structure {
        self.sink().property::<gst::Structure>("stats")
    }

    fn stat(&self, field: &str) -> u64 {
        self.stats().get::<u64>(field).unwrap_or(0)
    }

    fn take_one(&mut self, wait: Duration) -> bool {
        let Some(m) = self
            .bus
            .timed_pop(gst::ClockTime::from_nseconds(wait.as_nanos() as u64))
        else {
            return false;
        };
        if worth_keeping(&m, &self.sink_name) {
            self.msgs.push((self.t0.elapsed(), m));
        }
        true
    }

    /// Collects bus messages for `d`.
    fn pump(&mut self, d: Duration) {
        self.pump_until(d, |_| false);
    }

    /// Collects bus messages until `cond` holds (checked at least every 50 ms) or `limit`.
    fn pump_until(&mut self, limit: Duration, cond: impl FnMut(&Run) -> bool) -> bool {
        pump_until(self, limit, cond, |r, wait| {
            r.take_one(wait);
        })
    }

    fn structs(&self) -> Vec<(Duration, gst::Structure)> {
        self.msgs
            .iter()
            .filter(|(_, m)| matches!(m.view(), gst::MessageView::Element(_)))
            .filter_map(|(t, m)| m.structure().map(|s| (*t, s.to_owned())))
            .collect()
    }

    fn count(&self, name: &str) -> usize {
        self.structs()
            .iter()
            .filter(|(_, s)| s.name() == name)
            .count()
    }

    /// The sink's connection messages in order (connected, publishing, disconnected,
    /// reconnecting, reconnect-request).
    fn lifecycle(&self) -> Vec<String> {
        self.structs()
            .into_iter()
            .map(|(_, s)| s.name().to_string())
            .filter(|n| {
                [
                    "rtmp-connected",
                    "rtmp-publishing",
                    "rtmp-disconnected",
                    "rtmp-reconnecting",
                    "rtmp-reconnect-request",
                ]
                .contains(&n.as_str())
            })
            .collect()
    }

    fn errors(&self) -> Vec<String> {
        self.msgs
            .iter()
            .filter_map(|(_, m)| match m.view() {
                gst::MessageView::Error(e) => Some(format!("{} ({:?})", e.error(), e.debug())),
                _ => None,
            })
            .collect()
    }

    fn errors_from(&self, name: &str) -> Vec<String> {
        self.msgs
            .iter()
            .filter(|(_, m)| m.src().is_some_and(|s| s.name() == name))
            .filter_map(|(_, m)| match m.view() {
                gst::MessageView::Error(e) => Some(format!("{} ({:?})", e.error(), e.debug())),
                _ => None,
            })
            .collect()
    }

    fn has_eos(&self) -> bool {
        self.msgs
            .iter()
            .any(|(_, m)| matches!(m.view(), gst::MessageView::Eos(_)))
    }

    /// Sends EOS and waits for EOS (or an ERROR) on the bus; returns how long that took.
    fn eos(&mut self, limit: Duration) -> Duration {
        let t = Instant::now();
        self.p.send_event(gst::event::Eos::new());
        let done = self.pump_until(limit, |r| r.has_eos() || !r.errors().is_empty());
        assert!(done, "EOS not handled within {limit:?}");
        t.elapsed()
    }

    /// Sets NULL; returns how long it took.
    fn null(&self) -> Duration {
        let t = Instant::now();
        self.p.set_state(gst::State::Null).expect("NULL");
        t.elapsed()
    }

    fn assert_no_key_leak(&self) {
        assert_no_key_on_bus(self.msgs.iter().map(|(_, m)| m), KEY);
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.p.set_state(gst::State::Null);
    }
}

fn hash(data: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut h);
    h.finish()
}

/// Records every buffer the sink's `sink` pad gets: payload hash → running-time DTS in ms.
fn capture_sink_input(run: &Run) -> Arc<Mutex<HashMap<u64, i64>>> {
    let seen: Arc<Mutex<HashMap<u64, i64>>> = Default::default();
    let seen2 = seen.clone();
    let pad = run.sink().static_pad("sink").unwrap();
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        if let Some(b) = info.buffer() {
            let seg = pad
                .sticky_event::<gst::event::Segment>(0)
                .and_then(|e| e.segment().downcast_ref::<gst::ClockTime>().cloned());
            let ts = b.dts().or(b.pts());
            let rt = seg.and_then(|s| s.to_running_time(ts?));
            if let (Some(rt), Ok(m)) = (rt, b.map_readable()) {
                let ms = (rt.nseconds() as i64 + 500_000) / 1_000_000;
                seen2.lock().unwrap().insert(hash(m.as_slice()), ms);
            }
        }
        gst::PadProbeReturn::Ok
    });
    seen
}

/// Counts the buffers reaching the sink's pads (sink, audio).
fn count_sink_input(run: &Run) -> Arc<Mutex<[u64; 2]>> {
    let counts: Arc<Mutex<[u64; 2]>> = Default::default();
    for (i, name) in ["sink", "audio"].iter().enumerate() {
        let Some(pad) = run.sink().static_pad(name) else {
            continue;
        };
        let c = counts.clone();
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            c.lock().unwrap()[i] += 1;
            gst::PadProbeReturn::Ok
        });
    }
    counts
}

/// Waits (bounded) until nginx's recording of `stream` stops growing, and parses it.
fn recording(srv: &NginxRtmp, stream: &str) -> (FlvFile, std::path::PathBuf) {
    let path = srv.recording(stream);
    assert!(
        wait_file_stable(
            &path,
            Duration::from_secs(15),
            Duration::from_millis(300),
            || true
        ),
        "no stable recording at {}",
        path.display()
    );
    let flv = read_flv(&path).expect("recording parses");
    (flv, path)
}

fn assert_decodes(path: &Path) {
    let errs = ffprobe::decode_errors(path);
    assert!(errs.trim().is_empty(), "decode errors:\n{errs}");
}

/// Every video frame that follows a hole in the video timeline (longer than 1.5 frame
/// intervals) must be a keyframe: nothing refers to a dropped frame (streams without
/// B-frames). Returns the number of holes.
fn assert_holes_end_at_keyframes(frames: &[&FlvTag], frame_ms: u32) -> usize {
    let mut holes = 0;
    for w in frames.windows(2) {
        if w[1].timestamp.saturating_sub(w[0].timestamp) > frame_ms * 3 / 2 {
            holes += 1;
            assert!(
                w[1].is_keyframe(),
                "after the hole {} -> {} ms the stream resumes with a non-keyframe",
                w[0].timestamp,
                w[1].timestamp
            );
        }
    }
    holes
}

fn nginx_proxy() -> Option<(NginxRtmp, FaultProxy)> {
    let srv = NginxRtmp::start_default()?;
    let proxy = FaultProxy::start(SocketAddr::from(([127, 0, 0, 1], srv.port())));
    Some((srv, proxy))
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

#[test]
fn reliability_properties_have_documented_defaults() {
    init();
    let el = gst::ElementFactory::make("rtmpclientsink").build().unwrap();
    assert_eq!(el.property::<i32>("reconnect-attempts"), 10);
    assert_eq!(el.property::<u32>("reconnect-delay"), 1000);
    assert_eq!(el.property::<u32>("reconnect-delay-max"), 30_000);
    assert_eq!(el.property::<u32>("max-queue-time"), 3000);
    assert_eq!(el.property::<u32>("ping-interval"), 5000);
    let v = el.property_value("congestion-policy");
    let (_, ev) = gst::glib::EnumValue::from_value(&v).unwrap();
    assert_eq!(ev.nick(), "auto");
    el.set_property_from_str("congestion-policy", "drop");
    el.set_property("reconnect-attempts", -1i32);
    assert_eq!(el.property::<i32>("reconnect-attempts"), -1);
    let stats = el.property::<gst::Structure>("stats");
    for f in ["reconnects", "queue-time-ms", "send-backlog-bytes"] {
        assert!(stats.has_field(f), "stats lacks {f}");
    }
}

#[test]
fn requested_acknowledgement_window_survives_set_peer_bandwidth() {
    use gstrtmpclient::rtmp::chunk::ChunkBatch;
    use gstrtmpclient::rtmp::session::{PublishConfig, Session, SessionState};
    use gstrtmpclient::rtmp::url::RtmpUrl;
    let mut client = Session::new(PublishConfig::new(
        RtmpUrl::parse("rtmp://127.0.0.1/live/key").unwrap(),
    ));
    let mut server = scripted::ServerPeer::new();
    let exchange = |client: &mut Session, server: &mut scripted::ServerPeer| {
        for _ in 0..100 {
            let mut batch = ChunkBatch::new();
            client.drain_transmit(&mut batch);
            let msgs = server.feed(&batch.to_vec());
            server.answer_publish_flow(&msgs, &[]);
            let down = server.take_output();
            if batch.is_empty() && down.is_empty() {
                break;
            }
            client.handle_input(&down).unwrap();
        }
    };
    exchange(&mut client, &mut server);
    assert_eq!(client.state(), SessionState::Publishing);
    let windows = |server: &scripted::ServerPeer| -> Vec<u32> {
        server
            .received
            .iter()
            .filter(|m| m.msg_type_id == msg_type::WINDOW_ACK_SIZE)
            .map(|m| u32::from_be_bytes(m.payload[..4].try_into().unwrap()))
            .collect()
    };
    assert_eq!(windows(&server), vec![2_500_000]);
    client.request_acknowledgements(16_384).unwrap();
    // A hard Set Peer Bandwidth larger than the request does not announce a larger window.
    server.send(
        2,
        0,
        msg_type::SET_PEER_BANDWIDTH,
        0,
        &[0, 0x4c, 0x4b, 0x40, 0],
    );
    client.handle_input(&server.take_output()).unwrap();
    exchange(&mut client, &mut server);
    assert_eq!(windows(&server), vec![2_500_000, 16_384]);
    // The server's Acknowledgements show up in the stats.
    server.send(2, 0, msg_type::ACKNOWLEDGEMENT, 0, &40_000u32.to_be_bytes());
    client.handle_input(&server.take_output()).unwrap();
    assert_eq!(client.stats().bytes_acked_by_peer, 40_000);
}

// ---------------------------------------------------------------------------------------------
// Reconnect
// ---------------------------------------------------------------------------------------------

#[test]
fn nginx_restart_reconnects_and_the_recording_resumes_at_a_keyframe() {
    let _slot = shared();
    let Some(mut srv) = NginxRtmp::start_default() else {
        return;
    };
    let mut run = Run::new(&live_av(
        &srv.url("live", KEY),
        ZEROLATENCY,
        "reconnect-delay=300 reconnect-delay-max=1000 timeout=5",
        None,
    ));
    let seen = capture_sink_input(&run);
    run.play();
    assert!(
        run.pump_until(Duration::from_secs(10), |r| r.count("rtmp-publishing") >= 1),
        "never published: {:?}",
        run.errors()
    );
    run.pump(Duration::from_secs(3));
    let frames_before = run.stat("video-frames");
    let t_kill = Instant::now();
    srv.kill();
    run.pump(Duration::from_secs(2));
    srv.restart();
    let t_restart = Instant::now();
    assert!(
        run.pump_until(Duration::from_secs(20), |r| r.count("rtmp-publishing") >= 2),
        "no publish after the restart: {:?} {:?}",
        run.lifecycle(),
        run.errors()
    );
    let reconnect_after_kill = t_kill.elapsed();
    let reconnect_after_restart = t_restart.elapsed();
    assert_eq!(run.p.current_state(), gst::State::Playing);
    run.pump(Duration::from_secs(3));
    assert_eq!(run.p.current_state(), gst::State::Playing);
    let stats = run.stats();
    let eos = run.eos(Duration::from_secs(10));
    run.null();
    assert!(run.errors().is_empty(), "errors: {:?}", run.errors());
    run.assert_no_key_leak();

    let names = run.lifecycle();
    assert!(
        has_subsequence(
            &names,
            &[
                "rtmp-connected",
                "rtmp-publishing",
                "rtmp-disconnected",
                "rtmp-reconnecting",
                "rtmp-connected",
                "rtmp-publishing",
            ]
        ),
        "{names:?}"
    );
    let disc = run
        .structs()
        .into_iter()
        .find(|(_, s)| s.name() == "rtmp-disconnected")
        .unwrap()
        .1;
    assert!(disc.get::<bool>("will-reconnect").unwrap(), "{disc}");
    assert_eq!(stats.get::<u64>("reconnects").unwrap(), 1, "{stats}");

    // The recording after the restart (nginx recorded into a fresh file).
    let (rec, path) = recording(&srv, KEY);
    assert_decodes(&path);
    let av: Vec<&FlvTag> = rec
        .tags
        .iter()
        .filter(|t| t.is_video() || t.is_audio())
        .collect();
    assert!(av.len() > 50, "{} tags", av.len());
    let first_frame = av
        .iter()
        .position(|t| t.is_avc_nalu() || t.is_aac_raw())
        .unwrap();
    // Sequence headers first (nginx's recorder drops onMetaData; see the scripted test), then
    // a keyframe: nothing before it.
    assert!(
        av[..first_frame].iter().any(|t| t.is_avc_sequence_header()),
        "no AVC sequence header before the first frame"
    );
    assert!(
        av[..first_frame].iter().any(|t| t.is_aac_sequence_header()),
        "no AAC sequence header before the first frame"
    );
    assert!(
        av[first_frame].is_video() && av[first_frame].is_keyframe(),
        "first frame after the restart is not a video keyframe: {:?}",
        av[first_frame].data.get(..2)
    );
    // Same timeline: the recorded frames keep the spacing of their source running times.
    let src = seen.lock().unwrap();
    let video: Vec<&FlvTag> = rec.video_frames();
    let mut offsets = Vec::new();
    for t in &video {
        if let Some(dts) = t.video_payload().and_then(|p| src.get(&hash(p))) {
            offsets.push(i64::from(t.timestamp) - dts);
        }
    }
    assert!(
        offsets.len() + 2 >= video.len(),
        "only {} of {} recorded frames match the source",
        offsets.len(),
        video.len()
    );
    let (lo, hi) = (offsets.iter().min().unwrap(), offsets.iter().max().unwrap());
    assert!(hi - lo <= 1, "timeline offsets vary from {lo} to {hi} ms");
    report(&format!(
        "nginx killed after {frames_before} frames, restarted 2 s later (reconnect-delay 300 ms, \
         max 1 s): publishing again {:.2} s after the kill ({:.2} s after the restart); EOS took \
         {:.2} s; {} video frames recorded after the restart, first is a keyframe; dropped while \
         disconnected and to resume: video {} audio {}",
        reconnect_after_kill.as_secs_f64(),
        reconnect_after_restart.as_secs_f64(),
        eos.as_secs_f64(),
        video.len(),
        stats.get::<u64>("dropped-video").unwrap(),
        stats.get::<u64>("dropped-audio").unwrap(),
    ));
}

#[test]
fn network_outage_longer_than_timeout_is_detected_and_reconnected() {
    let _slot = shared();
    let Some((srv, proxy)) = nginx_proxy() else {
        return;
    };
    let mut run = Run::new(&live_av(
        &proxy.url("live", KEY),
        "tune=zerolatency bitrate=1500",
        "timeout=2 reconnect-delay=200 reconnect-delay-max=1000",
        None,
    ));
    run.play();
    assert!(run.pump_until(Duration::from_secs(10), |r| r.count("rtmp-publishing") >= 1));
    run.pump(Duration::from_secs(2));
    // Nothing gets through any more, in either direction, for new connections too; the
    // proxy keeps nginx's side of the old connection open.
    proxy.blackhole();
    let t = Instant::now();
    assert!(
        run.pump_until(Duration::from_secs(8), |r| r.count("rtmp-disconnected")
            >= 1),
        "outage not detected"
    );
    let detected = t.elapsed();
    run.pump_until(Duration::from_secs(6), |_| {
        t.elapsed() >= Duration::from_secs(6)
    });
    proxy.forward();
    let back = Instant::now();
    assert!(
        run.pump_until(Duration::from_secs(20), |r| r.count("rtmp-publishing") >= 2),
        "no publish after the outage: {:?} {:?}",
        run.lifecycle(),
        run.errors()
    );
    let resumed = back.elapsed();
    run.pump(Duration::from_secs(2));
    let stats = run.stats();
    run.eos(Duration::from_secs(10));
    run.null();
    assert!(run.errors().is_empty(), "{:?}", run.errors());
    run.assert_no_key_leak();
    let statuses: Vec<String> = run
        .structs()
        .iter()
        .filter(|(_, s)| s.name() == "rtmp-status")
        .filter_map(|(_, s)| s.get::<String>("code").ok())
        .collect();
    let attempts = run.count("rtmp-reconnecting");
    let reason = run
        .structs()
        .into_iter()
        .find(|(_, s)| s.name() == "rtmp-disconnected")
        .unwrap()
        .1
        .get::<String>("reason")
        .unwrap();
    let (rec, path) = recording(&srv, KEY);
    assert_decodes(&path);
    let first = rec
        .tags
        .iter()
        .find(|t| t.is_avc_nalu() || t.is_aac_raw())
        .unwrap();
    assert!(
        first.is_keyframe(),
        "the new recording does not start with a keyframe"
    );
    report(&format!(
        "network outage of 6 s, timeout=2s: disconnect {:.2} s after it began ({reason}); {attempts} \
         reconnection attempts; publishing again {:.2} s after the network came back; reconnects \
         {}; statuses {statuses:?}",
        detected.as_secs_f64(),
        resumed.as_secs_f64(),
        stats.get::<u64>("reconnects").unwrap()
    ));
}

/// A publish flow answered on every connection; connection `cut` is closed by the server after
/// `after` video frames.
fn cut_after(index: usize, cut: usize, after: usize) -> Script {
    let mut frames = 0;
    Box::new(move |peer, new| {
        peer.answer_publish_flow(new, &[]);
        if index == cut {
            frames += video_frames(new).len();
            if frames >= after {
                return Reply::Close;
            }
        }
        Reply::Continue
    })
}

/// The media/data messages of a connection, in order.
fn av_and_data(msgs: &[Message]) -> Vec<&Message> {
    msgs.iter()
        .filter(|m| {
            matches!(
                m.msg_type_id,
                msg_type::VIDEO | msg_type::AUDIO | msg_type::DATA_AMF0
            )
        })
        .collect()
}

fn is_metadata(m: &Message) -> bool {
    m.msg_type_id == msg_type::DATA_AMF0
        && scripted::data_values(m)
            .get(1)
            .is_some_and(|v| *v == Amf0Value::String("onMetaData".into()))
}

/// The first messages of a connection are onMetaData, then both sequence headers.
fn assert_starts_with_metadata_and_headers(msgs: &[Message], what: &str) {
    let m = av_and_data(msgs);
    assert!(m.len() >= 3, "{what}: only {} messages", m.len());
    assert!(is_metadata(m[0]), "{what}: first message is not onMetaData");
    let kinds: Vec<(u8, u8)> = m[1..3]
        .iter()
        .map(|x| (x.msg_type_id, x.payload[1]))
        .collect();
    assert!(
        kinds.contains(&(msg_type::VIDEO, 0)) && kinds.contains(&(msg_type::AUDIO, 0)),
        "{what}: messages 2 and 3 are not both sequence headers: {kinds:?}"
    );
}

/// The first messages of a connection are onMetaData, both sequence headers, then a video
/// keyframe (what a reconnect or a reconnect request must produce).
fn assert_starts_with_metadata_headers_keyframe(msgs: &[Message], what: &str) {
    let m = av_and_data(msgs);
    assert!(m.len() >= 4, "{what}: only {} messages", m.len());
    assert!(is_metadata(m[0]), "{what}: first message is not onMetaData");
    let kinds: Vec<(u8, u8)> = m[1..3]
        .iter()
        .map(|x| (x.msg_type_id, x.payload[1]))
        .collect();
    assert!(
        kinds.contains(&(msg_type::VIDEO, 0)) && kinds.contains(&(msg_type::AUDIO, 0)),
        "{what}: messages 2 and 3 are not both sequence headers: {kinds:?}"
    );
    assert_eq!(
        m[3].msg_type_id,
        msg_type::VIDEO,
        "{what}: 4th is not video"
    );
    assert_eq!(
        m[3].payload[..2],
        [0x17, 0x01],
        "{what}: 4th is not a keyframe"
    );
    let ts = m[3].timestamp;
    assert!(
        m[..3].iter().all(|x| x.timestamp == ts),
        "{what}: metadata and headers not at the keyframe's timestamp"
    );
}

#[test]
fn scripted_cut_reconnects_with_metadata_headers_keyframe_and_the_same_timeline() {
    let _slot = shared();
    let server = MultiServer::start(Duration::from_secs(40), 2, |i| cut_after(i, 0, 45));
    let mut run = Run::new(&live_av(
        &server.url("live", KEY),
        ZEROLATENCY,
        "reconnect-delay=200",
        Some((150, 235)),
    ));
    run.play();
    assert!(
        run.pump_until(Duration::from_secs(20), |r| r.has_eos()
            || !r.errors().is_empty()),
        "no EOS"
    );
    let stats = run.stats();
    run.null();
    assert!(run.errors().is_empty(), "{:?}", run.errors());
    let names = run.lifecycle();
    assert!(
        has_subsequence(
            &names,
            &[
                "rtmp-publishing",
                "rtmp-disconnected",
                "rtmp-reconnecting",
                "rtmp-connected",
                "rtmp-publishing"
            ]
        ),
        "{names:?}"
    );
    let peers = server.join();
    assert_eq!(peers.len(), 2);
    let (first, second) = (&peers[0].received, &peers[1].received);
    assert_starts_with_metadata_and_headers(first, "first connection");
    assert_starts_with_metadata_headers_keyframe(second, "second connection");
    // The timeline goes on: the second connection starts after the first one's last frame.
    let last_first = first
        .iter()
        .filter(|m| m.msg_type_id == msg_type::VIDEO || m.msg_type_id == msg_type::AUDIO)
        .map(|m| m.timestamp)
        .max()
        .unwrap();
    let first_second = video_frames(second)[0].timestamp;
    assert!(
        first_second > last_first,
        "second connection starts at {first_second} ms, before {last_first} ms"
    );
    // Frames are spaced by real time across the cut: the hole is about as long as the outage.
    let v2 = video_frames(second);
    let span = v2.last().unwrap().timestamp - v2[0].timestamp;
    assert!(
        (span as i64 - (v2.len() as i64 - 1) * 33).abs() < 200,
        "second connection's timestamps are not 30 fps spaced"
    );
    report(&format!(
        "scripted cut after 45 frames: second connection starts at {first_second} ms (first ended \
         at {last_first} ms) with onMetaData, AVC+AAC sequence headers, keyframe; resync dropped \
         video {} audio {}",
        stats.get::<u64>("dropped-video").unwrap(),
        stats.get::<u64>("dropped-audio").unwrap()
    ));
}

#[test]
fn bad_name_after_a_reconnect_is_retried() {
    let _slot = shared();
    let server = MultiServer::start(Duration::from_secs(40), 3, |i| match i {
        1 => Box::new(|peer, new| {
            if rtmp_servers::answer_publish_with_bad_name(peer, new) {
                Reply::DrainUntilClose
            } else {
                Reply::Continue
            }
        }),
        _ => cut_after(i, 0, 30),
    });
    let mut run = Run::new(&live_av(
        &server.url("live", KEY),
        ZEROLATENCY,
        "reconnect-delay=100",
        Some((120, 188)),
    ));
    run.play();
    assert!(
        run.pump_until(Duration::from_secs(20), |r| r.has_eos()
            || !r.errors().is_empty()),
        "no EOS"
    );
    let stats = run.stats();
    run.null();
    assert!(run.errors().is_empty(), "{:?}", run.errors());
    assert_eq!(run.count("rtmp-reconnecting"), 2, "{:?}", run.lifecycle());
    assert_eq!(run.count("rtmp-publishing"), 2, "{:?}", run.lifecycle());
    assert_eq!(stats.get::<u64>("reconnects").unwrap(), 1);
    let peers = server.join();
    assert_eq!(peers.len(), 3);
    assert!(video_frames(&peers[1].received).is_empty());
    assert_starts_with_metadata_headers_keyframe(&peers[2].received, "third connection");
    report(&format!(
        "BadName on the first reconnect attempt, published on the second; {} frames on the last \
         connection",
        video_frames(&peers[2].received).len()
    ));
}

/// Threads of this process whose name (as Linux shows it, 15 characters) starts with `rtmp-`
/// and ends with `-{tag}`: the element's session, reader and connect threads.
fn element_threads(tag: &str) -> usize {
    let suffix = format!("-{tag}");
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| {
                    std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| {
                        let c = c.trim_end();
                        c.starts_with("rtmp-") && c.ends_with(&suffix)
                    })
                })
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn spent_reconnect_budget_is_one_error_and_leaves_no_thread() {
    let _slot = shared();
    init();
    // The sink's name ends up in its thread names: only this element's threads are counted.
    const NAME: &str = "budget";
    assert_eq!(element_threads(NAME), 0);
    let mut server = MultiServer::start(Duration::from_secs(30), 1, |i| cut_after(i, 0, 30));
    let url = server.url("live", KEY);
    let launch = live_av(
        &url,
        ZEROLATENCY,
        "reconnect-attempts=3 reconnect-delay=100 reconnect-delay-max=400",
        None,
    )
    .replace("name=s ", &format!("name={NAME} "))
    .replace(" s.audio", &format!(" {NAME}.audio"));
    let mut run = Run::with_sink(&launch, NAME);
    run.play();
    assert!(run.pump_until(Duration::from_secs(10), |r| r.count("rtmp-publishing") >= 1));
    let while_publishing = element_threads(NAME);
    // Only one connection is served; afterwards the port is closed: every attempt is refused.
    assert!(run.pump_until(Duration::from_secs(10), |_| server.accepted() >= 1));
    server.stop_listening();
    assert!(
        run.pump_until(Duration::from_secs(15), |r| !r.errors().is_empty()),
        "no error after the budget: {:?}",
        run.lifecycle()
    );
    let at = |kind: &str| {
        run.msgs
            .iter()
            .find(|(_, m)| match m.view() {
                gst::MessageView::Error(_) => kind == "error",
                _ => m.structure().is_some_and(|s| s.name() == kind),
            })
            .map(|(t, _)| *t)
            .unwrap()
    };
    let gave_up_after = at("error") - at("rtmp-disconnected");
    // Nothing else comes: exactly one ERROR.
    run.pump(Duration::from_millis(500));
    let null = run.null();
    run.pump(Duration::from_millis(200));
    // One ERROR from the sink, and it comes first (upstream then reports the flow error as
    // "Internal data stream error", as usual in GStreamer).
    let errors = run.errors();
    let ours = run.errors_from(NAME);
    assert_eq!(ours.len(), 1, "{errors:?}");
    assert_eq!(errors[0], ours[0]);
    assert!(
        ours[0].contains("could not reconnect (3 attempts)"),
        "{}",
        ours[0]
    );
    run.assert_no_key_leak();
    assert_eq!(run.count("rtmp-reconnecting"), 3, "{:?}", run.lifecycle());
    let attempts: Vec<u32> = run
        .structs()
        .iter()
        .filter(|(_, s)| s.name() == "rtmp-reconnecting")
        .map(|(_, s)| s.get::<u32>("attempt").unwrap())
        .collect();
    assert_eq!(attempts, vec![1, 2, 3]);
    drop(run);
    drop(server);
    let t = Instant::now();
    let gone = common::util::wait_for(Duration::from_secs(3), || element_threads(NAME) == 0);
    assert!(
        gone,
        "{} threads of the element left",
        element_threads(NAME)
    );
    report(&format!(
        "budget of 3 attempts (100/200/400 ms +-20%) spent {:.2} s after the disconnect: one ERROR; \
         NULL took {} ms; element threads while publishing {while_publishing}, after NULL 0 \
         (within {} ms)",
        gave_up_after.as_secs_f64(),
        null.as_millis(),
        t.elapsed().as_millis()
    ));
}

// ---------------------------------------------------------------------------------------------
// Congestion
// ---------------------------------------------------------------------------------------------

/// Memory growth allowed during a 5 s stall with max-queue-time=1s (the queue holds about
/// 250 KB at this bitrate; the rest is allocator slack).
const STALL_RSS_BOUND_KB: u64 = 20 * 1024;

#[test]
fn stall_with_drop_policy_keeps_memory_bounded_and_resumes_at_a_keyframe() {
    let _slot = exclusive();
    let Some((srv, proxy)) = nginx_proxy() else {
        return;
    };
    let mut run = Run::new(&live_av(
        &proxy.url("live", KEY),
        "tune=zerolatency bitrate=2000",
        "congestion-policy=drop max-queue-time=1000",
        None,
    ));
    run.play();
    assert!(run.pump_until(Duration::from_secs(10), |r| r.count("rtmp-publishing") >= 1));
    run.pump(Duration::from_secs(3));
    let rss_before = vm_rss_kb();
    let mut rss_peak = rss_before;
    let mut qt_peak = 0;
    let mut depth_peak = 0;
    proxy.blackhole();
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(5) {
        run.pump(Duration::from_millis(100));
        rss_peak = rss_peak.max(vm_rss_kb());
        let s = run.stats();
        qt_peak = qt_peak.max(s.get::<u64>("queue-time-ms").unwrap());
        depth_peak = depth_peak.max(s.get::<u64>("queue-bytes").unwrap());
    }
    let during = run.stats();
    proxy.forward();
    run.pump(Duration::from_secs(4));
    let after = run.stats();
    run.eos(Duration::from_secs(10));
    run.null();
    assert!(run.errors().is_empty(), "{:?}", run.errors());
    let dropped_v = during.get::<u64>("dropped-video").unwrap();
    let dropped_a = during.get::<u64>("dropped-audio").unwrap();
    assert!(dropped_v > 0, "nothing dropped during the stall: {during}");
    assert!(run.count("rtmp-congestion") >= 1);
    assert_eq!(after.get::<u64>("reconnects").unwrap(), 0, "{after}");
    let growth = rss_peak.saturating_sub(rss_before);
    assert!(
        growth < STALL_RSS_BOUND_KB,
        "resident memory grew by {growth} kB during the stall"
    );
    // The queue never holds more than twice max-queue-time.
    assert!(qt_peak <= 2100, "queue time reached {qt_peak} ms");
    let (rec, path) = recording(&srv, KEY);
    assert_decodes(&path);
    let video = rec.video_frames();
    let holes = assert_holes_end_at_keyframes(&video, 33);
    assert!(holes >= 1, "no hole in the recording");
    report(&format!(
        "5 s stall, drop policy, max-queue-time=1s: dropped video {dropped_v} audio {dropped_a}, \
         queue time peak {qt_peak} ms, queue bytes peak {depth_peak}, VmRSS {rss_before} kB -> peak \
         {rss_peak} kB (+{growth} kB, bound {STALL_RSS_BOUND_KB} kB); recording resumes at a \
         keyframe after {holes} hole(s) and decodes cleanly"
    ));
}

#[test]
fn stall_with_block_policy_blocks_upstream_and_loses_nothing() {
    let _slot = shared();
    let Some(mkv) = media::h264_aac_mkv(10, 320, 240, 3000, 0) else {
        return;
    };
    let Some((srv, proxy)) = nginx_proxy() else {
        return;
    };
    let launch = format!(
        "filesrc location={} ! matroskademux name=d \
         d.video_0 ! queue ! rtmpclientsink name=s location={} congestion-policy=block \
         max-queue-time=1000 d.audio_0 ! queue ! s.audio",
        mkv.display(),
        proxy.url("live", KEY)
    );
    let mut run = Run::new(&launch);
    let counts = count_sink_input(&run);
    run.play();
    assert!(run.pump_until(Duration::from_secs(10), |r| r.count("rtmp-publishing") >= 1));
    run.pump(Duration::from_secs(2));
    proxy.blackhole();
    run.pump(Duration::from_millis(3500));
    let at_3500 = *counts.lock().unwrap();
    run.pump(Duration::from_millis(1500));
    let at_5000 = *counts.lock().unwrap();
    let during = run.stats();
    proxy.forward();
    assert!(
        run.pump_until(Duration::from_secs(30), |r| r.has_eos()
            || !r.errors().is_empty()),
        "no EOS"
    );
    let stats = run.stats();
    run.null();
    assert!(run.errors().is_empty(), "{:?}", run.errors());
    assert_eq!(at_3500, at_5000, "upstream kept pushing during the stall");
    assert_eq!(
        stats.get::<u64>("dropped-video").unwrap() + stats.get::<u64>("dropped-audio").unwrap(),
        0,
        "{stats}"
    );
    let (rec, path) = recording(&srv, KEY);
    assert_decodes(&path);
    let [v_in, a_in] = *counts.lock().unwrap();
    assert_eq!(rec.video_frames().len() as u64, v_in, "video frames lost");
    assert_eq!(rec.audio_frames().len() as u64, a_in, "audio frames lost");
    report(&format!(
        "5 s stall, block policy, max-queue-time=1s: upstream blocked (input counters {at_3500:?} \
         at +3.5 s and +5 s), queue time {} ms during the stall; all {v_in} video and {a_in} audio \
         frames recorded, none dropped",
        during.get::<u64>("queue-time-ms").unwrap()
    ));
}

#[test]
fn throttled_link_drops_b_frames_and_gops_but_stays_live_and_decodable() {
    let _slot = shared();
    let Some((srv, proxy)) = nginx_proxy() else {
        return;
    };
    // The proxy's socket acknowledges whatever fits its (autotuned, large) receive buffer: the
    // element goes by the server's RTMP Acknowledgements to see how far nginx really got.
    let mut run = Run::new(&live_av(
        &proxy.url("live", KEY),
        "bitrate=2400 bframes=2 b-adapt=false rc-lookahead=5 sync-lookahead=0",
        "congestion-policy=drop max-queue-time=1000",
        None,
    ));
    run.play();
    assert!(run.pump_until(Duration::from_secs(10), |r| r.count("rtmp-publishing") >= 1));
    run.pump(Duration::from_secs(2));
    let bitrate = run.stat("bitrate");
    // Half of what the stream needs.
    let rate = (bitrate / 8 / 2).max(20_000);
    proxy.throttle(rate);
    let t = Instant::now();
    let mut qt_peak = 0;
    while t.elapsed() < Duration::from_secs(20) {
        run.pump(Duration::from_millis(100));
        qt_peak = qt_peak.max(run.stat("queue-time-ms"));
    }
    let during = run.stats();
    proxy.forward();
    run.pump(Duration::from_secs(2));
    let eos = run.eos(Duration::from_secs(10));
    run.null();
    assert!(run.errors().is_empty(), "{:?}", run.errors());
    let dropped_v = during.get::<u64>("dropped-video").unwrap();
    assert!(dropped_v > 0, "{during}");
    assert_eq!(during.get::<u64>("dropped-audio").unwrap(), 0, "{during}");
    assert_eq!(during.get::<u64>("reconnects").unwrap(), 0, "{during}");
    assert!(qt_peak <= 2000, "queue time reached {qt_peak} ms");
    let congestion = run.count("rtmp-congestion");
    assert!(
        (1..=25).contains(&congestion),
        "{congestion} congestion messages in 20 s"
    );
    let (rec, path) = recording(&srv, KEY);
    assert_decodes(&path);
    report(&format!(
        "20 s throttled to {} kbit/s (stream {} kbit/s), drop policy, max-queue-time=1s: dropped \
         video {dropped_v}, audio 0, queue time peak {qt_peak} ms, {congestion} rtmp-congestion \
         messages; {} video frames recorded, decode clean; EOS {:.2} s",
        rate * 8 / 1000,
        bitrate / 1000,
        rec.video_frames().len(),
        eos.as_secs_f64()
    ));
}

// ---------------------------------------------------------------------------------------------
// Enhanced RTMP reconnect request
// ---------------------------------------------------------------------------------------------

/// Publishes a finite live stream to `url` and returns the bus and the sink's input counts.
fn run_finite(url: &str) -> (Run, [u64; 2], gst::Structure) {
    let mut run = Run::new(&live_av(url, ZEROLATENCY, "", Some((150, 235))));
    let counts = count_sink_input(&run);
    run.play();
    assert!(
        run.pump_until(Duration::from_secs(25), |r| r.has_eos()
            || !r.errors().is_empty()),
        "no EOS"
    );
    let stats = run.stats();
    run.null();
    assert!(run.errors().is_empty(), "{:?}", run.errors());
    let c = *counts.lock().unwrap();
    (run, c, stats)
}

/// Both servers together got every frame exactly once, in order, the new one starting with
/// metadata, sequence headers and a keyframe.
fn assert_handover(old: &[Message], new: &[Message], counts: [u64; 2], what: &str) {
    assert_starts_with_metadata_headers_keyframe(new, what);
    for (kind, frames_of, n) in [
        (
            "video",
            video_frames as fn(&[Message]) -> Vec<&Message>,
            counts[0],
        ),
        ("audio", audio_frames, counts[1]),
    ] {
        let a = frames_of(old);
        let b = frames_of(new);
        assert!(
            !a.is_empty() && !b.is_empty(),
            "{what}: {kind} on one side only"
        );
        assert_eq!(
            (a.len() + b.len()) as u64,
            n,
            "{what}: {kind}: {} + {} frames received, {n} given",
            a.len(),
            b.len()
        );
        let last_old = a.last().unwrap().timestamp;
        assert!(
            b[0].timestamp >= last_old,
            "{what}: {kind} goes back at the switch ({last_old} -> {})",
            b[0].timestamp
        );
        let mut seen = std::collections::HashSet::new();
        for m in a.iter().chain(b.iter()) {
            assert!(
                seen.insert((m.timestamp, hash(&m.payload))),
                "{what}: {kind} frame at {} ms sent twice",
                m.timestamp
            );
        }
    }
}

fn reconnect_request_case(form: &str) {
    let _slot = shared();
    let target = MultiServer::start(Duration::from_secs(40), 1, |_| publish_only());
    let tc_url = match form {
        "absolute" => format!("rtmp://127.0.0.1:{}/live2", target.port),
        "network-path" => format!("//127.0.0.1:{}/live2", target.port),
        _ => unreachable!(),
    };
    let origin = MultiServer::start(Duration::from_secs(40), 1, move |_| {
        request_reconnect(tc_url.clone(), 40, |m| video_frames(m).len())
    });
    let (run, counts, stats) = run_finite(&origin.url("live", KEY));
    let old = origin.join().remove(0).received;
    let new = target.join().remove(0).received;
    assert_eq!(connect_app(&new).as_deref(), Some("live2"));
    assert_handover(&old, &new, counts, form);
    check_reconnect_request_bus(&run, &stats);
    report(&format!(
        "reconnect request ({form} tcUrl): {} + {} video and {} + {} audio frames on old + new \
         server = {:?} given, none twice; switch at {} ms",
        video_frames(&old).len(),
        video_frames(&new).len(),
        audio_frames(&old).len(),
        audio_frames(&new).len(),
        counts,
        video_frames(&new)[0].timestamp
    ));
}

fn check_reconnect_request_bus(run: &Run, stats: &gst::Structure) {
    let names = run.lifecycle();
    assert!(
        has_subsequence(
            &names,
            &[
                "rtmp-publishing",
                "rtmp-reconnect-request",
                "rtmp-connected",
                "rtmp-publishing"
            ]
        ),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n == "rtmp-reconnecting"), "{names:?}");
    assert_eq!(stats.get::<u64>("reconnects").unwrap(), 1, "{stats}");
    run.assert_no_key_leak();
}

#[test]
fn reconnect_request_with_an_absolute_tc_url() {
    reconnect_request_case("absolute");
}

#[test]
fn reconnect_request_with_a_network_path_tc_url() {
    reconnect_request_case("network-path");
}

#[test]
fn reconnect_request_with_a_relative_tc_url_goes_to_another_app_on_the_same_server() {
    let _slot = shared();
    // One server, two concurrent connections: the origin (app live) and the target (app
    // live2, resolved from "/live2" against rtmp://127.0.0.1:PORT/live).
    let server = MultiServer::start(Duration::from_secs(40), 2, |i| {
        if i == 0 {
            request_reconnect("/live2".into(), 40, |m| video_frames(m).len())
        } else {
            publish_only()
        }
    });
    let (run, counts, stats) = run_finite(&server.url("live", KEY));
    let peers = server.join();
    assert_eq!(peers.len(), 2);
    let (old, new) = (&peers[0].received, &peers[1].received);
    assert_eq!(connect_app(old).as_deref(), Some("live"));
    assert_eq!(connect_app(new).as_deref(), Some("live2"));
    assert_handover(old, new, counts, "relative");
    check_reconnect_request_bus(&run, &stats);
    let publish_names: Vec<String> = new
        .iter()
        .filter_map(scripted::command_of)
        .filter(|c| c.name == "publish")
        .filter_map(|c| c.args.first().and_then(|a| a.as_str().map(String::from)))
        .collect();
    assert_eq!(
        publish_names,
        vec![KEY.to_string()],
        "stream key on the target"
    );
    report(&format!(
        "reconnect request (relative tcUrl \"/live2\"): {} + {} video frames, {} + {} audio frames \
         = {:?} given",
        video_frames(old).len(),
        video_frames(new).len(),
        audio_frames(old).len(),
        audio_frames(new).len(),
        counts
    ));
}

// ---------------------------------------------------------------------------------------------
// Dead peers and stopping
// ---------------------------------------------------------------------------------------------

/// Accepts TCP connections and never answers (reads and discards) until `limit`.
fn silent_server(limit: Duration) -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let end = Instant::now() + limit;
        let mut socks = Vec::new();
        let mut buf = [0u8; 4096];
        while Instant::now() < end {
            if let Ok((s, _)) = listener.accept() {
                s.set_nonblocking(true).ok();
                socks.push(s);
            }
            for s in &mut socks {
                let _ = s.read(&mut buf);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    (port, h)
}

const DEAD_TIMEOUT_S: u64 = 2;

#[test]
fn silent_server_null_and_eos_are_bounded_by_the_timeout() {
    let _slot = shared();
    let bound = Duration::from_secs(DEAD_TIMEOUT_S + 1);
    let (port, server) = silent_server(Duration::from_secs(10));
    let url = format!("rtmp://127.0.0.1:{port}/live/{KEY}");
    let props = format!("timeout={DEAD_TIMEOUT_S}");

    let mut run = Run::new(&live_av(&url, ZEROLATENCY, &props, None));
    run.play();
    run.pump(Duration::from_millis(500));
    let null = run.null();
    assert!(null < bound, "NULL took {null:?}");

    let mut run = Run::new(&live_av(&url, ZEROLATENCY, &props, None));
    run.play();
    run.pump(Duration::from_millis(500));
    let eos = run.eos(bound);
    assert!(eos < bound, "EOS took {eos:?}");
    let null2 = run.null();
    assert!(null2 < bound, "NULL after EOS took {null2:?}");
    run.assert_no_key_leak();
    drop(run);
    server.join().unwrap();
    report(&format!(
        "server that never answers, timeout={DEAD_TIMEOUT_S}s: NULL {} ms, EOS handled in {} ms \
         (then NULL {} ms)",
        null.as_millis(),
        eos.as_millis(),
        null2.as_millis()
    ));
}

#[test]
fn server_that_stops_reading_is_detected_and_null_and_eos_are_bounded() {
    let _slot = shared();
    let bound = Duration::from_secs(DEAD_TIMEOUT_S + 1);
    // Accepts the publish, takes 30 frames, then never reads again (socket kept open); later
    // connections are not served at all (so reconnects cannot succeed either).
    let stalled_at: Arc<Mutex<Option<Instant>>> = Default::default();
    let stalled_at2 = stalled_at.clone();
    let stop_reading = move |_| -> Script {
        let mut frames = 0;
        let stalled_at = stalled_at2.clone();
        Box::new(move |peer, new| {
            peer.answer_publish_flow(new, &[]);
            frames += video_frames(new).len();
            if frames >= 30 {
                *stalled_at.lock().unwrap() = Some(Instant::now());
                Reply::StopReading
            } else {
                Reply::Continue
            }
        })
    };
    let props = format!("timeout={DEAD_TIMEOUT_S} reconnect-delay=200");

    // Detection: the connection is declared dead within `timeout` of the stall.
    let server = MultiServer::start(Duration::from_secs(20), 1, stop_reading.clone());
    let mut run = Run::new(&live_av(
        &server.url("live", KEY),
        "tune=zerolatency bitrate=4000",
        &props,
        None,
    ));
    run.play();
    assert!(run.pump_until(Duration::from_secs(10), |r| r.count("rtmp-publishing") >= 1));
    assert!(
        run.pump_until(Duration::from_secs(10), |r| r.count("rtmp-disconnected")
            >= 1),
        "stall not detected"
    );
    let detected = stalled_at
        .lock()
        .unwrap()
        .map(|t| t.elapsed())
        .expect("the server stalled");
    let reason = run
        .structs()
        .into_iter()
        .find(|(_, s)| s.name() == "rtmp-disconnected")
        .unwrap()
        .1
        .get::<String>("reason")
        .unwrap();
    assert!(reason.contains("timed out"), "{reason}");
    let null = run.null();
    assert!(null < bound, "NULL took {null:?}");
    drop(run);
    drop(server);

    // EOS while the writes are stalled.
    let server = MultiServer::start(Duration::from_secs(20), 1, stop_reading);
    let mut run = Run::new(&live_av(
        &server.url("live", KEY),
        "tune=zerolatency bitrate=4000",
        &format!("timeout={DEAD_TIMEOUT_S} reconnect-delay=5000"),
        None,
    ));
    run.play();
    assert!(run.pump_until(Duration::from_secs(10), |r| r.count("rtmp-publishing") >= 1));
    // Let the socket buffers fill.
    run.pump(Duration::from_millis(1500));
    let eos = run.eos(bound);
    assert!(eos < bound, "EOS took {eos:?}");
    let null2 = run.null();
    assert!(null2 < bound, "NULL took {null2:?}");
    drop(run);
    drop(server);
    report(&format!(
        "server that stops reading, timeout={DEAD_TIMEOUT_S}s: disconnect {} ms after it stopped \
         (socket buffers fill first) ({reason}); NULL {} ms; EOS with stalled writes handled in \
         {} ms (then NULL {} ms)",
        detected.as_millis(),
        null.as_millis(),
        eos.as_millis(),
        null2.as_millis()
    ));
}
