//! The byte pipe under the RTMP session: opening the TCP connection (interruptibly), writing
//! chunk batches with stall detection, and the per-connection reader thread.
//!
//! TLS (`rtmps://`) slots in as another [`Transport`] variant: the reader thread keeps handing
//! raw bytes to the session thread, which passes them through [`Transport::on_raw_input`] to get
//! plaintext, and [`Transport::write_batch`] encrypts before writing. Nothing else changes.

use std::io::{self, Read};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::rtmp::chunk::ChunkBatch;
use crate::rtmp::error::Error as RtmpError;
use crate::rtmp::transport;
use crate::rtmp::url::{RtmpUrl, Scheme};

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
    /// The socket failed.
    Io(io::Error),
}

/// The connection to the server.
#[derive(Debug)]
pub enum Transport {
    /// Plain TCP (`rtmp://`).
    Plain(TcpStream),
}

impl Transport {
    /// Resolves and connects to the URL's server within `timeout`, checking `cancelled` every
    /// [`IO_SLICE`]. Resolution and connect run on a helper thread because neither can be
    /// interrupted; on cancel the helper is left to finish on its own and its socket dropped.
    pub fn open(
        url: &RtmpUrl,
        timeout: Duration,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Option<Transport>, RtmpError> {
        if url.scheme == Scheme::Rtmps {
            return Err(RtmpError::Tls(
                "rtmps:// is not supported yet by rtmpclientsink; use rtmp://".into(),
            ));
        }
        let (tx, rx) = mpsc::channel();
        let deadline = Instant::now() + timeout;
        let target = url.clone();
        thread::Builder::new()
            .name("rtmp-connect".into())
            .spawn(move || {
                let _ = tx.send(transport::dial(&target, timeout));
            })
            .map_err(RtmpError::Io)?;
        loop {
            if cancelled() {
                return Ok(None);
            }
            match rx.recv_timeout(IO_SLICE) {
                Ok(Ok(stream)) => return Ok(Some(Transport::Plain(stream))),
                Ok(Err(e)) => return Err(e),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if Instant::now() > deadline + IO_SLICE {
                        return Err(RtmpError::TimedOut {
                            step: format!("connecting to {}", url.authority()),
                            timeout_ms: timeout.as_millis() as u64,
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

    /// Prepares the socket for the session thread: no Nagle delay (each message is one vectored
    /// write already), writes time out after [`IO_SLICE`].
    pub fn configure(&self) -> io::Result<()> {
        match self {
            Transport::Plain(s) => {
                s.set_nodelay(true)?;
                s.set_write_timeout(Some(IO_SLICE))?;
                Ok(())
            }
        }
    }

    /// A handle for the reader thread (raw bytes, before any TLS).
    pub fn raw_reader(&self) -> io::Result<TcpStream> {
        match self {
            Transport::Plain(s) => {
                let r = s.try_clone()?;
                r.set_read_timeout(Some(IO_SLICE))?;
                Ok(r)
            }
        }
    }

    /// Turns raw received bytes into RTMP bytes (identity for plain TCP).
    pub fn on_raw_input(&mut self, raw: Vec<u8>) -> Vec<u8> {
        match self {
            Transport::Plain(_) => raw,
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
        let Transport::Plain(stream) = self;
        let total = batch.remaining();
        let mut last_progress = Instant::now();
        let mut remaining = total;
        while !batch.is_empty() {
            match batch.write_to(stream) {
                Ok(()) => break,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    let now_remaining = batch.remaining();
                    if now_remaining < remaining {
                        remaining = now_remaining;
                        last_progress = Instant::now();
                    } else if last_progress.elapsed() >= stall_timeout {
                        return Err(WriteError::Stalled(last_progress.elapsed()));
                    }
                    if cancelled() {
                        return Err(WriteError::Cancelled);
                    }
                }
                Err(e) => return Err(WriteError::Io(e)),
            }
        }
        Ok(total)
    }

    /// Half-closes: the server sees end of stream after the bytes already written.
    pub fn shutdown_write(&self) {
        let Transport::Plain(s) = self;
        let _ = s.shutdown(Shutdown::Write);
    }

    /// Closes both directions (also wakes the reader thread).
    pub fn shutdown(&self) {
        let Transport::Plain(s) = self;
        let _ = s.shutdown(Shutdown::Both);
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
