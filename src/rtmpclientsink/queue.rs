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
//! The wall-clock bound grows by the pipeline latency (see [`Interleaver::set_latency`]).
//!
//! Requiring both bounds means a fast (non-live) source never gives up on a track that is only
//! slow to start (e.g. an audio encoder warming up), and a live source never waits more than
//! `max_interleave` for a track that went silent. Frames that arrive after a later frame was
//! already sent are clamped to the last sent timestamp by [`RtmpTimeline`].
//!
//! # Bounds
//! A push blocks (see [`Interleaver::can_push`]) when the queue holds more than `max_bytes`, or
//! when the pushing track is more than `max_time_ms` ahead of the oldest queued frame. A track
//! with nothing queued may always push, so the track being waited for is never the one blocked.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::timeline::{RtmpTimeline, Stamp};

/// Default of the `max-interleave-time` property, in milliseconds.
pub const DEFAULT_MAX_INTERLEAVE_MS: u32 = 500;
/// Most bytes of media the queue holds before producers block.
pub const MAX_QUEUE_BYTES: usize = 32 * 1024 * 1024;
/// Most stream time (ms) a track may run ahead of the oldest queued frame before it blocks.
pub const MAX_QUEUE_TIME_MS: i64 = 3000;

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
}

/// Limits of the queue.
#[derive(Debug, Clone, Copy)]
pub struct QueueConfig {
    /// Longest a track is waited for, in stream time and in wall-clock time (see module docs).
    pub max_interleave: Duration,
    /// Byte bound.
    pub max_bytes: usize,
    /// Stream-time bound in milliseconds.
    pub max_time_ms: i64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            max_interleave: Duration::from_millis(DEFAULT_MAX_INTERLEAVE_MS.into()),
            max_bytes: MAX_QUEUE_BYTES,
            max_time_ms: MAX_QUEUE_TIME_MS,
        }
    }
}

#[derive(Debug)]
struct TrackQueue<T> {
    active: bool,
    eos: bool,
    fifo: VecDeque<T>,
    bytes: usize,
    /// Highest DTS ever pushed (the track's progress).
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
    late_frames: u64,
    /// Pipeline latency: a live branch may deliver this much later than another in wall time.
    latency: Duration,
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
            late_frames: 0,
            latency: Duration::ZERO,
        }
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
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.tracks.iter().all(|t| t.fifo.is_empty())
    }

    /// Bytes queued.
    pub fn bytes(&self) -> usize {
        self.tracks.iter().map(|t| t.bytes).sum()
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

    fn oldest_queued_dts(&self) -> Option<i64> {
        self.tracks
            .iter()
            .filter_map(|t| t.fifo.front().map(Queued::dts_ms))
            .min()
    }

    /// True when a frame of `size` bytes and decode time `dts_ms` on `track` fits.
    pub fn can_push(&self, track: Track, dts_ms: i64, size: usize) -> bool {
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

    /// Queues a frame (the caller checked [`Interleaver::can_push`]).
    pub fn push(&mut self, item: T, now: Instant) {
        let track = item.track();
        let dts = item.dts_ms();
        self.start_dts = Some(self.start_dts.map_or(dts, |s| s.min(dts)));
        self.start_at.get_or_insert(now);
        let t = &mut self.tracks[track.idx()];
        t.first_dts.get_or_insert(dts);
        t.last_dts = Some(t.last_dts.map_or(dts, |l| l.max(dts)));
        t.last_push_at = Some(now);
        t.bytes += item.size();
        t.fifo.push_back(item);
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

    /// Takes the next frame in order regardless of the other track (end of stream, shutdown).
    pub fn pop_any(&mut self) -> Option<Released<T>> {
        let track = self.candidate()?;
        Some(self.release(track))
    }

    /// The next frame that may leave now, or why not.
    pub fn pop(&mut self, now: Instant) -> Pop<T> {
        let Some(track) = self.candidate() else {
            return Pop::Empty;
        };
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
                    return Pop::Wait(None);
                }
                let silent_since = other.last_push_at.or(self.start_at).unwrap_or(now);
                let wall_deadline = silent_since + self.cfg.max_interleave + self.latency;
                if now < wall_deadline {
                    return Pop::Wait(Some(wall_deadline));
                }
            }
        }
        Pop::Ready(self.release(track))
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

    #[derive(Debug, Clone, PartialEq)]
    struct F(Track, i64, usize);

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
    }

    fn v(dts: i64) -> F {
        F(Track::Video, dts, 1000)
    }
    fn a(dts: i64) -> F {
        F(Track::Audio, dts, 100)
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
    fn latency_extends_the_wall_clock_bound() {
        let mut q = both();
        q.set_latency(Duration::from_millis(1500));
        let t0 = Instant::now();
        for i in 0..100 {
            q.push(a(i * 20), t0);
        }
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
                assert!(dts > MAX_QUEUE_TIME_MS, "blocked too early at {dts}");
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
}
