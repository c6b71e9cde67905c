//! Every element message `rtmpclientsink` posts on the bus: the one place that knows their
//! structure names and fields. Applications match on the names below.
//!
//! | name | fields |
//! | --- | --- |
//! | `rtmp-connected` | `url` (redacted), `fms-version`, and what the server's `_result(connect)` said of Enhanced RTMP: `enhanced` (bool: any of its fields), `caps-ex` (uint, 0 when absent), `four-cc-list` (comma-joined), `video-four-cc-info-map`, `audio-four-cc-info-map` (comma-joined `fourcc:flags`, flags 1 CanDecode, 2 CanEncode, 4 CanForward) |
//! | `rtmp-publishing` | `url` (redacted), `stream-id` (uint) |
//! | `rtmp-status` | `level`, `code`, `description` |
//! | `rtmp-reconnect-request` | `tc-url` (redacted), `description` |
//! | `rtmp-ping` | `rtt-ms` (uint) |
//! | `rtmp-disconnected` | `reason`, `will-reconnect` (bool) |
//! | `rtmp-reconnecting` | `attempt` (uint, from 1), `max-attempts` (int, -1: unlimited), `delay-ms` (uint64), `url` (redacted) |
//! | `rtmp-congestion` | `queue-time-ms` (uint64), `max-queue-time-ms` (uint64), `dropped-video`, `dropped-audio` (uint64, totals over the tracks of each kind), `new-drops` (uint64, since the previous one), `tracks` (array of `rtmp-track`) |
//! | `rtmp-ingest-warning` | `rule` (`youtube`, `twitch`, `facebook`), `check` (`keyframe-interval`, `video-codec`, `audio-codec`, `audio-rate`, `video-bitrate`), `limit`, `measured` (strings with units, e.g. `4 s` and `10 s`), `description` |
//!
//! `rtmp-track` (in `rtmp-congestion` and in the `stats` property's `tracks`): `kind`
//! (`video`/`audio`), `id` (uint, the track id: 0 for `sink`/`audio`, N for `video_N`/
//! `audio_N`), `dropped` (uint64, frames dropped so far), and in `stats` `frames` (uint64,
//! frames sent).
//!
//! A lost connection posts `rtmp-disconnected` (`will-reconnect=true`), then per attempt
//! `rtmp-reconnecting`, and once through `rtmp-connected` and `rtmp-publishing` again; an
//! Enhanced RTMP reconnect request posts `rtmp-reconnect-request`, then `rtmp-connected` and
//! `rtmp-publishing` of the new server. `rtmp-congestion` comes at most once a second while frames
//! are dropped.
//!
//! The connection lifecycle is also posted as `GstMessageProgress` with code `connect`.

use crate::rtmp::caps::ConnectCapabilities;
use crate::rtmp::url::RedactedUrl;

use gst::prelude::*;

use super::queue::{Track, TrackMap};

/// Structure name of the message posted when `connect` succeeded.
pub const CONNECTED: &str = "rtmp-connected";
/// Structure name of the message posted on `NetStream.Publish.Start`.
pub const PUBLISHING: &str = "rtmp-publishing";
/// Structure name of every later `onStatus`.
pub const STATUS: &str = "rtmp-status";
/// Structure name of an Enhanced RTMP reconnect request.
pub const RECONNECT_REQUEST: &str = "rtmp-reconnect-request";
/// Structure name of an RTT measurement.
pub const PING: &str = "rtmp-ping";
/// Structure name of the message posted when the connection ended.
pub const DISCONNECTED: &str = "rtmp-disconnected";
/// Structure name of the message posted before each reconnection attempt.
pub const RECONNECTING: &str = "rtmp-reconnecting";
/// Structure name of the message posted while frames are dropped.
pub const CONGESTION: &str = "rtmp-congestion";
/// Structure name of the message posted when the stream breaks an `ingest-rules` rule.
pub const INGEST_WARNING: &str = "rtmp-ingest-warning";
/// Name of the `stats` structure.
pub const STATS: &str = "rtmp-stats";
/// Progress code of the connection lifecycle.
pub const PROGRESS_CODE: &str = "connect";
/// Structure name of one track's counters.
pub const TRACK: &str = "rtmp-track";

/// One `rtmp-track` structure (`frames` only when known).
fn track_structure(track: Track, dropped: u64, frames: Option<u64>) -> gst::Structure {
    let mut s = gst::Structure::builder(TRACK)
        .field("kind", track.kind.name())
        .field("id", u32::from(track.id))
        .field("dropped", dropped)
        .build();
    if let Some(f) = frames {
        s.set("frames", f);
    }
    s
}

fn element_msg(src: &gst::Element, s: gst::Structure) -> gst::Message {
    gst::message::Element::builder(s).src(src).build()
}

/// `rtmp-connected`: the server's own words on Enhanced RTMP (entries shown as printable
/// ASCII of at most [`MAX_SHOWN`] characters, at most 256 of them).
pub fn connected(
    src: &gst::Element,
    url: &RedactedUrl,
    fms_version: Option<&str>,
    caps: &ConnectCapabilities,
) -> gst::Message {
    let list: Vec<String> = caps.four_cc_list.iter().map(|f| shown(f)).collect();
    let map = |m: &[(String, u32)]| {
        m.iter()
            .map(|(k, v)| format!("{}:{v}", shown(k)))
            .collect::<Vec<_>>()
            .join(",")
    };
    let s = gst::Structure::builder(CONNECTED)
        .field("url", url.to_string())
        .field("fms-version", fms_version.unwrap_or(""))
        .field("enhanced", !caps.is_empty())
        .field("caps-ex", caps.caps_ex.unwrap_or(0))
        .field("four-cc-list", list.join(","))
        .field("video-four-cc-info-map", map(&caps.video_four_cc_info_map))
        .field("audio-four-cc-info-map", map(&caps.audio_four_cc_info_map))
        .build();
    element_msg(src, s)
}

/// Longest server-given entry shown in `rtmp-connected` (a FourCC has 4 characters).
pub const MAX_SHOWN: usize = 16;

/// A server-given name as shown: printable ASCII without the separators, at most
/// [`MAX_SHOWN`] characters.
fn shown(s: &str) -> String {
    s.chars()
        .filter(|c| (c.is_ascii_graphic() || *c == ' ') && *c != ',' && *c != ':')
        .take(MAX_SHOWN)
        .collect()
}

/// `rtmp-publishing`.
pub fn publishing(src: &gst::Element, url: &RedactedUrl, stream_id: u32) -> gst::Message {
    let s = gst::Structure::builder(PUBLISHING)
        .field("url", url.to_string())
        .field("stream-id", stream_id)
        .build();
    element_msg(src, s)
}

/// `rtmp-status` (the server's description, masked by the caller with
/// [`crate::rtmp::url::RtmpUrl::redact_text`] in case it echoes a secret).
pub fn status(src: &gst::Element, level: &str, code: &str, description: &str) -> gst::Message {
    let s = gst::Structure::builder(STATUS)
        .field("level", level)
        .field("code", code)
        .field("description", description)
        .build();
    element_msg(src, s)
}

/// `rtmp-reconnect-request` (`tc_url` resolved by the caller; `description` as for
/// [`status`]).
pub fn reconnect_request(
    src: &gst::Element,
    tc_url: &RedactedUrl,
    description: &str,
) -> gst::Message {
    let s = gst::Structure::builder(RECONNECT_REQUEST)
        .field("tc-url", tc_url.to_string())
        .field("description", description)
        .build();
    element_msg(src, s)
}

/// `rtmp-ping`.
pub fn ping(src: &gst::Element, rtt_ms: u32) -> gst::Message {
    let s = gst::Structure::builder(PING)
        .field("rtt-ms", rtt_ms)
        .build();
    element_msg(src, s)
}

/// `rtmp-disconnected` (`reason`: an error text, which never carries a secret).
pub fn disconnected(src: &gst::Element, reason: &str, will_reconnect: bool) -> gst::Message {
    let s = gst::Structure::builder(DISCONNECTED)
        .field("reason", reason)
        .field("will-reconnect", will_reconnect)
        .build();
    element_msg(src, s)
}

/// `rtmp-reconnecting`.
pub fn reconnecting(
    src: &gst::Element,
    attempt: u32,
    max_attempts: i32,
    delay_ms: u64,
    url: &RedactedUrl,
) -> gst::Message {
    let s = gst::Structure::builder(RECONNECTING)
        .field("attempt", attempt)
        .field("max-attempts", max_attempts)
        .field("delay-ms", delay_ms)
        .field("url", url.to_string())
        .build();
    element_msg(src, s)
}

/// `rtmp-ingest-warning`.
pub fn ingest_warning(src: &gst::Element, w: &super::ingest::Warning) -> gst::Message {
    let s = gst::Structure::builder(INGEST_WARNING)
        .field("rule", w.rule)
        .field("check", w.check)
        .field("limit", w.limit.as_str())
        .field("measured", w.measured.as_str())
        .field(
            "description",
            format!(
                "{} ingest rules: the {} is {}, the limit is {}",
                w.rule,
                w.check.replace('-', " "),
                w.measured,
                w.limit
            ),
        )
        .build();
    element_msg(src, s)
}

/// `rtmp-congestion`.
pub fn congestion(src: &gst::Element, report: &super::queue::CongestionReport) -> gst::Message {
    let s = gst::Structure::builder(CONGESTION)
        .field(
            "queue-time-ms",
            u64::try_from(report.queue_time_ms).unwrap_or(0),
        )
        .field(
            "max-queue-time-ms",
            u64::try_from(report.max_queue_time_ms).unwrap_or(0),
        )
        .field("dropped-video", report.dropped_video)
        .field("dropped-audio", report.dropped_audio)
        .field("new-drops", report.new_drops)
        .field(
            "tracks",
            gst::Array::new(
                report
                    .dropped_per_track
                    .iter()
                    .map(|(t, d)| track_structure(*t, *d, None).to_send_value()),
            ),
        )
        .build();
    element_msg(src, s)
}

/// `GstMessageProgress` for the connection lifecycle.
pub fn progress(src: &gst::Element, kind: gst::ProgressType, text: &str) -> gst::Message {
    gst::message::Progress::builder(kind, PROGRESS_CODE, text)
        .src(src)
        .build()
}

/// Counters shown by the `stats` property.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatsSnapshot {
    /// Bytes written to the socket.
    pub bytes_sent: u64,
    /// Bytes received from the server.
    pub bytes_received: u64,
    /// Video RTMP messages sent (frames and sequence headers).
    pub video_messages: u64,
    /// Audio RTMP messages sent.
    pub audio_messages: u64,
    /// Video frames sent.
    pub video_frames: u64,
    /// Audio frames sent.
    pub audio_frames: u64,
    /// Stream time queued, ms.
    pub queue_depth_ms: u64,
    /// Bytes queued.
    pub queue_bytes: u64,
    /// Last measured round-trip time, ms (0: not measured yet).
    pub rtt_ms: u32,
    /// Send rate over the last few seconds, bit/s.
    pub bitrate: u64,
    /// The server's chunk size.
    pub in_chunk_size: u32,
    /// Our chunk size.
    pub out_chunk_size: u32,
    /// Window after which we acknowledge the server's bytes.
    pub in_window_ack_size: u32,
    /// Window the server asked us to respect.
    pub out_window_ack_size: u32,
    /// Frames sent later than a newer frame and clamped.
    pub late_frames: u64,
    /// Input buffers that could not be converted and were dropped.
    pub bad_buffers: u64,
    /// Video frames dropped (congestion, or to resume at a keyframe after a reconnect).
    pub dropped_video: u64,
    /// Audio frames dropped (a stall or disconnect longer than the queue bound, or older than
    /// the keyframe a reconnect resumes at).
    pub dropped_audio: u64,
    /// Successful reconnections (after a lost connection or a server's reconnect request).
    pub reconnects: u64,
    /// Queue time (see `queue.rs`): how long the oldest queued frame has waited, ms.
    pub queue_time_ms: u64,
    /// Bytes written to the socket that the server has not acknowledged yet.
    pub send_backlog_bytes: u64,
    /// Per track: frames sent.
    pub track_frames: TrackMap<u64>,
    /// Per track: frames dropped (every track the queue knows).
    pub track_dropped: Vec<(Track, u64)>,
}

impl StatsSnapshot {
    /// What our Acknowledgements have reported of the server's bytes: they go out per whole
    /// window (`in-window-ack-size`).
    fn in_bytes_acked(&self) -> u64 {
        match u64::from(self.in_window_ack_size) {
            0 => self.bytes_received,
            w => self.bytes_received - self.bytes_received % w,
        }
    }

    /// The `rtmp-stats` structure.
    pub fn to_structure(&self) -> gst::Structure {
        gst::Structure::builder(STATS)
            .field("bytes-sent", self.bytes_sent)
            .field("bytes-received", self.bytes_received)
            .field("video-messages", self.video_messages)
            .field("audio-messages", self.audio_messages)
            .field("video-frames", self.video_frames)
            .field("audio-frames", self.audio_frames)
            .field("queue-depth-ms", self.queue_depth_ms)
            .field("queue-bytes", self.queue_bytes)
            .field("rtt-ms", self.rtt_ms)
            .field("bitrate", self.bitrate)
            .field("in-chunk-size", self.in_chunk_size)
            .field("out-chunk-size", self.out_chunk_size)
            .field("in-window-ack-size", self.in_window_ack_size)
            .field("out-window-ack-size", self.out_window_ack_size)
            .field("late-frames", self.late_frames)
            .field("bad-buffers", self.bad_buffers)
            .field("dropped-video", self.dropped_video)
            .field("dropped-audio", self.dropped_audio)
            .field("reconnects", self.reconnects)
            .field("queue-time-ms", self.queue_time_ms)
            .field("send-backlog-bytes", self.send_backlog_bytes)
            // rtmp2sink's names, for applications moving from it.
            .field("out-bytes-total", self.bytes_sent)
            .field("in-bytes-total", self.bytes_received)
            .field(
                "out-bytes-acked",
                self.bytes_sent.saturating_sub(self.send_backlog_bytes),
            )
            .field("in-bytes-acked", self.in_bytes_acked())
            .field("tracks", self.tracks_array())
            .build()
    }

    /// `tracks`: one `rtmp-track` per track that was queued or sent, in track order.
    fn tracks_array(&self) -> gst::Array {
        let mut tracks: Vec<Track> = self
            .track_frames
            .tracks()
            .chain(self.track_dropped.iter().map(|(t, _)| *t))
            .collect();
        tracks.sort();
        tracks.dedup();
        gst::Array::new(tracks.into_iter().map(|t| {
            let dropped = self
                .track_dropped
                .iter()
                .find(|(d, _)| *d == t)
                .map_or(0, |(_, n)| *n);
            let frames = self.track_frames.get(t).copied().unwrap_or(0);
            track_structure(t, dropped, Some(frames)).to_send_value()
        }))
    }
}
