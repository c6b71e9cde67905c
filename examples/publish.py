#!/usr/bin/python3
"""Publish a live test stream (H.264 + AAC) with rtmpclientsink from Python (PyGObject).

    /usr/bin/python3 examples/publish.py rtmp://127.0.0.1/live/test
    /usr/bin/python3 examples/publish.py --duration 10 rtmps://host/app/STREAM-KEY

Prints every rtmp-* message the element posts on the bus and its `stats` once a second, and
stops cleanly after --duration seconds or on Ctrl-C: EOS first, so the server gets every frame
queued so far, then the pipeline goes to NULL. Exit status 0 on a clean stop, 1 on an ERROR
message (or when the stop does not complete), 2 on bad arguments.

Needs Debian's python3-gi and gir1.2-gstreamer-1.0, and the plugin installed (scripts/install)
or found through GST_PLUGIN_PATH. The stream key is never printed: the URLs shown are the
redacted ones the element puts into its messages.
"""

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402  (after require_version, as PyGObject asks)

PIPELINE = (
    "videotestsrc is-live=true pattern=ball"
    " ! video/x-raw,width=640,height=360,framerate=30/1"
    " ! x264enc tune=zerolatency bitrate={kbps} key-int-max=60"
    " ! rtmpclientsink name=sink"
    " audiotestsrc is-live=true wave=ticks ! audioconvert ! avenc_aac ! sink.audio"
)
# How long the EOS may take to get through (the element sends what it has queued).
STOP_TIMEOUT_S = 10


def say(text):
    print(text, flush=True)


class Publisher:
    def __init__(self, location, duration, kbps):
        self.loop = GLib.MainLoop()
        self.pipeline = Gst.parse_launch(PIPELINE.format(kbps=kbps))
        self.sink = self.pipeline.get_by_name("sink")
        self.sink.set_property("location", location)
        self.duration = duration
        self.exit_code = 0
        self.stopping = False
        # EOS asked for before the pipeline reached PLAYING (sent once it does).
        self.eos_pending = False
        self.playing = False
        bus = self.pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message", self.on_message)

    def run(self):
        if self.pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            # The ERROR message that says why is on the bus: let the loop print it.
            GLib.idle_add(self.quit_if_not_stopping)
        GLib.timeout_add_seconds(1, self.print_stats)
        if self.duration is not None:
            GLib.timeout_add(int(self.duration * 1000), self.stop, "duration reached")
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, self.on_sigint)
        self.loop.run()
        self.pipeline.set_state(Gst.State.NULL)
        self.pipeline.get_bus().remove_signal_watch()
        return self.exit_code

    def quit_if_not_stopping(self):
        if not self.stopping:
            self.exit_code = 1
            self.loop.quit()
        return GLib.SOURCE_REMOVE

    def on_sigint(self):
        if self.stopping:
            say("second Ctrl-C: stopping without waiting for EOS")
            self.exit_code = 1
            self.loop.quit()
            return GLib.SOURCE_REMOVE
        self.stop("Ctrl-C")
        return GLib.SOURCE_CONTINUE

    def stop(self, why):
        if not self.stopping:
            self.stopping = True
            say(f"stopping ({why}): sending EOS")
            # Not before PLAYING: sending an event holds the pipeline's state lock while each
            # source finishes its push, and a live source's push waits in the sink's preroll
            # until the state change that needs that lock — a deadlock.
            if self.playing:
                self.pipeline.send_event(Gst.Event.new_eos())
            else:
                self.eos_pending = True
            GLib.timeout_add_seconds(STOP_TIMEOUT_S, self.stop_timed_out)
        return GLib.SOURCE_REMOVE

    def stop_timed_out(self):
        say(f"EOS did not arrive within {STOP_TIMEOUT_S} s")
        self.exit_code = 1
        self.loop.quit()
        return GLib.SOURCE_REMOVE

    def print_stats(self):
        stats = self.sink.get_property("stats")
        if stats is not None:
            say(f"stats: {stats.to_string()}")
        return GLib.SOURCE_CONTINUE

    def on_message(self, _bus, message):
        kind = message.type
        if kind == Gst.MessageType.ELEMENT:
            structure = message.get_structure()
            if structure is not None and structure.get_name().startswith("rtmp-"):
                say(f"message: {structure.to_string()}")
        elif kind == Gst.MessageType.STATE_CHANGED and message.src == self.pipeline:
            _old, new, _pending = message.parse_state_changed()
            self.playing = new == Gst.State.PLAYING
            if self.playing and self.eos_pending:
                self.eos_pending = False
                self.pipeline.send_event(Gst.Event.new_eos())
        elif kind == Gst.MessageType.WARNING:
            err, debug = message.parse_warning()
            say(f"WARNING from {message.src.get_name()}: {err.message} ({debug or ''})")
        elif kind == Gst.MessageType.ERROR:
            err, debug = message.parse_error()
            say(f"ERROR from {message.src.get_name()}: {err.message} ({debug or ''})")
            self.exit_code = 1
            self.loop.quit()
        elif kind == Gst.MessageType.EOS:
            say("EOS: every frame was handed to the server")
            self.loop.quit()


def positive_seconds(text):
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


def main(argv):
    parser = argparse.ArgumentParser(
        description="Publish a live test stream with rtmpclientsink.")
    parser.add_argument("location", help="rtmp:// or rtmps:// URL, stream key included")
    parser.add_argument("--duration", type=positive_seconds, metavar="SECONDS",
                        help="stop after this long (default: run until Ctrl-C)")
    parser.add_argument("--kbps", type=int, default=1000, help="video bitrate (default 1000)")
    args = parser.parse_args(argv)

    Gst.init(None)
    if Gst.ElementFactory.find("rtmpclientsink") is None:
        say("rtmpclientsink not found: install the plugin (scripts/install) "
            "or point GST_PLUGIN_PATH at the directory that holds libgstrtmpclient.so")
        return 1
    return Publisher(args.location, args.duration, args.kbps).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
