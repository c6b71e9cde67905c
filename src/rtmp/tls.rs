//! TLS for `rtmps://` through rustls (ring provider): certificates verified against the system
//! trust store plus optional PEM trust anchors, SNI from the URL host, and checks relaxed only
//! when asked explicitly.

use std::io;
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

use super::error::{Error, Result};

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
        .map_err(|e| Error::Tls(e.to_string()))?;
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
    ClientConnection::new(config, name).map_err(|e| Error::Tls(e.to_string()))
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
    if let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return describe(tls, host);
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

/// Words a rustls error for the user.
pub fn describe(e: &rustls::Error, host: &str) -> Error {
    let text = match e {
        rustls::Error::InvalidCertificate(ce) => match ce {
            CertificateError::UnknownIssuer => format!(
                "the certificate of {host} is not signed by a trusted authority (unknown CA); add the CA with tls-ca-file"
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!("the certificate of the server is not valid for the host name {host}")
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                format!("the certificate of {host} has expired")
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                format!("the certificate of {host} is not valid yet")
            }
            CertificateError::Revoked => format!("the certificate of {host} is revoked"),
            other => format!("the certificate of {host} is invalid: {other:?}"),
        },
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            format!("{host} did not answer with TLS ({e}); is it a plain rtmp:// server?")
        }
        other => format!("TLS with {host} failed: {other}"),
    };
    Error::Tls(text)
}

/// Standard verification, except for the checks the user turned off.
#[derive(Debug)]
struct RelaxedVerifier {
    inner: Arc<WebPkiServerVerifier>,
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
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| Error::Tls(e.to_string()))?;
        Ok(RelaxedVerifier { inner, checks })
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
                // Chain errors stop webpki before the name check: do it here if still wanted.
                if Self::check_of(&ce) != CHECK_BAD_IDENTITY
                    && self.checks & CHECK_BAD_IDENTITY != 0
                {
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
