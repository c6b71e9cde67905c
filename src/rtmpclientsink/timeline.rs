//! Timestamp logic that needs no GStreamer: deriving decode timestamps for video that only has
//! presentation timestamps, and mapping running time onto the RTMP timeline.
//!
//! Everything here works on plain integers so it can be unit-tested exhaustively; the element
//! feeds nanoseconds of running time into [`DtsDeriver`] and milliseconds into [`RtmpTimeline`].

use std::collections::VecDeque;

/// Frames the [`DtsDeriver`] looks ahead. Four covers the usual x264 B-pyramid
/// (`--bframes 3 --b-pyramid normal`, reorder depth 2) with room to spare; deeper reordering
/// still gives valid (non-decreasing, ≤ PTS) DTS, only less evenly spaced.
pub const DEFAULT_REORDER_WINDOW: usize = 4;

/// A frame leaving the [`DtsDeriver`] with its derived decode timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived<T> {
    /// Derived decode timestamp (non-decreasing over the stream).
    pub dts: i64,
    /// Presentation timestamp as given.
    pub pts: i64,
    /// True when no DTS ≤ PTS could keep the DTS non-decreasing (the frame's PTS is earlier than
    /// a previous frame's DTS); `dts` is then the previous DTS and `dts > pts`.
    pub impossible: bool,
    /// The caller's payload.
    pub item: T,
}

/// Derives decode timestamps for streams whose buffers carry only PTS (e.g. `matroskademux`
/// output of B-frame streams).
///
/// Frames arrive in decode order. With `δ` the frame spacing (smallest positive PTS difference
/// in the window), frame `i` gets
///
/// ```text
/// DTS_i = min over j in 0..=W of (PTS_{i+j} − j·δ)
/// ```
///
/// i.e. the latest time that still leaves room for the following frames to be decoded one `δ`
/// apart before they are shown. The `j = 0` term makes `DTS_i ≤ PTS_i`; for a constant frame
/// rate and reordering no deeper than `W` this is exactly "the sorted PTS, delayed by the
/// reorder depth", so DTS are strictly increasing by one frame (decoders and muxers such as
/// FFmpeg reject equal DTS). DTS are then clamped to be at least `min_step` above the previous
/// one; a frame whose PTS is below that is flagged `impossible`. A frame is released once `W`
/// later frames are known (or at [`DtsDeriver::flush`]), so this adds `W` frames of latency.
#[derive(Debug)]
pub struct DtsDeriver<T> {
    window: usize,
    min_step: i64,
    pending: VecDeque<(i64, T)>,
    last_dts: Option<i64>,
    /// Frame spacing seen last (kept for the tail of the stream where the window is short).
    delta: Option<i64>,
}

impl<T> DtsDeriver<T> {
    /// A deriver looking `window` frames ahead (0 means DTS = PTS, clamped); consecutive DTS
    /// differ by at least `min_step` (use 1 ms of the unit when DTS end up in milliseconds).
    pub fn new(window: usize, min_step: i64) -> Self {
        DtsDeriver {
            window,
            min_step: min_step.max(1),
            pending: VecDeque::with_capacity(window + 1),
            last_dts: None,
            delta: None,
        }
    }

    /// Frames held back waiting for their look-ahead.
    #[cfg(test)]
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Adds the next frame in decode order; returns the oldest frame once its window is full.
    pub fn push(&mut self, pts: i64, item: T) -> Option<Derived<T>> {
        self.pending.push_back((pts, item));
        if self.pending.len() > self.window {
            self.release_front(false)
        } else {
            None
        }
    }

    /// Releases every held frame (end of stream), each with the look-ahead that is left.
    pub fn flush(&mut self) -> Vec<Derived<T>> {
        let mut out = Vec::with_capacity(self.pending.len());
        while let Some(d) = self.release_front(true) {
            out.push(d);
        }
        out
    }

    /// Forgets held frames and the DTS history (after a flushing seek).
    pub fn reset(&mut self) {
        self.pending.clear();
        self.last_dts = None;
        self.delta = None;
    }

    /// `tail`: at flush the look-ahead is cut short; frames then go one `δ` after the previous
    /// DTS when their PTS allows, instead of jumping to their PTS.
    fn release_front(&mut self, tail: bool) -> Option<Derived<T>> {
        if self.pending.is_empty() {
            return None;
        }
        let mut sorted: Vec<i64> = self.pending.iter().map(|(p, _)| *p).collect();
        sorted.sort_unstable();
        // A window cut short at the end of the stream can overestimate the spacing.
        let full = self.pending.len() > self.window;
        if let Some(d) = sorted
            .windows(2)
            .map(|w| w[1] - w[0])
            .filter(|d| *d > 0)
            .min()
            .filter(|_| full || self.delta.is_none())
        {
            self.delta = Some(d);
        }
        let delta = self.delta.unwrap_or(0);
        let mut dts = self
            .pending
            .iter()
            .enumerate()
            .map(|(j, (p, _))| p.saturating_sub(delta.saturating_mul(j as i64)))
            .min()?;
        if let (true, Some(last)) = (tail, self.last_dts) {
            dts = dts.min(last.saturating_add(delta.max(self.min_step)));
        }
        let (pts, item) = self.pending.pop_front()?;
        let mut impossible = false;
        if let Some(last) = self.last_dts {
            let floor = last.saturating_add(self.min_step);
            if dts < floor {
                dts = floor;
                impossible = dts > pts;
            }
        }
        self.last_dts = Some(dts);
        Some(Derived {
            dts,
            pts,
            impossible,
            item,
        })
    }
}

/// What [`RtmpTimeline::stamp`] made of a decode time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The RTMP message timestamp (milliseconds since the base, modulo 2^32).
    pub timestamp: u32,
    /// How many milliseconds the frame was moved forward because it arrived later than a frame
    /// already sent (0 for frames in order).
    pub clamped_by: i64,
}

/// Maps decode times in milliseconds of running time onto RTMP timestamps: the first message of
/// the publish is at 0 for all tracks (one shared base), timestamps never go backwards, and they
/// wrap at 2^32 ms (≈ 49.7 days) as RTMP's 32-bit timestamps do.
#[derive(Debug, Default, Clone)]
pub struct RtmpTimeline {
    base: Option<i64>,
    last: Option<i64>,
}

impl RtmpTimeline {
    /// A timeline without a base yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The base in running-time milliseconds, once decided.
    pub fn base(&self) -> Option<i64> {
        self.base
    }

    /// Decides the base (the smallest first DTS among the tracks) unless already set.
    pub fn set_base(&mut self, base_ms: i64) {
        if self.base.is_none() {
            self.base = Some(base_ms);
        }
    }

    /// Stamps a message whose decode time is `dts_ms`; sets the base to `dts_ms` if there is none.
    pub fn stamp(&mut self, dts_ms: i64) -> Stamp {
        let base = *self.base.get_or_insert(dts_ms);
        let mut ts = dts_ms.saturating_sub(base);
        let mut clamped_by = 0;
        if let Some(last) = self.last {
            if ts < last {
                clamped_by = last - ts;
                ts = last;
            }
        } else if ts < 0 {
            clamped_by = -ts;
            ts = 0;
        }
        self.last = Some(ts);
        Stamp {
            timestamp: wrap_ms(ts),
            clamped_by,
        }
    }

    /// The timestamp for a message that is not media (metadata, a sequence header sent on its
    /// own): the last media timestamp, or 0 before any.
    pub fn current(&self) -> u32 {
        wrap_ms(self.last.unwrap_or(0))
    }
}

/// RTMP timestamps are 32-bit milliseconds that wrap around.
pub fn wrap_ms(ms: i64) -> u32 {
    ms.rem_euclid(1 << 32) as u32
}

/// Nanoseconds to milliseconds, rounded to the nearest millisecond (half away from zero would
/// make -0.5 ms differ from +0.5 ms; rounding half up keeps equal spacing on both sides of 0).
pub fn ns_to_ms(ns: i64) -> i64 {
    (ns + 500_000).div_euclid(1_000_000)
}

/// Clamps a composition time offset (PTS − DTS, ms) into FLV's signed 24-bit field.
pub fn clamp_cts(cts_ms: i64) -> i32 {
    cts_ms.clamp(-(1 << 23), (1 << 23) - 1) as i32
}

/// The composition time to send for a frame whose DTS [`RtmpTimeline::stamp`] moved forward by
/// `clamped_by` ms: PTS stays where it was while that is not before the new DTS, otherwise it
/// moves to the DTS, since a PTS before the DTS is invalid (decoders and muxers reject it). A
/// negative composition time given by the source is kept as it is.
pub fn late_cts(cts_ms: i64, clamped_by: i64) -> i32 {
    clamp_cts(cts_ms.saturating_sub(clamped_by.max(0)).max(cts_ms.min(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn derive_all(window: usize, pts: &[i64]) -> Vec<Derived<usize>> {
        let mut d = DtsDeriver::new(window, 1);
        let mut out = Vec::new();
        for (i, p) in pts.iter().enumerate() {
            out.extend(d.push(*p, i));
        }
        out.extend(d.flush());
        out
    }

    fn check_valid(out: &[Derived<usize>]) {
        for (i, d) in out.iter().enumerate() {
            assert_eq!(d.item, i, "order kept");
            assert!(!d.impossible, "frame {i} impossible: {d:?}");
            assert!(d.dts <= d.pts, "frame {i}: dts {} > pts {}", d.dts, d.pts);
            if i > 0 {
                assert!(d.dts > out[i - 1].dts, "dts not increasing at {i}");
            }
        }
    }

    #[test]
    fn no_reordering_gives_dts_equal_pts() {
        let pts: Vec<i64> = (0..20).map(|i| i * 40).collect();
        let out = derive_all(DEFAULT_REORDER_WINDOW, &pts);
        check_valid(&out);
        assert!(out.iter().all(|d| d.dts == d.pts));
    }

    #[test]
    fn simple_b_frames() {
        // I0 P3 B1 B2 P6 B4 B5 (units of one frame)
        let pts = [0, 3, 1, 2, 6, 4, 5, 9, 7, 8];
        let out = derive_all(DEFAULT_REORDER_WINDOW, &pts);
        check_valid(&out);
        assert_eq!(out.len(), pts.len());
        // The sorted PTS delayed by the reorder depth (one frame here).
        assert_eq!(
            out.iter().map(|d| d.dts).collect::<Vec<_>>(),
            vec![-1, 0, 1, 2, 3, 4, 5, 6, 7, 8]
        );
    }

    #[test]
    fn b_pyramid_gop_of_sixteen() {
        // x264 --b-pyramid with 7 B-frames between P-frames: I0 P8 B4 b2 b1 b3 b6 b5 b7 P16 ...
        let gop = [8, 4, 2, 1, 3, 6, 5, 7];
        let mut pts = vec![0i64];
        for g in 0..10 {
            pts.extend(gop.iter().map(|p| (p + g * 8) * 33));
        }
        let out = derive_all(DEFAULT_REORDER_WINDOW, &pts);
        check_valid(&out);
        // PTS pass through untouched (DTS are valid but, with reordering this deep, not evenly
        // spaced).
        assert!(out.iter().zip(&pts).all(|(d, p)| d.pts == *p));
    }

    #[test]
    fn x264_bframes3_pyramid_gets_evenly_spaced_dts() {
        // --bframes 3 --b-pyramid normal: I0 P4 B2 b1 b3 P8 B6 b5 b7 ...
        let gop = [4, 2, 1, 3];
        let mut pts = vec![0i64];
        for g in 0..20 {
            pts.extend(gop.iter().map(|p| (p + g * 4) * 40));
        }
        let out = derive_all(DEFAULT_REORDER_WINDOW, &pts);
        check_valid(&out);
        let dts: Vec<i64> = out.iter().map(|d| d.dts).collect();
        assert!(dts.windows(2).all(|w| w[1] - w[0] == 40), "{dts:?}");
    }

    #[test]
    fn window_larger_than_stream_and_empty_flush() {
        let out = derive_all(8, &[100, 300, 200]);
        check_valid(&out);
        assert_eq!(
            out.iter().map(|d| d.dts).collect::<Vec<_>>(),
            vec![0, 100, 200]
        );
        let mut d: DtsDeriver<()> = DtsDeriver::new(4, 1);
        assert!(d.flush().is_empty());
    }

    #[test]
    fn reordering_deeper_than_window_is_flagged() {
        // The frame with PTS 5 comes two frames after PTS 10; with W = 1 the deriver has already
        // given out DTS 10 so no valid DTS exists for it.
        let out = derive_all(1, &[0, 10, 20, 5, 30]);
        let bad: Vec<_> = out.iter().filter(|d| d.impossible).collect();
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].pts, 5);
        assert!(bad[0].dts > bad[0].pts);
        // Still increasing.
        assert!(out.windows(2).all(|w| w[0].dts < w[1].dts));
    }

    #[test]
    fn millisecond_step_and_variable_spacing() {
        // ns input, DTS at least 1 ms apart; a frame-rate change keeps DTS valid.
        let ms = 1_000_000;
        let mut pts: Vec<i64> = vec![0, 80, 40];
        pts.extend([120, 200, 160].iter());
        pts.extend((0..10).map(|i| 220 + i * 20));
        let pts: Vec<i64> = pts.iter().map(|p| p * ms).collect();
        let mut d = DtsDeriver::new(4, ms);
        let mut out = Vec::new();
        for (i, p) in pts.iter().enumerate() {
            out.extend(d.push(*p, i));
        }
        out.extend(d.flush());
        for (i, x) in out.iter().enumerate() {
            assert!(!x.impossible && x.dts <= x.pts, "{i}: {x:?}");
            if i > 0 {
                assert!(x.dts >= out[i - 1].dts + ms);
            }
        }
    }

    #[test]
    fn window_zero_passes_through() {
        let mut d = DtsDeriver::new(0, 1);
        assert_eq!(d.push(5, ()).map(|d| d.dts), Some(5));
        assert_eq!(
            d.push(3, ()).map(|d| (d.dts, d.impossible)),
            Some((6, true))
        );
    }

    #[test]
    fn reset_forgets_history() {
        let mut d = DtsDeriver::new(1, 1);
        assert!(d.push(1000, ()).is_none());
        assert_eq!(d.push(2000, ()).map(|d| d.dts), Some(1000));
        d.reset();
        assert_eq!(d.pending(), 0);
        assert!(d.push(0, ()).is_none());
        assert_eq!(d.flush()[0].dts, 0);
    }

    #[test]
    fn timeline_base_and_clamping() {
        let mut t = RtmpTimeline::new();
        t.set_base(1000);
        t.set_base(5000); // ignored: the base is decided once
        assert_eq!(t.base(), Some(1000));
        assert_eq!(t.current(), 0);
        assert_eq!(t.stamp(1000).timestamp, 0);
        assert_eq!(t.stamp(1040).timestamp, 40);
        // Late frame: clamped to the last sent timestamp.
        assert_eq!(
            t.stamp(1020),
            Stamp {
                timestamp: 40,
                clamped_by: 20
            }
        );
        assert_eq!(t.stamp(1080).timestamp, 80);
        assert_eq!(t.current(), 80);
    }

    #[test]
    fn timeline_without_explicit_base_and_negative_running_time() {
        let mut t = RtmpTimeline::new();
        assert_eq!(t.stamp(-66).timestamp, 0);
        assert_eq!(t.base(), Some(-66));
        assert_eq!(t.stamp(-33).timestamp, 33);
        assert_eq!(t.stamp(0).timestamp, 66);
        // A base above the first stamped frame cannot produce negative timestamps.
        let mut t = RtmpTimeline::new();
        t.set_base(100);
        assert_eq!(
            t.stamp(90),
            Stamp {
                timestamp: 0,
                clamped_by: 10
            }
        );
    }

    #[test]
    fn timestamps_wrap_at_32_bits() {
        let mut t = RtmpTimeline::new();
        t.set_base(0);
        let near = (1i64 << 32) - 10;
        assert_eq!(t.stamp(near).timestamp, u32::MAX - 9);
        assert_eq!(t.stamp(near + 10).timestamp, 0);
        assert_eq!(t.stamp(near + 25).timestamp, 15);
        assert_eq!(wrap_ms(-1), u32::MAX);
    }

    #[test]
    fn late_frames_never_get_a_pts_before_their_dts() {
        // In time: unchanged, negative source composition times included.
        assert_eq!(late_cts(66, 0), 66);
        assert_eq!(late_cts(-20, 0), -20);
        // Moved forward less than its composition time: PTS kept.
        assert_eq!(late_cts(133, 100), 33);
        // Moved past its PTS (a video track that started 2.5 s after audio left): PTS = DTS,
        // not 2485 ms before it.
        assert_eq!(late_cts(66, 2551), 0);
        assert_eq!(late_cts(0, 1860), 0);
        assert_eq!(late_cts(-20, 100), -20);
    }

    #[test]
    fn unit_conversions() {
        assert_eq!(ns_to_ms(0), 0);
        assert_eq!(ns_to_ms(33_366_666), 33);
        assert_eq!(ns_to_ms(33_500_000), 34);
        assert_eq!(ns_to_ms(-33_366_666), -33);
        assert_eq!(ns_to_ms(-500_000), 0);
        assert_eq!(clamp_cts(100), 100);
        assert_eq!(clamp_cts(-100), -100);
        assert_eq!(clamp_cts(1 << 30), (1 << 23) - 1);
        assert_eq!(clamp_cts(-(1 << 30)), -(1 << 23));
    }
}
