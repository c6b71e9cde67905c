#![cfg(feature = "gst")]
//! Issue 9's per-codec publish checks: `rtmpclientsink` publishes GStreamer-made Matroska files
//! (HEVC with B-frames, AV1 and VP9, each with AAC; H.264 with Opus, FLAC, AC-3, E-AC-3 or MP3)
//! straight from matroskademux, no parser in between, to FFmpeg 9 listening. Every packet of
//! every stream must arrive byte-identical to the file's (framemd5 size and MD5), with the PTS
//! the element was given to the millisecond, all streams on one timeline; hvcC and OpusHead
//! (which FFmpeg keeps verbatim) equal to the source's; the recording decodes cleanly. The same
//! checks run with FFmpeg 9 itself as the publisher, which shows the bar is reachable, and on
//! H.264 + AAC, which shows the harness passes whenever the element supports the codecs.

mod common;

use std::path::Path;
use std::time::Duration;

use common::ffmpeg9::{
    self, Ff9Listen, FrameMd5, Outputs, assert_all_streams_identical, decode_errors,
    decoded_frames, ffmpeg9, framemd5_of_file, md5_hex, sequence_starts,
};
use common::gstmedia_ertmp::{
    Combo, Demuxed, assert_element_accepts, caps_buffer, caps_first_streamheader, combo_mkv, demux,
};
use common::gstrun::{require_elements, run_to_eos};
use common::harness::{buffer, harness_without_answer};
use common::util::TempDir;
use gstrtmpclient::codec::flv::{AVC1, FourCc, HVC1, MP4A, OPUS};

const PUBLISH_TIMEOUT: Duration = Duration::from_secs(30);
const SERVER_EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// FFmpeg's own removal of AV1 temporal delimiters (OBU type 2): the element drops them (the
/// issue says so), FFmpeg's publisher does not.
/// The H.264 combinations with an audio codec other than AAC.
const AUDIO_COMBOS: [Combo; 5] = [
    Combo::H264Opus,
    Combo::H264Flac,
    Combo::H264Ac3,
    Combo::H264Eac3,
    Combo::H264Mp3,
];

const AV1_REMOVE_TD: [&str; 2] = ["-bsf:v", "filter_units=remove_types=2"];

/// A source file with its two references: the packets FFmpeg 9 reads from it (bytes), and the
/// PTS matroskademux hands the element, per FFmpeg stream index.
struct Source {
    label: String,
    /// FFmpeg 9's framemd5 of the file as read for stream copy.
    file: FrameMd5,
    demuxed: Vec<Demuxed>,
}

impl Source {
    /// `pads` are the matroskademux pads in the file's track order (= FFmpeg's stream order).
    fn new(ff: &Path, label: &str, mkv: &Path, pads: &[&str]) -> Source {
        let file = framemd5_of_file(ff, mkv, &[]);
        let demuxed = demux(mkv, pads);
        assert_eq!(
            file.streams.len(),
            pads.len(),
            "{label}: {:?}",
            file.streams
        );
        // The pad <-> stream pairing holds: both demuxers give the same packets.
        for (i, d) in demuxed.iter().enumerate() {
            let sizes: Vec<usize> = file.stream_packets(i).iter().map(|p| p.size).collect();
            let ours: Vec<usize> = d.buffers.iter().map(Vec::len).collect();
            assert_eq!(ours, sizes, "{label}: pad {} vs FFmpeg stream {i}", pads[i]);
        }
        Source {
            label: label.to_string(),
            file,
            demuxed,
        }
    }

    fn ref_pts(&self) -> Vec<Vec<i64>> {
        self.demuxed.iter().map(|d| d.pts_ms.clone()).collect()
    }

    fn stream_of(&self, codec_id: &str) -> usize {
        self.file.stream(codec_id, None).index
    }
}

/// The checks on what the server received and recorded; `expected` holds the packets the
/// publisher must deliver, `ref_pts` their PTS.
fn check_received(
    ff: &Path,
    label: &str,
    expected: &FrameMd5,
    ref_pts: &[Vec<i64>],
    srv: &Ff9Listen,
) -> FrameMd5 {
    let got = srv.framemd5();
    assert_all_streams_identical(label, expected, ref_pts, &got);
    // Codec configurations FFmpeg keeps verbatim arrive verbatim (FFmpeg's view).
    let pairs = ffmpeg9::match_streams(label, expected, &got);
    for (e, g) in pairs {
        let es = &expected.streams[e];
        if ["hevc", "opus", "h264", "aac"].contains(&es.codec_id.as_str()) {
            assert_eq!(
                got.streams[g].extradata, es.extradata,
                "{label}: {} configuration record as FFmpeg received it",
                es.codec_id
            );
        }
    }
    let errs = decode_errors(ff, srv.flv_path());
    assert!(
        errs.is_empty(),
        "{label}: the recording does not decode cleanly: {errs:?}"
    );
    got
}

/// The sequence start of `fourcc` on track 0 in the server's FLV, parsed with the crate's
/// parsers.
fn received_config(srv: &Ff9Listen, fourcc: FourCc) -> Vec<u8> {
    let starts = sequence_starts(srv.flv_path());
    let found: Vec<_> = starts
        .iter()
        .filter(|s| s.fourcc == fourcc && s.track_id == 0)
        .collect();
    assert!(
        !found.is_empty(),
        "no {} sequence start on track 0 in the recording: {:?}",
        String::from_utf8_lossy(&fourcc),
        starts
            .iter()
            .map(|s| (String::from_utf8_lossy(&s.fourcc).into_owned(), s.track_id))
            .collect::<Vec<_>>()
    );
    found[0].data.clone()
}

/// The source's configuration records as GStreamer's caps carry them, against what the
/// recording's sequence starts hold.
fn check_configs(c: Combo, src: &Source, srv: &Ff9Listen) {
    let (v, a) = (&src.demuxed[0].caps, &src.demuxed[1].caps);
    let (vc, ac) = c.ffmpeg_codecs();
    if let Some((fourcc, record)) = match vc {
        "hevc" => Some((HVC1, caps_buffer(v, "codec_data"))),
        "h264" => Some((AVC1, caps_buffer(v, "codec_data"))),
        _ => None,
    } {
        let record = record.expect("codec_data in the demuxed caps");
        assert_eq!(
            received_config(srv, fourcc),
            record,
            "{}: video configuration record",
            src.label
        );
    }
    if let Some((fourcc, record)) = match ac {
        // RFC 7845 ID header, which is what Enhanced RTMP and FFmpeg carry (not dOps).
        "opus" => Some((OPUS, caps_first_streamheader(a))),
        "aac" => Some((MP4A, caps_buffer(a, "codec_data"))),
        _ => None,
    } {
        let record = record.expect("configuration in the demuxed caps");
        assert_eq!(
            received_config(srv, fourcc),
            record,
            "{}: audio configuration record",
            src.label
        );
        assert_eq!(
            md5_hex(&record),
            src.file.streams[1].extradata.as_ref().unwrap().1,
            "{}: GStreamer's and FFmpeg's reading of the audio record",
            src.label
        );
    }
}

/// The element publishing the video and audio track of `mkv` (sink and audio pad) to `url`,
/// to EOS; the element messages posted meanwhile.
fn publish_mkv(mkv: &Path, url: &str) -> Vec<gst::Structure> {
    run_to_eos(
        &format!(
            "filesrc location={} ! matroskademux name=d \
             d.video_0 ! queue ! rtmpclientsink name=s sync=false location={url} \
             d.audio_0 ! queue ! s.audio",
            mkv.display()
        ),
        PUBLISH_TIMEOUT,
    )
}

/// The per-codec publish of issue 9: file → matroskademux → rtmpclientsink → FFmpeg 9.
fn publish_combo(c: Combo) {
    let Some(ff) = ffmpeg9() else { return };
    let Some(mkv) = combo_mkv(c) else { return };
    let label = c.name();
    let src = Source::new(&ff, label, &mkv, &["video_0", "audio_0"]);
    let (vc, ac) = c.ffmpeg_codecs();
    assert_eq!(
        (src.stream_of(vc), src.stream_of(ac)),
        (0, 1),
        "{label}: track order"
    );
    if vc == "hevc" || vc == "h264" {
        assert!(
            src.file.has_reordered_pts(0),
            "{label}: the source has no B-frames"
        );
    }
    // The bytes the element must deliver: the file's, minus AV1 temporal delimiters.
    let expected = if vc == "av1" {
        framemd5_of_file(&ff, &mkv, &AV1_REMOVE_TD)
    } else {
        src.file.clone()
    };

    // A codec the element does not take fails here, with that reason.
    assert_element_accepts("sink", &src.demuxed[0].caps);
    assert_element_accepts("audio", &src.demuxed[1].caps);

    let dir = TempDir::new(label);
    let Some(mut srv) = Ff9Listen::start(dir.path(), Outputs::BOTH) else {
        return;
    };
    let msgs = publish_mkv(&mkv, &srv.url());
    assert!(
        msgs.iter().any(|s| s.name() == "rtmp-publishing"),
        "{label}: no rtmp-publishing message"
    );
    srv.finish(SERVER_EXIT_TIMEOUT);
    check_received(&ff, label, &expected, &src.ref_pts(), &srv);
    check_configs(c, &src, &srv);
}

#[test]
fn h264_and_opus_byte_identical_to_ffmpeg9() {
    publish_combo(Combo::H264Opus);
}

#[test]
fn h264_and_flac_byte_identical_to_ffmpeg9() {
    publish_combo(Combo::H264Flac);
}

#[test]
fn h264_and_ac3_byte_identical_to_ffmpeg9() {
    publish_combo(Combo::H264Ac3);
}

#[test]
fn h264_and_eac3_byte_identical_to_ffmpeg9() {
    publish_combo(Combo::H264Eac3);
}

#[test]
fn h264_and_mp3_byte_identical_to_ffmpeg9() {
    publish_combo(Combo::H264Mp3);
}

#[test]
fn hevc_b_frames_and_aac_byte_identical_to_ffmpeg9() {
    publish_combo(Combo::HevcAac);
}

#[test]
fn av1_and_aac_byte_identical_to_ffmpeg9_without_temporal_delimiters() {
    publish_combo(Combo::Av1Aac);
}

#[test]
fn vp9_and_aac_byte_identical_to_ffmpeg9() {
    publish_combo(Combo::Vp9Aac);
}

/// Enhanced RTMP over rtmps, with what users run: the HEVC (B-frames) + AAC file through a real
/// TLS terminator (nginx's stream module, a certificate signed by a private CA) into FFmpeg 9
/// listening; every packet byte-identical as over rtmp, hvcC equal, clean decode.
#[test]
fn hevc_and_aac_over_rtmps_byte_identical_to_ffmpeg9() {
    let Some(ff) = ffmpeg9() else { return };
    let Some(mkv) = combo_mkv(Combo::HevcAac) else {
        return;
    };
    let label = "HEVC + AAC over rtmps";
    let src = Source::new(&ff, label, &mkv, &["video_0", "audio_0"]);
    let dir = TempDir::new("ertmp-rtmps");
    let Some(mut srv) = Ff9Listen::start(dir.path(), Outputs::BOTH) else {
        return;
    };
    let Some((front, ca)) = common::tls::tls_front_to(&dir, &["localhost"], srv.port()) else {
        return;
    };
    let msgs = run_to_eos(
        &format!(
            "filesrc location={} ! matroskademux name=d \
             d.video_0 ! queue ! rtmpclientsink name=s sync=false location={} tls-ca-file={} \
             d.audio_0 ! queue ! s.audio",
            mkv.display(),
            front.tls_url("localhost", "live", "key"),
            ca.display()
        ),
        PUBLISH_TIMEOUT,
    );
    assert!(
        msgs.iter().any(|s| s.name() == "rtmp-publishing"),
        "{label}: no rtmp-publishing message"
    );
    srv.finish(SERVER_EXIT_TIMEOUT);
    check_received(&ff, label, &src.file, &src.ref_pts(), &srv);
    check_configs(Combo::HevcAac, &src, &srv);
}

/// The control: H.264 + AAC, which the element has always published, through the same harness.
#[test]
fn control_h264_and_aac_byte_identical_to_ffmpeg9() {
    publish_combo(Combo::H264Aac);
}

/// The bar is reachable and the harness sound: FFmpeg 9 publishing each file
/// (`-i F -map 0 -c copy -copyinkf -f flv rtmp://...`) to FFmpeg 9 listening passes the same
/// checks, against FFmpeg's own reading of the file (it keeps AV1 temporal delimiters).
#[test]
fn reference_ffmpeg9_publisher_passes_the_same_checks() {
    let Some(ff) = ffmpeg9() else { return };
    for c in Combo::ALL {
        let Some(mkv) = combo_mkv(c) else { return };
        let label = format!("FFmpeg 9 publishing {}", c.name());
        let src = Source::new(&ff, &label, &mkv, &["video_0", "audio_0"]);
        let ref_pts: Vec<Vec<i64>> = (0..src.file.streams.len())
            .map(|i| src.file.pts_ms(i))
            .collect();
        let dir = TempDir::new(c.name());
        let Some(mut srv) = Ff9Listen::start(dir.path(), Outputs::BOTH) else {
            return;
        };
        ffmpeg9::publish(&ff, &mkv, &srv.url());
        srv.finish(SERVER_EXIT_TIMEOUT);
        check_received(&ff, &label, &src.file, &ref_pts, &srv);
        check_configs(c, &src, &srv);
    }
}

/// What FFmpeg 9 says about the audio stream of `path` (`ffmpeg -i`): its "Audio: ..." line.
fn audio_line(ff: &Path, path: &Path) -> String {
    let out = std::process::Command::new(ff)
        .args(["-hide_banner", "-i"])
        .arg(path)
        .output()
        .expect("run FFmpeg 9");
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    text.lines()
        .find(|l| l.contains("Audio:"))
        .unwrap_or_else(|| panic!("no audio stream in {}: {text}", path.display()))
        .to_string()
}

/// Audio beyond mono/stereo and the legacy rates, with H.264 as in the combinations: 5.1 AAC
/// (legacy with a MultichannelConfig), 5.1 Opus (channel mapping family 1) and 32 kHz MP3
/// (`.mp3`, which the legacy header cannot say). Each is published from a GStreamer-made
/// Matroska file to FFmpeg 9 with the checks of the combinations (every packet byte-identical
/// with its PTS, OpusHead and ASC as in the caps, clean decode), and FFmpeg sees the layout and
/// rate. FFmpeg's FLV muxer refuses MP3 at 32 kHz on track 0, so that case is received into
/// framemd5 only (no recording to decode). (Audio-only, FFmpeg 9's FLV reader turns a
/// MultichannelConfig into an empty packet, for FFmpeg's own publisher too.)
#[test]
fn multichannel_and_non_legacy_rate_audio_byte_identical_to_ffmpeg9() {
    let Some(ff) = ffmpeg9() else { return };
    let cases = [
        (
            Combo::H264Aac,
            "aac_5_1",
            "audio/x-raw,rate=48000,channels=6,channel-mask=(bitmask)0x3f ! audioconvert ! \
             avenc_aac bitrate=192000 ! aacparse",
            Some("5.1"),
        ),
        (
            Combo::H264Opus,
            "opus_5_1",
            "audio/x-raw,rate=48000,channels=6,channel-mask=(bitmask)0x3f ! audioconvert ! \
             opusenc bitrate=128000",
            Some("5.1"),
        ),
        (
            Combo::H264Mp3,
            "mp3_32k",
            "audio/x-raw,rate=32000,channels=2 ! audioconvert ! \
             lamemp3enc target=bitrate bitrate=96 cbr=true ! mpegaudioparse",
            None,
        ),
    ];
    for (combo, label, chain, says) in cases {
        let dir = TempDir::new(label);
        let mkv = dir.path().join(format!("{label}.mkv"));
        run_to_eos(
            &format!(
                "matroskamux name=mux ! filesink location={} \
                 videotestsrc num-buffers=30 ! \
                 video/x-raw,format=I420,width=160,height=120,framerate=30/1 ! \
                 x264enc speed-preset=ultrafast key-int-max=15 ! h264parse ! queue ! mux. \
                 audiotestsrc num-buffers=47 samplesperbuffer=1024 ! {chain} ! queue ! mux.",
                mkv.display()
            ),
            PUBLISH_TIMEOUT,
        );
        let src = Source::new(&ff, label, &mkv, &["video_0", "audio_0"]);
        assert_element_accepts("audio", &src.demuxed[1].caps);
        let outputs = Outputs {
            framemd5: true,
            flv: says.is_some(),
        };
        let Some(mut srv) = Ff9Listen::start(dir.path(), outputs) else {
            return;
        };
        publish_mkv(&mkv, &srv.url());
        srv.finish(SERVER_EXIT_TIMEOUT);
        let Some(says) = says else {
            let got = srv.framemd5();
            assert_all_streams_identical(label, &src.file, &src.ref_pts(), &got);
            let a = got.stream("mp3", None);
            assert_eq!(a.sample_rate, Some(32_000), "{label}: {a:?}");
            continue;
        };
        check_received(&ff, label, &src.file, &src.ref_pts(), &srv);
        check_configs(combo, &src, &srv);
        let line = audio_line(&ff, srv.flv_path());
        assert!(line.contains(says), "{label}: FFmpeg 9 reads {line:?}");
    }
}

/// The element on a server that accepts the TCP connection and never answers (frames queue,
/// nothing is sent), audio on `sink`, and its bus.
fn harness_on_silent_server(caps: &str) -> (gst_check::Harness, gst::Bus, std::net::TcpListener) {
    let (mut h, bus, listener) = harness_without_answer();
    h.set_src_caps_str(caps);
    (h, bus, listener)
}

/// The first ERROR on `bus` (≤ 5 s): its message and debug text.
fn bus_error(bus: &gst::Bus) -> (String, String) {
    let msg = bus
        .timed_pop_filtered(gst::ClockTime::from_seconds(5), &[gst::MessageType::Error])
        .expect("an ERROR on the bus");
    let gst::MessageView::Error(e) = msg.view() else {
        unreachable!()
    };
    (
        e.error().message().to_string(),
        e.debug().map(|d| d.to_string()).unwrap_or_default(),
    )
}

/// Bad audio input is a clear error (or counted bad buffers that end in one), never a panic:
/// Opus caps without an OpusHead, FLAC frames without STREAMINFO, and garbage or truncated
/// AC-3, E-AC-3, MP3 and FLAC frames.
#[test]
fn bad_audio_input_is_a_clear_error_never_a_panic() {
    // Opus caps with nothing to build an OpusHead from: refused at the caps.
    let (mut h, bus, _l) = harness_on_silent_server("audio/x-opus");
    assert!(h.push(buffer(vec![0xfc, 1, 2], 0, false)).is_err());
    let (text, _) = bus_error(&bus);
    assert!(text.contains("OpusHead"), "{text}");

    // FLAC without any STREAMINFO (no streamheader, none in-band): a clear error at once.
    let (mut h, bus, _l) = harness_on_silent_server("audio/x-flac, rate=48000, channels=2");
    assert_eq!(
        h.push(buffer(vec![0xff, 0xf8, 0x69, 0x08, 0, 0x11], 0, false)),
        Err(gst::FlowError::Error)
    );
    let (text, _) = bus_error(&bus);
    assert!(text.contains("STREAMINFO"), "{text}");

    let streaminfo_block = {
        // Header (last block, STREAMINFO, 34 bytes); block sizes 4608, frame sizes unknown;
        // 48 kHz, 2 channels, 16 bits; no sample count, no MD5.
        let mut b = vec![0x80, 0, 0, 34, 0x12, 0, 0x12, 0, 0, 0, 0, 0, 0, 0];
        b.extend_from_slice(&[0x0b, 0xb8, 0x02, 0xf0]);
        b.resize(38, 0);
        b
    };
    let flac_caps = format!(
        "audio/x-flac, rate=48000, channels=2, streamheader=(buffer)< 664c6143, {} >",
        streaminfo_block
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let mut seed = 7u32;
    let mut noise = |len: usize| -> Vec<u8> {
        (0..len)
            .map(|_| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                (seed >> 16) as u8
            })
            .collect()
    };
    /// Buffer `i` of a case from `i` and some noise.
    type MakeBuffer = Box<dyn Fn(usize, Vec<u8>) -> Vec<u8>>;
    let cases: Vec<(&str, MakeBuffer)> = vec![
        ("audio/x-ac3, framed=true", Box::new(|_, n| n)),
        // Truncated syncframes: the sync word, a header cut short.
        (
            "audio/x-ac3, framed=true",
            Box::new(|i, _| [0x0b, 0x77, 0, 0, 0x14][..i % 5 + 1].to_vec()),
        ),
        ("audio/x-eac3, framed=true", Box::new(|_, n| n)),
        ("audio/mpeg, mpegversion=1, layer=3", Box::new(|_, n| n)),
        (
            "audio/mpeg, mpegversion=1, layer=3",
            Box::new(|i, _| [0xff, 0xfb, 0x90][..i % 3 + 1].to_vec()),
        ),
        (&flac_caps, Box::new(|_, n| n)),
    ];
    for (caps, make) in cases {
        let (mut h, bus, _l) = harness_on_silent_server(caps);
        let mut last = Ok(gst::FlowSuccess::Ok);
        let mut pushed = 0;
        for i in 0..40 {
            let mut data = make(i, noise(1 + i * 13));
            // Keep the garbage clear of the sync words it is not meant to have.
            if data.first() == Some(&0xff) && !caps.contains("mpeg") {
                data[0] = 0;
            }
            last = h.push(buffer(data, i as u64 * 32, false));
            pushed += 1;
            if last.is_err() {
                break;
            }
        }
        assert_eq!(last, Err(gst::FlowError::Error), "{caps}");
        assert!(
            pushed <= 26,
            "{caps}: {pushed} bad buffers before the error"
        );
        let (text, debug) = bus_error(&bus);
        assert!(text.contains("consecutive invalid"), "{caps}: {text}");
        let all = format!("{text} {debug}").to_lowercase();
        assert!(!all.contains("panic"), "{caps}: {all}");
    }
}

/// nginx-rtmp (which knows no Enhanced RTMP) relays and records the audio codecs as they come:
/// each H.264 + audio combination published by the element to nginx (`record all`) is in the
/// recording byte-identical with its PTS, and decodes cleanly.
#[test]
fn audio_combinations_recorded_by_nginx_rtmp_byte_identical() {
    let Some(ff) = ffmpeg9() else { return };
    let Some(nginx) = common::NginxRtmp::start_default() else {
        return;
    };
    for c in AUDIO_COMBOS {
        let Some(mkv) = combo_mkv(c) else { return };
        let label = format!("nginx-rtmp {}", c.name());
        let src = Source::new(&ff, &label, &mkv, &["video_0", "audio_0"]);
        publish_mkv(&mkv, &nginx.url("live", c.name()));
        let rec = nginx
            .wait_recording(c.name(), PUBLISH_TIMEOUT)
            .expect("nginx wrote the recording");
        let got = framemd5_of_file(&ff, &rec, &[]);
        assert_all_streams_identical(&label, &src.file, &src.ref_pts(), &got);
        let errs = decode_errors(&ff, &rec);
        assert!(errs.is_empty(), "{label}: decode errors: {errs:?}");
    }
}

/// Audio-only streams on the `sink` pad: the audio of each combination, alone, arrives at
/// FFmpeg 9 byte-identical with its PTS and decodes cleanly.
#[test]
fn audio_only_on_the_sink_pad_byte_identical_to_ffmpeg9() {
    let Some(ff) = ffmpeg9() else { return };
    for c in AUDIO_COMBOS {
        let Some(mkv) = combo_mkv(c) else { return };
        let label = format!("audio-only {}", c.name());
        let expected = framemd5_of_file(&ff, &mkv, &["-vn"]);
        let demuxed = demux(&mkv, &["audio_0"]);
        assert_eq!(expected.streams.len(), 1, "{label}");
        assert_element_accepts("sink", &demuxed[0].caps);
        let dir = TempDir::new(c.name());
        let Some(mut srv) = Ff9Listen::start(dir.path(), Outputs::BOTH) else {
            return;
        };
        run_to_eos(
            &format!(
                "filesrc location={} ! matroskademux name=d d.audio_0 ! queue ! \
                 rtmpclientsink sync=false location={}",
                mkv.display(),
                srv.url()
            ),
            PUBLISH_TIMEOUT,
        );
        srv.finish(SERVER_EXIT_TIMEOUT);
        check_received(&ff, &label, &expected, &[demuxed[0].pts_ms.clone()], &srv);
    }
}

/// The ExAudioTagHeader of an enhanced audio message: (packet type, FourCC, body).
fn ex_audio(m: &gstrtmpclient::rtmp::message::Message) -> Option<(u8, FourCc, &[u8])> {
    let p = &m.payload;
    (m.msg_type_id == gstrtmpclient::rtmp::message::msg_type::AUDIO
        && p.len() >= 5
        && p[0] >> 4 == 9)
        .then(|| (p[0] & 0x0f, [p[1], p[2], p[3], p[4]], &p[5..]))
}

/// A reconnect keeps the enhanced audio configuration: live H.264 + Opus to a scripted server
/// that closes the first connection after 30 video frames. Both connections start with the AVC
/// sequence header and the Opus sequence start (the same OpusHead) before any frame, the second
/// with a keyframe, and Opus frames follow on both.
#[test]
fn reconnect_resends_the_opus_sequence_start_before_any_frame() {
    use common::rtmp_servers::{MultiServer, Reply, video_frames};
    use gstrtmpclient::rtmp::message::msg_type;
    let _slot = common::util::shared();
    let server = MultiServer::start(Duration::from_secs(40), 2, |i| {
        let mut frames = 0;
        Box::new(move |peer, new| {
            peer.answer_publish_flow(new, &[]);
            if i == 0 {
                frames += video_frames(new).len();
                if frames >= 30 {
                    return Reply::Close;
                }
            }
            Reply::Continue
        })
    });
    run_to_eos(
        &format!(
            "videotestsrc is-live=true num-buffers=120 ! \
             video/x-raw,format=I420,width=160,height=120,framerate=30/1 ! \
             x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 ! h264parse ! \
             rtmpclientsink name=s reconnect-delay=200 location={} \
             audiotestsrc is-live=true num-buffers=200 samplesperbuffer=960 ! \
             audio/x-raw,rate=48000,channels=2 ! audioconvert ! opusenc ! s.audio",
            server.url("live", "key")
        ),
        PUBLISH_TIMEOUT,
    );
    let peers = server.join();
    assert_eq!(peers.len(), 2, "a second connection");
    let mut heads = Vec::new();
    for (n, peer) in peers.iter().enumerate() {
        let av: Vec<_> = peer
            .received
            .iter()
            .filter(|m| matches!(m.msg_type_id, msg_type::VIDEO | msg_type::AUDIO))
            .collect();
        // Configuration first: the AVC sequence header and the Opus sequence start, in some
        // order, then frames.
        assert!(av.len() > 2, "connection {n}: {} media messages", av.len());
        let avc = av[..2]
            .iter()
            .any(|m| m.msg_type_id == msg_type::VIDEO && m.payload[..2] == [0x17, 0]);
        let head = av[..2]
            .iter()
            .find_map(|m| ex_audio(m).filter(|(t, f, _)| *t == 0 && *f == OPUS))
            .map(|(_, _, body)| body.to_vec());
        assert!(avc, "connection {n}: no AVC sequence header first");
        let head = head.unwrap_or_else(|| panic!("connection {n}: no Opus sequence start first"));
        assert!(head.starts_with(b"OpusHead"), "connection {n}: {head:02x?}");
        heads.push(head);
        if n == 1 {
            assert_eq!(
                av[2].payload[..2],
                [0x17, 1],
                "second connection: keyframe first"
            );
        }
        let opus_frames = av
            .iter()
            .filter(|m| ex_audio(m).is_some_and(|(t, f, _)| t == 1 && f == OPUS))
            .count();
        assert!(
            opus_frames > 10,
            "connection {n}: {opus_frames} Opus frames"
        );
    }
    assert_eq!(heads[0], heads[1], "the same OpusHead on both connections");
}

/// `filter_units=remove_types=2` removes exactly one thing from each temporal unit of these
/// files: the 2-byte temporal delimiter OBU (`0x12 0x00`) GStreamer's AV1 Matroska keeps at its
/// start. So the filtered packets are the element's expected output.
#[test]
fn av1_reference_filter_removes_exactly_the_temporal_delimiters() {
    let Some(ff) = ffmpeg9() else { return };
    let Some(mkv) = combo_mkv(Combo::Av1Aac) else {
        return;
    };
    let tus = &demux(&mkv, &["video_0"])[0].buffers;
    let filtered = framemd5_of_file(&ff, &mkv, &AV1_REMOVE_TD);
    let packets = filtered.stream_packets(filtered.stream("av1", None).index);
    assert_eq!(packets.len(), tus.len());
    for (i, (tu, p)) in tus.iter().zip(&packets).enumerate() {
        // OBU header: type 2 (temporal delimiter), has_size_field; size 0.
        assert_eq!(
            tu[..2],
            [0x12, 0x00],
            "TU {i} starts with a temporal delimiter"
        );
        assert!(
            p.size == tu.len() - 2 && p.md5 == md5_hex(&tu[2..]),
            "TU {i}: the filter did more than drop the temporal delimiter"
        );
    }
}

/// Once the publish ended: FFmpeg 9 received `frames` HEVC packets of `size`, and its
/// recording decodes cleanly.
fn assert_hevc_arrives(ff: &Path, srv: &mut Ff9Listen, size: (u32, u32), frames: usize) {
    srv.finish(SERVER_EXIT_TIMEOUT);
    let got = srv.framemd5();
    let v = got.stream("hevc", Some(size)).index;
    assert_eq!(got.stream_packets(v).len(), frames, "HEVC packets received");
    let errs = decode_errors(ff, srv.flv_path());
    assert!(errs.is_empty(), "decode errors: {errs:?}");
}

/// Live `byte-stream` HEVC from x265enc (in-band VPS/SPS/PPS, Annex B) plus live AAC: every
/// frame arrives and decodes.
#[test]
fn live_x265_byte_stream_every_frame_arrives_and_decodes() {
    let Some(ff) = ffmpeg9() else { return };
    if !require_elements(&["x265enc", "avenc_aac"]) {
        return;
    }
    const FRAMES: usize = 60;
    let caps = gst::Caps::builder("video/x-h265")
        .field("stream-format", "byte-stream")
        .field("alignment", "au")
        .build();
    assert_element_accepts("sink", &caps);
    let dir = TempDir::new("live-x265");
    let Some(mut srv) = Ff9Listen::start(dir.path(), Outputs::BOTH) else {
        return;
    };
    run_to_eos(
        &format!(
            "videotestsrc is-live=true num-buffers={FRAMES} ! \
             video/x-raw,format=I420,width=320,height=240,framerate=30/1 ! \
             x265enc speed-preset=ultrafast key-int-max=30 option-string=\"bframes=2:scenecut=0\" ! \
             video/x-h265,stream-format=byte-stream,alignment=au ! \
             rtmpclientsink name=s location={} \
             audiotestsrc is-live=true num-buffers=94 samplesperbuffer=1024 ! \
             audio/x-raw,rate=48000,channels=2 ! audioconvert ! avenc_aac ! s.audio",
            srv.url()
        ),
        PUBLISH_TIMEOUT,
    );
    assert_hevc_arrives(&ff, &mut srv, (320, 240), FRAMES);
    let decoded = decoded_frames(&ff, srv.flv_path());
    let dv = decoded
        .streams
        .iter()
        .find(|s| s.media_type == "video")
        .unwrap();
    assert_eq!(
        decoded.stream_packets(dv.index).len(),
        FRAMES,
        "decoded video frames"
    );
    // The configuration was built from the in-band parameter sets: an hvcC sequence start.
    let starts = sequence_starts(srv.flv_path());
    assert!(
        starts
            .iter()
            .any(|s| s.fourcc == HVC1 && s.data.first() == Some(&1)),
        "no hvcC sequence start"
    );
}

/// HDR caps (PQ colorimetry, mastering display, content light level) on HEVC byte-stream: the
/// element sends a `colorInfo` Metadata packet before the first frame, and FFmpeg 9 takes its
/// values (it writes them back into its recording from what it parsed).
#[test]
fn hdr_caps_become_color_info_that_ffmpeg9_reads() {
    use gstrtmpclient::codec::flv::{self, VideoPacketType, VideoTagBody};
    use gstrtmpclient::rtmp::amf0::{self, Amf0Value};
    let Some(ff) = ffmpeg9() else { return };
    if !require_elements(&["x265enc", "capssetter"]) {
        return;
    }
    const FRAMES: usize = 30;
    let dir = TempDir::new("hdr-x265");
    let Some(mut srv) = Ff9Listen::start(dir.path(), Outputs::BOTH) else {
        return;
    };
    // BT.2020 primaries as 0.00002 units (R 0.708/0.292, G 0.170/0.797, B 0.131/0.046, D65),
    // 1000 cd/m² peak and 0.005 cd/m² black in 0.0001 units.
    let mdi = "35400:14600:8500:39850:6550:2300:15635:16450:10000000:50";
    run_to_eos(
        &format!(
            "videotestsrc num-buffers={FRAMES} ! \
             video/x-raw,format=I420,width=160,height=96,framerate=30/1 ! \
             x265enc speed-preset=ultrafast key-int-max=30 ! \
             video/x-h265,stream-format=byte-stream,alignment=au ! \
             capssetter caps=\"video/x-h265,colorimetry=(string)bt2100-pq,\
             mastering-display-info=(string){mdi},content-light-level=(string)1000:400\" ! \
             rtmpclientsink sync=false location={}",
            srv.url()
        ),
        PUBLISH_TIMEOUT,
    );
    assert_hevc_arrives(&ff, &mut srv, (160, 96), FRAMES);
    let file = common::read_flv(srv.flv_path()).unwrap();
    let mut color_info = None;
    let mut frames_before = 0;
    for t in file.tags.iter().filter(|t| t.is_video()) {
        let Ok(tag) = flv::parse_video(&t.data) else {
            continue;
        };
        let VideoTagBody::Enhanced(x) = tag.body else {
            continue;
        };
        match x.packet_type {
            VideoPacketType::Metadata if color_info.is_none() => {
                let values = amf0::decode_all(x.tracks[0].data).unwrap();
                color_info = Some(values);
            }
            VideoPacketType::CodedFrames | VideoPacketType::CodedFramesX
                if color_info.is_none() =>
            {
                frames_before += 1
            }
            _ => {}
        }
    }
    let values = color_info.expect("a colorInfo Metadata packet in the recording");
    assert_eq!(frames_before, 0, "colorInfo comes before the frames");
    assert_eq!(values[0].as_str(), Some("colorInfo"));
    let n = |o: &Amf0Value, k: &str| {
        o.get(k)
            .and_then(Amf0Value::as_f64)
            .unwrap_or_else(|| panic!("{k} in {o:?}"))
    };
    let info = &values[1];
    let cc = info.get("colorConfig").expect("colorConfig");
    assert_eq!(n(cc, "transferCharacteristics"), 16.0, "PQ");
    assert_eq!(n(cc, "colorPrimaries"), 9.0, "BT.2020");
    assert_eq!(n(cc, "matrixCoefficients"), 9.0, "BT.2020 NCL");
    let cll = info.get("hdrCll").expect("hdrCll");
    assert_eq!((n(cll, "maxCLL"), n(cll, "maxFall")), (1000.0, 400.0));
    let md = info.get("hdrMdcv").expect("hdrMdcv");
    assert!((n(md, "redX") - 0.708).abs() < 1e-3, "{md:?}");
    assert!((n(md, "whitePointY") - 0.329).abs() < 1e-3, "{md:?}");
    assert!((n(md, "maxLuminance") - 1000.0).abs() < 1e-6, "{md:?}");
    assert!((n(md, "minLuminance") - 0.005).abs() < 1e-6, "{md:?}");
}
