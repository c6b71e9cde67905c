//! Errors of the RTMP client: one variant per way a publish can fail, each worded for the user
//! who reads it. No variant ever carries a stream key, password or query token.

use std::io;

/// Result type of the `rtmp` module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong while connecting to, or publishing on, an RTMP server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL could not be used (the text never contains the stream key).
    #[error("invalid RTMP URL: {0}")]
    InvalidUrl(String),

    /// DNS resolution of the server's host name failed.
    #[error("could not resolve host {host}: {source}; check the host name in the URL")]
    HostNotFound {
        /// Host name from the URL.
        host: String,
        /// Resolver error.
        #[source]
        source: io::Error,
    },

    /// Nothing listens on the server's port.
    #[error(
        "could not connect to {addr}: connection refused; is the RTMP server running and is the port right?"
    )]
    ConnectionRefused {
        /// `host:port` that refused.
        addr: String,
    },

    /// A step did not complete within the configured timeout.
    #[error("timed out while {step} (no answer from the server within {timeout_ms} ms)")]
    TimedOut {
        /// What the client was waiting for, e.g. "connecting to 127.0.0.1:1935".
        step: String,
        /// The timeout that expired, in milliseconds.
        timeout_ms: u64,
    },

    /// The RTMP handshake (C0/C1/C2, S0/S1/S2) failed.
    #[error("RTMP handshake failed: {0}")]
    Handshake(String),

    /// TLS setup or the TLS handshake failed (certificate, host name, protocol).
    #[error("TLS failed: {0}")]
    Tls(String),

    /// The server answered `connect` with an error.
    #[error("server rejected connect: {code} ({description})")]
    ConnectRejected {
        /// Status code, e.g. `NetConnection.Connect.Rejected`.
        code: String,
        /// Server's description (secrets redacted).
        description: String,
    },

    /// Authentication with the server failed (wrong user name or password).
    #[error("authentication failed: {0}; check the user name and password")]
    AuthenticationFailed(String),

    /// The server refused the publish, e.g. `NetStream.Publish.BadName`.
    #[error("server rejected publish: {code} ({description})")]
    PublishRejected {
        /// Status code, e.g. `NetStream.Publish.BadName`.
        code: String,
        /// Server's description (secrets redacted).
        description: String,
    },

    /// The server sent something that breaks the RTMP rules or our safety limits.
    #[error("RTMP protocol violation: {0}")]
    Protocol(#[from] ProtocolError),

    /// The operation is not possible in the current state (e.g. sending media before publishing).
    #[error("invalid state: {0}")]
    InvalidState(&'static str),

    /// The caller cancelled the operation (e.g. the pipeline is stopping).
    #[error("cancelled")]
    Cancelled,

    /// The server closed the connection.
    #[error("connection closed by the server{0}")]
    ConnectionClosed(String),

    /// An operating-system I/O error.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

impl Error {
    /// True when retrying the same publish later may succeed (network trouble, server restart,
    /// stale publisher still registered), false for configuration mistakes.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::ConnectionRefused { .. }
            | Error::TimedOut { .. }
            | Error::ConnectionClosed(_)
            | Error::Io(_)
            | Error::Handshake(_)
            | Error::HostNotFound { .. } => true,
            Error::PublishRejected { code, .. } => code == "NetStream.Publish.BadName",
            _ => false,
        }
    }
}

/// Malformed or oversized input from the server (or a caller-built message that cannot be encoded).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The data ended in the middle of a value.
    #[error("truncated {what}")]
    Truncated {
        /// What was being decoded.
        what: &'static str,
    },
    /// An AMF type marker that does not exist (or is reserved, like MovieClip).
    #[error("unknown AMF{version} type marker 0x{marker:02x}")]
    InvalidAmfMarker {
        /// 0 or 3.
        version: u8,
        /// The marker byte.
        marker: u8,
    },
    /// AMF values nested deeper than [`crate::rtmp::amf0::MAX_DEPTH`].
    #[error("AMF values nested deeper than {max} levels")]
    AmfTooDeep {
        /// The limit.
        max: usize,
    },
    /// An AMF collection, string or the whole decoded value is larger than allowed.
    #[error("AMF {what} of {len} exceeds the limit of {max}")]
    AmfTooLarge {
        /// Which kind of item (e.g. "array length", "value count").
        what: &'static str,
        /// Announced or reached size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An AMF reference index pointing nowhere (or to a value still being decoded).
    #[error("AMF{version} reference {index} to an unknown {table} entry")]
    InvalidAmfReference {
        /// 0 or 3.
        version: u8,
        /// Table name ("object", "string", "trait").
        table: &'static str,
        /// The index.
        index: usize,
    },
    /// A message longer than [`crate::rtmp::chunk::MAX_MESSAGE_SIZE`].
    #[error("message of {size} bytes exceeds the limit of {max} bytes")]
    MessageTooLarge {
        /// Announced size.
        size: u32,
        /// The limit.
        max: u32,
    },
    /// More simultaneous chunk streams than [`crate::rtmp::chunk::MAX_CHUNK_STREAMS`].
    #[error("more than {max} chunk streams in use")]
    TooManyChunkStreams {
        /// The limit.
        max: usize,
    },
    /// Partially received messages would use more than [`crate::rtmp::chunk::MAX_BUFFERED_BYTES`].
    #[error("partially received messages exceed {max} bytes")]
    TooMuchBuffered {
        /// The limit.
        max: usize,
    },
    /// A SetChunkSize with 0 or with the reserved top bit set.
    #[error("invalid chunk size {size}")]
    InvalidChunkSize {
        /// The announced size.
        size: u32,
    },
    /// A type 1/2/3 chunk on a chunk stream that never had a full header.
    #[error("chunk stream {csid} continues without a previous header")]
    MissingChunkHeader {
        /// Chunk stream id.
        csid: u32,
    },
    /// A message whose body does not have the shape its type requires.
    #[error("malformed {what} message")]
    MalformedMessage {
        /// Which message.
        what: &'static str,
    },
    /// Anything else the peer did wrong.
    #[error("{0}")]
    Other(String),
}
