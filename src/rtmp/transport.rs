//! Opening the connection to an RTMP server: name resolution and TCP connect with a deadline,
//! each failure mapped to the [`Error`] a user can act on. (TLS for `rtmps://` sits on top.)

use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use super::error::{Error, Result};
use super::url::RtmpUrl;

/// Resolves the URL's host and connects to the first address that answers, within `timeout`
/// overall. The socket has `TCP_NODELAY` set (RTMP messages are latency-sensitive and already
/// batched by the chunk writer).
pub fn dial(url: &RtmpUrl, timeout: Duration) -> Result<TcpStream> {
    let deadline = Instant::now() + timeout;
    let addrs = resolve(url)?;
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

fn resolve(url: &RtmpUrl) -> Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|source| Error::HostNotFound {
            host: url.host.clone(),
            source,
        })?
        .collect();
    if addrs.is_empty() {
        return Err(Error::HostNotFound {
            host: url.host.clone(),
            source: io::Error::new(io::ErrorKind::NotFound, "no address for this name"),
        });
    }
    Ok(addrs)
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

    #[test]
    fn connects_to_a_listener() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let url = RtmpUrl::parse(&format!("rtmp://localhost:{port}/live/key")).unwrap();
        let s = dial(&url, Duration::from_secs(2)).unwrap();
        assert!(s.nodelay().unwrap());
    }
}
