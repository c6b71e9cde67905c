//! RTMP messages (RTMP 1.0 §5.4, §6, §7): type ids, the owned [`Message`], User Control events
//! and Aggregate messages.

use super::error::{ProtocolError, Result};

/// Message type ids (RTMP 1.0 §5.4 and §7.1).
pub mod msg_type {
    /// Set Chunk Size (§5.4.1).
    pub const SET_CHUNK_SIZE: u8 = 1;
    /// Abort Message (§5.4.2).
    pub const ABORT: u8 = 2;
    /// Acknowledgement (§5.4.3).
    pub const ACKNOWLEDGEMENT: u8 = 3;
    /// User Control Message (§6.2).
    pub const USER_CONTROL: u8 = 4;
    /// Window Acknowledgement Size (§5.4.4).
    pub const WINDOW_ACK_SIZE: u8 = 5;
    /// Set Peer Bandwidth (§5.4.5).
    pub const SET_PEER_BANDWIDTH: u8 = 6;
    /// Audio data (§7.1.4).
    pub const AUDIO: u8 = 8;
    /// Video data (§7.1.5).
    pub const VIDEO: u8 = 9;
    /// Data message, AMF3 (§7.1.2).
    pub const DATA_AMF3: u8 = 15;
    /// Shared object, AMF3 (§7.1.3).
    pub const SHARED_OBJECT_AMF3: u8 = 16;
    /// Command, AMF3 (§7.1.1).
    pub const COMMAND_AMF3: u8 = 17;
    /// Data message, AMF0 (§7.1.2).
    pub const DATA_AMF0: u8 = 18;
    /// Shared object, AMF0 (§7.1.3).
    pub const SHARED_OBJECT_AMF0: u8 = 19;
    /// Command, AMF0 (§7.1.1).
    pub const COMMAND_AMF0: u8 = 20;
    /// Aggregate (§7.1.6).
    pub const AGGREGATE: u8 = 22;
}

/// One complete RTMP message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// Timestamp in milliseconds (wraps at 2^32).
    pub timestamp: u32,
    /// Message type id, see [`msg_type`].
    pub msg_type_id: u8,
    /// Message stream id (0 for NetConnection-level messages).
    pub msg_stream_id: u32,
    /// The message body.
    pub payload: Vec<u8>,
}

impl Message {
    /// Builds a message.
    pub fn new(msg_type_id: u8, timestamp: u32, msg_stream_id: u32, payload: Vec<u8>) -> Self {
        Message {
            timestamp,
            msg_type_id,
            msg_stream_id,
            payload,
        }
    }
}

/// User Control event types (RTMP 1.0 §7.1.7).
pub mod user_control_type {
    /// Stream Begin.
    pub const STREAM_BEGIN: u16 = 0;
    /// Stream EOF.
    pub const STREAM_EOF: u16 = 1;
    /// Stream Dry.
    pub const STREAM_DRY: u16 = 2;
    /// Set Buffer Length.
    pub const SET_BUFFER_LENGTH: u16 = 3;
    /// Stream Is Recorded.
    pub const STREAM_IS_RECORDED: u16 = 4;
    /// Ping Request.
    pub const PING_REQUEST: u16 = 6;
    /// Ping Response.
    pub const PING_RESPONSE: u16 = 7;
}

/// A decoded User Control message (type 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserControl {
    /// The stream became functional.
    StreamBegin(u32),
    /// Playback of the stream ended.
    StreamEof(u32),
    /// No more data on the stream.
    StreamDry(u32),
    /// Client's buffer length for a stream.
    SetBufferLength {
        /// Stream id.
        stream_id: u32,
        /// Buffer length in milliseconds.
        buffer_ms: u32,
    },
    /// The stream is a recorded stream.
    StreamIsRecorded(u32),
    /// The peer asks us to echo this timestamp.
    PingRequest(u32),
    /// Answer to our ping request.
    PingResponse(u32),
    /// An event type this client does not know.
    Unknown {
        /// Event type.
        event_type: u16,
        /// Raw event data.
        data: Vec<u8>,
    },
}

impl UserControl {
    /// Decodes a User Control message body.
    pub fn decode(body: &[u8]) -> Result<Self> {
        let malformed = ProtocolError::MalformedMessage {
            what: "user control",
        };
        if body.len() < 2 {
            return Err(malformed.into());
        }
        let event_type = u16::from_be_bytes([body[0], body[1]]);
        let data = &body[2..];
        let u32_at = |off: usize| -> Result<u32> {
            data.get(off..off + 4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or_else(|| malformed.clone().into())
        };
        use user_control_type as t;
        Ok(match event_type {
            t::STREAM_BEGIN => UserControl::StreamBegin(u32_at(0)?),
            t::STREAM_EOF => UserControl::StreamEof(u32_at(0)?),
            t::STREAM_DRY => UserControl::StreamDry(u32_at(0)?),
            t::SET_BUFFER_LENGTH => UserControl::SetBufferLength {
                stream_id: u32_at(0)?,
                buffer_ms: u32_at(4)?,
            },
            t::STREAM_IS_RECORDED => UserControl::StreamIsRecorded(u32_at(0)?),
            t::PING_REQUEST => UserControl::PingRequest(u32_at(0)?),
            t::PING_RESPONSE => UserControl::PingResponse(u32_at(0)?),
            _ => UserControl::Unknown {
                event_type,
                data: data.to_vec(),
            },
        })
    }

    /// Encodes the event as a User Control message body.
    pub fn encode(&self) -> Vec<u8> {
        use user_control_type as t;
        let (event_type, words): (u16, &[u32]) = match self {
            UserControl::StreamBegin(id) => (t::STREAM_BEGIN, std::slice::from_ref(id)),
            UserControl::StreamEof(id) => (t::STREAM_EOF, std::slice::from_ref(id)),
            UserControl::StreamDry(id) => (t::STREAM_DRY, std::slice::from_ref(id)),
            UserControl::SetBufferLength {
                stream_id,
                buffer_ms,
            } => {
                let mut out = t::SET_BUFFER_LENGTH.to_be_bytes().to_vec();
                out.extend_from_slice(&stream_id.to_be_bytes());
                out.extend_from_slice(&buffer_ms.to_be_bytes());
                return out;
            }
            UserControl::StreamIsRecorded(id) => (t::STREAM_IS_RECORDED, std::slice::from_ref(id)),
            UserControl::PingRequest(ts) => (t::PING_REQUEST, std::slice::from_ref(ts)),
            UserControl::PingResponse(ts) => (t::PING_RESPONSE, std::slice::from_ref(ts)),
            UserControl::Unknown { event_type, data } => {
                let mut out = event_type.to_be_bytes().to_vec();
                out.extend_from_slice(data);
                return out;
            }
        };
        let mut out = event_type.to_be_bytes().to_vec();
        for w in words {
            out.extend_from_slice(&w.to_be_bytes());
        }
        out
    }
}

/// Size of the FLV-style header in front of each aggregate sub-message.
const AGGREGATE_SUB_HEADER: usize = 11;
/// Size of the back pointer after each aggregate sub-message.
const AGGREGATE_BACK_POINTER: usize = 4;
/// Largest body a sub-message can announce (24-bit length field).
const MAX_SUB_MESSAGE_SIZE: usize = 0xFF_FFFF;

/// Builds the body of an Aggregate message (RTMP 1.0 §7.1.6) from sub-messages: each is written
/// as an 11-byte header (type, 24-bit size, timestamp with its extension byte, stream id 0 — the
/// aggregate's own message stream id overrides it), the body, and a 4-byte back pointer.
pub fn build_aggregate(subs: &[Message]) -> Result<Vec<u8>> {
    let total: usize = subs
        .iter()
        .map(|m| AGGREGATE_SUB_HEADER + m.payload.len() + AGGREGATE_BACK_POINTER)
        .sum();
    let mut out = Vec::with_capacity(total);
    for m in subs {
        if m.payload.len() > MAX_SUB_MESSAGE_SIZE {
            return Err(ProtocolError::MessageTooLarge {
                size: u32::try_from(m.payload.len()).unwrap_or(u32::MAX),
                max: MAX_SUB_MESSAGE_SIZE as u32,
            }
            .into());
        }
        let len = m.payload.len() as u32;
        out.push(m.msg_type_id);
        out.extend_from_slice(&len.to_be_bytes()[1..]);
        out.extend_from_slice(&(m.timestamp & 0xFF_FFFF).to_be_bytes()[1..]);
        out.push((m.timestamp >> 24) as u8);
        out.extend_from_slice(&[0, 0, 0]);
        out.extend_from_slice(&m.payload);
        out.extend_from_slice(&(len + AGGREGATE_SUB_HEADER as u32).to_be_bytes());
    }
    Ok(out)
}

/// Splits an Aggregate message body into its sub-messages. Every sub-message gets
/// `msg_stream_id` (the aggregate's stream id overrides theirs) and its timestamp re-based so the
/// first sub-message carries `aggregate_timestamp` (§7.1.6).
pub fn parse_aggregate(
    body: &[u8],
    aggregate_timestamp: u32,
    msg_stream_id: u32,
) -> Result<Vec<Message>> {
    let truncated = || ProtocolError::Truncated {
        what: "aggregate sub-message",
    };
    let mut out = Vec::new();
    let mut rest = body;
    let mut base: Option<u32> = None;
    while !rest.is_empty() {
        if rest.len() < AGGREGATE_SUB_HEADER {
            return Err(truncated().into());
        }
        let msg_type_id = rest[0];
        let len = u32::from_be_bytes([0, rest[1], rest[2], rest[3]]) as usize;
        let ts = u32::from_be_bytes([rest[7], rest[4], rest[5], rest[6]]);
        let end = AGGREGATE_SUB_HEADER + len;
        if rest.len() < end + AGGREGATE_BACK_POINTER {
            return Err(truncated().into());
        }
        let first = *base.get_or_insert(ts);
        out.push(Message {
            timestamp: aggregate_timestamp.wrapping_add(ts.wrapping_sub(first)),
            msg_type_id,
            msg_stream_id,
            payload: rest[AGGREGATE_SUB_HEADER..end].to_vec(),
        });
        rest = &rest[end + AGGREGATE_BACK_POINTER..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_control_round_trip() {
        let events = [
            UserControl::StreamBegin(1),
            UserControl::StreamEof(1),
            UserControl::StreamDry(7),
            UserControl::SetBufferLength {
                stream_id: 1,
                buffer_ms: 3000,
            },
            UserControl::StreamIsRecorded(1),
            UserControl::PingRequest(0xDEAD_BEEF),
            UserControl::PingResponse(42),
            UserControl::Unknown {
                event_type: 31,
                data: vec![1, 2, 3],
            },
        ];
        for e in events {
            assert_eq!(UserControl::decode(&e.encode()).unwrap(), e);
        }
        assert!(UserControl::decode(&[0, 6, 1]).is_err());
        assert!(UserControl::decode(&[0]).is_err());
    }

    #[test]
    fn aggregate_round_trip_rebases_timestamps_and_stream_ids() {
        let subs = vec![
            Message::new(msg_type::VIDEO, 0x0100_0010, 9, vec![0x17, 1, 2, 3]),
            Message::new(msg_type::AUDIO, 0x0100_0030, 5, vec![0xAF, 1]),
        ];
        let body = build_aggregate(&subs).unwrap();
        assert_eq!(body.len(), (11 + 4 + 4) + (11 + 2 + 4));
        // back pointer of the first sub = 11 + its size
        assert_eq!(&body[15..19], &15u32.to_be_bytes());
        let back = parse_aggregate(&body, 500, 1).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].timestamp, 500);
        assert_eq!(back[1].timestamp, 500 + 0x20);
        assert!(back.iter().all(|m| m.msg_stream_id == 1));
        assert_eq!(back[0].payload, subs[0].payload);
        assert_eq!(back[1].payload, subs[1].payload);
        assert!(parse_aggregate(&body[..body.len() - 1], 0, 1).is_err());
    }
}
