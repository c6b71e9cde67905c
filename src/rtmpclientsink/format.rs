//! Caps → media format, and the onMetaData object built from what is known about the streams.

use crate::codec::{Codec, MediaKind, ac3, flac, opus};
use crate::rtmp::amf0::Amf0Value;

use super::convert::{AacInput, H264Input};
use super::queue::{Track, TrackMap};
use super::video::{H265Input, VideoColour};

/// FLV `videocodecid` of AVC.
pub const VIDEO_CODEC_ID_AVC: f64 = 7.0;
/// FLV `audiocodecid` of AAC.
pub const AUDIO_CODEC_ID_AAC: f64 = 10.0;
/// FLV `audiocodecid` of MP3.
pub const AUDIO_CODEC_ID_MP3: f64 = 2.0;

/// onMetaData's `videocodecid`/`audiocodecid` for `codec`: the legacy FLV number for the
/// codecs legacy FLV has (H.264 7, AAC 10, MP3 2, whatever form its frames take), the FourCC
/// as a big-endian number for the others (`hvc1` = 1752589105), as FFmpeg 9 writes them.
pub fn meta_codec_id(codec: Codec) -> f64 {
    match codec {
        Codec::H264 => VIDEO_CODEC_ID_AVC,
        Codec::Aac => AUDIO_CODEC_ID_AAC,
        Codec::Mp3 => AUDIO_CODEC_ID_MP3,
        other => f64::from(other.fourcc_number()),
    }
}
/// The `encoder` field of onMetaData.
pub const ENCODER: &str = concat!("gst-plugin-rtmpclient ", env!("CARGO_PKG_VERSION"));

/// The caps every video pad takes (`sink`, and `video_%u` with the multitrack pads): one
/// structure per codec.
pub fn video_caps() -> gst::Caps {
    let h264 = gst::Structure::builder("video/x-h264")
        .field("stream-format", gst::List::new(["avc", "byte-stream"]))
        .field("alignment", "au")
        .build();
    let h265 = gst::Structure::builder("video/x-h265")
        .field(
            "stream-format",
            gst::List::new(["hvc1", "hev1", "byte-stream"]),
        )
        .field("alignment", "au")
        .build();
    let av1 = gst::Structure::builder("video/x-av1")
        .field("stream-format", "obu-stream")
        .field("alignment", "tu")
        .build();
    let vp9 = gst::Structure::new_empty("video/x-vp9");
    gst::Caps::builder_full()
        .structure(h264)
        .structure(h265)
        .structure(av1)
        .structure(vp9)
        .build()
}

/// The caps every audio pad takes (`audio`, `sink` of an audio-only stream, and `audio_%u`):
/// one structure per codec.
pub fn audio_caps() -> gst::Caps {
    let aac = gst::Structure::builder("audio/mpeg")
        .field("mpegversion", gst::List::new([2i32, 4]))
        .field("stream-format", gst::List::new(["raw", "adts"]))
        .build();
    let mp3 = gst::Structure::builder("audio/mpeg")
        .field("mpegversion", 1i32)
        .field("layer", 3i32)
        .build();
    // Framed input: FLAC and AC-3 demuxers set `framed` (FLAC's matroskademux does not).
    let opus = gst::Structure::new_empty("audio/x-opus");
    let flac = gst::Structure::new_empty("audio/x-flac");
    let ac3 = gst::Structure::builder("audio/x-ac3")
        .field("framed", true)
        .build();
    let eac3 = gst::Structure::builder("audio/x-eac3")
        .field("framed", true)
        .build();
    gst::Caps::builder_full()
        .structure(aac)
        .structure(mp3)
        .structure(opus)
        .structure(flac)
        .structure(ac3)
        .structure(eac3)
        .build()
}

/// What a pad's caps say.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaFormat {
    /// H.264 video.
    H264 {
        /// avc or byte-stream.
        input: H264Input,
        /// avcC from `codec_data`.
        codec_data: Option<Vec<u8>>,
        /// Width from the caps.
        width: Option<u32>,
        /// Height from the caps.
        height: Option<u32>,
        /// Frames per second from the caps (None for variable / 0/1).
        framerate: Option<f64>,
    },
    /// HEVC video.
    H265 {
        /// hvc1, hev1 or byte-stream.
        input: H265Input,
        /// hvcC from `codec_data`.
        codec_data: Option<Vec<u8>>,
        /// Size and frame rate from the caps.
        size: VideoSize,
        /// Colorimetry and HDR metadata from the caps.
        colour: VideoColour,
    },
    /// AV1 video (`obu-stream`, one temporal unit per buffer).
    Av1 {
        /// av1C from `codec_data`.
        codec_data: Option<Vec<u8>>,
        /// Size and frame rate from the caps.
        size: VideoSize,
        /// Colorimetry and HDR metadata from the caps.
        colour: VideoColour,
    },
    /// VP9 video.
    Vp9 {
        /// Size and frame rate from the caps.
        size: VideoSize,
        /// Colorimetry and HDR metadata from the caps.
        colour: VideoColour,
        /// `chroma-site=mpeg2` (4:2:0 chroma sited left, vpcC chromaSubsampling 0).
        chroma_sited_left: bool,
    },
    /// AAC audio.
    Aac {
        /// raw or adts.
        input: AacInput,
        /// AudioSpecificConfig from `codec_data`.
        codec_data: Option<Vec<u8>>,
        /// Sample rate from the caps.
        rate: Option<u32>,
        /// Channels from the caps.
        channels: Option<u32>,
    },
    /// Opus audio.
    Opus {
        /// The OpusHead: the caps' streamheader verbatim, or built from the caps fields.
        head: Vec<u8>,
        /// Channels (from the OpusHead).
        channels: u32,
    },
    /// FLAC audio (one frame per buffer).
    Flac {
        /// STREAMINFO from the caps' streamheader (None: in-band headers must bring it).
        info: Option<flac::StreamInfo>,
        /// Sample rate from the caps.
        rate: Option<u32>,
        /// Channels from the caps.
        channels: Option<u32>,
    },
    /// AC-3 or E-AC-3 audio (one syncframe, or independent substream, per buffer).
    Ac3 {
        /// AC-3 or E-AC-3.
        kind: ac3::Kind,
        /// Sample rate from the caps.
        rate: Option<u32>,
        /// Channels from the caps.
        channels: Option<u32>,
    },
    /// MP3 (MPEG-1/2/2.5 audio layer III).
    Mp3 {
        /// Sample rate from the caps.
        rate: Option<u32>,
        /// Channels from the caps.
        channels: Option<u32>,
    },
}

impl MediaFormat {
    /// The codec the caps carry.
    pub fn codec(&self) -> Codec {
        match self {
            MediaFormat::H264 { .. } => Codec::H264,
            MediaFormat::H265 { .. } => Codec::H265,
            MediaFormat::Av1 { .. } => Codec::Av1,
            MediaFormat::Vp9 { .. } => Codec::Vp9,
            MediaFormat::Aac { .. } => Codec::Aac,
            MediaFormat::Opus { .. } => Codec::Opus,
            MediaFormat::Flac { .. } => Codec::Flac,
            MediaFormat::Ac3 {
                kind: ac3::Kind::Ac3,
                ..
            } => Codec::Ac3,
            MediaFormat::Ac3 {
                kind: ac3::Kind::Eac3,
                ..
            } => Codec::Eac3,
            MediaFormat::Mp3 { .. } => Codec::Mp3,
        }
    }

    /// What the caps say for onMetaData (merged with [`StreamMeta::merge`]).
    pub fn meta(&self) -> MetaUpdate {
        match *self {
            MediaFormat::H264 {
                width,
                height,
                framerate,
                ..
            } => MetaUpdate::Video(VideoMeta {
                width,
                height,
                framerate,
                datarate_kbps: None,
            }),
            MediaFormat::H265 { size, .. }
            | MediaFormat::Av1 { size, .. }
            | MediaFormat::Vp9 { size, .. } => MetaUpdate::Video(VideoMeta {
                width: size.width,
                height: size.height,
                framerate: size.framerate,
                datarate_kbps: None,
            }),
            MediaFormat::Aac { rate, channels, .. }
            | MediaFormat::Flac { rate, channels, .. }
            | MediaFormat::Ac3 { rate, channels, .. }
            | MediaFormat::Mp3 { rate, channels } => MetaUpdate::Audio(AudioMeta {
                samplerate: rate,
                channels,
                datarate_kbps: None,
            }),
            // Opus decodes at 48 kHz whatever the input rate was.
            MediaFormat::Opus { channels, .. } => MetaUpdate::Audio(AudioMeta {
                samplerate: Some(48_000),
                channels: Some(channels),
                datarate_kbps: None,
            }),
        }
    }

    /// Reads fixed caps. The pad templates only let the codecs of [`video_caps`] and
    /// [`audio_caps`] through; what they cannot check (a missing OpusHead, unframed FLAC) is
    /// reported as `Err` with the fix.
    pub fn from_caps(caps: &gst::CapsRef) -> Result<Self, String> {
        let s = caps.structure(0).ok_or_else(|| {
            "the caps are empty; the upstream element sent no format.".to_string()
        })?;
        let codec_data = s
            .get::<gst::Buffer>("codec_data")
            .ok()
            .and_then(|b| b.map_readable().ok().map(|m| m.as_slice().to_vec()));
        match s.name().as_str() {
            "video/x-h264" => {
                let input = match s.get::<&str>("stream-format") {
                    Ok("avc") => H264Input::Avc,
                    Ok("byte-stream") => H264Input::ByteStream,
                    other => {
                        return Err(format!(
                            "unsupported H.264 stream-format {}; use avc or byte-stream (put \
                             h264parse before the sink).",
                            other.unwrap_or("(none)")
                        ));
                    }
                };
                if let Ok(al) = s.get::<&str>("alignment")
                    && al != "au"
                {
                    return Err(format!(
                        "unsupported H.264 alignment {al}: whole access units (au) are needed; put \
                         h264parse before the sink."
                    ));
                }
                let framerate = s
                    .get::<gst::Fraction>("framerate")
                    .ok()
                    .filter(|f| f.numer() > 0 && f.denom() > 0)
                    .map(|f| f64::from(f.numer()) / f64::from(f.denom()));
                Ok(MediaFormat::H264 {
                    input,
                    codec_data,
                    width: s
                        .get::<i32>("width")
                        .ok()
                        .and_then(|v| u32::try_from(v).ok()),
                    height: s
                        .get::<i32>("height")
                        .ok()
                        .and_then(|v| u32::try_from(v).ok()),
                    framerate,
                })
            }
            "video/x-h265" => {
                let input = match s.get::<&str>("stream-format") {
                    Ok("hvc1") => H265Input::Hvc1,
                    Ok("hev1") => H265Input::Hev1,
                    Ok("byte-stream") => H265Input::ByteStream,
                    other => {
                        return Err(format!(
                            "unsupported HEVC stream-format {}; use hvc1, hev1 or byte-stream \
                             (put h265parse before the sink).",
                            other.unwrap_or("(none)")
                        ));
                    }
                };
                check_alignment(s, "HEVC", "au", "whole access units", "h265parse")?;
                Ok(MediaFormat::H265 {
                    input,
                    codec_data,
                    size: VideoSize::from_structure(s),
                    colour: colour_from_structure(s),
                })
            }
            "video/x-av1" => {
                if let Ok(f) = s.get::<&str>("stream-format")
                    && f != "obu-stream"
                {
                    return Err(format!(
                        "unsupported AV1 stream-format {f}; use obu-stream (put av1parse before \
                         the sink)."
                    ));
                }
                check_alignment(s, "AV1", "tu", "whole temporal units", "av1parse")?;
                Ok(MediaFormat::Av1 {
                    codec_data,
                    size: VideoSize::from_structure(s),
                    colour: colour_from_structure(s),
                })
            }
            "video/x-vp9" => Ok(MediaFormat::Vp9 {
                size: VideoSize::from_structure(s),
                colour: colour_from_structure(s),
                chroma_sited_left: s.get::<&str>("chroma-site").ok() == Some("mpeg2"),
            }),
            "audio/mpeg" => {
                let version = s.get::<i32>("mpegversion").unwrap_or(0);
                if version == 1 && s.get::<i32>("layer").ok() == Some(3) {
                    return Ok(MediaFormat::Mp3 {
                        rate: caps_u32(s, "rate"),
                        channels: caps_u32(s, "channels"),
                    });
                }
                if version != 2 && version != 4 {
                    return Err(format!(
                        "unsupported audio/mpeg mpegversion {version}: only AAC (2 or 4) and MP3 \
                         (1, layer 3) can be sent."
                    ));
                }
                let input = match s.get::<&str>("stream-format") {
                    Ok("raw") => AacInput::Raw,
                    Ok("adts") => AacInput::Adts,
                    other => {
                        return Err(format!(
                            "unsupported AAC stream-format {}; use raw or adts (put aacparse \
                             before the sink).",
                            other.unwrap_or("(none)")
                        ));
                    }
                };
                Ok(MediaFormat::Aac {
                    input,
                    codec_data,
                    rate: s
                        .get::<i32>("rate")
                        .ok()
                        .and_then(|v| u32::try_from(v).ok()),
                    channels: s
                        .get::<i32>("channels")
                        .ok()
                        .and_then(|v| u32::try_from(v).ok()),
                })
            }
            "audio/x-opus" => opus_format(s),
            "audio/x-flac" => {
                if s.get::<bool>("framed").ok() == Some(false) {
                    return Err(
                        "FLAC must be framed (one frame per buffer); put flacparse before the sink."
                            .to_string(),
                    );
                }
                let info = match streamheader(s) {
                    Some(h) if !h.is_empty() => Some(
                        flac::StreamInfo::from_streamheader(&h)
                            .map_err(|e| format!("invalid FLAC streamheader in the caps: {e}."))?,
                    ),
                    _ => None,
                };
                Ok(MediaFormat::Flac {
                    info,
                    rate: caps_u32(s, "rate"),
                    channels: caps_u32(s, "channels"),
                })
            }
            name @ ("audio/x-ac3" | "audio/x-eac3") => {
                if s.get::<bool>("framed").ok() == Some(false) {
                    return Err(format!(
                        "{name} must be framed (one syncframe per buffer); put ac3parse before the \
                         sink."
                    ));
                }
                Ok(MediaFormat::Ac3 {
                    kind: if name == "audio/x-ac3" {
                        ac3::Kind::Ac3
                    } else {
                        ac3::Kind::Eac3
                    },
                    rate: caps_u32(s, "rate"),
                    channels: caps_u32(s, "channels"),
                })
            }
            other => Err(format!(
                "unsupported media type {other}; see the element's pad templates for what it \
                 sends."
            )),
        }
    }
}

/// A non-negative integer caps field.
fn caps_u32(s: &gst::StructureRef, field: &str) -> Option<u32> {
    s.get::<i32>(field).ok().and_then(|v| u32::try_from(v).ok())
}

/// The buffers of a caps `streamheader` array.
fn streamheader(s: &gst::StructureRef) -> Option<Vec<Vec<u8>>> {
    let a = s.get::<gst::Array>("streamheader").ok()?;
    Some(
        a.iter()
            .filter_map(|v| v.get::<gst::Buffer>().ok())
            .filter_map(|b| b.map_readable().ok().map(|m| m.as_slice().to_vec()))
            .collect(),
    )
}

/// `audio/x-opus` caps: the OpusHead from the streamheader (kept verbatim), or built from
/// `channels`, `rate` and the multistream fields the way `opusenc` fills them.
fn opus_format(s: &gst::StructureRef) -> Result<MediaFormat, String> {
    if let Some(h) = streamheader(s).filter(|h| !h.is_empty()) {
        let parsed = opus::OpusHead::from_streamheader(&h)
            .map_err(|e| format!("invalid Opus streamheader in the caps: {e}."))?;
        let head = h
            .into_iter()
            .find(|b| b.starts_with(opus::MAGIC))
            .unwrap_or_else(|| parsed.to_bytes());
        return Ok(MediaFormat::Opus {
            head,
            channels: u32::from(parsed.channels),
        });
    }
    let no_head = |why: &str| {
        format!(
            "the Opus caps carry no OpusHead (streamheader) and {why}; put opusparse before the \
             sink or give the caps channels and rate."
        )
    };
    let channels = caps_u32(s, "channels")
        .ok_or_else(|| no_head("no channel count to build one from"))
        .and_then(|c| u8::try_from(c).map_err(|_| no_head("a channel count above 255")))?;
    let u8_field = |f: &str| caps_u32(s, f).and_then(|v| u8::try_from(v).ok());
    let streams = u8_field("stream-count").zip(u8_field("coupled-count"));
    let mapping: Option<Vec<u8>> = s.get::<gst::Array>("channel-mapping").ok().map(|a| {
        a.iter()
            .filter_map(|v| v.get::<i32>().ok())
            .filter_map(|v| u8::try_from(v).ok())
            .collect()
    });
    let head = opus::OpusHead::new(
        channels,
        caps_u32(s, "rate").unwrap_or(48_000),
        // Not in the caps; what libopus reports at 48 kHz.
        312,
        u8_field("channel-mapping-family"),
        streams,
        mapping.as_deref(),
    )
    .map_err(|e| no_head(&format!("none can be built from the caps fields ({e})")))?;
    Ok(MediaFormat::Opus {
        head: head.to_bytes(),
        channels: u32::from(channels),
    })
}

/// Picture size and frame rate as video caps say them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct VideoSize {
    /// Width.
    pub width: Option<u32>,
    /// Height.
    pub height: Option<u32>,
    /// Frames per second (None for variable / 0/1).
    pub framerate: Option<f64>,
}

impl VideoSize {
    fn from_structure(s: &gst::StructureRef) -> Self {
        let dim = |k: &str| s.get::<i32>(k).ok().and_then(|v| u32::try_from(v).ok());
        VideoSize {
            width: dim("width"),
            height: dim("height"),
            framerate: s
                .get::<gst::Fraction>("framerate")
                .ok()
                .filter(|f| f.numer() > 0 && f.denom() > 0)
                .map(|f| f64::from(f.numer()) / f64::from(f.denom())),
        }
    }
}

/// The colour fields of video caps (strings in GStreamer's serialisation).
fn colour_from_structure(s: &gst::StructureRef) -> VideoColour {
    VideoColour::from_caps_fields(
        s.get::<&str>("colorimetry").ok(),
        s.get::<&str>("mastering-display-info").ok(),
        s.get::<&str>("content-light-level").ok(),
    )
}

/// Refuses caps whose `alignment` is not `want` (absent is taken as right: parsers set it).
fn check_alignment(
    s: &gst::StructureRef,
    codec: &str,
    want: &str,
    what: &str,
    parser: &str,
) -> Result<(), String> {
    match s.get::<&str>("alignment") {
        Ok(al) if al != want => Err(format!(
            "unsupported {codec} alignment {al}: {what} ({want}) are needed; put {parser} before \
             the sink."
        )),
        _ => Ok(()),
    }
}

/// What onMetaData says about the video track.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VideoMeta {
    /// Width in pixels.
    pub width: Option<u32>,
    /// Height in pixels.
    pub height: Option<u32>,
    /// Frames per second.
    pub framerate: Option<f64>,
    /// Bitrate in kbit/s (from tags).
    pub datarate_kbps: Option<f64>,
}

/// What onMetaData says about the audio track.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AudioMeta {
    /// Sample rate in Hz.
    pub samplerate: Option<u32>,
    /// Channel count.
    pub channels: Option<u32>,
    /// Bitrate in kbit/s (from tags).
    pub datarate_kbps: Option<f64>,
}

/// Everything known about the published streams: track 0 of each kind at the top level of
/// onMetaData, tracks 1..=255 in the Enhanced RTMP v2 track maps.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamMeta {
    /// Present when a video track exists.
    pub video: Option<VideoMeta>,
    /// Present when an audio track exists.
    pub audio: Option<AudioMeta>,
    /// Codec of video track 0 (None: not known yet, said as H.264).
    pub video_codec: Option<Codec>,
    /// Codec of audio track 0 (None: not known yet, said as AAC).
    pub audio_codec: Option<Codec>,
    /// Tracks 1..=255 (`videoTrackIdInfoMap`/`audioTrackIdInfoMap`), by track.
    pub tracks: TrackMap<TrackMeta>,
}

/// What onMetaData's track map says about one track >= 1.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackMeta {
    /// Its codec, once its caps came.
    pub codec: Option<Codec>,
    /// Its fields (the variant is the track's kind).
    pub meta: MetaUpdate,
}

/// What caps, tags or a stream's own headers say about a track, for onMetaData: the fields
/// that are `Some` are known.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaUpdate {
    /// About the video track.
    Video(VideoMeta),
    /// About the audio track.
    Audio(AudioMeta),
}

impl VideoMeta {
    /// Known values of `u` replace the current ones, except a frame rate read from the stream
    /// itself (`from_stream`), which only fills a gap (the caps' rate is the one the stream is
    /// sent at).
    fn merge(&mut self, u: &VideoMeta, from_stream: bool) {
        self.width = u.width.or(self.width);
        self.height = u.height.or(self.height);
        self.framerate = if from_stream {
            self.framerate.or(u.framerate)
        } else {
            u.framerate.or(self.framerate)
        };
        self.datarate_kbps = u.datarate_kbps.or(self.datarate_kbps);
    }
}

impl AudioMeta {
    /// Known values of `u` replace the current ones.
    fn merge(&mut self, u: &AudioMeta) {
        self.samplerate = u.samplerate.or(self.samplerate);
        self.channels = u.channels.or(self.channels);
        self.datarate_kbps = u.datarate_kbps.or(self.datarate_kbps);
    }
}

type Fields = Vec<(String, Amf0Value)>;

fn num(p: &mut Fields, k: &str, v: f64) {
    p.push((k.to_string(), Amf0Value::Number(v)));
}

/// The video fields of onMetaData (top level or a track map entry), FMLE/OBS order.
fn video_fields(p: &mut Fields, v: &VideoMeta) {
    if let Some(w) = v.width {
        num(p, "width", f64::from(w));
    }
    if let Some(h) = v.height {
        num(p, "height", f64::from(h));
    }
    if let Some(r) = v.datarate_kbps {
        num(p, "videodatarate", r);
    }
    if let Some(f) = v.framerate {
        num(p, "framerate", f);
    }
}

/// The audio fields of onMetaData (top level or a track map entry) before the codec id.
fn audio_fields(p: &mut Fields, a: &AudioMeta) {
    if let Some(r) = a.datarate_kbps {
        num(p, "audiodatarate", r);
    }
    if let Some(r) = a.samplerate {
        num(p, "audiosamplerate", f64::from(r));
    }
}

impl StreamMeta {
    /// Merges `update` about track 0 (see [`VideoMeta::merge`]); the track counts as present
    /// from then on.
    pub fn merge(&mut self, update: &MetaUpdate, from_stream: bool) {
        match update {
            MetaUpdate::Video(u) => self
                .video
                .get_or_insert_with(VideoMeta::default)
                .merge(u, from_stream),
            MetaUpdate::Audio(u) => self.audio.get_or_insert_with(AudioMeta::default).merge(u),
        }
    }

    /// Sets the codec of track 0 of `kind` (its `videocodecid`/`audiocodecid`).
    pub fn set_codec(&mut self, kind: MediaKind, codec: Codec) {
        match kind {
            MediaKind::Video => self.video_codec = Some(codec),
            MediaKind::Audio => self.audio_codec = Some(codec),
        }
    }

    /// Merges `update` about `track` (0: the top level; else its track map entry, created with
    /// `codec`, whose codec `codec` replaces when known). An update of the other kind than the
    /// track's is ignored.
    pub fn merge_track(
        &mut self,
        track: Track,
        codec: Option<Codec>,
        update: &MetaUpdate,
        from_stream: bool,
    ) {
        if track.id == 0 {
            self.merge(update, from_stream);
            return;
        }
        let entry = self.tracks.entry_with(track, || TrackMeta {
            codec: None,
            meta: if track.is_video() {
                MetaUpdate::Video(VideoMeta::default())
            } else {
                MetaUpdate::Audio(AudioMeta::default())
            },
        });
        entry.codec = codec.or(entry.codec);
        match (&mut entry.meta, update) {
            (MetaUpdate::Video(v), MetaUpdate::Video(u)) => v.merge(u, from_stream),
            (MetaUpdate::Audio(a), MetaUpdate::Audio(u)) => a.merge(u),
            _ => {}
        }
    }

    /// Forgets a track >= 1 (its pad was released).
    pub fn remove_track(&mut self, track: Track) {
        self.tracks.remove(track);
    }

    /// The onMetaData ECMA array, in the field order FMLE and OBS use, then the track maps of
    /// tracks >= 1 (Enhanced RTMP v2: an object keyed by the track id in decimal, each entry
    /// the fields a top-level track has, its codec id the FourCC number).
    pub fn to_amf0(&self) -> Amf0Value {
        let mut p: Fields = Vec::new();
        num(&mut p, "duration", 0.0);
        if let Some(v) = &self.video {
            video_fields(&mut p, v);
            let codec = self.video_codec.unwrap_or(Codec::H264);
            num(&mut p, "videocodecid", meta_codec_id(codec));
        }
        if let Some(a) = &self.audio {
            audio_fields(&mut p, a);
            num(&mut p, "audiosamplesize", 16.0);
            if let Some(c) = a.channels {
                p.push(("stereo".to_string(), Amf0Value::Boolean(c >= 2)));
                num(&mut p, "audiochannels", f64::from(c));
            }
            let codec = self.audio_codec.unwrap_or(Codec::Aac);
            num(&mut p, "audiocodecid", meta_codec_id(codec));
        }
        let (mut video_map, mut audio_map): (Fields, Fields) = (Vec::new(), Vec::new());
        for (track, t) in self.tracks.iter() {
            let mut f: Fields = Vec::new();
            let codec_id = t.codec.map(|c| f64::from(c.fourcc_number()));
            match &t.meta {
                MetaUpdate::Video(v) => {
                    video_fields(&mut f, v);
                    if let Some(id) = codec_id {
                        num(&mut f, "videocodecid", id);
                    }
                    video_map.push((track.id.to_string(), Amf0Value::Object(f)));
                }
                MetaUpdate::Audio(a) => {
                    audio_fields(&mut f, a);
                    if let Some(c) = a.channels {
                        num(&mut f, "audiochannels", f64::from(c));
                    }
                    if let Some(id) = codec_id {
                        num(&mut f, "audiocodecid", id);
                    }
                    audio_map.push((track.id.to_string(), Amf0Value::Object(f)));
                }
            }
        }
        if !video_map.is_empty() {
            p.push((
                "videoTrackIdInfoMap".to_string(),
                Amf0Value::Object(video_map),
            ));
        }
        if !audio_map.is_empty() {
            p.push((
                "audioTrackIdInfoMap".to_string(),
                Amf0Value::Object(audio_map),
            ));
        }
        p.push((
            "encoder".to_string(),
            Amf0Value::String(ENCODER.to_string()),
        ));
        Amf0Value::EcmaArray(p)
    }
}

/// Bitrate tags (bit/s) → kbit/s as onMetaData wants it: the nominal bitrate if given, else the
/// (average) bitrate.
pub fn bitrate_kbps_from_tags(tags: &gst::TagListRef) -> Option<f64> {
    let b = tags
        .get::<gst::tags::NominalBitrate>()
        .map(|v| v.get())
        .or_else(|| tags.get::<gst::tags::Bitrate>().map(|v| v.get()))?;
    (b > 0).then(|| f64::from(b) / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init() {
        let _ = gst::init();
    }

    /// The caps are refused with an error that says `why`.
    fn assert_refused(caps: &gst::Caps, why: &str) {
        let e = MediaFormat::from_caps(caps).unwrap_err();
        assert!(e.contains(why), "{e}");
    }

    fn get<'a>(v: &'a Amf0Value, key: &str) -> Option<&'a Amf0Value> {
        match v {
            Amf0Value::EcmaArray(p) => p.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    #[test]
    fn h264_caps() {
        init();
        let caps = gst::Caps::builder("video/x-h264")
            .field("stream-format", "byte-stream")
            .field("alignment", "au")
            .field("width", 1280)
            .field("height", 720)
            .field("framerate", gst::Fraction::new(30000, 1001))
            .build();
        let f = MediaFormat::from_caps(&caps).unwrap();
        let MediaFormat::H264 {
            input,
            width,
            height,
            framerate,
            codec_data,
        } = f
        else {
            panic!()
        };
        assert_eq!(input, H264Input::ByteStream);
        assert_eq!((width, height), (Some(1280), Some(720)));
        assert!((framerate.unwrap() - 29.97).abs() < 0.01);
        assert!(codec_data.is_none());

        let caps = gst::Caps::builder("video/x-h264")
            .field("stream-format", "avc")
            .field("alignment", "au")
            .field("codec_data", gst::Buffer::from_slice([1u8, 2, 3]))
            .field("framerate", gst::Fraction::new(0, 1))
            .build();
        let f = MediaFormat::from_caps(&caps).unwrap();
        assert!(matches!(
            f,
            MediaFormat::H264 { input: H264Input::Avc, codec_data: Some(ref c), framerate: None, .. } if c == &[1, 2, 3]
        ));
        let bad = gst::Caps::builder("video/x-h264")
            .field("stream-format", "avc3")
            .build();
        assert!(MediaFormat::from_caps(&bad).is_err());
        let bad = gst::Caps::builder("video/x-h264")
            .field("stream-format", "avc")
            .field("alignment", "nal")
            .build();
        assert_refused(&bad, "alignment");
    }

    #[test]
    fn enhanced_video_caps() {
        init();
        let caps = gst::Caps::builder("video/x-h265")
            .field("stream-format", "hvc1")
            .field("alignment", "au")
            .field("codec_data", gst::Buffer::from_slice([1u8, 2]))
            .field("width", 1920)
            .field("height", 1080)
            .field("framerate", gst::Fraction::new(50, 1))
            .field("colorimetry", "bt2100-pq")
            .field("content-light-level", "1000:400")
            .build();
        let MediaFormat::H265 {
            input,
            codec_data,
            size,
            colour,
        } = MediaFormat::from_caps(&caps).unwrap()
        else {
            panic!()
        };
        assert_eq!(input, H265Input::Hvc1);
        assert_eq!(codec_data.as_deref(), Some(&[1u8, 2][..]));
        assert_eq!(
            (size.width, size.height, size.framerate),
            (Some(1920), Some(1080), Some(50.0))
        );
        assert!(colour.is_hdr());
        assert_eq!(colour.light_level, Some((1000, 400)));
        for (fmt, input) in [
            ("hev1", H265Input::Hev1),
            ("byte-stream", H265Input::ByteStream),
        ] {
            let caps = gst::Caps::builder("video/x-h265")
                .field("stream-format", fmt)
                .build();
            assert!(
                matches!(MediaFormat::from_caps(&caps), Ok(MediaFormat::H265 { input: i, .. }) if i == input)
            );
        }
        let bad = gst::Caps::builder("video/x-h265")
            .field("stream-format", "hvc1")
            .field("alignment", "nal")
            .build();
        assert_refused(&bad, "alignment");

        let caps = gst::Caps::builder("video/x-av1")
            .field("stream-format", "obu-stream")
            .field("alignment", "tu")
            .build();
        let f = MediaFormat::from_caps(&caps).unwrap();
        assert_eq!(f.codec(), Codec::Av1);
        let bad = gst::Caps::builder("video/x-av1")
            .field("stream-format", "annexb")
            .build();
        assert_refused(&bad, "obu-stream");

        let caps = gst::Caps::builder("video/x-vp9")
            .field("width", 640)
            .field("height", 360)
            .field("chroma-site", "mpeg2")
            .build();
        let f = MediaFormat::from_caps(&caps).unwrap();
        assert!(matches!(
            f,
            MediaFormat::Vp9 {
                chroma_sited_left: true,
                size: VideoSize {
                    width: Some(640),
                    ..
                },
                ..
            }
        ));
        assert_eq!(
            f.meta(),
            MetaUpdate::Video(VideoMeta {
                width: Some(640),
                height: Some(360),
                framerate: None,
                datarate_kbps: None,
            })
        );
    }

    #[test]
    fn aac_caps() {
        init();
        let caps = gst::Caps::builder("audio/mpeg")
            .field("mpegversion", 4)
            .field("stream-format", "adts")
            .field("rate", 48000)
            .field("channels", 2)
            .build();
        assert_eq!(
            MediaFormat::from_caps(&caps).unwrap(),
            MediaFormat::Aac {
                input: AacInput::Adts,
                codec_data: None,
                rate: Some(48000),
                channels: Some(2)
            }
        );
        let mp2 = gst::Caps::builder("audio/mpeg")
            .field("mpegversion", 1)
            .build();
        assert!(MediaFormat::from_caps(&mp2).is_err(), "no layer: not MP3");
    }

    fn buffers(bufs: &[&[u8]]) -> gst::Array {
        gst::Array::new(bufs.iter().map(|b| gst::Buffer::from_slice(b.to_vec())))
    }

    /// opusenc's stereo OpusHead.
    const OPUS_HEAD: [u8; 19] = [
        0x4f, 0x70, 0x75, 0x73, 0x48, 0x65, 0x61, 0x64, 0x01, 0x02, 0x38, 0x01, 0x80, 0xbb, 0, 0,
        0, 0, 0,
    ];

    #[test]
    fn opus_caps() {
        init();
        // The streamheader's OpusHead is kept verbatim (OpusTags after it is not).
        let caps = gst::Caps::builder("audio/x-opus")
            .field("rate", 48000)
            .field("channels", 2)
            .field("streamheader", buffers(&[&OPUS_HEAD, b"OpusTags\0\0\0\0"]))
            .build();
        assert_eq!(
            MediaFormat::from_caps(&caps).unwrap(),
            MediaFormat::Opus {
                head: OPUS_HEAD.to_vec(),
                channels: 2
            }
        );
        // Without a streamheader: built from the fields.
        let caps = gst::Caps::builder("audio/x-opus")
            .field("rate", 44100)
            .field("channels", 6)
            .field("channel-mapping-family", 1)
            .build();
        let MediaFormat::Opus { head, channels } = MediaFormat::from_caps(&caps).unwrap() else {
            panic!()
        };
        assert_eq!(channels, 6);
        let parsed = opus::OpusHead::parse(&head).unwrap();
        assert_eq!(
            (
                parsed.mapping_family,
                parsed.stream_count,
                parsed.input_sample_rate
            ),
            (1, 4, 44100)
        );
        let m = MediaFormat::from_caps(&caps).unwrap().meta();
        assert_eq!(
            m,
            MetaUpdate::Audio(AudioMeta {
                samplerate: Some(48_000),
                channels: Some(6),
                datarate_kbps: None
            })
        );
        // Nothing to build an OpusHead from: a clear error.
        let bare = gst::Caps::builder("audio/x-opus").build();
        assert_refused(&bare, "no OpusHead");
        // 9 channels without stream counts and mapping cannot be built either.
        let nine = gst::Caps::builder("audio/x-opus")
            .field("channels", 9)
            .field("channel-mapping-family", 255)
            .build();
        assert_refused(&nine, "no OpusHead");
        // A streamheader without OpusHead, or a broken one.
        for bad in [&b"OpusTags"[..], &OPUS_HEAD[..12]] {
            let caps = gst::Caps::builder("audio/x-opus")
                .field("streamheader", buffers(&[bad]))
                .build();
            assert!(MediaFormat::from_caps(&caps).is_err());
        }
    }

    #[test]
    fn flac_ac3_mp3_caps() {
        init();
        let mut block = vec![0x80, 0, 0, 34];
        block.extend_from_slice(&[
            0x12, 0x00, 0x12, 0x00, 0, 0, 0, 0, 0, 0, 0x0b, 0xb8, 0x02, 0xf0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ]);
        // matroskademux's layout: "fLaC", then each metadata block.
        let caps = gst::Caps::builder("audio/x-flac")
            .field("rate", 48000)
            .field("channels", 2)
            .field("streamheader", buffers(&[b"fLaC", &block]))
            .build();
        let MediaFormat::Flac { info, rate, .. } = MediaFormat::from_caps(&caps).unwrap() else {
            panic!()
        };
        assert_eq!(info.map(|i| (i.sample_rate, i.channels)), Some((48_000, 2)));
        assert_eq!(rate, Some(48_000));
        assert_eq!(MediaFormat::from_caps(&caps).unwrap().codec(), Codec::Flac);
        let unframed = gst::Caps::builder("audio/x-flac")
            .field("framed", false)
            .build();
        assert_refused(&unframed, "flacparse");
        let bad = gst::Caps::builder("audio/x-flac")
            .field("streamheader", buffers(&[b"fLaC", &block[..20]]))
            .build();
        assert!(MediaFormat::from_caps(&bad).is_err());
        // No streamheader: STREAMINFO must come in-band.
        let none = gst::Caps::builder("audio/x-flac").build();
        assert!(matches!(
            MediaFormat::from_caps(&none).unwrap(),
            MediaFormat::Flac { info: None, .. }
        ));

        for (name, codec) in [("audio/x-ac3", Codec::Ac3), ("audio/x-eac3", Codec::Eac3)] {
            let caps = gst::Caps::builder(name)
                .field("framed", true)
                .field("rate", 48000)
                .field("channels", 6)
                .build();
            let f = MediaFormat::from_caps(&caps).unwrap();
            assert_eq!(f.codec(), codec);
            assert!(matches!(
                f.meta(),
                MetaUpdate::Audio(AudioMeta {
                    channels: Some(6),
                    ..
                })
            ));
        }

        let mp3 = gst::Caps::builder("audio/mpeg")
            .field("mpegversion", 1)
            .field("layer", 3)
            .field("rate", 44100)
            .field("channels", 2)
            .build();
        assert_eq!(
            MediaFormat::from_caps(&mp3).unwrap(),
            MediaFormat::Mp3 {
                rate: Some(44100),
                channels: Some(2)
            }
        );
    }

    #[test]
    fn templates_take_every_audio_codec() {
        init();
        let a = audio_caps();
        for caps in [
            gst::Caps::builder("audio/x-opus")
                .field("channels", 2)
                .build(),
            gst::Caps::builder("audio/x-flac")
                .field("channels", 2)
                .build(),
            gst::Caps::builder("audio/x-ac3")
                .field("framed", true)
                .build(),
            gst::Caps::builder("audio/x-eac3")
                .field("framed", true)
                .build(),
            gst::Caps::builder("audio/mpeg")
                .field("mpegversion", 1)
                .field("layer", 3)
                .build(),
        ] {
            assert!(a.can_intersect(&caps), "{caps}");
        }
        let layer2 = gst::Caps::builder("audio/mpeg")
            .field("mpegversion", 1)
            .field("layer", 2)
            .build();
        assert!(!a.can_intersect(&layer2));
        let unframed = gst::Caps::builder("audio/x-ac3")
            .field("framed", false)
            .build();
        assert!(!a.can_intersect(&unframed));
    }

    #[test]
    fn metadata_fields() {
        let m = StreamMeta {
            video: Some(VideoMeta {
                width: Some(1280),
                height: Some(720),
                framerate: Some(30.0),
                datarate_kbps: Some(2500.0),
            }),
            audio: Some(AudioMeta {
                samplerate: Some(44100),
                channels: Some(2),
                datarate_kbps: None,
            }),
            ..StreamMeta::default()
        };
        let a = m.to_amf0();
        assert_eq!(get(&a, "width"), Some(&Amf0Value::Number(1280.0)));
        assert_eq!(get(&a, "height"), Some(&Amf0Value::Number(720.0)));
        assert_eq!(get(&a, "framerate"), Some(&Amf0Value::Number(30.0)));
        assert_eq!(get(&a, "videodatarate"), Some(&Amf0Value::Number(2500.0)));
        assert_eq!(get(&a, "videocodecid"), Some(&Amf0Value::Number(7.0)));
        assert_eq!(get(&a, "audiocodecid"), Some(&Amf0Value::Number(10.0)));
        assert_eq!(
            get(&a, "audiosamplerate"),
            Some(&Amf0Value::Number(44100.0))
        );
        assert_eq!(get(&a, "audiosamplesize"), Some(&Amf0Value::Number(16.0)));
        assert_eq!(get(&a, "stereo"), Some(&Amf0Value::Boolean(true)));
        assert_eq!(get(&a, "audiochannels"), Some(&Amf0Value::Number(2.0)));
        assert_eq!(get(&a, "duration"), Some(&Amf0Value::Number(0.0)));
        assert!(get(&a, "audiodatarate").is_none());
        assert!(
            matches!(get(&a, "encoder"), Some(Amf0Value::String(s)) if s.starts_with("gst-plugin-rtmpclient "))
        );

        let audio_only = StreamMeta {
            video: None,
            audio: Some(AudioMeta {
                samplerate: Some(48000),
                channels: Some(1),
                datarate_kbps: Some(128.0),
            }),
            ..StreamMeta::default()
        }
        .to_amf0();
        assert!(get(&audio_only, "videocodecid").is_none());
        assert_eq!(get(&audio_only, "stereo"), Some(&Amf0Value::Boolean(false)));
        assert_eq!(
            get(&audio_only, "audiodatarate"),
            Some(&Amf0Value::Number(128.0))
        );
    }

    #[test]
    fn codec_ids_are_legacy_numbers_or_fourcc_numbers() {
        // The numbers FFmpeg 9 writes in onMetaData (read from FLV files it wrote).
        assert_eq!(meta_codec_id(Codec::H264), 7.0);
        assert_eq!(meta_codec_id(Codec::Aac), 10.0);
        assert_eq!(meta_codec_id(Codec::Mp3), 2.0);
        assert_eq!(meta_codec_id(Codec::H265), 1_752_589_105.0);
        assert_eq!(meta_codec_id(Codec::Opus), 1_332_770_163.0);
        let mut m = StreamMeta {
            video: Some(VideoMeta::default()),
            audio: Some(AudioMeta::default()),
            ..StreamMeta::default()
        };
        m.set_codec(MediaKind::Video, Codec::H265);
        m.set_codec(MediaKind::Audio, Codec::Opus);
        let a = m.to_amf0();
        assert_eq!(
            get(&a, "videocodecid"),
            Some(&Amf0Value::Number(1_752_589_105.0))
        );
        assert_eq!(
            get(&a, "audiocodecid"),
            Some(&Amf0Value::Number(1_332_770_163.0))
        );
    }

    #[test]
    fn track_maps_describe_tracks_above_0_and_parse_back() {
        let mut m = StreamMeta::default();
        let video = |w, h, f| {
            MetaUpdate::Video(VideoMeta {
                width: Some(w),
                height: Some(h),
                framerate: Some(f),
                datarate_kbps: None,
            })
        };
        m.merge_track(
            Track::VIDEO,
            Some(Codec::H264),
            &video(1280, 720, 30.0),
            false,
        );
        m.merge_track(
            Track::video(2),
            Some(Codec::H264),
            &video(640, 360, 30.0),
            false,
        );
        m.merge_track(
            Track::video(1),
            Some(Codec::H265),
            &video(854, 480, 25.0),
            false,
        );
        let rate = MetaUpdate::Video(VideoMeta {
            datarate_kbps: Some(800.0),
            ..VideoMeta::default()
        });
        m.merge_track(Track::video(1), None, &rate, false);
        let audio = MetaUpdate::Audio(AudioMeta {
            samplerate: Some(48000),
            channels: Some(1),
            datarate_kbps: Some(64.0),
        });
        m.merge_track(Track::audio(3), Some(Codec::Aac), &audio, false);
        // An update of the other kind does not change a track's entry.
        m.merge_track(Track::audio(3), None, &video(1, 1, 1.0), false);

        // Through the crate's AMF0 encoder and decoder, as the server gets it.
        let mut bytes = Vec::new();
        crate::rtmp::amf0::encode(&m.to_amf0(), &mut bytes);
        let back = crate::rtmp::amf0::decode(&mut bytes.as_slice()).unwrap();
        assert_eq!(get(&back, "width"), Some(&Amf0Value::Number(1280.0)));
        let Some(Amf0Value::Object(vmap)) = get(&back, "videoTrackIdInfoMap") else {
            panic!("no videoTrackIdInfoMap: {back:?}");
        };
        let keys: Vec<&str> = vmap.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["1", "2"], "track 0 is at the top level only");
        let field = |o: &Amf0Value, k: &str| match o {
            Amf0Value::Object(f) => f.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()),
            _ => None,
        };
        let t1 = &vmap[0].1;
        let n = |v: f64| Some(Amf0Value::Number(v));
        assert_eq!(field(t1, "width"), n(854.0));
        assert_eq!(field(t1, "height"), n(480.0));
        assert_eq!(field(t1, "framerate"), n(25.0));
        assert_eq!(field(t1, "videodatarate"), n(800.0));
        assert_eq!(field(t1, "videocodecid"), n(1_752_589_105.0), "hvc1");
        assert_eq!(
            field(&vmap[1].1, "videocodecid"),
            n(1_635_148_593.0),
            "avc1"
        );
        let Some(Amf0Value::Object(amap)) = get(&back, "audioTrackIdInfoMap") else {
            panic!("no audioTrackIdInfoMap: {back:?}");
        };
        assert_eq!(amap.len(), 1);
        assert_eq!(amap[0].0, "3");
        let t3 = &amap[0].1;
        assert_eq!(field(t3, "audiosamplerate"), n(48000.0));
        assert_eq!(field(t3, "audiochannels"), n(1.0));
        assert_eq!(field(t3, "audiodatarate"), n(64.0));
        assert_eq!(field(t3, "audiocodecid"), n(1_836_069_985.0), "mp4a");
        assert!(field(t3, "width").is_none());

        // A released track leaves the map; an empty map is not sent.
        m.remove_track(Track::audio(3));
        assert!(get(&m.to_amf0(), "audioTrackIdInfoMap").is_none());
    }

    #[test]
    fn merge_keeps_what_is_known_and_the_caps_frame_rate() {
        let mut m = StreamMeta::default();
        let caps = MetaUpdate::Video(VideoMeta {
            width: Some(640),
            height: None,
            framerate: Some(25.0),
            datarate_kbps: None,
        });
        m.merge(&caps, false);
        let stream = MetaUpdate::Video(VideoMeta {
            width: Some(1280),
            height: Some(720),
            framerate: Some(50.0),
            datarate_kbps: None,
        });
        m.merge(&stream, true);
        assert_eq!(
            m.video,
            Some(VideoMeta {
                width: Some(1280),
                height: Some(720),
                framerate: Some(25.0),
                datarate_kbps: None,
            })
        );
        let mut m = StreamMeta::default();
        m.merge(&stream, true);
        assert_eq!(m.video.as_ref().and_then(|v| v.framerate), Some(50.0));
        m.merge(&MetaUpdate::Audio(AudioMeta::default()), false);
        assert_eq!(
            m.audio,
            Some(AudioMeta::default()),
            "present with nothing known"
        );
    }

    #[test]
    fn bitrate_tags() {
        init();
        let mut tags = gst::TagList::new();
        assert_eq!(bitrate_kbps_from_tags(&tags), None);
        tags.get_mut()
            .unwrap()
            .add::<gst::tags::Bitrate>(&128_000, gst::TagMergeMode::Replace);
        assert_eq!(bitrate_kbps_from_tags(&tags), Some(128.0));
        tags.get_mut()
            .unwrap()
            .add::<gst::tags::NominalBitrate>(&96_000, gst::TagMergeMode::Replace);
        assert_eq!(bitrate_kbps_from_tags(&tags), Some(96.0));
    }
}
