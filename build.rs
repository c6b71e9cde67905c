fn main() {
    // Only the plugin entry point needs the version/commit/date variables.
    #[cfg(feature = "gst")]
    gst_plugin_version_helper::info()
}
