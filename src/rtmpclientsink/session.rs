//! The session thread: one per element, spawned in `start()` and joined in `stop()`. It owns the
//! connection, drives the sans-IO [`crate::rtmp::session::Session`], sends the frames the
//! streaming threads queue, answers the server (the core produces pongs/acks; this thread
//! flushes them), measures RTT and turns everything the server says into bus messages.
//!
//! All waiting happens on one condition variable ([`Shared::cond`]) guarding [`Inner`]: frames
//! from the streaming threads, raw bytes from the reader thread, and stop/flush/drain requests
//! all wake the same wait, which never sleeps longer than [`IO_SLICE`].
//!
//! Reconnecting later only needs another call of [`SessionThread::connect`]: the sequence headers
//! (kept per track in `sent_config`'s source, the frames' `config`) and the metadata live in the
//! thread's state, not in the connection.

use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;

use crate::codec::flv;
use crate::rtmp::amf0::Amf0Value;
use crate::rtmp::auth::AuthMod;
use crate::rtmp::chunk::ChunkBatch;
use crate::rtmp::connection::ClientOptions;
use crate::rtmp::error::Error as RtmpError;
use crate::rtmp::message::msg_type;
use crate::rtmp::session::{ClientEvent, Session, StopCommands};
use crate::rtmp::tls::TlsOptions;
use crate::rtmp::url::RtmpUrl;

use super::format::StreamMeta;
use super::frame::Frame;
use super::imp::CAT;
use super::messages::{self, StatsSnapshot};
use super::queue::{Interleaver, Pop, QueueConfig, Released, Track};
use super::timeline::clamp_cts;
use super::transport::{IO_SLICE, NetEvent, Reader, Transport, WriteError};

/// Longest a streaming thread waits on [`Shared::cond`] before re-checking its flags.
pub const WAIT_SLICE: Duration = IO_SLICE;
/// Interval of the PingRequests that measure the round-trip time while publishing.
pub const PING_INTERVAL: Duration = Duration::from_secs(5);
/// Longest wait for the server to close the connection after our stop commands.
const CLOSE_LINGER: Duration = Duration::from_secs(2);
/// Most received bytes buffered for the session thread before the reader thread pauses.
const MAX_NET_BACKLOG: usize = 4 * 1024 * 1024;
/// Window of the `bitrate` statistic.
const BITRATE_WINDOW: Duration = Duration::from_secs(3);

/// Index of the `sink` pad in [`Inner::flushing`].
pub const SINK_PAD: usize = 0;
/// Index of the `audio` request pad in [`Inner::flushing`].
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
    /// EOS drained and the connection closed cleanly.
    Drained,
    /// Failed; an error was posted (or handed to a waiting `start()`).
    Failed,
}

/// State shared between the streaming threads, the reader thread and the session thread.
#[derive(Debug)]
pub struct Inner {
    /// Frames waiting to be sent.
    pub queue: Interleaver<Frame>,
    /// Raw input from the reader thread, tagged with the connection it belongs to.
    net: std::collections::VecDeque<(u64, NetEvent)>,
    net_bytes: usize,
    /// `stop()` asked the session thread to end.
    pub shutdown: bool,
    /// A pad is flushing (index: [`SINK_PAD`] / [`AUDIO_PAD`]): its producer returns FLUSHING.
    pub flushing: [bool; 2],
    /// End of stream: send everything queued, then close the publish cleanly.
    pub drain: bool,
    /// Connection phase.
    pub phase: Phase,
    /// A synchronous `start()` (async-connect=false) waits: hand the error to it instead of
    /// posting it.
    pub start_waiting: bool,
    /// The error for a waiting `start()`.
    pub start_error: Option<gst::ErrorMessage>,
    /// What onMetaData says; bumped `meta_version` means "send again".
    pub meta: StreamMeta,
    /// Version of `meta`.
    pub meta_version: u64,
    /// Counters for the `stats` property.
    pub stats: StatsSnapshot,
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
    /// Signalled on every change of [`Inner`].
    pub cond: Condvar,
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
                flushing: [false; 2],
                drain: false,
                phase: Phase::Idle,
                start_waiting: false,
                start_error: None,
                meta: StreamMeta::default(),
                meta_version: 0,
                stats: StatsSnapshot::default(),
            }),
            cond: Condvar::new(),
        }
    }

    /// Back to the state of a fresh element (called in `start()`), with new queue limits.
    pub fn reset(&self, cfg: QueueConfig) {
        let mut g = self.lock();
        g.queue = Interleaver::new(cfg);
        g.net.clear();
        g.net_bytes = 0;
        g.shutdown = false;
        g.flushing = [false; 2];
        g.drain = false;
        g.phase = Phase::Connecting;
        g.start_waiting = false;
        g.start_error = None;
        g.meta = StreamMeta::default();
        g.meta_version += 1;
        g.stats = StatsSnapshot::default();
        self.cond.notify_all();
    }

    /// Sets a pad's flushing flag and wakes whoever waits for it.
    pub fn set_flushing(&self, pad: usize, flushing: bool) {
        let mut g = self.lock();
        g.flushing[pad] = flushing;
        self.cond.notify_all();
    }

    /// Locks, ignoring poisoning: a panic elsewhere must not turn into a panic here (the
    /// session thread's panics are caught and reported as errors).
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits at most `timeout` for a change.
    pub fn wait<'a>(&self, g: MutexGuard<'a, Inner>, timeout: Duration) -> MutexGuard<'a, Inner> {
        match self.cond.wait_timeout(g, timeout) {
            Ok((g, _)) => g,
            Err(e) => e.into_inner().0,
        }
    }

    /// Queues a frame, blocking while the queue is full. Returns FLUSHING when the track is
    /// flushing or the element stops, ERROR when the session failed.
    pub fn push(&self, frame: Frame, pad: usize) -> Result<gst::FlowSuccess, gst::FlowError> {
        let track = frame.track;
        let dts = frame.dts_ms;
        let size = frame.data.as_slice().len();
        let mut g = self.lock();
        loop {
            if g.shutdown || g.flushing[pad] {
                return Err(gst::FlowError::Flushing);
            }
            if g.phase == Phase::Failed {
                return Err(gst::FlowError::Error);
            }
            if g.queue.can_push(track, dts, size) {
                g.queue.push(frame, Instant::now());
                g.queue.set_producer_blocked(false);
                self.cond.notify_all();
                return Ok(gst::FlowSuccess::Ok);
            }
            g.queue.set_producer_blocked(true);
            self.cond.notify_all();
            g = self.wait(g, IO_SLICE);
        }
    }

    /// Changes the metadata; the session thread re-sends onMetaData if it differs.
    pub fn update_meta(&self, f: impl FnOnce(&mut StreamMeta)) {
        let mut g = self.lock();
        let before = g.meta.clone();
        f(&mut g.meta);
        if g.meta != before {
            g.meta_version += 1;
            self.cond.notify_all();
        }
    }
}

/// Everything the session thread needs to know, copied from the settings in `start()`.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// Where to publish.
    pub url: RtmpUrl,
    /// live / record / append.
    pub publish_type: String,
    /// flashVer of connect.
    pub flash_version: String,
    /// Our chunk size.
    pub chunk_size: u32,
    /// Connect, each protocol step, and a stalled write.
    pub timeout: Duration,
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
    /// Extra AMF values appended to `connect`.
    pub extra_connect_args: Vec<Amf0Value>,
}

/// Spawns the session thread.
pub fn spawn(
    element: &gst::Element,
    shared: Arc<Shared>,
    settings: SessionSettings,
) -> std::io::Result<thread::JoinHandle<()>> {
    let weak = element.downgrade();
    let name = format!("rtmp-session-{}", element.name());
    thread::Builder::new().name(name).spawn(move || {
        let shared2 = shared.clone();
        let weak2 = weak.clone();
        let result = panic::catch_unwind(AssertUnwindSafe(move || {
            let mut t = SessionThread::new(weak, shared, settings);
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

/// Marks the session failed and reports `msg` (to a waiting `start()` or on the bus).
fn fail(weak: &glib::WeakRef<gst::Element>, shared: &Shared, msg: gst::ErrorMessage) {
    {
        let mut g = shared.lock();
        if g.start_waiting {
            g.start_error = Some(msg);
            g.phase = Phase::Failed;
            shared.cond.notify_all();
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
    shared.cond.notify_all();
}

/// How the session thread ended abnormally.
#[derive(Debug)]
enum Failure {
    /// `stop()` was called.
    Stopped,
    /// An RTMP/network error, with the phase it happened in.
    Rtmp { err: RtmpError, publishing: bool },
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

/// Maps an RTMP error to what a user reads, with a GStreamer error domain chosen here and only
/// here: OpenWrite while connecting/publishing starts, Write once media flows, NotFound for an
/// unknown host, Settings for a bad URL.
pub fn error_message(err: &RtmpError, url: &RtmpUrl, publishing: bool) -> gst::ErrorMessage {
    let text = url.redact_text(&capitalize(&err.to_string()));
    let debug = format!("url: {}", url.redacted());
    match err {
        RtmpError::HostNotFound { .. } => {
            gst::error_msg!(gst::ResourceError::NotFound, ("{}", text), ["{}", debug])
        }
        RtmpError::InvalidUrl(_) => {
            gst::error_msg!(gst::ResourceError::Settings, ("{}", text), ["{}", debug])
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

/// One live connection.
struct Connection {
    transport: Transport,
    session: Session,
    reader: Reader,
    generation: u64,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.transport.shutdown();
        self.reader.stop();
    }
}

struct SessionThread {
    element: glib::WeakRef<gst::Element>,
    shared: Arc<Shared>,
    settings: SessionSettings,
    /// Time origin of ping timestamps.
    epoch: Instant,
    generation: u64,
    /// Sequence header last sent per track on the current connection.
    sent_config: [Option<Arc<[u8]>>; 2],
    /// Metadata version last sent on the current connection (None: never).
    sent_meta: Option<u64>,
    next_ping: Instant,
    spare: Option<ChunkBatch<'static>>,
    stats: StatsSnapshot,
    bitrate_samples: std::collections::VecDeque<(Instant, u64)>,
    last_stats_push: Instant,
    late_logged: u64,
}

impl SessionThread {
    fn new(
        element: glib::WeakRef<gst::Element>,
        shared: Arc<Shared>,
        settings: SessionSettings,
    ) -> Self {
        let now = Instant::now();
        SessionThread {
            element,
            shared,
            settings,
            epoch: now,
            generation: 0,
            sent_config: [None, None],
            sent_meta: None,
            next_ping: now + PING_INTERVAL,
            spare: Some(ChunkBatch::new()),
            stats: StatsSnapshot::default(),
            bitrate_samples: Default::default(),
            last_stats_push: now,
            late_logged: 0,
        }
    }

    fn post(&self, f: impl FnOnce(&gst::Element) -> gst::Message) {
        if let Some(el) = self.element.upgrade() {
            let msg = f(&el);
            let _ = el.post_message(msg);
        }
    }

    /// The body: connect, publish, send until drained or stopped.
    fn run(&mut self) -> Result<(), Failure> {
        let mut conn = self.connect()?;
        self.publish_loop(&mut conn)
    }

    /// Reports how the thread ended.
    fn finish(&mut self, r: Result<(), Failure>) {
        match r {
            Ok(()) | Err(Failure::Stopped) => {}
            Err(Failure::Rtmp { err, publishing }) => {
                let url = &self.settings.url;
                gst::error!(CAT, "session failed: {}", url.redact_text(&err.to_string()));
                if !publishing {
                    self.post(|el| {
                        messages::progress(el, gst::ProgressType::Error, "Could not publish")
                    });
                } else {
                    let reason = url.redact_text(&err.to_string());
                    self.post(|el| messages::disconnected(el, &reason));
                }
                // A server that drops the connection right after accepting the publish, before
                // any media, refused the publish in effect (nginx `deny publish` does this).
                let refused = publishing
                    && self.stats.video_frames + self.stats.audio_frames == 0
                    && matches!(err, RtmpError::ConnectionClosed(_));
                let mut msg = error_message(&err, url, publishing && !refused);
                if refused {
                    msg = gst::error_msg!(
                        gst::ResourceError::OpenWrite,
                        (
                            "The server closed the connection right after the publish started, before any media: \
                             it probably does not allow publishing to {}",
                            url.redacted()
                        ),
                        ["{}", url.redact_text(&err.to_string())]
                    );
                }
                fail(&self.element, &self.shared, msg);
            }
        }
    }

    /// Opens the connection and runs the handshake up to `NetStream.Publish.Start` (TLS and
    /// authentication included). Called again for a reconnect.
    fn connect(&mut self) -> Result<Connection, Failure> {
        let url = self.settings.url.clone();
        let timeout = self.settings.timeout;
        let opening = |err| Failure::Rtmp {
            err,
            publishing: false,
        };
        {
            let mut g = self.shared.lock();
            if g.phase != Phase::Failed {
                g.phase = Phase::Connecting;
            }
        }
        let text = format!("Connecting to {}", url.authority());
        self.post(|el| messages::progress(el, gst::ProgressType::Start, &text));
        gst::info!(CAT, "connecting to {}", url.redacted());

        let options = ClientOptions {
            publish_type: self.settings.publish_type.clone(),
            timeout,
            chunk_size: self.settings.chunk_size,
            flash_version: self.settings.flash_version.clone(),
            stop_commands: self.settings.stop_commands,
            tls: self.settings.tls.clone(),
            authmod: self.settings.authmod,
            username: self.settings.username.clone(),
            password: self.settings.password.clone(),
            extra_connect_args: self.settings.extra_connect_args.clone(),
            ..ClientOptions::default()
        };
        let shared = self.shared.clone();
        let (mut transport, session, events) =
            Transport::establish(&url, &options, &|| shared.lock().shutdown)
                .map_err(opening)?
                .ok_or(Failure::Stopped)?;
        transport
            .configure()
            .map_err(|e| opening(RtmpError::Io(e)))?;

        self.generation += 1;
        let generation = self.generation;
        let raw = transport
            .raw_reader()
            .map_err(|e| opening(RtmpError::Io(e)))?;
        let shared = self.shared.clone();
        let reader = Reader::spawn(raw, move |ev| {
            let mut g = shared.lock();
            // Pause reading while the session thread is behind (bounded memory).
            while g.net_bytes > MAX_NET_BACKLOG && !g.shutdown {
                g = shared.wait(g, IO_SLICE);
            }
            if g.shutdown {
                return false;
            }
            if let NetEvent::Data(d) = &ev {
                g.net_bytes += d.len();
            }
            g.net.push_back((generation, ev));
            shared.cond.notify_all();
            true
        })
        .map_err(|e| opening(RtmpError::Io(e)))?;
        let leftover = transport.pending_plaintext();
        let mut conn = Connection {
            transport,
            session,
            reader,
            generation,
        };
        self.sent_config = [None, None];
        self.sent_meta = None;
        for ev in events {
            self.handle_event(ev, false);
        }
        if !leftover.is_empty() {
            conn.session.handle_input(&leftover).map_err(opening)?;
        }
        self.handle_events(&mut conn, false);
        self.flush_transmit(&mut conn)?;
        {
            let mut g = self.shared.lock();
            if g.phase == Phase::Connecting {
                g.phase = Phase::Publishing;
            }
            self.shared.cond.notify_all();
        }
        self.post(|el| messages::progress(el, gst::ProgressType::Complete, "Publishing"));
        self.next_ping = Instant::now() + PING_INTERVAL;
        Ok(conn)
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
                    self.shared.cond.notify_all();
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

    /// Takes all pending input of this connection without waiting.
    fn take_input(&self, conn: &Connection) -> Vec<NetEvent> {
        let mut g = self.shared.lock();
        let mut out = Vec::new();
        while let Some((conn_gen, ev)) = g.net.pop_front() {
            if let NetEvent::Data(d) = &ev {
                g.net_bytes = g.net_bytes.saturating_sub(d.len());
            }
            if conn_gen == conn.generation {
                out.push(ev);
            }
        }
        if !out.is_empty() {
            self.shared.cond.notify_all();
        }
        out
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
    fn handle_events(&mut self, conn: &mut Connection, publishing: bool) {
        while let Some(ev) = conn.session.poll_event() {
            self.handle_event(ev, publishing);
        }
    }

    fn handle_event(&mut self, ev: ClientEvent, publishing: bool) {
        let url = self.settings.url.clone();
        {
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
                    let target = url.redact_text(&url.resolve_reconnect(tc_url.as_deref()));
                    let description = url.redact_text(&description);
                    gst::warning!(
                        CAT,
                        "server requests a reconnect to {target}: {description} (not supported yet)"
                    );
                    self.post(|el| messages::reconnect_request(el, &target, &description));
                }
                ClientEvent::PingResponse { timestamp_ms } => {
                    let now = self.now_ms();
                    let rtt = now.wrapping_sub(timestamp_ms);
                    if rtt < 600_000 {
                        self.stats.rtt_ms = rtt;
                        self.post(|el| messages::ping(el, rtt));
                    }
                }
                other => {
                    gst::debug!(CAT, "server event {:?} (publishing {publishing})", other);
                }
            }
        }
    }

    fn now_ms(&self) -> u32 {
        self.epoch.elapsed().as_millis() as u32
    }

    /// Sends frames as they become ready until drained (EOS) or stopped.
    fn publish_loop(&mut self, conn: &mut Connection) -> Result<(), Failure> {
        let publishing = |err| Failure::Rtmp {
            err,
            publishing: true,
        };
        loop {
            // 1. Server input.
            for ev in self.take_input(conn) {
                match ev {
                    NetEvent::Data(d) => {
                        self.stats.bytes_received += d.len() as u64;
                        let d = conn.transport.on_raw_input(d).map_err(publishing)?;
                        conn.session.handle_input(&d).map_err(publishing)?;
                    }
                    NetEvent::Closed(reason) => {
                        return Err(publishing(RtmpError::ConnectionClosed(
                            reason.map(|r| format!(": {r}")).unwrap_or_default(),
                        )));
                    }
                }
            }
            self.handle_events(conn, true);
            self.flush_transmit(conn)?;

            // 2. RTT measurement.
            let now = Instant::now();
            if now >= self.next_ping {
                self.next_ping = now + PING_INTERVAL;
                let ts = self.now_ms();
                conn.session.send_ping_request(ts).map_err(publishing)?;
                self.flush_transmit(conn)?;
            }
            self.update_stats(conn, false);

            // 3. Media.
            let (next, meta, drain) = {
                let mut g = self.shared.lock();
                if g.shutdown {
                    drop(g);
                    self.abort(conn);
                    return Err(Failure::Stopped);
                }
                let drain = g.drain;
                let next = if drain {
                    match g.queue.pop_any() {
                        Some(r) => Pop::Ready(r),
                        None => Pop::Empty,
                    }
                } else {
                    g.queue.pop(Instant::now())
                };
                let meta =
                    if matches!(next, Pop::Ready(_)) && self.sent_meta != Some(g.meta_version) {
                        Some((g.meta_version, g.meta.clone()))
                    } else {
                        None
                    };
                if matches!(next, Pop::Ready(_)) {
                    // Space was freed for a blocked producer.
                    self.shared.cond.notify_all();
                }
                (next, meta, drain)
            };
            match next {
                Pop::Ready(r) => {
                    if let Some((version, meta)) = meta {
                        let ts = r.stamp.timestamp;
                        gst::debug!(CAT, "sending onMetaData v{version} at {ts}: {meta:?}");
                        conn.session
                            .send_metadata(ts, &meta.to_amf0())
                            .map_err(publishing)?;
                        self.sent_meta = Some(version);
                    }
                    self.send_frame(conn, r)?;
                    continue;
                }
                Pop::Empty if drain => {
                    return self.close(conn);
                }
                Pop::Empty | Pop::Wait(_) => {
                    let wait = match next {
                        Pop::Wait(Some(deadline)) => {
                            deadline.saturating_duration_since(Instant::now())
                        }
                        _ => IO_SLICE,
                    }
                    .min(IO_SLICE)
                    .min(self.next_ping.saturating_duration_since(Instant::now()));
                    let g = self.shared.lock();
                    let idle = g.net.is_empty() && !g.shutdown && !g.drain;
                    if idle {
                        let _g = self.shared.wait(g, wait.max(Duration::from_millis(1)));
                    }
                }
            }
        }
    }

    /// Writes one frame, preceded by its sequence header when that changed.
    fn send_frame(&mut self, conn: &mut Connection, r: Released<Frame>) -> Result<(), Failure> {
        let publishing = |err| Failure::Rtmp {
            err,
            publishing: true,
        };
        let Released { item: frame, stamp } = r;
        if stamp.clamped_by > 0 {
            // Rate-limited: a track that restarts late can produce a burst of these.
            self.late_logged += 1;
            if self.late_logged == 1 || self.late_logged.is_multiple_of(100) {
                gst::warning!(
                    CAT,
                    "late {} frame moved forward by {} ms to {} ({} late frames so far)",
                    frame.track.name(),
                    stamp.clamped_by,
                    stamp.timestamp,
                    self.late_logged
                );
            }
        }
        let ts = stamp.timestamp;
        let idx = frame.track as usize;
        let (type_id, seq_hdr): (u8, Vec<u8>) = match frame.track {
            Track::Video => (
                msg_type::VIDEO,
                flv::avc_video_header(flv::FrameType::Key, flv::AvcPacketType::SequenceHeader, 0)
                    .to_vec(),
            ),
            Track::Audio => (
                msg_type::AUDIO,
                flv::aac_audio_header(flv::AacPacketType::SequenceHeader).to_vec(),
            ),
        };
        let mut batch = self.spare.take().unwrap_or_default();
        let config_changed = self.sent_config[idx]
            .as_ref()
            .is_none_or(|c| !Arc::ptr_eq(c, &frame.config) && **c != *frame.config);
        if config_changed {
            gst::info!(
                CAT,
                "sending {} sequence header ({} bytes) at {ts}",
                frame.track.name(),
                frame.config.len()
            );
            conn.session
                .write_media(type_id, ts, &[&seq_hdr, &frame.config], &mut batch)
                .map_err(publishing)?;
            self.sent_config[idx] = Some(frame.config.clone());
            match frame.track {
                Track::Video => self.stats.video_messages += 1,
                Track::Audio => self.stats.audio_messages += 1,
            }
        }
        // Keep PTS where it was when a late frame's DTS was moved forward.
        let cts = clamp_cts(frame.cts_ms - stamp.clamped_by);
        let header: Vec<u8> = match frame.track {
            Track::Video => flv::avc_video_header(
                if frame.keyframe {
                    flv::FrameType::Key
                } else {
                    flv::FrameType::Inter
                },
                flv::AvcPacketType::Nalu,
                cts,
            )
            .to_vec(),
            Track::Audio => flv::aac_audio_header(flv::AacPacketType::Raw).to_vec(),
        };
        let data = frame.data.as_slice();
        let result = conn
            .session
            .write_media(type_id, ts, &[&header, data], &mut batch)
            .map_err(publishing)
            .and_then(|()| self.write(conn, &mut batch));
        self.spare = Some(batch.recycle());
        result?;
        match frame.track {
            Track::Video => {
                self.stats.video_messages += 1;
                self.stats.video_frames += 1;
            }
            Track::Audio => {
                self.stats.audio_messages += 1;
                self.stats.audio_frames += 1;
            }
        }
        gst::trace!(
            CAT,
            "sent {} frame ts {ts} cts {cts} key {} disposable {} {} bytes",
            frame.track.name(),
            frame.keyframe,
            frame.disposable,
            data.len()
        );
        Ok(())
    }

    /// End of stream: stop commands, half-close, wait briefly for the server to close.
    fn close(&mut self, conn: &mut Connection) -> Result<(), Failure> {
        gst::info!(CAT, "all frames sent, closing the publish");
        conn.session.close();
        self.flush_transmit(conn)?;
        conn.transport.shutdown_write();
        let deadline = Instant::now() + CLOSE_LINGER.min(self.settings.timeout);
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
                    self.handle_events(conn, true);
                }
                Ok(Some(NetEvent::Closed(_))) | Ok(None) => break,
                Err(f) => return Err(f),
            }
        }
        self.update_stats(conn, true);
        // Post before Drained releases the EOS: the message must precede EOS on the bus.
        self.post(|el| messages::disconnected(el, "end of stream"));
        {
            let mut g = self.shared.lock();
            g.phase = Phase::Drained;
            self.shared.cond.notify_all();
        }
        // Idle until stop() so the element's state stays consistent.
        let mut g = self.shared.lock();
        while !g.shutdown {
            g = self.shared.wait(g, IO_SLICE);
        }
        Ok(())
    }

    /// `stop()` without EOS: tell the server we stop (best effort, one short write), then close.
    fn abort(&mut self, conn: &mut Connection) {
        conn.session.close();
        let mut batch = self.spare.take().unwrap_or_default();
        conn.session.drain_transmit(&mut batch);
        let deadline = Instant::now() + IO_SLICE;
        let _ = conn
            .transport
            .write_batch(&mut batch, IO_SLICE, &|| Instant::now() > deadline);
        self.spare = Some(batch.recycle());
        self.post(|el| messages::disconnected(el, "stopped"));
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
        let mut g = self.shared.lock();
        let bad = g.stats.bad_buffers;
        g.stats = StatsSnapshot {
            bad_buffers: bad,
            late_frames: g.queue.late_frames(),
            ..self.stats.clone()
        };
    }
}
