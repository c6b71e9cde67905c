//! Test media generated at test time with `ffmpeg` (lavfi `testsrc2` + `sine`, libx264
//! `-preset ultrafast` with B-frames, native AAC). Files are cached per test process in
//! one temp dir, removed at process exit unless `KEEP_TEST_FILES` is set. Media made by
//! GStreamer's own encoders, in the same cache, are in `gstmedia`.
//!
//! Every generator returns None when ffmpeg is missing (skip rule; panics under CI) and
//! panics if generation fails.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use super::util::{TempDir, find_binary, keep_test_files, require_binary};

/// Frame rate of all generated video.
pub const FPS: u32 = 30;
/// Audio sample rate of the muxed files.
pub const AUDIO_RATE: u32 = 44_100;

struct Cache {
    dir: PathBuf,
    /// One slot per file name: generating one file does not block tests that need another.
    files: HashMap<String, Arc<OnceLock<PathBuf>>>,
}

static CACHE: Mutex<Option<Cache>> = Mutex::new(None);

unsafe extern "C" {
    fn atexit(cb: extern "C" fn()) -> i32;
}

extern "C" fn remove_cache_dir() {
    if let Ok(guard) = CACHE.lock()
        && let Some(c) = guard.as_ref()
    {
        if keep_test_files() {
            eprintln!("KEEP_TEST_FILES: keeping media cache {}", c.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&c.dir);
        }
    }
}

/// The per-process media cache directory.
pub fn cache_dir() -> PathBuf {
    let mut g = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    cache_dir_locked(&mut g)
}

fn cache_dir_locked(g: &mut Option<Cache>) -> PathBuf {
    if g.is_none() {
        let dir = TempDir::new("media").into_path();
        // SAFETY: registering a plain extern "C" fn; atexit has no other preconditions.
        unsafe {
            atexit(remove_cache_dir);
        }
        *g = Some(Cache {
            dir,
            files: HashMap::new(),
        });
    }
    g.as_ref().unwrap().dir.clone()
}

/// Generates (once per process) the file `name` with `ffmpeg ARGS... <path>`.
/// Concurrent callers for the same name wait for the one generation.
fn cached(name: &str, args: &[String]) -> Option<PathBuf> {
    if !require_binary("ffmpeg") {
        return None;
    }
    Some(cached_with(name, |path| {
        generate(path, args);
    }))
}

/// Generates (once per process) the file `name` in the cache dir with `make(path)`, which
/// panics on failure. Concurrent callers for the same name wait for the one generation.
pub(super) fn cached_with(name: &str, make: impl FnOnce(&Path)) -> PathBuf {
    let (dir, slot) = {
        let mut g = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        let dir = cache_dir_locked(&mut g);
        let slot = g
            .as_mut()
            .unwrap()
            .files
            .entry(name.to_string())
            .or_default()
            .clone();
        (dir, slot)
    };
    slot.get_or_init(|| {
        let path = dir.join(name);
        make(&path);
        path
    })
    .clone()
}

fn generate(path: &Path, args: &[String]) -> PathBuf {
    let t0 = Instant::now();
    let out = Command::new(find_binary("ffmpeg").unwrap())
        .args(["-nostdin", "-hide_banner", "-y", "-loglevel", "error"])
        .args(args)
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("spawn ffmpeg");
    if !out.status.success() {
        panic!(
            "generating {} failed ({}): {}\nargs: {args:?}",
            path.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    eprintln!(
        "[media] generated {} ({} bytes) in {:.2?}",
        path.display(),
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        t0.elapsed()
    );
    path.to_path_buf()
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn video_src(seconds: u32, width: u32, height: u32) -> Vec<String> {
    vec![
        "-f".into(),
        "lavfi".into(),
        "-i".into(),
        format!("testsrc2=size={width}x{height}:rate={FPS}:duration={seconds}"),
    ]
}

fn audio_src(seconds: u32, rate: u32) -> Vec<String> {
    vec![
        "-f".into(),
        "lavfi".into(),
        "-i".into(),
        format!("sine=frequency=440:beep_factor=4:sample_rate={rate}:duration={seconds}"),
    ]
}

/// libx264 ultrafast, yuv420p, keyframe every second (no scene-cut keyframes),
/// `bframes` B-frames (ultrafast alone would disable them), optional bitrate.
fn x264(bframes: u32, bitrate_kbps: Option<u32>) -> Vec<String> {
    let mut v = s(&[
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
    ]);
    v.extend(["-bf".into(), bframes.to_string()]);
    v.extend([
        "-g".into(),
        FPS.to_string(),
        "-keyint_min".into(),
        FPS.to_string(),
    ]);
    v.extend(s(&["-sc_threshold", "0"]));
    if let Some(b) = bitrate_kbps {
        v.extend([
            "-b:v".into(),
            format!("{b}k"),
            "-maxrate".into(),
            format!("{b}k"),
        ]);
        v.extend(["-bufsize".into(), format!("{}k", 2 * b)]);
    }
    v
}

fn aac() -> Vec<String> {
    s(&["-c:a", "aac", "-b:a", "96k", "-ac", "2"])
}

/// FLV with H.264 (Main profile when `bframes` > 0, keyframe each second, 30 fps) and
/// AAC-LC stereo 44.1 kHz. E.g. `h264_aac_flv(3, 320, 240, 2)`.
pub fn h264_aac_flv(seconds: u32, width: u32, height: u32, bframes: u32) -> Option<PathBuf> {
    let name = format!("h264_aac_{seconds}s_{width}x{height}_bf{bframes}.flv");
    let mut a = video_src(seconds, width, height);
    a.extend(audio_src(seconds, AUDIO_RATE));
    a.extend(x264(bframes, None));
    a.extend(aac());
    a.extend(s(&["-f", "flv"]));
    cached(&name, &a)
}

/// Matroska with H.264 (`bitrate_kbps`, `bframes`) + AAC-LC stereo 44.1 kHz.
/// E.g. `h264_aac_mkv(30, 1280, 720, 2000, 2)` for the element tests.
pub fn h264_aac_mkv(
    seconds: u32,
    width: u32,
    height: u32,
    bitrate_kbps: u32,
    bframes: u32,
) -> Option<PathBuf> {
    let name = format!("h264_aac_{seconds}s_{width}x{height}_{bitrate_kbps}k_bf{bframes}.mkv");
    let mut a = video_src(seconds, width, height);
    a.extend(audio_src(seconds, AUDIO_RATE));
    a.extend(x264(bframes, Some(bitrate_kbps)));
    a.extend(aac());
    a.extend(s(&["-f", "matroska"]));
    cached(&name, &a)
}

/// Raw H.264 Annex B byte-stream (SPS/PPS in band before each IDR), no audio.
pub fn h264_annexb(seconds: u32, width: u32, height: u32, bframes: u32) -> Option<PathBuf> {
    let name = format!("h264_{seconds}s_{width}x{height}_bf{bframes}.h264");
    let mut a = video_src(seconds, width, height);
    a.extend(x264(bframes, None));
    a.extend(s(&["-bsf:v", "h264_mp4toannexb", "-f", "h264"]));
    cached(&name, &a)
}

/// Raw AAC-LC in ADTS framing.
pub fn aac_adts(seconds: u32, sample_rate: u32, channels: u32) -> Option<PathBuf> {
    let name = format!("aac_{seconds}s_{sample_rate}hz_{channels}ch.aac");
    let mut a = audio_src(seconds, sample_rate);
    a.extend(s(&["-c:a", "aac", "-b:a", "96k", "-ac"]));
    a.push(channels.to_string());
    a.extend(s(&["-f", "adts"]));
    cached(&name, &a)
}

/// Path helper for tests that want their own files next to the cache.
pub fn cache_path(name: &str) -> PathBuf {
    cache_dir().join(Path::new(name))
}
