//! A real nginx with the RTMP module (Debian `libnginx-mod-rtmp`), started by the
//! test on a free loopback port, unprivileged-style (no daemon, no master process),
//! with a generated config in a temp dir. Optional TLS front end via the stream
//! module (Debian `libnginx-mod-stream`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::util::{
    self, SIGKILL, TempDir, find_binary, free_port, read_lossy, require_binary, require_file,
    send_signal, tcp_accepts, terminate_child, wait_child,
};

pub const RTMP_MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";
pub const STREAM_MODULE: &str = "/usr/lib/nginx/modules/ngx_stream_module.so";

/// How long `start`/`restart` wait for nginx to accept TCP.
pub const START_TIMEOUT: Duration = Duration::from_secs(5);

/// TLS front end: `stream { server { listen TLSPORT ssl; ... proxy_pass 127.0.0.1:PORT; } }`.
#[derive(Debug, Clone)]
pub struct TlsFront {
    pub cert_pem_path: PathBuf,
    pub key_pem_path: PathBuf,
}

/// Where the TLS front end forwards to: nginx-rtmp itself unless set (another RTMP server on
/// loopback, e.g. FFmpeg 9 listening, to put TLS in front of it).
#[derive(Debug, Clone, Copy, Default)]
pub struct TlsUpstream(pub Option<u16>);

/// What goes into the generated config. In every string, `{record_dir}` is replaced by
/// the recording directory and `{tmp}` by the server's temp dir.
#[derive(Debug, Clone)]
pub struct NginxOptions {
    /// `record all; record_path ..; record_unique off;` in application `live` (default true).
    pub record: bool,
    /// Extra directives inside `application live { }` (e.g. `"record_append on;"`,
    /// `"on_publish http://127.0.0.1:PORT/auth;"`).
    pub live_directives: Vec<String>,
    /// Extra directives inside the rtmp `server { }` (e.g. `"chunk_size 4096;"`).
    pub server_directives: Vec<String>,
    /// Extra applications: (name, body), e.g. `("deny", "live on; deny publish all;")`.
    pub applications: Vec<(String, String)>,
    /// Optional TLS front end.
    pub tls: Option<TlsFront>,
    /// What the TLS front end forwards to.
    pub tls_upstream: TlsUpstream,
}

impl Default for NginxOptions {
    fn default() -> Self {
        NginxOptions {
            record: true,
            live_directives: Vec::new(),
            server_directives: Vec::new(),
            applications: Vec::new(),
            tls: None,
            tls_upstream: TlsUpstream::default(),
        }
    }
}

impl NginxOptions {
    pub fn record(mut self, on: bool) -> Self {
        self.record = on;
        self
    }
    pub fn live_directive(mut self, d: &str) -> Self {
        self.live_directives.push(d.to_string());
        self
    }
    pub fn server_directive(mut self, d: &str) -> Self {
        self.server_directives.push(d.to_string());
        self
    }
    /// Adds `application NAME { BODY }`. Use `{record_dir}` in BODY to record too, e.g.
    /// `"live on; record all; record_path {record_dir}; record_unique off;"`.
    pub fn application(mut self, name: &str, body: &str) -> Self {
        self.applications.push((name.to_string(), body.to_string()));
        self
    }
    pub fn tls(mut self, tls: TlsFront) -> Self {
        self.tls = Some(tls);
        self
    }
}

/// A running nginx-rtmp. Dropping it kills nginx (and removes its temp dir unless
/// `KEEP_TEST_FILES` is set).
pub struct NginxRtmp {
    child: Option<Child>,
    nginx: PathBuf,
    port: u16,
    tls_port: Option<u16>,
    options: NginxOptions,
    // Declared last: removed after the child is gone.
    dir: TempDir,
}

impl NginxRtmp {
    /// Starts nginx with the default options (application `live`, recording on).
    pub fn start_default() -> Option<NginxRtmp> {
        Self::start(NginxOptions::default())
    }

    /// Starts nginx. Returns None only when a needed binary/module is missing and the
    /// test should be skipped (a loud message was printed; under CI this panics instead).
    /// Panics if nginx cannot be started.
    pub fn start(options: NginxOptions) -> Option<NginxRtmp> {
        if !require_binary("nginx") || !require_file(RTMP_MODULE, "libnginx-mod-rtmp") {
            return None;
        }
        if options.tls.is_some() && !require_file(STREAM_MODULE, "libnginx-mod-stream") {
            return None;
        }
        let nginx = find_binary("nginx").expect("nginx");
        let mut dir = TempDir::new("nginx");
        std::fs::create_dir_all(dir.join("rec")).expect("create record dir");
        std::fs::create_dir_all(dir.join("logs")).expect("create logs dir");

        let mut last_err = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let tls_port = options.tls.as_ref().map(|_| {
                loop {
                    let p = free_port();
                    if p != port {
                        break p;
                    }
                }
            });
            let mut srv = NginxRtmp {
                child: None,
                nginx: nginx.clone(),
                port,
                tls_port,
                options: options.clone(),
                dir,
            };
            match srv.spawn_and_wait() {
                Ok(()) => return Some(srv),
                Err(e) => {
                    last_err = e;
                    // Port raced with someone else? Try another one.
                    dir = std::mem::replace(&mut srv.dir, TempDir::new("nginx-unused"));
                    drop(srv);
                }
            }
        }
        panic!("could not start nginx-rtmp after 5 attempts: {last_err}");
    }

    fn config(&self) -> String {
        let tmp = self.dir.path().display().to_string();
        let rec = self.record_dir().display().to_string();
        let subst = |s: &str| s.replace("{record_dir}", &rec).replace("{tmp}", &tmp);
        let mut c = String::new();
        writeln!(c, "load_module {RTMP_MODULE};").unwrap();
        if self.options.tls.is_some() {
            writeln!(c, "load_module {STREAM_MODULE};").unwrap();
        }
        writeln!(c, "daemon off;\nmaster_process off;").unwrap();
        writeln!(c, "pid {tmp}/nginx.pid;").unwrap();
        writeln!(c, "error_log {tmp}/error.log info;").unwrap();
        writeln!(c, "events {{ }}").unwrap();
        writeln!(
            c,
            "rtmp {{\n  server {{\n    listen 127.0.0.1:{};",
            self.port
        )
        .unwrap();
        for d in &self.options.server_directives {
            writeln!(c, "    {}", subst(d)).unwrap();
        }
        writeln!(c, "    application live {{\n      live on;").unwrap();
        if self.options.record {
            writeln!(
                c,
                "      record all;\n      record_path {rec};\n      record_unique off;"
            )
            .unwrap();
        }
        for d in &self.options.live_directives {
            writeln!(c, "      {}", subst(d)).unwrap();
        }
        writeln!(c, "    }}").unwrap();
        for (name, body) in &self.options.applications {
            writeln!(c, "    application {name} {{ {} }}", subst(body)).unwrap();
        }
        writeln!(c, "  }}\n}}").unwrap();
        if let (Some(tls), Some(tls_port)) = (&self.options.tls, self.tls_port) {
            // proxy_half_close: on the client's FIN nginx only half-closes upstream and waits for
            // nginx-rtmp to finish. Without it nginx closes upstream at once, and an unread
            // Acknowledgement from nginx-rtmp turns that close into a reset that throws away
            // everything nginx-rtmp had not read yet (the last frames of a fast publish).
            writeln!(
                c,
                "stream {{\n  server {{\n    listen 127.0.0.1:{tls_port} ssl;\n    \
                 ssl_certificate {};\n    ssl_certificate_key {};\n    \
                 proxy_half_close on;\n    proxy_pass 127.0.0.1:{};\n  }}\n}}",
                tls.cert_pem_path.display(),
                tls.key_pem_path.display(),
                self.options.tls_upstream.0.unwrap_or(self.port)
            )
            .unwrap();
        }
        c
    }

    fn conf_path(&self) -> PathBuf {
        self.dir.join("nginx.conf")
    }

    fn spawn_and_wait(&mut self) -> Result<(), String> {
        std::fs::write(self.conf_path(), self.config()).map_err(|e| e.to_string())?;
        let log_start = util::file_size(&self.error_log_path()).unwrap_or(0) as usize;
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("stderr.log"))
            .map_err(|e| e.to_string())?;
        let mut prefix = self.dir.path().display().to_string();
        prefix.push('/');
        let child = Command::new(&self.nginx)
            .arg("-c")
            .arg(self.conf_path())
            .arg("-p")
            .arg(&prefix)
            .arg("-e")
            .arg(self.error_log_path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", self.nginx.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        let mut exited = None;
        let ready = util::wait_until(deadline, || {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().ok().flatten() {
                exited = Some(st);
                return true;
            }
            tcp_accepts(self.port) && self.tls_port.is_none_or(tcp_accepts)
        });
        if let Some(st) = exited {
            self.child = None;
            return Err(format!(
                "nginx exited early ({st}):\n{}",
                self.log_since(log_start)
            ));
        }
        if !ready {
            self.kill();
            return Err(format!(
                "nginx did not accept connections on port {} within {:?}:\n{}",
                self.port,
                START_TIMEOUT,
                self.log_since(log_start)
            ));
        }
        Ok(())
    }

    fn log_since(&self, start: usize) -> String {
        let full = self.error_log();
        let new = full.get(start..).unwrap_or(&full);
        let stderr = read_lossy(&self.dir.join("stderr.log"));
        format!("{new}\n--- stderr ---\n{stderr}")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Port of the TLS front end (only with `tls` set).
    pub fn tls_port(&self) -> Option<u16> {
        self.tls_port
    }

    /// `rtmp://127.0.0.1:PORT/app/stream`
    pub fn url(&self, app: &str, stream: &str) -> String {
        format!("rtmp://127.0.0.1:{}/{app}/{stream}", self.port)
    }

    /// `rtmps://HOST:TLSPORT/app/stream` (host e.g. "127.0.0.1" or "localhost").
    pub fn tls_url(&self, host: &str, app: &str, stream: &str) -> String {
        let p = self
            .tls_port
            .expect("nginx started without a TLS front end");
        format!("rtmps://{host}:{p}/{app}/{stream}")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn record_dir(&self) -> PathBuf {
        self.dir.join("rec")
    }

    /// Where the recording of `stream` is written (`<record_dir>/<stream>.flv`).
    pub fn recording(&self, stream: &str) -> PathBuf {
        self.record_dir().join(format!("{stream}.flv"))
    }

    /// Waits until the recording of `stream` is finished: every connection that published
    /// `stream` (per the error log) has disconnected, and the file exists, is non-empty and
    /// has the same size across two polls 200 ms apart.
    pub fn wait_recording(&self, stream: &str, timeout: Duration) -> Option<PathBuf> {
        let path = self.recording(stream);
        let done = util::wait_file_stable(&path, timeout, Duration::from_millis(200), || {
            self.publishers_disconnected(stream)
        });
        done.then_some(path)
    }

    /// Connection ids (`*N`) that published `stream`, per the error log.
    pub fn publisher_connections(&self, stream: &str) -> Vec<String> {
        let log = self.error_log();
        let needle = format!("publish: name='{stream}'");
        let mut ids: Vec<String> = log
            .lines()
            .filter(|l| l.contains(&needle))
            .filter_map(conn_id)
            .collect();
        ids.dedup();
        ids
    }

    /// True if at least one connection published `stream` and all of them disconnected.
    pub fn publishers_disconnected(&self, stream: &str) -> bool {
        let ids = self.publisher_connections(stream);
        if ids.is_empty() {
            return false;
        }
        let log = self.error_log();
        ids.iter().all(|id| {
            log.lines()
                .any(|l| l.contains(" disconnect, ") && conn_id(l).as_deref() == Some(id))
        })
    }

    /// True while some connection publishes `stream` (published, not yet disconnected).
    pub fn is_publishing(&self, stream: &str) -> bool {
        !self.publisher_connections(stream).is_empty() && !self.publishers_disconnected(stream)
    }

    pub fn error_log_path(&self) -> PathBuf {
        self.dir.join("error.log")
    }

    /// The whole nginx error log (info level: connects, publish, disconnect, errors).
    pub fn error_log(&self) -> String {
        read_lossy(&self.error_log_path())
    }

    /// Waits until the error log contains `needle` (e.g. "access forbidden by rule").
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        util::wait_for(timeout, || self.error_log().contains(needle))
    }

    /// The generated nginx.conf.
    pub fn config_text(&self) -> String {
        read_lossy(&self.conf_path())
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Graceful-ish stop: SIGTERM (fast shutdown, closes client connections), wait up to
    /// 5 s, then SIGKILL. The port is free afterwards.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate_child(&mut c, Duration::from_secs(5));
        }
    }

    /// Abrupt stop (SIGKILL), like a crashed server.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            send_signal(c.id(), SIGKILL);
            let _ = wait_child(&mut c, Duration::from_secs(5));
        }
    }

    /// Starts nginx again on the same port(s) with the same config (stopping it first if it
    /// is running). Retries binding for up to ~5 s. Panics on failure.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.spawn_and_wait() {
                Ok(()) => return,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("nginx restart failed, retrying: {e}");
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("nginx restart on port {} failed: {e}", self.port),
            }
        }
    }
}

impl Drop for NginxRtmp {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `*12` from an nginx log line like `... 4242#4242: *12 publish: ...`.
fn conn_id(line: &str) -> Option<String> {
    line.split_whitespace()
        .find(|w| w.starts_with('*') && w.len() > 1 && w[1..].chars().all(|c| c.is_ascii_digit()))
        .map(str::to_string)
}
