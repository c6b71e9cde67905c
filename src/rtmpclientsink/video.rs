//! Conversion state of the Enhanced RTMP video codecs (HEVC, AV1, VP9), free of GStreamer:
//! which sequence start (hvcC, av1C, vpcC) is current, what a buffer becomes on the wire, and
//! the `colorInfo` metadata that goes with HDR caps.
//!
//! Like `convert.rs` for H.264, nothing here copies a payload: length-prefixed HEVC goes out as
//! it came, byte-stream HEVC through an [`h264::AvccView`] (HEVC has the same start codes), an
//! AV1 temporal unit as the range after its temporal delimiter, VP9 frames whole. Parameter
//! sets and sequence headers are compared with the current ones in place; only a change
//! allocates.

use std::ops::Range;
use std::sync::Arc;

use crate::codec::colour::ColourDescription;
use crate::codec::{self, av1, flv, h264, hevc, vp9};
use crate::rtmp::amf0::{self, Amf0Value};

use super::convert::{VideoAu, VideoBody, VideoOutcome};
use super::frame::TrackConfig;

// ---------------------------------------------------------------------------------------------
// Colour and HDR metadata from the caps
// ---------------------------------------------------------------------------------------------

/// SMPTE ST 2086 mastering display colour volume, in GStreamer's units (the caps field
/// `mastering-display-info`): chromaticity in 0.00002 steps, luminance in 0.0001 cd/m².
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MasteringDisplay {
    /// x, y of the red, green and blue primaries, in that order.
    pub primaries: [(u32, u32); 3],
    /// x, y of the white point.
    pub white_point: (u32, u32),
    /// Maximum display luminance.
    pub max_luminance: u32,
    /// Minimum display luminance.
    pub min_luminance: u32,
}

/// What the caps say about colour: the description (`colorimetry`) and the HDR static
/// metadata (`mastering-display-info`, `content-light-level`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VideoColour {
    /// Primaries, transfer and matrix as ISO/IEC 23091-2 code points; `None` without
    /// colorimetry (or one that says nothing).
    pub description: Option<ColourDescription>,
    /// Full range (`colorimetry` range 0-255); `None` when the caps do not say.
    pub full_range: Option<bool>,
    /// Mastering display colour volume.
    pub mastering: Option<MasteringDisplay>,
    /// Content light level: (MaxCLL, MaxFALL) in cd/m².
    pub light_level: Option<(u32, u32)>,
}

/// ISO/IEC 23091-2 transfer characteristics of PQ (SMPTE ST 2084) and HLG (ARIB STD-B67).
const TRANSFER_PQ: u8 = 16;
const TRANSFER_HLG: u8 = 18;
/// ISO/IEC 23091-2 colour primaries of BT.2020.
const PRIMARIES_BT2020: u8 = 9;

/// GStreamer's `GstVideoColorMatrix` → ISO/IEC 23091-2 matrix coefficients.
fn iso_matrix(gst: u32) -> u8 {
    match gst {
        1 => 0, // RGB
        2 => 4, // FCC
        3 => 1, // BT.709
        4 => 6, // BT.601
        5 => 7, // SMPTE 240M
        6 => 9, // BT.2020
        _ => ColourDescription::UNSPECIFIED_CODE,
    }
}

/// GStreamer's `GstVideoTransferFunction` → ISO/IEC 23091-2 transfer characteristics.
fn iso_transfer(gst: u32) -> u8 {
    match gst {
        1 => 8,   // linear
        4 => 4,   // gamma 2.2
        5 => 1,   // BT.709
        6 => 7,   // SMPTE 240M
        7 => 13,  // sRGB
        8 => 5,   // gamma 2.8
        9 => 9,   // log 100:1
        10 => 10, // log 316:1
        11 => 15, // BT.2020 12-bit
        13 => 14, // BT.2020 10-bit
        14 => TRANSFER_PQ,
        15 => TRANSFER_HLG,
        16 => 6, // BT.601
        _ => ColourDescription::UNSPECIFIED_CODE,
    }
}

/// GStreamer's `GstVideoColorPrimaries` → ISO/IEC 23091-2 colour primaries.
fn iso_primaries(gst: u32) -> u8 {
    match gst {
        1 => 1, // BT.709
        2 => 4, // BT.470M
        3 => 5, // BT.470BG
        4 => 6, // SMPTE 170M
        5 => 7, // SMPTE 240M
        6 => 8, // film
        7 => PRIMARIES_BT2020,
        9 => 10,  // SMPTE ST 428
        10 => 11, // SMPTE RP 431
        11 => 12, // SMPTE EG 432
        12 => 22, // EBU 3213
        _ => ColourDescription::UNSPECIFIED_CODE,
    }
}

/// Numbers separated by `:`, exactly `N` of them.
fn colon_numbers<const N: usize>(s: &str) -> Option<[u32; N]> {
    let mut out = [0u32; N];
    let mut parts = s.split(':');
    for slot in &mut out {
        *slot = parts.next()?.trim().parse().ok()?;
    }
    parts.next().is_none().then_some(out)
}

impl VideoColour {
    /// Reads the caps fields (each `None` when absent). Values that cannot be read are
    /// ignored: colour metadata is advisory, the stream is sent either way.
    pub fn from_caps_fields(
        colorimetry: Option<&str>,
        mastering_display_info: Option<&str>,
        content_light_level: Option<&str>,
    ) -> Self {
        let mut c = VideoColour::default();
        if let Some(s) = colorimetry {
            // GStreamer's named colorimetries, as range:matrix:transfer:primaries.
            let rmtp = match s {
                "bt601" => Some([2, 4, 16, 4]),
                "bt709" => Some([2, 3, 5, 1]),
                "smpte240m" => Some([2, 5, 6, 5]),
                "sRGB" => Some([1, 1, 7, 1]),
                "bt2020" => Some([2, 6, 11, 7]),
                "bt2020-10" => Some([2, 6, 13, 7]),
                "bt2100-pq" => Some([2, 6, 14, 7]),
                "bt2100-hlg" => Some([2, 6, 15, 7]),
                other => colon_numbers::<4>(other),
            };
            if let Some([range, matrix, transfer, primaries]) = rmtp {
                c.full_range = match range {
                    1 => Some(true),
                    2 => Some(false),
                    _ => None,
                };
                let d = ColourDescription {
                    primaries: iso_primaries(primaries),
                    transfer_characteristics: iso_transfer(transfer),
                    matrix_coefficients: iso_matrix(matrix),
                };
                c.description = (d != ColourDescription::UNSPECIFIED).then_some(d);
            }
        }
        if let Some(v) = mastering_display_info.and_then(colon_numbers::<10>) {
            c.mastering = Some(MasteringDisplay {
                primaries: [(v[0], v[1]), (v[2], v[3]), (v[4], v[5])],
                white_point: (v[6], v[7]),
                max_luminance: v[8],
                min_luminance: v[9],
            });
        }
        if let Some([cll, fall]) = content_light_level.and_then(colon_numbers::<2>) {
            c.light_level = Some((cll, fall));
        }
        c
    }

    /// Whether the caps describe HDR or wide-gamut video: HDR static metadata, a PQ or HLG
    /// transfer, or BT.2020 primaries. Only then is a `colorInfo` sent (SDR players need none).
    pub fn is_hdr(&self) -> bool {
        self.mastering.is_some()
            || self.light_level.is_some()
            || self.description.is_some_and(|d| {
                matches!(d.transfer_characteristics, TRANSFER_PQ | TRANSFER_HLG)
                    || d.primaries == PRIMARIES_BT2020
            })
    }

    /// The Enhanced RTMP `colorInfo` Metadata packet (the AMF0 string "colorInfo" and its
    /// object, field names of the E-RTMP v2 spec) for HDR caps; `bit_depth` comes from the
    /// stream's configuration record. `None` for SDR caps.
    pub fn color_info(&self, bit_depth: Option<u8>) -> Option<(flv::Packet, Vec<u8>)> {
        if !self.is_hdr() {
            return None;
        }
        let num = |k: &str, v: f64| (k.to_string(), Amf0Value::Number(v));
        let mut info = Vec::new();
        let mut config = Vec::new();
        if let Some(b) = bit_depth {
            config.push(num("bitDepth", f64::from(b)));
        }
        if let Some(d) = self.description {
            config.push(num("colorPrimaries", f64::from(d.primaries)));
            config.push(num(
                "transferCharacteristics",
                f64::from(d.transfer_characteristics),
            ));
            config.push(num("matrixCoefficients", f64::from(d.matrix_coefficients)));
        }
        info.push(("colorConfig".to_string(), Amf0Value::Object(config)));
        if let Some((cll, fall)) = self.light_level {
            info.push((
                "hdrCll".to_string(),
                Amf0Value::Object(vec![
                    num("maxFall", f64::from(fall)),
                    num("maxCLL", f64::from(cll)),
                ]),
            ));
        }
        if let Some(m) = self.mastering {
            // GStreamer's units → the spec's: chromaticity 0..1, luminance in cd/m².
            let xy = |v: u32| f64::from(v) / 50_000.0;
            let nits = |v: u32| f64::from(v) / 10_000.0;
            let [r, g, b] = m.primaries;
            info.push((
                "hdrMdcv".to_string(),
                Amf0Value::Object(vec![
                    num("redX", xy(r.0)),
                    num("redY", xy(r.1)),
                    num("greenX", xy(g.0)),
                    num("greenY", xy(g.1)),
                    num("blueX", xy(b.0)),
                    num("blueY", xy(b.1)),
                    num("whitePointX", xy(m.white_point.0)),
                    num("whitePointY", xy(m.white_point.1)),
                    num("maxLuminance", nits(m.max_luminance)),
                    num("minLuminance", nits(m.min_luminance)),
                ]),
            ));
        }
        let body = amf0::encode_all(&[
            Amf0Value::String("colorInfo".to_string()),
            Amf0Value::Object(info),
        ]);
        Some((flv::Packet::Metadata, body))
    }

    /// The track configuration: `sequence_start` and, for HDR caps, the `colorInfo` that must
    /// reach the player before the frames.
    fn config(&self, sequence_start: Vec<u8>, bit_depth: Option<u8>) -> Arc<TrackConfig> {
        Arc::new(TrackConfig {
            sequence_start: Some(sequence_start),
            extra: self.color_info(bit_depth).into_iter().collect(),
            legacy_sound: None,
        })
    }
}

/// What a video stream's own headers say, for onMetaData.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamVideoInfo {
    /// Picture width.
    pub width: u32,
    /// Picture height.
    pub height: u32,
    /// Frames per second, when the stream says.
    pub framerate: Option<f64>,
    /// A line for the log.
    pub line: Option<&'static str>,
}

/// What every video codec state keeps alike: the current config (built with the caps'
/// colour), whether it changed since the stream info was last taken, and the wait for the
/// first keyframe.
#[derive(Debug)]
struct VideoTrack {
    colour: VideoColour,
    config: Option<Arc<TrackConfig>>,
    seen_keyframe: bool,
    config_changed: bool,
}

impl VideoTrack {
    fn new(colour: VideoColour) -> Self {
        VideoTrack {
            colour,
            config: None,
            seen_keyframe: false,
            config_changed: false,
        }
    }

    /// Takes the caps' colour; true when it differs from the one before.
    fn set_colour(&mut self, colour: VideoColour) -> bool {
        let changed = colour != self.colour;
        self.colour = colour;
        changed
    }

    /// The sequence start of the current config.
    fn start(&self) -> Option<&[u8]> {
        self.config.as_ref().and_then(|c| c.start())
    }

    /// A new config from `start` (a record of `bit_depth`).
    fn set(&mut self, start: Vec<u8>, bit_depth: Option<u8>) {
        self.config = Some(self.colour.config(start, bit_depth));
        self.config_changed = true;
    }

    /// A new config from `start` unless the current one starts with it already (a repeat is
    /// compared, not copied), or in any case when `force`.
    fn offer<B: AsRef<[u8]> + Into<Vec<u8>>>(
        &mut self,
        start: B,
        bit_depth: Option<u8>,
        force: bool,
    ) {
        if force || self.start() != Some(start.as_ref()) {
            self.set(start.into(), bit_depth);
        }
    }

    /// The current record again with the current colour (the caps' colour changed while the
    /// record comes in-band); `bit_depth` reads the record.
    fn recolour(&mut self, bit_depth: impl FnOnce(&[u8]) -> Option<u8>) {
        if let Some(start) = self.start() {
            let depth = bit_depth(start);
            self.set(start.to_vec(), depth);
        }
    }

    /// What a unit becomes: nothing before the first keyframe, `missing` when a keyframe
    /// comes without a config, else a frame with the current config. No frame is taken as
    /// disposable (HEVC sub-layer non-reference pictures may still be referenced by higher
    /// sub-layers).
    fn outcome(
        &mut self,
        keyframe: bool,
        body: VideoBody,
        missing: codec::Error,
    ) -> Result<VideoOutcome, codec::Error> {
        if !self.seen_keyframe {
            if !keyframe {
                return Ok(VideoOutcome::BeforeKeyframe);
            }
            if self.config.is_none() {
                return Err(missing);
            }
            self.seen_keyframe = true;
        }
        let config = self.config.clone().ok_or(missing)?;
        Ok(VideoOutcome::Frame(VideoAu {
            keyframe,
            disposable: false,
            config,
            body,
        }))
    }

    /// Once after the config changed: its sequence start.
    fn take_changed(&mut self) -> Option<&[u8]> {
        if !std::mem::take(&mut self.config_changed) {
            return None;
        }
        self.start()
    }
}

// ---------------------------------------------------------------------------------------------
// HEVC
// ---------------------------------------------------------------------------------------------

/// How HEVC arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum H265Input {
    /// `stream-format=hvc1`: length-prefixed NAL units, parameter sets in the hvcC of
    /// `codec_data`.
    Hvc1,
    /// `stream-format=hev1`: length-prefixed, parameter sets may also come in-band.
    Hev1,
    /// `stream-format=byte-stream`: Annex-B start codes, parameter sets in-band.
    ByteStream,
}

/// Conversion state of an HEVC track.
#[derive(Debug)]
pub struct H265State {
    input: H265Input,
    /// NAL length size of length-prefixed input (from the hvcC).
    length_size: usize,
    /// The hvcC came from `codec_data` (authoritative: in-band repeats stay in the frames).
    from_caps: bool,
    /// Parameter sets the current config was built from (in-band input).
    vps: Vec<Vec<u8>>,
    sps: Vec<Vec<u8>>,
    pps: Vec<Vec<u8>>,
    track: VideoTrack,
}

/// Why a stream cannot be sent: no parameter sets anywhere (the element's error text).
pub const HEVC_NO_PARAMETER_SETS_TEXT: &str = "HEVC stream has no VPS/SPS/PPS before its first keyframe and the caps have no codec_data (hvcC); make the encoder repeat its headers with keyframes (h265parse config-interval=-1 inserts them)";
const HEVC_NO_PARAMETER_SETS: codec::Error = codec::Error::InvalidHevc(HEVC_NO_PARAMETER_SETS_TEXT);

impl H265State {
    /// State for `input`; `codec_data` is the hvcC (used as given for hvc1/hev1).
    pub fn new(
        input: H265Input,
        codec_data: Option<&[u8]>,
        colour: VideoColour,
    ) -> Result<Self, codec::Error> {
        let mut s = H265State {
            input,
            length_size: 4,
            from_caps: false,
            vps: Vec::new(),
            sps: Vec::new(),
            pps: Vec::new(),
            track: VideoTrack::new(colour),
        };
        s.set_caps(input, codec_data, colour)?;
        Ok(s)
    }

    /// New caps of the same codec: keeps the config unless the caps bring another one.
    pub fn set_caps(
        &mut self,
        input: H265Input,
        codec_data: Option<&[u8]>,
        colour: VideoColour,
    ) -> Result<(), codec::Error> {
        self.input = input;
        let colour_changed = self.track.set_colour(colour);
        match (input, codec_data) {
            (H265Input::Hvc1 | H265Input::Hev1, Some(cd)) => {
                let rec = hevc::HevcDecoderConfigurationRecord::parse(cd)?;
                self.length_size = rec.length_size();
                let depth = rec.bit_depth_luma_minus8 + 8;
                self.track.offer(cd, Some(depth), colour_changed);
                self.from_caps = true;
            }
            _ => {
                // In-band parameter sets build the hvcC (with 4-byte lengths, which is what
                // byte-stream input is sent with).
                self.length_size = 4;
                self.from_caps = false;
                if colour_changed {
                    self.track.recolour(|start| {
                        hevc::HevcDecoderConfigurationRecord::parse(start)
                            .ok()
                            .map(|r| r.bit_depth_luma_minus8 + 8)
                    });
                }
            }
        }
        Ok(())
    }

    /// True when no configuration is known (a keyframe without parameter sets cannot be sent).
    #[cfg(test)]
    pub fn missing_config(&self) -> bool {
        self.track.config.is_none()
    }

    /// Converts one access unit (`delta_unit`: the buffer's DELTA_UNIT flag, not trusted for
    /// keyframes: a keyframe is an access unit with a base-layer IRAP picture).
    ///
    /// Allocates nothing unless the parameter sets change (or a byte-stream access unit has
    /// more NAL units than [`h264::AvccView`] holds inline).
    pub fn process(
        &mut self,
        data: &[u8],
        _delta_unit: bool,
    ) -> Result<VideoOutcome, codec::Error> {
        let (keyframe, body) = match self.input {
            H265Input::ByteStream => {
                let view = h264::AvccView::from_annexb(data)?;
                let keyframe = self.walk(view.nals(data).map(Ok))?;
                (keyframe, VideoBody::AnnexB(view))
            }
            H265Input::Hvc1 | H265Input::Hev1 => {
                let keyframe = self.walk(hevc::length_prefixed_nals(data, self.length_size))?;
                (keyframe, VideoBody::AsIs)
            }
        };
        self.track.outcome(keyframe, body, HEVC_NO_PARAMETER_SETS)
    }

    /// Checks the NAL units, takes in-band parameter sets, and says whether the access unit
    /// holds a base-layer IRAP picture.
    fn walk<'a>(
        &mut self,
        nals: impl Iterator<Item = Result<&'a [u8], codec::Error>> + Clone,
    ) -> Result<bool, codec::Error> {
        let mut keyframe = false;
        let mut parameter_sets = false;
        let mut count = 0usize;
        for nal in nals.clone() {
            let nal = nal?;
            count += 1;
            if nal.len() < 2 {
                continue;
            }
            match hevc::nal_type(nal) {
                Some(hevc::NAL_VPS | hevc::NAL_SPS | hevc::NAL_PPS) => parameter_sets = true,
                Some(t) if hevc::is_irap(t) && hevc::nuh_layer_id(nal) == Some(0) => {
                    keyframe = true
                }
                _ => {}
            }
        }
        if count == 0 {
            return Err(codec::Error::InvalidHevc("buffer holds no NAL unit"));
        }
        if parameter_sets && !self.from_caps {
            self.update_parameter_sets(nals.filter_map(Result::ok))?;
        }
        Ok(keyframe)
    }

    /// In-band parameter sets replace the current ones, and a new hvcC is built, when they
    /// differ (a resolution change). Repeats (x265enc sends them with every keyframe) are
    /// compared, not copied. Sets that cannot build an hvcC leave the current config alone.
    fn update_parameter_sets<'a>(
        &mut self,
        nals: impl Iterator<Item = &'a [u8]> + Clone,
    ) -> Result<(), codec::Error> {
        let of_type = |t: u8| nals.clone().filter(move |n| hevc::nal_type(n) == Some(t));
        let differs = |t: u8, current: &[Vec<u8>]| {
            let sets = of_type(t);
            sets.clone().next().is_some() && !sets.eq(current.iter().map(Vec::as_slice))
        };
        if !(differs(hevc::NAL_VPS, &self.vps)
            || differs(hevc::NAL_SPS, &self.sps)
            || differs(hevc::NAL_PPS, &self.pps))
        {
            return Ok(());
        }
        let take = |t: u8, current: &[Vec<u8>]| -> Vec<Vec<u8>> {
            let sets: Vec<Vec<u8>> = of_type(t).map(<[u8]>::to_vec).collect();
            if sets.is_empty() {
                current.to_vec()
            } else {
                sets
            }
        };
        let (vps, sps, pps) = (
            take(hevc::NAL_VPS, &self.vps),
            take(hevc::NAL_SPS, &self.sps),
            take(hevc::NAL_PPS, &self.pps),
        );
        if vps.is_empty() || sps.is_empty() || pps.is_empty() {
            (self.vps, self.sps, self.pps) = (vps, sps, pps);
            return Ok(());
        }
        let rec = hevc::HevcDecoderConfigurationRecord::from_parameter_sets(&vps, &sps, &pps)?;
        (self.vps, self.sps, self.pps) = (vps, sps, pps);
        let depth = rec.bit_depth_luma_minus8 + 8;
        self.track.offer(rec.to_bytes(), Some(depth), false);
        Ok(())
    }

    /// Once after the config changed: what its SPS says (size, frame rate).
    pub fn take_stream_info(&mut self) -> Option<StreamVideoInfo> {
        let rec = hevc::HevcDecoderConfigurationRecord::parse(self.track.take_changed()?).ok()?;
        let sps = rec.sps_info().ok()?;
        Some(StreamVideoInfo {
            width: sps.width,
            height: sps.height,
            framerate: sps
                .vui
                .and_then(|v| v.frame_rate)
                .map(|(n, d)| f64::from(n) / f64::from(d)),
            line: Some("HEVC config changed"),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// AV1
// ---------------------------------------------------------------------------------------------

/// Conversion state of an AV1 track (`obu-stream`, one temporal unit per buffer).
#[derive(Debug)]
pub struct Av1State {
    /// The av1C came from `codec_data` (authoritative).
    from_caps: bool,
    /// The sequence header OBU (as it came in-band) the current config was built from.
    sequence_header: Vec<u8>,
    /// `reduced_still_picture_header` of the current sequence header.
    reduced_still: bool,
    track: VideoTrack,
}

/// Why a stream cannot be sent: no sequence header anywhere (the element's error text).
pub const AV1_NO_SEQUENCE_HEADER_TEXT: &str = "AV1 stream has no sequence header OBU before its first keyframe and the caps have no codec_data (av1C); put av1parse before the sink";
const AV1_NO_SEQUENCE_HEADER: codec::Error = codec::Error::InvalidAv1(AV1_NO_SEQUENCE_HEADER_TEXT);

/// Where the bytes to send lie: usually one range (everything after the temporal delimiter).
#[derive(Debug, Default)]
struct Pieces {
    first: Option<Range<usize>>,
    rest: Vec<Range<usize>>,
}

impl Pieces {
    fn push(&mut self, r: Range<usize>) {
        let last = self.rest.last_mut().or(self.first.as_mut());
        match last {
            Some(last) if last.end == r.start => last.end = r.end,
            Some(_) => self.rest.push(r),
            None => self.first = Some(r),
        }
    }

    fn into_body(self) -> Option<VideoBody> {
        let first = self.first?;
        Some(if self.rest.is_empty() {
            VideoBody::Range(first)
        } else {
            VideoBody::Ranges(std::iter::once(first).chain(self.rest).collect())
        })
    }
}

impl Av1State {
    /// State for AV1; `codec_data` is the av1C (used as given).
    pub fn new(codec_data: Option<&[u8]>, colour: VideoColour) -> Result<Self, codec::Error> {
        let mut s = Av1State {
            from_caps: false,
            sequence_header: Vec::new(),
            reduced_still: false,
            track: VideoTrack::new(colour),
        };
        s.set_caps(codec_data, colour)?;
        Ok(s)
    }

    /// New caps of the same codec.
    pub fn set_caps(
        &mut self,
        codec_data: Option<&[u8]>,
        colour: VideoColour,
    ) -> Result<(), codec::Error> {
        let colour_changed = self.track.set_colour(colour);
        match codec_data {
            Some(cd) => {
                let rec = av1::Av1CodecConfigurationRecord::parse(cd)?;
                if let Ok(Some(seq)) = rec.sequence_header() {
                    self.reduced_still = seq.reduced_still_picture_header;
                }
                self.track.offer(cd, Some(bit_depth(&rec)), colour_changed);
                self.from_caps = true;
            }
            None => {
                self.from_caps = false;
                if colour_changed {
                    self.track.recolour(|start| {
                        av1::Av1CodecConfigurationRecord::parse(start)
                            .ok()
                            .map(|r| bit_depth(&r))
                    });
                }
            }
        }
        Ok(())
    }

    /// True when no configuration is known.
    #[cfg(test)]
    pub fn missing_config(&self) -> bool {
        self.track.config.is_none()
    }

    /// Converts one temporal unit: its OBUs without the temporal delimiters, as ranges of
    /// `data`. A keyframe is a temporal unit whose first frame is a shown key frame.
    ///
    /// Allocates nothing unless the sequence header changes or temporal delimiters sit between
    /// other OBUs (a buffer of several temporal units).
    pub fn process(
        &mut self,
        data: &[u8],
        _delta_unit: bool,
    ) -> Result<VideoOutcome, codec::Error> {
        let mut pieces = Pieces::default();
        let mut keyframe = None;
        let mut sequence_header = None;
        for obu in av1::obus(data) {
            let obu = obu?;
            match obu.header.obu_type {
                av1::OBU_TEMPORAL_DELIMITER => continue,
                av1::OBU_SEQUENCE_HEADER if sequence_header.is_none() => {
                    sequence_header = Some(obu.data);
                    if obu.data != self.sequence_header.as_slice() {
                        let seq = av1::parse_sequence_header(obu.payload)?;
                        self.reduced_still = seq.reduced_still_picture_header;
                    }
                }
                av1::OBU_FRAME_HEADER | av1::OBU_FRAME if keyframe.is_none() => {
                    keyframe = Some(self.reduced_still || is_shown_key_frame(obu.payload));
                }
                _ => {}
            }
            pieces.push(obu.range);
        }
        let Some(body) = pieces.into_body() else {
            return Err(codec::Error::InvalidAv1(
                "buffer holds no OBU other than temporal delimiters",
            ));
        };
        if let Some(obu) = sequence_header
            && !self.from_caps
            && obu != self.sequence_header.as_slice()
        {
            let rec = av1::Av1CodecConfigurationRecord::from_sequence_header_obu(obu)?;
            self.sequence_header = obu.to_vec();
            self.track
                .offer(rec.to_bytes(), Some(bit_depth(&rec)), false);
        }
        self.track
            .outcome(keyframe.unwrap_or(false), body, AV1_NO_SEQUENCE_HEADER)
    }

    /// Once after the config changed: what its sequence header says.
    pub fn take_stream_info(&mut self) -> Option<StreamVideoInfo> {
        let rec = av1::Av1CodecConfigurationRecord::parse(self.track.take_changed()?).ok()?;
        let seq = rec.sequence_header().ok()??;
        Some(StreamVideoInfo {
            width: seq.max_frame_width,
            height: seq.max_frame_height,
            framerate: seq.frame_rate.map(|(n, d)| f64::from(n) / f64::from(d)),
            line: Some("AV1 config changed"),
        })
    }
}

/// Bit depth an av1C says.
fn bit_depth(rec: &av1::Av1CodecConfigurationRecord) -> u8 {
    match (rec.high_bitdepth, rec.twelve_bit) {
        (false, _) => 8,
        (true, false) => 10,
        (true, true) => 12,
    }
}

/// `show_existing_frame`, `frame_type` and `show_frame` are the first bits of an uncompressed
/// frame header (AV1 §5.9.2): true for a shown key frame.
fn is_shown_key_frame(payload: &[u8]) -> bool {
    let Some(&b) = payload.first() else {
        return false;
    };
    let show_existing_frame = b & 0x80 != 0;
    let frame_type = (b >> 5) & 0x03;
    let show_frame = b & 0x10 != 0;
    !show_existing_frame && frame_type == 0 && show_frame
}

// ---------------------------------------------------------------------------------------------
// VP9
// ---------------------------------------------------------------------------------------------

/// Conversion state of a VP9 track: the vpcC is built from the first keyframe and the caps,
/// and again when a keyframe changes what it says.
#[derive(Debug)]
pub struct Vp9State {
    /// 4:2:0 chroma sited left (`chroma-site=mpeg2` in the caps).
    chroma_sited_left: bool,
    record: Option<vp9::VpCodecConfigurationRecord>,
    frame_size: Option<(u32, u32)>,
    track: VideoTrack,
}

impl Vp9State {
    /// State for VP9 with what the caps say about colour.
    pub fn new(colour: VideoColour, chroma_sited_left: bool) -> Self {
        Vp9State {
            chroma_sited_left,
            record: None,
            frame_size: None,
            track: VideoTrack::new(colour),
        }
    }

    /// New caps of the same codec: the next keyframe builds the vpcC with them.
    pub fn set_caps(&mut self, colour: VideoColour, chroma_sited_left: bool) {
        let colour_changed = self.track.set_colour(colour);
        if colour_changed || chroma_sited_left != self.chroma_sited_left {
            self.chroma_sited_left = chroma_sited_left;
            // Built again at the next keyframe.
            self.record = None;
        }
    }

    /// Converts one frame (or superframe), sent whole.
    ///
    /// Allocates nothing unless a keyframe changes the vpcC.
    pub fn process(
        &mut self,
        data: &[u8],
        _delta_unit: bool,
    ) -> Result<VideoOutcome, codec::Error> {
        let header = vp9::parse_frame_header(data)?;
        let keyframe = header.keyframe && !header.show_existing_frame;
        if keyframe {
            let record = vp9::VpCodecConfigurationRecord::from_keyframe(
                &header,
                self.track.colour.description,
                self.chroma_sited_left,
            )?;
            if self.record.as_ref() != Some(&record) {
                self.track.set(record.to_bytes(), Some(record.bit_depth));
                self.record = Some(record);
                self.frame_size = header.frame_size;
            }
        }
        // A keyframe always leaves a config: the error is for a state that cannot be.
        self.track.outcome(
            keyframe,
            VideoBody::AsIs,
            codec::Error::InvalidVp9("no keyframe before this frame"),
        )
    }

    /// Once after the config changed: the keyframe's size.
    pub fn take_stream_info(&mut self) -> Option<StreamVideoInfo> {
        self.track.take_changed()?;
        let (width, height) = self.frame_size?;
        Some(StreamVideoInfo {
            width,
            height,
            framerate: None,
            line: Some("VP9 config changed"),
        })
    }
}

/// Real configuration bytes of GStreamer's encoders (the same as the codec modules' tests), and
/// the two framings of NAL units (H.264 and HEVC alike) the tests build access units in.
#[cfg(test)]
pub(crate) mod test_vectors {
    /// NAL units with 4-byte lengths.
    pub(crate) fn length_prefixed(nals: &[Vec<u8>]) -> Vec<u8> {
        nals.iter()
            .flat_map(|n| (n.len() as u32).to_be_bytes().into_iter().chain(n.clone()))
            .collect()
    }

    /// NAL units with 4-byte start codes.
    pub(crate) fn annexb(nals: &[Vec<u8>]) -> Vec<u8> {
        nals.iter()
            .flat_map(|n| [0, 0, 0, 1].into_iter().chain(n.clone()))
            .collect()
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .filter_map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
            .collect()
    }

    /// h265parse's hvcC of x265enc output, 64x48 I420.
    pub(crate) fn hvcc() -> Vec<u8> {
        hex(
            "0101600000009000000000003ff000fcfdf8f800000f03200001001840010c01ffff01600000030090000003000003003f959409210001003042010101600000030090000003000003003fa0208316595952930bffc00040005a830303020000030002000003003c1022000100064401c073c089",
        )
    }

    /// VPS, SPS and PPS of that stream.
    pub(crate) fn hevc_parameter_sets() -> [Vec<u8>; 3] {
        use crate::codec::hevc;
        let rec = hevc::HevcDecoderConfigurationRecord::parse(&hvcc()).expect("valid hvcC");
        let get = |t| {
            rec.nal_units(t)
                .next()
                .map(<[u8]>::to_vec)
                .unwrap_or_default()
        };
        [get(hevc::NAL_VPS), get(hevc::NAL_SPS), get(hevc::NAL_PPS)]
    }

    /// Sequence header OBU of av1enc (cpu-used=8, 64x48 I420).
    pub(crate) fn av1_sequence_header_obu() -> Vec<u8> {
        hex("0a0b00000002aff7f036be4010")
    }

    /// A vp9enc keyframe (160x96 I420, BT.601 colour space) of `len` bytes: its header start
    /// and filler.
    pub(crate) fn vp9_keyframe(len: usize) -> Vec<u8> {
        let mut v = hex("824983422009f005f60038241c184200");
        v.extend((v.len()..len).map(|i| (i % 251) as u8));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::test_vectors::*;
    use super::*;

    fn frame(outcome: Result<VideoOutcome, codec::Error>) -> VideoAu {
        match outcome {
            Ok(VideoOutcome::Frame(au)) => au,
            other => panic!("not a frame: {other:?}"),
        }
    }

    #[test]
    fn colour_from_caps_fields() {
        let c = VideoColour::from_caps_fields(
            Some("bt2100-pq"),
            Some("35400:14600:8500:39850:6550:2300:15635:16450:10000000:1"),
            Some("1000:400"),
        );
        assert_eq!(
            c.description,
            Some(ColourDescription {
                primaries: 9,
                transfer_characteristics: 16,
                matrix_coefficients: 9
            })
        );
        assert_eq!(c.full_range, Some(false));
        assert_eq!(c.light_level, Some((1000, 400)));
        let m = c.mastering.unwrap();
        assert_eq!(m.primaries[0], (35400, 14600));
        assert_eq!((m.max_luminance, m.min_luminance), (10_000_000, 1));
        assert!(c.is_hdr());
        // The numeric form: range:matrix:transfer:primaries (GStreamer enums).
        let c = VideoColour::from_caps_fields(Some("1:3:5:1"), None, None);
        assert_eq!(c.full_range, Some(true));
        assert_eq!(
            c.description.map(|d| d.primaries),
            Some(1),
            "BT.709 primaries"
        );
        assert!(!c.is_hdr());
        // Garbage is ignored, never an error.
        let c = VideoColour::from_caps_fields(Some("nonsense"), Some("1:2:3"), Some("x:y"));
        assert_eq!(c, VideoColour::default());
        assert_eq!(c.color_info(Some(8)), None, "SDR: no colorInfo");
    }

    #[test]
    fn color_info_has_the_spec_fields() {
        let c = VideoColour::from_caps_fields(
            Some("bt2100-pq"),
            Some("35400:14600:8500:39850:6550:2300:15635:16450:10000000:50"),
            Some("1000:400"),
        );
        let (packet, body) = c.color_info(Some(10)).unwrap();
        assert_eq!(packet, flv::Packet::Metadata);
        let v = amf0::decode_all(&body).unwrap();
        assert_eq!(v[0].as_str(), Some("colorInfo"));
        let info = &v[1];
        let cc = info.get("colorConfig").unwrap();
        let n = |o: &Amf0Value, k: &str| o.get(k).and_then(Amf0Value::as_f64).unwrap();
        assert_eq!(n(cc, "bitDepth"), 10.0);
        assert_eq!(n(cc, "colorPrimaries"), 9.0);
        assert_eq!(n(cc, "transferCharacteristics"), 16.0);
        assert_eq!(n(cc, "matrixCoefficients"), 9.0);
        let cll = info.get("hdrCll").unwrap();
        assert_eq!((n(cll, "maxCLL"), n(cll, "maxFall")), (1000.0, 400.0));
        let md = info.get("hdrMdcv").unwrap();
        assert!((n(md, "redX") - 0.708).abs() < 1e-9);
        assert!((n(md, "greenY") - 0.797).abs() < 1e-9);
        assert!((n(md, "whitePointX") - 0.3127).abs() < 1e-9);
        assert_eq!(n(md, "maxLuminance"), 1000.0);
        assert!((n(md, "minLuminance") - 0.005).abs() < 1e-9);
    }

    // -- HEVC ---------------------------------------------------------------------------------

    fn nal(t: u8, len: usize, seed: usize) -> Vec<u8> {
        let mut v = vec![t << 1, 1];
        v.extend((2..len).map(|i| ((i * 131 + seed) % 255 + 1) as u8));
        v
    }

    #[test]
    fn hevc_byte_stream_builds_the_hvcc_and_resends_it_on_change() {
        let [vps, sps, pps] = hevc_parameter_sets();
        let mut s = H265State::new(H265Input::ByteStream, None, VideoColour::default()).unwrap();
        // A delta frame before the keyframe is not sent.
        assert!(matches!(
            s.process(&annexb(&[nal(1, 50, 0)]), true),
            Ok(VideoOutcome::BeforeKeyframe)
        ));
        let key = annexb(&[vps.clone(), sps.clone(), pps.clone(), nal(19, 300, 1)]);
        let au = frame(s.process(&key, false));
        assert!(au.keyframe);
        let expected = hevc::HevcDecoderConfigurationRecord::from_parameter_sets(
            std::slice::from_ref(&vps),
            std::slice::from_ref(&sps),
            std::slice::from_ref(&pps),
        )
        .unwrap()
        .to_bytes();
        assert_eq!(au.config.start(), Some(expected.as_slice()));
        assert!(au.config.extra.is_empty(), "SDR: no colorInfo");
        let info = s.take_stream_info().unwrap();
        assert_eq!((info.width, info.height), (64, 48));
        // Repeated parameter sets keep the same config (the same Arc).
        let au2 = frame(s.process(&key, false));
        assert!(Arc::ptr_eq(&au.config, &au2.config));
        assert!(s.take_stream_info().is_none());
        let d = frame(s.process(&annexb(&[nal(1, 50, 2)]), true));
        assert!(!d.keyframe);
        // A CRA is a keyframe too (IRAP).
        assert!(frame(s.process(&annexb(&[nal(21, 80, 3)]), true)).keyframe);
        // Another PPS: a new config.
        let mut pps2 = pps.clone();
        pps2.push(0x80);
        let au3 = frame(s.process(
            &annexb(&[vps.clone(), sps.clone(), pps2, nal(19, 300, 4)]),
            false,
        ));
        assert_ne!(au3.config.start(), au.config.start());
    }

    #[test]
    fn hevc_hvc1_uses_codec_data_and_sends_frames_as_they_are() {
        let [vps, sps, pps] = hevc_parameter_sets();
        let hvcc =
            hevc::HevcDecoderConfigurationRecord::from_parameter_sets(&[vps], &[sps], &[pps])
                .unwrap()
                .to_bytes();
        let hdr = VideoColour::from_caps_fields(Some("bt2100-hlg"), None, None);
        let mut s = H265State::new(H265Input::Hvc1, Some(&hvcc), hdr).unwrap();
        let au = frame(s.process(&length_prefixed(&[nal(19, 100, 0)]), false));
        assert_eq!(au.body, VideoBody::AsIs);
        assert_eq!(au.config.start(), Some(hvcc.as_slice()));
        // HDR caps: a colorInfo after the sequence start.
        assert_eq!(au.config.extra.len(), 1);
        assert_eq!(au.config.extra[0].0, flv::Packet::Metadata);
        let info = s.take_stream_info().unwrap();
        assert_eq!((info.width, info.height), (64, 48));
    }

    #[test]
    fn hevc_bad_input_is_an_error_not_a_panic() {
        // hvcC too short / garbage.
        for cd in [&[][..], &[1, 2, 3], &[0u8; 22], &[1u8; 40]] {
            assert!(H265State::new(H265Input::Hvc1, Some(cd), VideoColour::default()).is_err());
        }
        let mut s = H265State::new(H265Input::ByteStream, None, VideoColour::default()).unwrap();
        // No start code; only zeroes; empty.
        for data in [&[0x26u8, 1, 2, 3][..], &[0, 0, 0, 0], &[]] {
            assert!(s.process(data, false).is_err());
        }
        // A keyframe without parameter sets: the clear error, and the state says why.
        let e = s.process(&annexb(&[nal(19, 100, 0)]), false).unwrap_err();
        assert_eq!(e, HEVC_NO_PARAMETER_SETS);
        assert!(s.missing_config());
        // Garbage parameter sets: an error for that buffer, no config.
        let e = s.process(
            &annexb(&[nal(32, 4, 0), nal(33, 3, 0), nal(34, 3, 0), nal(19, 30, 0)]),
            false,
        );
        assert!(e.is_err());
        // Truncated length prefixes.
        let [vps, sps, pps] = hevc_parameter_sets();
        let hvcc =
            hevc::HevcDecoderConfigurationRecord::from_parameter_sets(&[vps], &[sps], &[pps])
                .unwrap()
                .to_bytes();
        let mut s = H265State::new(H265Input::Hvc1, Some(&hvcc), VideoColour::default()).unwrap();
        let mut au = length_prefixed(&[nal(19, 100, 0)]);
        au.truncate(50);
        assert!(s.process(&au, false).is_err());
        assert!(s.process(&[0, 0, 0xff, 0xff, 1], false).is_err());
        assert!(s.process(&[], false).is_err());
    }

    // -- AV1 ----------------------------------------------------------------------------------

    const TD: [u8; 2] = [0x12, 0x00];

    fn seq_obu() -> Vec<u8> {
        av1_sequence_header_obu()
    }

    /// A frame OBU: key (frame_type 0, shown) or inter.
    fn frame_obu(key: bool, len: usize) -> Vec<u8> {
        let mut payload = vec![if key { 0x10 } else { 0x30 }];
        payload.extend((1..len).map(|i| (i % 251) as u8));
        let mut v = vec![0x32];
        av1::write_leb128(payload.len() as u32, &mut v);
        v.extend(payload);
        v
    }

    #[test]
    fn av1_drops_temporal_delimiters_by_slicing_and_builds_av1c() {
        let seq = seq_obu();
        let mut s = Av1State::new(None, VideoColour::default()).unwrap();
        let inter = [&TD[..], &frame_obu(false, 40)].concat();
        assert!(matches!(
            s.process(&inter, true),
            Ok(VideoOutcome::BeforeKeyframe)
        ));
        let key = [&TD[..], &seq, &frame_obu(true, 400)].concat();
        let au = frame(s.process(&key, false));
        assert!(au.keyframe);
        assert_eq!(au.body, VideoBody::Range(2..key.len()));
        let expected = av1::Av1CodecConfigurationRecord::from_sequence_header_obu(&seq)
            .unwrap()
            .to_bytes();
        assert_eq!(au.config.start(), Some(expected.as_slice()));
        let info = s.take_stream_info().unwrap();
        assert_eq!((info.width, info.height), (64, 48));
        let au2 = frame(s.process(&key, false));
        assert!(Arc::ptr_eq(&au.config, &au2.config));
        let d = frame(s.process(&inter, true));
        assert!(!d.keyframe);
        assert_eq!(d.body, VideoBody::Range(2..inter.len()));
        // Delimiters between OBUs: several ranges.
        let two = [&TD[..], &frame_obu(false, 10), &TD, &frame_obu(false, 10)].concat();
        let d = frame(s.process(&two, true));
        assert_eq!(d.body, VideoBody::Ranges(vec![2..14, 16..28]));
    }

    #[test]
    fn av1_bad_input_is_an_error_not_a_panic() {
        for cd in [
            &[][..],
            &[0x81, 0, 0],
            &[0x80, 0, 0, 0],
            &[0x81, 0, 0, 0, 0xff],
        ] {
            assert!(Av1State::new(Some(cd), VideoColour::default()).is_err());
        }
        let mut s = Av1State::new(None, VideoColour::default()).unwrap();
        // Forbidden bit, size past the end, delimiters only, empty.
        for data in [
            &[0x80u8, 0][..],
            &[0x32, 0x7f, 1, 2],
            &TD,
            &[0x12, 0x00, 0x12, 0x00],
            &[],
        ] {
            assert!(s.process(data, false).is_err(), "{data:?}");
        }
        // A truncated sequence header.
        let mut seq = seq_obu();
        seq.truncate(4);
        seq[1] = 2;
        assert!(s.process(&seq, false).is_err());
        // A keyframe without any sequence header: the clear error.
        let e = s.process(&frame_obu(true, 20), false).unwrap_err();
        assert_eq!(e, AV1_NO_SEQUENCE_HEADER);
        assert!(s.missing_config());
    }

    // -- VP9 ----------------------------------------------------------------------------------

    /// A VP9 inter frame (profile 0, shown, not error resilient).
    pub(crate) fn vp9_inter(len: usize) -> Vec<u8> {
        let mut v = vec![0x86];
        v.extend((1..len).map(|i| (i % 251) as u8));
        v
    }

    #[test]
    fn vp9_builds_vpcc_from_the_keyframe_and_the_caps() {
        let colour = VideoColour::from_caps_fields(Some("bt709"), None, None);
        let mut s = Vp9State::new(colour, false);
        assert!(matches!(
            s.process(&vp9_inter(30), true),
            Ok(VideoOutcome::BeforeKeyframe)
        ));
        let key = vp9_keyframe(300);
        let au = frame(s.process(&key, false));
        assert!(au.keyframe);
        let rec = vp9::VpCodecConfigurationRecord::parse(au.config.start().unwrap()).unwrap();
        assert_eq!(
            au.config.start().unwrap()[..4],
            [1, 0, 0, 0],
            "version/flags"
        );
        assert_eq!((rec.profile, rec.bit_depth), (0, 8));
        assert_eq!(rec.chroma_subsampling, vp9::CHROMA_420_COLOCATED);
        assert_eq!(rec.colour.primaries, 1, "from the caps");
        assert_eq!(
            s.take_stream_info().map(|i| (i.width, i.height)),
            Some((160, 96))
        );
        let au2 = frame(s.process(&key, false));
        assert!(Arc::ptr_eq(&au.config, &au2.config));
        assert!(!frame(s.process(&vp9_inter(30), true)).keyframe);
        // Garbage and empty frames are errors.
        for data in [&[][..], &[0x00], &[0x82, 0x49, 0x83]] {
            assert!(s.process(data, false).is_err(), "{data:?}");
        }
    }
}
