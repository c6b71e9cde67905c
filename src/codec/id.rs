//! Which codec a track carries, and how each one is named on the wire: the one list every layer
//! (tag builders, `connect` negotiation, onMetaData, the element's caps) agrees on.

use super::flv::{self, FourCc};

/// Video or audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MediaKind {
    /// RTMP message type 9.
    Video,
    /// RTMP message type 8.
    Audio,
}

impl MediaKind {
    /// Lower-case name for logs and messages.
    pub fn name(self) -> &'static str {
        match self {
            MediaKind::Video => "video",
            MediaKind::Audio => "audio",
        }
    }
}

/// A codec this crate can publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// H.264 / AVC (legacy FLV codec id 7 on track 0, `avc1` otherwise).
    H264,
    /// H.265 / HEVC (`hvc1`).
    H265,
    /// AV1 (`av01`).
    Av1,
    /// VP9 (`vp09`).
    Vp9,
    /// AAC (legacy sound format 10 on track 0, `mp4a` otherwise).
    Aac,
    /// Opus (`Opus`).
    Opus,
    /// FLAC (`fLaC`).
    Flac,
    /// AC-3 (`ac-3`).
    Ac3,
    /// E-AC-3 (`ec-3`).
    Eac3,
    /// MP3 (legacy sound format 2, or `.mp3` where the legacy header cannot say the rate).
    Mp3,
}

impl Codec {
    /// Every codec, video first.
    pub const ALL: [Codec; 10] = [
        Codec::H264,
        Codec::H265,
        Codec::Av1,
        Codec::Vp9,
        Codec::Aac,
        Codec::Opus,
        Codec::Flac,
        Codec::Ac3,
        Codec::Eac3,
        Codec::Mp3,
    ];

    /// Video or audio.
    pub fn kind(self) -> MediaKind {
        match self {
            Codec::H264 | Codec::H265 | Codec::Av1 | Codec::Vp9 => MediaKind::Video,
            _ => MediaKind::Audio,
        }
    }

    /// The Enhanced RTMP FourCC.
    pub fn fourcc(self) -> FourCc {
        match self {
            Codec::H264 => flv::AVC1,
            Codec::H265 => flv::HVC1,
            Codec::Av1 => flv::AV01,
            Codec::Vp9 => flv::VP09,
            Codec::Aac => flv::MP4A,
            Codec::Opus => flv::OPUS,
            Codec::Flac => flv::FLAC,
            Codec::Ac3 => flv::AC3,
            Codec::Eac3 => flv::EAC3,
            Codec::Mp3 => flv::MP3,
        }
    }

    /// The codec whose FourCC is `fourcc`, if this crate publishes it.
    pub fn from_fourcc(fourcc: FourCc) -> Option<Codec> {
        Codec::ALL.into_iter().find(|c| c.fourcc() == fourcc)
    }

    /// The FourCC as text (`"hvc1"`), as it appears in `fourCcList` and in messages.
    pub fn fourcc_str(self) -> &'static str {
        match self {
            Codec::H264 => "avc1",
            Codec::H265 => "hvc1",
            Codec::Av1 => "av01",
            Codec::Vp9 => "vp09",
            Codec::Aac => "mp4a",
            Codec::Opus => "Opus",
            Codec::Flac => "fLaC",
            Codec::Ac3 => "ac-3",
            Codec::Eac3 => "ec-3",
            Codec::Mp3 => ".mp3",
        }
    }

    /// The name people use (`"HEVC"`), for messages such as
    /// "server does not accept HEVC (hvc1)".
    pub fn name(self) -> &'static str {
        match self {
            Codec::H264 => "H.264",
            Codec::H265 => "HEVC",
            Codec::Av1 => "AV1",
            Codec::Vp9 => "VP9",
            Codec::Aac => "AAC",
            Codec::Opus => "Opus",
            Codec::Flac => "FLAC",
            Codec::Ac3 => "AC-3",
            Codec::Eac3 => "E-AC-3",
            Codec::Mp3 => "MP3",
        }
    }

    /// The FourCC as the big-endian number Enhanced RTMP puts in onMetaData's
    /// `videocodecid`/`audiocodecid` (`hvc1` = 1752589105).
    pub fn fourcc_number(self) -> u32 {
        u32::from_be_bytes(self.fourcc())
    }

    /// Whether track 0 of this codec is sent in the legacy FLV form (H.264 and AAC; MP3 too,
    /// when its sample rate fits the legacy header, which the caller decides).
    pub fn legacy_on_track_0(self) -> bool {
        matches!(self, Codec::H264 | Codec::Aac)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fourcc_text_number_and_lookup_agree() {
        for c in Codec::ALL {
            assert_eq!(c.fourcc_str().as_bytes(), &c.fourcc());
            assert_eq!(Codec::from_fourcc(c.fourcc()), Some(c));
        }
        assert_eq!(Codec::H265.fourcc_number(), 1_752_589_105);
        assert_eq!(Codec::Av1.fourcc_number(), 1_635_135_537);
        assert_eq!(Codec::from_fourcc(*b"vvc1"), None);
        assert_eq!(Codec::Opus.kind(), MediaKind::Audio);
        assert_eq!(Codec::Vp9.kind(), MediaKind::Video);
    }
}
