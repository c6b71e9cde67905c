#![cfg(feature = "gst")]
//! `rtmpclientsink` negotiating codecs with the server at `connect`, against scripted servers:
//! what `connect` advertises (from the pads' caps, or their peers' caps when `connect` comes
//! first), what `rtmp-connected` reports of the answer, a server that answers nothing (the
//! stream is sent, with one INFO when something is unconfirmed), a server whose list excludes
//! a codec (one ERROR, no media), capsEx without Multitrack, onMetaData's codec ids and the
//! SequenceEnd before the stop commands, and ModEx nanosecond offsets only for a server that
//! asked for them.

mod common;

use std::time::{Duration, Instant};

use common::gstrun::{pipeline, require_elements};
use common::scripted::{
    Next, ScriptedTcpServer, ServerPeer, amf_strings, command_names, command_of, connect_block,
    data_values,
};
use gst::prelude::*;
use gstrtmpclient::rtmp::amf0::Amf0Value;
use gstrtmpclient::rtmp::caps::{CAPS_EX_MULTITRACK, CAPS_EX_RECONNECT, ConnectCapabilities};
use gstrtmpclient::rtmp::message::{Message, msg_type};

const LIMIT: Duration = Duration::from_secs(30);
const RUN_TIMEOUT: Duration = Duration::from_secs(20);

/// `hvc1` as onMetaData's big-endian number.
const HVC1_NUMBER: f64 = 1_752_589_105.0;

const H264: &str = "videotestsrc num-buffers=20 ! video/x-raw,width=160,height=120,framerate=20/1 ! \
     x264enc speed-preset=ultrafast key-int-max=10 ! video/x-h264,stream-format=avc,alignment=au";
const AAC: &str = "audiotestsrc num-buffers=15 ! voaacenc ! aacparse";
const HEVC: &str = "videotestsrc num-buffers=20 ! video/x-raw,format=I420,width=160,height=120,framerate=20/1 ! \
     x265enc speed-preset=ultrafast key-int-max=10 ! h265parse";

/// A server answering the publish flow with `props` in `_result(connect)`, then reading until
/// the client closes.
fn server(props: Vec<(&'static str, Amf0Value)>) -> ScriptedTcpServer {
    ScriptedTcpServer::publish_then_drain(LIMIT, props)
}

/// How a run ended, with the sink's messages.
struct Run {
    /// The first ERROR's text, if any.
    error: Option<String>,
    /// The texts of the sink's INFO messages.
    infos: Vec<String>,
    /// The sink's element messages.
    structs: Vec<gst::Structure>,
}

/// Plays `p` until EOS or an ERROR (bounded), then sets it to NULL.
fn play(p: &gst::Pipeline) -> Run {
    let bus = p.bus().unwrap();
    let _ = p.set_state(gst::State::Playing);
    let deadline = Instant::now() + RUN_TIMEOUT;
    let mut run = Run {
        error: None,
        infos: Vec::new(),
        structs: Vec::new(),
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no EOS or error within {RUN_TIMEOUT:?}");
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) else {
            continue;
        };
        let from_sink = msg.src().is_some_and(|s| s.name() == "s");
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => {
                run.error = Some(e.error().message().to_string());
                break;
            }
            gst::MessageView::Info(i) if from_sink => {
                run.infos.push(i.error().message().to_string())
            }
            gst::MessageView::Element(e) if from_sink => {
                if let Some(s) = e.structure() {
                    run.structs.push(s.to_owned());
                }
            }
            _ => {}
        }
    }
    p.set_state(gst::State::Null).unwrap();
    run
}

fn launch(url: &str, props: &str, branches: &[(&str, &str)]) -> gst::Pipeline {
    let mut desc = format!("rtmpclientsink name=s location={url} {props}");
    for (branch, pad) in branches {
        desc.push_str(&format!(" {branch} ! s.{pad}"));
    }
    pipeline(&desc)
}

fn media(peer: &ServerPeer) -> Vec<&Message> {
    peer.received
        .iter()
        .filter(|m| matches!(m.msg_type_id, msg_type::VIDEO | msg_type::AUDIO))
        .collect()
}

/// The run ended in an error starting with `starts`, before any media reached the server.
fn assert_refused_before_media(run: &Run, peer: &ServerPeer, starts: &str) {
    let err = run.error.as_deref().unwrap_or_default();
    assert!(err.starts_with(starts), "{err}");
    assert!(media(peer).is_empty());
}

/// onMetaData's `key`, from the first onMetaData the server got.
fn meta_number(peer: &ServerPeer, key: &str) -> Option<f64> {
    let meta = peer
        .received
        .iter()
        .filter(|m| m.msg_type_id == msg_type::DATA_AMF0)
        .map(data_values)
        .find(|v| v.iter().any(|x| x.as_str() == Some("onMetaData")))?;
    let props = meta.iter().find_map(Amf0Value::properties)?;
    props
        .iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.as_f64())
}

/// The video payloads between the last media frame and the first stop command.
fn video_before_stop(peer: &ServerPeer) -> Vec<Vec<u8>> {
    let stop = peer
        .received
        .iter()
        .position(|m| {
            command_of(m).is_some_and(|c| c.name == "FCUnpublish" || c.name == "deleteStream")
        })
        .expect("stop commands");
    peer.received[..stop]
        .iter()
        .filter(|m| m.msg_type_id == msg_type::VIDEO)
        .map(|m| m.payload.clone())
        .collect()
}

/// MP3 at `rate` Hz.
fn mp3(rate: u32) -> String {
    format!(
        "audiotestsrc num-buffers=20 ! audio/x-raw,rate={rate},channels=2 ! lamemp3enc ! \
         mpegaudioparse"
    )
}

#[test]
fn connect_advertises_the_linked_pads_codecs_async_and_sync() {
    if !require_elements(&[
        "videotestsrc",
        "x264enc",
        "audiotestsrc",
        "voaacenc",
        "aacparse",
    ]) {
        return;
    }
    // async: caps arrive within the short wait before `connect`; sync: the state change blocks
    // until publishing, so the codecs come from the pads' peers.
    for props in ["", "async-connect=false"] {
        let srv = server(Vec::new());
        let p = launch(&srv.url(), props, &[(H264, "sink"), (AAC, "audio")]);
        let run = play(&p);
        let peer = srv.join();
        assert_eq!(run.error, None, "{props}");
        let block = connect_block(&peer);
        assert_eq!(block.four_cc_list, ["avc1", "mp4a"], "{props}");
        assert_eq!(block.video_four_cc_info_map, [("avc1".to_string(), 2)]);
        assert_eq!(block.audio_four_cc_info_map, [("mp4a".to_string(), 2)]);
        assert!(block.has_caps_ex(CAPS_EX_RECONNECT), "{props}: {block:?}");
        assert!(!block.has_caps_ex(CAPS_EX_MULTITRACK), "{props}: {block:?}");
        // Legacy H.264 and AAC need nothing from the server: no INFO.
        assert!(run.infos.is_empty(), "{props}: {:?}", run.infos);
        assert!(!media(&peer).is_empty());
        // onMetaData's legacy codec numbers.
        assert_eq!(meta_number(&peer, "videocodecid"), Some(7.0));
        assert_eq!(meta_number(&peer, "audiocodecid"), Some(10.0));
        // The AVC end of sequence FFmpeg writes at its trailer, last before the stop commands;
        // no audio packet after the last AAC frame (legacy AAC has none).
        let video = video_before_stop(&peer);
        let last = video.last().expect("video");
        assert_eq!(last[..last.len().min(8)], [0x17, 2, 0, 0, 0]);
        // At the last frame's timestamp: no timestamp goes back.
        let ts: Vec<u32> = media(&peer).iter().map(|m| m.timestamp).collect();
        assert_eq!(ts.last(), ts.iter().max(), "{ts:?}");
        assert_eq!(
            video.iter().filter(|v| v[..2] == [0x17, 2]).count(),
            1,
            "one end of sequence"
        );
        let last_audio = peer
            .received
            .iter()
            .rfind(|m| m.msg_type_id == msg_type::AUDIO)
            .expect("audio");
        assert_eq!(
            last_audio.payload[..2],
            [0xaf, 1],
            "last audio is an AAC frame"
        );
        // A silent server: rtmp-connected says it sent nothing of Enhanced RTMP.
        let connected = run
            .structs
            .iter()
            .find(|s| s.name() == "rtmp-connected")
            .expect("rtmp-connected");
        assert_eq!(connected.get::<bool>("enhanced"), Ok(false));
        assert_eq!(connected.get::<u32>("caps-ex"), Ok(0));
        assert_eq!(connected.get::<&str>("four-cc-list"), Ok(""));
    }
}

#[test]
fn rtmp_connected_reports_what_the_server_said() {
    if !require_elements(&["videotestsrc", "x264enc"]) {
        return;
    }
    let map = |entries: &[(&str, f64)]| {
        Amf0Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.to_string(), Amf0Value::Number(*v)))
                .collect(),
        )
    };
    let srv = server(vec![
        ("fourCcList", amf_strings(&["hvc1", "av01", "\u{1b}[2J,x"])),
        ("videoFourCcInfoMap", map(&[("hvc1", 4.0), ("*", 1.0)])),
        ("audioFourCcInfoMap", map(&[("Opus", 5.0)])),
        ("capsEx", Amf0Value::Number(3.0)),
    ]);
    let p = launch(&srv.url(), "", &[(H264, "sink")]);
    let run = play(&p);
    let peer = srv.join();
    // Legacy H.264 on track 0 is taken by every server, whatever it lists.
    assert_eq!(run.error, None);
    assert!(run.infos.is_empty(), "{:?}", run.infos);
    assert!(!media(&peer).is_empty());
    let c = run
        .structs
        .iter()
        .find(|s| s.name() == "rtmp-connected")
        .expect("rtmp-connected");
    assert_eq!(c.get::<bool>("enhanced"), Ok(true));
    assert_eq!(c.get::<u32>("caps-ex"), Ok(3));
    // Server-given names are shown printable, without the separators.
    assert_eq!(c.get::<&str>("four-cc-list"), Ok("hvc1,av01,[2Jx"));
    assert_eq!(c.get::<&str>("video-four-cc-info-map"), Ok("hvc1:4,*:1"));
    assert_eq!(c.get::<&str>("audio-four-cc-info-map"), Ok("Opus:5"));
}

#[test]
fn a_silent_server_gets_hevc_with_one_info() {
    if !require_elements(&[
        "videotestsrc",
        "x265enc",
        "h265parse",
        "audiotestsrc",
        "voaacenc",
    ]) {
        return;
    }
    let srv = server(Vec::new());
    let p = launch(&srv.url(), "", &[(HEVC, "sink"), (AAC, "audio")]);
    let run = play(&p);
    let peer = srv.join();
    assert_eq!(run.error, None);
    assert_eq!(connect_block(&peer).four_cc_list, ["hvc1", "mp4a"]);
    assert_eq!(
        run.infos,
        ["Server did not say which codecs it accepts; sending HEVC (hvc1) anyway."]
    );
    assert_eq!(meta_number(&peer, "videocodecid"), Some(HVC1_NUMBER));
    assert_eq!(meta_number(&peer, "audiocodecid"), Some(10.0));
    // The enhanced SequenceEnd (key frame, ExHeader, packet type 2, hvc1) ends the video.
    let video = video_before_stop(&peer);
    assert_eq!(
        video.last().map(Vec::as_slice),
        Some(&[0x90 | 2, b'h', b'v', b'c', b'1'][..])
    );
}

#[test]
fn a_server_excluding_hevc_gets_one_error_and_no_media() {
    if !require_elements(&["videotestsrc", "x265enc", "h265parse"]) {
        return;
    }
    for props in ["", "async-connect=false"] {
        let srv = server(vec![("fourCcList", amf_strings(&["avc1", "av01", "mp4a"]))]);
        let p = launch(&srv.url(), props, &[(HEVC, "sink")]);
        let run = play(&p);
        let peer = srv.join();
        let err = run.error.unwrap_or_default();
        assert!(
            err.starts_with("Server does not accept HEVC (hvc1); it lists avc1, av01;"),
            "{props}: {err}"
        );
        // Refused at connect: no publish, no media.
        assert!(media(&peer).is_empty(), "{props}");
        assert!(
            !command_names(&peer).contains(&"publish".to_string()),
            "{props}"
        );
    }
}

/// Publishes with nothing linked to the sink (so `connect` knows no codec), then links
/// `branch` once publishing and plays to EOS or an error.
fn link_after_connect(props: Vec<(&'static str, Amf0Value)>, branch: &str) -> (Run, ServerPeer) {
    let srv = server(props);
    common::gstsrc::init();
    let p = gst::Pipeline::new();
    let sink = gst::ElementFactory::make("rtmpclientsink")
        .name("s")
        .property("location", srv.url())
        .build()
        .unwrap();
    p.add(&sink).unwrap();
    let bus = p.bus().unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let deadline = Instant::now() + RUN_TIMEOUT;
    loop {
        let msg = bus
            .timed_pop_filtered(
                gst::ClockTime::from_mseconds(100),
                &[gst::MessageType::Element, gst::MessageType::Error],
            )
            .map(|m| (m.structure().map(|s| s.name().to_string()), m));
        match msg {
            Some((Some(name), _)) if name == "rtmp-publishing" => break,
            Some((_, m)) => {
                assert!(!matches!(m.view(), gst::MessageView::Error(_)), "{m:?}")
            }
            None => assert!(Instant::now() < deadline, "not publishing"),
        }
    }
    // A description cannot end with caps: a queue closes it.
    let src = gst::parse::bin_from_description(&format!("{branch} ! queue"), true).unwrap();
    p.add(&src).unwrap();
    src.link(&sink).unwrap();
    src.sync_state_with_parent().unwrap();
    let run = play(&p);
    (run, srv.join())
}

#[test]
fn a_track_whose_caps_come_after_connect_is_judged_then_sent() {
    if !require_elements(&["videotestsrc", "x264enc"]) {
        return;
    }
    // The server lists only HEVC, yet legacy H.264 on track 0 is taken by every server.
    let (run, peer) = link_after_connect(vec![("fourCcList", amf_strings(&["hvc1"]))], H264);
    assert_eq!(run.error, None);
    // Nothing was known at connect: capsEx alone.
    let block = connect_block(&peer);
    assert!(block.four_cc_list.is_empty(), "{block:?}");
    assert!(block.has_caps_ex(CAPS_EX_RECONNECT));
    assert!(media(&peer).len() > 10);
    assert!(run.infos.is_empty(), "{:?}", run.infos);
}

#[test]
fn a_late_track_the_server_excludes_is_refused_before_it_is_sent() {
    if !require_elements(&["videotestsrc", "x265enc", "h265parse"]) {
        return;
    }
    // The server's answer is kept; HEVC arriving after connect is refused before its first
    // packet.
    let (run, peer) =
        link_after_connect(vec![("fourCcList", amf_strings(&["avc1", "mp4a"]))], HEVC);
    assert_refused_before_media(
        &run,
        &peer,
        "Server does not accept HEVC (hvc1); it lists avc1;",
    );
    // The publish was stopped cleanly.
    assert!(command_names(&peer).contains(&"deleteStream".to_string()));
}

#[test]
fn caps_ex_without_multitrack_refuses_a_second_track_at_connect() {
    if !require_elements(&["videotestsrc", "x264enc"]) {
        return;
    }
    common::gstsrc::init();
    let srv = server(vec![
        ("fourCcList", amf_strings(&["*"])),
        ("capsEx", Amf0Value::Number(1.0)),
    ]);
    let p = launch(&srv.url(), "", &[(H264, "sink"), (H264, "video_1")]);
    let run = play(&p);
    let peer = srv.join();
    assert!(connect_block(&peer).has_caps_ex(CAPS_EX_MULTITRACK));
    assert_refused_before_media(
        &run,
        &peer,
        "Server does not accept multitrack (capsEx 0x01)",
    );
}

#[test]
fn mp3_is_judged_in_the_form_its_first_frame_takes() {
    if !require_elements(&["audiotestsrc", "lamemp3enc", "mpegaudioparse"]) {
        return;
    }
    let lists_avc_aac = || vec![("fourCcList", amf_strings(&["avc1", "mp4a"]))];
    // 44.1 kHz fits the legacy header: legacy MP3 needs nothing from the server.
    let srv = server(lists_avc_aac());
    let run = play(&launch(&srv.url(), "", &[(&mp3(44_100), "sink")]));
    let peer = srv.join();
    assert_eq!(run.error, None);
    assert_eq!(connect_block(&peer).four_cc_list, [".mp3"]);
    // Every message legacy MP3 (sound format 2): no `.mp3` SequenceEnd at EOS either.
    assert!(media(&peer).len() > 5);
    assert!(
        media(&peer).iter().all(|m| m.payload[0] >> 4 == 2),
        "legacy MP3"
    );
    assert_eq!(meta_number(&peer, "audiocodecid"), Some(2.0));
    // 32 kHz does not: `.mp3`, which this server does not list, refused at its first frame
    // (connect could not know the form).
    let srv = server(lists_avc_aac());
    let run = play(&launch(&srv.url(), "", &[(&mp3(32_000), "sink")]));
    let peer = srv.join();
    assert_refused_before_media(
        &run,
        &peer,
        "Server does not accept MP3 (.mp3); it lists mp4a;",
    );
}

#[test]
fn a_demuxer_linking_its_pads_after_the_start_still_has_its_codecs_advertised() {
    use common::gstmedia_ertmp::{Combo, combo_mkv};
    if !require_elements(&["matroskademux"]) {
        return;
    }
    let Some(mkv) = combo_mkv(Combo::HevcAac) else {
        return;
    };
    // matroskademux adds and links its pads only once it read the file's headers, after the
    // publish started: the short wait for caps lets `connect` know them.
    let srv = server(Vec::new());
    let p = pipeline(&format!(
        "filesrc location={} ! matroskademux name=d \
         d.video_0 ! queue ! s.sink d.audio_0 ! queue ! s.audio \
         rtmpclientsink name=s location={}",
        mkv.display(),
        srv.url()
    ));
    let run = play(&p);
    let peer = srv.join();
    assert_eq!(run.error, None);
    assert_eq!(connect_block(&peer).four_cc_list, ["hvc1", "mp4a"]);
    assert_eq!(run.infos.len(), 1, "{:?}", run.infos);
    assert_eq!(meta_number(&peer, "videocodecid"), Some(HVC1_NUMBER));
}

/// A server whose first connection answers `first`, takes a few media messages and hangs up;
/// the second answers `second` and reads until the client closes.
fn reconnecting_server(
    first: Vec<(&'static str, Amf0Value)>,
    second: Vec<(&'static str, Amf0Value)>,
) -> (
    ScriptedTcpServer,
    std::sync::Arc<std::sync::Mutex<Vec<ConnectCapabilities>>>,
) {
    let blocks = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = blocks.clone();
    let mut published = [false, false];
    let srv = ScriptedTcpServer::start_multi(LIMIT, 2, move |index, turn| {
        if let Some(c) = turn
            .new
            .iter()
            .filter_map(command_of)
            .find(|c| c.name == "connect")
        {
            seen.lock()
                .unwrap()
                .push(ConnectCapabilities::from_properties(
                    c.command_object.properties().unwrap_or_default(),
                ));
        }
        let props = if index == 0 { &first } else { &second };
        if !published[index] {
            published[index] = turn.peer.answer_publish_flow(&turn.new, props);
        }
        let media = media(turn.peer).len();
        match (index, published[index]) {
            (0, true) if media >= 5 => Next::Close,
            (1, true) => Next::DrainUntilClose,
            _ => Next::Continue,
        }
    });
    (srv, blocks)
}

#[test]
fn every_reconnect_advertises_and_judges_again_and_the_info_is_not_repeated() {
    if !require_elements(&["videotestsrc", "x265enc", "h265parse"]) {
        return;
    }
    let live_hevc = "videotestsrc is-live=true num-buffers=60 ! \
         video/x-raw,format=I420,width=160,height=120,framerate=30/1 ! \
         x265enc speed-preset=ultrafast tune=zerolatency key-int-max=10 ! h265parse";
    // Both silent: one INFO for the whole publish.
    let (srv, blocks) = reconnecting_server(Vec::new(), Vec::new());
    let run = play(&launch(
        &srv.url(),
        "reconnect-delay=50",
        &[(live_hevc, "sink")],
    ));
    drop(srv.join());
    assert_eq!(run.error, None);
    let blocks = blocks.lock().unwrap().clone();
    assert_eq!(blocks.len(), 2, "reconnected once");
    assert!(
        blocks.iter().all(|b| b.four_cc_list == ["hvc1"]),
        "{blocks:?}"
    );
    assert_eq!(run.infos.len(), 1, "{:?}", run.infos);
    // The server now lists codecs without HEVC: the reconnect is refused with one ERROR.
    let (srv, _) = reconnecting_server(
        Vec::new(),
        vec![("fourCcList", amf_strings(&["avc1", "av01"]))],
    );
    let run = play(&launch(
        &srv.url(),
        "reconnect-delay=50",
        &[(live_hevc, "sink")],
    ));
    let peer = srv.join();
    let err = run.error.unwrap_or_default();
    assert!(
        err.starts_with("Server does not accept HEVC (hvc1); it lists avc1, av01;"),
        "{err}"
    );
    assert!(media(&peer).is_empty(), "the second server got no media");
}

/// The video frames (coded frames, not sequence starts or ends) on track `track_id`: their
/// millisecond timestamp and TimestampOffsetNano ModEx (`None`: no ModEx).
fn video_frames_nanos(peer: &ServerPeer, track_id: u8) -> Vec<(u32, Option<u32>)> {
    use gstrtmpclient::codec::flv::{self, ModEx, VideoPacketType, VideoTagBody};
    media(peer)
        .into_iter()
        .filter(|m| m.msg_type_id == msg_type::VIDEO)
        .filter_map(|m| {
            let tag = flv::parse_video(&m.payload).expect("video tag parses");
            match tag.body {
                VideoTagBody::Legacy(l) => (track_id == 0
                    && l.avc_packet_type == Some(flv::AvcPacketType::Nalu))
                .then_some((m.timestamp, None)),
                VideoTagBody::Enhanced(e) => {
                    let id = e.tracks.first().map_or(0, |t| t.track_id);
                    let frame = matches!(
                        e.packet_type,
                        VideoPacketType::CodedFrames | VideoPacketType::CodedFramesX
                    );
                    (id == track_id && frame).then(|| {
                        let nano = e.mod_ex.iter().find_map(|x| match x {
                            ModEx::TimestampOffsetNano(n) => Some(*n),
                            _ => None,
                        });
                        (m.timestamp, nano)
                    })
                }
            }
        })
        .collect()
}

/// ModEx TimestampOffsetNano goes out only to a server whose capsEx has ModEx and
/// TimestampNanoOffset, and then gives every decode time to the nanosecond: at 30 fps the
/// frames are 33 333 333 ns apart, which milliseconds alone cannot say (they step 33, 33, 34).
/// Track 0 H.264 stays legacy FLV, which cannot carry ModEx.
#[test]
fn mod_ex_nanosecond_offsets_only_when_the_server_asked_for_them() {
    if !require_elements(&["videotestsrc", "x264enc"]) {
        return;
    }
    common::gstsrc::init();
    let h264_30 = "videotestsrc num-buffers=30 ! video/x-raw,width=160,height=120,framerate=30/1 ! \
         x264enc speed-preset=ultrafast key-int-max=10 ! video/x-h264,stream-format=avc,alignment=au";
    for (caps_ex, asked) in [(0x0f_u32, true), (0x03, false)] {
        let srv = server(vec![
            ("fourCcList", amf_strings(&["*"])),
            ("capsEx", Amf0Value::Number(f64::from(caps_ex))),
        ]);
        let p = launch(&srv.url(), "", &[(h264_30, "sink"), (h264_30, "video_1")]);
        let run = play(&p);
        let peer = srv.join();
        assert_eq!(run.error, None, "capsEx {caps_ex:#x}");
        let track0 = video_frames_nanos(&peer, 0);
        assert_eq!(track0.len(), 30, "track 0 frames");
        assert!(
            track0.iter().all(|(_, n)| n.is_none()),
            "legacy track 0 never carries ModEx"
        );
        let frames = video_frames_nanos(&peer, 1);
        assert_eq!(frames.len(), 30, "track 1 frames");
        let with = frames.iter().filter(|(_, n)| n.is_some()).count();
        if asked {
            // Two frames in three have a sub-millisecond part; with it every step is one
            // frame duration to within rounding of the buffers' nanoseconds.
            assert!(with >= 18, "ModEx on {with} of 30 frames: {frames:?}");
            let ns: Vec<i64> = frames
                .iter()
                .map(|(ts, n)| i64::from(*ts) * 1_000_000 + i64::from(n.unwrap_or(0)))
                .collect();
            for w in ns.windows(2) {
                let step = w[1] - w[0];
                assert!(
                    (step - 33_333_333).abs() <= 2,
                    "decode time step {step} ns: {frames:?}"
                );
            }
        } else {
            assert_eq!(
                with, 0,
                "ModEx sent to a server that did not ask: {frames:?}"
            );
        }
    }
}
