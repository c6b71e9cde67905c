//! Per-track conversion state, free of GStreamer: which sequence header (avcC / ASC) is current,
//! what an access unit becomes on the wire, and when a stream cannot be sent at all.
//!
//! The byte-level work is done by [`crate::codec`]; this module only keeps the state across
//! buffers (current parameter sets, whether a keyframe was seen) and decides.

use std::ops::Range;
use std::sync::Arc;

use crate::codec::{self, aac, h264};

use super::audio;
use super::frame::TrackConfig;

/// How H.264 arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum H264Input {
    /// `stream-format=avc`: length-prefixed NAL units, avcC in `codec_data`.
    Avc,
    /// `stream-format=byte-stream`: Annex-B start codes, parameter sets in-band.
    ByteStream,
}

/// What an access unit becomes. Neither form copies the input: every NAL unit is sent as it
/// came (AUD, SEI and filler included, as `ffmpeg -c copy` and `h264parse` do).
#[derive(Debug, PartialEq, Eq)]
pub enum VideoBody {
    /// The input buffer is sent unchanged (AVC input).
    AsIs,
    /// Annex-B input: 4-byte length prefixes plus the NAL units borrowed from the input buffer.
    AnnexB(h264::AvccView),
    /// Part of the input buffer (an AV1 temporal unit after its temporal delimiter).
    Range(Range<usize>),
    /// Several parts of the input buffer, sent back to back (an AV1 buffer with temporal
    /// delimiters between its OBUs).
    Ranges(Vec<Range<usize>>),
}

/// One access unit ready for the queue.
#[derive(Debug)]
pub struct VideoAu {
    /// Seekable frame.
    pub keyframe: bool,
    /// No other frame references it (every slice has `nal_ref_idc == 0`): may be dropped under
    /// congestion.
    pub disposable: bool,
    /// The avcC that decodes this frame (the sequence header; a new `Arc` whenever it changed).
    pub config: Arc<TrackConfig>,
    /// The NAL units to send.
    pub body: VideoBody,
}

/// Result of [`H264State::process`].
#[derive(Debug)]
pub enum VideoOutcome {
    /// Send this.
    Frame(VideoAu),
    /// A delta frame before the first keyframe: a decoder cannot use it, so it is not sent.
    BeforeKeyframe,
}

/// Conversion state of the H.264 track.
#[derive(Debug)]
pub struct H264State {
    input: H264Input,
    /// NAL length size of AVC input (from the avcC).
    length_size: usize,
    config: Option<Arc<TrackConfig>>,
    /// Parameter sets the current config was built from (byte-stream input).
    sps: Vec<Vec<u8>>,
    pps: Vec<Vec<u8>>,
    seen_keyframe: bool,
    /// Set when the config changed; the SPS of the new config should be parsed for metadata.
    config_changed: bool,
}

impl H264State {
    /// State for `input`; `codec_data` is the avcC of AVC input (used as given).
    pub fn new(input: H264Input, codec_data: Option<&[u8]>) -> Result<Self, codec::Error> {
        let mut s = H264State {
            input,
            length_size: 4,
            config: None,
            sps: Vec::new(),
            pps: Vec::new(),
            seen_keyframe: false,
            config_changed: false,
        };
        s.set_caps(input, codec_data)?;
        Ok(s)
    }

    /// New caps on the same track (H.264 to H.264): keeps the current config unless the caps
    /// bring another one.
    pub fn set_caps(
        &mut self,
        input: H264Input,
        codec_data: Option<&[u8]>,
    ) -> Result<(), codec::Error> {
        self.input = input;
        match (input, codec_data) {
            (H264Input::Avc, Some(cd)) => {
                let rec = h264::AvcDecoderConfigurationRecord::parse(cd)?;
                self.length_size = rec.length_size();
                if self.config.as_ref().and_then(|c| c.start()) != Some(cd) {
                    self.config = Some(Arc::new(TrackConfig::sequence_start(cd.to_vec())));
                    self.config_changed = true;
                }
            }
            (H264Input::Avc, None) => {
                // Without codec_data, in-band SPS/PPS of the first keyframe build the avcC.
                self.length_size = 4;
            }
            (H264Input::ByteStream, _) => {
                // codec_data on byte-stream caps describes nothing we send (we always build the
                // avcC from the in-band parameter sets with 4-byte lengths).
                self.length_size = 4;
            }
        }
        Ok(())
    }

    /// The current sequence header, if known.
    #[cfg(test)]
    pub fn config(&self) -> Option<&Arc<TrackConfig>> {
        self.config.as_ref()
    }

    /// Returns true once after the config changed (to refresh metadata from its SPS).
    pub fn take_config_changed(&mut self) -> bool {
        std::mem::take(&mut self.config_changed)
    }

    /// Converts one access unit. `delta_unit` is the buffer's DELTA_UNIT flag.
    ///
    /// Allocates nothing unless the parameter sets change (or an Annex-B access unit has more
    /// NAL units than [`h264::AvccView`] holds inline).
    pub fn process(&mut self, data: &[u8], delta_unit: bool) -> Result<VideoOutcome, codec::Error> {
        let (info, disposable, body) = match self.input {
            H264Input::ByteStream => {
                let view = h264::AvccView::from_annexb(data)?;
                let info = h264::access_unit_info(view.nals(data));
                if info.parameter_sets {
                    self.update_parameter_sets(view.nals(data))?;
                }
                (
                    info,
                    is_disposable(view.nals(data)),
                    VideoBody::AnnexB(view),
                )
            }
            H264Input::Avc => {
                // Checks every length prefix: the buffer goes out as it is.
                let info = h264::avcc_info(data, self.length_size)?;
                let nals = h264::avcc_nals(data, self.length_size).filter_map(Result::ok);
                if info.parameter_sets {
                    self.update_parameter_sets(nals.clone())?;
                }
                (info, is_disposable(nals), VideoBody::AsIs)
            }
        };
        let keyframe = match self.input {
            // Annex-B: not flagged as a delta unit and holding an IDR (an encoder that flags no
            // buffer at all still only gets its IDR frames marked).
            H264Input::ByteStream => info.keyframe && !delta_unit,
            H264Input::Avc => !delta_unit,
        };
        if !self.seen_keyframe {
            if !keyframe {
                return Ok(VideoOutcome::BeforeKeyframe);
            }
            if self.config.is_none() {
                return Err(if self.sps.is_empty() {
                    codec::Error::MissingSps
                } else {
                    codec::Error::MissingPps
                });
            }
            self.seen_keyframe = true;
        }
        let Some(config) = self.config.clone() else {
            // Unreachable: seen_keyframe implies a config; report rather than panic.
            return Err(codec::Error::MissingSps);
        };
        Ok(VideoOutcome::Frame(VideoAu {
            keyframe,
            disposable,
            config,
            body,
        }))
    }

    /// Byte-stream (and AVC without codec_data): in-band parameter sets replace the current ones
    /// and a new avcC is built when they differ (e.g. a resolution change). Repeats of the
    /// current ones (x264enc sends them with every keyframe) are compared, not copied.
    fn update_parameter_sets<'a>(
        &mut self,
        nals: impl Iterator<Item = &'a [u8]> + Clone,
    ) -> Result<(), codec::Error> {
        let avc_with_codec_data = self.input == H264Input::Avc && self.config.is_some();
        if avc_with_codec_data {
            // codec_data is authoritative for AVC input; in-band repeats are left in the frame.
            return Ok(());
        }
        let mut changed = false;
        for (nal_type, current) in [
            (h264::NAL_SPS, &mut self.sps),
            (h264::NAL_PPS, &mut self.pps),
        ] {
            let sets = nals
                .clone()
                .filter(move |n| h264::nal_type(n) == Some(nal_type));
            if sets.clone().next().is_some() && !sets.clone().eq(current.iter().map(Vec::as_slice))
            {
                *current = sets.map(<[u8]>::to_vec).collect();
                changed = true;
            }
        }
        if !changed || self.sps.is_empty() || self.pps.is_empty() {
            return Ok(());
        }
        let rec = h264::AvcDecoderConfigurationRecord::from_parameter_sets(&self.sps, &self.pps)?;
        let bytes = rec.to_bytes();
        if self.config.as_ref().and_then(|c| c.start()) != Some(bytes.as_slice()) {
            self.config = Some(Arc::new(TrackConfig::sequence_start(bytes)));
            self.config_changed = true;
        }
        Ok(())
    }

    /// The parsed first SPS of the current config (for width/height/framerate in metadata).
    pub fn sps_info(&self) -> Option<h264::SpsInfo> {
        let cfg = self.config.as_ref()?.start()?;
        let rec = h264::AvcDecoderConfigurationRecord::parse(cfg).ok()?;
        h264::parse_sps(rec.sps.first()?).ok()
    }
}

/// True when every slice NAL unit of the access unit has `nal_ref_idc == 0` (nothing references
/// the frame). Access units without slices are not disposable.
pub fn is_disposable<'a>(nals: impl IntoIterator<Item = &'a [u8]>) -> bool {
    let mut any_slice = false;
    for nal in nals {
        let Some(&first) = nal.first() else { continue };
        let nal_type = first & 0x1f;
        if (h264::NAL_SLICE..=h264::NAL_IDR).contains(&nal_type) {
            any_slice = true;
            if (first >> 5) & 0x3 != 0 {
                return false;
            }
        }
    }
    any_slice
}

/// How AAC arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AacInput {
    /// `stream-format=raw`: one raw frame per buffer, ASC in `codec_data`.
    Raw,
    /// `stream-format=adts`: one or more ADTS frames per buffer.
    Adts,
}

/// One audio frame found in a buffer (any audio codec).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioFrame {
    /// Bytes of the frame within the buffer, as they go on the wire.
    pub range: Range<usize>,
    /// The configuration that decodes it.
    pub config: Arc<TrackConfig>,
    /// Its time after the buffer's timestamp, ns (frames after the first of a buffer).
    pub offset_ns: i64,
}

/// The audio frames of one buffer. Nearly every buffer holds one frame, which is kept
/// without allocating; only further frames (of an ADTS buffer, say) go into a vector.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AudioFrames {
    first: Option<AudioFrame>,
    rest: Vec<AudioFrame>,
}

impl AudioFrames {
    /// Adds the next frame of the buffer.
    pub fn push(&mut self, frame: AudioFrame) {
        if self.first.is_none() {
            self.first = Some(frame);
        } else {
            self.rest.push(frame);
        }
    }
}

impl IntoIterator for AudioFrames {
    type Item = AudioFrame;
    type IntoIter =
        std::iter::Chain<std::option::IntoIter<AudioFrame>, std::vec::IntoIter<AudioFrame>>;

    fn into_iter(self) -> Self::IntoIter {
        self.first.into_iter().chain(self.rest)
    }
}

/// Conversion state of the AAC track.
#[derive(Debug)]
pub struct AacState {
    input: AacInput,
    config: Option<Arc<TrackConfig>>,
    asc: Option<aac::AudioSpecificConfig>,
}

/// Samples per AAC frame (AAC-LC; HE-AAC's core frames also carry 1024 samples at the core rate).
pub const AAC_FRAME_SAMPLES: u64 = 1024;

impl AacState {
    /// State for `input`; `codec_data` is the ASC of raw input (used as given).
    pub fn new(input: AacInput, codec_data: Option<&[u8]>) -> Result<Self, codec::Error> {
        let mut s = AacState {
            input,
            config: None,
            asc: None,
        };
        s.set_caps(input, codec_data)?;
        Ok(s)
    }

    /// New caps on the same track.
    pub fn set_caps(
        &mut self,
        input: AacInput,
        codec_data: Option<&[u8]>,
    ) -> Result<(), codec::Error> {
        self.input = input;
        if let (AacInput::Raw, Some(cd)) = (input, codec_data) {
            let asc = aac::AudioSpecificConfig::parse(cd)?;
            if self.config.as_ref().and_then(|c| c.start()) != Some(cd) {
                self.config = Some(Arc::new(audio::aac_config(
                    cd.to_vec(),
                    asc.channel_configuration,
                )));
            }
            self.asc = Some(asc);
        }
        Ok(())
    }

    /// The parsed current ASC (rate and channels for metadata).
    pub fn asc(&self) -> Option<&aac::AudioSpecificConfig> {
        self.asc.as_ref()
    }

    /// True when raw input has no ASC: such a stream cannot be sent.
    pub fn missing_config(&self) -> bool {
        self.input == AacInput::Raw && self.config.is_none()
    }

    /// Splits a buffer into raw AAC frames: ranges of `data` (raw input whole, ADTS input
    /// without its headers), never copies; frames after the first are 1024 samples apart.
    /// Allocates nothing unless an ADTS buffer holds several frames or the ADTS headers change
    /// the config.
    pub fn process(&mut self, data: &[u8]) -> Result<AudioFrames, codec::Error> {
        match self.input {
            AacInput::Raw => {
                let Some(config) = self.config.clone() else {
                    return Err(codec::Error::InvalidAudioSpecificConfig(
                        "raw AAC without codec_data (AudioSpecificConfig) in the caps",
                    ));
                };
                Ok(AudioFrames {
                    first: Some(AudioFrame {
                        range: 0..data.len(),
                        config,
                        offset_ns: 0,
                    }),
                    rest: Vec::new(),
                })
            }
            AacInput::Adts => {
                let mut frames = AudioFrames::default();
                let base = data.as_ptr() as usize;
                for (i, f) in aac::adts_frames(data).enumerate() {
                    let (header, payload) = f?;
                    if header.raw_data_blocks > 1 {
                        return Err(codec::Error::InvalidAudioSpecificConfig(
                            "ADTS frames with several raw data blocks cannot be sent over RTMP",
                        ));
                    }
                    let asc = aac::AudioSpecificConfig::from_adts(&header);
                    if self.asc.as_ref() != Some(&asc) || self.config.is_none() {
                        self.config = Some(Arc::new(audio::aac_config(
                            asc.to_bytes(),
                            asc.channel_configuration,
                        )));
                        self.asc = Some(asc);
                    }
                    let start = payload.as_ptr() as usize - base;
                    let offset_ns = if header.sample_rate > 0 {
                        (i as u64 * AAC_FRAME_SAMPLES * 1_000_000_000
                            / u64::from(header.sample_rate)) as i64
                    } else {
                        0
                    };
                    frames.push(AudioFrame {
                        range: start..start + payload.len(),
                        config: self.config.clone().unwrap_or_default(),
                        offset_ns,
                    });
                }
                Ok(frames)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Baseline 320x240 SPS/PPS produced by x264.
    const SPS: &[u8] = &[
        0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10,
        0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0xa4, 0x80,
    ];
    const PPS: &[u8] = &[0x68, 0xcb, 0x83, 0xcb, 0x20];
    // 640x480 variant: same SPS bytes with other dimensions are hard to hand-craft; any change of
    // the bytes counts as a new config for the state machine.
    const SPS2: &[u8] = &[
        0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x3d, 0xb0, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01,
        0x00, 0x00, 0x03, 0x00, 0x32, 0x0f, 0x16, 0x2e, 0x48,
    ];

    fn annexb(nals: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for n in nals {
            v.extend_from_slice(&[0, 0, 0, 1]);
            v.extend_from_slice(n);
        }
        v
    }

    fn avcc(nals: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for n in nals {
            v.extend_from_slice(&(n.len() as u32).to_be_bytes());
            v.extend_from_slice(n);
        }
        v
    }

    const IDR: &[u8] = &[0x65, 0x88, 0x84, 0x00, 0x33];
    const P_REF: &[u8] = &[0x41, 0x9a, 0x02, 0x03];
    const B_NONREF: &[u8] = &[0x01, 0x9e, 0x04, 0x05];
    const AUD: &[u8] = &[0x09, 0xf0];
    const SEI: &[u8] = &[0x06, 0x05, 0x01, 0x80];
    const FILLER: &[u8] = &[0x0c, 0xff, 0xff, 0x80];

    /// The AVC form a view stands for.
    fn view_bytes(body: &VideoBody, data: &[u8]) -> Vec<u8> {
        let VideoBody::AnnexB(view) = body else {
            panic!("{body:?} is not a view")
        };
        // Every NAL unit is borrowed from the input.
        assert!(
            view.nals(data)
                .all(|n| data.as_ptr_range().contains(&n.as_ptr()))
        );
        view.parts(data).collect::<Vec<_>>().concat()
    }

    #[test]
    fn byte_stream_builds_config_keeps_aud_and_flags_frames() {
        let mut s = H264State::new(H264Input::ByteStream, None).unwrap();
        // A P frame before the first keyframe is not sent.
        assert!(matches!(
            s.process(&annexb(&[AUD, P_REF]), true).unwrap(),
            VideoOutcome::BeforeKeyframe
        ));
        let key = annexb(&[AUD, SPS, PPS, SEI, IDR]);
        let VideoOutcome::Frame(f) = s.process(&key, false).unwrap() else {
            panic!()
        };
        assert!(f.keyframe && !f.disposable);
        assert_eq!(view_bytes(&f.body, &key), avcc(&[AUD, SPS, PPS, SEI, IDR]));
        let rec = h264::AvcDecoderConfigurationRecord::parse(f.config.start().unwrap()).unwrap();
        assert_eq!(rec.sps, vec![SPS.to_vec()]);
        assert_eq!(rec.length_size(), 4);
        assert!(s.take_config_changed());
        assert!(!s.take_config_changed());
        let first_cfg = f.config.clone();

        let b = annexb(&[AUD, B_NONREF]);
        let VideoOutcome::Frame(f) = s.process(&b, true).unwrap() else {
            panic!()
        };
        assert!(!f.keyframe && f.disposable);
        assert!(Arc::ptr_eq(&f.config, &first_cfg));
        assert_eq!(view_bytes(&f.body, &b), avcc(&[AUD, B_NONREF]));
        // Repeated identical parameter sets keep the same config.
        let VideoOutcome::Frame(f) = s.process(&annexb(&[SPS, PPS, IDR]), false).unwrap() else {
            panic!()
        };
        assert!(Arc::ptr_eq(&f.config, &first_cfg));
        // New SPS: new config, from this frame on.
        let VideoOutcome::Frame(f) = s.process(&annexb(&[SPS2, PPS, IDR]), false).unwrap() else {
            panic!()
        };
        assert!(!Arc::ptr_eq(&f.config, &first_cfg));
        assert!(s.take_config_changed());
        let rec = h264::AvcDecoderConfigurationRecord::parse(f.config.start().unwrap()).unwrap();
        assert_eq!(rec.sps, vec![SPS2.to_vec()]);
    }

    #[test]
    fn byte_stream_keyframe_without_parameter_sets_is_an_error() {
        let mut s = H264State::new(H264Input::ByteStream, None).unwrap();
        let e = s.process(&annexb(&[IDR]), false).unwrap_err();
        assert_eq!(e, codec::Error::MissingSps);
        let mut s = H264State::new(H264Input::ByteStream, None).unwrap();
        let e = s.process(&annexb(&[SPS, IDR]), false).unwrap_err();
        assert_eq!(e, codec::Error::MissingPps);
        assert!(e.to_string().contains("no PPS before its first keyframe"));
        // Garbage is an error too, never a panic.
        let mut s = H264State::new(H264Input::ByteStream, None).unwrap();
        assert!(s.process(&[1, 2, 3, 4, 5], false).is_err());
    }

    #[test]
    fn avc_input_is_zero_copy_and_uses_codec_data() {
        let rec = h264::AvcDecoderConfigurationRecord::from_parameter_sets(
            &[SPS.to_vec()],
            &[PPS.to_vec()],
        )
        .unwrap();
        let cd = rec.to_bytes();
        let mut s = H264State::new(H264Input::Avc, Some(&cd)).unwrap();
        assert_eq!(s.config().and_then(|c| c.start()), Some(cd.as_slice()));
        let VideoOutcome::Frame(f) = s.process(&avcc(&[IDR]), false).unwrap() else {
            panic!()
        };
        assert_eq!(f.body, VideoBody::AsIs);
        assert!(f.keyframe);
        assert_eq!(f.config.start(), Some(cd.as_slice()));
        // AUD, SEI and filler stay: the buffer is sent as it is.
        let VideoOutcome::Frame(f) = s
            .process(&avcc(&[AUD, SEI, B_NONREF, FILLER]), true)
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(f.body, VideoBody::AsIs);
        assert!(!f.keyframe && f.disposable);
        // In-band parameter sets of AVC input with codec_data do not replace it.
        let VideoOutcome::Frame(f) = s.process(&avcc(&[AUD, SPS2, PPS, IDR]), false).unwrap()
        else {
            panic!()
        };
        assert_eq!(f.config.start(), Some(cd.as_slice()));
        // Truncated NAL: error, not panic.
        let mut bad = avcc(&[P_REF]);
        bad[3] = 50;
        assert!(matches!(
            s.process(&bad, true),
            Err(codec::Error::TruncatedNal { .. })
        ));
        // Same codec_data again: no change; other codec_data: changed.
        s.set_caps(H264Input::Avc, Some(&cd)).unwrap();
        assert!(s.take_config_changed()); // from new()
        s.set_caps(H264Input::Avc, Some(&cd)).unwrap();
        assert!(!s.take_config_changed());
        assert!(H264State::new(H264Input::Avc, Some(&[1, 2])).is_err());
    }

    #[test]
    fn disposable_detection() {
        assert!(is_disposable([AUD, B_NONREF]));
        assert!(!is_disposable([B_NONREF, P_REF]));
        assert!(!is_disposable([SPS]));
        assert!(!is_disposable([&[][..]]));
    }

    #[test]
    fn avc_input_without_codec_data_builds_config_from_in_band_sets() {
        let mut s = H264State::new(H264Input::Avc, None).unwrap();
        assert_eq!(
            s.process(&avcc(&[AUD, IDR]), false).unwrap_err(),
            codec::Error::MissingSps
        );
        let mut s = H264State::new(H264Input::Avc, None).unwrap();
        let VideoOutcome::Frame(f) = s.process(&avcc(&[AUD, SPS, PPS, IDR]), false).unwrap() else {
            panic!()
        };
        assert_eq!(f.body, VideoBody::AsIs);
        let rec = h264::AvcDecoderConfigurationRecord::parse(f.config.start().unwrap()).unwrap();
        assert_eq!((rec.sps, rec.pps), (vec![SPS.to_vec()], vec![PPS.to_vec()]));
    }

    fn adts_frame(payload: &[u8], rate_idx: u8, channels: u8) -> Vec<u8> {
        let len = payload.len() + 7;
        let mut h = vec![
            0xff,
            0xf1,
            (1 << 6) | (rate_idx << 2) | (channels >> 2),
            ((channels & 3) << 6) | ((len >> 11) as u8 & 0x3),
            (len >> 3) as u8,
            (((len & 7) as u8) << 5) | 0x1f,
            0xfc,
        ];
        h.extend_from_slice(payload);
        h
    }

    #[test]
    fn adts_frames_become_raw_with_derived_asc() {
        let mut s = AacState::new(AacInput::Adts, None).unwrap();
        let mut buf = adts_frame(&[1, 2, 3], 4, 2);
        buf.extend(adts_frame(&[4, 5], 4, 2));
        let frames: Vec<_> = s.process(&buf).unwrap().into_iter().collect();
        assert_eq!(frames.len(), 2);
        assert_eq!(&buf[frames[0].range.clone()], &[1, 2, 3]);
        assert_eq!(&buf[frames[1].range.clone()], &[4, 5]);
        // The second frame is 1024 samples at 44.1 kHz after the first.
        assert_eq!((frames[0].offset_ns, frames[1].offset_ns), (0, 23_219_954));
        // AAC-LC 44.1 kHz stereo.
        assert_eq!(frames[0].config.start(), Some(&[0x12, 0x10][..]));
        assert!(Arc::ptr_eq(&frames[0].config, &frames[1].config));
        // Rate change: new config.
        let f2 = s.process(&adts_frame(&[9], 3, 2)).unwrap();
        let f2: Vec<_> = f2.into_iter().collect();
        assert_eq!(f2.len(), 1);
        assert_eq!(s.asc().map(|a| a.sample_rate), Some(48000));
        assert!(!Arc::ptr_eq(&f2[0].config, &frames[0].config));
        // Garbage: error.
        assert!(s.process(&[0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn raw_aac_needs_codec_data() {
        let mut s = AacState::new(AacInput::Raw, None).unwrap();
        assert!(s.missing_config());
        assert!(s.process(&[1, 2, 3]).is_err());
        let mut s = AacState::new(AacInput::Raw, Some(&[0x11, 0x90])).unwrap();
        assert!(!s.missing_config());
        let f: Vec<_> = s.process(&[1, 2, 3]).unwrap().into_iter().collect();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].range, 0..3);
        assert_eq!(f[0].offset_ns, 0);
        assert_eq!(f[0].config.start(), Some(&[0x11, 0x90][..]));
        assert!(AacState::new(AacInput::Raw, Some(&[])).is_err());
    }
}
