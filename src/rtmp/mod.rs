//! A complete RTMP publishing client.
//!
//! The protocol core ([`session::Session`]) is sans-IO: it never touches sockets or clocks, so
//! every rule can be exercised with a scripted peer. [`RtmpClient`] is a small blocking driver
//! over `std::net::TcpStream` (or TLS) on top of it; the `rtmpclientsink` element drives the
//! same core from its session thread.
#![deny(missing_docs)]

pub mod amf0;
pub mod amf3;
pub mod auth;
pub mod caps;
pub mod chunk;
pub mod client;
pub mod command;
pub mod connection;
pub mod error;
pub mod handshake;
pub mod message;
pub mod securetoken;
pub mod session;
pub mod tls;
pub mod transport;
pub mod url;

pub use amf0::Amf0Value;
pub use amf3::Amf3Value;
pub use caps::ConnectCapabilities;
pub use client::{ClientOptions, RtmpClient};
pub use error::{Error, ProtocolError, Result};
pub use message::Message;
pub use session::ClientEvent;
