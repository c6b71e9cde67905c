//! Enhanced RTMP test media made at test time with GStreamer's own encoders and matroskamux:
//! the 8 codec combinations of the media issue (HEVC with B-frames, AV1 and VP9, each with
//! AAC; H.264 with Opus, FLAC, AC-3, E-AC-3 or MP3) and the four-track file of the multitrack
//! issue (HEVC 640x360, H.264 320x180, AAC, Opus). Tiny but real: 2 s, 30 fps, a keyframe
//! every second, low bitrates. Each file is made once per test process, in the media cache
//! directory of `media.rs` (removed at exit unless `KEEP_TEST_FILES` is set).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use gst::prelude::*;

use super::gstrun::{pipeline, require_elements, run_to_eos};
use super::gstsrc::init;
use super::media::cache_dir;

/// Seconds of media in every file.
pub const SECONDS: u32 = 2;
/// Frame rate of every video track.
pub const FPS: u32 = 30;

/// One of the 8 per-codec publish cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Combo {
    HevcAac,
    Av1Aac,
    Vp9Aac,
    H264Opus,
    H264Flac,
    H264Ac3,
    H264Eac3,
    H264Mp3,
    /// The control case, which the element has always published: it shows the harness itself
    /// passes, so the other cases fail only for their codecs.
    H264Aac,
}

impl Combo {
    pub const ALL: [Combo; 8] = [
        Combo::HevcAac,
        Combo::Av1Aac,
        Combo::Vp9Aac,
        Combo::H264Opus,
        Combo::H264Flac,
        Combo::H264Ac3,
        Combo::H264Eac3,
        Combo::H264Mp3,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Combo::HevcAac => "hevc_aac",
            Combo::Av1Aac => "av1_aac",
            Combo::Vp9Aac => "vp9_aac",
            Combo::H264Opus => "h264_opus",
            Combo::H264Flac => "h264_flac",
            Combo::H264Ac3 => "h264_ac3",
            Combo::H264Eac3 => "h264_eac3",
            Combo::H264Mp3 => "h264_mp3",
            Combo::H264Aac => "h264_aac",
        }
    }

    /// FFmpeg's codec names (framemd5 `codec_id`) of the video and audio track.
    pub fn ffmpeg_codecs(self) -> (&'static str, &'static str) {
        match self {
            Combo::HevcAac => ("hevc", "aac"),
            Combo::Av1Aac => ("av1", "aac"),
            Combo::Vp9Aac => ("vp9", "aac"),
            Combo::H264Opus => ("h264", "opus"),
            Combo::H264Flac => ("h264", "flac"),
            Combo::H264Ac3 => ("h264", "ac3"),
            Combo::H264Eac3 => ("h264", "eac3"),
            Combo::H264Mp3 => ("h264", "mp3"),
            Combo::H264Aac => ("h264", "aac"),
        }
    }

    fn video(self) -> Video {
        match self {
            Combo::HevcAac => Video::Hevc,
            Combo::Av1Aac => Video::Av1,
            Combo::Vp9Aac => Video::Vp9,
            _ => Video::H264,
        }
    }

    fn audio(self) -> Audio {
        match self {
            Combo::HevcAac | Combo::Av1Aac | Combo::Vp9Aac | Combo::H264Aac => Audio::Aac,
            Combo::H264Opus => Audio::Opus,
            Combo::H264Flac => Audio::Flac,
            Combo::H264Ac3 => Audio::Ac3,
            Combo::H264Eac3 => Audio::Eac3,
            Combo::H264Mp3 => Audio::Mp3,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Video {
    Hevc,
    Av1,
    Vp9,
    H264,
}

#[derive(Debug, Clone, Copy)]
enum Audio {
    Aac,
    Opus,
    Flac,
    Ac3,
    Eac3,
    Mp3,
}

impl Video {
    fn elements(self) -> &'static [&'static str] {
        match self {
            Video::Hevc => &["x265enc", "h265parse"],
            Video::Av1 => &["av1enc", "av1parse"],
            Video::Vp9 => &["vp9enc"],
            Video::H264 => &["x264enc", "h264parse"],
        }
    }

    /// Encoder chain after raw video. `format=I420` comes first: otherwise the encoders pick
    /// 4:4:4 12-bit from videotestsrc. Keyframe every second, no scene-cut keyframes.
    fn encoder(self) -> String {
        match self {
            // x265's ultrafast preset keeps B-frames only if asked; the tests check the file
            // really has reordered PTS.
            Video::Hevc => format!(
                "x265enc speed-preset=ultrafast bitrate=300 key-int-max={FPS} \
                 option-string=\"bframes=2:scenecut=0\" ! h265parse"
            ),
            // cpu-used=8 + realtime: about 0.3 s for 2 s of 320x240 here.
            Video::Av1 => format!(
                "av1enc cpu-used=8 usage-profile=realtime min-quantizer=40 max-quantizer=60 \
                 keyframe-max-dist={FPS} ! av1parse"
            ),
            Video::Vp9 => format!(
                "vp9enc deadline=1 cpu-used=8 target-bitrate=300000 keyframe-max-dist={FPS}"
            ),
            Video::H264 => format!(
                "x264enc speed-preset=ultrafast bitrate=300 key-int-max={FPS} bframes=2 \
                 b-adapt=false ! h264parse"
            ),
        }
    }
}

impl Audio {
    fn elements(self) -> &'static [&'static str] {
        match self {
            Audio::Aac => &["avenc_aac", "aacparse"],
            Audio::Opus => &["opusenc"],
            Audio::Flac => &["flacenc"],
            Audio::Ac3 => &["avenc_ac3"],
            Audio::Eac3 => &["avenc_eac3"],
            Audio::Mp3 => &["lamemp3enc", "mpegaudioparse"],
        }
    }

    /// MP3 at 44.1 kHz, the rate the legacy FLV header can say; the others at 48 kHz.
    fn rate(self) -> u32 {
        match self {
            Audio::Mp3 => 44_100,
            _ => 48_000,
        }
    }

    fn encoder(self) -> &'static str {
        match self {
            Audio::Aac => "avenc_aac bitrate=64000 ! aacparse",
            Audio::Opus => "opusenc bitrate=48000",
            Audio::Flac => "flacenc",
            Audio::Ac3 => "avenc_ac3 bitrate=96000",
            Audio::Eac3 => "avenc_eac3 bitrate=96000",
            Audio::Mp3 => "lamemp3enc target=bitrate bitrate=128 cbr=true ! mpegaudioparse",
        }
    }
}

fn video_branch(codec: Video, width: u32, height: u32, pattern: &str) -> String {
    format!(
        "videotestsrc num-buffers={} pattern={pattern} ! \
         video/x-raw,format=I420,width={width},height={height},framerate={FPS}/1 ! {}",
        SECONDS * FPS,
        codec.encoder()
    )
}

fn audio_branch(codec: Audio, freq: u32) -> String {
    let rate = codec.rate();
    const SPB: u32 = 1024;
    format!(
        "audiotestsrc num-buffers={} samplesperbuffer={SPB} freq={freq} wave=sine ! \
         audio/x-raw,rate={rate},channels=2 ! audioconvert ! {}",
        (SECONDS * rate).div_ceil(SPB),
        codec.encoder()
    )
}

static FILES: Mutex<Option<HashMap<String, Arc<OnceLock<PathBuf>>>>> = Mutex::new(None);

/// Makes (once per process) `name` in the media cache with `launch` + matroskamux; concurrent
/// callers for the same file wait for the one generation.
fn cached(name: &str, elements: &[&str], branches: &[String]) -> Option<PathBuf> {
    if !require_elements(elements) || !require_elements(&["matroskamux", "audioconvert"]) {
        return None;
    }
    let slot = {
        let mut g = FILES.lock().unwrap_or_else(|e| e.into_inner());
        g.get_or_insert_with(HashMap::new)
            .entry(name.to_string())
            .or_default()
            .clone()
    };
    Some(
        slot.get_or_init(|| {
            let path = cache_dir().join(name);
            let mut launch = format!(
                "matroskamux name=mux ! filesink location={}",
                path.display()
            );
            for b in branches {
                launch.push_str(&format!(" {b} ! queue ! mux."));
            }
            generate(&launch, &path);
            path
        })
        .clone(),
    )
}

/// Runs `launch` to EOS (≤ 60 s), panicking with the error otherwise.
fn generate(launch: &str, path: &std::path::Path) {
    let t0 = Instant::now();
    run_to_eos(launch, Duration::from_secs(60));
    eprintln!(
        "[gstmedia] made {} ({} bytes) in {:.2?}",
        path.display(),
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        t0.elapsed()
    );
}

/// The Matroska file of one combination: 320x240 video, stereo audio, 2 s. None = skip
/// (an encoder is missing).
pub fn combo_mkv(c: Combo) -> Option<PathBuf> {
    let (v, a) = (c.video(), c.audio());
    let elements: Vec<&str> = v.elements().iter().chain(a.elements()).copied().collect();
    cached(
        &format!("{}.mkv", c.name()),
        &elements,
        &[video_branch(v, 320, 240, "smpte"), audio_branch(a, 440)],
    )
}

/// The four-track Matroska file of the multitrack issue, in this track order (so
/// matroskademux names them video_0, video_1, audio_0, audio_1): HEVC 640x360 with B-frames,
/// H.264 320x180, AAC, Opus. None = skip.
pub fn four_track_mkv() -> Option<PathBuf> {
    let elements: Vec<&str> = [Video::Hevc, Video::H264]
        .iter()
        .flat_map(|v| v.elements())
        .chain([Audio::Aac, Audio::Opus].iter().flat_map(|a| a.elements()))
        .copied()
        .collect();
    cached(
        "four_track.mkv",
        &elements,
        &[
            video_branch(Video::Hevc, 640, 360, "smpte"),
            video_branch(Video::H264, 320, 180, "ball"),
            audio_branch(Audio::Aac, 440),
            audio_branch(Audio::Opus, 880),
        ],
    )
}

/// A four-track Matroska file of codecs the element has always taken, in the same track order
/// (video_0, video_1, audio_0, audio_1): H.264 640x360 with B-frames, H.264 320x180, AAC
/// stereo, AAC mono (so every stream can be told apart). None = skip.
pub fn four_track_h264_aac_mkv() -> Option<PathBuf> {
    let elements: Vec<&str> = Video::H264
        .elements()
        .iter()
        .chain(Audio::Aac.elements())
        .copied()
        .collect();
    cached(
        "four_track_h264_aac.mkv",
        &elements,
        &[
            video_branch(Video::H264, 640, 360, "smpte"),
            video_branch(Video::H264, 320, 180, "ball"),
            audio_branch(Audio::Aac, 440),
            audio_branch(Audio::Aac, 880).replace("channels=2", "channels=1"),
        ],
    )
}

/// What matroskademux hands the element on one pad: the caps (codec_data, streamheader) and
/// per buffer its bytes and running-time PTS in ms, rounded half up (the element's rule).
pub struct Demuxed {
    pub caps: gst::Caps,
    pub buffers: Vec<Vec<u8>>,
    pub pts_ms: Vec<i64>,
    /// Buffers flagged HEADER, left out of `buffers`.
    pub headers: usize,
}

/// Demuxes the named pads of `path` (e.g. `["video_0", "audio_0"]`) the way the publish
/// pipelines do. These PTS, not FFmpeg's reading of the file, are the reference for what the
/// element sends: the two demuxers agree except for Opus, where FFmpeg moves every packet by
/// the whole-ms CodecDelay (-7 ms) and GStreamer by the exact 6.5 ms, clipping the first
/// packet to 0.
pub fn demux(path: &std::path::Path, pads: &[&str]) -> Vec<Demuxed> {
    let mut launch = format!("filesrc location={} ! matroskademux name=d", path.display());
    for pad in pads {
        launch.push_str(&format!(" d.{pad} ! queue ! appsink name={pad} sync=false"));
    }
    let p = pipeline(&launch);
    p.set_state(gst::State::Playing).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let out = pads
        .iter()
        .map(|pad| {
            let sink = p.by_name(pad).unwrap();
            let mut caps = None;
            let (mut buffers, mut pts_ms, mut headers) = (Vec::new(), Vec::new(), 0);
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let timeout = gst::ClockTime::from_nseconds(left.as_nanos() as u64);
                // Through the action signal: the crate has no gstreamer-app dependency.
                let Some(sample) =
                    sink.emit_by_name::<Option<gst::Sample>>("try-pull-sample", &[&timeout])
                else {
                    assert!(
                        sink.property::<bool>("eos"),
                        "{}: {pad} stalled",
                        path.display()
                    );
                    break;
                };
                caps.get_or_insert_with(|| sample.caps().expect("sample caps").to_owned());
                let b = sample.buffer().expect("sample buffer");
                // In-band headers (FLAC's "fLaC", STREAMINFO and VORBIS_COMMENT, without PTS)
                // repeat the caps' streamheader: configuration, not frames.
                if b.flags().contains(gst::BufferFlags::HEADER) {
                    headers += 1;
                    continue;
                }
                let seg = sample
                    .segment()
                    .and_then(|s| s.downcast_ref::<gst::ClockTime>().cloned())
                    .expect("time segment");
                let rt = match seg.to_running_time_full(b.pts()).expect("PTS") {
                    gst::Signed::Positive(t) => t.nseconds() as i64,
                    gst::Signed::Negative(t) => -(t.nseconds() as i64),
                };
                buffers.push(b.map_readable().expect("readable buffer").to_vec());
                pts_ms.push((rt + 500_000).div_euclid(1_000_000));
            }
            Demuxed {
                caps: caps.unwrap_or_else(|| panic!("{}: no buffer on {pad}", path.display())),
                buffers,
                pts_ms,
                headers,
            }
        })
        .collect();
    let _ = p.set_state(gst::State::Null);
    out
}

/// A buffer-typed caps field (`codec_data`) as bytes.
pub fn caps_buffer(caps: &gst::Caps, field: &str) -> Option<Vec<u8>> {
    let b = caps.structure(0)?.get::<gst::Buffer>(field).ok()?;
    Some(b.map_readable().ok()?.to_vec())
}

/// The first buffer of a `streamheader` array (Opus: the OpusHead ID header).
pub fn caps_first_streamheader(caps: &gst::Caps) -> Option<Vec<u8>> {
    let a = caps.structure(0)?.get::<gst::Array>("streamheader").ok()?;
    let b = a.first()?.get::<gst::Buffer>().ok()?;
    Some(b.map_readable().ok()?.to_vec())
}

/// Asserts that `rtmpclientsink`'s pad template `template` (`sink`, `audio`, `video_%u`,
/// `audio_%u`) exists and accepts `caps`, so a test that needs a codec or a pad the element
/// lacks fails with that reason instead of a later "not-negotiated".
pub fn assert_element_accepts(template: &str, caps: &gst::Caps) {
    init();
    let factory = gst::ElementFactory::find("rtmpclientsink").expect("rtmpclientsink registered");
    let names: Vec<String> = factory
        .static_pad_templates()
        .iter()
        .map(|t| t.name_template().to_string())
        .collect();
    let templ = factory
        .static_pad_templates()
        .into_iter()
        .find(|t| t.name_template() == template)
        .unwrap_or_else(|| {
            panic!("rtmpclientsink has no `{template}` pad template (it has {names:?})")
        });
    let tcaps = templ.caps();
    assert!(
        tcaps.can_intersect(caps),
        "rtmpclientsink's `{template}` pad does not accept {caps} (its template caps: {tcaps})"
    );
}
