//! FFmpeg 9, the reference Enhanced RTMP implementation, as an independent peer: a one-shot
//! RTMP server (`-listen 1`) that stream-copies what it receives to framemd5 and/or FLV, the
//! framemd5 of a source file read the same way, FLV remuxing and decode checks.
//!
//! Always `-copyinkf`: without it this build drops the AAC packets of GStreamer-made files in
//! stream copy (server, publisher and file reading alike).

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use super::util::{free_port, is_ci, loud, read_lossy, tcp_listening, wait_child, wait_for};

/// Where the imageio-ffmpeg venv of the machine setup keeps the FFmpeg 9 binary.
const FF9_VENV_LIB: &str = "/opt/ff9/lib";

/// Path of FFmpeg 9: env `FFMPEG9`, else the imageio-ffmpeg binary under /opt/ff9, else what
/// `python3 -c "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())"` prints.
/// None (with a loud skip message) when absent; panics under CI, which must not skip.
pub fn ffmpeg9() -> Option<PathBuf> {
    static FOUND: OnceLock<Option<PathBuf>> = OnceLock::new();
    let found = FOUND.get_or_init(locate).clone();
    if found.is_none() {
        assert!(
            !is_ci(),
            "FFmpeg 9 not found (env FFMPEG9, /opt/ff9 imageio-ffmpeg, python3 imageio_ffmpeg), \
             and CI is set: CI must not skip tests"
        );
        loud(
            "\n************************************************************************\n\
             *** SKIPPING TEST: FFmpeg 9 not found.\n\
             *** Set FFMPEG9, or `pip install imageio-ffmpeg` into the venv /opt/ff9.\n\
             *** With CI=true this would be a FAILURE.\n\
             ************************************************************************\n",
        );
    }
    found
}

fn locate() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FFMPEG9").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        // An explicit setting that does not work is a setup error, not a skip.
        assert!(p.is_file(), "FFMPEG9={} is not a file", p.display());
        return Some(p);
    }
    let in_venv = std::fs::read_dir(FF9_VENV_LIB).ok().and_then(|dirs| {
        dirs.flatten().find_map(|d| {
            let bin = d.path().join("site-packages/imageio_ffmpeg/binaries");
            std::fs::read_dir(bin).ok()?.flatten().find_map(|f| {
                let name = f.file_name().to_string_lossy().into_owned();
                (name.starts_with("ffmpeg-linux") && !name.ends_with(".txt")).then(|| f.path())
            })
        })
    });
    if in_venv.is_some() {
        return in_venv;
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import imageio_ffmpeg as i; print(i.get_ffmpeg_exe())",
        ])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    (out.status.success() && p.is_file()).then_some(p)
}

/// A `Command` for FFmpeg 9 with the flags every use here wants.
fn command(ff: &Path) -> Command {
    let mut c = Command::new(ff);
    c.args(["-nostdin", "-hide_banner", "-y", "-loglevel", "error"]);
    c.stdin(Stdio::null());
    c
}

/// The stream-copy output options: every stream, bit-exact, keyframes or not.
const COPY: [&str; 5] = ["-map", "0", "-c", "copy", "-copyinkf"];

/// What the listening server writes.
#[derive(Debug, Clone, Copy)]
pub struct Outputs {
    /// `-f framemd5 DIR/recv.framemd5`.
    pub framemd5: bool,
    /// `-f flv DIR/recv.flv` (the received sequence starts, for the codec configuration).
    pub flv: bool,
}

impl Outputs {
    pub const BOTH: Outputs = Outputs {
        framemd5: true,
        flv: true,
    };
}

/// FFmpeg 9 as a one-shot RTMP server on a free loopback port:
/// `ffmpeg -listen 1 -i rtmp://127.0.0.1:PORT/live/key -map 0 -c copy -copyinkf -f framemd5 OUT
/// [-map 0 -c copy -copyinkf -f flv OUT.flv]`. It exits when the publisher disconnects.
pub struct Ff9Listen {
    child: Option<Child>,
    port: u16,
    framemd5: Option<PathBuf>,
    flv: Option<PathBuf>,
    log: PathBuf,
}

impl Ff9Listen {
    /// Starts the server and waits (≤ 5 s per try, without connecting: it accepts only one
    /// connection) until its socket listens. None = skip (FFmpeg 9 missing).
    pub fn start(dir: &Path, outputs: Outputs) -> Option<Ff9Listen> {
        Ff9Listen::start_on(dir, outputs, None, &[])
    }

    /// [`Ff9Listen::start`] on `port` if given (a server restarted on the port its publisher
    /// reconnects to), with `global` FFmpeg options before `-i` (e.g. `-copyts`, which keeps the
    /// publisher's timestamps instead of moving them to start at 0).
    pub fn start_on(
        dir: &Path,
        outputs: Outputs,
        port: Option<u16>,
        global: &[&str],
    ) -> Option<Ff9Listen> {
        let ff = ffmpeg9()?;
        let framemd5 = outputs.framemd5.then(|| dir.join("recv.framemd5"));
        let flv = outputs.flv.then(|| dir.join("recv.flv"));
        assert!(framemd5.is_some() || flv.is_some(), "no output asked for");
        let log = dir.join("ffmpeg9-listen.log");
        let mut last = String::new();
        // free_port is racy: retry on another port if FFmpeg could not bind.
        for _ in 0..5 {
            let port = port.unwrap_or_else(free_port);
            let mut cmd = command(&ff);
            cmd.args(global)
                .args(["-listen", "1", "-i"])
                .arg(format!("rtmp://127.0.0.1:{port}/live/key"));
            if let Some(p) = &framemd5 {
                cmd.args(COPY).args(["-f", "framemd5"]).arg(p);
            }
            if let Some(p) = &flv {
                cmd.args(COPY).args(["-f", "flv"]).arg(p);
            }
            let logf = std::fs::File::create(&log).expect("create FFmpeg 9 log");
            let mut child = cmd
                .stdout(Stdio::null())
                .stderr(logf)
                .spawn()
                .expect("spawn FFmpeg 9");
            let mut exited = false;
            let ok = wait_for(Duration::from_secs(5), || {
                if let Ok(Some(_)) = child.try_wait() {
                    exited = true;
                    return true;
                }
                tcp_listening(port)
            });
            if ok && !exited {
                return Some(Ff9Listen {
                    child: Some(child),
                    port,
                    framemd5,
                    flv,
                    log,
                });
            }
            let _ = child.kill();
            let _ = child.wait();
            last = read_lossy(&log);
        }
        panic!("FFmpeg 9 -listen could not be started: {last}");
    }

    /// `rtmp://127.0.0.1:PORT/live/key`.
    pub fn url(&self) -> String {
        format!("rtmp://127.0.0.1:{}/live/key", self.port)
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server mid-stream with SIGTERM (FFmpeg closes the connection and completes
    /// its outputs with what it has), SIGKILL after `grace`.
    pub fn terminate(&mut self, grace: Duration) {
        if let Some(mut child) = self.child.take() {
            super::util::terminate_child(&mut child, grace);
        }
    }

    /// FFmpeg's stderr (errors only).
    pub fn log(&self) -> String {
        read_lossy(&self.log)
    }

    /// Waits (≤ `timeout`) for FFmpeg to exit, which it does once the publisher has
    /// disconnected and the outputs are complete. Panics on timeout.
    pub fn finish(&mut self, timeout: Duration) {
        if let Some(child) = self.child.as_mut() {
            let st = wait_child(child, timeout);
            assert!(
                st.is_some(),
                "FFmpeg 9 server still running {timeout:?} after the publish ended; log: {}",
                self.log()
            );
            self.child = None;
        }
    }

    /// The received packets; call [`Ff9Listen::finish`] first.
    pub fn framemd5(&self) -> FrameMd5 {
        assert!(self.child.is_none(), "call finish() first");
        let p = self
            .framemd5
            .as_ref()
            .expect("framemd5 output not asked for");
        let text = std::fs::read_to_string(p)
            .unwrap_or_else(|e| panic!("no framemd5 from FFmpeg 9 ({e}); log: {}", self.log()));
        FrameMd5::parse(&text)
    }

    /// The FLV FFmpeg wrote of what it received; call [`Ff9Listen::finish`] first.
    pub fn flv_path(&self) -> &Path {
        assert!(self.child.is_none(), "call finish() first");
        self.flv.as_deref().expect("flv output not asked for")
    }
}

impl Drop for Ff9Listen {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One stream of a framemd5 header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamInfo {
    pub index: usize,
    /// Time base `(num, den)`.
    pub tb: (i64, i64),
    /// "video" or "audio".
    pub media_type: String,
    /// FFmpeg codec name: hevc, av1, vp9, h264, aac, opus, flac, ac3, eac3, mp3.
    pub codec_id: String,
    pub dimensions: Option<(u32, u32)>,
    pub sample_rate: Option<u32>,
    /// Size and MD5 of the codec configuration (extradata) FFmpeg holds for the stream.
    pub extradata: Option<(usize, String)>,
}

/// One packet line of framemd5: `stream, dts, pts, duration, size, md5[, side data...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub stream: usize,
    pub dts: i64,
    pub pts: i64,
    pub duration: i64,
    pub size: usize,
    pub md5: String,
}

/// A parsed framemd5 file: the stream header and the packets in mux order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrameMd5 {
    pub streams: Vec<StreamInfo>,
    pub packets: Vec<Packet>,
}

impl FrameMd5 {
    /// Parses FFmpeg's framemd5 (version 2) text. Panics on a line it does not understand, so
    /// a format change cannot silently empty the comparison.
    pub fn parse(text: &str) -> FrameMd5 {
        let mut streams: BTreeMap<usize, StreamInfo> = BTreeMap::new();
        let mut packets = Vec::new();
        let num = |s: &str, line: &str| -> i64 {
            s.trim()
                .parse()
                .unwrap_or_else(|e| panic!("framemd5 number {s:?} in {line:?}: {e}"))
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if let Some(h) = line.strip_prefix('#') {
                let Some((key, value)) = h.split_once(':') else {
                    continue;
                };
                let value = value.trim();
                // "#tb 0: 1/1000": a key with a stream index ("#software: ..." has none).
                let mut kw = key.split_whitespace();
                let (Some(name), Some(idx)) = (kw.next(), kw.next()) else {
                    continue;
                };
                let Ok(idx) = idx.parse::<usize>() else {
                    continue;
                };
                let s = streams.entry(idx).or_insert_with(|| StreamInfo {
                    index: idx,
                    ..Default::default()
                });
                match name {
                    "tb" => {
                        let (n, d) = value.split_once('/').expect("tb n/d");
                        s.tb = (num(n, line), num(d, line));
                    }
                    "media_type" => s.media_type = value.to_string(),
                    "codec_id" => s.codec_id = value.to_string(),
                    "dimensions" => {
                        let (w, h) = value.split_once('x').expect("dimensions WxH");
                        s.dimensions = Some((num(w, line) as u32, num(h, line) as u32));
                    }
                    "sample_rate" => s.sample_rate = Some(num(value, line) as u32),
                    _ => {}
                }
                continue;
            }
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            assert!(f.len() >= 6, "framemd5 packet line {line:?}");
            packets.push(Packet {
                stream: num(f[0], line) as usize,
                dts: num(f[1], line),
                pts: num(f[2], line),
                duration: num(f[3], line),
                size: num(f[4], line) as usize,
                md5: f[5].to_string(),
            });
        }
        // "#extradata N,   SIZE, MD5": no colon, so parsed separately.
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("#extradata ") {
                let f: Vec<&str> = rest.split(',').map(str::trim).collect();
                assert!(f.len() == 3, "framemd5 extradata line {line:?}");
                let idx = num(f[0], line) as usize;
                let s = streams.entry(idx).or_insert_with(|| StreamInfo {
                    index: idx,
                    ..Default::default()
                });
                s.extradata = Some((num(f[1], line) as usize, f[2].to_string()));
            }
        }
        FrameMd5 {
            streams: streams.into_values().collect(),
            packets,
        }
    }

    /// The packets of stream `index`, in decode order.
    pub fn stream_packets(&self, index: usize) -> Vec<&Packet> {
        self.packets.iter().filter(|p| p.stream == index).collect()
    }

    /// The one stream with this codec (and dimensions, if given); panics if none or several.
    pub fn stream(&self, codec_id: &str, dimensions: Option<(u32, u32)>) -> &StreamInfo {
        let found: Vec<&StreamInfo> = self
            .streams
            .iter()
            .filter(|s| {
                s.codec_id == codec_id && (dimensions.is_none() || s.dimensions == dimensions)
            })
            .collect();
        assert!(
            found.len() == 1,
            "{} streams {codec_id} {dimensions:?} in {:?}",
            found.len(),
            self.streams
        );
        found[0]
    }

    /// Whether the PTS of stream `index` go backwards in decode order (B-frames).
    pub fn has_reordered_pts(&self, index: usize) -> bool {
        self.stream_packets(index)
            .windows(2)
            .any(|w| w[1].pts < w[0].pts)
    }
}

fn ms(stream: &StreamInfo, t: i64) -> i64 {
    assert!(
        stream.tb.0 > 0 && stream.tb.1 > 0,
        "stream {} has no time base",
        stream.index
    );
    // FLV and Matroska both have a 1 ms time base; anything else is converted exactly or fails.
    let num = t * stream.tb.0 * 1000;
    assert!(
        num % stream.tb.1 == 0,
        "time {t} in {:?} is not whole ms",
        stream.tb
    );
    num / stream.tb.1
}

/// Asserts that stream `got_stream` of `got` holds exactly the packets of `exp_stream` of
/// `expected`: the same count and each packet's size and MD5 equal; and that each received PTS
/// equals `ref_pts_ms` (the source's PTS per packet, in ms) to the millisecond after one
/// constant shift (a publisher may start its timeline elsewhere). Returns that shift
/// (received − source, ms).
pub fn assert_stream_identical(
    label: &str,
    expected: &FrameMd5,
    exp_stream: usize,
    ref_pts_ms: &[i64],
    got: &FrameMd5,
    got_stream: usize,
) -> i64 {
    let es = &expected.streams[exp_stream];
    let gs = &got.streams[got_stream];
    assert_eq!(es.codec_id, gs.codec_id, "{label}: codec");
    let e = expected.stream_packets(exp_stream);
    let g = got.stream_packets(got_stream);
    assert!(!e.is_empty(), "{label}: the source has no packets");
    assert_eq!(ref_pts_ms.len(), e.len(), "{label}: reference PTS count");
    // Packets first, so a lost one is reported where it happened.
    let n = e.len().min(g.len());
    let shift = g.first().map_or(0, |p| ms(gs, p.pts)) - ref_pts_ms[0];
    for i in 0..n {
        assert!(
            e[i].size == g[i].size && e[i].md5 == g[i].md5,
            "{label}: packet {i} differs: source {} bytes {}, received {} bytes {}",
            e[i].size,
            e[i].md5,
            g[i].size,
            g[i].md5
        );
        assert_eq!(
            ms(gs, g[i].pts) - ref_pts_ms[i],
            shift,
            "{label}: PTS of packet {i}: source {} ms, received {} ms (shift {shift} ms)",
            ref_pts_ms[i],
            ms(gs, g[i].pts)
        );
    }
    assert_eq!(
        g.len(),
        e.len(),
        "{label}: {} packets received, the source has {}",
        g.len(),
        e.len()
    );
    shift
}

impl FrameMd5 {
    /// The PTS of stream `index` in ms, in decode order.
    pub fn pts_ms(&self, index: usize) -> Vec<i64> {
        let s = &self.streams[index];
        self.stream_packets(index)
            .iter()
            .map(|p| ms(s, p.pts))
            .collect()
    }
}

/// Runs FFmpeg 9 to completion with `args` (bounded by `timeout`), panicking with its stderr
/// on failure; returns its stdout.
fn run(ff: &Path, args: &[OsString], timeout: Duration) -> String {
    let mut child = command(ff)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn FFmpeg 9");
    // Read the pipes on threads so a full pipe cannot block FFmpeg.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let st = wait_child(&mut child, timeout);
    if st.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let stdout = out_t.join().unwrap_or_default();
    let stderr = err_t.join().unwrap_or_default();
    assert!(
        st.is_some_and(|s| s.success()),
        "FFmpeg 9 {args:?} failed ({st:?}): {stderr}"
    );
    stdout
}

const RUN_TIMEOUT: Duration = Duration::from_secs(30);

/// `-i INPUT` followed by `rest`, as FFmpeg arguments.
fn args(input: &Path, rest: &[&[&str]], last: Option<&OsStr>) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec!["-i".into(), input.into()];
    v.extend(rest.iter().flat_map(|r| r.iter()).map(OsString::from));
    v.extend(last.map(OsString::from));
    v
}

/// The framemd5 of a file read the way the server reads the stream:
/// `ffmpeg -i FILE -map 0 -c copy -copyinkf [EXTRA...] -f framemd5 -`. `extra` is for a
/// bitstream filter, e.g. `["-bsf:v", "filter_units=remove_types=2"]`.
pub fn framemd5_of_file(ff: &Path, input: &Path, extra: &[&str]) -> FrameMd5 {
    let a = args(input, &[&COPY, extra, &["-f", "framemd5", "-"]], None);
    FrameMd5::parse(&run(ff, &a, RUN_TIMEOUT))
}

/// Remuxes `input` to the FLV FFmpeg 9 writes: `ffmpeg -i IN -map 0 -c copy -copyinkf -f flv
/// OUT`; a non-empty `maps` replaces `-map 0` (e.g. `["-map", "0:v:1", "-map", "0:a"]`).
pub fn remux_flv(ff: &Path, input: &Path, maps: &[&str], out: &Path) {
    let maps: &[&str] = if maps.is_empty() {
        &["-map", "0"]
    } else {
        maps
    };
    let a = args(
        input,
        &[maps, &["-c", "copy", "-copyinkf", "-f", "flv"]],
        Some(out.as_os_str()),
    );
    run(ff, &a, RUN_TIMEOUT);
}

/// Publishes `input` with FFmpeg 9 itself (`-i IN -map 0 -c copy -copyinkf -f flv URL`, as
/// fast as possible): the reference publisher the element is measured against.
pub fn publish(ff: &Path, input: &Path, url: &str) {
    let a = args(input, &[&COPY, &["-f", "flv", url]], None);
    run(ff, &a, RUN_TIMEOUT);
}

/// The decode errors of `ffmpeg -v error -i FILE -f null -` (empty = decodes cleanly).
pub fn decode_errors(ff: &Path, path: &Path) -> Vec<String> {
    let out = Command::new(ff)
        .args(["-nostdin", "-hide_banner", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .stdin(Stdio::null())
        .output()
        .expect("run FFmpeg 9");
    let mut errs: Vec<String> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    if !out.status.success() {
        errs.push(format!("exit status {}", out.status));
    }
    errs
}

/// The MD5 of `data` as lowercase hex, as framemd5 prints it.
pub fn md5_hex(data: &[u8]) -> String {
    use md5::Digest;
    md5::Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How long a publish of a few seconds of media may take end to end.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(30);

/// Pairs each stream of `expected` with the stream of `got` that has its codec (and, when
/// several share the codec, its dimensions, or for audio its extradata): a server numbers streams in the order they first
/// appear on the wire, not in the source's order. Panics if the stream sets differ.
pub fn match_streams(label: &str, expected: &FrameMd5, got: &FrameMd5) -> Vec<(usize, usize)> {
    assert_eq!(
        got.streams.len(),
        expected.streams.len(),
        "{label}: received streams {:?}, the source has {:?}",
        got.streams,
        expected.streams
    );
    expected
        .streams
        .iter()
        .map(|e| {
            let same_codec = expected
                .streams
                .iter()
                .filter(|s| s.codec_id == e.codec_id)
                .count();
            let dims = (same_codec > 1).then_some(e.dimensions).flatten();
            let candidates: Vec<&StreamInfo> = got
                .streams
                .iter()
                .filter(|g| g.codec_id == e.codec_id && (dims.is_none() || g.dimensions == dims))
                // Audio streams of one codec differ by their configuration (e.g. channels).
                .filter(|g| same_codec == 1 || dims.is_some() || g.extradata == e.extradata)
                .collect();
            assert!(
                candidates.len() == 1,
                "{label}: no single received stream for source stream {e:?} in {:?}",
                got.streams
            );
            (e.index, candidates[0].index)
        })
        .collect()
}

/// [`match_streams`], then [`assert_stream_identical`] for every pair with
/// `ref_pts_ms[source stream]` as the reference PTS, and all streams on one timeline (the same
/// shift, so A/V sync is kept to the ms). Returns `(source stream, received stream)` pairs and
/// the shift.
pub fn assert_all_streams_identical(
    label: &str,
    expected: &FrameMd5,
    ref_pts_ms: &[Vec<i64>],
    got: &FrameMd5,
) -> (Vec<(usize, usize)>, i64) {
    let pairs = match_streams(label, expected, got);
    let shifts: Vec<i64> = pairs
        .iter()
        .map(|&(e, g)| {
            let l = format!("{label} stream {e} ({})", expected.streams[e].codec_id);
            assert_stream_identical(&l, expected, e, &ref_pts_ms[e], got, g)
        })
        .collect();
    assert!(
        shifts.iter().all(|s| *s == shifts[0]),
        "{label}: the streams are not on one timeline: PTS shifts {shifts:?} ms for {pairs:?}"
    );
    (pairs, shifts[0])
}

/// A codec configuration as an FLV carries it (legacy AVC/AAC sequence headers included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceStart {
    /// 9 video, 8 audio.
    pub tag_type: u8,
    pub track_id: u8,
    /// The Enhanced RTMP FourCC; `avc1`/`mp4a` for the legacy AVC/AAC sequence headers.
    pub fourcc: [u8; 4],
    /// The record: avcC, hvcC, av1C, vpcC, AudioSpecificConfig, OpusHead, ...
    pub data: Vec<u8>,
}

/// Every sequence start of an FLV file (e.g. the one the server wrote of what it received),
/// read with the crate's `codec::flv` parsers. Panics on a tag they reject.
pub fn sequence_starts(flv: &Path) -> Vec<SequenceStart> {
    use gstrtmpclient::codec::flv::{
        self, AacPacketType, AudioPacketType, AudioTag, AvcPacketType, VideoPacketType,
        VideoTagBody,
    };
    let file = super::read_flv(flv).unwrap_or_else(|e| panic!("{}: {e}", flv.display()));
    let mut out = Vec::new();
    for (i, t) in file.tags.iter().enumerate() {
        let push = |out: &mut Vec<SequenceStart>, track_id, fourcc, data: &[u8]| {
            out.push(SequenceStart {
                tag_type: t.tag_type,
                track_id,
                fourcc,
                data: data.to_vec(),
            })
        };
        if t.is_video() {
            let v = flv::parse_video(&t.data)
                .unwrap_or_else(|e| panic!("{}: video tag {i}: {e}", flv.display()));
            match v.body {
                VideoTagBody::Legacy(l)
                    if l.avc_packet_type == Some(AvcPacketType::SequenceHeader) =>
                {
                    push(&mut out, 0, flv::AVC1, l.data)
                }
                VideoTagBody::Enhanced(x) if x.packet_type == VideoPacketType::SequenceStart => {
                    for tr in &x.tracks {
                        push(&mut out, tr.track_id, tr.fourcc, tr.data);
                    }
                }
                _ => {}
            }
        } else if t.is_audio() {
            let a = flv::parse_audio(&t.data)
                .unwrap_or_else(|e| panic!("{}: audio tag {i}: {e}", flv.display()));
            match a {
                AudioTag::Legacy(l) if l.aac_packet_type == Some(AacPacketType::SequenceHeader) => {
                    push(&mut out, 0, flv::MP4A, l.data)
                }
                AudioTag::Enhanced(x) if x.packet_type == AudioPacketType::SequenceStart => {
                    for tr in &x.tracks {
                        push(&mut out, tr.track_id, tr.fourcc, tr.data);
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// The framemd5 of the decoded frames of `path` (`-i FILE -map 0 -fps_mode passthrough -f
/// framemd5 -`, no copy): one line per frame that decoded (passthrough: no frame duplicated or
/// dropped to make a constant rate).
pub fn decoded_frames(ff: &Path, path: &Path) -> FrameMd5 {
    let a = args(
        path,
        &[&[
            "-map",
            "0",
            "-fps_mode",
            "passthrough",
            "-f",
            "framemd5",
            "-",
        ]],
        None,
    );
    FrameMd5::parse(&run(ff, &a, RUN_TIMEOUT))
}
