//! Proves the fault-injecting proxy (tests/common/proxy.rs) before the reliability tests
//! rely on it: against plain loopback echo / sink+source servers (fast, no external
//! tools) and, end to end, through a real nginx-rtmp.
//!
//! Every wait is bounded and polls counters or conditions; nothing asserts on a sleep.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::ffmpeg::publish_file;
use common::{FaultProxy, NginxRtmp, media, read_flv, require_binary, wait_for};

const IO_TIMEOUT: Duration = Duration::from_millis(20);
const CHUNK: usize = 64 * 1024;

/// The test byte stream: byte `i` of every connection's stream in either direction.
fn pattern_byte(i: u64) -> u8 {
    let x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (x >> 56) as u8 ^ (i >> 16) as u8
}

fn fill_pattern(buf: &mut [u8], offset: u64) {
    for (k, b) in buf.iter_mut().enumerate() {
        *b = pattern_byte(offset + k as u64);
    }
}

fn matches_pattern(buf: &[u8], offset: u64) -> bool {
    buf.iter()
        .enumerate()
        .all(|(k, &b)| b == pattern_byte(offset + k as u64))
}

/// Progress of one side of a byte stream (a reader or a writer thread).
#[derive(Default)]
struct Flow {
    /// Bytes read (verified against the pattern) or written.
    bytes: AtomicU64,
    /// A read byte did not match the pattern.
    corrupt: AtomicBool,
    /// Writes that timed out (the peer did not drain: back-pressure).
    write_timeouts: AtomicU64,
    /// Set to end the thread.
    stop: AtomicBool,
    /// How the stream ended: "eof", or the error kind.
    end: Mutex<Option<String>>,
}

impl Flow {
    fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::SeqCst)
    }
    fn timeouts(&self) -> u64 {
        self.write_timeouts.load(Ordering::SeqCst)
    }
    fn end(&self) -> Option<String> {
        self.end.lock().unwrap().clone()
    }
    fn set_end(&self, why: String) {
        *self.end.lock().unwrap() = Some(why);
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Reads `s` until EOF/error/stop, checking every byte against the pattern.
fn read_loop(mut s: TcpStream, flow: &Flow) {
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut buf = vec![0u8; CHUNK];
    while !flow.stop.load(Ordering::SeqCst) {
        match s.read(&mut buf) {
            Ok(0) => return flow.set_end("eof".into()),
            Ok(n) => {
                if !matches_pattern(&buf[..n], flow.bytes()) {
                    flow.corrupt.store(true, Ordering::SeqCst);
                }
                flow.bytes.fetch_add(n as u64, Ordering::SeqCst);
            }
            Err(e) if is_timeout(&e) || e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return flow.set_end(format!("{:?}", e.kind())),
        }
    }
}

/// Writes the pattern to `s` until `limit` bytes, error or stop, paced at ≤ ~64 MB/s so a
/// flood does not starve the other tests on a small machine. Write timeouts are counted
/// and retried.
fn write_loop(mut s: TcpStream, flow: &Flow, limit: Option<u64>, write_timeout: Duration) {
    s.set_write_timeout(Some(write_timeout)).unwrap();
    let mut buf = vec![0u8; CHUNK];
    while !flow.stop.load(Ordering::SeqCst) {
        let off = flow.bytes();
        let want = limit.map_or(CHUNK as u64, |l| (l - off).min(CHUNK as u64)) as usize;
        if want == 0 {
            return flow.set_end("done".into());
        }
        fill_pattern(&mut buf[..want], off);
        let mut k = 0;
        while k < want {
            if flow.stop.load(Ordering::SeqCst) {
                return;
            }
            match s.write(&buf[k..want]) {
                Ok(n) => {
                    k += n;
                    flow.bytes.fetch_add(n as u64, Ordering::SeqCst);
                }
                Err(e) if is_timeout(&e) => {
                    flow.write_timeouts.fetch_add(1, Ordering::SeqCst);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return flow.set_end(format!("{:?}", e.kind())),
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn spawn_reader(s: &TcpStream) -> (Arc<Flow>, JoinHandle<()>) {
    let flow = Arc::new(Flow::default());
    let (s, f) = (s.try_clone().unwrap(), flow.clone());
    (flow, std::thread::spawn(move || read_loop(s, &f)))
}

fn spawn_writer(s: &TcpStream, limit: Option<u64>) -> (Arc<Flow>, JoinHandle<()>) {
    let flow = Arc::new(Flow::default());
    let (s, f) = (s.try_clone().unwrap(), flow.clone());
    let h = std::thread::spawn(move || write_loop(s, &f, limit, Duration::from_millis(100)));
    (flow, h)
}

/// (received by the server, sent by the server) of one server-side connection.
type FlowPair = (Arc<Flow>, Arc<Flow>);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Behavior {
    /// Writes back everything it reads.
    Echo,
    /// Reads and verifies the pattern; at the same time sends the pattern endlessly.
    SinkSource,
}

/// A loopback test server; each accepted connection gets its own threads.
struct TestServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicU64>,
    /// Connections whose reading side ended (EOF or error).
    closed: Arc<AtomicU64>,
    /// Per connection: (bytes received and verified, bytes sent).
    flows: Arc<Mutex<Vec<FlowPair>>>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    fn start(behavior: Behavior) -> TestServer {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicU64::new(0));
        let closed = Arc::new(AtomicU64::new(0));
        let flows = Arc::new(Mutex::new(Vec::new()));
        let (st, acc, cl, fl) = (
            stop.clone(),
            accepted.clone(),
            closed.clone(),
            flows.clone(),
        );
        let thread = std::thread::spawn(move || {
            let mut threads = Vec::new();
            while !st.load(Ordering::SeqCst) {
                let s = match l.accept() {
                    Ok((s, _)) => s,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                };
                s.set_nonblocking(false).unwrap();
                acc.fetch_add(1, Ordering::SeqCst);
                let rx = Arc::new(Flow::default());
                let tx = Arc::new(Flow::default());
                fl.lock().unwrap().push((rx.clone(), tx.clone()));
                let (st2, cl2) = (st.clone(), cl.clone());
                match behavior {
                    Behavior::Echo => threads.push(std::thread::spawn(move || {
                        echo_loop(s, &rx, &st2);
                        cl2.fetch_add(1, Ordering::SeqCst);
                    })),
                    Behavior::SinkSource => {
                        let w = s.try_clone().unwrap();
                        let tx2 = tx.clone();
                        threads.push(std::thread::spawn(move || {
                            write_loop(w, &tx2, None, Duration::from_millis(50))
                        }));
                        let rx2 = rx.clone();
                        threads.push(std::thread::spawn(move || {
                            read_loop(s, &rx2);
                            cl2.fetch_add(1, Ordering::SeqCst);
                            // The connection is gone: stop sending too.
                            tx.stop.store(true, Ordering::SeqCst);
                        }));
                        let _ = (rx, st2);
                    }
                }
            }
            for t in threads {
                let _ = t.join();
            }
        });
        TestServer {
            addr,
            stop,
            accepted,
            closed,
            flows,
            thread: Some(thread),
        }
    }

    fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }
    fn closed(&self) -> u64 {
        self.closed.load(Ordering::SeqCst)
    }
    /// (received, sent) flows of connection `i`.
    fn flow(&self, i: usize) -> (Arc<Flow>, Arc<Flow>) {
        self.flows.lock().unwrap()[i].clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for (rx, tx) in self.flows.lock().unwrap().iter() {
            rx.stop.store(true, Ordering::SeqCst);
            tx.stop.store(true, Ordering::SeqCst);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Echoes until EOF (then half-closes back) or error; counts what it read into `rx`.
fn echo_loop(mut s: TcpStream, rx: &Flow, stop: &AtomicBool) {
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut buf = vec![0u8; CHUNK];
    while !stop.load(Ordering::SeqCst) {
        let n = match s.read(&mut buf) {
            Ok(0) => {
                let _ = s.shutdown(Shutdown::Write);
                return rx.set_end("eof".into());
            }
            Ok(n) => n,
            Err(e) if is_timeout(&e) || e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return rx.set_end(format!("{:?}", e.kind())),
        };
        rx.bytes.fetch_add(n as u64, Ordering::SeqCst);
        let mut k = 0;
        while k < n {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            match s.write(&buf[k..n]) {
                Ok(w) => k += w,
                Err(e) if is_timeout(&e) || e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return rx.set_end(format!("{:?}", e.kind())),
            }
        }
    }
}

fn connect(p: &FaultProxy) -> TcpStream {
    let s = TcpStream::connect_timeout(&p.addr(), Duration::from_secs(2)).expect("connect proxy");
    s.set_nodelay(true).unwrap();
    s
}

/// Sends `msg` and expects it echoed back within 2 s.
fn echo_roundtrip(s: &mut TcpStream, msg: &[u8]) {
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.write_all(msg).unwrap();
    let mut back = vec![0u8; msg.len()];
    s.read_exact(&mut back).expect("echo back");
    assert_eq!(back, msg);
}

fn stop_join(flow: &Flow, h: JoinHandle<()>) {
    flow.stop.store(true, Ordering::SeqCst);
    h.join().unwrap();
}

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn forward_passes_bytes_intact_and_propagates_half_close() {
    let srv = TestServer::start(Behavior::Echo);
    let p = FaultProxy::start(srv.addr);
    let c = connect(&p);
    const N: u64 = 4 << 20;
    let (rx, rh) = spawn_reader(&c);
    let (tx, th) = spawn_writer(&c, Some(N));
    assert!(
        wait_for(WAIT, || rx.bytes() == N),
        "echoed {} of {N} bytes",
        rx.bytes()
    );
    th.join().unwrap();
    assert!(!rx.corrupt.load(Ordering::SeqCst), "echoed bytes differ");
    assert_eq!(tx.bytes(), N);
    assert_eq!((p.bytes_up(), p.bytes_down()), (N, N));
    assert_eq!((p.connections(), p.active_connections()), (1, 1));
    assert_eq!(srv.accepted(), 1);
    // Client half-closes: server sees EOF, half-closes back, client sees EOF.
    c.shutdown(Shutdown::Write).unwrap();
    assert!(wait_for(Duration::from_secs(2), || rx.end().is_some()));
    assert_eq!(rx.end().as_deref(), Some("eof"));
    rh.join().unwrap();
    assert!(
        p.wait_active(0, Duration::from_secs(2)),
        "proxy conn not closed"
    );
}

#[test]
fn blackhole_holds_everything_and_forward_releases_it_in_order() {
    let srv = TestServer::start(Behavior::Echo);
    let p = FaultProxy::start(srv.addr);
    let c = connect(&p);
    let (rx, rh) = spawn_reader(&c);
    let (tx, th) = spawn_writer(&c, None);
    assert!(wait_for(WAIT, || rx.bytes() >= 1 << 20), "no echo traffic");

    p.blackhole();
    let (up0, down0) = (p.bytes_up(), p.bytes_down());
    let t0 = Instant::now();
    // Buffers fill up, then the client's writes time out (back-pressure as with a dead peer).
    assert!(
        wait_for(WAIT, || tx.timeouts() >= 3),
        "client writes never blocked (wrote {} B)",
        tx.bytes()
    );
    eprintln!(
        "blackhole: client blocked after {:?}, {} B written so far, {} B proxied up",
        t0.elapsed(),
        tx.bytes(),
        up0
    );
    assert_eq!(p.bytes_up(), up0, "bytes forwarded up during blackhole");
    assert_eq!(
        p.bytes_down(),
        down0,
        "bytes forwarded down during blackhole"
    );
    assert_eq!(p.active_connections(), 1);

    stop_join(&tx, th);
    let written = tx.bytes();
    p.forward();
    assert!(
        wait_for(WAIT, || rx.bytes() == written),
        "after forward(): echoed {} of {written} bytes",
        rx.bytes()
    );
    assert!(!rx.corrupt.load(Ordering::SeqCst), "stream corrupted");
    assert_eq!((p.bytes_up(), p.bytes_down()), (written, written));
    stop_join(&rx, rh);
}

#[test]
fn blackhole_drop_discards_without_back_pressure() {
    let srv = TestServer::start(Behavior::SinkSource);
    let p = FaultProxy::start(srv.addr);
    let c = connect(&p);
    let (rx, rh) = spawn_reader(&c);
    let (tx, th) = spawn_writer(&c, None);
    assert!(wait_for(WAIT, || p.bytes_up() > 0 && p.bytes_down() > 0));

    p.blackhole_drop();
    let (up0, down0, drop0, w0) = (p.bytes_up(), p.bytes_down(), p.bytes_dropped(), tx.bytes());
    // The client keeps writing (its data is read and discarded) ...
    assert!(
        wait_for(WAIT, || tx.bytes() >= w0 + (2 << 20)
            && p.bytes_dropped() >= drop0 + (2 << 20)),
        "client wrote {} B, proxy dropped {} B",
        tx.bytes() - w0,
        p.bytes_dropped() - drop0
    );
    // ... and nothing is forwarded either way.
    assert_eq!((p.bytes_up(), p.bytes_down()), (up0, down0));
    stop_join(&tx, th);
    stop_join(&rx, rh);
}

#[test]
fn throttle_limits_client_to_server_only() {
    const RATE: u64 = 256 * 1024;
    let srv = TestServer::start(Behavior::SinkSource);
    let p = FaultProxy::start(srv.addr);
    p.throttle(RATE);
    let c = connect(&p);
    let (rx, rh) = spawn_reader(&c);
    let (tx, th) = spawn_writer(&c, None);
    assert!(wait_for(WAIT, || p.bytes_up() > 0));
    let (t0, up0, down0) = (Instant::now(), p.bytes_up(), p.bytes_down());
    // ~2 s at the target rate; bounded wait, then the rate is computed from the counters.
    assert!(
        wait_for(WAIT, || p.bytes_up() >= up0 + 2 * RATE),
        "throttled uplink stalled: {} B in {:?}",
        p.bytes_up() - up0,
        t0.elapsed()
    );
    let dt = t0.elapsed().as_secs_f64();
    let up_rate = (p.bytes_up() - up0) as f64 / dt;
    let down_rate = (p.bytes_down() - down0) as f64 / dt;
    eprintln!(
        "throttle {RATE} B/s: up {up_rate:.0} B/s, down {down_rate:.0} B/s over {dt:.2} s \
         (client write timeouts {})",
        tx.timeouts()
    );
    let ratio = up_rate / RATE as f64;
    assert!(
        (0.7..=1.3).contains(&ratio),
        "uplink {up_rate:.0} B/s is not within ±30% of {RATE} B/s"
    );
    assert!(
        down_rate > 4.0 * RATE as f64,
        "downlink {down_rate:.0} B/s looks throttled too"
    );
    let (srx, _) = srv.flow(0);
    assert!(!srx.corrupt.load(Ordering::SeqCst), "uplink corrupted");
    assert!(!rx.corrupt.load(Ordering::SeqCst), "downlink corrupted");
    stop_join(&tx, th);
    stop_join(&rx, rh);
}

#[test]
fn stall_reads_from_client_keeps_server_to_client_flowing() {
    let srv = TestServer::start(Behavior::SinkSource);
    let p = FaultProxy::start(srv.addr);
    let c = connect(&p);
    let (rx, rh) = spawn_reader(&c);
    let (tx, th) = spawn_writer(&c, None);
    assert!(wait_for(WAIT, || p.bytes_up() > 0 && p.bytes_down() > 0));

    p.stall_reads_from_client();
    let up0 = p.bytes_up();
    assert!(
        wait_for(WAIT, || tx.timeouts() >= 3),
        "client writes never blocked"
    );
    let down0 = p.bytes_down();
    assert!(
        wait_for(WAIT, || p.bytes_down() >= down0 + (2 << 20)),
        "server->client stopped while stalled"
    );
    assert_eq!(p.bytes_up(), up0, "client data forwarded while stalled");

    p.forward();
    assert!(
        wait_for(WAIT, || p.bytes_up() >= up0 + (2 << 20)),
        "client->server did not resume"
    );
    let (srx, _) = srv.flow(0);
    assert!(!srx.corrupt.load(Ordering::SeqCst), "uplink corrupted");
    assert!(!rx.corrupt.load(Ordering::SeqCst), "downlink corrupted");
    stop_join(&tx, th);
    stop_join(&rx, rh);
}

#[test]
fn reset_all_resets_clients_and_keeps_accepting() {
    let srv = TestServer::start(Behavior::Echo);
    let p = FaultProxy::start(srv.addr);
    let mut a = connect(&p);
    let mut b = connect(&p);
    echo_roundtrip(&mut a, b"hello a");
    echo_roundtrip(&mut b, b"hello b");
    assert_eq!(p.active_connections(), 2);
    // One connection idle, one with data held by the proxy (blackhole) at reset time.
    p.blackhole();
    b.write_all(b"held").unwrap();

    let t0 = Instant::now();
    p.reset_all();
    let mut seen = Vec::new();
    for s in [&mut a, &mut b] {
        s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let mut buf = [0u8; 64];
        let what = match s.read(&mut buf) {
            Ok(0) => "eof".to_string(),
            Ok(n) => format!("{n} bytes"),
            Err(e) => format!("{:?}", e.kind()),
        };
        seen.push(what);
    }
    let dt = t0.elapsed();
    eprintln!("reset_all: clients saw {seen:?} within {dt:?}");
    assert!(dt < Duration::from_secs(1), "reset took {dt:?}");
    let expected = if cfg!(target_os = "linux") {
        ["ConnectionReset"].as_slice()
    } else {
        ["ConnectionReset", "eof"].as_slice()
    };
    for what in &seen {
        assert!(
            expected.contains(&what.as_str()),
            "expected RST, got {what}"
        );
    }
    assert_eq!(p.active_connections(), 0);
    assert!(
        wait_for(Duration::from_secs(1), || srv.closed() == 2),
        "server side not closed"
    );

    // New connections are still accepted (in the current mode: back to forwarding).
    p.forward();
    let mut c = connect(&p);
    echo_roundtrip(&mut c, b"after reset");
    assert_eq!((p.connections(), p.active_connections()), (3, 1));
}

#[test]
fn refuse_new_closes_new_connections_only() {
    let srv = TestServer::start(Behavior::Echo);
    let p = FaultProxy::start(srv.addr);
    let mut old = connect(&p);
    echo_roundtrip(&mut old, b"before");

    p.refuse_new(true);
    let mut r = connect(&p);
    r.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let t0 = Instant::now();
    let mut buf = [0u8; 8];
    match r.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("refused connection delivered {n} bytes"),
        Err(e) => assert!(!is_timeout(&e), "refused connection not closed within 1 s"),
    }
    assert!(t0.elapsed() < Duration::from_secs(1));
    assert_eq!(p.refused_connections(), 1);
    assert_eq!(p.connections(), 1);
    echo_roundtrip(&mut old, b"existing connection unaffected");

    p.refuse_new(false);
    let mut n = connect(&p);
    echo_roundtrip(&mut n, b"accepted again");
    assert_eq!((p.connections(), srv.accepted()), (2, 2));
}

#[test]
fn upstream_down_closes_client() {
    // A port nobody listens on (bound, then released).
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let p = FaultProxy::start(dead);
    let mut c = connect(&p);
    c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 8];
    let r = c.read(&mut buf);
    assert!(
        matches!(r, Ok(0)) || r.as_ref().is_err_and(|e| !is_timeout(e)),
        "client not closed: {r:?}"
    );
    assert_eq!((p.connections(), p.upstream_failures()), (1, 1));
    assert_eq!(p.active_connections(), 0);
}

#[test]
#[should_panic(expected = "not a loopback address")]
fn non_loopback_upstream_is_refused() {
    let _ = FaultProxy::start("192.0.2.1:1935".parse().unwrap());
}

#[test]
fn drop_is_bounded_and_closes_everything() {
    let srv = TestServer::start(Behavior::SinkSource);
    let p = FaultProxy::start(srv.addr);
    let c1 = connect(&p);
    let c2 = connect(&p);
    let (w1, h1) = spawn_writer(&c1, None);
    let (w2, h2) = spawn_writer(&c2, None);
    assert!(p.wait_active(2, WAIT));
    p.blackhole();
    assert!(wait_for(WAIT, || w1.timeouts() >= 1 && w2.timeouts() >= 1));
    let t0 = Instant::now();
    drop(p);
    let dt = t0.elapsed();
    eprintln!("FaultProxy drop took {dt:?}");
    assert!(dt < Duration::from_millis(500), "drop took {dt:?}");
    // The proxy's sockets are closed: the writers fail promptly.
    assert!(
        wait_for(Duration::from_secs(2), || w1.end().is_some()
            && w2.end().is_some()),
        "client sockets still open after the proxy was dropped"
    );
    h1.join().unwrap();
    h2.join().unwrap();
    drop(srv);
}

fn nginx_addr(n: &NginxRtmp) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], n.port()))
}

/// Publishes the 3 s test clip through the proxy; returns (source, recording) frame counts.
fn publish_through(
    p: &FaultProxy,
    nginx: &NginxRtmp,
    stream: &str,
) -> (usize, usize, usize, usize) {
    let src = media::h264_aac_flv(3, 320, 240, 2).expect("media");
    let (ok, err) = publish_file(&src, &p.url("live", stream), Duration::from_secs(30));
    assert!(ok, "ffmpeg publish through the proxy failed: {err}");
    let rec = nginx
        .wait_recording(stream, Duration::from_secs(10))
        .expect("recording");
    let s = read_flv(&src).unwrap();
    let r = read_flv(&rec).unwrap();
    assert!(!r.truncated, "recording truncated");
    (
        s.video_frames().len(),
        r.video_frames().len(),
        s.audio_frames().len(),
        r.audio_frames().len(),
    )
}

#[test]
fn nginx_publish_through_forwarding_proxy_records_everything() {
    if !require_binary("ffmpeg") {
        return;
    }
    let Some(nginx) = NginxRtmp::start_default() else {
        return;
    };
    let p = FaultProxy::start(nginx_addr(&nginx));
    let (sv, rv, sa, ra) = publish_through(&p, &nginx, "fwd");
    assert_eq!((sv, sa), (rv, ra), "recording differs (video, audio)");
    assert!(sv > 0 && sa > 0);
    assert_eq!(p.connections(), 1);
    let size = std::fs::metadata(nginx.recording("fwd")).unwrap().len();
    assert!(p.bytes_up() > size / 2, "only {} B went up", p.bytes_up());
}

#[test]
fn nginx_publish_survives_a_blackhole_pause() {
    if !require_binary("ffmpeg") {
        return;
    }
    let Some(nginx) = NginxRtmp::start_default() else {
        return;
    };
    let p = Arc::new(FaultProxy::start(nginx_addr(&nginx)));
    // Make sure the media exists before the blackhole starts (generation takes a while).
    media::h264_aac_flv(3, 320, 240, 2).expect("media");
    p.blackhole();
    let p2 = p.clone();
    let pauser = std::thread::spawn(move || {
        // Hold the RTMP handshake for a moment once ffmpeg is connected, then release it.
        assert!(p2.wait_connections(1, WAIT), "ffmpeg did not connect");
        assert!(p2.wait_active(1, WAIT));
        let leaked = wait_for(Duration::from_millis(300), || p2.bytes_up() > 0);
        assert!(!leaked, "bytes forwarded during blackhole");
        p2.forward();
    });
    let (sv, rv, sa, ra) = publish_through(&p, &nginx, "paused");
    pauser.join().unwrap();
    assert_eq!((sv, sa), (rv, ra), "recording differs (video, audio)");
}
