//! Shared helpers for the integration tests: a real nginx-rtmp server, an `ffmpeg`
//! listen server, test media generation, an FLV reader, ffprobe parsing, test TLS
//! certificates and small utilities. Each integration test uses only part of it.
// Each test binary uses a different subset of these helpers.
#![allow(dead_code, unused_imports)]

pub mod authserver;
pub mod ffmpeg;
pub mod ffmpeg9;
pub mod ffprobe;
pub mod flv;
pub mod flvpublish;
#[cfg(feature = "gst")]
pub mod gstmedia;
#[cfg(feature = "gst")]
pub mod gstmedia_ertmp;
#[cfg(feature = "gst")]
pub mod gstrun;
#[cfg(feature = "gst")]
pub mod gstsrc;
#[cfg(feature = "gst")]
pub mod harness;
pub mod media;
pub mod nginx;
pub mod proxy;
pub mod rtmp_servers;
pub mod scripted;
pub mod tls;
pub mod util;

pub use ffmpeg::FfmpegListen;
pub use flv::{FlvFile, FlvTag, read_flv};
pub use nginx::{NginxOptions, NginxRtmp, TlsFront};
pub use proxy::FaultProxy;
pub use util::{TempDir, free_port, require_binaries, require_binary, wait_for, wait_until};
