//! [`RtmpClient`]: a small blocking publisher over `std::net::TcpStream`, driving the sans-IO
//! [`Session`] core. Media bodies are never copied: each message goes out as chunk headers and
//! borrowed payload slices in vectored writes.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use super::amf0::Amf0Value;
use super::amf3::Amf3Value;
use super::caps::ConnectCapabilities;
use super::chunk::ChunkBatch;
pub use super::connection::{ClientOptions, DEFAULT_TIMEOUT};
use super::connection::{READ_BUFFER, Stream, establish};
use super::error::{Error, Result};
use super::message::{Message, msg_type};
use super::session::{ClientEvent, Session, SessionStats};
use super::url::RtmpUrl;
use crate::codec::flv;

/// How long [`RtmpClient::close`] waits for the server to close its side after our half-close.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// A blocking RTMP publishing client: connected and publishing once constructed.
#[derive(Debug)]
pub struct RtmpClient {
    session: Session,
    stream: Stream,
    url: RtmpUrl,
    timeout: Duration,
    /// Reused between sends so chunking allocates nothing in steady state.
    batch: ChunkBatch<'static>,
    read_buf: Vec<u8>,
    /// Events that arrived while connecting or were produced by housekeeping.
    pending: VecDeque<ClientEvent>,
    /// The server ended the stream or closed the socket.
    ended: bool,
    /// A write failed half-way: the chunk stream is unusable.
    broken: bool,
}

impl RtmpClient {
    /// Dials the given `rtmp://host[:port]/app/stream_name` URL, performs the full handshake +
    /// connect + createStream + publish sequence, and returns a ready-to-send client.
    pub fn connect(url: &str) -> Result<Self> {
        Self::connect_with_options(url, &ClientOptions::default())
    }

    /// Same as [`RtmpClient::connect`] with the publish type (`live`, `record` or `append`).
    pub fn connect_with_type(url: &str, publish_type: &str) -> Result<Self> {
        let options = ClientOptions {
            publish_type: publish_type.into(),
            ..ClientOptions::default()
        };
        Self::connect_with_options(url, &options)
    }

    /// Connects advertising the Enhanced RTMP v1+v2 capability block `caps` in `connect`; the
    /// server's answer is available from [`RtmpClient::server_capabilities`].
    pub fn connect_with_capabilities(
        url: &str,
        publish_type: &str,
        caps: &ConnectCapabilities,
    ) -> Result<Self> {
        let options = ClientOptions {
            publish_type: publish_type.into(),
            capabilities: caps.clone(),
            ..ClientOptions::default()
        };
        Self::connect_with_options(url, &options)
    }

    /// Connects with every option spelled out (TLS for `rtmps://`, authentication, ...).
    pub fn connect_with_options(url: &str, options: &ClientOptions) -> Result<Self> {
        let url = RtmpUrl::parse(url)?;
        let established = establish(&url, options, &|| false)?;
        established.stream.tcp().set_read_timeout(None)?;
        let mut client = RtmpClient {
            session: established.session,
            stream: established.stream,
            url,
            timeout: options.timeout,
            batch: ChunkBatch::new(),
            read_buf: vec![0; READ_BUFFER],
            pending: VecDeque::new(),
            ended: false,
            broken: false,
        };
        client.pending.extend(established.events);
        client.pending.retain(|e| {
            !matches!(
                e,
                ClientEvent::Connected { .. } | ClientEvent::Publishing { .. }
            )
        });
        client.ended = client
            .pending
            .iter()
            .any(|e| matches!(e, ClientEvent::StreamEof(_)));
        Ok(client)
    }

    /// Writes pending protocol output.
    fn flush(&mut self) -> Result<()> {
        if !self.session.has_transmit() {
            return Ok(());
        }
        let mut batch = std::mem::take(&mut self.batch);
        self.session.drain_transmit(&mut batch);
        let r = self.write_batch(&mut batch);
        self.batch = batch.recycle();
        r
    }

    fn write_batch(&mut self, batch: &mut ChunkBatch<'_>) -> Result<()> {
        if self.broken {
            return Err(Error::InvalidState(
                "an earlier write failed; the connection must be closed",
            ));
        }
        self.stream
            .write_batch(batch, self.timeout)
            .inspect_err(|_| self.broken = true)
    }

    /// Sends one media (or data) message made of `parts`, without copying them.
    fn send_parts(&mut self, msg_type_id: u8, timestamp: u32, parts: &[&[u8]]) -> Result<()> {
        let mut batch: ChunkBatch<'_> = std::mem::take(&mut self.batch).recycle();
        let r = self
            .session
            .write_media(msg_type_id, timestamp, parts, &mut batch)
            .and_then(|()| self.write_batch(&mut batch));
        self.batch = batch.recycle();
        r
    }

    /// Capability block advertised by the server in `_result(connect)`; empty for servers that
    /// do not know Enhanced RTMP ([`ConnectCapabilities::is_empty`]).
    pub fn server_capabilities(&self) -> &ConnectCapabilities {
        self.session.server_capabilities()
    }

    /// The tcUrl this client dialled (e.g. `rtmp://host:1935/app`).
    pub fn tc_url(&self) -> &str {
        self.session.tc_url()
    }

    /// Resolves the tcUrl of a [`ClientEvent::ReconnectRequest`] into the absolute URL to
    /// re-dial (E-RTMP v2 "Reconnect Request"): `None` → the current tcUrl; absolute, network-path
    /// (`//host/app`), absolute-path (`/app`) and relative-path (`app`) references are resolved
    /// against the current tcUrl. Append `/{stream_name}` to publish again.
    pub fn resolve_reconnect_url(&self, tc_url: Option<&str>) -> String {
        self.url.resolve_reconnect(tc_url)
    }

    /// Sends the AVC sequence header (AVCDecoderConfigurationRecord, "avcC"); call it before
    /// the first [`RtmpClient::send_video`].
    pub fn send_video_sequence_header(&mut self, avc_c: &[u8]) -> Result<()> {
        let header =
            flv::avc_video_header(flv::FrameType::Key, flv::AvcPacketType::SequenceHeader, 0);
        self.send_parts(msg_type::VIDEO, 0, &[&header, avc_c])
    }

    /// Sends one video access unit: `body` is AVCC (`[u32 length][NAL]...`); `is_keyframe`
    /// sets the FLV frame type. Composition time 0 (no B-frames).
    pub fn send_video(&mut self, timestamp_ms: u32, is_keyframe: bool, body: &[u8]) -> Result<()> {
        self.send_video_with_composition_time(timestamp_ms, is_keyframe, 0, body)
    }

    /// Like [`RtmpClient::send_video`] with a composition-time offset (PTS − DTS in ms,
    /// negative allowed), so B-frame streams play in the right order. `timestamp_ms` is the DTS.
    pub fn send_video_with_composition_time(
        &mut self,
        timestamp_ms: u32,
        is_keyframe: bool,
        composition_time_ms: i32,
        body: &[u8],
    ) -> Result<()> {
        let frame_type = if is_keyframe {
            flv::FrameType::Key
        } else {
            flv::FrameType::Inter
        };
        let header =
            flv::avc_video_header(frame_type, flv::AvcPacketType::Nalu, composition_time_ms);
        self.send_parts(msg_type::VIDEO, timestamp_ms, &[&header, body])
    }

    /// Sends the AAC AudioSpecificConfig (e.g. `[0x12, 0x10]` for AAC-LC 44.1 kHz stereo);
    /// call it before the first [`RtmpClient::send_audio`].
    pub fn send_audio_sequence_header(&mut self, asc: &[u8]) -> Result<()> {
        let header = flv::aac_audio_header(flv::AacPacketType::SequenceHeader);
        self.send_parts(msg_type::AUDIO, 0, &[&header, asc])
    }

    /// Sends one raw AAC frame.
    pub fn send_audio(&mut self, timestamp_ms: u32, aac_frame: &[u8]) -> Result<()> {
        let header = flv::aac_audio_header(flv::AacPacketType::Raw);
        self.send_parts(msg_type::AUDIO, timestamp_ms, &[&header, aac_frame])
    }

    /// Sends a complete, already framed FLV tag body as an audio (8) or video (9) message, e.g.
    /// an Enhanced RTMP tag built with [`crate::codec::flv`].
    pub fn send_tag(&mut self, msg_type_id: u8, timestamp_ms: u32, body: &[u8]) -> Result<()> {
        if msg_type_id != msg_type::AUDIO && msg_type_id != msg_type::VIDEO {
            return Err(Error::InvalidState("send_tag takes audio (8) or video (9)"));
        }
        self.send_parts(msg_type_id, timestamp_ms, &[body])
    }

    /// Sends `@setDataFrame("onMetaData", metadata)`; `metadata` is typically an ECMA array with
    /// width, height, framerate, videocodecid, audiocodecid, ...
    pub fn send_metadata(&mut self, metadata: Amf0Value) -> Result<()> {
        self.session.send_metadata(0, &metadata)?;
        self.flush()
    }

    /// Sends onMetaData as an AMF3 data message (type 15) instead of the AMF0 default.
    pub fn send_metadata_amf3(&mut self, metadata: Amf3Value) -> Result<()> {
        self.session.send_metadata_amf3(0, &metadata)?;
        self.flush()
    }

    /// Sends audio/video/data sub-messages as one Aggregate message (type 22): their stream ids
    /// are overridden by the publish stream id and the aggregate carries the first sub-message's
    /// timestamp. An empty slice is a no-op.
    pub fn send_aggregate(&mut self, subs: &[Message]) -> Result<()> {
        self.session.send_aggregate(subs)?;
        self.flush()
    }

    /// Sends a User Control PingRequest carrying `timestamp_ms`; the echo arrives from
    /// [`RtmpClient::poll_event`] as [`ClientEvent::PingResponse`].
    pub fn send_ping_request(&mut self, timestamp_ms: u32) -> Result<()> {
        self.session.send_ping_request(timestamp_ms)?;
        self.flush()
    }

    /// Blocks until one server event is available. Protocol housekeeping (chunk size, window,
    /// peer bandwidth, ping requests, acknowledgements) is handled internally. Returns
    /// `Ok(None)` after the server's StreamEOF or when the connection's read side ends. With a
    /// read timeout set ([`RtmpClient::set_read_timeout`]) it returns `Err(Error::Io)` of kind
    /// `WouldBlock`/`TimedOut` when nothing arrived in time.
    pub fn poll_event(&mut self) -> Result<Option<ClientEvent>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(Some(event));
            }
            if self.ended {
                return Ok(None);
            }
            let n = match self.stream.read(&mut self.read_buf) {
                Ok(0) => {
                    self.ended = true;
                    continue;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
                    ) =>
                {
                    self.ended = true;
                    continue;
                }
                Err(e) => return Err(Error::Io(e)),
            };
            self.session.handle_input(&self.read_buf[..n])?;
            self.absorb_events();
            self.flush()?;
        }
    }

    /// Moves the core's events to `pending`. Connection milestones are what `connect` waited
    /// for, not news for the caller; StreamEOF ends the event stream.
    fn absorb_events(&mut self) {
        while let Some(event) = self.session.poll_event() {
            match event {
                ClientEvent::Connected { .. } | ClientEvent::Publishing { .. } => {}
                ClientEvent::StreamEof(_) => {
                    self.ended = true;
                    self.pending.push_back(event);
                }
                other => self.pending.push_back(other),
            }
        }
    }

    /// Sends the stop commands (FCUnpublish and deleteStream by default), half-closes the
    /// connection so everything written reaches the server, and waits briefly for the server to
    /// close its side.
    pub fn close(mut self) -> Result<()> {
        self.session.close();
        let flushed = self.flush();
        self.stream.send_close_notify();
        let _ = self.stream.tcp().shutdown(Shutdown::Write);
        // Drain until the server closes, so our last bytes are not lost to a reset.
        let linger = Instant::now() + CLOSE_LINGER.min(self.timeout);
        while let Some(left) = linger
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        {
            if self.stream.tcp().set_read_timeout(Some(left)).is_err() {
                break;
            }
            match self.stream.read(&mut self.read_buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        flushed
    }

    /// The TCP socket (e.g. to set options).
    pub fn inner_mut(&mut self) -> &mut TcpStream {
        self.stream.tcp_mut()
    }

    /// Bounds how long [`RtmpClient::poll_event`] blocks (`None`: forever).
    pub fn set_read_timeout(&mut self, d: Option<Duration>) -> Result<()> {
        self.stream.tcp().set_read_timeout(d)?;
        Ok(())
    }

    /// Byte counters and negotiated sizes of the session.
    pub fn stats(&self) -> SessionStats {
        self.session.stats()
    }

    /// Writes any buffered protocol output now (e.g. after [`RtmpClient::poll_event`] was not
    /// called for a while). Media sends already do this.
    pub fn flush_pending(&mut self) -> Result<()> {
        self.flush()?;
        self.stream.flush()?;
        Ok(())
    }
}
