//! Per-pad input: caps → codec state → frames for the queue.
//!
//! Every sink pad has a [`PadSlot`]: its [`PadInput`] (built from the caps) and its segment.
//! A buffer goes through the pad's [`CodecState`] (the GStreamer-free conversion of
//! `convert.rs`), gets its timestamps (decode times derived from PTS when upstream has none,
//! `timeline.rs`) and is queued as [`Frame`]s of the pad's [`Track`].
//!
//! Extending it:
//! * a codec is one more variant of [`CodecState`] (with its `MediaFormat` arm in `format.rs`
//!   and its converter in `convert.rs`): what it returns from [`CodecState::convert`] is all
//!   the rest needs;
//! * a pad is one more [`PadSlot`] with its track (`sink` and `audio` are track 0, request
//!   pads `video_%u`/`audio_%u` track %u); the queue, the session thread and the tag builder
//!   are keyed by track already.

use std::sync::{Arc, Mutex, MutexGuard};

use gst::prelude::*;

use crate::codec::{self, Codec};

use super::audio::{Ac3State, AudioOutcome, AudioParams, FlacState, Mp3State, OpusState};
use super::convert::{AacState, AudioFrames, H264State, VideoAu, VideoOutcome};
use super::format::{
    AudioMeta, MediaFormat, MetaUpdate, StreamMeta, VideoMeta, bitrate_kbps_from_tags,
};
use super::frame::{Frame, FrameData};
use super::imp::CAT;
use super::ingest::Ingest;
use super::messages;
use super::queue::{CongestionReport, Track};
use super::session::Shared;
use super::timeline::{DEFAULT_REORDER_WINDOW, Derived, DtsDeriver, ns_to_ms};
use super::video::{
    AV1_NO_SEQUENCE_HEADER_TEXT, Av1State, H265State, HEVC_NO_PARAMETER_SETS_TEXT, StreamVideoInfo,
    Vp9State,
};

/// Bad input buffers in a row after which the stream is taken not to be what its caps say.
const MAX_CONSECUTIVE_BAD_BUFFERS: u32 = 25;

/// A pad's TIME segment.
pub type Segment = gst::FormattedSegment<gst::ClockTime>;

/// What an input works with: the element it posts messages as, the session state its frames
/// go to.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    /// The element (errors, warnings, congestion messages).
    pub element: &'a gst::Element,
    /// Queue and metadata.
    pub shared: &'a Shared,
    /// `ingest-rules` checks (they only look).
    pub ingest: &'a Ingest,
}

/// The conversion state of one pad's codec: one variant per codec the element takes.
#[derive(Debug)]
pub enum CodecState {
    /// H.264 (`avc` or `byte-stream`).
    H264(H264State),
    /// HEVC (`hvc1`, `hev1` or `byte-stream`).
    H265(H265State),
    /// AV1 (`obu-stream`).
    Av1(Av1State),
    /// VP9.
    Vp9(Vp9State),
    /// AAC (`raw` or `adts`).
    Aac(AacState),
    /// Opus.
    Opus(OpusState),
    /// FLAC.
    Flac(FlacState),
    /// AC-3 or E-AC-3.
    Ac3(Ac3State),
    /// MP3.
    Mp3(Mp3State),
}

/// What one input buffer became.
#[derive(Debug)]
pub enum Converted {
    /// One video access unit.
    Video(VideoAu),
    /// Audio frames (usually one), each at its offset from the buffer's timestamp.
    Audio(AudioFrames),
    /// Nothing to send: a delta frame before the first keyframe.
    BeforeKeyframe,
    /// Nothing to send: a stream header repeated in-band (FLAC metadata blocks, Opus headers).
    Header,
}

impl CodecState {
    /// The state for the codec of `format`.
    pub fn new(format: &MediaFormat) -> Result<Self, codec::Error> {
        Ok(match format {
            MediaFormat::H264 {
                input, codec_data, ..
            } => CodecState::H264(H264State::new(*input, codec_data.as_deref())?),
            MediaFormat::H265 {
                input,
                codec_data,
                colour,
                ..
            } => CodecState::H265(H265State::new(*input, codec_data.as_deref(), *colour)?),
            MediaFormat::Av1 {
                codec_data, colour, ..
            } => CodecState::Av1(Av1State::new(codec_data.as_deref(), *colour)?),
            MediaFormat::Vp9 {
                colour,
                chroma_sited_left,
                ..
            } => CodecState::Vp9(Vp9State::new(*colour, *chroma_sited_left)),
            MediaFormat::Aac {
                input, codec_data, ..
            } => CodecState::Aac(AacState::new(*input, codec_data.as_deref())?),
            MediaFormat::Opus { head, .. } => CodecState::Opus(OpusState::new(head)?),
            MediaFormat::Flac { info, .. } => CodecState::Flac(FlacState::new(info.as_ref())),
            MediaFormat::Ac3 { kind, .. } => CodecState::Ac3(Ac3State::new(*kind)),
            MediaFormat::Mp3 { .. } => CodecState::Mp3(Mp3State::new()),
        })
    }

    /// The codec.
    pub fn codec(&self) -> Codec {
        match self {
            CodecState::H264(_) => Codec::H264,
            CodecState::H265(_) => Codec::H265,
            CodecState::Av1(_) => Codec::Av1,
            CodecState::Vp9(_) => Codec::Vp9,
            CodecState::Aac(_) => Codec::Aac,
            CodecState::Opus(_) => Codec::Opus,
            CodecState::Flac(_) => Codec::Flac,
            CodecState::Ac3(a) => a.codec(),
            CodecState::Mp3(_) => Codec::Mp3,
        }
    }

    /// New caps of the same codec: keeps the state, takes what the caps change. False when
    /// `format` is another codec (the caller builds a new state).
    pub fn update(&mut self, format: &MediaFormat) -> Result<bool, codec::Error> {
        match (self, format) {
            (
                CodecState::H264(h),
                MediaFormat::H264 {
                    input, codec_data, ..
                },
            ) => h.set_caps(*input, codec_data.as_deref())?,
            (
                CodecState::H265(h),
                MediaFormat::H265 {
                    input,
                    codec_data,
                    colour,
                    ..
                },
            ) => h.set_caps(*input, codec_data.as_deref(), *colour)?,
            (
                CodecState::Av1(a),
                MediaFormat::Av1 {
                    codec_data, colour, ..
                },
            ) => a.set_caps(codec_data.as_deref(), *colour)?,
            (
                CodecState::Vp9(v),
                MediaFormat::Vp9 {
                    colour,
                    chroma_sited_left,
                    ..
                },
            ) => v.set_caps(*colour, *chroma_sited_left),
            (
                CodecState::Aac(a),
                MediaFormat::Aac {
                    input, codec_data, ..
                },
            ) => a.set_caps(*input, codec_data.as_deref())?,
            (CodecState::Opus(o), MediaFormat::Opus { head, .. }) => o.set_caps(head)?,
            (CodecState::Flac(f), MediaFormat::Flac { info, .. }) => f.set_caps(info.as_ref()),
            (CodecState::Ac3(a), f @ MediaFormat::Ac3 { .. }) if a.codec() == f.codec() => {}
            (CodecState::Mp3(_), MediaFormat::Mp3 { .. }) => {}
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Converts one buffer's bytes (`delta_unit`: its DELTA_UNIT flag). Never copies the
    /// payload; allocates nothing in steady state (see `frame.rs`'s zero-copy tests).
    pub fn convert(&mut self, data: &[u8], delta_unit: bool) -> Result<Converted, codec::Error> {
        Ok(match self {
            CodecState::H264(h) => match h.process(data, delta_unit)? {
                VideoOutcome::Frame(au) => Converted::Video(au),
                VideoOutcome::BeforeKeyframe => Converted::BeforeKeyframe,
            },
            CodecState::H265(h) => video(h.process(data, delta_unit)?),
            CodecState::Av1(a) => video(a.process(data, delta_unit)?),
            CodecState::Vp9(v) => video(v.process(data, delta_unit)?),
            CodecState::Aac(a) => Converted::Audio(a.process(data)?),
            CodecState::Opus(o) => o.process(data)?.into(),
            CodecState::Flac(f) => f.process(data)?.into(),
            CodecState::Ac3(a) => a.process(data)?.into(),
            CodecState::Mp3(m) => m.process(data)?.into(),
        })
    }

    /// The user-facing text when `err` means the stream can never be sent (a clear error
    /// instead of counted bad buffers).
    pub fn fatal_text(&self, err: &codec::Error) -> Option<String> {
        match (self, err) {
            (_, codec::Error::MissingSps | codec::Error::MissingPps) => Some(
                "H.264 stream has no SPS/PPS before its first keyframe; make the encoder send SPS and PPS with keyframes (h264parse config-interval=-1 inserts them).".to_string(),
            ),
            (CodecState::Aac(a), err) if a.missing_config() => Some(capitalize(&err.to_string())),
            (CodecState::Flac(f), err) if f.missing_config() => Some(capitalize(&err.to_string())),
            (
                CodecState::H265(_),
                codec::Error::InvalidHevc(m @ HEVC_NO_PARAMETER_SETS_TEXT),
            )
            | (CodecState::Av1(_), codec::Error::InvalidAv1(m @ AV1_NO_SEQUENCE_HEADER_TEXT)) => {
                Some(format!("{m}."))
            }
            _ => None,
        }
    }

    /// What the stream's own headers say for onMetaData after the last conversion, and a line
    /// for the log when the configuration changed.
    pub fn stream_meta(&mut self) -> Option<(MetaUpdate, Option<String>)> {
        match self {
            CodecState::H264(h) => {
                if !h.take_config_changed() {
                    return None;
                }
                let sps = h.sps_info()?;
                let line = format!(
                    "H.264 config: {}x{} profile {} level {}",
                    sps.width, sps.height, sps.profile_idc, sps.level_idc
                );
                let update = MetaUpdate::Video(VideoMeta {
                    width: Some(sps.width),
                    height: Some(sps.height),
                    framerate: sps.frame_rate.map(|(n, d)| f64::from(n) / f64::from(d)),
                    datarate_kbps: None,
                });
                Some((update, Some(line)))
            }
            CodecState::H265(h) => Some(stream_video_meta(h.take_stream_info()?)),
            CodecState::Av1(a) => Some(stream_video_meta(a.take_stream_info()?)),
            CodecState::Vp9(v) => Some(stream_video_meta(v.take_stream_info()?)),
            CodecState::Aac(a) => {
                let asc = a.asc()?;
                let update = MetaUpdate::Audio(AudioMeta {
                    samplerate: Some(asc.sample_rate),
                    channels: (asc.channel_configuration > 0)
                        .then(|| u32::from(asc.channel_configuration)),
                    datarate_kbps: None,
                });
                Some((update, None))
            }
            CodecState::Opus(o) => o.take_params().map(audio_update),
            CodecState::Flac(f) => f.take_params().map(audio_update),
            CodecState::Ac3(a) => a.take_params().map(audio_update),
            CodecState::Mp3(m) => m.take_params().map(audio_update),
        }
    }
}

impl From<AudioOutcome> for Converted {
    fn from(o: AudioOutcome) -> Self {
        match o {
            AudioOutcome::Frames(f) => Converted::Audio(f),
            AudioOutcome::Header => Converted::Header,
        }
    }
}

/// onMetaData's view of what an audio stream's own headers say.
fn audio_update(p: AudioParams) -> (MetaUpdate, Option<String>) {
    let update = MetaUpdate::Audio(AudioMeta {
        samplerate: Some(p.rate),
        channels: Some(p.channels),
        datarate_kbps: None,
    });
    (update, None)
}

/// A video conversion outcome as what the buffer became.
fn video(outcome: VideoOutcome) -> Converted {
    match outcome {
        VideoOutcome::Frame(au) => Converted::Video(au),
        VideoOutcome::BeforeKeyframe => Converted::BeforeKeyframe,
    }
}

/// What an enhanced video stream's headers say, for onMetaData and the log.
fn stream_video_meta(info: StreamVideoInfo) -> (MetaUpdate, Option<String>) {
    let update = MetaUpdate::Video(VideoMeta {
        width: Some(info.width),
        height: Some(info.height),
        framerate: info.framerate,
        datarate_kbps: None,
    });
    let line = info
        .line
        .map(|l| format!("{l}: {}x{}", info.width, info.height));
    (update, line)
}

/// Merges a metadata update about `track` (of `codec`, when known): track 0 of each kind at
/// onMetaData's top level, further tracks in its track maps.
fn update_meta(
    shared: &Shared,
    track: Track,
    codec: Option<Codec>,
    update: &MetaUpdate,
    from_stream: bool,
) {
    shared.update_meta(|m: &mut StreamMeta| m.merge_track(track, codec, update, from_stream));
}

/// Bitrate tags of a pad carrying `track` → onMetaData's data rate.
pub fn apply_tags(shared: &Shared, track: Track, tags: &gst::TagListRef) {
    let Some(kbps) = bitrate_kbps_from_tags(tags) else {
        return;
    };
    let update = if track.is_video() {
        MetaUpdate::Video(VideoMeta {
            datarate_kbps: Some(kbps),
            ..VideoMeta::default()
        })
    } else {
        MetaUpdate::Audio(AudioMeta {
            datarate_kbps: Some(kbps),
            ..AudioMeta::default()
        })
    };
    update_meta(shared, track, None, &update, false);
}

/// Logs and posts a congestion report (`rtmp-congestion`).
pub fn report_congestion(element: &gst::Element, r: &CongestionReport) {
    gst::warning!(
        CAT,
        obj = element,
        "congestion: dropped {} frames (video {} / audio {} in total; per track {:?}), queue time {} ms of {} ms",
        r.new_drops,
        r.dropped_video,
        r.dropped_audio,
        r.dropped_per_track,
        r.queue_time_ms,
        r.max_queue_time_ms
    );
    let _ = element.post_message(messages::congestion(element, r));
}

/// Upper-cases the first letter (error texts start lower-case).
pub fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// What a decode time in ns has beyond [`ns_to_ms`]'s milliseconds.
fn sub_ms_ns(ns: i64) -> i32 {
    i32::try_from(ns - ns_to_ms(ns) * 1_000_000).unwrap_or(0)
}

fn running_time_ns(segment: &Segment, ts: Option<gst::ClockTime>) -> Option<i64> {
    let ts = ts?;
    match segment.to_running_time_full(ts)? {
        gst::Signed::Positive(t) => i64::try_from(t.nseconds()).ok(),
        gst::Signed::Negative(t) => i64::try_from(t.nseconds()).ok().map(|v| -v),
    }
}

/// The input state of one pad (lives in the pad's streaming thread).
#[derive(Debug)]
pub struct PadInput {
    /// Index of the pad's flushing flag in the session state.
    pad: usize,
    track: Track,
    codec: CodecState,
    segment: Segment,
    /// Present once a video buffer without usable DTS was seen (matroskademux B-frame streams).
    deriver: Option<DtsDeriver<Frame>>,
    last_dts_ns: Option<i64>,
    /// Any frame queued (a codec switch is no longer possible).
    started: bool,
    bad_in_a_row: u32,
    bad_total: u64,
    dropped_before_key: u64,
}

impl PadInput {
    fn new(pad: usize, track: Track, codec: CodecState) -> Self {
        PadInput {
            pad,
            track,
            codec,
            segment: Segment::new(),
            deriver: None,
            last_dts_ns: None,
            started: false,
            bad_in_a_row: 0,
            bad_total: 0,
            dropped_before_key: 0,
        }
    }

    /// The pad's track.
    pub fn track(&self) -> Track {
        self.track
    }

    /// Builds the input of pad `pad` for caps `format` carrying `track`, or updates it;
    /// refuses a switch to another codec or track once frames were queued. Activates the track
    /// in the queue and takes the caps' metadata.
    fn apply(
        slot: &mut Option<PadInput>,
        ctx: Ctx<'_>,
        pad: usize,
        track: Track,
        format: &MediaFormat,
    ) -> Result<(), gst::ErrorMessage> {
        if let Some(input) = slot.as_ref()
            && (input.track != track || input.codec.codec() != format.codec())
        {
            if input.started {
                return Err(gst::error_msg!(
                    gst::StreamError::Format,
                    (
                        "Cannot switch from {} to {} in the middle of an RTMP publish",
                        input.codec.codec().name(),
                        format.codec().name()
                    )
                ));
            }
            *slot = None;
        }
        let codec_err = |e: codec::Error| {
            gst::error_msg!(
                gst::StreamError::Format,
                ("Invalid codec_data in the caps: {}", e)
            )
        };
        match slot.as_mut() {
            Some(input) => {
                input.codec.update(format).map_err(codec_err)?;
            }
            None => {
                let codec = CodecState::new(format).map_err(codec_err)?;
                *slot = Some(PadInput::new(pad, track, codec));
            }
        }
        {
            let mut g = ctx.shared.lock();
            g.queue.activate(track);
            g.set_codec(track, format.codec());
            ctx.shared.notify(&g);
        }
        // Metadata from the caps (the stream's headers refine it when the first frames come).
        update_meta(
            ctx.shared,
            track,
            Some(format.codec()),
            &format.meta(),
            false,
        );
        ctx.ingest.caps(ctx.element, track, format);
        Ok(())
    }

    /// Converts one buffer and queues the resulting frames (blocking while the queue is full).
    fn handle_buffer(
        &mut self,
        ctx: Ctx<'_>,
        buffer: &gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let pts = running_time_ns(&self.segment, buffer.pts());
        let dts = running_time_ns(&self.segment, buffer.dts());
        let delta = buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        let map = buffer.clone().into_mapped_buffer_readable().map_err(|_| {
            gst::element_error!(
                ctx.element,
                gst::CoreError::Failed,
                ("Failed to map buffer")
            );
            gst::FlowError::Error
        })?;
        let converted = match self.codec.convert(map.as_slice(), delta) {
            Ok(c) => c,
            Err(e) => return self.bad_buffer(ctx, e),
        };
        match converted {
            Converted::Header => Ok(gst::FlowSuccess::Ok),
            Converted::BeforeKeyframe => {
                self.dropped_before_key += 1;
                if self.dropped_before_key == 1 || self.dropped_before_key.is_multiple_of(100) {
                    gst::warning!(
                        CAT,
                        obj = ctx.element,
                        "dropping {} frame before the first keyframe ({} so far)",
                        self.codec.codec().name(),
                        self.dropped_before_key
                    );
                }
                Ok(gst::FlowSuccess::Ok)
            }
            Converted::Video(au) => {
                self.bad_in_a_row = 0;
                self.refresh_meta(ctx);
                let frame = Frame {
                    track: self.track,
                    codec: self.codec.codec(),
                    dts_ms: 0,
                    dts_sub_ms_ns: 0,
                    cts_ms: 0,
                    keyframe: au.keyframe,
                    disposable: au.disposable,
                    config: au.config,
                    data: FrameData::video(map, au.body),
                };
                self.queue_video(ctx, frame, pts, dts)
            }
            Converted::Audio(frames) => {
                self.bad_in_a_row = 0;
                let Some(base) = dts.or(pts).or(self.last_dts_ns) else {
                    gst::warning!(
                        CAT,
                        obj = ctx.element,
                        "dropping audio buffer without timestamp"
                    );
                    return Ok(gst::FlowSuccess::Ok);
                };
                self.refresh_meta(ctx);
                let map = Arc::new(map);
                let mut res = Ok(gst::FlowSuccess::Ok);
                for f in frames {
                    let dts_ns = base + f.offset_ns;
                    self.last_dts_ns = Some(dts_ns);
                    let frame = Frame {
                        track: self.track,
                        codec: self.codec.codec(),
                        dts_ms: ns_to_ms(dts_ns),
                        dts_sub_ms_ns: sub_ms_ns(dts_ns),
                        cts_ms: 0,
                        keyframe: true,
                        disposable: false,
                        config: f.config,
                        data: FrameData::Mapped {
                            map: map.clone(),
                            range: f.range,
                        },
                    };
                    self.started = true;
                    res = self.push(ctx, frame);
                    if res.is_err() {
                        break;
                    }
                }
                res
            }
        }
    }

    /// Takes what the stream's headers say into onMetaData.
    fn refresh_meta(&mut self, ctx: Ctx<'_>) {
        if let Some((update, line)) = self.codec.stream_meta() {
            if let Some(line) = line {
                gst::info!(CAT, obj = ctx.element, "{line}");
            }
            update_meta(
                ctx.shared,
                self.track,
                Some(self.codec.codec()),
                &update,
                true,
            );
        }
    }

    /// Queues a frame; posts a (rate-limited) congestion report when frames were dropped.
    fn push(&self, ctx: Ctx<'_>, frame: Frame) -> Result<gst::FlowSuccess, gst::FlowError> {
        ctx.ingest.frame(ctx.element, &frame);
        if let Some(report) = ctx.shared.push(frame, self.pad)? {
            report_congestion(ctx.element, &report);
        }
        Ok(gst::FlowSuccess::Ok)
    }

    /// Assigns DTS/CTS to a video frame (deriving DTS when the buffer has none) and queues it.
    fn queue_video(
        &mut self,
        ctx: Ctx<'_>,
        mut frame: Frame,
        pts: Option<i64>,
        dts: Option<i64>,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        // Decide once per stream, at its first frame, whether upstream DTS can be trusted. No
        // DTS, or DTS equal to PTS on the first frame (matroskademux sets DTS = PTS, or none,
        // for B-frame streams since Matroska stores no DTS), means they are not real decode
        // times: derive them from PTS. A real B-frame encoder gives its first frame DTS < PTS;
        // a stream without reordering gets DTS = PTS from the deriver as well.
        if !codec::flv::carries_composition_time(frame.codec.fourcc()) {
            // AV1 and VP9: one shown frame per buffer, so decode order is presentation order,
            // and their tags have no composition time: the timestamp is the PTS.
            self.started = true;
            let Some(ts) = pts.or(dts).or(self.last_dts_ns) else {
                gst::warning!(
                    CAT,
                    obj = ctx.element,
                    "dropping video buffer without timestamp"
                );
                return Ok(gst::FlowSuccess::Ok);
            };
            self.last_dts_ns = Some(ts);
            frame.dts_ms = ns_to_ms(ts);
            frame.cts_ms = 0;
            return self.push(ctx, frame);
        }
        let first_frame = !self.started && self.deriver.is_none();
        let untrusted = dts.is_none() || (first_frame && dts == pts);
        // From here on the track has its codec for the server (even while frames wait in the
        // deriver): a codec switch is refused.
        self.started = true;
        if self.deriver.is_none() && pts.is_some() && untrusted {
            gst::info!(
                CAT,
                obj = ctx.element,
                "video buffers carry no usable DTS: deriving DTS from PTS with a {} frame window",
                DEFAULT_REORDER_WINDOW
            );
            // DTS end up in milliseconds: keep them at least 1 ms apart.
            self.deriver = Some(DtsDeriver::new(DEFAULT_REORDER_WINDOW, 1_000_000));
        }
        if let Some(deriver) = self.deriver.as_mut() {
            let Some(pts) = pts.or(dts).or(self.last_dts_ns) else {
                gst::warning!(
                    CAT,
                    obj = ctx.element,
                    "dropping video buffer without timestamp"
                );
                return Ok(gst::FlowSuccess::Ok);
            };
            let Some(d) = deriver.push(pts, frame) else {
                return Ok(gst::FlowSuccess::Ok);
            };
            return self.push_derived(ctx, d);
        }
        let Some(dts_ns) = dts.or(pts).or(self.last_dts_ns) else {
            gst::warning!(
                CAT,
                obj = ctx.element,
                "dropping video buffer without timestamp"
            );
            return Ok(gst::FlowSuccess::Ok);
        };
        let pts_ns = pts.unwrap_or(dts_ns);
        self.last_dts_ns = Some(dts_ns);
        frame.dts_ms = ns_to_ms(dts_ns);
        frame.dts_sub_ms_ns = sub_ms_ns(dts_ns);
        frame.cts_ms = ns_to_ms(pts_ns) - frame.dts_ms;
        self.push(ctx, frame)
    }

    fn push_derived(
        &mut self,
        ctx: Ctx<'_>,
        d: Derived<Frame>,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        if d.impossible {
            gst::warning!(
                CAT,
                obj = ctx.element,
                "no valid DTS for frame with PTS {} ns (reordered deeper than {} frames); using {}",
                d.pts,
                DEFAULT_REORDER_WINDOW,
                d.dts
            );
        }
        gst::trace!(
            CAT,
            obj = ctx.element,
            "derived DTS {} ns for PTS {} ns",
            d.dts,
            d.pts
        );
        let mut frame = d.item;
        self.last_dts_ns = Some(d.dts);
        frame.dts_ms = ns_to_ms(d.dts);
        frame.dts_sub_ms_ns = sub_ms_ns(d.dts);
        frame.cts_ms = ns_to_ms(d.pts) - frame.dts_ms;
        self.push(ctx, frame)
    }

    /// Releases frames held by the DTS deriver (EOS).
    fn flush_deriver(&mut self, ctx: Ctx<'_>) -> Result<gst::FlowSuccess, gst::FlowError> {
        let Some(deriver) = self.deriver.as_mut() else {
            return Ok(gst::FlowSuccess::Ok);
        };
        for d in deriver.flush() {
            self.push_derived(ctx, d)?;
        }
        Ok(gst::FlowSuccess::Ok)
    }

    /// A buffer that cannot be converted: a clear error for what can never work (no parameter
    /// sets before the keyframe, raw AAC without codec_data), otherwise a counted, rate-limited
    /// drop — and an error once nothing valid arrives any more.
    fn bad_buffer(
        &mut self,
        ctx: Ctx<'_>,
        err: codec::Error,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        self.bad_total += 1;
        self.bad_in_a_row += 1;
        if let Some(text) = self.codec.fatal_text(&err) {
            gst::element_error!(
                ctx.element,
                gst::StreamError::Format,
                ("{}", text),
                ["{}", err]
            );
            return Err(gst::FlowError::Error);
        }
        if self.bad_in_a_row >= MAX_CONSECUTIVE_BAD_BUFFERS {
            gst::element_error!(
                ctx.element,
                gst::StreamError::Decode,
                (
                    "{} consecutive invalid {} buffers: {}",
                    self.bad_in_a_row,
                    self.codec.codec().name(),
                    capitalize(&err.to_string())
                )
            );
            return Err(gst::FlowError::Error);
        }
        if self.bad_total == 1 || self.bad_total.is_multiple_of(100) {
            gst::warning!(
                CAT,
                obj = ctx.element,
                "dropping invalid {} buffer ({} so far): {}",
                self.track,
                self.bad_total,
                err
            );
        }
        Ok(gst::FlowSuccess::Ok)
    }
}

/// One sink pad's input and segment: the entry of the element's pad table.
///
/// Lock order (see `imp.rs`): the input before the segment; both before the element's `pads`
/// and the session state. The input is held by the streaming thread while a buffer is
/// converted and queued, which may block for long: nothing else may wait for it.
#[derive(Debug)]
pub struct PadSlot {
    /// Index of the pad's flushing flag in the session state.
    index: usize,
    input: Mutex<Option<PadInput>>,
    /// Segment of the pad, kept from the SEGMENT event until caps create the input.
    segment: Mutex<Segment>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl PadSlot {
    /// The slot of the pad whose flushing flag is `index`.
    pub fn new(index: usize) -> Self {
        PadSlot {
            index,
            input: Mutex::new(None),
            segment: Mutex::new(Segment::new()),
        }
    }

    /// Index of the pad's flushing flag.
    pub fn index(&self) -> usize {
        self.index
    }

    /// New caps (`format`) carrying `track`: builds or updates the input (see
    /// [`PadInput::apply`]).
    pub fn set_caps(
        &self,
        ctx: Ctx<'_>,
        track: Track,
        format: &MediaFormat,
    ) -> Result<(), gst::ErrorMessage> {
        let mut slot = lock(&self.input);
        let seg = lock(&self.segment).clone();
        PadInput::apply(&mut slot, ctx, self.index, track, format)?;
        if let Some(i) = slot.as_mut() {
            i.segment = seg;
        }
        Ok(())
    }

    /// The track of the current input (None before caps). Waits for a streaming thread that
    /// is converting a buffer: not for other threads.
    pub fn track(&self) -> Option<Track> {
        lock(&self.input).as_ref().map(PadInput::track)
    }

    /// A SEGMENT event.
    pub fn set_segment(&self, segment: &Segment) {
        *lock(&self.segment) = segment.clone();
        if let Some(i) = lock(&self.input).as_mut() {
            i.segment = segment.clone();
        }
    }

    /// A buffer: converted and queued. `None` when no caps came before it.
    pub fn chain(
        &self,
        ctx: Ctx<'_>,
        buffer: &gst::Buffer,
    ) -> Option<Result<gst::FlowSuccess, gst::FlowError>> {
        let mut slot = lock(&self.input);
        Some(slot.as_mut()?.handle_buffer(ctx, buffer))
    }

    /// EOS: frames held for DTS derivation are queued.
    pub fn eos(&self, ctx: Ctx<'_>) -> Result<gst::FlowSuccess, gst::FlowError> {
        match lock(&self.input).as_mut() {
            Some(i) => i.flush_deriver(ctx),
            None => Ok(gst::FlowSuccess::Ok),
        }
    }

    /// FLUSH_STOP: timestamps start over.
    pub fn flush_stop(&self) {
        if let Some(i) = lock(&self.input).as_mut() {
            if let Some(d) = i.deriver.as_mut() {
                d.reset();
            }
            i.last_dts_ns = None;
        }
    }

    /// Forgets the input (pad deactivated or released; new caps will come).
    pub fn clear(&self) {
        *lock(&self.input) = None;
    }

    /// Invalid buffers counted so far, if the input is not busy (for the stats).
    pub fn bad_total(&self) -> Option<u64> {
        self.input
            .try_lock()
            .ok()
            .and_then(|i| i.as_ref().map(|i| i.bad_total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_ms_part_is_what_the_rounded_ms_leave() {
        assert_eq!(sub_ms_ns(33_366_666), 366_666);
        // Rounded up to 34 ms: the rest is negative (no unsigned TimestampOffsetNano).
        assert_eq!(sub_ms_ns(33_500_000), -500_000);
        assert_eq!(sub_ms_ns(-1_200_000), -200_000);
        assert_eq!(sub_ms_ns(0), 0);
        for ns in [1i64, 499_999, 1_000_000_123, 7_777_777_777] {
            assert_eq!(ns_to_ms(ns) * 1_000_000 + i64::from(sub_ms_ns(ns)), ns);
        }
    }
}
