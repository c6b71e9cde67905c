//! Errors of the RTMP client: one variant per way a publish can fail, each worded for the user
//! who reads it: a plain sentence (no Rust `Debug` text) that says what went wrong and what to
//! do about it. No variant ever carries a stream key, password or query token: URLs are shown
//! through [`crate::rtmp::url::RedactedUrl`], and a server's own texts are masked where they
//! come in ([`crate::rtmp::url::RtmpUrl::redact_text`]).
//!
//! Texts start lower-case (they are also embedded in other sentences) and end with a full
//! stop or a question mark.

use std::io;

use super::caps::Refusal;
use super::chunk::MAX_ENCODABLE_MESSAGE_SIZE;

/// Result type of the `rtmp` module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong while connecting to, or publishing on, an RTMP server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL could not be used (the text never contains the stream key; it ends with how to
    /// write the URL).
    #[error("invalid RTMP URL: {0}")]
    InvalidUrl(String),

    /// DNS resolution of the server's host name failed.
    #[error("could not resolve host {host} ({source}); check the host name in the URL.")]
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
    #[error(
        "timed out while {step} (no progress within {timeout_ms} ms); check that the server is \
         reachable and answers RTMP on this port, or raise the timeout."
    )]
    TimedOut {
        /// What the client was waiting for, e.g. "connecting to 127.0.0.1:1935".
        step: String,
        /// The timeout that expired, in milliseconds.
        timeout_ms: u64,
    },

    /// The RTMP handshake (C0/C1/C2, S0/S1/S2) failed (the text says what the server seems to
    /// speak instead, and what to do).
    #[error("RTMP handshake failed: {0}")]
    Handshake(String),

    /// TLS setup or the TLS handshake failed (certificate, host name, protocol).
    #[error("TLS failed: {0}")]
    Tls(String),

    /// The server answered `connect` with an error.
    #[error(
        "server rejected connect: {code}{}; check the application name in the URL, and whether \
         the server needs a user name and password.",
        quoted(description)
    )]
    ConnectRejected {
        /// Status code, e.g. `NetConnection.Connect.Rejected`.
        code: String,
        /// Server's description (secrets redacted).
        description: String,
    },

    /// Authentication with the server failed (the text says why and what to change).
    #[error("authentication failed: {0}")]
    AuthenticationFailed(String),

    /// The server refused the publish, e.g. `NetStream.Publish.BadName`.
    #[error(
        "server rejected publish: {code}{}; check the stream key, and that no other publisher \
         is using it.",
        quoted(description)
    )]
    PublishRejected {
        /// Status code, e.g. `NetStream.Publish.BadName`.
        code: String,
        /// Server's description (secrets redacted).
        description: String,
    },

    /// The server's `_result(connect)` excludes a codec, or multitrack, that the publish is to
    /// send ([`crate::rtmp::caps::negotiate`]); nothing was published.
    #[error("{0}")]
    NotAccepted(#[from] Refusal),

    /// The server sent something that breaks the RTMP rules or our safety limits (or a message
    /// to send is larger than RTMP can carry).
    #[error("{}", protocol_text(.0))]
    Protocol(#[from] ProtocolError),

    /// The operation is not possible in the current state (e.g. sending media before publishing).
    #[error("invalid state: {0}")]
    InvalidState(&'static str),

    /// The caller cancelled the operation (e.g. the pipeline is stopping).
    #[error("the publish was cancelled by the application.")]
    Cancelled,

    /// The server closed the connection (the text, if any, says while doing what: ` while ...`).
    #[error(
        "the server closed the connection{0}; check the server's log (it may refuse this \
         application or stream key) and the network."
    )]
    ConnectionClosed(String),

    /// An operating-system I/O error.
    #[error("I/O error: {0}; check the network connection to the server.")]
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

/// ` ("description")`, or nothing for an empty description.
fn quoted(description: &str) -> String {
    let d = description.trim();
    if d.is_empty() {
        String::new()
    } else {
        format!(" (\"{d}\")")
    }
}

/// What a protocol error means to the user: a faulty (or non-RTMP) server, or, for a message we
/// were asked to send, one that is larger than RTMP can carry.
fn protocol_text(e: &ProtocolError) -> String {
    match e {
        ProtocolError::MessageTooLarge { size, max } if *max == MAX_ENCODABLE_MESSAGE_SIZE => {
            format!(
                "cannot send a message of {size} bytes: RTMP carries at most {max} bytes in one \
                 message; lower the bitrate or make keyframes smaller."
            )
        }
        _ => format!(
            "RTMP protocol violation: {e}; check that the URL points to a working RTMP server."
        ),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// One value of every variant (and every protocol error), as a user would see them.
    fn samples() -> Vec<Error> {
        let protocol = [
            ProtocolError::Truncated {
                what: "AMF0 string",
            },
            ProtocolError::InvalidAmfMarker {
                version: 0,
                marker: 0x42,
            },
            ProtocolError::AmfTooDeep { max: 64 },
            ProtocolError::AmfTooLarge {
                what: "array length",
                len: 1 << 20,
                max: 65_536,
            },
            ProtocolError::InvalidAmfReference {
                version: 3,
                table: "string",
                index: 7,
            },
            ProtocolError::MessageTooLarge {
                size: 0xFF_FFFF,
                max: 4 << 20,
            },
            ProtocolError::MessageTooLarge {
                size: 20 << 20,
                max: MAX_ENCODABLE_MESSAGE_SIZE,
            },
            ProtocolError::TooManyChunkStreams { max: 64 },
            ProtocolError::TooMuchBuffered { max: 8 << 20 },
            ProtocolError::InvalidChunkSize { size: 0 },
            ProtocolError::MissingChunkHeader { csid: 45 },
            ProtocolError::MalformedMessage { what: "abort" },
            ProtocolError::Other("invalid outgoing chunk stream id 1".into()),
        ];
        let mut v = vec![
            Error::InvalidUrl("the URL has no host; write it as rtmp://host/app/streamkey.".into()),
            Error::HostNotFound {
                host: "no-such-host.invalid".into(),
                source: io::Error::new(io::ErrorKind::NotFound, "no address for this name"),
            },
            Error::ConnectionRefused {
                addr: "127.0.0.1:1".into(),
            },
            Error::TimedOut {
                step: "performing the RTMP handshake".into(),
                timeout_ms: 2000,
            },
            Error::Handshake("the server answered with TLS; use an rtmps:// URL.".into()),
            Error::ConnectRejected {
                code: "NetConnection.Connect.Rejected".into(),
                description: String::new(),
            },
            Error::ConnectRejected {
                code: "NetConnection.Connect.Rejected".into(),
                description: "No such application.".into(),
            },
            Error::AuthenticationFailed("wrong password; check the user name and password.".into()),
            Error::PublishRejected {
                code: "NetStream.Publish.BadName".into(),
                description: "Already publishing".into(),
            },
            Error::Cancelled,
            Error::NotAccepted(Refusal::Codec {
                codec: crate::codec::Codec::H265,
                track_id: 0,
                listed: vec!["avc1".into(), "av01".into()],
            }),
            Error::NotAccepted(Refusal::Codec {
                codec: crate::codec::Codec::Opus,
                track_id: 2,
                listed: Vec::new(),
            }),
            Error::NotAccepted(Refusal::Multitrack { caps_ex: 1 }),
            Error::ConnectionClosed(" while performing the RTMP handshake".into()),
            Error::ConnectionClosed(String::new()),
            Error::Io(io::Error::new(
                io::ErrorKind::WriteZero,
                "failed to write whole buffer",
            )),
        ];
        v.extend(protocol.into_iter().map(Error::Protocol));
        v
    }

    #[test]
    fn every_text_is_a_sentence_without_debug_output() {
        for e in samples() {
            let t = e.to_string();
            assert!(t.ends_with(['.', '?']), "not a sentence: {t}");
            // Cancelling is what the application asked for: nothing to do.
            let cancelled = matches!(e, Error::Cancelled);
            assert!(
                cancelled || t.contains("; "),
                "says nothing about what to do: {t}"
            );
            for debug in ["Some(", "None", "Err(", "{ ", "Kind(", "Os {", "\\\""] {
                assert!(!t.contains(debug), "Debug text in: {t}");
            }
        }
    }

    #[test]
    fn server_descriptions_are_quoted_and_empty_ones_left_out() {
        let e = Error::PublishRejected {
            code: "NetStream.Publish.BadName".into(),
            description: "Already publishing".into(),
        };
        assert!(
            e.to_string().starts_with(
                "server rejected publish: NetStream.Publish.BadName (\"Already publishing\"); "
            ),
            "{e}"
        );
        let e = Error::ConnectRejected {
            code: "NetConnection.Connect.Rejected".into(),
            description: " ".into(),
        };
        assert!(
            e.to_string()
                .starts_with("server rejected connect: NetConnection.Connect.Rejected; "),
            "{e}"
        );
    }

    #[test]
    fn an_outgoing_message_too_large_is_not_blamed_on_the_server() {
        let e = Error::from(ProtocolError::MessageTooLarge {
            size: 20 << 20,
            max: MAX_ENCODABLE_MESSAGE_SIZE,
        });
        assert!(e.to_string().contains("lower the bitrate"), "{e}");
        let e = Error::from(ProtocolError::MessageTooLarge {
            size: 20 << 20,
            max: 4 << 20,
        });
        assert!(
            e.to_string().starts_with("RTMP protocol violation: "),
            "{e}"
        );
    }
}
