//! A small, self-contained FLV reader for tests (independent of the crate's own
//! `codec::flv`, which is code under test).

use std::path::Path;

pub const TAG_AUDIO: u8 = 8;
pub const TAG_VIDEO: u8 = 9;
pub const TAG_SCRIPT: u8 = 18;

#[derive(Debug, Clone, PartialEq)]
pub struct FlvFile {
    pub version: u8,
    /// Header flag 0x04.
    pub has_audio: bool,
    /// Header flag 0x01.
    pub has_video: bool,
    pub tags: Vec<FlvTag>,
    /// True if the file ended in the middle of a tag (e.g. the server was killed);
    /// `tags` then holds the complete tags before it.
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlvTag {
    /// 8 audio, 9 video, 18 script data (the filter bit is stripped).
    pub tag_type: u8,
    /// Milliseconds, 24 bits + the extended byte as bits 24..32.
    pub timestamp: u32,
    pub stream_id: u32,
    /// The tag body (`DataSize` bytes).
    pub data: Vec<u8>,
}

/// Legacy (non-enhanced) FLV video tag header, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoHeader {
    /// 1 keyframe, 2 inter frame, 3 disposable inter, 4 generated keyframe, 5 info/command.
    pub frame_type: u8,
    /// 7 = AVC.
    pub codec_id: u8,
    /// AVC only: 0 sequence header (AVCDecoderConfigurationRecord), 1 NALUs, 2 end of sequence.
    pub avc_packet_type: Option<u8>,
    /// AVC only: composition time offset (SI24, ms): pts = dts + cts.
    pub composition_time: Option<i32>,
}

/// FLV audio tag header, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioHeader {
    /// 10 = AAC.
    pub sound_format: u8,
    /// 0 5.5k, 1 11k, 2 22k, 3 44k.
    pub sound_rate: u8,
    /// 0 8-bit, 1 16-bit.
    pub sound_size: u8,
    /// 0 mono, 1 stereo.
    pub sound_type: u8,
    /// AAC only: 0 sequence header (AudioSpecificConfig), 1 raw.
    pub aac_packet_type: Option<u8>,
}

impl FlvTag {
    pub fn is_video(&self) -> bool {
        self.tag_type == TAG_VIDEO
    }
    pub fn is_audio(&self) -> bool {
        self.tag_type == TAG_AUDIO
    }
    pub fn is_script(&self) -> bool {
        self.tag_type == TAG_SCRIPT
    }

    /// Decodes the video tag header (None if not a video tag or too short).
    pub fn video_header(&self) -> Option<VideoHeader> {
        if !self.is_video() || self.data.is_empty() {
            return None;
        }
        let b0 = self.data[0];
        let codec_id = b0 & 0x0f;
        let (mut pt, mut cts) = (None, None);
        if codec_id == 7 {
            if self.data.len() < 5 {
                return None;
            }
            pt = Some(self.data[1]);
            let raw = (u32::from(self.data[2]) << 16)
                | (u32::from(self.data[3]) << 8)
                | u32::from(self.data[4]);
            // Sign-extend 24 -> 32 bits.
            cts = Some(((raw << 8) as i32) >> 8);
        }
        Some(VideoHeader {
            frame_type: b0 >> 4,
            codec_id,
            avc_packet_type: pt,
            composition_time: cts,
        })
    }

    /// The payload after the video header (5 bytes for AVC, 1 otherwise).
    pub fn video_payload(&self) -> Option<&[u8]> {
        let h = self.video_header()?;
        let off = if h.codec_id == 7 { 5 } else { 1 };
        self.data.get(off..)
    }

    pub fn is_keyframe(&self) -> bool {
        self.video_header().is_some_and(|h| h.frame_type == 1)
    }

    /// AVC NALU packet (not a sequence header / end of sequence).
    pub fn is_avc_nalu(&self) -> bool {
        self.video_header()
            .is_some_and(|h| h.codec_id == 7 && h.avc_packet_type == Some(1))
    }

    pub fn is_avc_sequence_header(&self) -> bool {
        self.video_header()
            .is_some_and(|h| h.codec_id == 7 && h.avc_packet_type == Some(0))
    }

    /// Presentation time in ms (dts + composition time) for AVC tags, dts otherwise.
    pub fn pts(&self) -> i64 {
        i64::from(self.timestamp)
            + i64::from(
                self.video_header()
                    .and_then(|h| h.composition_time)
                    .unwrap_or(0),
            )
    }

    /// Decodes the audio tag header (None if not an audio tag or too short).
    pub fn audio_header(&self) -> Option<AudioHeader> {
        if !self.is_audio() || self.data.is_empty() {
            return None;
        }
        let b0 = self.data[0];
        let fmt = b0 >> 4;
        let pt = if fmt == 10 {
            Some(*self.data.get(1)?)
        } else {
            None
        };
        Some(AudioHeader {
            sound_format: fmt,
            sound_rate: (b0 >> 2) & 3,
            sound_size: (b0 >> 1) & 1,
            sound_type: b0 & 1,
            aac_packet_type: pt,
        })
    }

    /// The payload after the audio header (2 bytes for AAC, 1 otherwise).
    pub fn audio_payload(&self) -> Option<&[u8]> {
        let h = self.audio_header()?;
        let off = if h.sound_format == 10 { 2 } else { 1 };
        self.data.get(off..)
    }

    pub fn is_aac_raw(&self) -> bool {
        self.audio_header()
            .is_some_and(|h| h.sound_format == 10 && h.aac_packet_type == Some(1))
    }

    pub fn is_aac_sequence_header(&self) -> bool {
        self.audio_header()
            .is_some_and(|h| h.sound_format == 10 && h.aac_packet_type == Some(0))
    }
}

impl FlvFile {
    /// Asserts the timestamp rules of a recording: DTS never goes back, and no video frame's
    /// PTS precedes its DTS.
    pub fn assert_timeline(&self) {
        let av = self.av_tags_dedup();
        for w in av.windows(2) {
            assert!(
                w[0].timestamp <= w[1].timestamp,
                "timestamps go back: {} then {}",
                w[0].timestamp,
                w[1].timestamp
            );
        }
        for (i, t) in self.video_frames().iter().enumerate() {
            assert!(
                t.pts() >= i64::from(t.timestamp),
                "video frame {i}: DTS {} > PTS {}",
                t.timestamp,
                t.pts()
            );
        }
        // Decoders and muxers reject equal DTS (late frames moved onto the same timestamp).
        for w in self.video_frames().windows(2) {
            assert!(
                w[0].timestamp < w[1].timestamp,
                "video DTS not increasing: {} then {}",
                w[0].timestamp,
                w[1].timestamp
            );
        }
    }

    pub fn video_tags(&self) -> Vec<&FlvTag> {
        self.tags.iter().filter(|t| t.is_video()).collect()
    }
    pub fn audio_tags(&self) -> Vec<&FlvTag> {
        self.tags.iter().filter(|t| t.is_audio()).collect()
    }
    pub fn script_tags(&self) -> Vec<&FlvTag> {
        self.tags.iter().filter(|t| t.is_script()).collect()
    }
    /// Video tags carrying coded frames (AVC packet type 1).
    pub fn video_frames(&self) -> Vec<&FlvTag> {
        self.tags.iter().filter(|t| t.is_avc_nalu()).collect()
    }
    /// Audio tags carrying AAC frames (AAC packet type 1).
    pub fn audio_frames(&self) -> Vec<&FlvTag> {
        self.tags.iter().filter(|t| t.is_aac_raw()).collect()
    }
    /// Audio and video tags in file order, without sequence headers that repeat the
    /// previous sequence header of the same type byte-for-byte. nginx-rtmp's recorder
    /// writes the AAC sequence header twice at the start of a recording (and drops
    /// onMetaData), so compare recordings through this.
    pub fn av_tags_dedup(&self) -> Vec<&FlvTag> {
        let mut last_avc: Option<&[u8]> = None;
        let mut last_aac: Option<&[u8]> = None;
        let mut v = Vec::new();
        for t in &self.tags {
            let slot = if t.is_avc_sequence_header() {
                &mut last_avc
            } else if t.is_aac_sequence_header() {
                &mut last_aac
            } else {
                if t.is_audio() || t.is_video() {
                    v.push(t);
                }
                continue;
            };
            if *slot != Some(&t.data[..]) {
                *slot = Some(&t.data[..]);
                v.push(t);
            }
        }
        v
    }

    /// The first `onMetaData` script tag, decoded (name, value).
    pub fn metadata(&self) -> Option<Amf0> {
        self.script_tags().into_iter().find_map(|t| {
            let mut r = &t.data[..];
            let name = amf0_decode(&mut r).ok()?;
            if name != Amf0::String("onMetaData".into()) {
                return None;
            }
            amf0_decode(&mut r).ok()
        })
    }
}

/// Reads and parses an FLV file.
pub fn read_flv(path: &Path) -> Result<FlvFile, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    parse_flv(&bytes)
}

/// Parses FLV bytes: header, then (PreviousTagSize, Tag)*. Checks every
/// PreviousTagSize against the preceding tag.
pub fn parse_flv(b: &[u8]) -> Result<FlvFile, String> {
    if b.len() < 9 || &b[0..3] != b"FLV" {
        return Err("not an FLV file (no 'FLV' signature)".into());
    }
    let version = b[3];
    let flags = b[4];
    let header_len = u32::from_be_bytes([b[5], b[6], b[7], b[8]]) as usize;
    if header_len < 9 || header_len > b.len() {
        return Err(format!("bad FLV header size {header_len}"));
    }
    let mut pos = header_len;
    let mut tags = Vec::new();
    let mut prev_expected: u32 = 0;
    let mut truncated = false;
    loop {
        if pos + 4 > b.len() {
            truncated = pos != b.len();
            break;
        }
        let prev = u32::from_be_bytes([b[pos], b[pos + 1], b[pos + 2], b[pos + 3]]);
        if prev != prev_expected {
            return Err(format!(
                "PreviousTagSize {prev} at offset {pos}, expected {prev_expected} (tag #{})",
                tags.len()
            ));
        }
        pos += 4;
        if pos == b.len() {
            break;
        }
        if pos + 11 > b.len() {
            truncated = true;
            break;
        }
        let h = &b[pos..pos + 11];
        if h[0] & 0xc0 != 0 {
            return Err(format!(
                "reserved tag-type bits set at offset {pos}: {:#x}",
                h[0]
            ));
        }
        let tag_type = h[0] & 0x1f;
        let size = (usize::from(h[1]) << 16) | (usize::from(h[2]) << 8) | usize::from(h[3]);
        let timestamp = (u32::from(h[7]) << 24)
            | (u32::from(h[4]) << 16)
            | (u32::from(h[5]) << 8)
            | u32::from(h[6]);
        let stream_id = (u32::from(h[8]) << 16) | (u32::from(h[9]) << 8) | u32::from(h[10]);
        if pos + 11 + size > b.len() {
            truncated = true;
            break;
        }
        tags.push(FlvTag {
            tag_type,
            timestamp,
            stream_id,
            data: b[pos + 11..pos + 11 + size].to_vec(),
        });
        pos += 11 + size;
        prev_expected = (11 + size) as u32;
    }
    Ok(FlvFile {
        version,
        has_audio: flags & 0x04 != 0,
        has_video: flags & 0x01 != 0,
        tags,
        truncated,
    })
}

/// AVCDecoderConfigurationRecord essentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcConfig {
    pub profile: u8,
    pub compatibility: u8,
    pub level: u8,
    /// NALU length field size in bytes (1, 2 or 4).
    pub length_size: usize,
    pub sps: Vec<Vec<u8>>,
    pub pps: Vec<Vec<u8>>,
}

/// Parses an AVCDecoderConfigurationRecord (payload of an AVC sequence header tag).
pub fn parse_avc_config(b: &[u8]) -> Result<AvcConfig, String> {
    let e = || "truncated AVCDecoderConfigurationRecord".to_string();
    if b.len() < 7 || b[0] != 1 {
        return Err("bad AVCDecoderConfigurationRecord".into());
    }
    let mut pos = 5;
    let read_sets = |count: usize, pos: &mut usize| -> Result<Vec<Vec<u8>>, String> {
        let mut v = Vec::new();
        for _ in 0..count {
            let l = usize::from(u16::from_be_bytes([
                *b.get(*pos).ok_or_else(e)?,
                *b.get(*pos + 1).ok_or_else(e)?,
            ]));
            *pos += 2;
            v.push(b.get(*pos..*pos + l).ok_or_else(e)?.to_vec());
            *pos += l;
        }
        Ok(v)
    };
    let nsps = usize::from(b[pos] & 0x1f);
    pos += 1;
    let sps = read_sets(nsps, &mut pos)?;
    let npps = usize::from(*b.get(pos).ok_or_else(e)?);
    pos += 1;
    let pps = read_sets(npps, &mut pos)?;
    Ok(AvcConfig {
        profile: b[1],
        compatibility: b[2],
        level: b[3],
        length_size: usize::from(b[4] & 3) + 1,
        sps,
        pps,
    })
}

/// Splits length-prefixed NAL units (AVCC). Errors on a length running past the end.
pub fn split_nalus(mut b: &[u8], length_size: usize) -> Result<Vec<&[u8]>, String> {
    let mut v = Vec::new();
    while !b.is_empty() {
        if b.len() < length_size {
            return Err("truncated NALU length".into());
        }
        let l = b[..length_size]
            .iter()
            .fold(0usize, |a, &x| (a << 8) | usize::from(x));
        b = &b[length_size..];
        if l > b.len() {
            return Err(format!("NALU length {l} past the end ({} left)", b.len()));
        }
        v.push(&b[..l]);
        b = &b[l..];
    }
    Ok(v)
}

/// AMF0 values (enough for onMetaData).
#[derive(Debug, Clone, PartialEq)]
pub enum Amf0 {
    Number(f64),
    Bool(bool),
    String(String),
    Object(Vec<(String, Amf0)>),
    Null,
    Undefined,
    EcmaArray(Vec<(String, Amf0)>),
    StrictArray(Vec<Amf0>),
    Date(f64),
}

impl Amf0 {
    /// Property lookup in an Object or ECMA array.
    pub fn get(&self, key: &str) -> Option<&Amf0> {
        match self {
            Amf0::Object(p) | Amf0::EcmaArray(p) => {
                p.iter().find(|(k, _)| k == key).map(|(_, v)| v)
            }
            _ => None,
        }
    }
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Amf0::Number(n) => Some(*n),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Amf0::String(s) => Some(s),
            _ => None,
        }
    }
}

fn take<'a>(r: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
    if r.len() < n {
        return Err("truncated AMF0".into());
    }
    let (a, b) = r.split_at(n);
    *r = b;
    Ok(a)
}

fn amf0_str(r: &mut &[u8], long: bool) -> Result<String, String> {
    let n = if long {
        u32::from_be_bytes(take(r, 4)?.try_into().unwrap()) as usize
    } else {
        usize::from(u16::from_be_bytes(take(r, 2)?.try_into().unwrap()))
    };
    Ok(String::from_utf8_lossy(take(r, n)?).into_owned())
}

fn amf0_props(r: &mut &[u8]) -> Result<Vec<(String, Amf0)>, String> {
    let mut v = Vec::new();
    loop {
        let k = amf0_str(r, false)?;
        if k.is_empty() && r.first() == Some(&9) {
            *r = &r[1..];
            return Ok(v);
        }
        if r.is_empty() {
            // Some writers omit the end marker at the end of the tag.
            return Ok(v);
        }
        let val = amf0_decode(r)?;
        v.push((k, val));
    }
}

/// Decodes one AMF0 value from the front of `r`.
pub fn amf0_decode(r: &mut &[u8]) -> Result<Amf0, String> {
    let m = take(r, 1)?[0];
    Ok(match m {
        0 => Amf0::Number(f64::from_be_bytes(take(r, 8)?.try_into().unwrap())),
        1 => Amf0::Bool(take(r, 1)?[0] != 0),
        2 => Amf0::String(amf0_str(r, false)?),
        3 => Amf0::Object(amf0_props(r)?),
        5 => Amf0::Null,
        6 => Amf0::Undefined,
        8 => {
            take(r, 4)?; // approximate count, ignored
            Amf0::EcmaArray(amf0_props(r)?)
        }
        10 => {
            let n = u32::from_be_bytes(take(r, 4)?.try_into().unwrap());
            let mut v = Vec::new();
            for _ in 0..n {
                v.push(amf0_decode(r)?);
            }
            Amf0::StrictArray(v)
        }
        11 => {
            let d = f64::from_be_bytes(take(r, 8)?.try_into().unwrap());
            take(r, 2)?;
            Amf0::Date(d)
        }
        12 => Amf0::String(amf0_str(r, true)?),
        other => return Err(format!("unsupported AMF0 marker {other}")),
    })
}
