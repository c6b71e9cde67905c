//! H.264 elementary streams: Annex-B and AVC (length-prefixed) access units, the avcC record
//! (AVCDecoderConfigurationRecord, ISO/IEC 14496-15 §5.3.3) and the sequence parameter set
//! (ITU-T H.264 §7.3.2.1).
//!
//! RTMP carries H.264 as AVC: every NAL unit prefixed with its length, the parameter sets sent
//! separately in an avcC "sequence header". [`annexb_to_avcc`] converts byte-stream input,
//! [`avcc_info`] checks length-prefixed input without copying it.

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

/// Whether a NAL unit is dropped when remuxing for RTMP: access unit delimiters and filler data
/// carry nothing a player needs (FLV frames are already delimited), and empty NAL units are
/// meaningless.
fn is_droppable(nal: &[u8]) -> bool {
    matches!(nal_type(nal), None | Some(NAL_AUD) | Some(NAL_FILLER))
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
            1 => i += 3,
            _ => i += 3,
        }
    }
    None
}

/// Iterator over the NAL units of an Annex-B buffer, see [`annexb_nals`].
#[derive(Debug, Clone)]
pub struct AnnexBNals<'a> {
    data: &'a [u8],
    /// Start of the next NAL unit (just after its start code), `data.len()` when done.
    pos: usize,
}

impl<'a> Iterator for AnnexBNals<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        while self.pos < self.data.len() {
            let start = self.pos;
            let end = match find_start_code(self.data, start) {
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
            let mut nal = &self.data[start..end];
            while let [rest @ .., 0] = nal {
                nal = rest;
            }
            if !nal.is_empty() {
                return Some(nal);
            }
        }
        None
    }
}

/// Splits an Annex-B byte-stream buffer into its NAL units (without start codes).
///
/// Both 3-byte (`00 00 01`) and 4-byte (`00 00 00 01`) start codes are recognised; zero bytes
/// before a start code belong to the start code. Bytes before the first start code and empty
/// NAL units are skipped.
pub fn annexb_nals(data: &[u8]) -> AnnexBNals<'_> {
    let pos = find_start_code(data, 0).map_or(data.len(), |sc| sc + 3);
    AnnexBNals { data, pos }
}

/// Iterator over the NAL units of an AVC (length-prefixed) buffer, see [`avcc_nals`].
#[derive(Debug, Clone)]
pub struct AvccNals<'a> {
    data: &'a [u8],
    length_size: usize,
    pos: usize,
    /// Set after the first error so the iterator ends instead of repeating it.
    failed: bool,
}

impl<'a> Iterator for AvccNals<'a> {
    type Item = Result<&'a [u8]>;

    fn next(&mut self) -> Option<Result<&'a [u8]>> {
        if self.failed || self.pos >= self.data.len() {
            return None;
        }
        let result = self.next_nal();
        self.failed = result.is_err();
        Some(result)
    }
}

impl<'a> AvccNals<'a> {
    fn next_nal(&mut self) -> Result<&'a [u8]> {
        if !matches!(self.length_size, 1 | 2 | 4) {
            return Err(Error::InvalidNalLengthSize(self.length_size));
        }
        let offset = self.pos;
        let available = self.data.len() - offset;
        let prefix =
            self.data
                .get(offset..offset + self.length_size)
                .ok_or(Error::TruncatedNal {
                    offset,
                    needed: self.length_size,
                    available,
                })?;
        let len = prefix
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | b as usize);
        let start = offset + self.length_size;
        let nal = self
            .data
            .get(start..)
            .and_then(|rest| rest.get(..len))
            .ok_or(Error::TruncatedNal {
                offset,
                needed: len,
                available: available - self.length_size,
            })?;
        self.pos = start + len;
        Ok(nal)
    }
}

/// Splits an AVC (length-prefixed) buffer into its NAL units.
///
/// `length_size` is the prefix size from the avcC record (1, 2 or 4). Yields an error (and then
/// ends) for an invalid length size or a prefix that runs past the end of the buffer.
pub fn avcc_nals(data: &[u8], length_size: usize) -> AvccNals<'_> {
    AvccNals {
        data,
        length_size,
        pos: 0,
        failed: false,
    }
}

/// What an access unit contains, as far as RTMP publishing cares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessUnitInfo {
    /// The access unit contains an IDR slice, i.e. it is a keyframe.
    pub keyframe: bool,
    /// In-band sequence parameter set NAL units, in stream order.
    pub sps: Vec<Vec<u8>>,
    /// In-band picture parameter set NAL units, in stream order.
    pub pps: Vec<Vec<u8>>,
    /// NAL units that are (or must be) dropped: access unit delimiters, filler data and empty
    /// NAL units.
    pub dropped_nals: usize,
}

impl AccessUnitInfo {
    /// Records what one NAL unit contributes to the access unit.
    fn add(&mut self, nal: &[u8]) {
        match nal_type(nal) {
            Some(NAL_IDR) => self.keyframe = true,
            Some(NAL_SPS) => self.sps.push(nal.to_vec()),
            Some(NAL_PPS) => self.pps.push(nal.to_vec()),
            _ if is_droppable(nal) => self.dropped_nals += 1,
            _ => {}
        }
    }
}

/// Appends one NAL unit with a 4-byte big-endian length prefix.
fn push_length_prefixed(out: &mut Vec<u8>, nal: &[u8]) -> Result<()> {
    let len = u32::try_from(nal.len()).map_err(|_| Error::NalTooLarge(nal.len()))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(nal);
    Ok(())
}

/// Converts an Annex-B access unit to AVC with 4-byte length prefixes, appending to `out`.
///
/// Access unit delimiters and filler data are dropped (and counted); SPS and PPS NAL units stay
/// in the output and are also reported. Fails with [`Error::NoNalUnits`] if the buffer holds no
/// NAL unit; in that case nothing is appended.
pub fn annexb_to_avcc(data: &[u8], out: &mut Vec<u8>) -> Result<AccessUnitInfo> {
    let mut info = AccessUnitInfo::default();
    let mut any = false;
    // Output is at most 1 byte per start code larger than the input.
    out.reserve(data.len());
    for nal in annexb_nals(data) {
        any = true;
        info.add(nal);
        if !is_droppable(nal) {
            push_length_prefixed(out, nal)?;
        }
    }
    if !any {
        return Err(Error::NoNalUnits);
    }
    Ok(info)
}

/// Checks an AVC (length-prefixed) access unit and reports what it contains, without copying.
///
/// The NAL units must fill the buffer exactly. If [`AccessUnitInfo::dropped_nals`] is non-zero
/// the caller should pass the buffer through [`avcc_filter`] before sending it.
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

/// Copies an AVC access unit to `out` (appending), dropping access unit delimiters, filler data
/// and empty NAL units. Length prefixes keep their size. Returns the number of dropped NAL units.
pub fn avcc_filter(data: &[u8], length_size: usize, out: &mut Vec<u8>) -> Result<usize> {
    let start_len = out.len();
    let mut dropped = 0;
    out.reserve(data.len());
    for nal in avcc_nals(data, length_size) {
        let nal = match nal {
            Ok(nal) => nal,
            Err(e) => {
                out.truncate(start_len);
                return Err(e);
            }
        };
        if is_droppable(nal) {
            dropped += 1;
            continue;
        }
        // The NAL fitted this prefix size in the input, so its length fits in the output.
        let len = (nal.len() as u32).to_be_bytes();
        out.extend_from_slice(&len[4 - length_size..]);
        out.extend_from_slice(nal);
    }
    Ok(dropped)
}

// ---------------------------------------------------------------------------------------------
// Bit reading (shared with the AAC AudioSpecificConfig parser)
// ---------------------------------------------------------------------------------------------

/// MSB-first bit reader over a byte slice; every read is bounds-checked and returns `None` when
/// the data ends.
#[derive(Debug, Clone)]
pub(super) struct BitReader<'a> {
    data: &'a [u8],
    /// Position in bits.
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub(super) fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0 }
    }

    pub(super) fn bit(&mut self) -> Option<bool> {
        let byte = self.data.get(self.pos / 8)?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(bit == 1)
    }

    /// Reads `n` bits (at most 32) as an unsigned big-endian number.
    pub(super) fn bits(&mut self, n: u32) -> Option<u32> {
        debug_assert!(n <= 32);
        let mut value = 0u64;
        for _ in 0..n {
            value = (value << 1) | u64::from(self.bit()?);
        }
        Some(value as u32)
    }

    /// Reads an unsigned Exp-Golomb code ue(v) (H.264 §9.1).
    fn ue(&mut self) -> Option<u32> {
        let mut leading_zeros = 0;
        while !self.bit()? {
            leading_zeros += 1;
            // 32 leading zeros would encode a value beyond u32.
            if leading_zeros > 31 {
                return None;
            }
        }
        let suffix = self.bits(leading_zeros)?;
        Some(((1u64 << leading_zeros) - 1 + u64::from(suffix)) as u32)
    }

    /// Reads a signed Exp-Golomb code se(v) (H.264 §9.1.1).
    fn se(&mut self) -> Option<i32> {
        let k = i64::from(self.ue()?);
        let v = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        Some(v as i32)
    }

    /// Reads ue(v) and checks it against an inclusive maximum.
    fn ue_max(&mut self, max: u32) -> Option<u32> {
        self.ue().filter(|&v| v <= max)
    }
}

/// MSB-first bit writer, used to serialise AudioSpecificConfig.
#[derive(Debug, Default)]
pub(super) struct BitWriter {
    bytes: Vec<u8>,
    /// Bits used in the last byte (0 = the last byte is full or there is none).
    used: u32,
}

impl BitWriter {
    /// Appends the low `n` bits of `value` (at most 32), most significant first.
    pub(super) fn put(&mut self, n: u32, value: u32) {
        for i in (0..n).rev() {
            if self.used == 0 {
                self.bytes.push(0);
            }
            let bit = ((value >> i) & 1) as u8;
            if let Some(last) = self.bytes.last_mut() {
                *last |= bit << (7 - self.used);
            }
            self.used = (self.used + 1) % 8;
        }
    }

    /// The written bytes; a partial last byte is padded with zero bits.
    pub(super) fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

// ---------------------------------------------------------------------------------------------
// Sequence parameter set
// ---------------------------------------------------------------------------------------------

/// Removes emulation-prevention bytes (the `03` of `00 00 03`, H.264 §7.4.1) from a NAL unit,
/// giving its RBSP.
fn nal_to_rbsp(nal: &[u8]) -> Vec<u8> {
    let mut rbsp = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        rbsp.push(b);
    }
    rbsp
}

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
fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Option<()> {
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
fn vui_frame_rate(r: &mut BitReader<'_>) -> Option<(u32, u32)> {
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
    let rbsp = nal_to_rbsp(&nal[1..]);
    let mut r = BitReader::new(&rbsp);
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

/// Bounds-checked byte reader for avcC.
struct ByteReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> ByteReader<'a> {
    fn u8(&mut self) -> Option<u8> {
        let b = *self.data.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.data.get(self.pos..)?.get(..n)?;
        self.pos += n;
        Some(s)
    }

    /// A parameter set: 16-bit length, then the NAL unit, whose type must be `nal_type`.
    fn parameter_set(&mut self, expected_type: u8) -> Option<Vec<u8>> {
        let len = self.bytes(2)?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        let nal = self.bytes(len)?;
        (nal_type(nal) == Some(expected_type)).then(|| nal.to_vec())
    }
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
        .map(|_| r.parameter_set(NAL_SPS_EXT))
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
        let mut r = ByteReader { data, pos: 0 };
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
            .map(|_| r.parameter_set(NAL_SPS))
            .collect::<Option<Vec<_>>>()
            .ok_or(Error::InvalidAvcConfig(
                "an SPS entry is truncated or is not an SPS",
            ))?;
        let pps_count = r
            .u8()
            .ok_or(Error::InvalidAvcConfig("ends before the PPS count"))?;
        let pps = (0..pps_count)
            .map(|_| r.parameter_set(NAL_PPS))
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
