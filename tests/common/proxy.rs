//! A small fault-injecting TCP proxy for the reliability tests. Loopback only and bounded in
//! time: it listens on `127.0.0.1:0`, forwards to a loopback upstream (e.g. nginx-rtmp),
//! and can switch at runtime, for existing and new connections alike, between:
//!
//! | mode                         | client→server                 | server→client   |
//! |------------------------------|-------------------------------|-----------------|
//! | `forward()`                  | forwarded                     | forwarded       |
//! | `blackhole()`                | not read (held)               | not read (held) |
//! | `blackhole_drop()`           | read and discarded            | read and discarded |
//! | `throttle(bps)`              | forwarded at ≤ `bps` bytes/s  | forwarded       |
//! | `stall_reads_from_client()`  | not read (held)               | forwarded       |
//!
//! plus the one-shot `reset_all()` and the switch `refuse_new(bool)`.
//!
//! "Not read (held)": the proxy stops reading that socket, so its kernel receive buffer
//! and then the peer's send buffer fill up and the peer's writes block, exactly as with a
//! dead peer or a server that stopped reading. Nothing is lost: what was already read (at
//! most one 64 KiB chunk per direction and connection, plus everything still queued in the
//! kernel buffers) is forwarded, in order, after switching back to `forward()`. So
//! `blackhole()` + `forward()` is a lossless pause of the byte stream; for data loss use
//! `blackhole_drop()` (after which the RTMP byte stream is corrupt: follow it with
//! `reset_all()`, or expect the server to drop the connection).
//!
//! A held direction also does not notice its peer closing (FIN/RST stay queued in the
//! unread socket), so a blackholed connection stays in `active_connections()` until
//! `forward()`, `reset_all()` or drop, and its upstream socket stays open: nginx-rtmp
//! keeps the old publisher (and answers a republish of the same name with "Already
//! publishing") until it times out on its own (`timeout`, `ping`/`ping_timeout`,
//! `drop_idle_publisher`) or `reset_all()` is called.
//!
//! `refuse_new(true)` accepts and closes at once; the client sees EOF, or ECONNRESET if it
//! had already sent bytes (e.g. the RTMP C0/C1) before the close (Linux resets a socket
//! closed with unread data). A refused connect (nothing listening) is what the proxy
//! gives after it is dropped, or `upstream_failures()` counts when the upstream is down:
//! then the client's connection is accepted and closed the same way.
//!
//! Guarantee behind the counters: a mode switch takes a write lock that every forwarding
//! `write` holds a read lock for, so when `blackhole()` (or any switch) returns, no write
//! started under the old mode is still running: `bytes_up()`/`bytes_down()` are frozen
//! from then on while in a non-forwarding mode. (Bytes counted before the switch may
//! still sit in the proxy's kernel send buffer and reach the peer afterwards.)
//!
//! Threads: one accept thread, two pump threads per connection (client→server, which also
//! connects upstream, and server→client). Every blocking call has a timeout ≤ 50 ms
//! (reads 20 ms, writes 50 ms, idle polls 5–10 ms), so `Drop` stops and joins all threads
//! within ~100 ms. One exception: connecting upstream uses a 500 ms timeout (on loopback
//! a connect either succeeds or is refused at once; the timeout only matters if the
//! upstream's accept backlog is full).
//!
//! Every mode switch, accept, refusal, upstream failure and connection close is logged
//! with `eprintln!` (UTC wall-clock timestamp and the proxy port) so test failures read
//! as a timeline.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Read timeout of the pump threads (how quickly they notice a mode switch / stop / reset).
const READ_TIMEOUT: Duration = Duration::from_millis(20);
/// Write timeout of the pump threads.
const WRITE_TIMEOUT: Duration = Duration::from_millis(50);
/// Poll interval while a direction is paused.
const PAUSE_POLL: Duration = Duration::from_millis(10);
/// Poll interval of the (non-blocking) listener.
const ACCEPT_POLL: Duration = Duration::from_millis(10);
/// Upstream connect timeout (see the module docs).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// How long `reset_all` waits for the reset connections to be closed.
const RESET_WAIT: Duration = Duration::from_secs(1);
/// Size of one read (and the most one direction of one connection ever holds).
const CHUNK: usize = 64 * 1024;

/// The forwarding mode; see the module docs. `Throttle` carries the client→server rate
/// in bytes per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Forward,
    Blackhole,
    BlackholeDrop,
    Throttle(u64),
    StallReadsFromClient,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Up,
    Down,
}

/// What one direction does in a mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Forward,
    Throttled(u64),
    Hold,
    Discard,
}

impl Mode {
    fn action(self, dir: Dir) -> Action {
        match (self, dir) {
            (Mode::Forward, _) => Action::Forward,
            (Mode::Blackhole, _) => Action::Hold,
            (Mode::BlackholeDrop, _) => Action::Discard,
            (Mode::Throttle(r), Dir::Up) => Action::Throttled(r),
            (Mode::Throttle(_), Dir::Down) => Action::Forward,
            (Mode::StallReadsFromClient, Dir::Up) => Action::Hold,
            (Mode::StallReadsFromClient, Dir::Down) => Action::Forward,
        }
    }
}

/// Token bucket shared by all connections (the rate is an aggregate, like one uplink).
struct Bucket {
    rate: u64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// Burst size: 20 ms worth of tokens, at least 1 byte, at most one read chunk.
    fn capacity(&self) -> f64 {
        ((self.rate / 50).max(1) as usize).min(CHUNK) as f64
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let add = (now - self.last).as_secs_f64() * self.rate as f64;
        self.tokens = (self.tokens + add).min(self.capacity());
        self.last = now;
    }
}

struct Shared {
    port: u16,
    upstream: SocketAddr,
    /// Mode; writers (mode switches) wait for in-flight forwarding writes (see docs).
    mode: RwLock<Mode>,
    bucket: Mutex<Bucket>,
    refuse: AtomicBool,
    stop: AtomicBool,
    /// Bumped by `reset_all`; a connection accepted in an older epoch is reset.
    epoch: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
    bytes_dropped: AtomicU64,
    connections: AtomicU64,
    active: AtomicU64,
    refused: AtomicU64,
    upstream_failures: AtomicU64,
    conns: Mutex<Vec<Weak<Conn>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn log(&self, msg: &str) {
        eprintln!("[{} faultproxy :{}] {msg}", timestamp(), self.port);
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn spawn(self: &Arc<Self>, name: String, f: impl FnOnce() + Send + 'static) {
        let h = std::thread::Builder::new()
            .name(name)
            .spawn(f)
            .expect("spawn proxy thread");
        let mut t = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        t.retain(|h| !h.is_finished());
        t.push(h);
    }
}

/// One proxied connection. Dropped (closing both sockets) when both pumps have exited.
struct Conn {
    id: u64,
    epoch: u64,
    client: TcpStream,
    upstream: TcpStream,
    /// Set when one direction failed: the other one exits too.
    failed: AtomicBool,
    shared: Arc<Shared>,
}

impl Conn {
    fn is_reset(&self) -> bool {
        self.shared.epoch.load(Ordering::SeqCst) != self.epoch
    }

    /// Closes both sockets now (both pumps see EOF/errors at once and exit).
    fn abort(&self) {
        self.failed.store(true, Ordering::SeqCst);
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.upstream.shutdown(Shutdown::Both);
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let s = &self.shared;
        let active = s.active.fetch_sub(1, Ordering::SeqCst) - 1;
        s.log(&format!("conn #{} closed (active {active})", self.id));
    }
}

/// The proxy. Dropping it stops and joins all its threads and closes all its sockets.
pub struct FaultProxy {
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Listens on `127.0.0.1:0` and forwards every accepted connection to `upstream`.
    /// Panics if `upstream` is not a loopback address: test traffic never leaves the host.
    pub fn start(upstream: SocketAddr) -> FaultProxy {
        assert!(
            upstream.ip().is_loopback(),
            "FaultProxy: upstream {upstream} is not a loopback address; \
             test traffic must never leave the machine"
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("FaultProxy: bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("FaultProxy: set_nonblocking");
        let port = listener.local_addr().expect("local_addr").port();
        let shared = Arc::new(Shared {
            port,
            upstream,
            mode: RwLock::new(Mode::Forward),
            bucket: Mutex::new(Bucket {
                rate: 0,
                tokens: 0.0,
                last: Instant::now(),
            }),
            refuse: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            bytes_up: AtomicU64::new(0),
            bytes_down: AtomicU64::new(0),
            bytes_dropped: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            active: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            upstream_failures: AtomicU64::new(0),
            conns: Mutex::new(Vec::new()),
            threads: Mutex::new(Vec::new()),
        });
        shared.log(&format!("listening, upstream {upstream}"));
        let s = shared.clone();
        let accept_thread = std::thread::Builder::new()
            .name(format!("proxy-{port}-accept"))
            .spawn(move || accept_loop(listener, s))
            .expect("spawn proxy accept thread");
        FaultProxy {
            shared,
            accept_thread: Some(accept_thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.shared.port
    }

    /// `127.0.0.1:PORT`
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.shared.port))
    }

    /// `rtmp://127.0.0.1:PORT/app/stream`
    pub fn url(&self, app: &str, stream: &str) -> String {
        format!("rtmp://127.0.0.1:{}/{app}/{stream}", self.shared.port)
    }

    pub fn upstream(&self) -> SocketAddr {
        self.shared.upstream
    }

    pub fn mode(&self) -> Mode {
        *self.shared.mode.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Switches the mode for existing and new connections. Returns once no forwarding
    /// write started under the previous mode is still running (≤ ~50 ms).
    pub fn set_mode(&self, mode: Mode) {
        if let Mode::Throttle(rate) = mode {
            assert!(rate > 0, "FaultProxy: throttle rate must be > 0 bytes/s");
        }
        let mut m = self.shared.mode.write().unwrap_or_else(|e| e.into_inner());
        if let Mode::Throttle(rate) = mode {
            // Start with an empty bucket: no burst above the rate at the switch.
            let mut b = self.shared.bucket.lock().unwrap_or_else(|e| e.into_inner());
            *b = Bucket {
                rate,
                tokens: 0.0,
                last: Instant::now(),
            };
        }
        let old = std::mem::replace(&mut *m, mode);
        self.shared.log(&format!(
            "mode {old:?} -> {mode:?} (active {}, up {} B, down {} B)",
            self.active_connections(),
            self.bytes_up(),
            self.bytes_down()
        ));
    }

    /// Normal forwarding in both directions (releases everything held by `blackhole()` /
    /// `stall_reads_from_client()`, in order).
    pub fn forward(&self) {
        self.set_mode(Mode::Forward);
    }

    /// Stops reading from both sides (sockets stay open): back-pressure builds up at the
    /// client and the server as with a dead peer. Lossless: held data is forwarded after
    /// `forward()`.
    pub fn blackhole(&self) {
        self.set_mode(Mode::Blackhole);
    }

    /// Reads from both sides and discards everything (also the data held from an earlier
    /// `blackhole()`). The peers' writes keep succeeding; counted in `bytes_dropped()`.
    pub fn blackhole_drop(&self) {
        self.set_mode(Mode::BlackholeDrop);
    }

    /// Limits client→server to `bytes_per_sec` (aggregate over all connections; token
    /// bucket with a 20 ms burst); server→client stays unthrottled.
    pub fn throttle(&self, bytes_per_sec: u64) {
        self.set_mode(Mode::Throttle(bytes_per_sec));
    }

    /// The server stops reading mid-stream: client→server is held (not read), while
    /// server→client keeps being forwarded.
    pub fn stall_reads_from_client(&self) {
        self.set_mode(Mode::StallReadsFromClient);
    }

    /// Closes every current connection abruptly, on both sides (RST on Linux: SO_LINGER 0,
    /// then close; elsewhere a plain close), dropping any held data. New connections are
    /// accepted as before, in the current mode. Returns once the connections are closed
    /// (bounded: waits at most 1 s, normally ~20–50 ms).
    pub fn reset_all(&self) {
        let s = &self.shared;
        let epoch = s.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        let victims: Vec<Weak<Conn>> = {
            let mut c = s.conns.lock().unwrap_or_else(|e| e.into_inner());
            c.retain(|w| w.strong_count() > 0);
            c.clone()
        };
        s.log(&format!(
            "reset_all: resetting {} connection(s) (epoch {epoch})",
            victims.len()
        ));
        let t0 = Instant::now();
        let done =
            super::util::wait_for(RESET_WAIT, || victims.iter().all(|w| w.strong_count() == 0));
        s.log(&format!(
            "reset_all: {} after {:?}",
            if done { "done" } else { "NOT DONE" },
            t0.elapsed()
        ));
    }

    /// `true`: accept new connections and close them immediately (the port answers but the
    /// "server" hangs up: the client sees EOF right after connecting). Existing connections
    /// are not affected. `false`: proxy new connections again.
    pub fn refuse_new(&self, refuse: bool) {
        self.shared.refuse.store(refuse, Ordering::SeqCst);
        self.shared.log(&format!("refuse_new({refuse})"));
    }

    /// Bytes written to the upstream (client→server), all connections.
    pub fn bytes_up(&self) -> u64 {
        self.shared.bytes_up.load(Ordering::SeqCst)
    }

    /// Bytes written to clients (server→client), all connections.
    pub fn bytes_down(&self) -> u64 {
        self.shared.bytes_down.load(Ordering::SeqCst)
    }

    /// Bytes discarded by `blackhole_drop()` (both directions).
    pub fn bytes_dropped(&self) -> u64 {
        self.shared.bytes_dropped.load(Ordering::SeqCst)
    }

    /// Connections accepted for forwarding (not counting `refuse_new` ones; counting those
    /// whose upstream connect then failed).
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Connections currently open (client and upstream socket both open).
    pub fn active_connections(&self) -> u64 {
        self.shared.active.load(Ordering::SeqCst)
    }

    /// Connections accepted and closed at once because of `refuse_new(true)`.
    pub fn refused_connections(&self) -> u64 {
        self.shared.refused.load(Ordering::SeqCst)
    }

    /// Accepted connections closed because the upstream connect failed (server down).
    pub fn upstream_failures(&self) -> u64 {
        self.shared.upstream_failures.load(Ordering::SeqCst)
    }

    /// Waits until `connections() >= n`.
    pub fn wait_connections(&self, n: u64, timeout: Duration) -> bool {
        super::util::wait_for(timeout, || self.connections() >= n)
    }

    /// Waits until `active_connections() == n`.
    pub fn wait_active(&self, n: u64, timeout: Duration) -> bool {
        super::util::wait_for(timeout, || self.active_connections() == n)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let s = &self.shared;
        let t0 = Instant::now();
        s.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.accept_thread.take() {
            let _ = h.join();
        }
        // Connection threads may still register the server→client thread: loop until empty.
        loop {
            let hs = std::mem::take(&mut *s.threads.lock().unwrap_or_else(|e| e.into_inner()));
            if hs.is_empty() {
                break;
            }
            for h in hs {
                let _ = h.join();
            }
        }
        s.log(&format!(
            "stopped in {:?} (connections {}, up {} B, down {} B)",
            t0.elapsed(),
            s.connections.load(Ordering::SeqCst),
            s.bytes_up.load(Ordering::SeqCst),
            s.bytes_down.load(Ordering::SeqCst)
        ));
    }
}

fn accept_loop(listener: TcpListener, s: Arc<Shared>) {
    let mut next_id = 0u64;
    while !s.stopping() {
        let (client, peer) = match listener.accept() {
            Ok(x) => x,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(ACCEPT_POLL);
                continue;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                s.log(&format!("accept error: {e}"));
                std::thread::sleep(ACCEPT_POLL);
                continue;
            }
        };
        if s.refuse.load(Ordering::SeqCst) {
            let n = s.refused.fetch_add(1, Ordering::SeqCst) + 1;
            s.log(&format!("refused connection from {peer} (refused {n})"));
            drop(client);
            continue;
        }
        next_id += 1;
        let id = next_id;
        let epoch = s.epoch.load(Ordering::SeqCst);
        let n = s.connections.fetch_add(1, Ordering::SeqCst) + 1;
        s.log(&format!(
            "conn #{id} accepted from {peer} (connections {n})"
        ));
        let s2 = s.clone();
        s.spawn(format!("proxy-{}-c{id}-up", s.port), move || {
            connect_and_pump(client, id, epoch, s2)
        });
    }
}

/// Connects upstream, starts the server→client pump and runs the client→server pump.
fn connect_and_pump(client: TcpStream, id: u64, epoch: u64, s: Arc<Shared>) {
    let upstream = match TcpStream::connect_timeout(&s.upstream, CONNECT_TIMEOUT) {
        Ok(u) => u,
        Err(e) => {
            let n = s.upstream_failures.fetch_add(1, Ordering::SeqCst) + 1;
            s.log(&format!(
                "conn #{id}: upstream connect to {} failed: {e}; closing client (upstream failures {n})",
                s.upstream
            ));
            return;
        }
    };
    let setup = (|| -> std::io::Result<()> {
        for sock in [&client, &upstream] {
            sock.set_nonblocking(false)?;
            sock.set_nodelay(true)?;
            sock.set_read_timeout(Some(READ_TIMEOUT))?;
            sock.set_write_timeout(Some(WRITE_TIMEOUT))?;
        }
        Ok(())
    })();
    if let Err(e) = setup {
        s.log(&format!("conn #{id}: socket setup failed: {e}"));
        return;
    }
    let active = s.active.fetch_add(1, Ordering::SeqCst) + 1;
    let conn = Arc::new(Conn {
        id,
        epoch,
        client,
        upstream,
        failed: AtomicBool::new(false),
        shared: s.clone(),
    });
    s.log(&format!("conn #{id} connected upstream (active {active})"));
    s.conns
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Arc::downgrade(&conn));
    let c2 = conn.clone();
    s.spawn(format!("proxy-{}-c{id}-down", s.port), move || {
        pump(&c2, Dir::Down)
    });
    pump(&conn, Dir::Up);
}

/// Moves bytes in one direction until EOF, an error, a reset or the proxy stopping.
fn pump(conn: &Conn, dir: Dir) {
    let s = &*conn.shared;
    let (src, dst, counter) = match dir {
        Dir::Up => (&conn.client, &conn.upstream, &s.bytes_up),
        Dir::Down => (&conn.upstream, &conn.client, &s.bytes_down),
    };
    let what = match dir {
        Dir::Up => "client->server",
        Dir::Down => "server->client",
    };
    let mut buf = vec![0u8; CHUNK];
    // Held data: buf[start..end].
    let (mut start, mut end) = (0usize, 0usize);
    let mut src_eof = false;
    loop {
        if s.stopping() || conn.failed.load(Ordering::SeqCst) {
            return;
        }
        if conn.is_reset() {
            set_linger_zero(&conn.client);
            set_linger_zero(&conn.upstream);
            // Wake the other direction at once; the RST goes out when the last fd closes.
            conn.failed.store(true, Ordering::SeqCst);
            return;
        }
        let guard = s.mode.read().unwrap_or_else(|e| e.into_inner());
        let action = guard.action(dir);
        match action {
            Action::Hold => {
                drop(guard);
                std::thread::sleep(PAUSE_POLL);
                continue;
            }
            Action::Discard => {
                drop(guard);
                if end > start {
                    s.bytes_dropped
                        .fetch_add((end - start) as u64, Ordering::SeqCst);
                    (start, end) = (0, 0);
                }
                if src_eof {
                    let _ = dst.shutdown(Shutdown::Write);
                    return;
                }
                match (&*src).read(&mut buf) {
                    Ok(0) => src_eof = true,
                    Ok(n) => {
                        s.bytes_dropped.fetch_add(n as u64, Ordering::SeqCst);
                    }
                    Err(e) if is_timeout(&e) => {}
                    Err(e) => return fail(conn, what, "read", e),
                }
                continue;
            }
            Action::Forward | Action::Throttled(_) => {}
        }
        if end > start {
            // Forward held data; the read lock is held across the write (see module docs).
            match (&*dst).write(&buf[start..end]) {
                Ok(n) => {
                    start += n;
                    counter.fetch_add(n as u64, Ordering::SeqCst);
                }
                Err(e) if is_timeout(&e) => {}
                Err(e) => {
                    drop(guard);
                    return fail(conn, what, "write", e);
                }
            }
            continue;
        }
        drop(guard);
        if src_eof {
            // Half-close: propagate the EOF and let the other direction finish.
            let _ = dst.shutdown(Shutdown::Write);
            s.log(&format!("conn #{}: {what} EOF", conn.id));
            return;
        }
        let max = match action {
            Action::Throttled(_) => {
                let mut b = s.bucket.lock().unwrap_or_else(|e| e.into_inner());
                b.refill();
                // Read in pieces of at least a quarter burst (~5 ms worth), not byte by byte.
                let min = (b.capacity() / 4.0).max(1.0);
                if b.tokens < min {
                    let wait = (min - b.tokens) / b.rate as f64;
                    drop(b);
                    std::thread::sleep(Duration::from_secs_f64(wait.clamp(0.001, 0.010)));
                    continue;
                }
                let n = (b.tokens as usize).min(CHUNK);
                b.tokens -= n as f64;
                n
            }
            _ => CHUNK,
        };
        let res = (&*src).read(&mut buf[..max]);
        let got = match &res {
            Ok(n) => *n,
            Err(_) => 0,
        };
        if matches!(action, Action::Throttled(_)) && got < max {
            // Give back what was not used (the bucket is shared by all connections).
            let mut b = s.bucket.lock().unwrap_or_else(|e| e.into_inner());
            b.tokens = (b.tokens + (max - got) as f64).min(b.capacity());
        }
        match res {
            Ok(0) => src_eof = true,
            Ok(n) => (start, end) = (0, n),
            Err(e) if is_timeout(&e) => {}
            Err(e) => return fail(conn, what, "read", e),
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
    )
}

fn fail(conn: &Conn, what: &str, op: &str, e: std::io::Error) {
    if !conn.failed.load(Ordering::SeqCst) {
        conn.shared
            .log(&format!("conn #{}: {what} {op} failed: {e}", conn.id));
    }
    conn.abort();
}

/// SO_LINGER {on, 0}: the next close sends RST instead of FIN (std's `set_linger` is
/// unstable). Linux only; elsewhere the close stays a plain FIN.
#[cfg(target_os = "linux")]
fn set_linger_zero(sock: &TcpStream) -> bool {
    use std::os::fd::AsRawFd;
    #[repr(C)]
    struct Linger {
        l_onoff: i32,
        l_linger: i32,
    }
    unsafe extern "C" {
        fn setsockopt(
            fd: i32,
            level: i32,
            name: i32,
            val: *const std::ffi::c_void,
            len: u32,
        ) -> i32;
    }
    const SOL_SOCKET: i32 = 1;
    const SO_LINGER: i32 = 13;
    let l = Linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: valid fd borrowed from a live TcpStream; `l` outlives the call and the length
    // matches its type.
    unsafe {
        setsockopt(
            sock.as_raw_fd(),
            SOL_SOCKET,
            SO_LINGER,
            (&l as *const Linger).cast(),
            std::mem::size_of::<Linger>() as u32,
        ) == 0
    }
}

#[cfg(not(target_os = "linux"))]
fn set_linger_zero(_sock: &TcpStream) -> bool {
    false
}

/// `HH:MM:SS.mmm` UTC.
fn timestamp() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        d.subsec_millis()
    )
}
