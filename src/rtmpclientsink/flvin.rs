//! `video/x-flv` on the `sink` pad, for pipelines written for rtmp2sink
//! (`... ! flvmux ! rtmpclientsink`): the FLV tags are taken apart into what the element's
//! inputs take from elementary-stream pads. An AVC sequence header becomes `video/x-h264,
//! stream-format=avc` caps with its avcC as `codec_data` on the video input, each AVC NALU tag
//! a buffer (DTS = tag time, PTS = DTS + composition time); AAC likewise on the audio input
//! (raw, AudioSpecificConfig as `codec_data`). Script tags (flvmux's onMetaData) are left out:
//! the element sends its own. Only H.264 and AAC are taken, as from `flvmux`.

use std::sync::{Mutex, MutexGuard};

use gst::prelude::*;

use super::format::MediaFormat;
use super::input::{Ctx, PadSlot};
use super::queue::Track;

const TAG_AUDIO: u8 = 8;
const TAG_VIDEO: u8 = 9;
const CODEC_AVC: u8 = 7;
const SOUND_AAC: u8 = 10;
/// Largest tag body taken (FLV sizes are 24 bits; this bounds what one buffer may claim).
const MAX_TAG: usize = 1 << 24;

#[derive(Debug, Default)]
struct State {
    active: bool,
    /// Bytes of an item not complete yet (buffers normally carry whole tags).
    pending: Vec<u8>,
    header_done: bool,
    video_config: Option<Vec<u8>>,
    audio_config: Option<Vec<u8>>,
    warned: bool,
}

/// The FLV input of the `sink` pad.
#[derive(Debug, Default)]
pub struct FlvIn {
    state: Mutex<State>,
}

/// One media tag taken out of the stream.
enum Item {
    Config(Track, Vec<u8>),
    Frame {
        track: Track,
        dts_ms: i64,
        cts_ms: i64,
        key: bool,
        body: Vec<u8>,
    },
    Unsupported(&'static str, u8),
}

fn caps_for(track: Track, config: &[u8]) -> gst::Caps {
    let data = gst::Buffer::from_slice(config.to_vec());
    if track == Track::VIDEO {
        gst::Caps::builder("video/x-h264")
            .field("stream-format", "avc")
            .field("alignment", "au")
            .field("codec_data", data)
            .build()
    } else {
        gst::Caps::builder("audio/mpeg")
            .field("mpegversion", 4i32)
            .field("stream-format", "raw")
            .field("codec_data", data)
            .build()
    }
}

impl FlvIn {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the `sink` pad carries FLV.
    pub fn active(&self) -> bool {
        self.lock().active
    }

    /// FLV caps on the `sink` pad (a new stream: its header comes first).
    pub fn activate(&self) {
        *self.lock() = State {
            active: true,
            ..State::default()
        };
    }

    /// Other caps on the `sink` pad, or the pad deactivated.
    pub fn deactivate(&self) {
        *self.lock() = State::default();
    }

    /// FLUSH_STOP: a flushing seek upstream starts a new FLV stream.
    pub fn flush(&self) {
        let mut s = self.lock();
        s.pending.clear();
        s.header_done = false;
    }

    /// One buffer of FLV: its tags go to `video` and `audio`.
    pub fn render(
        &self,
        ctx: Ctx<'_>,
        video: &PadSlot,
        audio: &PadSlot,
        buffer: &gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
        let items = {
            let mut s = self.lock();
            s.pending.extend_from_slice(map.as_slice());
            s.take_items().map_err(|text| {
                gst::element_error!(ctx.element, gst::StreamError::Demux, ("{}", text));
                gst::FlowError::Error
            })?
        };
        drop(map);
        for item in items {
            match item {
                Item::Config(track, config) => {
                    {
                        let mut s = self.lock();
                        let slot = if track == Track::VIDEO {
                            &mut s.video_config
                        } else {
                            &mut s.audio_config
                        };
                        *slot = Some(config.clone());
                    }
                    let caps = caps_for(track, &config);
                    let format = MediaFormat::from_caps(&caps).map_err(|e| {
                        gst::element_error!(ctx.element, gst::StreamError::Format, ("{}", e));
                        gst::FlowError::NotNegotiated
                    })?;
                    let slot = if track == Track::VIDEO { video } else { audio };
                    slot.set_caps(ctx, track, &format).map_err(|e| {
                        ctx.element.post_error_message(e);
                        gst::FlowError::NotNegotiated
                    })?;
                }
                Item::Frame {
                    track,
                    dts_ms,
                    cts_ms,
                    key,
                    body,
                } => {
                    let mut b = gst::Buffer::from_slice(body);
                    {
                        let b = b.get_mut().expect("new buffer");
                        let dts = gst::ClockTime::from_mseconds(dts_ms.max(0) as u64);
                        b.set_dts(dts);
                        b.set_pts(gst::ClockTime::from_mseconds(
                            (dts_ms + cts_ms).max(0) as u64
                        ));
                        if !key {
                            b.set_flags(gst::BufferFlags::DELTA_UNIT);
                        }
                    }
                    let slot = if track == Track::VIDEO { video } else { audio };
                    // A frame before its sequence header cannot be decoded: left out.
                    if let Some(r) = slot.chain(ctx, &b) {
                        r?;
                    }
                }
                Item::Unsupported(kind, id) => {
                    let mut s = self.lock();
                    if !s.warned {
                        s.warned = true;
                        drop(s);
                        gst::element_warning!(
                            ctx.element,
                            gst::StreamError::CodecNotFound,
                            (
                                "FLV input: {} codec id {} is not H.264/AAC and is left out",
                                kind,
                                id
                            )
                        );
                    }
                }
            }
        }
        Ok(gst::FlowSuccess::Ok)
    }
}

impl State {
    /// The complete items in `pending`, which keeps what is left of an incomplete one.
    fn take_items(&mut self) -> Result<Vec<Item>, String> {
        let mut items = Vec::new();
        let mut pos = 0;
        let buf = std::mem::take(&mut self.pending);
        loop {
            let rest = &buf[pos..];
            if !self.header_done {
                if rest.len() < 9 {
                    break;
                }
                if &rest[..3] != b"FLV" {
                    return Err("FLV input does not start with an FLV header".into());
                }
                let len = u32::from_be_bytes([rest[5], rest[6], rest[7], rest[8]]) as usize;
                if !(9..=1024).contains(&len) {
                    return Err(format!("FLV header of invalid length {len}"));
                }
                // The header, then PreviousTagSize0.
                if rest.len() < len + 4 {
                    break;
                }
                pos += len + 4;
                self.header_done = true;
                continue;
            }
            if rest.len() < 11 {
                break;
            }
            let kind = rest[0] & 0x1f;
            let size = u32::from_be_bytes([0, rest[1], rest[2], rest[3]]) as usize;
            if size >= MAX_TAG {
                return Err(format!("FLV tag of invalid size {size}"));
            }
            if rest.len() < 11 + size + 4 {
                break;
            }
            let ts = u32::from_be_bytes([rest[7], rest[4], rest[5], rest[6]]);
            let body = &rest[11..11 + size];
            if let Some(item) = parse_tag(kind, i64::from(ts), body) {
                items.push(item);
            }
            pos += 11 + size + 4;
        }
        self.pending = buf[pos..].to_vec();
        Ok(items)
    }
}

/// A media tag's item (None: script data, end of sequence, empty tags).
fn parse_tag(kind: u8, ts: i64, body: &[u8]) -> Option<Item> {
    match kind {
        TAG_VIDEO => {
            let (&flags, rest) = body.split_first()?;
            let codec = flags & 0x0f;
            if flags & 0x80 != 0 || codec != CODEC_AVC {
                return Some(Item::Unsupported("video", codec));
            }
            if rest.len() < 4 {
                return None;
            }
            let cts = (i32::from_be_bytes([rest[1], rest[2], rest[3], 0]) >> 8) as i64;
            let data = rest[4..].to_vec();
            match rest[0] {
                0 => Some(Item::Config(Track::VIDEO, data)),
                1 if !data.is_empty() => Some(Item::Frame {
                    track: Track::VIDEO,
                    dts_ms: ts,
                    cts_ms: cts,
                    key: flags >> 4 == 1,
                    body: data,
                }),
                _ => None,
            }
        }
        TAG_AUDIO => {
            let (&flags, rest) = body.split_first()?;
            let format = flags >> 4;
            if format != SOUND_AAC {
                return Some(Item::Unsupported("audio", format));
            }
            let (&packet, data) = rest.split_first()?;
            match packet {
                0 => Some(Item::Config(Track::AUDIO, data.to_vec())),
                1 if !data.is_empty() => Some(Item::Frame {
                    track: Track::AUDIO,
                    dts_ms: ts,
                    cts_ms: 0,
                    key: true,
                    body: data.to_vec(),
                }),
                _ => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(kind: u8, ts: u32, body: &[u8]) -> Vec<u8> {
        let mut t = vec![kind];
        t.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        t.extend_from_slice(&ts.to_be_bytes()[1..]);
        t.push((ts >> 24) as u8);
        t.extend_from_slice(&[0, 0, 0]);
        t.extend_from_slice(body);
        t.extend_from_slice(&(11 + body.len() as u32).to_be_bytes());
        t
    }

    #[test]
    fn tags_split_across_buffers_come_out_whole_and_in_order() {
        let mut stream = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        stream.extend(tag(18, 0, b"\x02\x00\x0aonMetaData"));
        stream.extend(tag(9, 0, &[0x17, 0, 0, 0, 0, 1, 0x64]));
        stream.extend(tag(
            9,
            0x0100_0000 + 33,
            &[0x27, 1, 0, 0, 0x21, 0, 0, 0, 1, 0x41],
        ));
        stream.extend(tag(8, 40, &[0xaf, 0, 0x12, 0x10]));
        stream.extend(tag(8, 63, &[0xaf, 1, 0xde, 0xad]));
        let mut s = State::default();
        let mut items = Vec::new();
        for chunk in stream.chunks(7) {
            s.pending.extend_from_slice(chunk);
            items.extend(s.take_items().unwrap());
        }
        assert!(s.pending.is_empty());
        assert_eq!(items.len(), 4);
        assert!(
            matches!(&items[0], Item::Config(t, c) if *t == Track::VIDEO && c[..] == [1, 0x64])
        );
        match &items[1] {
            Item::Frame {
                track,
                dts_ms,
                cts_ms,
                key,
                body,
            } => {
                assert_eq!(*track, Track::VIDEO);
                assert_eq!(*dts_ms, 0x0100_0000 + 33, "extended timestamp byte");
                assert_eq!(*cts_ms, 33);
                assert!(!key);
                assert_eq!(body[..], [0, 0, 0, 1, 0x41]);
            }
            _ => panic!("not a frame"),
        }
        assert!(
            matches!(&items[2], Item::Config(t, c) if *t == Track::AUDIO && c[..] == [0x12, 0x10])
        );
        assert!(
            matches!(&items[3], Item::Frame { track, dts_ms: 63, .. } if *track == Track::AUDIO)
        );
    }

    #[test]
    fn negative_composition_time_and_bad_input() {
        let Some(Item::Frame { cts_ms, key, .. }) =
            parse_tag(9, 100, &[0x17, 1, 0xff, 0xff, 0xfe, 0, 0, 0, 1, 0x65])
        else {
            panic!("frame");
        };
        assert_eq!(cts_ms, -2);
        assert!(key);
        assert!(matches!(
            parse_tag(9, 0, &[0x1c, 0, 0, 0, 0]),
            Some(Item::Unsupported("video", 12))
        ));
        let mut s = State {
            pending: b"RIFF\x00\x00\x00\x00\x00".to_vec(),
            ..State::default()
        };
        assert!(s.take_items().is_err());
    }
}
