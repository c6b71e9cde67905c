//! GObject/GStreamer glue of `rtmpclientsink`.

use std::sync::LazyLock;

use gst::glib;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;

pub(crate) static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "rtmpclientsink",
        gst::DebugColorFlags::empty(),
        Some("RTMP publishing sink"),
    )
});

#[derive(Default)]
pub struct RtmpClientSink {}

#[glib::object_subclass]
impl ObjectSubclass for RtmpClientSink {
    const NAME: &'static str = "GstRtmpClientSink";
    type Type = super::RtmpClientSink;
    type ParentType = gst_base::BaseSink;
    type Interfaces = (gst::URIHandler,);
}

impl ObjectImpl for RtmpClientSink {}
impl GstObjectImpl for RtmpClientSink {}

impl ElementImpl for RtmpClientSink {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "RTMP Client Sink",
                "Sink/Network",
                "Publishes H.264 video and AAC audio to an RTMP server",
                "gst-plugin-rtmpclient developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let aac = gst::Structure::builder("audio/mpeg")
                .field("mpegversion", gst::List::new([2i32, 4]))
                .field("stream-format", gst::List::new(["raw", "adts"]))
                .build();
            let h264 = gst::Structure::builder("video/x-h264")
                .field("stream-format", gst::List::new(["avc", "byte-stream"]))
                .field("alignment", "au")
                .build();
            let sink_caps = gst::Caps::builder_full()
                .structure(h264)
                .structure(aac.clone())
                .build();
            let audio_caps = gst::Caps::builder_full().structure(aac).build();
            vec![
                gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &sink_caps,
                )
                .expect("valid sink template"),
                gst::PadTemplate::new(
                    "audio",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Request,
                    &audio_caps,
                )
                .expect("valid audio template"),
            ]
        });
        TEMPLATES.as_ref()
    }
}

impl BaseSinkImpl for RtmpClientSink {
    fn render(&self, _buffer: &gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        gst::trace!(CAT, imp = self, "render");
        Ok(gst::FlowSuccess::Ok)
    }
}

impl URIHandlerImpl for RtmpClientSink {
    const URI_TYPE: gst::URIType = gst::URIType::Sink;
    fn protocols() -> &'static [&'static str] {
        &["rtmp", "rtmps"]
    }
    fn uri(&self) -> Option<String> {
        None
    }
    fn set_uri(&self, _uri: &str) -> Result<(), glib::Error> {
        Ok(())
    }
}
