//! `peak-kbps`: a live stream of about 6 Mbit/s published with `peak-kbps=3000` reaches
//! nginx-rtmp at no more than 3.1 Mbit/s, measured by the bytes the server was sent over time
//! (counted by the fault proxy in front of it, in forwarding mode), while the encoder really
//! produces about twice that (counted on its output); the live pipeline's congestion policy
//! (drop) keeps the queue bounded meanwhile.

#![cfg(feature = "gst")]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::gstrun::{pipeline, require_elements};
use common::{FaultProxy, NginxRtmp};
use gst::prelude::*;

/// Measured after this much publishing (the encoder's rate control settles).
const WARM_UP: Duration = Duration::from_secs(2);
/// Length of the measurement.
const WINDOW: Duration = Duration::from_secs(6);

#[test]
fn peak_kbps_3000_caps_a_6_mbit_live_stream_at_the_server() {
    if !require_elements(&["videotestsrc", "x264enc"]) {
        return;
    }
    let Some(nginx) = NginxRtmp::start_default() else {
        return;
    };
    let proxy = FaultProxy::start(SocketAddr::from(([127, 0, 0, 1], nginx.port())));
    // Noise cannot be compressed: x264 spends its whole 6000 kbit/s on it.
    let p = pipeline(&format!(
        "videotestsrc is-live=true pattern=snow ! \
         video/x-raw,width=640,height=360,framerate=30/1 ! \
         x264enc name=enc tune=zerolatency speed-preset=ultrafast bitrate=6000 key-int-max=30 ! \
         rtmpclientsink name=s peak-kbps=3000 location={}",
        proxy.url("live", "paced")
    ));
    let encoded = Arc::new(AtomicU64::new(0));
    let counter = encoded.clone();
    p.by_name("enc")
        .unwrap()
        .static_pad("src")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(b) = info.buffer() {
                counter.fetch_add(b.size() as u64, Ordering::Relaxed);
            }
            gst::PadProbeReturn::Ok
        });
    let sink = p.by_name("s").unwrap();
    let bus = p.bus().unwrap();
    p.set_state(gst::State::Playing).unwrap();

    let mut publishing_at = None;
    let mut window_start: Option<(Instant, u64, u64)> = None;
    let mut congestion = 0;
    let deadline = Instant::now() + WARM_UP + WINDOW + Duration::from_secs(20);
    let (sent_bps, encoded_bps) = loop {
        assert!(Instant::now() < deadline, "no measurement in time");
        if let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(20)) {
            match msg.view() {
                gst::MessageView::Error(e) => {
                    let _ = p.set_state(gst::State::Null);
                    panic!("error: {} ({:?})", e.error(), e.debug());
                }
                gst::MessageView::Element(e) => match e.structure().map(|s| s.name().as_str()) {
                    Some("rtmp-publishing") => publishing_at = Some(Instant::now()),
                    Some("rtmp-congestion") => congestion += 1,
                    _ => {}
                },
                _ => {}
            }
        }
        let Some(t0) = publishing_at else {
            continue;
        };
        let now = Instant::now();
        match window_start {
            None if now >= t0 + WARM_UP => {
                window_start = Some((now, proxy.bytes_up(), encoded.load(Ordering::Relaxed)));
            }
            Some((start, up0, enc0)) if now >= start + WINDOW => {
                let secs = now.duration_since(start).as_secs_f64();
                let up = (proxy.bytes_up() - up0) as f64 * 8.0 / secs;
                let enc = (encoded.load(Ordering::Relaxed) - enc0) as f64 * 8.0 / secs;
                break (up, enc);
            }
            _ => {}
        }
    };
    let stats = sink.property::<gst::Structure>("stats");
    p.set_state(gst::State::Null).unwrap();
    eprintln!(
        "encoder {:.0} kbit/s, server received {:.0} kbit/s over {WINDOW:?}; \
         {congestion} congestion messages; stats {stats}",
        encoded_bps / 1000.0,
        sent_bps / 1000.0
    );
    assert!(
        encoded_bps >= 4_500_000.0,
        "the source must be well above the peak rate to test it: {encoded_bps:.0} bit/s"
    );
    assert!(
        sent_bps <= 3_100_000.0,
        "peak-kbps=3000: the server received {sent_bps:.0} bit/s"
    );
    assert!(
        sent_bps >= 2_500_000.0,
        "paced to the peak rate, not far below it: {sent_bps:.0} bit/s"
    );
    // The stream is faster than the peak: the live pipeline's policy (drop) applies.
    let dropped = stats.get::<u64>("dropped-video").unwrap();
    assert!(dropped > 0 && congestion > 0, "no drops: {stats}");
}
