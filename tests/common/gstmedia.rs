//! Test media made by GStreamer's own encoders at their defaults, as users feed the element:
//! x264enc (an access-unit delimiter in every frame, `aud=true`; SEI; B-frames when asked for)
//! and voaacenc. Only the bitrate, the B-frames (x264enc's default is none) and the keyframe
//! interval are set. Files share the per-process cache of `media`.
//!
//! The picture is a static full-frame noise background (expensive to intra-code, free to
//! predict: keyframes of hundreds of KB, as a detailed camera picture gives) with a moving
//! 640x360 window in the middle (what the predicted frames cost, so the bitrate).
//! With `Window::Noise` at 20 Mbit/s, keyframes are ~550 KB (the first ~300 KB: x264's rate
//! control starts cautiously); with `Window::Bars` at `bitrate=10000`, ~7 Mbit/s and keyframes
//! of ~320 KB (x264enc's `qp-min=10` caps them for this picture).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use gst::prelude::*;

use super::gstrun::{require_elements, run_to_eos};
use super::gstsrc::{SrcFrame, demux, init};
use super::media::{FPS, cached_with};

/// Picture size of the HD media.
pub const WIDTH: u32 = 1280;
pub const HEIGHT: u32 = 720;
/// Keyframe interval in frames: 2 s, what streaming platforms ask for.
pub const KEY_INT: u32 = 2 * FPS;
/// Audio of the generated media: 48 kHz stereo in buffers of 1024 samples (one AAC frame).
pub const AUDIO_RATE: u32 = 48_000;
/// Smallest keyframe the HD file must have (checked at generation): far above rustls' 64 KiB
/// of pending TLS output and the sizes the small test media have.
pub const MIN_KEYFRAME: usize = 500_000;

/// What moves in the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// Fresh noise in every frame: the encoder spends whatever the bitrate allows (20 Mbit/s
    /// files), slowly (~10 fps at 720p on a loaded 2-core machine).
    Noise,
    /// Scrolling colour bars with SMPTE's small noise patch: cheap enough to encode live at
    /// 720p30, ~7 Mbit/s at `bitrate=10000`.
    Bars,
}

/// A pipeline fragment ending in raw 720p30 I420 video: `frames` frames of the picture
/// (see the module docs), from live sources when `live`. Link it on with `! ...`.
pub fn hd_picture(live: bool, frames: u32, window: Window) -> String {
    let pattern = match window {
        Window::Noise => "snow",
        Window::Bars => "smpte horizontal-speed=4",
    };
    // A still layer: one frame, repeated by imagefreeze at the stream's rate (left alone it
    // picks 25 fps and stretches the stream).
    let still = |pattern: &str, pad: u32| {
        format!(
            "videotestsrc pattern={pattern} num-buffers=1 ! \
             video/x-raw,format=I420,width={WIDTH},height={HEIGHT} ! \
             imagefreeze is-live={live} ! video/x-raw,framerate={FPS}/1 ! hdpic.sink_{pad} "
        )
    };
    // Luma noise (videotestsrc's snow is grey), with a chroma pattern blended over it. The
    // length is cut after the compositor: a live compositor does not always end when its
    // inputs do. identity's `eos-after=N` passes N - 1 buffers.
    format!(
        "{}{}videotestsrc is-live={live} pattern={pattern} ! \
         video/x-raw,format=I420,width={},height={},framerate={FPS}/1 ! hdpic.sink_2 \
         compositor name=hdpic sink_1::alpha=0.5 sink_2::xpos={} sink_2::ypos={} ! \
         video/x-raw,format=I420,width={WIDTH},height={HEIGHT},framerate={FPS}/1 ! \
         identity eos-after={}",
        still("snow", 0),
        still("chroma-zone-plate kx2=20 ky2=20", 1),
        WIDTH / 2,
        HEIGHT / 2,
        WIDTH / 4,
        HEIGHT / 4,
        frames + 1
    )
}

/// x264enc at its defaults (medium preset, no tune, `aud=true`) but for the bitrate, two
/// B-frames and a keyframe every `KEY_INT` frames.
pub fn x264enc(bitrate_kbps: u32) -> String {
    format!("x264enc bitrate={bitrate_kbps} bframes=2 key-int-max={KEY_INT}")
}

/// A pipeline fragment ending in live (when `live`) AAC-LC stereo 48 kHz from voaacenc at its
/// defaults, `buffers` frames of 1024 samples (None: endless).
pub fn aac(live: bool, buffers: Option<u32>) -> String {
    let n = buffers.map_or(-1, i64::from);
    format!(
        "audiotestsrc is-live={live} wave=sine freq=440 num-buffers={n} samplesperbuffer=1024 ! \
         audio/x-raw,rate={AUDIO_RATE},channels=2 ! voaacenc"
    )
}

/// Number of 1024-sample audio buffers in `seconds`.
pub fn audio_buffers(seconds: u32) -> u32 {
    seconds * AUDIO_RATE / 1024
}

/// A `seconds` long 1280x720 30 fps Matroska file: H.264 from x264enc (`bitrate_kbps`, two
/// B-frames, AUD in every frame) and AAC from voaacenc, muxed by matroskamux. Checked when made:
/// every frame starts with an AUD, B-frames are present, and every keyframe but the first (the
/// encoder's rate control starts cautiously) is at least `MIN_KEYFRAME` bytes. None = skip
/// (elements missing).
pub fn x264enc_hd_mkv(seconds: u32, bitrate_kbps: u32) -> Option<PathBuf> {
    let needed = [
        "videotestsrc",
        "audiotestsrc",
        "compositor",
        "imagefreeze",
        "x264enc",
        "voaacenc",
        "matroskamux",
        "matroskademux",
    ];
    if !require_elements(&needed) {
        return None;
    }
    let name = format!("x264enc_voaacenc_{seconds}s_{WIDTH}x{HEIGHT}_{bitrate_kbps}k.mkv");
    Some(cached_with(&name, |path| {
        let launch = format!(
            "{} ! {} ! matroskamux name=mux ! filesink location={} \
             {} ! mux.",
            hd_picture(false, seconds * FPS, Window::Noise),
            x264enc(bitrate_kbps),
            path.display(),
            aac(false, Some(audio_buffers(seconds)))
        );
        let t0 = Instant::now();
        run_to_eos(&launch, Duration::from_secs(600));
        let (v, a) = demux(path);
        let s = check_hd(&v, seconds, bitrate_kbps);
        assert!(!a.is_empty(), "no audio in {}", path.display());
        eprintln!(
            "[gstmedia] generated {} in {:.1?}: {s}",
            path.display(),
            t0.elapsed()
        );
    }))
}

/// What `check_hd` found, for logs.
pub struct HdSummary {
    pub frames: usize,
    pub bitrate_kbps: u64,
    pub keyframes: Vec<usize>,
    pub b_frames: usize,
}

impl std::fmt::Display for HdSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} video frames, {} kbit/s, {} B-frames, keyframes of {:?} bytes",
            self.frames, self.bitrate_kbps, self.b_frames, self.keyframes
        )
    }
}

/// NAL unit types in a length-prefixed (4-byte) access unit.
pub fn nal_types(au: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = au;
    while rest.len() >= 4 {
        let n = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let Some(nal) = rest.get(4..4 + n) else {
            break;
        };
        out.push(nal.first().map_or(0, |b| b & 0x1f));
        rest = &rest[4 + n..];
    }
    out
}

/// The checks of `x264enc_hd_mkv` on the demuxed video frames (panics on failure).
pub fn check_hd(v: &[SrcFrame], seconds: u32, bitrate_kbps: u32) -> HdSummary {
    assert_eq!(v.len(), (seconds * FPS) as usize, "video frames");
    for (i, f) in v.iter().enumerate() {
        assert_eq!(
            nal_types(&f.data).first(),
            Some(&9),
            "frame {i} does not start with an access-unit delimiter"
        );
    }
    // Presentation order differs from decode order exactly where B-frames are.
    let b_frames = v.windows(2).filter(|w| w[1].pts_ms < w[0].pts_ms).count();
    assert!(b_frames > v.len() / 10, "only {b_frames} B-frames");
    let keyframes: Vec<usize> = v.iter().filter(|f| f.key).map(|f| f.data.len()).collect();
    assert!(keyframes.len() >= 2, "keyframes {keyframes:?}");
    assert!(
        keyframes[1..].iter().all(|&k| k >= MIN_KEYFRAME),
        "keyframes of {keyframes:?} bytes: want >= {MIN_KEYFRAME} after the first"
    );
    let bytes: usize = v.iter().map(|f| f.data.len()).sum();
    let kbps = bytes as u64 * 8 / u64::from(seconds) / 1000;
    // x264's rate control undershoots a little on a file this short.
    assert!(
        kbps * 100 >= u64::from(bitrate_kbps) * 85,
        "{kbps} kbit/s for bitrate={bitrate_kbps}"
    );
    HdSummary {
        frames: v.len(),
        bitrate_kbps: kbps,
        keyframes,
        b_frames,
    }
}
