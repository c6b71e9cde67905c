//! gst-plugin-rtmpclient: an RTMP/RTMPS publishing client (`rtmp`), the media-format records it
//! needs (`codec`), and the GStreamer element `rtmpclientsink` built on both.
//!
//! The `rtmp` and `codec` modules never touch GStreamer; only `rtmpclientsink` does, and it is
//! built only with the cargo feature `gst` (on by default). `default-features = false` gives
//! the client library alone, with no GStreamer crate in the dependency tree.

pub mod codec;
pub mod rtmp;
#[cfg(feature = "gst")]
mod rtmpclientsink;

// Compiles every ```rust block of the README as a doc test, so its library example cannot
// drift from the API. Blocks marked `sh` or `text` are not compiled.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme {}

#[cfg(feature = "gst")]
use gst::glib;

#[cfg(feature = "gst")]
fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    rtmpclientsink::register(plugin)
}

#[cfg(feature = "gst")]
gst::plugin_define!(
    rtmpclient,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MPL",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
