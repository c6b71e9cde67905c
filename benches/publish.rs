//! The whole publish path over loopback: `RtmpClient::send_video` of 100 KB and 1.5 MB access
//! units (FLV header + chunking + vectored writes, and for `rtmps://` the TLS encryption) into a
//! server thread that reads and discards. The TLS server is rustls on its own thread (the same
//! cipher suite as the client prefers, TLS 1.3 AES-256-GCM), decrypting and dropping the
//! plaintext.

#[path = "../tests/common/scripted.rs"]
mod scripted;

use std::hint::black_box;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gstrtmpclient::rtmp::tls::{CHECK_ALL, TlsOptions};
use gstrtmpclient::rtmp::{ClientOptions, RtmpClient};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use scripted::{Next, ScriptedTcpServer, ServerPeer};

const SMALL: usize = 100 * 1024;
const LARGE: usize = 1536 * 1024;

fn frame(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn bench_sizes(c: &mut Criterion, group: &str, client: &mut RtmpClient) {
    let mut ts = 0u32;
    let mut g = c.benchmark_group(group);
    for (name, len) in [
        ("send_video_100k_chunk4096", SMALL),
        ("send_video_1536k_chunk4096", LARGE),
    ] {
        let data = frame(len);
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                ts = ts.wrapping_add(33);
                client
                    .send_video(ts, false, black_box(&data))
                    .expect("send to the bench server");
            })
        });
    }
    g.finish();
}

fn publish_loopback(c: &mut Criterion) {
    let server = ScriptedTcpServer::start(Duration::from_secs(600), |turn| {
        if turn.peer.answer_publish_flow(&turn.new, &[]) {
            Next::Discard
        } else {
            Next::Continue
        }
    });
    let mut client = RtmpClient::connect(&server.url()).expect("connect to the bench server");
    bench_sizes(c, "publish_loopback", &mut client);
    client.close().expect("close");
    server.join();
}

/// A self-signed P-256 server certificate for `localhost` (CA:FALSE, so it can be trusted
/// directly as the CA file), made with the `openssl` CLI.
fn server_cert(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl")
        .status
        .success();
    assert!(ok, "openssl could not make the bench certificate");
    (cert, key)
}

/// Accepts one connection, answers the publish flow over TLS, then decrypts and discards.
fn tls_discard_server(cert: &Path, key: &Path) -> (u16, JoinHandle<u64>) {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .expect("read cert")
        .collect::<Result<_, _>>()
        .expect("parse cert");
    let key = PrivateKeyDer::from_pem_file(key).expect("read key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("server certificate");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().expect("local addr").port();
    let handle = std::thread::spawn(move || {
        let (sock, _) = listener.accept().expect("accept");
        let conn = rustls::ServerConnection::new(Arc::new(config)).expect("server connection");
        let mut tls = rustls::StreamOwned::new(conn, sock);
        let mut peer = ServerPeer::new();
        let mut buf = vec![0u8; 256 * 1024];
        let (mut publishing, mut discarded) = (false, 0u64);
        loop {
            match tls.read(&mut buf) {
                Ok(0) | Err(_) => return discarded,
                Ok(n) if publishing => discarded += n as u64,
                Ok(n) => {
                    let msgs = peer.feed(&buf[..n]);
                    publishing = peer.answer_publish_flow(&msgs, &[]);
                    let out = peer.take_output();
                    if tls.write_all(&out).and_then(|()| tls.flush()).is_err() {
                        return discarded;
                    }
                }
            }
        }
    });
    (port, handle)
}

fn publish_loopback_tls(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("rtmp-bench-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("bench temp dir");
    let (cert, key) = server_cert(&dir);
    let (port, server) = tls_discard_server(&cert, &key);
    let options = ClientOptions {
        tls: TlsOptions {
            ca_file: Some(cert),
            use_system_roots: false,
            checks: CHECK_ALL,
        },
        ..ClientOptions::default()
    };
    let url = format!("rtmps://localhost:{port}/live/key");
    let mut client =
        RtmpClient::connect_with_options(&url, &options).expect("connect to the TLS bench server");
    bench_sizes(c, "publish_loopback_tls", &mut client);
    client.close().expect("close");
    let discarded = server.join().expect("TLS bench server");
    assert!(discarded > 0, "the TLS server received the media");
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5));
    targets = publish_loopback, publish_loopback_tls
}
criterion_main!(benches);
