//! The bounded, interleaving frame queue between the streaming threads and the session thread,
//! free of GStreamer and of locking (the session module wraps it in a mutex).
//!
//! Frames are queued per [`Track`] (a media kind and a track id: `sink`/`audio` are track 0,
//! further pads tracks 1..=255); any number of tracks may be present.
//!
//! # Interleaving
//! Frames leave in non-decreasing decode-time order across all tracks, like a muxer: the frame
//! with the smallest DTS among the track heads is released once no other track can still
//! deliver something earlier (ties: video before audio, lower track id first, so a keyframe
//! leads). A track that has nothing queued is waited for, unless
//!
//! * it is not active (no pad / pad released) or at EOS, or
//! * it has already delivered up to the candidate's DTS, or
//! * it has been silent for `max_interleave` of wall-clock time **and** either the newest queued
//!   frame is more than `max_interleave` of stream time ahead of it, or a producer is blocked on
//!   a full queue (otherwise a single-threaded demuxer feeding several pads could deadlock).
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
//!   1. queue time above a first threshold: a video track's disposable frames (nothing
//!      references them, e.g. non-reference B-frames), queued and arriving, until it is back
//!      under half of that threshold;
//!   2. above a second threshold: the rest of the track's queued GOPs (all its non-keyframes;
//!      the queue then drains quickly) and its arriving non-keyframes up to the next keyframe;
//!   3. above twice `max_time_ms` (the link carries less than audio and keyframes, or nothing at
//!      all: a stall, a disconnect): everything older than `max_time_ms`, whole GOPs (keyframe
//!      and the frames that depend on it) of every video track and audio.
//!
//!   Steps 1 and 2 go through the video tracks by priority: the highest track id first (the
//!   lowest rendition by convention), track 0 last. With `n` video tracks (every one the queue
//!   knows) the `2n` thresholds
//!   are spread evenly up to `max_time_ms`, so a track is down to keyframes before the next one
//!   loses anything; with one video track they are `max_time_ms / 2` and `max_time_ms`.
//!
//!   So the queue never holds more than twice `max_time_ms` of media. Audio and keyframes are
//!   only dropped by step 3, audio never before every video track lost frames; sequence headers
//!   never (every frame carries its own). More than `max_bytes` queued drops the oldest GOP as
//!   in step 3. Drops are counted per track.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use crate::codec::MediaKind;

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

/// One track of an RTMP publish: a media kind and an Enhanced RTMP track id. The `sink` and
/// `audio` pads are track 0 of their kind; request pads `video_%u`/`audio_%u` are track %u.
///
/// Ordered video first, then by id: the order of ties in the interleaver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Track {
    /// Video or audio.
    pub kind: MediaKind,
    /// Track id (0..=255; 0 is the default track, sent without a Multitrack wrapper).
    pub id: u8,
}

impl Track {
    /// Video track 0 (the `sink` pad).
    pub const VIDEO: Track = Track::video(0);
    /// Audio track 0 (the `audio` pad, or the `sink` pad of an audio-only stream).
    pub const AUDIO: Track = Track::audio(0);

    /// Video track `id`.
    pub const fn video(id: u8) -> Track {
        Track {
            kind: MediaKind::Video,
            id,
        }
    }

    /// Audio track `id`.
    pub const fn audio(id: u8) -> Track {
        Track {
            kind: MediaKind::Audio,
            id,
        }
    }

    /// True for a video track.
    pub fn is_video(self) -> bool {
        self.kind == MediaKind::Video
    }
}

impl fmt::Display for Track {
    /// "video"/"audio" for track 0 (as logs always said), "video track 2" for the others.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.id {
            0 => f.write_str(self.kind.name()),
            id => write!(f, "{} track {id}", self.kind.name()),
        }
    }
}

/// Per-track values for a handful of tracks: a vector sorted by [`Track`], so iteration is in
/// track order (video first, then by id) and nothing is hashed.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackMap<V> {
    entries: Vec<(Track, V)>,
}

impl<V> Default for TrackMap<V> {
    fn default() -> Self {
        TrackMap {
            entries: Vec::new(),
        }
    }
}

impl<V> TrackMap<V> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    fn position(&self, track: Track) -> Result<usize, usize> {
        self.entries.binary_search_by(|(t, _)| t.cmp(&track))
    }

    /// The value of `track`.
    pub fn get(&self, track: Track) -> Option<&V> {
        self.position(track).ok().map(|i| &self.entries[i].1)
    }

    /// The value of `track`, mutable.
    pub fn get_mut(&mut self, track: Track) -> Option<&mut V> {
        self.position(track).ok().map(|i| &mut self.entries[i].1)
    }

    /// The value of `track`, inserted by `make` if absent.
    pub fn entry_with(&mut self, track: Track, make: impl FnOnce() -> V) -> &mut V {
        let i = match self.position(track) {
            Ok(i) => i,
            Err(i) => {
                self.entries.insert(i, (track, make()));
                i
            }
        };
        &mut self.entries[i].1
    }

    /// Sets the value of `track`; returns the previous one.
    pub fn insert(&mut self, track: Track, value: V) -> Option<V> {
        match self.position(track) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (track, value));
                None
            }
        }
    }

    /// Removes `track`; returns its value.
    pub fn remove(&mut self, track: Track) -> Option<V> {
        self.position(track).ok().map(|i| self.entries.remove(i).1)
    }

    /// Tracks and values, in track order.
    pub fn iter(&self) -> impl Iterator<Item = (Track, &V)> {
        self.entries.iter().map(|(t, v)| (*t, v))
    }

    /// Tracks and mutable values, in track order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (Track, &mut V)> {
        self.entries.iter_mut().map(|(t, v)| (*t, v))
    }

    /// The tracks, in order.
    pub fn tracks(&self) -> impl Iterator<Item = Track> + '_ {
        self.entries.iter().map(|(t, _)| *t)
    }

    /// The values, in track order.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.iter().map(|(_, v)| v)
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
    /// Frames dropped on this track.
    dropped: u64,
    /// Video: arriving non-keyframes are dropped until the next keyframe.
    skip_to_key: bool,
    /// Video: arriving disposable frames are dropped (congestion step 1).
    shed_disposable: bool,
    /// Deactivated (pad released) or at EOS, and its end not yet taken by
    /// [`Interleaver::take_ended`].
    ending: bool,
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
            dropped: 0,
            skip_to_key: false,
            shed_disposable: false,
            ending: false,
        }
    }
}

impl<T: Queued> TrackQueue<T> {
    /// Active and not at EOS: more frames are expected.
    fn expected(&self) -> bool {
        self.active && !self.eos
    }

    /// Still part of the publish: expected, or frames left to send.
    fn present(&self) -> bool {
        self.expected() || !self.fifo.is_empty()
    }

    /// Drops the first `n` queued frames.
    fn drop_front(&mut self, n: usize) {
        let freed: usize = self.fifo.drain(..n).map(|f| f.size()).sum();
        self.bytes = self.bytes.saturating_sub(freed);
        self.dropped += n as u64;
    }

    /// Drops the queued frames before `dts` (audio).
    fn drop_before(&mut self, dts: i64) {
        let n = self.fifo.iter().take_while(|f| f.dts_ms() < dts).count();
        self.drop_front(n);
    }

    /// Drops queued frames matching `pred` (video: only ever frames nothing else refers to
    /// once they are gone).
    fn drop_where(&mut self, pred: impl Fn(&T) -> bool) {
        let before = self.fifo.len();
        let mut freed = 0;
        self.fifo.retain(|f| {
            if pred(f) {
                freed += f.size();
                false
            } else {
                true
            }
        });
        self.bytes = self.bytes.saturating_sub(freed);
        self.dropped += (before - self.fifo.len()) as u64;
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CongestionReport {
    /// Queue time when the report was taken, ms.
    pub queue_time_ms: i64,
    /// The queue's time bound (`max-queue-time`), ms.
    pub max_queue_time_ms: i64,
    /// Video frames dropped in total (all video tracks).
    pub dropped_video: u64,
    /// Audio frames dropped in total (all audio tracks).
    pub dropped_audio: u64,
    /// Frames dropped in total per track, in track order (every track the queue knows).
    pub dropped_per_track: Vec<(Track, u64)>,
    /// Frames dropped since the previous report.
    pub new_drops: u64,
}

/// Per-track FIFOs merged by DTS, with the shared RTMP timeline.
#[derive(Debug)]
pub struct Interleaver<T> {
    cfg: QueueConfig,
    tracks: TrackMap<TrackQueue<T>>,
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
    /// Drops already reported, and when.
    reported: u64,
    last_report: Option<Instant>,
    /// Audio is held back until this video track resumes at a keyframe (after a reconnect).
    hold_audio: Option<Track>,
}

impl<T: Queued> Interleaver<T> {
    /// An empty queue with no active track.
    pub fn new(cfg: QueueConfig) -> Self {
        Interleaver {
            cfg,
            tracks: TrackMap::new(),
            timeline: RtmpTimeline::new(),
            start_dts: None,
            start_at: None,
            producer_blocked: false,
            waiting_for: None,
            late_frames: 0,
            latency: Duration::ZERO,
            reported: 0,
            last_report: None,
            hold_audio: None,
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
        let t = self.tracks.entry_with(track, TrackQueue::default);
        t.active = true;
        t.eos = false;
        t.ending = false;
    }

    /// Marks a track as gone (pad released): queued frames still leave, nothing is waited for;
    /// once they left, [`Interleaver::take_ended`] names it.
    pub fn deactivate(&mut self, track: Track) {
        if let Some(t) = self.tracks.get_mut(track)
            && t.active
        {
            t.active = false;
            t.ending = true;
        }
    }

    /// True while `track`'s pad exists (activated, not deactivated), at EOS or not.
    pub fn is_active(&self, track: Track) -> bool {
        self.tracks.get(track).is_some_and(|t| t.active)
    }

    /// The tracks whose pad was released or reached EOS and whose last queued frame has left
    /// since the last call (their sequence ends now, where the interleaved stream is), with the
    /// timestamp of the last frame sent.
    pub fn take_ended(&mut self) -> Option<(Vec<Track>, u32)> {
        let mut ended = Vec::new();
        for (track, t) in self.tracks.iter_mut() {
            if t.ending && (!t.active || t.eos) && t.fifo.is_empty() {
                t.ending = false;
                ended.push(track);
            }
        }
        (!ended.is_empty()).then(|| (ended, self.timeline.current()))
    }

    /// Marks end of stream on a track; the other tracks go on.
    pub fn set_eos(&mut self, track: Track) {
        if let Some(t) = self.tracks.get_mut(track) {
            // Its end is taken once its frames left (`take_ended`), like a released pad's.
            t.ending |= t.active && !t.eos;
            t.eos = true;
        }
    }

    /// True if the track got EOS (or was never active).
    pub fn is_eos(&self, track: Track) -> bool {
        self.tracks.get(track).is_none_or(|t| !t.expected())
    }

    /// True when every active track is at EOS.
    #[cfg(test)]
    pub fn all_eos(&self) -> bool {
        self.tracks.values().all(|t| !t.expected())
    }

    /// Every track the queue knows (activated or pushed to), in track order.
    pub fn tracks(&self) -> impl Iterator<Item = Track> + '_ {
        self.tracks.tracks()
    }

    /// The video track the publish follows: the lowest-id video track still expected to
    /// deliver (track 0 when its pad is linked). A reconnect resumes at its keyframe.
    pub fn primary_video(&self) -> Option<Track> {
        self.tracks
            .iter()
            .find(|(track, t)| track.is_video() && t.expected())
            .map(|(track, _)| track)
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.tracks.values().all(|t| t.fifo.is_empty())
    }

    /// Frames queued.
    pub fn len(&self) -> usize {
        self.tracks.values().map(|t| t.fifo.len()).sum()
    }

    /// Bytes queued.
    pub fn bytes(&self) -> usize {
        self.tracks.values().map(|t| t.bytes).sum()
    }

    /// The oldest queued frame of `track`.
    pub fn front(&self, track: Track) -> Option<&T> {
        self.tracks.get(track).and_then(|t| t.fifo.front())
    }

    /// Frames dropped on `track` so far (all tracks at once: [`Interleaver::dropped_per_track`]).
    #[cfg(test)]
    pub fn dropped(&self, track: Track) -> u64 {
        self.tracks.get(track).map_or(0, |t| t.dropped)
    }

    /// Frames dropped on all tracks of `kind` so far.
    pub fn dropped_kind(&self, kind: MediaKind) -> u64 {
        self.tracks
            .iter()
            .filter(|(track, _)| track.kind == kind)
            .map(|(_, t)| t.dropped)
            .sum()
    }

    /// Frames dropped per track so far, in track order (every track the queue knows).
    pub fn dropped_per_track(&self) -> Vec<(Track, u64)> {
        self.tracks
            .iter()
            .map(|(track, t)| (track, t.dropped))
            .collect()
    }

    fn total_dropped(&self) -> u64 {
        self.tracks.values().map(|t| t.dropped).sum()
    }

    /// Stream time spanned by the queue (newest DTS − oldest queued DTS), in ms.
    pub fn depth_ms(&self) -> i64 {
        let oldest = self.oldest_queued_dts();
        let newest = self
            .tracks
            .values()
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
        for t in self.tracks.values() {
            let Some(last) = t.last_dts else { continue };
            newest = Some(newest.map_or(last, |n: i64| n.max(last)));
            let delivering = t.expected()
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
            .values()
            .filter_map(|t| t.fifo.front().map(Queued::dts_ms))
            .min()
    }

    /// True when a frame of `size` bytes and decode time `dts_ms` on `track` may be pushed now.
    /// Always true with [`Policy::Drop`] (the queue drops instead), and for audio while it is
    /// held for a keyframe after a reconnect (the hold trims it instead).
    pub fn can_push(&self, track: Track, dts_ms: i64, size: usize) -> bool {
        if self.cfg.policy == Policy::Drop || (self.hold_audio.is_some() && !track.is_video()) {
            return true;
        }
        if self.tracks.get(track).is_none_or(|t| t.fifo.is_empty()) {
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
    /// other tracks are not held back waiting for them).
    fn note_progress(&mut self, track: Track, dts: i64, now: Instant) {
        self.start_dts = Some(self.start_dts.map_or(dts, |s| s.min(dts)));
        self.start_at.get_or_insert(now);
        let t = self.tracks.entry_with(track, TrackQueue::default);
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
        if track.is_video() {
            let t = self.tracks.entry_with(track, TrackQueue::default);
            if item.keyframe() {
                if t.skip_to_key {
                    t.skip_to_key = false;
                    if self.hold_audio == Some(track) {
                        // Resume audio at this keyframe: older audio would reach the server
                        // before it.
                        self.hold_audio = None;
                        self.drop_audio_before(dts);
                    }
                }
            } else if t.skip_to_key || (t.shed_disposable && item.disposable()) {
                t.dropped += 1;
                self.note_progress(track, dts, now);
                return;
            }
        }
        self.note_progress(track, dts, now);
        let t = self.tracks.entry_with(track, TrackQueue::default);
        t.bytes += item.size();
        t.fifo.push_back(item);
        match self.cfg.policy {
            Policy::Drop => self.enforce_bound(now),
            Policy::Block => {
                if self.hold_audio.is_some() && !track.is_video() {
                    self.trim_held_audio();
                }
            }
        }
    }

    /// [`Policy::Drop`]: the three steps of the module docs, steps 1 and 2 per video track by
    /// priority.
    fn enforce_bound(&mut self, now: Instant) {
        let bound = self.cfg.max_time_ms.max(1);
        let qt = self.queue_time_ms(now);
        let videos = self.tracks.tracks().filter(|t| t.is_video()).count() as i64;
        // Video tracks in ascending id; the last one (highest id) has drop rank 0.
        let mut seen = 0;
        for (track, t) in self.tracks.iter_mut() {
            if !track.is_video() {
                continue;
            }
            let rank = videos - 1 - seen;
            seen += 1;
            let disposable_at = bound * (2 * rank + 1) / (2 * videos);
            let gops_at = bound * (2 * rank + 2) / (2 * videos);
            if qt > disposable_at {
                t.shed_disposable = true;
                t.drop_where(|f| !f.keyframe() && f.disposable());
            } else if qt <= disposable_at / 2 {
                t.shed_disposable = false;
            }
            if qt > gops_at {
                // The rest of every queued GOP, and arriving frames up to the next keyframe:
                // what remains is keyframes, which a decoder shows on their own.
                t.drop_where(|f| !f.keyframe());
                if t.expected() {
                    t.skip_to_key = true;
                }
            }
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
        let max = self.cfg.max_time_ms;
        for (track, t) in self.tracks.iter_mut() {
            if track.is_video() {
                continue;
            }
            if let Some(newest) = t.fifo.back().map(Queued::dts_ms) {
                t.drop_before(newest - max);
            }
        }
    }

    /// Drops the queued audio (of every audio track) before `dts`.
    fn drop_audio_before(&mut self, dts: i64) {
        for (track, t) in self.tracks.iter_mut() {
            if !track.is_video() {
                t.drop_before(dts);
            }
        }
    }

    /// Drops everything older than `cut`: audio before it, and whole GOPs of every video track
    /// (up to its first queued keyframe at or after `cut`; all of it and the rest of its GOP if
    /// there is none). Returns true if anything was dropped.
    fn drop_older_than(&mut self, cut: i64) -> bool {
        let before = self.total_dropped();
        for (track, t) in self.tracks.iter_mut() {
            if !track.is_video() || t.fifo.front().is_none_or(|f| f.dts_ms() >= cut) {
                continue;
            }
            let keep_from = t
                .fifo
                .iter()
                .position(|f| f.keyframe() && f.dts_ms() >= cut);
            t.drop_front(keep_from.unwrap_or(t.fifo.len()));
            if keep_from.is_none() && t.expected() {
                t.skip_to_key = true;
            }
        }
        self.drop_audio_before(cut);
        self.total_dropped() > before
    }

    /// After a reconnect: the server's first media message must be a keyframe. Each video
    /// track drops its queued frames before its first queued keyframe; audio older than the
    /// keyframe of the primary video track is dropped (it resumes at the keyframe's DTS). A
    /// video track without a queued keyframe drops its frames until one arrives, and if it is
    /// the primary one, audio is held until then. Audio-only streams resume as they are.
    pub fn resync(&mut self) {
        let lead = self.primary_video().or_else(|| {
            self.tracks
                .iter()
                .find(|(track, t)| track.is_video() && !t.fifo.is_empty())
                .map(|(track, _)| track)
        });
        let Some(lead) = lead else {
            return;
        };
        let mut lead_key = None;
        let mut hold = false;
        for (track, t) in self.tracks.iter_mut() {
            if !track.is_video() || !t.present() {
                continue;
            }
            match t.fifo.iter().position(Queued::keyframe) {
                Some(k) => {
                    t.drop_front(k);
                    t.skip_to_key = false;
                    if track == lead {
                        lead_key = t.fifo.front().map(Queued::dts_ms);
                    }
                }
                None => {
                    t.drop_front(t.fifo.len());
                    if t.expected() {
                        t.skip_to_key = true;
                        hold |= track == lead;
                    }
                }
            }
        }
        if let Some(key_dts) = lead_key {
            self.drop_audio_before(key_dts);
            self.hold_audio = None;
        } else if hold {
            self.hold_audio = Some(lead);
        }
    }

    /// Drops counted since the last report, at most once per [`REPORT_INTERVAL`].
    pub fn take_report(&mut self, now: Instant) -> Option<CongestionReport> {
        let total = self.total_dropped();
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
            max_queue_time_ms: self.cfg.max_time_ms,
            dropped_video: self.dropped_kind(MediaKind::Video),
            dropped_audio: self.dropped_kind(MediaKind::Audio),
            dropped_per_track: self.dropped_per_track(),
            new_drops,
        })
    }

    /// Drops everything queued on `track` (flush); returns how many frames were dropped.
    pub fn flush(&mut self, track: Track) -> usize {
        let Some(t) = self.tracks.get_mut(track) else {
            return 0;
        };
        let n = t.fifo.len();
        t.fifo.clear();
        t.bytes = 0;
        t.last_dts = None;
        t.eos = false;
        n
    }

    /// True while audio waits for a video track to resume at a keyframe.
    fn audio_held(&mut self) -> bool {
        let Some(video) = self.hold_audio else {
            return false;
        };
        if let Some(t) = self.tracks.get_mut(video) {
            if t.expected() {
                return true;
            }
            t.skip_to_key = false;
        }
        self.hold_audio = None;
        false
    }

    /// Takes the next frame in order regardless of the other tracks (end of stream, shutdown).
    pub fn pop_any(&mut self) -> Option<Released<T>> {
        let track = self.candidate()?;
        if !track.is_video() && self.audio_held() {
            return None;
        }
        self.release(track)
    }

    /// The next frame that may leave now, or why not.
    pub fn pop(&mut self, now: Instant) -> Pop<T> {
        self.waiting_for = None;
        let Some(track) = self.candidate() else {
            return Pop::Empty;
        };
        if !track.is_video() && self.audio_held() {
            self.waiting_for = self.hold_audio;
            return Pop::Wait(None);
        }
        let cand_dts = self.front(track).map(Queued::dts_ms).unwrap_or_default();
        let newest = self
            .tracks
            .values()
            .filter_map(|t| t.last_dts)
            .max()
            .unwrap_or(cand_dts);
        let max_ms = i64::try_from(self.cfg.max_interleave.as_millis()).unwrap_or(i64::MAX);
        // Every other track that may still deliver something earlier is waited for, each
        // until it is given up on; the earliest of their deadlines is when to look again.
        let mut deadline: Option<(Instant, Track)> = None;
        for (other, o) in self.tracks.iter() {
            if other == track || !o.expected() || !o.fifo.is_empty() {
                continue;
            }
            // A track that delivered up to the candidate's DTS cannot deliver anything earlier.
            if o.last_dts.is_some_and(|l| l >= cand_dts) {
                continue;
            }
            let progress = o.last_dts.or(self.start_dts).unwrap_or(cand_dts);
            let stream_ahead = newest - progress > max_ms;
            if !(stream_ahead || self.producer_blocked) {
                self.waiting_for = Some(other);
                return Pop::Wait(None);
            }
            let wall_deadline = match o.last_push_at {
                Some(at) => at + self.cfg.max_interleave + self.latency,
                None => self.start_at.unwrap_or(now) + self.start_wait() + self.latency,
            };
            if now < wall_deadline && deadline.is_none_or(|(d, _)| wall_deadline < d) {
                deadline = Some((wall_deadline, other));
            }
        }
        if let Some((at, other)) = deadline {
            self.waiting_for = Some(other);
            return Pop::Wait(Some(at));
        }
        match self.release(track) {
            Some(r) => Pop::Ready(r),
            None => Pop::Empty,
        }
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
        self.tracks
            .iter()
            .filter_map(|(track, t)| t.fifo.front().map(|f| (f.dts_ms(), track)))
            .min()
            .map(|(_, track)| track)
    }

    fn release(&mut self, track: Track) -> Option<Released<T>> {
        if self.timeline.base().is_none() {
            // All tracks share one base: the smallest first DTS known when the first message
            // leaves (a track that delivered nothing yet does not count).
            if let Some(base) = self.tracks.values().filter_map(|t| t.first_dts).min() {
                self.timeline.set_base(base);
            }
        }
        let t = self.tracks.get_mut(track)?;
        let item = t.fifo.pop_front()?;
        t.bytes = t.bytes.saturating_sub(item.size());
        let stamp = self.timeline.stamp(item.dts_ms());
        if stamp.clamped_by > 0 {
            self.late_frames += 1;
        }
        Some(Released { item, stamp })
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
        F(Track::VIDEO, dts, 1000, false, false)
    }
    fn vk(dts: i64) -> F {
        F(Track::VIDEO, dts, 5000, true, false)
    }
    fn vb(dts: i64) -> F {
        F(Track::VIDEO, dts, 500, false, true)
    }
    fn a(dts: i64) -> F {
        F(Track::AUDIO, dts, 100, true, false)
    }

    fn both() -> Interleaver<F> {
        let mut q = Interleaver::new(QueueConfig::default());
        q.activate(Track::VIDEO);
        q.activate(Track::AUDIO);
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
        assert_eq!(out[0], (Track::AUDIO, 990, 0));
        let ts: Vec<u32> = out.iter().map(|o| o.2).collect();
        assert!(ts.windows(2).all(|w| w[0] <= w[1]), "{out:?}");
        // Released until the audio head is past the newest video (1160): audio 1174 waits.
        let last = out.last().unwrap();
        assert_eq!(last.0, Track::VIDEO);
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
        assert_eq!(out[0], (Track::VIDEO, -66, 0));
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
        assert_eq!(out[0], (Track::VIDEO, 0, 0));
        assert_eq!(out[1], (Track::AUDIO, 0, 0));
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
        q.set_eos(Track::AUDIO);
        assert!(matches!(q.pop(t0), Pop::Ready(_)));
        assert!(!q.all_eos());
        q.set_eos(Track::VIDEO);
        assert!(q.all_eos());

        let mut q: Interleaver<F> = Interleaver::new(QueueConfig::default());
        q.activate(Track::VIDEO);
        q.push(v(5), t0);
        assert!(matches!(q.pop(t0), Pop::Ready(_)));
        assert!(!q.all_eos());
        assert!(q.is_eos(Track::AUDIO));
        assert!(matches!(q.pop(t0), Pop::Empty));
    }

    #[test]
    fn bounds_block_only_the_track_that_is_ahead() {
        let mut q = both();
        let t0 = Instant::now();
        q.push(a(0), t0);
        for i in 1..=150 {
            let dts = i * 20;
            if !q.can_push(Track::AUDIO, dts, 100) {
                assert!(
                    dts > i64::from(DEFAULT_MAX_QUEUE_TIME_MS),
                    "blocked too early at {dts}"
                );
                break;
            }
            q.push(a(dts), t0);
        }
        assert!(!q.can_push(Track::AUDIO, 3020, 100));
        // The track being waited for may always push.
        assert!(q.can_push(Track::VIDEO, 0, 10_000_000));
        assert!(q.depth_ms() >= 2980);

        let cfg = QueueConfig {
            max_bytes: 2500,
            ..QueueConfig::default()
        };
        let mut q = Interleaver::new(cfg);
        q.activate(Track::VIDEO);
        q.push(v(0), t0);
        q.push(v(1), t0);
        assert!(!q.can_push(Track::VIDEO, 2, 1000));
        assert_eq!(q.bytes(), 2000);
    }

    #[test]
    fn flush_and_pop_any() {
        let mut q = both();
        let t0 = Instant::now();
        q.push(v(0), t0);
        q.push(v(40), t0);
        assert_eq!(q.flush(Track::VIDEO), 2);
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
        q.activate(Track::VIDEO);
        q.activate(Track::AUDIO);
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
        assert_track_decodable(Track::VIDEO, pushed, released);
    }

    /// [`assert_decodable`] for one video track of many.
    fn assert_track_decodable(track: Track, pushed: &[F], released: &[F]) {
        let sent: std::collections::HashSet<i64> = released
            .iter()
            .filter(|f| f.0 == track)
            .map(|f| f.1)
            .collect();
        let mut gop_ok = false;
        for f in pushed.iter().filter(|f| f.0 == track) {
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
        assert!(q.dropped(Track::VIDEO) > 0);
        assert_eq!(q.dropped(Track::AUDIO), 0, "audio dropped");
        let keys_in = pushed.iter().filter(|f| f.0 == Track::VIDEO && f.3).count();
        let keys_out = released
            .iter()
            .filter(|f| f.0 == Track::VIDEO && f.3)
            .count();
        let keys_queued = q
            .tracks
            .get(Track::VIDEO)
            .unwrap()
            .fifo
            .iter()
            .filter(|f| f.3)
            .count();
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
        assert!(q.dropped(Track::VIDEO) > 0);
        let pushed: Vec<F> = input.iter().map(|(f, _)| f.clone()).collect();
        let sent: Vec<i64> = released.iter().map(|f| f.1).collect();
        for f in &pushed {
            if !sent.contains(&f.1) && !q.tracks.get(f.0).unwrap().fifo.contains(f) {
                assert!(f.4, "a non-disposable frame was dropped: {f:?}");
            }
        }
        assert_eq!(q.dropped(Track::AUDIO), 0);
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
        assert!(q.dropped(Track::AUDIO) > 0);
        let first_video = released.iter().find(|f| f.0 == Track::VIDEO).unwrap();
        assert!(first_video.3, "resumed with {first_video:?}");
        let pushed: Vec<F> = input.iter().map(|(f, _)| f.clone()).collect();
        assert_decodable(&pushed, &released);
        let r = q.take_report(t0 + Duration::from_secs(13)).unwrap();
        assert_eq!(r.dropped_audio, q.dropped(Track::AUDIO));
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
        assert_eq!(q.dropped(Track::VIDEO) + q.dropped(Track::AUDIO), 0);
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
        assert_eq!(q.dropped(Track::VIDEO), 2);
        assert_eq!(q.dropped(Track::AUDIO), 3);
        let out = drain_ready(&mut q, t0);
        assert_eq!((out[0].0, out[0].1), (Track::VIDEO, 66));
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
        assert_eq!(out, vec![(Track::VIDEO, 66, 66)]);
        assert_eq!(q.front(Track::AUDIO).map(|f| f.1), Some(73));
        assert_eq!(q.dropped(Track::VIDEO), 2);
        assert_eq!(q.dropped(Track::AUDIO), 3);
        // Audio-only: nothing to wait for.
        let mut q: Interleaver<F> = Interleaver::new(QueueConfig::default());
        q.activate(Track::AUDIO);
        q.push(a(0), t0);
        q.resync();
        assert!(matches!(q.pop(t0), Pop::Ready(_)));
    }

    const V0: Track = Track::video(0);
    const V1: Track = Track::video(1);
    const V2: Track = Track::video(2);
    const A0: Track = Track::audio(0);
    const A1: Track = Track::audio(1);

    #[test]
    fn tracks_order_video_first_then_by_id_and_name_themselves() {
        let mut all = [A1, V2, A0, V0, V1];
        all.sort();
        assert_eq!(all, [V0, V1, V2, A0, A1]);
        assert_eq!(V0.to_string(), "video");
        assert_eq!(A0.to_string(), "audio");
        assert_eq!(V2.to_string(), "video track 2");
        let mut m = TrackMap::new();
        for t in [A1, V2, A0, V0, V1] {
            m.insert(t, t.id);
        }
        assert_eq!(m.tracks().collect::<Vec<_>>(), [V0, V1, V2, A0, A1]);
        assert_eq!(m.insert(V2, 9), Some(2));
        assert_eq!(m.get(V2), Some(&9));
        assert_eq!(*m.entry_with(Track::video(7), || 7), 7);
        assert_eq!(m.get(Track::audio(7)), None);
    }

    #[test]
    fn a_released_track_ends_once_its_queued_frames_left() {
        let mut q: Interleaver<F> = Interleaver::new(QueueConfig::default());
        for t in [V0, V1] {
            q.activate(t);
        }
        let t0 = Instant::now();
        for k in 0..3 {
            q.push(F(V0, k * 40, 1000, k == 0, false), t0);
            q.push(F(V1, k * 40, 1000, k == 0, false), t0);
        }
        assert!(q.take_ended().is_none(), "nothing released");
        q.deactivate(V1);
        // Its frames still leave, in order, and only then it is ended.
        let mut out = Vec::new();
        while let Some(r) = q.pop_any() {
            if r.item.0 == V1 && q.front(V1).is_some() {
                assert!(q.take_ended().is_none(), "ended with frames queued");
            }
            out.push((r.item.0, r.item.1));
        }
        assert_eq!(out.iter().filter(|(t, _)| *t == V1).count(), 3);
        assert_eq!(q.take_ended(), Some((vec![V1], 80)));
        assert!(q.take_ended().is_none(), "named once");
        // Requested again: a new track, ended again on its next release.
        q.activate(V1);
        q.deactivate(V1);
        assert_eq!(q.take_ended().map(|(t, _)| t), Some(vec![V1]));
        // Deactivating a track that is not active ends nothing.
        q.deactivate(V1);
        q.deactivate(Track::video(9));
        assert!(q.take_ended().is_none());
    }

    #[test]
    fn interleaves_five_tracks_by_dts_and_waits_for_each_one() {
        let tracks = [V0, V1, V2, A0, A1];
        let mut q: Interleaver<F> = Interleaver::new(QueueConfig::default());
        for t in tracks {
            q.activate(t);
        }
        let t0 = Instant::now();
        // Pushed track by track (as separate streaming threads would), A1 not yet.
        for t in [A0, V2, V1, V0] {
            for k in 0..3 {
                let f = if t.is_video() {
                    F(t, k * 40, 1000, k == 0, false)
                } else {
                    F(t, k * 40, 100, true, false)
                };
                q.push(f, t0);
            }
        }
        assert!(matches!(q.pop(t0), Pop::Wait(None)));
        assert_eq!(q.waiting_for(), Some(A1));
        for k in 0..5 {
            q.push(F(A1, k * 21, 100, true, false), t0);
        }
        let out = drain_ready(&mut q, t0);
        let order: Vec<(i64, Track)> = out.iter().map(|o| (o.1, o.0)).collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted, "not in DTS order, ties video first by id");
        assert_eq!(order[..5], [(0, V0), (0, V1), (0, V2), (0, A0), (0, A1)]);
        // Everything up to the least progress (80 on four tracks) left; A1's 84 waits for them.
        assert_eq!(out.len(), 3 * 4 + 4);
        assert_eq!(q.front(A1).map(|f| f.1), Some(84));
        assert!(matches!(q.pop(t0), Pop::Wait(None)));
        assert_eq!(q.waiting_for(), Some(V0));
        // One shared timeline: the first message is at 0.
        assert_eq!(out[0].2, 0);
    }

    #[test]
    fn eos_on_one_track_does_not_stop_the_others() {
        let mut q: Interleaver<F> = Interleaver::new(QueueConfig::default());
        for t in [V0, V1, A0] {
            q.activate(t);
        }
        let t0 = Instant::now();
        q.push(vk(0), t0);
        q.push(a(0), t0);
        assert!(matches!(q.pop(t0), Pop::Wait(None)));
        assert_eq!(q.waiting_for(), Some(V1));
        q.set_eos(V1);
        assert!(q.is_eos(V1) && !q.is_eos(V0));
        assert_eq!(drain_ready(&mut q, t0).len(), 2);
        assert!(!q.all_eos());
        q.push(v(40), t0);
        q.push(a(40), t0);
        assert_eq!(
            drain_ready(&mut q, t0).len(),
            2,
            "the ended track is not waited for"
        );
        q.set_eos(V0);
        q.set_eos(A0);
        assert!(q.all_eos());
        assert_eq!(q.primary_video(), None);
    }

    #[test]
    fn a_silent_track_among_several_is_given_up_on_its_own_deadline() {
        let mut q: Interleaver<F> = Interleaver::new(QueueConfig::default());
        for t in [V0, V1, A0] {
            q.activate(t);
        }
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(200);
        q.push(F(V1, 0, 100, true, false), t0);
        q.push(a(0), t0);
        q.push(F(V0, 0, 100, true, false), t0);
        let _ = drain_ready(&mut q, t0);
        // V1 goes silent at 0 (wall t0), V0 at 100 (wall t1); audio runs 2 s ahead.
        q.push(F(V0, 100, 100, false, false), t1);
        for i in 1..=100 {
            q.push(a(i * 20), t1);
        }
        let _ = drain_ready(&mut q, t1);
        // V1 is the earliest deadline (t0 + 500 ms), then V0 (t1 + 500 ms).
        match q.pop(t1) {
            Pop::Wait(Some(d)) => assert_eq!(d, t0 + Duration::from_millis(500)),
            other => panic!("{other:?}"),
        }
        assert_eq!(q.waiting_for(), Some(V1));
        // V1 given up: what V0 covers leaves (its own frame at 100 included), then V0 is
        // waited for until its own deadline.
        let t2 = t0 + Duration::from_millis(501);
        let out = drain_ready(&mut q, t2);
        assert_eq!(out.last().map(|o| (o.0, o.1)), Some((A0, 100)));
        assert_eq!(out.len(), 6);
        match q.pop(t2) {
            Pop::Wait(Some(d)) => assert_eq!(d, t1 + Duration::from_millis(500)),
            other => panic!("{other:?}"),
        }
        assert_eq!(q.waiting_for(), Some(V0));
        let out = drain_ready(&mut q, t1 + Duration::from_millis(501));
        assert!(q.is_empty(), "{} left", q.len());
        assert!(out.iter().all(|o| o.0 == A0));
        assert_eq!(out.len(), 95);
    }

    /// Like [`stream`] with `videos` video tracks (track `k` at `1 / 2^k` of track 0's sizes,
    /// keyframes aligned) and one audio track.
    fn ladder(ms: i64, gop: i64, videos: u8, t0: Instant) -> Vec<(F, Instant)> {
        let mut out = Vec::new();
        let mut next_a = 0;
        for i in 0..ms / 33 {
            let dts = i * 33;
            while next_a <= dts {
                out.push((a(next_a), t0 + Duration::from_millis(next_a as u64)));
                next_a += 21;
            }
            for id in 0..videos {
                let scale = 1 << id;
                let f = if i % gop == 0 {
                    F(Track::video(id), dts, 5000 / scale, true, false)
                } else if i % 3 == 0 {
                    F(Track::video(id), dts, 1000 / scale, false, false)
                } else {
                    F(Track::video(id), dts, 500 / scale, false, true)
                };
                out.push((f, t0 + Duration::from_millis(dts as u64)));
            }
        }
        out
    }

    #[test]
    fn drop_priority_highest_video_track_first_track_0_last_audio_after_all_video() {
        let mut q = dropping(1000);
        for t in [V1, V2] {
            q.activate(t);
        }
        let t0 = Instant::now();
        // A total stall: nothing leaves, so every threshold is crossed in turn.
        let mut first_drop = TrackMap::new();
        for (i, (f, at)) in ladder(6_000, 30, 3, t0).into_iter().enumerate() {
            q.push(f, at);
            for t in [V0, V1, V2, A0] {
                if q.dropped(t) > 0 {
                    first_drop.entry_with(t, || i);
                }
            }
        }
        let first = |t| {
            *first_drop
                .get(t)
                .unwrap_or_else(|| panic!("{t} never dropped"))
        };
        assert!(first(V2) < first(V1), "{first_drop:?}");
        assert!(first(V1) < first(V0), "{first_drop:?}");
        assert!(first(V0) < first(A0), "{first_drop:?}");
        // Counters per track, in the report too.
        let r = q.take_report(t0 + Duration::from_secs(7)).unwrap();
        assert_eq!(
            r.dropped_per_track,
            [V0, V1, V2, A0].map(|t| (t, q.dropped(t)))
        );
        assert_eq!(
            r.dropped_video,
            q.dropped(V0) + q.dropped(V1) + q.dropped(V2)
        );
        assert_eq!(r.dropped_audio, q.dropped(A0));
        assert_eq!(r.max_queue_time_ms, 1000);
    }

    #[test]
    fn a_link_short_of_the_sum_sheds_the_highest_track_only() {
        let mut q = dropping(1000);
        for t in [V1, V2] {
            q.activate(t);
        }
        let t0 = Instant::now();
        let input = ladder(30_000, 30, 3, t0);
        let pushed: Vec<F> = input.iter().map(|(f, _)| f.clone()).collect();
        let ms = 30_000.0;
        let rate = |t: Track| {
            pushed
                .iter()
                .filter(|f| f.0 == t)
                .map(|f| f.2)
                .sum::<usize>() as f64
                / ms
        };
        let (v0, v1, v2, au) = (rate(V0), rate(V1), rate(V2), rate(A0));
        // The link carries track 0, track 1 and audio with room to spare, not track 2 as well.
        let link = v0 + v1 + au + v2 * 0.3;
        assert!(link < v0 + v1 + v2 + au);
        let mut released = Vec::new();
        let mut budget = 0.0;
        let mut last = t0;
        for (f, at) in &input {
            q.push(f.clone(), *at);
            budget += link * at.duration_since(last).as_millis() as f64;
            last = *at;
            while budget > 0.0 {
                let Pop::Ready(r) = q.pop(*at) else { break };
                budget -= r.item.2 as f64;
                released.push(r.item);
            }
        }
        assert!(
            q.dropped(V2) > 100,
            "track 2 dropped only {}",
            q.dropped(V2)
        );
        assert_eq!(q.dropped(V1), 0, "track 1 dropped");
        assert_eq!(q.dropped(V0), 0, "track 0 dropped");
        assert_eq!(q.dropped(A0), 0, "audio dropped");
        for t in [V0, V1, V2] {
            assert_track_decodable(t, &pushed, &released);
        }
    }

    #[test]
    fn resync_resumes_every_video_track_at_its_own_keyframe() {
        let mut q: Interleaver<F> = Interleaver::new(QueueConfig::default());
        for t in [V0, V1, V2, A0] {
            q.activate(t);
        }
        let t0 = Instant::now();
        for f in [
            v(0),
            F(V1, 10, 100, false, false),
            F(V2, 20, 100, false, false),
            a(10),
            a(31),
            a(52),
            vk(66),
            F(V1, 43, 100, false, false),
            F(V1, 76, 100, true, false),
            a(73),
            v(99),
            a(94),
        ] {
            q.push(f, t0);
        }
        q.resync();
        assert_eq!(q.dropped(V0), 1);
        assert_eq!(q.dropped(V1), 2);
        assert_eq!(q.dropped(V2), 1);
        assert_eq!(q.dropped(A0), 3, "audio before track 0's keyframe");
        // Track 2 had no keyframe: its frames are dropped until one comes.
        q.push(F(V2, 50, 100, false, false), t0);
        assert_eq!(q.dropped(V2), 2);
        q.push(F(V2, 80, 100, true, false), t0);
        let out: Vec<(Track, i64)> = drain_ready(&mut q, t0)
            .into_iter()
            .map(|o| (o.0, o.1))
            .collect();
        // Up to where track 1 delivered; the rest once the tracks end.
        assert_eq!(out, [(V0, 66), (A0, 73), (V1, 76)]);
        let rest: Vec<(Track, i64)> = std::iter::from_fn(|| q.pop_any())
            .map(|r| (r.item.0, r.item.1))
            .collect();
        assert_eq!(rest, [(V2, 80), (A0, 94), (V0, 99)]);
    }

    #[test]
    fn resync_holds_audio_for_track_0_even_when_another_track_has_a_keyframe() {
        let mut q: Interleaver<F> = Interleaver::new(QueueConfig::default());
        for t in [V0, V1, A0] {
            q.activate(t);
        }
        let t0 = Instant::now();
        q.push(v(0), t0);
        q.push(F(V1, 0, 100, true, false), t0);
        q.push(a(10), t0);
        q.resync();
        assert!(q.pop_any().is_some_and(|r| r.item.0 == V1));
        assert!(q.pop_any().is_none(), "audio waits for track 0's keyframe");
        q.push(vk(33), t0);
        q.push(a(40), t0);
        let out: Vec<Track> = std::iter::from_fn(|| q.pop_any())
            .map(|r| r.item.0)
            .collect();
        assert_eq!(out, [V0, A0]);
        assert_eq!(q.dropped(A0), 1);
    }
}
