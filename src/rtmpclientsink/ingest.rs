//! `ingest-rules`: warns at once, with `rtmp-ingest-warning` messages, when the stream breaks a
//! streaming service's documented ingest rules, instead of the streamer learning it later from
//! the service's dashboard. It only looks: the stream is never changed.
//!
//! Checked on track 0 of each kind (what single-track RTMP carries):
//!
//! | check | YouTube | Twitch | Facebook |
//! | --- | --- | --- | --- |
//! | `keyframe-interval` | ≤ 4 s | ≤ 2 s | ≤ 4 s |
//! | `video-codec` | — | H.264 | H.264 |
//! | `audio-codec` | — | — | AAC |
//! | `audio-rate` | 44.1 or 48 kHz | 44.1 or 48 kHz | 44.1 or 48 kHz |
//! | `video-bitrate` | by resolution, 8–40 Mbit/s | 6 Mbit/s | by resolution, 1–9 Mbit/s |
//!
//! Sources (as of 2026): YouTube "Choose live encoder settings, bitrates, and resolutions"
//! (support.google.com/youtube/answer/2853702: maximum bitrate 40/35 Mbit/s at 2160p60/30,
//! 30/25 at 1440p60/30, 10/8 at 1080p60/30, 8 at 720p and below; its Live Control Room asks for
//! "a keyframe frequency of four seconds or less"); Twitch Broadcast Requirements (keyframe
//! interval 2 s, H.264, bitrates up to 6 Mbit/s); Facebook Live Video API reference (key frames
//! "do not exceed 4 seconds", H.264/AAC, 44.1 or 48 kHz, 9000/6000 kbit/s at 1080p60/30,
//! 6000/4000 at 720p60/30, 2000 at 480p, 1000 at 360p). Twitch and YouTube also ask for 44.1 or
//! 48 kHz audio.
//!
//! A keyframe interval is measured when the next keyframe arrives (with 40 ms of tolerance for
//! timestamp rounding, e.g. 60 frames at 29.97 fps); the video bitrate over the last
//! [`BITRATE_WINDOW_MS`] of decode time once that much was seen. Each check warns once, and again
//! only after it was fine in between.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use gst::glib;
use gst::prelude::*;

use crate::codec::{Codec, MediaKind};

use super::format::{MediaFormat, MetaUpdate};
use super::frame::Frame;
use super::imp::CAT;
use super::messages;
use super::queue::Track;

/// Decode time the video bitrate is averaged over.
pub const BITRATE_WINDOW_MS: i64 = 5_000;
/// Rounding allowed on a keyframe interval.
const KEYFRAME_TOLERANCE_MS: i64 = 40;

/// `ingest-rules` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, glib::Enum)]
#[enum_type(name = "GstRtmpClientIngestRules")]
pub enum IngestRules {
    /// No checks.
    #[default]
    #[enum_value(name = "None: no checks", nick = "none")]
    None,
    /// YouTube Live.
    #[enum_value(
        name = "YouTube: keyframes every 4 s or less, 44.1/48 kHz audio, bitrate by resolution",
        nick = "youtube"
    )]
    Youtube,
    /// Twitch.
    #[enum_value(
        name = "Twitch: keyframes every 2 s or less, H.264, 44.1/48 kHz audio, up to 6 Mbit/s",
        nick = "twitch"
    )]
    Twitch,
    /// Facebook Live.
    #[enum_value(
        name = "Facebook: keyframes every 4 s or less, H.264 + AAC, 44.1/48 kHz audio, bitrate by resolution",
        nick = "facebook"
    )]
    Facebook,
}

impl IngestRules {
    /// The nick, as posted in the `rule` field.
    pub fn nick(self) -> &'static str {
        match self {
            IngestRules::None => "none",
            IngestRules::Youtube => "youtube",
            IngestRules::Twitch => "twitch",
            IngestRules::Facebook => "facebook",
        }
    }

    fn keyframe_limit_ms(self) -> Option<i64> {
        match self {
            IngestRules::None => None,
            IngestRules::Youtube | IngestRules::Facebook => Some(4_000),
            IngestRules::Twitch => Some(2_000),
        }
    }

    /// The video codec the service takes on single-track RTMP, if it insists on one.
    fn video_codec(self) -> Option<Codec> {
        match self {
            IngestRules::Twitch | IngestRules::Facebook => Some(Codec::H264),
            IngestRules::None | IngestRules::Youtube => None,
        }
    }

    fn audio_codec(self) -> Option<Codec> {
        match self {
            IngestRules::Facebook => Some(Codec::Aac),
            _ => None,
        }
    }

    /// Highest video bitrate in kbit/s for a stream of `height` lines at `fps`.
    fn max_video_kbps(self, height: Option<u32>, fps: Option<f64>) -> Option<u32> {
        let h = height.unwrap_or(1080);
        let high_fps = fps.is_some_and(|f| f > 31.0);
        match self {
            IngestRules::None => None,
            IngestRules::Twitch => Some(6_000),
            IngestRules::Youtube => Some(match (h, high_fps) {
                (h, true) if h > 1440 => 40_000,
                (h, false) if h > 1440 => 35_000,
                (h, true) if h > 1080 => 30_000,
                (h, false) if h > 1080 => 25_000,
                (h, true) if h > 720 => 10_000,
                _ => 8_000,
            }),
            IngestRules::Facebook => Some(match (h, high_fps) {
                (h, true) if h > 720 => 9_000,
                (h, false) if h > 720 => 6_000,
                (h, true) if h > 480 => 6_000,
                (h, false) if h > 480 => 4_000,
                (h, _) if h > 360 => 2_000,
                _ => 1_000,
            }),
        }
    }
}

/// What is checked (the `check` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    KeyframeInterval,
    VideoCodec,
    AudioCodec,
    AudioRate,
    VideoBitrate,
}

impl Check {
    const ALL: usize = 5;

    fn name(self) -> &'static str {
        match self {
            Check::KeyframeInterval => "keyframe-interval",
            Check::VideoCodec => "video-codec",
            Check::AudioCodec => "audio-codec",
            Check::AudioRate => "audio-rate",
            Check::VideoBitrate => "video-bitrate",
        }
    }
}

/// One warning to post.
#[derive(Debug, Clone, PartialEq)]
pub struct Warning {
    /// The service (`ingest-rules` nick).
    pub rule: &'static str,
    /// What was checked.
    pub check: &'static str,
    /// The limit, with its unit.
    pub limit: String,
    /// The measured value, with its unit.
    pub measured: String,
}

/// What the checks need of a frame.
#[derive(Debug, Clone, Copy)]
struct Sample {
    track: Track,
    dts_ms: i64,
    keyframe: bool,
    bytes: usize,
}

#[derive(Debug, Default)]
struct State {
    rules: IngestRules,
    /// Checks whose warning was posted and that have not been fine since.
    active: [bool; Check::ALL],
    last_key_ms: Option<i64>,
    /// (DTS ms, bytes) of video track 0 frames within the bitrate window.
    window: VecDeque<(i64, usize)>,
    window_bytes: usize,
    first_video_ms: Option<i64>,
    height: Option<u32>,
    fps: Option<f64>,
}

impl State {
    /// Records the outcome of `check`: a warning when it fails and did not fail just before.
    fn judge(&mut self, check: Check, fault: Option<(String, String)>, out: &mut Vec<Warning>) {
        let was = std::mem::replace(&mut self.active[check as usize], fault.is_some());
        if let Some((limit, measured)) = fault
            && !was
        {
            out.push(Warning {
                rule: self.rules.nick(),
                check: check.name(),
                limit,
                measured,
            });
        }
    }

    fn caps(&mut self, track: Track, format: &MediaFormat, out: &mut Vec<Warning>) {
        if track.id != 0 {
            return;
        }
        let rules = self.rules;
        let codec = format.codec();
        match format.meta() {
            MetaUpdate::Video(v) => {
                self.height = v.height.or(self.height);
                self.fps = v.framerate.or(self.fps);
                let fault = rules
                    .video_codec()
                    .filter(|&want| want != codec)
                    .map(|want| (want.name().to_string(), codec.name().to_string()));
                self.judge(Check::VideoCodec, fault, out);
            }
            MetaUpdate::Audio(a) => {
                let fault = rules
                    .audio_codec()
                    .filter(|&want| want != codec)
                    .map(|want| (want.name().to_string(), codec.name().to_string()));
                self.judge(Check::AudioCodec, fault, out);
                let fault = a
                    .samplerate
                    .filter(|r| rules != IngestRules::None && *r != 44_100 && *r != 48_000)
                    .map(|r| ("44100 or 48000 Hz".to_string(), format!("{r} Hz")));
                self.judge(Check::AudioRate, fault, out);
            }
        }
    }

    fn frame(&mut self, frame: Sample, out: &mut Vec<Warning>) {
        if frame.track.id != 0 || frame.track.kind != MediaKind::Video {
            return;
        }
        let rules = self.rules;
        let now = frame.dts_ms;
        if frame.keyframe {
            if let (Some(limit), Some(last)) = (rules.keyframe_limit_ms(), self.last_key_ms) {
                let interval = now - last;
                let fault = (interval > limit + KEYFRAME_TOLERANCE_MS)
                    .then(|| (seconds(limit), seconds(interval)));
                self.judge(Check::KeyframeInterval, fault, out);
            }
            self.last_key_ms = Some(now);
        }
        let Some(max_kbps) = rules.max_video_kbps(self.height, self.fps) else {
            return;
        };
        let len = frame.bytes;
        self.window.push_back((now, len));
        self.window_bytes += len;
        while let Some(&(t, n)) = self.window.front() {
            if t > now - BITRATE_WINDOW_MS {
                break;
            }
            self.window.pop_front();
            self.window_bytes -= n;
        }
        let first = *self.first_video_ms.get_or_insert(now);
        if now - first < BITRATE_WINDOW_MS {
            return;
        }
        let kbps = self.window_bytes as f64 * 8.0 / BITRATE_WINDOW_MS as f64;
        let fault = (kbps > f64::from(max_kbps))
            .then(|| (format!("{max_kbps} kbit/s"), format!("{kbps:.0} kbit/s")));
        self.judge(Check::VideoBitrate, fault, out);
    }
}

/// `12.3 s` (one decimal, none when whole).
fn seconds(ms: i64) -> String {
    let s = ms as f64 / 1000.0;
    if ms % 1000 == 0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    }
}

/// The element's ingest checker, shared by its pads.
#[derive(Debug, Default)]
pub struct Ingest {
    state: Mutex<State>,
}

impl Ingest {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The rules in force.
    pub fn rules(&self) -> IngestRules {
        self.lock().rules
    }

    /// Sets the rules; what was measured under other rules is forgotten.
    pub fn set_rules(&self, rules: IngestRules) {
        let mut s = self.lock();
        if s.rules != rules {
            *s = State {
                rules,
                height: s.height,
                fps: s.fps,
                ..State::default()
            };
        }
    }

    /// A new timeline (publish start, flush): intervals and the bitrate window start over;
    /// warnings posted stay posted until their fault clears.
    pub fn restart(&self) {
        let mut s = self.lock();
        s.last_key_ms = None;
        s.window.clear();
        s.window_bytes = 0;
        s.first_video_ms = None;
    }

    /// Caps applied to `track`: codec and audio rate checks.
    pub fn caps(&self, element: &gst::Element, track: Track, format: &MediaFormat) {
        let mut out = Vec::new();
        {
            let mut s = self.lock();
            if s.rules == IngestRules::None {
                return;
            }
            s.caps(track, format, &mut out);
        }
        post(element, out);
    }

    /// A frame about to be queued: keyframe interval and bitrate checks.
    pub fn frame(&self, element: &gst::Element, frame: &Frame) {
        let mut out = Vec::new();
        {
            let mut s = self.lock();
            if s.rules == IngestRules::None {
                return;
            }
            let sample = Sample {
                track: frame.track,
                dts_ms: frame.dts_ms,
                keyframe: frame.keyframe,
                bytes: frame.data.len(),
            };
            s.frame(sample, &mut out);
        }
        post(element, out);
    }
}

fn post(element: &gst::Element, warnings: Vec<Warning>) {
    for w in warnings {
        gst::warning!(
            CAT,
            obj = element,
            "{} ingest rules: {} is {}, the limit is {}",
            w.rule,
            w.check,
            w.measured,
            w.limit
        );
        let _ = element.post_message(messages::ingest_warning(element, &w));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(dts_ms: i64, keyframe: bool, bytes: usize) -> Sample {
        Sample {
            track: Track::VIDEO,
            dts_ms,
            keyframe,
            bytes,
        }
    }

    fn state(rules: IngestRules) -> State {
        State {
            rules,
            ..State::default()
        }
    }

    /// Frames at 30 fps for `secs`, a keyframe every `gop` frames, `bytes` each.
    fn run(s: &mut State, from_frame: i64, frames: i64, gop: i64, bytes: usize) -> Vec<Warning> {
        let mut out = Vec::new();
        for i in from_frame..from_frame + frames {
            s.frame(video(i * 1000 / 30, i % gop == 0, bytes), &mut out);
        }
        out
    }

    #[test]
    fn keyframe_interval_warns_once_and_again_after_clearing() {
        let mut s = state(IngestRules::Youtube);
        let out = run(&mut s, 0, 301, 300, 100);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].check, "keyframe-interval");
        assert_eq!(out[0].limit, "4 s");
        assert_eq!(out[0].measured, "10 s");
        // Still 10 s: no new warning.
        assert!(run(&mut s, 301, 300, 300, 100).is_empty());
        // 2 s GOPs clear it; 10 s again warns again.
        assert!(run(&mut s, 601, 120, 60, 100).is_empty());
        let mut out = Vec::new();
        s.frame(video(26_000, true, 100), &mut out);
        assert!(out.is_empty(), "{out:?}");
        s.frame(video(36_000, true, 100), &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].measured, "10 s");
    }

    #[test]
    fn compliant_streams_pass_every_rule() {
        for rules in [
            IngestRules::Youtube,
            IngestRules::Twitch,
            IngestRules::Facebook,
        ] {
            let mut s = state(rules);
            // 2 s GOPs at 30 fps (29.97 rounding included), 2.4 Mbit/s.
            let mut out = Vec::new();
            for i in 0..900 {
                let dts = i * 1001 / 30;
                s.frame(video(dts, i % 60 == 0, 10_000), &mut out);
            }
            assert!(out.is_empty(), "{rules:?}: {out:?}");
        }
    }

    #[test]
    fn bitrate_above_the_service_maximum_warns() {
        let mut s = state(IngestRules::Twitch);
        s.height = Some(720);
        // 30 fps x 30 000 B = 7.2 Mbit/s > 6 Mbit/s.
        let out = run(&mut s, 0, 300, 60, 30_000);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].check, "video-bitrate");
        assert_eq!(out[0].limit, "6000 kbit/s");
        let kbps: f64 = out[0].measured.trim_end_matches(" kbit/s").parse().unwrap();
        assert!((7000.0..=7300.0).contains(&kbps), "{kbps}");
        // Facebook 360p allows 1000 kbit/s only.
        assert_eq!(
            IngestRules::Facebook.max_video_kbps(Some(360), Some(30.0)),
            Some(1000)
        );
        assert_eq!(
            IngestRules::Youtube.max_video_kbps(Some(1080), Some(60.0)),
            Some(10_000)
        );
        assert_eq!(IngestRules::None.max_video_kbps(Some(1080), None), None);
    }

    fn format(caps: &str) -> MediaFormat {
        gst::init().unwrap();
        MediaFormat::from_caps(&caps.parse::<gst::Caps>().unwrap()).unwrap()
    }

    #[test]
    fn audio_rate_warns_once_per_fault_and_h264_aac_pass_facebook() {
        let mut s = state(IngestRules::Facebook);
        let mut out = Vec::new();
        let aac = |rate: u32| {
            format(&format!(
                "audio/mpeg, mpegversion=4, stream-format=raw, rate={rate}, channels=2"
            ))
        };
        s.caps(Track::AUDIO, &aac(32_000), &mut out);
        s.caps(Track::AUDIO, &aac(32_000), &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(
            (out[0].check, out[0].measured.as_str()),
            ("audio-rate", "32000 Hz")
        );
        s.caps(Track::AUDIO, &aac(48_000), &mut out);
        s.caps(Track::AUDIO, &aac(44_100), &mut out);
        assert_eq!(out.len(), 1, "44.1 and 48 kHz pass: {out:?}");
        s.caps(Track::AUDIO, &aac(22_050), &mut out);
        assert_eq!(out.len(), 2, "back after clearing: {out:?}");
        let h264 = format(
            "video/x-h264, stream-format=avc, alignment=au, width=1280, height=720, framerate=60/1",
        );
        s.caps(Track::VIDEO, &h264, &mut out);
        assert_eq!(out.len(), 2, "H.264 + AAC is what Facebook takes: {out:?}");
        assert_eq!((s.height, s.fps), (Some(720), Some(60.0)));
        // Other tracks than the default ones are not judged.
        s.caps(Track::audio(1), &aac(8_000), &mut out);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn none_checks_nothing() {
        let mut s = state(IngestRules::None);
        assert!(run(&mut s, 0, 700, 300, 100_000).is_empty());
    }
}
