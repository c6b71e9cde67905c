//! Test PKI with the `openssl` CLI: a throwaway CA and a server certificate whose
//! subjectAltName lists the given hosts (IP addresses become `IP:`, names `DNS:`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::util::require_binary;

/// Paths of the generated PEM files.
#[derive(Debug, Clone)]
pub struct TestCert {
    /// The CA certificate to trust (self-signed).
    pub ca_pem: PathBuf,
    /// The server certificate (signed by the CA).
    pub cert_pem: PathBuf,
    /// The server's private key (unencrypted PKCS#8 RSA 2048).
    pub key_pem: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("spawn openssl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "openssl {args:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// Generates `ca.pem`, `server.pem`, `server.key` in `dir` (plus openssl scratch files).
/// `hosts` go into the server certificate's subjectAltName (e.g. `&["127.0.0.1", "localhost"]`;
/// use other names for the wrong-host case). With `expired`, the server certificate was
/// valid from 2020-01-01 to 2020-01-02 only. Returns (ca_pem, cert_pem, key_pem).
/// Returns None if `openssl` is missing (skip rule; panics under CI). Panics on openssl errors.
pub fn generate_test_ca_and_cert(
    dir: &Path,
    hosts: &[&str],
    expired: bool,
) -> Option<(PathBuf, PathBuf, PathBuf)> {
    if !require_binary("openssl") {
        return None;
    }
    let t = try_generate(dir, hosts, expired).unwrap_or_else(|e| panic!("{e}"));
    Some((t.ca_pem, t.cert_pem, t.key_pem))
}

fn try_generate(dir: &Path, hosts: &[&str], expired: bool) -> Result<TestCert, String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    assert!(!hosts.is_empty(), "need at least one host for the SAN");
    let san: Vec<String> = hosts
        .iter()
        .map(|h| {
            if h.parse::<std::net::IpAddr>().is_ok() {
                format!("IP:{h}")
            } else {
                format!("DNS:{h}")
            }
        })
        .collect();
    let abs = std::fs::canonicalize(dir).map_err(|e| e.to_string())?;
    let d = abs.display();
    let cnf = format!(
        "[ ca ]\ndefault_ca = testca\n\
         [ testca ]\ndatabase = {d}/index.txt\nnew_certs_dir = {d}\nserial = {d}/serial\n\
         default_md = sha256\npolicy = pol\ncopy_extensions = none\nunique_subject = no\n\
         [ pol ]\ncommonName = supplied\n\
         [ server_ext ]\nbasicConstraints = critical,CA:FALSE\n\
         keyUsage = critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage = serverAuth\nsubjectKeyIdentifier = hash\n\
         authorityKeyIdentifier = keyid\nsubjectAltName = {}\n",
        san.join(",")
    );
    std::fs::write(abs.join("ca.cnf"), cnf).map_err(|e| e.to_string())?;
    std::fs::write(abs.join("index.txt"), "").map_err(|e| e.to_string())?;
    std::fs::write(abs.join("serial"), "1000\n").map_err(|e| e.to_string())?;

    openssl(
        &abs,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "3650",
            "-subj",
            "/CN=gst-plugin-rtmpclient Test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    )?;
    openssl(
        &abs,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            &format!("/CN={}", hosts[0]),
        ],
    )?;
    let (start, end) = if expired {
        ("20200101000000Z".to_string(), "20200102000000Z".to_string())
    } else {
        // From yesterday (clock skew) for ~1 year.
        (days_from_now_utc(-1), days_from_now_utc(365))
    };
    openssl(
        &abs,
        &[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-extensions",
            "server_ext",
            "-cert",
            "ca.pem",
            "-keyfile",
            "ca.key",
            "-in",
            "server.csr",
            "-out",
            "server.pem",
            "-notext",
            "-startdate",
            &start,
            "-enddate",
            &end,
        ],
    )?;
    Ok(TestCert {
        ca_pem: abs.join("ca.pem"),
        cert_pem: abs.join("server.pem"),
        key_pem: abs.join("server.key"),
    })
}

/// `YYYYMMDDHHMMSSZ` for now + `days` (UTC), computed without any date crate.
fn days_from_now_utc(days: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let t = now + days * 86_400;
    let (day, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    // Civil-from-days (proleptic Gregorian), Howard Hinnant's algorithm.
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// nginx-rtmp behind a TLS front end whose certificate (made in `dir/pki`) names `hosts`;
/// returns the server and the CA file that signed the certificate.
pub fn tls_server(
    dir: &super::TempDir,
    hosts: &[&str],
    expired: bool,
) -> Option<(super::NginxRtmp, PathBuf)> {
    let (ca, cert, key) = generate_test_ca_and_cert(&dir.join("pki"), hosts, expired)?;
    let nginx = super::NginxRtmp::start(super::NginxOptions::default().tls(super::TlsFront {
        cert_pem_path: cert,
        key_pem_path: key,
    }))?;
    Some((nginx, ca))
}

/// Like [`tls_server`] with more nginx options (e.g. `max_message` for big frames).
pub fn tls_server_with(
    dir: &super::TempDir,
    hosts: &[&str],
    options: super::NginxOptions,
) -> Option<(super::NginxRtmp, PathBuf)> {
    let (ca, cert, key) = generate_test_ca_and_cert(&dir.join("pki"), hosts, false)?;
    let nginx = super::NginxRtmp::start(options.tls(super::TlsFront {
        cert_pem_path: cert,
        key_pem_path: key,
    }))?;
    Some((nginx, ca))
}

/// A TLS front end (nginx's stream module, certificate made in `dir/pki` for `hosts`) in front
/// of the RTMP server listening on loopback port `upstream`; returns the nginx whose
/// `tls_url` reaches it, and the CA file.
pub fn tls_front_to(
    dir: &super::TempDir,
    hosts: &[&str],
    upstream: u16,
) -> Option<(super::NginxRtmp, PathBuf)> {
    let mut options = super::NginxOptions::default().record(false);
    options.tls_upstream = super::nginx::TlsUpstream(Some(upstream));
    tls_server_with(dir, hosts, options)
}

/// The certificate a user gets from openssl's defaults, `openssl req -x509` with only a
/// subjectAltName added: self-signed and marked CA:TRUE, which TLS clients refuse as a server
/// certificate. Returns (cert_pem, key_pem); None without `openssl`. Panics if the certificate
/// does not come out CA:TRUE (the tests built on it would test nothing).
pub fn self_signed_ca_true_cert(dir: &Path, host: &str) -> Option<(PathBuf, PathBuf)> {
    if !require_binary("openssl") {
        return None;
    }
    std::fs::create_dir_all(dir).unwrap();
    let san = format!("subjectAltName=DNS:{host}");
    let subj = format!("/CN={host}");
    openssl(
        dir,
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ss.key", "-out", "ss.pem",
            "-days", "30", "-subj", &subj, "-addext", &san,
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let text = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in", "ss.pem"])
        .current_dir(dir)
        .output()
        .expect("openssl x509");
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("CA:TRUE"),
        "openssl's default self-signed certificate is expected to be CA:TRUE"
    );
    Some((dir.join("ss.pem"), dir.join("ss.key")))
}

/// nginx-rtmp behind a TLS front end serving `cert`/`key` as they are.
pub fn tls_server_with_cert(cert: &Path, key: &Path) -> Option<super::NginxRtmp> {
    super::NginxRtmp::start(super::NginxOptions::default().tls(super::TlsFront {
        cert_pem_path: cert.to_path_buf(),
        key_pem_path: key.to_path_buf(),
    }))
}
