#![cfg(feature = "gst")]
//! Issue 10's multitrack publish checks.
//!
//! Against FFmpeg 9 listening: a four-track Matroska file (`sink` H.264 with B-frames,
//! `video_1` H.264, `audio` AAC, `audio_1` AAC) arrives as four streams, each byte-identical to
//! its source track with the PTS the element was given, to the ms, and FFmpeg 9 reads the
//! onMetaData that carries the track maps; a live three-rendition H.264 ladder plus AAC arrives
//! as 3 video + 1 audio streams, every frame, all decodable; FFmpeg 9 publishing a four-track
//! file passes the same checks. The issue's own four-track file (`sink` HEVC with B-frames,
//! `video_1` H.264, `audio` AAC, `audio_1` Opus) passes them too.
//!
//! Against a scripted server that records every message (parsed with the crate's own FLV and
//! AMF0 parsers): a pad requested after PLAYING starts with its sequence start and a keyframe;
//! a pad released mid-stream ends its track with a SequenceEnd and leaves the track map; EOS on
//! one track does not stop the others; tracks >= 1 are Multitrack OneTrack with their id.
//!
//! Through the fault proxy: a link slower than the sum of the tracks drops the highest video
//! track first, leaves track 0 and audio intact, and reports per track.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::ffmpeg9::{
    self, Ff9Listen, FrameMd5, Outputs, assert_all_streams_identical, decode_errors,
    decoded_frames, ffmpeg9, framemd5_of_file,
};
use common::gstmedia_ertmp::{
    assert_element_accepts, demux, four_track_h264_aac_mkv, four_track_mkv,
};
use common::gstrun::{pipeline, play_to_eos_stepping, require_elements, run_to_eos};
use common::gstsrc::init;
use common::rtmp_servers::{MultiServer, Reply};
use common::scripted::{Next, ScriptedTcpServer, data_values};
use common::util::{TempDir, wait_for};
use common::{FaultProxy, NginxOptions, NginxRtmp};
use gst::prelude::*;
use gstrtmpclient::codec::flv::{
    self, AudioPacketType, AudioTag, AvMultitrackType, AvcPacketType, FrameType, VideoPacketType,
    VideoTagBody,
};
use gstrtmpclient::rtmp::amf0::Amf0Value;
use gstrtmpclient::rtmp::message::{Message, msg_type};

const PUBLISH_TIMEOUT: Duration = Duration::from_secs(30);
const SERVER_EXIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a test that acts while the pipeline plays looks at the sink.
const STEP: Duration = Duration::from_millis(50);

/// matroskademux's pads of the H.264/AAC four-track file, in track (= FFmpeg stream) order,
/// and the element pads they feed.
const FOUR_TRACKS: [(&str, &str, &str); 4] = [
    ("video_0", "sink", "h264"),
    ("video_1", "video_1", "h264"),
    ("audio_0", "audio", "aac"),
    ("audio_1", "audio_1", "aac"),
];

/// The element's pad template a pad name comes from.
fn template_of(pad: &str) -> &str {
    match pad {
        "sink" | "audio" => pad,
        p if p.starts_with("video_") => "video_%u",
        _ => "audio_%u",
    }
}

fn assert_decodes(ff: &Path, label: &str, srv: &Ff9Listen) {
    let errs = decode_errors(ff, srv.flv_path());
    assert!(
        errs.is_empty(),
        "{label}: the recording does not decode cleanly: {errs:?}"
    );
}

/// A four-track source: FFmpeg 9's packets and matroskademux's PTS per track (`tracks` in
/// track order, track 0 with B-frames).
fn four_track_source(
    ff: &Path,
    mkv: &Path,
    tracks: &[(&str, &str, &str); 4],
) -> (FrameMd5, Vec<gst::Caps>, Vec<Vec<i64>>) {
    let file = framemd5_of_file(ff, mkv, &[]);
    let pads: Vec<&str> = tracks.iter().map(|t| t.0).collect();
    let demuxed = demux(mkv, &pads);
    for (i, (pad, _, codec)) in tracks.iter().enumerate() {
        assert_eq!(file.streams[i].codec_id, *codec, "track {i}");
        let sizes: Vec<usize> = file.stream_packets(i).iter().map(|p| p.size).collect();
        let ours: Vec<usize> = demuxed[i].buffers.iter().map(Vec::len).collect();
        assert_eq!(ours, sizes, "pad {pad} vs FFmpeg stream {i}");
    }
    assert!(
        file.has_reordered_pts(0),
        "track 0 ({}) has no B-frames",
        tracks[0].2
    );
    let caps = demuxed.iter().map(|d| d.caps.clone()).collect();
    let pts = demuxed.into_iter().map(|d| d.pts_ms).collect();
    (file, caps, pts)
}

/// The element publishing the four-track `mkv` (its `tracks` to the pads they name) to FFmpeg
/// 9 listening: four streams, each byte-identical to its track with the PTS the element was
/// given, all decoding cleanly.
fn assert_four_tracks_arrive_identical(
    ff: &Path,
    mkv: &Path,
    tracks: &[(&str, &str, &str); 4],
    label: &str,
) {
    let (file, caps, ref_pts) = four_track_source(ff, mkv, tracks);
    // A pad or codec the element lacks fails here, with that reason.
    for ((_, pad, _), caps) in tracks.iter().zip(&caps) {
        assert_element_accepts(template_of(pad), caps);
    }
    let dir = TempDir::new(label);
    let Some(mut srv) = Ff9Listen::start(dir.path(), Outputs::BOTH) else {
        return;
    };
    let (v0, v1, a0, a1) = (tracks[0], tracks[1], tracks[2], tracks[3]);
    let msgs = run_to_eos(
        &format!(
            "filesrc location={} ! matroskademux name=d \
             d.{} ! queue ! rtmpclientsink name=s sync=false location={} \
             d.{} ! queue ! s.{} \
             d.{} ! queue ! s.{} \
             d.{} ! queue ! s.{}",
            mkv.display(),
            v0.0,
            srv.url(),
            v1.0,
            v1.1,
            a0.0,
            a0.1,
            a1.0,
            a1.1
        ),
        PUBLISH_TIMEOUT,
    );
    assert!(msgs.iter().any(|s| s.name() == "rtmp-publishing"));
    srv.finish(SERVER_EXIT_TIMEOUT);
    let got = srv.framemd5();
    assert_eq!(got.streams.len(), 4, "{label}: {:?}", got.streams);
    assert_all_streams_identical(label, &file, &ref_pts, &got);
    assert_decodes(ff, label, &srv);
}

#[test]
fn four_h264_aac_tracks_from_matroska_arrive_byte_identical_at_ffmpeg9() {
    let Some(ff) = ffmpeg9() else { return };
    let Some(mkv) = four_track_h264_aac_mkv() else {
        return;
    };
    assert_four_tracks_arrive_identical(&ff, &mkv, &FOUR_TRACKS, "four-track-h264-aac");
}

/// matroskademux's pads of the four-track file (HEVC, H.264, AAC, Opus), in track (=
/// FFmpeg stream) order, and the element pads they feed.
const HEVC_OPUS_TRACKS: [(&str, &str, &str); 4] = [
    ("video_0", "sink", "hevc"),
    ("video_1", "video_1", "h264"),
    ("audio_0", "audio", "aac"),
    ("audio_1", "audio_1", "opus"),
];

#[test]
fn four_tracks_from_matroska_arrive_byte_identical_at_ffmpeg9() {
    let Some(ff) = ffmpeg9() else { return };
    let Some(mkv) = four_track_mkv() else { return };
    assert_four_tracks_arrive_identical(&ff, &mkv, &HEVC_OPUS_TRACKS, "four-track");
}

/// The measurement: FFmpeg 9 publishing the four-track file
/// (`-i F -map 0 -c copy -copyinkf -f flv rtmp://...`) to FFmpeg 9 listening passes the same
/// checks, against its own reading of the file.
#[test]
fn reference_ffmpeg9_publishes_the_four_tracks_byte_identical() {
    let Some(ff) = ffmpeg9() else { return };
    let Some(mkv) = four_track_mkv() else { return };
    let file = framemd5_of_file(&ff, &mkv, &[]);
    let ref_pts: Vec<Vec<i64>> = (0..file.streams.len()).map(|i| file.pts_ms(i)).collect();
    let dir = TempDir::new("four-track-ref");
    let Some(mut srv) = Ff9Listen::start(dir.path(), Outputs::BOTH) else {
        return;
    };
    ffmpeg9::publish(&ff, &mkv, &srv.url());
    srv.finish(SERVER_EXIT_TIMEOUT);
    let got = srv.framemd5();
    assert_eq!(got.streams.len(), 4);
    assert_all_streams_identical("FFmpeg 9 four-track", &file, &ref_pts, &got);
    assert_decodes(&ff, "FFmpeg 9 four-track", &srv);
}

/// A Twitch-style ladder: one live source, three x264enc renditions on `sink`, `video_1`,
/// `video_2`, AAC on `audio`.
#[test]
fn live_ladder_of_three_renditions_and_aac_every_frame_decodes() {
    let Some(ff) = ffmpeg9() else { return };
    if !require_elements(&["x264enc", "avenc_aac", "videoscale", "tee"]) {
        return;
    }
    const FRAMES: usize = 60;
    const RUNGS: [(&str, u32, u32); 3] = [
        ("sink", 1280, 720),
        ("video_1", 854, 480),
        ("video_2", 640, 360),
    ];
    let h264 = gst::Caps::builder("video/x-h264")
        .field("stream-format", "avc")
        .field("alignment", "au")
        .build();
    for (pad, _, _) in RUNGS {
        assert_element_accepts(template_of(pad), &h264);
    }
    let dir = TempDir::new("ladder");
    let Some(mut srv) = Ff9Listen::start(dir.path(), Outputs::BOTH) else {
        return;
    };
    let mut launch = format!(
        "rtmpclientsink name=s location={} \
         videotestsrc is-live=true num-buffers={FRAMES} ! \
         video/x-raw,format=I420,width=1280,height=720,framerate=30/1 ! tee name=t \
         audiotestsrc is-live=true num-buffers=94 samplesperbuffer=1024 ! \
         audio/x-raw,rate=48000,channels=2 ! audioconvert ! avenc_aac ! queue ! s.audio",
        srv.url()
    );
    for (pad, w, h) in RUNGS {
        launch.push_str(&format!(
            " t. ! queue ! videoscale ! video/x-raw,width={w},height={h} ! \
             x264enc speed-preset=ultrafast tune=zerolatency key-int-max=30 bitrate=800 ! \
             video/x-h264,stream-format=avc,alignment=au ! queue ! s.{pad}"
        ));
    }
    run_to_eos(&launch, PUBLISH_TIMEOUT);
    srv.finish(SERVER_EXIT_TIMEOUT);
    let got = srv.framemd5();
    assert_eq!(
        got.streams.len(),
        4,
        "3 video + 1 audio streams expected: {:?}",
        got.streams
    );
    let decoded = decoded_frames(&ff, srv.flv_path());
    for (pad, w, h) in RUNGS {
        let s = got.stream("h264", Some((w, h))).index;
        assert_eq!(
            got.stream_packets(s).len(),
            FRAMES,
            "{pad} {w}x{h}: packets"
        );
        let d = decoded.stream("rawvideo", Some((w, h))).index;
        assert_eq!(
            decoded.stream_packets(d).len(),
            FRAMES,
            "{pad} {w}x{h}: decoded frames"
        );
    }
    let a = got.stream("aac", None).index;
    assert!(
        got.stream_packets(a).len() >= 90,
        "{} AAC packets",
        got.stream_packets(a).len()
    );
    assert_decodes(&ff, "ladder", &srv);
}

// ---------------------------------------------------------------------------------------------
// Pad lifecycle against a scripted server
// ---------------------------------------------------------------------------------------------

/// A server that answers the publish flow and records every message until the client closes.
fn recording_server() -> ScriptedTcpServer {
    ScriptedTcpServer::start(Duration::from_secs(60), |turn| {
        turn.peer.answer_publish_flow(&turn.new, &[]);
        Next::Continue
    })
}

/// What one media message is, as the crate's FLV parser reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Start,
    Key,
    Inter,
    End,
    Other,
}

/// One media message: video or audio, track id, what it is, timestamp, Multitrack wrapper.
#[derive(Debug, Clone, Copy)]
struct Media {
    video: bool,
    track: u8,
    kind: Kind,
    ts: u32,
    multitrack: bool,
    /// Carries ModEx (e.g. TimestampOffsetNano).
    mod_ex: bool,
}

fn media_of(m: &Message) -> Option<Media> {
    let mut mod_ex = false;
    let (video, (track, kind, multitrack)) = match m.msg_type_id {
        msg_type::VIDEO => {
            let tag = flv::parse_video(&m.payload).expect("video tag parses");
            let key = tag.frame_type == FrameType::Key;
            let frame = if key { Kind::Key } else { Kind::Inter };
            let media = match tag.body {
                VideoTagBody::Legacy(l) => (
                    0,
                    match l.avc_packet_type {
                        Some(AvcPacketType::SequenceHeader) => Kind::Start,
                        Some(AvcPacketType::EndOfSequence) => Kind::End,
                        Some(AvcPacketType::Nalu) => frame,
                        None => Kind::Other,
                    },
                    false,
                ),
                VideoTagBody::Enhanced(e) => (
                    {
                        mod_ex = !e.mod_ex.is_empty();
                        e.tracks.first().map_or(0, |t| t.track_id)
                    },
                    match e.packet_type {
                        VideoPacketType::SequenceStart => Kind::Start,
                        VideoPacketType::SequenceEnd => Kind::End,
                        VideoPacketType::CodedFrames | VideoPacketType::CodedFramesX => frame,
                        _ => Kind::Other,
                    },
                    e.multitrack == Some(AvMultitrackType::OneTrack),
                ),
            };
            (true, media)
        }
        msg_type::AUDIO => {
            let media = match flv::parse_audio(&m.payload).expect("audio") {
                AudioTag::Legacy(l) => (
                    0,
                    match l.aac_packet_type {
                        Some(flv::AacPacketType::SequenceHeader) => Kind::Start,
                        _ => Kind::Key,
                    },
                    false,
                ),
                AudioTag::Enhanced(e) => (
                    {
                        mod_ex = !e.mod_ex.is_empty();
                        e.tracks.first().map_or(0, |t| t.track_id)
                    },
                    match e.packet_type {
                        AudioPacketType::SequenceStart => Kind::Start,
                        AudioPacketType::SequenceEnd => Kind::End,
                        AudioPacketType::CodedFrames => Kind::Key,
                        _ => Kind::Other,
                    },
                    e.multitrack == Some(AvMultitrackType::OneTrack),
                ),
            };
            (false, media)
        }
        _ => return None,
    };
    Some(Media {
        video,
        track,
        kind,
        ts: m.timestamp,
        multitrack,
        mod_ex,
    })
}

/// The media messages of one track, in order.
fn track_media(all: &[Media], video: bool, track: u8) -> Vec<Media> {
    all.iter()
        .filter(|m| m.video == video && m.track == track)
        .copied()
        .collect()
}

/// Every onMetaData the client sent, as the crate's AMF0 decoder reads it.
fn metadata(msgs: &[Message]) -> Vec<Amf0Value> {
    msgs.iter()
        .filter(|m| m.msg_type_id == msg_type::DATA_AMF0)
        .filter_map(|m| {
            let v = data_values(m);
            v.iter()
                .position(|x| matches!(x, Amf0Value::String(s) if s == "onMetaData"))
                .and_then(|i| v.get(i + 1).cloned())
        })
        .collect()
}

/// The media messages as an FLV file behind the last onMetaData the client sent (the one
/// with every track map), the way a server records a stream.
fn write_flv(msgs: &[Message], path: &Path) {
    let mut out = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
    let mut tag = |type_id: u8, ts: u32, payload: &[u8]| {
        let len = payload.len() as u32;
        out.push(type_id);
        out.extend_from_slice(&len.to_be_bytes()[1..]);
        out.extend_from_slice(&ts.to_be_bytes()[1..]);
        out.push((ts >> 24) as u8);
        out.extend_from_slice(&[0, 0, 0]);
        out.extend_from_slice(payload);
        out.extend_from_slice(&(len + 11).to_be_bytes());
    };
    let meta = msgs
        .iter()
        .rfind(|m| m.msg_type_id == msg_type::DATA_AMF0)
        .expect("onMetaData");
    // "@setDataFrame" is for the server: a file holds "onMetaData" and its value.
    let set = [&[2u8, 0, 13][..], b"@setDataFrame"].concat();
    let payload = meta.payload.as_slice();
    tag(
        msg_type::DATA_AMF0,
        0,
        payload.strip_prefix(set.as_slice()).unwrap_or(payload),
    );
    for m in msgs
        .iter()
        .filter(|m| matches!(m.msg_type_id, msg_type::VIDEO | msg_type::AUDIO))
    {
        tag(m.msg_type_id, m.timestamp, &m.payload);
    }
    std::fs::write(path, out).expect("write FLV");
}

/// FFmpeg 9's reading of an FLV file (`ffmpeg -i`): its input dump.
fn ffmpeg9_dump(ff: &Path, flv: &Path) -> String {
    let out = std::process::Command::new(ff)
        .args(["-hide_banner", "-i"])
        .arg(flv)
        .output()
        .expect("run FFmpeg 9");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn field<'a>(v: &'a Amf0Value, key: &str) -> Option<&'a Amf0Value> {
    match v {
        Amf0Value::EcmaArray(p) | Amf0Value::Object(p) => {
            p.iter().find(|(k, _)| k == key).map(|(_, v)| v)
        }
        _ => None,
    }
}

fn number(v: &Amf0Value, path: &[&str]) -> Option<f64> {
    let mut cur = v;
    for k in path {
        cur = field(cur, k)?;
    }
    match cur {
        Amf0Value::Number(n) => Some(*n),
        _ => None,
    }
}

/// A live H.264 branch (`WxH`, keyframe every 15 frames) ending in a ghost src pad.
fn live_h264_bin(w: u32, h: u32, buffers: u32, pattern: &str) -> gst::Element {
    gst::parse::bin_from_description(
        &format!(
            "videotestsrc is-live=true num-buffers={buffers} pattern={pattern} ! \
             video/x-raw,format=I420,width={w},height={h},framerate=30/1 ! \
             x264enc speed-preset=ultrafast tune=zerolatency key-int-max=15 bitrate=300 ! \
             video/x-h264,stream-format=avc,alignment=au ! queue"
        ),
        true,
    )
    .expect("branch")
    .upcast()
}

/// Adds `branch` to the running pipeline and links it to a new pad of `sink` (requested by
/// name from `template`).
fn link_new_branch(
    p: &gst::Pipeline,
    sink: &gst::Element,
    template: &str,
    name: &str,
    branch: &gst::Element,
) -> gst::Pad {
    p.add(branch).expect("add branch");
    let templ = sink.pad_template(template).expect("template");
    let pad = sink
        .request_pad(&templ, Some(name), None)
        .unwrap_or_else(|| panic!("no {name} pad"));
    branch
        .static_pad("src")
        .expect("ghost src")
        .link(&pad)
        .expect("link");
    branch.sync_state_with_parent().expect("branch to PLAYING");
    pad
}

/// Track 0 of the pad tests: `frames` of live 320x240 H.264 into the sink pad of `s`
/// (publishing to `url`), `audio_buffers` of live AAC stereo into its audio pad.
fn track0_launch(url: &str, frames: u32, audio_buffers: u32) -> String {
    format!(
        "videotestsrc is-live=true num-buffers={frames} ! \
         video/x-raw,format=I420,width=320,height=240,framerate=30/1 ! \
         x264enc speed-preset=ultrafast tune=zerolatency key-int-max=30 bitrate=300 ! \
         video/x-h264,stream-format=avc,alignment=au ! queue ! \
         rtmpclientsink name=s location={url} \
         audiotestsrc is-live=true num-buffers={audio_buffers} samplesperbuffer=1024 ! \
         audio/x-raw,rate=48000,channels=2 ! audioconvert ! avenc_aac ! queue ! s.audio"
    )
}

fn sent_frames(sink: &gst::Element, kind: &str, id: u32) -> u64 {
    let stats = sink.property::<gst::Structure>("stats");
    let Ok(tracks) = stats.get::<gst::Array>("tracks") else {
        return 0;
    };
    tracks
        .iter()
        .filter_map(|v| v.get::<gst::Structure>().ok())
        .find(|t| t.get::<&str>("kind").ok() == Some(kind) && t.get::<u32>("id").ok() == Some(id))
        .and_then(|t| t.get::<u64>("frames").ok())
        .unwrap_or(0)
}

#[test]
fn pad_requested_after_playing_starts_with_its_sequence_start_and_a_keyframe() {
    init();
    if !require_elements(&["x264enc", "avenc_aac"]) {
        return;
    }
    let srv = recording_server();
    // 4 s of track 0 video and audio; video_1 joins once 30 frames of track 0 were sent.
    let p = pipeline(&track0_launch(&srv.url(), 120, 180));
    let sink = p.by_name("s").unwrap();
    let mut joined = false;
    play_to_eos_stepping(
        &p,
        "multitrack",
        PUBLISH_TIMEOUT,
        STEP,
        || {
            if !joined && sent_frames(&sink, "video", 0) >= 30 {
                joined = true;
                // Ends well before the sink pad does (50 of the remaining ~90 frames).
                link_new_branch(
                    &p,
                    &sink,
                    "video_%u",
                    "video_1",
                    &live_h264_bin(160, 120, 50, "ball"),
                );
            }
        },
        |_| {},
    );
    assert!(joined, "track 0 never sent 30 frames");
    let msgs = srv.join().received;
    let all: Vec<Media> = msgs.iter().filter_map(media_of).collect();
    let v1 = track_media(&all, true, 1);
    assert!(v1.len() > 40, "video_1: {} messages", v1.len());
    assert_eq!(
        v1[0].kind,
        Kind::Start,
        "video_1 starts with its sequence start: {v1:?}"
    );
    assert_eq!(v1[1].kind, Kind::Key, "then a keyframe: {v1:?}");
    assert!(
        v1.iter().all(|m| m.multitrack),
        "tracks >= 1 are Multitrack OneTrack"
    );
    // The server advertised no ModEx: no TimestampOffsetNano on any message.
    assert!(all.iter().all(|m| !m.mod_ex), "ModEx sent unasked");
    let v0 = track_media(&all, true, 0);
    assert!(
        v0.iter().all(|m| !m.multitrack),
        "track 0 has no Multitrack wrapper"
    );
    // It joined mid-stream, on the publish's timeline.
    let first_v0 = v0.iter().find(|m| m.kind == Kind::Key).unwrap().ts;
    assert!(
        v1[1].ts >= first_v0 + 900,
        "video_1 starts at {} ms",
        v1[1].ts
    );
    let ts: Vec<u32> = all
        .iter()
        .filter(|m| m.kind != Kind::Start)
        .map(|m| m.ts)
        .collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "interleaved by DTS");
    // Track 0 went on to its end: 120 frames, and audio.
    assert_eq!(
        v0.iter()
            .filter(|m| matches!(m.kind, Kind::Key | Kind::Inter))
            .count(),
        120
    );
    assert!(track_media(&all, false, 0).len() > 150);
    // The track map names it, in the crate's AMF0 reading of onMetaData.
    let metas = metadata(&msgs);
    let last = metas.last().expect("onMetaData");
    assert_eq!(
        number(last, &["videoTrackIdInfoMap", "1", "width"]),
        Some(160.0),
        "{last:?}"
    );
    assert_eq!(
        number(last, &["videoTrackIdInfoMap", "1", "height"]),
        Some(120.0)
    );
    assert_eq!(
        number(last, &["videoTrackIdInfoMap", "1", "framerate"]),
        Some(30.0)
    );
    assert_eq!(
        number(last, &["videoTrackIdInfoMap", "1", "videocodecid"]),
        Some(f64::from(u32::from_be_bytes(*b"avc1")))
    );
    assert_eq!(
        number(last, &["width"]),
        Some(320.0),
        "track 0 stays at the top level"
    );
    // FFmpeg 9 reads that onMetaData: it keeps no track map fields, but parses past them to
    // `encoder`, the last field.
    if let Some(ff) = ffmpeg9() {
        let dir = TempDir::new("late-pad");
        let path = dir.join("wire.flv");
        write_flv(&msgs, &path);
        let dump = ffmpeg9_dump(&ff, &path);
        assert!(dump.contains("gst-plugin-rtmpclient"), "{dump}");
        // (Its probe is over before video_1 joins: the four-track test shows it finds
        // tracks >= 1.)
        assert!(dump.contains("320x240"), "{dump}");
        assert!(dump.contains("Audio: aac"), "{dump}");
    }
}

#[test]
fn released_pad_ends_its_track_and_eos_on_one_track_does_not_stop_the_others() {
    init();
    if !require_elements(&["x264enc", "avenc_aac"]) {
        return;
    }
    let srv = recording_server();
    // Track 0 video and audio for 3 s; video_1 released after 30 of its frames were sent;
    // audio_1 reaches EOS after 1 s (47 buffers).
    let p = pipeline(&format!(
        "{} \
         audiotestsrc is-live=true num-buffers=47 samplesperbuffer=1024 freq=880 ! \
         audio/x-raw,rate=48000,channels=1 ! audioconvert ! avenc_aac ! queue ! s.audio_1 \
         videotestsrc is-live=true pattern=ball ! \
         video/x-raw,format=I420,width=160,height=120,framerate=30/1 ! \
         x264enc speed-preset=ultrafast tune=zerolatency key-int-max=15 bitrate=200 ! \
         video/x-h264,stream-format=avc,alignment=au ! queue name=q1 ! s.video_1",
        track0_launch(&srv.url(), 90, 140)
    ));
    let sink = p.by_name("s").unwrap();
    let released = Arc::new(Mutex::new(false));
    let mut pad_v1 = sink.static_pad("video_1");
    assert!(pad_v1.is_some(), "video_1 was requested by the launch line");
    play_to_eos_stepping(
        &p,
        "multitrack",
        PUBLISH_TIMEOUT,
        STEP,
        || {
            if pad_v1.is_some() && sent_frames(&sink, "video", 1) >= 30 {
                let pad = pad_v1.take().unwrap();
                // Unlink the branch and stop it, as an application removing a rendition does.
                let q1 = p.by_name("q1").unwrap();
                let src = q1.static_pad("src").unwrap();
                let _ = src.unlink(&pad);
                sink.release_request_pad(&pad);
                *released.lock().unwrap() = true;
                // The branch without a peer would post not-linked: take it out.
                let mut el = Some(q1);
                while let Some(e) = el {
                    let up = e
                        .static_pad("sink")
                        .and_then(|p| p.peer())
                        .and_then(|p| p.parent_element());
                    let _ = e.set_state(gst::State::Null);
                    let _ = p.remove(&e);
                    el = up;
                }
            }
        },
        |_| {},
    );
    assert!(*released.lock().unwrap(), "video_1 was never released");
    assert!(sink.static_pad("video_1").is_none(), "pad removed");
    let msgs = srv.join().received;
    let all: Vec<Media> = msgs.iter().filter_map(media_of).collect();
    let v1 = track_media(&all, true, 1);
    assert_eq!(v1[0].kind, Kind::Start, "{v1:?}");
    assert_eq!(
        v1.last().unwrap().kind,
        Kind::End,
        "video_1 ends with a SequenceEnd: {v1:?}"
    );
    assert_eq!(v1.iter().filter(|m| m.kind == Kind::End).count(), 1);
    let frames_v1 = v1
        .iter()
        .filter(|m| matches!(m.kind, Kind::Key | Kind::Inter))
        .count();
    assert!(frames_v1 >= 30, "{frames_v1} video_1 frames");
    // The others go on after it: track 0 video to its last frame, audio to its end.
    let v0 = track_media(&all, true, 0);
    assert_eq!(
        v0.iter()
            .filter(|m| matches!(m.kind, Kind::Key | Kind::Inter))
            .count(),
        90
    );
    let end_v1 = v1.last().unwrap().ts;
    assert!(
        v0.last().unwrap().ts > end_v1 + 500,
        "track 0 stopped with video_1"
    );
    // audio_1's EOS ended only its track: its frames stop, track 0 audio goes on.
    let a1 = track_media(&all, false, 1);
    assert!(a1.iter().all(|m| m.multitrack));
    let a1_frames = a1.iter().filter(|m| m.kind == Kind::Key).count();
    // 47 buffers, and the frame avenc_aac gives for its delay at EOS.
    assert!((46..=48).contains(&a1_frames), "{a1_frames} audio_1 frames");
    let a0 = track_media(&all, false, 0);
    assert!(a0.len() > 130, "{} audio frames", a0.len());
    assert!(a0.last().unwrap().ts > a1.last().unwrap().ts + 1000);
    // The track map lists video_1 while it exists, and no longer once it ended.
    let metas = metadata(&msgs);
    assert!(
        metas
            .iter()
            .any(|m| number(m, &["videoTrackIdInfoMap", "1", "width"]) == Some(160.0))
    );
    let last = metas.last().unwrap();
    assert!(field(last, "videoTrackIdInfoMap").is_none(), "{last:?}");
    assert_eq!(
        number(last, &["audioTrackIdInfoMap", "1", "audiochannels"]),
        Some(1.0)
    );
}

// ---------------------------------------------------------------------------------------------
// Congestion per track
// ---------------------------------------------------------------------------------------------

fn track_counter(s: &gst::Structure, kind: &str, id: u32, counter: &str) -> u64 {
    s.get::<gst::Array>("tracks")
        .ok()
        .and_then(|a| {
            a.iter()
                .filter_map(|v| v.get::<gst::Structure>().ok())
                .find(|t| {
                    t.get::<&str>("kind").ok() == Some(kind) && t.get::<u32>("id").ok() == Some(id)
                })
                .and_then(|t| t.get::<u64>(counter).ok())
        })
        .unwrap_or(0)
}

#[test]
fn a_link_slower_than_the_tracks_drops_the_highest_track_first() {
    init();
    if !require_elements(&["x264enc", "avenc_aac", "tee", "videoscale"]) {
        return;
    }
    // nginx-rtmp acknowledges what it read, so the element sees how far the server got.
    let Some(srv) = NginxRtmp::start(NginxOptions::default().record(false)) else {
        return;
    };
    let proxy = FaultProxy::start(SocketAddr::from(([127, 0, 0, 1], srv.port())));
    let mut launch = format!(
        "rtmpclientsink name=s location={} congestion-policy=drop max-queue-time=1000 \
         videotestsrc is-live=true pattern=snow ! \
         video/x-raw,format=I420,width=320,height=240,framerate=30/1 ! tee name=t \
         audiotestsrc is-live=true samplesperbuffer=1024 ! audio/x-raw,rate=48000,channels=2 ! \
         audioconvert ! avenc_aac ! queue ! s.audio",
        proxy.url("live", "key")
    );
    for pad in ["sink", "video_1", "video_2"] {
        launch.push_str(&format!(
            " t. ! queue ! x264enc speed-preset=ultrafast tune=zerolatency key-int-max=30 \
             bitrate=500 ! video/x-h264,stream-format=avc,alignment=au ! queue ! s.{pad}"
        ));
    }
    let p = pipeline(&launch);
    let sink = p.by_name("s").unwrap();
    let bus = p.bus().unwrap();
    p.set_state(gst::State::Playing).expect("PLAYING");
    let congestion: Arc<Mutex<Vec<gst::Structure>>> = Arc::default();
    let pump = |d: Duration| {
        let end = Instant::now() + d;
        while Instant::now() < end {
            if let Some(m) = bus.timed_pop(gst::ClockTime::from_mseconds(50)) {
                match m.view() {
                    gst::MessageView::Error(e) => panic!("{}: {:?}", e.error(), e.debug()),
                    gst::MessageView::Element(e) => {
                        if let Some(s) = e.structure().filter(|s| s.name() == "rtmp-congestion") {
                            congestion.lock().unwrap().push(s.to_owned());
                        }
                    }
                    _ => {}
                }
            }
        }
    };
    assert!(wait_for(Duration::from_secs(10), || sent_frames(
        &sink, "video", 2
    ) > 30));
    pump(Duration::from_secs(2));
    let bitrate = sink
        .property::<gst::Structure>("stats")
        .get::<u64>("bitrate")
        .unwrap();
    // Room for track 0, audio and part of the other renditions.
    let rate = bitrate / 8 * 3 / 4;
    proxy.throttle(rate);
    pump(Duration::from_secs(12));
    let during = sink.property::<gst::Structure>("stats");
    proxy.forward();
    let _ = p.set_state(gst::State::Null);
    drop(srv);
    let d2 = track_counter(&during, "video", 2, "dropped");
    let d1 = track_counter(&during, "video", 1, "dropped");
    let d0 = track_counter(&during, "video", 0, "dropped");
    let da = track_counter(&during, "audio", 0, "dropped");
    eprintln!(
        "[multitrack] throttled to {} kbit/s of {} kbit/s: dropped video_2 {d2}, video_1 {d1}, \
         track 0 {d0}, audio {da}",
        rate * 8 / 1000,
        bitrate / 1000
    );
    assert!(d2 > 0, "the highest track lost nothing: {during}");
    assert!(d2 > d1, "video_2 {d2} <= video_1 {d1}");
    assert_eq!(d0, 0, "track 0 lost frames: {during}");
    assert_eq!(da, 0, "audio lost frames: {during}");
    assert_eq!(
        during.get::<u64>("dropped-video").unwrap(),
        d0 + d1 + d2,
        "the per-track counters add up"
    );
    let reports = congestion.lock().unwrap();
    let last = reports.last().expect("an rtmp-congestion message");
    assert!(track_counter(last, "video", 2, "dropped") > 0, "{last}");
    assert_eq!(track_counter(last, "video", 0, "dropped"), 0, "{last}");
}

// ---------------------------------------------------------------------------------------------
// Reconnect
// ---------------------------------------------------------------------------------------------

#[test]
fn reconnect_resends_every_tracks_sequence_start_then_keyframes_on_the_same_timeline() {
    init();
    if !require_elements(&["x264enc", "avenc_aac"]) {
        return;
    }
    // Connection 0 is closed by the server after 60 video frames (of both tracks).
    let server = MultiServer::start(Duration::from_secs(40), 2, |index| {
        let mut frames = 0;
        Box::new(move |peer, new| {
            peer.answer_publish_flow(new, &[]);
            if index == 0 {
                frames += new
                    .iter()
                    .filter(|m| m.msg_type_id == msg_type::VIDEO)
                    .count();
                if frames >= 60 {
                    return Reply::Close;
                }
            }
            Reply::Continue
        })
    });
    let video = |w: u32, h: u32, pattern: &str, pad: &str| {
        format!(
            " videotestsrc is-live=true num-buffers=120 pattern={pattern} ! \
             video/x-raw,format=I420,width={w},height={h},framerate=30/1 ! \
             x264enc speed-preset=ultrafast tune=zerolatency key-int-max=30 bitrate=300 ! \
             video/x-h264,stream-format=avc,alignment=au ! queue ! s.{pad}"
        )
    };
    let audio = |ch: u32, pad: &str| {
        format!(
            " audiotestsrc is-live=true num-buffers=188 samplesperbuffer=1024 ! \
             audio/x-raw,rate=48000,channels={ch} ! audioconvert ! avenc_aac ! queue ! s.{pad}"
        )
    };
    let launch = format!(
        "rtmpclientsink name=s location={} reconnect-delay=200{}{}{}{}",
        server.url("live", "key"),
        video(320, 240, "smpte", "sink"),
        video(160, 120, "ball", "video_1"),
        audio(2, "audio"),
        audio(1, "audio_1"),
    );
    let msgs = run_to_eos(&launch, PUBLISH_TIMEOUT);
    assert!(
        msgs.iter()
            .filter(|s| s.name() == "rtmp-publishing")
            .count()
            >= 2,
        "no second publish: {msgs:?}"
    );
    let peers = server.join();
    assert_eq!(peers.len(), 2);
    let first: Vec<Media> = peers[0].received.iter().filter_map(media_of).collect();
    let second_msgs = &peers[1].received;
    let second: Vec<Media> = second_msgs.iter().filter_map(media_of).collect();
    // onMetaData, the four sequence starts, all at one timestamp, before any frame.
    let first_data = second_msgs
        .iter()
        .position(|m| m.msg_type_id == msg_type::DATA_AMF0)
        .expect("onMetaData");
    let first_av = second_msgs
        .iter()
        .position(|m| matches!(m.msg_type_id, msg_type::VIDEO | msg_type::AUDIO))
        .expect("media");
    assert!(first_data < first_av, "onMetaData first");
    let starts: Vec<(bool, u8)> = second[..4].iter().map(|m| (m.video, m.track)).collect();
    assert!(
        second[..4]
            .iter()
            .all(|m| m.kind == Kind::Start && m.ts == second[0].ts),
        "second connection: {:?}",
        &second[..6]
    );
    for t in [(true, 0), (true, 1), (false, 0), (false, 1)] {
        assert!(
            starts.contains(&t),
            "no sequence start of {t:?}: {starts:?}"
        );
    }
    for (video, track) in [(true, 0u8), (true, 1), (false, 0), (false, 1)] {
        let before = track_media(&first, video, track);
        let after = track_media(&second, video, track);
        let frames = |v: &[Media]| -> Vec<u32> {
            v.iter()
                .filter(|m| matches!(m.kind, Kind::Key | Kind::Inter))
                .map(|m| m.ts)
                .collect()
        };
        let (b, a) = (frames(&before), frames(&after));
        assert!(!b.is_empty() && !a.is_empty(), "{video} {track}");
        // The same timeline, nothing sent twice: it goes on after the first connection's end.
        assert!(
            a[0] > *b.last().unwrap(),
            "track ({video}, {track}) restarts at {} ms, before {} ms",
            a[0],
            b.last().unwrap()
        );
        if video {
            let first_frame = after.iter().find(|m| m.kind != Kind::Start).unwrap();
            assert_eq!(
                first_frame.kind,
                Kind::Key,
                "video track {track} resumes at a keyframe"
            );
        }
        assert_eq!(
            after.iter().all(|m| m.multitrack),
            track > 0,
            "wire form of ({video}, {track})"
        );
    }
}
