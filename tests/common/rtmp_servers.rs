//! Concurrent scripted RTMP servers for the reliability tests: unlike
//! `ScriptedTcpServer::start_multi` (one connection after the other), every accepted connection
//! runs on its own thread, so a client may hold the old connection while it opens the next one
//! (Enhanced RTMP reconnect requests). Loopback only, bounded in time.
//!
//! The including test binary must also include `common/scripted.rs` as the crate-level module
//! `scripted` (`#[path = "common/scripted.rs"] mod scripted;`).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gstrtmpclient::rtmp::message::{Message, msg_type};

use super::scripted::{ServerPeer, command_of};

/// What a connection's script does after a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// Keep serving.
    Continue,
    /// Flush output and close the connection (the client sees EOF).
    Close,
    /// Flush output, then only read (and record) until the client closes.
    DrainUntilClose,
    /// Flush output, then never read again but keep the socket open until the server's time
    /// limit: the client's writes stall once the socket buffers are full.
    StopReading,
}

/// The script of one connection: called with the peer and the messages completed by the bytes
/// just received.
pub type Script = Box<dyn FnMut(&mut ServerPeer, &[Message]) -> Reply + Send>;

/// Connection threads by index.
type Conns = Arc<Mutex<Vec<(usize, JoinHandle<ServerPeer>)>>>;

/// A loopback RTMP server running one script per connection, concurrently.
pub struct MultiServer {
    /// Port on 127.0.0.1.
    pub port: u16,
    stop_accept: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    accept: Option<JoinHandle<()>>,
    conns: Conns,
}

impl MultiServer {
    /// Listens on a free loopback port and serves at most `max_connections` connections; after
    /// that (or [`MultiServer::stop_listening`]) the port is closed and connects are refused.
    /// `script_for(index)` builds the script of connection `index` (0, 1, ...). Everything ends
    /// by `limit`.
    pub fn start(
        limit: Duration,
        max_connections: usize,
        script_for: impl Fn(usize) -> Script + Send + 'static,
    ) -> MultiServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let port = listener.local_addr().expect("local addr").port();
        let stop_accept = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let conns: Conns = Default::default();
        let deadline = Instant::now() + limit;
        let (stop2, acc2, conns2) = (stop_accept.clone(), accepted.clone(), conns.clone());
        let accept = std::thread::Builder::new()
            .name(format!("msrv-{port}"))
            .spawn(move || {
                let mut index = 0;
                while index < max_connections
                    && !stop2.load(Ordering::SeqCst)
                    && Instant::now() < deadline
                {
                    match listener.accept() {
                        Ok((sock, _)) => {
                            let script = script_for(index);
                            let h = std::thread::Builder::new()
                                .name(format!("msrv-{port}-{index}"))
                                .spawn(move || serve(sock, script, deadline))
                                .expect("spawn connection thread");
                            conns2
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .push((index, h));
                            index += 1;
                            acc2.store(index, Ordering::SeqCst);
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
                // Dropping the listener: later connects are refused.
            })
            .expect("spawn accept thread");
        MultiServer {
            port,
            stop_accept,
            accepted,
            accept: Some(accept),
            conns,
        }
    }

    /// `rtmp://127.0.0.1:PORT/app/stream`.
    pub fn url(&self, app: &str, stream: &str) -> String {
        format!("rtmp://127.0.0.1:{}/{app}/{stream}", self.port)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Closes the listening socket (within ~5 ms): further connects are refused.
    pub fn stop_listening(&mut self) {
        self.stop_accept.store(true, Ordering::SeqCst);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }

    /// Waits for every connection to end (client close, script, or the time limit) and returns
    /// the peers by connection index.
    pub fn join(mut self) -> Vec<ServerPeer> {
        self.stop_listening();
        let mut conns = std::mem::take(&mut *self.conns.lock().unwrap_or_else(|e| e.into_inner()));
        conns.sort_by_key(|(i, _)| *i);
        conns
            .into_iter()
            .map(|(_, h)| h.join().expect("connection thread"))
            .collect()
    }
}

impl Drop for MultiServer {
    fn drop(&mut self) {
        self.stop_listening();
    }
}

fn serve(mut sock: TcpStream, mut script: Script, deadline: Instant) -> ServerPeer {
    let mut peer = ServerPeer::new();
    sock.set_nonblocking(false).ok();
    sock.set_read_timeout(Some(Duration::from_millis(20))).ok();
    sock.set_write_timeout(Some(Duration::from_secs(2))).ok();
    let mut buf = vec![0u8; 65536];
    let mut draining = false;
    while Instant::now() < deadline {
        match sock.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let new = peer.feed(&buf[..n]);
                if draining {
                    continue;
                }
                let reply = script(&mut peer, &new);
                let out = peer.take_output();
                if !out.is_empty() && sock.write_all(&out).is_err() {
                    break;
                }
                match reply {
                    Reply::Continue => {}
                    Reply::Close => break,
                    Reply::DrainUntilClose => draining = true,
                    Reply::StopReading => {
                        while Instant::now() < deadline {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        break;
                    }
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
    peer
}

/// Answers connect/createStream like nginx-rtmp, and `publish` with
/// `NetStream.Publish.BadName` (a server still holding the old session). Returns true when a
/// publish was refused.
pub fn answer_publish_with_bad_name(peer: &mut ServerPeer, msgs: &[Message]) -> bool {
    let mut refused = false;
    for m in msgs {
        if command_of(m).is_some_and(|c| c.name == "publish") {
            peer.send_status(
                1,
                "error",
                "NetStream.Publish.BadName",
                "Already publishing",
                vec![],
            );
            refused = true;
        } else {
            peer.answer_publish_flow(std::slice::from_ref(m), &[]);
        }
    }
    refused
}

/// A script that only answers the publish flow.
pub fn publish_only() -> Script {
    Box::new(|peer, new| {
        peer.answer_publish_flow(new, &[]);
        Reply::Continue
    })
}

/// Answers the publish flow; once `after` video frames arrived (as `count_frames` counts them
/// in each read), sends a ReconnectRequest with `tc_url` and then only reads until the client
/// closes.
pub fn request_reconnect(
    tc_url: String,
    after: usize,
    count_frames: fn(&[Message]) -> usize,
) -> Script {
    let mut frames = 0;
    let mut sent = false;
    Box::new(move |peer, new| {
        peer.answer_publish_flow(new, &[]);
        frames += count_frames(new);
        if !sent && frames >= after {
            sent = true;
            peer.send_status(
                0,
                "status",
                "NetConnection.Connect.ReconnectRequest",
                "The streaming server is undergoing updates.",
                vec![(
                    "tcUrl",
                    gstrtmpclient::rtmp::amf0::Amf0Value::String(tc_url.clone()),
                )],
            );
        }
        Reply::Continue
    })
}

/// Video frames (not sequence headers) among `msgs`.
pub fn video_frames(msgs: &[Message]) -> Vec<&Message> {
    msgs.iter()
        .filter(|m| m.msg_type_id == msg_type::VIDEO && m.payload.get(1) == Some(&1))
        .collect()
}

/// Audio frames (not sequence headers) among `msgs`.
pub fn audio_frames(msgs: &[Message]) -> Vec<&Message> {
    msgs.iter()
        .filter(|m| m.msg_type_id == msg_type::AUDIO && m.payload.get(1) == Some(&1))
        .collect()
}

/// The app of the `connect` among `msgs`, if any.
pub fn connect_app(msgs: &[Message]) -> Option<String> {
    msgs.iter()
        .filter_map(command_of)
        .find(|c| c.name == "connect")
        .and_then(|c| {
            c.command_object
                .get("app")
                .and_then(|v| v.as_str().map(String::from))
        })
}
