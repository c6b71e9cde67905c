# shellcheck shell=bash
# Sourced by scripts/test, scripts/demo, scripts/bench and scripts/fuzz.
#
# install_deps: installs the Debian packages the project's commands use, but only those
#   that are missing (checked with dpkg-query), with one `apt-get update` first and only
#   when something is missing. Then checks every command, nginx module and GStreamer
#   element the demo, the tests, the bench and the examples use, and fails naming the
#   Debian package that provides whatever is missing. Works as root without a TTY; uses
#   sudo when not root. Never lets package installation start a system service
#   (policy-rc.d), so installing nginx does not try to grab port 80.
# install_ffmpeg9: FFmpeg 9 (newer than Debian's 5.1) in a Python venv under the cache
#   dir, from the imageio-ffmpeg wheel; `ffmpeg9_exe` prints its path (tests read $FFMPEG9).
# ensure_cargo_fuzz: `cargo install cargo-fuzz` unless `cargo fuzz` already works.

# GStreamer elements used by scripts/demo, tests/, scripts/bench and examples/, each with
# the Debian package that carries it (found with
# `dpkg -S "$(gst-inspect-1.0 EL | awk '$1 == "Filename" {print $2; exit}')"`).
RTMPCLIENT_GST_ELEMENTS=(
  # core
  filesrc:libgstreamer1.0-0
  filesink:libgstreamer1.0-0
  fakesrc:libgstreamer1.0-0
  fakesink:libgstreamer1.0-0
  queue:libgstreamer1.0-0
  capsfilter:libgstreamer1.0-0
  identity:libgstreamer1.0-0
  tee:libgstreamer1.0-0
  # base
  videotestsrc:gstreamer1.0-plugins-base
  audiotestsrc:gstreamer1.0-plugins-base
  audioconvert:gstreamer1.0-plugins-base
  videoconvert:gstreamer1.0-plugins-base
  appsrc:gstreamer1.0-plugins-base
  appsink:gstreamer1.0-plugins-base
  compositor:gstreamer1.0-plugins-base
  opusenc:gstreamer1.0-plugins-base
  # x (the pango plugin)
  timeoverlay:gstreamer1.0-x
  # good
  aacparse:gstreamer1.0-plugins-good
  matroskamux:gstreamer1.0-plugins-good
  matroskademux:gstreamer1.0-plugins-good
  flvmux:gstreamer1.0-plugins-good
  flvdemux:gstreamer1.0-plugins-good
  qtdemux:gstreamer1.0-plugins-good
  imagefreeze:gstreamer1.0-plugins-good
  vp9enc:gstreamer1.0-plugins-good
  flacenc:gstreamer1.0-plugins-good
  ac3parse:gstreamer1.0-plugins-good
  lamemp3enc:gstreamer1.0-plugins-good
  mpegaudioparse:gstreamer1.0-plugins-good
  # bad
  h264parse:gstreamer1.0-plugins-bad
  h265parse:gstreamer1.0-plugins-bad
  x265enc:gstreamer1.0-plugins-bad
  voaacenc:gstreamer1.0-plugins-bad
  rtmp2sink:gstreamer1.0-plugins-bad
  av1enc:gstreamer1.0-plugins-bad
  av1parse:gstreamer1.0-plugins-bad
  vp9parse:gstreamer1.0-plugins-bad
  rtmpsink:gstreamer1.0-plugins-bad     # librtmp, a reference client in tests/secure_token.rs
  # ugly
  x264enc:gstreamer1.0-plugins-ugly
  # libav
  avenc_aac:gstreamer1.0-libav
  avenc_ac3:gstreamer1.0-libav
  avenc_eac3:gstreamer1.0-libav
)

# Commands the scripts and tests run, each with its Debian package.
RTMPCLIENT_COMMANDS=(
  gst-launch-1.0:gstreamer1.0-tools
  gst-inspect-1.0:gstreamer1.0-tools
  nginx:nginx
  ffmpeg:ffmpeg
  ffprobe:ffmpeg
  openssl:openssl
  python3:python3
  timeout:coreutils
  pkg-config:pkg-config
  cc:gcc
  c++:g++          # libfuzzer-sys builds libFuzzer (C++) for scripts/fuzz
)

# nginx modules the tests and scripts load, each with its Debian package.
RTMPCLIENT_NGINX_MODULES=(
  /usr/lib/nginx/modules/ngx_rtmp_module.so:libnginx-mod-rtmp
  /usr/lib/nginx/modules/ngx_stream_module.so:libnginx-mod-stream
)

# Everything else to install: build headers and what the checks above do not cover.
RTMPCLIENT_DEB_PACKAGES=(
  pkg-config
  gcc
  g++
  libc6-dev
  libgstreamer1.0-dev
  libgstreamer-plugins-base1.0-dev
  gstreamer1.0-tools
  gstreamer1.0-plugins-base
  gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly
  gstreamer1.0-libav
  gstreamer1.0-x
  nginx
  libnginx-mod-rtmp
  libnginx-mod-stream
  ffmpeg
  openssl
  ca-certificates
  python3
  python3-venv
  # examples/publish.py (PyGObject) and tests/python_example.rs
  python3-gi
  gir1.2-gstreamer-1.0
)

# FFmpeg 9 from the imageio-ffmpeg wheel: this version bundles FFmpeg 9.0.x.
RTMPCLIENT_FFMPEG9_WHEEL="imageio-ffmpeg==0.8.1"
RTMPCLIENT_FFMPEG9_DIR="${RTMPCLIENT_FFMPEG9_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/rtmpclient/ff9}"

_deps_log() { printf '[deps] %s\n' "$*" >&2; }

_deps_sudo() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    _deps_log "not root and no sudo: cannot run: $*"
    return 1
  fi
}

# Prints the packages from "$@" that are not installed.
deps_missing() {
  local p status
  for p in "$@"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    if [ "$status" != "installed" ]; then
      printf '%s\n' "$p"
    fi
  done
}

# apt-get install "$@" non-interactively, with services kept from starting.
deps_apt_install() {
  local created_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    # 101 = "action forbidden": invoke-rc.d then skips starting/stopping services.
    printf '#!/bin/sh\nexit 101\n' | _deps_sudo tee /usr/sbin/policy-rc.d >/dev/null
    _deps_sudo chmod 755 /usr/sbin/policy-rc.d
    created_policy=1
  fi
  local rc=0
  _deps_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends "$@" </dev/null || rc=$?
  if [ "$created_policy" -eq 1 ]; then
    _deps_sudo rm -f /usr/sbin/policy-rc.d
  fi
  return "$rc"
}

# Prints every Debian package the project needs, once each: the list above plus the
# packages named in the element, command and module tables.
deps_all_packages() {
  local entry
  {
    printf '%s\n' "${RTMPCLIENT_DEB_PACKAGES[@]}"
    for entry in "${RTMPCLIENT_GST_ELEMENTS[@]}" "${RTMPCLIENT_COMMANDS[@]}" \
      "${RTMPCLIENT_NGINX_MODULES[@]}"; do
      printf '%s\n' "${entry##*:}"
    done
  } | awk '!seen[$0]++'
}

# Checks each command, nginx module and GStreamer element; prints one line per missing
# one, naming its package, and returns 1 if anything is missing.
deps_check() {
  local entry name pkg bad=0
  for entry in "${RTMPCLIENT_COMMANDS[@]}"; do
    name=${entry%%:*}; pkg=${entry##*:}
    if ! command -v "$name" >/dev/null 2>&1; then
      _deps_log "MISSING command '$name': install the Debian package $pkg"
      bad=1
    fi
  done
  for entry in "${RTMPCLIENT_NGINX_MODULES[@]}"; do
    name=${entry%%:*}; pkg=${entry##*:}
    if [ ! -f "$name" ]; then
      _deps_log "MISSING nginx module $name: install the Debian package $pkg"
      bad=1
    fi
  done
  if ! command -v gst-inspect-1.0 >/dev/null 2>&1; then
    _deps_log "cannot check GStreamer elements without gst-inspect-1.0 (gstreamer1.0-tools)"
    return 1
  fi
  local n=0
  for entry in "${RTMPCLIENT_GST_ELEMENTS[@]}"; do
    name=${entry%%:*}; pkg=${entry##*:}
    if ! gst-inspect-1.0 --exists "$name" </dev/null >/dev/null 2>&1; then
      if [ -z "$(deps_missing "$pkg")" ]; then
        # Installed, yet not registered: a plugin that failed to load (missing library)
        # or a stale registry cache.
        _deps_log "MISSING GStreamer element '$name' although its Debian package $pkg is" \
          "installed; see \`gst-inspect-1.0 $name\`, or remove" \
          "${XDG_CACHE_HOME:-$HOME/.cache}/gstreamer-1.0/registry.*.bin and retry"
      else
        _deps_log "MISSING GStreamer element '$name': install the Debian package $pkg"
      fi
      bad=1
    else
      n=$((n + 1))
    fi
  done
  if [ "$bad" -eq 0 ]; then
    _deps_log "all ${#RTMPCLIENT_COMMANDS[@]} commands, ${#RTMPCLIENT_NGINX_MODULES[@]} nginx" \
      "modules and $n GStreamer elements present"
  fi
  return "$bad"
}

# Installs whatever Debian package is missing (plus "$@" if given), then checks that every
# command, module and element is there.
install_deps() {
  local missing all
  mapfile -t all < <(deps_all_packages; [ "$#" -eq 0 ] || printf '%s\n' "$@")
  mapfile -t missing < <(deps_missing "${all[@]}")
  if [ "${#missing[@]}" -eq 0 ]; then
    _deps_log "all ${#all[@]} Debian packages present"
  else
    _deps_log "installing missing packages: ${missing[*]}"
    _deps_sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null || return 1
    deps_apt_install "${missing[@]}" || return 1
  fi
  deps_check || return 1
  # The Rust toolchain itself cannot be downloaded here; its components can be checked.
  if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
      export PATH="$HOME/.cargo/bin:$PATH"
    else
      _deps_log "cargo not found (PATH=$PATH)"
      return 1
    fi
  fi
  local comp
  for comp in rustfmt clippy; do
    if ! cargo "${comp/rustfmt/fmt}" --version >/dev/null 2>&1; then
      _deps_log "cargo ${comp/rustfmt/fmt} missing; trying rustup component add $comp"
      rustup component add "$comp" </dev/null || { _deps_log "cannot add $comp"; return 1; }
    fi
  done
}

# Prints the FFmpeg 9 executable: $FFMPEG9 if set, else the one installed by
# install_ffmpeg9. Returns 1 (printing nothing) when there is none.
ffmpeg9_exe() {
  if [ -n "${FFMPEG9:-}" ]; then
    [ -x "$FFMPEG9" ] || { _deps_log "FFMPEG9=$FFMPEG9 is not an executable"; return 1; }
    printf '%s\n' "$FFMPEG9"
    return
  fi
  local link="$RTMPCLIENT_FFMPEG9_DIR/bin/ffmpeg9"
  [ -x "$link" ] && readlink -f "$link"
}

# Installs FFmpeg 9 into a venv under $RTMPCLIENT_FFMPEG9_DIR (once; later calls find it)
# and links it as bin/ffmpeg9 there, unless $FFMPEG9 names one. Checks that it runs and
# is version 9.
install_ffmpeg9() {
  local dir=$RTMPCLIENT_FFMPEG9_DIR exe version
  if [ -n "${FFMPEG9:-}" ]; then
    exe=$(ffmpeg9_exe) || return 1
  elif ! exe=$(ffmpeg9_exe); then
    _deps_log "installing FFmpeg 9 ($RTMPCLIENT_FFMPEG9_WHEEL) into the venv $dir"
    python3 -m venv "$dir" </dev/null || { _deps_log "python3 -m venv $dir failed"; return 1; }
    "$dir/bin/pip" install -q --disable-pip-version-check "$RTMPCLIENT_FFMPEG9_WHEEL" \
      </dev/null || { _deps_log "pip install $RTMPCLIENT_FFMPEG9_WHEEL failed"; return 1; }
    exe=$("$dir/bin/python" -c 'import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())' \
      </dev/null) || { _deps_log "imageio_ffmpeg has no ffmpeg binary"; return 1; }
    ln -sfn "$exe" "$dir/bin/ffmpeg9"
  fi
  version=$("$exe" -nostdin -version </dev/null 2>/dev/null | sed -n '1s/^ffmpeg version n\{0,1\}\([^ ]*\).*/\1/p')
  case $version in
    9.*) _deps_log "FFmpeg $version: $exe" ;;
    *) _deps_log "$exe is not FFmpeg 9 (version '${version:-unknown}')"; return 1 ;;
  esac
}

# Installs cargo-fuzz (into ~/.cargo/bin) unless `cargo fuzz` already works.
ensure_cargo_fuzz() {
  if cargo fuzz --version >/dev/null 2>&1; then
    return 0
  fi
  _deps_log "installing cargo-fuzz (cargo install cargo-fuzz --locked)"
  cargo install cargo-fuzz --locked </dev/null || { _deps_log "cargo install cargo-fuzz failed"; return 1; }
}
