//! `ffprobe`/`ffmpeg` as an independent oracle: packet lists with hashes, stream info,
//! decode errors. Output is read in ffprobe's `flat` form (one `key="value"` per line),
//! which stays line-oriented even when packets carry side data (csv/compact split
//! such records over several lines).

use std::path::Path;
use std::process::{Command, Stdio};

use super::util::find_binary;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// 'v' video, 'a' audio, '?' other.
    pub stream_type: char,
    pub pts_ms: Option<i64>,
    pub dts_ms: Option<i64>,
    pub size: usize,
    /// ffprobe flags, e.g. "K_" (keyframe), "__".
    pub flags: String,
    /// "MD5:..." of the packet data.
    pub data_hash: String,
}

impl Packet {
    pub fn is_key(&self) -> bool {
        self.flags.contains('K')
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct StreamInfo {
    pub index: u32,
    /// "video" / "audio".
    pub codec_type: String,
    /// "h264" / "aac".
    pub codec_name: String,
    /// e.g. "Main", "High", "LC".
    pub profile: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub sample_rate: Option<u32>,
    pub channels: Option<u32>,
    pub duration_s: Option<f64>,
}

fn run(bin: &str, args: &[&str], path: &Path) -> Result<(String, String, bool), String> {
    run_around(bin, args, path, &[])
}

fn run_around(
    bin: &str,
    args: &[&str],
    path: &Path,
    after: &[&str],
) -> Result<(String, String, bool), String> {
    let exe = find_binary(bin).ok_or_else(|| format!("{bin} not found"))?;
    let out = Command::new(exe)
        .args(args)
        .arg(path)
        .args(after)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("spawn {bin}: {e}"))?;
    Ok((
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.success(),
    ))
}

/// Parses ffprobe `-of flat` output into records keyed by (section, index), e.g. all
/// `packets.packet.7.*` keys become record 7 of section "packets.packet". Nested keys
/// (side data, tags) are kept with their remaining dotted path.
pub fn parse_flat(text: &str, section: &str) -> Vec<Vec<(String, String)>> {
    let prefix = format!("{section}.");
    let mut recs: Vec<Vec<(String, String)>> = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(&prefix) else {
            continue;
        };
        let Some((idx, kv)) = rest.split_once('.') else {
            continue;
        };
        let Ok(idx) = idx.parse::<usize>() else {
            continue;
        };
        let Some((k, v)) = kv.split_once('=') else {
            continue;
        };
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|x| x.strip_suffix('"'))
            .unwrap_or(v);
        if recs.len() <= idx {
            recs.resize(idx + 1, Vec::new());
        }
        recs[idx].push((k.to_string(), v.to_string()));
    }
    recs
}

fn field<'a>(rec: &'a [(String, String)], key: &str) -> Option<&'a str> {
    rec.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// "0.067000" -> Some(67); "N/A"/missing -> None. Rounds to the nearest ms.
fn secs_to_ms(v: Option<&str>) -> Option<i64> {
    let f: f64 = v?.parse().ok()?;
    Some((f * 1000.0).round() as i64)
}

/// All packets in file order (demuxer order), via
/// `ffprobe -v error -show_data_hash MD5 -show_entries packet=... -of flat`.
pub fn packets(path: &Path) -> Result<Vec<Packet>, String> {
    let (out, err, ok) = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_data_hash",
            "MD5",
            "-show_entries",
            "packet=codec_type,pts_time,dts_time,size,flags,data_hash",
            "-of",
            "flat",
        ],
        path,
    )?;
    if !ok {
        return Err(format!("ffprobe failed on {}: {err}", path.display()));
    }
    Ok(parse_flat(&out, "packets.packet")
        .iter()
        .map(|r| Packet {
            stream_type: match field(r, "codec_type") {
                Some("video") => 'v',
                Some("audio") => 'a',
                _ => '?',
            },
            pts_ms: secs_to_ms(field(r, "pts_time")),
            dts_ms: secs_to_ms(field(r, "dts_time")),
            size: field(r, "size").and_then(|s| s.parse().ok()).unwrap_or(0),
            flags: field(r, "flags").unwrap_or("").to_string(),
            data_hash: field(r, "data_hash").unwrap_or("").to_string(),
        })
        .collect())
}

/// Packets of one kind ('v' or 'a').
pub fn packets_of(path: &Path, kind: char) -> Result<Vec<Packet>, String> {
    Ok(packets(path)?
        .into_iter()
        .filter(|p| p.stream_type == kind)
        .collect())
}

/// Stream descriptions (`-show_entries stream=...`).
pub fn streams(path: &Path) -> Result<Vec<StreamInfo>, String> {
    let (out, err, ok) = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "stream=index,codec_type,codec_name,profile,width,height,sample_rate,channels,duration",
            "-of",
            "flat",
        ],
        path,
    )?;
    if !ok {
        return Err(format!("ffprobe failed on {}: {err}", path.display()));
    }
    let num = |r: &[(String, String)], k: &str| field(r, k).and_then(|v| v.parse::<u32>().ok());
    Ok(parse_flat(&out, "streams.stream")
        .iter()
        .map(|r| StreamInfo {
            index: num(r, "index").unwrap_or(0),
            codec_type: field(r, "codec_type").unwrap_or("").to_string(),
            codec_name: field(r, "codec_name").unwrap_or("").to_string(),
            profile: field(r, "profile").unwrap_or("").to_string(),
            width: num(r, "width"),
            height: num(r, "height"),
            sample_rate: num(r, "sample_rate"),
            channels: num(r, "channels"),
            duration_s: field(r, "duration").and_then(|v| v.parse().ok()),
        })
        .collect())
}

/// Container duration in seconds (`-show_entries format=duration`).
pub fn duration_s(path: &Path) -> Result<f64, String> {
    let (out, err, ok) = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "flat",
        ],
        path,
    )?;
    if !ok {
        return Err(format!("ffprobe failed on {}: {err}", path.display()));
    }
    out.lines()
        .find_map(|l| l.strip_prefix("format.duration="))
        .map(|v| v.trim_matches('"'))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("no duration in ffprobe output: {out}"))
}

/// Fully decodes the file (`ffmpeg -v error -i path -f null -`) and returns stderr:
/// empty means it decoded cleanly. A failure to run ffmpeg is returned as text too.
pub fn decode_errors(path: &Path) -> String {
    match run_around(
        "ffmpeg",
        &["-nostdin", "-hide_banner", "-v", "error", "-i"],
        path,
        &["-f", "null", "-"],
    ) {
        Ok((_, err, true)) => err,
        Ok((_, err, false)) => format!("ffmpeg exited with failure\n{err}"),
        Err(e) => e,
    }
}
