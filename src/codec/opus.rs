//! The Opus ID header, OpusHead (RFC 7845 §5.1): the Enhanced RTMP Opus sequence start, as
//! FFmpeg sends it (not ISO BMFF's `dOps`).
//!
//! GStreamer's `opusenc` and `matroskademux` put it first in the caps' `streamheader`
//! ([`OpusHead::from_streamheader`]); other sources only give channels, rate and the
//! multistream layout in caps fields ([`OpusHead::new`]).

use super::{Error, Result};

/// Magic signature at the start of an OpusHead packet.
pub const MAGIC: &[u8; 8] = b"OpusHead";
/// Size of an OpusHead with channel mapping family 0 (no channel mapping table).
pub const FAMILY_0_LEN: usize = 19;
/// Most channels an Opus stream can have (the channel count is one byte).
pub const MAX_CHANNELS: u8 = 255;

/// RFC 7845 §5.1.1.2 Vorbis channel order for family 1: (streams, coupled streams, mapping)
/// for 1 to 8 channels.
const VORBIS_LAYOUTS: [(u8, u8, &[u8]); 8] = [
    (1, 0, &[0]),
    (1, 1, &[0, 1]),
    (2, 1, &[0, 2, 1]),
    (2, 2, &[0, 1, 2, 3]),
    (3, 2, &[0, 4, 1, 2, 3]),
    (4, 2, &[0, 4, 1, 2, 3, 5]),
    (4, 3, &[0, 4, 1, 2, 3, 5, 6]),
    (5, 3, &[0, 6, 1, 2, 3, 4, 5, 7]),
];

/// A parsed and validated OpusHead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpusHead {
    /// `Version`: 1 today; any version below 16 is compatible and accepted.
    pub version: u8,
    /// `Output Channel Count` (1..=255).
    pub channels: u8,
    /// `Pre-skip`: samples at 48 kHz to discard from the decoder output at the start.
    pub pre_skip: u16,
    /// `Input Sample Rate` in Hz (informational; 0 = unspecified).
    pub input_sample_rate: u32,
    /// `Output Gain` in Q7.8 dB.
    pub output_gain: i16,
    /// `Channel Mapping Family`: 0 mono/stereo, 1 Vorbis order (up to 8), 2/3 ambisonics,
    /// 255 undefined order.
    pub mapping_family: u8,
    /// `Stream Count` (1 for family 0).
    pub stream_count: u8,
    /// `Coupled Count` (channels - 1 for family 0).
    pub coupled_count: u8,
    /// `Channel Mapping` (empty for family 0, else one entry per channel).
    pub channel_mapping: Vec<u8>,
}

impl OpusHead {
    /// Parses and validates an OpusHead packet. Bytes after the header (allowed for future
    /// minor versions) are ignored.
    pub fn parse(data: &[u8]) -> Result<Self> {
        let fixed = data
            .get(..FAMILY_0_LEN)
            .ok_or(Error::InvalidOpusHead("shorter than 19 bytes"))?;
        if &fixed[..8] != MAGIC {
            return Err(Error::InvalidOpusHead("does not start with \"OpusHead\""));
        }
        let version = fixed[8];
        let channels = fixed[9];
        let pre_skip = u16::from_le_bytes([fixed[10], fixed[11]]);
        let input_sample_rate = u32::from_le_bytes([fixed[12], fixed[13], fixed[14], fixed[15]]);
        let output_gain = i16::from_le_bytes([fixed[16], fixed[17]]);
        let mapping_family = fixed[18];
        let head = if mapping_family == 0 {
            OpusHead {
                version,
                channels,
                pre_skip,
                input_sample_rate,
                output_gain,
                mapping_family,
                stream_count: 1,
                coupled_count: channels.saturating_sub(1),
                channel_mapping: Vec::new(),
            }
        } else {
            let table = data
                .get(FAMILY_0_LEN..FAMILY_0_LEN + 2 + usize::from(channels))
                .ok_or(Error::InvalidOpusHead("channel mapping table is truncated"))?;
            OpusHead {
                version,
                channels,
                pre_skip,
                input_sample_rate,
                output_gain,
                mapping_family,
                stream_count: table[0],
                coupled_count: table[1],
                channel_mapping: table[2..].to_vec(),
            }
        };
        head.validate()?;
        Ok(head)
    }

    /// Finds and parses the OpusHead in a caps `streamheader` (GStreamer puts the ID header
    /// first and OpusTags second).
    pub fn from_streamheader<T: AsRef<[u8]>>(buffers: &[T]) -> Result<Self> {
        let head = buffers
            .iter()
            .map(AsRef::as_ref)
            .find(|b| b.starts_with(MAGIC))
            .ok_or(Error::InvalidOpusHead(
                "the caps streamheader holds no OpusHead",
            ))?;
        Self::parse(head)
    }

    /// Builds an OpusHead from caps fields: `channels`, `rate` (the input sample rate), and
    /// optionally `channel-mapping-family`, `stream-count`, `coupled-count` and
    /// `channel-mapping`.
    ///
    /// Without a family, 1 or 2 channels use family 0 and 3 to 8 channels family 1 with the
    /// Vorbis layout, as `opusenc` does; family 1 without stream counts and mapping uses the
    /// Vorbis layout too. `pre_skip` is not in the caps; 312 (what libopus reports at 48 kHz)
    /// is the usual value when the encoder is unknown.
    pub fn new(
        channels: u8,
        input_sample_rate: u32,
        pre_skip: u16,
        mapping_family: Option<u8>,
        streams: Option<(u8, u8)>,
        channel_mapping: Option<&[u8]>,
    ) -> Result<Self> {
        let family = match mapping_family {
            Some(f) => f,
            None if channels <= 2 => 0,
            None if channels <= 8 => 1,
            None => 255,
        };
        let (stream_count, coupled_count, mapping) = if family == 0 {
            (1, channels.saturating_sub(1), Vec::new())
        } else {
            let vorbis = VORBIS_LAYOUTS
                .get(usize::from(channels).wrapping_sub(1))
                .filter(|_| family == 1);
            let (streams, coupled) = match (streams, vorbis) {
                (Some(s), _) => s,
                (None, Some(&(s, c, _))) => (s, c),
                (None, None) => {
                    return Err(Error::InvalidOpusHead(
                        "stream-count and coupled-count are needed for this channel layout",
                    ));
                }
            };
            let mapping = match (channel_mapping, vorbis) {
                (Some(m), _) => m.to_vec(),
                // The Vorbis mapping only fits the Vorbis stream layout.
                (None, Some(&(s, c, m))) if (s, c) == (streams, coupled) => m.to_vec(),
                (None, _) => {
                    return Err(Error::InvalidOpusHead(
                        "channel-mapping is needed for this channel layout",
                    ));
                }
            };
            (streams, coupled, mapping)
        };
        let head = OpusHead {
            version: 1,
            channels,
            pre_skip,
            input_sample_rate,
            output_gain: 0,
            mapping_family: family,
            stream_count,
            coupled_count,
            channel_mapping: mapping,
        };
        head.validate()?;
        Ok(head)
    }

    /// Checks the RFC 7845 §5.1 constraints.
    fn validate(&self) -> Result<()> {
        if self.version >= 16 {
            return Err(Error::InvalidOpusHead(
                "incompatible version (major version is not 0)",
            ));
        }
        if self.channels == 0 {
            return Err(Error::InvalidOpusHead("channel count is 0"));
        }
        match self.mapping_family {
            0 => {
                if self.channels > 2 {
                    return Err(Error::InvalidOpusHead(
                        "mapping family 0 allows only 1 or 2 channels",
                    ));
                }
                if self.stream_count != 1
                    || self.coupled_count != self.channels - 1
                    || !self.channel_mapping.is_empty()
                {
                    return Err(Error::InvalidOpusHead(
                        "mapping family 0 has one stream and no mapping table",
                    ));
                }
            }
            family => {
                if family == 1 && self.channels > 8 {
                    return Err(Error::InvalidOpusHead(
                        "mapping family 1 allows at most 8 channels",
                    ));
                }
                let decoded = u16::from(self.stream_count) + u16::from(self.coupled_count);
                if self.stream_count == 0 || self.coupled_count > self.stream_count || decoded > 255
                {
                    return Err(Error::InvalidOpusHead(
                        "invalid stream count or coupled count",
                    ));
                }
                if self.channel_mapping.len() != usize::from(self.channels) {
                    return Err(Error::InvalidOpusHead(
                        "channel mapping table length differs from the channel count",
                    ));
                }
                if self
                    .channel_mapping
                    .iter()
                    .any(|&m| m != 255 && u16::from(m) >= decoded)
                {
                    return Err(Error::InvalidOpusHead(
                        "channel mapping refers to a channel no stream decodes",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Serialises the header (19 bytes for family 0, 21 + channels otherwise).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FAMILY_0_LEN + 2 + self.channel_mapping.len());
        out.extend_from_slice(MAGIC);
        out.push(self.version);
        out.push(self.channels);
        out.extend_from_slice(&self.pre_skip.to_le_bytes());
        out.extend_from_slice(&self.input_sample_rate.to_le_bytes());
        out.extend_from_slice(&self.output_gain.to_le_bytes());
        out.push(self.mapping_family);
        if self.mapping_family != 0 {
            out.push(self.stream_count);
            out.push(self.coupled_count);
            out.extend_from_slice(&self.channel_mapping);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::testutil::hex;

    /// opusenc streamheader[0], 48 kHz stereo (what FFmpeg 9 also sends verbatim).
    const STEREO: &str = "4f707573486561640102380180bb0000000000";
    /// opusenc streamheader[0], 48 kHz 5.1: family 1, 4 streams, 2 coupled.
    const SURROUND: &str = "4f707573486561640106380180bb00000000010402000401020305";

    #[test]
    fn parse_opusenc_headers() {
        let h = OpusHead::parse(&hex(STEREO)).unwrap();
        assert_eq!(
            (h.channels, h.pre_skip, h.input_sample_rate),
            (2, 312, 48000)
        );
        assert_eq!(
            (h.mapping_family, h.stream_count, h.coupled_count),
            (0, 1, 1)
        );
        assert_eq!(h.to_bytes(), hex(STEREO));
        let h = OpusHead::parse(&hex(SURROUND)).unwrap();
        assert_eq!((h.channels, h.mapping_family), (6, 1));
        assert_eq!((h.stream_count, h.coupled_count), (4, 2));
        assert_eq!(h.channel_mapping, [0, 4, 1, 2, 3, 5]);
        assert_eq!(h.to_bytes(), hex(SURROUND));
    }

    #[test]
    fn build_from_caps_fields_matches_opusenc() {
        assert_eq!(
            OpusHead::new(2, 48000, 312, None, None, None)
                .unwrap()
                .to_bytes(),
            hex(STEREO)
        );
        assert_eq!(
            OpusHead::new(2, 48000, 312, Some(0), Some((1, 1)), None)
                .unwrap()
                .to_bytes(),
            hex(STEREO)
        );
        let explicit = OpusHead::new(
            6,
            48000,
            312,
            Some(1),
            Some((4, 2)),
            Some(&[0, 4, 1, 2, 3, 5]),
        )
        .unwrap();
        assert_eq!(explicit.to_bytes(), hex(SURROUND));
        let derived = OpusHead::new(6, 48000, 312, None, None, None).unwrap();
        assert_eq!(derived, explicit);
        for channels in 1..=8 {
            let h = OpusHead::new(channels, 48000, 0, Some(1), None, None).unwrap();
            assert_eq!(OpusHead::parse(&h.to_bytes()), Ok(h));
        }
        // Stream counts other than Vorbis need their own mapping.
        assert!(OpusHead::new(6, 48000, 0, Some(1), Some((6, 0)), None).is_err());
        let wide = OpusHead::new(
            12,
            48000,
            0,
            Some(255),
            Some((12, 0)),
            Some(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255]),
        )
        .unwrap();
        assert_eq!(wide.to_bytes().len(), 21 + 12);
        assert!(OpusHead::new(12, 48000, 0, None, None, None).is_err());
        assert!(OpusHead::new(3, 48000, 0, Some(0), None, None).is_err());
        assert!(OpusHead::new(0, 48000, 0, None, None, None).is_err());
        assert!(OpusHead::new(2, 48000, 0, Some(1), Some((1, 2)), None).is_err());
        assert!(OpusHead::new(2, 48000, 0, Some(1), Some((1, 1)), Some(&[0, 2])).is_err());
        assert!(OpusHead::new(2, 48000, 0, Some(1), Some((1, 1)), Some(&[0])).is_err());
    }

    #[test]
    fn streamheader_lookup() {
        let tags = b"OpusTags\x00\x00\x00\x00\x00\x00\x00\x00".to_vec();
        let sh = [hex(SURROUND), tags.clone()];
        assert_eq!(OpusHead::from_streamheader(&sh).unwrap().channels, 6);
        assert!(OpusHead::from_streamheader(&[tags]).is_err());
        assert!(OpusHead::from_streamheader::<Vec<u8>>(&[]).is_err());
    }

    #[test]
    fn parse_errors() {
        let stereo = hex(STEREO);
        for cut in 0..stereo.len() {
            assert!(OpusHead::parse(&stereo[..cut]).is_err());
        }
        let surround = hex(SURROUND);
        for cut in stereo.len()..surround.len() {
            assert!(OpusHead::parse(&surround[..cut]).is_err());
        }
        let mut bad = stereo.clone();
        bad[0] = b'o';
        assert!(OpusHead::parse(&bad).is_err());
        let mut v16 = stereo.clone();
        v16[8] = 16;
        assert!(OpusHead::parse(&v16).is_err());
        let mut three = stereo.clone();
        three[9] = 3;
        assert!(OpusHead::parse(&three).is_err());
        let mut zero = stereo.clone();
        zero[9] = 0;
        assert!(OpusHead::parse(&zero).is_err());
        let mut bad_map = surround.clone();
        let last = bad_map.len() - 1;
        bad_map[last] = 6;
        assert!(OpusHead::parse(&bad_map).is_err());
        // Trailing bytes are allowed.
        let mut longer = stereo;
        longer.push(0);
        assert!(OpusHead::parse(&longer).is_ok());
    }
}
