# shellcheck shell=bash
# Sourced by scripts/install and scripts/uninstall: where the plugin goes, and what
# gst-inspect-1.0 finds with the default plugin search (no GST_PLUGIN_PATH, a fresh registry).
#
#   (default)       the user's plugin directory, which GStreamer scans for that user:
#                   ${XDG_DATA_HOME:-$HOME/.local/share}/gstreamer-1.0/plugins
#   --system        GStreamer's own plugin directory, scanned for every user:
#                   $(pkg-config --variable=pluginsdir gstreamer-1.0); sudo when not root
#   --prefix DIR    DIR/lib/gstreamer-1.0 (packaging, staging, a private prefix); GStreamer
#                   finds it only through GST_PLUGIN_PATH, so the check sets exactly that

# shellcheck disable=SC2034  # used by the scripts that source this file
RTMPCLIENT_PLUGIN_FILE=libgstrtmpclient.so
RTMPCLIENT_ELEMENT=rtmpclientsink

_pi_script=${0##*/}
pi_say() { printf '[%s] %s\n' "$_pi_script" "$*" >&2; }
pi_die() { printf '[%s] ERROR: %s\n' "$_pi_script" "$*" >&2; exit 1; }

# pi_parse_args "$@": sets pi_mode (user, system or prefix) and pi_dest (the directory).
pi_parse_args() {
  pi_mode=user
  pi_prefix=
  while [ "$#" -gt 0 ]; do
    case $1 in
      --system) pi_mode=system ;;
      --prefix)
        if [ "$#" -lt 2 ] || [ -z "$2" ]; then pi_die "--prefix needs a directory"; fi
        pi_mode=prefix; pi_prefix=$2; shift ;;
      --prefix=*) pi_mode=prefix; pi_prefix=${1#--prefix=}
        [ -n "$pi_prefix" ] || pi_die "--prefix needs a directory" ;;
      -h|--help)
        # The calling script's header comment is its help.
        awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
        exit 0 ;;
      *) printf 'usage: %s [--system | --prefix DIR]\n' "$_pi_script" >&2; exit 2 ;;
    esac
    shift
  done
  case $pi_mode in
    user)
      local data=${XDG_DATA_HOME:-}
      if [ -z "$data" ]; then
        [ -n "${HOME:-}" ] || pi_die "HOME is not set: cannot find the user plugin directory"
        data=$HOME/.local/share
      fi
      pi_dest=$data/gstreamer-1.0/plugins ;;
    system)
      command -v pkg-config >/dev/null 2>&1 ||
        pi_die "pkg-config not found: install the Debian package pkg-config"
      pi_dest=$(pkg-config --variable=pluginsdir gstreamer-1.0 2>/dev/null) ||
        pi_die "pkg-config knows no gstreamer-1.0: install the Debian package libgstreamer1.0-dev"
      [ -n "$pi_dest" ] || pi_die "pkg-config gives no pluginsdir for gstreamer-1.0" ;;
    prefix)
      # Absolute, so the printed path and GST_PLUGIN_PATH work from any directory.
      case $pi_prefix in /*) ;; *) pi_prefix=$PWD/$pi_prefix ;; esac
      pi_dest=${pi_prefix%/}/lib/gstreamer-1.0 ;;
  esac
}

# pi_sudo CMD...: runs CMD as is when the destination is writable (or creatable), else with
# sudo (the --system case for a normal user).
pi_sudo() {
  local probe=$pi_dest
  while [ ! -e "$probe" ]; do probe=$(dirname "$probe"); done
  if [ -w "$probe" ]; then
    "$@"
  elif [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    pi_die "cannot write to $probe (run as a user who can, or use --prefix DIR)"
  fi
}

# pi_inspect ARGS...: gst-inspect-1.0 with the plugin search a fresh process would make:
# no GST_PLUGIN_PATH (except for --prefix, whose directory only GST_PLUGIN_PATH can name)
# and a new registry file, so a stale cache can neither hide nor fake the plugin.
pi_inspect() {
  local reg rc=0
  reg=$(mktemp -d "${TMPDIR:-/tmp}/rtmpclient-registry.XXXXXX")
  if [ "$pi_mode" = prefix ]; then
    env -u GST_PLUGIN_PATH_1_0 GST_PLUGIN_PATH="$pi_dest" GST_REGISTRY="$reg/registry.bin" \
      GST_REGISTRY_1_0="$reg/registry.bin" gst-inspect-1.0 "$@" </dev/null || rc=$?
  else
    env -u GST_PLUGIN_PATH -u GST_PLUGIN_PATH_1_0 GST_REGISTRY="$reg/registry.bin" \
      GST_REGISTRY_1_0="$reg/registry.bin" gst-inspect-1.0 "$@" </dev/null || rc=$?
  fi
  rm -rf "$reg"
  return "$rc"
}

# pi_found_file: prints the file gst-inspect-1.0 loads rtmpclientsink from (nothing, and
# status 1, when no plugin provides it).
pi_found_file() {
  local out
  out=$(pi_inspect "$RTMPCLIENT_ELEMENT" 2>/dev/null) || return 1
  # awk reads all of it: an early exit would break the pipe (pipefail).
  awk '$1 == "Filename" && !done { print $2; done = 1 }' <<<"$out"
}
