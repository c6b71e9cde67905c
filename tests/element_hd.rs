#![cfg(feature = "gst")]
//! `rtmpclientsink` fed what users feed it: GStreamer's own encoders at their defaults
//! (x264enc with an access-unit delimiter in every frame and B-frames, voaacenc) at HD bitrates,
//! over rtmp and rtmps, into nginx-rtmp and `ffmpeg -listen 1`.
//!
//! * A 720p 20 Mbit/s Matroska file arrives byte-identical, frame by frame, with exact PTS.
//! * A live 720p x264enc byte-stream and voaacenc ADTS arrive frame for frame, decode, and equal
//!   what the independent parsers make of the same streams (`h264parse` to `avc`, NAL unit by
//!   NAL unit; `aacparse` to `raw`, frame by frame).
//! * A live 20 Mbit/s stream through a 10 s stall keeps memory far below what an unbounded queue
//!   would hold, and resumes.
//!
//! `[hd] ...` lines report the figures (visible without `--nocapture`).

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::flv::{FlvFile, parse_avc_config, split_nalus};
use common::gstmedia::{self, Window, nal_types};
use common::gstrun::{pipeline, play_to_eos, require_elements};
use common::gstsrc::{SrcFrame, demux};
use common::media::FPS;
use common::tls::tls_server;
use common::util::{exclusive, loud, shared, vm_rss_kb, wait_file_stable};
use common::{FaultProxy, FfmpegListen, NginxRtmp, TempDir, ffprobe, read_flv};
use gst::prelude::*;

/// The HD file: long enough for several 2 s GOPs, short enough to make and compare quickly.
const FILE_SECONDS: u32 = 6;
const FILE_KBPS: u32 = 20_000;
/// The live HD stream: x264enc's `bitrate` (the picture gives ~7 Mbit/s; asserted >= 6).
const LIVE_KBPS: u32 = 10_000;
const LIVE_SECONDS: u32 = 6;
const MIN_LIVE_KBPS: u64 = 6_000;
const EOS_TIMEOUT: Duration = Duration::from_secs(120);
const RECORD_TIMEOUT: Duration = Duration::from_secs(20);

fn report(line: &str) {
    loud(&format!("[hd] {line}\n"));
}

/// A pipeline that was run to EOS, and what its sink's pads got.
struct Ran {
    /// Buffers (count, bytes) that reached the element's `sink` and `audio` pads.
    input: [(u64, u64); 2],
    /// When the first buffer reached each pad, after PLAYING.
    first: [Option<Duration>; 2],
    /// The pipeline's latency (live pipelines).
    latency: Option<gst::ClockTime>,
    /// The sink's element messages.
    structs: Vec<gst::Structure>,
}

/// What a pad of the element got: (buffers, bytes) and when the first came.
#[derive(Default)]
struct PadIn {
    buffers: u64,
    bytes: u64,
    first: Option<Instant>,
}

/// Counts what reaches the pad `name` of `el`.
fn count_pad(el: &gst::Element, name: &str) -> Arc<Mutex<PadIn>> {
    let c: Arc<Mutex<PadIn>> = Default::default();
    let c2 = c.clone();
    let pad = el
        .static_pad(name)
        .unwrap_or_else(|| panic!("no pad {name}"));
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(b) = info.buffer() {
            let mut g = c2.lock().unwrap();
            g.buffers += 1;
            g.bytes += b.size() as u64;
            g.first.get_or_insert_with(Instant::now);
        }
        gst::PadProbeReturn::Ok
    });
    c
}

/// Keeps a copy of every buffer reaching `fakesink name=NAME` (the reference parsers' output).
fn capture(p: &gst::Pipeline, name: &str) -> Arc<Mutex<Vec<Vec<u8>>>> {
    let out: Arc<Mutex<Vec<Vec<u8>>>> = Default::default();
    let o2 = out.clone();
    let pad = p.by_name(name).unwrap().static_pad("sink").unwrap();
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(m) = info.buffer().and_then(|b| b.map_readable().ok()) {
            o2.lock().unwrap().push(m.to_vec());
        }
        gst::PadProbeReturn::Ok
    });
    out
}

/// Runs `launch` (with `rtmpclientsink name=s`) to EOS; panics on an error. `tweak` runs before
/// PLAYING (to add probes).
fn run(launch: &str, tweak: impl FnOnce(&gst::Pipeline)) -> Ran {
    let p = pipeline(launch);
    let s = p.by_name("s").expect("rtmpclientsink name=s");
    let v = count_pad(&s, "sink");
    // The audio request pad exists once the description linked it.
    let a = s.static_pad("audio").map(|_| count_pad(&s, "audio"));
    tweak(&p);
    let t0 = Instant::now();
    let mut latency = None;
    let structs = play_to_eos(&p, launch, EOS_TIMEOUT, |msg| {
        if let gst::MessageView::Latency(_) = msg.view() {
            let mut q = gst::query::Latency::new();
            if p.query(&mut q) {
                latency = Some(q.result().1);
            }
        }
    });
    let got = |c: &Arc<Mutex<PadIn>>| {
        let g = c.lock().unwrap();
        ((g.buffers, g.bytes), g.first.map(|f| f - t0))
    };
    let (vin, vfirst) = got(&v);
    let (ain, afirst) = a.as_ref().map_or(((0, 0), None), got);
    Ran {
        input: [vin, ain],
        first: [vfirst, afirst],
        latency,
        structs,
    }
}

fn assert_decodes(path: &Path) {
    let errs = ffprobe::decode_errors(path);
    // matroskademux hands the first frames of the file over 23 ms apart from the rest in running
    // time (audio starts earlier than video), which the null muxer's 1/fps rounding reports as
    // equal timestamps; that is not a decode error.
    let errs: Vec<&str> = errs
        .lines()
        .filter(|l| !l.contains("non monotonically increasing dts to muxer"))
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert!(
        errs.is_empty(),
        "decode errors in {}: {errs:?}",
        path.display()
    );
}

/// Every video and audio frame of `rec` equals the demuxer's output byte for byte, in order,
/// with the source PTS after one constant offset (video exact, audio within 1 ms of the video
/// base: the element rounds each AAC frame's own time).
fn assert_identical(rec: &FlvFile, src_v: &[SrcFrame], src_a: &[SrcFrame], what: &str) {
    let v = rec.video_frames();
    let a = rec.audio_frames();
    assert_eq!(v.len(), src_v.len(), "{what}: video frames");
    assert_eq!(a.len(), src_a.len(), "{what}: audio frames");
    let differ: Vec<usize> = v
        .iter()
        .zip(src_v)
        .enumerate()
        .filter(|(_, (t, s))| t.data[5..] != s.data[..])
        .map(|(i, _)| i)
        .collect();
    if let Some(&i) = differ.first() {
        panic!(
            "{what}: {} of {} video frames differ from the demuxer's; frame {i}: NAL types {:?} \
             sent as {:?}, {} bytes as {}",
            differ.len(),
            v.len(),
            nal_types(&src_v[i].data),
            nal_types(&v[i].data[5..]),
            src_v[i].data.len(),
            v[i].data.len() - 5
        );
    }
    let offset = v[0].pts() - src_v[0].pts_ms;
    for (i, (t, s)) in v.iter().zip(src_v).enumerate() {
        assert_eq!(t.is_keyframe(), s.key, "{what}: keyframe flag of frame {i}");
        assert_eq!(t.pts() - offset, s.pts_ms, "{what}: PTS of video frame {i}");
    }
    for (i, (t, s)) in a.iter().zip(src_a).enumerate() {
        assert!(t.data[2..] == s.data[..], "{what}: audio frame {i} differs");
        let d = t.timestamp as i64 - offset - s.pts_ms;
        assert!(d.abs() <= 1, "{what}: audio frame {i} off by {d} ms");
    }
}

/// The HD file and its demuxed video and audio frames.
type HdFile = (PathBuf, Vec<SrcFrame>, Vec<SrcFrame>);

/// The HD file and its demuxed frames (None = skip).
fn hd_file() -> Option<HdFile> {
    let mkv = gstmedia::x264enc_hd_mkv(FILE_SECONDS, FILE_KBPS)?;
    let (v, a) = demux(&mkv);
    Some((mkv, v, a))
}

/// `filesrc ! matroskademux ! rtmpclientsink` of the HD file to `location` (extra properties
/// `props`), as fast as the server takes it.
fn publish_file(mkv: &Path, location: &str, props: &str) -> Ran {
    let ran = run(
        &format!(
            "filesrc location={} ! matroskademux name=d \
             d.video_0 ! queue ! rtmpclientsink name=s sync=false location={location} {props} \
             d.audio_0 ! queue ! s.audio",
            mkv.display()
        ),
        |_| {},
    );
    assert!(
        ran.structs.iter().any(|s| s.name() == "rtmp-publishing"),
        "no rtmp-publishing message"
    );
    ran
}

fn nginx_recording(srv: &NginxRtmp, stream: &str) -> (FlvFile, PathBuf) {
    let path = srv
        .wait_recording(stream, RECORD_TIMEOUT)
        .unwrap_or_else(|| panic!("no finished recording of {stream}"));
    let flv = read_flv(&path).expect("recording parses");
    assert!(!flv.truncated, "recording truncated");
    (flv, path)
}

fn check_file_publish(rec: &FlvFile, path: &Path, src: &HdFile, what: &str) {
    let (_, src_v, src_a) = src;
    assert_decodes(path);
    assert_identical(rec, src_v, src_a, what);
    report(&format!(
        "{what}: all {} video and {} audio frames byte-identical to matroskademux's, PTS exact \
         (source: {})",
        src_v.len(),
        src_a.len(),
        gstmedia::check_hd(src_v, FILE_SECONDS, FILE_KBPS)
    ));
}

#[test]
fn hd_file_over_rtmp_into_nginx_is_byte_identical_with_exact_pts() {
    let _slot = shared();
    let Some(src) = hd_file() else {
        return;
    };
    let mkv = &src.0;
    let Some(srv) = NginxRtmp::start_default() else {
        return;
    };
    publish_file(mkv, &srv.url("live", "hd"), "");
    let (rec, path) = nginx_recording(&srv, "hd");
    rec.assert_timeline();
    check_file_publish(&rec, &path, &src, "rtmp -> nginx-rtmp");
}

#[test]
fn hd_file_over_rtmps_with_a_private_ca_is_byte_identical_with_exact_pts() {
    let _slot = shared();
    let Some(src) = hd_file() else {
        return;
    };
    let mkv = &src.0;
    let dir = TempDir::new("hd-tls");
    let Some((srv, ca)) = tls_server(&dir, &["localhost"], false) else {
        return;
    };
    publish_file(
        mkv,
        &srv.tls_url("localhost", "live", "hdtls"),
        &format!("tls-ca-file={}", ca.display()),
    );
    let (rec, path) = nginx_recording(&srv, "hdtls");
    rec.assert_timeline();
    check_file_publish(
        &rec,
        &path,
        &src,
        "rtmps (private CA) -> nginx stream TLS -> nginx-rtmp",
    );
}

#[test]
fn hd_file_into_ffmpeg_listen_is_byte_identical_with_exact_pts() {
    let _slot = shared();
    let Some(src) = hd_file() else {
        return;
    };
    let mkv = &src.0;
    let dir = TempDir::new("hd-ffmpeg");
    let Some(mut server) =
        FfmpegListen::start_with(dir.path(), "ffmpeg", &["-c", "copy", "-copyinkf"])
    else {
        return;
    };
    publish_file(mkv, &server.url(), "");
    let path = server
        .wait_output(RECORD_TIMEOUT)
        .unwrap_or_else(|| panic!("ffmpeg wrote nothing: {}", server.log()));
    let rec = read_flv(&path).expect("ffmpeg's FLV parses");
    // ffmpeg writes the file with its own interleaving: no timeline check of the element here.
    check_file_publish(&rec, &path, &src, "rtmp -> ffmpeg -listen 1 -c copy");
}

// ---------------------------------------------------------------------------------------------
// Live HD: x264enc byte-stream and voaacenc ADTS, against h264parse and aacparse
// ---------------------------------------------------------------------------------------------

/// Publishes the live HD stream to `location`; returns the input counts and what h264parse
/// (to `avc`) and aacparse (to `raw`) made of the same encoder output.
fn live_hd(location: &str, props: &str) -> (Ran, Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let launch = format!(
        "{} ! {} ! video/x-h264,stream-format=byte-stream,alignment=au ! tee name=vt \
         vt. ! queue ! rtmpclientsink name=s location={location} {props} \
         vt. ! queue ! h264parse ! video/x-h264,stream-format=avc,alignment=au ! \
         fakesink name=vref sync=false \
         {} ! audio/mpeg,stream-format=adts ! tee name=at \
         at. ! queue ! s.audio \
         at. ! queue ! aacparse ! audio/mpeg,stream-format=raw ! fakesink name=aref sync=false",
        gstmedia::hd_picture(true, LIVE_SECONDS * FPS, Window::Bars),
        gstmedia::x264enc(LIVE_KBPS),
        gstmedia::aac(true, Some(gstmedia::audio_buffers(LIVE_SECONDS))),
    );
    let mut refs = None;
    let ran = run(&launch, |p| {
        refs = Some((capture(p, "vref"), capture(p, "aref")));
    });
    let (v, a) = refs.unwrap();
    let v = std::mem::take(&mut *v.lock().unwrap());
    let a = std::mem::take(&mut *a.lock().unwrap());
    (ran, v, a)
}

/// Every frame that entered the element was recorded, decodes, and equals the reference
/// parsers' output: video NAL unit by NAL unit, audio frame by frame.
fn check_live(
    rec: &FlvFile,
    path: &Path,
    ran: &Ran,
    ref_v: &[Vec<u8>],
    ref_a: &[Vec<u8>],
    what: &str,
) {
    let v = rec.video_frames();
    let a = rec.audio_frames();
    let [(vin, vbytes), (ain, _)] = ran.input;
    assert_eq!(v.len() as u64, vin, "{what}: video frames in vs recorded");
    assert_eq!(a.len() as u64, ain, "{what}: audio frames in vs recorded");
    assert_eq!(
        ref_v.len(),
        v.len(),
        "{what}: h264parse's frames vs recorded"
    );
    assert_eq!(
        ref_a.len(),
        a.len(),
        "{what}: aacparse's frames vs recorded"
    );
    let header = rec
        .video_tags()
        .into_iter()
        .find(|t| t.is_avc_sequence_header())
        .expect("an AVC sequence header");
    let cfg = parse_avc_config(&header.data[5..]).expect("AVCDecoderConfigurationRecord");
    let mut nals = 0;
    for (i, (t, r)) in v.iter().zip(ref_v).enumerate() {
        let got = split_nalus(&t.data[5..], cfg.length_size).expect("recorded NAL units");
        let want = split_nalus(r, 4).expect("h264parse's NAL units");
        let types = |n: &[&[u8]]| n.iter().map(|x| x[0] & 0x1f).collect::<Vec<_>>();
        assert_eq!(
            types(&got),
            types(&want),
            "{what}: NAL unit types of frame {i} (recorded vs h264parse)"
        );
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                g == w,
                "{what}: frame {i} NAL unit {k} differs from h264parse's"
            );
        }
        nals += got.len();
    }
    for (i, (t, r)) in a.iter().zip(ref_a).enumerate() {
        assert!(
            t.data[2..] == r[..],
            "{what}: audio frame {i} differs from aacparse's"
        );
    }
    assert_decodes(path);

    // HD: the bitrate of what was sent, and keyframes far above rustls' 64 KiB of pending output.
    let span_ms = v.last().unwrap().timestamp - v[0].timestamp + 1000 / 30;
    let kbps = vbytes * 8 / u64::from(span_ms);
    assert!(kbps >= MIN_LIVE_KBPS, "{what}: only {kbps} kbit/s of video");
    let keys: Vec<usize> = v
        .iter()
        .filter(|t| t.is_keyframe())
        .map(|t| t.data.len() - 5)
        .collect();
    // x264's rate control starts cautiously: the first keyframe may be smaller.
    assert!(
        keys.len() >= 2 && keys[1..].iter().all(|&k| k > 256 * 1024),
        "{what}: keyframes of {keys:?} bytes"
    );
    let b = v
        .iter()
        .filter(|t| t.pts() > i64::from(t.timestamp))
        .count();
    assert!(
        b > v.len() / 10,
        "{what}: only {b} frames with a composition offset"
    );
    let auds = v
        .iter()
        .filter(|t| nal_types(&t.data[5..]).first() == Some(&9))
        .count();
    report(&format!(
        "{what}: {} video ({kbps} kbit/s, keyframes {keys:?} bytes, {auds} start with an AUD, {nals} \
         NAL units) and {} audio frames in = recorded = h264parse/aacparse's, decode clean",
        v.len(),
        a.len()
    ));
    // Last, so that a timeline fault does not hide the results above.
    report(&format!(
        "{what}: first video at the element {:?}, first audio {:?} after PLAYING, pipeline \
         latency {}",
        ran.first[0],
        ran.first[1],
        ran.latency.display()
    ));
    rec.assert_timeline();
}

#[test]
fn live_hd_x264enc_over_rtmp_arrives_whole_and_matches_h264parse_and_aacparse() {
    let _slot = shared();
    if !require_elements(&["x264enc", "voaacenc", "h264parse", "aacparse", "compositor"]) {
        return;
    }
    let Some(srv) = NginxRtmp::start_default() else {
        return;
    };
    let (ran, ref_v, ref_a) = live_hd(&srv.url("live", "livehd"), "");
    let (rec, path) = nginx_recording(&srv, "livehd");
    check_live(&rec, &path, &ran, &ref_v, &ref_a, "live rtmp");
}

#[test]
fn live_hd_x264enc_over_rtmps_arrives_whole_and_matches_h264parse_and_aacparse() {
    let _slot = shared();
    if !require_elements(&["x264enc", "voaacenc", "h264parse", "aacparse", "compositor"]) {
        return;
    }
    let dir = TempDir::new("hd-live-tls");
    let Some((srv, ca)) = tls_server(&dir, &["localhost"], false) else {
        return;
    };
    let (ran, ref_v, ref_a) = live_hd(
        &srv.tls_url("localhost", "live", "livehdtls"),
        &format!("tls-ca-file={}", ca.display()),
    );
    let (rec, path) = nginx_recording(&srv, "livehdtls");
    check_live(&rec, &path, &ran, &ref_v, &ref_a, "live rtmps");
}

// ---------------------------------------------------------------------------------------------
// Memory through a stall
// ---------------------------------------------------------------------------------------------

/// Stream rate of the stall test (x264enc `bitrate`; fresh noise reaches it).
const STALL_KBPS: u32 = 20_000;
const STALL: Duration = Duration::from_secs(10);
/// Resident memory growth allowed during the stall. The drop policy keeps at most twice
/// `max-queue-time` (default 3 s) queued, and above `max-queue-time` only keyframes and audio:
/// under 8 MB at 20 Mbit/s (~6 MB measured). An unbounded queue holds the whole stall: 25 MB,
/// less what the kernel's socket buffers took (measured, and asserted to leave more than this
/// bound).
const STALL_RSS_BOUND_KB: u64 = 12 * 1024;

/// Bytes the kernel holds in the send and receive queues of the loopback TCP connections to or
/// from `port` (from /proc/net/tcp): what a stalled reader leaves in socket buffers.
fn kernel_queued(port: u16) -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/net/tcp") else {
        return 0;
    };
    let port_hex = format!(":{port:04X}");
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (local, remote, queues) = (f.get(1)?, f.get(2)?, f.get(4)?);
            if !(local.ends_with(&port_hex) || remote.ends_with(&port_hex)) {
                return None;
            }
            let (tx, rx) = queues.split_once(':')?;
            Some(u64::from_str_radix(tx, 16).ok()? + u64::from_str_radix(rx, 16).ok()?)
        })
        .sum()
}

#[test]
fn live_20_mbit_through_a_10_s_stall_keeps_memory_bounded_and_resumes() {
    let _slot = exclusive();
    if !require_elements(&["x264enc", "voaacenc"]) {
        return;
    }
    let Some(srv) = NginxRtmp::start_default() else {
        return;
    };
    let proxy = FaultProxy::start(std::net::SocketAddr::from(([127, 0, 0, 1], srv.port())));
    // ultrafast: 20 Mbit/s of 720p noise must be encoded live on a shared 2-core machine. The
    // stall is about memory: `timeout` is raised so that the silent server is not given up on
    // (dead-peer detection has its own tests).
    let launch = format!(
        "videotestsrc is-live=true pattern=snow ! \
         video/x-raw,format=I420,width=1280,height=720,framerate=30/1 ! \
         x264enc bitrate={STALL_KBPS} speed-preset=ultrafast bframes=2 key-int-max=60 ! \
         video/x-h264,stream-format=byte-stream ! \
         rtmpclientsink name=s location={} congestion-policy=drop timeout=30 \
         {} ! s.audio",
        proxy.url("live", "stall"),
        gstmedia::aac(true, None),
    );
    let p = pipeline(&launch);
    let s = p.by_name("s").unwrap();
    let vin = count_pad(&s, "sink");
    let ain = count_pad(&s, "audio");
    let bus = p.bus().unwrap();
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let pump = |d: Duration| {
        let end = Instant::now() + d;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            if let Some(m) = bus.timed_pop(gst::ClockTime::from_nseconds(
                left.min(Duration::from_millis(50)).as_nanos() as u64,
            )) && let gst::MessageView::Error(e) = m.view()
            {
                errors
                    .lock()
                    .unwrap()
                    .push(format!("{} ({:?})", e.error(), e.debug()));
            }
        }
    };
    p.set_state(gst::State::Playing).unwrap();
    assert!(
        common::wait_for(Duration::from_secs(15), || srv.is_publishing("stall")),
        "not publishing"
    );
    pump(Duration::from_secs(4));
    let stats = || s.property::<gst::Structure>("stats");
    let bitrate = stats().get::<u64>("bitrate").unwrap_or(0);

    let input_at = |c: &Arc<Mutex<PadIn>>| c.lock().unwrap().bytes;
    let in_before = input_at(&vin) + input_at(&ain);
    let rss_before = vm_rss_kb();
    let mut rss_peak = rss_before;
    let (mut qt_peak, mut qbytes_peak) = (0u64, 0u64);
    proxy.blackhole();
    let up_frozen = proxy.bytes_up();
    let t = Instant::now();
    while t.elapsed() < STALL {
        pump(Duration::from_millis(100));
        rss_peak = rss_peak.max(vm_rss_kb());
        let st = stats();
        qt_peak = qt_peak.max(st.get::<u64>("queue-time-ms").unwrap_or(0));
        qbytes_peak = qbytes_peak.max(st.get::<u64>("queue-bytes").unwrap_or(0));
    }
    let in_stall = input_at(&vin) + input_at(&ain) - in_before;
    let kernel = kernel_queued(proxy.port());
    let during = stats();
    assert_eq!(
        proxy.bytes_up(),
        up_frozen,
        "the proxy forwarded during the stall"
    );
    proxy.forward();
    let resumed_from = proxy.bytes_up();
    let resumed = {
        let deadline = Instant::now() + Duration::from_secs(8);
        loop {
            pump(Duration::from_millis(100));
            // Two seconds of the stream got through after the stall.
            if proxy.bytes_up() - resumed_from > u64::from(STALL_KBPS) * 1000 / 8 * 2 {
                break true;
            }
            if Instant::now() > deadline {
                break false;
            }
        }
    };
    pump(Duration::from_secs(2));
    let after = stats();
    p.send_event(gst::event::Eos::new());
    let eos = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(15),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    p.set_state(gst::State::Null).unwrap();
    let errors = errors.lock().unwrap().clone();
    assert!(errors.is_empty(), "{errors:?}");
    assert!(
        matches!(
            eos.as_ref().map(|m| m.view()),
            Some(gst::MessageView::Eos(_))
        ),
        "no EOS after the stall: {eos:?}"
    );

    let growth = rss_peak.saturating_sub(rss_before);
    let unbounded_kb = in_stall.saturating_sub(kernel) / 1024;
    let dropped_v = during.get::<u64>("dropped-video").unwrap_or(0);
    let dropped_a = during.get::<u64>("dropped-audio").unwrap_or(0);
    report(&format!(
        "{} s stall at {} kbit/s, drop policy, default max-queue-time: {} MB entered the element, \
         the kernel's socket buffers took {} MB, so an unbounded queue would hold {} MB; VmRSS \
         {rss_before} kB -> peak {rss_peak} kB (+{growth} kB, bound {STALL_RSS_BOUND_KB} kB); \
         queue peak {qt_peak} ms / {} KB; dropped video {dropped_v} audio {dropped_a}; resumed: \
         {resumed}",
        STALL.as_secs(),
        bitrate / 1000,
        in_stall / 1_000_000,
        kernel / 1_000_000,
        unbounded_kb / 1024,
        qbytes_peak / 1024
    ));
    // The premise: the stall carries more than the bound (else the bound proves nothing).
    assert!(
        unbounded_kb > STALL_RSS_BOUND_KB,
        "the stall left only {unbounded_kb} kB for a queue: not a test of the bound"
    );
    assert!(
        growth < STALL_RSS_BOUND_KB,
        "resident memory grew by {growth} kB during the stall"
    );
    assert!(dropped_v > 0, "nothing dropped: {during}");
    assert!(
        resumed,
        "the stream did not resume after the stall: {after}"
    );
    assert_eq!(after.get::<u64>("reconnects").unwrap_or(0), 0, "{after}");

    let path = srv.recording("stall");
    assert!(
        wait_file_stable(&path, RECORD_TIMEOUT, Duration::from_millis(300), || {
            srv.publishers_disconnected("stall")
        }),
        "no finished recording"
    );
    let rec = read_flv(&path).expect("recording parses");
    assert_decodes(&path);
    // The recording goes on after the stall: its last frame is past the stall's end.
    let v = rec.video_frames();
    let span = v.last().unwrap().timestamp - v[0].timestamp;
    assert!(
        u128::from(span) > (STALL + Duration::from_secs(4)).as_millis(),
        "the recording spans only {span} ms"
    );
}

/// The frame and PTS check above is one a real publisher passes: `ffmpeg -c copy -f flv` of the
/// same file (whose interleaving at the end of the file is its own: no timeline check).
#[test]
fn ffmpeg_c_copy_publish_of_the_hd_file_passes_the_same_check() {
    let _slot = shared();
    let Some(src) = hd_file() else {
        return;
    };
    let Some(srv) = NginxRtmp::start_default() else {
        return;
    };
    let (ok, err) = common::ffmpeg::publish_file(&src.0, &srv.url("live", "ref"), EOS_TIMEOUT);
    assert!(ok, "ffmpeg publish failed: {err}");
    let (rec, path) = nginx_recording(&srv, "ref");
    check_file_publish(&rec, &path, &src, "ffmpeg -c copy -f flv -> nginx-rtmp");
}
