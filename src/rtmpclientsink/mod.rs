//! The `rtmpclientsink` element: publishes H.264 video and AAC audio elementary streams to an
//! RTMP server without an `flvmux` in front of it.
//!
//! Layout: `imp.rs` is the GObject/GStreamer glue (properties, pads, BaseSink vfuncs, the audio
//! request pad); the streaming threads turn buffers into [`frame::Frame`]s (`format.rs`,
//! `convert.rs`, `timeline.rs`) and hand them to a bounded [`queue`] that one session thread per
//! element (`session.rs`) drains onto the connection (`transport.rs`). Everything the element
//! says on the bus is built in `messages.rs`.

use gst::glib;
use gst::prelude::*;

mod convert;
mod format;
mod frame;
mod imp;
mod messages;
mod queue;
mod session;
mod timeline;
mod transport;

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
