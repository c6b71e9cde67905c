//! A scripted RTMP server peer for tests of faults and edge cases that a real server will not
//! produce. Sans-IO like the client core: feed it the client's bytes, take its bytes back. A
//! small TCP wrapper runs a script against a real socket for `RtmpClient` tests.
// Each test binary uses a different part of this helper.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gstrtmpclient::rtmp::amf0::{self, Amf0Value};
use gstrtmpclient::rtmp::caps::ConnectCapabilities;
use gstrtmpclient::rtmp::chunk::{ChunkBatch, ChunkReader, ChunkWriter};
use gstrtmpclient::rtmp::command::Command;
use gstrtmpclient::rtmp::message::{Message, UserControl, msg_type};

const C0C1: usize = 1537;
const C2: usize = 1536;

/// Server side of one RTMP connection.
pub struct ServerPeer {
    handshake_left: usize,
    s0s1s2_sent: bool,
    pending: Vec<u8>,
    reader: ChunkReader,
    writer: ChunkWriter,
    out: Vec<u8>,
    /// Every message the client sent, in order.
    pub received: Vec<Message>,
    /// Bytes received from the client in total.
    pub bytes_in: u64,
}

impl Default for ServerPeer {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerPeer {
    /// A peer waiting for C0+C1.
    pub fn new() -> Self {
        ServerPeer {
            handshake_left: C0C1 + C2,
            s0s1s2_sent: false,
            pending: Vec::new(),
            reader: ChunkReader::new(),
            writer: ChunkWriter::new(),
            out: Vec::new(),
            received: Vec::new(),
            bytes_in: 0,
        }
    }

    /// Feeds client bytes; returns the messages completed by them.
    pub fn feed(&mut self, mut data: &[u8]) -> Vec<Message> {
        self.bytes_in += data.len() as u64;
        if self.handshake_left > 0 {
            let take = data.len().min(self.handshake_left);
            self.pending.extend_from_slice(&data[..take]);
            self.handshake_left -= take;
            data = &data[take..];
            if !self.s0s1s2_sent && self.pending.len() >= C0C1 {
                let c1 = self.pending[1..C0C1].to_vec();
                self.out.push(3);
                // S1: time, zero, pseudo-random bytes.
                let mut s1 = vec![0u8; 1536];
                for (i, b) in s1.iter_mut().enumerate().skip(8) {
                    *b = (i * 7 + 3) as u8;
                }
                self.out.extend_from_slice(&s1);
                self.out.extend_from_slice(&c1); // S2 echoes C1
                self.s0s1s2_sent = true;
            }
            if self.handshake_left > 0 {
                return Vec::new();
            }
        }
        self.reader.push(data);
        let mut msgs = Vec::new();
        while let Ok(Some(m)) = self.reader.next_message() {
            self.received.push(m.clone());
            msgs.push(m);
        }
        msgs
    }

    /// Takes the bytes the server wants to send.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Queues one message.
    pub fn send(&mut self, csid: u32, ts: u32, type_id: u8, stream_id: u32, body: &[u8]) {
        let mut batch = ChunkBatch::new();
        self.writer
            .write_message(csid, ts, type_id, stream_id, &[body], &mut batch)
            .expect("test message encodes");
        self.out.extend_from_slice(&batch.to_vec());
    }

    /// Queues raw bytes (for malformed input).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Queues an AMF0 command.
    pub fn send_command(
        &mut self,
        stream_id: u32,
        name: &str,
        txn: f64,
        obj: Amf0Value,
        args: Vec<Amf0Value>,
    ) {
        let cmd = Command {
            name: name.into(),
            transaction_id: txn,
            command_object: obj,
            args,
        };
        self.send(3, 0, msg_type::COMMAND_AMF0, stream_id, &cmd.encode());
    }

    /// Queues an onStatus with level/code/description (+ extra info fields).
    pub fn send_status(
        &mut self,
        stream_id: u32,
        level: &str,
        code: &str,
        description: &str,
        extra: Vec<(&str, Amf0Value)>,
    ) {
        let mut info = vec![
            ("level".to_string(), Amf0Value::String(level.into())),
            ("code".to_string(), Amf0Value::String(code.into())),
            (
                "description".to_string(),
                Amf0Value::String(description.into()),
            ),
        ];
        info.extend(extra.into_iter().map(|(k, v)| (k.to_string(), v)));
        self.send_command(
            stream_id,
            "onStatus",
            0.0,
            Amf0Value::Null,
            vec![Amf0Value::Object(info)],
        );
    }

    /// Queues a User Control event.
    pub fn send_user_control(&mut self, ev: UserControl) {
        self.send(2, 0, msg_type::USER_CONTROL, 0, &ev.encode());
    }

    /// Queues SetChunkSize and uses the new size from then on.
    pub fn set_chunk_size(&mut self, size: u32) {
        self.send(2, 0, msg_type::SET_CHUNK_SIZE, 0, &size.to_be_bytes());
        self.writer.set_chunk_size(size);
    }

    /// Answers connect/createStream/publish the way nginx-rtmp does, with `connect_props` in the
    /// `_result` properties object. Returns true once a `publish` was answered.
    pub fn answer_publish_flow(
        &mut self,
        msgs: &[Message],
        connect_props: &[(&str, Amf0Value)],
    ) -> bool {
        let mut published = false;
        for m in msgs {
            let Some(cmd) = command_of(m) else { continue };
            match cmd.name.as_str() {
                "connect" => {
                    let mut props = vec![(
                        "fmsVer".to_string(),
                        Amf0Value::String("FMS/3,0,1,123".into()),
                    )];
                    props.extend(
                        connect_props
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.clone())),
                    );
                    self.send(
                        2,
                        0,
                        msg_type::WINDOW_ACK_SIZE,
                        0,
                        &5_000_000u32.to_be_bytes(),
                    );
                    self.send(
                        2,
                        0,
                        msg_type::SET_PEER_BANDWIDTH,
                        0,
                        &[0, 0x4c, 0x4b, 0x40, 2],
                    );
                    self.send_command(
                        0,
                        "_result",
                        cmd.transaction_id,
                        Amf0Value::Object(props),
                        vec![Amf0Value::object([
                            ("level", Amf0Value::String("status".into())),
                            (
                                "code",
                                Amf0Value::String("NetConnection.Connect.Success".into()),
                            ),
                            (
                                "description",
                                Amf0Value::String("Connection succeeded.".into()),
                            ),
                            ("objectEncoding", Amf0Value::Number(0.0)),
                        ])],
                    );
                }
                "createStream" => self.send_command(
                    0,
                    "_result",
                    cmd.transaction_id,
                    Amf0Value::Null,
                    vec![Amf0Value::Number(1.0)],
                ),
                "publish" => {
                    self.send_user_control(UserControl::StreamBegin(1));
                    self.send_status(
                        1,
                        "status",
                        "NetStream.Publish.Start",
                        "Start publishing",
                        vec![],
                    );
                    published = true;
                }
                _ => {}
            }
        }
        published
    }
}

/// The command carried by a message, if it is one.
pub fn command_of(m: &Message) -> Option<Command> {
    match m.msg_type_id {
        msg_type::COMMAND_AMF0 => Command::decode(&m.payload).ok(),
        msg_type::COMMAND_AMF3 => Command::decode_amf3_message(&m.payload).ok(),
        _ => None,
    }
}

/// Names of the commands the client sent, in order.
pub fn command_names(peer: &ServerPeer) -> Vec<String> {
    peer.received
        .iter()
        .filter_map(command_of)
        .map(|c| c.name)
        .collect()
}

/// The Enhanced RTMP block of the client's `connect`, as the server read it.
pub fn connect_block(peer: &ServerPeer) -> ConnectCapabilities {
    let connect = peer
        .received
        .iter()
        .filter_map(command_of)
        .find(|c| c.name == "connect")
        .expect("the client sent connect");
    ConnectCapabilities::from_properties(connect.command_object.properties().unwrap_or_default())
}

/// An AMF0 strict array of strings (a `fourCcList`).
pub fn amf_strings(items: &[&str]) -> Amf0Value {
    Amf0Value::StrictArray(
        items
            .iter()
            .map(|s| Amf0Value::String(s.to_string()))
            .collect(),
    )
}

/// The AMF0 values of a data message.
pub fn data_values(m: &Message) -> Vec<Amf0Value> {
    amf0::decode_all(&m.payload).unwrap_or_default()
}

/// A TCP server running `script` on the first accepted connection (bounded by `limit`).
pub struct ScriptedTcpServer {
    /// Port on 127.0.0.1.
    pub port: u16,
    handle: Option<JoinHandle<ServerPeer>>,
}

/// What a script sees each time bytes arrive.
pub struct Turn<'a> {
    /// The peer (to queue answers).
    pub peer: &'a mut ServerPeer,
    /// Messages completed by the bytes just received.
    pub new: Vec<Message>,
}

/// The script's answer to a turn.
#[derive(PartialEq, Eq)]
pub enum Next {
    /// Keep reading.
    Continue,
    /// Flush output and close the connection.
    Close,
    /// Flush output, then read until the client closes.
    DrainUntilClose,
    /// Flush output, then read and discard without parsing until the client closes (for
    /// throughput benchmarks: the server costs nothing but the reads).
    Discard,
}

impl ScriptedTcpServer {
    /// A server answering the publish flow with `connect_props` in `_result(connect)`, then
    /// reading until the client closes.
    pub fn publish_then_drain(
        limit: Duration,
        connect_props: Vec<(&'static str, Amf0Value)>,
    ) -> Self {
        let mut published = false;
        Self::start(limit, move |turn| {
            if !published {
                published = turn.peer.answer_publish_flow(&turn.new, &connect_props);
            }
            if published {
                Next::DrainUntilClose
            } else {
                Next::Continue
            }
        })
    }

    /// Listens on a free loopback port and runs `script` for the first connection.
    pub fn start<F>(limit: Duration, mut script: F) -> Self
    where
        F: FnMut(Turn<'_>) -> Next + Send + 'static,
    {
        Self::start_multi(limit, 1, move |_, turn| script(turn))
    }

    /// Like [`ScriptedTcpServer::start`] for up to `connections` consecutive connections; the
    /// script also gets the connection's index (0, 1, ...). [`ScriptedTcpServer::join`]
    /// returns the last connection's peer.
    pub fn start_multi<F>(limit: Duration, connections: usize, mut script: F) -> Self
    where
        F: FnMut(usize, Turn<'_>) -> Next + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("local addr").port();
        let handle = std::thread::spawn(move || {
            let deadline = Instant::now() + limit;
            listener.set_nonblocking(true).ok();
            let mut peer = ServerPeer::new();
            for index in 0..connections {
                let Some(sock) = accept_until(&listener, deadline) else {
                    break;
                };
                peer = ServerPeer::new();
                serve(sock, &mut peer, deadline, |turn| script(index, turn));
            }
            peer
        });
        ScriptedTcpServer {
            port,
            handle: Some(handle),
        }
    }

    /// `rtmp://127.0.0.1:PORT/live/key`.
    pub fn url(&self) -> String {
        format!("rtmp://127.0.0.1:{}/live/key", self.port)
    }

    /// Waits for the script to end and returns the peer with everything it received.
    pub fn join(mut self) -> ServerPeer {
        self.handle
            .take()
            .expect("joined once")
            .join()
            .expect("scripted server thread")
    }
}

fn accept_until(listener: &TcpListener, deadline: Instant) -> Option<TcpStream> {
    loop {
        match listener.accept() {
            Ok((s, _)) => return Some(s),
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Err(_) => return None,
        }
    }
}

/// Runs one connection until the script or the client ends it, or `deadline` passes.
fn serve(
    mut sock: TcpStream,
    peer: &mut ServerPeer,
    deadline: Instant,
    mut script: impl FnMut(Turn<'_>) -> Next,
) {
    sock.set_nonblocking(false).ok();
    sock.set_read_timeout(Some(Duration::from_millis(50))).ok();
    let mut buf = vec![0u8; 65536];
    let mut draining = false;
    let mut discarding = false;
    while Instant::now() < deadline {
        match sock.read(&mut buf) {
            Ok(0) => break,
            Ok(n) if discarding => peer.bytes_in += n as u64,
            Ok(n) => {
                let new = peer.feed(&buf[..n]);
                if draining {
                    continue;
                }
                let next = script(Turn { peer, new });
                if write_out(&mut sock, peer).is_err() {
                    break;
                }
                match next {
                    Next::Continue => {}
                    Next::Close => break,
                    Next::DrainUntilClose => draining = true,
                    Next::Discard => discarding = true,
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
}

fn write_out(sock: &mut TcpStream, peer: &mut ServerPeer) -> std::io::Result<()> {
    let out = peer.take_output();
    if !out.is_empty() {
        sock.write_all(&out)?;
    }
    Ok(())
}
