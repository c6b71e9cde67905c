//! Caps → media format, and the onMetaData object built from what is known about the streams.

use crate::codec::Codec;
use crate::rtmp::amf0::Amf0Value;

use super::convert::{AacInput, H264Input};
use super::queue::{Track, TrackMap};

/// FLV `videocodecid` of AVC.
pub const VIDEO_CODEC_ID_AVC: f64 = 7.0;
/// FLV `audiocodecid` of AAC.
pub const AUDIO_CODEC_ID_AAC: f64 = 10.0;
/// The `encoder` field of onMetaData.
pub const ENCODER: &str = concat!("gst-plugin-rtmpclient ", env!("CARGO_PKG_VERSION"));

/// The caps every video pad takes (`sink`, and `video_%u` with the multitrack pads): one
/// structure per codec.
pub fn video_caps() -> gst::Caps {
    let h264 = gst::Structure::builder("video/x-h264")
        .field("stream-format", gst::List::new(["avc", "byte-stream"]))
        .field("alignment", "au")
        .build();
    gst::Caps::builder_full().structure(h264).build()
}

/// The caps every audio pad takes (`audio`, `sink` of an audio-only stream, and `audio_%u`):
/// one structure per codec.
pub fn audio_caps() -> gst::Caps {
    let aac = gst::Structure::builder("audio/mpeg")
        .field("mpegversion", gst::List::new([2i32, 4]))
        .field("stream-format", gst::List::new(["raw", "adts"]))
        .build();
    gst::Caps::builder_full().structure(aac).build()
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
}

impl MediaFormat {
    /// The codec the caps carry.
    pub fn codec(&self) -> Codec {
        match self {
            MediaFormat::H264 { .. } => Codec::H264,
            MediaFormat::Aac { .. } => Codec::Aac,
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
            MediaFormat::Aac { rate, channels, .. } => MetaUpdate::Audio(AudioMeta {
                samplerate: rate,
                channels,
                datarate_kbps: None,
            }),
        }
    }

    /// Reads fixed caps. The pad templates only let H.264 (avc/byte-stream, au) and AAC
    /// (raw/adts) through; anything else here is a programming error reported as `Err`.
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
            "audio/mpeg" => {
                let version = s.get::<i32>("mpegversion").unwrap_or(0);
                if version != 2 && version != 4 {
                    return Err(format!(
                        "unsupported audio/mpeg mpegversion {version}: only AAC (2 or 4) can be \
                         sent; encode the audio as AAC."
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
            other => Err(format!(
                "unsupported media type {other}; send H.264 video and AAC audio."
            )),
        }
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
            num(&mut p, "videocodecid", VIDEO_CODEC_ID_AVC);
        }
        if let Some(a) = &self.audio {
            audio_fields(&mut p, a);
            num(&mut p, "audiosamplesize", 16.0);
            if let Some(c) = a.channels {
                p.push(("stereo".to_string(), Amf0Value::Boolean(c >= 2)));
                num(&mut p, "audiochannels", f64::from(c));
            }
            num(&mut p, "audiocodecid", AUDIO_CODEC_ID_AAC);
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
        assert!(
            MediaFormat::from_caps(&bad)
                .unwrap_err()
                .contains("alignment")
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
        let mp3 = gst::Caps::builder("audio/mpeg")
            .field("mpegversion", 1)
            .build();
        assert!(MediaFormat::from_caps(&mp3).is_err());
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
