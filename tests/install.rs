#![cfg(feature = "gst")]
//! `scripts/install` and `scripts/uninstall` as a user with an empty HOME: afterwards a plain
//! `gst-inspect-1.0 rtmpclientsink` (no GST_PLUGIN_PATH, the user's own new registry) finds the
//! element in `~/.local/share/gstreamer-1.0/plugins`, and after uninstalling it does not.
//! `--prefix DIR` installs into DIR/lib/gstreamer-1.0, found through GST_PLUGIN_PATH only.
//! (`--system` writes to the machine's plugin directory: not exercised by tests.)

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::util::{TempDir, require_binaries};

const PLUGIN_FILE: &str = "libgstrtmpclient.so";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The toolchain lives under the real HOME; an empty HOME must not lose it.
fn toolchain_home(var: &str, dir: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(dir)))
}

/// `cmd` as a fresh user whose HOME is `home`: no GStreamer or XDG variables from this
/// process (they would point GStreamer elsewhere).
fn as_user<'a>(cmd: &'a mut Command, home: &Path) -> &'a mut Command {
    for var in [
        "GST_PLUGIN_PATH",
        "GST_PLUGIN_PATH_1_0",
        "GST_REGISTRY",
        "GST_REGISTRY_1_0",
        "XDG_DATA_HOME",
        "XDG_CACHE_HOME",
        "XDG_CONFIG_HOME",
        "GST_DEBUG",
    ] {
        cmd.env_remove(var);
    }
    if let Some(cargo) = toolchain_home("CARGO_HOME", ".cargo") {
        cmd.env("CARGO_HOME", cargo);
    }
    if let Some(rustup) = toolchain_home("RUSTUP_HOME", ".rustup") {
        cmd.env("RUSTUP_HOME", rustup);
    }
    cmd.env("HOME", home).stdin(Stdio::null())
}

fn run(cmd: &mut Command, what: &str) -> (Output, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what} starts: {e}"));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out, text)
}

/// `Filename` of the plugin that gst-inspect-1.0 loads rtmpclientsink from, if any.
fn inspect_filename(home: &Path, plugin_path: Option<&Path>) -> Option<PathBuf> {
    let mut cmd = Command::new("gst-inspect-1.0");
    as_user(&mut cmd, home).arg("rtmpclientsink");
    if let Some(p) = plugin_path {
        cmd.env("GST_PLUGIN_PATH", p);
    }
    let (out, text) = run(&mut cmd, "gst-inspect-1.0");
    if !out.status.success() {
        return None;
    }
    text.lines()
        .map(str::split_whitespace)
        .find_map(|mut w| (w.next() == Some("Filename")).then(|| w.next()).flatten())
        .map(PathBuf::from)
}

#[test]
fn install_into_an_empty_home_then_uninstall() {
    if !require_binaries(&["gst-inspect-1.0", "pkg-config", "cargo"]) {
        return;
    }
    let home = TempDir::new("install-home");
    let user_dir = home.join(".local/share/gstreamer-1.0/plugins");
    let installed = user_dir.join(PLUGIN_FILE);
    if let Some(other) = inspect_filename(home.path(), None) {
        panic!(
            "rtmpclientsink is installed for every user already ({}): this test needs a \
             machine without it (scripts/uninstall --system)",
            other.display()
        );
    }

    let (out, text) = run(
        as_user(
            &mut Command::new(repo().join("scripts/install")),
            home.path(),
        ),
        "scripts/install",
    );
    assert!(out.status.success(), "scripts/install failed:\n{text}");
    assert!(installed.is_file(), "no {}:\n{text}", installed.display());
    assert!(
        text.contains(&installed.display().to_string()),
        "does not say where the plugin went:\n{text}"
    );
    // Found by the default search alone; the registry is the new user's, made now.
    assert_eq!(
        inspect_filename(home.path(), None).as_deref(),
        Some(installed.as_path())
    );
    assert!(
        home.join(".cache/gstreamer-1.0").is_dir(),
        "gst-inspect-1.0 used the empty HOME's registry"
    );

    let (out, text) = run(
        as_user(
            &mut Command::new(repo().join("scripts/uninstall")),
            home.path(),
        ),
        "scripts/uninstall",
    );
    assert!(out.status.success(), "scripts/uninstall failed:\n{text}");
    assert!(!installed.exists(), "still there after uninstall");
    assert_eq!(
        inspect_filename(home.path(), None),
        None,
        "found after uninstall"
    );
}

#[test]
fn install_into_a_prefix_then_uninstall() {
    if !require_binaries(&["gst-inspect-1.0", "pkg-config", "cargo"]) {
        return;
    }
    let home = TempDir::new("install-prefix-home");
    let prefix = TempDir::new("install-prefix");
    let plugin_dir = prefix.join("lib/gstreamer-1.0");
    let installed = plugin_dir.join(PLUGIN_FILE);

    let mut install = Command::new(repo().join("scripts/install"));
    as_user(&mut install, home.path())
        .arg("--prefix")
        .arg(prefix.path());
    let (out, text) = run(&mut install, "scripts/install --prefix");
    assert!(
        out.status.success(),
        "scripts/install --prefix failed:\n{text}"
    );
    assert!(installed.is_file(), "no {}:\n{text}", installed.display());
    assert!(
        text.contains(&format!("GST_PLUGIN_PATH={}", plugin_dir.display())),
        "does not say how to use it:\n{text}"
    );
    assert_eq!(
        inspect_filename(home.path(), Some(&plugin_dir)).as_deref(),
        Some(installed.as_path())
    );
    assert_eq!(
        inspect_filename(home.path(), None),
        None,
        "a prefix is not searched by default"
    );

    let mut uninstall = Command::new(repo().join("scripts/uninstall"));
    as_user(&mut uninstall, home.path())
        .arg("--prefix")
        .arg(prefix.path());
    let (out, text) = run(&mut uninstall, "scripts/uninstall --prefix");
    assert!(
        out.status.success(),
        "scripts/uninstall --prefix failed:\n{text}"
    );
    assert!(!installed.exists());
}
