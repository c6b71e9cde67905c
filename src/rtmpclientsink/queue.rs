//! The bounded, interleaving frame queue between the streaming threads and the session thread,
//! free of GStreamer and of locking (the session module wraps it in a mutex).
//!
//! # Interleaving
//! Frames leave in non-decreasing decode-time order across audio and video, like a muxer: the
//! frame with the smallest DTS among the track heads is released once no other track can still
//! deliver something earlier. A track that has nothing queued is waited for, unless
//!
//! * it is not active (no pad / pad released) or at EOS, or
//! * it has already delivered up to the candidate's DTS, or
//! * it has been silent for `max_interleave` of wall-clock time **and** either the newest queued
//!   frame is more than `max_interleave` of stream time ahead of it, or a producer is blocked on
//!   a full queue (otherwise a single-threaded demuxer feeding both pads could deadlock).
//!
//! The wall-clock bound grows by the pipeline latency (see [`Interleaver::set_latency`]). For a
//! track that has not delivered anything yet it is [`START_WAIT`] from the first frame of the
//! publish, unless a producer is blocked: encoders can take seconds to give their first frame,
//! more than the latency they report, and once the other track has gone ahead the late track's
//! first frames can only be clamped.
//!
//! Requiring both bounds means a fast (non-live) source never gives up on a track that is only
//! slow to start (e.g. an audio encoder warming up), and a live source never waits more than
//! `max_interleave` for a track that went silent. Frames that arrive after a later frame was
//! already sent are clamped to the last sent timestamp by [`RtmpTimeline`].
//!
//! # Bounds and congestion
//! The *queue time* ([`Interleaver::queue_time_ms`]) is how long the oldest queued frame has been
//! waiting for the network: the stream time between it and what every still-delivering track has
//! delivered. Frames that only wait for a slower track (interleaving, encoder latency) do not
//! count. What happens when it grows is the [`Policy`]:
//!
//! * [`Policy::Block`]: a push blocks (see [`Interleaver::can_push`]) while the queue holds more
//!   than `max_bytes`, or while the pushing track is more than `max_time_ms` ahead of the oldest
//!   queued frame. A track with nothing queued may always push, so the track being waited for is
//!   never the one blocked. Nothing is ever dropped (except to resume at a keyframe after a
//!   reconnect, see [`Interleaver::resync`]).
//! * [`Policy::Drop`]: pushes never block; frames are dropped so that no frame references a
//!   dropped one, in this order:
//!   1. queue time above `max_time_ms / 2`: disposable video frames (nothing references them,
//!      e.g. non-reference B-frames), queued and arriving, until it is back under a quarter;
//!   2. above `max_time_ms`: the rest of every queued GOP (all video non-keyframes; the queue
//!      then drains quickly) and arriving non-keyframes up to the next keyframe;
//!   3. above twice `max_time_ms` (the link carries less than audio and keyframes, or nothing at
//!      all: a stall, a disconnect): everything older than `max_time_ms`, whole GOPs (keyframe
//!      and the frames that depend on it) and audio.
//!
//!   So the queue never holds more than twice `max_time_ms` of media. Audio and keyframes are
//!   only dropped by step 3; sequence headers never (every frame carries its own). More than
//!   `max_bytes` queued drops the oldest GOP as in step 3.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::timeline::{RtmpTimeline, Stamp};

/// Default of the `max-interleave-time` property, in milliseconds.
pub const DEFAULT_MAX_INTERLEAVE_MS: u32 = 500;
/// Most bytes of media the queue holds (a safety net next to the time bound).
pub const MAX_QUEUE_BYTES: usize = 32 * 1024 * 1024;
/// Default of the `max-queue-time` property, in milliseconds.
pub const DEFAULT_MAX_QUEUE_TIME_MS: u32 = 3000;
/// How long (plus the latency) a track that has not delivered its first frame is waited for,
/// from the first frame of the publish (see [`Interleaver::pop`]).
pub const START_WAIT: Duration = Duration::from_secs(5);
/// Shortest interval between two congestion reports.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// The two tracks of an RTMP publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Track {
    /// H.264 (always on the `sink` pad).
    Video = 0,
    /// AAC (on the `sink` pad for audio-only streams, otherwise on the `audio` request pad).
    Audio = 1,
}

impl Track {
    /// Both tracks, video first (video wins ties, so a keyframe leads).
    pub const ALL: [Track; 2] = [Track::Video, Track::Audio];

    fn idx(self) -> usize {
        self as usize
    }

    fn other(self) -> Track {
        match self {
            Track::Video => Track::Audio,
            Track::Audio => Track::Video,
        }
    }

    /// Lower-case name for logs and messages.
    pub fn name(self) -> &'static str {
        match self {
            Track::Video => "video",
            Track::Audio => "audio",
        }
    }
}

/// What the queue needs to know about an item.
pub trait Queued {
    /// Which track it belongs to.
    fn track(&self) -> Track;
    /// Decode time in milliseconds of running time.
    fn dts_ms(&self) -> i64;
    /// Bytes it holds.
    fn size(&self) -> usize;
    /// Decodable on its own (a video keyframe; every audio frame).
    fn keyframe(&self) -> bool;
    /// Nothing references it: it may be dropped alone.
    fn disposable(&self) -> bool;
}

/// What a full queue does (the `congestion-policy` property, with `auto` resolved).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Block the producer (re-streaming a file: nothing may be lost).
    Block,
    /// Drop frames (live sources: latency stays bounded).
    Drop,
}

/// Limits of the queue.
#[derive(Debug, Clone, Copy)]
pub struct QueueConfig {
    /// Longest a track is waited for, in stream time and in wall-clock time (see module docs).
    pub max_interleave: Duration,
    /// Byte bound.
    pub max_bytes: usize,
    /// Time bound in milliseconds (`max-queue-time`).
    pub max_time_ms: i64,
    /// What happens at the bound.
    pub policy: Policy,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            max_interleave: Duration::from_millis(DEFAULT_MAX_INTERLEAVE_MS.into()),
            max_bytes: MAX_QUEUE_BYTES,
            max_time_ms: DEFAULT_MAX_QUEUE_TIME_MS.into(),
            policy: Policy::Block,
        }
    }
}

#[derive(Debug)]
struct TrackQueue<T> {
    active: bool,
    eos: bool,
    fifo: VecDeque<T>,
    bytes: usize,
    /// Highest DTS ever pushed (the track's progress), dropped frames included.
    last_dts: Option<i64>,
    first_dts: Option<i64>,
    last_push_at: Option<Instant>,
}

impl<T> Default for TrackQueue<T> {
    fn default() -> Self {
        TrackQueue {
            active: false,
            eos: false,
            fifo: VecDeque::new(),
            bytes: 0,
            last_dts: None,
            first_dts: None,
            last_push_at: None,
        }
    }
}

/// A frame leaving the queue with its RTMP timestamp.
#[derive(Debug)]
pub struct Released<T> {
    /// The frame.
    pub item: T,
    /// Its timestamp on the RTMP timeline (and how far it was clamped).
    pub stamp: Stamp,
}

/// Result of [`Interleaver::pop`].
#[derive(Debug)]
pub enum Pop<T> {
    /// The next frame in order.
    Ready(Released<T>),
    /// Frames are queued but must wait for another track; poll again at the deadline if any
    /// (new data or a blocked producer also change the answer).
    Wait(Option<Instant>),
    /// Nothing queued.
    Empty,
}

/// Drops to tell the application about (see [`Interleaver::take_report`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CongestionReport {
    /// Queue time when the report was taken, ms.
    pub queue_time_ms: i64,
    /// Video frames dropped in total.
    pub dropped_video: u64,
    /// Audio frames dropped in total.
    pub dropped_audio: u64,
    /// Frames dropped since the previous report.
    pub new_drops: u64,
}

/// Per-track FIFOs merged by DTS, with the shared RTMP timeline.
#[derive(Debug)]
pub struct Interleaver<T> {
    cfg: QueueConfig,
    tracks: [TrackQueue<T>; 2],
    timeline: RtmpTimeline,
    /// Earliest DTS pushed on any track (progress of a track that never delivered).
    start_dts: Option<i64>,
    /// Wall time of the first push on any track (silence of a track that never delivered).
    start_at: Option<Instant>,
    producer_blocked: bool,
    /// The track the last [`Interleaver::pop`] that returned `Wait` waits for.
    waiting_for: Option<Track>,
    late_frames: u64,
    /// Pipeline latency: a live branch may deliver this much later than another in wall time.
    latency: Duration,
    /// Frames dropped per track.
    dropped: [u64; 2],
    /// Drops already reported, and when.
    reported: u64,
    last_report: Option<Instant>,
    /// Arriving video non-keyframes are dropped until the next keyframe.
    skip_to_key: bool,
    /// Audio is held back until video resumes at a keyframe (after a reconnect).
    hold_audio: bool,
    /// Arriving disposable video frames are dropped (congestion step 1).
    shed_disposable: bool,
}

impl<T: Queued> Interleaver<T> {
    /// An empty queue with no active track.
    pub fn new(cfg: QueueConfig) -> Self {
        Interleaver {
            cfg,
            tracks: Default::default(),
            timeline: RtmpTimeline::new(),
            start_dts: None,
            start_at: None,
            producer_blocked: false,
            waiting_for: None,
            late_frames: 0,
            latency: Duration::ZERO,
            dropped: [0; 2],
            reported: 0,
            last_report: None,
            skip_to_key: false,
            hold_audio: false,
            shed_disposable: false,
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> Policy {
        self.cfg.policy
    }

    /// Changes the policy (`congestion-policy=auto` once the pipeline is known to be live).
    pub fn set_policy(&mut self, policy: Policy) {
        self.cfg.policy = policy;
    }

    /// Marks a track as present (its pad exists), so the interleaver waits for it.
    pub fn activate(&mut self, track: Track) {
        let t = &mut self.tracks[track.idx()];
        t.active = true;
        t.eos = false;
    }

    /// Marks a track as gone (pad released): queued frames still leave, nothing is waited for.
    pub fn deactivate(&mut self, track: Track) {
        let t = &mut self.tracks[track.idx()];
        t.active = false;
    }

    /// Marks end of stream on a track.
    pub fn set_eos(&mut self, track: Track) {
        self.tracks[track.idx()].eos = true;
    }

    /// True if the track got EOS (or was never active).
    pub fn is_eos(&self, track: Track) -> bool {
        let t = &self.tracks[track.idx()];
        t.eos || !t.active
    }

    /// True when every active track is at EOS.
    #[cfg(test)]
    pub fn all_eos(&self) -> bool {
        Track::ALL.iter().all(|t| self.is_eos(*t))
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.tracks.iter().all(|t| t.fifo.is_empty())
    }

    /// Frames queued.
    pub fn len(&self) -> usize {
        self.tracks.iter().map(|t| t.fifo.len()).sum()
    }

    /// Bytes queued.
    pub fn bytes(&self) -> usize {
        self.tracks.iter().map(|t| t.bytes).sum()
    }

    /// The oldest queued frame of `track`.
    pub fn front(&self, track: Track) -> Option<&T> {
        self.tracks[track.idx()].fifo.front()
    }

    /// Frames dropped on `track` so far.
    pub fn dropped(&self, track: Track) -> u64 {
        self.dropped[track.idx()]
    }

    /// Stream time spanned by the queue (newest DTS − oldest queued DTS), in ms.
    pub fn depth_ms(&self) -> i64 {
        let oldest = self.oldest_queued_dts();
        let newest = self
            .tracks
            .iter()
            .filter(|t| !t.fifo.is_empty())
            .filter_map(|t| t.last_dts)
            .max();
        match (oldest, newest) {
            (Some(o), Some(n)) => (n - o).max(0),
            _ => 0,
        }
    }

    /// How long the oldest queued frame has been waiting for the network, in stream time: from
    /// it to the least progress of the tracks that still deliver (a track silent for longer than
    /// the interleaving wait, at EOS or inactive does not hold the horizon back). See the module
    /// docs.
    pub fn queue_time_ms(&self, now: Instant) -> i64 {
        let Some(head) = self.oldest_queued_dts() else {
            return 0;
        };
        let silent_after = self.cfg.max_interleave + self.latency;
        let mut horizon: Option<i64> = None;
        let mut newest: Option<i64> = None;
        for t in &self.tracks {
            let Some(last) = t.last_dts else { continue };
            newest = Some(newest.map_or(last, |n: i64| n.max(last)));
            let delivering = t.active
                && !t.eos
                && t.last_push_at
                    .is_some_and(|p| now.saturating_duration_since(p) <= silent_after);
            if delivering {
                horizon = Some(horizon.map_or(last, |h: i64| h.min(last)));
            }
        }
        (horizon.or(newest).unwrap_or(head) - head).max(0)
    }

    /// Frames that were sent later than a frame with a higher DTS and had to be clamped.
    pub fn late_frames(&self) -> u64 {
        self.late_frames
    }

    /// Sets the pipeline latency (from the LATENCY event): the wall-clock bound becomes
    /// `max_interleave + latency`, because with `sync=true` the `sink` pad's buffers reach the
    /// element `latency` after their running time, and a live encoder's output lags its input.
    pub fn set_latency(&mut self, latency: Duration) {
        self.latency = latency;
    }

    /// Raises the latency to at least `latency` (from a latency query of one branch).
    pub fn raise_latency(&mut self, latency: Duration) {
        self.latency = self.latency.max(latency);
    }

    /// Tells the queue whether a producer is blocked waiting for space.
    pub fn set_producer_blocked(&mut self, blocked: bool) {
        self.producer_blocked = blocked;
    }

    /// True while a producer is blocked waiting for space.
    pub fn producer_blocked(&self) -> bool {
        self.producer_blocked
    }

    /// The track whose next frame may change the answer of the last [`Interleaver::pop`] that
    /// returned [`Pop::Wait`] (None: any frame may).
    pub fn waiting_for(&self) -> Option<Track> {
        self.waiting_for
    }

    fn oldest_queued_dts(&self) -> Option<i64> {
        self.tracks
            .iter()
            .filter_map(|t| t.fifo.front().map(Queued::dts_ms))
            .min()
    }

    /// True when a frame of `size` bytes and decode time `dts_ms` on `track` may be pushed now.
    /// Always true with [`Policy::Drop`] (the queue drops instead), and for audio while it is
    /// held for a keyframe after a reconnect (the hold trims it instead).
    pub fn can_push(&self, track: Track, dts_ms: i64, size: usize) -> bool {
        if self.cfg.policy == Policy::Drop || (self.hold_audio && track == Track::Audio) {
            return true;
        }
        let t = &self.tracks[track.idx()];
        if t.fifo.is_empty() {
            return true;
        }
        if self.bytes() + size > self.cfg.max_bytes {
            return false;
        }
        match self.oldest_queued_dts() {
            Some(oldest) => dts_ms - oldest <= self.cfg.max_time_ms,
            None => true,
        }
    }

    /// Records that `track` delivered up to `dts` (also for frames dropped on arrival, so the
    /// other track is not held back waiting for them).
    fn note_progress(&mut self, track: Track, dts: i64, now: Instant) {
        self.start_dts = Some(self.start_dts.map_or(dts, |s| s.min(dts)));
        self.start_at.get_or_insert(now);
        let t = &mut self.tracks[track.idx()];
        t.first_dts.get_or_insert(dts);
        t.last_dts = Some(t.last_dts.map_or(dts, |l| l.max(dts)));
        t.last_push_at = Some(now);
    }

    /// Queues a frame (with [`Policy::Block`] the caller checked [`Interleaver::can_push`]).
    /// Video that cannot be decoded any more (its reference was dropped) or that congestion
    /// sheds is dropped right away; with [`Policy::Drop`] the bound is enforced afterwards.
    pub fn push(&mut self, item: T, now: Instant) {
        let track = item.track();
        let dts = item.dts_ms();
        if track == Track::Video {
            if item.keyframe() {
                if self.skip_to_key {
                    self.skip_to_key = false;
                    if self.hold_audio {
                        // Resume both tracks at this keyframe: older audio would reach the
                        // server before it.
                        self.hold_audio = false;
                        self.drop_audio_before(dts);
                    }
                }
            } else if self.skip_to_key || (self.shed_disposable && item.disposable()) {
                self.dropped[Track::Video.idx()] += 1;
                self.note_progress(track, dts, now);
                return;
            }
        }
        self.note_progress(track, dts, now);
        let t = &mut self.tracks[track.idx()];
        t.bytes += item.size();
        t.fifo.push_back(item);
        match self.cfg.policy {
            Policy::Drop => self.enforce_bound(now),
            Policy::Block => {
                if self.hold_audio && track == Track::Audio {
                    self.trim_held_audio();
                }
            }
        }
    }

    /// [`Policy::Drop`]: the three steps of the module docs.
    fn enforce_bound(&mut self, now: Instant) {
        let bound = self.cfg.max_time_ms.max(1);
        let qt = self.queue_time_ms(now);
        if qt > bound / 2 {
            self.shed_disposable = true;
            self.drop_video_where(|f| !f.keyframe() && f.disposable());
        } else if qt <= bound / 4 {
            self.shed_disposable = false;
        }
        if qt > bound {
            self.drop_rest_of_gops();
        }
        let qt = self.queue_time_ms(now);
        if qt > bound * 2 {
            let horizon = self.oldest_queued_dts().unwrap_or_default() + qt;
            self.drop_older_than(horizon - bound);
        }
        while self.bytes() > self.cfg.max_bytes {
            let Some(head) = self.oldest_queued_dts() else {
                break;
            };
            if !self.drop_older_than(head + 1) {
                break;
            }
        }
    }

    /// Audio held after a reconnect is trimmed to `max_time_ms` instead of blocking.
    fn trim_held_audio(&mut self) {
        let a = &self.tracks[Track::Audio.idx()];
        let Some(newest) = a.fifo.back().map(Queued::dts_ms) else {
            return;
        };
        self.drop_audio_before(newest - self.cfg.max_time_ms);
    }

    fn drop_audio_before(&mut self, dts: i64) {
        let a = &mut self.tracks[Track::Audio.idx()];
        let mut n = 0;
        while a.fifo.front().is_some_and(|f| f.dts_ms() < dts) {
            if let Some(f) = a.fifo.pop_front() {
                a.bytes = a.bytes.saturating_sub(f.size());
                n += 1;
            }
        }
        self.dropped[Track::Audio.idx()] += n;
    }

    /// Drops queued video frames matching `pred` (only ever disposable ones: nothing refers to
    /// them).
    fn drop_video_where(&mut self, pred: impl Fn(&T) -> bool) {
        let v = &mut self.tracks[Track::Video.idx()];
        let before = v.fifo.len();
        let mut freed = 0;
        v.fifo.retain(|f| {
            if pred(f) {
                freed += f.size();
                false
            } else {
                true
            }
        });
        v.bytes = v.bytes.saturating_sub(freed);
        self.dropped[Track::Video.idx()] += (before - v.fifo.len()) as u64;
    }

    /// Drops the rest of every queued GOP (all queued video non-keyframes) and the arriving
    /// non-keyframes until the next keyframe: what remains of the video is keyframes, which the
    /// decoder can show on their own.
    fn drop_rest_of_gops(&mut self) {
        self.drop_video_where(|f| !f.keyframe());
        let v = &self.tracks[Track::Video.idx()];
        if v.active && !v.eos {
            self.skip_to_key = true;
        }
    }

    /// Drops everything older than `cut`: audio before it, and whole GOPs of video (up to the
    /// first queued keyframe at or after `cut`; all video and the rest of its GOP if there is
    /// none). Returns true if anything was dropped.
    fn drop_older_than(&mut self, cut: i64) -> bool {
        let before: u64 = self.dropped.iter().sum();
        let v = &mut self.tracks[Track::Video.idx()];
        if v.fifo.front().is_some_and(|f| f.dts_ms() < cut) {
            let keep_from = v
                .fifo
                .iter()
                .position(|f| f.keyframe() && f.dts_ms() >= cut);
            let end = keep_from.unwrap_or(v.fifo.len());
            let freed: usize = v.fifo.drain(..end).map(|f| f.size()).sum();
            v.bytes = v.bytes.saturating_sub(freed);
            self.dropped[Track::Video.idx()] += end as u64;
            if keep_from.is_none() && v.active && !v.eos {
                self.skip_to_key = true;
            }
        }
        self.drop_audio_before(cut);
        self.dropped.iter().sum::<u64>() > before
    }

    /// After a reconnect: the server's first media message must be a keyframe. Queued video
    /// before the first queued keyframe is dropped, and audio older than it (both tracks resume
    /// at the keyframe's DTS). Without a queued keyframe, video is dropped until one arrives and
    /// audio is held until then. Audio-only streams resume as they are.
    pub fn resync(&mut self) {
        let v = &self.tracks[Track::Video.idx()];
        let video_expected = v.active && !v.eos;
        if v.fifo.is_empty() && !video_expected {
            return;
        }
        let key = v.fifo.iter().position(Queued::keyframe);
        match key {
            Some(k) => {
                let v = &mut self.tracks[Track::Video.idx()];
                let freed: usize = v.fifo.drain(..k).map(|f| f.size()).sum();
                v.bytes = v.bytes.saturating_sub(freed);
                self.dropped[Track::Video.idx()] += k as u64;
                let key_dts = v.fifo.front().map(Queued::dts_ms).unwrap_or_default();
                self.drop_audio_before(key_dts);
                self.skip_to_key = false;
                self.hold_audio = false;
            }
            None => {
                let v = &mut self.tracks[Track::Video.idx()];
                self.dropped[Track::Video.idx()] += v.fifo.len() as u64;
                v.fifo.clear();
                v.bytes = 0;
                if video_expected {
                    self.skip_to_key = true;
                    self.hold_audio = true;
                }
            }
        }
    }

    /// Drops counted since the last report, at most once per [`REPORT_INTERVAL`].
    pub fn take_report(&mut self, now: Instant) -> Option<CongestionReport> {
        let total: u64 = self.dropped.iter().sum();
        if total == self.reported
            || self
                .last_report
                .is_some_and(|t| now.saturating_duration_since(t) < REPORT_INTERVAL)
        {
            return None;
        }
        let new_drops = total - self.reported;
        self.reported = total;
        self.last_report = Some(now);
        Some(CongestionReport {
            queue_time_ms: self.queue_time_ms(now),
            dropped_video: self.dropped[Track::Video.idx()],
            dropped_audio: self.dropped[Track::Audio.idx()],
            new_drops,
        })
    }

    /// Drops everything queued on `track` (flush); returns how many frames were dropped.
    pub fn flush(&mut self, track: Track) -> usize {
        let t = &mut self.tracks[track.idx()];
        let n = t.fifo.len();
        t.fifo.clear();
        t.bytes = 0;
        t.last_dts = None;
        t.eos = false;
        n
    }

    /// True while audio waits for video to resume at a keyframe.
    fn audio_held(&mut self) -> bool {
        if !self.hold_audio {
            return false;
        }
        let v = &self.tracks[Track::Video.idx()];
        if v.active && !v.eos {
            return true;
        }
        self.hold_audio = false;
        self.skip_to_key = false;
        false
    }

    /// Takes the next frame in order regardless of the other track (end of stream, shutdown).
    pub fn pop_any(&mut self) -> Option<Released<T>> {
        let track = self.candidate()?;
        if track == Track::Audio && self.audio_held() {
            return None;
        }
        Some(self.release(track))
    }

    /// The next frame that may leave now, or why not.
    pub fn pop(&mut self, now: Instant) -> Pop<T> {
        self.waiting_for = None;
        let Some(track) = self.candidate() else {
            return Pop::Empty;
        };
        if track == Track::Audio && self.audio_held() {
            self.waiting_for = Some(Track::Video);
            return Pop::Wait(None);
        }
        let cand_dts = self.tracks[track.idx()]
            .fifo
            .front()
            .map(Queued::dts_ms)
            .unwrap_or_default();
        let other = &self.tracks[track.other().idx()];
        if other.active && !other.eos && other.fifo.is_empty() {
            // A track that delivered up to the candidate's DTS cannot deliver anything earlier.
            let must_wait = other.last_dts.is_none_or(|l| l < cand_dts);
            if must_wait {
                let progress = other.last_dts.or(self.start_dts).unwrap_or(cand_dts);
                let newest = self
                    .tracks
                    .iter()
                    .filter_map(|t| t.last_dts)
                    .max()
                    .unwrap_or(cand_dts);
                let max_ms = i64::try_from(self.cfg.max_interleave.as_millis()).unwrap_or(i64::MAX);
                let stream_ahead = newest - progress > max_ms;
                if !(stream_ahead || self.producer_blocked) {
                    self.waiting_for = Some(track.other());
                    return Pop::Wait(None);
                }
                let wall_deadline = match other.last_push_at {
                    Some(at) => at + self.cfg.max_interleave + self.latency,
                    None => self.start_at.unwrap_or(now) + self.start_wait() + self.latency,
                };
                if now < wall_deadline {
                    self.waiting_for = Some(track.other());
                    return Pop::Wait(Some(wall_deadline));
                }
            }
        }
        Pop::Ready(self.release(track))
    }

    /// How long (plus the latency) a track that has not delivered its first frame is waited
    /// for from the first frame of the publish. An encoder's first output can come well after
    /// its reported latency (x264enc's look-ahead on a loaded machine: 2 to 5 s after the first
    /// audio frame), and frames sent before it would leave its first frames behind the timeline
    /// for good; the drop policy bounds what queues meanwhile. A blocked producer may be the one
    /// that would deliver it (a demuxer feeding both pads): then the usual bound applies.
    fn start_wait(&self) -> Duration {
        if self.producer_blocked {
            self.cfg.max_interleave
        } else {
            self.cfg.max_interleave.max(START_WAIT)
        }
    }

    fn candidate(&self) -> Option<Track> {
        Track::ALL
            .iter()
            .copied()
            .filter_map(|tr| self.tracks[tr.idx()].fifo.front().map(|f| (f.dts_ms(), tr)))
            .min_by_key(|(dts, tr)| (*dts, tr.idx()))
            .map(|(_, tr)| tr)
    }

    fn release(&mut self, track: Track) -> Released<T> {
        if self.timeline.base().is_none() {
            // Both tracks share one base: the smallest first DTS known when the first message
            // leaves (a track that delivered nothing yet does not count).
            if let Some(base) = self.tracks.iter().filter_map(|t| t.first_dts).min() {
                self.timeline.set_base(base);
            }
        }
        let t = &mut self.tracks[track.idx()];
        let item = t
            .fifo
            .pop_front()
            .expect("candidate() only returns tracks with a queued frame");
        t.bytes = t.bytes.saturating_sub(item.size());
        let stamp = self.timeline.stamp(item.dts_ms());
        if stamp.clamped_by > 0 {
            self.late_frames += 1;
        }
        Released { item, stamp }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Track, DTS, size, keyframe, disposable.
    #[derive(Debug, Clone, PartialEq)]
    struct F(Track, i64, usize, bool, bool);

    impl Queued for F {
        fn track(&self) -> Track {
            self.0
        }
        fn dts_ms(&self) -> i64 {
            self.1
        }
        fn size(&self) -> usize {
            self.2
        }
        fn keyframe(&self) -> bool {
            self.3
        }
        fn disposable(&self) -> bool {
            self.4
        }
    }

    fn v(dts: i64) -> F {
        F(Track::Video, dts, 1000, false, false)
    }
    fn vk(dts: i64) -> F {
        F(Track::Video, dts, 5000, true, false)
    }
    fn vb(dts: i64) -> F {
        F(Track::Video, dts, 500, false, true)
    }
    fn a(dts: i64) -> F {
        F(Track::Audio, dts, 100, true, false)
    }

    fn both() -> Interleaver<F> {
        let mut q = Interleaver::new(QueueConfig::default());
        q.activate(Track::Video);
        q.activate(Track::Audio);
        q
    }

    fn drain_ready(q: &mut Interleaver<F>, now: Instant) -> Vec<(Track, i64, u32)> {
        let mut out = Vec::new();
        while let Pop::Ready(r) = q.pop(now) {
            out.push((r.item.0, r.item.1, r.stamp.timestamp));
        }
        out
    }

    #[test]
    fn interleaves_by_dts_with_shared_base() {
        let mut q = both();
        let now = Instant::now();
        // Video starts at 1000 ms running time, audio at 990 ms.
        for i in 0..5 {
            q.push(v(1000 + i * 40), now);
        }
        // Audio not there yet: video waits (neither bound is reached).
        assert!(matches!(q.pop(now), Pop::Wait(None)));
        for i in 0..9 {
            q.push(a(990 + i * 23), now);
        }
        let out = drain_ready(&mut q, now);
        // Base is the smallest first DTS (audio's 990): first message at 0.
        assert_eq!(out[0], (Track::Audio, 990, 0));
        let ts: Vec<u32> = out.iter().map(|o| o.2).collect();
        assert!(ts.windows(2).all(|w| w[0] <= w[1]), "{out:?}");
        // Released until the audio head is past the newest video (1160): audio 1174 waits.
        let last = out.last().unwrap();
        assert_eq!(last.0, Track::Video);
        assert_eq!(last.1, 1160);
        assert_eq!(q.bytes(), 100);
    }

    #[test]
    fn waits_for_a_slow_but_live_track_and_gives_up_on_a_silent_one() {
        let mut q = both();
        let t0 = Instant::now();
        q.push(a(0), t0);
        let _ = drain_ready(&mut q, t0); // audio 0 waits for video
        // Video delivers but stops at 100 ms stream time; audio goes on 2 s.
        q.push(v(0), t0);
        q.push(v(100), t0);
        for i in 1..=100 {
            q.push(a(i * 20), t0);
        }
        let out = drain_ready(&mut q, t0);
        // Everything up to video's progress leaves, then audio waits (wall bound not reached).
        assert_eq!(out.last().map(|o| o.1), Some(100));
        match q.pop(t0) {
            Pop::Wait(Some(deadline)) => {
                assert_eq!(deadline, t0 + Duration::from_millis(500))
            }
            other => panic!("{other:?}"),
        }
        // 500 ms of wall-clock silence: audio flows without video.
        let later = t0 + Duration::from_millis(501);
        let out = drain_ready(&mut q, later);
        assert_eq!(out.len(), 95);
        assert!(q.is_empty());
        // Video comes back late: clamped to the last sent timestamp.
        q.push(v(140), later);
        match q.pop(later) {
            Pop::Ready(r) => {
                assert_eq!(r.stamp.timestamp, 2000);
                assert_eq!(r.stamp.clamped_by, 1860);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(q.late_frames(), 1);
    }

    #[test]
    fn a_track_that_has_not_started_is_waited_for_longer() {
        // A live pipeline whose video encoder (x264enc with its look-ahead, on a loaded machine)
        // gives its first frame 2.3 s after the first audio frame, with the latency not known
        // yet: audio must not leave alone, or video's first frames land behind the timeline.
        let mut q = both();
        let t0 = Instant::now();
        for i in 0..110 {
            q.push(a(i * 21), t0 + Duration::from_millis(i as u64 * 21));
        }
        let t1 = t0 + Duration::from_millis(2300);
        match q.pop(t1) {
            Pop::Wait(Some(d)) => assert_eq!(d, t0 + START_WAIT),
            other => panic!("{other:?}"),
        }
        for i in 0..10 {
            q.push(v(-66 + i * 33), t1);
        }
        let out = drain_ready(&mut q, t1);
        assert_eq!(out[0], (Track::Video, -66, 0));
        assert_eq!(q.late_frames(), 0);
        // Bounded: a track that never starts is given up on.
        let latency = Duration::from_millis(1500);
        let mut q = both();
        q.set_latency(latency);
        for i in 0..100 {
            q.push(a(i * 20), t0);
        }
        match q.pop(t0 + Duration::from_millis(600)) {
            Pop::Wait(Some(d)) => assert_eq!(d, t0 + START_WAIT + latency),
            other => panic!("{other:?}"),
        }
        let after = t0 + START_WAIT + latency + Duration::from_millis(1);
        assert!(matches!(q.pop(after), Pop::Ready(_)));
        // A blocked producer may be the one that would deliver it: the usual bound.
        let mut q = both();
        q.set_latency(latency);
        for i in 0..100 {
            q.push(a(i * 20), t0);
        }
        q.set_producer_blocked(true);
        match q.pop(t0 + Duration::from_millis(600)) {
            Pop::Wait(Some(d)) => assert_eq!(d, t0 + Duration::from_millis(2000)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn latency_extends_the_wall_clock_bound() {
        let mut q = both();
        q.set_latency(Duration::from_millis(1500));
        let t0 = Instant::now();
        // Video delivered its first frame, then went silent.
        q.push(v(0), t0);
        for i in 0..100 {
            q.push(a(i * 20), t0);
        }
        assert_eq!(drain_ready(&mut q, t0).len(), 2);
        match q.pop(t0 + Duration::from_millis(600)) {
            Pop::Wait(Some(d)) => assert_eq!(d, t0 + Duration::from_millis(2000)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            q.pop(t0 + Duration::from_millis(2001)),
            Pop::Ready(_)
        ));
    }

    #[test]
    fn fast_source_does_not_give_up_on_a_track_that_starts_late_in_wall_time() {
        let mut q = both();
        let t0 = Instant::now();
        for i in 0..50 {
            q.push(v(i * 40), t0);
        }
        // 2 s of stream time ahead, but only 10 ms of wall time: keep waiting for audio.
        let t1 = t0 + Duration::from_millis(10);
        assert!(matches!(q.pop(t1), Pop::Wait(Some(_))));
        q.push(a(0), t1);
        let out = drain_ready(&mut q, t1);
        assert_eq!(out[0], (Track::Video, 0, 0));
        assert_eq!(out[1], (Track::Audio, 0, 0));
    }

    #[test]
    fn blocked_producer_and_silence_release_without_stream_lead() {
        let mut q = both();
        let t0 = Instant::now();
        // Audio far ahead in a file, pushed by the same thread that would push video.
        q.push(v(0), t0);
        assert!(matches!(q.pop(t0), Pop::Wait(None)));
        q.push(a(10), t0);
        assert!(matches!(q.pop(t0), Pop::Ready(_)));
        assert!(matches!(q.pop(t0), Pop::Wait(None)));
        q.set_producer_blocked(true);
        let later = t0 + Duration::from_millis(600);
        assert!(matches!(q.pop(later), Pop::Ready(_)));
    }

    #[test]
    fn eos_and_inactive_tracks_are_not_waited_for() {
        let mut q = both();
        let t0 = Instant::now();
        q.push(v(0), t0);
        assert!(matches!(q.pop(t0), Pop::Wait(None)));
        q.set_eos(Track::Audio);
        assert!(matches!(q.pop(t0), Pop::Ready(_)));
        assert!(!q.all_eos());
        q.set_eos(Track::Video);
        assert!(q.all_eos());

        let mut q: Interleaver<F> = Interleaver::new(QueueConfig::default());
        q.activate(Track::Video);
        q.push(v(5), t0);
        assert!(matches!(q.pop(t0), Pop::Ready(_)));
        assert!(!q.all_eos());
        assert!(q.is_eos(Track::Audio));
        assert!(matches!(q.pop(t0), Pop::Empty));
    }

    #[test]
    fn bounds_block_only_the_track_that_is_ahead() {
        let mut q = both();
        let t0 = Instant::now();
        q.push(a(0), t0);
        for i in 1..=150 {
            let dts = i * 20;
            if !q.can_push(Track::Audio, dts, 100) {
                assert!(
                    dts > i64::from(DEFAULT_MAX_QUEUE_TIME_MS),
                    "blocked too early at {dts}"
                );
                break;
            }
            q.push(a(dts), t0);
        }
        assert!(!q.can_push(Track::Audio, 3020, 100));
        // The track being waited for may always push.
        assert!(q.can_push(Track::Video, 0, 10_000_000));
        assert!(q.depth_ms() >= 2980);

        let cfg = QueueConfig {
            max_bytes: 2500,
            ..QueueConfig::default()
        };
        let mut q = Interleaver::new(cfg);
        q.activate(Track::Video);
        q.push(v(0), t0);
        q.push(v(1), t0);
        assert!(!q.can_push(Track::Video, 2, 1000));
        assert_eq!(q.bytes(), 2000);
    }

    #[test]
    fn flush_and_pop_any() {
        let mut q = both();
        let t0 = Instant::now();
        q.push(v(0), t0);
        q.push(v(40), t0);
        assert_eq!(q.flush(Track::Video), 2);
        assert!(q.is_empty());
        q.push(v(80), t0);
        assert!(matches!(q.pop(t0), Pop::Wait(None)));
        let r = q.pop_any().unwrap();
        assert_eq!(r.item.1, 80);
        assert!(q.pop_any().is_none());
    }

    fn dropping(max_time_ms: i64) -> Interleaver<F> {
        let cfg = QueueConfig {
            max_time_ms,
            policy: Policy::Drop,
            ..QueueConfig::default()
        };
        let mut q = Interleaver::new(cfg);
        q.activate(Track::Video);
        q.activate(Track::Audio);
        q
    }

    /// A 30 fps stream with a keyframe every `gop` frames, P/B pattern `P B B`, and AAC every
    /// 21 ms, as (frame, wall time) in push order up to `ms`.
    fn stream(ms: i64, gop: i64, t0: Instant) -> Vec<(F, Instant)> {
        let mut out = Vec::new();
        let mut next_a = 0;
        for i in 0..ms / 33 {
            let dts = i * 33;
            while next_a <= dts {
                out.push((a(next_a), t0 + Duration::from_millis(next_a as u64)));
                next_a += 21;
            }
            let f = if i % gop == 0 {
                vk(dts)
            } else if i % 3 == 0 {
                v(dts)
            } else {
                vb(dts)
            };
            out.push((f, t0 + Duration::from_millis(dts as u64)));
        }
        out
    }

    /// Every released non-keyframe must have all non-disposable frames of its GOP before it
    /// released too (nothing refers to a dropped frame); returns the released frames.
    fn assert_decodable(pushed: &[F], released: &[F]) {
        let sent: std::collections::HashSet<i64> = released
            .iter()
            .filter(|f| f.0 == Track::Video)
            .map(|f| f.1)
            .collect();
        let mut gop_ok = false;
        for f in pushed.iter().filter(|f| f.0 == Track::Video) {
            if f.3 {
                gop_ok = sent.contains(&f.1);
                continue;
            }
            if sent.contains(&f.1) {
                assert!(gop_ok, "frame {} sent after a dropped reference", f.1);
            }
            if !f.4 && !sent.contains(&f.1) {
                gop_ok = false;
            }
        }
    }

    #[test]
    fn drop_policy_under_a_slow_link_sheds_b_frames_then_gops_never_audio_or_keys() {
        let mut q = dropping(1000);
        let t0 = Instant::now();
        let input = stream(20_000, 60, t0);
        let mut released = Vec::new();
        let mut max_qt = 0;
        // The link carries two frames in three: all the audio, a fraction of the video.
        for (i, (f, at)) in input.iter().enumerate() {
            q.push(f.clone(), *at);
            max_qt = max_qt.max(q.queue_time_ms(*at));
            if i % 3 != 0
                && let Pop::Ready(r) = q.pop(*at)
            {
                released.push(r.item);
            }
        }
        let pushed: Vec<F> = input.iter().map(|(f, _)| f.clone()).collect();
        assert_decodable(&pushed, &released);
        assert!(q.dropped(Track::Video) > 0);
        assert_eq!(q.dropped(Track::Audio), 0, "audio dropped");
        let keys_in = pushed.iter().filter(|f| f.0 == Track::Video && f.3).count();
        let keys_out = released
            .iter()
            .filter(|f| f.0 == Track::Video && f.3)
            .count();
        let keys_queued = q.tracks[0].fifo.iter().filter(|f| f.3).count();
        assert_eq!(keys_in, keys_out + keys_queued, "keyframe dropped");
        assert!(max_qt <= 2000, "queue time {max_qt}");
    }

    #[test]
    fn drop_policy_first_sheds_only_disposable_frames() {
        let mut q = dropping(1000);
        let t0 = Instant::now();
        let input = stream(5_000, 30, t0);
        let mut released = Vec::new();
        // Nothing leaves for 600 ms of a live stream, then it drains.
        for (f, at) in &input {
            q.push(f.clone(), *at);
            if f.1 > 600 {
                while let Pop::Ready(r) = q.pop(*at) {
                    released.push(r.item);
                }
            }
        }
        assert!(q.dropped(Track::Video) > 0);
        let pushed: Vec<F> = input.iter().map(|(f, _)| f.clone()).collect();
        let sent: Vec<i64> = released.iter().map(|f| f.1).collect();
        for f in &pushed {
            if !sent.contains(&f.1) && !q.tracks[f.0.idx()].fifo.contains(f) {
                assert!(f.4, "a non-disposable frame was dropped: {f:?}");
            }
        }
        assert_eq!(q.dropped(Track::Audio), 0);
    }

    #[test]
    fn drop_policy_stall_keeps_memory_bounded_and_resumes_at_a_keyframe() {
        let mut q = dropping(1000);
        let t0 = Instant::now();
        let input = stream(12_000, 30, t0);
        let mut max_bytes = 0;
        let mut max_qt = 0;
        // A total stall: nothing leaves until 10 s.
        let mut released = Vec::new();
        for (f, at) in &input {
            q.push(f.clone(), *at);
            max_bytes = max_bytes.max(q.bytes());
            max_qt = max_qt.max(q.queue_time_ms(*at));
            if f.1 >= 10_000 {
                while let Pop::Ready(r) = q.pop(*at) {
                    released.push(r.item);
                }
            }
        }
        // Never more than twice max_time_ms (plus the frame that crossed it).
        assert!(max_qt <= 2100, "queue time {max_qt}");
        assert!(max_bytes < 3 * 30 * 5000 + 200 * 100, "{max_bytes} bytes");
        assert!(q.dropped(Track::Audio) > 0);
        let first_video = released.iter().find(|f| f.0 == Track::Video).unwrap();
        assert!(first_video.3, "resumed with {first_video:?}");
        let pushed: Vec<F> = input.iter().map(|(f, _)| f.clone()).collect();
        assert_decodable(&pushed, &released);
        let r = q.take_report(t0 + Duration::from_secs(13)).unwrap();
        assert_eq!(r.dropped_audio, q.dropped(Track::Audio));
        assert!(q.take_report(t0 + Duration::from_secs(13)).is_none());
    }

    #[test]
    fn block_policy_never_drops() {
        let mut q = both();
        let t0 = Instant::now();
        for (f, at) in stream(2_000, 30, t0) {
            if q.can_push(f.0, f.1, f.2) {
                q.push(f, at);
            }
        }
        assert_eq!(q.dropped(Track::Video) + q.dropped(Track::Audio), 0);
    }

    #[test]
    fn resync_resumes_both_tracks_at_the_first_queued_keyframe() {
        let mut q = both();
        let t0 = Instant::now();
        for f in [
            v(0),
            a(10),
            v(33),
            a(31),
            vk(66),
            a(52),
            a(73),
            v(99),
            a(94),
        ] {
            q.push(f, t0);
        }
        q.resync();
        assert_eq!(q.dropped(Track::Video), 2);
        assert_eq!(q.dropped(Track::Audio), 3);
        let out = drain_ready(&mut q, t0);
        assert_eq!((out[0].0, out[0].1), (Track::Video, 66));
        assert!(out.iter().all(|o| o.1 >= 66), "{out:?}");
    }

    #[test]
    fn resync_without_a_keyframe_holds_audio_until_one_arrives() {
        let mut q = both();
        let t0 = Instant::now();
        q.push(v(0), t0);
        q.push(a(10), t0);
        q.resync();
        assert!(matches!(q.pop(t0), Pop::Wait(None)));
        q.push(v(33), t0);
        q.push(a(31), t0);
        q.push(a(52), t0);
        assert!(matches!(q.pop(t0), Pop::Wait(None)));
        assert!(q.pop_any().is_none());
        q.push(vk(66), t0);
        q.push(a(73), t0);
        let out = drain_ready(&mut q, t0);
        assert_eq!(out, vec![(Track::Video, 66, 66)]);
        assert_eq!(q.front(Track::Audio).map(|f| f.1), Some(73));
        assert_eq!(q.dropped(Track::Video), 2);
        assert_eq!(q.dropped(Track::Audio), 3);
        // Audio-only: nothing to wait for.
        let mut q: Interleaver<F> = Interleaver::new(QueueConfig::default());
        q.activate(Track::Audio);
        q.push(a(0), t0);
        q.resync();
        assert!(matches!(q.pop(t0), Pop::Ready(_)));
    }
}
