#![cfg(feature = "gst")]
//! `rtmpclientsink` without a real RTMP server: registration, properties, URI handler, caps,
//! the `audio` request pad, failure without a server, and — against the scripted in-process
//! RTMP peer — exactly what the element puts on the wire (metadata, sequence headers, converted
//! frames, timestamps).

#[path = "common/scripted.rs"]
mod scripted;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;
use gstrtmpclient::rtmp::amf0::Amf0Value;
use gstrtmpclient::rtmp::message::{Message, msg_type};
use scripted::{Next, ScriptedTcpServer, data_values};

fn init() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstrtmpclient::plugin_register_static().expect("register plugin");
    });
}

fn make() -> gst::Element {
    init();
    gst::ElementFactory::make("rtmpclientsink")
        .build()
        .expect("rtmpclientsink")
}

/// A port on 127.0.0.1 with nothing listening.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn registers_with_metadata_and_uri_protocols() {
    init();
    let f = gst::ElementFactory::find("rtmpclientsink").expect("factory");
    assert_eq!(
        f.metadata(gst::ELEMENT_METADATA_KLASS),
        Some("Sink/Network")
    );
    assert!(f.metadata(gst::ELEMENT_METADATA_LONGNAME).is_some());
    assert!(f.metadata(gst::ELEMENT_METADATA_DESCRIPTION).is_some());
    assert!(f.metadata(gst::ELEMENT_METADATA_AUTHOR).is_some());
    assert_eq!(f.uri_type(), gst::URIType::Sink);
    let protocols: Vec<String> = f.uri_protocols().iter().map(|s| s.to_string()).collect();
    assert_eq!(protocols, vec!["rtmp", "rtmps"]);
    let el = make();
    assert!(el.is::<gst_base::BaseSink>());
    assert!(el.is::<gst::URIHandler>());
    let templates: Vec<_> = f
        .static_pad_templates()
        .iter()
        .map(|t| (t.name_template().to_string(), t.presence()))
        .collect();
    assert!(templates.contains(&("sink".to_string(), gst::PadPresence::Always)));
    assert!(templates.contains(&("audio".to_string(), gst::PadPresence::Request)));
}

#[test]
fn property_defaults_and_ranges() {
    let el = make();
    assert_eq!(el.property::<Option<String>>("location"), None);
    assert_eq!(el.property_value("publish-type").get::<i32>().ok(), None); // an enum, not int
    let pt = el.property_value("publish-type");
    let (_, ev) = glib::EnumValue::from_value(&pt).unwrap();
    assert_eq!(ev.nick(), "live");
    assert_eq!(el.property::<u32>("timeout"), 10);
    assert_eq!(el.property::<u32>("chunk-size"), 4096);
    assert_eq!(
        el.property::<String>("flash-version"),
        gstrtmpclient::rtmp::session::DEFAULT_FLASH_VERSION
    );
    assert!(el.property::<bool>("async-connect"));
    assert!(el.property::<bool>("sync"));
    assert_eq!(el.property::<u32>("max-interleave-time"), 500);
    let flags = el.property_value("stop-commands");
    let fc = glib::FlagsClass::with_type(flags.type_()).unwrap();
    let nicks: Vec<&str> = fc
        .values()
        .iter()
        .filter(|v| fc.is_set_by_nick(&flags, v.nick()))
        .map(|v| v.nick())
        .collect();
    assert_eq!(nicks, vec!["fcunpublish", "deletestream"]);
    assert_eq!(flags.type_().name(), "GstRtmpClientStopCommands");

    let pspec = el.find_property("chunk-size").unwrap();
    let p = pspec.downcast_ref::<glib::ParamSpecUInt>().unwrap();
    assert_eq!((p.minimum(), p.maximum()), (128, 0x7FFF_FFFF));
    let p = el.find_property("timeout").unwrap();
    assert!(p.flags().contains(gst::PARAM_FLAG_MUTABLE_READY));
    assert!(
        !el.find_property("stats")
            .unwrap()
            .flags()
            .contains(glib::ParamFlags::WRITABLE)
    );

    el.set_property("chunk-size", 65536u32);
    el.set_property_from_str("publish-type", "record");
    el.set_property_from_str("stop-commands", "closestream+deletestream");
    assert_eq!(el.property::<u32>("chunk-size"), 65536);
    let pt = el.property_value("publish-type");
    let (_, ev) = glib::EnumValue::from_value(&pt).unwrap();
    assert_eq!(ev.nick(), "record");

    let stats = el.property::<gst::Structure>("stats");
    assert_eq!(stats.name(), "rtmp-stats");
    for f in [
        "bytes-sent",
        "video-messages",
        "audio-messages",
        "video-frames",
        "audio-frames",
        "queue-depth-ms",
        "rtt-ms",
        "bitrate",
        "in-chunk-size",
        "out-chunk-size",
        "in-window-ack-size",
        "out-window-ack-size",
        "dropped-video",
        "dropped-audio",
    ] {
        assert!(stats.has_field(f), "stats lacks {f}");
    }
    assert_eq!(stats.get::<u64>("dropped-video").unwrap(), 0);
}

use gst::glib;

#[test]
fn uri_handler_and_location_share_one_setter() {
    let el = make();
    let h = el.dynamic_cast_ref::<gst::URIHandler>().unwrap();
    h.set_uri("rtmp://example.com/live/secret").unwrap();
    assert_eq!(
        el.property::<Option<String>>("location").as_deref(),
        Some("rtmp://example.com/live/secret")
    );
    assert_eq!(h.uri().as_deref(), Some("rtmp://example.com/live/secret"));
    el.set_property("location", "rtmps://example.com:4443/app/inst/key2");
    assert_eq!(
        h.uri().as_deref(),
        Some("rtmps://example.com:4443/app/inst/key2")
    );
    // Invalid URLs are refused and keep the previous value.
    assert!(h.set_uri("http://example.com/live/key").is_err());
    assert!(h.set_uri("rtmp://example.com/onlyapp").is_err());
    el.set_property("location", "not a url");
    assert_eq!(
        h.uri().as_deref(),
        Some("rtmps://example.com:4443/app/inst/key2")
    );
}

fn caps(s: &str) -> gst::Caps {
    s.parse().unwrap()
}

#[test]
fn accepts_h264_and_aac_caps_and_rejects_others() {
    let el = make();
    let sink = el.static_pad("sink").unwrap();
    for ok in [
        "video/x-h264, stream-format=avc, alignment=au, width=320, height=240",
        "video/x-h264, stream-format=byte-stream, alignment=au",
        "audio/mpeg, mpegversion=4, stream-format=raw, rate=44100, channels=2",
        "audio/mpeg, mpegversion=2, stream-format=adts",
        "audio/mpeg, mpegversion=1, layer=3",
        "video/x-h265, stream-format=hvc1, alignment=au",
        "video/x-h265, stream-format=byte-stream, alignment=au",
        "video/x-av1, stream-format=obu-stream, alignment=tu",
        "video/x-vp9, width=320, height=240",
    ] {
        assert!(sink.query_accept_caps(&caps(ok)), "{ok}");
    }
    for bad in [
        "video/x-h264, stream-format=avc3, alignment=au",
        "video/x-h264, stream-format=avc, alignment=nal",
        "audio/mpeg, mpegversion=1, layer=2",
        "video/x-h265, stream-format=hvc1, alignment=nal",
        "video/x-av1, stream-format=annexb, alignment=tu",
        "video/x-av1, stream-format=obu-stream, alignment=frame",
        "audio/mpeg, mpegversion=4, stream-format=loas",
    ] {
        assert!(!sink.query_accept_caps(&caps(bad)), "{bad}");
    }
    let audio = el.request_pad_simple("audio").unwrap();
    assert!(audio.query_accept_caps(&caps("audio/mpeg, mpegversion=4, stream-format=adts")));
    assert!(!audio.query_accept_caps(&caps("video/x-h264, stream-format=avc, alignment=au")));
}

#[test]
fn audio_request_pad_only_once_and_release_is_clean() {
    let el = make();
    let pad = el.request_pad_simple("audio").expect("first audio pad");
    assert_eq!(pad.name(), "audio");
    assert!(
        el.request_pad_simple("audio").is_none(),
        "at most one audio pad"
    );
    assert!(el.request_pad_simple("video").is_none());
    el.release_request_pad(&pad);
    assert!(el.static_pad("audio").is_none());
    let pad = el.request_pad_simple("audio").expect("again after release");
    // Release while running (PAUSED, async-connect to a closed port) is clean too.
    el.set_property(
        "location",
        format!("rtmp://127.0.0.1:{}/live/k", closed_port()),
    );
    let pipeline = gst::Pipeline::new();
    pipeline.add(&el).unwrap();
    let _ = pipeline.set_state(gst::State::Paused);
    el.release_request_pad(&pad);
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(el.request_pad_simple("audio").is_some());
}

/// Waits for an error or EOS on the bus; returns the error text (None for EOS / timeout).
fn wait_error(bus: &gst::Bus, timeout: Duration) -> Option<(glib::Error, String)> {
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_nseconds(timeout.as_nanos() as u64),
        &[gst::MessageType::Error, gst::MessageType::Eos],
    )?;
    match msg.view() {
        gst::MessageView::Error(e) => Some((
            e.error(),
            e.debug().map(|d| d.to_string()).unwrap_or_default(),
        )),
        _ => None,
    }
}

#[test]
fn no_location_fails_start_with_a_settings_error() {
    let el = make();
    let pipeline = gst::Pipeline::new();
    pipeline.add(&el).unwrap();
    assert!(pipeline.set_state(gst::State::Paused).is_err());
    let (err, _) = wait_error(&pipeline.bus().unwrap(), Duration::from_secs(1)).expect("error");
    assert!(err.matches(gst::ResourceError::Settings), "{err:?}");
    assert!(err.message().contains("No location"), "{err}");
    pipeline.set_state(gst::State::Null).unwrap();
}

#[test]
fn closed_port_with_async_connect_posts_error_and_fails_buffers() {
    let el = make();
    el.set_property("sync", false);
    let port = closed_port();
    el.set_property(
        "location",
        format!("rtmp://127.0.0.1:{port}/live/streamkey"),
    );
    let bus = gst::Bus::new();
    el.set_bus(Some(&bus));
    let mut h = gst_check::Harness::with_element(&el, Some("sink"), None);
    h.set_src_caps_str("audio/mpeg, mpegversion=4, stream-format=raw, codec_data=(buffer)1210, rate=44100, channels=2");
    h.play();
    let start = Instant::now();
    let mut last = Ok(gst::FlowSuccess::Ok);
    let mut pts = 0u64;
    while start.elapsed() < Duration::from_secs(5) {
        let mut b = gst::Buffer::from_slice(vec![0x21u8; 64]);
        {
            let b = b.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_mseconds(pts));
        }
        pts += 23;
        last = h.push(b);
        if last.is_err() {
            break;
        }
    }
    assert_eq!(last, Err(gst::FlowError::Error));
    assert!(start.elapsed() < Duration::from_secs(3));
    let (err, debug) = wait_error(&bus, Duration::from_secs(1)).expect("error on the bus");
    assert!(err.matches(gst::ResourceError::OpenWrite), "{err:?}");
    let text = err.message().to_lowercase();
    assert!(text.contains("connection refused"), "{text}");
    assert!(!err.message().contains("streamkey") && !debug.contains("streamkey"));
}

#[test]
fn sync_connect_to_closed_port_fails_the_state_change() {
    let el = make();
    el.set_property("async-connect", false);
    el.set_property(
        "location",
        format!("rtmp://127.0.0.1:{}/live/streamkey", closed_port()),
    );
    let pipeline = gst::Pipeline::new();
    pipeline.add(&el).unwrap();
    let start = Instant::now();
    assert!(pipeline.set_state(gst::State::Paused).is_err());
    assert!(start.elapsed() < Duration::from_secs(3));
    let (err, debug) =
        wait_error(&pipeline.bus().unwrap(), Duration::from_secs(1)).expect("error message");
    assert!(err.matches(gst::ResourceError::OpenWrite), "{err:?}");
    assert!(
        err.message().starts_with("Could not connect to 127.0.0.1:"),
        "{err}"
    );
    assert!(!err.message().contains("streamkey") && !debug.contains("streamkey"));
    pipeline.set_state(gst::State::Null).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Against the scripted RTMP peer: what exactly goes on the wire.
// ---------------------------------------------------------------------------------------------

/// A scripted server that accepts the publish and records everything until the client closes.
fn publish_server() -> ScriptedTcpServer {
    ScriptedTcpServer::start(Duration::from_secs(30), |turn| {
        turn.peer.answer_publish_flow(&turn.new, &[]);
        Next::Continue
    })
}

/// Runs `launch` (with `rtmpclientsink name=s location=URL` inside) to EOS; returns the messages
/// the server received and the bus messages of the element.
fn run_to_eos(
    launch: &str,
    tweak: impl FnOnce(&gst::Pipeline),
) -> (Vec<Message>, Vec<gst::Message>) {
    init();
    let server = publish_server();
    let launch = launch.replace("URL", &server.url());
    let pipeline = gst::parse::launch(&launch)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    tweak(&pipeline);
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut element_msgs = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let msg = bus
            .timed_pop(gst::ClockTime::from_mseconds(200))
            .filter(|m| {
                m.src().is_some_and(|s| s.name() == "s")
                    || m.type_() == gst::MessageType::Eos
                    || m.type_() == gst::MessageType::Error
            });
        if let Some(msg) = msg {
            match msg.view() {
                gst::MessageView::Eos(_) => break,
                gst::MessageView::Error(e) => panic!("error: {} ({:?})", e.error(), e.debug()),
                _ => element_msgs.push(msg.clone()),
            }
        }
        assert!(Instant::now() < deadline, "no EOS within 30 s");
    }
    pipeline.set_state(gst::State::Null).unwrap();
    let peer = server.join();
    (peer.received, element_msgs)
}

fn media(msgs: &[Message]) -> Vec<&Message> {
    msgs.iter()
        .filter(|m| m.msg_type_id == msg_type::AUDIO || m.msg_type_id == msg_type::VIDEO)
        .collect()
}

fn meta_get<'a>(v: &'a Amf0Value, key: &str) -> Option<&'a Amf0Value> {
    match v {
        Amf0Value::EcmaArray(p) | Amf0Value::Object(p) => {
            p.iter().find(|(k, _)| k == key).map(|(_, v)| v)
        }
        _ => None,
    }
}

/// The NAL units of an AVC body with 4-byte length prefixes.
fn avcc_nal_units(body: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut b = body;
    while b.len() >= 4 {
        let n = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        assert!(b.len() >= 4 + n, "truncated NAL in the sent frame");
        out.push(&b[4..4 + n]);
        b = &b[4 + n..];
    }
    assert!(b.is_empty(), "trailing bytes in the sent frame");
    out
}

fn avcc_nal_types(body: &[u8]) -> Vec<u8> {
    avcc_nal_units(body)
        .iter()
        .map(|n| n.first().map_or(0, |b| b & 0x1f))
        .collect()
}

/// Records the bytes of every buffer reaching the sink pad of the element called `name`.
fn capture_buffers(p: &gst::Pipeline, name: &str) -> Arc<Mutex<Vec<Vec<u8>>>> {
    let captured: Arc<Mutex<Vec<Vec<u8>>>> = Default::default();
    let c = captured.clone();
    let sink = p.by_name(name).unwrap().static_pad("sink").unwrap();
    sink.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(gst::PadProbeData::Buffer(b)) = info.data.as_ref() {
            c.lock().unwrap().push(b.map_readable().unwrap().to_vec());
        }
        gst::PadProbeReturn::Ok
    });
    captured
}

#[test]
fn scripted_server_receives_byte_stream_as_h264parse_avc_and_adts_as_aacparse_raw() {
    // The same encoder output goes to the element and, as the independent reference, through
    // h264parse to stream-format=avc (and aacparse to raw). x264enc writes an AUD in every
    // frame (aud=true is its default), in-band SPS/PPS with every keyframe and an SEI.
    let mut references = None;
    let (msgs, bus) = run_to_eos(
        "videotestsrc num-buffers=60 ! video/x-raw,width=320,height=240,framerate=30/1 ! \
         x264enc bframes=2 key-int-max=30 ! \
         video/x-h264,stream-format=byte-stream,alignment=au ! tee name=vt \
         vt. ! queue ! rtmpclientsink name=s location=URL sync=false \
         vt. ! queue ! h264parse ! video/x-h264,stream-format=avc,alignment=au ! \
         fakesink name=vref sync=false \
         audiotestsrc num-buffers=90 ! audio/x-raw,rate=48000,channels=2 ! avenc_aac ! aacparse ! \
         audio/mpeg,stream-format=adts ! tee name=at \
         at. ! queue ! s.audio \
         at. ! queue ! aacparse ! audio/mpeg,stream-format=raw ! fakesink name=aref sync=false",
        |p| references = Some((capture_buffers(p, "vref"), capture_buffers(p, "aref"))),
    );
    let (vref, aref) = references.unwrap();
    let (vref, aref) = (vref.lock().unwrap(), aref.lock().unwrap());
    // onMetaData first, with what caps and SPS said.
    let meta_msg = msgs
        .iter()
        .find(|m| m.msg_type_id == msg_type::DATA_AMF0)
        .expect("@setDataFrame");
    let vals = data_values(meta_msg);
    assert_eq!(vals[0], Amf0Value::String("@setDataFrame".into()));
    assert_eq!(vals[1], Amf0Value::String("onMetaData".into()));
    let meta = &vals[2];
    assert_eq!(meta_get(meta, "width"), Some(&Amf0Value::Number(320.0)));
    assert_eq!(meta_get(meta, "height"), Some(&Amf0Value::Number(240.0)));
    assert_eq!(meta_get(meta, "framerate"), Some(&Amf0Value::Number(30.0)));
    assert_eq!(
        meta_get(meta, "videocodecid"),
        Some(&Amf0Value::Number(7.0))
    );
    assert_eq!(
        meta_get(meta, "audiocodecid"),
        Some(&Amf0Value::Number(10.0))
    );
    assert_eq!(
        meta_get(meta, "audiosamplerate"),
        Some(&Amf0Value::Number(48000.0))
    );
    assert_eq!(
        meta_get(meta, "audiochannels"),
        Some(&Amf0Value::Number(2.0))
    );
    assert_eq!(meta_get(meta, "stereo"), Some(&Amf0Value::Boolean(true)));
    assert!(
        matches!(meta_get(meta, "encoder"), Some(Amf0Value::String(s)) if s.starts_with("gst-plugin-rtmpclient"))
    );
    let meta_idx = msgs.iter().position(|m| std::ptr::eq(m, meta_msg)).unwrap();
    let first_media = msgs
        .iter()
        .position(|m| m.msg_type_id == msg_type::VIDEO || m.msg_type_id == msg_type::AUDIO)
        .unwrap();
    assert!(meta_idx < first_media, "metadata before media");

    let media = media(&msgs);
    // First media message at 0; timestamps never decrease across tracks.
    assert_eq!(media[0].timestamp, 0);
    for w in media.windows(2) {
        assert!(
            w[0].timestamp <= w[1].timestamp,
            "{} > {}",
            w[0].timestamp,
            w[1].timestamp
        );
    }
    let video: Vec<_> = media
        .iter()
        .filter(|m| m.msg_type_id == msg_type::VIDEO)
        .collect();
    let audio: Vec<_> = media
        .iter()
        .filter(|m| m.msg_type_id == msg_type::AUDIO)
        .collect();
    // Video: sequence header first, then 60 frames, key on the first, each NAL unit for NAL
    // unit what h264parse makes of it (AUD, SEI and in-band SPS/PPS included).
    assert_eq!(&video[0].payload[..2], &[0x17, 0x00]);
    assert_eq!(video[0].payload[5], 1, "avcC version");
    let frames: Vec<_> = video[1..].iter().filter(|m| m.payload[1] == 1).collect();
    assert_eq!(frames.len(), 60);
    assert_eq!(vref.len(), 60);
    for (i, (f, reference)) in frames.iter().zip(vref.iter()).enumerate() {
        let sent = avcc_nal_units(&f.payload[5..]);
        let expected = avcc_nal_units(reference);
        assert_eq!(
            sent.len(),
            expected.len(),
            "frame {i}: NAL units {:?} vs h264parse's {:?}",
            sent.iter().map(|n| n[0] & 0x1f).collect::<Vec<_>>(),
            expected.iter().map(|n| n[0] & 0x1f).collect::<Vec<_>>()
        );
        for (k, (a, b)) in sent.iter().zip(&expected).enumerate() {
            assert!(a == b, "frame {i}: NAL unit {k} differs from h264parse's");
        }
        assert_eq!(&f.payload[5..], &reference[..], "frame {i}");
    }
    let first = avcc_nal_types(&frames[0].payload[5..]);
    for t in [9, 7, 8, 6, 5] {
        assert!(
            first.contains(&t),
            "NAL type {t} not in the first frame: {first:?}"
        );
    }
    assert_eq!(frames[0].payload[0], 0x17, "first frame is a keyframe");
    let keys = frames.iter().filter(|m| m.payload[0] >> 4 == 1).count();
    assert_eq!(keys, 2, "two GOPs of 30 frames");
    let mut saw_negative_or_positive_cts = false;
    for f in &frames {
        let types = avcc_nal_types(&f.payload[5..]);
        assert_eq!(types[0], 9, "AUD first, as x264enc wrote it: {types:?}");
        let cts = i32::from_be_bytes([0, f.payload[2], f.payload[3], f.payload[4]]);
        if cts != 0 {
            saw_negative_or_positive_cts = true;
        }
    }
    assert!(
        saw_negative_or_positive_cts,
        "B-frames carry composition times"
    );
    // Audio: sequence header (ASC of AAC-LC 48 kHz stereo), then raw frames without ADTS headers.
    assert_eq!(&audio[0].payload[..2], &[0xAF, 0x00]);
    assert_eq!(&audio[0].payload[2..4], &[0x11, 0x90]);
    let aframes: Vec<_> = audio[1..].iter().filter(|m| m.payload[1] == 1).collect();
    assert!(aframes.len() >= 85, "{} audio frames", aframes.len());
    // Every raw frame is what aacparse makes of the ADTS frame.
    assert_eq!(aframes.len(), aref.len());
    for (i, (m, reference)) in aframes.iter().zip(aref.iter()).enumerate() {
        assert!(
            m.payload[2..] == reference[..],
            "audio frame {i} differs from aacparse's"
        );
    }
    // Bus: connected, publishing, disconnected at the end.
    let names: Vec<String> = bus
        .iter()
        .filter_map(|m| m.structure().map(|s| s.name().to_string()))
        .collect();
    for n in ["rtmp-connected", "rtmp-publishing", "rtmp-disconnected"] {
        assert!(names.iter().any(|x| x == n), "{n} not in {names:?}");
    }
    let connected = bus
        .iter()
        .find(|m| m.structure().is_some_and(|s| s.name() == "rtmp-connected"))
        .unwrap();
    let url = connected.structure().unwrap().get::<String>("url").unwrap();
    assert!(url.ends_with("/live/****"), "{url}");
}

/// Input buffers (bytes, PTS in ms) seen before the sink.
type Captured = Arc<Mutex<Vec<(Vec<u8>, u64)>>>;

#[test]
fn avc_input_with_aud_and_sei_is_sent_byte_identical() {
    // x264enc's default (aud=true): AUD in every frame, SEI in the first.
    let captured = avc_sent_byte_identical("");
    let types = avcc_nal_types(&captured[0].0);
    assert!(types.contains(&9) && types.contains(&6), "{types:?}");
    assert!(captured.iter().all(|(b, _)| avcc_nal_types(b)[0] == 9));
}

#[test]
fn avc_input_without_aud_is_sent_byte_identical_and_pts_only_input_gets_valid_dts() {
    let captured = avc_sent_byte_identical("aud=false");
    assert!(
        captured
            .iter()
            .all(|(b, _)| !avcc_nal_types(b).contains(&9))
    );
}

/// Publishes 90 frames of x264enc (with `x264_props`) as `avc` without DTS (as matroskademux
/// gives B-frame streams) and checks that every frame arrives byte-identical with its PTS and a
/// valid DTS. Returns the input frames.
fn avc_sent_byte_identical(x264_props: &str) -> Vec<(Vec<u8>, u64)> {
    init();
    // Capture what the encoder produced next to what the server received.
    let captured: Captured = Default::default();
    let cap2 = captured.clone();
    let (msgs, _) = run_to_eos(
        &format!(
            "videotestsrc num-buffers=90 ! video/x-raw,width=320,height=240,framerate=25/1 ! \
             x264enc bframes=3 b-pyramid=true key-int-max=50 {x264_props} ! h264parse ! \
             video/x-h264,stream-format=avc,alignment=au ! identity name=strip ! \
             rtmpclientsink name=s location=URL sync=false"
        ),
        move |p| {
            // Remove the DTS like matroskademux does for B-frame streams, and remember input.
            let strip = p.by_name("strip").unwrap();
            strip.static_pad("src").unwrap().add_probe(
                gst::PadProbeType::BUFFER,
                move |_, info| {
                    if let Some(gst::PadProbeData::Buffer(b)) = info.data.as_mut() {
                        let b = b.make_mut();
                        b.set_dts(gst::ClockTime::NONE);
                        let pts = b.pts().unwrap().mseconds();
                        let map = b.map_readable().unwrap();
                        cap2.lock().unwrap().push((map.to_vec(), pts));
                    }
                    gst::PadProbeReturn::Ok
                },
            );
        },
    );
    let captured = captured.lock().unwrap();
    let video: Vec<_> = media(&msgs)
        .into_iter()
        .filter(|m| m.msg_type_id == msg_type::VIDEO && m.payload[1] == 1)
        .collect();
    assert_eq!(video.len(), captured.len());
    assert_eq!(video.len(), 90);
    let mut last_dts = -1;
    let mut offset = None;
    for (i, (m, (input, pts))) in video.iter().zip(captured.iter()).enumerate() {
        assert!(
            m.payload[5..] == input[..],
            "frame {i} differs from the input ({} vs {} bytes, starts {:02x?} vs {:02x?})",
            m.payload.len() - 5,
            input.len(),
            &m.payload[5..m.payload.len().min(13)],
            &input[..input.len().min(8)]
        );
        let cts = i32::from_be_bytes([
            if m.payload[2] & 0x80 != 0 { 0xff } else { 0 },
            m.payload[2],
            m.payload[3],
            m.payload[4],
        ]);
        let dts = m.timestamp as i64;
        assert!(dts > last_dts, "DTS not increasing at {i}");
        assert!(cts >= 0, "DTS > PTS at frame {i}");
        last_dts = dts;
        // PTS equal to the source's after one constant offset (the base).
        let sent_pts = dts + cts as i64;
        let offset = *offset.get_or_insert(sent_pts - *pts as i64);
        assert_eq!(sent_pts - offset, *pts as i64, "PTS of frame {i}");
    }
    captured.clone()
}

// ---------------------------------------------------------------------------------------------
// Bad input: clear errors, counted drops, never a panic.
// ---------------------------------------------------------------------------------------------

// Baseline SPS/PPS (parameter sets are only parsed by NAL header here) and a dummy IDR slice.
const SPS: &[u8] = &[
    0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00,
    0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0xa4, 0x80,
];
const PPS: &[u8] = &[0x68, 0xcb, 0x83, 0xcb, 0x20];
const IDR: &[u8] = &[0x65, 0x88, 0x84, 0x00, 0x33];

fn annexb(nals: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    for n in nals {
        v.extend_from_slice(&[0, 0, 0, 1]);
        v.extend_from_slice(n);
    }
    v
}

/// An element publishing to a server that accepts TCP and never answers (frames just queue),
/// in a harness on its sink pad, with a bus to read errors from.
fn harness_without_answer() -> (gst_check::Harness, gst::Bus, std::net::TcpListener) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let el = make();
    el.set_property("sync", false);
    el.set_property("location", format!("rtmp://127.0.0.1:{port}/live/k"));
    let bus = gst::Bus::new();
    el.set_bus(Some(&bus));
    let mut h = gst_check::Harness::with_element(&el, Some("sink"), None);
    h.play();
    (h, bus, listener)
}

fn buffer(data: Vec<u8>, pts_ms: u64, delta: bool) -> gst::Buffer {
    let mut b = gst::Buffer::from_mut_slice(data);
    {
        let b = b.get_mut().unwrap();
        b.set_pts(gst::ClockTime::from_mseconds(pts_ms));
        b.set_dts(gst::ClockTime::from_mseconds(pts_ms));
        if delta {
            b.set_flags(gst::BufferFlags::DELTA_UNIT);
        }
    }
    b
}

#[test]
fn byte_stream_access_units_are_sent_as_exact_avcc() {
    init();
    let server = publish_server();
    let el = make();
    el.set_property("sync", false);
    el.set_property("location", server.url());
    let bus = gst::Bus::new();
    el.set_bus(Some(&bus));
    let mut h = gst_check::Harness::with_element(&el, Some("sink"), None);
    h.play();
    h.set_src_caps_str("video/x-h264, stream-format=byte-stream, alignment=au");
    const AUD: &[u8] = &[0x09, 0xf0];
    const SEI: &[u8] = &[0x06, 0x05, 0x01, 0x80];
    const FILLER: &[u8] = &[0x0c, 0xff, 0xff, 0x80];
    const SLICE: &[u8] = &[0x41, 0x9a, 0x02, 0x03];
    // 3- and 4-byte start codes, a zero_byte before one, trailing zero bytes at the end.
    let mut key = annexb(&[AUD, SPS, PPS]);
    key.extend_from_slice(&[0, 0, 1]);
    key.extend_from_slice(SEI);
    key.extend_from_slice(&[0, 0, 0, 0, 1]);
    key.extend_from_slice(IDR);
    key.extend_from_slice(&[0, 0]);
    let mut delta = annexb(&[AUD, SLICE]);
    delta.extend_from_slice(&[0, 0, 1]);
    delta.extend_from_slice(FILLER);
    assert_eq!(h.push(buffer(key, 0, false)), Ok(gst::FlowSuccess::Ok));
    assert_eq!(h.push(buffer(delta, 40, true)), Ok(gst::FlowSuccess::Ok));
    assert!(h.push_event(gst::event::Eos::new()));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match bus.timed_pop(gst::ClockTime::from_mseconds(100)) {
            Some(m) if m.type_() == gst::MessageType::Eos => break,
            Some(m) if m.type_() == gst::MessageType::Error => panic!("error: {m:?}"),
            _ => assert!(Instant::now() < deadline, "no EOS within 20 s"),
        }
    }
    drop(h);
    let peer = server.join();
    let frames: Vec<_> = media(&peer.received)
        .into_iter()
        .filter(|m| m.msg_type_id == msg_type::VIDEO && m.payload[1] == 1)
        .collect();
    assert_eq!(frames.len(), 2);
    let avcc = |nals: &[&[u8]]| -> Vec<u8> {
        nals.iter()
            .flat_map(|n| {
                (n.len() as u32)
                    .to_be_bytes()
                    .into_iter()
                    .chain(n.iter().copied())
            })
            .collect()
    };
    // Every NAL unit kept, each with a 4-byte length, start codes and padding gone.
    assert_eq!(&frames[0].payload[..2], &[0x17, 0x01]);
    assert_eq!(frames[0].payload[5..], avcc(&[AUD, SPS, PPS, SEI, IDR])[..]);
    assert_eq!(&frames[1].payload[..2], &[0x27, 0x01]);
    assert_eq!(frames[1].payload[5..], avcc(&[AUD, SLICE, FILLER])[..]);
}

#[test]
fn keyframe_without_sps_pps_is_a_clear_error() {
    let (mut h, bus, _l) = harness_without_answer();
    h.set_src_caps_str("video/x-h264, stream-format=byte-stream, alignment=au");
    assert_eq!(
        h.push(buffer(annexb(&[IDR]), 0, false)),
        Err(gst::FlowError::Error)
    );
    let (err, _) = wait_error(&bus, Duration::from_secs(1)).expect("error");
    assert!(err.matches(gst::StreamError::Format), "{err:?}");
    assert!(
        err.message()
            .starts_with("H.264 stream has no SPS/PPS before its first keyframe; "),
        "{err}"
    );
}

#[test]
fn garbage_buffers_are_dropped_and_counted_then_fail() {
    let (mut h, bus, _l) = harness_without_answer();
    h.set_src_caps_str("video/x-h264, stream-format=byte-stream, alignment=au");
    assert_eq!(
        h.push(buffer(annexb(&[SPS, PPS, IDR]), 0, false)),
        Ok(gst::FlowSuccess::Ok)
    );
    // A few garbage buffers: dropped (no start code), counted, the stream goes on.
    for i in 0..3 {
        assert_eq!(
            h.push(buffer(
                vec![0xde, 0xad, 0xbe, 0xef, 0x01],
                33 * (i + 1),
                true
            )),
            Ok(gst::FlowSuccess::Ok)
        );
    }
    let stats = h.element().unwrap().property::<gst::Structure>("stats");
    assert_eq!(stats.get::<u64>("bad-buffers").unwrap(), 3);
    assert_eq!(
        h.push(buffer(annexb(&[SPS, PPS, IDR]), 200, false)),
        Ok(gst::FlowSuccess::Ok)
    );
    // Nothing but garbage: an error, not an endless silent drop.
    let mut last = Ok(gst::FlowSuccess::Ok);
    for i in 0..30 {
        last = h.push(buffer(vec![0xde, 0xad, 0xbe, 0xef, 0x01], 300 + i, true));
        if last.is_err() {
            break;
        }
    }
    assert_eq!(last, Err(gst::FlowError::Error));
    let (err, _) = wait_error(&bus, Duration::from_secs(1)).expect("error");
    assert!(err.matches(gst::StreamError::Decode), "{err:?}");
    assert!(
        err.message().contains("consecutive invalid H.264 buffers"),
        "{err}"
    );
}

#[test]
fn codec_switch_mid_stream_is_an_error() {
    let (mut h, bus, _l) = harness_without_answer();
    h.set_src_caps_str("video/x-h264, stream-format=byte-stream, alignment=au");
    assert_eq!(
        h.push(buffer(annexb(&[SPS, PPS, IDR]), 0, false)),
        Ok(gst::FlowSuccess::Ok)
    );
    // Same codec, other stream-format: fine.
    h.set_src_caps_str("video/x-h264, stream-format=byte-stream, alignment=au, width=320");
    h.set_src_caps_str(
        "audio/mpeg, mpegversion=4, stream-format=raw, codec_data=(buffer)1210, rate=44100, channels=2",
    );
    let r = h.push(buffer(vec![0x21; 10], 40, false));
    assert!(r.is_err(), "{r:?}");
    let (err, _) = wait_error(&bus, Duration::from_secs(1)).expect("error");
    assert!(err.matches(gst::StreamError::Format), "{err:?}");
    assert_eq!(
        err.message(),
        "Cannot switch from H.264 to AAC in the middle of an RTMP publish"
    );
}

/// H.264 then HEVC caps once frames went out: an RTMP stream keeps its codecs, so a clear
/// error, not a stream whose sequence header suddenly changes codec.
#[test]
fn video_codec_switch_to_hevc_mid_stream_is_an_error() {
    let (mut h, bus, _l) = harness_without_answer();
    h.set_src_caps_str("video/x-h264, stream-format=byte-stream, alignment=au");
    assert_eq!(
        h.push(buffer(annexb(&[SPS, PPS, IDR]), 0, false)),
        Ok(gst::FlowSuccess::Ok)
    );
    h.set_src_caps_str("video/x-h265, stream-format=byte-stream, alignment=au");
    let r = h.push(buffer(annexb(&[SPS, PPS, IDR]), 40, false));
    assert!(r.is_err(), "{r:?}");
    let (err, _) = wait_error(&bus, Duration::from_secs(1)).expect("error");
    assert!(err.matches(gst::StreamError::Format), "{err:?}");
    assert_eq!(
        err.message(),
        "Cannot switch from H.264 to HEVC in the middle of an RTMP publish"
    );
}
