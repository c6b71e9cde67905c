//! Building and running test pipelines: the skip-or-fail rule for GStreamer elements, parsing a
//! description, running it to EOS, and collecting the bus messages the element tests look at.

use std::time::{Duration, Instant};

use gst::prelude::*;

use super::gstsrc::init;
use super::util::{is_ci, loud};

/// GStreamer elements the tests use, with the Debian packages that carry them (named when one
/// is missing).
pub const ELEMENTS: &[(&str, &str)] = &[
    ("videotestsrc", "gstreamer1.0-plugins-base"),
    ("audiotestsrc", "gstreamer1.0-plugins-base"),
    ("audioconvert", "gstreamer1.0-plugins-base"),
    ("compositor", "gstreamer1.0-plugins-base"),
    ("appsink", "gstreamer1.0-plugins-base"),
    ("opusenc", "gstreamer1.0-plugins-base"),
    ("imagefreeze", "gstreamer1.0-plugins-good"),
    ("identity", "libgstreamer1.0-0"),
    ("tee", "libgstreamer1.0-0"),
    ("fakesink", "libgstreamer1.0-0"),
    ("x264enc", "gstreamer1.0-plugins-ugly"),
    ("voaacenc", "gstreamer1.0-plugins-bad"),
    ("matroskamux", "gstreamer1.0-plugins-good"),
    ("matroskademux", "gstreamer1.0-plugins-good"),
    ("webmmux", "gstreamer1.0-plugins-good"),
    ("h264parse", "gstreamer1.0-plugins-bad"),
    ("h265parse", "gstreamer1.0-plugins-bad"),
    ("x265enc", "gstreamer1.0-plugins-bad"),
    ("av1enc", "gstreamer1.0-plugins-bad"),
    ("av1parse", "gstreamer1.0-plugins-bad"),
    ("vp9enc", "gstreamer1.0-plugins-good"),
    ("vp9parse", "gstreamer1.0-plugins-bad"),
    ("aacparse", "gstreamer1.0-plugins-good"),
    ("ac3parse", "gstreamer1.0-plugins-good"),
    ("mpegaudioparse", "gstreamer1.0-plugins-good"),
    ("flacenc", "gstreamer1.0-plugins-good"),
    ("lamemp3enc", "gstreamer1.0-plugins-good"),
    ("avenc_aac", "gstreamer1.0-libav"),
    ("avenc_ac3", "gstreamer1.0-libav"),
    ("avenc_eac3", "gstreamer1.0-libav"),
];

/// The skip-or-fail rule for GStreamer elements: true if every one of `names` exists. A missing
/// one panics under CI and otherwise skips the test with a loud message naming its package.
pub fn require_elements(names: &[&str]) -> bool {
    init();
    let missing: Vec<String> = names
        .iter()
        .filter(|n| gst::ElementFactory::find(n).is_none())
        .map(|n| {
            let pkg = ELEMENTS
                .iter()
                .find(|(e, _)| e == n)
                .map_or("?", |(_, p)| p);
            format!("{n} (Debian package {pkg})")
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    let list = missing.join(", ");
    if is_ci() {
        panic!("GStreamer elements missing, and CI is set: {list}");
    }
    loud(&format!(
        "\n************************************************************************\n\
         *** SKIPPING TEST: GStreamer elements missing: {list}\n\
         *** With CI=true this would be a FAILURE.\n\
         ************************************************************************\n"
    ));
    false
}

/// The pipeline of a description (GStreamer initialised first); panics with the description if
/// it does not parse.
pub fn pipeline(launch: &str) -> gst::Pipeline {
    init();
    gst::parse::launch(launch)
        .unwrap_or_else(|e| panic!("{launch}: {e}"))
        .downcast::<gst::Pipeline>()
        .unwrap_or_else(|_| panic!("{launch}: not a pipeline"))
}

/// Sets `p` PLAYING and waits for EOS within `timeout`; panics (after setting NULL) on an error
/// message, naming its source and debug text, or on timeout. `on_message` sees every other
/// message. Ends in NULL, which closes the connections (and so ends a one-shot server).
/// Returns the element messages posted meanwhile. `what` names the pipeline in panics.
pub fn play_to_eos(
    p: &gst::Pipeline,
    what: &str,
    timeout: Duration,
    on_message: impl FnMut(&gst::Message),
) -> Vec<gst::Structure> {
    play_to_eos_stepping(
        p,
        what,
        timeout,
        Duration::from_millis(100),
        || {},
        on_message,
    )
}

/// [`play_to_eos`] with `step` run before every wait for a message, so at least every `poll`:
/// for tests that act on the pipeline while it plays (request or release a pad once the sink
/// has sent so much).
pub fn play_to_eos_stepping(
    p: &gst::Pipeline,
    what: &str,
    timeout: Duration,
    poll: Duration,
    mut step: impl FnMut(),
    mut on_message: impl FnMut(&gst::Message),
) -> Vec<gst::Structure> {
    let bus = p.bus().unwrap();
    p.set_state(gst::State::Playing)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let deadline = Instant::now() + timeout;
    let poll = gst::ClockTime::try_from(poll).expect("poll fits a ClockTime");
    let mut structs = Vec::new();
    loop {
        step();
        if Instant::now() >= deadline {
            let _ = p.set_state(gst::State::Null);
            panic!("{what}: no EOS within {timeout:?}");
        }
        let Some(msg) = bus.timed_pop(poll) else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => {
                let _ = p.set_state(gst::State::Null);
                panic!(
                    "{what}: error from {:?}: {} ({:?})",
                    e.src().map(|s| s.path_string()),
                    e.error(),
                    e.debug()
                );
            }
            gst::MessageView::Element(e) => {
                if let Some(s) = e.structure() {
                    structs.push(s.to_owned());
                }
            }
            _ => on_message(&msg),
        }
    }
    p.set_state(gst::State::Null).unwrap();
    structs
}

/// Runs a pipeline description to EOS within `timeout`, like [`play_to_eos`]. Returns the
/// element messages posted meanwhile.
pub fn run_to_eos(launch: &str, timeout: Duration) -> Vec<gst::Structure> {
    play_to_eos(&pipeline(launch), launch, timeout, |_| {})
}

/// Whether a bus message is one the element tests keep: errors, warnings, EOS, and the element
/// messages of the sink called `sink_name`.
pub fn worth_keeping(m: &gst::Message, sink_name: &str) -> bool {
    match m.view() {
        gst::MessageView::Error(_) | gst::MessageView::Warning(_) | gst::MessageView::Eos(_) => {
            true
        }
        gst::MessageView::Element(_) => m.src().is_some_and(|s| s.name() == sink_name),
        _ => false,
    }
}

/// Collects bus messages with `take_one(run, wait)` until `cond(run)` holds (checked at least
/// every 50 ms) or `limit` has passed; says whether `cond` held.
pub fn pump_until<R>(
    run: &mut R,
    limit: Duration,
    mut cond: impl FnMut(&R) -> bool,
    mut take_one: impl FnMut(&mut R, Duration),
) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond(run) {
            return true;
        }
        let now = Instant::now();
        if now >= end {
            return false;
        }
        take_one(run, (end - now).min(Duration::from_millis(50)));
    }
}

/// Asserts that no bus message (in its debug form: structure, error and debug text) contains
/// the stream key `key`.
pub fn assert_no_key_on_bus<'a>(msgs: impl IntoIterator<Item = &'a gst::Message>, key: &str) {
    for m in msgs {
        let text = format!("{m:?}");
        assert!(!text.contains(key), "stream key leaked on the bus: {text}");
    }
}
