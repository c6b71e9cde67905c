//! VP9 frames: the uncompressed frame header (VP9 bitstream §6.2) and the vpcC record
//! (VPCodecConfigurationRecord, "VP Codec ISO Media File Format Binding" §2.2).
//!
//! VP9 has no codec configuration in-band, so the Enhanced RTMP sequence start is built from
//! the first keyframe's header plus what the caps say about colour: [`parse_frame_header`] and
//! [`VpCodecConfigurationRecord::from_keyframe`]. Field choices follow FFmpeg's `vpcc.c`, the
//! reference publisher: the level derived from the picture size when unknown, 4:2:0 chroma
//! "colocated" unless the caps say it is sited left, matrix coefficients from the frame's
//! colour space when the caps give none.

use super::bits::Bits;
use super::colour::ColourDescription;
use super::{Error, Result};

/// The VP9 frame sync code of keyframes and intra-only frames.
pub const SYNC_CODE: [u8; 3] = [0x49, 0x83, 0x42];
/// VP9 `color_space` value for RGB (`CS_RGB`).
pub const CS_RGB: u8 = 7;

/// vpcC `chromaSubsampling`: 4:2:0 with chroma sited left (vertically between luma rows).
pub const CHROMA_420_VERTICAL: u8 = 0;
/// vpcC `chromaSubsampling`: 4:2:0 with chroma colocated with the top-left luma sample.
pub const CHROMA_420_COLOCATED: u8 = 1;
/// vpcC `chromaSubsampling`: 4:2:2.
pub const CHROMA_422: u8 = 2;
/// vpcC `chromaSubsampling`: 4:4:4.
pub const CHROMA_444: u8 = 3;

/// Largest codec initialization data a vpcC may carry (its size field is 16 bits).
pub const MAX_CODEC_INITIALIZATION_DATA: usize = u16::MAX as usize;

/// `color_config()` of a keyframe or intra-only frame (VP9 §6.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColorConfig {
    /// Bit depth: 8, 10 or 12.
    pub bit_depth: u8,
    /// `color_space` (3 bits): 0 unknown, 1 BT.601, 2 BT.709, 3 SMPTE-170, 4 SMPTE-240,
    /// 5 BT.2020, 6 reserved, 7 sRGB.
    pub color_space: u8,
    /// `color_range`: full (studio swing when false).
    pub full_range: bool,
    /// `subsampling_x`.
    pub subsampling_x: bool,
    /// `subsampling_y`.
    pub subsampling_y: bool,
}

/// The start of a VP9 uncompressed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// `Profile` (0..=3).
    pub profile: u8,
    /// `show_existing_frame`: the frame only shows an earlier one (nothing else is coded).
    pub show_existing_frame: bool,
    /// `frame_type == KEY_FRAME`.
    pub keyframe: bool,
    /// `show_frame`.
    pub show_frame: bool,
    /// `error_resilient_mode`.
    pub error_resilient: bool,
    /// `intra_only` (always false for keyframes).
    pub intra_only: bool,
    /// Colour configuration, present for keyframes and intra-only frames.
    pub color: Option<ColorConfig>,
    /// Frame width and height, present for keyframes and intra-only frames.
    pub frame_size: Option<(u32, u32)>,
    /// Render width and height, present for keyframes and intra-only frames.
    pub render_size: Option<(u32, u32)>,
}

fn read_color_config(r: &mut Bits<'_>, profile: u8) -> Option<Result<ColorConfig>> {
    let bit_depth = if profile >= 2 {
        if r.bit()? { 12 } else { 10 }
    } else {
        8
    };
    let color_space = r.u8(3)?;
    let (full_range, subsampling_x, subsampling_y);
    if color_space != CS_RGB {
        full_range = r.bit()?;
        if profile == 1 || profile == 3 {
            subsampling_x = r.bit()?;
            subsampling_y = r.bit()?;
            // reserved_zero
            r.skip(1)?;
        } else {
            (subsampling_x, subsampling_y) = (true, true);
        }
    } else {
        full_range = true;
        if profile == 1 || profile == 3 {
            (subsampling_x, subsampling_y) = (false, false);
            r.skip(1)?;
        } else {
            return Some(Err(Error::InvalidVp9(
                "RGB colour space in profile 0 or 2 (RGB needs profile 1 or 3)",
            )));
        }
    }
    Some(Ok(ColorConfig {
        bit_depth,
        color_space,
        full_range,
        subsampling_x,
        subsampling_y,
    }))
}

fn read_size(r: &mut Bits<'_>) -> Option<(u32, u32)> {
    Some((r.bits(16)? + 1, r.bits(16)? + 1))
}

/// Parses the uncompressed header of a VP9 frame (the first frame of a superframe) as far as
/// its colour configuration and size: complete for keyframes and intra-only frames, up to
/// `intra_only` for inter frames.
pub fn parse_frame_header(data: &[u8]) -> Result<FrameHeader> {
    parse_frame_header_bits(&mut Bits::new(data))
        .ok_or(Error::InvalidVp9("frame header is truncated"))?
}

fn parse_frame_header_bits(r: &mut Bits<'_>) -> Option<Result<FrameHeader>> {
    if r.u8(2)? != 2 {
        return Some(Err(Error::InvalidVp9(
            "frame marker missing; is the stream really VP9?",
        )));
    }
    let low = r.u8(1)?;
    let high = r.u8(1)?;
    let profile = (high << 1) | low;
    if profile == 3 && r.bit()? {
        return Some(Err(Error::InvalidVp9("reserved profile bit set")));
    }
    let mut header = FrameHeader {
        profile,
        show_existing_frame: r.bit()?,
        keyframe: false,
        show_frame: false,
        error_resilient: false,
        intra_only: false,
        color: None,
        frame_size: None,
        render_size: None,
    };
    if header.show_existing_frame {
        return Some(Ok(header));
    }
    header.keyframe = !r.bit()?;
    header.show_frame = r.bit()?;
    header.error_resilient = r.bit()?;
    let coded_intra = if header.keyframe {
        true
    } else {
        header.intra_only = !header.show_frame && r.bit()?;
        if !header.error_resilient {
            // reset_frame_context
            r.skip(2)?;
        }
        header.intra_only
    };
    if !coded_intra {
        return Some(Ok(header));
    }
    let sync = [r.u8(8)?, r.u8(8)?, r.u8(8)?];
    if sync != SYNC_CODE {
        return Some(Err(Error::InvalidVp9("frame sync code missing")));
    }
    header.color = Some(if header.keyframe || profile > 0 {
        match read_color_config(r, profile)? {
            Ok(c) => c,
            Err(e) => return Some(Err(e)),
        }
    } else {
        // Intra-only frames of profile 0 are implicitly 8-bit BT.601 4:2:0 (VP9 §6.2).
        ColorConfig {
            bit_depth: 8,
            color_space: 1,
            full_range: false,
            subsampling_x: true,
            subsampling_y: true,
        }
    });
    if header.intra_only {
        // refresh_frame_flags
        r.skip(8)?;
    }
    let size = read_size(r)?;
    header.frame_size = Some(size);
    header.render_size = Some(if r.bit()? { read_size(r)? } else { size });
    Some(Ok(header))
}

/// The VP9 level FFmpeg writes when the stream does not say (`vpcc.c`): the lowest level whose
/// maximum picture size fits (frame rate unknown), 0 when none does.
pub fn level_from_picture_size(width: u32, height: u32) -> u8 {
    // (level, max luma picture size) of VP9 levels 1 to 6.2 (VP9 level definitions).
    const LEVELS: [(u8, u64); 14] = [
        (10, 36_864),
        (11, 73_728),
        (20, 122_880),
        (21, 245_760),
        (30, 552_960),
        (31, 983_040),
        (40, 2_228_224),
        (41, 2_228_224),
        (50, 8_912_896),
        (51, 8_912_896),
        (52, 8_912_896),
        (60, 35_651_584),
        (61, 35_651_584),
        (62, 35_651_584),
    ];
    let size = u64::from(width) * u64::from(height);
    if size == 0 {
        return 0;
    }
    LEVELS
        .iter()
        .find(|&&(_, max)| size <= max)
        .map_or(0, |&(level, _)| level)
}

/// ISO/IEC 23091-2 matrix coefficients for a VP9 `color_space`, as FFmpeg's VP9 decoder maps
/// them (BT.601 as BT.470BG, 5); reserved (6) is unspecified here.
pub fn matrix_coefficients_for_color_space(color_space: u8) -> u8 {
    match color_space {
        1 => 5,
        2 => 1,
        3 => 6,
        4 => 7,
        5 => 9,
        CS_RGB => 0,
        _ => ColourDescription::UNSPECIFIED_CODE,
    }
}

/// The vpcC record (VPCodecConfigurationRecord, version 1), sent with its 4-byte FullBox
/// version and flags as the body of the VP9 sequence start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpCodecConfigurationRecord {
    /// `profile`.
    pub profile: u8,
    /// `level`: ten times the level number (31 = level 3.1), 0 unknown.
    pub level: u8,
    /// `bitDepth` (4 bits): 8, 10 or 12.
    pub bit_depth: u8,
    /// `chromaSubsampling` (3 bits), one of the `CHROMA_*` constants.
    pub chroma_subsampling: u8,
    /// `videoFullRangeFlag`.
    pub video_full_range: bool,
    /// `colourPrimaries`, `transferCharacteristics` and `matrixCoefficients`.
    pub colour: ColourDescription,
    /// `codecIntializationData` (empty for VP9; at most
    /// [`MAX_CODEC_INITIALIZATION_DATA`] bytes).
    pub codec_initialization_data: Vec<u8>,
}

/// Size of the FullBox version/flags prefix.
const FULLBOX_PREFIX: [u8; 4] = [1, 0, 0, 0];

impl VpCodecConfigurationRecord {
    /// Parses a vpcC body: FullBox version 1 and flags 0, then the record. Trailing bytes after
    /// the record are ignored.
    pub fn parse(data: &[u8]) -> Result<Self> {
        let (prefix, rest) = data.split_at_checked(4).ok_or(Error::InvalidVp9(
            "vpcC shorter than its 4-byte version and flags",
        ))?;
        if prefix != FULLBOX_PREFIX {
            return Err(Error::InvalidVp9(
                "vpcC version is not 1 or its flags are not 0",
            ));
        }
        Self::parse_record(rest)
    }

    /// Parses the record alone, without the FullBox version and flags.
    pub fn parse_record(data: &[u8]) -> Result<Self> {
        let &[
            profile,
            level,
            b2,
            primaries,
            transfer,
            matrix,
            s0,
            s1,
            ref init @ ..,
        ] = data
        else {
            return Err(Error::InvalidVp9("vpcC record shorter than 8 bytes"));
        };
        let bit_depth = b2 >> 4;
        if !matches!(bit_depth, 8 | 10 | 12) {
            return Err(Error::InvalidVp9("vpcC bit depth is not 8, 10 or 12"));
        }
        let init_len = usize::from(u16::from_be_bytes([s0, s1]));
        let init = init.get(..init_len).ok_or(Error::InvalidVp9(
            "vpcC codec initialization data is truncated",
        ))?;
        Ok(VpCodecConfigurationRecord {
            profile,
            level,
            bit_depth,
            chroma_subsampling: (b2 >> 1) & 0x07,
            video_full_range: b2 & 1 != 0,
            colour: ColourDescription {
                primaries,
                transfer_characteristics: transfer,
                matrix_coefficients: matrix,
            },
            codec_initialization_data: init.to_vec(),
        })
    }

    /// Serialises the FullBox version/flags (1, 0) and the record, as FFmpeg sends it. Codec
    /// initialization data beyond [`MAX_CODEC_INITIALIZATION_DATA`] bytes is cut off.
    pub fn to_bytes(&self) -> Vec<u8> {
        let init = &self.codec_initialization_data[..self
            .codec_initialization_data
            .len()
            .min(MAX_CODEC_INITIALIZATION_DATA)];
        let mut out = Vec::with_capacity(12 + init.len());
        out.extend_from_slice(&FULLBOX_PREFIX);
        out.push(self.profile);
        out.push(self.level);
        out.push(
            (self.bit_depth & 0x0f) << 4
                | (self.chroma_subsampling & 0x07) << 1
                | u8::from(self.video_full_range),
        );
        out.push(self.colour.primaries);
        out.push(self.colour.transfer_characteristics);
        out.push(self.colour.matrix_coefficients);
        out.extend_from_slice(&(init.len() as u16).to_be_bytes());
        out.extend_from_slice(init);
        out
    }

    /// Builds the record from a keyframe (or intra-only frame) header.
    ///
    /// `colour` comes from the caps; without it primaries and transfer are unspecified (2) and
    /// the matrix follows the frame's colour space, which is what FFmpeg writes for a stream
    /// whose container says nothing. `chroma_sited_left` selects
    /// [`CHROMA_420_VERTICAL`] for 4:2:0 (GStreamer chroma-site `mpeg2`); otherwise 4:2:0 is
    /// [`CHROMA_420_COLOCATED`], FFmpeg's choice for unspecified siting. The level comes from
    /// the frame size.
    pub fn from_keyframe(
        header: &FrameHeader,
        colour: Option<ColourDescription>,
        chroma_sited_left: bool,
    ) -> Result<Self> {
        let (Some(color), Some((width, height))) = (header.color, header.frame_size) else {
            return Err(Error::InvalidVp9(
                "not a keyframe: the frame has no colour configuration and size",
            ));
        };
        let chroma_subsampling = match (color.subsampling_x, color.subsampling_y) {
            (true, true) if chroma_sited_left => CHROMA_420_VERTICAL,
            (true, true) => CHROMA_420_COLOCATED,
            (true, false) => CHROMA_422,
            (false, false) => CHROMA_444,
            (false, true) => {
                return Err(Error::InvalidVp9(
                    "4:4:0 chroma subsampling cannot be described in vpcC",
                ));
            }
        };
        Ok(VpCodecConfigurationRecord {
            profile: header.profile,
            level: level_from_picture_size(width, height),
            bit_depth: color.bit_depth,
            chroma_subsampling,
            video_full_range: color.full_range,
            colour: colour.unwrap_or(ColourDescription {
                matrix_coefficients: matrix_coefficients_for_color_space(color.color_space),
                ..ColourDescription::UNSPECIFIED
            }),
            codec_initialization_data: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::testutil::hex;

    /// Start of a libvpx keyframe (GStreamer vp9enc, 160x96 I420).
    const KEYFRAME: &str = "824983422009f005f60038241c184200";
    /// The vp09 sequence start body FFmpeg 9 writes for that stream from a Matroska file
    /// whose colour says BT.601 (6, 6, 6).
    const FFMPEG_VPCC: &str = "01000000000a820606060000";

    #[test]
    fn parse_libvpx_keyframe() {
        let h = parse_frame_header(&hex(KEYFRAME)).unwrap();
        assert_eq!((h.profile, h.keyframe, h.show_frame), (0, true, true));
        assert_eq!(h.frame_size, Some((160, 96)));
        assert_eq!(h.render_size, Some((160, 96)));
        let c = h.color.unwrap();
        assert_eq!((c.bit_depth, c.color_space, c.full_range), (8, 1, false));
        assert!(c.subsampling_x && c.subsampling_y);
    }

    #[test]
    fn vpcc_from_keyframe_matches_ffmpeg() {
        let h = parse_frame_header(&hex(KEYFRAME)).unwrap();
        let bt601 = ColourDescription {
            primaries: 6,
            transfer_characteristics: 6,
            matrix_coefficients: 6,
        };
        let r = VpCodecConfigurationRecord::from_keyframe(&h, Some(bt601), false).unwrap();
        let ffmpeg = hex(FFMPEG_VPCC);
        assert_eq!(r.to_bytes(), ffmpeg);
        assert_eq!(VpCodecConfigurationRecord::parse(&ffmpeg).unwrap(), r);
        // No caps colour: unspecified primaries/transfer, matrix from the colour space.
        let r = VpCodecConfigurationRecord::from_keyframe(&h, None, true).unwrap();
        assert_eq!(r.chroma_subsampling, CHROMA_420_VERTICAL);
        assert_eq!(
            (
                r.colour.primaries,
                r.colour.transfer_characteristics,
                r.colour.matrix_coefficients
            ),
            (2, 2, 5)
        );
    }

    #[test]
    fn levels_follow_picture_size() {
        assert_eq!(level_from_picture_size(160, 96), 10);
        assert_eq!(level_from_picture_size(320, 240), 20);
        assert_eq!(level_from_picture_size(1280, 720), 31);
        assert_eq!(level_from_picture_size(1920, 1080), 40);
        assert_eq!(level_from_picture_size(3840, 2160), 50);
        assert_eq!(level_from_picture_size(8192, 4352), 60);
        assert_eq!(level_from_picture_size(16384, 16384), 0);
        assert_eq!(level_from_picture_size(0, 16), 0);
    }

    /// Packs (bit count, value) fields MSB first, zero-padded to whole bytes.
    fn header_bits(fields: &[(u32, u32)]) -> Vec<u8> {
        let mut bits = Vec::new();
        for &(n, v) in fields {
            for i in (0..n).rev() {
                bits.push((v >> i) & 1 == 1);
            }
        }
        while !bits.len().is_multiple_of(8) {
            bits.push(false);
        }
        bits.chunks(8)
            .map(|c| c.iter().fold(0u8, |a, &b| (a << 1) | u8::from(b)))
            .collect()
    }

    #[test]
    fn profile_3_444_12bit_and_intra_only_and_inter() {
        // Profile 3 (low 1, high 1, reserved 0), keyframe, 12-bit, BT.709, full, 4:4:4.
        let key = header_bits(&[
            (2, 2),
            (1, 1),
            (1, 1),
            (1, 0),
            (1, 0),
            (1, 0),
            (1, 1),
            (1, 0),
            (24, 0x49_83_42),
            (1, 1),
            (3, 2),
            (1, 1),
            (1, 0),
            (1, 0),
            (1, 0),
            (16, 1919),
            (16, 1079),
            (1, 1),
            (16, 959),
            (16, 539),
        ]);
        let h = parse_frame_header(&key).unwrap();
        assert_eq!(h.profile, 3);
        let c = h.color.unwrap();
        assert_eq!(
            (c.bit_depth, c.full_range, c.subsampling_x),
            (12, true, false)
        );
        assert_eq!(h.frame_size, Some((1920, 1080)));
        assert_eq!(h.render_size, Some((960, 540)));
        let r = VpCodecConfigurationRecord::from_keyframe(&h, None, false).unwrap();
        assert_eq!(
            (r.profile, r.chroma_subsampling, r.level),
            (3, CHROMA_444, 40)
        );
        assert_eq!(r.to_bytes()[6], 0xc7);
        // Profile 0 intra-only: not shown, intra_only 1, reset context, sync, refresh, size.
        let intra = header_bits(&[
            (2, 2),
            (2, 0),
            (1, 0),
            (1, 1),
            (1, 0),
            (1, 0),
            (1, 1),
            (2, 0),
            (24, 0x49_83_42),
            (8, 0xff),
            (16, 63),
            (16, 31),
            (1, 0),
        ]);
        let h = parse_frame_header(&intra).unwrap();
        assert!(!h.keyframe && h.intra_only);
        assert_eq!(h.frame_size, Some((64, 32)));
        assert_eq!(h.color.unwrap().color_space, 1);
        // Inter frame: no colour, no size; vpcC cannot be built from it.
        let inter = header_bits(&[(2, 2), (2, 0), (1, 0), (1, 1), (1, 1), (1, 0), (2, 0)]);
        let h = parse_frame_header(&inter).unwrap();
        assert!(!h.keyframe && h.frame_size.is_none());
        assert!(VpCodecConfigurationRecord::from_keyframe(&h, None, false).is_err());
        // show_existing_frame
        let h = parse_frame_header(&header_bits(&[(2, 2), (2, 0), (1, 1), (3, 5)])).unwrap();
        assert!(h.show_existing_frame && !h.keyframe);
    }

    #[test]
    fn frame_header_errors() {
        let key = hex(KEYFRAME);
        for cut in 0..9 {
            assert!(parse_frame_header(&key[..cut]).is_err(), "cut {cut}");
        }
        assert!(parse_frame_header(&[0x42]).is_err());
        let mut bad_sync = key.clone();
        bad_sync[2] = 0x84;
        assert!(parse_frame_header(&bad_sync).is_err());
        // RGB in profile 0.
        let rgb = header_bits(&[
            (2, 2),
            (2, 0),
            (4, 0b0010),
            (24, 0x49_83_42),
            (3, 7),
            (32, 0),
            (8, 0),
        ]);
        assert!(parse_frame_header(&rgb).is_err());
    }

    #[test]
    fn vpcc_parse_errors_and_init_data() {
        assert!(VpCodecConfigurationRecord::parse(&hex("010000000a82")).is_err());
        assert!(VpCodecConfigurationRecord::parse(&hex("00000000000a820606060000")).is_err());
        assert!(VpCodecConfigurationRecord::parse_record(&hex("000a520606060000")).is_err());
        assert!(VpCodecConfigurationRecord::parse_record(&hex("000a8206060600020a")).is_err());
        let r = VpCodecConfigurationRecord::parse_record(&hex("000a8206060600020a0b")).unwrap();
        assert_eq!(r.codec_initialization_data, [0x0a, 0x0b]);
        assert_eq!(VpCodecConfigurationRecord::parse(&r.to_bytes()), Ok(r));
    }
}
