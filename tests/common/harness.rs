//! The element in a `gst_check::Harness` on its sink pad, publishing to a server that accepts
//! the TCP connection and never answers (frames just queue, nothing is sent), and the buffers
//! the tests push into it.

use std::net::TcpListener;

use gst::prelude::*;

use super::gstsrc::init;

/// The harness (PLAYING), the element's bus to read errors from, and the silent server's
/// listener (kept alive by the caller).
pub fn harness_without_answer() -> (gst_check::Harness, gst::Bus, TcpListener) {
    init();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let el = gst::ElementFactory::make("rtmpclientsink")
        .property("sync", false)
        .property("location", format!("rtmp://127.0.0.1:{port}/live/k"))
        .build()
        .unwrap();
    let bus = gst::Bus::new();
    el.set_bus(Some(&bus));
    let mut h = gst_check::Harness::with_element(&el, Some("sink"), None);
    h.play();
    (h, bus, listener)
}

/// A buffer of `data` at `pts_ms`, flagged DELTA_UNIT when `delta`.
pub fn buffer(data: Vec<u8>, pts_ms: u64, delta: bool) -> gst::Buffer {
    let mut b = gst::Buffer::from_mut_slice(data);
    {
        let b = b.get_mut().unwrap();
        b.set_pts(gst::ClockTime::from_mseconds(pts_ms));
        if delta {
            b.set_flags(gst::BufferFlags::DELTA_UNIT);
        }
    }
    b
}
