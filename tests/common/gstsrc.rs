//! GStreamer-side helpers for element tests: one-time init with the plugin registered, and the
//! frames a Matroska file's demuxer hands to the element (the reference for comparisons).

use std::path::Path;

use gst::prelude::*;

/// Initializes GStreamer and registers this crate's plugin, once per process.
pub fn init() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstrtmpclient::plugin_register_static().expect("register plugin");
    });
}

/// One access unit / audio frame as the demuxer gave it to the element.
pub struct SrcFrame {
    /// The buffer's bytes.
    pub data: Vec<u8>,
    /// Running-time PTS in ms.
    pub pts_ms: i64,
    /// No DELTA_UNIT flag.
    pub key: bool,
}

/// Demuxes a Matroska file with the same demuxer the publish pipeline uses.
pub fn demux(path: &Path) -> (Vec<SrcFrame>, Vec<SrcFrame>) {
    init();
    let launch = format!(
        "filesrc location={} ! matroskademux name=d \
         d.video_0 ! queue ! appsink name=v sync=false \
         d.audio_0 ! queue ! appsink name=a sync=false",
        path.display()
    );
    let p = gst::parse::launch(&launch)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    // Through the action signal: the crate has no gstreamer-app dependency.
    let sinks: Vec<gst::Element> = ["v", "a"].iter().map(|n| p.by_name(n).unwrap()).collect();
    p.set_state(gst::State::Playing).unwrap();
    let mut out = [Vec::new(), Vec::new()];
    for (i, s) in sinks.iter().enumerate() {
        while let Some(sample) = s.emit_by_name::<Option<gst::Sample>>("pull-sample", &[]) {
            let b = sample.buffer().unwrap();
            assert!(
                i == 1 || b.dts().is_none() || b.dts() == b.pts(),
                "expected PTS-only video"
            );
            // What the element works with: running time in the segment of this buffer
            // (matroskademux moves the segment start after the first frames of a file whose
            // audio starts earlier than its video).
            let seg = sample
                .segment()
                .and_then(|s| s.downcast_ref::<gst::ClockTime>().cloned())
                .unwrap();
            let rt = match seg.to_running_time_full(b.pts()).unwrap() {
                gst::Signed::Positive(t) => t.nseconds() as i64,
                gst::Signed::Negative(t) => -(t.nseconds() as i64),
            };
            let m = b.map_readable().unwrap();
            out[i].push(SrcFrame {
                data: m.to_vec(),
                pts_ms: (rt + 500_000).div_euclid(1_000_000),
                key: !b.flags().contains(gst::BufferFlags::DELTA_UNIT),
            });
        }
    }
    p.set_state(gst::State::Null).unwrap();
    let [v, a] = out;
    (v, a)
}
