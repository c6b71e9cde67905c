//! AAC: ADTS frames (ISO/IEC 13818-7 / 14496-3 §1.A.2) and the AudioSpecificConfig
//! (ISO/IEC 14496-3 §1.6.2.1).
//!
//! RTMP carries raw AAC frames without ADTS headers, preceded by an AudioSpecificConfig in the
//! AAC sequence header. [`adts_frames`] strips the headers; [`AudioSpecificConfig::from_adts`]
//! builds the sequence header when upstream only provides ADTS.

use super::bits::{BitWriter, Bits};
use super::{Error, Result};

/// Sample rates by `samplingFrequencyIndex` (ISO/IEC 14496-3 Table 1.18); 13 and 14 are
/// reserved and 15 means an explicit 24-bit rate follows.
pub const SAMPLING_FREQUENCIES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// `samplingFrequencyIndex` escape: an explicit 24-bit sample rate follows.
pub const SAMPLING_FREQUENCY_INDEX_EXPLICIT: u8 = 15;

/// Audio object type of AAC Main.
pub const OBJECT_TYPE_AAC_MAIN: u8 = 1;
/// Audio object type of AAC LC (low complexity), the common one.
pub const OBJECT_TYPE_AAC_LC: u8 = 2;
/// Audio object type of SBR (HE-AAC).
pub const OBJECT_TYPE_SBR: u8 = 5;
/// Audio object type of PS (HE-AAC v2).
pub const OBJECT_TYPE_PS: u8 = 29;

/// Sample rate of a `samplingFrequencyIndex`, `None` for reserved values and the escape.
pub fn sample_rate_from_index(index: u8) -> Option<u32> {
    SAMPLING_FREQUENCIES.get(usize::from(index)).copied()
}

/// `samplingFrequencyIndex` of a sample rate, `None` if it has none (then the explicit form is
/// needed).
pub fn index_from_sample_rate(rate: u32) -> Option<u8> {
    SAMPLING_FREQUENCIES
        .iter()
        .position(|&r| r == rate)
        .map(|i| i as u8)
}

// ---------------------------------------------------------------------------------------------
// ADTS
// ---------------------------------------------------------------------------------------------

/// Length of an ADTS header without CRC.
pub const ADTS_HEADER_LEN: usize = 7;
/// Length of an ADTS header with CRC.
pub const ADTS_HEADER_LEN_CRC: usize = 9;

/// The fields of an ADTS header that matter for remuxing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdtsHeader {
    /// Audio object type: the ADTS `profile` plus one (2 = AAC LC).
    pub object_type: u8,
    /// `sampling_frequency_index` (0..=12).
    pub sampling_frequency_index: u8,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// `channel_configuration` (0 = defined in the stream by a program config element).
    pub channel_configuration: u8,
    /// Frame length in bytes, header included.
    pub frame_length: usize,
    /// Header length in bytes: 7, or 9 when a CRC follows the fixed header.
    pub header_length: usize,
    /// Number of raw data blocks in the frame (1..=4; RTMP expects 1).
    pub raw_data_blocks: u8,
}

/// Parses the ADTS header at the start of `data` (ISO/IEC 14496-3 §1.A.2.2.1).
pub fn parse_adts_header(data: &[u8]) -> Result<AdtsHeader> {
    if data.len() >= 2 && (data[0] != 0xff || data[1] & 0xf0 != 0xf0) {
        return Err(Error::NotAdts);
    }
    let Some(h) = data.get(..ADTS_HEADER_LEN) else {
        return Err(Error::TruncatedAdtsHeader {
            needed: ADTS_HEADER_LEN,
            available: data.len(),
        });
    };
    if h[1] & 0x06 != 0 {
        return Err(Error::InvalidAdts("layer is not 0"));
    }
    let protection_absent = h[1] & 0x01 == 1;
    let header_length = if protection_absent {
        ADTS_HEADER_LEN
    } else {
        ADTS_HEADER_LEN_CRC
    };
    let object_type = (h[2] >> 6) + 1;
    let sampling_frequency_index = (h[2] >> 2) & 0x0f;
    let sample_rate = sample_rate_from_index(sampling_frequency_index).ok_or(
        Error::InvalidAdts("reserved sampling frequency index (13, 14 or 15)"),
    )?;
    let channel_configuration = ((h[2] & 0x01) << 2) | (h[3] >> 6);
    let frame_length =
        (usize::from(h[3] & 0x03) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
    if frame_length < header_length {
        return Err(Error::InvalidAdts(
            "frame length is smaller than the header",
        ));
    }
    if data.len() < header_length {
        return Err(Error::TruncatedAdtsHeader {
            needed: header_length,
            available: data.len(),
        });
    }
    Ok(AdtsHeader {
        object_type,
        sampling_frequency_index,
        sample_rate,
        channel_configuration,
        frame_length,
        header_length,
        raw_data_blocks: (h[6] & 0x03) + 1,
    })
}

/// Iterator over the frames of an ADTS buffer, see [`adts_frames`].
#[derive(Debug, Clone)]
pub struct AdtsFrames<'a> {
    rest: &'a [u8],
    /// Set after the first error so the iterator ends instead of repeating it.
    failed: bool,
}

impl<'a> Iterator for AdtsFrames<'a> {
    type Item = Result<(AdtsHeader, &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let result = self.next_frame();
        self.failed = result.is_err();
        Some(result)
    }
}

impl<'a> AdtsFrames<'a> {
    fn next_frame(&mut self) -> Result<(AdtsHeader, &'a [u8])> {
        let header = parse_adts_header(self.rest)?;
        let Some(frame) = self.rest.get(..header.frame_length) else {
            return Err(Error::TruncatedAdts {
                declared: header.frame_length,
                available: self.rest.len(),
            });
        };
        self.rest = &self.rest[header.frame_length..];
        Ok((header, &frame[header.header_length..]))
    }
}

/// Iterates over the ADTS frames in a buffer, yielding each header and the raw AAC payload after
/// the header (and CRC). A buffer may hold several frames; a truncated or invalid frame yields
/// an error and ends the iteration.
///
/// With more than one raw data block per frame ([`AdtsHeader::raw_data_blocks`] > 1) the
/// payload holds all blocks (and, with CRC, their position table), which RTMP cannot carry as
/// one frame; callers should reject such streams.
pub fn adts_frames(data: &[u8]) -> AdtsFrames<'_> {
    AdtsFrames {
        rest: data,
        failed: false,
    }
}

// ---------------------------------------------------------------------------------------------
// AudioSpecificConfig
// ---------------------------------------------------------------------------------------------

/// The AAC AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1): the AAC `codec_data`, sent as the
/// body of the AAC sequence header.
///
/// Only the leading fields are decoded. A parsed config remembers its original bytes, so
/// [`to_bytes`](Self::to_bytes) returns them unchanged (SBR/PS signalling and the
/// GASpecificConfig pass through untouched) as long as the decoded fields are not modified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioSpecificConfig {
    /// Audio object type (2 = AAC LC, 5 = SBR, 29 = PS; values from 32 use the escape form).
    pub object_type: u8,
    /// `samplingFrequencyIndex`, or 15 when the sample rate is given explicitly.
    pub sampling_frequency_index: u8,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// `channelConfiguration` (0 = defined by a program config element).
    pub channel_configuration: u8,
    /// The parsed bytes with the decoded fields as they were; empty for built configs.
    original: Option<(Vec<u8>, [u32; 4])>,
}

impl AudioSpecificConfig {
    /// A config for the given object type, sample rate and channel configuration. Sample rates
    /// outside the standard table use the explicit 24-bit form. The format can express object
    /// types 1..=95 and sample rates below 2^24.
    pub fn new(object_type: u8, sample_rate: u32, channel_configuration: u8) -> Self {
        AudioSpecificConfig {
            object_type,
            sampling_frequency_index: index_from_sample_rate(sample_rate)
                .unwrap_or(SAMPLING_FREQUENCY_INDEX_EXPLICIT),
            sample_rate,
            channel_configuration,
            original: None,
        }
    }

    /// The config that describes the frames following an ADTS header.
    pub fn from_adts(header: &AdtsHeader) -> Self {
        AudioSpecificConfig {
            object_type: header.object_type,
            sampling_frequency_index: header.sampling_frequency_index,
            sample_rate: header.sample_rate,
            channel_configuration: header.channel_configuration,
            original: None,
        }
    }

    /// Parses an AudioSpecificConfig, handling the escaped object type (31) and the explicit
    /// sample rate (index 15).
    pub fn parse(data: &[u8]) -> Result<Self> {
        const TRUNCATED: Error = Error::InvalidAudioSpecificConfig("too short");
        let mut r = Bits::new(data);
        let mut object_type = r.bits(5).ok_or(TRUNCATED)?;
        if object_type == 31 {
            object_type = 32 + r.bits(6).ok_or(TRUNCATED)?;
        }
        if object_type == 0 {
            return Err(Error::InvalidAudioSpecificConfig("audio object type is 0"));
        }
        let sampling_frequency_index = r.bits(4).ok_or(TRUNCATED)? as u8;
        let sample_rate = if sampling_frequency_index == SAMPLING_FREQUENCY_INDEX_EXPLICIT {
            r.bits(24).ok_or(TRUNCATED)?
        } else {
            sample_rate_from_index(sampling_frequency_index).ok_or(
                Error::InvalidAudioSpecificConfig("reserved sampling frequency index"),
            )?
        };
        if sample_rate == 0 {
            return Err(Error::InvalidAudioSpecificConfig("sample rate is 0"));
        }
        let channel_configuration = r.bits(4).ok_or(TRUNCATED)? as u8;
        let mut config = AudioSpecificConfig {
            object_type: object_type as u8,
            sampling_frequency_index,
            sample_rate,
            channel_configuration,
            original: None,
        };
        config.original = Some((data.to_vec(), config.fields()));
        Ok(config)
    }

    fn fields(&self) -> [u32; 4] {
        [
            self.object_type.into(),
            self.sampling_frequency_index.into(),
            self.sample_rate,
            self.channel_configuration.into(),
        ]
    }

    /// Serialises the config: the original bytes of a parsed, unmodified config; otherwise the
    /// decoded fields followed by a default GASpecificConfig (1024-sample frames, no core coder,
    /// no extension), e.g. `12 10` for AAC LC, 44.1 kHz, stereo.
    pub fn to_bytes(&self) -> Vec<u8> {
        if let Some((bytes, fields)) = &self.original
            && *fields == self.fields()
        {
            return bytes.clone();
        }
        let mut w = BitWriter::default();
        if self.object_type >= 32 {
            w.put(5, 31);
            w.put(6, u32::from(self.object_type - 32));
        } else {
            w.put(5, u32::from(self.object_type));
        }
        // Use the table index only when it really means this rate, else the explicit form.
        match sample_rate_from_index(self.sampling_frequency_index) {
            Some(rate) if rate == self.sample_rate => {
                w.put(4, u32::from(self.sampling_frequency_index));
            }
            _ => {
                w.put(4, u32::from(SAMPLING_FREQUENCY_INDEX_EXPLICIT));
                w.put(24, self.sample_rate);
            }
        }
        w.put(4, u32::from(self.channel_configuration));
        // GASpecificConfig: frameLengthFlag, dependsOnCoreCoder, extensionFlag.
        w.put(3, 0);
        w.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first two ADTS frames ffmpeg's AAC encoder writes for 48 kHz stereo LC
    /// (93 and 131 bytes, no CRC).
    const FFMPEG_ADTS_48K_STEREO: [&str; 5] = [
        "fff14c800bbffcde02004c61766335392e33372e31303000424aaa58313d6ae75e3cddea6a5c8bb0104414996a8b5f26",
        "8609a69b2f1aaaabe534d978f1e3c7e59668a2e3c78fcb2e58a2e34a355ab9d78f377a9a9722ec000000000380fff14c",
        "80107ffc21456cfffffcc5929646592965237faf5c78ff5fdfceafff8fdfcebdbffa7e3ce86d4ecdbae63306aa4eab3b",
        "9a5bd14a74c9595a2c3b1fcb65ff96c11468086de99048289e775d6988e6ab11086267ca267ca2612a1cb09f80f38b38",
        "1213303468d1adfebd71e3fd7f7f3abffe3f7f3af6ffe9f8f3a00000000001c0",
    ];

    fn hex(parts: &[&str]) -> Vec<u8> {
        let s: String = parts.concat();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// AAC LC, 44.1 kHz, stereo, no CRC, frame_length 10 (7 + 3 payload bytes).
    const LC_44K_STEREO_FRAME: [u8; 10] =
        [0xff, 0xf1, 0x50, 0x80, 0x01, 0x5f, 0xfc, 0xa1, 0xa2, 0xa3];
    /// Same format with CRC (protection_absent = 0): 9-byte header, frame_length 11.
    const LC_44K_STEREO_CRC_FRAME: [u8; 11] = [
        0xff, 0xf0, 0x50, 0x80, 0x01, 0x7f, 0xfc, 0xc1, 0xc2, 0xb1, 0xb2,
    ];

    #[test]
    fn sampling_frequency_table() {
        assert_eq!(sample_rate_from_index(3), Some(48000));
        assert_eq!(sample_rate_from_index(4), Some(44100));
        assert_eq!(sample_rate_from_index(12), Some(7350));
        assert_eq!(sample_rate_from_index(13), None);
        assert_eq!(sample_rate_from_index(15), None);
        assert_eq!(index_from_sample_rate(22050), Some(7));
        assert_eq!(index_from_sample_rate(44000), None);
    }

    #[test]
    fn adts_header_without_crc() {
        let header = parse_adts_header(&LC_44K_STEREO_FRAME).unwrap();
        assert_eq!(
            header,
            AdtsHeader {
                object_type: 2,
                sampling_frequency_index: 4,
                sample_rate: 44100,
                channel_configuration: 2,
                frame_length: 10,
                header_length: 7,
                raw_data_blocks: 1,
            }
        );
    }

    #[test]
    fn adts_header_with_crc() {
        let header = parse_adts_header(&LC_44K_STEREO_CRC_FRAME).unwrap();
        assert_eq!((header.header_length, header.frame_length), (9, 11));
        let frames: Vec<_> = adts_frames(&LC_44K_STEREO_CRC_FRAME)
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(frames, vec![(header, &[0xb1, 0xb2][..])]);
    }

    #[test]
    fn adts_real_frames_several_per_buffer() {
        let data = hex(&FFMPEG_ADTS_48K_STEREO);
        let frames: Vec<_> = adts_frames(&data).collect::<Result<_>>().unwrap();
        assert_eq!(frames.len(), 2);
        for (header, payload) in &frames {
            assert_eq!((header.object_type, header.sample_rate), (2, 48000));
            assert_eq!(header.channel_configuration, 2);
            assert_eq!(payload.len(), header.frame_length - 7);
        }
        assert_eq!(frames[0].0.frame_length, 93);
        assert_eq!(frames[1].0.frame_length, 131);
        assert_eq!(frames[0].1, &data[7..93]);
        assert_eq!(
            AudioSpecificConfig::from_adts(&frames[0].0).to_bytes(),
            [0x11, 0x90]
        );
    }

    #[test]
    fn adts_mixed_crc_frames_in_one_buffer() {
        let mut data = LC_44K_STEREO_FRAME.to_vec();
        data.extend_from_slice(&LC_44K_STEREO_CRC_FRAME);
        data.extend_from_slice(&LC_44K_STEREO_FRAME);
        let payloads: Vec<&[u8]> = adts_frames(&data)
            .map(|f| f.map(|(_, p)| p))
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(
            payloads,
            vec![&[0xa1, 0xa2, 0xa3][..], &[0xb1, 0xb2], &[0xa1, 0xa2, 0xa3]]
        );
    }

    #[test]
    fn adts_truncated_frame() {
        // frame_length 371 with 120 bytes present.
        let mut data = vec![0xff, 0xf1, 0x50, 0x80, 0x2e, 0x7f, 0xfc];
        data.resize(120, 0x55);
        let mut frames = adts_frames(&data);
        let err = frames.next().unwrap().unwrap_err();
        assert_eq!(
            err,
            Error::TruncatedAdts {
                declared: 371,
                available: 120
            }
        );
        assert_eq!(
            err.to_string(),
            "truncated ADTS frame: the header says 371 bytes, 120 present; put aacparse before \
             the sink so that each buffer is one whole frame."
        );
        assert!(frames.next().is_none());

        // A complete frame followed by a cut-off one.
        let mut data = LC_44K_STEREO_FRAME.to_vec();
        data.extend_from_slice(&LC_44K_STEREO_FRAME[..8]);
        let results: Vec<_> = adts_frames(&data).collect();
        assert_eq!(results.len(), 2);
        assert!(results[0].is_ok());
        assert_eq!(
            results[1],
            Err(Error::TruncatedAdts {
                declared: 10,
                available: 8
            })
        );
    }

    #[test]
    fn adts_header_errors() {
        let mut bad = LC_44K_STEREO_FRAME;
        bad[1] = 0xe1; // sync word broken
        assert_eq!(parse_adts_header(&bad), Err(Error::NotAdts));
        let mut bad = LC_44K_STEREO_FRAME;
        bad[1] = 0xf3; // layer 1
        assert_eq!(
            parse_adts_header(&bad),
            Err(Error::InvalidAdts("layer is not 0"))
        );
        let mut bad = LC_44K_STEREO_FRAME;
        bad[2] = 0x7c; // sampling_frequency_index 15
        assert!(matches!(
            parse_adts_header(&bad),
            Err(Error::InvalidAdts(_))
        ));
        let mut bad = LC_44K_STEREO_FRAME;
        bad[4] = 0x00;
        bad[5] = 0xdf; // frame_length 6 < 7
        assert!(matches!(
            parse_adts_header(&bad),
            Err(Error::InvalidAdts(_))
        ));
        assert_eq!(
            parse_adts_header(&LC_44K_STEREO_FRAME[..5]),
            Err(Error::TruncatedAdtsHeader {
                needed: 7,
                available: 5
            })
        );
        assert_eq!(
            parse_adts_header(&LC_44K_STEREO_CRC_FRAME[..8]),
            Err(Error::TruncatedAdtsHeader {
                needed: 9,
                available: 8
            })
        );
        assert!(parse_adts_header(&[]).is_err());
        assert_eq!(adts_frames(&[]).count(), 0);
    }

    #[test]
    fn asc_simple_lc() {
        let asc = AudioSpecificConfig::parse(&[0x12, 0x10]).unwrap();
        assert_eq!(
            (
                asc.object_type,
                asc.sampling_frequency_index,
                asc.sample_rate,
                asc.channel_configuration
            ),
            (2, 4, 44100, 2)
        );
        assert_eq!(asc.to_bytes(), [0x12, 0x10]);
        assert_eq!(
            AudioSpecificConfig::new(2, 44100, 2).to_bytes(),
            [0x12, 0x10]
        );
        let header = parse_adts_header(&LC_44K_STEREO_FRAME).unwrap();
        assert_eq!(
            AudioSpecificConfig::from_adts(&header).to_bytes(),
            [0x12, 0x10]
        );
    }

    #[test]
    fn asc_sbr_signalling_passes_through() {
        // Explicit hierarchical HE-AAC: SBR, 24 kHz core, stereo, extension 48 kHz, then LC.
        let explicit = [0x2b, 0x11, 0x88];
        let asc = AudioSpecificConfig::parse(&explicit).unwrap();
        assert_eq!(
            (asc.object_type, asc.sample_rate, asc.channel_configuration),
            (5, 24000, 2)
        );
        assert_eq!(asc.to_bytes(), explicit);
        // Backward-compatible signalling: LC config (24 kHz core) plus sync extension 0x2b7
        // announcing SBR at 48 kHz.
        let implicit = [0x13, 0x10, 0x56, 0xe5, 0x98];
        let asc = AudioSpecificConfig::parse(&implicit).unwrap();
        assert_eq!((asc.object_type, asc.sample_rate), (2, 24000));
        assert_eq!(asc.to_bytes(), implicit);
        // Modified fields are re-encoded instead.
        let mut changed = asc.clone();
        changed.channel_configuration = 1;
        assert_eq!(changed.to_bytes(), [0x13, 0x08]);
    }

    #[test]
    fn asc_escape_forms() {
        // Object type 42 via the escape (31, then 6 bits), 48 kHz, stereo.
        let built = AudioSpecificConfig::new(42, 48000, 2);
        assert_eq!(built.to_bytes(), [0xf9, 0x46, 0x40]);
        let parsed = AudioSpecificConfig::parse(&[0xf9, 0x46, 0x40]).unwrap();
        assert_eq!(
            (
                parsed.object_type,
                parsed.sample_rate,
                parsed.channel_configuration
            ),
            (42, 48000, 2)
        );
        // Explicit 24-bit sample rate (index 15).
        let built = AudioSpecificConfig::new(2, 12345, 1);
        assert_eq!(built.sampling_frequency_index, 15);
        let bytes = built.to_bytes();
        assert_eq!(bytes, [0x17, 0x80, 0x18, 0x1c, 0x88]);
        let parsed = AudioSpecificConfig::parse(&bytes).unwrap();
        assert_eq!(
            (
                parsed.object_type,
                parsed.sampling_frequency_index,
                parsed.sample_rate,
                parsed.channel_configuration
            ),
            (2, 15, 12345, 1)
        );
        assert_eq!(parsed.to_bytes(), bytes);
    }

    #[test]
    fn asc_errors() {
        for bad in [
            &[][..],
            &[0x12],             // ends inside the channel configuration
            &[0x00, 0x10],       // object type 0
            &[0x16, 0x90],       // sampling frequency index 13 (reserved)
            &[0x17, 0x80, 0x00], // explicit rate cut off
            &[0xf9],             // escaped object type cut off
        ] {
            assert!(
                matches!(
                    AudioSpecificConfig::parse(bad),
                    Err(Error::InvalidAudioSpecificConfig(_))
                ),
                "{bad:02x?}"
            );
        }
    }
}
