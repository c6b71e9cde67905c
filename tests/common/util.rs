//! Generic helpers: temp dirs, ports, bounded waiting, binary lookup and the
//! skip-or-fail rule for missing tools.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// True when running under CI (env `CI` set to anything but "", "0", "false").
pub fn is_ci() -> bool {
    match std::env::var("CI") {
        Ok(v) => {
            let v = v.trim().to_ascii_lowercase();
            !(v.is_empty() || v == "0" || v == "false" || v == "no")
        }
        Err(_) => false,
    }
}

/// True when env `KEEP_TEST_FILES` is set (temp dirs are then kept for inspection).
pub fn keep_test_files() -> bool {
    std::env::var_os("KEEP_TEST_FILES").is_some_and(|v| !v.is_empty())
}

/// A temporary directory under `std::env::temp_dir()`, removed on drop unless
/// `KEEP_TEST_FILES` is set.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl TempDir {
    /// Creates a fresh, empty directory; `label` ends up in its name.
    pub fn new(label: &str) -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let label: String = label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        for _ in 0..100 {
            let n = TEMP_COUNTER.fetch_add(1, Ordering::SeqCst);
            let path = std::env::temp_dir().join(format!(
                "rtmpclient-test-{}-{}-{}-{}",
                std::process::id(),
                n,
                nanos,
                label
            ));
            match std::fs::create_dir(&path) {
                Ok(()) => return TempDir { path },
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("cannot create temp dir {}: {e}", path.display()),
            }
        }
        panic!("cannot create a unique temp dir");
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.path.join(p)
    }

    /// Keeps the directory on disk after drop and returns its path.
    pub fn into_path(self) -> PathBuf {
        let p = self.path.clone();
        std::mem::forget(self);
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if keep_test_files() {
            eprintln!("KEEP_TEST_FILES: keeping {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A loopback TCP port that was free a moment ago (bind 127.0.0.1:0, then release).
/// Racy by nature: callers that start a server on it must retry on "address in use".
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

/// Polls `cond` (every 20 ms) until it returns true or `deadline` passes.
/// Returns whether the condition became true. `cond` is evaluated at least once.
pub fn wait_until(deadline: Instant, mut cond: impl FnMut() -> bool) -> bool {
    loop {
        if cond() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(20)));
    }
}

/// `wait_until(Instant::now() + timeout, cond)`.
pub fn wait_for(timeout: Duration, cond: impl FnMut() -> bool) -> bool {
    wait_until(Instant::now() + timeout, cond)
}

/// True if something accepts TCP connections on 127.0.0.1:`port` (probe connects and closes).
pub fn tcp_accepts(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// True if a socket is LISTENing on 127.0.0.1:`port` (or 0.0.0.0:`port`), read from
/// /proc/net/tcp without connecting (for one-shot listeners such as `ffmpeg -listen 1`).
pub fn tcp_listening(port: u16) -> bool {
    let Ok(text) = std::fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    let want_lo = format!("0100007F:{port:04X}");
    let want_any = format!("00000000:{port:04X}");
    text.lines().skip(1).any(|line| {
        let mut f = line.split_whitespace();
        let (_sl, local, _rem, state) = (f.next(), f.next(), f.next(), f.next());
        matches!(local, Some(l) if l == want_lo || l == want_any) && state == Some("0A")
    })
}

/// Finds an executable by name in PATH, then in /usr/sbin, /sbin, /usr/local/sbin
/// (nginx lives in /usr/sbin, which is not always in PATH).
pub fn find_binary(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let is_exe = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if name.contains('/') {
        let p = PathBuf::from(name);
        return is_exe(&p).then_some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| is_exe(p))
}

/// The skip-or-fail rule: returns true if `name` is available. If it is absent, it
/// panics when `CI` is set (CI installs everything and must never skip) and otherwise
/// prints a loud message to stderr and returns false (the caller then returns early).
pub fn require_binary(name: &str) -> bool {
    if find_binary(name).is_some() {
        return true;
    }
    if is_ci() {
        panic!(
            "required binary `{name}` not found, and CI is set: CI must not skip tests \
             (scripts/test installs the needed Debian packages)"
        );
    }
    loud(&format!(
        "\n\
         ************************************************************************\n\
         *** SKIPPING TEST: required binary `{name}` not found.\n\
         *** Run scripts/test (installs nginx, libnginx-mod-rtmp, ffmpeg, ...)\n\
         *** With CI=true this would be a FAILURE.\n\
         ************************************************************************\n"
    ));
    false
}

/// `require_binary` for each name; true only if all are present (reports every missing one).
pub fn require_binaries(names: &[&str]) -> bool {
    let mut ok = true;
    for n in names {
        ok &= require_binary(n);
    }
    ok
}

/// Writes straight to the process's stderr, bypassing libtest's output capture (which
/// swallows `eprintln!` of passing tests), so skip messages are always visible.
pub fn loud(msg: &str) {
    use std::io::Write;
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(msg.as_bytes());
    let _ = e.flush();
}

/// The plugin library cargo built for this test run: the crate's cdylib next to this test
/// executable (`target/<profile>/deps/`), copied into a private plugin directory under `dir`
/// so that exactly this build is loaded.
pub fn private_plugin_dir(dir: &TempDir) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let built = exe
        .parent()
        .expect("deps directory")
        .join("libgstrtmpclient.so");
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).expect("plugin dir");
    std::fs::copy(&built, plugins.join("libgstrtmpclient.so"))
        .unwrap_or_else(|e| panic!("no plugin library at {} ({e})", built.display()));
    plugins
}

/// True if `names` contains `want` as a subsequence (lifecycle messages in their order, others
/// between them).
pub fn has_subsequence(names: &[String], want: &[&str]) -> bool {
    let mut it = names.iter();
    want.iter().all(|w| it.any(|n| n == w))
}

/// Same rule for a file (e.g. an nginx dynamic module): true if it exists.
pub fn require_file(path: &str, package: &str) -> bool {
    if Path::new(path).exists() {
        return true;
    }
    if is_ci() {
        panic!("required file `{path}` (Debian package {package}) not found, and CI is set");
    }
    loud(&format!(
        "\n************************************************************************\n\
         *** SKIPPING TEST: required file `{path}` not found (Debian package {package}).\n\
         *** With CI=true this would be a FAILURE.\n\
         ************************************************************************\n"
    ));
    false
}

/// Waits for `child` to exit, at most `timeout`. Returns its status, or None on timeout
/// (the child is left running).
pub fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let mut status = None;
    wait_for(timeout, || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    status
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

pub const SIGKILL: i32 = 9;
pub const SIGTERM: i32 = 15;

/// Sends `sig` to process `pid` (std only offers SIGKILL).
pub fn send_signal(pid: u32, sig: i32) -> bool {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { libc_kill(pid as i32, sig) == 0 }
}

/// Sends SIGTERM, waits up to `grace`, then SIGKILLs and reaps the child.
pub fn terminate_child(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    if let Ok(Some(st)) = child.try_wait() {
        return Some(st);
    }
    send_signal(child.id(), SIGTERM);
    if let Some(st) = wait_child(child, grace) {
        return Some(st);
    }
    let _ = child.kill();
    child.wait().ok()
}

/// Reads a whole file as (lossy) UTF-8; empty string if unreadable.
pub fn read_lossy(path: &Path) -> String {
    let mut buf = Vec::new();
    match std::fs::File::open(path) {
        Ok(mut f) => {
            let _ = f.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        }
        Err(_) => String::new(),
    }
}

/// Size of a file, or None if it does not exist.
pub fn file_size(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}

/// Waits until `path` exists, is non-empty and its size is the same across two
/// polls `interval` apart (and `extra` holds), within `timeout`.
pub fn wait_file_stable(
    path: &Path,
    timeout: Duration,
    interval: Duration,
    mut extra: impl FnMut() -> bool,
) -> bool {
    let deadline = Instant::now() + timeout;
    let mut last: Option<u64> = None;
    loop {
        let cur = file_size(path).filter(|&s| s > 0);
        if cur.is_some() && cur == last && extra() {
            return true;
        }
        last = cur;
        if Instant::now() + interval > deadline {
            return false;
        }
        std::thread::sleep(interval);
    }
}

/// Resident memory of this process, kB (`VmRSS` of /proc/self/status; 0 if unreadable).
pub fn vm_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Tests that measure the whole process (resident memory, thread count) hold [`exclusive`] and
/// so run alone in their test binary; the others hold [`shared`].
static PROCESS: RwLock<()> = RwLock::new(());

/// The lock of a test that does not measure the whole process (see [`exclusive`]).
pub fn shared() -> RwLockReadGuard<'static, ()> {
    PROCESS.read().unwrap_or_else(|e| e.into_inner())
}

/// The lock of a test that measures the whole process: no other test of the binary runs.
pub fn exclusive() -> RwLockWriteGuard<'static, ()> {
    PROCESS.write().unwrap_or_else(|e| e.into_inner())
}
