//! TLS for `rtmps://` through rustls (ring provider): certificates verified against the system
//! trust store plus optional PEM trust anchors, SNI from the URL host, and checks relaxed only
//! when asked explicitly; the encrypted write path shared by [`crate::rtmp::RtmpClient`] and the
//! `rtmpclientsink` element ([`write_batch`]); and error texts a person can act on
//! ([`describe`]).
//!
//! # Writing
//!
//! rustls encrypts plaintext into TLS records as soon as it is handed over, and refuses more
//! once its pending output reaches its buffer limit (64 KiB by default). [`write_batch`] hands it
//! the chunk batch's slices directly (headers and borrowed payload, no copy before the one into
//! the records) and sends the records to the socket whenever rustls is full, so a message of any
//! size goes out with at most the buffer limit of TLS output pending.

use std::io::{self, IoSlice, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, verify_server_name};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore,
};

use super::chunk::ChunkBatch;
use super::error::{Error, Result};
use super::transport::is_retryable;

/// Check: the certificate chains to a trusted authority.
pub const CHECK_UNKNOWN_CA: u32 = 1 << 0;
/// Check: the certificate is valid for the host name of the URL.
pub const CHECK_BAD_IDENTITY: u32 = 1 << 1;
/// Check: the certificate's validity period has started.
pub const CHECK_NOT_ACTIVATED: u32 = 1 << 2;
/// Check: the certificate has not expired.
pub const CHECK_EXPIRED: u32 = 1 << 3;
/// Check: the certificate is not revoked.
pub const CHECK_REVOKED: u32 = 1 << 4;
/// Check: the certificate is not otherwise invalid (bad signature, wrong usage, ...).
pub const CHECK_GENERIC_ERROR: u32 = 1 << 6;
/// Every check (the default). Same bit values as GLib's `GTlsCertificateFlags`.
pub const CHECK_ALL: u32 = CHECK_UNKNOWN_CA
    | CHECK_BAD_IDENTITY
    | CHECK_NOT_ACTIVATED
    | CHECK_EXPIRED
    | CHECK_REVOKED
    | CHECK_GENERIC_ERROR;

/// How TLS connections verify the server.
#[derive(Debug, Clone)]
pub struct TlsOptions {
    /// Extra trust anchors (PEM file with one or more CA certificates).
    pub ca_file: Option<PathBuf>,
    /// Trust the operating system's certificate store.
    pub use_system_roots: bool,
    /// Which checks are enforced ([`CHECK_ALL`] by default); clearing bits relaxes them.
    pub checks: u32,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions {
            ca_file: None,
            use_system_roots: true,
            checks: CHECK_ALL,
        }
    }
}

/// Builds the rustls client configuration for `options`.
pub fn client_config(options: &TlsOptions) -> Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    if options.use_system_roots {
        // Unreadable system certificates are skipped: a CA file may still make trust possible.
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
    }
    if let Some(path) = &options.ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| Error::Tls(format!("cannot read CA file {}: {e}", path.display())))?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::Tls(format!("cannot parse CA file {}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(Error::Tls(format!(
                "CA file {} holds no PEM certificate",
                path.display()
            )));
        }
        let (_, bad) = roots.add_parsable_certificates(certs);
        if bad > 0 {
            return Err(Error::Tls(format!(
                "CA file {} holds {bad} certificate(s) that are not valid CA certificates",
                path.display()
            )));
        }
    }
    let relaxed = options.checks & CHECK_ALL != CHECK_ALL;
    if roots.is_empty() && options.checks & CHECK_UNKNOWN_CA != 0 {
        return Err(Error::Tls(
            "no trusted certificates: install the system CA certificates or set a CA file".into(),
        ));
    }
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(sentence(&e, "the server")))?;
    let config = if relaxed {
        let verifier = RelaxedVerifier::new(roots, provider, options.checks)?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth()
    } else {
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(Arc::new(config))
}

/// Performs the TLS handshake on `tcp` for `host` (SNI and certificate name) within `timeout`.
pub fn connect(
    mut tcp: TcpStream,
    host: &str,
    config: Arc<ClientConfig>,
    timeout: Duration,
) -> Result<rustls::StreamOwned<ClientConnection, TcpStream>> {
    let mut conn = new_connection(host, config)?;
    let deadline = Instant::now() + timeout;
    while conn.is_handshaking() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(handshake_timeout(timeout));
        }
        tcp.set_read_timeout(Some(left))?;
        tcp.set_write_timeout(Some(left))?;
        match conn.complete_io(&mut tcp) {
            Ok((0, 0)) if conn.is_handshaking() => {
                return Err(Error::Tls(
                    "the server closed the connection during the TLS handshake; is it an rtmps server?"
                        .into(),
                ));
            }
            Ok(_) => {}
            Err(e) => return Err(io_error(e, host, timeout)),
        }
    }
    Ok(rustls::StreamOwned::new(conn, tcp))
}

/// A client connection for `host` (for drivers that move the TLS bytes themselves).
pub fn new_connection(host: &str, config: Arc<ClientConfig>) -> Result<ClientConnection> {
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| Error::Tls(format!("'{host}' is not a valid TLS server name")))?;
    ClientConnection::new(config, name).map_err(|e| describe(&e, host))
}

fn handshake_timeout(timeout: Duration) -> Error {
    Error::TimedOut {
        step: "performing the TLS handshake (is the server really rtmps? plain rtmp servers do not answer TLS)".into(),
        timeout_ms: timeout.as_millis() as u64,
    }
}

/// Maps an I/O error of a TLS connection to the error a user can act on.
pub fn io_error(e: io::Error, host: &str, timeout: Duration) -> Error {
    if matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    ) {
        return handshake_timeout(timeout);
    }
    if let Some(inner) = e.get_ref() {
        if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
            return describe(tls, host);
        }
        if let Some(d) = inner.downcast_ref::<Described>() {
            return describe(&d.source, host);
        }
    }
    match e.kind() {
        // A plain RTMP server drops a connection whose first bytes are a TLS ClientHello.
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => Error::Tls(format!(
            "{host} closed the connection during the TLS handshake ({e}); is it a plain rtmp:// server?"
        )),
        _ => Error::Io(e),
    }
}

/// Why a write of a chunk batch did not complete.
#[derive(Debug)]
pub enum WriteError {
    /// The caller asked to stop (its `cancelled` turned true).
    Cancelled,
    /// No byte could be handed on for the whole stall timeout: the server or the network is
    /// dead. Carries how long nothing moved.
    Stalled(Duration),
    /// The socket (or TLS) failed.
    Io(io::Error),
}

/// Plaintext in, TLS records out: a [`Write`] whose `write_vectored` hands the slices to rustls
/// and, whenever rustls' output buffer is full, first sends the pending records to `sock`.
/// Socket errors (including `WouldBlock`/`TimedOut`) come back unchanged with no plaintext
/// taken, so the caller can retry; [`RecordWriter::send_records`] sends what is still pending.
#[derive(Debug)]
pub struct RecordWriter<'a, S: Write> {
    conn: &'a mut ClientConnection,
    sock: &'a mut S,
    sent: u64,
}

impl<'a, S: Write> RecordWriter<'a, S> {
    /// Writes through `conn` onto `sock`.
    pub fn new(conn: &'a mut ClientConnection, sock: &'a mut S) -> Self {
        RecordWriter {
            conn,
            sock,
            sent: 0,
        }
    }

    /// TLS bytes written to the socket so far (progress for stall detection).
    pub fn bytes_sent(&self) -> u64 {
        self.sent
    }

    /// Writes the pending TLS records to the socket until none is left or the socket fails.
    pub fn send_records(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            match self.conn.write_tls(self.sock) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "the socket accepted no TLS bytes",
                    ));
                }
                Ok(n) => self.sent += n as u64,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl<S: Write> Write for RecordWriter<'_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        loop {
            let n = self.conn.writer().write_vectored(bufs)?;
            if n > 0 || bufs.iter().all(|b| b.is_empty()) {
                return Ok(n);
            }
            if !self.conn.wants_write() {
                // Refused with nothing to send: TLS is closed for writing. `Ok(0)` tells the
                // caller (`ChunkBatch::write_to` reports `WriteZero`).
                return Ok(0);
            }
            // Full: make room by sending the records.
            self.send_records()?;
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_records()?;
        self.sock.flush()
    }
}

/// Encrypts what is left of `batch` and writes it to `sock`, TLS records flushed as rustls'
/// output buffer fills (see the module documentation), and returns once every record is on the
/// socket. `sock` should have a write timeout: each time a socket write times out (or would
/// block), `cancelled()` is asked and the stall clock is checked. The write gives up with
/// [`WriteError::Stalled`] when neither plaintext nor TLS bytes moved for `stall_timeout`.
/// After an error the batch keeps what was not handed to rustls yet; the TLS stream itself is
/// then only good for closing.
pub fn write_batch<S: Write>(
    conn: &mut ClientConnection,
    sock: &mut S,
    batch: &mut ChunkBatch<'_>,
    stall_timeout: Duration,
    cancelled: &dyn Fn() -> bool,
) -> std::result::Result<(), WriteError> {
    let mut out = RecordWriter::new(conn, sock);
    let progress =
        |out: &RecordWriter<'_, S>, batch: &ChunkBatch<'_>| (batch.remaining(), out.bytes_sent());
    let mut seen = progress(&out, batch);
    let mut last_progress = Instant::now();
    loop {
        match batch.write_to(&mut out).and_then(|()| out.send_records()) {
            Ok(()) => return Ok(()),
            Err(e) if is_retryable(&e) => {
                let now = progress(&out, batch);
                if now != seen {
                    seen = now;
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
}

/// An I/O error of an established TLS stream with rustls' own text (which may hold Rust
/// identifiers) replaced by [`describe`]'s words; other errors unchanged. [`io_error`] still
/// finds the rustls error inside.
pub fn plain_io_error(e: io::Error) -> io::Error {
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(tls) => io::Error::new(
            e.kind(),
            Described {
                text: sentence(tls, "the server"),
                source: tls.clone(),
            },
        ),
        None => e,
    }
}

/// A rustls error with the sentence that describes it.
#[derive(Debug)]
struct Described {
    text: String,
    source: rustls::Error,
}

impl std::fmt::Display for Described {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for Described {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Words a rustls error for the user: what went wrong with `host`, and what to do about it.
pub fn describe(e: &rustls::Error, host: &str) -> Error {
    Error::Tls(sentence(e, host))
}

/// The sentence [`describe`] wraps. Built from our own words for every variant we know, and
/// from rustls' Display text only for variants added later; never from Debug output.
fn sentence(e: &rustls::Error, host: &str) -> String {
    use rustls::Error as E;
    match e {
        E::InvalidCertificate(ce) => certificate_sentence(ce, host),
        E::InvalidMessage(_)
        | E::InappropriateMessage { .. }
        | E::InappropriateHandshakeMessage { .. } => {
            format!(
                "{host} did not answer with valid TLS; is it a plain rtmp:// server? Use rtmp:// \
                 for it, or the port of its rtmps front end"
            )
        }
        E::NoCertificatesPresented => {
            format!("{host} sent no certificate; the TLS server must be configured with one")
        }
        E::UnsupportedNameType => {
            format!("{host} cannot be used as a TLS server name; use the server's DNS name")
        }
        E::DecryptError => format!(
            "a TLS record from {host} could not be decrypted: the data was corrupted on the way \
             or the server's TLS is broken"
        ),
        E::EncryptError => format!("encrypting data for {host} failed; reconnect"),
        E::PeerIncompatible(p) => incompatible_sentence(p, host),
        E::PeerMisbehaved(_) => format!(
            "{host} broke the TLS protocol; check the server's TLS software and any proxy in \
             between"
        ),
        E::AlertReceived(alert) => alert_sentence(*alert, host),
        E::InvalidCertRevocationList(_) => {
            format!("a certificate revocation list used to check {host} is invalid; replace it")
        }
        E::General(text) => format!("TLS with {host} failed: {text}"),
        E::FailedToGetCurrentTime => format!(
            "this machine's clock could not be read, so the certificate of {host} cannot be \
             checked"
        ),
        E::FailedToGetRandomBytes => {
            "the operating system gave no random numbers, which TLS needs".to_string()
        }
        E::HandshakeNotComplete => {
            format!("the TLS handshake with {host} did not complete; reconnect")
        }
        E::PeerSentOversizedRecord => format!(
            "{host} sent a TLS record larger than TLS allows; check the server's TLS software"
        ),
        E::NoApplicationProtocol => {
            format!("{host} accepts none of the application protocols offered (ALPN)")
        }
        E::BadMaxFragmentSize => "the TLS maximum fragment size is out of range".to_string(),
        E::InconsistentKeys(_) => "the TLS private key does not match its certificate".to_string(),
        E::InvalidEncryptedClientHello(_) => {
            format!("{host} rejected the encrypted client hello")
        }
        other => format!("TLS with {host} failed: {}", readable(&other.to_string())),
    }
}

fn certificate_sentence(ce: &CertificateError, host: &str) -> String {
    use CertificateError as C;
    let what = match ce {
        C::UnknownIssuer => format!(
            "the certificate of {host} is not signed by a trusted authority (unknown CA); add \
             the CA with tls-ca-file"
        ),
        C::NotValidForName => format!(
            "the certificate of the server is not valid for the host name {host}; connect with \
             a name the certificate lists, or give the server a certificate whose \
             subjectAltName includes {host}"
        ),
        C::NotValidForNameContext { presented, .. } => {
            let names = if presented.is_empty() {
                "it lists no names in subjectAltName".to_string()
            } else {
                let names: Vec<String> = presented.iter().map(|n| presented_name(n)).collect();
                format!("it is valid for {} only", names.join(", "))
            };
            format!(
                "the certificate of the server is not valid for the host name {host} ({names}); \
                 connect with a name the certificate lists, or give the server a certificate \
                 whose subjectAltName includes {host}"
            )
        }
        C::Expired => format!(
            "the certificate of {host} has expired; renew it on the server, or check this \
             machine's clock"
        ),
        C::ExpiredContext { not_after, .. } => format!(
            "the certificate of {host} has expired (it was valid until {}); renew it on the \
             server, or check this machine's clock",
            utc_date(not_after.as_secs())
        ),
        C::NotValidYet => {
            format!("the certificate of {host} is not valid yet; check this machine's clock")
        }
        C::NotValidYetContext { not_before, .. } => format!(
            "the certificate of {host} is not valid yet (it is valid from {}); check this \
             machine's clock",
            utc_date(not_before.as_secs())
        ),
        C::Revoked => format!(
            "the certificate of {host} is revoked by its authority; the server needs a new one"
        ),
        C::UnknownRevocationStatus => {
            format!("the revocation status of the certificate of {host} is unknown")
        }
        C::ExpiredRevocationList | C::ExpiredRevocationListContext { .. } => {
            format!("a certificate revocation list used to check {host} has expired; update it")
        }
        C::BadEncoding => format!(
            "the certificate of {host} is malformed (not valid DER); the server must send a \
             correctly encoded X.509 certificate"
        ),
        C::BadSignature => format!(
            "the signature on the certificate of {host} does not verify: it was not signed by \
             the CA it names (is tls-ca-file the right CA?) or it was altered"
        ),
        // Still produced by rustls for webpki's older, context-free errors.
        #[allow(deprecated)]
        C::UnsupportedSignatureAlgorithm
        | C::UnsupportedSignatureAlgorithmContext { .. }
        | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => format!(
            "the certificate of {host} is signed with an algorithm this client does not \
             accept; sign it with RSA and SHA-256 or better, ECDSA P-256/P-384, or Ed25519"
        ),
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => format!(
            "the certificate of {host} is not meant for TLS servers; issue it with \
             extendedKeyUsage=serverAuth"
        ),
        C::UnhandledCriticalExtension => critical_extension(host),
        C::InvalidOcspResponse => {
            format!("{host} sent an invalid OCSP response for its certificate")
        }
        C::ApplicationVerificationFailure => {
            format!("the certificate of {host} was refused by a custom check")
        }
        C::Other(other) => match other.0.downcast_ref::<webpki::Error>() {
            Some(w) => webpki_sentence(w, host),
            None => format!(
                "the certificate of {host} is invalid: {}",
                readable(&other.to_string())
            ),
        },
        other => format!(
            "the certificate of {host} is invalid: {}",
            readable(&other.to_string())
        ),
    };
    let bit = RelaxedVerifier::check_of(ce);
    format!(
        "{what}. To accept it anyway (this removes that protection), leave bit {bit} out of \
         tls-validation-flags, e.g. tls-validation-flags={}",
        CHECK_ALL & !bit
    )
}

/// Certificate errors that rustls passes on from webpki without a variant of its own.
fn webpki_sentence(e: &webpki::Error, host: &str) -> String {
    use webpki::Error as W;
    let san = if host.parse::<std::net::IpAddr>().is_ok() {
        format!("IP:{host}")
    } else {
        format!("DNS:{host}")
    };
    match e {
        W::CaUsedAsEndEntity => format!(
            "the certificate of {host} is a CA certificate (basicConstraints CA:TRUE) used as \
             the server certificate, which TLS does not allow; openssl req -x509 makes such \
             certificates by default. Make a CA and sign a server certificate with \
             basicConstraints CA:FALSE with it, for example: openssl req -x509 -newkey \
             rsa:2048 -nodes -keyout ca.key -out ca.pem -subj /CN=MyCA, then openssl req \
             -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN={host}, then \
             openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -out server.pem -days \
             365 -extfile server.ext where server.ext holds the lines \
             basicConstraints=CA:FALSE and subjectAltName={san}; serve server.pem and \
             server.key, and give ca.pem as tls-ca-file"
        ),
        W::EndEntityUsedAsCa => format!(
            "the certificate chain of {host} uses a certificate that is not a CA (CA:FALSE) to \
             sign another; the server certificate must be signed by a CA certificate"
        ),
        W::PathLenConstraintViolated | W::MaximumPathDepthExceeded => format!(
            "the certificate chain of {host} is longer than its CA allows; the server should \
             send a shorter chain"
        ),
        W::NameConstraintViolation => format!(
            "the certificate of {host} names a host its CA may not certify (name constraints)"
        ),
        W::UnsupportedCertVersion => {
            format!("the certificate of {host} is not an X.509 version 3 certificate")
        }
        W::UnsupportedCriticalExtension => critical_extension(host),
        W::CertDistrusted => {
            format!("the authority that signed the certificate of {host} is no longer trusted")
        }
        W::MaximumSignatureChecksExceeded
        | W::MaximumPathBuildCallsExceeded
        | W::MaximumNameConstraintComparisonsExceeded => format!(
            "the certificate chain of {host} is too complex to verify; the server should send \
             only its certificate and the intermediates that lead to its CA"
        ),
        W::UnsupportedNameType
        | W::MalformedDnsIdentifier
        | W::MalformedNameConstraint
        | W::InvalidNetworkMaskConstraint => format!(
            "the names in the certificate chain of {host} are malformed; reissue the \
             certificate"
        ),
        W::BadDer
        | W::BadDerTime
        | W::TrailingData(_)
        | W::MalformedExtensions
        | W::ExtensionValueInvalid
        | W::EmptyEkuExtension
        | W::InvalidSerialNumber
        | W::SignatureAlgorithmMismatch
        | W::InvalidCertValidity => format!(
            "the certificate of {host} is malformed; reissue it with a standard tool such as \
             openssl"
        ),
        other => format!(
            "the certificate of {host} is invalid: {}",
            readable(&other.to_string())
        ),
    }
}

fn critical_extension(host: &str) -> String {
    format!(
        "the certificate of {host} has a critical extension this client does not understand; \
         reissue it without that extension"
    )
}

fn incompatible_sentence(p: &rustls::PeerIncompatible, host: &str) -> String {
    use rustls::PeerIncompatible as P;
    match p {
        P::ServerDoesNotSupportTls12Or13 | P::ServerTlsVersionIsDisabledByOurConfig => {
            format!("{host} offers neither TLS 1.2 nor TLS 1.3; enable one of them on the server")
        }
        P::ExtendedMasterSecretExtensionRequired => format!(
            "{host} offers TLS 1.2 without the extended master secret (RFC 7627), which this \
             client requires; enable it or TLS 1.3 on the server"
        ),
        _ => format!(
            "{host} and this client have no TLS version, cipher suite or key exchange in \
             common; the server should offer TLS 1.2 or 1.3 with ECDHE and AES-GCM or \
             ChaCha20-Poly1305"
        ),
    }
}

fn alert_sentence(alert: rustls::AlertDescription, host: &str) -> String {
    use rustls::AlertDescription as A;
    match alert {
        A::HandshakeFailure | A::InsufficientSecurity => format!(
            "{host} refused the TLS handshake: no cipher suite or parameters in common with this \
             client"
        ),
        A::ProtocolVersion => {
            format!("{host} refused the TLS version; this client speaks TLS 1.2 and 1.3")
        }
        A::UnrecognisedName => format!(
            "{host} does not serve the host name {host} (SNI); use the name the server is \
             configured for"
        ),
        A::CertificateRequired
        | A::BadCertificate
        | A::UnsupportedCertificate
        | A::CertificateUnknown
        | A::NoCertificate => {
            format!("{host} wants a client certificate, which this client does not send")
        }
        A::AccessDenied => format!("{host} denied access at the TLS level"),
        A::InternalError => format!("{host} reported an internal TLS error; retry later"),
        A::CloseNotify | A::UserCanceled => format!("{host} closed the TLS session"),
        A::DecodeError
        | A::IllegalParameter
        | A::UnexpectedMessage
        | A::BadRecordMac
        | A::DecryptError
        | A::RecordOverflow => format!(
            "{host} could not understand this client's TLS messages; check any proxy in between"
        ),
        other => format!(
            "{host} ended the TLS session with alert number {}",
            u8::from(other)
        ),
    }
}

/// A name from the certificate as webpki lists it (`DnsName("a.example")`, `IpAddress(10.0.0.1)`).
fn presented_name(name: &str) -> String {
    for (prefix, suffix) in [
        ("DnsName(\"", "\")"),
        ("IpAddress(", ")"),
        ("UniformResourceIdentifier(\"", "\")"),
    ] {
        if let Some(inner) = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(suffix))
        {
            return inner.to_string();
        }
    }
    readable(name)
}

/// Display text of errors we have no words for, with Rust identifiers (`CamelCase`,
/// `Path::Like`, brackets) turned into plain lowercase words.
fn readable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut prev_lower = false;
    for c in text.chars() {
        match c {
            '(' | ')' | '{' | '}' | '[' | ']' | ':' | '"' | '`' => {
                prev_lower = false;
                out.push(' ');
            }
            c if c.is_ascii_uppercase() => {
                if prev_lower {
                    out.push(' ');
                }
                out.push(c.to_ascii_lowercase());
                prev_lower = false;
            }
            c => {
                out.push(c);
                prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
            }
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `YYYY-MM-DD HH:MM UTC` for seconds since the Unix epoch.
fn utc_date(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (proleptic Gregorian), Howard Hinnant's algorithm, for days >= 0.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// Standard verification, except for the checks the user turned off.
///
/// webpki stops at the first problem it finds, before it has checked the rest. So when a
/// relaxed problem is not the CA check itself but the CA check is still wanted, trust is
/// established separately: the server's key is a trusted one (a self-signed certificate given
/// as the CA file; the handshake proved the server holds that key), or, for a validity-period
/// problem, the whole chain verifies at the edge of the period. Otherwise the certificate is
/// refused as not signed by a trusted authority.
#[derive(Debug)]
struct RelaxedVerifier {
    inner: Arc<WebPkiServerVerifier>,
    roots: Arc<RootCertStore>,
    checks: u32,
}

impl RelaxedVerifier {
    fn new(
        roots: RootCertStore,
        provider: Arc<rustls::crypto::CryptoProvider>,
        checks: u32,
    ) -> Result<Self> {
        let mut roots = roots;
        if roots.is_empty() {
            // The builder insists on an anchor; with CA checking off none will be needed.
            roots = RootCertStore::empty();
            roots.roots.push(placeholder_anchor());
        }
        let roots = Arc::new(roots);
        let inner = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider)
            .build()
            .map_err(|e| {
                Error::Tls(format!(
                    "cannot set up certificate verification: {}",
                    readable(&e.to_string())
                ))
            })?;
        Ok(RelaxedVerifier {
            inner,
            roots,
            checks,
        })
    }

    /// After webpki stopped at the relaxed problem `ce`: is the chain still trusted? See the
    /// type's documentation.
    fn chain_trusted(
        &self,
        ce: &CertificateError,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
    ) -> bool {
        let own_key_trusted = webpki::anchor_from_trusted_cert(end_entity).is_ok_and(|own| {
            self.roots
                .roots
                .iter()
                .any(|a| a.subject_public_key_info == own.subject_public_key_info)
        });
        if own_key_trusted {
            return true;
        }
        let edge = match ce {
            CertificateError::ExpiredContext { not_after, .. } => *not_after,
            CertificateError::NotValidYetContext { not_before, .. } => *not_before,
            _ => return false,
        };
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            edge,
        ) {
            Ok(_) => true,
            // The name is judged separately, after this.
            Err(rustls::Error::InvalidCertificate(e)) => Self::check_of(&e) == CHECK_BAD_IDENTITY,
            Err(_) => false,
        }
    }

    fn check_of(e: &CertificateError) -> u32 {
        match e {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => CHECK_UNKNOWN_CA,
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                CHECK_BAD_IDENTITY
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                CHECK_NOT_ACTIVATED
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => CHECK_EXPIRED,
            CertificateError::Revoked => CHECK_REVOKED,
            _ => CHECK_GENERIC_ERROR,
        }
    }
}

/// A syntactically valid trust anchor that matches no real certificate.
fn placeholder_anchor() -> rustls::pki_types::TrustAnchor<'static> {
    rustls::pki_types::TrustAnchor {
        subject: rustls::pki_types::Der::from_slice(&[0x30, 0x00]),
        subject_public_key_info: rustls::pki_types::Der::from_slice(&[0x30, 0x00]),
        name_constraints: None,
    }
}

impl ServerCertVerifier for RelaxedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(v) => Ok(v),
            Err(rustls::Error::InvalidCertificate(ce))
                if self.checks & Self::check_of(&ce) == 0 =>
            {
                let check = Self::check_of(&ce);
                // webpki judges the name only after the chain verified.
                if check != CHECK_UNKNOWN_CA
                    && check != CHECK_BAD_IDENTITY
                    && self.checks & CHECK_UNKNOWN_CA != 0
                    && !self.chain_trusted(
                        &ce,
                        end_entity,
                        intermediates,
                        server_name,
                        ocsp_response,
                    )
                {
                    return Err(CertificateError::UnknownIssuer.into());
                }
                // Chain errors stop webpki before the name check: do it here if still wanted.
                if check != CHECK_BAD_IDENTITY && self.checks & CHECK_BAD_IDENTITY != 0 {
                    let cert = ParsedCertificate::try_from(end_entity)?;
                    verify_server_name(&cert, server_name)?;
                }
                Ok(ServerCertVerified::assertion())
            }
            Err(e) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::OtherError;

    /// Rust identifiers a Debug dump would show: `CamelCase` words and paths.
    fn debug_marks(text: &str) -> Vec<String> {
        // Names from openssl's configuration syntax that the texts quote on purpose.
        const QUOTED: &[&str] = &[
            "basicConstraints",
            "subjectAltName",
            "extendedKeyUsage",
            "serverAuth",
            "MyCA",
            "ChaCha20-Poly1305",
        ];
        let mut marks: Vec<String> = text
            .split(|c: char| c.is_whitespace() || ",;.()=/".contains(c))
            .filter(|w| !QUOTED.contains(w))
            .filter(|w| {
                let b = w.as_bytes();
                b.windows(2)
                    .any(|p| p[0].is_ascii_lowercase() && p[1].is_ascii_uppercase())
            })
            .map(str::to_string)
            .collect();
        for token in ["::", "{", "}", "Some(", "Other(", "\""] {
            if text.contains(token) {
                marks.push(token.to_string());
            }
        }
        marks
    }

    fn other(e: webpki::Error) -> rustls::Error {
        CertificateError::Other(OtherError(Arc::new(e))).into()
    }

    #[allow(deprecated)]
    fn every_error() -> Vec<rustls::Error> {
        use CertificateError as C;
        let t = UnixTime::since_unix_epoch(Duration::from_secs(1_577_923_200));
        let mut v: Vec<rustls::Error> = [
            C::BadEncoding,
            C::Expired,
            C::ExpiredContext {
                time: t,
                not_after: t,
            },
            C::NotValidYet,
            C::NotValidYetContext {
                time: t,
                not_before: t,
            },
            C::Revoked,
            C::UnhandledCriticalExtension,
            C::UnknownIssuer,
            C::UnknownRevocationStatus,
            C::ExpiredRevocationList,
            C::BadSignature,
            C::UnsupportedSignatureAlgorithm,
            C::NotValidForName,
            C::NotValidForNameContext {
                expected: ServerName::try_from("localhost").unwrap(),
                presented: vec![
                    "DnsName(\"other.example\")".into(),
                    "IpAddress(10.0.0.1)".into(),
                    "DirectoryName".into(),
                ],
            },
            C::InvalidPurpose,
            C::InvalidOcspResponse,
            C::ApplicationVerificationFailure,
            C::Other(OtherError(Arc::new(io::Error::other(
                "SomeThing went wrong",
            )))),
        ]
        .into_iter()
        .map(rustls::Error::from)
        .collect();
        v.extend(
            [
                webpki::Error::CaUsedAsEndEntity,
                webpki::Error::EndEntityUsedAsCa,
                webpki::Error::PathLenConstraintViolated,
                webpki::Error::NameConstraintViolation,
                webpki::Error::UnsupportedCertVersion,
                webpki::Error::UnsupportedCriticalExtension,
                webpki::Error::CertDistrusted,
                webpki::Error::MaximumPathBuildCallsExceeded,
                webpki::Error::MalformedDnsIdentifier,
                webpki::Error::MalformedExtensions,
                webpki::Error::InvalidSerialNumber,
                webpki::Error::UnsupportedCrlVersion,
            ]
            .into_iter()
            .map(other),
        );
        v.extend([
            rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType),
            rustls::Error::NoCertificatesPresented,
            rustls::Error::UnsupportedNameType,
            rustls::Error::DecryptError,
            rustls::Error::EncryptError,
            rustls::Error::PeerIncompatible(rustls::PeerIncompatible::NoCipherSuitesInCommon),
            rustls::Error::PeerIncompatible(
                rustls::PeerIncompatible::ServerDoesNotSupportTls12Or13,
            ),
            rustls::Error::PeerMisbehaved(rustls::PeerMisbehaved::IncorrectBinder),
            rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure),
            rustls::Error::AlertReceived(rustls::AlertDescription::UnrecognisedName),
            rustls::Error::AlertReceived(rustls::AlertDescription::NoApplicationProtocol),
            rustls::Error::General("the thing failed".into()),
            rustls::Error::FailedToGetCurrentTime,
            rustls::Error::FailedToGetRandomBytes,
            rustls::Error::HandshakeNotComplete,
            rustls::Error::PeerSentOversizedRecord,
            rustls::Error::NoApplicationProtocol,
            rustls::Error::BadMaxFragmentSize,
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch),
            rustls::Error::Other(OtherError(Arc::new(io::Error::other("BadThing(Inner)")))),
        ]);
        v
    }

    #[test]
    fn every_error_reads_as_a_sentence_without_debug_text() {
        for e in every_error() {
            let text = describe(&e, "stream.example").to_string();
            assert!(
                debug_marks(&text).is_empty(),
                "Debug text {:?} in: {text}",
                debug_marks(&text)
            );
        }
    }

    #[test]
    fn certificate_errors_name_the_bit_that_relaxes_them() {
        for e in every_error() {
            let rustls::Error::InvalidCertificate(ce) = &e else {
                continue;
            };
            let bit = RelaxedVerifier::check_of(ce);
            let text = describe(&e, "h").to_string();
            assert!(
                text.contains(&format!("leave bit {bit} out of tls-validation-flags"))
                    && text.contains(&format!("tls-validation-flags={}", CHECK_ALL & !bit)),
                "{text}"
            );
        }
    }

    #[test]
    fn ca_used_as_server_certificate_says_what_to_do() {
        let text = describe(&other(webpki::Error::CaUsedAsEndEntity), "10.0.0.1").to_string();
        for expect in [
            "is a CA certificate (basicConstraints CA:TRUE) used as the server certificate",
            "basicConstraints=CA:FALSE",
            "subjectAltName=IP:10.0.0.1",
            "give ca.pem as tls-ca-file",
            "leave bit 64 out of tls-validation-flags, e.g. tls-validation-flags=31",
        ] {
            assert!(text.contains(expect), "expected '{expect}' in: {text}");
        }
        let named = describe(&other(webpki::Error::CaUsedAsEndEntity), "localhost").to_string();
        assert!(named.contains("subjectAltName=DNS:localhost"), "{named}");
    }

    #[test]
    fn wrong_name_lists_the_names_of_the_certificate() {
        let e: rustls::Error = CertificateError::NotValidForNameContext {
            expected: ServerName::try_from("localhost").unwrap(),
            presented: vec![
                "DnsName(\"a.example\")".into(),
                "IpAddress(10.0.0.1)".into(),
            ],
        }
        .into();
        let text = describe(&e, "localhost").to_string();
        assert!(
            text.contains(
                "not valid for the host name localhost (it is valid for a.example, 10.0.0.1 only)"
            ),
            "{text}"
        );
    }

    #[test]
    fn io_errors_carry_the_sentence() {
        let e = io::Error::new(io::ErrorKind::InvalidData, rustls::Error::DecryptError);
        let plain = plain_io_error(e);
        assert_eq!(plain.kind(), io::ErrorKind::InvalidData);
        assert!(
            plain
                .to_string()
                .starts_with("a TLS record from the server could not be decrypted")
        );
        let again = io_error(plain, "stream.example", Duration::from_secs(1)).to_string();
        assert!(again.contains("from stream.example could not"), "{again}");
        let other = plain_io_error(io::Error::other("x"));
        assert_eq!(other.to_string(), "x");
    }

    #[test]
    fn expiry_shows_the_date() {
        let e: rustls::Error = CertificateError::ExpiredContext {
            time: UnixTime::since_unix_epoch(Duration::from_secs(1_700_000_000)),
            not_after: UnixTime::since_unix_epoch(Duration::from_secs(1_577_923_200)),
        }
        .into();
        let text = describe(&e, "h").to_string();
        assert!(
            text.contains("has expired (it was valid until 2020-01-02 00:00 UTC)"),
            "{text}"
        );
    }

    #[test]
    fn readable_turns_identifiers_into_words() {
        assert_eq!(
            readable("Other(OtherError(CaUsedAsEndEntity))"),
            "other other error ca used as end entity"
        );
        assert_eq!(
            readable("peer misbehaved: IncorrectBinder"),
            "peer misbehaved incorrect binder"
        );
        assert_eq!(readable("plain words stay"), "plain words stay");
    }
}
