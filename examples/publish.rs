//! Publishes a live test stream (H.264 + AAC) with `rtmpclientsink`, prints the element's bus
//! messages, and stops cleanly on Ctrl-C (EOS first, so the server gets every frame).
//!
//! ```sh
//! cargo run --example publish -- rtmp://127.0.0.1/live/test
//! ```

use gst::glib;
use gst::prelude::*;

/// SIGINT's number on every Unix GStreamer runs on.
const SIGINT: i32 = 2;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let location = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "rtmp://127.0.0.1/live/test".to_string());
    gst::init()?;
    // Registers the element from this crate, so no GST_PLUGIN_PATH is needed.
    gstrtmpclient::plugin_register_static()?;

    let pipeline = gst::parse::launch(
        "videotestsrc is-live=true pattern=ball ! video/x-raw,width=1280,height=720,framerate=30/1 \
         ! x264enc tune=zerolatency bitrate=2500 key-int-max=60 ! rtmpclientsink name=sink \
         audiotestsrc is-live=true wave=ticks ! audioconvert ! avenc_aac ! sink.audio",
    )?
    .downcast::<gst::Pipeline>()
    .map_err(|_| "not a pipeline")?;
    let sink = pipeline.by_name("sink").ok_or("no sink")?;
    sink.set_property("location", &location);

    let main_loop = glib::MainLoop::new(None, false);
    let bus = pipeline.bus().ok_or("no bus")?;
    let loop_ = main_loop.clone();
    let _watch = bus.add_watch(move |_, msg| {
        use gst::MessageView;
        match msg.view() {
            MessageView::Element(e) => {
                if let Some(s) = e.structure().filter(|s| s.name().starts_with("rtmp-")) {
                    println!("{s}");
                }
            }
            MessageView::Error(err) => {
                eprintln!("error: {} ({:?})", err.error(), err.debug());
                loop_.quit();
            }
            MessageView::Eos(_) => {
                println!("EOS: everything was sent");
                loop_.quit();
            }
            _ => {}
        }
        glib::ControlFlow::Continue
    })?;

    let pipeline_weak = pipeline.downgrade();
    let loop_ = main_loop.clone();
    let mut interrupted = false;
    glib_unix::unix_signal_add(SIGINT, move || {
        if interrupted {
            // Second Ctrl-C: give up waiting for EOS.
            loop_.quit();
            return glib::ControlFlow::Break;
        }
        interrupted = true;
        println!("stopping: sending EOS (Ctrl-C again to quit at once)");
        if let Some(p) = pipeline_weak.upgrade() {
            p.send_event(gst::event::Eos::new());
        }
        glib::ControlFlow::Continue
    });

    pipeline.set_state(gst::State::Playing)?;
    main_loop.run();
    pipeline.set_state(gst::State::Null)?;
    Ok(())
}
