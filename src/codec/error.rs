//! Errors of the media-format code: one variant per way a media buffer or record can be
//! unusable, each worded for the user who reads it in a GStreamer error message.

/// Result type of the `codec` module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a media buffer, codec configuration or FLV tag body could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An Annex-B (byte-stream) H.264 buffer holds no NAL unit at all.
    #[error(
        "H.264 buffer holds no NAL unit (no 00 00 01 start code); is the stream really byte-stream (Annex-B)?"
    )]
    NoNalUnits,

    /// The NAL length-prefix size of an AVC (length-prefixed) stream is not 1, 2 or 4.
    #[error("invalid H.264 NAL length size {0}: must be 1, 2 or 4 bytes")]
    InvalidNalLengthSize(usize),

    /// A length prefix in an AVC (length-prefixed) buffer points past the end of the buffer.
    #[error(
        "truncated H.264 NAL unit at byte {offset}: {needed} bytes announced, {available} present; is the stream really AVC (length-prefixed)?"
    )]
    TruncatedNal {
        /// Offset of the length prefix (or of the cut-off prefix) in the buffer.
        offset: usize,
        /// Bytes the prefix announces (or the prefix size, if the prefix itself is cut off).
        needed: usize,
        /// Bytes left in the buffer at that point.
        available: usize,
    },

    /// A NAL unit is too large to be written with a 4-byte length prefix.
    #[error("H.264 NAL unit of {0} bytes is too large for a 4-byte length prefix")]
    NalTooLarge(usize),

    /// No sequence parameter set is known where one is required.
    #[error("H.264 stream has no SPS before its first keyframe")]
    MissingSps,

    /// No picture parameter set is known where one is required.
    #[error("H.264 stream has no PPS before its first keyframe")]
    MissingPps,

    /// A sequence parameter set could not be parsed.
    #[error("invalid H.264 SPS: {0}")]
    InvalidSps(&'static str),

    /// An avcC record (AVCDecoderConfigurationRecord, the H.264 `codec_data`) is malformed.
    #[error("invalid H.264 codec_data (avcC): {0}")]
    InvalidAvcConfig(&'static str),

    /// A buffer that should start with an ADTS header does not.
    #[error(
        "not an ADTS frame: sync word 0xFFF missing; is the AAC stream raw (stream-format=raw) instead of ADTS?"
    )]
    NotAdts,

    /// An ADTS header holds an impossible or unsupported value.
    #[error("invalid ADTS header: {0}")]
    InvalidAdts(&'static str),

    /// A buffer ends inside an ADTS header.
    #[error("truncated ADTS header: {available} bytes present, {needed} needed")]
    TruncatedAdtsHeader {
        /// Header bytes required (7, or 9 with CRC).
        needed: usize,
        /// Bytes present.
        available: usize,
    },

    /// A buffer ends inside an ADTS frame.
    #[error("truncated ADTS frame: header says {declared} bytes, {available} present")]
    TruncatedAdts {
        /// Frame length from the header, header included.
        declared: usize,
        /// Bytes present from the start of the frame.
        available: usize,
    },

    /// An AAC AudioSpecificConfig (the AAC `codec_data`) is malformed.
    #[error("invalid AAC codec_data (AudioSpecificConfig): {0}")]
    InvalidAudioSpecificConfig(&'static str),

    /// An FLV audio or video tag body ends inside one of its fields.
    #[error("truncated FLV tag body: {field} needs {needed} bytes, {available} left")]
    TruncatedTag {
        /// Name of the field being read, e.g. "video FourCC".
        field: &'static str,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left in the body.
        available: usize,
    },

    /// An FLV tag body is empty (RTMP's "silence" message has no header to parse).
    #[error("empty FLV tag body")]
    EmptyTag,

    /// An FLV tag field holds a reserved or unsupported value.
    #[error("unsupported {field} value {value} in FLV tag")]
    UnsupportedValue {
        /// Name of the field, e.g. "video frame type".
        field: &'static str,
        /// The value found.
        value: u32,
    },

    /// An Enhanced RTMP tag names a codec FourCC this module does not know (or a video FourCC
    /// in an audio tag, or the reverse).
    #[error("unknown or unsupported codec FourCC \"{}\" in FLV tag", .0.escape_ascii())]
    UnsupportedFourCc([u8; 4]),

    /// An Enhanced RTMP multitrack tag holds more tracks than [`crate::codec::flv::MAX_TRACKS`].
    #[error(
        "FLV multitrack tag has more than {} tracks",
        crate::codec::flv::MAX_TRACKS
    )]
    TooManyTracks,

    /// A builder was asked for an FLV tag the format cannot express.
    #[error("cannot build FLV tag: {0}")]
    CannotBuild(&'static str),

    /// An H.265 (HEVC) NAL unit, parameter set or access unit is malformed.
    #[error("invalid H.265 (HEVC) data: {0}")]
    InvalidHevc(&'static str),

    /// An hvcC record (HEVCDecoderConfigurationRecord, the H.265 `codec_data`) is malformed.
    #[error("invalid H.265 codec_data (hvcC): {0}")]
    InvalidHevcConfig(&'static str),

    /// An AV1 OBU or sequence header is malformed.
    #[error("invalid AV1 data: {0}")]
    InvalidAv1(&'static str),

    /// An av1C record (AV1CodecConfigurationRecord, the AV1 `codec_data`) is malformed.
    #[error("invalid AV1 codec_data (av1C): {0}")]
    InvalidAv1Config(&'static str),

    /// A VP9 frame header or vpcC record is malformed.
    #[error("invalid VP9 data: {0}")]
    InvalidVp9(&'static str),

    /// An Opus ID header (OpusHead, RFC 7845 §5.1) is malformed or missing.
    #[error("invalid Opus header (OpusHead): {0}")]
    InvalidOpusHead(&'static str),

    /// A FLAC stream header or STREAMINFO block is malformed or missing.
    #[error("invalid FLAC header (STREAMINFO): {0}")]
    InvalidFlac(&'static str),

    /// An AC-3 or E-AC-3 syncframe header is malformed.
    #[error("invalid AC-3/E-AC-3 frame header: {0}")]
    InvalidAc3(&'static str),

    /// An MPEG audio (MP3) frame header is malformed.
    #[error("invalid MP3 frame header: {0}")]
    InvalidMp3(&'static str),
}
