//! Establishing a publish, shared by [`crate::rtmp::RtmpClient`] and the `rtmpclientsink`
//! element: dial, TLS for `rtmps://`, the RTMP handshake, `connect` (retried with
//! Adobe/Limelight authentication when the server asks), `createStream` and `publish`, all
//! within a deadline and cancellable between short read slices.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::amf0::Amf0Value;
use super::auth::{self, AuthMod, Challenge};
use super::caps::{ConnectCapabilities, Wanted};
use super::chunk::ChunkBatch;
use super::error::{Error, Result};
use super::securetoken::SecureToken;
use super::session::{
    ClientEvent, DEFAULT_FLASH_VERSION, DEFAULT_OUT_CHUNK_SIZE, PublishConfig, Session,
    SessionState, StopCommands,
};
use super::tls::{self, TlsOptions};
use super::transport;
use super::url::{RtmpUrl, Scheme};

/// Default time allowed for connecting and for each blocking step.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest single blocking read while establishing, so cancellation is noticed quickly.
const READ_SLICE: Duration = Duration::from_millis(100);
/// Most connection attempts one authentication exchange may take (user, challenge, response).
const MAX_AUTH_ATTEMPTS: usize = 3;
/// Size of the receive buffer.
pub(crate) const READ_BUFFER: usize = 64 * 1024;

/// How to connect and publish.
// Debug is written by hand so that the password can never reach a log line.
#[derive(Clone)]
pub struct ClientOptions {
    /// `live`, `record` or `append`.
    pub publish_type: String,
    /// Enhanced RTMP block advertised in `connect` (empty: none, or the one of `media`).
    pub capabilities: ConnectCapabilities,
    /// The codecs and tracks the publish will send: `connect` advertises them and the
    /// server's answer is checked before `createStream` (see
    /// [`crate::rtmp::session::PublishConfig::media`]).
    pub media: Option<Wanted>,
    /// Time allowed for connecting (each attempt) and for each later blocking write.
    pub timeout: Duration,
    /// Outgoing chunk size.
    pub chunk_size: u32,
    /// flashVer of `connect`.
    pub flash_version: String,
    /// Commands sent when the publish ends.
    pub stop_commands: StopCommands,
    /// Extra AMF0 values appended to `connect`.
    pub extra_connect_args: Vec<Amf0Value>,
    /// Certificate verification for `rtmps://`.
    pub tls: TlsOptions,
    /// Authentication mode used when the server asks for credentials.
    pub authmod: AuthMod,
    /// User name (overrides the one in the URL).
    pub username: Option<String>,
    /// Password (overrides the one in the URL).
    pub password: Option<String>,
    /// Shared secret for a server's `secureToken` challenge (rtmp2sink's `secure-token`; see
    /// [`crate::rtmp::securetoken`]).
    pub secure_token: Option<String>,
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("publish_type", &self.publish_type)
            .field("capabilities", &self.capabilities)
            .field("media", &self.media)
            .field("timeout", &self.timeout)
            .field("chunk_size", &self.chunk_size)
            .field("flash_version", &self.flash_version)
            .field("stop_commands", &self.stop_commands)
            .field("extra_connect_args", &self.extra_connect_args.len())
            .field("tls", &self.tls)
            .field("authmod", &self.authmod)
            .field("username", &self.username.as_ref().map(|_| "****"))
            .field("password", &self.password.as_ref().map(|_| "****"))
            .field("secure_token", &self.secure_token.as_ref().map(|_| "****"))
            .finish()
    }
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            publish_type: "live".into(),
            capabilities: ConnectCapabilities::default(),
            media: None,
            timeout: DEFAULT_TIMEOUT,
            chunk_size: DEFAULT_OUT_CHUNK_SIZE,
            flash_version: DEFAULT_FLASH_VERSION.into(),
            stop_commands: StopCommands::default(),
            extra_connect_args: Vec::new(),
            tls: TlsOptions::default(),
            authmod: AuthMod::Auto,
            username: None,
            password: None,
            secure_token: None,
        }
    }
}

/// The byte stream to the server: plain TCP or TLS over TCP.
#[derive(Debug)]
pub enum Stream {
    /// `rtmp://`.
    Tcp(TcpStream),
    /// `rtmps://`.
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    /// The TCP socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Tcp(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }

    /// The TCP socket underneath, mutably.
    pub fn tcp_mut(&mut self) -> &mut TcpStream {
        match self {
            Stream::Tcp(s) => s,
            Stream::Tls(s) => &mut s.sock,
        }
    }

    /// Writes all of `batch`: vectored writes on TCP; over TLS the batch's slices go straight
    /// into rustls and its records are sent as its buffer fills ([`tls::write_batch`], shared
    /// with the element). Fails with [`Error::TimedOut`] when nothing could be written for
    /// `timeout` (the socket's write timeout must be set, as [`establish`] does).
    pub fn write_batch(&mut self, batch: &mut ChunkBatch<'_>, timeout: Duration) -> Result<()> {
        const STEP: &str = "sending to the server";
        match self {
            Stream::Tcp(s) => batch
                .write_to(s)
                .map_err(|e| transport::stream_error(e, STEP, timeout)),
            Stream::Tls(s) => {
                let rustls::StreamOwned { conn, sock } = &mut **s;
                tls::write_batch(conn, sock, batch, timeout, &|| false).map_err(|e| match e {
                    tls::WriteError::Stalled(_) => Error::TimedOut {
                        step: STEP.into(),
                        timeout_ms: timeout.as_millis() as u64,
                    },
                    tls::WriteError::Cancelled => Error::Cancelled,
                    tls::WriteError::Io(e) => transport::stream_error(e, STEP, timeout),
                })
            }
        }
    }

    /// Ends the TLS session (close_notify) if there is one; plain TCP has nothing to do.
    pub fn send_close_notify(&mut self) {
        if let Stream::Tls(s) = self {
            s.conn.send_close_notify();
            let _ = s.conn.complete_io(&mut s.sock);
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf).map_err(tls::plain_io_error),
        }
    }
}

/// Plain byte writes (chunk batches go through [`Stream::write_batch`]). Over TLS each call
/// takes what rustls accepts, sending records to make room ([`tls::RecordWriter`]), and sends
/// the records it produced before returning.
impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[io::IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write_vectored(bufs),
            Stream::Tls(s) => {
                let rustls::StreamOwned { conn, sock } = &mut **s;
                let mut out = tls::RecordWriter::new(conn, sock);
                // Records left by an earlier failed call go first; nothing is taken on error.
                out.send_records()?;
                let n = out.write_vectored(bufs)?;
                // `n` bytes are taken whatever happens now; a failure shows on the next call.
                let _ = out.send_records();
                Ok(n)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Tls(s) => {
                let rustls::StreamOwned { conn, sock } = &mut **s;
                tls::RecordWriter::new(conn, sock).flush()
            }
        }
    }
}

/// A publish that has started: the stream, the core in `Publishing` state, and the events that
/// arrived on the way (including `Connected` and `Publishing`).
#[derive(Debug)]
pub struct Established {
    /// Connection to the server.
    pub stream: Stream,
    /// The publishing core.
    pub session: Session,
    /// Events seen while establishing, in order.
    pub events: VecDeque<ClientEvent>,
}

/// Connects to `url` and starts publishing. `cancelled` is polled at least every 100 ms; when it
/// returns true the attempt ends with [`Error::Cancelled`].
pub fn establish(
    url: &RtmpUrl,
    options: &ClientOptions,
    cancelled: &dyn Fn() -> bool,
) -> Result<Established> {
    let user = options.username.clone().or_else(|| url.username.clone());
    let password = options.password.clone().or_else(|| url.password.clone());
    let mut app_query: Option<String> = None;
    // With a known mode and a user, announce the user right away (saves one connection).
    if let (Some(u), AuthMod::Adobe | AuthMod::Llnw) = (&user, options.authmod) {
        app_query = Some(auth::user_query(options.authmod, u));
    }
    let mut last_error = None;
    for _ in 0..MAX_AUTH_ATTEMPTS {
        let err = match attempt(url, options, app_query.clone(), cancelled) {
            Ok(e) => return Ok(e),
            Err(e) => e,
        };
        let Error::ConnectRejected { description, .. } = &err else {
            return Err(err);
        };
        let Some(challenge) = auth::parse_rejection(description) else {
            return Err(err);
        };
        if options.authmod == AuthMod::None {
            return Err(Error::AuthenticationFailed(
                "the server requires authentication, but authmod is none; set authmod to auto."
                    .into(),
            ));
        }
        let (Some(u), Some(p)) = (&user, &password) else {
            return Err(Error::AuthenticationFailed(
                "the server requires a user name and password; put them in the URL \
                 (rtmp://user:pass@host/...) or set username and password."
                    .into(),
            ));
        };
        let mode_allowed = |m: AuthMod| options.authmod == AuthMod::Auto || options.authmod == m;
        app_query = Some(match challenge {
            Challenge::NeedUser(m) if mode_allowed(m) => auth::user_query(m, u),
            Challenge::Adobe {
                salt,
                challenge,
                opaque,
            } if mode_allowed(AuthMod::Adobe) => auth::adobe_query(
                u,
                p,
                &salt,
                challenge.as_deref(),
                opaque.as_deref(),
                &auth::client_nonce(seed()),
            ),
            Challenge::Llnw { nonce } if mode_allowed(AuthMod::Llnw) => {
                auth::llnw_query(u, p, &nonce, &url.app, &auth::client_nonce(seed()))
            }
            Challenge::Failed(r) => {
                return Err(Error::AuthenticationFailed(format!(
                    "{r}; check the user name and password."
                )));
            }
            other => {
                return Err(Error::AuthenticationFailed(format!(
                    "the server asks for {other}, but authmod is {}; set authmod to auto.",
                    options.authmod.as_str()
                )));
            }
        });
        last_error = Some(err);
    }
    Err(match last_error {
        Some(Error::ConnectRejected { description, .. }) => Error::AuthenticationFailed(format!(
            "the server kept rejecting the credentials ({description}); check the user name \
             and password."
        )),
        Some(e) => e,
        None => Error::AuthenticationFailed("no attempt was made.".into()),
    })
}

/// One connection: dial, TLS, handshake, connect, createStream, publish.
fn attempt(
    url: &RtmpUrl,
    options: &ClientOptions,
    app_query: Option<String>,
    cancelled: &dyn Fn() -> bool,
) -> Result<Established> {
    let deadline = Instant::now() + options.timeout;
    let tcp = transport::dial(url, options.timeout)?;
    if cancelled() {
        return Err(Error::Cancelled);
    }
    tcp.set_write_timeout(Some(options.timeout))?;
    let mut stream = match url.scheme {
        Scheme::Rtmp => Stream::Tcp(tcp),
        Scheme::Rtmps => {
            let config = tls::client_config(&options.tls)?;
            let left = deadline.saturating_duration_since(Instant::now());
            let tls_stream = tls::connect(tcp, &url.host, config, left)?;
            tls_stream.sock.set_write_timeout(Some(options.timeout))?;
            Stream::Tls(Box::new(tls_stream))
        }
    };
    let config = PublishConfig {
        publish_type: options.publish_type.clone(),
        flash_version: options.flash_version.clone(),
        capabilities: options.capabilities.clone(),
        media: options.media.clone(),
        chunk_size: options.chunk_size,
        extra_connect_args: options.extra_connect_args.clone(),
        stop_commands: options.stop_commands,
        handshake_epoch: 0,
        handshake_seed: seed(),
        app_query,
        secure_token: options.secure_token.clone().map(SecureToken::new),
        ..PublishConfig::new(url.clone())
    };
    let mut session = Session::new(config);
    let mut events = VecDeque::new();
    let mut buf = vec![0u8; READ_BUFFER];
    let mut batch = ChunkBatch::new();
    loop {
        if session.has_transmit() {
            session.drain_transmit(&mut batch);
            stream.write_batch(&mut batch, options.timeout)?;
        }
        events.extend(std::iter::from_fn(|| session.poll_event()));
        if session.state() == SessionState::Publishing {
            return Ok(Established {
                stream,
                session,
                events,
            });
        }
        let step = step_name(session.state());
        if cancelled() {
            return Err(Error::Cancelled);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::TimedOut {
                step: step.into(),
                timeout_ms: options.timeout.as_millis() as u64,
            });
        }
        stream.tcp().set_read_timeout(Some(left.min(READ_SLICE)))?;
        let n = match stream.read(&mut buf) {
            Ok(0) => return Err(Error::ConnectionClosed(format!(" while {step}"))),
            Ok(n) => n,
            Err(e) if transport::is_retryable(&e) => {
                continue;
            }
            Err(e) => {
                return Err(match &stream {
                    Stream::Tls(_) => tls::io_error(e, &url.host, options.timeout),
                    Stream::Tcp(_) => transport::stream_error(e, step, options.timeout),
                });
            }
        };
        session.handle_input(&buf[..n])?;
    }
}

/// What the publish is waiting for, for timeout messages.
pub fn step_name(state: SessionState) -> &'static str {
    match state {
        SessionState::Handshaking => "performing the RTMP handshake",
        SessionState::Connecting => "waiting for the answer to connect",
        SessionState::CreatingStream => "waiting for the answer to createStream",
        SessionState::StartingPublish => "waiting for NetStream.Publish.Start",
        SessionState::Publishing | SessionState::Closed => "publishing",
    }
}

/// Seed for handshake bytes and client nonces; it needs to vary, not to be unpredictable.
fn seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ (u64::from(std::process::id()) << 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_credentials() {
        let options = ClientOptions {
            username: Some("bob-the-user".into()),
            password: Some("hunter2-secret".into()),
            secure_token: Some("tea-key-secret".into()),
            extra_connect_args: vec![Amf0Value::String("token-abcdef".into())],
            ..ClientOptions::default()
        };
        let text = format!("{options:?}");
        for secret in [
            "bob-the-user",
            "hunter2-secret",
            "token-abcdef",
            "tea-key-secret",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(text.contains("password: Some(\"****\")"), "{text}");
    }
}
