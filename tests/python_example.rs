#![cfg(feature = "gst")]
//! `examples/publish.py` (PyGObject) against a real nginx-rtmp: `--duration 3` publishes, prints
//! `rtmp-publishing` and the stats, stops with EOS and exits 0; nginx recorded H.264 and AAC
//! frames; the stream key never appears in the output. Debian's `/usr/bin/python3` runs it (a
//! python3 earlier on PATH may lack `gi`), with the plugin this `cargo test` built.

mod common;

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use common::util::{
    TempDir, is_ci, loud, private_plugin_dir, read_lossy, require_file, send_signal,
    terminate_child, wait_child, wait_for,
};
use common::{NginxRtmp, read_flv};

const PYTHON: &str = "/usr/bin/python3";
const STREAM_KEY: &str = "pykey-7f3a9c51";
const RECORD_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest a run of the script may take.
const LIMIT: Duration = Duration::from_secs(30);
const SIGINT: i32 = 2;

/// True when Debian's python3 can import GStreamer's introspection data (skip or fail by the
/// usual rule otherwise).
fn python_gi_available() -> bool {
    if !require_file(PYTHON, "python3") {
        return false;
    }
    let ok = Command::new(PYTHON)
        .args([
            "-c",
            "import gi; gi.require_version('Gst', '1.0'); from gi.repository import Gst",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            !is_ci(),
            "{PYTHON} cannot import gi / Gst (Debian python3-gi, gir1.2-gstreamer-1.0), and CI is set"
        );
        loud(
            "\n*** SKIPPING TEST: /usr/bin/python3 cannot import gi + Gst 1.0 \
             (Debian packages python3-gi, gir1.2-gstreamer-1.0).\n",
        );
    }
    ok
}

fn gst_env<'a>(cmd: &'a mut Command, plugins: &Path, registry: &Path) -> &'a mut Command {
    cmd.env("GST_PLUGIN_PATH", plugins)
        .env("GST_REGISTRY", registry)
        .env_remove("GST_PLUGIN_PATH_1_0")
        .env_remove("GST_REGISTRY_1_0")
        .env_remove("GST_DEBUG")
}

/// Runs `publish.py ARGS` with the private plugin dir, calls `during` with its pid and log file,
/// and returns its exit status (None: it did not exit within `limit` and was killed) and
/// everything it printed.
fn run_publish_py(
    dir: &TempDir,
    args: &[&str],
    limit: Duration,
    during: impl FnOnce(u32, &Path),
) -> (Option<ExitStatus>, String) {
    let plugins = private_plugin_dir(dir);
    let registry = dir.join("registry.bin");
    // A cdylib from a `--no-default-features` build in the same target dir has no element.
    // (Not `--exists`: it also wants the plugin's version to be at least GStreamer's.)
    let inspect = gst_env(&mut Command::new("gst-inspect-1.0"), &plugins, &registry)
        .arg("rtmpclientsink")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .expect("gst-inspect-1.0 runs");
    assert!(
        inspect.success(),
        "the plugin library next to the test binary has no rtmpclientsink (built with \
         --no-default-features?); rebuild with the default features"
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/publish.py");
    let log = dir.join("publish.log");
    let out = std::fs::File::create(&log).expect("log file");
    let mut child = gst_env(&mut Command::new(PYTHON), &plugins, &registry)
        .arg(&script)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("log file"))
        .stderr(out)
        .spawn()
        .expect("python3 starts");
    during(child.id(), &log);
    let status = wait_child(&mut child, limit);
    if status.is_none() {
        terminate_child(&mut child, Duration::from_secs(2));
    }
    (status, read_lossy(&log))
}

#[test]
fn publish_py_publishes_to_nginx_and_stops_cleanly() {
    if !python_gi_available() {
        return;
    }
    let Some(nginx) = NginxRtmp::start_default() else {
        return;
    };
    let dir = TempDir::new("python-example");
    let url = nginx.url("live", STREAM_KEY);
    // 3 s of stream plus startup and the EOS; a hang fails instead of blocking the suite.
    let (status, output) = run_publish_py(&dir, &["--duration", "3", &url], LIMIT, |_, _| ());
    let status = status.unwrap_or_else(|| panic!("publish.py did not exit in time:\n{output}"));
    assert!(status.success(), "publish.py failed ({status}):\n{output}");

    let lines: Vec<&str> = output.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("message: rtmp-publishing")),
        "no rtmp-publishing message:\n{output}"
    );
    let stats = lines
        .iter()
        .filter(|l| l.starts_with("stats: rtmp-stats"))
        .count();
    assert!(
        stats >= 2,
        "stats once a second for 3 s, got {stats}:\n{output}"
    );
    assert!(
        output.contains("stopping (duration reached)") && output.contains("EOS:"),
        "no clean stop:\n{output}"
    );
    assert!(
        !output.contains(STREAM_KEY),
        "stream key printed:\n{output}"
    );

    let rec = nginx
        .wait_recording(STREAM_KEY, RECORD_TIMEOUT)
        .expect("nginx wrote the recording");
    let flv = read_flv(&rec).expect("recording parses");
    let count = |t: u8| flv.tags.iter().filter(|tag| tag.tag_type == t).count();
    // 3 s at 30 fps, and AAC at ~43 frames/s; generous bounds for startup.
    assert!(count(9) >= 45, "video tags: {}", count(9));
    assert!(count(8) >= 60, "audio tags: {}", count(8));
}

#[test]
fn publish_py_exits_non_zero_on_error() {
    if !python_gi_available() {
        return;
    }
    let dir = TempDir::new("python-example-error");
    // Nothing listens on this port: the element posts an ERROR.
    let url = format!("rtmp://127.0.0.1:{}/live/{STREAM_KEY}", common::free_port());
    let (status, output) = run_publish_py(&dir, &["--duration", "20", &url], LIMIT, |_, _| ());
    let status =
        status.unwrap_or_else(|| panic!("publish.py did not exit on the error:\n{output}"));
    assert!(
        !status.success(),
        "exit status on error: {status}\n{output}"
    );
    assert!(output.contains("ERROR from sink"), "{output}");
    assert!(
        !output.contains(STREAM_KEY),
        "stream key printed:\n{output}"
    );
}

#[test]
fn publish_py_stops_cleanly_on_ctrl_c() {
    if !python_gi_available() {
        return;
    }
    let Some(nginx) = NginxRtmp::start_default() else {
        return;
    };
    let dir = TempDir::new("python-example-sigint");
    let url = nginx.url("live", STREAM_KEY);
    let (status, output) = run_publish_py(&dir, &[&url], LIMIT, |pid, log| {
        let publishing = wait_for(LIMIT, || read_lossy(log).contains("rtmp-publishing"));
        assert!(publishing, "never published:\n{}", read_lossy(log));
        assert!(send_signal(pid, SIGINT), "SIGINT delivered");
    });
    let status = status.unwrap_or_else(|| panic!("publish.py ignored Ctrl-C:\n{output}"));
    assert!(
        status.success(),
        "exit status after Ctrl-C: {status}\n{output}"
    );
    assert!(
        output.contains("stopping (Ctrl-C)") && output.contains("EOS:"),
        "no clean stop:\n{output}"
    );
    let rec = nginx
        .wait_recording(STREAM_KEY, RECORD_TIMEOUT)
        .expect("nginx wrote the recording");
    let flv = read_flv(&rec).expect("recording parses");
    assert!(flv.tags.iter().any(|t| t.tag_type == 9), "video recorded");
}
