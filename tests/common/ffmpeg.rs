//! `ffmpeg` as a one-shot RTMP server (`-listen 1`): receives one publish and writes
//! what it got, stream-copied, to an FLV file. A second, independent server
//! implementation next to nginx-rtmp.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::util::{find_binary, free_port, read_lossy, require_binary, tcp_listening, wait_child};

pub struct FfmpegListen {
    child: Option<Child>,
    port: u16,
    output: PathBuf,
    log: PathBuf,
}

impl FfmpegListen {
    /// Starts `ffmpeg -listen 1 -i rtmp://127.0.0.1:PORT/live/key -c copy -f flv DIR/out.flv`
    /// and waits (≤ 5 s, without connecting) until it listens. None = skip (ffmpeg missing).
    pub fn start(dir: &Path) -> Option<FfmpegListen> {
        Self::start_with(dir, "ffmpeg", &["-c", "copy"])
    }

    /// `start` with another ffmpeg (a name in PATH or a path) and other output options before
    /// `-f flv` (e.g. `["-c", "copy", "-copyinkf"]`).
    pub fn start_with(dir: &Path, ffmpeg: &str, output_args: &[&str]) -> Option<FfmpegListen> {
        if !require_binary(ffmpeg) {
            return None;
        }
        let ffmpeg = find_binary(ffmpeg).unwrap();
        let output = dir.join("out.flv");
        let log = dir.join("ffmpeg-listen.log");
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let logf = std::fs::File::create(&log).expect("create ffmpeg log");
            let mut child = Command::new(&ffmpeg)
                .args([
                    "-nostdin",
                    "-hide_banner",
                    "-y",
                    "-loglevel",
                    "error",
                    "-listen",
                    "1",
                ])
                .arg("-i")
                .arg(format!("rtmp://127.0.0.1:{port}/live/key"))
                .args(output_args)
                .args(["-f", "flv"])
                .arg(&output)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(logf)
                .spawn()
                .expect("spawn ffmpeg");
            let mut exited = false;
            let ok = super::util::wait_for(Duration::from_secs(5), || {
                if let Ok(Some(_)) = child.try_wait() {
                    exited = true;
                    return true;
                }
                tcp_listening(port)
            });
            if ok && !exited {
                return Some(FfmpegListen {
                    child: Some(child),
                    port,
                    output,
                    log,
                });
            }
            let _ = child.kill();
            let _ = child.wait();
            last = read_lossy(&log);
        }
        panic!("ffmpeg -listen could not be started: {last}");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `rtmp://127.0.0.1:PORT/live/key`
    pub fn url(&self) -> String {
        format!("rtmp://127.0.0.1:{}/live/key", self.port)
    }

    pub fn output_path(&self) -> &Path {
        &self.output
    }

    /// ffmpeg's stderr (errors only).
    pub fn log(&self) -> String {
        read_lossy(&self.log)
    }

    /// Waits for ffmpeg to exit (it does when the publisher disconnects) and returns the
    /// output file if it exists and is non-empty.
    pub fn wait_output(&mut self, timeout: Duration) -> Option<PathBuf> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        wait_child(child, deadline.saturating_duration_since(Instant::now()))?;
        self.child = None;
        super::util::file_size(&self.output)
            .filter(|&s| s > 0)
            .map(|_| self.output.clone())
    }
}

impl Drop for FfmpegListen {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Publishes `input` (any container) stream-copied to `url` as fast as possible
/// (`ffmpeg -i input -c copy -f flv url`, no `-re`). Returns (success, stderr).
/// Bounded by `timeout` (killed after it).
pub fn publish_file(input: &Path, url: &str, timeout: Duration) -> (bool, String) {
    publish_with(&["-i"], input, &["-c", "copy", "-f", "flv"], url, timeout)
}

/// Like `publish_file` with `-re` (real-time pacing).
pub fn publish_file_realtime(input: &Path, url: &str, timeout: Duration) -> (bool, String) {
    publish_with(
        &["-re", "-i"],
        input,
        &["-c", "copy", "-f", "flv"],
        url,
        timeout,
    )
}

fn publish_with(
    pre: &[&str],
    input: &Path,
    post: &[&str],
    url: &str,
    timeout: Duration,
) -> (bool, String) {
    let ffmpeg = find_binary("ffmpeg").expect("ffmpeg (call require_binary first)");
    let mut child = Command::new(ffmpeg)
        .args(["-nostdin", "-hide_banner", "-loglevel", "error"])
        .args(pre)
        .arg(input)
        .args(post)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ffmpeg");
    // Read stderr on a thread so a chatty ffmpeg cannot block on a full pipe.
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let status = wait_child(&mut child, timeout);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let mut stderr = reader.join().unwrap_or_default();
    if status.is_none() {
        stderr.push_str(&format!("\n[killed after {timeout:?}]"));
    }
    (status.is_some_and(|s| s.success()), stderr)
}
