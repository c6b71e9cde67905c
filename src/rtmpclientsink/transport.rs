//! The byte pipe under the RTMP session: establishing the publish (interruptibly, through the
//! shared [`crate::rtmp::connection::establish`]: dial, TLS, handshake, authentication,
//! connect/createStream/publish), writing chunk batches with stall detection, and the
//! per-connection reader thread.
//!
//! The reader thread only moves raw socket bytes; for `rtmps://` the session thread decrypts
//! them in [`Transport::on_raw_input`] and [`Transport::write_batch`] encrypts, so the TLS state
//! is owned by one thread only.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::rtmp::chunk::ChunkBatch;
use crate::rtmp::connection::{self, ClientOptions, Established, Stream};
use crate::rtmp::error::Error as RtmpError;
use crate::rtmp::session::{ClientEvent, Session};
use crate::rtmp::url::RtmpUrl;

/// Longest a blocking socket call may last before the session thread looks at its flags again;
/// this is what makes stop/flush/unlock take effect within 100 ms.
pub const IO_SLICE: Duration = Duration::from_millis(100);
/// Largest read of the reader thread.
const READ_CHUNK: usize = 64 * 1024;

/// Why a write did not complete.
#[derive(Debug)]
pub enum WriteError {
    /// The session thread was asked to stop.
    Cancelled,
    /// No byte could be written for the whole timeout: the server or the network is dead.
    Stalled(Duration),
    /// The socket (or TLS) failed.
    Io(io::Error),
}

/// The connection to the server.
#[derive(Debug)]
pub enum Transport {
    /// Plain TCP (`rtmp://`).
    Plain(TcpStream),
    /// TLS over TCP (`rtmps://`): the TLS state and the socket it runs on.
    Tls {
        /// rustls client state.
        conn: Box<rustls::ClientConnection>,
        /// The TCP socket.
        sock: TcpStream,
    },
}

impl Transport {
    /// Establishes the publish within the options' timeout, checking `cancelled` every
    /// [`IO_SLICE`]. It runs on a helper thread because name resolution and TCP connect cannot
    /// be interrupted; on cancel the helper sees the flag, gives up and drops its socket.
    pub fn establish(
        url: &RtmpUrl,
        options: &ClientOptions,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Option<(Transport, Session, VecDeque<ClientEvent>)>, RtmpError> {
        let (tx, rx) = mpsc::channel();
        let give_up = Arc::new(AtomicBool::new(false));
        let give_up2 = give_up.clone();
        let (target, opts) = (url.clone(), options.clone());
        thread::Builder::new()
            .name("rtmp-connect".into())
            .spawn(move || {
                let r = connection::establish(&target, &opts, &|| give_up2.load(Ordering::Acquire));
                let _ = tx.send(r);
            })
            .map_err(RtmpError::Io)?;
        // establish() bounds each attempt by the timeout; authentication may take up to three
        // attempts. This bound only guards against a helper that never returns.
        let deadline = Instant::now() + options.timeout * 4 + IO_SLICE * 10;
        loop {
            if cancelled() {
                give_up.store(true, Ordering::Release);
                return Ok(None);
            }
            match rx.recv_timeout(IO_SLICE) {
                Ok(Ok(Established {
                    stream,
                    session,
                    events,
                })) => {
                    let t = match stream {
                        Stream::Tcp(s) => Transport::Plain(s),
                        Stream::Tls(b) => {
                            let rustls::StreamOwned { conn, sock } = *b;
                            Transport::Tls {
                                conn: Box::new(conn),
                                sock,
                            }
                        }
                    };
                    return Ok(Some((t, session, events)));
                }
                Ok(Err(RtmpError::Cancelled)) => return Ok(None),
                Ok(Err(e)) => return Err(e),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if Instant::now() > deadline {
                        give_up.store(true, Ordering::Release);
                        return Err(RtmpError::TimedOut {
                            step: format!("connecting to {}", url.authority()),
                            timeout_ms: options.timeout.as_millis() as u64,
                        });
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(RtmpError::Io(io::Error::other(
                        "connect helper thread died",
                    )));
                }
            }
        }
    }

    fn sock(&self) -> &TcpStream {
        match self {
            Transport::Plain(s) => s,
            Transport::Tls { sock, .. } => sock,
        }
    }

    /// Prepares the socket for the session thread: no Nagle delay (each message is one vectored
    /// write already), writes time out after [`IO_SLICE`].
    pub fn configure(&self) -> io::Result<()> {
        let s = self.sock();
        s.set_nodelay(true)?;
        s.set_write_timeout(Some(IO_SLICE))?;
        Ok(())
    }

    /// A handle for the reader thread (raw bytes, before any TLS).
    pub fn raw_reader(&self) -> io::Result<TcpStream> {
        let r = self.sock().try_clone()?;
        r.set_read_timeout(Some(IO_SLICE))?;
        Ok(r)
    }

    /// Plaintext that TLS decrypted while the publish was being established but nobody read.
    pub fn pending_plaintext(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Transport::Tls { conn, .. } = self {
            let _ = read_plaintext(conn, &mut out);
        }
        out
    }

    /// Turns raw received bytes into RTMP bytes (identity for plain TCP, decryption for TLS).
    pub fn on_raw_input(&mut self, raw: Vec<u8>) -> Result<Vec<u8>, RtmpError> {
        match self {
            Transport::Plain(_) => Ok(raw),
            Transport::Tls { conn, .. } => {
                let mut rest = raw.as_slice();
                let mut out = Vec::new();
                while !rest.is_empty() {
                    conn.read_tls(&mut rest).map_err(RtmpError::Io)?;
                    conn.process_new_packets()
                        .map_err(|e| RtmpError::Tls(e.to_string()))?;
                    read_plaintext(conn, &mut out).map_err(RtmpError::Io)?;
                }
                Ok(out)
            }
        }
    }

    /// Writes the whole batch. Gives up when `cancelled()` turns true (checked every
    /// [`IO_SLICE`]) or when no byte could be written for `stall_timeout`.
    pub fn write_batch(
        &mut self,
        batch: &mut ChunkBatch<'_>,
        stall_timeout: Duration,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<usize, WriteError> {
        let total = batch.remaining();
        match self {
            Transport::Plain(stream) => {
                write_with_stall_detection(stall_timeout, cancelled, |_| {
                    match batch.write_to(stream) {
                        Ok(()) => Ok(0),
                        Err(e) => Err((e, batch.remaining())),
                    }
                })?;
            }
            Transport::Tls { conn, sock } => {
                // Encryption copies anyway: hand rustls one contiguous buffer.
                let plain = batch.to_vec();
                batch.advance(plain.len());
                conn.writer().write_all(&plain).map_err(WriteError::Io)?;
                flush_tls(conn, sock, stall_timeout, cancelled)?;
            }
        }
        Ok(total)
    }

    /// Half-closes: the server sees end of stream after the bytes already written.
    pub fn shutdown_write(&mut self) {
        if let Transport::Tls { conn, sock } = self {
            conn.send_close_notify();
            let _ = flush_tls(conn, sock, IO_SLICE * 5, &|| false);
        }
        let _ = self.sock().shutdown(Shutdown::Write);
    }

    /// Closes both directions (also wakes the reader thread).
    pub fn shutdown(&self) {
        let _ = self.sock().shutdown(Shutdown::Both);
    }
}

/// Drives `step` (one write attempt returning `Ok(0)` when done, or the error and the bytes
/// still left) until done, cancelled, or without progress for `stall_timeout`.
fn write_with_stall_detection(
    stall_timeout: Duration,
    cancelled: &dyn Fn() -> bool,
    mut step: impl FnMut(()) -> Result<usize, (io::Error, usize)>,
) -> Result<(), WriteError> {
    let mut last_progress = Instant::now();
    let mut remaining = usize::MAX;
    loop {
        match step(()) {
            Ok(_) => return Ok(()),
            Err((e, left))
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                if left < remaining {
                    remaining = left;
                    last_progress = Instant::now();
                } else if last_progress.elapsed() >= stall_timeout {
                    return Err(WriteError::Stalled(last_progress.elapsed()));
                }
                if cancelled() {
                    return Err(WriteError::Cancelled);
                }
            }
            Err((e, _)) => return Err(WriteError::Io(e)),
        }
    }
}

/// Writes all TLS records rustls has queued.
fn flush_tls(
    conn: &mut rustls::ClientConnection,
    sock: &mut TcpStream,
    stall_timeout: Duration,
    cancelled: &dyn Fn() -> bool,
) -> Result<(), WriteError> {
    let mut last_progress = Instant::now();
    while conn.wants_write() {
        match conn.write_tls(sock) {
            Ok(_) => last_progress = Instant::now(),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                if last_progress.elapsed() >= stall_timeout {
                    return Err(WriteError::Stalled(last_progress.elapsed()));
                }
                if cancelled() {
                    return Err(WriteError::Cancelled);
                }
            }
            Err(e) => return Err(WriteError::Io(e)),
        }
    }
    Ok(())
}

fn read_plaintext(conn: &mut rustls::ClientConnection, out: &mut Vec<u8>) -> io::Result<()> {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match conn.reader().read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// What the reader thread reports.
#[derive(Debug)]
pub enum NetEvent {
    /// Raw bytes from the server.
    Data(Vec<u8>),
    /// The server closed the connection (`None`) or the socket failed.
    Closed(Option<String>),
}

/// Handle of a running reader thread; dropping it does not stop the thread, [`Reader::stop`]
/// does (together with shutting the socket).
#[derive(Debug)]
pub struct Reader {
    stop: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<()>>,
}

impl Reader {
    /// Starts a thread that moves raw bytes from `stream` to `sink` until the connection ends
    /// or [`Reader::stop`] is called. `sink` returns false when the receiver is gone.
    pub fn spawn(
        mut stream: TcpStream,
        sink: impl Fn(NetEvent) -> bool + Send + 'static,
    ) -> io::Result<Reader> {
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handle = thread::Builder::new()
            .name("rtmp-reader".into())
            .spawn(move || {
                let mut buf = vec![0u8; READ_CHUNK];
                while !stop2.load(Ordering::Acquire) {
                    match stream.read(&mut buf) {
                        Ok(0) => {
                            sink(NetEvent::Closed(None));
                            return;
                        }
                        Ok(n) => {
                            if !sink(NetEvent::Data(buf[..n].to_vec())) {
                                return;
                            }
                        }
                        Err(e)
                            if matches!(
                                e.kind(),
                                io::ErrorKind::WouldBlock
                                    | io::ErrorKind::TimedOut
                                    | io::ErrorKind::Interrupted
                            ) => {}
                        Err(e) => {
                            if !stop2.load(Ordering::Acquire) {
                                sink(NetEvent::Closed(Some(e.to_string())));
                            }
                            return;
                        }
                    }
                }
            })?;
        Ok(Reader {
            stop,
            handle: Some(handle),
        })
    }

    /// Stops the thread (it notices within [`IO_SLICE`]) and waits for it.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.stop();
    }
}
