//! AV1 elementary streams: OBUs (AV1 bitstream §5.3), the sequence header OBU (§5.5) and the
//! av1C record (AV1CodecConfigurationRecord, AV1-ISOBMFF §2.3).
//!
//! Enhanced RTMP carries AV1 like ISO BMFF: one temporal unit per frame without temporal
//! delimiters, and the av1C record (4 bytes + the sequence header OBU) as the sequence start.
//! [`temporal_unit`] gives the byte ranges of a temporal unit without its temporal delimiters,
//! so callers can send sub-slices of the input buffer instead of copying it.

use std::ops::Range;

use super::bits::Bits;
use super::colour::ColourDescription;
use super::{Error, Result};

/// OBU type of a sequence header.
pub const OBU_SEQUENCE_HEADER: u8 = 1;
/// OBU type of a temporal delimiter.
pub const OBU_TEMPORAL_DELIMITER: u8 = 2;
/// OBU type of a frame header.
pub const OBU_FRAME_HEADER: u8 = 3;
/// OBU type of a tile group.
pub const OBU_TILE_GROUP: u8 = 4;
/// OBU type of metadata.
pub const OBU_METADATA: u8 = 5;
/// OBU type of a frame (frame header and tile group).
pub const OBU_FRAME: u8 = 6;
/// OBU type of a redundant frame header.
pub const OBU_REDUNDANT_FRAME_HEADER: u8 = 7;
/// OBU type of a tile list.
pub const OBU_TILE_LIST: u8 = 8;
/// OBU type of padding.
pub const OBU_PADDING: u8 = 15;

/// Longest `leb128()` value in bytes (AV1 §4.10.5).
pub const MAX_LEB128_BYTES: usize = 8;

/// Reads a `leb128()` number (AV1 §4.10.5) from the start of `data`: its value and its length
/// in bytes. Values above `u32::MAX` are not conformant and are an error.
pub fn read_leb128(data: &[u8]) -> Result<(u32, usize)> {
    let mut value = 0u64;
    for (i, &b) in data.iter().take(MAX_LEB128_BYTES).enumerate() {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            let value = u32::try_from(value)
                .map_err(|_| Error::InvalidAv1("leb128 value larger than 2^32 - 1"))?;
            return Ok((value, i + 1));
        }
    }
    Err(Error::InvalidAv1(
        "leb128 number is truncated or longer than 8 bytes",
    ))
}

/// Appends `value` as a minimal `leb128()` number.
pub fn write_leb128(mut value: u32, out: &mut Vec<u8>) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// An OBU header (AV1 §5.3.2, §5.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObuHeader {
    /// `obu_type` (4 bits), e.g. [`OBU_SEQUENCE_HEADER`].
    pub obu_type: u8,
    /// Whether the header has the extension byte with temporal and spatial ids.
    pub has_extension: bool,
    /// `temporal_id` (0 without extension).
    pub temporal_id: u8,
    /// `spatial_id` (0 without extension).
    pub spatial_id: u8,
    /// `obu_has_size_field`.
    pub has_size_field: bool,
}

/// One OBU inside a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Obu<'a> {
    /// The parsed header.
    pub header: ObuHeader,
    /// Where the whole OBU (header, size field and payload) lies in the buffer.
    pub range: Range<usize>,
    /// The whole OBU.
    pub data: &'a [u8],
    /// The payload, after header and size field.
    pub payload: &'a [u8],
}

/// Iterator over the OBUs of a buffer, see [`obus`].
#[derive(Debug, Clone)]
pub struct Obus<'a> {
    data: &'a [u8],
    pos: usize,
    /// Set after the first error so the iterator ends instead of repeating it.
    failed: bool,
}

impl<'a> Iterator for Obus<'a> {
    type Item = Result<Obu<'a>>;

    fn next(&mut self) -> Option<Result<Obu<'a>>> {
        if self.failed || self.pos >= self.data.len() {
            return None;
        }
        let result = self.next_obu();
        self.failed = result.is_err();
        Some(result)
    }
}

impl<'a> Obus<'a> {
    fn next_obu(&mut self) -> Result<Obu<'a>> {
        let start = self.pos;
        let rest = &self.data[start..];
        let b0 = rest[0];
        if b0 & 0x80 != 0 {
            return Err(Error::InvalidAv1(
                "OBU forbidden bit is set; is the stream really AV1 OBUs (obu-stream)?",
            ));
        }
        let has_extension = b0 & 0x04 != 0;
        let has_size_field = b0 & 0x02 != 0;
        let mut header_len = 1;
        let (mut temporal_id, mut spatial_id) = (0, 0);
        if has_extension {
            let b1 = *rest
                .get(1)
                .ok_or(Error::InvalidAv1("OBU ends inside its header"))?;
            temporal_id = b1 >> 5;
            spatial_id = (b1 >> 3) & 0x03;
            header_len = 2;
        }
        let (payload_start, payload_len) = if has_size_field {
            let (size, n) = read_leb128(&rest[header_len.min(rest.len())..])?;
            (header_len + n, size as usize)
        } else {
            // Without a size field the OBU extends to the end of the buffer.
            (header_len, rest.len().saturating_sub(header_len))
        };
        let end = payload_start
            .checked_add(payload_len)
            .filter(|&e| e <= rest.len())
            .ok_or(Error::InvalidAv1(
                "OBU size runs past the end of the buffer",
            ))?;
        self.pos = start + end;
        Ok(Obu {
            header: ObuHeader {
                obu_type: (b0 >> 3) & 0x0f,
                has_extension,
                temporal_id,
                spatial_id,
                has_size_field,
            },
            range: start..start + end,
            data: &rest[..end],
            payload: &rest[payload_start..end],
        })
    }
}

/// Splits a buffer of OBUs (the "low overhead bitstream format", GStreamer's `obu-stream`)
/// into its OBUs. Yields an error (and then ends) for a malformed header or size.
pub fn obus(data: &[u8]) -> Obus<'_> {
    Obus {
        data,
        pos: 0,
        failed: false,
    }
}

/// The first sequence header OBU in a buffer of OBUs, if any.
pub fn find_sequence_header(data: &[u8]) -> Result<Option<Obu<'_>>> {
    for obu in obus(data) {
        let obu = obu?;
        if obu.header.obu_type == OBU_SEQUENCE_HEADER {
            return Ok(Some(obu));
        }
    }
    Ok(None)
}

// ---------------------------------------------------------------------------------------------
// Sequence header
// ---------------------------------------------------------------------------------------------

/// What a sequence header OBU says about the video (AV1 §5.5), operating point 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceHeader {
    /// `seq_profile`: 0 Main, 1 High, 2 Professional.
    pub seq_profile: u8,
    /// `still_picture`.
    pub still_picture: bool,
    /// `reduced_still_picture_header`.
    pub reduced_still_picture_header: bool,
    /// `seq_level_idx[0]` (5 bits; level = 2 + idx / 4 . idx % 4, 31 = no level).
    pub seq_level_idx_0: u8,
    /// `seq_tier[0]`.
    pub seq_tier_0: bool,
    /// Frame rate as a reduced fraction from the timing info, when it says the pictures are
    /// equally spaced.
    pub frame_rate: Option<(u32, u32)>,
    /// `max_frame_width_minus_1 + 1`.
    pub max_frame_width: u32,
    /// `max_frame_height_minus_1 + 1`.
    pub max_frame_height: u32,
    /// `high_bitdepth`.
    pub high_bitdepth: bool,
    /// `twelve_bit` (false when not coded).
    pub twelve_bit: bool,
    /// Bit depth: 8, 10 or 12.
    pub bit_depth: u8,
    /// `mono_chrome`.
    pub mono_chrome: bool,
    /// `subsampling_x`.
    pub chroma_subsampling_x: bool,
    /// `subsampling_y`.
    pub chroma_subsampling_y: bool,
    /// `chroma_sample_position` (0 unknown, 1 vertical, 2 colocated).
    pub chroma_sample_position: u8,
    /// Colour description, when the sequence header has one.
    pub colour: Option<ColourDescription>,
    /// `color_range`: full range.
    pub full_range: bool,
    /// `film_grain_params_present`.
    pub film_grain_params_present: bool,
}

/// Reads `uvlc()` (AV1 §4.10.3); values that do not fit `u32` are `None`.
fn uvlc(r: &mut Bits<'_>) -> Option<u32> {
    let mut leading_zeros = 0;
    while !r.bit()? {
        leading_zeros += 1;
        if leading_zeros >= 32 {
            return None;
        }
    }
    let value = r.bits(leading_zeros)?;
    u32::try_from(u64::from(value) + (1u64 << leading_zeros) - 1).ok()
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Parses the payload of a sequence header OBU (after OBU header and size).
pub fn parse_sequence_header(payload: &[u8]) -> Result<SequenceHeader> {
    parse_sequence_header_bits(&mut Bits::new(payload))
        .ok_or(Error::InvalidAv1("sequence header is truncated"))?
}

/// The parser proper: `None` when the data ends, `Some(Err)` for a bad value.
fn parse_sequence_header_bits(r: &mut Bits<'_>) -> Option<Result<SequenceHeader>> {
    let seq_profile = r.u8(3)?;
    if seq_profile > 2 {
        return Some(Err(Error::InvalidAv1(
            "reserved seq_profile (greater than 2)",
        )));
    }
    let still_picture = r.bit()?;
    let reduced_still_picture_header = r.bit()?;
    let mut frame_rate = None;
    let (seq_level_idx_0, seq_tier_0);
    if reduced_still_picture_header {
        seq_level_idx_0 = r.u8(5)?;
        seq_tier_0 = false;
    } else {
        let mut decoder_model_info_present = false;
        let mut buffer_delay_length = 0;
        if r.bit()? {
            // timing_info()
            let num_units_in_display_tick = r.bits(32)?;
            let time_scale = r.bits(32)?;
            let ticks_per_picture = if r.bit()? {
                Some(u64::from(uvlc(r)?) + 1)
            } else {
                None
            };
            if let Some(ticks) = ticks_per_picture {
                let den = u64::from(num_units_in_display_tick) * ticks;
                let num = u64::from(time_scale);
                if den > 0 && num > 0 {
                    let g = gcd(num, den);
                    if let (Ok(n), Ok(d)) = (u32::try_from(num / g), u32::try_from(den / g)) {
                        frame_rate = Some((n, d));
                    }
                }
            }
            decoder_model_info_present = r.bit()?;
            if decoder_model_info_present {
                buffer_delay_length = r.bits(5)? + 1;
                // num_units_in_decoding_tick, buffer_removal_time_length_minus_1,
                // frame_presentation_time_length_minus_1
                r.skip(32 + 5 + 5)?;
            }
        }
        let initial_display_delay_present = r.bit()?;
        let operating_points = r.u8(5)? + 1;
        let mut first = None;
        for _ in 0..operating_points {
            // operating_point_idc
            r.skip(12)?;
            let level = r.u8(5)?;
            let tier = level > 7 && r.bit()?;
            if decoder_model_info_present && r.bit()? {
                // decoder_buffer_delay, encoder_buffer_delay, low_delay_mode_flag
                r.skip(2 * buffer_delay_length as usize + 1)?;
            }
            if initial_display_delay_present && r.bit()? {
                r.skip(4)?;
            }
            first.get_or_insert((level, tier));
        }
        (seq_level_idx_0, seq_tier_0) = first?;
    }
    let width_bits = r.bits(4)? + 1;
    let height_bits = r.bits(4)? + 1;
    let max_frame_width = r.bits(width_bits)? + 1;
    let max_frame_height = r.bits(height_bits)? + 1;
    let frame_id_numbers_present = !reduced_still_picture_header && r.bit()?;
    if frame_id_numbers_present {
        // delta_frame_id_length_minus_2, additional_frame_id_length_minus_1
        r.skip(7)?;
    }
    // use_128x128_superblock, enable_filter_intra, enable_intra_edge_filter
    r.skip(3)?;
    if !reduced_still_picture_header {
        // enable_interintra_compound, enable_masked_compound, enable_warped_motion,
        // enable_dual_filter
        r.skip(4)?;
        let enable_order_hint = r.bit()?;
        if enable_order_hint {
            // enable_jnt_comp, enable_ref_frame_mvs
            r.skip(2)?;
        }
        let force_screen_content_tools = if r.bit()? { 2 } else { r.u8(1)? };
        if force_screen_content_tools > 0 && !r.bit()? {
            // seq_force_integer_mv
            r.skip(1)?;
        }
        if enable_order_hint {
            // order_hint_bits_minus_1
            r.skip(3)?;
        }
    }
    // enable_superres, enable_cdef, enable_restoration
    r.skip(3)?;
    // color_config() (§5.5.2)
    let high_bitdepth = r.bit()?;
    let twelve_bit = seq_profile == 2 && high_bitdepth && r.bit()?;
    let bit_depth = match (high_bitdepth, twelve_bit) {
        (false, _) => 8,
        (true, false) => 10,
        (true, true) => 12,
    };
    let mono_chrome = seq_profile != 1 && r.bit()?;
    let colour = if r.bit()? {
        Some(ColourDescription {
            primaries: r.u8(8)?,
            transfer_characteristics: r.u8(8)?,
            matrix_coefficients: r.u8(8)?,
        })
    } else {
        None
    };
    let (full_range, ss_x, ss_y, chroma_sample_position);
    if mono_chrome {
        full_range = r.bit()?;
        (ss_x, ss_y, chroma_sample_position) = (true, true, 0);
    } else {
        // BT.709 primaries, sRGB transfer and identity matrix: 4:4:4 full range, not coded.
        let srgb = colour.is_some_and(|c| {
            c.primaries == 1 && c.transfer_characteristics == 13 && c.matrix_coefficients == 0
        });
        if srgb {
            (full_range, ss_x, ss_y) = (true, false, false);
        } else {
            full_range = r.bit()?;
            (ss_x, ss_y) = match seq_profile {
                0 => (true, true),
                1 => (false, false),
                _ if bit_depth == 12 => {
                    let x = r.bit()?;
                    (x, x && r.bit()?)
                }
                _ => (true, false),
            };
        }
        chroma_sample_position = if ss_x && ss_y { r.u8(2)? } else { 0 };
        // separate_uv_delta_q
        r.skip(1)?;
    }
    let film_grain_params_present = r.bit()?;
    Some(Ok(SequenceHeader {
        seq_profile,
        still_picture,
        reduced_still_picture_header,
        seq_level_idx_0,
        seq_tier_0,
        frame_rate,
        max_frame_width,
        max_frame_height,
        high_bitdepth,
        twelve_bit,
        bit_depth,
        mono_chrome,
        chroma_subsampling_x: ss_x,
        chroma_subsampling_y: ss_y,
        chroma_sample_position,
        colour,
        full_range,
        film_grain_params_present,
    }))
}

// ---------------------------------------------------------------------------------------------
// av1C: AV1CodecConfigurationRecord
// ---------------------------------------------------------------------------------------------

/// The av1C record (AV1CodecConfigurationRecord, AV1-ISOBMFF §2.3.3): the AV1 `codec_data`,
/// sent as the body of the AV1 sequence start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Av1CodecConfigurationRecord {
    /// `seq_profile` (3 bits).
    pub seq_profile: u8,
    /// `seq_level_idx_0` (5 bits).
    pub seq_level_idx_0: u8,
    /// `seq_tier_0`.
    pub seq_tier_0: bool,
    /// `high_bitdepth`.
    pub high_bitdepth: bool,
    /// `twelve_bit`.
    pub twelve_bit: bool,
    /// `monochrome`.
    pub monochrome: bool,
    /// `chroma_subsampling_x`.
    pub chroma_subsampling_x: bool,
    /// `chroma_subsampling_y`.
    pub chroma_subsampling_y: bool,
    /// `chroma_sample_position` (2 bits).
    pub chroma_sample_position: u8,
    /// `initial_presentation_delay_minus_one` (4 bits), `None` when not present.
    pub initial_presentation_delay_minus_one: Option<u8>,
    /// `configOBUs`: the sequence header OBU (and possibly metadata OBUs), each with
    /// `obu_has_size_field` set.
    pub config_obus: Vec<u8>,
}

impl Av1CodecConfigurationRecord {
    /// Parses and validates an av1C record: marker and version 1, and `configOBUs` that are
    /// well-formed OBUs with size fields.
    pub fn parse(data: &[u8]) -> Result<Self> {
        let &[b0, b1, b2, b3, ..] = data else {
            return Err(Error::InvalidAv1Config("shorter than its 4-byte header"));
        };
        if b0 != 0x81 {
            return Err(Error::InvalidAv1Config("marker or version is not 1"));
        }
        let config_obus = &data[4..];
        for obu in obus(config_obus) {
            let obu = obu.map_err(|_| Error::InvalidAv1Config("configOBUs are not valid OBUs"))?;
            if !obu.header.has_size_field {
                return Err(Error::InvalidAv1Config(
                    "an OBU in configOBUs has no size field",
                ));
            }
        }
        Ok(Av1CodecConfigurationRecord {
            seq_profile: b1 >> 5,
            seq_level_idx_0: b1 & 0x1f,
            seq_tier_0: b2 & 0x80 != 0,
            high_bitdepth: b2 & 0x40 != 0,
            twelve_bit: b2 & 0x20 != 0,
            monochrome: b2 & 0x10 != 0,
            chroma_subsampling_x: b2 & 0x08 != 0,
            chroma_subsampling_y: b2 & 0x04 != 0,
            chroma_sample_position: b2 & 0x03,
            initial_presentation_delay_minus_one: (b3 & 0x10 != 0).then_some(b3 & 0x0f),
            config_obus: config_obus.to_vec(),
        })
    }

    /// Serialises the record (fields masked to their widths).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.config_obus.len());
        out.push(0x81);
        out.push((self.seq_profile & 0x07) << 5 | (self.seq_level_idx_0 & 0x1f));
        out.push(
            u8::from(self.seq_tier_0) << 7
                | u8::from(self.high_bitdepth) << 6
                | u8::from(self.twelve_bit) << 5
                | u8::from(self.monochrome) << 4
                | u8::from(self.chroma_subsampling_x) << 3
                | u8::from(self.chroma_subsampling_y) << 2
                | (self.chroma_sample_position & 0x03),
        );
        out.push(match self.initial_presentation_delay_minus_one {
            Some(d) => 0x10 | (d & 0x0f),
            None => 0,
        });
        out.extend_from_slice(&self.config_obus);
        out
    }

    /// Builds the record from a complete sequence header OBU (header, size field, payload), as
    /// FFmpeg does: fields from the sequence header, no initial presentation delay, and the
    /// OBU as `configOBUs` (rewritten with a size field if it had none).
    pub fn from_sequence_header_obu(obu: &[u8]) -> Result<Self> {
        let parsed = obus(obu)
            .next()
            .ok_or(Error::InvalidAv1("empty sequence header OBU"))??;
        if parsed.header.obu_type != OBU_SEQUENCE_HEADER {
            return Err(Error::InvalidAv1("OBU is not a sequence header"));
        }
        let seq = parse_sequence_header(parsed.payload)?;
        let config_obus = if parsed.header.has_size_field {
            parsed.data.to_vec()
        } else {
            let header_len = if parsed.header.has_extension { 2 } else { 1 };
            let mut v = Vec::with_capacity(parsed.data.len() + MAX_LEB128_BYTES);
            v.push(parsed.data[0] | 0x02);
            v.extend_from_slice(&parsed.data[1..header_len]);
            let len = u32::try_from(parsed.payload.len())
                .map_err(|_| Error::InvalidAv1("sequence header OBU too large"))?;
            write_leb128(len, &mut v);
            v.extend_from_slice(parsed.payload);
            v
        };
        Ok(Av1CodecConfigurationRecord {
            seq_profile: seq.seq_profile,
            seq_level_idx_0: seq.seq_level_idx_0,
            seq_tier_0: seq.seq_tier_0,
            high_bitdepth: seq.high_bitdepth,
            twelve_bit: seq.twelve_bit,
            monochrome: seq.mono_chrome,
            chroma_subsampling_x: seq.chroma_subsampling_x,
            chroma_subsampling_y: seq.chroma_subsampling_y,
            chroma_sample_position: seq.chroma_sample_position,
            initial_presentation_delay_minus_one: None,
            config_obus,
        })
    }

    /// Parses the sequence header OBU in `configOBUs`, `None` if the record has none.
    pub fn sequence_header(&self) -> Result<Option<SequenceHeader>> {
        match find_sequence_header(&self.config_obus)? {
            Some(obu) => parse_sequence_header(obu.payload).map(Some),
            None => Ok(None),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Temporal units
// ---------------------------------------------------------------------------------------------

/// What a temporal unit contains and which of its bytes to send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemporalUnitInfo {
    /// Byte ranges of the buffer to send, in order: every OBU except temporal delimiters,
    /// adjacent OBUs merged (usually one range).
    pub ranges: Vec<Range<usize>>,
    /// The first sequence header OBU of the temporal unit, if any.
    pub sequence_header: Option<Range<usize>>,
    /// Temporal delimiter OBUs left out of `ranges`.
    pub temporal_delimiters: usize,
    /// OBUs in the buffer, temporal delimiters included.
    pub obus: usize,
    /// The first frame of the temporal unit is a shown key frame.
    pub keyframe: bool,
}

impl TemporalUnitInfo {
    /// Bytes in `ranges`.
    pub fn len(&self) -> usize {
        self.ranges.iter().map(ExactSizeIterator::len).sum()
    }

    /// Whether nothing is left to send (a temporal unit of temporal delimiters only).
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

/// Reads `frame_type` and `show_frame` at the start of a frame header OBU payload:
/// `Some(true)` for a shown key frame.
fn is_shown_key_frame(payload: &[u8], reduced_still_picture_header: bool) -> Option<bool> {
    if reduced_still_picture_header {
        // Always KEY_FRAME, shown (AV1 §5.9.2).
        return Some(true);
    }
    let mut r = Bits::new(payload);
    if r.bit()? {
        // show_existing_frame: shows an earlier frame, nothing new to start decoding from.
        return Some(false);
    }
    let frame_type = r.u8(2)?;
    let show_frame = r.bit()?;
    Some(frame_type == 0 && show_frame)
}

/// Splits a temporal unit (`obu-stream`, alignment `tu`) into the byte ranges to send without
/// its temporal delimiters, and finds its sequence header and whether it starts with a key
/// frame.
///
/// `reduced_still_picture_header` comes from the stream's sequence header; a sequence header
/// inside the temporal unit takes precedence.
pub fn temporal_unit(data: &[u8], reduced_still_picture_header: bool) -> Result<TemporalUnitInfo> {
    let mut info = TemporalUnitInfo::default();
    let mut reduced = reduced_still_picture_header;
    let mut frame_seen = false;
    for obu in obus(data) {
        let obu = obu?;
        info.obus += 1;
        match obu.header.obu_type {
            OBU_TEMPORAL_DELIMITER => {
                info.temporal_delimiters += 1;
                continue;
            }
            OBU_SEQUENCE_HEADER if info.sequence_header.is_none() => {
                info.sequence_header = Some(obu.range.clone());
                if let Ok(seq) = parse_sequence_header(obu.payload) {
                    reduced = seq.reduced_still_picture_header;
                }
            }
            OBU_FRAME_HEADER | OBU_FRAME if !frame_seen => {
                frame_seen = true;
                info.keyframe = is_shown_key_frame(obu.payload, reduced).unwrap_or(false);
            }
            _ => {}
        }
        match info.ranges.last_mut() {
            Some(last) if last.end == obu.range.start => last.end = obu.range.end,
            _ => info.ranges.push(obu.range),
        }
    }
    if info.obus == 0 {
        return Err(Error::InvalidAv1("buffer holds no OBU"));
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::testutil::hex;

    /// Sequence header OBU of libaom (GStreamer av1enc cpu-used=8, 64x48 I420).
    const SEQ_OBU: &str = "0a0b00000002aff7f036be4010";
    /// The av1C FFmpeg 9 writes into FLV for that stream.
    const FFMPEG_AV1C: &str = "81000c000a0b00000002aff7f036be4010";

    #[test]
    fn leb128_round_trip_and_limits() {
        for v in [0u32, 1, 127, 128, 300, 16_383, 16_384, u32::MAX] {
            let mut out = Vec::new();
            write_leb128(v, &mut out);
            assert_eq!(read_leb128(&out), Ok((v, out.len())));
        }
        // Non-minimal encodings are valid.
        assert_eq!(read_leb128(&[0x80, 0x80, 0x00]), Ok((0, 3)));
        assert!(read_leb128(&[0x80; 8]).is_err());
        assert!(read_leb128(&[0x80, 0x80]).is_err());
        assert!(read_leb128(&[0xff, 0xff, 0xff, 0xff, 0x1f]).is_err());
        assert!(read_leb128(&[]).is_err());
    }

    #[test]
    fn parse_libaom_sequence_header() {
        let obu = hex(SEQ_OBU);
        let found = find_sequence_header(&obu).unwrap().unwrap();
        assert_eq!(found.header.obu_type, OBU_SEQUENCE_HEADER);
        assert!(found.header.has_size_field);
        let s = parse_sequence_header(found.payload).unwrap();
        assert_eq!(
            (s.seq_profile, s.seq_level_idx_0, s.seq_tier_0),
            (0, 0, false)
        );
        assert_eq!((s.max_frame_width, s.max_frame_height), (64, 48));
        assert_eq!(s.bit_depth, 8);
        assert!(!s.mono_chrome && s.chroma_subsampling_x && s.chroma_subsampling_y);
        assert_eq!(s.chroma_sample_position, 0);
        assert!(!s.reduced_still_picture_header);
    }

    #[test]
    fn av1c_from_sequence_header_matches_ffmpeg() {
        let record = Av1CodecConfigurationRecord::from_sequence_header_obu(&hex(SEQ_OBU)).unwrap();
        assert_eq!(record.to_bytes(), hex(FFMPEG_AV1C));
        let parsed = Av1CodecConfigurationRecord::parse(&hex(FFMPEG_AV1C)).unwrap();
        assert_eq!(parsed, record);
        assert_eq!(
            parsed.sequence_header().unwrap().unwrap().max_frame_width,
            64
        );
        // Without a size field the OBU is rewritten with one.
        let mut no_size = vec![0x08];
        no_size.extend_from_slice(&hex(SEQ_OBU)[2..]);
        let rebuilt = Av1CodecConfigurationRecord::from_sequence_header_obu(&no_size).unwrap();
        assert_eq!(rebuilt.to_bytes(), hex(FFMPEG_AV1C));
    }

    #[test]
    fn av1c_errors() {
        assert!(Av1CodecConfigurationRecord::parse(&[0x81, 0, 0]).is_err());
        assert!(Av1CodecConfigurationRecord::parse(&hex("01000c00")).is_err());
        assert!(Av1CodecConfigurationRecord::parse(&hex("81000c000a0b0000")).is_err());
        assert!(Av1CodecConfigurationRecord::parse(&hex("81000c0008")).is_err());
        // Only the 4 bytes: valid, no sequence header.
        let bare = Av1CodecConfigurationRecord::parse(&hex("81000c1a")).unwrap();
        assert_eq!(bare.initial_presentation_delay_minus_one, Some(10));
        assert_eq!(bare.sequence_header(), Ok(None));
        assert_eq!(bare.to_bytes(), hex("81000c1a"));
        assert!(Av1CodecConfigurationRecord::from_sequence_header_obu(&hex("1200")).is_err());
        assert!(Av1CodecConfigurationRecord::from_sequence_header_obu(&hex("0a0b000000")).is_err());
    }

    #[test]
    fn temporal_unit_ranges_skip_delimiters() {
        let seq = hex(SEQ_OBU);
        // TD, sequence header, frame OBU (key frame, shown: bits 0 00 1), padding.
        let mut tu = hex("1200");
        tu.extend_from_slice(&seq);
        tu.extend_from_slice(&hex("3203105555"));
        tu.extend_from_slice(&hex("7a01ff"));
        let info = temporal_unit(&tu, false).unwrap();
        assert_eq!(info.ranges.len(), 1);
        assert_eq!(info.ranges[0], 2..tu.len());
        assert_eq!(info.sequence_header, Some(2..2 + seq.len()));
        assert_eq!((info.temporal_delimiters, info.obus), (1, 4));
        assert!(info.keyframe);
        assert_eq!(info.len(), tu.len() - 2);
        // A delimiter in the middle splits the ranges.
        let mut two = hex("3203105555");
        two.extend_from_slice(&hex("1200"));
        two.extend_from_slice(&hex("32023000"));
        let info = temporal_unit(&two, false).unwrap();
        assert_eq!(info.ranges, [0..5, 7..11]);
        assert!(info.keyframe);
        // Inter frame (frame_type 1), and show_existing_frame.
        assert!(!temporal_unit(&hex("120032023000"), false).unwrap().keyframe);
        assert!(!temporal_unit(&hex("32018000"), false).unwrap().keyframe);
        // Only delimiters: nothing to send.
        assert!(temporal_unit(&hex("1200"), false).unwrap().is_empty());
        // Truncated, garbage, empty.
        assert!(temporal_unit(&tu[..tu.len() - 1], false).is_err());
        assert!(temporal_unit(&[0x80, 0], false).is_err());
        assert!(temporal_unit(&[], false).is_err());
        assert!(temporal_unit(&[0x16], false).is_err());
    }

    #[test]
    fn sequence_header_truncations_are_errors() {
        let obu = hex(SEQ_OBU);
        let payload = &obu[2..];
        for cut in 0..payload.len() {
            assert!(parse_sequence_header(&payload[..cut]).is_err(), "cut {cut}");
        }
        // seq_profile 3 is reserved.
        let mut bad = payload.to_vec();
        bad[0] |= 0xe0;
        assert!(parse_sequence_header(&bad).is_err());
    }
}
