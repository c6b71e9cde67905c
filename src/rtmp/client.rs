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
use crate::codec::{self, Codec, MediaKind, flv};

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

    /// Sends one message of `track`: the tag header [`flv::tag_header`] builds for `packet`
    /// (legacy FLV, plain Enhanced RTMP or Multitrack OneTrack, see [`flv::TagTrack::form`])
    /// followed by `body`, which is not copied. `nano_offset` adds a TimestampOffsetNano ModEx
    /// (only for servers that advertised ModEx; see [`flv::tag_header`]). Every other send of
    /// media goes through here.
    pub fn send_packet(
        &mut self,
        track: flv::TagTrack,
        packet: flv::Packet,
        timestamp_ms: u32,
        nano_offset: Option<u32>,
        body: &[u8],
    ) -> Result<()> {
        let header = flv::tag_header(track, packet, nano_offset).map_err(|e| match e {
            codec::Error::CannotBuild(why) => Error::InvalidState(why),
            _ => Error::InvalidState("this packet cannot be sent as an FLV tag"),
        })?;
        let type_id = match track.codec.kind() {
            MediaKind::Video => msg_type::VIDEO,
            MediaKind::Audio => msg_type::AUDIO,
        };
        self.send_parts(type_id, timestamp_ms, &[&header, body])
    }

    /// Sends the codec configuration of `codec` on track `track` (0: the default track; up to
    /// 255): avcC, hvcC, av1C, vpcC, AudioSpecificConfig, OpusHead, "fLaC" + STREAMINFO, or an
    /// empty `config` for AC-3/E-AC-3. Send it before the track's first frame and again, at the
    /// frame's timestamp, when the configuration changes. Track 0 H.264/AAC use the legacy
    /// form, other codecs and tracks Enhanced RTMP.
    pub fn send_sequence_start(
        &mut self,
        track: u8,
        codec: Codec,
        timestamp_ms: u32,
        config: &[u8],
    ) -> Result<()> {
        let track = flv::TagTrack::new(codec, track);
        self.send_packet(
            track,
            flv::Packet::SequenceStart,
            timestamp_ms,
            None,
            config,
        )
    }

    /// Sends one coded frame of `codec` on track `track`: `timestamp_ms` is the DTS,
    /// `composition_time_ms` PTS − DTS (negative allowed; carried by H.264 and HEVC, which use
    /// CodedFramesX when it is 0), `keyframe` sets the frame type (video). `data` is the frame
    /// as the codec's FLV mapping wants it: length-prefixed NAL units (H.264, HEVC), OBUs
    /// without temporal delimiters (AV1), a VP9 frame, one raw audio frame.
    pub fn send_frame(
        &mut self,
        track: u8,
        codec: Codec,
        timestamp_ms: u32,
        keyframe: bool,
        composition_time_ms: i32,
        data: &[u8],
    ) -> Result<()> {
        let track = flv::TagTrack::new(codec, track);
        let packet = flv::Packet::frame(keyframe, composition_time_ms);
        self.send_packet(track, packet, timestamp_ms, None, data)
    }

    /// Sends the end of `codec`'s sequence on track `track` (e.g. when the track ends while the
    /// publish goes on).
    pub fn send_sequence_end(&mut self, track: u8, codec: Codec, timestamp_ms: u32) -> Result<()> {
        let track = flv::TagTrack::new(codec, track);
        self.send_packet(track, flv::Packet::SequenceEnd, timestamp_ms, None, &[])
    }

    /// Sends a video Metadata packet of `codec` on track `track`: `amf` is AMF0-encoded, a name
    /// and its value, e.g. the string `colorInfo` and its object (see
    /// [`crate::rtmp::amf0::encode`]). Send it before the frames it describes.
    pub fn send_video_metadata(
        &mut self,
        track: u8,
        codec: Codec,
        timestamp_ms: u32,
        amf: &[u8],
    ) -> Result<()> {
        let track = flv::TagTrack::new(codec, track);
        self.send_packet(track, flv::Packet::Metadata, timestamp_ms, None, amf)
    }

    /// Sends an audio MultichannelConfig packet of `codec` on track `track` (channel order,
    /// channel count and mapping or mask), after the sequence start of streams with more than
    /// two channels.
    pub fn send_multichannel_config(
        &mut self,
        track: u8,
        codec: Codec,
        timestamp_ms: u32,
        config: &[u8],
    ) -> Result<()> {
        let track = flv::TagTrack::new(codec, track);
        self.send_packet(
            track,
            flv::Packet::MultichannelConfig,
            timestamp_ms,
            None,
            config,
        )
    }

    /// Sends the AVC sequence header (AVCDecoderConfigurationRecord, "avcC"); call it before
    /// the first [`RtmpClient::send_video`]. Legacy FLV, timestamp 0.
    pub fn send_video_sequence_header(&mut self, avc_c: &[u8]) -> Result<()> {
        self.send_sequence_start(0, Codec::H264, 0, avc_c)
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
        self.send_frame(
            0,
            Codec::H264,
            timestamp_ms,
            is_keyframe,
            composition_time_ms,
            body,
        )
    }

    /// Sends the AAC AudioSpecificConfig (e.g. `[0x12, 0x10]` for AAC-LC 44.1 kHz stereo);
    /// call it before the first [`RtmpClient::send_audio`]. Legacy FLV, timestamp 0.
    pub fn send_audio_sequence_header(&mut self, asc: &[u8]) -> Result<()> {
        self.send_sequence_start(0, Codec::Aac, 0, asc)
    }

    /// Sends one raw AAC frame.
    pub fn send_audio(&mut self, timestamp_ms: u32, aac_frame: &[u8]) -> Result<()> {
        self.send_frame(0, Codec::Aac, timestamp_ms, true, 0, aac_frame)
    }

    /// Sends a complete, already framed FLV tag body as an audio (8) or video (9) message, e.g.
    /// a ManyTracks tag built with [`crate::codec::flv`] (one track per message is
    /// [`RtmpClient::send_packet`]).
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

#[cfg(test)]
mod tests {
    //! The typed media methods against a minimal in-process server: every message arrives with
    //! its type and timestamp, and its body parses back to the track, codec and packet sent.

    use std::net::TcpListener;
    use std::thread;

    use super::*;
    use crate::codec::flv::{
        AudioPacketType, AudioTag, AvMultitrackType, FrameType, VideoPacketType, VideoTagBody,
    };
    use crate::rtmp::chunk::ChunkReader;
    use crate::rtmp::command::Command;
    use crate::rtmp::message::msg_type;

    /// Accepts one client, answers handshake, connect, createStream and publish, and returns
    /// every audio and video message until the client closes.
    fn server() -> (String, thread::JoinHandle<Vec<Message>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("rtmp://{}/live/key", listener.local_addr().unwrap());
        let handle = thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut c0c1 = [0u8; 1537];
            s.read_exact(&mut c0c1).unwrap();
            let mut s0s1s2 = vec![3u8];
            s0s1s2.extend_from_slice(&[0; 1536]);
            s0s1s2.extend_from_slice(&c0c1[1..]);
            s.write_all(&s0s1s2).unwrap();
            s.read_exact(&mut [0u8; 1536]).unwrap();
            let mut reader = ChunkReader::new();
            let mut writer = super::super::chunk::ChunkWriter::new();
            let mut media = Vec::new();
            let mut buf = [0u8; 65536];
            loop {
                let n = match s.read(&mut buf) {
                    Ok(0) | Err(_) => return media,
                    Ok(n) => n,
                };
                reader.push(&buf[..n]);
                while let Ok(Some(m)) = reader.next_message() {
                    if m.msg_type_id == msg_type::AUDIO || m.msg_type_id == msg_type::VIDEO {
                        media.push(m);
                        continue;
                    }
                    let Ok(cmd) = Command::decode(&m.payload) else {
                        continue;
                    };
                    let (stream, reply) = match cmd.name.as_str() {
                        "connect" => (0, Command::new("_result", cmd.transaction_id, vec![])),
                        "createStream" => (
                            0,
                            Command::new(
                                "_result",
                                cmd.transaction_id,
                                vec![Amf0Value::Number(1.0)],
                            ),
                        ),
                        "publish" => {
                            let info = Amf0Value::object([
                                ("level", Amf0Value::String("status".into())),
                                ("code", Amf0Value::String("NetStream.Publish.Start".into())),
                                ("description", Amf0Value::String("ok".into())),
                            ]);
                            (1, Command::new("onStatus", 0.0, vec![info]))
                        }
                        _ => continue,
                    };
                    let body = reply.encode();
                    let mut batch = ChunkBatch::new();
                    writer
                        .write_message(3, 0, msg_type::COMMAND_AMF0, stream, &[&body], &mut batch)
                        .unwrap();
                    s.write_all(&batch.to_vec()).unwrap();
                }
            }
        });
        (url, handle)
    }

    #[test]
    fn typed_methods_send_every_form_the_builder_picks() {
        let (url, server) = server();
        let mut client = RtmpClient::connect(&url).unwrap();
        // Track 0 H.264/AAC: legacy through the reference API.
        client.send_video_sequence_header(&[1, 2, 3]).unwrap();
        client.send_audio_sequence_header(&[0x12, 0x10]).unwrap();
        client
            .send_video_with_composition_time(40, true, -40, &[0xaa])
            .unwrap();
        client.send_audio(41, &[0x21]).unwrap();
        // HEVC on track 0: plain enhanced, CodedFramesX for a zero composition time.
        client
            .send_sequence_start(0, Codec::H265, 80, &[1, 4])
            .unwrap();
        client
            .send_frame(0, Codec::H265, 80, true, 33, &[0xbb])
            .unwrap();
        client
            .send_frame(0, Codec::H265, 113, false, 0, &[0xcc])
            .unwrap();
        client
            .send_video_metadata(0, Codec::H265, 113, &[2, 0, 0])
            .unwrap();
        // Opus on track 2, H.264 on track 1: multitrack.
        client
            .send_sequence_start(2, Codec::Opus, 120, b"OpusHead")
            .unwrap();
        client
            .send_multichannel_config(2, Codec::Opus, 120, &[1, 6])
            .unwrap();
        client
            .send_frame(1, Codec::H264, 130, false, 20, &[0xdd])
            .unwrap();
        client.send_sequence_end(1, Codec::H264, 140).unwrap();
        // A kind's packet sent on the other kind is refused before anything is written.
        assert!(
            client
                .send_multichannel_config(0, Codec::H265, 150, &[])
                .is_err()
        );
        client.close().unwrap();
        let media = server.join().unwrap();

        let summary: Vec<(u8, u32)> = media.iter().map(|m| (m.msg_type_id, m.timestamp)).collect();
        assert_eq!(
            summary,
            [
                (9, 0),
                (8, 0),
                (9, 40),
                (8, 41),
                (9, 80),
                (9, 80),
                (9, 113),
                (9, 113),
                (8, 120),
                (8, 120),
                (9, 130),
                (9, 140)
            ]
        );
        let p = |i: usize| media[i].payload.as_slice();
        assert_eq!(p(0), [0x17, 0, 0, 0, 0, 1, 2, 3]);
        assert_eq!(p(1), [0xaf, 0, 0x12, 0x10]);
        assert_eq!(p(2), [0x17, 1, 0xff, 0xff, 0xd8, 0xaa]);
        assert_eq!(p(3), [0xaf, 1, 0x21]);
        let video = |i| match flv::parse_video(p(i)).unwrap().body {
            VideoTagBody::Enhanced(v) => v,
            other => panic!("{other:?}"),
        };
        let audio = |i| match flv::parse_audio(p(i)).unwrap() {
            AudioTag::Enhanced(a) => a,
            other => panic!("{other:?}"),
        };
        for (i, packet_type, cts, data) in [
            (4, VideoPacketType::SequenceStart, 0, &[1u8, 4][..]),
            (5, VideoPacketType::CodedFrames, 33, &[0xbb]),
            (6, VideoPacketType::CodedFramesX, 0, &[0xcc]),
            (7, VideoPacketType::Metadata, 0, &[2, 0, 0]),
        ] {
            let v = video(i);
            assert_eq!((v.packet_type, v.multitrack), (packet_type, None));
            assert_eq!(
                (
                    v.tracks[0].fourcc,
                    v.tracks[0].composition_time,
                    v.tracks[0].data
                ),
                (flv::HVC1, cts, data)
            );
        }
        assert_eq!(
            flv::parse_video(p(7)).unwrap().frame_type,
            FrameType::Command
        );
        for (i, packet_type, data) in [
            (8, AudioPacketType::SequenceStart, &b"OpusHead"[..]),
            (9, AudioPacketType::MultichannelConfig, &[1, 6]),
        ] {
            let a = audio(i);
            assert_eq!(
                (a.packet_type, a.multitrack),
                (packet_type, Some(AvMultitrackType::OneTrack))
            );
            assert_eq!(
                (a.tracks[0].track_id, a.tracks[0].fourcc, a.tracks[0].data),
                (2, flv::OPUS, data)
            );
        }
        let v = video(10);
        assert_eq!(v.multitrack, Some(AvMultitrackType::OneTrack));
        assert_eq!(v.packet_type, VideoPacketType::CodedFrames);
        assert_eq!(
            (
                v.tracks[0].track_id,
                v.tracks[0].fourcc,
                v.tracks[0].composition_time
            ),
            (1, flv::AVC1, 20)
        );
        let v = video(11);
        assert_eq!(v.packet_type, VideoPacketType::SequenceEnd);
        assert_eq!(v.tracks[0].track_id, 1);
    }
}
