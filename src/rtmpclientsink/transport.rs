//! The byte pipe under the RTMP session: establishing the publish (interruptibly, through the
//! shared [`crate::rtmp::connection::establish`]: dial, TLS, handshake, authentication,
//! connect/createStream/publish), writing chunk batches with stall detection, and the
//! per-connection reader thread.
//!
//! The reader thread only moves raw socket bytes; for `rtmps://` the session thread decrypts
//! them in [`Transport::on_raw_input`] and [`Transport::write_batch`] encrypts (through
//! [`crate::rtmp::tls::write_batch`], the library's own TLS write path), so the TLS state is
//! owned by one thread only.

use std::collections::VecDeque;
use std::io::{self, Read};
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
use crate::rtmp::tls;
use crate::rtmp::transport::is_retryable;
use crate::rtmp::url::RtmpUrl;

/// Longest a blocking socket call may last before the session thread looks at its flags again;
/// this is what makes stop/flush/unlock take effect within 100 ms.
pub const IO_SLICE: Duration = Duration::from_millis(100);
/// Largest read of the reader thread.
const READ_CHUNK: usize = 64 * 1024;

pub use crate::rtmp::tls::WriteError;

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
        /// Server host name, for error texts.
        host: String,
    },
}

/// What [`Establishing`] hands over once the publish has started.
pub type EstablishedParts = (Transport, Session, VecDeque<ClientEvent>);

/// A publish being established on a helper thread (see [`Transport::start_establish`]).
/// Dropping it makes the helper give up (it notices within 100 ms and drops its socket).
#[derive(Debug)]
pub struct Establishing {
    rx: mpsc::Receiver<Result<Established, RtmpError>>,
    give_up: Arc<AtomicBool>,
    deadline: Instant,
    authority: String,
    host: String,
    timeout: Duration,
}

impl Establishing {
    /// Waits at most `slice` for the result. `Ok(None)`: not done yet. Cancellation by the
    /// helper is reported as [`RtmpError::Cancelled`].
    pub fn wait(&self, slice: Duration) -> Result<Option<EstablishedParts>, RtmpError> {
        let r = if slice.is_zero() {
            self.rx.try_recv().map_err(|e| match e {
                mpsc::TryRecvError::Empty => mpsc::RecvTimeoutError::Timeout,
                mpsc::TryRecvError::Disconnected => mpsc::RecvTimeoutError::Disconnected,
            })
        } else {
            self.rx.recv_timeout(slice)
        };
        match r {
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
                            host: self.host.clone(),
                        }
                    }
                };
                Ok(Some((t, session, events)))
            }
            Ok(Err(e)) => Err(e),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if Instant::now() > self.deadline {
                    self.give_up.store(true, Ordering::Release);
                    return Err(RtmpError::TimedOut {
                        step: format!("connecting to {}", self.authority),
                        timeout_ms: self.timeout.as_millis() as u64,
                    });
                }
                Ok(None)
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(RtmpError::Io(io::Error::other(
                "connect helper thread died",
            ))),
        }
    }
}

impl Drop for Establishing {
    fn drop(&mut self) {
        self.give_up.store(true, Ordering::Release);
    }
}

impl Transport {
    /// Starts establishing the publish on a helper thread (name resolution and TCP connect
    /// cannot be interrupted, so they must not run on the session thread). `wake` is called on
    /// the helper thread once the result is ready.
    pub fn start_establish(
        url: &RtmpUrl,
        options: &ClientOptions,
        thread_name: &str,
        wake: Box<dyn Fn() + Send>,
    ) -> Result<Establishing, RtmpError> {
        let (tx, rx) = mpsc::channel();
        let give_up = Arc::new(AtomicBool::new(false));
        let give_up2 = give_up.clone();
        let (target, opts) = (url.clone(), options.clone());
        thread::Builder::new()
            .name(thread_name.into())
            .spawn(move || {
                let r = connection::establish(&target, &opts, &|| give_up2.load(Ordering::Acquire));
                let _ = tx.send(r);
                wake();
            })
            .map_err(RtmpError::Io)?;
        Ok(Establishing {
            rx,
            give_up,
            // establish() bounds each attempt by the timeout; authentication may take up to
            // three attempts. This bound only guards against a helper that never returns.
            deadline: Instant::now() + options.timeout * 4 + IO_SLICE * 10,
            authority: url.authority(),
            host: url.host.clone(),
            timeout: options.timeout,
        })
    }

    /// Establishes the publish within the options' timeout, checking `cancelled` every
    /// [`IO_SLICE`] (see [`Transport::start_establish`]). `Ok(None)`: cancelled.
    pub fn establish(
        url: &RtmpUrl,
        options: &ClientOptions,
        thread_name: &str,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Option<EstablishedParts>, RtmpError> {
        let pending = Transport::start_establish(url, options, thread_name, Box::new(|| {}))?;
        loop {
            if cancelled() {
                return Ok(None);
            }
            match pending.wait(IO_SLICE) {
                Ok(Some(parts)) => return Ok(Some(parts)),
                Ok(None) => {}
                Err(RtmpError::Cancelled) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }

    fn sock(&self) -> &TcpStream {
        match self {
            Transport::Plain(s) => s,
            Transport::Tls { sock, .. } => sock,
        }
    }

    /// Bytes written but not yet acknowledged by the peer's TCP stack (`SIOCOUTQ`), where the
    /// platform tells; `None` elsewhere.
    pub fn unacked(&self) -> Option<u64> {
        unacked_bytes(self.sock())
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
            Transport::Tls { conn, host, .. } => {
                let mut rest = raw.as_slice();
                let mut out = Vec::new();
                while !rest.is_empty() {
                    conn.read_tls(&mut rest).map_err(RtmpError::Io)?;
                    conn.process_new_packets()
                        .map_err(|e| tls::describe(&e, host))?;
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
            Transport::Tls { conn, sock, .. } => {
                tls::write_batch(conn, sock, batch, stall_timeout, cancelled)?;
            }
        }
        Ok(total)
    }

    /// Half-closes: the server sees end of stream after the bytes already written.
    pub fn shutdown_write(&mut self) {
        if let Transport::Tls { conn, sock, .. } = self {
            conn.send_close_notify();
            // An empty batch: only the pending records (close_notify last) are sent.
            let _ = tls::write_batch(conn, sock, &mut ChunkBatch::new(), IO_SLICE * 5, &|| false);
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
            Err((e, left)) if is_retryable(&e) => {
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

/// `SIOCOUTQ`: bytes in the socket's send queue not yet acknowledged by the peer.
#[cfg(target_os = "linux")]
fn unacked_bytes(sock: &TcpStream) -> Option<u64> {
    use std::os::fd::AsRawFd;
    unsafe extern "C" {
        fn ioctl(fd: i32, request: std::ffi::c_ulong, ...) -> i32;
    }
    /// `SIOCOUTQ` (= `TIOCOUTQ`) from `<linux/sockios.h>`.
    const SIOCOUTQ: std::ffi::c_ulong = 0x5411;
    let mut n: i32 = 0;
    // SAFETY: `sock` owns a valid socket descriptor for the duration of the call, and SIOCOUTQ
    // writes exactly one `int` through the pointer, which points at a live local `i32`.
    let r = unsafe { ioctl(sock.as_raw_fd(), SIOCOUTQ, &mut n as *mut i32) };
    (r == 0 && n >= 0).then_some(n as u64)
}

#[cfg(not(target_os = "linux"))]
fn unacked_bytes(_sock: &TcpStream) -> Option<u64> {
    None
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
        thread_name: &str,
        sink: impl Fn(NetEvent) -> bool + Send + 'static,
    ) -> io::Result<Reader> {
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handle = thread::Builder::new()
            .name(thread_name.into())
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
                        Err(e) if is_retryable(&e) => {}
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
