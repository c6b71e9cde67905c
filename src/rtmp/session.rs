//! The sans-IO RTMP publishing core: handshake, connect, createStream, publish, media, close.
//!
//! Use: create a [`Session`], write [`Session::drain_transmit`] output to the socket, feed every
//! received byte to [`Session::handle_input`], then drain [`Session::poll_event`] until `None`
//! and write the transmit output again. Repeat until [`Session::state`] is
//! [`SessionState::Publishing`]; then send media with [`Session::write_media`].

//!
//! The core never reads a clock and never touches a socket: time-dependent actions (ping
//! timestamps) take the time from the caller, and all output is collected for the caller.

use std::collections::VecDeque;

use super::amf0::{self, Amf0Value};
use super::amf3::Amf3Value;
use super::caps::{self, ConnectCapabilities, Negotiated, Wanted};
use super::chunk::{ChunkBatch, ChunkReader, ChunkWriter, DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE};
use super::command::{self, Command, ConnectParams};
use super::error::{Error, ProtocolError, Result};
use super::handshake::Handshake;
use super::message::{Message, UserControl, build_aggregate, msg_type, parse_aggregate};
use super::securetoken::{self, SecureToken};
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
    /// Enhanced RTMP block appended to `connect` (empty: none, or the one of `media`).
    pub capabilities: ConnectCapabilities,
    /// What this publish will send. When set, `connect` advertises
    /// [`Wanted::capabilities`] (unless `capabilities` is non-empty: then that is sent as
    /// given), and the server's `_result(connect)` is judged with [`caps::negotiate`] before
    /// `createStream`: a refusal ends the session with [`Error::NotAccepted`], so the server
    /// sees no publish; otherwise the result is [`Session::negotiated`].
    pub media: Option<Wanted>,
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
    /// Parameters appended to the application name and tcUrl in `connect` (`?a=b&c=d`, or
    /// `&a=b...` when the application already has a query): authentication responses.
    pub app_query: Option<String>,
    /// Shared secret answering a server's `secureToken` challenge in `_result(connect)` with
    /// `secureTokenResponse` (rtmp2sink's `secure-token`, librtmp's `token`; see
    /// [`securetoken`]). Without it a challenge is left unanswered, as librtmp does; see
    /// [`Session::secure_token_challenged`].
    pub secure_token: Option<SecureToken>,
}

impl PublishConfig {
    /// A config with defaults for `url`: live, default flashVer, chunk size 4096, no E-RTMP block.
    pub fn new(url: RtmpUrl) -> Self {
        PublishConfig {
            url,
            publish_type: "live".into(),
            flash_version: DEFAULT_FLASH_VERSION.into(),
            capabilities: ConnectCapabilities::default(),
            media: None,
            chunk_size: DEFAULT_OUT_CHUNK_SIZE,
            extra_connect_args: Vec::new(),
            stop_commands: StopCommands::default(),
            handshake_epoch: 0,
            handshake_seed: 0x5eed,
            app_query: None,
            secure_token: None,
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

/// Chunk stream of protocol control messages (§5.4).
const CSID_CONTROL: u32 = 2;
/// Chunk stream of NetConnection commands.
const CSID_COMMAND: u32 = 3;
/// Chunk stream of audio messages.
const CSID_AUDIO: u32 = 4;
/// Chunk stream of data messages (metadata).
const CSID_DATA: u32 = 5;
/// Chunk stream of video messages.
const CSID_VIDEO: u32 = 6;
/// Chunk stream of NetStream commands (publish, closeStream).
const CSID_STREAM_COMMAND: u32 = 8;

/// Window we announce to the server after a Set Peer Bandwidth without one of our own.
const DEFAULT_WINDOW: u32 = 2_500_000;
/// Largest publish stream id accepted from `createStream` (ids are small integers in practice).
const MAX_STREAM_ID: f64 = 16_777_215.0;

/// Set Peer Bandwidth limit types (§5.4.5).
const LIMIT_HARD: u8 = 0;
const LIMIT_SOFT: u8 = 1;
const LIMIT_DYNAMIC: u8 = 2;

/// The publishing core. See the module documentation for the calling rule.
#[derive(Debug)]
pub struct Session {
    config: PublishConfig,
    tc_url: String,
    state: SessionState,
    handshake: Handshake,
    reader: ChunkReader,
    writer: ChunkWriter,
    /// Protocol bytes waiting for [`Session::drain_transmit`].
    transmit: Vec<u8>,
    events: VecDeque<ClientEvent>,
    stream_id: u32,
    server_caps: ConnectCapabilities,
    /// The judgement of the server's capabilities (when `config.media` is set).
    negotiated: Option<Negotiated>,
    next_transaction: f64,
    connect_transaction: f64,
    create_stream_transaction: f64,
    publish_transaction: f64,
    /// Transactions whose `_result`/`_error` we swallow (releaseStream, FCPublish, ...).
    ignored_transactions: Vec<f64>,
    stats: SessionStats,
    /// `bytes_received` when we last sent an Acknowledgement.
    last_ack_at: u64,
    /// Limit type of the last Set Peer Bandwidth (for the Dynamic rule).
    last_limit_type: Option<u8>,
    /// Window we last announced with Window Acknowledgement Size.
    announced_window: Option<u32>,
    /// Acknowledgement window asked for with [`Session::request_acknowledgements`] (never
    /// announced larger afterwards).
    ack_window_request: Option<u32>,
    /// Set once the core failed; every later input is refused.
    failed: bool,
    /// The server's `_result(connect)` carried a `secureToken` challenge.
    secure_token_challenged: bool,
}

impl Session {
    /// A session that will publish according to `config`; its first output is C0+C1.
    pub fn new(config: PublishConfig) -> Self {
        let handshake = Handshake::new(config.handshake_epoch, config.handshake_seed);
        let transmit = handshake.c0c1();
        let tc_url = with_query(&config.url.tc_url(), config.app_query.as_deref());
        let mut stats = SessionStats {
            out_chunk_size: DEFAULT_CHUNK_SIZE,
            in_chunk_size: DEFAULT_CHUNK_SIZE,
            ..SessionStats::default()
        };
        stats.bytes_sent = 0;
        Session {
            config,
            tc_url,
            state: SessionState::Handshaking,
            handshake,
            reader: ChunkReader::new(),
            writer: ChunkWriter::new(),
            transmit,
            events: VecDeque::new(),
            stream_id: 0,
            server_caps: ConnectCapabilities::default(),
            negotiated: None,
            next_transaction: 1.0,
            connect_transaction: 0.0,
            create_stream_transaction: 0.0,
            publish_transaction: 0.0,
            ignored_transactions: Vec::new(),
            stats,
            last_ack_at: 0,
            last_limit_type: None,
            announced_window: None,
            ack_window_request: None,
            failed: false,
            secure_token_challenged: false,
        }
    }

    /// Feeds bytes received from the server. Errors end the session (rejections, violations).
    pub fn handle_input(&mut self, data: &[u8]) -> Result<()> {
        if self.failed {
            return Err(Error::InvalidState("the session already failed"));
        }
        let result = self.process_input(data);
        if result.is_err() {
            self.failed = true;
            self.state = SessionState::Closed;
        }
        result
    }

    fn process_input(&mut self, mut data: &[u8]) -> Result<()> {
        self.stats.bytes_received += data.len() as u64;
        if self.state == SessionState::Handshaking {
            let used = self.handshake.feed(data)?;
            data = &data[used..];
            if let Some(c2) = self.handshake.take_c2() {
                self.transmit.extend_from_slice(&c2);
            }
            if !self.handshake.is_done() {
                return Ok(());
            }
            self.start_connect()?;
        }
        self.reader.push(data);
        while let Some(msg) = self.reader.next_message()? {
            self.handle_message(msg)?;
        }
        self.maybe_acknowledge()
    }

    /// After the handshake: announce our chunk size and send `connect`.
    fn start_connect(&mut self) -> Result<()> {
        let size = self.config.chunk_size.clamp(1, MAX_CHUNK_SIZE);
        self.queue_message(
            CSID_CONTROL,
            0,
            msg_type::SET_CHUNK_SIZE,
            0,
            &size.to_be_bytes(),
        )?;
        self.writer.set_chunk_size(size);
        self.stats.out_chunk_size = size;

        self.connect_transaction = self.take_transaction();
        let app = with_query(&self.config.url.app, self.config.app_query.as_deref());
        let capabilities = self.advertised_capabilities();
        let cmd = command::connect(
            self.connect_transaction,
            &ConnectParams {
                app: &app,
                flash_version: &self.config.flash_version,
                tc_url: &self.tc_url,
                capabilities: &capabilities,
                extra_args: &self.config.extra_connect_args,
            },
        );
        self.queue_command(CSID_COMMAND, 0, &cmd)?;
        self.state = SessionState::Connecting;
        Ok(())
    }

    /// The block `connect` carries: `capabilities` as given, or the one of `media` when
    /// `capabilities` has no Enhanced RTMP field (its `objectEncoding` is kept).
    pub fn advertised_capabilities(&self) -> ConnectCapabilities {
        match &self.config.media {
            Some(media) if self.config.capabilities.is_empty() => ConnectCapabilities {
                object_encoding: self.config.capabilities.object_encoding,
                ..media.capabilities()
            },
            _ => self.config.capabilities.clone(),
        }
    }

    fn take_transaction(&mut self) -> f64 {
        let t = self.next_transaction;
        self.next_transaction += 1.0;
        t
    }

    fn handle_message(&mut self, msg: Message) -> Result<()> {
        match msg.msg_type_id {
            msg_type::SET_CHUNK_SIZE => {
                // The reader applied it already; keep it for stats.
                self.stats.in_chunk_size = self.reader.chunk_size();
            }
            msg_type::ABORT => {}
            msg_type::ACKNOWLEDGEMENT => {
                let seq = be_u32(&msg.payload, "acknowledgement")?;
                self.stats.bytes_acked_by_peer = u64::from(seq);
            }
            msg_type::USER_CONTROL => self.handle_user_control(&msg.payload)?,
            msg_type::WINDOW_ACK_SIZE => {
                self.stats.in_window_ack_size = be_u32(&msg.payload, "window ack size")?;
            }
            msg_type::SET_PEER_BANDWIDTH => self.handle_peer_bandwidth(&msg.payload)?,
            msg_type::COMMAND_AMF0 => self.handle_command(Command::decode(&msg.payload)?)?,
            msg_type::COMMAND_AMF3 => {
                self.handle_command(Command::decode_amf3_message(&msg.payload)?)?
            }
            msg_type::DATA_AMF0 | msg_type::DATA_AMF3 => {
                let body = if msg.msg_type_id == msg_type::DATA_AMF3 {
                    msg.payload.get(1..).unwrap_or_default()
                } else {
                    &msg.payload[..]
                };
                // Data messages have no transaction id: surface them as commands with id 0.
                let mut values = amf0::decode_all(body)?.into_iter();
                if let Some(name) = values.next().and_then(|v| v.as_str().map(String::from)) {
                    if name == "onStatus" {
                        let args: Vec<Amf0Value> = values.collect();
                        let cmd = Command {
                            name,
                            transaction_id: 0.0,
                            command_object: Amf0Value::Null,
                            args,
                        };
                        return self.handle_command(cmd);
                    }
                    self.events.push_back(ClientEvent::Command {
                        name,
                        transaction_id: 0.0,
                        values: values.collect(),
                    });
                }
            }
            msg_type::AGGREGATE => {
                for sub in parse_aggregate(&msg.payload, msg.timestamp, msg.msg_stream_id)? {
                    if sub.msg_type_id != msg_type::AGGREGATE {
                        self.handle_message(sub)?;
                    }
                }
            }
            // Media or shared objects from the server mean nothing to a publisher.
            _ => {}
        }
        Ok(())
    }

    fn handle_user_control(&mut self, body: &[u8]) -> Result<()> {
        let event = match UserControl::decode(body)? {
            UserControl::PingRequest(ts) => {
                let pong = UserControl::PingResponse(ts).encode();
                self.queue_message(CSID_CONTROL, 0, msg_type::USER_CONTROL, 0, &pong)?;
                return Ok(());
            }
            UserControl::PingResponse(ts) => ClientEvent::PingResponse { timestamp_ms: ts },
            UserControl::StreamBegin(id) => ClientEvent::StreamBegin(id),
            UserControl::StreamEof(id) => ClientEvent::StreamEof(id),
            UserControl::StreamDry(id) => ClientEvent::StreamDry(id),
            UserControl::StreamIsRecorded(id) => ClientEvent::StreamIsRecorded(id),
            UserControl::SetBufferLength { .. } | UserControl::Unknown { .. } => return Ok(()),
        };
        self.events.push_back(event);
        Ok(())
    }

    /// §5.4.5: Hard sets the window, Soft lowers it, Dynamic acts as Hard only after a Hard.
    /// Whenever the resulting window differs from what we announced, we announce it.
    fn handle_peer_bandwidth(&mut self, body: &[u8]) -> Result<()> {
        if body.len() < 5 {
            return Err(ProtocolError::MalformedMessage {
                what: "set peer bandwidth",
            }
            .into());
        }
        let size = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        let limit = body[4];
        let current = self.stats.out_window_ack_size;
        let new = match limit {
            LIMIT_HARD => Some(size),
            LIMIT_SOFT if current == 0 || size < current => Some(size),
            LIMIT_SOFT => None,
            LIMIT_DYNAMIC if self.last_limit_type == Some(LIMIT_HARD) => Some(size),
            _ => None,
        };
        if limit <= LIMIT_DYNAMIC {
            self.last_limit_type = Some(limit);
        }
        if let Some(window) = new.filter(|w| *w > 0) {
            self.stats.out_window_ack_size = window;
            let window = self.ack_window_request.map_or(window, |r| r.min(window));
            if self.announced_window != Some(window) {
                self.announce_window(window)?;
            }
        } else if self.announced_window.is_none() {
            let window = self
                .ack_window_request
                .map_or(DEFAULT_WINDOW, |r| r.min(DEFAULT_WINDOW));
            self.announce_window(window)?;
        }
        Ok(())
    }

    fn announce_window(&mut self, window: u32) -> Result<()> {
        self.queue_message(
            CSID_CONTROL,
            0,
            msg_type::WINDOW_ACK_SIZE,
            0,
            &window.to_be_bytes(),
        )?;
        self.announced_window = Some(window);
        Ok(())
    }

    fn maybe_acknowledge(&mut self) -> Result<()> {
        let window = u64::from(self.stats.in_window_ack_size);
        if window > 0 && self.stats.bytes_received - self.last_ack_at >= window {
            // The sequence number is the byte count so far, modulo 2^32.
            let seq = self.stats.bytes_received as u32;
            self.queue_message(
                CSID_CONTROL,
                0,
                msg_type::ACKNOWLEDGEMENT,
                0,
                &seq.to_be_bytes(),
            )?;
            self.last_ack_at = self.stats.bytes_received;
        }
        Ok(())
    }

    fn handle_command(&mut self, cmd: Command) -> Result<()> {
        match cmd.name.as_str() {
            "_result" => self.handle_result(cmd),
            "_error" => self.handle_error(cmd),
            "onStatus" => self.handle_status(cmd),
            _ => {
                self.events.push_back(ClientEvent::Command {
                    name: cmd.name,
                    transaction_id: cmd.transaction_id,
                    values: std::iter::once(cmd.command_object)
                        .chain(cmd.args)
                        .collect(),
                });
                Ok(())
            }
        }
    }

    fn handle_result(&mut self, cmd: Command) -> Result<()> {
        let txn = cmd.transaction_id;
        if self.state == SessionState::Connecting && txn == self.connect_transaction {
            let (level, code, description) = cmd.status();
            if level == "error" {
                return Err(Error::ConnectRejected {
                    code: self.redact(&code),
                    description: self.redact(&description),
                });
            }
            let props = cmd.command_object.properties().unwrap_or_default();
            let mut caps = ConnectCapabilities::from_properties(props);
            // Some servers put the capabilities into the information object instead.
            if let Some(info) = cmd
                .info_object()
                .and_then(Amf0Value::properties)
                .filter(|_| caps.is_empty())
            {
                let from_info = ConnectCapabilities::from_properties(info);
                caps.object_encoding = caps.object_encoding.or(from_info.object_encoding);
                if !from_info.is_empty() {
                    caps = ConnectCapabilities {
                        object_encoding: caps.object_encoding,
                        ..from_info
                    };
                }
            }
            let fms_version = cmd
                .command_object
                .get("fmsVer")
                .and_then(Amf0Value::as_str)
                .map(String::from);
            self.server_caps = caps.clone();
            self.events.push_back(ClientEvent::Connected {
                fms_version,
                capabilities: caps,
            });
            self.answer_secure_token(&cmd)?;
            // Judged before createStream: a refused publish never reaches the server.
            if let Some(media) = &self.config.media {
                self.negotiated = Some(caps::negotiate(&self.server_caps, media)?);
            }
            return self.start_publish_stream();
        }
        if self.state == SessionState::CreatingStream && txn == self.create_stream_transaction {
            let id = cmd
                .args
                .iter()
                .chain(std::iter::once(&cmd.command_object))
                .find_map(Amf0Value::as_f64)
                .filter(|id| *id >= 1.0 && *id <= MAX_STREAM_ID && id.fract() == 0.0)
                .ok_or(ProtocolError::MalformedMessage {
                    what: "createStream result (no valid stream id)",
                })?;
            self.stream_id = id as u32;
            self.publish_transaction = self.take_transaction();
            let stream = self.config.url.stream.clone();
            let cmd =
                command::publish(self.publish_transaction, &stream, &self.config.publish_type);
            self.queue_command(CSID_STREAM_COMMAND, self.stream_id, &cmd)?;
            self.state = SessionState::StartingPublish;
            return Ok(());
        }
        if self.take_ignored(txn) {
            return Ok(());
        }
        self.events.push_back(ClientEvent::Result {
            transaction_id: txn,
            values: std::iter::once(cmd.command_object)
                .chain(cmd.args)
                .collect(),
        });
        Ok(())
    }

    fn handle_error(&mut self, cmd: Command) -> Result<()> {
        let txn = cmd.transaction_id;
        let (_, code, description) = cmd.status();
        let (code, description) = (self.redact(&code), self.redact(&description));
        if self.state == SessionState::Connecting && txn == self.connect_transaction {
            return Err(Error::ConnectRejected {
                code: or_unknown(code, "NetConnection.Connect.Rejected"),
                description,
            });
        }
        if (self.state == SessionState::CreatingStream && txn == self.create_stream_transaction)
            || (self.state == SessionState::StartingPublish && txn == self.publish_transaction)
        {
            return Err(Error::PublishRejected {
                code: or_unknown(code, "NetStream.Publish.Failed"),
                description,
            });
        }
        // Many servers answer releaseStream/FCPublish with _error: harmless.
        if self.take_ignored(txn) {
            return Ok(());
        }
        self.events.push_back(ClientEvent::ErrorReply {
            transaction_id: txn,
            values: std::iter::once(cmd.command_object)
                .chain(cmd.args)
                .collect(),
        });
        Ok(())
    }

    fn handle_status(&mut self, cmd: Command) -> Result<()> {
        let (level, code, description) = cmd.status();
        let description = self.redact(&description);
        if code == "NetConnection.Connect.ReconnectRequest" {
            let tc_url = cmd
                .info_object()
                .and_then(|i| i.get("tcUrl"))
                .and_then(Amf0Value::as_str)
                .filter(|s| !s.is_empty())
                .map(String::from);
            self.events.push_back(ClientEvent::ReconnectRequest {
                tc_url,
                description,
            });
            return Ok(());
        }
        if self.state == SessionState::StartingPublish && code == "NetStream.Publish.Start" {
            self.state = SessionState::Publishing;
            self.events.push_back(ClientEvent::Publishing {
                stream_id: self.stream_id,
            });
            return Ok(());
        }
        // Matched on the server's code as sent; shown masked like its description.
        let code = self.redact(&code);
        match self.state {
            SessionState::StartingPublish | SessionState::CreatingStream if level == "error" => {
                return Err(Error::PublishRejected { code, description });
            }
            SessionState::Connecting if level == "error" => {
                return Err(Error::ConnectRejected { code, description });
            }
            _ => {}
        }
        self.events.push_back(ClientEvent::OnStatus {
            level,
            code,
            description,
        });
        Ok(())
    }

    /// Answers a `secureToken` challenge of `_result(connect)` before anything else is sent,
    /// as librtmp does. The challenge sits in the information object (where rtmp2 looks), or
    /// in the properties (librtmp looks everywhere).
    fn answer_secure_token(&mut self, result: &Command) -> Result<()> {
        let challenge = [result.info_object(), Some(&result.command_object)]
            .into_iter()
            .flatten()
            .find_map(|o| o.get("secureToken").and_then(Amf0Value::as_str))
            .map(String::from);
        let Some(challenge) = challenge else {
            return Ok(());
        };
        self.secure_token_challenged = true;
        let Some(secret) = &self.config.secure_token else {
            return Ok(());
        };
        let response = securetoken::answer(secret.expose(), &challenge)
            .map_err(|e| Error::AuthenticationFailed(e.to_string()))?;
        // Transaction 0: no answer is expected.
        let cmd = Command::new(
            "secureTokenResponse",
            0.0,
            vec![Amf0Value::String(response)],
        );
        self.queue_command(CSID_COMMAND, 0, &cmd)
    }

    fn take_ignored(&mut self, txn: f64) -> bool {
        match self.ignored_transactions.iter().position(|t| *t == txn) {
            Some(i) => {
                self.ignored_transactions.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// After `connect` succeeded: releaseStream + FCPublish (answers ignored), createStream.
    fn start_publish_stream(&mut self) -> Result<()> {
        let stream = self.config.url.stream.clone();
        let t = self.take_transaction();
        self.queue_command(CSID_COMMAND, 0, &command::release_stream(t, &stream))?;
        self.ignored_transactions.push(t);
        let t = self.take_transaction();
        self.queue_command(CSID_COMMAND, 0, &command::fc_publish(t, &stream))?;
        self.ignored_transactions.push(t);
        self.create_stream_transaction = self.take_transaction();
        let cmd = command::create_stream(self.create_stream_transaction);
        self.queue_command(CSID_COMMAND, 0, &cmd)?;
        self.state = SessionState::CreatingStream;
        Ok(())
    }

    fn redact(&self, text: &str) -> String {
        self.config.url.redact_text(text)
    }

    fn queue_command(&mut self, csid: u32, stream_id: u32, cmd: &Command) -> Result<()> {
        self.queue_message(csid, 0, msg_type::COMMAND_AMF0, stream_id, &cmd.encode())
    }

    /// Chunks one message into the transmit buffer (protocol messages are small: copying is fine).
    fn queue_message(
        &mut self,
        csid: u32,
        timestamp: u32,
        type_id: u8,
        stream_id: u32,
        body: &[u8],
    ) -> Result<()> {
        let mut batch = ChunkBatch::new();
        self.writer
            .write_message(csid, timestamp, type_id, stream_id, &[body], &mut batch)?;
        self.transmit.extend_from_slice(&batch.to_vec());
        Ok(())
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// Moves every pending protocol byte (handshake, commands, acks, pongs) into `out`.
    pub fn drain_transmit(&mut self, out: &mut ChunkBatch<'_>) {
        if !self.transmit.is_empty() {
            out.push_owned(&self.transmit);
            self.stats.bytes_sent += self.transmit.len() as u64;
            self.transmit.clear();
        }
    }

    /// True when protocol bytes wait to be sent.
    pub fn has_transmit(&self) -> bool {
        !self.transmit.is_empty()
    }

    /// Where the publish stands.
    pub fn state(&self) -> SessionState {
        self.state
    }

    /// The message stream id of the publish (0 before createStream answered).
    pub fn stream_id(&self) -> u32 {
        self.stream_id
    }

    /// Capabilities from the server's `_result(connect)`.
    pub fn server_capabilities(&self) -> &ConnectCapabilities {
        &self.server_caps
    }

    /// The judgement of the server's `_result(connect)` against [`PublishConfig::media`]
    /// (None before the answer, or without `media`).
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// True when the server's `_result(connect)` carried a `secureToken` challenge; it was
    /// answered if [`PublishConfig::secure_token`] is set (an application can warn when not).
    pub fn secure_token_challenged(&self) -> bool {
        self.secure_token_challenged
    }

    /// The tcUrl sent in connect.
    pub fn tc_url(&self) -> &str {
        &self.tc_url
    }

    /// The configuration this session publishes with.
    pub fn config(&self) -> &PublishConfig {
        &self.config
    }

    fn require_publishing(&self) -> Result<()> {
        if self.state == SessionState::Publishing {
            Ok(())
        } else {
            Err(Error::InvalidState(
                "media can only be sent while publishing",
            ))
        }
    }

    /// Queues pending protocol output and then one audio (8) or video (9) message whose body is
    /// the concatenation of `payload` (borrowed, not copied) into `out`.
    pub fn write_media<'a>(
        &mut self,
        msg_type_id: u8,
        timestamp: u32,
        payload: &[&'a [u8]],
        out: &mut ChunkBatch<'a>,
    ) -> Result<()> {
        self.require_publishing()?;
        let csid = match msg_type_id {
            msg_type::AUDIO => CSID_AUDIO,
            msg_type::VIDEO => CSID_VIDEO,
            msg_type::DATA_AMF0 | msg_type::DATA_AMF3 => CSID_DATA,
            _ => {
                return Err(Error::InvalidState(
                    "write_media takes audio, video or data",
                ));
            }
        };
        self.drain_transmit(out);
        let before = out.remaining();
        self.writer
            .write_message(csid, timestamp, msg_type_id, self.stream_id, payload, out)?;
        self.stats.bytes_sent += (out.remaining() - before) as u64;
        Ok(())
    }

    /// Queues an Aggregate message (type 22) built from `subs` (their stream ids are overridden
    /// by the publish stream id; the aggregate carries the first sub-message's timestamp).
    pub fn send_aggregate(&mut self, subs: &[Message]) -> Result<()> {
        self.require_publishing()?;
        let Some(first) = subs.first() else {
            return Ok(());
        };
        let body = build_aggregate(subs)?;
        self.queue_message(
            CSID_VIDEO,
            first.timestamp,
            msg_type::AGGREGATE,
            self.stream_id,
            &body,
        )
    }

    /// Queues `@setDataFrame("onMetaData", metadata)` (AMF0 data message).
    pub fn send_metadata(&mut self, timestamp: u32, metadata: &Amf0Value) -> Result<()> {
        self.require_publishing()?;
        let body = command::set_data_frame(metadata);
        self.queue_message(
            CSID_DATA,
            timestamp,
            msg_type::DATA_AMF0,
            self.stream_id,
            &body,
        )
    }

    /// Queues onMetaData as an AMF3 data message (type 15): a format byte, then the AMF0
    /// strings and the metadata behind an AVM+ switch (AMF 0 §3.1).
    pub fn send_metadata_amf3(&mut self, timestamp: u32, metadata: &Amf3Value) -> Result<()> {
        self.require_publishing()?;
        let mut body = vec![0u8];
        amf0::encode(&Amf0Value::String("@setDataFrame".into()), &mut body);
        amf0::encode(&Amf0Value::String("onMetaData".into()), &mut body);
        amf0::encode(&Amf0Value::AvmPlus(metadata.clone()), &mut body);
        self.queue_message(
            CSID_DATA,
            timestamp,
            msg_type::DATA_AMF3,
            self.stream_id,
            &body,
        )
    }

    /// Queues any command on the NetConnection (stream 0), returning its transaction id; its
    /// answer arrives as [`ClientEvent::Result`] or [`ClientEvent::ErrorReply`].
    pub fn send_command(&mut self, name: &str, args: Vec<Amf0Value>) -> Result<f64> {
        let t = self.take_transaction();
        self.queue_command(CSID_COMMAND, 0, &Command::new(name, t, args))?;
        Ok(t)
    }

    /// Asks the server to send an Acknowledgement every `window` bytes it receives (Window
    /// Acknowledgement Size): [`SessionStats::bytes_acked_by_peer`] then tells how far the
    /// server application (not just its TCP stack, or a proxy in between) has read. Later Set
    /// Peer Bandwidth answers never announce a larger window. A zero `window` is ignored.
    pub fn request_acknowledgements(&mut self, window: u32) -> Result<()> {
        if window == 0 {
            return Ok(());
        }
        self.ack_window_request = Some(window);
        if self.announced_window != Some(window) {
            self.announce_window(window)?;
        }
        Ok(())
    }

    /// Queues a User Control PingRequest.
    pub fn send_ping_request(&mut self, timestamp_ms: u32) -> Result<()> {
        let body = UserControl::PingRequest(timestamp_ms).encode();
        self.queue_message(CSID_CONTROL, 0, msg_type::USER_CONTROL, 0, &body)
    }

    /// Queues the stop commands; afterwards only draining is possible.
    pub fn close(&mut self) {
        if self.state == SessionState::Closed {
            return;
        }
        let publishing = matches!(
            self.state,
            SessionState::StartingPublish | SessionState::Publishing
        );
        self.state = SessionState::Closed;
        if !publishing || self.failed {
            return;
        }
        let stop = self.config.stop_commands;
        let stream = self.config.url.stream.clone();
        let stream_id = self.stream_id;
        // Encoding commands cannot fail for these sizes; if it somehow did, closing the socket
        // is the fallback anyway.
        if stop.fc_unpublish {
            let t = self.take_transaction();
            let _ = self.queue_command(CSID_COMMAND, 0, &command::fc_unpublish(t, &stream));
        }
        if stop.close_stream {
            let _ = self.queue_command(CSID_STREAM_COMMAND, stream_id, &command::close_stream());
        }
        if stop.delete_stream {
            let t = self.take_transaction();
            let _ = self.queue_command(CSID_COMMAND, 0, &command::delete_stream(t, stream_id));
        }
    }

    /// Counters.
    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    /// Bytes the core holds: unparsed input, partial messages and unsent protocol output (for
    /// memory accounting; bounded by the chunk reader's limits).
    pub fn buffered_bytes(&self) -> usize {
        self.reader.buffered_len() + self.reader.partial_len() + self.transmit.len()
    }
}

fn be_u32(body: &[u8], what: &'static str) -> Result<u32> {
    body.get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| ProtocolError::MalformedMessage { what }.into())
}

/// `base` with `query` appended after `?`, or after `&` when `base` has a query already.
fn with_query(base: &str, query: Option<&str>) -> String {
    match query.filter(|q| !q.is_empty()) {
        Some(q) if base.contains('?') => format!("{base}&{q}"),
        Some(q) => format!("{base}?{q}"),
        None => base.to_string(),
    }
}

fn or_unknown(code: String, fallback: &str) -> String {
    if code.is_empty() {
        fallback.to_string()
    } else {
        code
    }
}
