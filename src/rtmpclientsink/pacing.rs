//! `peak-kbps`: a token bucket that paces what the session thread writes to a peak rate.
//!
//! The session thread asks [`Pacer::delay`] before each media write how long to wait, giving
//! the bytes it has written so far; the bytes written since the previous call (the last frame,
//! its chunk headers, control messages) are charged to the bucket, so the rate counts what
//! really goes on the wire. The bucket holds at most [`BURST`] of the rate (and never less than
//! [`MIN_BURST_BYTES`]), which bounds a burst after an idle moment: over any interval `T` at most
//! `rate * T + burst` bytes (plus one frame) leave. While paced slower than the stream, frames
//! wait in the queue, where `max-queue-time` and `congestion-policy` apply as for a slow
//! network. The rate is read at every call, so `peak-kbps` may change while playing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Time of the peak rate the bucket may save up (the burst bound).
pub const BURST: Duration = Duration::from_millis(100);
/// Smallest bucket: one 16 KiB write is never split into waits.
pub const MIN_BURST_BYTES: f64 = 16.0 * 1024.0;
/// Largest `peak-kbps` (as rtmp2sink: bytes per second fit an `i32`).
pub const MAX_PEAK_KBPS: u32 = i32::MAX as u32 / 125;

/// The `peak-kbps` setting shared by the element and its session thread (0: no pacing).
#[derive(Debug, Clone, Default)]
pub struct PeakRate(Arc<AtomicU32>);

impl PeakRate {
    /// Sets the peak rate in kbit/s (0: no pacing).
    pub fn set(&self, kbps: u32) {
        self.0.store(kbps.min(MAX_PEAK_KBPS), Ordering::Relaxed);
    }

    /// The peak rate in kbit/s (0: no pacing).
    pub fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The token bucket of one session thread.
#[derive(Debug, Clone)]
pub struct Pacer {
    rate: PeakRate,
    /// Bytes that may go out now; negative while the last write is being paid off.
    tokens: f64,
    last: Option<Instant>,
    /// Bytes written as of the last call.
    written: u64,
}

impl Pacer {
    /// A pacer following `rate`.
    pub fn new(rate: PeakRate) -> Self {
        Pacer {
            rate,
            tokens: 0.0,
            last: None,
            written: 0,
        }
    }

    /// How long to wait before the next write, `written` being the bytes written so far
    /// (monotonic; a smaller value starts the count over).
    pub fn delay(&mut self, written: u64, now: Instant) -> Duration {
        let sent = written.saturating_sub(self.written);
        self.written = written;
        let kbps = self.rate.get();
        if kbps == 0 {
            self.last = None;
            self.tokens = 0.0;
            return Duration::ZERO;
        }
        let bytes_per_sec = f64::from(kbps) * 125.0;
        let cap = (bytes_per_sec * BURST.as_secs_f64()).max(MIN_BURST_BYTES);
        // A fresh bucket is full: the first burst is bounded like any other.
        let elapsed = self.last.map_or(cap / bytes_per_sec, |t| {
            now.saturating_duration_since(t).as_secs_f64()
        });
        self.last = Some(now);
        self.tokens = (self.tokens + elapsed * bytes_per_sec).min(cap) - sent as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / bytes_per_sec)
        }
    }

    /// Bytes the bucket holds for the write about to be made after [`Pacer::delay`] said go
    /// (`None` without pacing): a write of several frames stops taking frames past it, so a
    /// burst stays within the bucket plus one frame.
    pub fn allowance(&self) -> Option<usize> {
        if self.rate.get() == 0 {
            return None;
        }
        Some(self.tokens.max(0.0) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `frame` bytes as fast as the pacer allows for `secs` simulated seconds.
    fn simulate(kbps: u32, frame: u64, secs: f64) -> (u64, f64) {
        let rate = PeakRate::default();
        rate.set(kbps);
        let mut p = Pacer::new(rate);
        let start = Instant::now();
        let mut now = start;
        let mut written = 0;
        while now.duration_since(start).as_secs_f64() < secs {
            now += p.delay(written, now);
            written += frame;
        }
        (written, now.duration_since(start).as_secs_f64())
    }

    #[test]
    fn long_run_rate_is_the_peak_rate_plus_one_burst() {
        for (kbps, frame) in [
            (3000, 25_000),
            (3000, 1_500),
            (500, 60_000),
            (20_000, 4_096),
        ] {
            let (bytes, secs) = simulate(kbps, frame, 10.0);
            let limit = f64::from(kbps) * 125.0 * secs;
            let burst = (f64::from(kbps) * 125.0 * BURST.as_secs_f64()).max(MIN_BURST_BYTES);
            assert!(
                (bytes as f64) <= limit + burst + frame as f64 + 1.0,
                "{kbps} kbps, {frame} B frames: {bytes} B in {secs:.2} s (limit {limit:.0})"
            );
            // And it is not slower than asked (within one frame).
            assert!(
                (bytes as f64) >= limit - frame as f64,
                "{kbps} kbps: only {bytes} B in {secs:.2} s"
            );
        }
    }

    #[test]
    fn idle_time_saves_up_at_most_one_burst() {
        let rate = PeakRate::default();
        rate.set(1000); // 125 000 B/s, burst 16 KiB (12.5 kB < minimum)
        let mut p = Pacer::new(rate);
        let t0 = Instant::now();
        assert_eq!(p.delay(0, t0), Duration::ZERO);
        // After 10 s idle, 16 KiB go at once, the next byte waits.
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(p.delay(0, t1), Duration::ZERO);
        let d = p.delay(MIN_BURST_BYTES as u64 + 12_500, t1);
        assert!(
            (d.as_secs_f64() - 0.1).abs() < 1e-6,
            "12.5 kB over the burst at 125 kB/s waits 100 ms, got {d:?}"
        );
    }

    #[test]
    fn zero_means_no_pacing_and_the_rate_can_change() {
        let rate = PeakRate::default();
        let mut p = Pacer::new(rate.clone());
        let t = Instant::now();
        assert_eq!(p.delay(10_000_000, t), Duration::ZERO);
        rate.set(8); // 1000 B/s
        assert_eq!(p.delay(10_000_000, t), Duration::ZERO, "full bucket first");
        let d = p.delay(10_000_000 + 16_384 + 1000, t);
        assert!((d.as_secs_f64() - 1.0).abs() < 1e-6, "{d:?}");
        rate.set(u32::MAX);
        assert_eq!(rate.get(), MAX_PEAK_KBPS);
    }
}
