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

use super::{Error, Result};

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

/// Writes the ModEx entries; the last one announces `next_packet_type` (Enhanced RTMP: the
/// low nibble after each ModEx block is the following packet type).
fn write_mod_ex(out: &mut Vec<u8>, mod_ex: &[ModEx<'_>], next_packet_type: u8) {
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
            out.push(size_minus_one as u8);
        } else {
            out.push(0xff);
            out.extend_from_slice(&(size_minus_one as u16).to_be_bytes());
        }
        out.extend_from_slice(data);
        let next = if i + 1 < mod_ex.len() {
            MOD_EX
        } else {
            next_packet_type
        };
        out.push((mod_ex_type << 4) | next);
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

/// The header of a single-track Enhanced RTMP video tag without ModEx, returned as a fixed
/// array and its used length, so a frame can be sent as header + borrowed payload.
///
/// The layout is `1 | frame_type | packet_type`, the FourCC, and for `CodedFrames` of avc1,
/// hvc1 and vvc1 the SI24 composition time (clamped); `composition_time` is ignored otherwise.
pub fn ex_video_header(
    frame_type: FrameType,
    packet_type: VideoPacketType,
    fourcc: FourCc,
    composition_time: i32,
) -> Result<([u8; 8], usize)> {
    check_plain_video_packet_type(packet_type)?;
    check_not_command(frame_type, packet_type)?;
    check_video_fourcc(fourcc)?;
    let mut header = [0u8; 8];
    header[0] = ex_video_first_byte(frame_type, packet_type.into(), false);
    header[1..5].copy_from_slice(&fourcc);
    if packet_type == VideoPacketType::CodedFrames && carries_composition_time(fourcc) {
        header[5..8].copy_from_slice(&si24_bytes(composition_time));
        Ok((header, 8))
    } else {
        Ok((header, 5))
    }
}

/// The 5-byte header of a single-track Enhanced RTMP audio tag without ModEx:
/// `9 << 4 | packet_type`, then the FourCC.
pub fn ex_audio_header(packet_type: AudioPacketType, fourcc: FourCc) -> Result<[u8; 5]> {
    check_plain_audio_packet_type(packet_type)?;
    check_audio_fourcc(fourcc)?;
    let [a, b, c, d] = fourcc;
    Ok([ex_audio_first_byte(packet_type.into(), false), a, b, c, d])
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
    let (header, len) = ex_video_header(frame_type, packet_type, fourcc, composition_time)?;
    check_mod_ex(mod_ex)?;
    out.reserve(len + body.len() + 8 * mod_ex.len());
    out.push(ex_video_first_byte(
        frame_type,
        packet_type.into(),
        !mod_ex.is_empty(),
    ));
    write_mod_ex(out, mod_ex, packet_type.into());
    out.extend_from_slice(&header[1..len]);
    out.extend_from_slice(body);
    Ok(())
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

/// Checks the track list of a multitrack message against its type.
fn check_tracks(multitrack: AvMultitrackType, fourccs: &[FourCc]) -> Result<()> {
    match (multitrack, fourccs.len()) {
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
    if multitrack != AvMultitrackType::ManyTracksManyCodecs
        && fourccs.iter().any(|f| *f != fourccs[0])
    {
        return Err(Error::CannotBuild(
            "tracks with different codecs need ManyTracksManyCodecs",
        ));
    }
    Ok(())
}

/// Writes one track's prefix: FourCC (ManyTracksManyCodecs only), track id, and the UI24 size
/// of what follows (not for OneTrack).
fn write_track_prefix(
    out: &mut Vec<u8>,
    multitrack: AvMultitrackType,
    fourcc: FourCc,
    track_id: u8,
    size: usize,
) {
    if multitrack == AvMultitrackType::ManyTracksManyCodecs {
        out.extend_from_slice(&fourcc);
    }
    out.push(track_id);
    if multitrack != AvMultitrackType::OneTrack {
        out.extend_from_slice(&(size as u32).to_be_bytes()[1..]);
    }
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
    check_plain_video_packet_type(packet_type)?;
    check_not_command(frame_type, packet_type)?;
    check_mod_ex(mod_ex)?;
    let fourccs: Vec<FourCc> = tracks
        .iter()
        .take(MAX_TRACKS + 1)
        .map(|t| t.fourcc)
        .collect();
    check_tracks(multitrack, &fourccs)?;
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

    out.push(ex_video_first_byte(
        frame_type,
        VideoPacketType::Multitrack.into(),
        !mod_ex.is_empty(),
    ));
    write_mod_ex(out, mod_ex, VideoPacketType::Multitrack.into());
    out.push((u8::from(multitrack) << 4) | u8::from(packet_type));
    if multitrack != AvMultitrackType::ManyTracksManyCodecs {
        out.extend_from_slice(&tracks[0].fourcc);
    }
    for t in tracks {
        let cts = has_cts(t);
        let size = t.data.len() + if cts { 3 } else { 0 };
        write_track_prefix(out, multitrack, t.fourcc, t.track_id, size);
        if cts {
            out.extend_from_slice(&si24_bytes(t.composition_time));
        }
        out.extend_from_slice(t.data);
    }
    Ok(())
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
    let header = ex_audio_header(packet_type, fourcc)?;
    check_mod_ex(mod_ex)?;
    out.push(ex_audio_first_byte(packet_type.into(), !mod_ex.is_empty()));
    write_mod_ex(out, mod_ex, packet_type.into());
    out.extend_from_slice(&header[1..]);
    out.extend_from_slice(body);
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
    check_plain_audio_packet_type(packet_type)?;
    check_mod_ex(mod_ex)?;
    let fourccs: Vec<FourCc> = tracks
        .iter()
        .take(MAX_TRACKS + 1)
        .map(|t| t.fourcc)
        .collect();
    check_tracks(multitrack, &fourccs)?;
    for t in tracks {
        check_audio_fourcc(t.fourcc)?;
        if multitrack != AvMultitrackType::OneTrack && t.data.len() > UI24_MAX {
            return Err(Error::CannotBuild(
                "a track is larger than 16 MiB (UI24 size)",
            ));
        }
    }

    out.push(ex_audio_first_byte(
        AudioPacketType::Multitrack.into(),
        !mod_ex.is_empty(),
    ));
    write_mod_ex(out, mod_ex, AudioPacketType::Multitrack.into());
    out.push((u8::from(multitrack) << 4) | u8::from(packet_type));
    if multitrack != AvMultitrackType::ManyTracksManyCodecs {
        out.extend_from_slice(&tracks[0].fourcc);
    }
    for t in tracks {
        write_track_prefix(out, multitrack, t.fourcc, t.track_id, t.data.len());
        out.extend_from_slice(t.data);
    }
    Ok(())
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
