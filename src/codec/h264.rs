//! H.264 elementary streams: Annex-B and AVC (length-prefixed) access units, the avcC record
//! (AVCDecoderConfigurationRecord, ISO/IEC 14496-15 §5.3.3) and the sequence parameter set
//! (ITU-T H.264 §7.3.2.1).
//!
//! RTMP carries H.264 as AVC: every NAL unit prefixed with its length, the parameter sets sent
//! separately in an avcC "sequence header". [`AvccView`] presents byte-stream input in that
//! form without copying it ([`annexb_to_avcc`] makes a copy), [`avcc_info`] checks
//! length-prefixed input, which is sent as it is. No NAL unit is ever removed.

use std::ops::Range;

use super::bits::{Bits, ByteReader, unescape_rbsp};
use super::{Error, Result};

/// NAL unit type of a coded slice of a non-IDR picture.
pub const NAL_SLICE: u8 = 1;
/// NAL unit type of slice data partition A.
pub const NAL_SLICE_DPA: u8 = 2;
/// NAL unit type of a coded slice of an IDR picture (a keyframe).
pub const NAL_IDR: u8 = 5;
/// NAL unit type of supplemental enhancement information.
pub const NAL_SEI: u8 = 6;
/// NAL unit type of a sequence parameter set.
pub const NAL_SPS: u8 = 7;
/// NAL unit type of a picture parameter set.
pub const NAL_PPS: u8 = 8;
/// NAL unit type of an access unit delimiter.
pub const NAL_AUD: u8 = 9;
/// NAL unit type of end of sequence.
pub const NAL_END_SEQ: u8 = 10;
/// NAL unit type of end of stream.
pub const NAL_END_STREAM: u8 = 11;
/// NAL unit type of filler data.
pub const NAL_FILLER: u8 = 12;
/// NAL unit type of a sequence parameter set extension.
pub const NAL_SPS_EXT: u8 = 13;
/// NAL unit type of a prefix NAL unit (SVC/MVC).
pub const NAL_PREFIX: u8 = 14;
/// NAL unit type of a subset sequence parameter set (SVC/MVC).
pub const NAL_SUBSET_SPS: u8 = 15;

/// The `nal_unit_type` of a NAL unit (low 5 bits of its first byte), `None` if it is empty.
pub fn nal_type(nal: &[u8]) -> Option<u8> {
    nal.first().map(|b| b & 0x1f)
}

// ---------------------------------------------------------------------------------------------
// Annex-B and AVC access units
// ---------------------------------------------------------------------------------------------

/// Position of the first `00 00 01` start code at or after `from`.
fn find_start_code(data: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    // Look at the third byte first: if it is > 1 no start code can begin at i, i+1 or i+2.
    while i + 2 < data.len() {
        match data[i + 2] {
            0 => i += 1,
            1 if data[i] == 0 && data[i + 1] == 0 => return Some(i),
            // A 1 not preceded by two zeros, or any byte > 1: no start code overlaps it.
            _ => i += 3,
        }
    }
    None
}

/// Iterator over where the NAL units of an Annex-B buffer are, see [`annexb_nal_ranges`].
#[derive(Debug, Clone)]
pub struct AnnexBNalRanges<'a> {
    data: &'a [u8],
    /// Start of the next NAL unit (just after its start code), `data.len()` when done.
    pos: usize,
}

impl Iterator for AnnexBNalRanges<'_> {
    type Item = Range<usize>;

    fn next(&mut self) -> Option<Range<usize>> {
        while self.pos < self.data.len() {
            let start = self.pos;
            let mut end = match find_start_code(self.data, start) {
                Some(sc) => {
                    self.pos = sc + 3;
                    sc
                }
                None => {
                    self.pos = self.data.len();
                    self.data.len()
                }
            };
            // Zero bytes before a start code are the zero_byte of a 4-byte start code or
            // trailing_zero_8bits (H.264 Annex B.1); a NAL unit never ends in 0x00.
            while end > start && self.data[end - 1] == 0 {
                end -= 1;
            }
            if end > start {
                return Some(start..end);
            }
        }
        None
    }
}

/// Where the NAL units of an Annex-B byte-stream buffer are (without start codes), as ranges of
/// `data`.
///
/// Both 3-byte (`00 00 01`) and 4-byte (`00 00 00 01`) start codes are recognised; zero bytes
/// before a start code belong to the start code. Bytes before the first start code and empty
/// NAL units are skipped.
pub fn annexb_nal_ranges(data: &[u8]) -> AnnexBNalRanges<'_> {
    let pos = find_start_code(data, 0).map_or(data.len(), |sc| sc + 3);
    AnnexBNalRanges { data, pos }
}

/// Iterator over the NAL units of an Annex-B buffer, see [`annexb_nals`].
#[derive(Debug, Clone)]
pub struct AnnexBNals<'a> {
    ranges: AnnexBNalRanges<'a>,
}

impl<'a> Iterator for AnnexBNals<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let range = self.ranges.next()?;
        self.ranges.data.get(range)
    }
}

/// Splits an Annex-B byte-stream buffer into its NAL units (without start codes), like
/// [`annexb_nal_ranges`].
pub fn annexb_nals(data: &[u8]) -> AnnexBNals<'_> {
    AnnexBNals {
        ranges: annexb_nal_ranges(data),
    }
}

/// Why a length-prefixed NAL unit could not be read; H.264 and H.265 each give it their own
/// error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PrefixError {
    /// The length size is not 1, 2 or 4.
    LengthSize,
    /// The prefix or the NAL unit it announces runs past the end of the buffer.
    Truncated {
        offset: usize,
        needed: usize,
        available: usize,
    },
}

/// Splits a buffer of length-prefixed NAL units (AVC, `hvc1`/`hev1`); it ends after the first
/// error instead of repeating it.
#[derive(Debug, Clone)]
pub(super) struct LengthPrefixed<'a> {
    data: &'a [u8],
    length_size: usize,
    pos: usize,
    failed: bool,
}

impl<'a> LengthPrefixed<'a> {
    pub(super) fn new(data: &'a [u8], length_size: usize) -> Self {
        LengthPrefixed {
            data,
            length_size,
            pos: 0,
            failed: false,
        }
    }

    fn next_nal(&mut self) -> std::result::Result<&'a [u8], PrefixError> {
        if !matches!(self.length_size, 1 | 2 | 4) {
            return Err(PrefixError::LengthSize);
        }
        let offset = self.pos;
        let available = self.data.len() - offset;
        let prefix =
            self.data
                .get(offset..offset + self.length_size)
                .ok_or(PrefixError::Truncated {
                    offset,
                    needed: self.length_size,
                    available,
                })?;
        let len = prefix
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        let start = offset + self.length_size;
        let nal = self
            .data
            .get(start..)
            .and_then(|rest| rest.get(..len))
            .ok_or(PrefixError::Truncated {
                offset,
                needed: len,
                available: available - self.length_size,
            })?;
        self.pos = start + len;
        Ok(nal)
    }
}

impl<'a> Iterator for LengthPrefixed<'a> {
    type Item = std::result::Result<&'a [u8], PrefixError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.data.len() {
            return None;
        }
        let result = self.next_nal();
        self.failed = result.is_err();
        Some(result)
    }
}

/// Iterator over the NAL units of an AVC (length-prefixed) buffer, see [`avcc_nals`].
#[derive(Debug, Clone)]
pub struct AvccNals<'a> {
    inner: LengthPrefixed<'a>,
}

impl<'a> Iterator for AvccNals<'a> {
    type Item = Result<&'a [u8]>;

    fn next(&mut self) -> Option<Result<&'a [u8]>> {
        let length_size = self.inner.length_size;
        Some(self.inner.next()?.map_err(|e| match e {
            PrefixError::LengthSize => Error::InvalidNalLengthSize(length_size),
            PrefixError::Truncated {
                offset,
                needed,
                available,
            } => Error::TruncatedNal {
                offset,
                needed,
                available,
            },
        }))
    }
}

/// Splits an AVC (length-prefixed) buffer into its NAL units.
///
/// `length_size` is the prefix size from the avcC record (1, 2 or 4). Yields an error (and then
/// ends) for an invalid length size or a prefix that runs past the end of the buffer.
pub fn avcc_nals(data: &[u8], length_size: usize) -> AvccNals<'_> {
    AvccNals {
        inner: LengthPrefixed::new(data, length_size),
    }
}

/// What an access unit contains, as far as RTMP publishing cares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccessUnitInfo {
    /// The access unit contains an IDR slice, i.e. it is a keyframe.
    pub keyframe: bool,
    /// The access unit carries SPS or PPS NAL units in band (they stay in it; a caller that
    /// builds the avcC from them reads them with [`avcc_nals`] or [`AvccView::nals`]).
    pub parameter_sets: bool,
}

impl AccessUnitInfo {
    /// Records what one NAL unit contributes to the access unit.
    fn add(&mut self, nal: &[u8]) {
        match nal_type(nal) {
            Some(NAL_IDR) => self.keyframe = true,
            Some(NAL_SPS | NAL_PPS) => self.parameter_sets = true,
            _ => {}
        }
    }
}

/// What the NAL units of one access unit say (see [`AccessUnitInfo`]).
pub fn access_unit_info<'a>(nals: impl IntoIterator<Item = &'a [u8]>) -> AccessUnitInfo {
    let mut info = AccessUnitInfo::default();
    for nal in nals {
        info.add(nal);
    }
    info
}

/// Checks an AVC (length-prefixed) access unit and reports what it contains, without copying.
///
/// The NAL units must fill the buffer exactly. Nothing is removed: every NAL unit (AUD, SEI
/// and filler included) belongs to the access unit as sent.
pub fn avcc_info(data: &[u8], length_size: usize) -> Result<AccessUnitInfo> {
    if !matches!(length_size, 1 | 2 | 4) {
        return Err(Error::InvalidNalLengthSize(length_size));
    }
    let mut info = AccessUnitInfo::default();
    let mut any = false;
    for nal in avcc_nals(data, length_size) {
        any = true;
        info.add(nal?);
    }
    if !any {
        return Err(Error::NoNalUnits);
    }
    Ok(info)
}

/// One NAL unit of an [`AvccView`]: its 4-byte big-endian length prefix and where its bytes
/// start in the Annex-B buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct NalSpan {
    prefix: [u8; 4],
    start: usize,
}

impl NalSpan {
    fn range(&self) -> Range<usize> {
        self.start..self.start + u32::from_be_bytes(self.prefix) as usize
    }
}

/// An Annex-B access unit in AVC form without copying it: for each NAL unit a 4-byte length
/// prefix, held here, and the unit's range in the Annex-B buffer.
///
/// The AVC bytes are the concatenation of [`parts`](Self::parts) (prefix, NAL unit, prefix, NAL
/// unit, …), ready for a vectored writer such as [`ChunkWriter`](crate::rtmp::chunk::ChunkWriter);
/// they equal what [`annexb_to_avcc`] writes. Every NAL unit is kept, AUD, SEI, filler and
/// parameter sets included, as `h264parse` does when it converts to `stream-format=avc`. Up to
/// eight NAL units are stored inline, so building a view usually allocates nothing.
///
/// The view stores positions only: pass it the same buffer it was built from. With another
/// buffer, units that do not fit it come out empty (never a panic).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AvccView {
    inline: [NalSpan; AvccView::INLINE_NALS],
    /// NAL units after the first [`INLINE_NALS`](Self::INLINE_NALS).
    spill: Vec<NalSpan>,
    count: usize,
    /// Length of the AVC form in bytes.
    len: usize,
}

impl AvccView {
    /// NAL units a view holds without allocating: an access unit of GStreamer's encoders has an
    /// AUD, SPS, PPS, SEI and one slice at most, unless it is cut into several slices.
    pub const INLINE_NALS: usize = 8;

    /// Finds the NAL units of an Annex-B access unit. Fails with [`Error::NoNalUnits`] if the
    /// buffer holds none, with [`Error::NalTooLarge`] for a NAL unit of 4 GiB or more.
    pub fn from_annexb(data: &[u8]) -> Result<Self> {
        let mut view = AvccView::default();
        for range in annexb_nal_ranges(data) {
            let len = range.len();
            let prefix = u32::try_from(len)
                .map_err(|_| Error::NalTooLarge(len))?
                .to_be_bytes();
            let span = NalSpan {
                prefix,
                start: range.start,
            };
            match view.inline.get_mut(view.count) {
                Some(slot) => *slot = span,
                None => view.spill.push(span),
            }
            view.count += 1;
            view.len += 4 + len;
        }
        if view.count == 0 {
            return Err(Error::NoNalUnits);
        }
        Ok(view)
    }

    fn spans(&self) -> impl Iterator<Item = &NalSpan> + Clone {
        self.inline[..self.count.min(Self::INLINE_NALS)]
            .iter()
            .chain(self.spill.iter())
    }

    /// Number of NAL units.
    pub fn nal_count(&self) -> usize {
        self.count
    }

    /// Length of the AVC form in bytes (NAL units plus their 4-byte prefixes).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a view without NAL units (only the default value; [`from_annexb`](Self::from_annexb)
    /// never returns one).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Where the NAL units are in the Annex-B buffer.
    pub fn nal_ranges(&self) -> impl Iterator<Item = Range<usize>> + Clone + '_ {
        self.spans().map(NalSpan::range)
    }

    /// The NAL units, borrowed from `data` (the buffer the view was built from).
    pub fn nals<'a>(&'a self, data: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + Clone + 'a {
        self.spans()
            .map(move |s| data.get(s.range()).unwrap_or_default())
    }

    /// The AVC form as slices: each NAL unit's length prefix (borrowed from the view) followed by
    /// the NAL unit (borrowed from `data`, the buffer the view was built from).
    pub fn parts<'a>(&'a self, data: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.spans()
            .flat_map(move |s| [s.prefix.as_slice(), data.get(s.range()).unwrap_or_default()])
    }

    /// Appends the AVC form to `out` (a copy, for callers that need contiguous bytes).
    pub fn write_to_vec(&self, data: &[u8], out: &mut Vec<u8>) {
        out.reserve(self.len);
        for part in self.parts(data) {
            out.extend_from_slice(part);
        }
    }
}

/// Converts an Annex-B access unit to AVC with 4-byte length prefixes, appending a copy to
/// `out`; every NAL unit is kept. [`AvccView`] does the same without copying. Fails with
/// [`Error::NoNalUnits`] if the buffer holds no NAL unit; nothing is appended on error.
pub fn annexb_to_avcc(data: &[u8], out: &mut Vec<u8>) -> Result<AccessUnitInfo> {
    let view = AvccView::from_annexb(data)?;
    view.write_to_vec(data, out);
    Ok(access_unit_info(view.nals(data)))
}

// ---------------------------------------------------------------------------------------------
// Sequence parameter set
// ---------------------------------------------------------------------------------------------

/// What a sequence parameter set says about the video.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpsInfo {
    /// `profile_idc`, e.g. 66 baseline, 77 main, 100 high.
    pub profile_idc: u8,
    /// The byte of `constraint_set0_flag`..`constraint_set5_flag` and the reserved bits.
    pub constraint_flags: u8,
    /// `level_idc`, ten times the level number (31 = level 3.1).
    pub level_idc: u8,
    /// Displayed width in pixels, after frame cropping.
    pub width: u32,
    /// Displayed height in pixels, after frame cropping.
    pub height: u32,
    /// `chroma_format_idc`: 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4.
    pub chroma_format_idc: u8,
    /// Luma bit depth (8 unless a high profile says otherwise).
    pub bit_depth_luma: u8,
    /// Chroma bit depth (8 unless a high profile says otherwise).
    pub bit_depth_chroma: u8,
    /// Frame rate as a reduced fraction (numerator, denominator), from the VUI timing info if
    /// present.
    pub frame_rate: Option<(u32, u32)>,
}

/// Profiles whose SPS carries chroma format, bit depths and scaling lists (H.264 §7.3.2.1.1).
fn sps_has_chroma_info(profile_idc: u8) -> bool {
    matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    )
}

/// Skips one scaling_list() (H.264 §7.3.2.1.1.1); its values do not matter here.
fn skip_scaling_list(r: &mut Bits<'_>, size: usize) -> Option<()> {
    let mut last_scale: i32 = 8;
    let mut next_scale: i32 = 8;
    for _ in 0..size {
        if next_scale != 0 {
            let delta = r.se()?;
            if !(-128..=127).contains(&delta) {
                return None;
            }
            next_scale = (last_scale + delta + 256) % 256;
        }
        if next_scale != 0 {
            last_scale = next_scale;
        }
    }
    Some(())
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Frame rate from VUI timing: time_scale / (2 * num_units_in_tick) (H.264 §E.2.1), reduced.
fn frame_rate(num_units_in_tick: u32, time_scale: u32) -> Option<(u32, u32)> {
    if num_units_in_tick == 0 || time_scale == 0 {
        return None;
    }
    let num = u64::from(time_scale);
    let den = 2 * u64::from(num_units_in_tick);
    let g = gcd(num, den);
    Some((u32::try_from(num / g).ok()?, u32::try_from(den / g).ok()?))
}

/// Reads the VUI (H.264 §E.1.1) up to and including timing_info and returns the frame rate.
/// `None` if there is no timing info or the VUI ends early.
fn vui_frame_rate(r: &mut Bits<'_>) -> Option<(u32, u32)> {
    if r.bit()? {
        // aspect_ratio_info_present_flag
        let aspect_ratio_idc = r.bits(8)?;
        if aspect_ratio_idc == 255 {
            r.bits(32)?; // sar_width, sar_height
        }
    }
    if r.bit()? {
        // overscan_info_present_flag
        r.bit()?;
    }
    if r.bit()? {
        // video_signal_type_present_flag: video_format, video_full_range_flag
        r.bits(4)?;
        if r.bit()? {
            // colour_primaries, transfer_characteristics, matrix_coefficients
            r.bits(24)?;
        }
    }
    if r.bit()? {
        // chroma_loc_info_present_flag
        r.ue()?;
        r.ue()?;
    }
    if !r.bit()? {
        return None; // timing_info_present_flag
    }
    let num_units_in_tick = r.bits(32)?;
    let time_scale = r.bits(32)?;
    frame_rate(num_units_in_tick, time_scale)
}

/// Parses a sequence parameter set NAL unit (with its NAL header byte, without start code or
/// length prefix) far enough to know size, format and frame rate (H.264 §7.3.2.1.1).
pub fn parse_sps(nal: &[u8]) -> Result<SpsInfo> {
    if nal_type(nal) != Some(NAL_SPS) {
        return Err(Error::InvalidSps("not an SPS NAL unit (type 7)"));
    }
    let rbsp = unescape_rbsp(&nal[1..]);
    let mut r = Bits::new(&rbsp);
    const TRUNCATED: Error = Error::InvalidSps("ends early or holds an out-of-range value");

    let profile_idc = r.bits(8).ok_or(TRUNCATED)? as u8;
    let constraint_flags = r.bits(8).ok_or(TRUNCATED)? as u8;
    let level_idc = r.bits(8).ok_or(TRUNCATED)? as u8;
    r.ue_max(31)
        .ok_or(Error::InvalidSps("seq_parameter_set_id above 31"))?;

    let mut chroma_format_idc = 1;
    let mut separate_colour_plane = false;
    let mut bit_depth_luma = 8;
    let mut bit_depth_chroma = 8;
    if sps_has_chroma_info(profile_idc) {
        chroma_format_idc =
            r.ue_max(3)
                .ok_or(Error::InvalidSps("chroma_format_idc above 3"))? as u8;
        if chroma_format_idc == 3 {
            separate_colour_plane = r.bit().ok_or(TRUNCATED)?;
        }
        // Bit depths 8..=14 (H.264 §7.4.2.1.1).
        bit_depth_luma = 8 + r
            .ue_max(6)
            .ok_or(Error::InvalidSps("luma bit depth above 14"))?
            as u8;
        bit_depth_chroma = 8 + r
            .ue_max(6)
            .ok_or(Error::InvalidSps("chroma bit depth above 14"))?
            as u8;
        r.bit().ok_or(TRUNCATED)?; // qpprime_y_zero_transform_bypass_flag
        if r.bit().ok_or(TRUNCATED)? {
            // seq_scaling_matrix_present_flag: six 4x4 lists, then two or six 8x8 lists
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit().ok_or(TRUNCATED)? {
                    let size = if i < 6 { 16 } else { 64 };
                    skip_scaling_list(&mut r, size)
                        .ok_or(Error::InvalidSps("malformed scaling list"))?;
                }
            }
        }
    }

    r.ue_max(12)
        .ok_or(Error::InvalidSps("log2_max_frame_num_minus4 above 12"))?;
    match r.ue().ok_or(TRUNCATED)? {
        0 => {
            r.ue_max(12).ok_or(Error::InvalidSps(
                "log2_max_pic_order_cnt_lsb_minus4 above 12",
            ))?;
        }
        1 => {
            r.bit().ok_or(TRUNCATED)?; // delta_pic_order_always_zero_flag
            r.se().ok_or(TRUNCATED)?; // offset_for_non_ref_pic
            r.se().ok_or(TRUNCATED)?; // offset_for_top_to_bottom_field
            let cycle = r.ue_max(255).ok_or(Error::InvalidSps(
                "num_ref_frames_in_pic_order_cnt_cycle above 255",
            ))?;
            for _ in 0..cycle {
                r.se().ok_or(TRUNCATED)?; // offset_for_ref_frame
            }
        }
        2 => {}
        _ => return Err(Error::InvalidSps("pic_order_cnt_type above 2")),
    }
    r.ue().ok_or(TRUNCATED)?; // max_num_ref_frames
    r.bit().ok_or(TRUNCATED)?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = u64::from(r.ue().ok_or(TRUNCATED)?) + 1;
    let height_map_units = u64::from(r.ue().ok_or(TRUNCATED)?) + 1;
    let frame_mbs_only = r.bit().ok_or(TRUNCATED)?;
    if !frame_mbs_only {
        r.bit().ok_or(TRUNCATED)?; // mb_adaptive_frame_field_flag
    }
    r.bit().ok_or(TRUNCATED)?; // direct_8x8_inference_flag
    let mut crop = [0u64; 4]; // left, right, top, bottom
    if r.bit().ok_or(TRUNCATED)? {
        for c in &mut crop {
            *c = u64::from(r.ue().ok_or(TRUNCATED)?);
        }
    }

    // Frame size and cropping units (H.264 §7.4.2.1.1, equations 7-13 to 7-20).
    let field_factor: u64 = if frame_mbs_only { 1 } else { 2 };
    let chroma_array_type = if separate_colour_plane {
        0
    } else {
        chroma_format_idc
    };
    let (sub_width, sub_height) = match chroma_array_type {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    let crop_unit_x = sub_width;
    let crop_unit_y = sub_height * field_factor;
    let full_width = width_mbs * 16;
    let full_height = height_map_units * 16 * field_factor;
    let crop_x = crop_unit_x * (crop[0] + crop[1]);
    let crop_y = crop_unit_y * (crop[2] + crop[3]);
    if crop_x >= full_width || crop_y >= full_height {
        return Err(Error::InvalidSps(
            "frame cropping removes the whole picture",
        ));
    }
    let width = u32::try_from(full_width - crop_x)
        .map_err(|_| Error::InvalidSps("picture width out of range"))?;
    let height = u32::try_from(full_height - crop_y)
        .map_err(|_| Error::InvalidSps("picture height out of range"))?;

    // The VUI is optional and often only partly understood by encoders; a malformed VUI only
    // loses the frame rate.
    let frame_rate = match r.bit() {
        Some(true) => vui_frame_rate(&mut r),
        _ => None,
    };

    Ok(SpsInfo {
        profile_idc,
        constraint_flags,
        level_idc,
        width,
        height,
        chroma_format_idc,
        bit_depth_luma,
        bit_depth_chroma,
        frame_rate,
    })
}

// ---------------------------------------------------------------------------------------------
// avcC: AVCDecoderConfigurationRecord
// ---------------------------------------------------------------------------------------------

/// The high-profile extension of the avcC record (ISO/IEC 14496-15 §5.3.3.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcConfigExt {
    /// `chroma_format_idc` of the SPS (2 bits).
    pub chroma_format: u8,
    /// Luma bit depth minus 8 (3 bits).
    pub bit_depth_luma_minus8: u8,
    /// Chroma bit depth minus 8 (3 bits).
    pub bit_depth_chroma_minus8: u8,
    /// Sequence parameter set extension NAL units.
    pub sps_ext: Vec<Vec<u8>>,
}

/// The avcC record (AVCDecoderConfigurationRecord, ISO/IEC 14496-15 §5.3.3.1): the H.264
/// `codec_data`, sent as the body of the AVC sequence header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcDecoderConfigurationRecord {
    /// `AVCProfileIndication` (the SPS `profile_idc`).
    pub profile_indication: u8,
    /// `profile_compatibility` (the SPS constraint flags byte).
    pub profile_compatibility: u8,
    /// `AVCLevelIndication` (the SPS `level_idc`).
    pub level_indication: u8,
    /// NAL length-prefix size minus one: 0, 1 or 3.
    pub length_size_minus_one: u8,
    /// Sequence parameter set NAL units (at most 31).
    pub sps: Vec<Vec<u8>>,
    /// Picture parameter set NAL units (at most 255).
    pub pps: Vec<Vec<u8>>,
    /// High-profile extension; `None` when absent (baseline/main/extended, or omitted by the
    /// encoder).
    pub ext: Option<AvcConfigExt>,
}

/// Whether the avcC record of a profile may carry the extension block. ISO/IEC 14496-15 (2017
/// and later) writes it for every profile except baseline (66), main (77) and extended (88).
fn avcc_profile_has_ext(profile: u8) -> bool {
    !matches!(profile, 66 | 77 | 88)
}

/// The parameter sets the avcC format can express: at most `max` entries of at most 65535
/// bytes.
fn fitting(sets: &[Vec<u8>], max: usize) -> Vec<&[u8]> {
    sets.iter()
        .filter(|s| s.len() <= usize::from(u16::MAX))
        .take(max)
        .map(Vec::as_slice)
        .collect()
}

/// Writes parameter sets as 16-bit length + NAL unit; callers pass only [`fitting`] sets.
fn write_sets(out: &mut Vec<u8>, sets: &[&[u8]]) {
    for s in sets {
        out.extend_from_slice(&(s.len() as u16).to_be_bytes());
        out.extend_from_slice(s);
    }
}

/// An avcC parameter set: 16-bit length, then the NAL unit, whose type must be `expected_type`.
fn parameter_set(r: &mut ByteReader<'_>, expected_type: u8) -> Option<Vec<u8>> {
    let len = usize::from(r.u16()?);
    let nal = r.bytes(len)?;
    (nal_type(nal) == Some(expected_type)).then(|| nal.to_vec())
}

/// Reads the optional extension block; `None` if it is absent, truncated or malformed, because
/// many encoders omit it or write it partially.
fn parse_avcc_ext(r: &mut ByteReader<'_>) -> Option<AvcConfigExt> {
    let b0 = r.u8()?;
    let b1 = r.u8()?;
    let b2 = r.u8()?;
    // The reserved bits are all ones; anything else is not an extension block.
    if b0 & 0xfc != 0xfc || b1 & 0xf8 != 0xf8 || b2 & 0xf8 != 0xf8 {
        return None;
    }
    let count = r.u8()?;
    let sps_ext = (0..count)
        .map(|_| parameter_set(r, NAL_SPS_EXT))
        .collect::<Option<Vec<_>>>()?;
    Some(AvcConfigExt {
        chroma_format: b0 & 0x03,
        bit_depth_luma_minus8: b1 & 0x07,
        bit_depth_chroma_minus8: b2 & 0x07,
        sps_ext,
    })
}

impl AvcDecoderConfigurationRecord {
    /// Parses and validates an avcC record. Trailing bytes after the record are ignored.
    pub fn parse(data: &[u8]) -> Result<Self> {
        let mut r = ByteReader::new(data);
        let header = r
            .bytes(6)
            .ok_or(Error::InvalidAvcConfig("shorter than its 6-byte header"))?;
        if header[0] != 1 {
            return Err(Error::InvalidAvcConfig("configurationVersion is not 1"));
        }
        let length_size_minus_one = header[4] & 0x03;
        if length_size_minus_one == 2 {
            return Err(Error::InvalidAvcConfig(
                "NAL length size 3 is not allowed (must be 1, 2 or 4)",
            ));
        }
        let sps = (0..header[5] & 0x1f)
            .map(|_| parameter_set(&mut r, NAL_SPS))
            .collect::<Option<Vec<_>>>()
            .ok_or(Error::InvalidAvcConfig(
                "an SPS entry is truncated or is not an SPS",
            ))?;
        let pps_count = r
            .u8()
            .ok_or(Error::InvalidAvcConfig("ends before the PPS count"))?;
        let pps = (0..pps_count)
            .map(|_| parameter_set(&mut r, NAL_PPS))
            .collect::<Option<Vec<_>>>()
            .ok_or(Error::InvalidAvcConfig(
                "a PPS entry is truncated or is not a PPS",
            ))?;
        let ext = if avcc_profile_has_ext(header[1]) {
            parse_avcc_ext(&mut r)
        } else {
            None
        };
        Ok(AvcDecoderConfigurationRecord {
            profile_indication: header[1],
            profile_compatibility: header[2],
            level_indication: header[3],
            length_size_minus_one,
            sps,
            pps,
            ext,
        })
    }

    /// NAL length-prefix size in bytes (1, 2 or 4) of the stream this record describes.
    pub fn length_size(&self) -> usize {
        usize::from(self.length_size_minus_one & 0x03) + 1
    }

    /// Serialises the record.
    ///
    /// Records from [`parse`](Self::parse) and [`from_parameter_sets`](Self::from_parameter_sets)
    /// always fit the format; for hand-built ones only the first 31 SPS and 255 PPS are written
    /// and parameter sets longer than 65535 bytes are skipped, as the format cannot express
    /// more.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![
            1,
            self.profile_indication,
            self.profile_compatibility,
            self.level_indication,
            0xfc | (self.length_size_minus_one & 0x03),
        ];
        let sps = fitting(&self.sps, 31);
        out.push(0xe0 | sps.len() as u8);
        write_sets(&mut out, &sps);
        let pps = fitting(&self.pps, 255);
        out.push(pps.len() as u8);
        write_sets(&mut out, &pps);
        if let Some(ext) = &self.ext {
            out.push(0xfc | (ext.chroma_format & 0x03));
            out.push(0xf8 | (ext.bit_depth_luma_minus8 & 0x07));
            out.push(0xf8 | (ext.bit_depth_chroma_minus8 & 0x07));
            let sps_ext = fitting(&ext.sps_ext, 255);
            out.push(sps_ext.len() as u8);
            write_sets(&mut out, &sps_ext);
        }
        out
    }

    /// Builds a record with 4-byte NAL lengths from in-band parameter sets.
    ///
    /// Profile, compatibility and level come from bytes 1..4 of the first SPS. For profiles
    /// other than baseline, main and extended the extension block is added with chroma format
    /// and bit depths from the parsed first SPS (and no SPS extensions).
    pub fn from_parameter_sets(sps: &[Vec<u8>], pps: &[Vec<u8>]) -> Result<Self> {
        let first = sps.first().ok_or(Error::MissingSps)?;
        if pps.is_empty() {
            return Err(Error::MissingPps);
        }
        if sps.len() > 31 || pps.len() > 255 {
            return Err(Error::InvalidAvcConfig(
                "more than 31 SPS or 255 PPS in one access unit",
            ));
        }
        if sps
            .iter()
            .chain(pps)
            .any(|s| s.len() > usize::from(u16::MAX))
        {
            return Err(Error::InvalidAvcConfig(
                "a parameter set is longer than 65535 bytes",
            ));
        }
        if sps.iter().any(|s| nal_type(s) != Some(NAL_SPS))
            || pps.iter().any(|s| nal_type(s) != Some(NAL_PPS))
        {
            return Err(Error::InvalidAvcConfig(
                "a parameter set has the wrong NAL unit type",
            ));
        }
        let &[_, profile, compatibility, level, ..] = first.as_slice() else {
            return Err(Error::InvalidSps("shorter than 4 bytes"));
        };
        let ext = if avcc_profile_has_ext(profile) {
            let info = parse_sps(first)?;
            Some(AvcConfigExt {
                chroma_format: info.chroma_format_idc,
                bit_depth_luma_minus8: info.bit_depth_luma - 8,
                bit_depth_chroma_minus8: info.bit_depth_chroma - 8,
                sps_ext: Vec::new(),
            })
        } else {
            None
        };
        Ok(AvcDecoderConfigurationRecord {
            profile_indication: profile,
            profile_compatibility: compatibility,
            level_indication: level,
            length_size_minus_one: 3,
            sps: sps.to_vec(),
            pps: pps.to_vec(),
            ext,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::bits::BitWriter;
    use crate::codec::testutil::hex;

    // Real parameter sets from x264 (via GStreamer x264enc, byte-stream output).
    /// 320x240, constrained baseline, level 2.1, 25 fps.
    const BASELINE_320X240_SPS: &[u8] = &[
        0x67, 0x42, 0xc0, 0x15, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x6a, 0x0c, 0x0c, 0x0d, 0x4a, 0x00,
        0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x65, 0x1e, 0x2c, 0x5c, 0x90,
    ];
    const BASELINE_320X240_PPS: &[u8] = &[0x68, 0xcb, 0x8c, 0xb2];
    /// 1280x720, high, level 3.1, 30 fps.
    const HIGH_1280X720_SPS: &[u8] = &[
        0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x6a, 0x02, 0x02, 0x02,
        0x80, 0x00, 0x00, 0x03, 0x00, 0x80, 0x00, 0x00, 0x1e, 0x47, 0x8c, 0x18, 0xcb,
    ];
    const HIGH_1280X720_PPS: &[u8] = &[0x68, 0xeb, 0xec, 0xb2, 0x2c];
    /// 1920x1080 (1088 coded, cropped), high, level 4.0, 30000/1001 fps.
    const HIGH_1920X1080_SPS: &[u8] = &[
        0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5, 0xc0, 0x5a, 0x80, 0x80,
        0x80, 0xa0, 0x00, 0x00, 0x7d, 0x20, 0x00, 0x1d, 0x4c, 0x11, 0xe3, 0x06, 0x32, 0xc0,
    ];

    /// The GStreamer x264enc codec_data for the 1280x720 stream above: no high-profile
    /// extension block.
    const GST_AVCC_HIGH: &str =
        "0164001fffe1001c6764001facd9405005bb016a02020280000003008000001e478c18cb01000568ebecb22c";
    /// ffmpeg/libx264 avcC, 1280x720 high 4:2:0 8-bit, with the extension block `fd f8 f8 00`.
    const FFMPEG_AVCC_HIGH: &str = "0164001fffe1001a6764001facd9405005bb0110000003001000000303c0f183196001000668ebe3cb22c0fdf8f800";
    /// ffmpeg/libx264 avcC, 640x360 High 4:4:4 Predictive (profile 244), chroma format 3.
    const FFMPEG_AVCC_444: &str = "01f4001effe1001b67f4001e919b281405ff1380880000030008000003019078b16cb001000668ebe3c44844fff8f800";

    fn annexb(nals: &[&[u8]], four_byte: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for nal in nals {
            if four_byte {
                out.push(0);
            }
            out.extend_from_slice(&[0, 0, 1]);
            out.extend_from_slice(nal);
        }
        out
    }

    fn avcc(nals: &[&[u8]], length_size: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for nal in nals {
            out.extend_from_slice(&(nal.len() as u32).to_be_bytes()[4 - length_size..]);
            out.extend_from_slice(nal);
        }
        out
    }

    const AUD: &[u8] = &[0x09, 0xf0];
    const FILLER: &[u8] = &[0x0c, 0xff, 0xff, 0x80];
    const IDR: &[u8] = &[0x65, 0x88, 0x84, 0x00, 0x21];
    const SLICE: &[u8] = &[0x41, 0x9a, 0x02];
    const SEI: &[u8] = &[0x06, 0x05, 0x01, 0x80];

    #[test]
    fn annexb_split_3_and_4_byte_start_codes() {
        let mut data = vec![0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x67, 0x42];
        data.extend_from_slice(&[0, 0, 0, 0, 1, 0x68, 0xce]); // extra zero before a start code
        data.extend_from_slice(&[0, 0, 1, 0x65, 0x00, 0x01, 0x00, 0x00]); // trailing zeros
        let nals: Vec<&[u8]> = annexb_nals(&data).collect();
        assert_eq!(
            nals,
            vec![
                &[0x09, 0xf0][..],
                &[0x67, 0x42],
                &[0x68, 0xce],
                &[0x65, 0x00, 0x01]
            ]
        );
    }

    #[test]
    fn annexb_skips_empty_nals_and_leading_bytes() {
        let data = [0xaa, 0, 0, 1, 0, 0, 1, 0x41, 0x01, 0, 0, 0, 1];
        let nals: Vec<&[u8]> = annexb_nals(&data).collect();
        assert_eq!(nals, vec![&[0x41, 0x01][..]]);
        assert_eq!(annexb_nals(&[]).count(), 0);
        assert_eq!(annexb_nals(&[0, 0, 1]).count(), 0);
        assert_eq!(annexb_nals(&[0x65, 0x01, 0x02]).count(), 0);
    }

    #[test]
    fn annexb_to_avcc_keeps_every_nal_unit_and_reports_parameter_sets() {
        // h264parse's byte-stream -> avc conversion keeps AUD, SEI, filler and in-band
        // parameter sets; so does ffmpeg -c copy.
        let nals = [AUD, HIGH_1280X720_SPS, HIGH_1280X720_PPS, SEI, IDR, FILLER];
        for four_byte in [false, true] {
            let data = annexb(&nals, four_byte);
            let mut out = vec![0xee]; // output is appended
            let info = annexb_to_avcc(&data, &mut out).unwrap();
            assert_eq!(
                info,
                AccessUnitInfo {
                    keyframe: true,
                    parameter_sets: true
                }
            );
            let mut expected = vec![0xee];
            expected.extend(avcc(&nals, 4));
            assert_eq!(out, expected);
        }
    }

    /// Whether `part` lies inside `buf`.
    fn inside(buf: &[u8], part: &[u8]) -> bool {
        let r = buf.as_ptr_range();
        r.start <= part.as_ptr() && part.as_ptr_range().end <= r.end
    }

    #[test]
    fn avcc_view_borrows_every_nal_unit_from_the_input() {
        let nals = [AUD, HIGH_1280X720_SPS, HIGH_1280X720_PPS, SEI, IDR, FILLER];
        // Mixed start codes and trailing zero bytes.
        let mut data = annexb(&nals[..3], true);
        data.extend(annexb(&nals[3..], false));
        data.extend_from_slice(&[0, 0]);
        let view = AvccView::from_annexb(&data).unwrap();
        assert_eq!(view.nal_count(), 6);
        assert!(view.spill.is_empty(), "six NAL units are held inline");
        let expected = avcc(&nals, 4);
        assert_eq!(view.len(), expected.len());
        let parts: Vec<&[u8]> = view.parts(&data).collect();
        assert_eq!(parts.len(), 12);
        assert_eq!(parts.concat(), expected);
        for (i, pair) in parts.chunks(2).enumerate() {
            assert_eq!(pair[0], &(nals[i].len() as u32).to_be_bytes());
            assert!(inside(&data, pair[1]), "NAL unit {i} is a copy");
            assert!(!inside(&data, pair[0]));
        }
        assert_eq!(view.nals(&data).collect::<Vec<_>>(), nals);
        assert_eq!(
            view.nal_ranges().map(|r| &data[r]).collect::<Vec<_>>(),
            nals
        );
        let mut copy = vec![1];
        view.write_to_vec(&data, &mut copy);
        assert_eq!(copy[1..], expected[..]);
    }

    #[test]
    fn avcc_view_with_many_nal_units_and_foreign_buffers() {
        // Twenty slices: more than the inline store holds.
        let slices: Vec<Vec<u8>> = (0..20u8).map(|i| vec![0x41, 0x9a, i + 1]).collect();
        let refs: Vec<&[u8]> = slices.iter().map(Vec::as_slice).collect();
        let data = annexb(&refs, false);
        let view = AvccView::from_annexb(&data).unwrap();
        assert_eq!(view.nal_count(), 20);
        assert_eq!(
            view.parts(&data).collect::<Vec<_>>().concat(),
            avcc(&refs, 4)
        );
        assert!(
            view.parts(&data)
                .skip(1)
                .step_by(2)
                .all(|p| inside(&data, p))
        );
        // Another (shorter) buffer: units that do not fit are empty, nothing panics.
        let short = &data[..10];
        assert!(view.nals(short).skip(2).all(<[u8]>::is_empty));
        assert!(view.parts(&[]).count() == 40);
        assert_eq!(AvccView::from_annexb(&[]), Err(Error::NoNalUnits));
        assert_eq!(
            AvccView::from_annexb(&[0, 0, 1, 0, 0, 0, 1]),
            Err(Error::NoNalUnits)
        );
        assert!(AvccView::default().is_empty());
    }

    #[test]
    fn annexb_to_avcc_inter_frame_and_errors() {
        let mut out = Vec::new();
        let info = annexb_to_avcc(&annexb(&[SLICE], true), &mut out).unwrap();
        assert_eq!(
            info,
            AccessUnitInfo {
                keyframe: false,
                ..Default::default()
            }
        );
        assert_eq!(out, [0, 0, 0, 3, 0x41, 0x9a, 0x02]);

        out.clear();
        assert_eq!(annexb_to_avcc(&[], &mut out), Err(Error::NoNalUnits));
        assert_eq!(
            annexb_to_avcc(&avcc(&[IDR], 4), &mut out),
            Err(Error::NoNalUnits),
            "length-prefixed data has no start code"
        );
        assert!(out.is_empty());
    }

    #[test]
    fn avcc_nals_all_length_sizes() {
        for length_size in [1, 2, 4] {
            let data = avcc(&[SPS_SHORT, IDR], length_size);
            let nals: Vec<&[u8]> = avcc_nals(&data, length_size)
                .collect::<Result<_>>()
                .unwrap();
            assert_eq!(nals, vec![SPS_SHORT, IDR]);
        }
    }
    const SPS_SHORT: &[u8] = &[0x67, 0x42, 0x00, 0x1e];

    #[test]
    fn avcc_nals_errors() {
        assert_eq!(
            avcc_nals(&[0, 0, 0, 1, 0x65], 3).next(),
            Some(Err(Error::InvalidNalLengthSize(3)))
        );
        // Length says 5, only 2 present.
        let mut it = avcc_nals(&[0, 0, 0, 1, 0x09, 0, 0, 0, 5, 0x65, 0x88], 4);
        assert_eq!(it.next(), Some(Ok(&[0x09][..])));
        assert_eq!(
            it.next(),
            Some(Err(Error::TruncatedNal {
                offset: 5,
                needed: 5,
                available: 2
            }))
        );
        assert_eq!(it.next(), None, "iteration ends after an error");
        // Length prefix itself cut off.
        assert_eq!(
            avcc_nals(&[0, 0], 4).next(),
            Some(Err(Error::TruncatedNal {
                offset: 0,
                needed: 4,
                available: 2
            }))
        );
    }

    #[test]
    fn avcc_info_keeps_every_nal_unit() {
        let data = avcc(
            &[AUD, SPS_SHORT, HIGH_1280X720_PPS, SEI, IDR, FILLER, &[]],
            4,
        );
        assert_eq!(
            avcc_info(&data, 4),
            Ok(AccessUnitInfo {
                keyframe: true,
                parameter_sets: true
            })
        );
        let data = avcc(&[AUD, SLICE], 2);
        assert_eq!(avcc_info(&data, 2), Ok(AccessUnitInfo::default()));
        assert_eq!(
            access_unit_info(annexb_nals(&annexb(&[SEI, IDR], true))),
            AccessUnitInfo {
                keyframe: true,
                parameter_sets: false
            }
        );
    }

    #[test]
    fn avcc_info_requires_exact_fit() {
        let mut data = avcc(&[IDR], 4);
        data.push(0);
        assert!(matches!(
            avcc_info(&data, 4),
            Err(Error::TruncatedNal { offset: 9, .. })
        ));
        assert_eq!(avcc_info(&[], 4), Err(Error::NoNalUnits));
        assert_eq!(avcc_info(&[0, 1, 0x65], 2).map(|i| i.keyframe), Ok(true));
        assert_eq!(
            avcc_info(&[0, 1, 0x65], 3),
            Err(Error::InvalidNalLengthSize(3))
        );
    }

    #[test]
    fn parse_real_baseline_sps() {
        let info = parse_sps(BASELINE_320X240_SPS).unwrap();
        assert_eq!(
            info,
            SpsInfo {
                profile_idc: 66,
                constraint_flags: 0xc0,
                level_idc: 21,
                width: 320,
                height: 240,
                chroma_format_idc: 1,
                bit_depth_luma: 8,
                bit_depth_chroma: 8,
                frame_rate: Some((25, 1)),
            }
        );
    }

    #[test]
    fn parse_real_high_sps() {
        let info = parse_sps(HIGH_1280X720_SPS).unwrap();
        assert_eq!((info.profile_idc, info.level_idc), (100, 31));
        assert_eq!((info.width, info.height), (1280, 720));
        assert_eq!(info.frame_rate, Some((30, 1)));

        // 1080p is coded as 1088 lines and cropped.
        let info = parse_sps(HIGH_1920X1080_SPS).unwrap();
        assert_eq!((info.width, info.height), (1920, 1080));
        assert_eq!(info.frame_rate, Some((30000, 1001)));
        assert_eq!(info.chroma_format_idc, 1);
    }

    #[test]
    fn parse_real_444_sps() {
        let record = AvcDecoderConfigurationRecord::parse(&hex(FFMPEG_AVCC_444)).unwrap();
        let info = parse_sps(&record.sps[0]).unwrap();
        assert_eq!(info.profile_idc, 244);
        assert_eq!(info.chroma_format_idc, 3);
        assert_eq!((info.width, info.height), (640, 360));
        assert_eq!((info.bit_depth_luma, info.bit_depth_chroma), (8, 8));
    }

    /// Test-only Exp-Golomb writers.
    fn ue(w: &mut BitWriter, v: u32) {
        let code = u64::from(v) + 1;
        let bits = 64 - code.leading_zeros();
        w.put(bits - 1, 0);
        for i in (0..bits).rev() {
            w.put(1, ((code >> i) & 1) as u32);
        }
    }

    fn se(w: &mut BitWriter, v: i32) {
        let k = if v > 0 { 2 * v - 1 } else { -2 * v };
        ue(w, k as u32);
    }

    /// Inserts emulation-prevention bytes into an RBSP.
    fn rbsp_to_nal(header: u8, rbsp: &[u8]) -> Vec<u8> {
        let mut nal = vec![header];
        let mut zeros = 0;
        for &b in rbsp {
            if zeros >= 2 && b <= 3 {
                nal.push(3);
                zeros = 0;
            }
            zeros = if b == 0 { zeros + 1 } else { 0 };
            nal.push(b);
        }
        nal
    }

    /// A hand-built 10-bit 1080i High 10 SPS exercising scaling lists, POC type 1, field
    /// coding, cropping and a full VUI up to timing info.
    fn synthetic_sps(with_vui_timing: bool) -> Vec<u8> {
        let mut w = BitWriter::default();
        w.put(8, 110); // profile_idc: High 10
        w.put(8, 0); // constraint flags
        w.put(8, 40); // level_idc
        ue(&mut w, 0); // seq_parameter_set_id
        ue(&mut w, 1); // chroma_format_idc 4:2:0
        ue(&mut w, 2); // bit_depth_luma_minus8
        ue(&mut w, 2); // bit_depth_chroma_minus8
        w.put(1, 0); // qpprime_y_zero_transform_bypass_flag
        w.put(1, 1); // seq_scaling_matrix_present_flag
        for i in 0..8 {
            let present = i == 0 || i == 6;
            w.put(1, present as u32);
            if i == 0 {
                // 4x4 list: one delta, then a zero nextScale ends the list early.
                se(&mut w, 3);
                se(&mut w, -11);
            } else if present {
                for _ in 0..64 {
                    se(&mut w, 1);
                }
            }
        }
        ue(&mut w, 0); // log2_max_frame_num_minus4
        ue(&mut w, 1); // pic_order_cnt_type
        w.put(1, 0); // delta_pic_order_always_zero_flag
        se(&mut w, -2); // offset_for_non_ref_pic
        se(&mut w, 1); // offset_for_top_to_bottom_field
        ue(&mut w, 2); // num_ref_frames_in_pic_order_cnt_cycle
        se(&mut w, 4);
        se(&mut w, -4);
        ue(&mut w, 4); // max_num_ref_frames
        w.put(1, 0); // gaps_in_frame_num_value_allowed_flag
        ue(&mut w, 119); // pic_width_in_mbs_minus1: 1920
        ue(&mut w, 33); // pic_height_in_map_units_minus1: 34 field MB rows = 1088 lines
        w.put(1, 0); // frame_mbs_only_flag
        w.put(1, 1); // mb_adaptive_frame_field_flag
        w.put(1, 1); // direct_8x8_inference_flag
        w.put(1, 1); // frame_cropping_flag
        ue(&mut w, 0);
        ue(&mut w, 0);
        ue(&mut w, 0);
        ue(&mut w, 2); // bottom: 2 * CropUnitY(4) = 8 lines
        w.put(1, 1); // vui_parameters_present_flag
        w.put(1, 1); // aspect_ratio_info_present_flag
        w.put(8, 255); // Extended_SAR
        w.put(16, 0); // sar_width, sar_height 0 = unspecified; 32 zero bits force an
        w.put(16, 0); // emulation-prevention byte
        w.put(1, 0); // overscan_info_present_flag
        w.put(1, 1); // video_signal_type_present_flag
        w.put(3, 5);
        w.put(1, 0);
        w.put(1, 1); // colour_description_present_flag
        w.put(24, 0x010101);
        w.put(1, 1); // chroma_loc_info_present_flag
        ue(&mut w, 0);
        ue(&mut w, 0);
        if with_vui_timing {
            w.put(1, 1); // timing_info_present_flag
            w.put(32, 1001);
            w.put(32, 60000);
            w.put(1, 1);
            w.put(1, 1); // rbsp_stop_one_bit
        }
        rbsp_to_nal(0x67, &w.finish())
    }

    #[test]
    fn parse_synthetic_sps_with_scaling_lists_and_fields() {
        let nal = synthetic_sps(true);
        assert!(
            nal.windows(3).any(|w| w == [0, 0, 3]),
            "the vector exercises emulation prevention"
        );
        let info = parse_sps(&nal).unwrap();
        assert_eq!(
            info,
            SpsInfo {
                profile_idc: 110,
                constraint_flags: 0,
                level_idc: 40,
                width: 1920,
                height: 1080,
                chroma_format_idc: 1,
                bit_depth_luma: 10,
                bit_depth_chroma: 10,
                frame_rate: Some((30000, 1001)),
            }
        );
        // A VUI that ends before timing info only loses the frame rate.
        let info = parse_sps(&synthetic_sps(false)).unwrap();
        assert_eq!(
            (info.width, info.height, info.frame_rate),
            (1920, 1080, None)
        );
    }

    #[test]
    fn parse_sps_errors() {
        assert!(matches!(parse_sps(&[]), Err(Error::InvalidSps(_))));
        assert!(matches!(
            parse_sps(HIGH_1280X720_PPS),
            Err(Error::InvalidSps(_))
        ));
        // Up to 9 bytes the fields before the VUI are cut off.
        for len in 1..10 {
            assert!(
                parse_sps(&HIGH_1280X720_SPS[..len]).is_err(),
                "truncated to {len} bytes"
            );
        }
        // chroma_format_idc = 4 (ue "00101").
        assert!(matches!(
            parse_sps(&[0x67, 100, 0, 30, 0b1001_0100]),
            Err(Error::InvalidSps("chroma_format_idc above 3"))
        ));
    }

    #[test]
    fn avcc_record_parse_without_extension() {
        let bytes = hex(GST_AVCC_HIGH);
        let record = AvcDecoderConfigurationRecord::parse(&bytes).unwrap();
        assert_eq!(
            record,
            AvcDecoderConfigurationRecord {
                profile_indication: 100,
                profile_compatibility: 0,
                level_indication: 31,
                length_size_minus_one: 3,
                sps: vec![HIGH_1280X720_SPS.to_vec()],
                pps: vec![HIGH_1280X720_PPS.to_vec()],
                ext: None,
            }
        );
        assert_eq!(record.length_size(), 4);
        assert_eq!(record.to_bytes(), bytes);
    }

    #[test]
    fn avcc_record_parse_with_extension_round_trips() {
        for (text, chroma_format) in [(FFMPEG_AVCC_HIGH, 1), (FFMPEG_AVCC_444, 3)] {
            let bytes = hex(text);
            let record = AvcDecoderConfigurationRecord::parse(&bytes).unwrap();
            assert_eq!(
                record.ext,
                Some(AvcConfigExt {
                    chroma_format,
                    bit_depth_luma_minus8: 0,
                    bit_depth_chroma_minus8: 0,
                    sps_ext: vec![],
                })
            );
            assert_eq!(record.to_bytes(), bytes);
            // Truncated extension block: tolerated, dropped.
            let cut = AvcDecoderConfigurationRecord::parse(&bytes[..bytes.len() - 2]).unwrap();
            assert_eq!(cut.ext, None);
            assert_eq!(cut.sps, record.sps);
        }
    }

    #[test]
    fn avcc_record_from_parameter_sets_matches_ffmpeg() {
        // ffmpeg writes exactly the record from_parameter_sets builds, extension included.
        for text in [FFMPEG_AVCC_HIGH, FFMPEG_AVCC_444] {
            let bytes = hex(text);
            let parsed = AvcDecoderConfigurationRecord::parse(&bytes).unwrap();
            let built =
                AvcDecoderConfigurationRecord::from_parameter_sets(&parsed.sps, &parsed.pps)
                    .unwrap();
            assert_eq!(built, parsed);
            assert_eq!(built.to_bytes(), bytes);
        }
    }

    #[test]
    fn avcc_record_from_parameter_sets_baseline_and_high() {
        let sps = vec![BASELINE_320X240_SPS.to_vec()];
        let pps = vec![BASELINE_320X240_PPS.to_vec()];
        let record = AvcDecoderConfigurationRecord::from_parameter_sets(&sps, &pps).unwrap();
        let mut expected = vec![0x01, 0x42, 0xc0, 0x15, 0xff, 0xe1, 0x00, 28];
        expected.extend_from_slice(BASELINE_320X240_SPS);
        expected.extend_from_slice(&[0x01, 0x00, 0x04]);
        expected.extend_from_slice(BASELINE_320X240_PPS);
        assert_eq!(record.to_bytes(), expected);
        assert_eq!(AvcDecoderConfigurationRecord::parse(&expected), Ok(record));

        let record = AvcDecoderConfigurationRecord::from_parameter_sets(
            &[HIGH_1280X720_SPS.to_vec()],
            &[HIGH_1280X720_PPS.to_vec()],
        )
        .unwrap();
        let bytes = record.to_bytes();
        assert_eq!(&bytes[bytes.len() - 4..], &[0xfd, 0xf8, 0xf8, 0x00]);
        assert_eq!(AvcDecoderConfigurationRecord::parse(&bytes), Ok(record));

        // 10-bit: bit depths come from the SPS.
        let record = AvcDecoderConfigurationRecord::from_parameter_sets(
            &[synthetic_sps(true)],
            &[HIGH_1280X720_PPS.to_vec()],
        )
        .unwrap();
        let ext = record.ext.unwrap();
        assert_eq!(
            (ext.bit_depth_luma_minus8, ext.bit_depth_chroma_minus8),
            (2, 2)
        );
    }

    #[test]
    fn avcc_record_from_parameter_sets_errors() {
        let sps = vec![HIGH_1280X720_SPS.to_vec()];
        let pps = vec![HIGH_1280X720_PPS.to_vec()];
        assert_eq!(
            AvcDecoderConfigurationRecord::from_parameter_sets(&[], &pps),
            Err(Error::MissingSps)
        );
        assert_eq!(
            AvcDecoderConfigurationRecord::from_parameter_sets(&sps, &[]),
            Err(Error::MissingPps)
        );
        assert!(AvcDecoderConfigurationRecord::from_parameter_sets(&pps, &sps).is_err());
        assert!(
            Error::MissingSps
                .to_string()
                .starts_with("H.264 stream has no SPS before its first keyframe; ")
        );
    }

    #[test]
    fn avcc_record_parse_errors() {
        let good = hex(GST_AVCC_HIGH);
        let mut bad_version = good.clone();
        bad_version[0] = 0;
        assert!(AvcDecoderConfigurationRecord::parse(&bad_version).is_err());
        let mut length_size_3 = good.clone();
        length_size_3[4] = 0xfe;
        assert!(AvcDecoderConfigurationRecord::parse(&length_size_3).is_err());
        let mut sps_count_2 = good.clone();
        sps_count_2[5] = 0xe2;
        assert!(AvcDecoderConfigurationRecord::parse(&sps_count_2).is_err());
        // Every truncation inside SPS/PPS fails.
        for len in 0..good.len() {
            assert!(
                AvcDecoderConfigurationRecord::parse(&good[..len]).is_err(),
                "truncated to {len} bytes"
            );
        }
        // Trailing bytes after a record without extension are ignored.
        let mut trailing = hex(GST_AVCC_HIGH);
        trailing.extend_from_slice(&[0, 0]);
        assert!(AvcDecoderConfigurationRecord::parse(&trailing).is_ok());
    }
}
