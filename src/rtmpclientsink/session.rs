//! The session thread: one per publish, spawned at READY→PAUSED (or when a flush after EOS
//! starts the next publish) and joined at PAUSED→READY (see `imp.rs`). It owns the connection,
//! drives the sans-IO [`crate::rtmp::session::Session`], sends the frames the streaming threads
//! queue, answers the server (the core produces pongs/acks; this thread flushes them), measures
//! RTT, watches the peer and turns everything the server says into bus messages. Each
//! connection's reader thread ends with the connection.
//!
//! All waiting happens on one condition variable ([`Shared::cond`]) guarding [`Inner`]: frames
//! from the streaming threads, raw bytes from the reader threads, finished connection attempts
//! and stop/flush/drain requests all wake the same wait, which never sleeps longer than
//! [`IO_SLICE`]. It is only signalled when someone waits ([`Shared::notify`]): a streaming
//! thread that queues a frame while the session thread is busy sending costs no system call.
//!
//! # Negotiation
//! `connect` advertises what the publish will send ([`Wanted`], rules in [`crate::rtmp::caps`]):
//! `fourCcList`, `videoFourCcInfoMap`/`audioFourCcInfoMap` and capsEx (Reconnect, Multitrack
//! when a track >= 1 exists, ModEx and TimestampNanoOffset). A track is known when its pad's
//! caps built its input ([`Inner::set_codec`]); `connect` may come before any caps, so:
//! * an asynchronous start waits for the caps of the linked pads before its first `connect`,
//!   at most [`CAPS_WAIT`] (and half the `timeout`); a synchronous start cannot wait (it blocks
//!   the state change, so no caps flow before `connect`);
//! * a linked pad without caps counts with the codec its peer's caps allow within the pad's
//!   template, if that is one codec (`x264enc ! rtmpclientsink async-connect=false` advertises
//!   H.264); MP3 counts as legacy until its first frame tells its form;
//! * the core judges the server's answer against that ([`caps::negotiate`]) before
//!   `createStream`: a refusal ends the publish with an ERROR and the server sees no publish;
//!   the answer and the judgement stay with the connection (`Connection::negotiated`);
//! * a track whose codec (or wire form) was not judged at `connect` is judged against the
//!   server's kept answer before its first packet (its configuration) goes to that connection:
//!   what the server excludes is refused there, before any of that track's media, with the same
//!   ERROR; what it is silent about is sent;
//! * something sent unconfirmed (a server that answers no capabilities, as FFmpeg, nginx-rtmp,
//!   SRS and MediaMTX do) posts one INFO ([`Negotiated::info`]); a reconnect repeats it only if
//!   its text changes. Every (re)connection advertises and judges every known track again.
//!
//! At EOS every track sent on the connection ends with its SequenceEnd before the stop
//! commands (legacy H.264: the AVC end of sequence FFmpeg writes; legacy AAC and MP3 have none).
//!
//! # Staying live
//! * **Reconnect.** When a connection that carried media fails with a transient error (reset,
//!   EOF, write error, dead peer, a server answering the new publish with
//!   `NetStream.Publish.BadName` because it still holds the old one), the thread reconnects with
//!   exponential backoff and jitter (`reconnect-delay` × 2^(n−1), at most `reconnect-delay-max`,
//!   ±20 %), at most `reconnect-attempts` times in a row (−1: forever). The queue, the timeline,
//!   the metadata and every track's configuration survive; [`Interleaver::resync`] makes the
//!   new connection start at a video keyframe (every video track resumes at its own keyframe,
//!   audio at the keyframe of the primary video track, older audio is dropped), preceded by
//!   onMetaData and the sequence headers of every track. Timestamps continue the same
//!   timeline. Errors retrying cannot fix (bad URL, authentication, TLS certificates, publish
//!   refused for another reason than BadName, protocol violations), a first connection that
//!   never carried media, and a spent budget end with an ERROR.
//! * **Enhanced RTMP reconnect request.** `capsEx` Reconnect is advertised in `connect`. On
//!   `NetConnection.Connect.ReconnectRequest` the thread keeps publishing to the current server
//!   while it connects and publishes to the target (the request's `tcUrl` resolved against ours,
//!   plus our stream key) on a helper thread; at the next keyframe of the primary video track
//!   ([`Interleaver::primary_video`]; any frame for audio-only streams) it switches: metadata
//!   and every track's sequence headers first on the new connection,
//!   then the keyframe, while the old connection gets its stop commands, is half-closed and
//!   lingers until the server closes it. No frame is lost or sent twice. A request that would
//!   move an `rtmps` publish to `rtmp` is refused (the key would travel in clear), and a target
//!   that fails (one that never answers does after `timeout`) leaves the publish on the current
//!   server; both post a WARNING.
//! * **Dead peers.** A write that makes no progress, or bytes the server's TCP stack does not
//!   acknowledge (`SIOCOUTQ`), for `timeout` end the connection; so does a PingRequest the server
//!   did not answer (nor sent anything else) within `timeout` while our bytes are not being
//!   acknowledged either (for `timeout / 2`), once the server has answered pings on this
//!   connection.
//! * **Congestion.** Media is not written while the socket holds more than a quarter of
//!   `max-queue-time` (100–500 ms; drop policy) or `max-queue-time` (block policy) of media the
//!   server has not acknowledged: the backlog stays in the queue, where the policy of `queue.rs`
//!   applies (and the queue bound means something), instead of in kernel buffers.

use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;

use crate::codec::{Codec, MediaKind, flv};
use crate::rtmp::amf0::Amf0Value;
use crate::rtmp::auth::AuthMod;
use crate::rtmp::caps::{self, ConnectCapabilities, Negotiated, Refusal, Wanted, WantedTrack};
use crate::rtmp::chunk::ChunkBatch;
use crate::rtmp::connection::ClientOptions;
use crate::rtmp::error::Error as RtmpError;
use crate::rtmp::message::msg_type;
use crate::rtmp::session::{ClientEvent, Session, SessionStats, StopCommands};
use crate::rtmp::tls::TlsOptions;
use crate::rtmp::url::{RtmpUrl, Scheme};

use super::format::StreamMeta;
use super::frame::{Frame, TrackConfig};
use super::imp::CAT;
use super::messages::{self, StatsSnapshot};
use super::pacing::Pacer;
use super::queue::{
    CongestionReport, Interleaver, Policy, Pop, QueueConfig, Released, Track, TrackMap,
};
use super::timeline::late_cts;
use super::transport::{
    EstablishedParts, Establishing, IO_SLICE, NetEvent, Reader, Transport, WriteError,
};

/// Longest a streaming thread waits on [`Shared::cond`] before re-checking its flags.
pub const WAIT_SLICE: Duration = IO_SLICE;
/// Default interval of the PingRequests that measure the round-trip time while publishing.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(5);
/// Longest wait for the server to close the connection after our stop commands.
const CLOSE_LINGER: Duration = Duration::from_secs(2);
/// The same when the element stops (PAUSED→READY): a state change must stay quick.
const STOP_LINGER: Duration = Duration::from_millis(500);
/// Most received bytes buffered for the session thread before the reader thread pauses.
const MAX_NET_BACKLOG: usize = 4 * 1024 * 1024;
/// Window of the `bitrate` statistic.
const BITRATE_WINDOW: Duration = Duration::from_secs(3);
/// How often the peer's acknowledgements are looked at while media flows.
const LIVENESS_CHECK: Duration = Duration::from_millis(50);
/// How often the send backlog is looked at while media is held back by it.
const GATE_POLL: Duration = Duration::from_millis(10);
/// Most frames, and payload bytes, taken from the queue for one vectored write. Only frames
/// already allowed to leave are taken (no waiting), so bursts cost no latency; they save a
/// system call (and a wake-up of the server) per frame when input runs ahead of the socket.
const BURST_FRAMES: usize = 16;
const BURST_BYTES: usize = 1024 * 1024;
/// A connection that published this long counts as a success: the backoff starts over.
const STABLE_CONNECTION: Duration = Duration::from_secs(10);
/// Bounds of the acknowledgement window asked of the server.
const MIN_ACK_WINDOW: u32 = 16 * 1024;
const MAX_ACK_WINDOW: u32 = 1024 * 1024;
/// Jitter of the reconnect delay: ± this fraction.
const BACKOFF_JITTER: f64 = 0.2;
/// Longest wait for the linked pads' caps before the first `connect` of an asynchronous
/// start (at most half the `timeout`), so `connect` can advertise their codecs.
const CAPS_WAIT: Duration = Duration::from_secs(1);
/// How often the pads are looked at during that wait (caps arriving wake it at once).
const CAPS_POLL: Duration = Duration::from_millis(20);
/// The publish would send ModEx TimestampOffsetNano where the server takes it
/// ([`Wanted::nano_offsets`]): `connect` advertises ModEx and TimestampNanoOffset, and
/// [`Negotiated::send_mod_ex_nanos`] of the connection says whether to send them.
const NANO_OFFSETS: bool = true;

/// Index of the `sink` pad in the pads' flushing flags ([`Inner::is_flushing`]).
pub const SINK_PAD: usize = 0;
/// Index of the `audio` request pad in the pads' flushing flags.
pub const AUDIO_PAD: usize = 1;

/// Where the element's connection stands, as the streaming threads see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not started.
    Idle,
    /// Connecting / handshaking / waiting for publish.
    Connecting,
    /// Media flows.
    Publishing,
    /// The connection was lost; reconnecting (frames keep queuing under the queue bound).
    Reconnecting,
    /// EOS drained and the connection closed cleanly.
    Drained,
    /// Failed; an error was posted (or handed to a waiting state change).
    Failed,
}

/// State shared between the streaming threads, the reader thread and the session thread.
#[derive(Debug)]
pub struct Inner {
    /// Frames waiting to be sent.
    pub queue: Interleaver<Frame>,
    /// Raw input from the reader threads, tagged with the connection it belongs to.
    net: VecDeque<(u64, NetEvent)>,
    net_bytes: usize,
    /// The publish ends (PAUSED→READY, or a new publish after EOS): the session thread exits.
    pub shutdown: bool,
    /// Per pad (index: [`SINK_PAD`], [`AUDIO_PAD`], further pads after them): flushing, its
    /// producer returns FLUSHING.
    flushing: Vec<bool>,
    /// End of stream: send everything queued, then close the publish cleanly.
    pub drain: bool,
    /// Connection phase.
    pub phase: Phase,
    /// A synchronous publish start (async-connect=false) waits: hand the error to it instead of
    /// posting it.
    pub start_waiting: bool,
    /// The error for a waiting publish start.
    pub start_error: Option<gst::ErrorMessage>,
    /// What onMetaData says; bumped `meta_version` means "send again".
    pub meta: StreamMeta,
    /// Version of `meta`.
    pub meta_version: u64,
    /// Counters for the `stats` property.
    pub stats: StatsSnapshot,
    /// Frames that left the queue so far (EOS measures progress with it).
    pub frames_out: u64,
    /// The codec of every track whose pad's caps built its input ([`Inner::set_codec`]); kept
    /// for a new publish after EOS (no new caps come then). What `connect` advertises.
    codecs: TrackMap<Codec>,
    /// Threads waiting on [`Shared::cond`].
    waiters: u32,
    /// Streaming threads waiting for queue space (block policy).
    blocked_producers: u32,
    /// Which queued frames wake the idle session thread.
    session_wants: Wants,
}

impl Inner {
    /// True while pad `pad` is flushing.
    pub fn is_flushing(&self, pad: usize) -> bool {
        self.flushing.get(pad).copied().unwrap_or(false)
    }

    /// Sets pad `pad`'s flushing flag (callers notify).
    pub fn set_flushing(&mut self, pad: usize, flushing: bool) {
        if self.flushing.len() <= pad {
            self.flushing.resize(pad + 1, false);
        }
        self.flushing[pad] = flushing;
    }

    /// Records the codec `track` carries (its pad's caps built its input) and names it in
    /// onMetaData (track 0). Callers notify.
    pub fn set_codec(&mut self, track: Track, codec: Codec) {
        self.codecs.insert(track, codec);
        if track.id == 0 {
            let before = self.meta.clone();
            self.meta.set_codec(track.kind, codec);
            if self.meta != before {
                self.meta_version += 1;
            }
        }
    }

    /// The codec of every track whose pad is active, in track order.
    pub fn active_codecs(&self) -> Vec<(Track, Codec)> {
        self.codecs
            .iter()
            .filter(|(t, _)| self.queue.is_active(*t))
            .map(|(t, c)| (t, *c))
            .collect()
    }
}

/// What the publish loop does after looking at the queue.
#[derive(Debug)]
enum Next {
    /// Write the frames taken ([`SessionThread::burst`]).
    Send,
    /// Too much media in flight: let the socket drain.
    Gated,
    /// Frames must wait for another track ([`Pop::Wait`]).
    Wait(Option<Instant>),
    /// Nothing queued.
    Empty,
}

/// Stream time from `first` to `last`, ms (0 when `last` is before `first`).
fn span_ms(first: u32, last: u32) -> u32 {
    let d = last.wrapping_sub(first);
    if d > u32::MAX / 2 { 0 } else { d }
}

/// Which queued frames wake the idle session thread (besides input, stop, flush and EOS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wants {
    /// None: it waits for the network or a deadline.
    Nothing,
    /// Any: the queue was empty.
    AnyFrame,
    /// Frames of this track: the interleaver waits for it.
    Frame(Track),
}

impl Default for Shared {
    fn default() -> Self {
        Shared::new(QueueConfig::default())
    }
}

/// Mutex + condition variable around [`Inner`].
#[derive(Debug)]
pub struct Shared {
    inner: Mutex<Inner>,
    /// Signalled on changes of [`Inner`] that someone waits for (see [`Shared::notify`]).
    cond: Condvar,
}

impl Shared {
    /// Fresh shared state with the given queue limits.
    pub fn new(cfg: QueueConfig) -> Self {
        Shared {
            inner: Mutex::new(Inner {
                queue: Interleaver::new(cfg),
                net: Default::default(),
                net_bytes: 0,
                shutdown: false,
                flushing: Vec::new(),
                drain: false,
                phase: Phase::Idle,
                start_waiting: false,
                start_error: None,
                meta: StreamMeta::default(),
                meta_version: 0,
                stats: StatsSnapshot::default(),
                frames_out: 0,
                codecs: TrackMap::new(),
                waiters: 0,
                blocked_producers: 0,
                session_wants: Wants::Nothing,
            }),
            cond: Condvar::new(),
        }
    }

    /// Back to the state of a new publish, with new queue limits. `fresh`: the pads were just
    /// activated (flushing cleared, metadata comes again with the caps); otherwise (a new
    /// publish after EOS, started by a flush) the pads' flushing flags and the metadata stay.
    pub fn reset(&self, cfg: QueueConfig, fresh: bool) {
        let mut g = self.lock();
        g.queue = Interleaver::new(cfg);
        g.net.clear();
        g.net_bytes = 0;
        g.shutdown = false;
        if fresh {
            g.flushing.clear();
            g.meta = StreamMeta::default();
            g.codecs = TrackMap::new();
        }
        g.drain = false;
        g.phase = Phase::Connecting;
        g.start_waiting = false;
        g.start_error = None;
        g.meta_version += 1;
        g.stats = StatsSnapshot::default();
        g.frames_out = 0;
        self.notify(&g);
    }

    /// Wakes every waiter, if there is any (a condvar signal is a system call even when nobody
    /// waits). Call with the lock held, after changing what waiters look at.
    pub fn notify(&self, g: &Inner) {
        if g.waiters > 0 {
            self.cond.notify_all();
        }
    }

    /// Sets a pad's flushing flag and wakes whoever waits for it.
    pub fn set_flushing(&self, pad: usize, flushing: bool) {
        let mut g = self.lock();
        g.set_flushing(pad, flushing);
        self.notify(&g);
    }

    /// Locks, ignoring poisoning: a panic elsewhere must not turn into a panic here (the
    /// session thread's panics are caught and reported as errors).
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits at most `timeout` for a change.
    pub fn wait<'a>(
        &self,
        mut g: MutexGuard<'a, Inner>,
        timeout: Duration,
    ) -> MutexGuard<'a, Inner> {
        g.waiters += 1;
        let mut g = match self.cond.wait_timeout(g, timeout) {
            Ok((g, _)) => g,
            Err(e) => e.into_inner().0,
        };
        g.waiters -= 1;
        g
    }

    /// Queues a frame, blocking while the queue is full (block policy). Returns a congestion
    /// report when frames were dropped and one is due, FLUSHING when the track is flushing or
    /// the element stops, ERROR when the session failed.
    pub fn push(
        &self,
        frame: Frame,
        pad: usize,
    ) -> Result<Option<CongestionReport>, gst::FlowError> {
        let track = frame.track;
        let dts = frame.dts_ms;
        let size = frame.data.len();
        let mut g = self.lock();
        // This thread is counted in `blocked_producers`.
        let mut blocked = false;
        let result = loop {
            if g.shutdown || g.is_flushing(pad) {
                break Err(gst::FlowError::Flushing);
            }
            if g.phase == Phase::Failed {
                break Err(gst::FlowError::Error);
            }
            if g.queue.can_push(track, dts, size) {
                if blocked {
                    g.blocked_producers = g.blocked_producers.saturating_sub(1);
                }
                let now = Instant::now();
                g.queue.push(frame, now);
                // Still set while another pad waits for space.
                let others = g.blocked_producers > 0;
                g.queue.set_producer_blocked(others);
                // Only the session thread cares about new frames, and only when it waits for
                // them: most pushes cost no system call.
                let wake = g.waiters > 0
                    && match g.session_wants {
                        Wants::Nothing => false,
                        Wants::AnyFrame => true,
                        Wants::Frame(t) => t == track,
                    };
                let report = g.queue.take_report(now);
                // Signalled after unlocking: a waiter woken while the lock is still held
                // would block on it again at once (two more context switches per frame).
                drop(g);
                if wake {
                    self.cond.notify_all();
                }
                return Ok(report);
            }
            // The session thread's answer may change now that a producer is blocked: tell it
            // when the first one blocks. Blocked producers wait on the same condition variable:
            // signalling on every retry would make two blocked pads wake each other in a loop
            // (millions of wake-ups a second).
            if !blocked {
                blocked = true;
                g.blocked_producers += 1;
            }
            let first = !g.queue.producer_blocked();
            g.queue.set_producer_blocked(true);
            if first {
                self.notify(&g);
            }
            g = self.wait(g, IO_SLICE);
        };
        if blocked {
            g.blocked_producers = g.blocked_producers.saturating_sub(1);
            let others = g.blocked_producers > 0;
            g.queue.set_producer_blocked(others);
        }
        result
    }

    /// Changes the metadata; the session thread re-sends onMetaData if it differs.
    pub fn update_meta(&self, f: impl FnOnce(&mut StreamMeta)) {
        let mut g = self.lock();
        let before = g.meta.clone();
        f(&mut g.meta);
        if g.meta != before {
            g.meta_version += 1;
            self.notify(&g);
        }
    }
}

/// Everything the session thread needs to know, copied from the settings when the publish
/// starts.
// No Debug: it holds the password, the secure token and extra connect arguments.
#[derive(Clone)]
pub struct SessionSettings {
    /// Where to publish.
    pub url: RtmpUrl,
    /// live / record / append.
    pub publish_type: String,
    /// flashVer of connect.
    pub flash_version: String,
    /// Our chunk size.
    pub chunk_size: u32,
    /// Connect, each protocol step, a stalled write, an unanswered ping.
    pub timeout: Duration,
    /// Reconnection attempts in a row after a lost connection (−1: unlimited, 0: none).
    pub reconnect_attempts: i32,
    /// Delay before the first reconnection attempt (doubled for each further one).
    pub reconnect_delay: Duration,
    /// Longest delay between reconnection attempts.
    pub reconnect_delay_max: Duration,
    /// The queue's time bound (sizes the send backlog allowed with the drop policy).
    pub max_queue_time: Duration,
    /// Interval of the PingRequests (None: no pings).
    pub ping_interval: Option<Duration>,
    /// Commands that end the publish.
    pub stop_commands: StopCommands,
    /// Certificate verification for `rtmps://`.
    pub tls: TlsOptions,
    /// Authentication mode when the server asks for credentials.
    pub authmod: AuthMod,
    /// User name (overrides the URL's).
    pub username: Option<String>,
    /// Password (overrides the URL's).
    pub password: Option<String>,
    /// Key answering a server's `secureToken` challenge.
    pub secure_token: Option<String>,
    /// Extra AMF values appended to `connect`.
    pub extra_connect_args: Vec<Amf0Value>,
    /// `peak-kbps` pacing of the writes.
    pub pacer: Pacer,
}

/// Spawns the session thread.
pub fn spawn(
    element: &gst::Element,
    shared: Arc<Shared>,
    settings: SessionSettings,
) -> std::io::Result<thread::JoinHandle<()>> {
    let weak = element.downgrade();
    // Thread names: "rtmp-ss-", "rtmp-rd-" (reader), "rtmp-cn-" (connecting) and at most 7
    // characters of the element's name (Linux shows 15).
    let tag = thread_tag(&element.name());
    let name = format!("rtmp-ss-{tag}");
    thread::Builder::new().name(name).spawn(move || {
        let shared2 = shared.clone();
        let weak2 = weak.clone();
        let result = panic::catch_unwind(AssertUnwindSafe(move || {
            let mut t = SessionThread::new(weak, shared, settings, tag);
            let r = t.run();
            t.finish(r);
        }));
        if let Err(payload) = result {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            let msg = gst::error_msg!(
                gst::LibraryError::Failed,
                ("Internal error in the RTMP session thread"),
                ["panic: {}", what]
            );
            fail(&weak2, &shared2, msg);
        }
    })
}

/// At most 7 characters of `name`, for thread names.
fn thread_tag(name: &str) -> String {
    name.chars().take(7).collect()
}

/// Marks the session failed and reports `msg` (to a waiting publish start or on the bus).
fn fail(weak: &glib::WeakRef<gst::Element>, shared: &Shared, msg: gst::ErrorMessage) {
    {
        let mut g = shared.lock();
        if g.start_waiting {
            g.start_error = Some(msg);
            g.phase = Phase::Failed;
            shared.notify(&g);
            return;
        }
    }
    // Post before the streaming threads learn of the failure: they then return FLOW_ERROR,
    // and upstream's generic "Internal data stream error" must not reach the bus first.
    if let Some(el) = weak.upgrade() {
        el.post_error_message(msg);
    }
    let mut g = shared.lock();
    g.phase = Phase::Failed;
    shared.notify(&g);
}

/// How the session thread ended abnormally.
#[derive(Debug)]
enum Failure {
    /// The publish was ended (`shutdown`).
    Stopped,
    /// An RTMP/network error, with the phase it happened in.
    Rtmp { err: RtmpError, publishing: bool },
    /// The reconnect budget is spent; `err` is the last attempt's error.
    GaveUp { err: RtmpError, attempts: u32 },
}

impl From<WriteError> for Failure {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Cancelled => Failure::Stopped,
            WriteError::Stalled(d) => Failure::Rtmp {
                err: RtmpError::TimedOut {
                    step: "sending data (the server stopped reading)".into(),
                    timeout_ms: d.as_millis() as u64,
                },
                publishing: true,
            },
            WriteError::Io(e) => Failure::Rtmp {
                err: RtmpError::Io(e),
                publishing: true,
            },
        }
    }
}

fn publishing(err: RtmpError) -> Failure {
    Failure::Rtmp {
        err,
        publishing: true,
    }
}

/// Maps an RTMP error to what a user reads, with a GStreamer error domain chosen here and only
/// here: OpenWrite while connecting/publishing starts, Write once media flows, NotFound for an
/// unknown host, Settings for a bad URL.
pub fn error_message(err: &RtmpError, url: &RtmpUrl, publishing: bool) -> gst::ErrorMessage {
    // Error texts carry no secret: URLs are redacted, a server's texts masked where they came in.
    let text = capitalize(&err.to_string());
    let debug = format!("url: {}", url.redacted());
    match err {
        RtmpError::HostNotFound { .. } => {
            gst::error_msg!(gst::ResourceError::NotFound, ("{}", text), ["{}", debug])
        }
        RtmpError::InvalidUrl(_) => {
            gst::error_msg!(gst::ResourceError::Settings, ("{}", text), ["{}", debug])
        }
        // The server cannot take what is to be sent: nothing of it was sent.
        RtmpError::NotAccepted(_) => {
            gst::error_msg!(gst::ResourceError::OpenWrite, ("{}", text), ["{}", debug])
        }
        _ if publishing => gst::error_msg!(gst::ResourceError::Write, ("{}", text), ["{}", debug]),
        _ => gst::error_msg!(gst::ResourceError::OpenWrite, ("{}", text), ["{}", debug]),
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// The acknowledgement window for a send rate of `bitrate` bit/s: about 50 ms of it, a power
/// of two between [`MIN_ACK_WINDOW`] and [`MAX_ACK_WINDOW`] (few acknowledgements, yet a fine
/// enough view of what is in flight).
fn ack_window_for(bitrate: u64) -> u32 {
    let bytes = bitrate / 8 / 20;
    u32::try_from(bytes.next_power_of_two())
        .unwrap_or(MAX_ACK_WINDOW)
        .clamp(MIN_ACK_WINDOW, MAX_ACK_WINDOW)
}

/// The reconnect delay before attempt `attempt` (from 1): `base` × 2^(attempt−1), at most `max`,
/// then ±20 % jitter from `random` (in 0..1).
fn backoff(base: Duration, max: Duration, attempt: u32, random: f64) -> Duration {
    let exp = attempt.saturating_sub(1).min(30);
    let d = base.saturating_mul(1u32 << exp).min(max);
    d.mul_f64(1.0 - BACKOFF_JITTER + 2.0 * BACKOFF_JITTER * random.clamp(0.0, 1.0))
}

/// A PingRequest waiting for its answer.
#[derive(Debug, Clone, Copy)]
struct OutstandingPing {
    timestamp: u32,
    sent_at: Instant,
}

/// What the session thread knows about the peer's health on one connection.
///
/// Two views of how far the server got: the socket's unacknowledged bytes (`SIOCOUTQ`: what
/// the peer's TCP stack has not acknowledged) and the server's RTMP Acknowledgements (what the
/// server application has read; a proxy or TLS terminator in between acknowledges TCP on its
/// behalf). Positions are RTMP bytes produced by the core since the connection opened.
#[derive(Debug)]
struct Liveness {
    last_check: Instant,
    /// Upper bound of the bytes the server has received (both views combined).
    acked: u64,
    /// TCP view: acknowledged bytes, and when they last grew (or nothing was outstanding).
    tcp_acked: u64,
    tcp_progress_at: Instant,
    /// Unacknowledged bytes in the socket at the last check.
    unacked: u64,
    /// RTMP view: last Acknowledgement sequence number, the offset added by counter resets,
    /// and when it last grew (or nothing was certainly outstanding).
    app_raw: Option<u32>,
    app_offset: u64,
    app_progress_at: Instant,
    last_input_at: Instant,
    ping: Option<OutstandingPing>,
    /// PingResponses received: only a server known to answer pings is judged by them.
    pongs: u64,
    /// (end position, RTMP timestamp) of media written and maybe not received yet.
    in_flight: VecDeque<(u64, u32)>,
    /// The platform tells unacknowledged socket bytes.
    tcp_known: bool,
}

/// Bytes of the RTMP handshake (C0+C1, C2): servers count their Acknowledgement sequence
/// numbers from after it.
const HANDSHAKE_BYTES: u64 = 1537 + 1536;

impl Liveness {
    fn new(now: Instant) -> Self {
        Liveness {
            last_check: now,
            acked: 0,
            tcp_acked: 0,
            tcp_progress_at: now,
            unacked: 0,
            app_raw: None,
            app_offset: 0,
            app_progress_at: now,
            last_input_at: now,
            ping: None,
            pongs: 0,
            in_flight: VecDeque::new(),
            tcp_known: false,
        }
    }

    /// True when something tells how far the server got (`in_flight` is kept only then).
    fn tracking(&self) -> bool {
        self.tcp_known || self.app_raw.is_some()
    }

    /// When the server last made progress, in the most telling view.
    fn progress_at(&self) -> Instant {
        if self.app_raw.is_some() {
            self.app_progress_at
        } else {
            self.tcp_progress_at
        }
    }

    /// Updates both views (at most every `every`) and judges the peer: an error when the
    /// server read nothing for `timeout` while bytes were outstanding, or answered no ping for
    /// `timeout` while not reading either.
    fn check(
        &mut self,
        now: Instant,
        transport: &Transport,
        stats: &SessionStats,
        ack_window: u32,
        timeout: Duration,
        every: Duration,
    ) -> Result<(), RtmpError> {
        if now.saturating_duration_since(self.last_check) < every {
            return Ok(());
        }
        self.last_check = now;
        let written = stats.bytes_sent;
        let mut bound = written;
        let stopped_reading = || RtmpError::TimedOut {
            step: "sending data (the server stopped reading)".into(),
            timeout_ms: timeout.as_millis() as u64,
        };
        // RTMP Acknowledgements (only once the server sent one).
        let raw = u32::try_from(stats.bytes_acked_by_peer).unwrap_or(u32::MAX);
        if raw != 0 && self.app_raw != Some(raw) {
            if let Some(prev) = self.app_raw
                && raw < prev
            {
                // The server's counter wrapped or was reset (nginx resets at 0xf0000000).
                self.app_offset += u64::from(prev);
            }
            self.app_raw = Some(raw);
            self.app_progress_at = now;
        }
        if let Some(raw) = self.app_raw {
            // The server acknowledges every `ack_window` bytes: it may hold that much more.
            let app = self.app_offset + u64::from(raw) + HANDSHAKE_BYTES + u64::from(ack_window);
            bound = bound.min(app);
            if written <= app {
                self.app_progress_at = now;
            } else if now.saturating_duration_since(self.app_progress_at) >= timeout {
                return Err(stopped_reading());
            }
        }
        // The socket.
        if let Some(unacked) = transport.unacked() {
            self.tcp_known = true;
            self.unacked = unacked;
            let tcp = written.saturating_sub(unacked);
            if tcp > self.tcp_acked || unacked == 0 {
                self.tcp_acked = self.tcp_acked.max(tcp);
                self.tcp_progress_at = now;
            }
            bound = bound.min(self.tcp_acked);
            if unacked > 0 && now.saturating_duration_since(self.tcp_progress_at) >= timeout {
                return Err(stopped_reading());
            }
        }
        self.acked = self.acked.max(bound);
        while self
            .in_flight
            .front()
            .is_some_and(|(end, _)| *end <= self.acked)
        {
            self.in_flight.pop_front();
        }
        // Read liveness: a server known to answer pings that answers nothing (and sends
        // nothing) for `timeout` after one, while it does not read either (for `timeout / 2`).
        // The second condition keeps a slow link, where the ping merely waits behind media,
        // from looking dead.
        if let Some(p) = self.ping
            && self.pongs > 0
            && now.saturating_duration_since(p.sent_at.max(self.last_input_at)) >= timeout
            && now.saturating_duration_since(self.progress_at()) >= timeout / 2
        {
            return Err(RtmpError::TimedOut {
                step: "waiting for the server to answer a ping (it stopped responding)".into(),
                timeout_ms: timeout.as_millis() as u64,
            });
        }
        Ok(())
    }

    /// Stream time of the media written but not acknowledged, ms.
    fn backlog_ms(&self) -> u32 {
        match (self.in_flight.front(), self.in_flight.back()) {
            (Some(&(_, first)), Some(&(_, last))) => span_ms(first, last),
            _ => 0,
        }
    }
}

/// One live connection.
struct Connection {
    transport: Transport,
    session: Session,
    reader: Reader,
    /// Set when the connection is dropped: its reader thread ends even while it waits for the
    /// session thread to take its input (which the thread dropping it will never do).
    ended: Arc<AtomicBool>,
    generation: u64,
    /// Where it goes.
    url: RtmpUrl,
    /// Configuration last sent per track on this connection.
    sent_config: TrackMap<Arc<TrackConfig>>,
    /// Metadata version last sent on this connection (None: never).
    sent_meta: Option<u64>,
    /// The server's answer judged against what is sent ([`caps::negotiate`]): at `connect` for
    /// the tracks known then, again whenever another track (or form) is about to be sent.
    negotiated: Option<Negotiated>,
    /// The tracks judged on this connection, with the codec and form each was judged with.
    judged: TrackMap<WantedTrack>,
    /// Timestamp of the last frame sent (where the SequenceEnds go at EOS).
    last_ts: Option<u32>,
    /// Media frames sent on this connection.
    frames_sent: u64,
    /// When the publish started.
    opened_at: Instant,
    live: Liveness,
    /// Acknowledgement window asked of the server last (0: not asked).
    ack_window: u32,
    /// The largest window asked for on this connection: until the server has seen a smaller
    /// request it still acknowledges that far apart, so bounds use this one.
    ack_window_max: u32,
}

impl Connection {
    /// Judges the peer (see [`Liveness::check`]).
    fn check_peer(
        &mut self,
        now: Instant,
        timeout: Duration,
        every: Duration,
    ) -> Result<(), Failure> {
        let stats = self.session.stats();
        self.live
            .check(
                now,
                &self.transport,
                &stats,
                self.ack_window,
                timeout,
                every,
            )
            .map_err(publishing)
    }

    /// Asks the server to acknowledge every `window` bytes.
    fn request_acks(&mut self, window: u32) -> Result<(), RtmpError> {
        self.session.request_acknowledgements(window)?;
        self.ack_window = window;
        self.ack_window_max = self.ack_window_max.max(window);
        Ok(())
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.ended.store(true, Ordering::Release);
        self.transport.shutdown();
        self.reader.stop();
    }
}

/// An Enhanced RTMP reconnect request being carried out.
enum Redirect {
    /// Asked for; the connection attempt starts at the next loop turn.
    Requested(RtmpUrl),
    /// Connecting and publishing on a helper thread.
    Connecting(RtmpUrl, Establishing),
    /// Publishing on the new server; the switch happens at the next keyframe.
    Ready(Box<Connection>),
}

/// An old connection after its stop commands: kept until the server closes it (or a deadline),
/// so no byte in flight is lost to a reset.
struct Closing {
    conn: Connection,
    until: Instant,
}

struct SessionThread {
    element: glib::WeakRef<gst::Element>,
    shared: Arc<Shared>,
    settings: SessionSettings,
    /// Where (re)connections go: the `location`, or the target of a reconnect request.
    url: RtmpUrl,
    /// Time origin of ping timestamps.
    epoch: Instant,
    generation: u64,
    /// Configuration in use per track, with the track's tag form (sent first on every new
    /// connection).
    last_config: TrackMap<(flv::TagTrack, Arc<TrackConfig>)>,
    next_ping: Instant,
    spare: Option<ChunkBatch<'static>>,
    /// Frames taken from the queue for one write (kept for its allocation).
    burst: Vec<Released<Frame>>,
    stats: StatsSnapshot,
    bitrate_samples: VecDeque<(Instant, u64)>,
    last_stats_push: Instant,
    late_logged: u64,
    /// Some connection carried media (only then is a lost connection reconnected).
    media_ever_sent: bool,
    /// `rtmp-disconnected` was posted for the connection that ended last.
    disconnect_posted: bool,
    /// The negotiation INFO posted last in this publish.
    info_posted: Option<String>,
    redirect: Option<Redirect>,
    closing: Vec<Closing>,
    /// State of the jitter generator.
    rng: u64,
    /// Element name part of thread names.
    tag: String,
}

/// Which connection an input or event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The one media goes to.
    Current,
    /// The target of a reconnect request, not switched to yet.
    Standby,
    /// Being established (events seen on the way).
    Opening,
}

impl SessionThread {
    fn new(
        element: glib::WeakRef<gst::Element>,
        shared: Arc<Shared>,
        settings: SessionSettings,
        tag: String,
    ) -> Self {
        let now = Instant::now();
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15)
            | 1;
        SessionThread {
            element,
            shared,
            url: settings.url.clone(),
            settings,
            epoch: now,
            generation: 0,
            last_config: TrackMap::new(),
            next_ping: now,
            spare: Some(ChunkBatch::new()),
            burst: Vec::new(),
            stats: StatsSnapshot::default(),
            bitrate_samples: Default::default(),
            last_stats_push: now,
            late_logged: 0,
            media_ever_sent: false,
            disconnect_posted: false,
            info_posted: None,
            redirect: None,
            closing: Vec::new(),
            rng: seed,
            tag,
        }
    }

    fn post(&self, f: impl FnOnce(&gst::Element) -> gst::Message) {
        if let Some(el) = self.element.upgrade() {
            let msg = f(&el);
            let _ = el.post_message(msg);
        }
    }

    /// Logs and posts a WARNING (`text` is a redacted, readable sentence).
    fn warn(&self, text: &str) {
        gst::warning!(CAT, "{text}");
        if let Some(el) = self.element.upgrade() {
            gst::element_warning!(el, gst::ResourceError::Failed, ("{}", text));
        }
    }

    /// Warns that a reconnect request to `target` could not be followed because of `err`.
    fn warn_redirect_failed(&self, target: &RtmpUrl, err: &RtmpError) {
        let reason = target.redact_text(&err.to_string());
        self.warn(&format!(
            "Could not follow the server's reconnect request to {}: {}. Publishing continues on {}.",
            target.redacted(),
            reason.trim_end_matches('.'),
            self.url.redacted()
        ));
    }

    fn set_phase(&self, phase: Phase) {
        let mut g = self.shared.lock();
        if g.phase != Phase::Failed {
            g.phase = phase;
        }
        self.shared.notify(&g);
    }

    /// A pseudo-random number in 0..1 (xorshift; only for the backoff jitter).
    fn random(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The options of a connection that will send `media`.
    fn client_options(&self, media: Wanted) -> ClientOptions {
        ClientOptions {
            publish_type: self.settings.publish_type.clone(),
            timeout: self.settings.timeout,
            chunk_size: self.settings.chunk_size,
            flash_version: self.settings.flash_version.clone(),
            stop_commands: self.settings.stop_commands,
            tls: self.settings.tls.clone(),
            authmod: self.settings.authmod,
            username: self.settings.username.clone(),
            password: self.settings.password.clone(),
            secure_token: self.settings.secure_token.clone(),
            extra_connect_args: self.settings.extra_connect_args.clone(),
            // Empty: `connect` advertises what `media` says (its capsEx has Reconnect: we
            // follow NetConnection.Connect.ReconnectRequest), and the core judges the answer.
            capabilities: ConnectCapabilities::default(),
            media: Some(media),
        }
    }

    fn stopping(&self) -> bool {
        self.shared.lock().shutdown
    }

    /// The body: connect, publish, reconnect as long as allowed, until drained or stopped.
    fn run(&mut self) -> Result<(), Failure> {
        let url = self.url.clone();
        // A synchronous start blocks the state change: no caps can come before `connect`.
        if !self.shared.lock().start_waiting {
            self.await_caps();
            if self.stopping() {
                return Err(Failure::Stopped);
            }
        }
        let mut conn = self.connect(&url)?;
        let mut attempt = 0u32;
        loop {
            let err = match self.publish_loop(&mut conn) {
                Ok(()) => return Ok(()),
                Err(Failure::Rtmp { err, .. }) => err,
                Err(other) => return Err(other),
            };
            if matches!(err, RtmpError::NotAccepted(_)) {
                // A track the server excludes: stop the publish cleanly, nothing of it was sent.
                self.abort(&mut conn, &err.to_string());
                return Err(publishing(err));
            }
            let stable = conn.opened_at.elapsed() >= STABLE_CONNECTION && conn.frames_sent > 0;
            drop(conn);
            self.closing.clear();
            self.disconnect_posted = false;
            if !self.media_ever_sent
                || !err.is_transient()
                || self.settings.reconnect_attempts == 0
                || self.stopping()
            {
                return Err(publishing(err));
            }
            if stable {
                attempt = 0;
            }
            let reason = err.to_string();
            gst::warning!(CAT, "connection lost: {reason}; reconnecting");
            self.post(|el| messages::disconnected(el, &reason, true));
            self.disconnect_posted = true;
            conn = match self.redirect.take() {
                // The server asked us to move anyway: use (or wait for) the new connection.
                Some(Redirect::Ready(c)) => {
                    self.resumed();
                    *c
                }
                Some(Redirect::Connecting(url, pending)) => {
                    self.url = url;
                    match self.await_pending(pending)? {
                        Some(c) => {
                            self.resumed();
                            c
                        }
                        None => self.reconnect(&mut attempt, err)?,
                    }
                }
                Some(Redirect::Requested(url)) => {
                    self.url = url;
                    self.reconnect(&mut attempt, err)?
                }
                None => self.reconnect(&mut attempt, err)?,
            };
        }
    }

    /// Reports how the thread ended.
    fn finish(&mut self, r: Result<(), Failure>) {
        let url = self.url.clone();
        match r {
            Ok(()) | Err(Failure::Stopped) => {}
            Err(Failure::GaveUp { err, attempts }) => {
                let last = err.to_string();
                gst::error!(
                    CAT,
                    "giving up after {attempts} reconnection attempts: {last}"
                );
                let msg = gst::error_msg!(
                    gst::ResourceError::Write,
                    (
                        "Lost the connection to {} and could not reconnect ({} attempts); last error: {}",
                        url.redacted(),
                        attempts,
                        last
                    ),
                    ["url: {}", url.redacted()]
                );
                fail(&self.element, &self.shared, msg);
            }
            Err(Failure::Rtmp { err, publishing }) => {
                gst::error!(CAT, "session failed: {}", err);
                if !publishing {
                    self.post(|el| {
                        messages::progress(el, gst::ProgressType::Error, "Could not publish")
                    });
                } else if !self.disconnect_posted {
                    let reason = err.to_string();
                    self.post(|el| messages::disconnected(el, &reason, false));
                }
                // A server that drops the connection right after accepting the publish, before
                // any media, refused the publish in effect (nginx `deny publish` does this).
                let refused = publishing
                    && !self.media_ever_sent
                    && self.stats.reconnects == 0
                    && matches!(err, RtmpError::ConnectionClosed(_));
                let mut msg = error_message(&err, &url, publishing && !refused);
                if refused {
                    msg = gst::error_msg!(
                        gst::ResourceError::OpenWrite,
                        (
                            "The server closed the connection right after the publish started, before any media: \
                             it probably does not allow publishing to {}; check that the server allows publishing to this application and stream key.",
                            url.redacted()
                        ),
                        ["{}", err]
                    );
                }
                fail(&self.element, &self.shared, msg);
            }
        }
    }

    /// Opens a connection and runs the handshake up to `NetStream.Publish.Start` (TLS and
    /// authentication included), cancellable by `shutdown`.
    fn connect(&mut self, url: &RtmpUrl) -> Result<Connection, Failure> {
        let opening = |err| Failure::Rtmp {
            err,
            publishing: false,
        };
        let text = format!("Connecting to {}", url.authority());
        self.post(|el| messages::progress(el, gst::ProgressType::Start, &text));
        gst::info!(CAT, "connecting to {}", url.redacted());
        let shared = self.shared.clone();
        let thread_name = format!("rtmp-cn-{}", self.tag);
        let wanted = self.wanted();
        gst::debug!(CAT, "connect advertises {:?}", wanted.capabilities());
        let parts = Transport::establish(url, &self.client_options(wanted), &thread_name, &|| {
            shared.lock().shutdown
        })
        .map_err(opening)?
        .ok_or(Failure::Stopped)?;
        let conn = self.open_connection(url, parts).map_err(opening)?;
        self.set_phase(Phase::Publishing);
        self.post(|el| messages::progress(el, gst::ProgressType::Complete, "Publishing"));
        Ok(conn)
    }

    /// Turns an established publish into a [`Connection`]: socket options, reader thread, and
    /// the events that arrived while establishing.
    fn open_connection(
        &mut self,
        url: &RtmpUrl,
        (transport, session, events): EstablishedParts,
    ) -> Result<Connection, RtmpError> {
        let mut transport = transport;
        transport.configure().map_err(RtmpError::Io)?;
        self.generation += 1;
        let generation = self.generation;
        let raw = transport.raw_reader().map_err(RtmpError::Io)?;
        let shared = self.shared.clone();
        let ended = Arc::new(AtomicBool::new(false));
        let ended2 = ended.clone();
        let reader = Reader::spawn(raw, &format!("rtmp-rd-{}", self.tag), move |ev| {
            let mut g = shared.lock();
            // Pause reading while the session thread is behind (bounded memory), but not past
            // the end of this connection: dropping it waits for this thread. (While stopping,
            // input still flows: the server's close is awaited.)
            let gone = || ended2.load(Ordering::Acquire);
            while g.net_bytes > MAX_NET_BACKLOG && !gone() {
                g = shared.wait(g, IO_SLICE);
            }
            if gone() {
                return false;
            }
            if let NetEvent::Data(d) = &ev {
                g.net_bytes += d.len();
            }
            g.net.push_back((generation, ev));
            shared.notify(&g);
            true
        })
        .map_err(RtmpError::Io)?;
        let leftover = transport.pending_plaintext();
        let now = Instant::now();
        // What the core judged at `connect` (`ClientOptions::media`), kept for later tracks.
        let negotiated = session.negotiated().cloned();
        let mut judged = TrackMap::new();
        for t in session.config().media.iter().flat_map(|w| &w.tracks) {
            judged.insert(wanted_key(t), *t);
        }
        let mut conn = Connection {
            transport,
            session,
            reader,
            ended,
            generation,
            url: url.clone(),
            sent_config: TrackMap::new(),
            sent_meta: None,
            negotiated,
            judged,
            last_ts: None,
            frames_sent: 0,
            opened_at: now,
            live: Liveness::new(now),
            ack_window: 0,
            ack_window_max: 0,
        };
        for ev in events {
            self.handle_event(ev, &mut conn.live, Role::Opening);
        }
        if !leftover.is_empty() {
            conn.session.handle_input(&leftover)?;
        }
        self.handle_events(&mut conn, Role::Opening);
        self.flush_transmit(&mut conn).map_err(|f| match f {
            Failure::Rtmp { err, .. } | Failure::GaveUp { err, .. } => err,
            Failure::Stopped => RtmpError::Cancelled,
        })?;
        if let Some(interval) = self.settings.ping_interval {
            self.next_ping = now + interval;
        }
        self.post_negotiated(&conn);
        Ok(conn)
    }

    /// Posts the connection's negotiation INFO (something is sent unconfirmed), once per
    /// distinct text in a publish: a reconnect to the same server does not repeat it.
    fn post_negotiated(&mut self, conn: &Connection) {
        let Some(text) = conn.negotiated.as_ref().and_then(Negotiated::info) else {
            return;
        };
        if self.info_posted.as_deref() == Some(text.as_str()) {
            return;
        }
        gst::info!(CAT, "{text}");
        if let Some(el) = self.element.upgrade() {
            gst::element_info!(el, gst::CoreError::Negotiation, ("{}", capitalize(&text)));
        }
        self.info_posted = Some(text);
    }

    /// Judges `tag` (a track's codec and form) against the server's answer kept on `conn`,
    /// before anything of it is sent there: a track that was not known at `connect`, or
    /// turned out to take another form, is refused here as it would have been at `connect`.
    fn judge(
        &mut self,
        conn: &mut Connection,
        track: Track,
        tag: flv::TagTrack,
    ) -> Result<(), Failure> {
        let server = conn.session.server_capabilities().clone();
        match judge_track(&server, &mut conn.judged, track, tag) {
            None => Ok(()),
            Some(Ok(n)) => {
                gst::debug!(
                    CAT,
                    "{track} ({}) judged: {:?}",
                    tag.codec.name(),
                    n.outcome
                );
                conn.negotiated = Some(n);
                self.post_negotiated(conn);
                Ok(())
            }
            Some(Err(refusal)) => {
                gst::error!(CAT, "{refusal}");
                Err(publishing(RtmpError::NotAccepted(refusal)))
            }
        }
    }

    /// What `connect` advertises and the core judges the server's answer against: every
    /// active track whose codec is known (in the form it was sent in, if it was), and for
    /// linked pads without caps yet the codec their peer's caps allow, if only one.
    fn wanted(&self) -> Wanted {
        let known = self.shared.lock().active_codecs();
        let sent: Vec<flv::TagTrack> = self.last_config.values().map(|(tag, _)| *tag).collect();
        build_wanted(&known, &sent, &self.peer_codecs())
    }

    /// The codec of each linked sink pad without caps yet, from what its peer can produce
    /// within the pad's template (only when that is one codec).
    fn peer_codecs(&self) -> Vec<(Track, Codec)> {
        let Some(el) = self.element.upgrade() else {
            return Vec::new();
        };
        el.sink_pads()
            .iter()
            .filter(|pad| pad.is_linked() && pad.current_caps().is_none())
            .filter_map(|pad| {
                let caps = pad.peer_query_caps(Some(&pad.pad_template_caps()));
                let codec = single_codec(&caps)?;
                Some((pad_track(&pad.name(), codec.kind())?, codec))
            })
            .collect()
    }

    /// Before the first `connect` of an asynchronous start: waits (at most [`CAPS_WAIT`], half
    /// the `timeout`) until every linked sink pad has caps and at least one codec is known, so
    /// `connect` advertises them. Caps that come later are judged at their track's first frame.
    fn await_caps(&self) {
        let deadline = Instant::now() + CAPS_WAIT.min(self.settings.timeout / 2);
        loop {
            let pending = match self.element.upgrade() {
                Some(el) => el
                    .sink_pads()
                    .iter()
                    .filter(|p| p.is_linked() && p.current_caps().is_none())
                    .count(),
                None => return,
            };
            let mut g = self.shared.lock();
            if g.shutdown || (pending == 0 && !g.active_codecs().is_empty()) {
                return;
            }
            let now = Instant::now();
            if now >= deadline {
                gst::debug!(
                    CAT,
                    "connecting before every pad has caps ({pending} without)"
                );
                return;
            }
            g = self.shared.wait(g, (deadline - now).min(CAPS_POLL));
            drop(g);
        }
    }

    /// Reconnects after a lost connection: backoff, attempt, until success, a fatal error or the
    /// budget is spent. On success the queue resumes at a keyframe.
    fn reconnect(&mut self, attempt: &mut u32, mut last: RtmpError) -> Result<Connection, Failure> {
        self.set_phase(Phase::Reconnecting);
        let max = self.settings.reconnect_attempts;
        loop {
            if max >= 0 && *attempt >= max as u32 {
                return Err(Failure::GaveUp {
                    err: last,
                    attempts: *attempt,
                });
            }
            *attempt += 1;
            let r = self.random();
            let delay = backoff(
                self.settings.reconnect_delay,
                self.settings.reconnect_delay_max,
                *attempt,
                r,
            );
            let delay_ms = delay.as_millis() as u64;
            let redacted = self.url.redacted();
            gst::info!(CAT, "reconnection attempt {} in {delay_ms} ms", *attempt);
            self.post(|el| messages::reconnecting(el, *attempt, max, delay_ms, &redacted));
            self.sleep(delay)?;
            let url = self.url.clone();
            match self.connect(&url) {
                Ok(conn) => {
                    self.resumed();
                    return Ok(conn);
                }
                Err(Failure::Rtmp { err, .. }) if err.is_transient() => {
                    gst::warning!(
                        CAT,
                        "reconnection attempt {} failed: {}",
                        *attempt,
                        self.url.redact_text(&err.to_string())
                    );
                    self.set_phase(Phase::Reconnecting);
                    last = err;
                }
                Err(Failure::Rtmp { err, .. }) => return Err(publishing(err)),
                Err(other) => return Err(other),
            }
        }
    }

    /// Waits for a reconnect request's connection attempt; None if it failed.
    fn await_pending(&mut self, pending: Establishing) -> Result<Option<Connection>, Failure> {
        loop {
            if self.stopping() {
                return Err(Failure::Stopped);
            }
            match pending.wait(IO_SLICE) {
                Ok(None) => {}
                Ok(Some(parts)) => {
                    let url = self.url.clone();
                    return Ok(self.open_connection(&url, parts).ok());
                }
                Err(e) => {
                    gst::warning!(
                        CAT,
                        "connecting to the reconnect target failed: {}",
                        self.url.redact_text(&e.to_string())
                    );
                    return Ok(None);
                }
            }
        }
    }

    /// A new connection replaces a lost one: count it, resume the queue at a keyframe.
    fn resumed(&mut self) {
        self.stats.reconnects += 1;
        let mut g = self.shared.lock();
        g.queue.resync();
        g.stats.reconnects = self.stats.reconnects;
        if g.phase != Phase::Failed {
            g.phase = Phase::Publishing;
        }
        self.shared.notify(&g);
    }

    /// Sleeps `d`, waking for `shutdown`.
    fn sleep(&self, d: Duration) -> Result<(), Failure> {
        let deadline = Instant::now() + d;
        let mut g = self.shared.lock();
        loop {
            if g.shutdown {
                return Err(Failure::Stopped);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(());
            }
            g = self.shared.wait(g, (deadline - now).min(IO_SLICE));
        }
    }

    /// Waits for the next input of this connection until `deadline`; None on timeout.
    fn wait_input(
        &self,
        conn: &Connection,
        deadline: Instant,
    ) -> Result<Option<NetEvent>, Failure> {
        let mut g = self.shared.lock();
        loop {
            if g.shutdown {
                return Err(Failure::Stopped);
            }
            while let Some((conn_gen, ev)) = g.net.pop_front() {
                if let NetEvent::Data(d) = &ev {
                    g.net_bytes = g.net_bytes.saturating_sub(d.len());
                }
                if conn_gen == conn.generation {
                    self.shared.notify(&g);
                    return Ok(Some(ev));
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            g = self.shared.wait(g, (deadline - now).min(IO_SLICE));
        }
    }

    /// Takes all pending input without waiting.
    fn take_input(&self) -> Vec<(u64, NetEvent)> {
        let mut g = self.shared.lock();
        if g.net.is_empty() {
            return Vec::new();
        }
        g.net_bytes = 0;
        let out: Vec<_> = g.net.drain(..).collect();
        // The reader threads may wait for space.
        self.shared.notify(&g);
        out
    }

    /// Feeds every connection its input: the current one (errors end it), the standby of a
    /// reconnect request (errors abandon the request) and connections being closed.
    fn pump_input(&mut self, conn: &mut Connection) -> Result<(), Failure> {
        let input = self.take_input();
        if input.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        let mut standby = match self.redirect.take() {
            Some(Redirect::Ready(c)) => Some(*c),
            other => {
                self.redirect = other;
                None
            }
        };
        let mut standby_failed: Option<RtmpError> = None;
        let mut current_failed = None;
        for (generation, ev) in input {
            if generation == conn.generation {
                if current_failed.is_none()
                    && let Err(f) = self.feed(conn, ev, now, Role::Current)
                {
                    current_failed = Some(f);
                }
            } else if let Some(s) = standby.as_mut().filter(|s| s.generation == generation) {
                if let Err(Failure::Rtmp { err, .. }) = self.feed(s, ev, now, Role::Standby) {
                    standby_failed = Some(err);
                }
            } else if let Some(i) = self
                .closing
                .iter()
                .position(|c| c.conn.generation == generation)
            {
                match ev {
                    NetEvent::Closed(_) => {
                        gst::debug!(CAT, "old connection closed by the server");
                        self.closing.swap_remove(i);
                    }
                    NetEvent::Data(d) => {
                        let c = &mut self.closing[i].conn;
                        if let Ok(d) = c.transport.on_raw_input(d) {
                            let _ = c.session.handle_input(&d);
                            while c.session.poll_event().is_some() {}
                        }
                    }
                }
            }
        }
        if let Some(err) = standby_failed
            && let Some(s) = standby.take()
        {
            self.warn_redirect_failed(&s.url, &err);
        }
        if let Some(s) = standby {
            self.redirect = Some(Redirect::Ready(Box::new(s)));
        }
        match current_failed {
            Some(f) => Err(f),
            None => Ok(()),
        }
    }

    /// One input event of `conn`.
    fn feed(
        &mut self,
        conn: &mut Connection,
        ev: NetEvent,
        now: Instant,
        role: Role,
    ) -> Result<(), Failure> {
        match ev {
            NetEvent::Data(d) => {
                self.stats.bytes_received += d.len() as u64;
                conn.live.last_input_at = now;
                let d = conn.transport.on_raw_input(d).map_err(publishing)?;
                conn.session.handle_input(&d).map_err(publishing)?;
                self.handle_events(conn, role);
                self.flush_transmit(conn)
            }
            NetEvent::Closed(reason) => Err(publishing(RtmpError::ConnectionClosed(
                reason.map(|r| format!(": {r}")).unwrap_or_default(),
            ))),
        }
    }

    /// Writes whatever protocol output the core has (handshake, commands, acks, pongs).
    fn flush_transmit(&mut self, conn: &mut Connection) -> Result<(), Failure> {
        if !conn.session.has_transmit() {
            return Ok(());
        }
        let mut batch = self.spare.take().unwrap_or_default();
        conn.session.drain_transmit(&mut batch);
        let r = self.write(conn, &mut batch);
        self.spare = Some(batch.recycle());
        r
    }

    fn write(&mut self, conn: &mut Connection, batch: &mut ChunkBatch<'_>) -> Result<(), Failure> {
        let shared = self.shared.clone();
        let n = conn
            .transport
            .write_batch(batch, self.settings.timeout, &|| shared.lock().shutdown)?;
        self.stats.bytes_sent += n as u64;
        Ok(())
    }

    /// Turns core events into bus messages.
    fn handle_events(&mut self, conn: &mut Connection, role: Role) {
        while let Some(ev) = conn.session.poll_event() {
            self.handle_event(ev, &mut conn.live, role);
        }
    }

    fn handle_event(&mut self, ev: ClientEvent, live: &mut Liveness, role: Role) {
        let url = self.url.clone();
        match ev {
            ClientEvent::Connected {
                fms_version,
                capabilities,
            } => {
                gst::info!(CAT, "connected, server {:?}", fms_version);
                let redacted = url.redacted();
                self.post(|el| {
                    messages::connected(el, &redacted, fms_version.as_deref(), &capabilities)
                });
            }
            ClientEvent::Publishing { stream_id } => {
                gst::info!(CAT, "publishing on stream {stream_id}");
                let redacted = url.redacted();
                self.post(|el| messages::publishing(el, &redacted, stream_id));
            }
            ClientEvent::OnStatus {
                level,
                code,
                description,
            } => {
                let description = url.redact_text(&description);
                gst::info!(CAT, "onStatus {level} {code}: {description}");
                self.post(|el| messages::status(el, &level, &code, &description));
            }
            ClientEvent::ReconnectRequest {
                tc_url,
                description,
            } => {
                let resolved = url.resolve_reconnect(tc_url.as_deref());
                let target = crate::rtmp::url::RedactedUrl::tc_url(&resolved);
                let description = url.redact_text(&description);
                self.post(|el| messages::reconnect_request(el, &target, &description));
                if role == Role::Standby {
                    gst::warning!(CAT, "reconnect request from the reconnect target ignored");
                } else if self.redirect.is_some() {
                    gst::info!(
                        CAT,
                        "already following a reconnect request; {target} ignored"
                    );
                } else {
                    let full = format!("{}/{}", resolved.trim_end_matches('/'), url.stream);
                    match RtmpUrl::parse(&full) {
                        Ok(next) if url.scheme == Scheme::Rtmps && next.scheme != Scheme::Rtmps => {
                            // The stream key and credentials would travel unencrypted.
                            self.warn(&format!(
                                "Refused the server's reconnect request to {}: it would move the \
                                 publish from rtmps (encrypted) to unencrypted rtmp. Publishing \
                                 continues on {}.",
                                next.redacted(),
                                url.redacted()
                            ));
                        }
                        Ok(mut next) => {
                            next.username = url.username.clone();
                            next.password = url.password.clone();
                            gst::info!(
                                CAT,
                                "server requests a reconnect to {target}: {description}"
                            );
                            self.redirect = Some(Redirect::Requested(next));
                        }
                        Err(e) => gst::warning!(
                            CAT,
                            "cannot follow the reconnect request to {target}: {}",
                            url.redact_text(&e.to_string())
                        ),
                    }
                }
            }
            ClientEvent::PingResponse { timestamp_ms } => {
                if live.ping.is_some_and(|p| p.timestamp == timestamp_ms) {
                    live.ping = None;
                }
                live.pongs += 1;
                let now = self.now_ms();
                let rtt = now.wrapping_sub(timestamp_ms);
                if rtt < 600_000 && role == Role::Current {
                    self.stats.rtt_ms = rtt;
                    self.post(|el| messages::ping(el, rtt));
                }
            }
            other => {
                gst::debug!(
                    CAT,
                    "server event {} ({role:?})",
                    url.redact_text(&format!("{other:?}"))
                );
            }
        }
    }

    fn now_ms(&self) -> u32 {
        self.epoch.elapsed().as_millis() as u32
    }

    /// Starts or completes a reconnect request's connection.
    fn poll_redirect(&mut self) {
        match self.redirect.take() {
            Some(Redirect::Requested(url)) => {
                let shared = self.shared.clone();
                let wake = Box::new(move || {
                    let g = shared.lock();
                    shared.notify(&g);
                });
                gst::info!(CAT, "connecting to the reconnect target {}", url.redacted());
                let thread_name = format!("rtmp-cn-{}", self.tag);
                let options = self.client_options(self.wanted());
                match Transport::start_establish(&url, &options, &thread_name, wake) {
                    Ok(p) => self.redirect = Some(Redirect::Connecting(url, p)),
                    Err(e) => self.warn_redirect_failed(&url, &e),
                }
            }
            Some(Redirect::Connecting(url, pending)) => match pending.wait(Duration::ZERO) {
                Ok(None) => self.redirect = Some(Redirect::Connecting(url, pending)),
                Ok(Some(parts)) => match self.open_connection(&url, parts) {
                    Ok(c) => {
                        gst::info!(
                            CAT,
                            "publishing on the reconnect target; switching at the next keyframe"
                        );
                        self.redirect = Some(Redirect::Ready(Box::new(c)));
                    }
                    Err(e) => self.warn_redirect_failed(&url, &e),
                },
                // A target that never answers ends here after `timeout` (establishing bounds
                // every step by it).
                Err(e) => self.warn_redirect_failed(&url, &e),
            },
            other => self.redirect = other,
        }
    }

    /// Makes the reconnect target the current connection; the old one is closed cleanly.
    fn switch(&mut self, conn: &mut Connection) {
        let Some(Redirect::Ready(new)) = self.redirect.take() else {
            return;
        };
        let old = std::mem::replace(conn, *new);
        self.url = conn.url.clone();
        self.stats.reconnects += 1;
        {
            let mut g = self.shared.lock();
            g.stats.reconnects = self.stats.reconnects;
        }
        gst::info!(
            CAT,
            "switched to {} after {} frames on the old connection",
            self.url.redacted(),
            old.frames_sent
        );
        self.retire(old);
    }

    /// Stop commands and half-close; the connection lingers until the server closes it.
    fn retire(&mut self, mut old: Connection) {
        old.session.close();
        let mut batch = self.spare.take().unwrap_or_default();
        old.session.drain_transmit(&mut batch);
        let shared = self.shared.clone();
        let _ = old
            .transport
            .write_batch(&mut batch, self.settings.timeout, &|| {
                shared.lock().shutdown
            });
        self.spare = Some(batch.recycle());
        old.transport.shutdown_write();
        let until = Instant::now() + CLOSE_LINGER.min(self.settings.timeout);
        self.closing.push(Closing { conn: old, until });
    }

    /// Sends frames as they become ready until drained (EOS) or stopped; follows reconnect
    /// requests; watches the peer.
    fn publish_loop(&mut self, conn: &mut Connection) -> Result<(), Failure> {
        let timeout = self.settings.timeout;
        let max_q = self.settings.max_queue_time;
        // Media allowed in flight (written, not acknowledged), in stream time: with the drop
        // policy little, so the backlog stays in the queue where dropping is smart; with the
        // block policy up to the queue bound (files may be sent much faster than real time).
        let gate_drop_ms = (max_q / 4)
            .clamp(Duration::from_millis(100), Duration::from_millis(500))
            .as_millis() as u32;
        let gate_block_ms = max_q.max(Duration::from_millis(100)).as_millis() as u32;
        loop {
            // 1. Server input, reconnect request, old connections.
            self.pump_input(conn)?;
            if self.redirect.is_some() {
                self.poll_redirect();
            }
            if !self.closing.is_empty() {
                let now = Instant::now();
                self.closing.retain(|c| c.until > now);
            }

            // 2. Peer health and RTT.
            let now = Instant::now();
            conn.check_peer(now, timeout, LIVENESS_CHECK)?;
            if let Some(interval) = self.settings.ping_interval
                && now >= self.next_ping
            {
                self.next_ping = now + interval;
                self.send_ping(conn, now)?;
            }
            self.update_stats(conn, false);
            // RTMP Acknowledgements tell how far the server application read (see `Liveness`):
            // asked for once the send rate is known, about 50 ms of it apart.
            let want = ack_window_for(self.stats.bitrate);
            if self.stats.bitrate > 0
                && conn.frames_sent > 0
                && (want >= conn.ack_window.saturating_mul(2) || want <= conn.ack_window / 2)
            {
                gst::debug!(CAT, "asking for an acknowledgement every {want} bytes");
                conn.request_acks(want).map_err(publishing)?;
                self.flush_transmit(conn)?;
            }

            // Tracks whose pad was released: their sequence ends once their frames left.
            self.end_released_tracks(conn)?;

            // peak-kbps (pacing.rs): while the bucket is empty frames wait in the queue, where
            // the congestion policy applies.
            let pause = self.settings.pacer.delay(self.stats.bytes_sent, now);
            if !pause.is_zero() {
                let g = self.shared.lock();
                if !g.shutdown {
                    if g.net.is_empty() {
                        let _g = self.shared.wait(g, pause.min(IO_SLICE));
                    }
                    continue;
                }
            }

            // 3. Media.
            let mut wake_producer = false;
            // With peak-kbps, one write takes no more than the bucket holds (plus one frame).
            let burst_bytes = self
                .settings
                .pacer
                .allowance()
                .map_or(BURST_BYTES, |a| a.min(BURST_BYTES));
            let (next, meta_version, drain, primary_video, gate_ms) = {
                let mut g = self.shared.lock();
                if g.shutdown {
                    drop(g);
                    self.abort(conn, "stopped");
                    return Err(Failure::Stopped);
                }
                let drain = g.drain;
                let gate_ms = match g.queue.policy() {
                    Policy::Drop => gate_drop_ms,
                    Policy::Block => gate_block_ms,
                };
                let gated = conn.live.backlog_ms() > gate_ms && !g.queue.is_empty();
                let next = if gated {
                    None
                } else if drain {
                    Some(match g.queue.pop_any() {
                        Some(r) => Pop::Ready(r),
                        None => Pop::Empty,
                    })
                } else {
                    Some(g.queue.pop(now))
                };
                let next = match next {
                    Some(Pop::Ready(first)) => {
                        g.frames_out += 1;
                        // More frames that may leave now go into the same write, within the
                        // send gate (the backlog they make, from the oldest unacknowledged
                        // frame on). Not for a connection's first frame (its start sends the
                        // configuration of the tracks queued behind it, so they must still be
                        // queued) nor while a switch to another server is pending (it happens
                        // between two frames).
                        let oldest = conn
                            .live
                            .in_flight
                            .front()
                            .map_or(first.stamp.timestamp, |&(_, ts)| ts);
                        let mut bytes = first.item.data.len();
                        let mut last_ts = first.stamp.timestamp;
                        self.burst.push(first);
                        while conn.frames_sent > 0
                            && self.redirect.is_none()
                            && self.burst.len() < BURST_FRAMES
                            && bytes < burst_bytes
                            && (!conn.live.tracking() || span_ms(oldest, last_ts) <= gate_ms)
                        {
                            let more = if drain {
                                g.queue.pop_any()
                            } else {
                                match g.queue.pop(now) {
                                    Pop::Ready(r) => Some(r),
                                    Pop::Wait(_) | Pop::Empty => None,
                                }
                            };
                            let Some(r) = more else { break };
                            g.frames_out += 1;
                            bytes += r.item.data.len();
                            last_ts = r.stamp.timestamp;
                            self.burst.push(r);
                        }
                        // Space was freed for a blocked producer (woken after unlocking).
                        wake_producer = g.queue.producer_blocked() && g.waiters > 0;
                        Next::Send
                    }
                    Some(Pop::Wait(deadline)) => Next::Wait(deadline),
                    Some(Pop::Empty) => Next::Empty,
                    None => Next::Gated,
                };
                (
                    next,
                    g.meta_version,
                    drain,
                    g.queue.primary_video(),
                    gate_ms,
                )
            };
            if wake_producer {
                self.shared.cond.notify_all();
            }
            match next {
                Next::Send => {
                    // Switch at a keyframe of the video the publish follows (at any frame
                    // without video). (A burst is one frame while a switch is pending.)
                    let switch_here = matches!(self.redirect, Some(Redirect::Ready(_)))
                        && self.burst.first().is_some_and(|r| {
                            primary_video.is_none_or(|v| r.item.track == v && r.item.keyframe)
                        });
                    if switch_here {
                        self.switch(conn);
                    }
                    let mut burst = std::mem::take(&mut self.burst);
                    let sent = self.send_frames(conn, &mut burst, meta_version);
                    // Frames are released (their buffers unmapped) once written or failed.
                    burst.clear();
                    self.burst = burst;
                    sent?;
                    continue;
                }
                Next::Empty if drain => {
                    return self.close(conn);
                }
                Next::Gated => {
                    // Too much media in flight: let the socket drain; the queue's dropping
                    // rules apply meanwhile.
                    conn.check_peer(Instant::now(), timeout, Duration::ZERO)?;
                    if conn.live.backlog_ms() > gate_ms {
                        let g = self.shared.lock();
                        if g.net.is_empty() && !g.shutdown {
                            let _g = self.shared.wait(g, GATE_POLL);
                        }
                    }
                }
                Next::Empty | Next::Wait(_) => {
                    let mut wait = match next {
                        Next::Wait(Some(deadline)) => {
                            deadline.saturating_duration_since(Instant::now())
                        }
                        _ => IO_SLICE,
                    }
                    .min(IO_SLICE);
                    if self.settings.ping_interval.is_some() {
                        wait = wait.min(self.next_ping.saturating_duration_since(Instant::now()));
                    }
                    if self.redirect.is_some() || !self.closing.is_empty() {
                        wait = wait.min(LIVENESS_CHECK);
                    }
                    let mut g = self.shared.lock();
                    let idle = g.net.is_empty() && !g.shutdown && !g.drain;
                    if idle {
                        g.session_wants = match next {
                            Next::Wait(_) => {
                                g.queue.waiting_for().map_or(Wants::AnyFrame, Wants::Frame)
                            }
                            _ => Wants::AnyFrame,
                        };
                        let mut g = self.shared.wait(g, wait.max(Duration::from_millis(1)));
                        g.session_wants = Wants::Nothing;
                    }
                }
            }
        }
    }

    /// Sends the SequenceEnd of every track whose pad was released or reached EOS and whose
    /// frames all left (see [`Interleaver::take_ended`]) and forgets its configuration, so a
    /// reconnect does not bring it back (nor [`SessionThread::end_sequences`] end it again).
    fn end_released_tracks(&mut self, conn: &mut Connection) -> Result<(), Failure> {
        let Some((tracks, ts)) = self.shared.lock().queue.take_ended() else {
            return Ok(());
        };
        for track in tracks {
            conn.sent_config.remove(track);
            let Some((tag, _)) = self.last_config.remove(track) else {
                continue;
            };
            // Legacy AAC and MP3 have no end-of-sequence packet: the track just stops.
            if conn.frames_sent == 0 || !has_sequence_end(tag) {
                continue;
            }
            let Ok(header) = flv::tag_header(tag, flv::Packet::SequenceEnd, None) else {
                gst::debug!(CAT, "{track} ends (no SequenceEnd in its form)");
                continue;
            };
            gst::info!(CAT, "{track} ends: SequenceEnd at {ts}");
            let mut batch = self.spare.take().unwrap_or_default();
            let r = conn
                .session
                .write_media(media_type(track), ts, &[&header], &mut batch)
                .map_err(publishing)
                .and_then(|()| self.write(conn, &mut batch));
            self.spare = Some(batch.recycle());
            r?;
            match track.kind {
                MediaKind::Video => self.stats.video_messages += 1,
                MediaKind::Audio => self.stats.audio_messages += 1,
            }
        }
        Ok(())
    }

    /// PingRequest for the RTT, and a probe of the server's liveness.
    fn send_ping(&mut self, conn: &mut Connection, now: Instant) -> Result<(), Failure> {
        if conn.live.ping.is_some() && conn.live.pongs > 0 {
            // Still waiting for the last one.
            return Ok(());
        }
        let ts = self.now_ms();
        conn.session.send_ping_request(ts).map_err(publishing)?;
        self.flush_transmit(conn)?;
        conn.live.ping = Some(OutstandingPing {
            timestamp: ts,
            sent_at: now,
        });
        Ok(())
    }

    /// First media on a connection: onMetaData and the configuration of every track whose
    /// configuration is known (the frame's own, the one in use, or a queued frame's), at the
    /// first frame's timestamp, so the server can decode every track from its first frame on.
    fn start_media(
        &mut self,
        conn: &mut Connection,
        frame: &Frame,
        ts: u32,
        batch: &mut ChunkBatch<'_>,
    ) -> Result<(), Failure> {
        let (version, meta, fronts) = {
            let g = self.shared.lock();
            let fronts: Vec<(Track, flv::TagTrack, Arc<TrackConfig>)> = g
                .queue
                .tracks()
                .filter_map(|t| {
                    let f: &Frame = g.queue.front(t)?;
                    Some((t, f.tag_track(), f.config.clone()))
                })
                .collect();
            (g.meta_version, g.meta.clone(), fronts)
        };
        gst::debug!(CAT, "sending onMetaData v{version} at {ts}: {meta:?}");
        conn.session
            .send_metadata(ts, &meta.to_amf0())
            .map_err(publishing)?;
        conn.sent_meta = Some(version);
        let mut configs = self.last_config.clone();
        for (track, tag, config) in fronts {
            configs.entry_with(track, || (tag, config));
        }
        configs.insert(frame.track, (frame.tag_track(), frame.config.clone()));
        for (track, (tag, config)) in configs.iter() {
            self.write_config(conn, track, *tag, config, ts, batch)?;
        }
        Ok(())
    }

    /// Queues a track's configuration (sequence start and the packets that go with it) into
    /// `batch` (copied: it is small) and remembers it.
    fn write_config(
        &mut self,
        conn: &mut Connection,
        track: Track,
        tag: flv::TagTrack,
        config: &Arc<TrackConfig>,
        ts: u32,
        batch: &mut ChunkBatch<'_>,
    ) -> Result<(), Failure> {
        // Every track's first packet on a connection is its configuration: judged first.
        self.judge(conn, track, tag)?;
        gst::info!(
            CAT,
            "sending {track} sequence header ({} bytes) at {ts}",
            config.len()
        );
        let packets = config
            .start()
            .map(|start| (flv::Packet::SequenceStart, start))
            .into_iter()
            .chain(config.extra.iter().map(|(p, b)| (*p, b.as_slice())));
        let mut messages = 0;
        for (packet, body) in packets {
            let header = tag_header(tag, packet)?;
            let mut tmp = ChunkBatch::new();
            conn.session
                .write_media(media_type(track), ts, &[&header, body], &mut tmp)
                .map_err(publishing)?;
            batch.push_owned(&tmp.to_vec());
            messages += 1;
        }
        conn.sent_config.insert(track, config.clone());
        self.last_config.insert(track, (tag, config.clone()));
        match track.kind {
            MediaKind::Video => self.stats.video_messages += messages,
            MediaKind::Audio => self.stats.audio_messages += messages,
        }
        Ok(())
    }

    /// Writes `frames` in order with one vectored write (zero copy: the batch borrows their
    /// payloads), each preceded by metadata and configuration where needed. A frame whose tag
    /// cannot be built ends the burst there: the frames before it are still written.
    fn send_frames(
        &mut self,
        conn: &mut Connection,
        frames: &mut [Released<Frame>],
        meta_version: u64,
    ) -> Result<(), Failure> {
        let mut headers = Vec::with_capacity(frames.len());
        let mut failed = None;
        for r in frames.iter() {
            let (frame, stamp) = (&r.item, &r.stamp);
            if stamp.clamped_by > 0 {
                // Rate-limited: a track that restarts late can produce a burst of these.
                self.late_logged += 1;
                if self.late_logged == 1 || self.late_logged.is_multiple_of(100) {
                    gst::warning!(
                        CAT,
                        "late {} frame moved forward by {} ms to {} ({} late frames so far)",
                        frame.track,
                        stamp.clamped_by,
                        stamp.timestamp,
                        self.late_logged
                    );
                }
            }
            // Keep PTS where it was when a late frame's DTS was moved forward, but never
            // before it.
            let cts = late_cts(frame.cts_ms, stamp.clamped_by);
            let packet = flv::Packet::frame(frame.keyframe, cts);
            let (ts, nano) = nano_stamp(conn, frame, packet, stamp.clamped_by, stamp.timestamp);
            match tag_header_nano(frame.tag_track(), packet, nano) {
                Ok(h) => headers.push((h, cts, ts, nano)),
                Err(f) => {
                    failed = Some(f);
                    break;
                }
            }
        }
        let mut batch = self.spare.take().unwrap_or_default();
        let mut appended = 0;
        for (r, (header, _, ts, _)) in frames.iter().zip(&headers) {
            if let Err(f) = self.append_frame(conn, &r.item, header, *ts, meta_version, &mut batch)
            {
                failed = Some(f);
                break;
            }
            appended += 1;
        }
        let written = if batch.is_empty() {
            Ok(())
        } else {
            self.write(conn, &mut batch)
        };
        self.spare = Some(batch.recycle());
        written?;
        if appended > 0 {
            self.media_ever_sent = true;
        }
        for (r, (_, cts, ts, nano)) in frames.iter().zip(&headers).take(appended) {
            gst::trace!(
                CAT,
                "sent {} frame ts {ts} (+{} ns) cts {cts} key {} disposable {} {} bytes",
                r.item.track,
                nano.unwrap_or(0),
                r.item.keyframe,
                r.item.disposable,
                r.item.data.len()
            );
        }
        match failed {
            Some(f) => Err(f),
            None => Ok(()),
        }
    }

    /// Adds one frame to `batch`, preceded by metadata and configuration where needed, and
    /// counts it as sent on `conn`.
    fn append_frame<'a>(
        &mut self,
        conn: &mut Connection,
        frame: &'a Frame,
        header: &'a [u8],
        ts: u32,
        meta_version: u64,
        batch: &mut ChunkBatch<'a>,
    ) -> Result<(), Failure> {
        if conn.frames_sent == 0 {
            self.start_media(conn, frame, ts, batch)?;
        } else if conn.sent_meta != Some(meta_version) {
            let (version, meta) = {
                let g = self.shared.lock();
                (g.meta_version, g.meta.clone())
            };
            gst::debug!(CAT, "sending onMetaData v{version} at {ts}: {meta:?}");
            conn.session
                .send_metadata(ts, &meta.to_amf0())
                .map_err(publishing)?;
            conn.sent_meta = Some(version);
        }
        let config_changed = conn
            .sent_config
            .get(frame.track)
            .is_none_or(|c| !Arc::ptr_eq(c, &frame.config) && **c != *frame.config);
        if config_changed {
            self.write_config(
                conn,
                frame.track,
                frame.tag_track(),
                &frame.config,
                ts,
                batch,
            )?;
        }
        frame
            .data
            .with_parts(header, |parts| {
                conn.session
                    .write_media(media_type(frame.track), ts, parts, batch)
            })
            .map_err(publishing)?;
        conn.frames_sent += 1;
        conn.last_ts = Some(ts);
        if conn.live.tracking() {
            let end = conn.session.stats().bytes_sent;
            conn.live.in_flight.push_back((end, ts));
        }
        *self.stats.track_frames.entry_with(frame.track, || 0) += 1;
        match frame.track.kind {
            MediaKind::Video => {
                self.stats.video_messages += 1;
                self.stats.video_frames += 1;
            }
            MediaKind::Audio => {
                self.stats.audio_messages += 1;
                self.stats.audio_frames += 1;
            }
        }
        Ok(())
    }

    /// End of stream: stop commands, half-close, wait briefly for the server to close.
    fn close(&mut self, conn: &mut Connection) -> Result<(), Failure> {
        gst::info!(CAT, "all frames sent, closing the publish");
        // A reconnect request not carried out yet is moot now.
        self.redirect = None;
        self.end_sequences(conn)?;
        conn.session.close();
        self.flush_transmit(conn)?;
        conn.transport.shutdown_write();
        // Well within `timeout`: EOS gives up after that long without progress.
        let deadline = Instant::now() + CLOSE_LINGER.min(self.settings.timeout / 2);
        loop {
            match self.wait_input(conn, deadline) {
                Ok(Some(NetEvent::Data(d))) => {
                    // Let the core see final statuses (e.g. Unpublish.Success) for the bus.
                    let Ok(d) = conn.transport.on_raw_input(d) else {
                        break;
                    };
                    if conn.session.handle_input(&d).is_err() {
                        break;
                    }
                    self.handle_events(conn, Role::Current);
                }
                Ok(Some(NetEvent::Closed(_))) | Ok(None) => break,
                Err(f) => return Err(f),
            }
        }
        self.closing.clear();
        self.update_stats(conn, true);
        // Post before Drained releases the EOS: the message must precede EOS on the bus.
        self.post(|el| messages::disconnected(el, "end of stream", false));
        self.disconnect_posted = true;
        self.set_phase(Phase::Drained);
        // Idle until the publish ends so the element's state stays consistent.
        let mut g = self.shared.lock();
        while !g.shutdown {
            g = self.shared.wait(g, IO_SLICE);
        }
        Ok(())
    }

    /// Every track sent on `conn` ends with its SequenceEnd, at the last frame's timestamp (so
    /// timestamps never go back, with tracks that ended earlier too), before the stop commands: the enhanced forms' SequenceEnd, and for legacy H.264 the AVC
    /// end of sequence FFmpeg 9 writes at its trailer. Legacy AAC and MP3 have no such packet
    /// (FFmpeg sends none).
    fn end_sequences(&mut self, conn: &mut Connection) -> Result<(), Failure> {
        let Some(ts) = conn.last_ts else {
            return Ok(());
        };
        let ends: Vec<(Track, flv::TagTrack)> = self
            .last_config
            .iter()
            .filter(|(track, (tag, _))| {
                conn.sent_config.get(*track).is_some() && has_sequence_end(*tag)
            })
            .map(|(track, (tag, _))| (track, *tag))
            .collect();
        for (track, tag) in ends {
            self.write_sequence_end(conn, track, tag, ts)?;
        }
        Ok(())
    }

    /// Writes the SequenceEnd of `track` (sent as `tag`) at `ts`.
    fn write_sequence_end(
        &mut self,
        conn: &mut Connection,
        track: Track,
        tag: flv::TagTrack,
        ts: u32,
    ) -> Result<(), Failure> {
        let header = tag_header(tag, flv::Packet::SequenceEnd)?;
        gst::debug!(CAT, "sending {track} sequence end at {ts}");
        let mut batch = ChunkBatch::new();
        conn.session
            .write_media(media_type(track), ts, &[&header], &mut batch)
            .map_err(publishing)?;
        self.write(conn, &mut batch)?;
        match track.kind {
            MediaKind::Video => self.stats.video_messages += 1,
            MediaKind::Audio => self.stats.audio_messages += 1,
        }
        Ok(())
    }

    /// The end of a publish without EOS: tell the server we stop (best effort, one short
    /// write), half-close and give the server a moment to close its side, so it reads the stop
    /// commands instead of a reset.
    fn abort(&mut self, conn: &mut Connection, reason: &str) {
        self.redirect = None;
        self.closing.clear();
        conn.session.close();
        let mut batch = self.spare.take().unwrap_or_default();
        conn.session.drain_transmit(&mut batch);
        let deadline = Instant::now() + IO_SLICE;
        let sent = conn
            .transport
            .write_batch(&mut batch, IO_SLICE, &|| Instant::now() > deadline)
            .is_ok();
        self.spare = Some(batch.recycle());
        if sent {
            conn.transport.shutdown_write();
            self.linger(
                conn,
                Instant::now() + STOP_LINGER.min(self.settings.timeout / 2),
            );
        }
        self.post(|el| messages::disconnected(el, reason, false));
        self.disconnect_posted = true;
    }

    /// Discards input until the server closed `conn` or `deadline` (while stopping).
    fn linger(&self, conn: &Connection, deadline: Instant) {
        let mut g = self.shared.lock();
        loop {
            while let Some((generation, ev)) = g.net.pop_front() {
                if let NetEvent::Data(d) = &ev {
                    g.net_bytes = g.net_bytes.saturating_sub(d.len());
                }
                if generation == conn.generation && matches!(ev, NetEvent::Closed(_)) {
                    return;
                }
            }
            // The reader threads may wait for space.
            self.shared.notify(&g);
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            g = self.shared.wait(g, (deadline - now).min(IO_SLICE));
        }
    }

    fn update_stats(&mut self, conn: &Connection, force: bool) {
        let now = Instant::now();
        if !force && now.duration_since(self.last_stats_push) < Duration::from_millis(250) {
            return;
        }
        self.last_stats_push = now;
        self.bitrate_samples.push_back((now, self.stats.bytes_sent));
        while self
            .bitrate_samples
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > BITRATE_WINDOW)
        {
            self.bitrate_samples.pop_front();
        }
        if let (Some((t0, b0)), Some((t1, b1))) =
            (self.bitrate_samples.front(), self.bitrate_samples.back())
        {
            let dt = t1.duration_since(*t0).as_secs_f64();
            if dt > 0.2 {
                self.stats.bitrate = ((b1 - b0) as f64 * 8.0 / dt) as u64;
            }
        }
        let s = conn.session.stats();
        self.stats.in_chunk_size = s.in_chunk_size;
        self.stats.out_chunk_size = s.out_chunk_size;
        self.stats.in_window_ack_size = s.in_window_ack_size;
        self.stats.out_window_ack_size = s.out_window_ack_size;
        self.stats.send_backlog_bytes = conn.live.unacked;
        let mut g = self.shared.lock();
        let bad = g.stats.bad_buffers;
        g.stats = StatsSnapshot {
            bad_buffers: bad,
            late_frames: g.queue.late_frames(),
            ..self.stats.clone()
        };
    }
}

/// RTMP message type of a track's media.
fn media_type(track: Track) -> u8 {
    match track.kind {
        MediaKind::Video => msg_type::VIDEO,
        MediaKind::Audio => msg_type::AUDIO,
    }
}

/// What `connect` advertises: the `known` tracks (their pads' caps built them), in the form
/// they were `sent` in if they were (else the form their codec takes: MP3 on track 0 counts as
/// legacy until its first frame tells), then `guessed` tracks (from peer caps) not known.
fn build_wanted(
    known: &[(Track, Codec)],
    sent: &[flv::TagTrack],
    guessed: &[(Track, Codec)],
) -> Wanted {
    let mut tracks: TrackMap<WantedTrack> = TrackMap::new();
    for &(track, codec) in known.iter().chain(guessed) {
        let want = match sent
            .iter()
            .find(|t| t.codec == codec && t.track_id == track.id)
        {
            Some(tag) => wanted_track(*tag),
            None => {
                let mut want = wanted_track(flv::TagTrack::new(codec, track.id));
                want.legacy |= codec == Codec::Mp3 && track.id == 0;
                want
            }
        };
        tracks.entry_with(track, || want);
    }
    Wanted {
        tracks: tracks.values().copied().collect(),
        nano_offsets: NANO_OFFSETS,
    }
}

/// Judges `track`, about to be sent as `tag`, with the tracks `judged` on a connection so far,
/// against the `server`'s answer; None when it was judged so already. `judged` gains it.
fn judge_track(
    server: &ConnectCapabilities,
    judged: &mut TrackMap<WantedTrack>,
    track: Track,
    tag: flv::TagTrack,
) -> Option<Result<Negotiated, Refusal>> {
    let want = wanted_track(tag);
    if judged.get(track) == Some(&want) {
        return None;
    }
    judged.insert(track, want);
    let wanted = Wanted {
        tracks: judged.values().copied().collect(),
        nano_offsets: NANO_OFFSETS,
    };
    Some(caps::negotiate(server, &wanted))
}

/// The track a judged [`WantedTrack`] belongs to.
fn wanted_key(t: &WantedTrack) -> Track {
    Track {
        kind: t.codec.kind(),
        id: t.track_id,
    }
}

/// A track sent as `tag`, as [`caps::negotiate`] judges it: legacy when its packets take the
/// legacy FLV form (H.264 and AAC on track 0, MP3 at a legacy rate), which every server takes.
fn wanted_track(tag: flv::TagTrack) -> WantedTrack {
    WantedTrack {
        codec: tag.codec,
        track_id: tag.track_id,
        legacy: tag.form(flv::Packet::SequenceStart) == flv::TagForm::Legacy,
    }
}

/// Whether a track sent as `tag` ends with a SequenceEnd at EOS: every enhanced form, and
/// legacy H.264 (AVC end of sequence); legacy AAC and MP3 have none.
fn has_sequence_end(tag: flv::TagTrack) -> bool {
    tag.codec == Codec::H264 || tag.form(flv::Packet::SequenceStart) != flv::TagForm::Legacy
}

/// The codec of caps (a pad's peer's, within the pad's template) when all their structures
/// carry the same one.
fn single_codec(caps: &gst::CapsRef) -> Option<Codec> {
    let mut found = None;
    for s in caps.iter() {
        let codec = structure_codec(s)?;
        if found.is_some_and(|f| f != codec) {
            return None;
        }
        found = Some(codec);
    }
    found
}

/// The codec of one caps structure (its media type, for `audio/mpeg` its `mpegversion`).
fn structure_codec(s: &gst::StructureRef) -> Option<Codec> {
    Some(match s.name().as_str() {
        "video/x-h264" => Codec::H264,
        "video/x-h265" => Codec::H265,
        "video/x-av1" => Codec::Av1,
        "video/x-vp9" => Codec::Vp9,
        "audio/x-opus" => Codec::Opus,
        "audio/x-flac" => Codec::Flac,
        "audio/x-ac3" => Codec::Ac3,
        "audio/x-eac3" => Codec::Eac3,
        "audio/mpeg" => {
            // One version, or a list of them (a parser's template: AAC is 2 or 4).
            let v = s.value("mpegversion").ok()?;
            let versions: Vec<i32> = match v.get::<i32>() {
                Ok(one) => vec![one],
                Err(_) => v
                    .get::<gst::List>()
                    .ok()?
                    .iter()
                    .map(|v| v.get::<i32>().ok())
                    .collect::<Option<_>>()?,
            };
            if !versions.is_empty() && versions.iter().all(|v| *v == 1) {
                Codec::Mp3
            } else if !versions.is_empty() && versions.iter().all(|v| matches!(v, 2 | 4)) {
                Codec::Aac
            } else {
                return None;
            }
        }
        _ => return None,
    })
}

/// The track of a sink pad named `name` carrying `kind`: `sink` and `audio` are track 0,
/// `video_%u`/`audio_%u` track %u.
fn pad_track(name: &str, kind: MediaKind) -> Option<Track> {
    let id = match name {
        "sink" => 0,
        "audio" if kind == MediaKind::Audio => 0,
        _ => {
            let (prefix, id) = name.split_once('_')?;
            let id: u8 = id.parse().ok().filter(|id| *id >= 1)?;
            if prefix != kind.name() {
                return None;
            }
            id
        }
    };
    Some(Track { kind, id })
}

/// The millisecond timestamp and ModEx TimestampOffsetNano `frame` goes out with on `conn`
/// (see [`flv::tag_header`]), `ts` being its millisecond timestamp rounded to the nearest. The
/// offset is sent only when the server advertised ModEx and TimestampNanoOffset (others, e.g.
/// MediaMTX, drop the connection on a ModEx they do not expect), and never for a frame moved
/// forward. The offset is unsigned: a timestamp that was rounded up goes out one millisecond
/// earlier with the rest as offset, so the receiver gets every decode time to the nanosecond
/// (the composition time stays: PTS keeps its millisecond precision).
fn nano_stamp(
    conn: &Connection,
    frame: &Frame,
    packet: flv::Packet,
    clamped_by: i64,
    ts: u32,
) -> (u32, Option<u32>) {
    // The legacy form (track 0 H.264/AAC/MP3) cannot carry ModEx.
    let legacy = frame.tag_track().form(packet) == flv::TagForm::Legacy;
    if legacy || !send_mod_ex_nanos(conn) || clamped_by > 0 {
        return (ts, None);
    }
    match frame.dts_sub_ms_ns {
        n if n > 0 => (ts, u32::try_from(n).ok()),
        n if n < 0 && ts > 0 => (ts - 1, u32::try_from(1_000_000 + n).ok()),
        _ => (ts, None),
    }
}

/// Whether `conn`'s server takes ModEx TimestampOffsetNano (its `_result` had ModEx and
/// TimestampNanoOffset in capsEx: [`Negotiated::send_mod_ex_nanos`]).
fn send_mod_ex_nanos(conn: &Connection) -> bool {
    conn.negotiated
        .as_ref()
        .is_some_and(|n| n.send_mod_ex_nanos)
}

/// The tag header of `packet` on `tag` ([`flv::tag_header`]); a packet that cannot be built is
/// an internal error that ends the publish.
fn tag_header(tag: flv::TagTrack, packet: flv::Packet) -> Result<flv::TagHeader, Failure> {
    tag_header_nano(tag, packet, None)
}

/// [`tag_header`] with a TimestampOffsetNano ModEx.
fn tag_header_nano(
    tag: flv::TagTrack,
    packet: flv::Packet,
    nano: Option<u32>,
) -> Result<flv::TagHeader, Failure> {
    flv::tag_header(tag, packet, nano).map_err(|e| {
        gst::error!(CAT, "cannot build the tag of {packet:?} for {tag:?}: {e}");
        publishing(RtmpError::InvalidState(
            "a media packet could not be built for its codec and track",
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::rtmp::caps::{CAPS_EX_MULTITRACK, CAPS_EX_RECONNECT, Outcome};

    fn list(fourccs: &[&str]) -> ConnectCapabilities {
        ConnectCapabilities {
            four_cc_list: fourccs.iter().map(|f| f.to_string()).collect(),
            ..ConnectCapabilities::default()
        }
    }

    fn judged_at_connect(w: &Wanted) -> TrackMap<WantedTrack> {
        let mut judged = TrackMap::new();
        for t in &w.tracks {
            judged.insert(wanted_key(t), *t);
        }
        judged
    }

    #[test]
    fn connect_advertises_the_known_tracks_then_the_guessed_ones() {
        let known = [(Track::VIDEO, Codec::H265), (Track::AUDIO, Codec::Aac)];
        let w = build_wanted(&known, &[], &[(Track::audio(2), Codec::Opus)]);
        assert_eq!(
            w.tracks,
            [
                WantedTrack {
                    codec: Codec::H265,
                    track_id: 0,
                    legacy: false
                },
                WantedTrack {
                    codec: Codec::Aac,
                    track_id: 0,
                    legacy: true
                },
                WantedTrack {
                    codec: Codec::Opus,
                    track_id: 2,
                    legacy: false
                },
            ]
        );
        let c = w.capabilities();
        assert_eq!(c.four_cc_list, ["hvc1", "mp4a", "Opus"]);
        assert_eq!(c.video_four_cc_info_map.len(), 1);
        assert_eq!(c.audio_four_cc_info_map.len(), 2);
        assert!(c.has_caps_ex(CAPS_EX_RECONNECT | CAPS_EX_MULTITRACK));
        // Track 0 only: no Multitrack bit.
        let c = build_wanted(&known, &[], &[]).capabilities();
        assert!(c.has_caps_ex(CAPS_EX_RECONNECT) && !c.has_caps_ex(CAPS_EX_MULTITRACK));
        // A guess never overrides what the caps said.
        let w = build_wanted(&known, &[], &[(Track::VIDEO, Codec::H264)]);
        assert_eq!(w.tracks[0].codec, Codec::H265);
        // Nothing known: capsEx alone.
        assert!(
            build_wanted(&[], &[], &[])
                .capabilities()
                .four_cc_list
                .is_empty()
        );
    }

    #[test]
    fn mp3_counts_as_legacy_until_its_form_is_known() {
        let known = [(Track::AUDIO, Codec::Mp3)];
        assert!(build_wanted(&known, &[], &[]).tracks[0].legacy);
        // Sent as `.mp3` (a rate the legacy header cannot say): enhanced from then on.
        let sent = [flv::TagTrack::new(Codec::Mp3, 0)];
        assert!(!build_wanted(&known, &sent, &[]).tracks[0].legacy);
        let legacy = flv::TagTrack {
            legacy_sound: flv::SoundFlags::for_mp3(44_100, 2),
            ..flv::TagTrack::new(Codec::Mp3, 0)
        };
        assert!(legacy.legacy_sound.is_some());
        assert!(build_wanted(&known, &[legacy], &[]).tracks[0].legacy);
    }

    #[test]
    fn a_late_track_the_server_excludes_is_refused_before_it_is_sent() {
        // Connect knew only the audio; the server lists AVC and AV1.
        let server = list(&["avc1", "av01", "mp4a"]);
        let w = build_wanted(&[(Track::AUDIO, Codec::Aac)], &[], &[]);
        assert_eq!(
            caps::negotiate(&server, &w).unwrap().outcome,
            Outcome::LegacyOnly
        );
        let mut judged = judged_at_connect(&w);
        // The audio track's first packet: judged at connect already.
        let aac = flv::TagTrack::new(Codec::Aac, 0);
        assert!(judge_track(&server, &mut judged, Track::AUDIO, aac).is_none());
        let hevc = flv::TagTrack::new(Codec::H265, 0);
        let err = judge_track(&server, &mut judged, Track::VIDEO, hevc)
            .unwrap()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "server does not accept HEVC (hvc1); it lists avc1, av01; send a codec it lists, or \
             publish to a server that accepts HEVC."
        );
        // AV1 instead is taken.
        let mut judged = judged_at_connect(&w);
        let av1 = flv::TagTrack::new(Codec::Av1, 0);
        let n = judge_track(&server, &mut judged, Track::VIDEO, av1)
            .unwrap()
            .unwrap();
        assert_eq!(n.outcome, Outcome::Confirmed);
        assert!(judge_track(&server, &mut judged, Track::VIDEO, av1).is_none());
    }

    #[test]
    fn a_late_track_to_a_silent_server_is_sent_with_an_info() {
        let server = ConnectCapabilities::default();
        let mut judged = TrackMap::new();
        let h264 = flv::TagTrack::new(Codec::H264, 0);
        let n = judge_track(&server, &mut judged, Track::VIDEO, h264)
            .unwrap()
            .unwrap();
        assert_eq!((n.outcome, n.info()), (Outcome::LegacyOnly, None));
        let opus = flv::TagTrack::new(Codec::Opus, 0);
        let n = judge_track(&server, &mut judged, Track::AUDIO, opus)
            .unwrap()
            .unwrap();
        assert_eq!(
            n.info().as_deref(),
            Some("server did not say which codecs it accepts; sending Opus (Opus) anyway.")
        );
    }

    #[test]
    fn a_late_track_above_0_needs_multitrack_in_caps_ex() {
        let server = ConnectCapabilities {
            caps_ex: Some(CAPS_EX_RECONNECT),
            ..list(&["*"])
        };
        let w = build_wanted(&[(Track::VIDEO, Codec::H264)], &[], &[]);
        let mut judged = judged_at_connect(&w);
        let second = flv::TagTrack::new(Codec::H264, 1);
        assert_eq!(
            judge_track(&server, &mut judged, Track::video(1), second),
            Some(Err(Refusal::Multitrack { caps_ex: 1 }))
        );
    }

    #[test]
    fn sequence_end_for_enhanced_forms_and_legacy_h264_only() {
        let tag = flv::TagTrack::new;
        assert!(has_sequence_end(tag(Codec::H264, 0)));
        assert!(has_sequence_end(tag(Codec::H264, 1)));
        assert!(has_sequence_end(tag(Codec::H265, 0)));
        assert!(has_sequence_end(tag(Codec::Opus, 0)));
        assert!(has_sequence_end(tag(Codec::Aac, 1)));
        assert!(!has_sequence_end(tag(Codec::Aac, 0)));
        let legacy_mp3 = flv::TagTrack {
            legacy_sound: flv::SoundFlags::for_mp3(44_100, 2),
            ..tag(Codec::Mp3, 0)
        };
        assert!(!has_sequence_end(legacy_mp3));
        assert!(has_sequence_end(tag(Codec::Mp3, 0)));
        // Legacy H.264 ends with the AVC end of sequence FFmpeg 9 writes at its trailer.
        let h = tag_header(tag(Codec::H264, 0), flv::Packet::SequenceEnd).unwrap();
        assert_eq!(&*h, &[0x17, 2, 0, 0, 0]);
    }

    #[test]
    fn peer_caps_name_one_codec_and_pads_their_tracks() {
        gst::init().unwrap();
        let codec = |caps: &str| single_codec(&caps.parse::<gst::Caps>().unwrap());
        assert_eq!(codec("video/x-h264, stream-format=avc"), Some(Codec::H264));
        assert_eq!(
            codec("video/x-h265; video/x-h265, stream-format=hvc1"),
            Some(Codec::H265)
        );
        assert_eq!(codec("audio/mpeg, mpegversion=4"), Some(Codec::Aac));
        assert_eq!(
            codec("audio/mpeg, mpegversion=(int){ 2, 4 }"),
            Some(Codec::Aac)
        );
        assert_eq!(
            codec("audio/mpeg, mpegversion=1, layer=3"),
            Some(Codec::Mp3)
        );
        assert_eq!(codec("audio/x-opus"), Some(Codec::Opus));
        // Several codecs (e.g. the whole template, from an upstream that can make anything),
        // nothing, or a list of versions: unknown.
        assert_eq!(codec("video/x-h264; video/x-h265"), None);
        assert_eq!(codec("audio/mpeg, mpegversion=(int){ 1, 4 }"), None);
        assert_eq!(codec("EMPTY"), None);
        assert_eq!(codec("video/x-raw"), None);

        assert_eq!(pad_track("sink", MediaKind::Audio), Some(Track::AUDIO));
        assert_eq!(pad_track("sink", MediaKind::Video), Some(Track::VIDEO));
        assert_eq!(pad_track("audio", MediaKind::Audio), Some(Track::AUDIO));
        assert_eq!(pad_track("audio", MediaKind::Video), None);
        assert_eq!(
            pad_track("video_3", MediaKind::Video),
            Some(Track::video(3))
        );
        assert_eq!(
            pad_track("audio_255", MediaKind::Audio),
            Some(Track::audio(255))
        );
        assert_eq!(pad_track("video_3", MediaKind::Audio), None);
        assert_eq!(pad_track("video_0", MediaKind::Video), None);
        assert_eq!(pad_track("video_256", MediaKind::Video), None);
    }

    #[test]
    fn span_ms_wraps_and_never_goes_negative() {
        assert_eq!(span_ms(1000, 1033), 33);
        assert_eq!(span_ms(u32::MAX - 10, 20), 31);
        assert_eq!(span_ms(1033, 1000), 0);
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum_with_bounded_jitter() {
        let base = Duration::from_millis(1000);
        let max = Duration::from_millis(30_000);
        let mid = |n| backoff(base, max, n, 0.5);
        assert_eq!(mid(1), Duration::from_millis(1000));
        assert_eq!(mid(2), Duration::from_millis(2000));
        assert_eq!(mid(5), Duration::from_millis(16_000));
        assert_eq!(mid(6), Duration::from_millis(30_000));
        assert_eq!(mid(1000), Duration::from_millis(30_000));
        assert_eq!(backoff(base, max, 1, 0.0), Duration::from_millis(800));
        assert_eq!(backoff(base, max, 1, 1.0), Duration::from_millis(1200));
        assert_eq!(backoff(Duration::ZERO, max, 3, 1.0), Duration::ZERO);
    }
}
