//! FLV audio and video tag bodies: the payloads of RTMP audio (type 8) and video (type 9)
//! messages.
//!
//! Two formats share the first byte:
//! - legacy FLV (Adobe FLV specification v10.1, annex E.4.2/E.4.3): AVC video with an
//!   `AVCPacketType` and composition time, AAC audio with an `AACPacketType`;
//! - Enhanced RTMP v1/v2 (veovera enhanced-rtmp, "Enhanced Video"/"Enhanced Audio"): a FourCC
//!   codec id, packet types, ModEx extensions (e.g. a nanosecond timestamp offset) and
//!   multitrack messages.
//!
//! Builders write exactly what the parsers read back, so `parse(build(x)) == x`.
//!
//! [`tag_header`] is the one place that decides which form a message takes: given a
//! [`TagTrack`] (codec and track id) and a [`Packet`], it builds the legacy, plain enhanced or
//! multitrack header as a small fixed [`TagHeader`], so the payload is sent borrowed after it.
//! `RtmpClient` and the `rtmpclientsink` element both send through it.

use super::{Codec, Error, MediaKind, Result};

/// Four-character code identifying an Enhanced RTMP codec, as sent on the wire.
pub type FourCc = [u8; 4];

/// H.264 / AVC video.
pub const AVC1: FourCc = *b"avc1";
/// H.265 / HEVC video.
pub const HVC1: FourCc = *b"hvc1";
/// AV1 video.
pub const AV01: FourCc = *b"av01";
/// VP9 video.
pub const VP09: FourCc = *b"vp09";
/// VP8 video.
pub const VP08: FourCc = *b"vp08";
/// H.266 / VVC video.
pub const VVC1: FourCc = *b"vvc1";
/// AAC audio.
pub const MP4A: FourCc = *b"mp4a";
/// Opus audio.
pub const OPUS: FourCc = *b"Opus";
/// FLAC audio.
pub const FLAC: FourCc = *b"fLaC";
/// AC-3 audio.
pub const AC3: FourCc = *b"ac-3";
/// E-AC-3 audio.
pub const EAC3: FourCc = *b"ec-3";
/// MP3 audio.
pub const MP3: FourCc = *b".mp3";

/// Video FourCCs defined by Enhanced RTMP v2.
pub const VIDEO_FOURCCS: [FourCc; 6] = [AVC1, HVC1, AV01, VP09, VP08, VVC1];
/// Audio FourCCs defined by Enhanced RTMP v2.
pub const AUDIO_FOURCCS: [FourCc; 6] = [MP4A, OPUS, FLAC, AC3, EAC3, MP3];

/// Most tracks a multitrack tag may hold before the parsers reject it. Enhanced RTMP sets no
/// limit; 16 is far above real use (a few ABR renditions or languages) and bounds the work and
/// memory one hostile message can cause.
pub const MAX_TRACKS: usize = 16;

/// Legacy FLV `CodecID` of AVC (H.264).
pub const CODEC_ID_AVC: u8 = 7;
/// Legacy FLV `SoundFormat` of AAC.
pub const SOUND_FORMAT_AAC: u8 = 10;
/// `SoundFormat` value that announces an Enhanced RTMP ExAudioTagHeader.
pub const SOUND_FORMAT_EX_HEADER: u8 = 9;

/// Smallest composition time an SI24 can carry, in milliseconds.
pub const COMPOSITION_TIME_MIN: i32 = -(1 << 23);
/// Largest composition time an SI24 can carry, in milliseconds.
pub const COMPOSITION_TIME_MAX: i32 = (1 << 23) - 1;

/// ModEx type of `TimestampOffsetNano`.
pub const MOD_EX_TIMESTAMP_OFFSET_NANO: u8 = 0;
/// Largest ModEx data block, in bytes (UI16 + 1).
pub const MOD_EX_DATA_MAX: usize = 65536;

/// The `isExVideoHeader` bit of the first byte of a video tag body.
const EX_VIDEO_HEADER: u8 = 0x80;
/// Largest track size a UI24 can express.
const UI24_MAX: usize = 0xff_ffff;

/// Defines a `u8`-valued wire enum with `from_u8` and `From<Enum> for u8`.
macro_rules! wire_enum {
    ($(#[$meta:meta])* pub enum $name:ident {
        $($(#[$vmeta:meta])* $variant:ident = $value:literal,)+
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum $name {
            $($(#[$vmeta])* $variant = $value,)+
        }

        impl $name {
            /// The value with this wire number, `None` if it is reserved or unknown.
            pub fn from_u8(value: u8) -> Option<Self> {
                match value {
                    $($value => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl From<$name> for u8 {
            fn from(value: $name) -> u8 {
                value as u8
            }
        }
    };
}

wire_enum! {
    /// Video frame type (FLV `FrameType`, Enhanced RTMP `VideoFrameType`).
    pub enum FrameType {
        /// A keyframe (seekable frame).
        Key = 1,
        /// An inter frame (not seekable).
        Inter = 2,
        /// A disposable inter frame (H.263 only).
        Disposable = 3,
        /// A generated keyframe (reserved for server use).
        Generated = 4,
        /// A video info/command frame: the body is a one-byte command instead of video.
        Command = 5,
    }
}

wire_enum! {
    /// Legacy `AVCPacketType`.
    pub enum AvcPacketType {
        /// The body is an avcC record.
        SequenceHeader = 0,
        /// The body is one access unit of length-prefixed NAL units.
        Nalu = 1,
        /// End of sequence; the body is empty.
        EndOfSequence = 2,
    }
}

wire_enum! {
    /// Legacy `AACPacketType`.
    pub enum AacPacketType {
        /// The body is an AudioSpecificConfig.
        SequenceHeader = 0,
        /// The body is one raw AAC frame.
        Raw = 1,
    }
}

wire_enum! {
    /// Enhanced RTMP `VideoPacketType`.
    pub enum VideoPacketType {
        /// The body is the codec configuration record (e.g. avcC, hvcC, av1C).
        SequenceStart = 0,
        /// Coded frames, with a composition time for avc1/hvc1/vvc1.
        CodedFrames = 1,
        /// End of sequence.
        SequenceEnd = 2,
        /// Coded frames whose composition time is zero and omitted.
        CodedFramesX = 3,
        /// AMF-encoded metadata (e.g. colorInfo); the frame type is ignored.
        Metadata = 4,
        /// The body is an MPEG-2 TS descriptor starting the sequence (AV1).
        Mpeg2TsSequenceStart = 5,
        /// Multitrack signal: a multitrack type and the real packet type follow.
        Multitrack = 6,
        /// ModEx signal: extension data and the next packet type follow.
        ModEx = 7,
    }
}

wire_enum! {
    /// Enhanced RTMP `AudioPacketType`.
    pub enum AudioPacketType {
        /// The body is the codec configuration (e.g. AudioSpecificConfig, Opus ID header).
        SequenceStart = 0,
        /// Coded frames.
        CodedFrames = 1,
        /// End of sequence.
        SequenceEnd = 2,
        /// The body is a channel order/mapping description.
        MultichannelConfig = 4,
        /// Multitrack signal: a multitrack type and the real packet type follow.
        Multitrack = 5,
        /// ModEx signal: extension data and the next packet type follow.
        ModEx = 7,
    }
}

wire_enum! {
    /// Enhanced RTMP `AvMultitrackType`.
    pub enum AvMultitrackType {
        /// One track (with a track id) in the message.
        OneTrack = 0,
        /// Several tracks sharing one codec, each with a UI24 size.
        ManyTracks = 1,
        /// Several tracks, each with its own FourCC and a UI24 size.
        ManyTracksManyCodecs = 2,
    }
}

/// One ModEx (modifier/extension) entry of an Enhanced RTMP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModEx<'a> {
    /// Nanosecond offset added to the message timestamp (ModEx type 0, UI24; the spec allows
    /// up to 999 999).
    TimestampOffsetNano(u32),
    /// Any other ModEx type, kept verbatim.
    Other {
        /// ModEx type (1..=15).
        mod_ex_type: u8,
        /// ModEx data (1..=65536 bytes).
        data: &'a [u8],
    },
}

/// Whether coded frames of this video codec carry an SI24 composition time (Enhanced RTMP:
/// avc1, hvc1 and vvc1 `CodedFrames`).
pub fn carries_composition_time(fourcc: FourCc) -> bool {
    matches!(fourcc, AVC1 | HVC1 | VVC1)
}

/// Clamps a composition time to what an SI24 can carry.
fn clamp_si24(value: i32) -> i32 {
    value.clamp(COMPOSITION_TIME_MIN, COMPOSITION_TIME_MAX)
}

/// A value as SI24 (big-endian two's complement), clamped to the SI24 range.
fn si24_bytes(value: i32) -> [u8; 3] {
    let [_, a, b, c] = clamp_si24(value).to_be_bytes();
    [a, b, c]
}

// ---------------------------------------------------------------------------------------------
// Legacy FLV builders
// ---------------------------------------------------------------------------------------------

/// The 5-byte legacy AVC video tag header: `(frame_type << 4) | 7`, `AVCPacketType`, and the
/// composition time in milliseconds as SI24 (negative allowed; clamped to the SI24 range).
pub fn avc_video_header(
    frame_type: FrameType,
    packet_type: AvcPacketType,
    composition_time: i32,
) -> [u8; 5] {
    let [c0, c1, c2] = si24_bytes(composition_time);
    [
        (u8::from(frame_type) << 4) | CODEC_ID_AVC,
        packet_type.into(),
        c0,
        c1,
        c2,
    ]
}

/// A complete legacy AVC video tag body: [`avc_video_header`] followed by `body`.
pub fn build_avc_video(
    frame_type: FrameType,
    packet_type: AvcPacketType,
    composition_time: i32,
    body: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + body.len());
    out.extend_from_slice(&avc_video_header(frame_type, packet_type, composition_time));
    out.extend_from_slice(body);
    out
}

/// The 2-byte legacy AAC audio tag header. The first byte is always `0xAF` (AAC, 44 kHz,
/// 16-bit, stereo) because the FLV specification requires these flags for AAC; the real
/// format is in the AudioSpecificConfig.
pub fn aac_audio_header(packet_type: AacPacketType) -> [u8; 2] {
    const SOUND_RATE_44K: u8 = 3;
    const SOUND_SIZE_16BIT: u8 = 1;
    const SOUND_TYPE_STEREO: u8 = 1;
    [
        (SOUND_FORMAT_AAC << 4)
            | (SOUND_RATE_44K << 2)
            | (SOUND_SIZE_16BIT << 1)
            | SOUND_TYPE_STEREO,
        packet_type.into(),
    ]
}

/// A complete legacy AAC audio tag body: [`aac_audio_header`] followed by `body`.
pub fn build_aac_audio(packet_type: AacPacketType, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + body.len());
    out.extend_from_slice(&aac_audio_header(packet_type));
    out.extend_from_slice(body);
    out
}

// ---------------------------------------------------------------------------------------------
// Enhanced RTMP builders
// ---------------------------------------------------------------------------------------------

fn check_video_fourcc(fourcc: FourCc) -> Result<()> {
    if VIDEO_FOURCCS.contains(&fourcc) {
        Ok(())
    } else {
        Err(Error::UnsupportedFourCc(fourcc))
    }
}

fn check_audio_fourcc(fourcc: FourCc) -> Result<()> {
    if AUDIO_FOURCCS.contains(&fourcc) {
        Ok(())
    } else {
        Err(Error::UnsupportedFourCc(fourcc))
    }
}

/// Packet types that describe a payload (not the Multitrack/ModEx signals).
fn check_plain_video_packet_type(packet_type: VideoPacketType) -> Result<()> {
    match packet_type {
        VideoPacketType::Multitrack | VideoPacketType::ModEx => Err(Error::CannotBuild(
            "Multitrack and ModEx are signals, not packet types; use the multitrack builder or the mod_ex argument",
        )),
        _ => Ok(()),
    }
}

fn check_plain_audio_packet_type(packet_type: AudioPacketType) -> Result<()> {
    match packet_type {
        AudioPacketType::Multitrack | AudioPacketType::ModEx => Err(Error::CannotBuild(
            "Multitrack and ModEx are signals, not packet types; use the multitrack builder or the mod_ex argument",
        )),
        _ => Ok(()),
    }
}

/// Command frames have no FourCC or payload; they have their own builder.
fn check_not_command(frame_type: FrameType, packet_type: VideoPacketType) -> Result<()> {
    if frame_type == FrameType::Command && packet_type != VideoPacketType::Metadata {
        return Err(Error::CannotBuild(
            "command frames carry no codec data; use write_ex_video_command",
        ));
    }
    Ok(())
}

fn check_mod_ex(mod_ex: &[ModEx<'_>]) -> Result<()> {
    for m in mod_ex {
        match *m {
            ModEx::TimestampOffsetNano(ns) if ns > 0xff_ffff => {
                return Err(Error::CannotBuild(
                    "TimestampOffsetNano does not fit in UI24",
                ));
            }
            ModEx::Other { mod_ex_type, data } => {
                if mod_ex_type == MOD_EX_TIMESTAMP_OFFSET_NANO || mod_ex_type > 15 {
                    return Err(Error::CannotBuild(
                        "ModEx type must be 1..=15 (use ModEx::TimestampOffsetNano for type 0)",
                    ));
                }
                if data.is_empty() || data.len() > MOD_EX_DATA_MAX {
                    return Err(Error::CannotBuild("ModEx data must be 1..=65536 bytes"));
                }
            }
            ModEx::TimestampOffsetNano(_) => {}
        }
    }
    Ok(())
}

/// Where the builders write: a growing vector, or the fixed buffer of a [`TagHeader`].
trait Sink {
    fn put(&mut self, bytes: &[u8]);

    fn put_u8(&mut self, byte: u8) {
        self.put(&[byte]);
    }
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Writes the ModEx entries; the last one announces `next_packet_type` (Enhanced RTMP: the
/// low nibble after each ModEx block is the following packet type).
fn write_mod_ex(out: &mut impl Sink, mod_ex: &[ModEx<'_>], next_packet_type: u8) {
    const MOD_EX: u8 = 7; // same value for audio and video
    for (i, m) in mod_ex.iter().enumerate() {
        let nano;
        let (mod_ex_type, data): (u8, &[u8]) = match *m {
            ModEx::TimestampOffsetNano(ns) => {
                let [_, a, b, c] = ns.to_be_bytes();
                nano = [a, b, c];
                (MOD_EX_TIMESTAMP_OFFSET_NANO, &nano)
            }
            ModEx::Other { mod_ex_type, data } => (mod_ex_type, data),
        };
        // modExDataSize = UI8 + 1; the UI8 value 255 escapes to UI16 + 1.
        let size_minus_one = data.len() - 1;
        if size_minus_one < 255 {
            out.put_u8(size_minus_one as u8);
        } else {
            out.put_u8(0xff);
            out.put(&(size_minus_one as u16).to_be_bytes());
        }
        out.put(data);
        let next = if i + 1 < mod_ex.len() {
            MOD_EX
        } else {
            next_packet_type
        };
        out.put_u8((mod_ex_type << 4) | next);
    }
}

/// The first byte of an ExVideoTagHeader.
fn ex_video_first_byte(frame_type: FrameType, packet_type: u8, has_mod_ex: bool) -> u8 {
    let packet_type = if has_mod_ex {
        VideoPacketType::ModEx.into()
    } else {
        packet_type
    };
    EX_VIDEO_HEADER | (u8::from(frame_type) << 4) | packet_type
}

/// The first byte of an ExAudioTagHeader.
fn ex_audio_first_byte(packet_type: u8, has_mod_ex: bool) -> u8 {
    let packet_type = if has_mod_ex {
        AudioPacketType::ModEx.into()
    } else {
        packet_type
    };
    (SOUND_FORMAT_EX_HEADER << 4) | packet_type
}

/// Single-track Enhanced RTMP video: checks everything, then writes header, ModEx entries,
/// FourCC, composition time (`CodedFrames` of avc1/hvc1/vvc1, clamped) and `body`.
fn put_ex_video(
    out: &mut impl Sink,
    frame_type: FrameType,
    packet_type: VideoPacketType,
    fourcc: FourCc,
    composition_time: i32,
    mod_ex: &[ModEx<'_>],
    body: &[u8],
) -> Result<()> {
    check_plain_video_packet_type(packet_type)?;
    check_not_command(frame_type, packet_type)?;
    check_video_fourcc(fourcc)?;
    check_mod_ex(mod_ex)?;
    out.put_u8(ex_video_first_byte(
        frame_type,
        packet_type.into(),
        !mod_ex.is_empty(),
    ));
    write_mod_ex(out, mod_ex, packet_type.into());
    out.put(&fourcc);
    if packet_type == VideoPacketType::CodedFrames && carries_composition_time(fourcc) {
        out.put(&si24_bytes(composition_time));
    }
    out.put(body);
    Ok(())
}

/// Single-track Enhanced RTMP audio: header, ModEx entries, FourCC and `body`.
fn put_ex_audio(
    out: &mut impl Sink,
    packet_type: AudioPacketType,
    fourcc: FourCc,
    mod_ex: &[ModEx<'_>],
    body: &[u8],
) -> Result<()> {
    check_plain_audio_packet_type(packet_type)?;
    check_audio_fourcc(fourcc)?;
    check_mod_ex(mod_ex)?;
    out.put_u8(ex_audio_first_byte(packet_type.into(), !mod_ex.is_empty()));
    write_mod_ex(out, mod_ex, packet_type.into());
    out.put(&fourcc);
    out.put(body);
    Ok(())
}

/// The header of a single-track Enhanced RTMP video tag without ModEx, returned as a fixed
/// array and its used length, so a frame can be sent as header + borrowed payload.
///
/// The layout is `1 | frame_type | packet_type`, the FourCC, and for `CodedFrames` of avc1,
/// hvc1 and vvc1 the SI24 composition time (clamped); `composition_time` is ignored otherwise.
/// [`tag_header`] picks this form (and the others) from a codec, track and packet.
pub fn ex_video_header(
    frame_type: FrameType,
    packet_type: VideoPacketType,
    fourcc: FourCc,
    composition_time: i32,
) -> Result<([u8; 8], usize)> {
    let mut h = TagHeader::EMPTY;
    put_ex_video(
        &mut h,
        frame_type,
        packet_type,
        fourcc,
        composition_time,
        &[],
        &[],
    )?;
    let mut header = [0u8; 8];
    header[..h.len()].copy_from_slice(&h);
    Ok((header, h.len()))
}

/// The 5-byte header of a single-track Enhanced RTMP audio tag without ModEx:
/// `9 << 4 | packet_type`, then the FourCC.
pub fn ex_audio_header(packet_type: AudioPacketType, fourcc: FourCc) -> Result<[u8; 5]> {
    let mut h = TagHeader::EMPTY;
    put_ex_audio(&mut h, packet_type, fourcc, &[], &[])?;
    let mut header = [0u8; 5];
    header.copy_from_slice(&h);
    Ok(header)
}

/// Appends a single-track Enhanced RTMP video tag body to `out`: header, ModEx entries,
/// FourCC, composition time (for `CodedFrames` of avc1/hvc1/vvc1, clamped) and `body`.
/// Nothing is written on error.
pub fn write_ex_video(
    out: &mut Vec<u8>,
    frame_type: FrameType,
    packet_type: VideoPacketType,
    fourcc: FourCc,
    composition_time: i32,
    mod_ex: &[ModEx<'_>],
    body: &[u8],
) -> Result<()> {
    // Checks come before any write in put_ex_video.
    out.reserve(8 + body.len() + 8 * mod_ex.len());
    put_ex_video(
        out,
        frame_type,
        packet_type,
        fourcc,
        composition_time,
        mod_ex,
        body,
    )
}

/// Appends an Enhanced RTMP video command frame (frame type `Command`, e.g. 0 = start of
/// client-side seeking, 1 = end): header, ModEx entries and the command byte. The packet type
/// nibble carries `CodedFrames`; receivers ignore it for commands.
pub fn write_ex_video_command(out: &mut Vec<u8>, mod_ex: &[ModEx<'_>], command: u8) -> Result<()> {
    check_mod_ex(mod_ex)?;
    let packet_type = VideoPacketType::CodedFrames.into();
    out.push(ex_video_first_byte(
        FrameType::Command,
        packet_type,
        !mod_ex.is_empty(),
    ));
    write_mod_ex(out, mod_ex, packet_type);
    out.push(command);
    Ok(())
}

/// One track of an Enhanced RTMP multitrack video tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoTrack<'a> {
    /// Track id (0 is the default track by convention).
    pub track_id: u8,
    /// Codec of the track.
    pub fourcc: FourCc,
    /// Composition time in milliseconds; only carried by `CodedFrames` of avc1/hvc1/vvc1,
    /// 0 otherwise.
    pub composition_time: i32,
    /// The track's payload (e.g. NAL units or a configuration record).
    pub data: &'a [u8],
}

/// One track of an Enhanced RTMP multitrack audio tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioTrack<'a> {
    /// Track id (0 is the default track by convention).
    pub track_id: u8,
    /// Codec of the track.
    pub fourcc: FourCc,
    /// The track's payload.
    pub data: &'a [u8],
}

/// Checks the track list of a multitrack message against its type: `count` tracks whose
/// FourCCs are `fourccs`.
fn check_tracks(
    multitrack: AvMultitrackType,
    count: usize,
    mut fourccs: impl Iterator<Item = FourCc>,
) -> Result<()> {
    match (multitrack, count) {
        (_, 0) => {
            return Err(Error::CannotBuild(
                "a multitrack tag needs at least one track",
            ));
        }
        (_, n) if n > MAX_TRACKS => return Err(Error::TooManyTracks),
        (AvMultitrackType::OneTrack, n) if n != 1 => {
            return Err(Error::CannotBuild(
                "OneTrack multitrack tags carry exactly one track",
            ));
        }
        _ => {}
    }
    let first = fourccs.next();
    if multitrack != AvMultitrackType::ManyTracksManyCodecs && fourccs.any(|f| Some(f) != first) {
        return Err(Error::CannotBuild(
            "tracks with different codecs need ManyTracksManyCodecs",
        ));
    }
    Ok(())
}

/// Writes one track's prefix: FourCC (ManyTracksManyCodecs only), track id, and the UI24 size
/// of what follows (not for OneTrack).
fn write_track_prefix(
    out: &mut impl Sink,
    multitrack: AvMultitrackType,
    fourcc: FourCc,
    track_id: u8,
    size: usize,
) {
    if multitrack == AvMultitrackType::ManyTracksManyCodecs {
        out.put(&fourcc);
    }
    out.put_u8(track_id);
    if multitrack != AvMultitrackType::OneTrack {
        out.put(&(size as u32).to_be_bytes()[1..]);
    }
}

/// Multitrack Enhanced RTMP video: checks everything, then writes (see
/// [`write_ex_video_multitrack`]).
fn put_ex_video_multitrack(
    out: &mut impl Sink,
    frame_type: FrameType,
    packet_type: VideoPacketType,
    multitrack: AvMultitrackType,
    mod_ex: &[ModEx<'_>],
    tracks: &[VideoTrack<'_>],
) -> Result<()> {
    check_plain_video_packet_type(packet_type)?;
    check_not_command(frame_type, packet_type)?;
    check_mod_ex(mod_ex)?;
    check_tracks(multitrack, tracks.len(), tracks.iter().map(|t| t.fourcc))?;
    let has_cts = |t: &VideoTrack<'_>| {
        packet_type == VideoPacketType::CodedFrames && carries_composition_time(t.fourcc)
    };
    for t in tracks {
        check_video_fourcc(t.fourcc)?;
        let size = t.data.len() + if has_cts(t) { 3 } else { 0 };
        if multitrack != AvMultitrackType::OneTrack && size > UI24_MAX {
            return Err(Error::CannotBuild(
                "a track is larger than 16 MiB (UI24 size)",
            ));
        }
    }

    out.put_u8(ex_video_first_byte(
        frame_type,
        VideoPacketType::Multitrack.into(),
        !mod_ex.is_empty(),
    ));
    write_mod_ex(out, mod_ex, VideoPacketType::Multitrack.into());
    out.put_u8((u8::from(multitrack) << 4) | u8::from(packet_type));
    if multitrack != AvMultitrackType::ManyTracksManyCodecs {
        out.put(&tracks[0].fourcc);
    }
    for t in tracks {
        let cts = has_cts(t);
        let size = t.data.len() + if cts { 3 } else { 0 };
        write_track_prefix(out, multitrack, t.fourcc, t.track_id, size);
        if cts {
            out.put(&si24_bytes(t.composition_time));
        }
        out.put(t.data);
    }
    Ok(())
}

/// Appends an Enhanced RTMP multitrack video tag body: header, ModEx entries,
/// `multitrack << 4 | packet_type`, the shared FourCC (unless ManyTracksManyCodecs), then per
/// track its FourCC (ManyTracksManyCodecs), id, UI24 size (unless OneTrack), composition time
/// (`CodedFrames` of avc1/hvc1/vvc1) and data. Nothing is written on error.
pub fn write_ex_video_multitrack(
    out: &mut Vec<u8>,
    frame_type: FrameType,
    packet_type: VideoPacketType,
    multitrack: AvMultitrackType,
    mod_ex: &[ModEx<'_>],
    tracks: &[VideoTrack<'_>],
) -> Result<()> {
    put_ex_video_multitrack(out, frame_type, packet_type, multitrack, mod_ex, tracks)
}

/// Appends a single-track Enhanced RTMP audio tag body: header, ModEx entries, FourCC and
/// `body`. Nothing is written on error.
pub fn write_ex_audio(
    out: &mut Vec<u8>,
    packet_type: AudioPacketType,
    fourcc: FourCc,
    mod_ex: &[ModEx<'_>],
    body: &[u8],
) -> Result<()> {
    put_ex_audio(out, packet_type, fourcc, mod_ex, body)
}

/// Multitrack Enhanced RTMP audio: checks everything, then writes (see
/// [`write_ex_audio_multitrack`]).
fn put_ex_audio_multitrack(
    out: &mut impl Sink,
    packet_type: AudioPacketType,
    multitrack: AvMultitrackType,
    mod_ex: &[ModEx<'_>],
    tracks: &[AudioTrack<'_>],
) -> Result<()> {
    check_plain_audio_packet_type(packet_type)?;
    check_mod_ex(mod_ex)?;
    check_tracks(multitrack, tracks.len(), tracks.iter().map(|t| t.fourcc))?;
    for t in tracks {
        check_audio_fourcc(t.fourcc)?;
        if multitrack != AvMultitrackType::OneTrack && t.data.len() > UI24_MAX {
            return Err(Error::CannotBuild(
                "a track is larger than 16 MiB (UI24 size)",
            ));
        }
    }

    out.put_u8(ex_audio_first_byte(
        AudioPacketType::Multitrack.into(),
        !mod_ex.is_empty(),
    ));
    write_mod_ex(out, mod_ex, AudioPacketType::Multitrack.into());
    out.put_u8((u8::from(multitrack) << 4) | u8::from(packet_type));
    if multitrack != AvMultitrackType::ManyTracksManyCodecs {
        out.put(&tracks[0].fourcc);
    }
    for t in tracks {
        write_track_prefix(out, multitrack, t.fourcc, t.track_id, t.data.len());
        out.put(t.data);
    }
    Ok(())
}

/// Appends an Enhanced RTMP multitrack audio tag body, laid out like
/// [`write_ex_video_multitrack`] without composition times. Nothing is written on error.
pub fn write_ex_audio_multitrack(
    out: &mut Vec<u8>,
    packet_type: AudioPacketType,
    multitrack: AvMultitrackType,
    mod_ex: &[ModEx<'_>],
    tracks: &[AudioTrack<'_>],
) -> Result<()> {
    put_ex_audio_multitrack(out, packet_type, multitrack, mod_ex, tracks)
}

// ---------------------------------------------------------------------------------------------
// One header builder for every form
// ---------------------------------------------------------------------------------------------

/// Longest header [`tag_header`] builds: a multitrack video tag with a TimestampOffsetNano
/// ModEx (1 + 5 + 1 + 4 + 1 + 3 bytes), rounded up.
pub const TAG_HEADER_MAX: usize = 16;

/// What a message of a track carries, whatever the wire form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Packet {
    /// The codec configuration (avcC, hvcC, av1C, vpcC, AudioSpecificConfig, OpusHead,
    /// "fLaC" + STREAMINFO; empty for AC-3, E-AC-3 and MP3).
    SequenceStart,
    /// One coded frame (an access unit, a temporal unit, an audio frame).
    CodedFrame {
        /// Key or inter frame (video; ignored for audio). `Command` is refused.
        frame_type: FrameType,
        /// PTS − DTS in milliseconds, negative allowed (H.264 and HEVC; ignored otherwise).
        /// Clamped to SI24. Zero selects CodedFramesX in the enhanced forms.
        composition_time: i32,
    },
    /// End of the sequence (legacy AVC end of sequence, enhanced SequenceEnd).
    SequenceEnd,
    /// AMF-encoded video metadata such as `colorInfo` (video only; always enhanced; frame type
    /// Command as FFmpeg writes it, Key inside a multitrack tag).
    Metadata,
    /// The audio channel order (audio only; always enhanced, also for AAC).
    MultichannelConfig,
}

impl Packet {
    /// A coded video frame: key or inter, with its composition time.
    pub fn frame(keyframe: bool, composition_time: i32) -> Packet {
        Packet::CodedFrame {
            frame_type: if keyframe {
                FrameType::Key
            } else {
                FrameType::Inter
            },
            composition_time,
        }
    }
}

/// The legacy FLV audio header fields after `SoundFormat`, for codecs whose legacy header
/// describes the stream (MP3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SoundFlags {
    /// `SoundRate`: 0 = 5.5 kHz, 1 = 11 kHz, 2 = 22 kHz, 3 = 44 kHz.
    pub rate: u8,
    /// `SoundSize`: 16-bit (true) or 8-bit samples.
    pub size_16bit: bool,
    /// `SoundType`: stereo (true) or mono.
    pub stereo: bool,
}

impl SoundFlags {
    /// The legacy flags of MP3 at `sample_rate` Hz with `channels`, as FFmpeg writes them:
    /// 44.1 kHz (and 48 kHz, stored with the 44 kHz code), 22.05 kHz and 11.025 kHz, always
    /// 16-bit. `None` for rates the legacy header cannot say: those need the `.mp3` FourCC.
    pub fn for_mp3(sample_rate: u32, channels: u8) -> Option<SoundFlags> {
        let rate = match sample_rate {
            44_100 | 48_000 => 3,
            22_050 => 2,
            11_025 => 1,
            _ => return None,
        };
        Some(SoundFlags {
            rate,
            size_16bit: true,
            stereo: channels > 1,
        })
    }

    /// The first byte of a legacy audio tag of `sound_format` with these flags.
    fn first_byte(self, sound_format: u8) -> u8 {
        (sound_format << 4)
            | ((self.rate & 0x03) << 2)
            | (u8::from(self.size_16bit) << 1)
            | u8::from(self.stereo)
    }
}

/// Legacy FLV `SoundFormat` of MP3.
pub const SOUND_FORMAT_MP3: u8 = 2;

/// The wire form a tag takes (see [`TagTrack::form`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TagForm {
    /// Legacy FLV: AVC video, AAC or MP3 audio, on track 0.
    Legacy,
    /// A plain ExVideoTagHeader/ExAudioTagHeader with the FourCC (track 0).
    Enhanced,
    /// A Multitrack OneTrack tag with the FourCC and the track id (tracks 1..=255).
    Multitrack,
}

/// Whose tags these are: the codec, the track id, and for MP3 on track 0 the legacy flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TagTrack {
    /// The track's codec.
    pub codec: Codec,
    /// Track id: 0 is the default track (the `sink`/`audio` pads), 1..=255 further tracks.
    pub track_id: u8,
    /// MP3 on track 0 only: the legacy header's flags when it can say the stream's sample rate
    /// ([`SoundFlags::for_mp3`]); then coded frames go out in the legacy form. `None`: `.mp3`.
    /// Ignored for other codecs and tracks.
    pub legacy_sound: Option<SoundFlags>,
}

impl TagTrack {
    /// Track `track_id` of `codec`, without legacy MP3 flags.
    pub fn new(codec: Codec, track_id: u8) -> TagTrack {
        TagTrack {
            codec,
            track_id,
            legacy_sound: None,
        }
    }

    /// The form a `packet` of this track takes: Multitrack OneTrack on tracks >= 1 (for every
    /// codec, H.264 and AAC included, as OBS and FFmpeg send them); on track 0 legacy for what
    /// the legacy format can say (H.264 sequence header, frames and end of sequence; AAC
    /// sequence header and frames; MP3 frames with [`TagTrack::legacy_sound`]), the plain
    /// enhanced form for everything else.
    pub fn form(&self, packet: Packet) -> TagForm {
        if self.track_id != 0 {
            return TagForm::Multitrack;
        }
        let legacy = match self.codec {
            Codec::H264 => matches!(
                packet,
                Packet::SequenceStart | Packet::CodedFrame { .. } | Packet::SequenceEnd
            ),
            Codec::Aac => matches!(packet, Packet::SequenceStart | Packet::CodedFrame { .. }),
            // Legacy MP3 has no other packet: asking for one is an error, not a silent switch
            // of the track to `.mp3`.
            Codec::Mp3 => self.legacy_sound.is_some(),
            _ => false,
        };
        if legacy {
            TagForm::Legacy
        } else {
            TagForm::Enhanced
        }
    }
}

/// An FLV tag header of at most [`TAG_HEADER_MAX`] bytes, built by [`tag_header`]: the payload
/// follows it on the wire and stays borrowed. Dereferences to its bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TagHeader {
    bytes: [u8; TAG_HEADER_MAX],
    len: u8,
    /// A write did not fit (never for what [`tag_header`] builds).
    overflow: bool,
}

impl TagHeader {
    const EMPTY: TagHeader = TagHeader {
        bytes: [0; TAG_HEADER_MAX],
        len: 0,
        overflow: false,
    };

    /// The header's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl std::ops::Deref for TagHeader {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for TagHeader {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl std::fmt::Debug for TagHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TagHeader({:02x?})", self.as_bytes())
    }
}

impl Sink for TagHeader {
    fn put(&mut self, bytes: &[u8]) {
        let start = usize::from(self.len);
        match self.bytes.get_mut(start..start + bytes.len()) {
            Some(slot) => {
                slot.copy_from_slice(bytes);
                self.len += bytes.len() as u8;
            }
            None => self.overflow = true,
        }
    }
}

/// The enhanced video packet type, frame type and composition time of `packet`.
fn video_packet(
    codec: Codec,
    packet: Packet,
    multitrack: bool,
) -> Result<(FrameType, VideoPacketType, i32)> {
    Ok(match packet {
        Packet::SequenceStart => (FrameType::Key, VideoPacketType::SequenceStart, 0),
        Packet::CodedFrame {
            frame_type,
            composition_time,
        } => {
            if carries_composition_time(codec.fourcc()) && composition_time == 0 {
                (frame_type, VideoPacketType::CodedFramesX, 0)
            } else {
                (frame_type, VideoPacketType::CodedFrames, composition_time)
            }
        }
        Packet::SequenceEnd => (FrameType::Key, VideoPacketType::SequenceEnd, 0),
        // Receivers ignore the frame type of Metadata. A multitrack tag with frame type
        // Command would be read as a command frame (the spec checks that before Multitrack).
        Packet::Metadata if multitrack => (FrameType::Key, VideoPacketType::Metadata, 0),
        Packet::Metadata => (FrameType::Command, VideoPacketType::Metadata, 0),
        Packet::MultichannelConfig => {
            return Err(Error::CannotBuild("MultichannelConfig is an audio packet"));
        }
    })
}

/// The enhanced audio packet type of `packet`.
fn audio_packet(packet: Packet) -> Result<AudioPacketType> {
    Ok(match packet {
        Packet::SequenceStart => AudioPacketType::SequenceStart,
        Packet::CodedFrame { .. } => AudioPacketType::CodedFrames,
        Packet::SequenceEnd => AudioPacketType::SequenceEnd,
        Packet::MultichannelConfig => AudioPacketType::MultichannelConfig,
        Packet::Metadata => return Err(Error::CannotBuild("Metadata is a video packet")),
    })
}

/// The legacy header of `packet` on `track` (whose form is [`TagForm::Legacy`]).
fn legacy_header(out: &mut TagHeader, track: TagTrack, packet: Packet) -> Result<()> {
    match (track.codec, packet) {
        (Codec::H264, Packet::SequenceStart) => out.put(&avc_video_header(
            FrameType::Key,
            AvcPacketType::SequenceHeader,
            0,
        )),
        (
            Codec::H264,
            Packet::CodedFrame {
                frame_type,
                composition_time,
            },
        ) => {
            check_not_command(frame_type, VideoPacketType::CodedFrames)?;
            out.put(&avc_video_header(
                frame_type,
                AvcPacketType::Nalu,
                composition_time,
            ));
        }
        (Codec::H264, Packet::SequenceEnd) => out.put(&avc_video_header(
            FrameType::Key,
            AvcPacketType::EndOfSequence,
            0,
        )),
        (Codec::Aac, Packet::SequenceStart) => {
            out.put(&aac_audio_header(AacPacketType::SequenceHeader))
        }
        (Codec::Aac, Packet::CodedFrame { .. }) => out.put(&aac_audio_header(AacPacketType::Raw)),
        (Codec::Mp3, Packet::CodedFrame { .. }) => match track.legacy_sound {
            Some(flags) => out.put_u8(flags.first_byte(SOUND_FORMAT_MP3)),
            None => return Err(Error::CannotBuild("legacy MP3 needs its sound flags")),
        },
        (Codec::Mp3, _) => {
            return Err(Error::CannotBuild(
                "legacy MP3 has only coded frames; send no sequence start, end or channel config",
            ));
        }
        _ => {
            return Err(Error::CannotBuild(
                "no legacy form for this codec and packet",
            ));
        }
    }
    Ok(())
}

/// The tag header of `packet` on `track`, in the form [`TagTrack::form`] picks: legacy FLV,
/// a plain ExVideoTagHeader/ExAudioTagHeader (CodedFramesX for avc1/hvc1 frames whose
/// composition time is 0), or Multitrack OneTrack with FourCC and track id. The message body
/// is this header followed by the payload (configuration record, frame, AMF metadata).
///
/// `nano_offset`: a TimestampOffsetNano ModEx (the sub-millisecond part of the timestamp,
/// 0..=999 999 ns) put before the packet type, or before the multitrack header of a multitrack
/// tag. The legacy form cannot carry ModEx: there it is left out (track 0 H.264/AAC stays
/// legacy, which every server reads). `None` and `Some(0)` add nothing.
pub fn tag_header(track: TagTrack, packet: Packet, nano_offset: Option<u32>) -> Result<TagHeader> {
    let form = track.form(packet);
    let mut out = TagHeader::EMPTY;
    let nano = [ModEx::TimestampOffsetNano(nano_offset.unwrap_or(0))];
    let mod_ex: &[ModEx<'_>] = if nano_offset.unwrap_or(0) > 0 {
        &nano
    } else {
        &[]
    };
    let fourcc = track.codec.fourcc();
    match (form, track.codec.kind()) {
        (TagForm::Legacy, _) => legacy_header(&mut out, track, packet)?,
        (TagForm::Enhanced, MediaKind::Video) => {
            let (frame_type, packet_type, cts) = video_packet(track.codec, packet, false)?;
            put_ex_video(&mut out, frame_type, packet_type, fourcc, cts, mod_ex, &[])?;
        }
        (TagForm::Multitrack, MediaKind::Video) => {
            let (frame_type, packet_type, cts) = video_packet(track.codec, packet, true)?;
            let one = [VideoTrack {
                track_id: track.track_id,
                fourcc,
                composition_time: cts,
                data: &[],
            }];
            put_ex_video_multitrack(
                &mut out,
                frame_type,
                packet_type,
                AvMultitrackType::OneTrack,
                mod_ex,
                &one,
            )?;
        }
        (TagForm::Enhanced, MediaKind::Audio) => {
            put_ex_audio(&mut out, audio_packet(packet)?, fourcc, mod_ex, &[])?;
        }
        (TagForm::Multitrack, MediaKind::Audio) => {
            let one = [AudioTrack {
                track_id: track.track_id,
                fourcc,
                data: &[],
            }];
            put_ex_audio_multitrack(
                &mut out,
                audio_packet(packet)?,
                AvMultitrackType::OneTrack,
                mod_ex,
                &one,
            )?;
        }
    }
    if out.overflow {
        return Err(Error::CannotBuild("tag header longer than TAG_HEADER_MAX"));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Parsers
// ---------------------------------------------------------------------------------------------

/// A parsed video tag body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoTag<'a> {
    /// Frame type (ignored by receivers for Enhanced RTMP `Metadata` packets).
    pub frame_type: FrameType,
    /// Codec-specific part.
    pub body: VideoTagBody<'a>,
}

/// The codec-specific part of a video tag body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoTagBody<'a> {
    /// Legacy FLV video (`isExVideoHeader` = 0).
    Legacy(LegacyVideo<'a>),
    /// Enhanced RTMP video (`isExVideoHeader` = 1).
    Enhanced(ExVideo<'a>),
}

/// A legacy FLV video tag body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyVideo<'a> {
    /// Legacy `CodecID` (7 = AVC).
    pub codec_id: u8,
    /// `AVCPacketType`, for AVC only.
    pub avc_packet_type: Option<AvcPacketType>,
    /// Composition time in milliseconds (AVC only, 0 otherwise).
    pub composition_time: i32,
    /// The payload after the header (for command frames: the command byte).
    pub data: &'a [u8],
}

/// An Enhanced RTMP video tag body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExVideo<'a> {
    /// Packet type of the payload (after ModEx and Multitrack signalling; never `ModEx`, and
    /// `Multitrack` only as the ignored nibble of a command frame).
    pub packet_type: VideoPacketType,
    /// ModEx entries, in wire order.
    pub mod_ex: Vec<ModEx<'a>>,
    /// Multitrack type, `None` for a plain single-track tag.
    pub multitrack: Option<AvMultitrackType>,
    /// Command byte of a command frame (then `tracks` is empty).
    pub command: Option<u8>,
    /// The tracks; a plain single-track tag has one track with id 0.
    pub tracks: Vec<VideoTrack<'a>>,
}

/// A parsed audio tag body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioTag<'a> {
    /// Legacy FLV audio (`SoundFormat` != 9).
    Legacy(LegacyAudio<'a>),
    /// Enhanced RTMP audio (`SoundFormat` = 9).
    Enhanced(ExAudio<'a>),
}

/// A legacy FLV audio tag body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyAudio<'a> {
    /// `SoundFormat` (10 = AAC).
    pub sound_format: u8,
    /// `SoundRate` (0 = 5.5 kHz, 1 = 11 kHz, 2 = 22 kHz, 3 = 44 kHz).
    pub sound_rate: u8,
    /// `SoundSize` (0 = 8-bit, 1 = 16-bit).
    pub sound_size: u8,
    /// `SoundType` (0 = mono, 1 = stereo).
    pub sound_type: u8,
    /// `AACPacketType`, for AAC only.
    pub aac_packet_type: Option<AacPacketType>,
    /// The payload after the header.
    pub data: &'a [u8],
}

/// An Enhanced RTMP audio tag body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExAudio<'a> {
    /// Packet type of the payload (after ModEx and Multitrack signalling).
    pub packet_type: AudioPacketType,
    /// ModEx entries, in wire order.
    pub mod_ex: Vec<ModEx<'a>>,
    /// Multitrack type, `None` for a plain single-track tag.
    pub multitrack: Option<AvMultitrackType>,
    /// The tracks; a plain single-track tag has one track with id 0.
    pub tracks: Vec<AudioTrack<'a>>,
}

/// Bounds-checked reader over a tag body.
struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8]> {
        if self.rest.len() < n {
            return Err(Error::TruncatedTag {
                field,
                needed: n,
                available: self.rest.len(),
            });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8> {
        Ok(self.take(1, field)?[0])
    }

    fn u16(&mut self, field: &'static str) -> Result<u16> {
        let b = self.take(2, field)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u24(&mut self, field: &'static str) -> Result<u32> {
        let b = self.take(3, field)?;
        Ok(u32::from_be_bytes([0, b[0], b[1], b[2]]))
    }

    fn si24(&mut self, field: &'static str) -> Result<i32> {
        let v = self.u24(field)? as i32;
        // Sign-extend from 24 bits.
        Ok((v << 8) >> 8)
    }

    fn fourcc(&mut self, field: &'static str) -> Result<FourCc> {
        let b = self.take(4, field)?;
        Ok([b[0], b[1], b[2], b[3]])
    }

    fn take_rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }
}

/// Reads ModEx entries while the packet type says ModEx follows; returns them and the final
/// packet type nibble.
fn parse_mod_ex<'a>(c: &mut Cursor<'a>, mut packet_type: u8) -> Result<(Vec<ModEx<'a>>, u8)> {
    const MOD_EX: u8 = 7;
    let mut entries = Vec::new();
    while packet_type == MOD_EX {
        let mut size = usize::from(c.u8("ModEx data size")?) + 1;
        if size == 256 {
            size = usize::from(c.u16("ModEx data size")?) + 1;
        }
        let data = c.take(size, "ModEx data")?;
        let b = c.u8("ModEx type")?;
        let mod_ex_type = b >> 4;
        packet_type = b & 0x0f;
        let entry = if mod_ex_type == MOD_EX_TIMESTAMP_OFFSET_NANO {
            // The spec reads the offset as bytesToUI24(modExData); it MUST be >= 3 bytes.
            let nano = Cursor { rest: data }.u24("TimestampOffsetNano")?;
            ModEx::TimestampOffsetNano(nano)
        } else {
            ModEx::Other { mod_ex_type, data }
        };
        entries.push(entry);
    }
    Ok((entries, packet_type))
}

fn parse_fourcc(c: &mut Cursor<'_>, field: &'static str, known: &[FourCc]) -> Result<FourCc> {
    let fourcc = c.fourcc(field)?;
    if known.contains(&fourcc) {
        Ok(fourcc)
    } else {
        Err(Error::UnsupportedFourCc(fourcc))
    }
}

/// The multitrack type and inner packet type byte that follow a Multitrack signal.
fn parse_multitrack_byte(c: &mut Cursor<'_>) -> Result<(AvMultitrackType, u8)> {
    let b = c.u8("multitrack type")?;
    let multitrack = AvMultitrackType::from_u8(b >> 4).ok_or(Error::UnsupportedValue {
        field: "multitrack type",
        value: u32::from(b >> 4),
    })?;
    Ok((multitrack, b & 0x0f))
}

/// Splits the track list of a multitrack body; calls `track` with (FourCC, track id, track
/// bytes) for each.
fn parse_tracks<'a, T>(
    c: &mut Cursor<'a>,
    multitrack: AvMultitrackType,
    known: &[FourCc],
    mut track: impl FnMut(FourCc, u8, &'a [u8]) -> Result<T>,
) -> Result<Vec<T>> {
    let shared_fourcc = match multitrack {
        AvMultitrackType::ManyTracksManyCodecs => None,
        _ => Some(parse_fourcc(c, "FourCC", known)?),
    };
    let mut tracks = Vec::new();
    // The spec's track loop runs at least once; OneTrack ends after the first track.
    loop {
        if tracks.len() == MAX_TRACKS {
            return Err(Error::TooManyTracks);
        }
        let fourcc = match shared_fourcc {
            Some(f) => f,
            None => parse_fourcc(c, "track FourCC", known)?,
        };
        let track_id = c.u8("track id")?;
        let data = match multitrack {
            AvMultitrackType::OneTrack => c.take_rest(),
            _ => {
                let size = c.u24("track size")? as usize;
                c.take(size, "track data")?
            }
        };
        tracks.push(track(fourcc, track_id, data)?);
        if multitrack == AvMultitrackType::OneTrack || c.rest.is_empty() {
            return Ok(tracks);
        }
    }
}

fn parse_video_track<'a>(
    packet_type: VideoPacketType,
    fourcc: FourCc,
    track_id: u8,
    data: &'a [u8],
) -> Result<VideoTrack<'a>> {
    let mut c = Cursor { rest: data };
    let composition_time =
        if packet_type == VideoPacketType::CodedFrames && carries_composition_time(fourcc) {
            c.si24("composition time")?
        } else {
            0
        };
    Ok(VideoTrack {
        track_id,
        fourcc,
        composition_time,
        data: c.take_rest(),
    })
}

fn video_packet_type(value: u8, field: &'static str) -> Result<VideoPacketType> {
    VideoPacketType::from_u8(value).ok_or(Error::UnsupportedValue {
        field,
        value: value.into(),
    })
}

fn audio_packet_type(value: u8, field: &'static str) -> Result<AudioPacketType> {
    AudioPacketType::from_u8(value).ok_or(Error::UnsupportedValue {
        field,
        value: value.into(),
    })
}

fn parse_legacy_video<'a>(first: u8, c: &mut Cursor<'a>) -> Result<LegacyVideo<'a>> {
    let codec_id = first & 0x0f;
    let (avc_packet_type, composition_time) = if codec_id == CODEC_ID_AVC {
        let value = c.u8("AVC packet type")?;
        let packet_type = AvcPacketType::from_u8(value).ok_or(Error::UnsupportedValue {
            field: "AVC packet type",
            value: value.into(),
        })?;
        (Some(packet_type), c.si24("composition time")?)
    } else {
        (None, 0)
    };
    Ok(LegacyVideo {
        codec_id,
        avc_packet_type,
        composition_time,
        data: c.take_rest(),
    })
}

fn parse_ex_video<'a>(first: u8, frame_type: FrameType, c: &mut Cursor<'a>) -> Result<ExVideo<'a>> {
    let (mod_ex, raw_type) = parse_mod_ex(c, first & 0x0f)?;
    let packet_type = video_packet_type(raw_type, "video packet type")?;
    let mut video = ExVideo {
        packet_type,
        mod_ex,
        multitrack: None,
        command: None,
        tracks: Vec::new(),
    };
    // A command frame (unless Metadata) holds only the command byte (Enhanced RTMP v2,
    // ExVideoTagHeader).
    if frame_type == FrameType::Command && packet_type != VideoPacketType::Metadata {
        video.command = Some(c.u8("video command")?);
        return Ok(video);
    }
    if packet_type == VideoPacketType::Multitrack {
        let (multitrack, inner) = parse_multitrack_byte(c)?;
        let inner = video_packet_type(inner, "video packet type inside multitrack")?;
        if matches!(inner, VideoPacketType::Multitrack | VideoPacketType::ModEx) {
            return Err(Error::UnsupportedValue {
                field: "video packet type inside multitrack",
                value: u8::from(inner).into(),
            });
        }
        video.packet_type = inner;
        video.multitrack = Some(multitrack);
        video.tracks = parse_tracks(c, multitrack, &VIDEO_FOURCCS, |fourcc, id, data| {
            parse_video_track(inner, fourcc, id, data)
        })?;
    } else {
        let fourcc = parse_fourcc(c, "video FourCC", &VIDEO_FOURCCS)?;
        video
            .tracks
            .push(parse_video_track(packet_type, fourcc, 0, c.take_rest())?);
    }
    Ok(video)
}

/// Parses a video tag body (legacy FLV or Enhanced RTMP, including ModEx and all multitrack
/// kinds). Rejects reserved values, unknown FourCCs, more than [`MAX_TRACKS`] tracks and any
/// length that runs past the body.
pub fn parse_video(body: &[u8]) -> Result<VideoTag<'_>> {
    let mut c = Cursor { rest: body };
    let first = c.u8("video header").map_err(|_| Error::EmptyTag)?;
    let raw_frame_type = (first >> 4) & 0x07;
    let frame_type = FrameType::from_u8(raw_frame_type).ok_or(Error::UnsupportedValue {
        field: "video frame type",
        value: raw_frame_type.into(),
    })?;
    let body = if first & EX_VIDEO_HEADER == 0 {
        VideoTagBody::Legacy(parse_legacy_video(first, &mut c)?)
    } else {
        VideoTagBody::Enhanced(parse_ex_video(first, frame_type, &mut c)?)
    };
    Ok(VideoTag { frame_type, body })
}

fn parse_legacy_audio<'a>(first: u8, c: &mut Cursor<'a>) -> Result<LegacyAudio<'a>> {
    let sound_format = first >> 4;
    let aac_packet_type = if sound_format == SOUND_FORMAT_AAC {
        let value = c.u8("AAC packet type")?;
        Some(
            AacPacketType::from_u8(value).ok_or(Error::UnsupportedValue {
                field: "AAC packet type",
                value: value.into(),
            })?,
        )
    } else {
        None
    };
    Ok(LegacyAudio {
        sound_format,
        sound_rate: (first >> 2) & 0x03,
        sound_size: (first >> 1) & 0x01,
        sound_type: first & 0x01,
        aac_packet_type,
        data: c.take_rest(),
    })
}

fn parse_ex_audio<'a>(first: u8, c: &mut Cursor<'a>) -> Result<ExAudio<'a>> {
    let (mod_ex, raw_type) = parse_mod_ex(c, first & 0x0f)?;
    let packet_type = audio_packet_type(raw_type, "audio packet type")?;
    let mut audio = ExAudio {
        packet_type,
        mod_ex,
        multitrack: None,
        tracks: Vec::new(),
    };
    if packet_type == AudioPacketType::Multitrack {
        let (multitrack, inner) = parse_multitrack_byte(c)?;
        let inner = audio_packet_type(inner, "audio packet type inside multitrack")?;
        if matches!(inner, AudioPacketType::Multitrack | AudioPacketType::ModEx) {
            return Err(Error::UnsupportedValue {
                field: "audio packet type inside multitrack",
                value: u8::from(inner).into(),
            });
        }
        audio.packet_type = inner;
        audio.multitrack = Some(multitrack);
        audio.tracks = parse_tracks(c, multitrack, &AUDIO_FOURCCS, |fourcc, track_id, data| {
            Ok(AudioTrack {
                track_id,
                fourcc,
                data,
            })
        })?;
    } else {
        let fourcc = parse_fourcc(c, "audio FourCC", &AUDIO_FOURCCS)?;
        audio.tracks.push(AudioTrack {
            track_id: 0,
            fourcc,
            data: c.take_rest(),
        });
    }
    Ok(audio)
}

/// Parses an audio tag body (legacy FLV or Enhanced RTMP, including ModEx and all multitrack
/// kinds). An empty body (RTMP's "silence" message) is [`Error::EmptyTag`]. Rejects reserved
/// values, unknown FourCCs, more than [`MAX_TRACKS`] tracks and any length that runs past the
/// body.
pub fn parse_audio(body: &[u8]) -> Result<AudioTag<'_>> {
    let mut c = Cursor { rest: body };
    let first = c.u8("audio header").map_err(|_| Error::EmptyTag)?;
    if first >> 4 == SOUND_FORMAT_EX_HEADER {
        Ok(AudioTag::Enhanced(parse_ex_audio(first, &mut c)?))
    } else {
        Ok(AudioTag::Legacy(parse_legacy_audio(first, &mut c)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex_video(out: &[u8]) -> ExVideo<'_> {
        match parse_video(out) {
            Ok(VideoTag {
                body: VideoTagBody::Enhanced(v),
                ..
            }) => v,
            other => panic!("not an enhanced video tag: {other:?}"),
        }
    }

    fn ex_audio(out: &[u8]) -> ExAudio<'_> {
        match parse_audio(out) {
            Ok(AudioTag::Enhanced(a)) => a,
            other => panic!("not an enhanced audio tag: {other:?}"),
        }
    }

    #[test]
    fn legacy_avc_header_vectors() {
        assert_eq!(
            avc_video_header(FrameType::Key, AvcPacketType::SequenceHeader, 0),
            [0x17, 0x00, 0x00, 0x00, 0x00]
        );
        assert_eq!(
            avc_video_header(FrameType::Inter, AvcPacketType::Nalu, 40),
            [0x27, 0x01, 0x00, 0x00, 0x28]
        );
        assert_eq!(
            avc_video_header(FrameType::Key, AvcPacketType::EndOfSequence, 0),
            [0x17, 0x02, 0x00, 0x00, 0x00]
        );
        // Negative and extreme composition times: SI24 two's complement, clamped.
        let cts = |t| avc_video_header(FrameType::Inter, AvcPacketType::Nalu, t)[2..].to_vec();
        assert_eq!(cts(-1), [0xff, 0xff, 0xff]);
        assert_eq!(cts(-80), [0xff, 0xff, 0xb0]);
        assert_eq!(cts(0x12_3456), [0x12, 0x34, 0x56]);
        assert_eq!(cts(COMPOSITION_TIME_MAX), [0x7f, 0xff, 0xff]);
        assert_eq!(cts(COMPOSITION_TIME_MIN), [0x80, 0x00, 0x00]);
        assert_eq!(cts(i32::MAX), [0x7f, 0xff, 0xff]);
        assert_eq!(cts(i32::MIN), [0x80, 0x00, 0x00]);
        assert_eq!(
            build_avc_video(
                FrameType::Inter,
                AvcPacketType::Nalu,
                2,
                &[0, 0, 0, 1, 0x41]
            ),
            [0x27, 0x01, 0x00, 0x00, 0x02, 0, 0, 0, 1, 0x41]
        );
    }

    #[test]
    fn legacy_avc_round_trip() {
        for cts in [
            0,
            1,
            -1,
            33,
            -33,
            COMPOSITION_TIME_MAX,
            COMPOSITION_TIME_MIN,
        ] {
            for packet_type in [
                AvcPacketType::SequenceHeader,
                AvcPacketType::Nalu,
                AvcPacketType::EndOfSequence,
            ] {
                let body = build_avc_video(FrameType::Key, packet_type, cts, &[1, 2, 3]);
                assert_eq!(
                    parse_video(&body),
                    Ok(VideoTag {
                        frame_type: FrameType::Key,
                        body: VideoTagBody::Legacy(LegacyVideo {
                            codec_id: CODEC_ID_AVC,
                            avc_packet_type: Some(packet_type),
                            composition_time: cts,
                            data: &[1, 2, 3],
                        }),
                    })
                );
            }
        }
        // A non-AVC legacy codec (Sorenson H.263) has no packet type or composition time.
        assert_eq!(
            parse_video(&[0x22, 0xaa]),
            Ok(VideoTag {
                frame_type: FrameType::Inter,
                body: VideoTagBody::Legacy(LegacyVideo {
                    codec_id: 2,
                    avc_packet_type: None,
                    composition_time: 0,
                    data: &[0xaa],
                }),
            })
        );
    }

    #[test]
    fn legacy_aac_vectors_and_round_trip() {
        assert_eq!(
            aac_audio_header(AacPacketType::SequenceHeader),
            [0xaf, 0x00]
        );
        assert_eq!(aac_audio_header(AacPacketType::Raw), [0xaf, 0x01]);
        let body = build_aac_audio(AacPacketType::SequenceHeader, &[0x12, 0x10]);
        assert_eq!(body, [0xaf, 0x00, 0x12, 0x10]);
        assert_eq!(
            parse_audio(&body),
            Ok(AudioTag::Legacy(LegacyAudio {
                sound_format: SOUND_FORMAT_AAC,
                sound_rate: 3,
                sound_size: 1,
                sound_type: 1,
                aac_packet_type: Some(AacPacketType::SequenceHeader),
                data: &[0x12, 0x10],
            }))
        );
        let raw = build_aac_audio(AacPacketType::Raw, &[0x21, 0x00]);
        assert!(matches!(
            parse_audio(&raw),
            Ok(AudioTag::Legacy(LegacyAudio {
                aac_packet_type: Some(AacPacketType::Raw),
                data: &[0x21, 0x00],
                ..
            }))
        ));
        // MP3, 44 kHz, 16-bit, stereo.
        assert!(matches!(
            parse_audio(&[0x2f, 0xff, 0xfb]),
            Ok(AudioTag::Legacy(LegacyAudio {
                sound_format: 2,
                aac_packet_type: None,
                data: &[0xff, 0xfb],
                ..
            }))
        ));
    }

    #[test]
    fn ex_video_header_vectors() {
        assert_eq!(
            ex_video_header(FrameType::Key, VideoPacketType::CodedFrames, AVC1, 33),
            Ok(([0x91, b'a', b'v', b'c', b'1', 0x00, 0x00, 0x21], 8))
        );
        assert_eq!(
            ex_video_header(FrameType::Inter, VideoPacketType::CodedFrames, HVC1, -2),
            Ok(([0xa1, b'h', b'v', b'c', b'1', 0xff, 0xff, 0xfe], 8))
        );
        // CodedFramesX: the composition time is implied zero and not written.
        let (header, len) =
            ex_video_header(FrameType::Inter, VideoPacketType::CodedFramesX, HVC1, 5).unwrap();
        assert_eq!(&header[..len], [0xa3, b'h', b'v', b'c', b'1']);
        // AV1 coded frames carry no composition time.
        let (header, len) =
            ex_video_header(FrameType::Key, VideoPacketType::CodedFrames, AV01, 5).unwrap();
        assert_eq!(&header[..len], [0x91, b'a', b'v', b'0', b'1']);
        let (header, len) =
            ex_video_header(FrameType::Key, VideoPacketType::SequenceStart, VP09, 0).unwrap();
        assert_eq!(&header[..len], [0x90, b'v', b'p', b'0', b'9']);
        let (header, len) =
            ex_video_header(FrameType::Key, VideoPacketType::SequenceEnd, VVC1, 0).unwrap();
        assert_eq!(&header[..len], [0x92, b'v', b'v', b'c', b'1']);

        assert!(ex_video_header(FrameType::Key, VideoPacketType::Multitrack, AVC1, 0).is_err());
        assert!(ex_video_header(FrameType::Key, VideoPacketType::ModEx, AVC1, 0).is_err());
        assert!(
            ex_video_header(FrameType::Command, VideoPacketType::CodedFrames, AVC1, 0).is_err()
        );
        assert_eq!(
            ex_video_header(FrameType::Key, VideoPacketType::CodedFrames, MP4A, 0),
            Err(Error::UnsupportedFourCc(MP4A))
        );
    }

    #[test]
    fn ex_audio_header_vectors() {
        assert_eq!(
            ex_audio_header(AudioPacketType::SequenceStart, OPUS),
            Ok([0x90, b'O', b'p', b'u', b's'])
        );
        assert_eq!(
            ex_audio_header(AudioPacketType::CodedFrames, MP4A),
            Ok([0x91, b'm', b'p', b'4', b'a'])
        );
        assert_eq!(
            ex_audio_header(AudioPacketType::MultichannelConfig, FLAC),
            Ok([0x94, b'f', b'L', b'a', b'C'])
        );
        assert_eq!(
            ex_audio_header(AudioPacketType::SequenceEnd, MP3),
            Ok([0x92, b'.', b'm', b'p', b'3'])
        );
        assert!(ex_audio_header(AudioPacketType::Multitrack, MP4A).is_err());
        assert_eq!(
            ex_audio_header(AudioPacketType::CodedFrames, AVC1),
            Err(Error::UnsupportedFourCc(AVC1))
        );
    }

    #[test]
    fn ex_video_single_track_round_trip_every_packet_type() {
        let packet_types = [
            VideoPacketType::SequenceStart,
            VideoPacketType::CodedFrames,
            VideoPacketType::SequenceEnd,
            VideoPacketType::CodedFramesX,
            VideoPacketType::Metadata,
            VideoPacketType::Mpeg2TsSequenceStart,
        ];
        for fourcc in VIDEO_FOURCCS {
            for packet_type in packet_types {
                for cts in [0, -1, 1000, COMPOSITION_TIME_MIN, COMPOSITION_TIME_MAX] {
                    let has_cts = packet_type == VideoPacketType::CodedFrames
                        && carries_composition_time(fourcc);
                    let cts = if has_cts { cts } else { 0 };
                    let mut out = Vec::new();
                    write_ex_video(
                        &mut out,
                        FrameType::Inter,
                        packet_type,
                        fourcc,
                        cts,
                        &[],
                        &[9, 8, 7],
                    )
                    .unwrap();
                    assert_eq!(out.len(), 5 + if has_cts { 3 } else { 0 } + 3);
                    assert_eq!(
                        parse_video(&out),
                        Ok(VideoTag {
                            frame_type: FrameType::Inter,
                            body: VideoTagBody::Enhanced(ExVideo {
                                packet_type,
                                mod_ex: vec![],
                                multitrack: None,
                                command: None,
                                tracks: vec![VideoTrack {
                                    track_id: 0,
                                    fourcc,
                                    composition_time: cts,
                                    data: &[9, 8, 7],
                                }],
                            }),
                        })
                    );
                    // The fixed-size header + payload is the same message.
                    let (header, len) =
                        ex_video_header(FrameType::Inter, packet_type, fourcc, cts).unwrap();
                    assert_eq!([&header[..len], &[9, 8, 7]].concat(), out);
                }
            }
        }
    }

    #[test]
    fn ex_video_mod_ex_timestamp_offset_nano() {
        let mut out = Vec::new();
        write_ex_video(
            &mut out,
            FrameType::Key,
            VideoPacketType::CodedFrames,
            AVC1,
            -3,
            &[ModEx::TimestampOffsetNano(500_000)],
            &[0xaa],
        )
        .unwrap();
        assert_eq!(
            out,
            [
                0x97, // isExHeader | Key << 4 | ModEx
                0x02, // modExDataSize - 1
                0x07, 0xa1, 0x20, // 500000 as UI24
                0x01, // TimestampOffsetNano << 4 | CodedFrames
                b'a', b'v', b'c', b'1', 0xff, 0xff, 0xfd, 0xaa,
            ]
        );
        let video = ex_video(&out);
        assert_eq!(video.mod_ex, vec![ModEx::TimestampOffsetNano(500_000)]);
        assert_eq!(video.packet_type, VideoPacketType::CodedFrames);
        assert_eq!(video.tracks[0].composition_time, -3);
    }

    #[test]
    fn mod_ex_size_escape() {
        let data255 = [0x11u8; 255];
        let data256 = [0x22u8; 256];
        let data_max = vec![0x33u8; MOD_EX_DATA_MAX];
        let mod_ex = [
            ModEx::Other {
                mod_ex_type: 1,
                data: &data255,
            },
            ModEx::Other {
                mod_ex_type: 15,
                data: &data256,
            },
            ModEx::Other {
                mod_ex_type: 2,
                data: &data_max,
            },
            ModEx::TimestampOffsetNano(0xff_ffff),
        ];
        let mut out = Vec::new();
        write_ex_audio(&mut out, AudioPacketType::CodedFrames, OPUS, &mod_ex, &[1]).unwrap();
        // 255 bytes: UI8 254; 256 bytes: escape 0xFF then UI16 255; 65536: 0xFF, UI16 0xFFFF.
        assert_eq!(out[..2], [0x97, 0xfe]);
        assert_eq!(out[2 + 255], 0x17, "type 1, next ModEx");
        assert_eq!(out[258..261], [0xff, 0x00, 0xff]);
        assert_eq!(out[261 + 256], 0xf7, "type 15, next ModEx");
        assert_eq!(out[518..521], [0xff, 0xff, 0xff]);
        let audio = ex_audio(&out);
        assert_eq!(audio.mod_ex, mod_ex);
        assert_eq!(audio.packet_type, AudioPacketType::CodedFrames);
        assert_eq!(
            audio.tracks,
            vec![AudioTrack {
                track_id: 0,
                fourcc: OPUS,
                data: &[1]
            }]
        );

        let too_big = vec![0u8; MOD_EX_DATA_MAX + 1];
        for bad in [
            ModEx::Other {
                mod_ex_type: 1,
                data: &too_big,
            },
            ModEx::Other {
                mod_ex_type: 1,
                data: &[],
            },
            ModEx::Other {
                mod_ex_type: 0,
                data: &[1, 2, 3],
            },
            ModEx::Other {
                mod_ex_type: 16,
                data: &[1],
            },
            ModEx::TimestampOffsetNano(0x100_0000),
        ] {
            let mut out = Vec::new();
            assert!(
                write_ex_audio(&mut out, AudioPacketType::CodedFrames, OPUS, &[bad], &[]).is_err()
            );
            assert!(out.is_empty(), "nothing written on error");
        }
    }

    #[test]
    fn ex_video_command_frame() {
        let mut out = Vec::new();
        write_ex_video_command(&mut out, &[], 1).unwrap();
        assert_eq!(out, [0xd1, 0x01]);
        assert_eq!(
            parse_video(&out),
            Ok(VideoTag {
                frame_type: FrameType::Command,
                body: VideoTagBody::Enhanced(ExVideo {
                    packet_type: VideoPacketType::CodedFrames,
                    mod_ex: vec![],
                    multitrack: None,
                    command: Some(1),
                    tracks: vec![],
                }),
            })
        );
        out.clear();
        write_ex_video_command(&mut out, &[ModEx::TimestampOffsetNano(7)], 0).unwrap();
        assert_eq!(out, [0xd7, 0x02, 0, 0, 7, 0x01, 0x00]);
        let video = ex_video(&out);
        assert_eq!((video.command, video.mod_ex.len()), (Some(0), 1));
        // With packet type Metadata the command frame type is ignored: it is metadata.
        let mut out = Vec::new();
        write_ex_video(
            &mut out,
            FrameType::Command,
            VideoPacketType::Metadata,
            AV01,
            0,
            &[],
            &[2, 0],
        )
        .unwrap();
        assert_eq!(out[0], 0xd4);
        assert_eq!(ex_video(&out).command, None);
    }

    #[test]
    fn ex_video_multitrack_one_track() {
        let tracks = [VideoTrack {
            track_id: 0,
            fourcc: AVC1,
            composition_time: 16,
            data: &[1, 2],
        }];
        let mut out = Vec::new();
        write_ex_video_multitrack(
            &mut out,
            FrameType::Key,
            VideoPacketType::CodedFrames,
            AvMultitrackType::OneTrack,
            &[],
            &tracks,
        )
        .unwrap();
        assert_eq!(
            out,
            [
                0x96, // isExHeader | Key << 4 | Multitrack
                0x01, // OneTrack << 4 | CodedFrames
                b'a', b'v', b'c', b'1', 0x00, // track id
                0x00, 0x00, 0x10, // composition time
                1, 2,
            ]
        );
        let video = ex_video(&out);
        assert_eq!(video.multitrack, Some(AvMultitrackType::OneTrack));
        assert_eq!(video.packet_type, VideoPacketType::CodedFrames);
        assert_eq!(video.tracks, tracks);
    }

    #[test]
    fn ex_video_multitrack_many_tracks() {
        let tracks = [
            VideoTrack {
                track_id: 0,
                fourcc: HVC1,
                composition_time: -5,
                data: &[0xa0],
            },
            VideoTrack {
                track_id: 1,
                fourcc: HVC1,
                composition_time: 5,
                data: &[0xb0, 0xb1],
            },
        ];
        let mut out = Vec::new();
        write_ex_video_multitrack(
            &mut out,
            FrameType::Inter,
            VideoPacketType::CodedFrames,
            AvMultitrackType::ManyTracks,
            &[],
            &tracks,
        )
        .unwrap();
        assert_eq!(
            out,
            [
                0xa6, 0x11, b'h', b'v', b'c', b'1', //
                0x00, 0x00, 0x00, 0x04, 0xff, 0xff, 0xfb, 0xa0, //
                0x01, 0x00, 0x00, 0x05, 0x00, 0x00, 0x05, 0xb0, 0xb1,
            ]
        );
        let video = ex_video(&out);
        assert_eq!(video.multitrack, Some(AvMultitrackType::ManyTracks));
        assert_eq!(video.tracks, tracks);
    }

    #[test]
    fn ex_video_multitrack_many_codecs_with_mod_ex() {
        let tracks = [
            VideoTrack {
                track_id: 0,
                fourcc: AVC1,
                composition_time: 0,
                data: &[0x01],
            },
            VideoTrack {
                track_id: 2,
                fourcc: AV01,
                composition_time: 0,
                data: &[0x02, 0x03],
            },
        ];
        let mod_ex = [ModEx::TimestampOffsetNano(1)];
        let mut out = Vec::new();
        write_ex_video_multitrack(
            &mut out,
            FrameType::Key,
            VideoPacketType::SequenceStart,
            AvMultitrackType::ManyTracksManyCodecs,
            &mod_ex,
            &tracks,
        )
        .unwrap();
        assert_eq!(
            out,
            [
                0x97, 0x02, 0x00, 0x00, 0x01, 0x06, // ModEx, next Multitrack
                0x20, // ManyTracksManyCodecs << 4 | SequenceStart
                b'a', b'v', b'c', b'1', 0x00, 0x00, 0x00, 0x01, 0x01, //
                b'a', b'v', b'0', b'1', 0x02, 0x00, 0x00, 0x02, 0x02, 0x03,
            ]
        );
        let video = ex_video(&out);
        assert_eq!(video.mod_ex, mod_ex);
        assert_eq!(
            video.multitrack,
            Some(AvMultitrackType::ManyTracksManyCodecs)
        );
        assert_eq!(video.packet_type, VideoPacketType::SequenceStart);
        assert_eq!(video.tracks, tracks);
    }

    #[test]
    fn ex_audio_round_trip_every_packet_type_and_multitrack_kind() {
        let packet_types = [
            AudioPacketType::SequenceStart,
            AudioPacketType::CodedFrames,
            AudioPacketType::SequenceEnd,
            AudioPacketType::MultichannelConfig,
        ];
        for packet_type in packet_types {
            for fourcc in AUDIO_FOURCCS {
                let mut out = Vec::new();
                write_ex_audio(&mut out, packet_type, fourcc, &[], &[4, 5]).unwrap();
                let audio = ex_audio(&out);
                assert_eq!(
                    audio,
                    ExAudio {
                        packet_type,
                        mod_ex: vec![],
                        multitrack: None,
                        tracks: vec![AudioTrack {
                            track_id: 0,
                            fourcc,
                            data: &[4, 5]
                        }],
                    }
                );
            }
            let kinds = [
                (AvMultitrackType::OneTrack, vec![(3, MP4A, &[1u8][..])]),
                (
                    AvMultitrackType::ManyTracks,
                    vec![
                        (0, OPUS, &[1u8, 2][..]),
                        (1, OPUS, &[][..]),
                        (7, OPUS, &[3][..]),
                    ],
                ),
                (
                    AvMultitrackType::ManyTracksManyCodecs,
                    vec![
                        (0, MP4A, &[1u8][..]),
                        (1, AC3, &[2, 2][..]),
                        (2, EAC3, &[][..]),
                    ],
                ),
            ];
            for (kind, spec) in kinds {
                let tracks: Vec<AudioTrack<'_>> = spec
                    .iter()
                    .map(|&(track_id, fourcc, data)| AudioTrack {
                        track_id,
                        fourcc,
                        data,
                    })
                    .collect();
                for mod_ex in [&[][..], &[ModEx::TimestampOffsetNano(999_999)][..]] {
                    let mut out = Vec::new();
                    write_ex_audio_multitrack(&mut out, packet_type, kind, mod_ex, &tracks)
                        .unwrap();
                    assert_eq!(
                        ex_audio(&out),
                        ExAudio {
                            packet_type,
                            mod_ex: mod_ex.to_vec(),
                            multitrack: Some(kind),
                            tracks: tracks.clone(),
                        }
                    );
                }
            }
        }
    }

    #[test]
    fn ex_audio_multitrack_vector() {
        let tracks = [
            AudioTrack {
                track_id: 0,
                fourcc: MP4A,
                data: &[0x21],
            },
            AudioTrack {
                track_id: 1,
                fourcc: OPUS,
                data: &[0xfc, 0xff],
            },
        ];
        let mut out = Vec::new();
        write_ex_audio_multitrack(
            &mut out,
            AudioPacketType::CodedFrames,
            AvMultitrackType::ManyTracksManyCodecs,
            &[],
            &tracks,
        )
        .unwrap();
        assert_eq!(
            out,
            [
                0x95, 0x21, //
                b'm', b'p', b'4', b'a', 0x00, 0x00, 0x00, 0x01, 0x21, //
                b'O', b'p', b'u', b's', 0x01, 0x00, 0x00, 0x02, 0xfc, 0xff,
            ]
        );
    }

    #[test]
    fn multitrack_builder_errors() {
        let track = |fourcc| VideoTrack {
            track_id: 0,
            fourcc,
            composition_time: 0,
            data: &[],
        };
        let build = |kind, tracks: &[VideoTrack<'_>]| {
            let mut out = Vec::new();
            let r = write_ex_video_multitrack(
                &mut out,
                FrameType::Key,
                VideoPacketType::CodedFrames,
                kind,
                &[],
                tracks,
            );
            if r.is_err() {
                assert!(out.is_empty());
            }
            r
        };
        assert!(build(AvMultitrackType::ManyTracks, &[]).is_err());
        assert!(build(AvMultitrackType::OneTrack, &[track(AVC1), track(AVC1)]).is_err());
        assert!(build(AvMultitrackType::ManyTracks, &[track(AVC1), track(HVC1)]).is_err());
        assert!(
            build(
                AvMultitrackType::ManyTracksManyCodecs,
                &[track(AVC1), track(HVC1)]
            )
            .is_ok()
        );
        assert_eq!(
            build(AvMultitrackType::ManyTracks, &[track(AVC1); MAX_TRACKS + 1]),
            Err(Error::TooManyTracks)
        );
        assert!(build(AvMultitrackType::ManyTracks, &[track(AVC1); MAX_TRACKS]).is_ok());
        assert!(build(AvMultitrackType::ManyTracks, &[track(OPUS)]).is_err());
    }

    #[test]
    fn parse_rejects_too_many_tracks() {
        let mut body = vec![0x96, 0x11, b'a', b'v', b'c', b'1'];
        for id in 0..=MAX_TRACKS as u8 {
            body.extend_from_slice(&[id, 0x00, 0x00, 0x03, 0, 0, 0]);
        }
        assert_eq!(parse_video(&body), Err(Error::TooManyTracks));
        assert_eq!(
            Error::TooManyTracks.to_string(),
            "FLV multitrack tag has more than 16 tracks; send fewer tracks."
        );
    }

    #[test]
    fn parse_errors() {
        let truncated = |r: Result<VideoTag<'_>>| matches!(r, Err(Error::TruncatedTag { .. }));
        assert_eq!(parse_video(&[]), Err(Error::EmptyTag));
        assert_eq!(parse_audio(&[]), Err(Error::EmptyTag));
        // Reserved frame types 0, 6, 7.
        for b in [0x07, 0x67, 0x77, 0x80, 0xe0, 0xf0] {
            assert!(matches!(
                parse_video(&[b, 1, 0, 0, 0]),
                Err(Error::UnsupportedValue {
                    field: "video frame type",
                    ..
                })
            ));
        }
        // Reserved packet types.
        assert!(matches!(
            parse_video(&[0x98, b'a', b'v', b'c', b'1']),
            Err(Error::UnsupportedValue { .. })
        ));
        assert!(matches!(
            parse_audio(&[0x93, b'O', b'p', b'u', b's']),
            Err(Error::UnsupportedValue { .. })
        ));
        assert!(matches!(
            parse_video(&[0x17, 3, 0, 0, 0]),
            Err(Error::UnsupportedValue { .. })
        ));
        assert!(matches!(
            parse_audio(&[0xaf, 2]),
            Err(Error::UnsupportedValue { .. })
        ));
        // Unknown FourCC.
        let err = parse_video(&[0x91, b'x', b'2', b'6', b'4', 0, 0, 0]).unwrap_err();
        assert_eq!(err, Error::UnsupportedFourCc(*b"x264"));
        assert!(
            err.to_string()
                .starts_with("unknown or unsupported codec FourCC 'x264' in FLV tag; ")
        );
        // Multitrack type 3 is reserved; nested Multitrack/ModEx is not allowed.
        assert!(matches!(
            parse_video(&[0x96, 0x31, b'a', b'v', b'c', b'1']),
            Err(Error::UnsupportedValue {
                field: "multitrack type",
                ..
            })
        ));
        assert!(matches!(
            parse_video(&[0x96, 0x06]),
            Err(Error::UnsupportedValue { .. })
        ));
        assert!(matches!(
            parse_audio(&[0x95, 0x07]),
            Err(Error::UnsupportedValue { .. })
        ));
        // Lengths running past the body.
        assert!(truncated(parse_video(&[0x17, 1, 0, 0])));
        assert!(truncated(parse_video(&[0x91, b'a', b'v', b'c'])));
        assert!(truncated(parse_video(&[
            0x91, b'a', b'v', b'c', b'1', 0, 0
        ])));
        assert!(truncated(parse_video(&[
            0x96, 0x13, b'a', b'v', b'c', b'1', 0, 0, 0, 9, 1
        ])));
        assert!(truncated(parse_video(&[
            0x96, 0x13, b'a', b'v', b'c', b'1'
        ])));
        assert!(truncated(parse_video(&[0x97, 0x05, 1, 2])));
        assert!(truncated(parse_video(&[0x97, 0xff, 0xff])));
        // TimestampOffsetNano needs 3 bytes of data.
        assert!(truncated(parse_video(&[
            0x97, 0x01, 1, 2, 0x01, b'a', b'v', b'c', b'1', 0, 0, 0
        ])));
        // A command frame needs its command byte.
        assert!(truncated(parse_video(&[0xd1])));
    }

    #[test]
    fn parse_tolerates_legacy_command_and_empty_payloads() {
        assert!(matches!(
            parse_video(&[0x57, 0x01, 0, 0, 0, 0x00]),
            Ok(VideoTag {
                frame_type: FrameType::Command,
                body: VideoTagBody::Legacy(LegacyVideo { data: &[0x00], .. }),
            })
        ));
        let video = ex_video(&[0x92, b'a', b'v', b'c', b'1']);
        assert_eq!(video.packet_type, VideoPacketType::SequenceEnd);
        assert_eq!(video.tracks[0].data, &[] as &[u8]);
    }

    /// Every packet a track of `codec` can send, with the composition times worth checking.
    fn packets(codec: Codec) -> Vec<Packet> {
        let mut v = vec![Packet::SequenceStart, Packet::SequenceEnd];
        for cts in [0, 40, -40, COMPOSITION_TIME_MAX + 1] {
            v.push(Packet::frame(true, cts));
            v.push(Packet::frame(false, cts));
        }
        v.push(match codec.kind() {
            MediaKind::Video => Packet::Metadata,
            MediaKind::Audio => Packet::MultichannelConfig,
        });
        v
    }

    #[test]
    fn tag_header_legacy_forms_are_the_legacy_builders() {
        let avc = TagTrack::new(Codec::H264, 0);
        let aac = TagTrack::new(Codec::Aac, 0);
        let h = |t, p| tag_header(t, p, None).unwrap().to_vec();
        assert_eq!(h(avc, Packet::SequenceStart), [0x17, 0, 0, 0, 0]);
        assert_eq!(
            h(avc, Packet::frame(true, 40)),
            avc_video_header(FrameType::Key, AvcPacketType::Nalu, 40)
        );
        assert_eq!(
            h(avc, Packet::frame(false, -33)),
            [0x27, 1, 0xff, 0xff, 0xdf]
        );
        // Zero composition time stays in the legacy header (it has no CodedFramesX).
        assert_eq!(h(avc, Packet::frame(false, 0)), [0x27, 1, 0, 0, 0]);
        assert_eq!(h(avc, Packet::SequenceEnd), [0x17, 2, 0, 0, 0]);
        assert_eq!(h(aac, Packet::SequenceStart), [0xaf, 0]);
        assert_eq!(h(aac, Packet::frame(true, 0)), [0xaf, 1]);
        // The legacy form cannot carry ModEx: the offset is left out, the form stays legacy.
        assert_eq!(
            tag_header(avc, Packet::frame(true, 0), Some(123))
                .unwrap()
                .as_bytes(),
            [0x17, 1, 0, 0, 0]
        );
        assert_eq!(
            tag_header(aac, Packet::frame(true, 0), Some(123))
                .unwrap()
                .as_bytes(),
            [0xaf, 1]
        );
        // What legacy AAC/AVC cannot say goes out enhanced, with the FourCC.
        assert_eq!(
            h(aac, Packet::MultichannelConfig),
            [0x94, b'm', b'p', b'4', b'a']
        );
        assert_eq!(h(aac, Packet::SequenceEnd), [0x92, b'm', b'p', b'4', b'a']);
        assert_eq!(h(avc, Packet::Metadata), [0xd4, b'a', b'v', b'c', b'1']);

        // MP3 with legacy flags: 44.1 kHz stereo is 0x2f, as FFmpeg writes it.
        let flags = SoundFlags::for_mp3(44_100, 2).unwrap();
        assert_eq!(SoundFlags::for_mp3(48_000, 1).map(|f| f.rate), Some(3));
        assert_eq!(SoundFlags::for_mp3(22_050, 1).map(|f| f.rate), Some(2));
        assert_eq!(SoundFlags::for_mp3(11_025, 1).map(|f| f.rate), Some(1));
        assert_eq!(SoundFlags::for_mp3(32_000, 2), None);
        assert_eq!(SoundFlags::for_mp3(8_000, 1), None);
        let mp3 = TagTrack {
            legacy_sound: Some(flags),
            ..TagTrack::new(Codec::Mp3, 0)
        };
        assert_eq!(mp3.form(Packet::frame(true, 0)), TagForm::Legacy);
        let header = h(mp3, Packet::frame(true, 0));
        assert_eq!(header, [0x2f]);
        let body = [&header[..], &[0xff, 0xfb, 0x90]].concat();
        assert_eq!(
            parse_audio(&body),
            Ok(AudioTag::Legacy(LegacyAudio {
                sound_format: SOUND_FORMAT_MP3,
                sound_rate: 3,
                sound_size: 1,
                sound_type: 1,
                aac_packet_type: None,
                data: &[0xff, 0xfb, 0x90],
            }))
        );
        // Legacy MP3 has no sequence start: an error, not a silent `.mp3` tag on a legacy track.
        assert!(tag_header(mp3, Packet::SequenceStart, None).is_err());
        // Legacy flags mean nothing on other tracks: `.mp3` in a multitrack tag.
        let mp3_1 = TagTrack { track_id: 1, ..mp3 };
        assert_eq!(
            h(mp3_1, Packet::frame(true, 0)),
            [0x95, 0x01, b'.', b'm', b'p', b'3', 1]
        );
    }

    #[test]
    fn tag_header_vectors_of_the_enhanced_forms() {
        let h = |codec, track, p, nano| {
            tag_header(TagTrack::new(codec, track), p, nano)
                .unwrap()
                .to_vec()
        };
        // Plain enhanced, track 0: CodedFrames with SI24, CodedFramesX for 0.
        assert_eq!(
            h(Codec::H265, 0, Packet::frame(true, 33), None),
            [0x91, b'h', b'v', b'c', b'1', 0, 0, 0x21]
        );
        assert_eq!(
            h(Codec::H265, 0, Packet::frame(false, 0), None),
            [0xa3, b'h', b'v', b'c', b'1']
        );
        assert_eq!(
            h(Codec::Av1, 0, Packet::frame(false, 0), None),
            [0xa1, b'a', b'v', b'0', b'1']
        );
        assert_eq!(
            h(Codec::Vp9, 0, Packet::SequenceStart, None),
            [0x90, b'v', b'p', b'0', b'9']
        );
        assert_eq!(
            h(Codec::Opus, 0, Packet::SequenceStart, None),
            [0x90, b'O', b'p', b'u', b's']
        );
        // Multitrack OneTrack for tracks >= 1, H.264 and AAC included.
        assert_eq!(
            h(Codec::H264, 2, Packet::frame(true, -1), None),
            [0x96, 0x01, b'a', b'v', b'c', b'1', 2, 0xff, 0xff, 0xff]
        );
        assert_eq!(
            h(Codec::H264, 2, Packet::frame(false, 0), None),
            [0xa6, 0x03, b'a', b'v', b'c', b'1', 2]
        );
        assert_eq!(
            h(Codec::Aac, 1, Packet::SequenceStart, None),
            [0x95, 0x00, b'm', b'p', b'4', b'a', 1]
        );
        // ModEx before the packet type, and before the multitrack header.
        assert_eq!(
            h(Codec::Opus, 0, Packet::frame(true, 0), Some(500_000)),
            [0x97, 0x02, 0x07, 0xa1, 0x20, 0x01, b'O', b'p', b'u', b's']
        );
        let longest = h(Codec::H265, 255, Packet::frame(true, 1), Some(999_999));
        assert_eq!(
            longest,
            [
                0x97, 0x02, 0x0f, 0x42, 0x3f, 0x06, 0x01, b'h', b'v', b'c', b'1', 255, 0, 0, 1
            ]
        );
        assert!(longest.len() <= TAG_HEADER_MAX);
        // Metadata: frame type Command when plain (FFmpeg), Key inside multitrack (a Command
        // frame type there would read as a command frame).
        assert_eq!(
            h(Codec::H265, 0, Packet::Metadata, None),
            [0xd4, b'h', b'v', b'c', b'1']
        );
        assert_eq!(
            h(Codec::H265, 1, Packet::Metadata, None),
            [0x96, 0x04, b'h', b'v', b'c', b'1', 1]
        );

        // Packets a kind does not have, and command frames, are refused.
        let err = |codec, track, p| tag_header(TagTrack::new(codec, track), p, None).is_err();
        assert!(err(Codec::H265, 0, Packet::MultichannelConfig));
        assert!(err(Codec::Opus, 1, Packet::Metadata));
        let command = Packet::CodedFrame {
            frame_type: FrameType::Command,
            composition_time: 0,
        };
        assert!(err(Codec::H264, 0, command));
        assert!(err(Codec::Av1, 0, command));
        assert!(err(Codec::H264, 3, command));
    }

    #[test]
    fn tag_header_every_form_round_trips_through_the_parsers() {
        let payload = [0xde, 0xad, 0xbe, 0xef];
        let mut forms = std::collections::HashSet::new();
        for codec in Codec::ALL {
            for track_id in [0u8, 1, 7, 255] {
                for packet in packets(codec) {
                    for nano in [None, Some(0), Some(1), Some(999_999)] {
                        let track = TagTrack::new(codec, track_id);
                        let form = track.form(packet);
                        forms.insert((codec.kind(), form));
                        let header = tag_header(track, packet, nano)
                            .unwrap_or_else(|e| panic!("{codec:?} {track_id} {packet:?}: {e}"));
                        assert!(header.len() <= TAG_HEADER_MAX);
                        let body = [header.as_bytes(), &payload].concat();
                        let what = format!("{codec:?} track {track_id} {packet:?} {nano:?}");
                        let mod_ex = match (form, nano) {
                            (TagForm::Legacy, _) | (_, None | Some(0)) => vec![],
                            (_, Some(n)) => vec![ModEx::TimestampOffsetNano(n)],
                        };
                        let (want_frame_type, cts) = match packet {
                            Packet::CodedFrame {
                                frame_type,
                                composition_time,
                            } => (frame_type, clamp_si24(composition_time)),
                            Packet::Metadata if form == TagForm::Enhanced => {
                                (FrameType::Command, 0)
                            }
                            _ => (FrameType::Key, 0),
                        };
                        match codec.kind() {
                            MediaKind::Video => {
                                let tag = parse_video(&body).expect(&what);
                                assert_eq!(tag.frame_type, want_frame_type, "{what}");
                                match tag.body {
                                    VideoTagBody::Legacy(v) => {
                                        assert_eq!(form, TagForm::Legacy, "{what}");
                                        assert_eq!(v.codec_id, CODEC_ID_AVC);
                                        let want = match packet {
                                            Packet::SequenceStart => AvcPacketType::SequenceHeader,
                                            Packet::SequenceEnd => AvcPacketType::EndOfSequence,
                                            _ => AvcPacketType::Nalu,
                                        };
                                        assert_eq!(v.avc_packet_type, Some(want), "{what}");
                                        assert_eq!(v.composition_time, cts, "{what}");
                                        assert_eq!(v.data, payload);
                                    }
                                    VideoTagBody::Enhanced(v) => {
                                        assert_ne!(form, TagForm::Legacy, "{what}");
                                        let has_cts = carries_composition_time(codec.fourcc());
                                        let want = match packet {
                                            Packet::SequenceStart => VideoPacketType::SequenceStart,
                                            Packet::SequenceEnd => VideoPacketType::SequenceEnd,
                                            Packet::Metadata => VideoPacketType::Metadata,
                                            _ if has_cts && cts == 0 => {
                                                VideoPacketType::CodedFramesX
                                            }
                                            _ => VideoPacketType::CodedFrames,
                                        };
                                        assert_eq!(v.packet_type, want, "{what}");
                                        assert_eq!(v.mod_ex, mod_ex, "{what}");
                                        assert_eq!(v.command, None, "{what}");
                                        assert_eq!(
                                            v.multitrack,
                                            (form == TagForm::Multitrack)
                                                .then_some(AvMultitrackType::OneTrack),
                                            "{what}"
                                        );
                                        let cts = if want == VideoPacketType::CodedFrames && has_cts
                                        {
                                            cts
                                        } else {
                                            0
                                        };
                                        assert_eq!(
                                            v.tracks,
                                            [VideoTrack {
                                                track_id,
                                                fourcc: codec.fourcc(),
                                                composition_time: cts,
                                                data: &payload,
                                            }],
                                            "{what}"
                                        );
                                    }
                                }
                            }
                            MediaKind::Audio => match parse_audio(&body).expect(&what) {
                                AudioTag::Legacy(a) => {
                                    assert_eq!(form, TagForm::Legacy, "{what}");
                                    assert_eq!(a.sound_format, SOUND_FORMAT_AAC);
                                    let want = match packet {
                                        Packet::SequenceStart => AacPacketType::SequenceHeader,
                                        _ => AacPacketType::Raw,
                                    };
                                    assert_eq!(a.aac_packet_type, Some(want), "{what}");
                                    assert_eq!(a.data, payload);
                                }
                                AudioTag::Enhanced(a) => {
                                    assert_ne!(form, TagForm::Legacy, "{what}");
                                    let want = match packet {
                                        Packet::SequenceStart => AudioPacketType::SequenceStart,
                                        Packet::SequenceEnd => AudioPacketType::SequenceEnd,
                                        Packet::MultichannelConfig => {
                                            AudioPacketType::MultichannelConfig
                                        }
                                        _ => AudioPacketType::CodedFrames,
                                    };
                                    assert_eq!(a.packet_type, want, "{what}");
                                    assert_eq!(a.mod_ex, mod_ex, "{what}");
                                    assert_eq!(
                                        a.multitrack,
                                        (form == TagForm::Multitrack)
                                            .then_some(AvMultitrackType::OneTrack),
                                        "{what}"
                                    );
                                    assert_eq!(
                                        a.tracks,
                                        [AudioTrack {
                                            track_id,
                                            fourcc: codec.fourcc(),
                                            data: &payload,
                                        }],
                                        "{what}"
                                    );
                                }
                            },
                        }
                        // The same message as the Vec builders make it, payload included.
                        if form != TagForm::Legacy {
                            assert_eq!(body, vec_builder(track, packet, &mod_ex, &payload));
                        }
                    }
                }
            }
        }
        // Every form was exercised for both kinds.
        for kind in [MediaKind::Video, MediaKind::Audio] {
            for form in [TagForm::Legacy, TagForm::Enhanced, TagForm::Multitrack] {
                assert!(forms.contains(&(kind, form)), "{kind:?} {form:?}");
            }
        }
    }

    /// The same tag through the `Vec` builders.
    fn vec_builder(track: TagTrack, packet: Packet, mod_ex: &[ModEx<'_>], data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let multitrack = track.form(packet) == TagForm::Multitrack;
        let fourcc = track.codec.fourcc();
        match track.codec.kind() {
            MediaKind::Video => {
                let (ft, pt, cts) = video_packet(track.codec, packet, multitrack).unwrap();
                if multitrack {
                    let t = [VideoTrack {
                        track_id: track.track_id,
                        fourcc,
                        composition_time: cts,
                        data,
                    }];
                    write_ex_video_multitrack(
                        &mut out,
                        ft,
                        pt,
                        AvMultitrackType::OneTrack,
                        mod_ex,
                        &t,
                    )
                } else {
                    write_ex_video(&mut out, ft, pt, fourcc, cts, mod_ex, data)
                }
            }
            MediaKind::Audio => {
                let pt = audio_packet(packet).unwrap();
                if multitrack {
                    let t = [AudioTrack {
                        track_id: track.track_id,
                        fourcc,
                        data,
                    }];
                    write_ex_audio_multitrack(&mut out, pt, AvMultitrackType::OneTrack, mod_ex, &t)
                } else {
                    write_ex_audio(&mut out, pt, fourcc, mod_ex, data)
                }
            }
        }
        .unwrap();
        out
    }
}
