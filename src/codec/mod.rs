//! Media-format records for RTMP publishing, free of GStreamer: H.264 (Annex-B/AVCC, avcC),
//! AAC (ADTS, AudioSpecificConfig) and FLV tag bodies (legacy and Enhanced RTMP).

pub mod aac;
pub mod flv;
pub mod h264;
