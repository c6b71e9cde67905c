//! H.265 (HEVC) elementary streams: Annex-B and length-prefixed access units, the video and
//! sequence parameter sets (ITU-T H.265 §7.3.2.1, §7.3.2.2, VUI in Annex E) and the hvcC record
//! (HEVCDecoderConfigurationRecord, ISO/IEC 14496-15 §8.3.3).
//!
//! Enhanced RTMP carries HEVC like ISO BMFF `hvc1`: every NAL unit prefixed with its length,
//! the parameter sets sent separately in an hvcC sequence start. [`annexb_to_length_prefixed`]
//! converts byte-stream input; [`length_prefixed_info`] checks `hvc1`/`hev1` input without
//! copying it; [`HevcDecoderConfigurationRecord::from_parameter_sets`] builds the hvcC from
//! in-band parameter sets the way GStreamer's `h265parse` and FFmpeg do.

use super::bits::{Bits, ByteReader, unescape_rbsp};
use super::colour::ColourDescription;
use super::h264::{LengthPrefixed, PrefixError};
use super::{Error, Result};

/// NAL unit type of a BLA picture with leading pictures (the first IRAP type).
pub const NAL_BLA_W_LP: u8 = 16;
/// NAL unit type of an IDR picture with RADL pictures.
pub const NAL_IDR_W_RADL: u8 = 19;
/// NAL unit type of an IDR picture without leading pictures.
pub const NAL_IDR_N_LP: u8 = 20;
/// NAL unit type of a clean random access picture.
pub const NAL_CRA: u8 = 21;
/// NAL unit type of a video parameter set.
pub const NAL_VPS: u8 = 32;
/// NAL unit type of a sequence parameter set.
pub const NAL_SPS: u8 = 33;
/// NAL unit type of a picture parameter set.
pub const NAL_PPS: u8 = 34;
/// NAL unit type of an access unit delimiter.
pub const NAL_AUD: u8 = 35;
/// NAL unit type of end of sequence.
pub const NAL_EOS: u8 = 36;
/// NAL unit type of end of bitstream.
pub const NAL_EOB: u8 = 37;
/// NAL unit type of filler data.
pub const NAL_FD: u8 = 38;
/// NAL unit type of a prefix SEI message.
pub const NAL_SEI_PREFIX: u8 = 39;
/// NAL unit type of a suffix SEI message.
pub const NAL_SEI_SUFFIX: u8 = 40;

/// Most video parameter sets a stream can have (`vps_video_parameter_set_id` is 4 bits).
pub const MAX_VPS: usize = 16;
/// Most sequence parameter sets a stream can have (`sps_seq_parameter_set_id` ≤ 15).
pub const MAX_SPS: usize = 16;
/// Most picture parameter sets a stream can have (`pps_pic_parameter_set_id` ≤ 63).
pub const MAX_PPS: usize = 64;
/// Largest picture dimension accepted from an SPS, far above any HEVC level (8K is 8192).
pub const MAX_DIMENSION: u32 = 65_536;

/// Most short-term reference picture sets an SPS may hold (H.265 §7.4.3.2.1).
const MAX_SHORT_TERM_REF_PIC_SETS: u32 = 64;
/// Most pictures one short-term reference picture set may list per direction.
const MAX_REF_PICS: usize = 16;

/// The `nal_unit_type` of a NAL unit (bits 1..7 of its first byte), `None` if it is empty.
pub fn nal_type(nal: &[u8]) -> Option<u8> {
    nal.first().map(|b| (b >> 1) & 0x3f)
}

/// The `nuh_layer_id` of a NAL unit, `None` if it is shorter than its 2-byte header.
pub fn nuh_layer_id(nal: &[u8]) -> Option<u8> {
    match nal {
        [b0, b1, ..] => Some(((b0 & 1) << 5) | (b1 >> 3)),
        _ => None,
    }
}

/// Whether a NAL unit type is an IRAP picture (BLA, IDR or CRA, types 16..=23): a random access
/// point, what RTMP calls a keyframe.
pub fn is_irap(nal_type: u8) -> bool {
    (16..=23).contains(&nal_type)
}

/// Whether a NAL unit is dropped when remuxing for RTMP: access unit delimiters and filler data
/// carry nothing a player needs, and NAL units shorter than their header are meaningless.
fn is_droppable(nal: &[u8]) -> bool {
    nal.len() < 2 || matches!(nal_type(nal), Some(NAL_AUD) | Some(NAL_FD))
}

// ---------------------------------------------------------------------------------------------
// Annex-B and length-prefixed access units
// ---------------------------------------------------------------------------------------------

/// Splits an Annex-B byte-stream buffer into its NAL units (without start codes).
///
/// H.265 uses the same start codes as H.264 (Annex B of both), so this is the H.264 splitter:
/// 3- and 4-byte start codes, bytes before the first start code and empty NAL units skipped.
pub fn annexb_nals(data: &[u8]) -> super::h264::AnnexBNals<'_> {
    super::h264::annexb_nals(data)
}

/// Iterator over the NAL units of a length-prefixed (`hvc1`/`hev1`) buffer, see
/// [`length_prefixed_nals`].
#[derive(Debug, Clone)]
pub struct LengthPrefixedNals<'a> {
    inner: LengthPrefixed<'a>,
}

impl<'a> Iterator for LengthPrefixedNals<'a> {
    type Item = Result<&'a [u8]>;

    fn next(&mut self) -> Option<Result<&'a [u8]>> {
        Some(self.inner.next()?.map_err(|e| match e {
            PrefixError::LengthSize => {
                Error::InvalidHevc("NAL length size must be 1, 2 or 4 bytes")
            }
            PrefixError::Truncated { .. } => Error::InvalidHevc(
                "a NAL unit length runs past the end of the buffer; is the stream really \
                 length-prefixed (hvc1/hev1) with the length size of its codec_data?",
            ),
        }))
    }
}

/// Splits a length-prefixed (`hvc1`/`hev1`) buffer into its NAL units.
///
/// `length_size` is `lengthSizeMinusOne + 1` from the hvcC record (1, 2 or 4). Yields an error
/// (and then ends) for an invalid length size or a length that runs past the buffer.
pub fn length_prefixed_nals(data: &[u8], length_size: usize) -> LengthPrefixedNals<'_> {
    LengthPrefixedNals {
        inner: LengthPrefixed::new(data, length_size),
    }
}

/// What an access unit contains, as far as RTMP publishing cares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessUnitInfo {
    /// The access unit contains a base-layer IRAP picture (IDR, CRA or BLA), i.e. it is a
    /// keyframe.
    pub keyframe: bool,
    /// In-band video parameter set NAL units, in stream order.
    pub vps: Vec<Vec<u8>>,
    /// In-band sequence parameter set NAL units, in stream order.
    pub sps: Vec<Vec<u8>>,
    /// In-band picture parameter set NAL units, in stream order.
    pub pps: Vec<Vec<u8>>,
    /// NAL units in the access unit, dropped ones included.
    pub nal_units: usize,
    /// NAL units that are (or, for length-prefixed input, could be) dropped: access unit
    /// delimiters, filler data and NAL units shorter than their header.
    pub dropped_nals: usize,
}

impl AccessUnitInfo {
    fn add(&mut self, nal: &[u8]) {
        self.nal_units += 1;
        if is_droppable(nal) {
            self.dropped_nals += 1;
            return;
        }
        let base_layer = nuh_layer_id(nal) == Some(0);
        match nal_type(nal) {
            Some(NAL_VPS) => self.vps.push(nal.to_vec()),
            Some(NAL_SPS) => self.sps.push(nal.to_vec()),
            Some(NAL_PPS) => self.pps.push(nal.to_vec()),
            Some(t) if is_irap(t) && base_layer => self.keyframe = true,
            _ => {}
        }
    }

    /// Whether the access unit carries a full set of parameter sets (VPS, SPS and PPS) from
    /// which an hvcC record can be built.
    pub fn has_parameter_sets(&self) -> bool {
        !self.vps.is_empty() && !self.sps.is_empty() && !self.pps.is_empty()
    }
}

/// Converts an Annex-B access unit to length-prefixed form (4-byte lengths) appended to `out`,
/// dropping access unit delimiters and filler data, and reports what it contains. Parameter
/// sets stay in the output too (so the stream also decodes from any keyframe, as `hev1`).
pub fn annexb_to_length_prefixed(data: &[u8], out: &mut Vec<u8>) -> Result<AccessUnitInfo> {
    let mut info = AccessUnitInfo::default();
    out.reserve(data.len());
    for nal in annexb_nals(data) {
        info.add(nal);
        if is_droppable(nal) {
            continue;
        }
        let len = u32::try_from(nal.len())
            .map_err(|_| Error::InvalidHevc("NAL unit too large for a 4-byte length"))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(nal);
    }
    if info.nal_units == 0 {
        return Err(Error::InvalidHevc(
            "buffer holds no NAL unit (no 00 00 01 start code); is the stream really \
             byte-stream (Annex-B)?",
        ));
    }
    Ok(info)
}

/// Checks a length-prefixed (`hvc1`/`hev1`) access unit without copying it: every length must
/// fit and the NAL units must fill the buffer exactly. Reports what it contains.
pub fn length_prefixed_info(data: &[u8], length_size: usize) -> Result<AccessUnitInfo> {
    let mut info = AccessUnitInfo::default();
    for nal in length_prefixed_nals(data, length_size) {
        info.add(nal?);
    }
    if info.nal_units == 0 {
        return Err(Error::InvalidHevc("buffer holds no NAL unit"));
    }
    Ok(info)
}

// ---------------------------------------------------------------------------------------------
// Parameter sets
// ---------------------------------------------------------------------------------------------

/// The general part of `profile_tier_level()` (H.265 §7.3.3), laid out as in the hvcC record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProfileTierLevel {
    /// `general_profile_space` (2 bits).
    pub profile_space: u8,
    /// `general_tier_flag`: false = Main tier, true = High tier.
    pub tier_flag: bool,
    /// `general_profile_idc` (5 bits): 1 Main, 2 Main 10, 3 Main Still Picture, 4 range
    /// extensions, ...
    pub profile_idc: u8,
    /// The 32 `general_profile_compatibility_flag`s, flag 0 in the most significant bit.
    pub profile_compatibility_flags: u32,
    /// The 48 bits from `general_progressive_source_flag` to `general_inbld_flag`/reserved
    /// bit, in stream order in the low 48 bits.
    pub constraint_indicator_flags: u64,
    /// `general_level_idc`: 30 times the level number (93 = level 3.1).
    pub level_idc: u8,
}

/// Reads `profile_tier_level(1, max_sub_layers_minus1)`, skipping the sub-layer parts.
fn parse_ptl(r: &mut Bits<'_>, max_sub_layers_minus1: u8) -> Option<ProfileTierLevel> {
    let ptl = ProfileTierLevel {
        profile_space: r.u8(2)?,
        tier_flag: r.bit()?,
        profile_idc: r.u8(5)?,
        profile_compatibility_flags: r.bits(32)?,
        constraint_indicator_flags: r.bits64(48)?,
        level_idc: r.u8(8)?,
    };
    let sub_layers = usize::from(max_sub_layers_minus1);
    let mut present = [(false, false); 8];
    for p in present.iter_mut().take(sub_layers) {
        *p = (r.bit()?, r.bit()?);
    }
    if sub_layers > 0 {
        r.skip(2 * (8 - sub_layers))?;
    }
    for &(profile_present, level_present) in present.iter().take(sub_layers) {
        if profile_present {
            r.skip(88)?;
        }
        if level_present {
            r.skip(8)?;
        }
    }
    Some(ptl)
}

/// The RBSP of a base-layer parameter set NAL unit of type `expected`, after its 2-byte header.
fn parameter_set_rbsp(nal: &[u8], expected: u8, what: &'static str) -> Result<Vec<u8>> {
    if nal_type(nal) != Some(expected) {
        return Err(Error::InvalidHevc(what));
    }
    match nuh_layer_id(nal) {
        None => Err(Error::InvalidHevc(
            "parameter set shorter than its NAL header",
        )),
        Some(0) => Ok(unescape_rbsp(&nal[2..])),
        Some(_) => Err(Error::InvalidHevc(
            "parameter sets of enhancement layers (nuh_layer_id > 0) are not supported",
        )),
    }
}

/// What a video parameter set says (its first fields, H.265 §7.3.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpsInfo {
    /// `vps_video_parameter_set_id`.
    pub vps_id: u8,
    /// `vps_max_layers_minus1 + 1`.
    pub max_layers: u8,
    /// `vps_max_sub_layers_minus1 + 1`: temporal sub-layers (1..=7).
    pub max_sub_layers: u8,
    /// `vps_temporal_id_nesting_flag`.
    pub temporal_id_nesting: bool,
    /// The general profile, tier and level.
    pub profile_tier_level: ProfileTierLevel,
}

/// Parses the first fields of a video parameter set NAL unit (header included).
pub fn parse_vps(nal: &[u8]) -> Result<VpsInfo> {
    let rbsp = parameter_set_rbsp(nal, NAL_VPS, "not a VPS NAL unit")?;
    let truncated = Error::InvalidHevc("VPS is truncated");
    let mut r = Bits::new(&rbsp);
    let vps_id = r.u8(4).ok_or(truncated.clone())?;
    r.skip(2).ok_or(truncated.clone())?;
    let max_layers_minus1 = r.u8(6).ok_or(truncated.clone())?;
    let max_sub_layers_minus1 = r.u8(3).ok_or(truncated.clone())?;
    if max_sub_layers_minus1 > 6 {
        return Err(Error::InvalidHevc(
            "vps_max_sub_layers_minus1 is greater than 6",
        ));
    }
    let temporal_id_nesting = r.bit().ok_or(truncated.clone())?;
    // vps_reserved_0xffff_16bits: not checked, decoders ignore it.
    r.skip(16).ok_or(truncated.clone())?;
    let profile_tier_level = parse_ptl(&mut r, max_sub_layers_minus1).ok_or(truncated)?;
    Ok(VpsInfo {
        vps_id,
        max_layers: max_layers_minus1 + 1,
        max_sub_layers: max_sub_layers_minus1 + 1,
        temporal_id_nesting,
        profile_tier_level,
    })
}

/// What the VUI (video usability information, H.265 Annex E) of an SPS says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VuiInfo {
    /// `video_full_range_flag` (false when the video signal type is absent).
    pub full_range: bool,
    /// Colour primaries, transfer characteristics and matrix, when the VUI describes them.
    pub colour: Option<ColourDescription>,
    /// Frame rate as a reduced fraction (numerator, denominator) from the VUI timing info.
    pub frame_rate: Option<(u32, u32)>,
    /// `min_spatial_segmentation_idc` from the bitstream restrictions (0 when absent).
    pub min_spatial_segmentation_idc: u16,
}

/// What a sequence parameter set says about the video.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpsInfo {
    /// `sps_video_parameter_set_id`.
    pub vps_id: u8,
    /// `sps_seq_parameter_set_id`.
    pub sps_id: u8,
    /// `sps_max_sub_layers_minus1 + 1`: temporal sub-layers (1..=7).
    pub max_sub_layers: u8,
    /// `sps_temporal_id_nesting_flag`.
    pub temporal_id_nesting: bool,
    /// The general profile, tier and level.
    pub profile_tier_level: ProfileTierLevel,
    /// `chroma_format_idc`: 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4.
    pub chroma_format_idc: u8,
    /// `separate_colour_plane_flag`.
    pub separate_colour_plane: bool,
    /// Decoded width in luma samples (`pic_width_in_luma_samples`).
    pub coded_width: u32,
    /// Decoded height in luma samples (`pic_height_in_luma_samples`).
    pub coded_height: u32,
    /// Displayed width: the coded width minus the conformance window.
    pub width: u32,
    /// Displayed height: the coded height minus the conformance window.
    pub height: u32,
    /// Luma bit depth (8..=16).
    pub bit_depth_luma: u8,
    /// Chroma bit depth (8..=16).
    pub bit_depth_chroma: u8,
    /// The VUI; `None` when the SPS has none, or when a field between the bit depths and the
    /// VUI could not be parsed (the fields above are exact either way).
    pub vui: Option<VuiInfo>,
}

/// Parses a sequence parameter set NAL unit (header included) of the base layer.
///
/// Profile, tier, level, chroma format, picture size (with conformance window cropping) and bit
/// depths are required; the VUI is read on a best-effort basis, see [`SpsInfo::vui`].
pub fn parse_sps(nal: &[u8]) -> Result<SpsInfo> {
    let rbsp = parameter_set_rbsp(nal, NAL_SPS, "not an SPS NAL unit")?;
    let truncated = || Error::InvalidHevc("SPS is truncated or holds an out-of-range value");
    let mut r = Bits::new(&rbsp);
    let vps_id = r.u8(4).ok_or_else(truncated)?;
    let max_sub_layers_minus1 = r.u8(3).ok_or_else(truncated)?;
    if max_sub_layers_minus1 > 6 {
        return Err(Error::InvalidHevc(
            "sps_max_sub_layers_minus1 is greater than 6",
        ));
    }
    let temporal_id_nesting = r.bit().ok_or_else(truncated)?;
    let profile_tier_level = parse_ptl(&mut r, max_sub_layers_minus1).ok_or_else(truncated)?;
    let sps_id = r.ue_max(15).ok_or_else(truncated)? as u8;
    let chroma_format_idc = r.ue_max(3).ok_or_else(truncated)? as u8;
    let separate_colour_plane = chroma_format_idc == 3 && r.bit().ok_or_else(truncated)?;
    let coded_width = r.ue().ok_or_else(truncated)?;
    let coded_height = r.ue().ok_or_else(truncated)?;
    if coded_width == 0
        || coded_height == 0
        || coded_width > MAX_DIMENSION
        || coded_height > MAX_DIMENSION
    {
        return Err(Error::InvalidHevc("picture size is zero or too large"));
    }
    let mut crop = [0u32; 4];
    if r.bit().ok_or_else(truncated)? {
        for c in &mut crop {
            *c = r.ue().ok_or_else(truncated)?;
        }
    }
    // Conformance window offsets count in chroma samples (H.265 Table 6-1).
    let (sub_width, sub_height) = match (chroma_format_idc, separate_colour_plane) {
        (1, false) => (2, 2),
        (2, false) => (2, 1),
        _ => (1, 1),
    };
    let cropped = |size: u32, a: u32, b: u32, unit: u64| {
        let cut = (u64::from(a) + u64::from(b)) * unit;
        u64::from(size)
            .checked_sub(cut)
            .filter(|&v| v > 0)
            .map(|v| v as u32)
            .ok_or(Error::InvalidHevc(
                "conformance window is larger than the picture",
            ))
    };
    let width = cropped(coded_width, crop[0], crop[1], sub_width)?;
    let height = cropped(coded_height, crop[2], crop[3], sub_height)?;
    let bit_depth_luma = r.ue_max(8).ok_or_else(truncated)? as u8 + 8;
    let bit_depth_chroma = r.ue_max(8).ok_or_else(truncated)? as u8 + 8;
    let vui = parse_sps_tail(&mut r, max_sub_layers_minus1).flatten();
    Ok(SpsInfo {
        vps_id,
        sps_id,
        max_sub_layers: max_sub_layers_minus1 + 1,
        temporal_id_nesting,
        profile_tier_level,
        chroma_format_idc,
        separate_colour_plane,
        coded_width,
        coded_height,
        width,
        height,
        bit_depth_luma,
        bit_depth_chroma,
        vui,
    })
}

/// Reads the SPS from `log2_max_pic_order_cnt_lsb_minus4` to the VUI. `None` if malformed,
/// `Some(None)` if the SPS has no VUI.
fn parse_sps_tail(r: &mut Bits<'_>, max_sub_layers_minus1: u8) -> Option<Option<VuiInfo>> {
    let log2_max_poc_lsb = r.ue_max(12)? + 4;
    let ordering_info_for_all = r.bit()?;
    let first = if ordering_info_for_all {
        0
    } else {
        max_sub_layers_minus1
    };
    for _ in first..=max_sub_layers_minus1 {
        // sps_max_dec_pic_buffering_minus1, sps_max_num_reorder_pics,
        // sps_max_latency_increase_plus1
        r.ue()?;
        r.ue()?;
        r.ue()?;
    }
    // Coding and transform block sizes, transform hierarchy depths.
    for _ in 0..6 {
        r.ue()?;
    }
    if r.bit()? && r.bit()? {
        skip_scaling_list_data(r)?;
    }
    // amp_enabled_flag, sample_adaptive_offset_enabled_flag
    r.skip(2)?;
    if r.bit()? {
        // PCM sample bit depths (4 + 4 bits), two block sizes, loop filter flag.
        r.skip(8)?;
        r.ue()?;
        r.ue()?;
        r.skip(1)?;
    }
    let num_sets = r.ue_max(MAX_SHORT_TERM_REF_PIC_SETS)?;
    let mut sets: Vec<ShortTermRefPicSet> = Vec::with_capacity(num_sets as usize);
    for idx in 0..num_sets as usize {
        let set = parse_st_ref_pic_set(r, sets.get(idx.wrapping_sub(1)))?;
        sets.push(set);
    }
    if r.bit()? {
        let num_long_term = r.ue_max(32)?;
        for _ in 0..num_long_term {
            // lt_ref_pic_poc_lsb_sps (log2_max_poc_lsb bits), used_by_curr_pic_lt_sps_flag
            r.skip(log2_max_poc_lsb as usize + 1)?;
        }
    }
    // sps_temporal_mvp_enabled_flag, strong_intra_smoothing_enabled_flag
    r.skip(2)?;
    if !r.bit()? {
        return Some(None);
    }
    parse_vui(r, max_sub_layers_minus1).map(Some)
}

/// Skips `scaling_list_data()` (H.265 §7.3.4).
fn skip_scaling_list_data(r: &mut Bits<'_>) -> Option<()> {
    for size_id in 0..4u32 {
        let mut matrix_id = 0;
        while matrix_id < 6 {
            if !r.bit()? {
                // scaling_list_pred_matrix_id_delta
                r.ue()?;
            } else {
                let coef_num = 64.min(1u32 << (4 + (size_id << 1)));
                if size_id > 1 {
                    r.se()?;
                }
                for _ in 0..coef_num {
                    r.se()?;
                }
            }
            matrix_id += if size_id == 3 { 3 } else { 1 };
        }
    }
    Some(())
}

/// The delta POCs of one short-term reference picture set: negative ones closest first, then
/// positive ones closest first (H.265 §7.4.8). Needed because a predicted set's syntax depends
/// on how many pictures the set it predicts from has.
#[derive(Debug, Default)]
struct ShortTermRefPicSet {
    negative: Vec<i64>,
    positive: Vec<i64>,
}

/// Reads `st_ref_pic_set(stRpsIdx)` as found in an SPS (so `RefRpsIdx = stRpsIdx - 1`);
/// `previous` is that set, `None` for the first one.
fn parse_st_ref_pic_set(
    r: &mut Bits<'_>,
    previous: Option<&ShortTermRefPicSet>,
) -> Option<ShortTermRefPicSet> {
    let mut set = ShortTermRefPicSet::default();
    let predicted = match previous {
        Some(_) => r.bit()?,
        None => false,
    };
    if let (true, Some(reference)) = (predicted, previous) {
        let sign = r.bit()?;
        let abs = i64::from(r.ue_max(1 << 15)?) + 1;
        let delta_rps = if sign { -abs } else { abs };
        let n_neg = reference.negative.len();
        let n = n_neg + reference.positive.len();
        // (used_by_curr_pic_flag, use_delta_flag) for every picture of the reference set and
        // the reference picture itself; use_delta_flag is inferred 1 when not present.
        let mut flags = Vec::with_capacity(n + 1);
        for _ in 0..=n {
            let used = r.bit()?;
            let use_delta = used || r.bit()?;
            flags.push(use_delta);
        }
        // Derivation of H.265 equations 7-61 and 7-62.
        for (j, &p) in reference.positive.iter().enumerate().rev() {
            let d = p + delta_rps;
            if d < 0 && flags[n_neg + j] {
                set.negative.push(d);
            }
        }
        if delta_rps < 0 && flags[n] {
            set.negative.push(delta_rps);
        }
        for (j, &p) in reference.negative.iter().enumerate() {
            let d = p + delta_rps;
            if d < 0 && flags[j] {
                set.negative.push(d);
            }
        }
        for (j, &p) in reference.negative.iter().enumerate().rev() {
            let d = p + delta_rps;
            if d > 0 && flags[j] {
                set.positive.push(d);
            }
        }
        if delta_rps > 0 && flags[n] {
            set.positive.push(delta_rps);
        }
        for (j, &p) in reference.positive.iter().enumerate() {
            let d = p + delta_rps;
            if d > 0 && flags[n_neg + j] {
                set.positive.push(d);
            }
        }
    } else {
        let num_negative = r.ue_max(MAX_REF_PICS as u32)?;
        let num_positive = r.ue_max(MAX_REF_PICS as u32)?;
        let mut poc = 0i64;
        for _ in 0..num_negative {
            poc -= i64::from(r.ue_max(1 << 15)?) + 1;
            r.skip(1)?;
            set.negative.push(poc);
        }
        poc = 0;
        for _ in 0..num_positive {
            poc += i64::from(r.ue_max(1 << 15)?) + 1;
            r.skip(1)?;
            set.positive.push(poc);
        }
    }
    (set.negative.len() <= MAX_REF_PICS && set.positive.len() <= MAX_REF_PICS).then_some(set)
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Reads `vui_parameters()` (H.265 §E.2.1).
fn parse_vui(r: &mut Bits<'_>, max_sub_layers_minus1: u8) -> Option<VuiInfo> {
    let mut vui = VuiInfo::default();
    if r.bit()? && r.u8(8)? == 255 {
        // EXTENDED_SAR: sar_width, sar_height
        r.skip(32)?;
    }
    if r.bit()? {
        // overscan_appropriate_flag
        r.skip(1)?;
    }
    if r.bit()? {
        // video_format
        r.skip(3)?;
        vui.full_range = r.bit()?;
        if r.bit()? {
            vui.colour = Some(ColourDescription {
                primaries: r.u8(8)?,
                transfer_characteristics: r.u8(8)?,
                matrix_coefficients: r.u8(8)?,
            });
        }
    }
    if r.bit()? {
        // chroma_sample_loc_type_top_field, chroma_sample_loc_type_bottom_field
        r.ue()?;
        r.ue()?;
    }
    // neutral_chroma_indication_flag, field_seq_flag, frame_field_info_present_flag
    r.skip(3)?;
    if r.bit()? {
        // default display window offsets
        for _ in 0..4 {
            r.ue()?;
        }
    }
    if r.bit()? {
        let num_units_in_tick = r.bits(32)?;
        let time_scale = r.bits(32)?;
        if num_units_in_tick > 0 && time_scale > 0 {
            let g = gcd(time_scale, num_units_in_tick);
            vui.frame_rate = Some((time_scale / g, num_units_in_tick / g));
        }
        if r.bit()? {
            // vui_num_ticks_poc_diff_one_minus1
            r.ue()?;
        }
        if r.bit()? {
            skip_hrd_parameters(r, max_sub_layers_minus1)?;
        }
    }
    if r.bit()? {
        // tiles_fixed_structure_flag, motion_vectors_over_pic_boundaries_flag,
        // restricted_ref_pic_lists_flag
        r.skip(3)?;
        vui.min_spatial_segmentation_idc = r.ue_max(4095)? as u16;
        // max_bytes_per_pic_denom, max_bits_per_min_cu_denom, log2_max_mv_length_*
        for _ in 0..4 {
            r.ue()?;
        }
    }
    Some(vui)
}

/// Skips `hrd_parameters(1, max_sub_layers_minus1)` (H.265 §E.2.2).
fn skip_hrd_parameters(r: &mut Bits<'_>, max_sub_layers_minus1: u8) -> Option<()> {
    let nal_hrd = r.bit()?;
    let vcl_hrd = r.bit()?;
    let mut sub_pic = false;
    if nal_hrd || vcl_hrd {
        sub_pic = r.bit()?;
        if sub_pic {
            // tick_divisor_minus2, du_cpb_removal_delay_increment_length_minus1,
            // sub_pic_cpb_params_in_pic_timing_sei_flag, dpb_output_delay_du_length_minus1
            r.skip(8 + 5 + 1 + 5)?;
        }
        // bit_rate_scale, cpb_size_scale
        r.skip(8)?;
        if sub_pic {
            // cpb_size_du_scale
            r.skip(4)?;
        }
        // initial_cpb_removal_delay_length_minus1, au_cpb_removal_delay_length_minus1,
        // dpb_output_delay_length_minus1
        r.skip(15)?;
    }
    for _ in 0..=max_sub_layers_minus1 {
        let fixed_general = r.bit()?;
        let fixed_within_cvs = fixed_general || r.bit()?;
        let mut low_delay = false;
        if fixed_within_cvs {
            // elemental_duration_in_tc_minus1
            r.ue()?;
        } else {
            low_delay = r.bit()?;
        }
        let cpb_count = if low_delay { 1 } else { r.ue_max(31)? + 1 };
        for _ in 0..u8::from(nal_hrd) + u8::from(vcl_hrd) {
            for _ in 0..cpb_count {
                // bit_rate_value_minus1, cpb_size_value_minus1
                r.ue()?;
                r.ue()?;
                if sub_pic {
                    // cpb_size_du_value_minus1, bit_rate_du_value_minus1
                    r.ue()?;
                    r.ue()?;
                }
                // cbr_flag
                r.skip(1)?;
            }
        }
    }
    Some(())
}

// ---------------------------------------------------------------------------------------------
// hvcC: HEVCDecoderConfigurationRecord
// ---------------------------------------------------------------------------------------------

/// One array of NAL units of the same type in an hvcC record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HvccArray {
    /// `array_completeness`: all NAL units of this type are in the array (none in-band).
    pub array_completeness: bool,
    /// `NAL_unit_type` of the NAL units in the array (6 bits).
    pub nal_unit_type: u8,
    /// The NAL units, headers included (each at most 65535 bytes).
    pub nal_units: Vec<Vec<u8>>,
}

/// The hvcC record (HEVCDecoderConfigurationRecord, ISO/IEC 14496-15 §8.3.3.1): the H.265
/// `codec_data`, sent as the body of the HEVC sequence start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HevcDecoderConfigurationRecord {
    /// General profile, tier and level (the record's bytes 1..=12).
    pub profile_tier_level: ProfileTierLevel,
    /// `min_spatial_segmentation_idc` (12 bits).
    pub min_spatial_segmentation_idc: u16,
    /// `parallelismType` (2 bits): 0 unknown, 1 slices, 2 tiles, 3 wavefront.
    pub parallelism_type: u8,
    /// `chromaFormat` (2 bits), as `chroma_format_idc`.
    pub chroma_format_idc: u8,
    /// `bitDepthLumaMinus8` (3 bits).
    pub bit_depth_luma_minus8: u8,
    /// `bitDepthChromaMinus8` (3 bits).
    pub bit_depth_chroma_minus8: u8,
    /// `avgFrameRate` in frames per 256 s; 0 = unspecified.
    pub avg_frame_rate: u16,
    /// `constantFrameRate` (2 bits): 0 = may or may not be constant.
    pub constant_frame_rate: u8,
    /// `numTemporalLayers` (3 bits).
    pub num_temporal_layers: u8,
    /// `temporalIdNested`.
    pub temporal_id_nested: bool,
    /// NAL length-prefix size minus one: 0, 1 or 3.
    pub length_size_minus_one: u8,
    /// The NAL unit arrays (VPS, SPS, PPS and possibly SEI).
    pub arrays: Vec<HvccArray>,
}

/// Size of the fixed part of the hvcC record, before the arrays.
const HVCC_HEADER_LEN: usize = 23;

fn check_parameter_sets<T: AsRef<[u8]>>(
    sets: &[T],
    nal_unit_type: u8,
    max: usize,
    missing: &'static str,
) -> Result<()> {
    if sets.is_empty() {
        return Err(Error::InvalidHevc(missing));
    }
    if sets.len() > max {
        return Err(Error::InvalidHevc("more parameter sets than H.265 allows"));
    }
    for s in sets {
        let s = s.as_ref();
        if s.len() > usize::from(u16::MAX) {
            return Err(Error::InvalidHevc(
                "a parameter set is longer than 65535 bytes",
            ));
        }
        if s.len() < 2 || nal_type(s) != Some(nal_unit_type) {
            return Err(Error::InvalidHevc(
                "a parameter set has the wrong NAL unit type",
            ));
        }
    }
    Ok(())
}

impl HevcDecoderConfigurationRecord {
    /// Parses and validates an hvcC record. Trailing bytes after the record are ignored.
    pub fn parse(data: &[u8]) -> Result<Self> {
        let mut r = ByteReader::new(data);
        let h = r
            .bytes(HVCC_HEADER_LEN)
            .ok_or(Error::InvalidHevcConfig("shorter than its 23-byte header"))?;
        if h[0] != 1 {
            return Err(Error::InvalidHevcConfig("configurationVersion is not 1"));
        }
        let length_size_minus_one = h[21] & 0x03;
        if length_size_minus_one == 2 {
            return Err(Error::InvalidHevcConfig(
                "NAL length size 3 is not allowed (must be 1, 2 or 4)",
            ));
        }
        let constraint = h[6..12]
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        let mut record = HevcDecoderConfigurationRecord {
            profile_tier_level: ProfileTierLevel {
                profile_space: h[1] >> 6,
                tier_flag: h[1] & 0x20 != 0,
                profile_idc: h[1] & 0x1f,
                profile_compatibility_flags: u32::from_be_bytes([h[2], h[3], h[4], h[5]]),
                constraint_indicator_flags: constraint,
                level_idc: h[12],
            },
            min_spatial_segmentation_idc: u16::from_be_bytes([h[13], h[14]]) & 0x0fff,
            parallelism_type: h[15] & 0x03,
            chroma_format_idc: h[16] & 0x03,
            bit_depth_luma_minus8: h[17] & 0x07,
            bit_depth_chroma_minus8: h[18] & 0x07,
            avg_frame_rate: u16::from_be_bytes([h[19], h[20]]),
            constant_frame_rate: h[21] >> 6,
            num_temporal_layers: (h[21] >> 3) & 0x07,
            temporal_id_nested: h[21] & 0x04 != 0,
            length_size_minus_one,
            arrays: Vec::new(),
        };
        let truncated = Error::InvalidHevcConfig("a NAL unit array is truncated");
        for _ in 0..h[22] {
            let b = r.u8().ok_or(truncated.clone())?;
            let nal_unit_type = b & 0x3f;
            let count = r.u16().ok_or(truncated.clone())?;
            let mut nal_units = Vec::new();
            for _ in 0..count {
                let len = r.u16().ok_or(truncated.clone())?;
                let nal = r.bytes(usize::from(len)).ok_or(truncated.clone())?;
                if nal.len() < 2 || nal_type(nal) != Some(nal_unit_type) {
                    return Err(Error::InvalidHevcConfig(
                        "a NAL unit in an array is not of the array's type",
                    ));
                }
                nal_units.push(nal.to_vec());
            }
            record.arrays.push(HvccArray {
                array_completeness: b & 0x80 != 0,
                nal_unit_type,
                nal_units,
            });
        }
        Ok(record)
    }

    /// NAL length-prefix size in bytes (1, 2 or 4) of the stream this record describes.
    pub fn length_size(&self) -> usize {
        usize::from(self.length_size_minus_one & 0x03) + 1
    }

    /// The NAL units of one type from all arrays, in record order.
    pub fn nal_units(&self, nal_unit_type: u8) -> impl Iterator<Item = &[u8]> {
        self.arrays
            .iter()
            .filter(move |a| a.nal_unit_type == nal_unit_type)
            .flat_map(|a| a.nal_units.iter().map(Vec::as_slice))
    }

    /// Parses the record's first SPS, for the picture size and colour of a stream whose
    /// `codec_data` is given.
    pub fn sps_info(&self) -> Result<SpsInfo> {
        let sps = self
            .nal_units(NAL_SPS)
            .next()
            .ok_or(Error::InvalidHevcConfig("holds no SPS"))?;
        parse_sps(sps)
    }

    /// Serialises the record.
    ///
    /// Records from [`parse`](Self::parse) and [`from_parameter_sets`](Self::from_parameter_sets)
    /// always fit the format; for hand-built ones fields are masked to their widths, only the
    /// first 255 arrays and 65535 NAL units per array are written and NAL units longer than
    /// 65535 bytes are skipped, as the format cannot express more.
    pub fn to_bytes(&self) -> Vec<u8> {
        let p = &self.profile_tier_level;
        let mut out = Vec::with_capacity(
            HVCC_HEADER_LEN
                + self
                    .arrays
                    .iter()
                    .map(|a| 3 + a.nal_units.iter().map(|n| n.len() + 2).sum::<usize>())
                    .sum::<usize>(),
        );
        out.push(1);
        out.push(
            (p.profile_space & 0x03) << 6 | u8::from(p.tier_flag) << 5 | (p.profile_idc & 0x1f),
        );
        out.extend_from_slice(&p.profile_compatibility_flags.to_be_bytes());
        out.extend_from_slice(&p.constraint_indicator_flags.to_be_bytes()[2..]);
        out.push(p.level_idc);
        out.extend_from_slice(
            &(0xf000 | (self.min_spatial_segmentation_idc & 0x0fff)).to_be_bytes(),
        );
        out.push(0xfc | (self.parallelism_type & 0x03));
        out.push(0xfc | (self.chroma_format_idc & 0x03));
        out.push(0xf8 | (self.bit_depth_luma_minus8 & 0x07));
        out.push(0xf8 | (self.bit_depth_chroma_minus8 & 0x07));
        out.extend_from_slice(&self.avg_frame_rate.to_be_bytes());
        out.push(
            (self.constant_frame_rate & 0x03) << 6
                | (self.num_temporal_layers & 0x07) << 3
                | u8::from(self.temporal_id_nested) << 2
                | (self.length_size_minus_one & 0x03),
        );
        let arrays: Vec<&HvccArray> = self.arrays.iter().take(255).collect();
        out.push(arrays.len() as u8);
        for a in arrays {
            out.push(u8::from(a.array_completeness) << 7 | (a.nal_unit_type & 0x3f));
            let nals: Vec<&Vec<u8>> = a
                .nal_units
                .iter()
                .filter(|n| n.len() <= usize::from(u16::MAX))
                .take(usize::from(u16::MAX))
                .collect();
            out.extend_from_slice(&(nals.len() as u16).to_be_bytes());
            for n in nals {
                out.extend_from_slice(&(n.len() as u16).to_be_bytes());
                out.extend_from_slice(n);
            }
        }
        out
    }

    /// Builds a record with 4-byte NAL lengths from in-band parameter sets.
    ///
    /// Fields follow GStreamer's `h265parse` and FFmpeg (`hvcc.c`), which produce the same
    /// bytes for ordinary streams: profile, tier, level and the 48 constraint bits from the
    /// first SPS; `min_spatial_segmentation_idc` from its VUI (0 without); chroma format and
    /// bit depths from the SPS; `parallelismType`, `avgFrameRate` and `constantFrameRate` 0;
    /// `numTemporalLayers` and `temporalIdNested` from the SPS; arrays in VPS, SPS, PPS order
    /// with `array_completeness` 0, as both write it (parameter sets may also come in-band).
    pub fn from_parameter_sets<T: AsRef<[u8]>>(vps: &[T], sps: &[T], pps: &[T]) -> Result<Self> {
        check_parameter_sets(
            vps,
            NAL_VPS,
            MAX_VPS,
            "stream has no VPS before its first keyframe",
        )?;
        check_parameter_sets(
            sps,
            NAL_SPS,
            MAX_SPS,
            "stream has no SPS before its first keyframe",
        )?;
        check_parameter_sets(
            pps,
            NAL_PPS,
            MAX_PPS,
            "stream has no PPS before its first keyframe",
        )?;
        parse_vps(vps[0].as_ref())?;
        let info = parse_sps(sps[0].as_ref())?;
        let array = |nal_unit_type, sets: &[T]| HvccArray {
            array_completeness: false,
            nal_unit_type,
            nal_units: sets.iter().map(|s| s.as_ref().to_vec()).collect(),
        };
        Ok(HevcDecoderConfigurationRecord {
            profile_tier_level: info.profile_tier_level,
            min_spatial_segmentation_idc: info
                .vui
                .as_ref()
                .map_or(0, |v| v.min_spatial_segmentation_idc),
            parallelism_type: 0,
            chroma_format_idc: info.chroma_format_idc,
            bit_depth_luma_minus8: info.bit_depth_luma - 8,
            bit_depth_chroma_minus8: info.bit_depth_chroma - 8,
            avg_frame_rate: 0,
            constant_frame_rate: 0,
            num_temporal_layers: info.max_sub_layers,
            temporal_id_nested: info.temporal_id_nesting,
            length_size_minus_one: 3,
            arrays: vec![
                array(NAL_VPS, vps),
                array(NAL_SPS, sps),
                array(NAL_PPS, pps),
            ],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::testutil::hex;

    /// What GStreamer's h265parse gives as codec_data for x265 3.5 output (x265enc
    /// speed-preset=ultrafast, 64x48 I420), and what FFmpeg 9 writes into FLV for the same
    /// Annex-B input.
    const GST_HVCC: &str = "0101600000009000000000003ff000fcfdf8f800000f03200001001840010c01ffff01600000030090000003000003003f959409210001003042010101600000030090000003000003003fa0208316595952930bffc00040005a830303020000030002000003003c1022000100064401c073c089";
    /// The PPS of that stream.
    const PPS: &str = "4401c073c089";

    fn parameter_sets() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let gst = HevcDecoderConfigurationRecord::parse(&hex(GST_HVCC)).unwrap();
        let get = |t| gst.nal_units(t).next().unwrap().to_vec();
        (get(NAL_VPS), get(NAL_SPS), get(NAL_PPS))
    }

    #[test]
    fn nal_header_fields() {
        assert_eq!(nal_type(&[0x40, 0x01]), Some(NAL_VPS));
        assert_eq!(nal_type(&[0x26, 0x01]), Some(NAL_IDR_W_RADL));
        assert_eq!(nuh_layer_id(&[0x41, 0x09]), Some(33));
        assert_eq!(nuh_layer_id(&[0x40]), None);
        assert!(is_irap(NAL_CRA) && is_irap(NAL_BLA_W_LP) && !is_irap(1) && !is_irap(NAL_VPS));
    }

    #[test]
    fn parse_x265_vps_and_sps() {
        let (vps, sps, _) = parameter_sets();
        let v = parse_vps(&vps).unwrap();
        assert_eq!(
            (v.vps_id, v.max_sub_layers, v.temporal_id_nesting),
            (0, 1, true)
        );
        assert_eq!(v.profile_tier_level.profile_idc, 1);
        let s = parse_sps(&sps).unwrap();
        assert_eq!((s.width, s.height), (64, 48));
        assert_eq!((s.coded_width, s.coded_height), (64, 48));
        assert_eq!(s.chroma_format_idc, 1);
        assert_eq!((s.bit_depth_luma, s.bit_depth_chroma), (8, 8));
        let p = s.profile_tier_level;
        assert_eq!((p.profile_space, p.tier_flag, p.profile_idc), (0, false, 1));
        assert_eq!(p.profile_compatibility_flags, 0x6000_0000);
        assert_eq!(p.constraint_indicator_flags, 0x9000_0000_0000);
        assert_eq!(p.level_idc, 63);
        let vui = s.vui.expect("x265 writes a VUI");
        assert_eq!(vui.min_spatial_segmentation_idc, 0);
        assert_eq!(vui.frame_rate, Some((30, 1)));
    }

    #[test]
    fn record_from_parameter_sets_matches_h265parse() {
        let (vps, sps, pps) = parameter_sets();
        let built =
            HevcDecoderConfigurationRecord::from_parameter_sets(&[vps], &[sps], &[pps]).unwrap();
        assert_eq!(built.to_bytes(), hex(GST_HVCC));
        assert_eq!(built.length_size(), 4);
        assert_eq!(built.sps_info().unwrap().width, 64);
    }

    #[test]
    fn record_round_trips() {
        let mut r = HevcDecoderConfigurationRecord::parse(&hex(GST_HVCC)).unwrap();
        assert_eq!(r.to_bytes(), hex(GST_HVCC));
        r.profile_tier_level.tier_flag = true;
        r.profile_tier_level.profile_space = 2;
        r.arrays[0].array_completeness = true;
        r.length_size_minus_one = 1;
        r.min_spatial_segmentation_idc = 0x123;
        r.avg_frame_rate = 7680;
        r.constant_frame_rate = 1;
        let bytes = r.to_bytes();
        assert_eq!(HevcDecoderConfigurationRecord::parse(&bytes).unwrap(), r);
        assert_eq!(bytes[1], 0xa1);
        assert_eq!(bytes[23], 0xa0);
    }

    #[test]
    fn record_errors() {
        let good = hex(GST_HVCC);
        assert!(HevcDecoderConfigurationRecord::parse(&good[..22]).is_err());
        let mut v0 = good.clone();
        v0[0] = 0;
        assert!(HevcDecoderConfigurationRecord::parse(&v0).is_err());
        let mut len3 = good.clone();
        len3[21] = (len3[21] & !3) | 2;
        assert!(HevcDecoderConfigurationRecord::parse(&len3).is_err());
        for cut in 23..good.len() {
            assert!(
                HevcDecoderConfigurationRecord::parse(&good[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut wrong_type = good.clone();
        wrong_type[23] = 0x21;
        assert!(HevcDecoderConfigurationRecord::parse(&wrong_type).is_err());
        let (vps, sps, pps) = parameter_sets();
        let none: &[Vec<u8>] = &[];
        for (v, s, p) in [
            (none, std::slice::from_ref(&sps), std::slice::from_ref(&pps)),
            (std::slice::from_ref(&vps), none, std::slice::from_ref(&pps)),
            (std::slice::from_ref(&vps), std::slice::from_ref(&sps), none),
            (
                std::slice::from_ref(&sps),
                std::slice::from_ref(&sps),
                std::slice::from_ref(&pps),
            ),
        ] {
            assert!(HevcDecoderConfigurationRecord::from_parameter_sets(v, s, p).is_err());
        }
    }

    #[test]
    fn annexb_conversion_and_length_prefixed_info() {
        let (vps, sps, pps) = parameter_sets();
        let idr = [0x26, 0x01, 0xaf, 0x00, 0x10];
        let aud = [0x46, 0x01, 0x50];
        let mut annexb = vec![0, 0, 0, 1];
        annexb.extend_from_slice(&aud);
        for nal in [&vps[..], &sps, &pps, &idr] {
            annexb.extend_from_slice(&[0, 0, 1]);
            annexb.extend_from_slice(nal);
        }
        let mut out = Vec::new();
        let info = annexb_to_length_prefixed(&annexb, &mut out).unwrap();
        assert!(info.keyframe && info.has_parameter_sets());
        assert_eq!((info.nal_units, info.dropped_nals), (5, 1));
        assert_eq!(info.sps, std::slice::from_ref(&sps));
        let back = length_prefixed_info(&out, 4).unwrap();
        assert_eq!((back.nal_units, back.dropped_nals), (4, 0));
        assert_eq!(back.vps, info.vps);
        let nals: Vec<&[u8]> = length_prefixed_nals(&out, 4).map(Result::unwrap).collect();
        assert_eq!(nals, [&vps[..], &sps, &pps, &idr]);
        // Trailing half NAL unit, bad length size, no start code.
        assert!(length_prefixed_info(&out[..out.len() - 1], 4).is_err());
        assert!(length_prefixed_info(&out, 3).is_err());
        assert!(length_prefixed_info(&[], 4).is_err());
        assert!(annexb_to_length_prefixed(&[1, 2, 3], &mut out).is_err());
        let trail = [0x02, 0x01, 0x11];
        let mut inter = Vec::new();
        inter.extend_from_slice(&[0, 0, 0, 3]);
        inter.extend_from_slice(&trail);
        assert!(!length_prefixed_info(&inter, 4).unwrap().keyframe);
    }

    // -----------------------------------------------------------------------------------------
    // Synthetic SPS exercising the less common syntax
    // -----------------------------------------------------------------------------------------

    #[derive(Default)]
    struct W {
        bits: Vec<bool>,
    }

    impl W {
        fn put(&mut self, n: u32, v: u64) {
            for i in (0..n).rev() {
                self.bits.push((v >> i) & 1 == 1);
            }
        }
        fn ue(&mut self, v: u32) {
            let v = u64::from(v) + 1;
            let len = 64 - v.leading_zeros();
            self.put(len - 1, 0);
            self.put(len, v);
        }
        fn se(&mut self, v: i32) {
            self.ue(if v > 0 {
                2 * v as u32 - 1
            } else {
                (-2 * v) as u32
            });
        }
        fn nal(mut self, header: [u8; 2]) -> Vec<u8> {
            self.bits.push(true);
            while !self.bits.len().is_multiple_of(8) {
                self.bits.push(false);
            }
            let rbsp: Vec<u8> = self
                .bits
                .chunks(8)
                .map(|c| c.iter().fold(0u8, |a, &b| (a << 1) | u8::from(b)))
                .collect();
            let mut nal = header.to_vec();
            let mut zeros = 0;
            for b in rbsp {
                if zeros >= 2 && b <= 3 {
                    nal.push(3);
                    zeros = 0;
                }
                zeros = if b == 0 { zeros + 1 } else { 0 };
                nal.push(b);
            }
            nal
        }
    }

    /// 4:2:2 10-bit, 2 sub-layers, conformance window, scaling lists, PCM, predicted
    /// short-term sets, long-term pictures and a VUI with colour, timing, HRD and bitstream
    /// restrictions.
    fn synthetic_sps() -> Vec<u8> {
        let mut w = W::default();
        w.put(4, 0); // vps id
        w.put(3, 1); // max_sub_layers_minus1
        w.put(1, 0); // temporal id nesting
        // profile_tier_level: Main 4:2:2 10 (RExt, idc 4), High tier, level 5.1
        w.put(2, 0);
        w.put(1, 1);
        w.put(5, 4);
        w.put(32, 0x0800_0000);
        w.put(48, 0xb000_0000_0001);
        w.put(8, 153);
        w.put(2, 0b11); // sub-layer 0: profile and level present
        w.put(2 * 7, 0); // reserved_zero_2bits for 1..8
        w.put(24, 0x01_2345);
        w.put(64, 0x6789_abcd_ef01_2345);
        w.put(8, 120);
        w.ue(3); // sps id
        w.ue(2); // chroma 4:2:2
        w.ue(1928); // width
        w.ue(1088); // height
        w.put(1, 1);
        for o in [2, 2, 0, 4] {
            w.ue(o);
        }
        w.ue(2); // luma 10 bit
        w.ue(2);
        w.ue(4); // log2_max_poc_lsb_minus4 -> 8 bits
        w.put(1, 1); // ordering info for all sub-layers
        for _ in 0..2 {
            w.ue(4);
            w.ue(2);
            w.ue(0);
        }
        for v in [0, 3, 0, 3, 1, 1] {
            w.ue(v);
        }
        w.put(1, 1); // scaling_list_enabled
        w.put(1, 1); // sps_scaling_list_data_present
        for size_id in 0..4 {
            let step = if size_id == 3 { 3 } else { 1 };
            let mut m = 0;
            while m < 6 {
                if m == 0 {
                    w.put(1, 1);
                    let n = 64.min(1 << (4 + (size_id << 1)));
                    if size_id > 1 {
                        w.se(-3);
                    }
                    for i in 0..n {
                        w.se(if i % 2 == 0 { 1 } else { -1 });
                    }
                } else {
                    w.put(1, 0);
                    w.ue(1);
                }
                m += step;
            }
        }
        w.put(2, 0b11); // amp, sao
        w.put(1, 1); // pcm
        w.put(8, 0x77);
        w.ue(0);
        w.ue(1);
        w.put(1, 0);
        w.ue(4); // four short-term sets
        // set 0: two negative, one positive
        w.ue(2);
        w.ue(1);
        for d in [0, 1] {
            w.ue(d);
            w.put(1, 1);
        }
        w.ue(1);
        w.put(1, 1);
        // set 1 predicted from set 0 (3 pictures + itself = 4 flag pairs), delta_rps -1
        w.put(1, 1);
        w.put(1, 1);
        w.ue(0);
        for used in [true, false, true, true] {
            w.put(1, u64::from(used));
            if !used {
                w.put(1, 1);
            }
        }
        // Set 1 is {-1, -2, -4 | +1}. Set 2 predicted from it with delta_rps +2 and every
        // use_delta_flag set gives {-2 | +1, +2, +3}: the entry -2 + 2 = 0 is not a picture.
        w.put(1, 1);
        w.put(1, 0);
        w.ue(1);
        for _ in 0..5 {
            w.put(1, 1);
        }
        // Set 3 predicted from set 2: 4 pictures + itself = 5 flag pairs (6 if the zero entry
        // were wrongly counted, which would shift everything after).
        w.put(1, 1);
        w.put(1, 1);
        w.ue(0);
        for _ in 0..5 {
            w.put(1, 1);
        }
        w.put(1, 1); // long-term present
        w.ue(2);
        for _ in 0..2 {
            w.put(8, 0x55);
            w.put(1, 1);
        }
        w.put(2, 0b11); // temporal mvp, strong intra smoothing
        w.put(1, 1); // vui present
        w.put(1, 1);
        w.put(8, 255);
        w.put(32, 0x0001_0001);
        w.put(1, 1);
        w.put(1, 0);
        w.put(1, 1); // video signal type
        w.put(3, 5);
        w.put(1, 1); // full range
        w.put(1, 1);
        w.put(24, 0x09_10_09);
        w.put(1, 1);
        w.ue(1);
        w.ue(1);
        w.put(3, 0);
        w.put(1, 1);
        for o in [0, 0, 8, 8] {
            w.ue(o);
        }
        w.put(1, 1); // timing
        w.put(32, 1001);
        w.put(32, 60000);
        w.put(1, 1);
        w.ue(0);
        w.put(1, 1); // hrd
        w.put(2, 0b11); // nal + vcl hrd
        w.put(1, 1); // sub_pic
        w.put(19, 0);
        w.put(8, 0);
        w.put(4, 0);
        w.put(15, 0);
        for _ in 0..2 {
            w.put(1, 0); // not fixed general
            w.put(1, 0); // not fixed within cvs
            w.put(1, 0); // not low delay
            w.ue(1); // two cpbs
            for _ in 0..2 * 2 {
                for _ in 0..4 {
                    w.ue(7);
                }
                w.put(1, 0);
            }
        }
        w.put(1, 1); // bitstream restriction
        w.put(3, 0);
        w.ue(200);
        for _ in 0..4 {
            w.ue(1);
        }
        w.put(1, 0); // sps_extension_present_flag
        w.nal([0x42, 0x01])
    }

    #[test]
    fn parse_synthetic_sps() {
        let s = parse_sps(&synthetic_sps()).unwrap();
        assert_eq!(
            (s.sps_id, s.max_sub_layers, s.temporal_id_nesting),
            (3, 2, false)
        );
        assert_eq!(
            (s.chroma_format_idc, s.bit_depth_luma, s.bit_depth_chroma),
            (2, 10, 10)
        );
        assert_eq!((s.coded_width, s.coded_height), (1928, 1088));
        // 4:2:2: horizontal offsets in units of 2, vertical in units of 1.
        assert_eq!((s.width, s.height), (1920, 1084));
        let p = s.profile_tier_level;
        assert_eq!((p.tier_flag, p.profile_idc, p.level_idc), (true, 4, 153));
        assert_eq!(p.constraint_indicator_flags, 0xb000_0000_0001);
        let vui = s.vui.expect("the VUI after all the tricky syntax");
        assert!(vui.full_range);
        assert_eq!(
            vui.colour,
            Some(ColourDescription {
                primaries: 9,
                transfer_characteristics: 16,
                matrix_coefficients: 9,
            })
        );
        assert_eq!(vui.frame_rate, Some((60000, 1001)));
        assert_eq!(vui.min_spatial_segmentation_idc, 200);
        let record = HevcDecoderConfigurationRecord::from_parameter_sets(
            &[parameter_sets().0],
            &[synthetic_sps()],
            &[hex(PPS)],
        )
        .unwrap();
        let bytes = record.to_bytes();
        assert_eq!(&bytes[1..13], &hex("2408000000b0000000000199")[..]);
        assert_eq!(bytes[12], 153);
        assert_eq!(&bytes[13..22], &hex("f0c8fcfefafa000013")[..]);
    }

    #[test]
    fn sps_truncations_and_bad_values_are_errors() {
        let sps = synthetic_sps();
        for cut in 2..sps.len() {
            match parse_sps(&sps[..cut]) {
                // Cut inside the VUI part: still parses, VUI dropped or shortened.
                Ok(s) => assert_eq!(s.width, 1920),
                Err(e) => assert!(matches!(e, Error::InvalidHevc(_))),
            }
        }
        assert!(parse_sps(&[0x42]).is_err());
        assert!(parse_sps(&hex(PPS)).is_err());
        let mut layer1 = sps.clone();
        layer1[1] |= 0x08;
        assert!(parse_sps(&layer1).is_err());
    }
}
