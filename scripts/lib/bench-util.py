#!/usr/bin/env python3
"""Helpers for scripts/bench (stdlib only).

  bench-util.py run TIMEOUT_S LOGFILE -- CMD...
      Runs CMD in its own session with stdin from /dev/null and stdout+stderr to LOGFILE,
      waits for it with os.wait4() and prints one line
          rc=<exit code|-signal> wall=<s> user=<s> sys=<s> cpu=<s> maxrss_kb=<kB> timeout=<0|1>
      CPU is the rusage of the child process itself (all its threads, plus any of its own
      children it waited for) -- nothing of this helper, nothing of other processes.
      maxrss_kb is NOT the child's own footprint: Linux carries the spawning Python's peak
      RSS over the exec, so it is only logged, never shown in the table.
      On timeout the whole process group gets SIGTERM, then SIGKILL 3 s later.

  bench-util.py summarize RESULTS_TSV ELEMENT_CPU_GOAL FFMPEG_CPU_GOAL
      RESULTS_TSV has lines "variant<TAB>run<TAB>ok<TAB>cpu<TAB>wall<TAB>user<TAB>sys<TAB>maxrss_kb"
      (ok: 1 success, 0 failed run, NA variant not available). A variant named V@SOURCE ran on
      another source file than the plain names; each source gets its own table and ratios.
      Prints the tables, the ratios with PASS/FAIL, and a machine-readable BENCH line.
      Exit status: 0 goals met, 3 a goal missed, 4 goals not evaluable (element or a
      baseline has no successful run).
"""
import os
import signal
import statistics
import sys
import threading
import time


def cmd_run(argv):
    timeout_s = float(argv[0])
    logfile = argv[1]
    if argv[2] != "--":
        sys.exit("usage: bench-util.py run TIMEOUT LOGFILE -- CMD...")
    cmd = argv[3:]
    timed_out = threading.Event()
    with open(logfile, "ab") as log, open(os.devnull, "rb") as devnull:
        # posix_spawn (vfork-style in glibc): the child costs next to nothing before exec.
        actions = [
            (os.POSIX_SPAWN_DUP2, devnull.fileno(), 0),
            (os.POSIX_SPAWN_DUP2, log.fileno(), 1),
            (os.POSIX_SPAWN_DUP2, log.fileno(), 2),
        ]
        t0 = time.monotonic()
        try:
            pid = os.posix_spawnp(cmd[0], cmd, os.environ, file_actions=actions, setsid=True)
        except OSError as e:
            log.write(f"cannot start {cmd[0]}: {e}\n".encode())
            print("rc=127 wall=0 user=0 sys=0 cpu=0 maxrss_kb=0 timeout=0")
            return

        def kill_group():
            timed_out.set()
            for sig, delay in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 0.0)):
                try:
                    os.killpg(pid, sig)
                except ProcessLookupError:
                    return
                time.sleep(delay)

        timer = threading.Timer(timeout_s, kill_group)
        timer.daemon = True
        timer.start()
        while True:
            try:
                _, status, ru = os.wait4(pid, 0)
                break
            except InterruptedError:
                continue
        wall = time.monotonic() - t0
        timer.cancel()
    if os.WIFEXITED(status):
        rc = os.WEXITSTATUS(status)
    else:
        rc = -os.WTERMSIG(status)
    print(
        f"rc={rc} wall={wall:.3f} user={ru.ru_utime:.3f} sys={ru.ru_stime:.3f} "
        f"cpu={ru.ru_utime + ru.ru_stime:.3f} maxrss_kb={ru.ru_maxrss} "
        f"timeout={1 if timed_out.is_set() else 0}"
    )


# Variants in display order; the first three are the contenders, the rest are
# informative floors (no network, no server).
ORDER = ["element", "rtmp2sink", "ffmpeg", "ffmpeg9", "demux", "flvmux", "ffmpeg-null", "gst-init"]
LABELS = {
    "element": "(1) rtmpclientsink",
    "rtmp2sink": "(2) h264parse+flvmux+rtmp2sink",
    "ffmpeg": "(3) ffmpeg -c copy -f flv",
    "ffmpeg9": "(4) FFmpeg 9 -c copy -copyinkf -f flv",
    "demux": "    gst demux only (fakesink)",
    "flvmux": "    gst demux+parse+flvmux (fakesink)",
    "ffmpeg-null": "    ffmpeg demux only (-f null)",
    "gst-init": "    gst-launch start-up only",
}


SOURCE_LABELS = {
    "": "ffmpeg-made file (libx264 ultrafast, no AUD)",
    "x264enc": "x264enc-made file (GStreamer defaults: AUD in every frame, B-frames)",
    "hevc": "HEVC file (libx265 ultrafast, B-frames; Enhanced RTMP hvc1)",
}


def split_name(name):
    """'element@x264enc' -> ('element', 'x264enc'); 'element' -> ('element', '')."""
    v, _, src = name.partition("@")
    return v, src


def cmd_summarize(argv):
    path, goal_rtmp2sink, goal_ffmpeg = argv[0], float(argv[1]), float(argv[2])
    runs = {}
    for line in open(path, encoding="utf-8"):
        f = line.rstrip("\n").split("\t")
        if len(f) < 8:
            continue
        variant, _run, ok, cpu, wall, user, sys_, rss = f[:8]
        r = runs.setdefault(variant, {"ok": [], "failed": 0, "na": False})
        if ok == "NA":
            r["na"] = True
        elif ok == "1":
            r["ok"].append((float(cpu), float(wall), float(user), float(sys_), int(rss)))
        else:
            r["failed"] += 1

    # Source groups in a fixed order: the plain names (ffmpeg-made file) first.
    sources = sorted({split_name(v)[1] for v in runs}, key=lambda s: (s != "", s))

    def names_of(src):
        order = [v for v in ORDER if (v + ("@" + src if src else "")) in runs]
        extra = sorted(v for v, s in map(split_name, runs) if s == src and v not in ORDER)
        return [(v, v + ("@" + src if src else "")) for v in order + extra]

    med = {}
    hdr = (f"{'variant':<38} {'runs':>5} {'CPU s med':>9} {'(min-max)':>13} "
           f"{'user':>6} {'sys':>6} {'wall s med':>10} {'(min-max)':>13}")
    for src in sources:
        print(f"Source: {SOURCE_LABELS.get(src, src)}")
        print(hdr)
        print("-" * len(hdr))
        for v, name in names_of(src):
            r = runs[name]
            ok = r["ok"]
            n = f"{len(ok)}/{len(ok) + r['failed']}"
            if r["na"]:
                print(f"{LABELS.get(v, v):<38} {'-':>5}  NOT AVAILABLE (plugin missing or without element)")
                continue
            if not ok:
                print(f"{LABELS.get(v, v):<38} {n:>5}  (no successful run)")
                continue
            cpu = [x[0] for x in ok]
            wall = [x[1] for x in ok]
            med[name] = (statistics.median(cpu), statistics.median(wall))
            print(f"{LABELS.get(v, v):<38} {n:>5} {med[name][0]:9.3f} "
                  f"{'(' + f'{min(cpu):.2f}-{max(cpu):.2f}' + ')':>13} "
                  f"{statistics.median(x[2] for x in ok):6.2f} "
                  f"{statistics.median(x[3] for x in ok):6.2f} "
                  f"{med[name][1]:10.3f} "
                  f"{'(' + f'{min(wall):.2f}-{max(wall):.2f}' + ')':>13}")
        print()

    def ratio(a, b, idx):
        if a in med and b in med and med[b][idx] > 0:
            return med[a][idx] / med[b][idx]
        return None

    def fmt(x):
        return "n/a" if x is None else f"{x:.3f}"

    def at(v, src):
        return v + ("@" + src if src else "")

    verdicts = []
    ratio_kv = []
    for src in sources:
        if at("element", src) not in runs:
            continue
        tag = f" [{src}]" if src else ""
        for base, goal in (("rtmp2sink", goal_rtmp2sink), ("ffmpeg", goal_ffmpeg),
                           ("ffmpeg9", goal_ffmpeg)):
            # FFmpeg 9 is the baseline of the HEVC source only, and the only one there.
            if (base == "ffmpeg9") != (src == "hevc"):
                continue
            rc = ratio(at("element", src), at(base, src), 0)
            rw = ratio(at("element", src), at(base, src), 1)
            if rc is None:
                verdict = "n/a (no element or baseline figures)"
            elif rc <= goal:
                verdict = "PASS"
            else:
                verdict = "FAIL"
            verdicts.append(verdict)
            print(f"element/{base:<9}{tag} CPU ratio {fmt(rc):>6} (goal <= {goal:.2f}): {verdict}"
                  f"   wall ratio {fmt(rw)}")
            suffix = f"_{src}" if src else ""
            ratio_kv.append(f"ratio_cpu_{base}{suffix}={fmt(rc)}")
            ratio_kv.append(f"ratio_wall_{base}{suffix}={fmt(rw)}")
        # The part of each pipeline's CPU that is not demuxing (informative).
        for v in ("element", "rtmp2sink"):
            if at(v, src) in med and at("demux", src) in med:
                above = med[at(v, src)][0] - med[at("demux", src)][0]
                print(f"{v}{tag} CPU above the gst demux floor: {above:.3f} s")
        if at("demux", src) in med and at("rtmp2sink", src) in med:
            floor = med[at("demux", src)][0] / med[at("rtmp2sink", src)][0]
            print(f"gst demux floor alone{tag} = {floor:.3f} x rtmp2sink CPU")

    kv = []
    for src in sources:
        for v, name in names_of(src):
            key = name.replace("-", "_").replace("@", "_")
            if name in med:
                kv.append(f"{key}_cpu={med[name][0]:.3f} {key}_wall={med[name][1]:.3f}")
            else:
                kv.append(f"{key}_cpu=NA {key}_wall=NA")
    kv.extend(ratio_kv)
    if "FAIL" in verdicts:
        status, goal = 3, "FAIL"
    elif verdicts and all(v == "PASS" for v in verdicts):
        status, goal = 0, "PASS"
    else:
        status, goal = 4, "NA"
    print()
    print("BENCH " + " ".join(kv) + f" goal={goal}")
    return status


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    if sys.argv[1] == "run":
        cmd_run(sys.argv[2:])
        return 0
    if sys.argv[1] == "summarize":
        return cmd_summarize(sys.argv[2:])
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main())
