//! FLAC stream headers: the STREAMINFO metadata block (RFC 9639 §8.2) and the Enhanced RTMP
//! FLAC sequence start, "fLaC" followed by the STREAMINFO metadata block.
//!
//! GStreamer hands STREAMINFO over in the caps' `streamheader`, in one of two layouts:
//! `flacenc`/`flacparse` put the Ogg FLAC mapping header (0x7F "FLAC", version, header count,
//! "fLaC", STREAMINFO block) first; `matroskademux` gives "fLaC" and then each metadata block
//! as its own buffer. [`StreamInfo::from_streamheader`] takes either.

use super::{Error, Result};

/// The FLAC stream marker.
pub const MAGIC: &[u8; 4] = b"fLaC";
/// Size of the STREAMINFO block body.
pub const STREAMINFO_LEN: usize = 34;
/// Metadata block type of STREAMINFO.
pub const BLOCK_TYPE_STREAMINFO: u8 = 0;
/// Start of the Ogg FLAC mapping header: 0x7F "FLAC".
pub const OGG_MAPPING_MAGIC: &[u8; 5] = b"\x7fFLAC";
/// Size of the sequence start [`StreamInfo::sequence_start`] builds.
pub const SEQUENCE_START_LEN: usize = 4 + 4 + STREAMINFO_LEN;

/// A parsed and validated STREAMINFO block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    /// Minimum block size in samples (16..=65535).
    pub min_block_size: u16,
    /// Maximum block size in samples (at least the minimum).
    pub max_block_size: u16,
    /// Minimum frame size in bytes (24 bits), 0 unknown.
    pub min_frame_size: u32,
    /// Maximum frame size in bytes (24 bits), 0 unknown.
    pub max_frame_size: u32,
    /// Sample rate in Hz (20 bits, not 0).
    pub sample_rate: u32,
    /// Channels (1..=8).
    pub channels: u8,
    /// Bits per sample (4..=32).
    pub bits_per_sample: u8,
    /// Total samples per channel (36 bits), 0 unknown.
    pub total_samples: u64,
    /// MD5 of the unencoded audio, all zeros when unknown.
    pub md5: [u8; 16],
}

impl StreamInfo {
    /// Parses the 34-byte STREAMINFO body at the start of `data`.
    pub fn parse(data: &[u8]) -> Result<Self> {
        let d: &[u8; STREAMINFO_LEN] =
            data.get(..STREAMINFO_LEN)
                .and_then(|d| d.try_into().ok())
                .ok_or(Error::InvalidFlac("STREAMINFO shorter than 34 bytes"))?;
        let packed = u64::from_be_bytes([d[10], d[11], d[12], d[13], d[14], d[15], d[16], d[17]]);
        let mut md5 = [0; 16];
        md5.copy_from_slice(&d[18..]);
        let info = StreamInfo {
            min_block_size: u16::from_be_bytes([d[0], d[1]]),
            max_block_size: u16::from_be_bytes([d[2], d[3]]),
            min_frame_size: u32::from_be_bytes([0, d[4], d[5], d[6]]),
            max_frame_size: u32::from_be_bytes([0, d[7], d[8], d[9]]),
            sample_rate: (packed >> 44) as u32,
            channels: ((packed >> 41) & 0x07) as u8 + 1,
            bits_per_sample: ((packed >> 36) & 0x1f) as u8 + 1,
            total_samples: packed & 0x0f_ffff_ffff,
            md5,
        };
        if info.min_block_size < 16 || info.max_block_size < info.min_block_size {
            return Err(Error::InvalidFlac(
                "block sizes are below 16 or the maximum is below the minimum",
            ));
        }
        if info.sample_rate == 0 {
            return Err(Error::InvalidFlac("sample rate is 0"));
        }
        if info.bits_per_sample < 4 {
            return Err(Error::InvalidFlac("fewer than 4 bits per sample"));
        }
        Ok(info)
    }

    /// Serialises the 34-byte STREAMINFO body; fields are masked to their widths (channels
    /// and bits per sample are stored minus one).
    pub fn to_bytes(&self) -> [u8; STREAMINFO_LEN] {
        let mut out = [0; STREAMINFO_LEN];
        out[0..2].copy_from_slice(&self.min_block_size.to_be_bytes());
        out[2..4].copy_from_slice(&self.max_block_size.to_be_bytes());
        out[4..7].copy_from_slice(&self.min_frame_size.to_be_bytes()[1..]);
        out[7..10].copy_from_slice(&self.max_frame_size.to_be_bytes()[1..]);
        let packed = u64::from(self.sample_rate & 0x0f_ffff) << 44
            | u64::from(self.channels.wrapping_sub(1) & 0x07) << 41
            | u64::from(self.bits_per_sample.wrapping_sub(1) & 0x1f) << 36
            | (self.total_samples & 0x0f_ffff_ffff);
        out[10..18].copy_from_slice(&packed.to_be_bytes());
        out[18..].copy_from_slice(&self.md5);
        out
    }

    /// The Enhanced RTMP FLAC sequence start: "fLaC", a metadata block header (last block,
    /// type STREAMINFO, length 34) and STREAMINFO.
    ///
    /// FFmpeg 9 sends the bare 34-byte STREAMINFO instead (its internal extradata); its FLV
    /// reader takes both forms.
    pub fn sequence_start(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SEQUENCE_START_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&[0x80 | BLOCK_TYPE_STREAMINFO, 0, 0, STREAMINFO_LEN as u8]);
        out.extend_from_slice(&self.to_bytes());
        out
    }

    /// Finds STREAMINFO in one FLAC configuration buffer: the Ogg FLAC mapping header,
    /// "fLaC" followed by metadata blocks (the spec's sequence start), a bare STREAMINFO
    /// metadata block (header included), or the bare 34-byte STREAMINFO body FFmpeg sends.
    pub fn from_codec_config(data: &[u8]) -> Result<Self> {
        let blocks = if let Some(rest) = data.strip_prefix(OGG_MAPPING_MAGIC) {
            // major and minor version, number of header packets, then "fLaC".
            rest.get(4..)
                .and_then(|r| r.strip_prefix(MAGIC))
                .ok_or(Error::InvalidFlac(
                    "Ogg FLAC mapping header without the \"fLaC\" marker",
                ))?
        } else if let Some(rest) = data.strip_prefix(MAGIC) {
            rest
        } else if data.len() == STREAMINFO_LEN {
            return Self::parse(data);
        } else {
            data
        };
        match blocks {
            [t, 0, 0, 34, body @ ..] if t & 0x7f == BLOCK_TYPE_STREAMINFO => Self::parse(body),
            _ => Err(Error::InvalidFlac(
                "the first metadata block is not a 34-byte STREAMINFO",
            )),
        }
    }

    /// Finds STREAMINFO in a caps `streamheader` (see the module documentation for the
    /// layouts GStreamer uses); a bare "fLaC" buffer is skipped.
    pub fn from_streamheader<T: AsRef<[u8]>>(buffers: &[T]) -> Result<Self> {
        let mut last_error = Error::InvalidFlac("the caps streamheader holds no STREAMINFO");
        for b in buffers.iter().map(AsRef::as_ref) {
            if b == MAGIC {
                continue;
            }
            match Self::from_codec_config(b) {
                Ok(info) => return Ok(info),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::testutil::hex;

    /// flacenc streamheader[0], 44.1 kHz stereo 16-bit.
    const FLACENC_HEADER: &str = "7f464c414301000002664c614300000022120012000000000000000ac442f00000000000000000000000000000000000000000";

    #[test]
    fn parse_flacenc_streamheader() {
        let info = StreamInfo::from_codec_config(&hex(FLACENC_HEADER)).unwrap();
        assert_eq!((info.min_block_size, info.max_block_size), (4608, 4608));
        assert_eq!(
            (info.sample_rate, info.channels, info.bits_per_sample),
            (44100, 2, 16)
        );
        assert_eq!(
            (info.total_samples, info.min_frame_size, info.max_frame_size),
            (0, 0, 0)
        );
        let body = &hex(FLACENC_HEADER)[17..];
        assert_eq!(info.to_bytes(), body);
        let start = info.sequence_start();
        assert_eq!(start.len(), SEQUENCE_START_LEN);
        assert_eq!(&start[..8], b"fLaC\x80\x00\x00\x22");
        assert_eq!(&start[8..], body);
        // Every accepted form gives the same STREAMINFO.
        assert_eq!(StreamInfo::from_codec_config(&start), Ok(info.clone()));
        assert_eq!(StreamInfo::from_codec_config(body), Ok(info.clone()));
        assert_eq!(StreamInfo::from_codec_config(&start[4..]), Ok(info.clone()));
        // matroskademux layout: "fLaC", STREAMINFO block, VORBIS_COMMENT block.
        let mkv = [b"fLaC".to_vec(), start[4..].to_vec(), hex("840000020000")];
        assert_eq!(StreamInfo::from_streamheader(&mkv), Ok(info.clone()));
        let gst = [hex(FLACENC_HEADER), hex("840000020000")];
        assert_eq!(StreamInfo::from_streamheader(&gst), Ok(info));
    }

    #[test]
    fn round_trip_all_fields() {
        let info = StreamInfo {
            min_block_size: 16,
            max_block_size: 65535,
            min_frame_size: 0x12_3456,
            max_frame_size: 0xff_ffff,
            sample_rate: 655_350,
            channels: 8,
            bits_per_sample: 32,
            total_samples: 0x0f_ffff_ffff,
            md5: [0xa5; 16],
        };
        assert_eq!(StreamInfo::parse(&info.to_bytes()), Ok(info));
    }

    #[test]
    fn errors() {
        let body = hex(FLACENC_HEADER)[17..].to_vec();
        assert!(StreamInfo::parse(&body[..33]).is_err());
        let mut small_block = body.clone();
        small_block[1] = 0;
        small_block[0] = 0;
        assert!(StreamInfo::parse(&small_block).is_err());
        let mut no_rate = body.clone();
        no_rate[10] = 0;
        no_rate[11] = 0;
        no_rate[12] &= 0x0f;
        assert!(StreamInfo::parse(&no_rate).is_err());
        let mut bps3 = body.clone();
        bps3[12] &= 0xfe;
        bps3[13] = (bps3[13] & 0x0f) | 0x20;
        assert!(StreamInfo::parse(&bps3).is_err());
        assert!(StreamInfo::from_codec_config(b"fLaC\x04\x00\x00\x22").is_err());
        assert!(StreamInfo::from_codec_config(b"\x7fFLAC\x01\x00\x00\x02fLa").is_err());
        assert!(StreamInfo::from_codec_config(&[]).is_err());
        assert!(StreamInfo::from_streamheader(&[b"fLaC".to_vec()]).is_err());
        assert!(StreamInfo::from_streamheader::<Vec<u8>>(&[]).is_err());
        let hdr = hex(FLACENC_HEADER);
        for cut in 0..hdr.len() {
            assert!(StreamInfo::from_codec_config(&hdr[..cut]).is_err() || cut == 34);
        }
    }
}
