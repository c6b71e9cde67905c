//! Errors of the media-format code: one variant per way a media buffer or record can be
//! unusable, each worded for the user who reads it in a GStreamer error message: a plain
//! sentence (no Rust `Debug` text) that says what is wrong and what to do. Texts start
//! lower-case (they are embedded in other sentences) and end with a full stop or a question
//! mark.

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
    #[error(
        "invalid H.264 NAL length size {0}: it must be 1, 2 or 4 bytes; the codec_data in the \
         caps is damaged (put h264parse before the sink)."
    )]
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
    #[error(
        "H.264 NAL unit of {0} bytes is too large for a 4-byte length prefix; lower the bitrate."
    )]
    NalTooLarge(usize),

    /// No sequence parameter set is known where one is required.
    #[error(
        "H.264 stream has no SPS before its first keyframe; make the encoder send SPS and PPS \
         with keyframes (h264parse config-interval=-1 inserts them)."
    )]
    MissingSps,

    /// No picture parameter set is known where one is required.
    #[error(
        "H.264 stream has no PPS before its first keyframe; make the encoder send SPS and PPS \
         with keyframes (h264parse config-interval=-1 inserts them)."
    )]
    MissingPps,

    /// A sequence parameter set could not be parsed.
    #[error("invalid H.264 SPS ({0}); check the encoder's output.")]
    InvalidSps(&'static str),

    /// An avcC record (AVCDecoderConfigurationRecord, the H.264 `codec_data`) is malformed.
    #[error(
        "invalid H.264 codec_data (avcC): {0}; check the caps upstream (h264parse rebuilds them)."
    )]
    InvalidAvcConfig(&'static str),

    /// A buffer that should start with an ADTS header does not.
    #[error(
        "not an ADTS frame: sync word 0xFFF missing; is the AAC stream raw (stream-format=raw) instead of ADTS?"
    )]
    NotAdts,

    /// An ADTS header holds an impossible or unsupported value.
    #[error("invalid ADTS header ({0}); check the AAC encoder's output.")]
    InvalidAdts(&'static str),

    /// A buffer ends inside an ADTS header.
    #[error(
        "truncated ADTS header: {available} bytes present, {needed} needed; put aacparse before \
         the sink so that each buffer is one whole frame."
    )]
    TruncatedAdtsHeader {
        /// Header bytes required (7, or 9 with CRC).
        needed: usize,
        /// Bytes present.
        available: usize,
    },

    /// A buffer ends inside an ADTS frame.
    #[error(
        "truncated ADTS frame: the header says {declared} bytes, {available} present; put \
         aacparse before the sink so that each buffer is one whole frame."
    )]
    TruncatedAdts {
        /// Frame length from the header, header included.
        declared: usize,
        /// Bytes present from the start of the frame.
        available: usize,
    },

    /// An AAC AudioSpecificConfig (the AAC `codec_data`) is malformed.
    #[error(
        "invalid AAC codec_data (AudioSpecificConfig): {0}; check the caps upstream (aacparse \
         rebuilds them)."
    )]
    InvalidAudioSpecificConfig(&'static str),

    /// An FLV audio or video tag body ends inside one of its fields.
    #[error(
        "truncated FLV tag body: {field} needs {needed} bytes, {available} left; pass whole tag \
         bodies."
    )]
    TruncatedTag {
        /// Name of the field being read, e.g. "video FourCC".
        field: &'static str,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left in the body.
        available: usize,
    },

    /// An FLV tag body is empty (RTMP's "silence" message has no header to parse).
    #[error("empty FLV tag body; pass whole tag bodies.")]
    EmptyTag,

    /// An FLV tag field holds a reserved or unsupported value.
    #[error("unsupported {field} value {value} in FLV tag; this tag cannot be sent as is.")]
    UnsupportedValue {
        /// Name of the field, e.g. "video frame type".
        field: &'static str,
        /// The value found.
        value: u32,
    },

    /// An Enhanced RTMP tag names a codec FourCC this module does not know (or a video FourCC
    /// in an audio tag, or the reverse).
    #[error(
        "unknown or unsupported codec FourCC '{}' in FLV tag; Enhanced RTMP defines avc1, \
         hvc1, av01, vp09, vp08 and vvc1 for video, mp4a, Opus, fLaC, ac-3, ec-3 and .mp3 for \
         audio.",
        fourcc_text(.0)
    )]
    UnsupportedFourCc([u8; 4]),

    /// An Enhanced RTMP multitrack tag holds more tracks than [`crate::codec::flv::MAX_TRACKS`].
    #[error(
        "FLV multitrack tag has more than {} tracks; send fewer tracks.",
        crate::codec::flv::MAX_TRACKS
    )]
    TooManyTracks,

    /// A builder was asked for an FLV tag the format cannot express.
    #[error("cannot build FLV tag: {0}.")]
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

/// A FourCC as written (`x264`), or as hex when it is not printable ASCII.
fn fourcc_text(fourcc: &[u8; 4]) -> String {
    if fourcc.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        fourcc.iter().map(|b| char::from(*b)).collect()
    } else {
        format!("0x{:08x}", u32::from_be_bytes(*fourcc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_is_a_sentence_without_debug_output() {
        let samples = [
            Error::NoNalUnits,
            Error::InvalidNalLengthSize(3),
            Error::TruncatedNal {
                offset: 4,
                needed: 100,
                available: 20,
            },
            Error::NalTooLarge(1 << 33),
            Error::MissingSps,
            Error::MissingPps,
            Error::InvalidSps("seq_parameter_set_id above 31"),
            Error::InvalidAvcConfig("too short"),
            Error::NotAdts,
            Error::InvalidAdts("layer is not 0"),
            Error::TruncatedAdtsHeader {
                needed: 7,
                available: 3,
            },
            Error::TruncatedAdts {
                declared: 371,
                available: 120,
            },
            Error::InvalidAudioSpecificConfig("sample rate is 0"),
            Error::TruncatedTag {
                field: "video FourCC",
                needed: 4,
                available: 1,
            },
            Error::EmptyTag,
            Error::UnsupportedValue {
                field: "video frame type",
                value: 7,
            },
            Error::UnsupportedFourCc(*b"x\x00\"4"),
            Error::UnsupportedFourCc(*b"x264"),
            Error::TooManyTracks,
            Error::CannotBuild("ModEx data must be 1..=65536 bytes"),
        ];
        assert!(
            Error::UnsupportedFourCc(*b"x\x00\"4")
                .to_string()
                .contains("FourCC '0x78002234'")
        );
        for e in samples {
            let t = e.to_string();
            assert!(t.ends_with(['.', '?']), "not a sentence: {t}");
            // A builder's texts state the rule the caller broke.
            let rule = matches!(e, Error::CannotBuild(_));
            assert!(
                rule || t.contains("; "),
                "says nothing about what to do: {t}"
            );
            for debug in ["Some(", "None", "Err(", "{ ", "[", "\\\""] {
                assert!(!t.contains(debug), "Debug text in: {t}");
            }
        }
    }
}
