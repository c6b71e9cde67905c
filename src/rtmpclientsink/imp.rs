//! GObject/GStreamer glue of `rtmpclientsink`: settings and properties, the pads (`sink`
//! through `GstBaseSink`; the request pads `audio`, `video_%u` and `audio_%u` with their own
//! chain/event functions) and which track each carries, BaseSink vfuncs, EOS handling, and the
//! lifecycle of the session thread. What a pad's caps and buffers become is `input.rs`.
//!
//! Tracks: `sink` is video track 0 (or audio track 0 of an audio-only stream), `audio` audio
//! track 0, `video_N`/`audio_N` track N (1..=255), sent as Enhanced RTMP Multitrack OneTrack
//! packets. EOS on one pad ends its track only; the element's EOS (on `sink`) waits for every
//! linked request pad's EOS. A pad released mid-stream ends its track with a SequenceEnd.
//!
//! Synchronisation: with `sync=true` (the default) the `sink` pad's buffers are synchronised to
//! the clock by `GstBaseSink` before `render()`; audio on the `audio` request pad is not
//! synchronised by itself but leaves the interleaving queue only together with video of the
//! same time, so it is paced by the video. With `sync=false` everything goes out as fast as the
//! network takes it. `async` keeps the `GstBaseSink` default (true): going to PAUSED waits for
//! the first `sink` buffer (preroll), which is queued and sent once connected.

use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;

use crate::codec::MediaKind;
use crate::rtmp::auth::AuthMod;
use crate::rtmp::command::parse_connect_args;
use crate::rtmp::session::{DEFAULT_FLASH_VERSION, DEFAULT_OUT_CHUNK_SIZE, StopCommands};
use crate::rtmp::tls::{self, TlsOptions};
use crate::rtmp::url::{RtmpUrl, Scheme, redact_location};

use super::flvin::FlvIn;
use super::format::{MediaFormat, audio_caps, video_caps};
use super::ingest::{Ingest, IngestRules};
use super::input::{self, Ctx, PadSlot, capitalize};
use super::pacing::{MAX_PEAK_KBPS, Pacer, PeakRate};
use super::queue::{
    DEFAULT_MAX_INTERLEAVE_MS, DEFAULT_MAX_QUEUE_TIME_MS, Policy, QueueConfig, Track,
};
use super::session::{
    self, AUDIO_PAD, DEFAULT_PING_INTERVAL, Phase, SINK_PAD, SessionSettings, Shared,
};

pub(crate) static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "rtmpclientsink",
        gst::DebugColorFlags::empty(),
        Some("RTMP publishing sink"),
    )
});

/// `publish` type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, glib::Enum)]
#[enum_type(name = "GstRtmpClientPublishType")]
pub enum PublishType {
    /// Live stream, not recorded by the server.
    #[default]
    #[enum_value(name = "Live: live stream, not recorded", nick = "live")]
    Live,
    /// The server records the stream into a new file.
    #[enum_value(name = "Record: the server records into a new file", nick = "record")]
    Record,
    /// The server appends to an existing recording.
    #[enum_value(
        name = "Append: the server appends to an existing recording",
        nick = "append"
    )]
    Append,
}

/// `authmod` property values (the numbers of rtmp2sink's `GstRtmpAuthmod`, plus `llnw`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, glib::Enum)]
#[repr(i32)]
#[enum_type(name = "GstRtmpClientAuthMod")]
pub enum AuthModType {
    /// Never authenticate.
    #[enum_value(name = "None: never send credentials", nick = "none")]
    None = 0,
    /// Whatever the server asks for.
    #[default]
    #[enum_value(name = "Auto: use the mode the server asks for", nick = "auto")]
    Auto = 1,
    /// Adobe challenge-response.
    #[enum_value(name = "Adobe: FMS/Wowza challenge-response", nick = "adobe")]
    Adobe = 2,
    /// Limelight challenge-response.
    #[enum_value(name = "Limelight: Limelight challenge-response", nick = "llnw")]
    Llnw = 3,
}

impl From<AuthModType> for AuthMod {
    fn from(m: AuthModType) -> Self {
        match m {
            AuthModType::Auto => AuthMod::Auto,
            AuthModType::Adobe => AuthMod::Adobe,
            AuthModType::Llnw => AuthMod::Llnw,
            AuthModType::None => AuthMod::None,
        }
    }
}

/// `scheme` property values (as rtmp2sink's `GstRtmpScheme`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, glib::Enum)]
#[enum_type(name = "GstRtmpClientScheme")]
pub enum SchemeType {
    /// Plain TCP.
    #[default]
    #[enum_value(name = "RTMP over TCP", nick = "rtmp")]
    Rtmp,
    /// TLS over TCP.
    #[enum_value(name = "RTMP over TLS", nick = "rtmps")]
    Rtmps,
}

impl From<SchemeType> for Scheme {
    fn from(s: SchemeType) -> Self {
        match s {
            SchemeType::Rtmp => Scheme::Rtmp,
            SchemeType::Rtmps => Scheme::Rtmps,
        }
    }
}

impl From<Scheme> for SchemeType {
    fn from(s: Scheme) -> Self {
        match s {
            Scheme::Rtmp => SchemeType::Rtmp,
            Scheme::Rtmps => SchemeType::Rtmps,
        }
    }
}

impl PublishType {
    fn as_str(self) -> &'static str {
        match self {
            PublishType::Live => "live",
            PublishType::Record => "record",
            PublishType::Append => "append",
        }
    }
}

/// Commands sent when the publish ends.
#[glib::flags(name = "GstRtmpClientStopCommands")]
pub enum StopCommandsFlags {
    /// Nothing (as rtmp2sink's `none`).
    #[flags_value(name = "No command", nick = "none")]
    NONE = 0,
    /// `FCUnpublish(stream)`.
    #[flags_value(name = "FCUnpublish", nick = "fcunpublish")]
    FCUNPUBLISH = 0b001,
    /// `closeStream`.
    #[flags_value(name = "closeStream", nick = "closestream")]
    CLOSESTREAM = 0b010,
    /// `deleteStream(stream_id)`.
    #[flags_value(name = "deleteStream", nick = "deletestream")]
    DELETESTREAM = 0b100,
}

/// `congestion-policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, glib::Enum)]
#[enum_type(name = "GstRtmpClientCongestionPolicy")]
pub enum CongestionPolicy {
    /// `drop` when the pipeline is live, `block` otherwise.
    #[default]
    #[enum_value(name = "Auto: drop for live pipelines, block otherwise", nick = "auto")]
    Auto,
    /// Block upstream until the network takes the data (nothing is lost; for files).
    #[enum_value(name = "Block: block upstream, never drop", nick = "block")]
    Block,
    /// Drop frames that cannot be sent in time (latency stays bounded; for live sources).
    #[enum_value(
        name = "Drop: drop B-frames, then the rest of GOPs, so the queue stays bounded",
        nick = "drop"
    )]
    Drop,
}

const DEFAULT_PUBLISH_TYPE: PublishType = PublishType::Live;
const DEFAULT_TIMEOUT: u32 = 10;
const DEFAULT_CHUNK_SIZE: u32 = DEFAULT_OUT_CHUNK_SIZE;
const MIN_CHUNK_SIZE: u32 = 128;
const MAX_CHUNK_SIZE: u32 = 0x7FFF_FFFF;
const DEFAULT_ASYNC_CONNECT: bool = true;
const DEFAULT_STOP_COMMANDS: StopCommandsFlags =
    StopCommandsFlags::FCUNPUBLISH.union(StopCommandsFlags::DELETESTREAM);
const DEFAULT_RECONNECT_ATTEMPTS: i32 = 10;
const DEFAULT_RECONNECT_DELAY_MS: u32 = 1000;
const DEFAULT_RECONNECT_DELAY_MAX_MS: u32 = 30_000;
const DEFAULT_CONGESTION_POLICY: CongestionPolicy = CongestionPolicy::Auto;
const DEFAULT_PING_INTERVAL_MS: u32 = DEFAULT_PING_INTERVAL.as_millis() as u32;

// No Debug: it holds the location (stream key), password and secure token.
#[derive(Clone)]
struct Settings {
    /// The location's parts, kept as rtmp2sink keeps them: `location` is composed from them
    /// and setting it sets them all.
    scheme: Scheme,
    host: Option<String>,
    port: i32,
    application: Option<String>,
    stream: Option<String>,
    /// Credentials of the last `location` (the `username`/`password` properties override them).
    url_username: Option<String>,
    url_password: Option<String>,
    /// Shared with the session thread: `peak-kbps` may change while playing.
    peak_kbps: PeakRate,
    publish_type: PublishType,
    timeout: u32,
    chunk_size: u32,
    flash_version: String,
    async_connect: bool,
    stop_commands: StopCommandsFlags,
    max_interleave_ms: u32,
    reconnect_attempts: i32,
    reconnect_delay_ms: u32,
    reconnect_delay_max_ms: u32,
    max_queue_time_ms: u32,
    congestion_policy: CongestionPolicy,
    ping_interval_ms: u32,
    tls_ca_file: Option<String>,
    tls_validation_flags: u32,
    username: Option<String>,
    password: Option<String>,
    secure_token: Option<String>,
    authmod: AuthModType,
    extra_connect_args: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            scheme: Scheme::Rtmp,
            host: None,
            port: i32::from(Scheme::Rtmp.default_port()),
            application: None,
            stream: None,
            url_username: None,
            url_password: None,
            peak_kbps: PeakRate::default(),
            publish_type: DEFAULT_PUBLISH_TYPE,
            timeout: DEFAULT_TIMEOUT,
            chunk_size: DEFAULT_CHUNK_SIZE,
            flash_version: DEFAULT_FLASH_VERSION.to_string(),
            async_connect: DEFAULT_ASYNC_CONNECT,
            stop_commands: DEFAULT_STOP_COMMANDS,
            max_interleave_ms: DEFAULT_MAX_INTERLEAVE_MS,
            reconnect_attempts: DEFAULT_RECONNECT_ATTEMPTS,
            reconnect_delay_ms: DEFAULT_RECONNECT_DELAY_MS,
            reconnect_delay_max_ms: DEFAULT_RECONNECT_DELAY_MAX_MS,
            max_queue_time_ms: DEFAULT_MAX_QUEUE_TIME_MS,
            congestion_policy: DEFAULT_CONGESTION_POLICY,
            ping_interval_ms: DEFAULT_PING_INTERVAL_MS,
            tls_ca_file: None,
            tls_validation_flags: gio::TlsCertificateFlags::VALIDATE_ALL.bits(),
            username: None,
            password: None,
            secure_token: None,
            authmod: AuthModType::Auto,
            extra_connect_args: None,
        }
    }
}

impl Settings {
    /// The parts of the location that are not set (empty when it is complete).
    fn missing_parts(&self) -> Vec<&'static str> {
        let unset = |p: &Option<String>| p.as_deref().is_none_or(str::is_empty);
        [
            ("host", unset(&self.host)),
            ("application", unset(&self.application)),
            ("stream", unset(&self.stream)),
        ]
        .into_iter()
        .filter_map(|(name, missing)| missing.then_some(name))
        .collect()
    }

    /// The publishing URL the parts make (None while one is missing).
    fn url(&self) -> Option<RtmpUrl> {
        if !self.missing_parts().is_empty() {
            return None;
        }
        Some(RtmpUrl {
            scheme: self.scheme,
            host: self.host.clone()?,
            port: u16::try_from(self.port).unwrap_or(self.scheme.default_port()),
            app: self.application.clone()?,
            stream: self.stream.clone()?,
            username: self.url_username.clone(),
            password: self.url_password.clone(),
        })
    }

    /// `location` as rtmp2sink composes it: `scheme://host[:port]/application/stream`, the
    /// port only when it is not the scheme's default, no credentials.
    fn location(&self) -> Option<String> {
        let url = self.url()?;
        let host = if url.host.contains(':') {
            format!("[{}]", url.host)
        } else {
            url.host.clone()
        };
        let port = if url.port == url.scheme.default_port() {
            String::new()
        } else {
            format!(":{}", url.port)
        };
        Some(format!(
            "{}://{host}{port}/{}/{}",
            url.scheme.as_str(),
            url.app,
            url.stream
        ))
    }

    /// Takes every part from a parsed location (as rtmp2sink: its credentials replace the
    /// previous location's).
    fn set_url(&mut self, url: RtmpUrl) {
        self.scheme = url.scheme;
        self.host = Some(url.host);
        self.port = i32::from(url.port);
        self.application = Some(url.app);
        self.stream = Some(url.stream);
        self.url_username = url.username;
        self.url_password = url.password;
    }
}

/// Highest track id of the `video_%u`/`audio_%u` pads (Enhanced RTMP track ids are 8-bit).
const MAX_TRACK_ID: u8 = 255;

/// A request pad: `audio` (audio track 0) or `video_%u`/`audio_%u` (track %u).
/// When the queue last sent a frame, for the waits at EOS that give up once nothing went out
/// for a while.
struct Progress {
    frames_out: u64,
    at: Instant,
}

impl Progress {
    fn new(frames_out: u64) -> Self {
        Progress {
            frames_out,
            at: Instant::now(),
        }
    }

    /// The time of the last progress, with `frames_out` (the count sent so far) seen at `now`.
    fn last(&mut self, frames_out: u64, now: Instant) -> Instant {
        if frames_out != self.frames_out {
            self.frames_out = frames_out;
            self.at = now;
        }
        self.at
    }
}

#[derive(Debug)]
struct RequestPad {
    pad: gst::Pad,
    track: Track,
    /// Its input (also held by the pad's chain and event functions).
    slot: Arc<PadSlot>,
}

/// Which pads exist and what the `sink` pad carries: what `request_new_pad` and the caps of
/// the `sink` pad decide together (one pad per track; audio track 0 is `audio` or `sink`).
#[derive(Debug, Default)]
struct Pads {
    /// The request pads, in the order they were requested.
    requested: Vec<RequestPad>,
    /// The track of the `sink` pad's caps (None before caps).
    sink_track: Option<Track>,
}

impl Pads {
    fn has_track(&self, track: Track) -> bool {
        self.requested.iter().any(|r| r.track == track)
    }

    /// The request pads' inputs.
    fn slots(&self) -> Vec<Arc<PadSlot>> {
        self.requested.iter().map(|r| r.slot.clone()).collect()
    }
}

/// Index of a request pad's flushing flag in the session state: `audio` has [`AUDIO_PAD`],
/// track N of `video_%u`/`audio_%u` the two indexes after `2 * N - 1`.
fn flushing_index(track: Track) -> usize {
    match (track.id, track.kind) {
        (0, MediaKind::Video) => SINK_PAD,
        (0, MediaKind::Audio) => AUDIO_PAD,
        (id, MediaKind::Video) => 2 * usize::from(id),
        (id, MediaKind::Audio) => 2 * usize::from(id) + 1,
    }
}

/// The track a requested pad name stands for: `audio` audio track 0, `video_N`/`audio_N` track
/// N in 1..=255. None for any other name or a name of another template.
fn track_of_name(template: &str, name: &str) -> Option<Track> {
    if template == "audio" {
        return (name == "audio").then_some(Track::AUDIO);
    }
    let (prefix, make): (&str, fn(u8) -> Track) = match template {
        "video_%u" => ("video_", Track::video),
        "audio_%u" => ("audio_", Track::audio),
        _ => return None,
    };
    let digits = name.strip_prefix(prefix)?;
    // No sign, no leading zeros: one spelling per track.
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let id: u8 = digits.parse().ok()?;
    Some(make(id))
}

/// The element.
///
/// # Lock order
/// A lock may be taken while holding only locks listed before it:
/// 1. `lifecycle` (starting and ending a publish; never held across a parent state change,
///    which waits for the streaming threads);
/// 2. a pad's input ([`PadSlot`]; held by a streaming thread while a buffer is converted and
///    queued, which may block for long: nothing else may wait for it);
/// 3. a pad's segment;
/// 4. `pads`, then `settings`, `latency_checked`, `thread` (held briefly);
/// 5. the session state ([`Shared`]), innermost (its condition variable releases it while
///    waiting).
///
/// Two pads' inputs are never held together, nor two segments.
pub struct RtmpClientSink {
    lifecycle: Mutex<()>,
    settings: Mutex<Settings>,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// The `sink` pad: video track 0, or audio track 0 of an audio-only stream.
    sink: PadSlot,
    /// The request pads.
    pads: Mutex<Pads>,
    /// When the branches' latency was last queried.
    latency_checked: Mutex<Option<Instant>>,
    /// `ingest-rules` checks.
    ingest: Ingest,
    /// `video/x-flv` on the `sink` pad (rtmp2sink pipelines: `flvmux ! rtmpclientsink`).
    flv: FlvIn,
    /// The audio input of FLV on the `sink` pad (audio track 0; FLV refuses an `audio` pad,
    /// so its flushing flag is free).
    flv_audio: PadSlot,
}

impl Default for RtmpClientSink {
    fn default() -> Self {
        RtmpClientSink {
            lifecycle: Mutex::default(),
            settings: Mutex::default(),
            shared: Arc::default(),
            thread: Mutex::default(),
            sink: PadSlot::new(SINK_PAD),
            pads: Mutex::default(),
            latency_checked: Mutex::default(),
            ingest: Ingest::default(),
            flv: FlvIn::default(),
            flv_audio: PadSlot::new(AUDIO_PAD),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl RtmpClientSink {
    fn set_location(&self, location: Option<&str>) -> Result<(), glib::Error> {
        let state = self.obj().current_state();
        if state > gst::State::Ready {
            return Err(glib::Error::new(
                gst::URIError::BadState,
                "The location can only be changed in the NULL or READY state",
            ));
        }
        let mut settings = lock(&self.settings);
        let Some(location) = location.filter(|l| !l.is_empty()) else {
            // No location: no host, application or stream either (as rtmp2sink).
            settings.host = None;
            settings.application = None;
            settings.stream = None;
            settings.url_username = None;
            settings.url_password = None;
            return Ok(());
        };
        let url = RtmpUrl::parse(location)
            .map_err(|e| glib::Error::new(gst::URIError::BadUri, &e.to_string()))?;
        gst::debug!(
            CAT,
            imp = self,
            "location set to {}",
            redact_location(location)
        );
        settings.set_url(url);
        Ok(())
    }

    fn stop_commands(flags: StopCommandsFlags) -> StopCommands {
        StopCommands {
            fc_unpublish: flags.contains(StopCommandsFlags::FCUNPUBLISH),
            close_stream: flags.contains(StopCommandsFlags::CLOSESTREAM),
            delete_stream: flags.contains(StopCommandsFlags::DELETESTREAM),
        }
    }

    /// Runs `f` with what the pads' inputs work with (the element and the session state).
    fn with_ctx<R>(&self, f: impl FnOnce(Ctx<'_>) -> R) -> R {
        let obj = self.obj();
        f(Ctx {
            element: obj.upcast_ref(),
            shared: &self.shared,
            ingest: &self.ingest,
        })
    }

    fn stats(&self) -> gst::Structure {
        let g = self.shared.lock();
        let mut s = g.stats.clone();
        s.queue_depth_ms = u64::try_from(g.queue.depth_ms()).unwrap_or(0);
        s.queue_bytes = g.queue.bytes() as u64;
        s.late_frames = g.queue.late_frames();
        s.dropped_video = g.queue.dropped_kind(MediaKind::Video);
        s.dropped_audio = g.queue.dropped_kind(MediaKind::Audio);
        s.track_dropped = g.queue.dropped_per_track();
        s.queue_time_ms = u64::try_from(g.queue.queue_time_ms(Instant::now())).unwrap_or(0);
        drop(g);
        let slots = lock(&self.pads).slots();
        s.bad_buffers = std::iter::once(&self.sink)
            .chain(slots.iter().map(|s| &**s))
            .filter_map(|slot| slot.bad_total())
            .sum::<u64>()
            .max(s.bad_buffers);
        s.to_structure()
    }

    /// Caps on the `sink` pad: their kind decides its track (video 0, or audio 0 for an
    /// audio-only stream), decided together with `request_new_pad` (at most one pad carries
    /// audio).
    fn sink_caps(&self, caps: &gst::CapsRef) -> Result<(), gst::ErrorMessage> {
        if self.flv_caps(caps)? {
            return Ok(());
        }
        let format = parse_caps(caps)?;
        let track = match format.codec().kind() {
            MediaKind::Video => Track::VIDEO,
            MediaKind::Audio => Track::AUDIO,
        };
        {
            // Claim the track before building the input.
            let mut pads = lock(&self.pads);
            if track == Track::AUDIO && pads.has_track(Track::AUDIO) {
                return Err(gst::error_msg!(
                    gst::StreamError::Format,
                    ("The sink pad got audio caps while the audio request pad carries the audio; link video to the sink pad")
                ));
            }
            pads.sink_track = Some(track);
        }
        let r = self.with_ctx(|ctx| self.sink.set_caps(ctx, track, &format));
        if r.is_err() {
            lock(&self.pads).sink_track = self.sink.track();
        } else if track == Track::AUDIO {
            // A request pad made the queue expect video on `sink`: there is none.
            let mut g = self.shared.lock();
            g.queue.deactivate(Track::VIDEO);
            self.shared.notify(&g);
        }
        r
    }

    /// FLV caps on the `sink` pad (true): its tags feed the video and the audio input (see
    /// `flvin.rs`), so the `audio` pad cannot be used with it.
    fn flv_caps(&self, caps: &gst::CapsRef) -> Result<bool, gst::ErrorMessage> {
        let flv = caps.structure(0).is_some_and(|s| s.name() == "video/x-flv");
        if !flv {
            self.flv.deactivate();
            return Ok(false);
        }
        let mut pads = lock(&self.pads);
        if pads.has_track(Track::AUDIO) {
            return Err(gst::error_msg!(
                gst::StreamError::Format,
                ("The sink pad got FLV, which carries the audio, while the audio request pad exists; release it or link elementary streams")
            ));
        }
        pads.sink_track = Some(Track::VIDEO);
        drop(pads);
        if !self.flv.active() {
            self.flv.activate();
        }
        Ok(true)
    }

    /// Caps on a request pad carrying `track`.
    fn request_caps(
        &self,
        pad: &gst::Pad,
        slot: &PadSlot,
        track: Track,
        caps: &gst::CapsRef,
    ) -> Result<(), gst::ErrorMessage> {
        let format = parse_caps(caps)?;
        if format.codec().kind() != track.kind {
            return Err(gst::error_msg!(
                gst::StreamError::Format,
                (
                    "The {} pad got {} caps; link {} to it",
                    pad.name(),
                    format.codec().name(),
                    track.kind.name()
                )
            ));
        }
        self.with_ctx(|ctx| slot.set_caps(ctx, track, &format))
    }

    /// The track the sink pad carries (video unless its caps said audio).
    fn sink_track(&self) -> Track {
        lock(&self.pads).sink_track.unwrap_or(Track::VIDEO)
    }

    /// Sink EOS: wait for the audio pad's EOS (bounded by `timeout`), send everything, close
    /// cleanly; give up (with a warning) once nothing could be sent for `timeout`. Returns false
    /// when interrupted (flush/stop) or failed.
    fn drain_for_eos(&self) -> bool {
        let timeout = Duration::from_secs(lock(&self.settings).timeout.into());
        let sink_track = self.sink_track();
        {
            let mut g = self.shared.lock();
            g.queue.set_eos(sink_track);
            self.shared.notify(&g);
        }
        // The element's EOS waits for every other linked pad's (each track ends on its own).
        let others: Vec<(String, Track)> = lock(&self.pads)
            .requested
            .iter()
            .filter(|r| r.pad.is_linked() && r.track != sink_track)
            .map(|r| (r.pad.name().to_string(), r.track))
            .collect();
        let mut g = self.shared.lock();
        // Bounded by `timeout` without progress: the other tracks may still be sending.
        let mut progress = Progress::new(g.frames_out);
        while let Some((name, _)) = others.iter().find(|(_, t)| !g.queue.is_eos(*t)) {
            if g.is_flushing(self.sink.index()) || g.shutdown {
                return false;
            }
            let now = Instant::now();
            let deadline = progress.last(g.frames_out, now) + timeout;
            if now >= deadline {
                gst::warning!(
                    CAT,
                    imp = self,
                    "no EOS on the {name} pad and nothing sent for {} s, finishing without it",
                    timeout.as_secs()
                );
                break;
            }
            g = self
                .shared
                .wait(g, (deadline - now).min(session::WAIT_SLICE));
        }
        g.drain = true;
        self.shared.notify(&g);
        // Whatever the network does: give up once nothing left the queue for `timeout`.
        let mut progress = Progress::new(g.frames_out);
        loop {
            match g.phase {
                Phase::Drained => return true,
                Phase::Failed | Phase::Idle => return false,
                _ => {}
            }
            if g.is_flushing(self.sink.index()) || g.shutdown {
                return false;
            }
            let now = Instant::now();
            if now.saturating_duration_since(progress.last(g.frames_out, now)) >= timeout {
                let left = g.queue.len();
                let phase = g.phase;
                drop(g);
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::Write,
                    (
                        "Could not finish the stream: no progress for {} s ({} frames still queued); ending without them",
                        timeout.as_secs(),
                        left
                    ),
                    ["phase: {:?}", phase]
                );
                return true;
            }
            g = self.shared.wait(g, session::WAIT_SLICE);
        }
    }

    /// Asks both branches for their latency (at most once a second). Before the `sink` pad has
    /// prerolled, the pipeline's LATENCY event says 0 although a live encoder may hold its
    /// first frames for seconds (x264enc's lookahead); the interleaver must wait that long for
    /// the other track or those frames arrive late.
    fn refresh_latency(&self) {
        {
            let mut last = lock(&self.latency_checked);
            if last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
                return;
            }
            *last = Some(Instant::now());
        }
        let mut pads = vec![self.obj().static_pad("sink")];
        pads.extend(
            lock(&self.pads)
                .requested
                .iter()
                .map(|r| Some(r.pad.clone())),
        );
        let mut max = Duration::ZERO;
        let mut live = false;
        for pad in pads.into_iter().flatten() {
            let mut q = gst::query::Latency::new();
            if pad.peer_query(&mut q) {
                let (is_live, min, _) = q.result();
                if is_live {
                    live = true;
                    max = max.max(Duration::from_nanos(min.nseconds()));
                }
            }
        }
        let auto = lock(&self.settings).congestion_policy == CongestionPolicy::Auto;
        let mut g = self.shared.lock();
        if max > Duration::ZERO {
            g.queue.raise_latency(max);
        }
        if auto {
            let policy = if live { Policy::Drop } else { Policy::Block };
            if g.queue.policy() != policy {
                gst::info!(
                    CAT,
                    imp = self,
                    "congestion policy: {}",
                    if live {
                        "drop (live pipeline)"
                    } else {
                        "block (not live)"
                    }
                );
                g.queue.set_policy(policy);
            }
        }
    }

    fn request_chain(
        &self,
        pad: &gst::Pad,
        slot: &PadSlot,
        buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        self.refresh_latency();
        self.with_ctx(|ctx| slot.chain(ctx, &buffer))
            .unwrap_or_else(|| {
                gst::element_imp_error!(
                    self,
                    gst::CoreError::Negotiation,
                    ("Buffer before caps on the {} pad", pad.name())
                );
                Err(gst::FlowError::NotNegotiated)
            })
    }

    /// Events on a request pad carrying `track`.
    fn request_event(
        &self,
        pad: &gst::Pad,
        slot: &PadSlot,
        track: Track,
        event: gst::Event,
    ) -> bool {
        use gst::EventView;
        match event.view() {
            EventView::Caps(c) => match self.request_caps(pad, slot, track, c.caps()) {
                Ok(()) => true,
                Err(e) => {
                    self.post_error_message(e);
                    false
                }
            },
            EventView::Segment(s) => match s.segment().downcast_ref::<gst::ClockTime>() {
                Some(seg) => {
                    slot.set_segment(seg);
                    true
                }
                None => {
                    gst::element_imp_error!(
                        self,
                        gst::StreamError::Format,
                        ("The {} pad needs a TIME segment", pad.name())
                    );
                    false
                }
            },
            EventView::Tag(t) => {
                input::apply_tags(&self.shared, track, t.tag());
                true
            }
            EventView::Eos(_) => {
                gst::debug!(CAT, obj = pad, "EOS: {track} ends");
                // Frames held for DTS derivation go first.
                let flushed = self.with_ctx(|ctx| slot.eos(ctx)).is_ok();
                let mut g = self.shared.lock();
                g.queue.set_eos(track);
                self.shared.notify(&g);
                flushed
            }
            EventView::FlushStart(_) => {
                self.shared.set_flushing(slot.index(), true);
                true
            }
            EventView::FlushStop(_) => {
                self.republish_if_drained();
                {
                    let mut g = self.shared.lock();
                    g.queue.flush(track);
                    g.set_flushing(slot.index(), false);
                    self.shared.notify(&g);
                }
                slot.flush_stop();
                true
            }
            _ => {
                // A sink: nothing is forwarded downstream.
                true
            }
        }
    }
}

/// Reads fixed caps into a media format (the pad templates let only what it knows through).
fn parse_caps(caps: &gst::CapsRef) -> Result<MediaFormat, gst::ErrorMessage> {
    MediaFormat::from_caps(caps)
        .map_err(|e| gst::error_msg!(gst::StreamError::Format, ("Unsupported caps: {}", e)))
}

#[glib::object_subclass]
impl ObjectSubclass for RtmpClientSink {
    const NAME: &'static str = "GstRtmpClientSink";
    type Type = super::RtmpClientSink;
    type ParentType = gst_base::BaseSink;
    type Interfaces = (gst::URIHandler,);
}

impl ObjectImpl for RtmpClientSink {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("location")
                    .nick("Location")
                    .blurb("RTMP URL to publish to: rtmp[s]://[user:pass@]host[:port]/app/streamkey (the stream key is never logged). Sets scheme, host, port, application and stream; reads back as composed from them (without credentials), as rtmp2sink's")
                    .mutable_ready()
                    .build(),
                // The location's parts, as rtmp2sink has them.
                glib::ParamSpecEnum::builder_with_default("scheme", SchemeType::Rtmp)
                    .nick("Scheme")
                    .blurb("Scheme of the location: rtmp, or rtmps for TLS (the port stays as it is)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("host")
                    .nick("Host")
                    .blurb("Server host name or address of the location (no default: publishing needs it)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecInt::builder("port")
                    .nick("Port")
                    .blurb("Server port of the location (a location without port sets its scheme's default: 1935, or 443 for rtmps)")
                    .minimum(1)
                    .maximum(65535)
                    .default_value(i32::from(Scheme::Rtmp.default_port()))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("application")
                    .nick("Application")
                    .blurb("Application path of the location, e.g. live or app/instance (no default: publishing needs it)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("stream")
                    .nick("Stream")
                    .blurb("Stream name (stream key) of the location, with any ?query; never logged (no default: publishing needs it)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("publish-type", DEFAULT_PUBLISH_TYPE)
                    .nick("Publish type")
                    .blurb("Type argument of the publish command: live, or ask the server to record/append")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("timeout")
                    .nick("Timeout")
                    .blurb("Seconds allowed for connecting and for each protocol step; a server that acknowledges nothing written (or stops answering pings) for this long is considered dead; EOS and stopping never wait longer")
                    .minimum(1)
                    .maximum(3600)
                    .default_value(DEFAULT_TIMEOUT)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("chunk-size")
                    .nick("Chunk size")
                    .blurb("Outgoing RTMP chunk size in bytes (larger means less overhead)")
                    .minimum(MIN_CHUNK_SIZE)
                    .maximum(MAX_CHUNK_SIZE)
                    .default_value(DEFAULT_CHUNK_SIZE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("flash-version")
                    .nick("Flash version")
                    .blurb("flashVer sent in the connect command (some servers check it)")
                    .default_value(Some(DEFAULT_FLASH_VERSION))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("async-connect")
                    .nick("Async connect")
                    .blurb("Connect in the background when starting (true), or block the state change until publishing has started or failed (false)")
                    .default_value(DEFAULT_ASYNC_CONNECT)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecFlags::builder::<StopCommandsFlags>("stop-commands")
                    .default_value(DEFAULT_STOP_COMMANDS)
                    .nick("Stop commands")
                    .blurb("Commands sent to the server when the publish ends")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-interleave-time")
                    .nick("Max interleave time")
                    .blurb("Milliseconds to wait for a silent or missing track (in stream time and wall-clock time) before sending the other track without it")
                    .minimum(0)
                    .maximum(10_000)
                    .default_value(DEFAULT_MAX_INTERLEAVE_MS)
                    .mutable_ready()
                    .build(),
                // Reliability: reconnect, congestion, liveness.
                glib::ParamSpecInt::builder("reconnect-attempts")
                    .nick("Reconnect attempts")
                    .blurb("Reconnection attempts in a row after a connection that carried media was lost (-1: forever, 0: never); an ERROR is posted once they are spent")
                    .minimum(-1)
                    .default_value(DEFAULT_RECONNECT_ATTEMPTS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("reconnect-delay")
                    .nick("Reconnect delay")
                    .blurb("Milliseconds before the first reconnection attempt; doubled for each further one (up to reconnect-delay-max), with +-20% jitter")
                    .maximum(3_600_000)
                    .default_value(DEFAULT_RECONNECT_DELAY_MS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("reconnect-delay-max")
                    .nick("Maximum reconnect delay")
                    .blurb("Longest delay between two reconnection attempts, in milliseconds")
                    .maximum(3_600_000)
                    .default_value(DEFAULT_RECONNECT_DELAY_MAX_MS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-queue-time")
                    .nick("Maximum queue time")
                    .blurb("Milliseconds of media that may wait to be sent, also while reconnecting. block: upstream waits at this bound; drop: disposable frames go above half of it, the rest of GOPs above it, whole GOPs and audio above twice it")
                    .minimum(100)
                    .maximum(600_000)
                    .default_value(DEFAULT_MAX_QUEUE_TIME_MS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("congestion-policy", DEFAULT_CONGESTION_POLICY)
                    .nick("Congestion policy")
                    .blurb("What happens when the network is slower than the stream (see max-queue-time): block upstream (files: nothing is lost), or drop frames no other frame refers to (live: latency stays bounded); auto: drop when the pipeline is live, block otherwise")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("ping-interval")
                    .nick("Ping interval")
                    .blurb("Milliseconds between PingRequests measuring the RTT and probing the server (a server that answered pings and stops for timeout is considered dead); 0: no pings")
                    .maximum(3_600_000)
                    .default_value(DEFAULT_PING_INTERVAL_MS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("tls-ca-file")
                    .nick("TLS CA file")
                    .blurb("PEM file with extra certificate authorities trusted for rtmps:// (the system store is trusted too)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecFlags::builder::<gio::TlsCertificateFlags>("tls-validation-flags")
                    .nick("TLS validation flags")
                    .blurb("Certificate checks enforced for rtmps:// (as rtmp2sink): unknown-ca (1), bad-identity (2), not-activated (4), expired (8), revoked (16), generic-error (64); insecure (32) is not checked (default: validate-all)")
                    .default_value(gio::TlsCertificateFlags::VALIDATE_ALL)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("username")
                    .nick("User name")
                    .blurb("User name for servers that authenticate publishers (Adobe/Limelight authmod); overrides rtmp://user:pass@host in the location")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("password")
                    .nick("Password")
                    .blurb("Password for authenticating servers (write-only; never logged or posted, shown as ****)")
                    .write_only()
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("secure-token")
                    .nick("Secure token")
                    .blurb("Key that answers a server's secureToken challenge (as rtmp2sink and librtmp do); write-only, never logged")
                    .write_only()
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("authmod", AuthModType::Auto)
                    .nick("Authentication mode")
                    .blurb("Challenge-response authentication when the server rejects connect asking for it: auto follows the server, adobe/llnw insist on one, none never sends credentials")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("extra-connect-args")
                    .nick("Extra connect arguments")
                    .blurb("AMF values appended to connect, in FFmpeg's rtmp_conn syntax: space-separated B:1, N:2.5, S:text, Z:, and objects O:1 NS:name:value O:0")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("peak-kbps")
                    .nick("Peak bitrate")
                    .blurb("Paces what is sent to this many kbit/s (as rtmp2sink), with bursts of at most 100 ms of it; a stream faster than that waits in the queue, where max-queue-time and congestion-policy apply. 0: no pacing. Changeable while playing")
                    .maximum(MAX_PEAK_KBPS)
                    .default_value(0)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("ingest-rules", IngestRules::None)
                    .nick("Ingest rules")
                    .blurb("Posts rtmp-ingest-warning element messages (rule, check, limit, measured, description) when the stream breaks the service's documented ingest rules: keyframe interval (YouTube 4 s, Twitch 2 s, Facebook 4 s), codec (Twitch H.264, Facebook H.264 + AAC), audio rate (44.1/48 kHz), video bitrate (documented maximum). Each once, again only after it cleared; the stream is never changed")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb("Publishing statistics (rtmp-stats: bytes-sent, video/audio messages and frames, queue-depth-ms, queue-time-ms, rtt-ms, bitrate, chunk and window sizes, dropped-video/-audio, reconnects, send-backlog-bytes)")
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        match pspec.name() {
            "location" => {
                let loc = value
                    .get::<Option<String>>()
                    .expect("type checked upstream");
                if let Err(e) = self.set_location(loc.as_deref()) {
                    gst::error!(
                        CAT,
                        imp = self,
                        "Could not set location {}: {}",
                        loc.as_deref().map(redact_location).unwrap_or_default(),
                        e
                    );
                }
            }
            "scheme" => {
                lock(&self.settings).scheme = value
                    .get::<SchemeType>()
                    .expect("type checked upstream")
                    .into()
            }
            "host" | "application" | "stream" => {
                let text = value
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .filter(|s| !s.is_empty());
                let mut s = lock(&self.settings);
                match pspec.name() {
                    "host" => s.host = text,
                    "application" => s.application = text,
                    _ => s.stream = text,
                }
            }
            "port" => lock(&self.settings).port = value.get().expect("type checked upstream"),
            "peak-kbps" => lock(&self.settings)
                .peak_kbps
                .set(value.get().expect("type checked upstream")),
            "ingest-rules" => self
                .ingest
                .set_rules(value.get().expect("type checked upstream")),
            "publish-type" => {
                lock(&self.settings).publish_type = value.get().expect("type checked upstream")
            }
            "timeout" => lock(&self.settings).timeout = value.get().expect("type checked upstream"),
            "chunk-size" => {
                lock(&self.settings).chunk_size = value.get().expect("type checked upstream")
            }
            "flash-version" => {
                lock(&self.settings).flash_version = value
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .unwrap_or_else(|| DEFAULT_FLASH_VERSION.to_string())
            }
            "async-connect" => {
                lock(&self.settings).async_connect = value.get().expect("type checked upstream")
            }
            "stop-commands" => {
                lock(&self.settings).stop_commands = value.get().expect("type checked upstream")
            }
            "max-interleave-time" => {
                lock(&self.settings).max_interleave_ms = value.get().expect("type checked upstream")
            }
            "reconnect-attempts" => {
                lock(&self.settings).reconnect_attempts =
                    value.get().expect("type checked upstream")
            }
            "reconnect-delay" => {
                lock(&self.settings).reconnect_delay_ms =
                    value.get().expect("type checked upstream")
            }
            "reconnect-delay-max" => {
                lock(&self.settings).reconnect_delay_max_ms =
                    value.get().expect("type checked upstream")
            }
            "max-queue-time" => {
                lock(&self.settings).max_queue_time_ms = value.get().expect("type checked upstream")
            }
            "congestion-policy" => {
                lock(&self.settings).congestion_policy = value.get().expect("type checked upstream")
            }
            "ping-interval" => {
                lock(&self.settings).ping_interval_ms = value.get().expect("type checked upstream")
            }
            "tls-ca-file" => {
                lock(&self.settings).tls_ca_file = value
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .filter(|s| !s.is_empty())
            }
            "tls-validation-flags" => {
                lock(&self.settings).tls_validation_flags = value
                    .get::<gio::TlsCertificateFlags>()
                    .expect("type checked upstream")
                    .bits()
            }
            "username" => {
                lock(&self.settings).username = value
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .filter(|s| !s.is_empty())
            }
            "password" => {
                lock(&self.settings).password = value
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .filter(|s| !s.is_empty())
            }
            "secure-token" => {
                lock(&self.settings).secure_token = value
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .filter(|s| !s.is_empty())
            }
            "authmod" => lock(&self.settings).authmod = value.get().expect("type checked upstream"),
            "extra-connect-args" => {
                let text = value
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .filter(|s| !s.trim().is_empty());
                if let Some(Err(e)) = text.as_deref().map(parse_connect_args) {
                    gst::warning!(CAT, imp = self, "extra-connect-args ignored: {e}");
                    return;
                }
                lock(&self.settings).extra_connect_args = text;
            }
            other => unreachable!("unknown property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = lock(&self.settings);
        match pspec.name() {
            "location" => s.location().to_value(),
            "scheme" => SchemeType::from(s.scheme).to_value(),
            "host" => s.host.to_value(),
            "port" => s.port.to_value(),
            "application" => s.application.to_value(),
            "stream" => s.stream.to_value(),
            "peak-kbps" => s.peak_kbps.get().to_value(),
            "ingest-rules" => {
                drop(s);
                self.ingest.rules().to_value()
            }
            "publish-type" => s.publish_type.to_value(),
            "timeout" => s.timeout.to_value(),
            "chunk-size" => s.chunk_size.to_value(),
            "flash-version" => s.flash_version.to_value(),
            "async-connect" => s.async_connect.to_value(),
            "stop-commands" => s.stop_commands.to_value(),
            "max-interleave-time" => s.max_interleave_ms.to_value(),
            "reconnect-attempts" => s.reconnect_attempts.to_value(),
            "reconnect-delay" => s.reconnect_delay_ms.to_value(),
            "reconnect-delay-max" => s.reconnect_delay_max_ms.to_value(),
            "max-queue-time" => s.max_queue_time_ms.to_value(),
            "congestion-policy" => s.congestion_policy.to_value(),
            "ping-interval" => s.ping_interval_ms.to_value(),
            "tls-ca-file" => s.tls_ca_file.to_value(),
            "tls-validation-flags" => {
                gio::TlsCertificateFlags::from_bits_truncate(s.tls_validation_flags).to_value()
            }
            "username" => s.username.to_value(),
            "password" | "secure-token" => None::<String>.to_value(),
            "authmod" => s.authmod.to_value(),
            "extra-connect-args" => s.extra_connect_args.to_value(),
            "stats" => {
                drop(s);
                self.stats().to_value()
            }
            other => unreachable!("unknown property {other}"),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        // Keep BaseSink's sync=true explicit: video is paced by the clock.
        self.obj().set_sync(true);
    }
}

impl GstObjectImpl for RtmpClientSink {}

impl ElementImpl for RtmpClientSink {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "RTMP Client Sink",
                "Sink/Network",
                "Publishes video (H.264, HEVC, AV1, VP9) and audio (AAC, Opus, FLAC, AC-3, E-AC-3, MP3) to an RTMP server, Enhanced RTMP where the codec needs it (no flvmux needed; request the \"audio\" pad for audio next to video, video_N/audio_N for further tracks with id N)",
                "gst-plugin-rtmpclient developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            // `sink` is video track 0, or audio track 0 of an audio-only stream.
            let mut sink_caps = video_caps();
            sink_caps.merge(audio_caps());
            // What flvmux makes, for rtmp2sink pipelines (see `flvin.rs`).
            sink_caps.merge(gst::Caps::new_empty_simple("video/x-flv"));
            let audio_caps = audio_caps();
            vec![
                gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &sink_caps,
                )
                .expect("valid sink template"),
                gst::PadTemplate::new(
                    "audio",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Request,
                    &audio_caps,
                )
                .expect("valid audio template"),
                // Further tracks (Enhanced RTMP multitrack): %u is the track id, 1..=255.
                gst::PadTemplate::new(
                    "video_%u",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Request,
                    &video_caps(),
                )
                .expect("valid video_%u template"),
                gst::PadTemplate::new(
                    "audio_%u",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Request,
                    &audio_caps,
                )
                .expect("valid audio_%u template"),
            ]
        });
        TEMPLATES.as_ref()
    }

    fn request_new_pad(
        &self,
        templ: &gst::PadTemplate,
        name: Option<&str>,
        _caps: Option<&gst::Caps>,
    ) -> Option<gst::Pad> {
        let template = templ.name_template().to_string();
        // Only `pads`: the sink pad's input may be held for long by a render blocked in the
        // queue.
        let mut pads = lock(&self.pads);
        let track = match (template.as_str(), name) {
            ("audio", None) => Some(Track::AUDIO),
            (t @ ("video_%u" | "audio_%u"), None) => {
                let make = if t == "video_%u" {
                    Track::video
                } else {
                    Track::audio
                };
                let free = (1..=MAX_TRACK_ID)
                    .map(make)
                    .find(|track| !pads.has_track(*track));
                if free.is_none() {
                    gst::warning!(CAT, imp = self, "all {MAX_TRACK_ID} {t} pads exist");
                    return None;
                }
                free
            }
            (t, Some(n)) => track_of_name(t, n),
            _ => None,
        };
        let Some(track) = track else {
            gst::warning!(
                CAT,
                imp = self,
                "cannot request pad {:?} from template {template}: request \"audio\", or video_N / audio_N with N the track id (1..={MAX_TRACK_ID})",
                name.unwrap_or("")
            );
            return None;
        };
        if pads.has_track(track) {
            gst::warning!(CAT, imp = self, "the pad of {track} exists already");
            return None;
        }
        if track == Track::AUDIO && pads.sink_track == Some(Track::AUDIO) {
            gst::warning!(
                CAT,
                imp = self,
                "the sink pad carries audio already; an audio pad needs video on the sink pad"
            );
            return None;
        }
        let pad_name = match track.id {
            0 => "audio".to_string(),
            id => format!("{}_{id}", track.kind.name()),
        };
        let slot = Arc::new(PadSlot::new(flushing_index(track)));
        let chain_slot = slot.clone();
        let event_slot = slot.clone();
        let pad = gst::Pad::builder_from_template(templ)
            .name(pad_name.as_str())
            .chain_function(move |pad, parent, buffer| {
                RtmpClientSink::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |imp| imp.request_chain(pad, &chain_slot, buffer),
                )
            })
            .event_function(move |pad, parent, event| {
                RtmpClientSink::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.request_event(pad, &event_slot, track, event),
                )
            })
            .build();
        let sink_track = pads.sink_track;
        pads.requested.push(RequestPad {
            pad: pad.clone(),
            track,
            slot: slot.clone(),
        });
        drop(pads);
        {
            let mut g = self.shared.lock();
            g.set_flushing(slot.index(), false);
            // Until its caps say otherwise the sink pad is video: wait for it too.
            if sink_track.is_none_or(|t| t == Track::VIDEO) {
                g.queue.activate(Track::VIDEO);
            }
            g.queue.activate(track);
            self.shared.notify(&g);
        }
        gst::debug!(CAT, imp = self, "pad {pad_name} carries {track}");
        if let Err(e) = self.obj().add_pad(&pad) {
            gst::error!(CAT, imp = self, "could not add the {pad_name} pad: {e}");
            lock(&self.pads).requested.retain(|r| r.pad != pad);
            let mut g = self.shared.lock();
            g.queue.deactivate(track);
            self.shared.notify(&g);
            return None;
        }
        Some(pad)
    }

    /// A released pad's track ends: its queued frames still leave, then the session thread
    /// sends its SequenceEnd, and onMetaData no longer lists it.
    fn release_pad(&self, pad: &gst::Pad) {
        let released = {
            let mut pads = lock(&self.pads);
            let Some(i) = pads.requested.iter().position(|r| &r.pad == pad) else {
                return;
            };
            pads.requested.remove(i)
        };
        let RequestPad { track, slot, .. } = released;
        // Unblock the pad's streaming thread before deactivating the pad (which waits for it).
        self.shared.set_flushing(slot.index(), true);
        {
            let mut g = self.shared.lock();
            g.queue.deactivate(track);
            self.shared.notify(&g);
        }
        let _ = pad.set_active(false);
        slot.clear();
        if track.id > 0 {
            self.shared.update_meta(|m| m.remove_track(track));
        }
        gst::info!(CAT, imp = self, "pad {} released: {track} ends", pad.name());
        if let Err(e) = self.obj().remove_pad(pad) {
            gst::warning!(
                CAT,
                imp = self,
                "could not remove the {} pad: {e}",
                pad.name()
            );
        }
    }

    fn send_event(&self, event: gst::Event) -> bool {
        if let gst::EventView::Latency(l) = event.view() {
            let latency = Duration::from_nanos(l.latency().nseconds());
            gst::debug!(CAT, imp = self, "pipeline latency {latency:?}");
            let mut g = self.shared.lock();
            g.queue.set_latency(latency);
            self.shared.notify(&g);
        }
        self.parent_send_event(event)
    }

    /// A publish runs from READY→PAUSED to PAUSED→READY: each one uses the properties as they
    /// are when it starts (they may be changed in READY), and going to READY ends it cleanly.
    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        match transition {
            gst::StateChange::ReadyToPaused => {
                // Before the parent activates the pads: buffers may follow right away.
                let started = {
                    let _l = lock(&self.lifecycle);
                    self.begin_publish(true)
                };
                if let Err(e) = started {
                    self.post_error_message(e);
                    return Err(gst::StateChangeError);
                }
            }
            gst::StateChange::PausedToReady => {
                // The request pads are deactivated by the parent, which waits for their
                // streaming threads: release them from the queue first.
                for slot in lock(&self.pads).slots() {
                    self.shared.set_flushing(slot.index(), true);
                }
            }
            _ => {}
        }
        let result = self.parent_change_state(transition);
        let ended = match transition {
            gst::StateChange::PausedToReady => true,
            gst::StateChange::ReadyToPaused => result.is_err(),
            _ => false,
        };
        if ended {
            // The streaming threads are stopped (or never started): no input survives.
            let _l = lock(&self.lifecycle);
            self.end_publish(true);
        }
        result
    }
}

impl RtmpClientSink {
    /// A flushing seek after EOS plays the stream again: it becomes a new publish (the last one
    /// ended with the EOS, or is ending: a flush interrupts the drain), with the inputs kept (no
    /// new caps come after a flush).
    fn republish_if_drained(&self) {
        let _l = lock(&self.lifecycle);
        {
            let g = self.shared.lock();
            if g.phase != Phase::Drained && !g.drain {
                return;
            }
        }
        gst::info!(CAT, imp = self, "flushed after EOS: publishing again");
        self.end_publish(false);
        // Never blocks a flush: async-connect=false applies to state changes only.
        if let Err(e) = self.begin_publish(false) {
            self.post_error_message(e);
        }
    }

    /// Starts a publish with the current properties: the session thread connects (and, with
    /// `async-connect=false` on a state change, this waits until publishing or failed).
    /// `state_change`: called from READY→PAUSED (the pads are just being activated).
    fn begin_publish(&self, state_change: bool) -> Result<(), gst::ErrorMessage> {
        let settings = lock(&self.settings).clone();
        let missing = settings.missing_parts();
        if missing.len() == 3 {
            return Err(gst::error_msg!(
                gst::ResourceError::Settings,
                ("No location set: set location=rtmp://host/app/streamkey")
            ));
        }
        let Some(url) = settings.url() else {
            return Err(gst::error_msg!(
                gst::ResourceError::Settings,
                (
                    "Incomplete location: {} not set (set location=rtmp://host/app/streamkey, or host, application and stream)",
                    missing.join(", ")
                )
            ));
        };
        // Parts set one by one are checked as a whole location would be.
        if let Some(location) = settings.location() {
            RtmpUrl::parse(&location).map_err(|e| {
                gst::error_msg!(
                    gst::ResourceError::Settings,
                    ("{}", capitalize(&e.to_string()))
                )
            })?;
        }
        self.ingest.restart();
        let timeout = Duration::from_secs(settings.timeout.into());
        let cfg = QueueConfig {
            max_interleave: Duration::from_millis(settings.max_interleave_ms.into()),
            max_time_ms: settings.max_queue_time_ms.into(),
            // `auto` starts blocking; the first latency query says whether the pipeline is live.
            policy: match settings.congestion_policy {
                CongestionPolicy::Drop => Policy::Drop,
                CongestionPolicy::Block | CongestionPolicy::Auto => Policy::Block,
            },
            ..QueueConfig::default()
        };
        *lock(&self.latency_checked) = None;
        self.shared.reset(cfg, state_change);
        let (requested, sink_track) = {
            let pads = lock(&self.pads);
            let tracks: Vec<Track> = pads.requested.iter().map(|r| r.track).collect();
            (tracks, pads.sink_track)
        };
        {
            // The tracks whose pads exist (a republish gets no new caps to activate them); with
            // request pads the sink pad is video unless its caps said audio.
            let mut g = self.shared.lock();
            match sink_track {
                Some(t) => g.queue.activate(t),
                None if !requested.is_empty() => g.queue.activate(Track::VIDEO),
                None => {}
            }
            for t in requested {
                g.queue.activate(t);
            }
        }
        let ss = SessionSettings {
            url: url.clone(),
            publish_type: settings.publish_type.as_str().to_string(),
            flash_version: settings.flash_version.clone(),
            chunk_size: settings.chunk_size,
            timeout,
            reconnect_attempts: settings.reconnect_attempts,
            reconnect_delay: Duration::from_millis(settings.reconnect_delay_ms.into()),
            reconnect_delay_max: Duration::from_millis(settings.reconnect_delay_max_ms.into()),
            max_queue_time: Duration::from_millis(settings.max_queue_time_ms.into()),
            ping_interval: (settings.ping_interval_ms > 0)
                .then(|| Duration::from_millis(settings.ping_interval_ms.into())),
            stop_commands: Self::stop_commands(settings.stop_commands),
            tls: TlsOptions {
                ca_file: settings.tls_ca_file.as_ref().map(Into::into),
                checks: settings.tls_validation_flags & tls::CHECK_ALL,
                ..TlsOptions::default()
            },
            authmod: settings.authmod.into(),
            username: settings.username.clone(),
            password: settings.password.clone(),
            secure_token: settings.secure_token.clone(),
            pacer: Pacer::new(settings.peak_kbps.clone()),
            extra_connect_args: match settings.extra_connect_args.as_deref() {
                Some(t) => parse_connect_args(t).map_err(|e| {
                    gst::error_msg!(
                        gst::ResourceError::Settings,
                        ("Invalid extra-connect-args: {}", e)
                    )
                })?,
                None => Vec::new(),
            },
        };
        if settings.tls_validation_flags & tls::CHECK_ALL != tls::CHECK_ALL
            && url.scheme == Scheme::Rtmps
        {
            gst::warning!(
                CAT,
                imp = self,
                "TLS certificate checks relaxed (tls-validation-flags={:#x} instead of {:#x}): \
                 the connection to {} can be intercepted",
                settings.tls_validation_flags,
                gio::TlsCertificateFlags::VALIDATE_ALL.bits(),
                url.authority()
            );
        }
        gst::info!(
            CAT,
            imp = self,
            "starting: {} ({} connect)",
            url.redacted(),
            if settings.async_connect {
                "async"
            } else {
                "sync"
            }
        );
        let wait = state_change && !settings.async_connect;
        if wait {
            self.shared.lock().start_waiting = true;
        }
        let handle =
            session::spawn(self.obj().upcast_ref(), self.shared.clone(), ss).map_err(|e| {
                gst::error_msg!(
                    gst::ResourceError::OpenWrite,
                    ("Could not start the session thread: {}", e)
                )
            })?;
        *lock(&self.thread) = Some(handle);
        if !wait {
            return Ok(());
        }
        // async-connect=false: block until publishing or failed. The session thread bounds
        // every step by `timeout`; the extra bound here only guards against a bug.
        let deadline = Instant::now() + timeout * 5 + Duration::from_secs(1);
        let mut g = self.shared.lock();
        let result = loop {
            match g.phase {
                Phase::Publishing | Phase::Drained => break Ok(()),
                Phase::Failed => {
                    break Err(g.start_error.take().unwrap_or_else(|| {
                        gst::error_msg!(gst::ResourceError::OpenWrite, ("Could not publish"))
                    }));
                }
                _ => {}
            }
            if Instant::now() >= deadline {
                break Err(gst::error_msg!(
                    gst::ResourceError::OpenWrite,
                    ("Timed out waiting for the publish to start")
                ));
            }
            g = self.shared.wait(g, session::WAIT_SLICE);
        };
        g.start_waiting = false;
        drop(g);
        if result.is_err() {
            self.end_publish(true);
        }
        result
    }

    /// Ends the publish: the session thread sends the stop commands, closes the connection
    /// (bounded by a short linger) and exits. `clear_inputs`: the pads are deactivated (new
    /// caps will come); otherwise the inputs stay for the next publish.
    fn end_publish(&self, clear_inputs: bool) {
        {
            let mut g = self.shared.lock();
            g.shutdown = true;
            self.shared.notify(&g);
        }
        let handle = lock(&self.thread).take();
        if let Some(h) = handle {
            if h.join().is_err() {
                gst::error!(CAT, imp = self, "session thread panicked");
            }
            gst::info!(CAT, imp = self, "publish ended");
        }
        {
            let mut g = self.shared.lock();
            g.phase = Phase::Idle;
        }
        if clear_inputs {
            self.sink.clear();
            // Not under `pads`: a pad's input comes before it in the lock order.
            let slots = lock(&self.pads).slots();
            for slot in slots {
                slot.clear();
            }
            self.flv.deactivate();
            self.flv_audio.clear();
            lock(&self.pads).sink_track = None;
        }
    }
}

impl BaseSinkImpl for RtmpClientSink {
    /// Nothing to do: a publish starts at READY→PAUSED (see `change_state`), so properties set
    /// in READY apply.
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        let _l = lock(&self.lifecycle);
        self.end_publish(true);
        Ok(())
    }

    fn unlock(&self) -> Result<(), gst::ErrorMessage> {
        self.shared.set_flushing(self.sink.index(), true);
        if self.flv.active() {
            // FLV audio is queued from this pad's thread too.
            self.shared.set_flushing(self.flv_audio.index(), true);
        }
        Ok(())
    }

    fn unlock_stop(&self) -> Result<(), gst::ErrorMessage> {
        self.shared.set_flushing(self.sink.index(), false);
        if self.flv.active() {
            self.shared.set_flushing(self.flv_audio.index(), false);
        }
        Ok(())
    }

    fn set_caps(&self, caps: &gst::Caps) -> Result<(), gst::LoggableError> {
        gst::debug!(CAT, imp = self, "sink caps {caps}");
        match self.sink_caps(caps) {
            Ok(()) => Ok(()),
            Err(e) => {
                let text = format!("{e:?}");
                self.post_error_message(e);
                Err(gst::loggable_error!(CAT, "{}", text))
            }
        }
    }

    fn event(&self, event: gst::Event) -> bool {
        use gst::EventView;
        match event.view() {
            EventView::Segment(s) => {
                // FLV tags carry their own times from 0 (flvmux's segment is in bytes).
                if let Some(seg) = s.segment().downcast_ref::<gst::ClockTime>()
                    && !self.flv.active()
                {
                    self.sink.set_segment(seg);
                }
            }
            EventView::Tag(t) => {
                input::apply_tags(&self.shared, self.sink_track(), t.tag());
            }
            EventView::FlushStop(_) => {
                self.republish_if_drained();
                let track = self.sink_track();
                {
                    let mut g = self.shared.lock();
                    g.queue.flush(track);
                    if self.flv.active() {
                        g.queue.flush(Track::AUDIO);
                    }
                    self.shared.notify(&g);
                }
                self.sink.flush_stop();
                if self.flv.active() {
                    self.flv_audio.flush_stop();
                    self.flv.flush();
                }
            }
            EventView::Eos(_) => {
                if self.with_ctx(|ctx| self.sink.eos(ctx)).is_err() {
                    return false;
                }
                if self.flv.active() {
                    // The FLV stream's audio ends with it.
                    let mut g = self.shared.lock();
                    g.queue.set_eos(Track::AUDIO);
                    self.shared.notify(&g);
                }
                if !self.drain_for_eos() {
                    gst::debug!(CAT, imp = self, "EOS not forwarded: interrupted or failed");
                    return false;
                }
                gst::info!(CAT, imp = self, "everything sent, posting EOS");
            }
            _ => {}
        }
        self.parent_event(event)
    }

    fn render(&self, buffer: &gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        self.refresh_latency();
        if self.flv.active() {
            return self.with_ctx(|ctx| self.flv.render(ctx, &self.sink, &self.flv_audio, buffer));
        }
        self.with_ctx(|ctx| self.sink.chain(ctx, buffer))
            .unwrap_or_else(|| {
                gst::element_imp_error!(self, gst::CoreError::Negotiation, ("Buffer before caps"));
                Err(gst::FlowError::NotNegotiated)
            })
    }
}

impl URIHandlerImpl for RtmpClientSink {
    const URI_TYPE: gst::URIType = gst::URIType::Sink;

    fn protocols() -> &'static [&'static str] {
        &["rtmp", "rtmps"]
    }

    fn uri(&self) -> Option<String> {
        lock(&self.settings).location()
    }

    fn set_uri(&self, uri: &str) -> Result<(), glib::Error> {
        self.set_location(Some(uri))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_pad_names_map_to_track_ids_one_spelling_each() {
        assert_eq!(track_of_name("audio", "audio"), Some(Track::AUDIO));
        assert_eq!(track_of_name("video_%u", "video_1"), Some(Track::video(1)));
        assert_eq!(
            track_of_name("audio_%u", "audio_255"),
            Some(Track::audio(255))
        );
        for (t, n) in [
            ("video_%u", "video_0"),
            ("video_%u", "video_256"),
            ("video_%u", "video_01"),
            ("video_%u", "video_+1"),
            ("video_%u", "video_"),
            ("video_%u", "audio_1"),
            ("audio_%u", "audio_x"),
            ("audio", "audio_1"),
            ("sink", "sink"),
        ] {
            assert_eq!(track_of_name(t, n), None, "{t} {n}");
        }
        // Every track has its own flushing flag, apart from the sink pad's.
        let mut seen = std::collections::HashSet::new();
        for id in 0..=MAX_TRACK_ID {
            for t in [Track::video(id), Track::audio(id)] {
                assert!(seen.insert(flushing_index(t)), "{t}");
            }
        }
        assert_eq!(flushing_index(Track::AUDIO), AUDIO_PAD);
        assert_eq!(flushing_index(Track::VIDEO), SINK_PAD);
    }
}
