//! The sans-IO RTMP publishing core. CONTRACT STUB: to be implemented.
//!
//! Use: create a [`Session`], write [`Session::drain_transmit`] output to the socket, feed every
//! received byte to [`Session::handle_input`], then drain [`Session::poll_event`] until `None`
//! and write the transmit output again. Repeat until [`Session::state`] is
//! [`SessionState::Publishing`]; then send media with [`Session::write_media`].

use super::amf0::Amf0Value;
use super::amf3::Amf3Value;
use super::caps::ConnectCapabilities;
use super::chunk::ChunkBatch;
use super::error::Result;
use super::url::RtmpUrl;

/// Default outgoing chunk size requested with SetChunkSize after the handshake.
pub const DEFAULT_OUT_CHUNK_SIZE: u32 = 4096;
/// Default flashVer sent in `connect`.
pub const DEFAULT_FLASH_VERSION: &str = "FMLE/3.0 (compatible; gst-plugin-rtmpclient)";

/// Which commands end a publish (as rtmp2sink's `stop-commands`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopCommands {
    /// Send `FCUnpublish(stream)`.
    pub fc_unpublish: bool,
    /// Send `closeStream` on the publish stream.
    pub close_stream: bool,
    /// Send `deleteStream(stream_id)`.
    pub delete_stream: bool,
}

impl Default for StopCommands {
    fn default() -> Self {
        StopCommands {
            fc_unpublish: true,
            close_stream: false,
            delete_stream: true,
        }
    }
}

/// Everything the core needs to know to publish.
#[derive(Debug, Clone)]
pub struct PublishConfig {
    /// Where to publish.
    pub url: RtmpUrl,
    /// `live`, `record` or `append`.
    pub publish_type: String,
    /// flashVer of `connect`.
    pub flash_version: String,
    /// Enhanced RTMP block appended to `connect` (empty: none).
    pub capabilities: ConnectCapabilities,
    /// Outgoing chunk size announced after the handshake.
    pub chunk_size: u32,
    /// Extra AMF0 values appended to `connect` after the command object.
    pub extra_connect_args: Vec<Amf0Value>,
    /// Commands sent by [`Session::close`].
    pub stop_commands: StopCommands,
    /// Our handshake timestamp (C1 time field), e.g. milliseconds since some epoch.
    pub handshake_epoch: u32,
    /// Seed for the C1 random bytes.
    pub handshake_seed: u64,
}

impl PublishConfig {
    /// A config with defaults for `url`: live, default flashVer, chunk size 4096, no E-RTMP block.
    pub fn new(url: RtmpUrl) -> Self {
        PublishConfig {
            url,
            publish_type: "live".into(),
            flash_version: DEFAULT_FLASH_VERSION.into(),
            capabilities: ConnectCapabilities::default(),
            chunk_size: DEFAULT_OUT_CHUNK_SIZE,
            extra_connect_args: Vec::new(),
            stop_commands: StopCommands::default(),
            handshake_epoch: 0,
            handshake_seed: 0x5eed,
        }
    }
}

/// Where the publish stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Waiting for S0/S1/S2.
    Handshaking,
    /// `connect` sent, waiting for its `_result`.
    Connecting,
    /// `createStream` sent, waiting for the stream id.
    CreatingStream,
    /// `publish` sent, waiting for `NetStream.Publish.Start`.
    StartingPublish,
    /// Media may be sent.
    Publishing,
    /// Stop commands queued; nothing more may be sent.
    Closed,
}

/// What the server said, as far as a publisher cares.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// `connect` succeeded.
    Connected {
        /// `fmsVer` from the `_result` properties, if any.
        fms_version: Option<String>,
        /// The server's E-RTMP capability block (empty for legacy servers).
        capabilities: ConnectCapabilities,
    },
    /// `NetStream.Publish.Start` arrived: media may flow.
    Publishing {
        /// The message stream id of the publish.
        stream_id: u32,
    },
    /// User Control StreamBegin.
    StreamBegin(u32),
    /// User Control StreamEOF (the server ends the stream).
    StreamEof(u32),
    /// User Control StreamDry.
    StreamDry(u32),
    /// User Control StreamIsRecorded.
    StreamIsRecorded(u32),
    /// Answer to our PingRequest.
    PingResponse {
        /// The timestamp we sent.
        timestamp_ms: u32,
    },
    /// An `onStatus` (after publishing started, or not an error that ends the publish).
    OnStatus {
        /// `status`, `warning` or `error`.
        level: String,
        /// E.g. `NetStream.Publish.Start`.
        code: String,
        /// Human-readable text (may be empty).
        description: String,
    },
    /// Enhanced RTMP v2 `NetConnection.Connect.ReconnectRequest`.
    ReconnectRequest {
        /// Target server, absolute or relative (None: reconnect to the same tcUrl).
        tc_url: Option<String>,
        /// Description of the request.
        description: String,
    },
    /// A `_result` to a command we sent that the core did not consume itself.
    Result {
        /// Transaction id.
        transaction_id: f64,
        /// The values after the transaction id.
        values: Vec<Amf0Value>,
    },
    /// An `_error` to a command we sent that the core did not consume itself.
    ErrorReply {
        /// Transaction id.
        transaction_id: f64,
        /// The values after the transaction id.
        values: Vec<Amf0Value>,
    },
    /// Any other command or data message from the server.
    Command {
        /// Command name.
        name: String,
        /// Transaction id.
        transaction_id: f64,
        /// The values after the transaction id.
        values: Vec<Amf0Value>,
    },
}

/// Counters of one session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Bytes produced for the socket.
    pub bytes_sent: u64,
    /// Bytes received from the socket.
    pub bytes_received: u64,
    /// Our chunk size.
    pub out_chunk_size: u32,
    /// The server's chunk size.
    pub in_chunk_size: u32,
    /// Window after which we acknowledge the server's bytes.
    pub in_window_ack_size: u32,
    /// Window the server asked us to respect (Set Peer Bandwidth).
    pub out_window_ack_size: u32,
    /// Bytes the server has acknowledged.
    pub bytes_acked_by_peer: u64,
}

/// The publishing core. See the module documentation for the calling rule.
#[derive(Debug)]
pub struct Session {}

impl Session {
    /// A session that will publish according to `config`; its first output is C0+C1.
    pub fn new(_config: PublishConfig) -> Self {
        todo!()
    }
    /// Feeds bytes received from the server. Errors end the session (rejections, violations).
    pub fn handle_input(&mut self, _data: &[u8]) -> Result<()> {
        todo!()
    }
    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        todo!()
    }
    /// Moves every pending protocol byte (handshake, commands, acks, pongs) into `out`.
    pub fn drain_transmit(&mut self, _out: &mut ChunkBatch<'_>) {
        todo!()
    }
    /// True when protocol bytes wait to be sent.
    pub fn has_transmit(&self) -> bool {
        todo!()
    }
    /// Where the publish stands.
    pub fn state(&self) -> SessionState {
        todo!()
    }
    /// The message stream id of the publish (0 before createStream answered).
    pub fn stream_id(&self) -> u32 {
        todo!()
    }
    /// Capabilities from the server's `_result(connect)`.
    pub fn server_capabilities(&self) -> &ConnectCapabilities {
        todo!()
    }
    /// The tcUrl sent in connect.
    pub fn tc_url(&self) -> &str {
        todo!()
    }
    /// Queues pending protocol output and then one audio (8) or video (9) message whose body is
    /// the concatenation of `payload` (borrowed, not copied) into `out`.
    pub fn write_media<'a>(
        &mut self,
        _msg_type_id: u8,
        _timestamp: u32,
        _payload: &[&'a [u8]],
        _out: &mut ChunkBatch<'a>,
    ) -> Result<()> {
        todo!()
    }
    /// Queues `@setDataFrame("onMetaData", metadata)` (AMF0 data message).
    pub fn send_metadata(&mut self, _timestamp: u32, _metadata: &Amf0Value) -> Result<()> {
        todo!()
    }
    /// Queues onMetaData as an AMF3 data message (type 15).
    pub fn send_metadata_amf3(&mut self, _timestamp: u32, _metadata: &Amf3Value) -> Result<()> {
        todo!()
    }
    /// Queues a User Control PingRequest.
    pub fn send_ping_request(&mut self, _timestamp_ms: u32) -> Result<()> {
        todo!()
    }
    /// Queues the stop commands; afterwards only draining is possible.
    pub fn close(&mut self) {
        todo!()
    }
    /// Counters.
    pub fn stats(&self) -> SessionStats {
        todo!()
    }
}
