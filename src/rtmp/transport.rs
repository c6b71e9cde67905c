//! Opening the connection to an RTMP server: name resolution and TCP connect within one
//! deadline, each failure mapped to the [`Error`] a user can act on. (TLS for `rtmps://` sits on
//! top.)

use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::error::{Error, Result};
use super::url::RtmpUrl;

/// Resolves the URL's host and connects to the first address that answers, within `timeout`
/// overall (the name lookup included). The socket has `TCP_NODELAY` set (RTMP messages are
/// latency-sensitive and already batched by the chunk writer).
pub fn dial(url: &RtmpUrl, timeout: Duration) -> Result<TcpStream> {
    dial_with(url, timeout, system_lookup)
}

/// The system resolver (`getaddrinfo`), which cannot be interrupted.
fn system_lookup(host: String, port: u16) -> io::Result<Vec<SocketAddr>> {
    Ok((host.as_str(), port).to_socket_addrs()?.collect())
}

/// [`dial`] with the name lookup done by `lookup` (tests inject a stalling one).
fn dial_with<F>(url: &RtmpUrl, timeout: Duration, lookup: F) -> Result<TcpStream>
where
    F: FnOnce(String, u16) -> io::Result<Vec<SocketAddr>> + Send + 'static,
{
    let deadline = Instant::now() + timeout;
    let addrs = resolve(url, deadline, timeout, lookup)?;
    let mut last_err: Option<Error> = None;
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(e) => last_err = Some(connect_error(url, e, timeout)),
        }
    }
    Err(last_err.unwrap_or_else(|| Error::TimedOut {
        step: format!("connecting to {}", url.authority()),
        timeout_ms: timeout.as_millis() as u64,
    }))
}

/// The addresses of the URL's host, waiting for the lookup at most until `deadline`.
/// `getaddrinfo` cannot be cancelled, so the lookup runs on a helper thread of its own: one
/// still resolving after the deadline is abandoned (its answer is dropped) and holds nothing
/// anyone waits for. An IP address needs no lookup and no thread.
fn resolve<F>(
    url: &RtmpUrl,
    deadline: Instant,
    timeout: Duration,
    lookup: F,
) -> Result<Vec<SocketAddr>>
where
    F: FnOnce(String, u16) -> io::Result<Vec<SocketAddr>> + Send + 'static,
{
    if let Ok(ip) = url.host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, url.port)]);
    }
    let not_found = |source| Error::HostNotFound {
        host: url.host.clone(),
        source,
    };
    let (tx, rx) = mpsc::sync_channel(1);
    let (host, port) = (url.host.clone(), url.port);
    thread::Builder::new()
        .name("rtmp-lookup".into())
        .spawn(move || {
            // The receiver is gone if the caller gave up: nothing to do then.
            let _ = tx.send(lookup(host, port));
        })
        .map_err(Error::Io)?;
    match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        Ok(Ok(addrs)) if !addrs.is_empty() => Ok(addrs),
        Ok(Ok(_)) => Err(not_found(io::Error::new(
            io::ErrorKind::NotFound,
            "no address for this name",
        ))),
        Ok(Err(source)) => Err(not_found(source)),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(Error::TimedOut {
            step: format!("looking up the address of {}", url.host),
            timeout_ms: timeout.as_millis() as u64,
        }),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(not_found(io::Error::other(
            "the name lookup ended without an answer",
        ))),
    }
}

fn connect_error(url: &RtmpUrl, e: io::Error, timeout: Duration) -> Error {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => Error::ConnectionRefused {
            addr: url.authority(),
        },
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Error::TimedOut {
            step: format!("connecting to {}", url.authority()),
            timeout_ms: timeout.as_millis() as u64,
        },
        _ => Error::Io(io::Error::new(
            e.kind(),
            format!("could not connect to {}: {e}", url.authority()),
        )),
    }
}

/// True for errors that only mean "not now" on a socket with timeouts (a read or write slice
/// ended, or a signal interrupted it): the caller retries after checking its deadline.
pub fn is_retryable(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Maps an I/O error of an established connection to the error a user reads.
pub fn stream_error(e: io::Error, step: &str, timeout: Duration) -> Error {
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Error::TimedOut {
            step: step.to_string(),
            timeout_ms: timeout.as_millis() as u64,
        },
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => Error::ConnectionClosed(format!(" while {step} ({e})")),
        _ => Error::Io(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn refused_port_is_reported_as_refused() {
        // Bind then drop to find a port nobody listens on.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = RtmpUrl::parse(&format!("rtmp://127.0.0.1:{port}/live/key")).unwrap();
        let err = dial(&url, Duration::from_secs(2)).unwrap_err();
        assert!(matches!(err, Error::ConnectionRefused { .. }), "{err}");
        assert!(err.to_string().contains("connection refused"));
        assert!(!err.to_string().contains("key"));
    }

    #[test]
    fn unknown_host_is_reported_as_not_found() {
        let url = RtmpUrl::parse("rtmp://no-such-host.invalid/live/key").unwrap();
        let err = dial(&url, Duration::from_secs(5)).unwrap_err();
        assert!(matches!(err, Error::HostNotFound { .. }), "{err}");
    }

    /// A lookup that answers only when released (or after `limit`).
    fn stalling_lookup(
        limit: Duration,
    ) -> (
        mpsc::Sender<()>,
        impl FnOnce(String, u16) -> io::Result<Vec<SocketAddr>> + Send + 'static,
    ) {
        let (release, released) = mpsc::channel::<()>();
        let lookup = move |_: String, _: u16| {
            let _ = released.recv_timeout(limit);
            Err(io::Error::other("released"))
        };
        (release, lookup)
    }

    #[test]
    fn a_stalling_name_lookup_ends_within_the_timeout() {
        let url = RtmpUrl::parse("rtmp://stalls.example/live/key").unwrap();
        let (release, lookup) = stalling_lookup(Duration::from_secs(5));
        let timeout = Duration::from_millis(500);
        let t = Instant::now();
        let err = dial_with(&url, timeout, lookup).unwrap_err();
        let took = t.elapsed();
        assert!(matches!(err, Error::TimedOut { .. }), "{err}");
        assert!(
            took >= timeout && took < timeout + Duration::from_millis(300),
            "dial took {took:?} with a {timeout:?} timeout"
        );
        let text = err.to_string();
        assert!(
            text.contains("looking up the address of stalls.example"),
            "{text}"
        );
        assert!(!text.contains("key"), "{text}");
        // The abandoned lookup blocks nothing: the next dial works while it still stalls.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let url =
            RtmpUrl::parse(&format!("rtmp://ingest.example:{}/live/key", addr.port())).unwrap();
        let t = Instant::now();
        dial_with(&url, timeout, move |_, _| Ok(vec![addr])).expect("second dial");
        assert!(t.elapsed() < timeout, "{:?}", t.elapsed());
        drop(release);
    }

    #[test]
    fn a_lookup_without_addresses_is_host_not_found() {
        let url = RtmpUrl::parse("rtmp://empty.example/live/key").unwrap();
        let err = dial_with(&url, Duration::from_secs(1), |_, _| Ok(Vec::new())).unwrap_err();
        assert!(matches!(err, Error::HostNotFound { .. }), "{err}");
    }

    #[test]
    fn an_ip_address_is_not_looked_up() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let url = RtmpUrl::parse(&format!("rtmp://127.0.0.1:{port}/live/key")).unwrap();
        let s = dial_with(&url, Duration::from_secs(2), |_, _| {
            panic!("an IP address was looked up")
        })
        .unwrap();
        assert!(s.nodelay().unwrap());
    }

    #[test]
    fn connects_to_a_listener() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let url = RtmpUrl::parse(&format!("rtmp://localhost:{port}/live/key")).unwrap();
        let s = dial(&url, Duration::from_secs(2)).unwrap();
        assert!(s.nodelay().unwrap());
    }
}
