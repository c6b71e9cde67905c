# shellcheck shell=bash
# Sourced by scripts/test and scripts/demo: installs the Debian packages the project
# needs, but only those that are missing (checked with dpkg-query), with one
# `apt-get update` first. Works as root without a TTY; uses sudo when not root.
# Never lets package installation start a system service (policy-rc.d), so installing
# nginx does not try to grab port 80.

RTMPCLIENT_DEB_PACKAGES=(
  pkg-config
  libgstreamer1.0-dev
  libgstreamer-plugins-base1.0-dev
  gstreamer1.0-tools
  gstreamer1.0-plugins-base
  gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly
  gstreamer1.0-libav
  nginx
  libnginx-mod-rtmp
  libnginx-mod-stream
  ffmpeg
  openssl
)

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

# Installs whatever is missing from RTMPCLIENT_DEB_PACKAGES (plus "$@" if given).
install_deps() {
  local missing
  mapfile -t missing < <(deps_missing "${RTMPCLIENT_DEB_PACKAGES[@]}" "$@")
  if [ "${#missing[@]}" -eq 0 ]; then
    _deps_log "all ${#RTMPCLIENT_DEB_PACKAGES[@]} Debian packages present"
  else
    _deps_log "installing missing packages: ${missing[*]}"
    _deps_sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null
    deps_apt_install "${missing[@]}"
  fi
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
