#![cfg(feature = "gst")]
//! Issue 9's reconnect check: live HEVC + Opus into `rtmpclientsink` keeps its Enhanced RTMP
//! configuration and its timeline across a new connection.
//!
//! - A real restart: FFmpeg 9 listening is stopped mid-stream and a new FFmpeg 9 listens on the
//!   same port. The second recording starts with a keyframe, holds the same hvcC and OpusHead,
//!   continues the first one's timeline (one constant PTS shift against the element's input
//!   over both connections; no frame twice) and decodes cleanly.
//! - A scripted server that closes the first connection: the new connection's exact message
//!   order (onMetaData, HEVC SequenceStart, Opus SequenceStart, HEVC keyframe).
//! - A scripted `NetConnection.Connect.ReconnectRequest`: the new server gets both tracks the
//!   same way, and the two servers together get every frame exactly once.
//!
//! The reference for every packet is what the element was given (a probe on its pads): bytes
//! (MD5) and running-time PTS in ms, rounded half up (the element's rule).

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;

use common::ffmpeg9::{
    Ff9Listen, FrameMd5, Outputs, decode_errors, ffmpeg9, md5_hex, sequence_starts,
};
use common::gstmedia_ertmp::{caps_buffer, caps_first_streamheader};
use common::gstrun::{pipeline, require_elements};
use common::rtmp_servers::{MultiServer, Reply, publish_only, request_reconnect};
use common::scripted;
use common::util::{TempDir, has_subsequence, shared};
use gstrtmpclient::codec::flv::{
    self, AudioPacketType, AudioTag, FrameType, HVC1, OPUS, VideoPacketType, VideoTagBody,
};
use gstrtmpclient::rtmp::amf0::Amf0Value;
use gstrtmpclient::rtmp::message::{Message, msg_type};

const RUN_TIMEOUT: Duration = Duration::from_secs(40);
const SERVER_EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Live HEVC (hvc1, B-frames, a keyframe every second) and live Opus into `rtmpclientsink
/// name=s`. White noise and a moving ball keep frames distinct, so bytes identify a frame.
fn live_hevc_opus(url: &str, video_frames: u32, sink_props: &str) -> String {
    // 20 ms Opus frames over the same duration as the video.
    let audio_frames = video_frames * 50 / 30;
    format!(
        "videotestsrc is-live=true pattern=ball num-buffers={video_frames} ! \
         video/x-raw,format=I420,width=160,height=120,framerate=30/1 ! \
         x265enc speed-preset=ultrafast key-int-max=30 option-string=\"bframes=2:scenecut=0\" ! \
         h265parse ! video/x-h265,stream-format=hvc1,alignment=au ! \
         rtmpclientsink name=s location={url} {sink_props} \
         audiotestsrc is-live=true wave=white-noise num-buffers={audio_frames} \
         samplesperbuffer=960 ! audio/x-raw,rate=48000,channels=2 ! audioconvert ! opusenc ! \
         s.audio"
    )
}

fn elements_present() -> bool {
    require_elements(&["x265enc", "h265parse", "opusenc", "audiotestsrc"])
}

/// One buffer the element was given.
#[derive(Debug, Clone)]
struct Fed {
    md5: String,
    pts_ms: i64,
    key: bool,
}

/// What the element was given on one pad: its buffers and its last caps.
#[derive(Default)]
struct Input {
    buffers: Vec<Fed>,
    caps: Option<gst::Caps>,
}

type Recorded = Arc<Mutex<Input>>;

/// Records every buffer reaching `pad_name` of the sink.
fn record(sink: &gst::Element, pad_name: &str) -> Recorded {
    let pad = sink
        .sink_pads()
        .into_iter()
        .find(|p| p.name() == pad_name)
        .unwrap_or_else(|| panic!("rtmpclientsink has no linked pad {pad_name}"));
    let rec: Recorded = Default::default();
    let r = rec.clone();
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(b) = info.buffer() else {
            return gst::PadProbeReturn::Ok;
        };
        let seg = pad
            .sticky_event::<gst::event::Segment>(0)
            .and_then(|e| e.segment().downcast_ref::<gst::ClockTime>().cloned());
        let rt = seg
            .zip(b.pts())
            .and_then(|(s, pts)| s.to_running_time_full(pts))
            .map(|t| match t {
                gst::Signed::Positive(t) => t.nseconds() as i64,
                gst::Signed::Negative(t) => -(t.nseconds() as i64),
            })
            .expect("a PTS in a time segment");
        let md5 = md5_hex(&b.map_readable().expect("readable buffer"));
        let mut g = r.lock().unwrap();
        if g.caps.is_none() {
            g.caps = pad.current_caps();
        }
        g.buffers.push(Fed {
            md5,
            pts_ms: (rt + 500_000).div_euclid(1_000_000),
            key: !b.flags().contains(gst::BufferFlags::DELTA_UNIT),
        });
        gst::PadProbeReturn::Ok
    });
    rec
}

/// A running pipeline, its sink's input and what the bus said.
struct Run {
    p: gst::Pipeline,
    video: Recorded,
    audio: Recorded,
    /// Names of the sink's element messages, in order.
    lifecycle: Vec<String>,
    eos: bool,
}

impl Run {
    fn start(launch: &str) -> Run {
        let p = pipeline(launch);
        let sink = p.by_name("s").expect("sink s");
        let video = record(&sink, "sink");
        let audio = record(&sink, "audio");
        p.set_state(gst::State::Playing).expect("PLAYING");
        Run {
            p,
            video,
            audio,
            lifecycle: Vec::new(),
            eos: false,
        }
    }

    fn stat(&self, field: &str) -> u64 {
        let s = self
            .p
            .by_name("s")
            .unwrap()
            .property::<gst::Structure>("stats");
        s.get::<u64>(field)
            .unwrap_or_else(|e| panic!("{field}: {e}"))
    }

    /// Handles bus messages until `cond` holds or `limit` passes; panics on an error.
    fn pump_until(&mut self, limit: Duration, mut cond: impl FnMut(&Run) -> bool) -> bool {
        let bus = self.p.bus().unwrap();
        let end = Instant::now() + limit;
        while !cond(self) {
            let Some(left) = end.checked_duration_since(Instant::now()) else {
                return false;
            };
            let wait = left.min(Duration::from_millis(50));
            let Some(msg) = bus.timed_pop(gst::ClockTime::from_nseconds(wait.as_nanos() as u64))
            else {
                continue;
            };
            match msg.view() {
                gst::MessageView::Eos(_) => self.eos = true,
                gst::MessageView::Error(e) => {
                    let _ = self.p.set_state(gst::State::Null);
                    panic!(
                        "error from {:?}: {} ({:?}); lifecycle {:?}",
                        e.src().map(|s| s.path_string()),
                        e.error(),
                        e.debug(),
                        self.lifecycle
                    );
                }
                gst::MessageView::Element(e) => {
                    let named = e.structure().map(|s| s.name().to_string());
                    if let Some(n) = named.filter(|n| n.starts_with("rtmp-") && n != "rtmp-stats") {
                        self.lifecycle.push(n);
                    }
                }
                _ => {}
            }
        }
        true
    }

    /// Waits for EOS, then NULL; returns the element's input (video, audio).
    fn finish(mut self) -> (Input, Input, Vec<String>, u64) {
        assert!(
            self.pump_until(RUN_TIMEOUT, |r| r.eos),
            "no EOS; lifecycle {:?}",
            self.lifecycle
        );
        let reconnects = self.stat("reconnects");
        self.p.set_state(gst::State::Null).unwrap();
        let take = |r: &Recorded| std::mem::take(&mut *r.lock().unwrap());
        (
            take(&self.video),
            take(&self.audio),
            std::mem::take(&mut self.lifecycle),
            reconnects,
        )
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.p.set_state(gst::State::Null);
    }
}

/// The lifecycle of one lost connection and one reconnect.
fn assert_reconnected_once(lifecycle: &[String], reconnects: u64) {
    let cut = [
        "rtmp-publishing",
        "rtmp-disconnected",
        "rtmp-reconnecting",
        "rtmp-publishing",
    ];
    assert!(has_subsequence(lifecycle, &cut), "{lifecycle:?}");
    assert_eq!(reconnects, 1, "{lifecycle:?}");
}

/// One packet as a server received it: bytes (MD5), DTS and PTS in ms.
#[derive(Debug, Clone)]
struct Got {
    md5: String,
    dts: i64,
    pts: i64,
}

/// The checks of a new connection against the element's input `src` on one stream: the first
/// connection got `src[..n1]` in order; the second a run `src[j..]` to the end with `j >= n1`
/// (nothing twice; exactly `n1` when `lossless`), starting at a keyframe if `key_first`; every
/// PTS is the input's plus `shift` on both connections (one timeline, no reset). Returns `j`.
#[allow(clippy::too_many_arguments)]
fn check_stream(
    what: &str,
    src: &[Fed],
    first: &[Got],
    second: &[Got],
    shift: i64,
    key_first: bool,
    lossless: bool,
) -> usize {
    assert!(
        first.len() > 5,
        "{what}: {} packets on the first connection",
        first.len()
    );
    assert!(
        !second.is_empty(),
        "{what}: nothing on the second connection"
    );
    for (i, g) in first.iter().enumerate() {
        assert_eq!(
            g.md5, src[i].md5,
            "{what}: first connection packet {i} is not input buffer {i}"
        );
    }
    let n1 = first.len();
    let j = src
        .iter()
        .skip(n1)
        .position(|f| f.md5 == second[0].md5)
        .map(|p| p + n1)
        .unwrap_or_else(|| {
            let earlier = src[..n1].iter().position(|f| f.md5 == second[0].md5);
            panic!(
                "{what}: the second connection starts with no input buffer after the first \
                 connection's {n1} (matches earlier buffer {earlier:?}: a duplicate)"
            )
        });
    if lossless {
        assert_eq!(j, n1, "{what}: {} input buffers lost at the switch", j - n1);
    }
    assert_eq!(
        j + second.len(),
        src.len(),
        "{what}: the second connection does not run to the end: starts at input {j}, {} \
         packets, {} given",
        second.len(),
        src.len()
    );
    for (k, g) in second.iter().enumerate() {
        assert_eq!(
            g.md5,
            src[j + k].md5,
            "{what}: second connection packet {k} is not input buffer {}",
            j + k
        );
    }
    if key_first {
        assert!(
            src[j].key,
            "{what}: the second connection starts with a delta frame"
        );
    }
    for (conn, pkts, base) in [("first", first, 0), ("second", second, j)] {
        for (k, g) in pkts.iter().enumerate() {
            assert_eq!(
                g.pts - src[base + k].pts_ms,
                shift,
                "{what}: {conn} connection packet {k}: PTS {} ms for input {} ms (timeline \
                 shift {shift} ms)",
                g.pts,
                src[base + k].pts_ms
            );
        }
    }
    let last_first = first.iter().map(|g| g.dts).max().unwrap();
    let first_second = second.iter().map(|g| g.dts).min().unwrap();
    assert!(
        first_second > last_first,
        "{what}: the second connection goes back to {first_second} ms (first ended at \
         {last_first} ms)"
    );
    j
}

/// Per stream codec (hevc, opus) of a framemd5: its packets.
fn got_of(f: &FrameMd5, codec_id: &str) -> Vec<Got> {
    let s = f.stream(codec_id, None);
    let pts = f.pts_ms(s.index);
    let tb = s.tb;
    f.stream_packets(s.index)
        .iter()
        .zip(pts)
        .map(|(p, pts)| {
            assert_eq!(tb, (1, 1000), "{codec_id}: time base");
            Got {
                md5: p.md5.clone(),
                dts: p.dts,
                pts,
            }
        })
        .collect()
}

/// The hvcC and OpusHead the element was given in caps, as (size, MD5) like framemd5's
/// `#extradata`.
fn caps_configs(video: &Input, audio: &Input) -> (Vec<u8>, Vec<u8>) {
    let vc = video.caps.as_ref().expect("video caps");
    let ac = audio.caps.as_ref().expect("audio caps");
    let hvcc = caps_buffer(vc, "codec_data").expect("hvcC in the HEVC caps");
    let head = caps_first_streamheader(ac).expect("OpusHead in the Opus caps");
    assert!(head.starts_with(b"OpusHead"), "{head:02x?}");
    (hvcc, head)
}

/// A real restart: FFmpeg 9 receives the first connection and is stopped mid-stream; a new
/// FFmpeg 9 on the same port receives the reconnect.
#[test]
fn ffmpeg9_restart_gets_a_keyframe_the_same_configuration_and_the_same_timeline() {
    let Some(ff) = ffmpeg9() else { return };
    if !elements_present() {
        return;
    }
    let _slot = shared();
    let dir = TempDir::new("ertmp-restart");
    let (dir_a, dir_b) = (dir.join("a"), dir.join("b"));
    std::fs::create_dir_all(&dir_a).unwrap();
    std::fs::create_dir_all(&dir_b).unwrap();
    // -copyts: the recordings keep the element's timestamps, so the timelines compare.
    let Some(mut srv1) = Ff9Listen::start_on(&dir_a, Outputs::BOTH, None, &["-copyts"]) else {
        return;
    };
    let port = srv1.port();
    let mut run = Run::start(&live_hevc_opus(
        &srv1.url(),
        150,
        "reconnect-delay=200 reconnect-delay-max=400",
    ));
    assert!(
        run.pump_until(RUN_TIMEOUT, |r| r.stat("video-frames") >= 45),
        "45 frames never sent; lifecycle {:?}",
        run.lifecycle
    );
    srv1.terminate(SERVER_EXIT_TIMEOUT);
    let Some(mut srv2) = Ff9Listen::start_on(&dir_b, Outputs::BOTH, Some(port), &["-copyts"])
    else {
        return;
    };
    let (video, audio, lifecycle, reconnects) = run.finish();
    srv2.finish(SERVER_EXIT_TIMEOUT);
    assert_reconnected_once(&lifecycle, reconnects);

    let (a, b) = (srv1.framemd5(), srv2.framemd5());
    let (hvcc, head) = caps_configs(&video, &audio);
    // The same sequence starts on both connections, as FFmpeg holds them, equal to the caps'.
    for (codec, config) in [("hevc", &hvcc), ("opus", &head)] {
        let want = Some((config.len(), md5_hex(config)));
        assert_eq!(
            a.stream(codec, None).extradata,
            want,
            "first connection {codec}"
        );
        assert_eq!(
            b.stream(codec, None).extradata,
            want,
            "second connection {codec}"
        );
    }
    let (va, vb) = (got_of(&a, "hevc"), got_of(&b, "hevc"));
    let (aa, ab) = (got_of(&a, "opus"), got_of(&b, "opus"));
    let shift = va[0].pts - video.buffers[0].pts_ms;
    let jv = check_stream("HEVC", &video.buffers, &va, &vb, shift, true, false);
    let ja = check_stream("Opus", &audio.buffers, &aa, &ab, shift, false, false);

    // The recording after the restart: sequence starts before any frame, the first HEVC frame
    // flagged a keyframe, and it decodes.
    let flv_b = srv2.flv_path();
    let starts = sequence_starts(flv_b);
    assert!(
        starts.iter().any(|s| s.fourcc == HVC1 && s.data == hvcc),
        "no hvcC sequence start after the restart: {starts:?}"
    );
    assert!(
        starts.iter().any(|s| s.fourcc == OPUS && s.data == head),
        "no OpusHead sequence start after the restart: {starts:?}"
    );
    let file = common::read_flv(flv_b).unwrap();
    let first_frame = file
        .tags
        .iter()
        .filter(|t| t.is_video())
        .filter_map(|t| flv::parse_video(&t.data).ok())
        .find(|v| {
            matches!(&v.body, VideoTagBody::Enhanced(x)
                if matches!(x.packet_type, VideoPacketType::CodedFrames | VideoPacketType::CodedFramesX))
        })
        .expect("HEVC frames after the restart");
    assert_eq!(
        first_frame.frame_type,
        FrameType::Key,
        "first HEVC frame after the restart"
    );
    let errs = decode_errors(&ff, flv_b);
    assert!(
        errs.is_empty(),
        "the recording after the restart does not decode: {errs:?}"
    );
    common::util::loud(&format!(
        "[ertmp-reconnect] FFmpeg 9 restart: first connection {} HEVC + {} Opus (last DTS {} \
         ms), second {} HEVC + {} Opus from input {jv}/{ja} (first DTS {} ms), one timeline \
         (shift {shift} ms), same hvcC ({} B) and OpusHead ({} B)\n",
        va.len(),
        aa.len(),
        va.last().unwrap().dts,
        vb.len(),
        ab.len(),
        vb[0].dts,
        hvcc.len(),
        head.len()
    ));
}

// ---------------------------------------------------------------------------------------------
// Scripted servers: the exact messages of the new connection
// ---------------------------------------------------------------------------------------------

/// A media or data message of a connection, decoded.
#[derive(Debug, Clone, PartialEq)]
enum Item {
    Metadata,
    OtherData(String),
    HevcStart(Vec<u8>),
    OpusStart(Vec<u8>),
    /// An HEVC coded frame: keyframe, body MD5, composition time.
    Hevc(bool, String, i32),
    Opus(String),
    /// The HEVC SequenceEnd: the track ended (EOS).
    HevcEnd,
    /// The Opus SequenceEnd.
    OpusEnd,
    Other(u8, Vec<u8>),
}

fn item(m: &Message) -> Option<Item> {
    let head = |p: &[u8]| p[..p.len().min(6)].to_vec();
    Some(match m.msg_type_id {
        msg_type::DATA_AMF0 => {
            let v = scripted::data_values(m);
            match v.get(1) {
                Some(Amf0Value::String(s)) if s == "onMetaData" => Item::Metadata,
                _ => Item::OtherData(format!("{v:?}")),
            }
        }
        msg_type::VIDEO => match flv::parse_video(&m.payload) {
            Ok(v) => match &v.body {
                VideoTagBody::Enhanced(x) if x.tracks.len() == 1 && x.tracks[0].fourcc == HVC1 => {
                    let t = &x.tracks[0];
                    match x.packet_type {
                        VideoPacketType::SequenceStart => Item::HevcStart(t.data.to_vec()),
                        VideoPacketType::CodedFrames | VideoPacketType::CodedFramesX => Item::Hevc(
                            v.frame_type == FrameType::Key,
                            md5_hex(t.data),
                            t.composition_time,
                        ),
                        VideoPacketType::SequenceEnd => Item::HevcEnd,
                        _ => Item::Other(m.msg_type_id, head(&m.payload)),
                    }
                }
                _ => Item::Other(m.msg_type_id, head(&m.payload)),
            },
            Err(_) => Item::Other(m.msg_type_id, head(&m.payload)),
        },
        msg_type::AUDIO => match flv::parse_audio(&m.payload) {
            Ok(AudioTag::Enhanced(x)) if x.tracks.len() == 1 && x.tracks[0].fourcc == OPUS => {
                let t = &x.tracks[0];
                match x.packet_type {
                    AudioPacketType::SequenceStart => Item::OpusStart(t.data.to_vec()),
                    AudioPacketType::CodedFrames => Item::Opus(md5_hex(t.data)),
                    AudioPacketType::SequenceEnd => Item::OpusEnd,
                    _ => Item::Other(m.msg_type_id, head(&m.payload)),
                }
            }
            _ => Item::Other(m.msg_type_id, head(&m.payload)),
        },
        _ => return None,
    })
}

/// The decoded media/data messages of a connection with their timestamps.
fn items(msgs: &[Message]) -> Vec<(u32, Item)> {
    msgs.iter()
        .filter_map(|m| item(m).map(|i| (m.timestamp, i)))
        .collect()
}

/// The HEVC and Opus frames of a connection as packets.
fn frames(items: &[(u32, Item)]) -> (Vec<Got>, Vec<Got>) {
    let (mut v, mut a) = (Vec::new(), Vec::new());
    for (ts, i) in items {
        let dts = i64::from(*ts);
        match i {
            Item::Hevc(_, md5, cts) => v.push(Got {
                md5: md5.clone(),
                dts,
                pts: dts + i64::from(*cts),
            }),
            Item::Opus(md5) => a.push(Got {
                md5: md5.clone(),
                dts,
                pts: dts,
            }),
            _ => {}
        }
    }
    (v, a)
}

/// The new connection begins exactly: onMetaData, the HEVC sequence start (hvcC), the Opus
/// sequence start (OpusHead), then an HEVC keyframe, all at the keyframe's timestamp; no other
/// message of ours is unknown.
fn assert_new_connection_starts_right(what: &str, items: &[(u32, Item)], hvcc: &[u8], head: &[u8]) {
    assert!(items.len() > 4, "{what}: {} messages", items.len());
    let kinds: Vec<&Item> = items[..4].iter().map(|(_, i)| i).collect();
    assert_eq!(kinds[0], &Item::Metadata, "{what}: 1st message: {kinds:?}");
    assert_eq!(
        kinds[1],
        &Item::HevcStart(hvcc.to_vec()),
        "{what}: 2nd: {kinds:?}"
    );
    assert_eq!(
        kinds[2],
        &Item::OpusStart(head.to_vec()),
        "{what}: 3rd: {kinds:?}"
    );
    assert!(
        matches!(kinds[3], Item::Hevc(true, ..)),
        "{what}: 4th is not an HEVC keyframe: {:?}",
        kinds[3]
    );
    let ts = items[3].0;
    assert!(
        items[..3].iter().all(|(t, _)| *t == ts),
        "{what}: metadata and sequence starts not at the keyframe's timestamp: {:?}",
        items[..4].iter().map(|(t, _)| t).collect::<Vec<_>>()
    );
    let unknown: Vec<_> = items
        .iter()
        .filter(|(_, i)| matches!(i, Item::Other(..)))
        .collect();
    assert!(
        unknown.is_empty(),
        "{what}: unexpected messages {unknown:?}"
    );
    // A track's SequenceEnd (the element's EOS) comes once, after its last frame.
    for (end, is_frame) in [
        (
            Item::HevcEnd,
            (|i: &Item| matches!(i, Item::Hevc(..))) as fn(&Item) -> bool,
        ),
        (Item::OpusEnd, |i: &Item| matches!(i, Item::Opus(..))),
    ] {
        let at: Vec<usize> = (0..items.len()).filter(|&i| items[i].1 == end).collect();
        assert!(at.len() <= 1, "{what}: {} {end:?}", at.len());
        if let Some(&e) = at.first() {
            assert!(
                !items[e..].iter().any(|(_, i)| is_frame(i)),
                "{what}: a frame after {end:?}"
            );
        }
    }
}

/// Both connections' frames against the element's input; returns the input index where each
/// stream resumed on the second connection.
fn check_both(
    old: &[(u32, Item)],
    new: &[(u32, Item)],
    video: &Input,
    audio: &Input,
    lossless: bool,
) -> (usize, usize, i64) {
    let (v1, a1) = frames(old);
    let (v2, a2) = frames(new);
    let shift = v1[0].pts - video.buffers[0].pts_ms;
    let jv = check_stream("HEVC", &video.buffers, &v1, &v2, shift, true, lossless);
    let ja = check_stream("Opus", &audio.buffers, &a1, &a2, shift, false, lossless);
    (jv, ja, shift)
}

/// HEVC coded frames among `msgs` (`rtmp_servers::video_frames` counts legacy AVC ones only).
fn hevc_frames(msgs: &[Message]) -> usize {
    msgs.iter()
        .filter(|m| matches!(item(m), Some(Item::Hevc(..))))
        .count()
}

/// A scripted server closes the first connection after 45 video frames; the element reconnects
/// to it.
#[test]
fn scripted_cut_new_connection_is_metadata_hevc_start_opus_start_keyframe() {
    if !elements_present() {
        return;
    }
    let _slot = shared();
    let server = MultiServer::start(RUN_TIMEOUT, 2, |i| {
        if i > 0 {
            return publish_only();
        }
        let mut frames = 0;
        Box::new(move |peer, new| {
            peer.answer_publish_flow(new, &[]);
            frames += hevc_frames(new);
            if frames >= 45 {
                return Reply::Close;
            }
            Reply::Continue
        })
    });
    let run = Run::start(&live_hevc_opus(
        &server.url("live", "key"),
        120,
        "reconnect-delay=200",
    ));
    let (video, audio, lifecycle, reconnects) = run.finish();
    assert_reconnected_once(&lifecycle, reconnects);
    let peers = server.join();
    assert_eq!(peers.len(), 2, "a second connection");
    let (hvcc, head) = caps_configs(&video, &audio);
    let (old, new) = (items(&peers[0].received), items(&peers[1].received));
    assert_new_connection_starts_right("first connection", &old, &hvcc, &head);
    assert_new_connection_starts_right("second connection", &new, &hvcc, &head);
    let (jv, ja, shift) = check_both(&old, &new, &video, &audio, false);
    common::util::loud(&format!(
        "[ertmp-reconnect] scripted cut after 45 frames: second connection = onMetaData, hvcC, \
         OpusHead, keyframe at {} ms; resumed at input {jv} (HEVC) / {ja} (Opus); shift \
         {shift} ms\n",
        new[3].0
    ));
}

/// A ReconnectRequest (absolute tcUrl to another server) after 40 video frames: the new server
/// gets both tracks the same way, and the two together get every frame exactly once.
#[test]
fn reconnect_request_carries_hevc_and_opus_the_same_way() {
    if !elements_present() {
        return;
    }
    let _slot = shared();
    let target = MultiServer::start(RUN_TIMEOUT, 1, |_| publish_only());
    let tc_url = format!("rtmp://127.0.0.1:{}/live2", target.port);
    let origin = MultiServer::start(RUN_TIMEOUT, 1, move |_| {
        request_reconnect(tc_url.clone(), 40, hevc_frames)
    });
    let run = Run::start(&live_hevc_opus(&origin.url("live", "key"), 120, ""));
    let (video, audio, lifecycle, reconnects) = run.finish();
    assert!(
        has_subsequence(
            &lifecycle,
            &[
                "rtmp-publishing",
                "rtmp-reconnect-request",
                "rtmp-connected",
                "rtmp-publishing"
            ]
        ),
        "{lifecycle:?}"
    );
    assert_eq!(reconnects, 1);
    let old = items(&origin.join().remove(0).received);
    let new = items(&target.join().remove(0).received);
    let (hvcc, head) = caps_configs(&video, &audio);
    assert_new_connection_starts_right("origin", &old, &hvcc, &head);
    assert_new_connection_starts_right("target", &new, &hvcc, &head);
    let (jv, ja, shift) = check_both(&old, &new, &video, &audio, true);
    common::util::loud(&format!(
        "[ertmp-reconnect] reconnect request after 40 frames: target got onMetaData, hvcC, \
         OpusHead, keyframe at {} ms; switch at input {jv} (HEVC) / {ja} (Opus), nothing lost \
         or twice; shift {shift} ms\n",
        new[3].0
    ));
}
