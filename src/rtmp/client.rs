//! The blocking [`RtmpClient`]. CONTRACT STUB: to be implemented.

/// A blocking RTMP publishing client.
#[derive(Debug)]
pub struct RtmpClient {}
