//! MPEG audio frame headers (ISO/IEC 11172-3 §2.4.1.3, 13818-3 and the MPEG 2.5 extension):
//! sample rate, channels and frame size, for onMetaData and for choosing between the legacy
//! FLV MP3 header and the Enhanced RTMP `.mp3` FourCC.

use super::{Error, Result};

/// Size of an MPEG audio frame header (without CRC).
pub const HEADER_LEN: usize = 4;

/// The MPEG audio version of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MpegVersion {
    /// MPEG-1 (32, 44.1, 48 kHz).
    Mpeg1,
    /// MPEG-2 LSF (16, 22.05, 24 kHz).
    Mpeg2,
    /// MPEG 2.5 (8, 11.025, 12 kHz).
    Mpeg25,
}

/// `mode` of a frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelMode {
    /// Stereo.
    Stereo,
    /// Joint stereo.
    JointStereo,
    /// Dual channel (two mono programs).
    DualChannel,
    /// Single channel.
    Mono,
}

/// A parsed MPEG audio frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// MPEG version.
    pub version: MpegVersion,
    /// Layer: 1, 2 or 3 (MP3).
    pub layer: u8,
    /// A 16-bit CRC follows the header.
    pub has_crc: bool,
    /// Bit rate in kbit/s; 0 for free format.
    pub bitrate_kbps: u32,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// `padding_bit`.
    pub padding: bool,
    /// Channel mode.
    pub channel_mode: ChannelMode,
    /// Channels: 1 for mono, else 2.
    pub channels: u8,
    /// Samples per channel in the frame (384, 576 or 1152).
    pub samples: u32,
    /// Frame size in bytes, header included; `None` for free format.
    pub frame_size: Option<usize>,
}

/// Bit rates in kbit/s by index 1..=14: MPEG-1 layers I, II, III, then MPEG-2/2.5 layer I and
/// layers II/III.
const BITRATES: [[u32; 14]; 5] = [
    [
        32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448,
    ],
    [
        32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384,
    ],
    [
        32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
    ],
    [
        32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256,
    ],
    [8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
];

/// Parses the 4-byte frame header at the start of `data`.
pub fn parse_header(data: &[u8]) -> Result<FrameHeader> {
    let &[b0, b1, b2, b3, ..] = data else {
        return Err(Error::InvalidMp3("shorter than its 4-byte header"));
    };
    if b0 != 0xff || b1 & 0xe0 != 0xe0 {
        return Err(Error::InvalidMp3(
            "frame sync missing; is the stream really MPEG audio and framed (parsed)?",
        ));
    }
    let version = match (b1 >> 3) & 0x03 {
        0 => MpegVersion::Mpeg25,
        2 => MpegVersion::Mpeg2,
        3 => MpegVersion::Mpeg1,
        _ => return Err(Error::InvalidMp3("reserved MPEG version")),
    };
    let layer = match (b1 >> 1) & 0x03 {
        1 => 3,
        2 => 2,
        3 => 1,
        _ => return Err(Error::InvalidMp3("reserved layer")),
    };
    let bitrate_index = usize::from(b2 >> 4);
    let sample_rate = match ((b2 >> 2) & 0x03, version) {
        (3, _) => return Err(Error::InvalidMp3("reserved sample rate index")),
        (i, MpegVersion::Mpeg1) => [44_100, 48_000, 32_000][usize::from(i)],
        (i, MpegVersion::Mpeg2) => [22_050, 24_000, 16_000][usize::from(i)],
        (i, MpegVersion::Mpeg25) => [11_025, 12_000, 8_000][usize::from(i)],
    };
    let table = match (version, layer) {
        (MpegVersion::Mpeg1, l) => usize::from(l - 1),
        (_, 1) => 3,
        _ => 4,
    };
    let bitrate_kbps = match bitrate_index {
        0 => 0,
        15 => return Err(Error::InvalidMp3("invalid bit rate index 15")),
        i => BITRATES[table][i - 1],
    };
    let samples = match (layer, version) {
        (1, _) => 384,
        (3, MpegVersion::Mpeg2 | MpegVersion::Mpeg25) => 576,
        _ => 1152,
    };
    let padding = b2 & 0x02 != 0;
    let frame_size = (bitrate_kbps > 0).then(|| {
        let bits_per_second = u64::from(bitrate_kbps) * 1000;
        if layer == 1 {
            // Layer I counts 4-byte slots.
            ((12 * bits_per_second / u64::from(sample_rate)) as usize + usize::from(padding)) * 4
        } else {
            (u64::from(samples) / 8 * bits_per_second / u64::from(sample_rate)) as usize
                + usize::from(padding)
        }
    });
    let channel_mode = match b3 >> 6 {
        0 => ChannelMode::Stereo,
        1 => ChannelMode::JointStereo,
        2 => ChannelMode::DualChannel,
        _ => ChannelMode::Mono,
    };
    Ok(FrameHeader {
        version,
        layer,
        has_crc: b1 & 0x01 == 0,
        bitrate_kbps,
        sample_rate,
        padding,
        channel_mode,
        channels: if channel_mode == ChannelMode::Mono {
            1
        } else {
            2
        },
        samples,
        frame_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_headers() {
        // MPEG-1 layer III, 128 kbit/s, 44.1 kHz, joint stereo (lame's usual first frame).
        let h = parse_header(&[0xff, 0xfb, 0x90, 0x64]).unwrap();
        assert_eq!(
            (h.version, h.layer, h.bitrate_kbps),
            (MpegVersion::Mpeg1, 3, 128)
        );
        assert_eq!((h.sample_rate, h.channels, h.samples), (44_100, 2, 1152));
        assert_eq!(h.channel_mode, ChannelMode::JointStereo);
        assert_eq!(h.frame_size, Some(417));
        assert!(!h.has_crc);
        // Padded: one byte more.
        assert_eq!(
            parse_header(&[0xff, 0xfb, 0x92, 0x64]).unwrap().frame_size,
            Some(418)
        );
        // MPEG-2 layer III, 64 kbit/s, 22.05 kHz, mono, CRC.
        let h = parse_header(&[0xff, 0xf2, 0x80, 0xc0]).unwrap();
        assert_eq!(
            (h.version, h.sample_rate, h.channels),
            (MpegVersion::Mpeg2, 22_050, 1)
        );
        assert_eq!((h.samples, h.frame_size, h.has_crc), (576, Some(208), true));
        // MPEG 2.5 layer III, 8 kHz, 8 kbit/s.
        let h = parse_header(&[0xff, 0xe3, 0x18, 0xc4]).unwrap();
        assert_eq!(
            (h.version, h.sample_rate, h.bitrate_kbps),
            (MpegVersion::Mpeg25, 8_000, 8)
        );
        assert_eq!(h.frame_size, Some(72));
        // MPEG-1 layer II 48 kHz 192 kbit/s, layer I 32 kHz 32 kbit/s, free format.
        let h = parse_header(&[0xff, 0xfd, 0xa4, 0x00]).unwrap();
        assert_eq!((h.layer, h.bitrate_kbps, h.frame_size), (2, 192, Some(576)));
        let h = parse_header(&[0xff, 0xff, 0x18, 0x00]).unwrap();
        assert_eq!((h.layer, h.samples, h.frame_size), (1, 384, Some(48)));
        assert_eq!(
            parse_header(&[0xff, 0xfb, 0x00, 0x00]).unwrap().frame_size,
            None
        );
    }

    #[test]
    fn errors() {
        for bad in [
            &[0xff, 0xfb, 0x90][..],
            &[0xfe, 0xfb, 0x90, 0x64],
            &[0xff, 0xeb, 0x90, 0x64],
            &[0xff, 0xf9, 0x90, 0x64],
            &[0xff, 0xfb, 0xf0, 0x64],
            &[0xff, 0xfb, 0x9c, 0x64],
        ] {
            assert!(parse_header(bad).is_err(), "{bad:02x?}");
        }
    }
}
