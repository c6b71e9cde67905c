//! The `rtmpclientsink` element: publishes H.264 video and AAC audio elementary streams to an
//! RTMP (or RTMPS) server without an `flvmux` in front of it.
//!
//! ```text
//! gst-launch-1.0 videotestsrc is-live=true ! x264enc tune=zerolatency key-int-max=60 ! \
//!     rtmpclientsink name=s location=rtmp://host/live/STREAMKEY \
//!     audiotestsrc is-live=true ! avenc_aac ! s.audio
//! gst-launch-1.0 filesrc location=in.mkv ! matroskademux name=d \
//!     d.video_0 ! queue ! rtmpclientsink name=s location=rtmp://host/live/KEY \
//!     d.audio_0 ! queue ! s.audio
//! ```
//!
//! * `sink` (always): H.264 (`avc` or `byte-stream`, `alignment=au`), or AAC for audio-only
//!   streams. `audio` (request, at most one): AAC (`raw` or `adts`) next to video.
//! * Bus: element messages `rtmp-connected`, `rtmp-publishing`, `rtmp-status`,
//!   `rtmp-reconnect-request`, `rtmp-ping`, `rtmp-disconnected`, `rtmp-reconnecting`,
//!   `rtmp-congestion`, `rtmp-ingest-warning` (see `messages.rs`, `ingest.rs`) and
//!   `GstMessageProgress` with code `connect`.
//! * rtmp2sink's properties (`flvin.rs` takes `video/x-flv` for `flvmux ! rtmpclientsink`;
//!   `peak-kbps` is `pacing.rs`).
//! * EOS: everything queued is sent, the stop commands go out and the connection is closed
//!   before EOS reaches the bus; when nothing can be sent for `timeout`, a WARNING is posted and
//!   EOS goes on without the rest.
//! * Staying live (see `session.rs` and `queue.rs`): a lost connection that carried media is
//!   reconnected with backoff (`reconnect-attempts`, `reconnect-delay`, `reconnect-delay-max`),
//!   resuming at a keyframe with onMetaData and sequence headers first on the same timeline;
//!   Enhanced RTMP reconnect requests are followed without losing or repeating a frame; what
//!   waits to be sent is bounded by `max-queue-time` with `congestion-policy` block or drop;
//!   dead peers are detected within `timeout`; stopping never waits longer than that.
//! * Timeline: RTMP timestamps are running-time DTS in ms, all tracks on one base (the
//!   first message is at 0); tracks are interleaved by DTS, waiting at most
//!   `max-interleave-time` (stream time and wall-clock time, plus the pipeline latency) for a
//!   silent track (see `queue.rs`). Video without usable DTS gets DTS derived from PTS
//!   (see `timeline.rs`).
//!
//! Layout: `imp.rs` is the GObject/GStreamer glue (properties, pads, BaseSink vfuncs, the audio
//! request pad); each pad's streaming thread turns caps and buffers into [`frame::Frame`]s of
//! its track in `input.rs` (with `format.rs`, `convert.rs`, `timeline.rs`) and hands them to a
//! bounded [`queue`], keyed by track, that one session thread per element (`session.rs`) drains
//! onto the connection (`transport.rs`), every FLV tag header built by
//! [`crate::codec::flv::tag_header`]. Everything the element says on the bus is built in
//! `messages.rs`.

use gst::glib;
use gst::prelude::*;

mod audio;
mod convert;
mod flvin;
mod format;
mod frame;
mod imp;
mod ingest;
mod input;
mod messages;
mod pacing;
mod queue;
mod session;
mod timeline;
mod transport;
mod video;

glib::wrapper! {
    pub struct RtmpClientSink(ObjectSubclass<imp::RtmpClientSink>)
        @extends gst_base::BaseSink, gst::Element, gst::Object,
        @implements gst::URIHandler;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "rtmpclientsink",
        gst::Rank::NONE,
        RtmpClientSink::static_type(),
    )
}
