//! Media-format records for RTMP publishing, free of GStreamer: H.264 (Annex-B/AVCC, avcC),
//! AAC (ADTS, AudioSpecificConfig) and FLV tag bodies (legacy and Enhanced RTMP).
//!
//! Everything here works on plain byte slices. Input is treated as untrusted: every parser
//! returns [`Result`], never panics and never allocates more than a small multiple of its input.
#![deny(missing_docs)]

pub mod aac;
pub mod error;
pub mod flv;
pub mod h264;

pub use error::{Error, Result};
