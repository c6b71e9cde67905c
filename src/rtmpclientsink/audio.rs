//! Conversion state of the audio codecs after AAC, free of GStreamer: Opus, FLAC, AC-3/E-AC-3
//! and MP3. Each keeps the track's current [`TrackConfig`] (sequence start, MultichannelConfig,
//! legacy MP3 flags) and turns a buffer into frames that are ranges of it, never copies.
//!
//! The wire forms follow what FFmpeg 9 sends (libavformat/flvenc.c): OpusHead for Opus; an
//! empty sequence start for AC-3 and E-AC-3; legacy MP3 (SoundFormat 2) on track 0 at the rates
//! the legacy header can say, `.mp3` otherwise; a MultichannelConfig packet after the sequence
//! start of every stream with more than two channels (AAC included).

use std::sync::Arc;

use crate::codec::{self, Codec, ac3, flac, flv, mp3, opus};

use super::convert::{AudioFrame, AudioFrames};
use super::frame::TrackConfig;

/// E-RTMP `AudioChannelOrder` of a MultichannelConfig packet.
mod channel_order {
    /// Only the channel count is known.
    pub const UNSPECIFIED: u8 = 0;
    /// Channels in the order of the bits of a 32-bit channel mask.
    pub const NATIVE: u8 = 1;
}

use ac3::{
    CH_BACK_CENTER as BC, CH_BACK_LEFT as BL, CH_BACK_RIGHT as BR, CH_FRONT_CENTER as FC,
    CH_FRONT_LEFT as FL, CH_FRONT_LEFT_CENTER as FLC, CH_FRONT_RIGHT as FR,
    CH_FRONT_RIGHT_CENTER as FRC, CH_LOW_FREQUENCY_1 as LFE, CH_SIDE_LEFT as SL,
    CH_SIDE_RIGHT as SR,
};

/// The MultichannelConfig packet of a stream with `channels` channels, in native order when
/// `mask` names exactly that many speakers (the layout FFmpeg writes for a native channel
/// layout: order, count, 32-bit mask), else with the count alone. `None` for mono and stereo,
/// which the sequence start already says.
pub fn multichannel_config(channels: u32, mask: Option<u32>) -> Option<(flv::Packet, Vec<u8>)> {
    if channels <= 2 {
        return None;
    }
    let count = u8::try_from(channels).unwrap_or(u8::MAX);
    let body = match mask.filter(|m| m.count_ones() == channels) {
        Some(m) => {
            let mut b = vec![channel_order::NATIVE, count];
            b.extend_from_slice(&m.to_be_bytes());
            b
        }
        None => vec![channel_order::UNSPECIFIED, count],
    };
    Some((flv::Packet::MultichannelConfig, body))
}

/// The speakers of an AAC `channelConfiguration` (ISO/IEC 14496-3 Table 1.19, FFmpeg's layouts);
/// `None` for 0 (a program config element says it) and reserved values.
pub fn aac_channel_mask(channel_configuration: u8) -> Option<u32> {
    Some(match channel_configuration {
        1 => FC,
        2 => FL | FR,
        3 => FL | FR | FC,
        4 => FL | FR | FC | BC,
        5 => FL | FR | FC | BL | BR,
        6 => FL | FR | FC | LFE | BL | BR,
        7 => FL | FR | FC | LFE | BL | BR | FLC | FRC,
        _ => return None,
    })
}

/// The AAC track configuration: the AudioSpecificConfig, and a MultichannelConfig after it when
/// the stream has more than two channels.
pub fn aac_config(asc: Vec<u8>, channel_configuration: u8) -> TrackConfig {
    let channels = match channel_configuration {
        7 => 8,
        c => u32::from(c),
    };
    TrackConfig {
        sequence_start: Some(asc),
        extra: multichannel_config(channels, aac_channel_mask(channel_configuration))
            .into_iter()
            .collect(),
        legacy_sound: None,
    }
}

/// The speakers of 1 to 8 channels in FLAC's channel assignments (RFC 9639 §9.1.3) and in
/// Opus's Vorbis layouts (RFC 7845 §5.1.1.2, channel mapping family 1): the same speaker sets,
/// which decoders output in native order.
fn default_channel_mask(channels: u8) -> Option<u32> {
    Some(match channels {
        1 => FC,
        2 => FL | FR,
        3 => FL | FR | FC,
        4 => FL | FR | BL | BR,
        5 => FL | FR | FC | BL | BR,
        6 => FL | FR | FC | LFE | BL | BR,
        7 => FL | FR | FC | LFE | BC | SL | SR,
        8 => FL | FR | FC | LFE | BL | BR | SL | SR,
        _ => return None,
    })
}

/// The speakers of an Opus stream: those of families 0 (mono, stereo) and 1; unknown for the
/// others (ambisonics, undefined order).
fn opus_channel_mask(head: &opus::OpusHead) -> Option<u32> {
    match head.mapping_family {
        0 | 1 => default_channel_mask(head.channels),
        _ => None,
    }
}

/// One frame: the whole buffer.
fn whole(data: &[u8], config: &Arc<TrackConfig>) -> AudioFrames {
    let mut frames = AudioFrames::default();
    frames.push(AudioFrame {
        range: 0..data.len(),
        config: config.clone(),
        offset_ns: 0,
    });
    frames
}

/// The config of a codec whose frame headers decide it: built again when what they say (`K`)
/// changes, and kept (the same Arc, so the session does not send it again) when the new
/// header builds the same bytes.
#[derive(Debug)]
struct HeaderConfig<K> {
    config: Option<Arc<TrackConfig>>,
    /// What the current config was built from.
    last: Option<K>,
    changed: bool,
}

impl<K: Copy + PartialEq> HeaderConfig<K> {
    fn new() -> Self {
        HeaderConfig {
            config: None,
            last: None,
            changed: false,
        }
    }

    /// The config for a frame whose header says `key`; `build` makes it when `key` is new.
    fn update(&mut self, key: K, build: impl FnOnce() -> TrackConfig) -> Arc<TrackConfig> {
        if self.last != Some(key) {
            let c = build();
            if self.config.as_deref() != Some(&c) {
                self.config = Some(Arc::new(c));
            }
            self.last = Some(key);
            self.changed = true;
        }
        self.config.clone().unwrap_or_default()
    }

    /// What the header says, once after it changed.
    fn take_changed(&mut self) -> Option<K> {
        if !std::mem::take(&mut self.changed) {
            return None;
        }
        self.last
    }
}

/// What the stream says about itself for onMetaData: sample rate and channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioParams {
    /// Sample rate in Hz.
    pub rate: u32,
    /// Channels.
    pub channels: u32,
}

/// What one buffer of a codec with in-band headers was.
#[derive(Debug)]
pub enum AudioOutcome {
    /// Frames to send.
    Frames(AudioFrames),
    /// A stream header repeated in-band (FLAC's "fLaC" and metadata blocks, Opus's ID and
    /// comment headers): configuration, not a frame.
    Header,
}

/// Conversion state of an Opus track.
#[derive(Debug)]
pub struct OpusState {
    config: Arc<TrackConfig>,
    params: AudioParams,
    changed: bool,
}

impl OpusState {
    /// State for the OpusHead `head` (verbatim from the caps' streamheader, or built from the
    /// caps fields).
    pub fn new(head: &[u8]) -> Result<Self, codec::Error> {
        let mut s = OpusState {
            config: Arc::default(),
            params: AudioParams {
                rate: 48_000,
                channels: 0,
            },
            changed: false,
        };
        s.set_caps(head)?;
        Ok(s)
    }

    /// New caps: a different OpusHead becomes the new configuration.
    pub fn set_caps(&mut self, head: &[u8]) -> Result<(), codec::Error> {
        let parsed = opus::OpusHead::parse(head)?;
        if self.config.start() != Some(head) {
            let channels = u32::from(parsed.channels);
            self.config = Arc::new(TrackConfig {
                sequence_start: Some(head.to_vec()),
                extra: multichannel_config(channels, opus_channel_mask(&parsed))
                    .into_iter()
                    .collect(),
                legacy_sound: None,
            });
            // Opus always decodes at 48 kHz; the input rate is informational.
            self.params = AudioParams {
                rate: 48_000,
                channels,
            };
            self.changed = true;
        }
        Ok(())
    }

    /// One Opus packet per buffer, sent as it is.
    pub fn process(&mut self, data: &[u8]) -> Result<AudioOutcome, codec::Error> {
        if data.starts_with(opus::MAGIC) || data.starts_with(b"OpusTags") {
            return Ok(AudioOutcome::Header);
        }
        if data.is_empty() {
            return Err(codec::Error::InvalidOpusHead(
                "empty Opus packet (no TOC byte)",
            ));
        }
        Ok(AudioOutcome::Frames(whole(data, &self.config)))
    }

    /// Rate and channels, once after they changed.
    pub fn take_params(&mut self) -> Option<AudioParams> {
        std::mem::take(&mut self.changed).then_some(self.params)
    }
}

/// Conversion state of a FLAC track.
#[derive(Debug)]
pub struct FlacState {
    config: Option<Arc<TrackConfig>>,
    info: Option<flac::StreamInfo>,
    changed: bool,
}

/// FLAC frame sync: 14 bits of 1s, 0, the blocking strategy bit (RFC 9639 §9.1).
fn is_flac_frame(data: &[u8]) -> bool {
    matches!(data, [0xff, b, ..] if b & 0xfe == 0xf8)
}

/// A FLAC metadata block as a buffer of its own: header (last-block flag, type, 24-bit length)
/// and exactly that many bytes.
fn is_metadata_block(data: &[u8]) -> bool {
    match data {
        [t, a, b, c, body @ ..] => {
            t & 0x7f < 127
                && body.len() == usize::from(*a) << 16 | usize::from(*b) << 8 | usize::from(*c)
        }
        _ => false,
    }
}

impl FlacState {
    /// State for the STREAMINFO the caps carry (None: it must come in-band before the first
    /// frame).
    pub fn new(info: Option<&flac::StreamInfo>) -> Self {
        let mut s = FlacState {
            config: None,
            info: None,
            changed: false,
        };
        s.set_caps(info);
        s
    }

    /// New caps: a different STREAMINFO becomes the new configuration.
    pub fn set_caps(&mut self, info: Option<&flac::StreamInfo>) {
        if let Some(info) = info {
            self.set_info(info.clone());
        }
    }

    fn set_info(&mut self, info: flac::StreamInfo) {
        if self.info.as_ref() == Some(&info) {
            return;
        }
        self.config = Some(Arc::new(TrackConfig {
            sequence_start: Some(info.sequence_start()),
            extra: multichannel_config(
                u32::from(info.channels),
                default_channel_mask(info.channels),
            )
            .into_iter()
            .collect(),
            legacy_sound: None,
        }));
        self.info = Some(info);
        self.changed = true;
    }

    /// True when no STREAMINFO is known: such a stream cannot be sent.
    pub fn missing_config(&self) -> bool {
        self.config.is_none()
    }

    /// One FLAC frame per buffer (`framed`), sent as it is. The stream headers that demuxers
    /// and `flacparse` push as buffers ("fLaC", STREAMINFO, VORBIS_COMMENT, ...) are no frames:
    /// a STREAMINFO among them updates the configuration.
    pub fn process(&mut self, data: &[u8]) -> Result<AudioOutcome, codec::Error> {
        if data == flac::MAGIC
            || data.starts_with(flac::OGG_MAPPING_MAGIC)
            || (data.starts_with(flac::MAGIC) && data.len() > 4)
        {
            if let Ok(info) = flac::StreamInfo::from_codec_config(data) {
                self.set_info(info);
            }
            return Ok(AudioOutcome::Header);
        }
        if is_metadata_block(data) {
            if data[0] & 0x7f == flac::BLOCK_TYPE_STREAMINFO {
                self.set_info(flac::StreamInfo::from_codec_config(data)?);
            }
            return Ok(AudioOutcome::Header);
        }
        if !is_flac_frame(data) {
            return Err(codec::Error::InvalidFlac(
                "frame sync missing; is the stream really FLAC and framed (put flacparse before \
                 the sink)?",
            ));
        }
        let Some(config) = &self.config else {
            return Err(codec::Error::InvalidFlac(
                "no STREAMINFO: neither the caps' streamheader nor the stream carried one; put \
                 flacparse before the sink",
            ));
        };
        Ok(AudioOutcome::Frames(whole(data, config)))
    }

    /// Rate and channels, once after they changed.
    pub fn take_params(&mut self) -> Option<AudioParams> {
        if !std::mem::take(&mut self.changed) {
            return None;
        }
        let i = self.info.as_ref()?;
        Some(AudioParams {
            rate: i.sample_rate,
            channels: u32::from(i.channels),
        })
    }
}

/// Conversion state of an AC-3 or E-AC-3 track.
#[derive(Debug)]
pub struct Ac3State {
    kind: ac3::Kind,
    config: HeaderConfig<ac3::FrameInfo>,
}

impl Ac3State {
    /// State for `kind` (the caps' media type).
    pub fn new(kind: ac3::Kind) -> Self {
        Ac3State {
            kind,
            config: HeaderConfig::new(),
        }
    }

    /// The codec.
    pub fn codec(&self) -> Codec {
        match self.kind {
            ac3::Kind::Ac3 => Codec::Ac3,
            ac3::Kind::Eac3 => Codec::Eac3,
        }
    }

    /// One buffer as `ac3parse` frames it (an AC-3 syncframe, or an E-AC-3 independent
    /// substream with its dependent substreams), sent as it is. The sequence start is empty, as
    /// FFmpeg sends it; the channel layout goes in a MultichannelConfig.
    pub fn process(&mut self, data: &[u8]) -> Result<AudioOutcome, codec::Error> {
        let info = ac3::frame_info(data)?;
        if info.kind != self.kind {
            return Err(codec::Error::InvalidAc3(match self.kind {
                ac3::Kind::Ac3 => "E-AC-3 syncframe in an AC-3 (audio/x-ac3) stream",
                ac3::Kind::Eac3 => "AC-3 syncframe in an E-AC-3 (audio/x-eac3) stream",
            }));
        }
        // A new sample rate alone leaves the config's bytes as they are.
        let config = self.config.update(info, || TrackConfig {
            sequence_start: Some(Vec::new()),
            extra: multichannel_config(u32::from(info.channels), info.channel_mask)
                .into_iter()
                .collect(),
            legacy_sound: None,
        });
        Ok(AudioOutcome::Frames(whole(data, &config)))
    }

    /// Rate and channels, once after they changed.
    pub fn take_params(&mut self) -> Option<AudioParams> {
        let l = self.config.take_changed()?;
        Some(AudioParams {
            rate: l.sample_rate,
            channels: u32::from(l.channels),
        })
    }
}

/// Conversion state of an MP3 track.
#[derive(Debug)]
pub struct Mp3State {
    /// Built from the sample rate and channels.
    config: HeaderConfig<(u32, u8)>,
}

impl Default for Mp3State {
    fn default() -> Self {
        Self::new()
    }
}

impl Mp3State {
    /// A new state; the first frame header decides the wire form.
    pub fn new() -> Self {
        Mp3State {
            config: HeaderConfig::new(),
        }
    }

    /// The configuration of MP3 at `rate` with `channels`: the legacy header's flags where
    /// they can say the rate (then there is no sequence start), else the `.mp3` FourCC with an
    /// empty sequence start, as FFmpeg sends enhanced MP3.
    pub fn config_for(rate: u32, channels: u8) -> TrackConfig {
        match flv::SoundFlags::for_mp3(rate, channels) {
            Some(flags) => TrackConfig {
                sequence_start: None,
                extra: Vec::new(),
                legacy_sound: Some(flags),
            },
            None => TrackConfig::sequence_start(Vec::new()),
        }
    }

    /// One buffer of MPEG-1/2/2.5 layer III frames (usually one, as `mpegaudioparse` and
    /// demuxers hand them over), sent as it is; the first frame header is checked.
    pub fn process(&mut self, data: &[u8]) -> Result<AudioOutcome, codec::Error> {
        let h = mp3::parse_header(data)?;
        if h.layer != 3 {
            return Err(codec::Error::InvalidMp3(
                "not layer III: only MP3 can be sent (the caps say layer=3)",
            ));
        }
        let config = self.config.update((h.sample_rate, h.channels), || {
            Self::config_for(h.sample_rate, h.channels)
        });
        Ok(AudioOutcome::Frames(whole(data, &config)))
    }

    /// Rate and channels, once after they changed.
    pub fn take_params(&mut self) -> Option<AudioParams> {
        let (rate, channels) = self.config.take_changed()?;
        Some(AudioParams {
            rate,
            channels: u32::from(channels),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn frames(o: AudioOutcome) -> Vec<AudioFrame> {
        match o {
            AudioOutcome::Frames(f) => f.into_iter().collect(),
            AudioOutcome::Header => panic!("header, not frames"),
        }
    }

    /// opusenc's stereo OpusHead (from a matroskademux streamheader).
    const OPUS_HEAD: &str = "4f707573486561640102380180bb0000000000";
    /// matroskademux's FLAC streamheader[1]: STREAMINFO block, 48 kHz stereo 16-bit.
    const FLAC_STREAMINFO_BLOCK: &str =
        "00000022120012000000000000000bb802f00000000000000000000000000000000000000000";

    #[test]
    fn multichannel_config_layout() {
        assert_eq!(multichannel_config(2, Some(FL | FR)), None);
        assert_eq!(multichannel_config(1, None), None);
        let (p, b) = multichannel_config(6, aac_channel_mask(6)).unwrap();
        assert_eq!(p, flv::Packet::MultichannelConfig);
        // Native order, 6 channels, FL FR FC LFE BL BR.
        assert_eq!(b, [1, 6, 0, 0, 0, 0x3f]);
        // A mask that does not name every channel: the count alone.
        assert_eq!(multichannel_config(6, Some(FL | FR)).unwrap().1, [0, 6]);
        assert_eq!(multichannel_config(3, None).unwrap().1, [0, 3]);
        assert_eq!(multichannel_config(300, None).unwrap().1, [0, 255]);
    }

    #[test]
    fn aac_config_adds_multichannel_above_stereo() {
        assert!(aac_config(vec![0x11, 0x90], 2).extra.is_empty());
        let c = aac_config(vec![0x11, 0xb0], 6);
        assert_eq!(c.start(), Some(&[0x11, 0xb0][..]));
        assert_eq!(
            c.extra,
            [(flv::Packet::MultichannelConfig, vec![1, 6, 0, 0, 0, 0x3f])]
        );
        // 7.1: 8 channels from configuration 7.
        assert_eq!(
            aac_config(vec![0x11, 0xb8], 7).extra[0].1,
            [1, 8, 0, 0, 0, 0xff]
        );
        // Channels in a program config element: nothing known to say.
        assert!(aac_config(vec![0x11, 0x80], 0).extra.is_empty());
    }

    #[test]
    fn opus_sends_the_head_verbatim_and_packets_as_they_are() {
        let head = hex(OPUS_HEAD);
        let mut s = OpusState::new(&head).unwrap();
        assert_eq!(
            s.take_params(),
            Some(AudioParams {
                rate: 48_000,
                channels: 2
            })
        );
        assert_eq!(s.take_params(), None);
        let f = frames(s.process(&[0xfc, 1, 2, 3]).unwrap());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].range, 0..4);
        assert_eq!(f[0].config.start(), Some(head.as_slice()));
        assert!(
            f[0].config.extra.is_empty(),
            "stereo: no MultichannelConfig"
        );
        // In-band headers are no frames.
        assert!(matches!(s.process(&head).unwrap(), AudioOutcome::Header));
        assert!(matches!(
            s.process(b"OpusTags\x00\x00").unwrap(),
            AudioOutcome::Header
        ));
        assert!(s.process(&[]).is_err());
        // Same head again: same Arc (nothing resent).
        let before = f[0].config.clone();
        s.set_caps(&head).unwrap();
        assert!(Arc::ptr_eq(
            &before,
            &frames(s.process(&[0xfc]).unwrap())[0].config
        ));
    }

    #[test]
    fn opus_51_gets_a_native_multichannel_config() {
        let head = opus::OpusHead::new(6, 48_000, 312, None, None, None)
            .unwrap()
            .to_bytes();
        let mut s = OpusState::new(&head).unwrap();
        let f = frames(s.process(&[0xfc]).unwrap());
        assert_eq!(
            f[0].config.extra,
            [(flv::Packet::MultichannelConfig, vec![1, 6, 0, 0, 0, 0x3f])]
        );
    }

    #[test]
    fn opus_bad_heads_are_errors() {
        for bad in [
            &b""[..],
            b"OpusHead",
            b"OpusHeaX\x01\x02\x38\x01\x80\xbb\0\0\0\0\0",
            &hex("4f707573486561640100380180bb0000000000"), // 0 channels
            &hex("4f707573486561640103380180bb0000000000"), // family 0, 3 channels
            &hex("4f707573486561640106380180bb000000000104"), // truncated mapping
        ] {
            assert!(OpusState::new(bad).is_err(), "{bad:02x?}");
        }
    }

    #[test]
    fn flac_skips_in_band_headers_and_sends_frames() {
        let block = hex(FLAC_STREAMINFO_BLOCK);
        let info = flac::StreamInfo::from_codec_config(&block).unwrap();
        let mut s = FlacState::new(None);
        assert!(s.missing_config());
        // A frame before any STREAMINFO: an error, not a frame.
        assert!(s.process(&[0xff, 0xf8, 0x69, 0x08, 0x00]).is_err());
        // matroskademux's in-band headers: "fLaC", STREAMINFO, VORBIS_COMMENT.
        for h in [
            b"fLaC".to_vec(),
            block.clone(),
            hex("8400000a00000000000000000000"),
        ] {
            assert!(
                matches!(s.process(&h).unwrap(), AudioOutcome::Header),
                "{h:02x?}"
            );
        }
        assert!(!s.missing_config());
        assert_eq!(
            s.take_params(),
            Some(AudioParams {
                rate: 48_000,
                channels: 2
            })
        );
        let frame = [0xff, 0xf8, 0x69, 0x08, 0x00, 0x11, 0x22];
        let f = frames(s.process(&frame).unwrap());
        assert_eq!(f[0].range, 0..frame.len());
        assert_eq!(f[0].config.start(), Some(info.sequence_start().as_slice()));
        // The same STREAMINFO from the caps keeps the config.
        let before = f[0].config.clone();
        s.set_caps(Some(&info));
        assert!(Arc::ptr_eq(
            &before,
            &frames(s.process(&frame).unwrap())[0].config
        ));
        assert!(s.process(&[0x12, 0x34, 0x56]).is_err());
        assert!(s.process(&[]).is_err());
    }

    #[test]
    fn flac_six_channels_has_a_multichannel_config() {
        let mut info = flac::StreamInfo::from_codec_config(&hex(FLAC_STREAMINFO_BLOCK)).unwrap();
        info.channels = 6;
        let mut s = FlacState::new(Some(&info));
        let f = frames(s.process(&[0xff, 0xf9, 0, 0]).unwrap());
        assert_eq!(f[0].config.extra[0].1, [1, 6, 0, 0, 0, 0x3f]);
    }

    /// A stereo 48 kHz 192 kbit/s AC-3 syncframe header (acmod 2), padded to its 768 bytes.
    fn ac3_frame(acmod_lfe: u8) -> Vec<u8> {
        // fscod 0 (48 kHz), frmsizecod 20 (192 kbit/s: 384 words); bsid 8, bsmod 0.
        let mut f = vec![0x0b, 0x77, 0x00, 0x00, 0x14, 0x40, acmod_lfe];
        f.resize(768, 0);
        f
    }

    #[test]
    fn ac3_empty_sequence_start_and_channel_layout() {
        let mut s = Ac3State::new(ac3::Kind::Ac3);
        assert_eq!(s.codec(), Codec::Ac3);
        // acmod 2 (stereo), no LFE: bits acmod(3) then for acmod 2 dsurmod(2), then lfeon.
        let stereo = ac3_frame(0b0100_0000);
        let f = frames(s.process(&stereo).unwrap());
        assert_eq!(f[0].range, 0..768);
        assert_eq!(f[0].config.start(), Some(&[][..]));
        assert!(f[0].config.extra.is_empty());
        let p = s.take_params().unwrap();
        assert_eq!((p.rate, p.channels), (48_000, 2));
        // Same layout: same Arc.
        let again = frames(s.process(&stereo).unwrap());
        assert!(Arc::ptr_eq(&f[0].config, &again[0].config));
        assert_eq!(s.take_params(), None);
        // acmod 7 (L C R Ls Rs) with LFE: 5.1.
        let surround = ac3_frame(0b1110_0001);
        let f = frames(s.process(&surround).unwrap());
        assert_eq!(s.take_params().map(|p| p.channels), Some(6));
        assert_eq!(f[0].config.extra[0].0, flv::Packet::MultichannelConfig);
        assert_eq!(&f[0].config.extra[0].1[..2], &[1, 6]);
        // E-AC-3 caps, AC-3 data.
        assert!(Ac3State::new(ac3::Kind::Eac3).process(&stereo).is_err());
        assert!(s.process(&[0x0b]).is_err());
        assert!(s.process(&[0x12, 0x34, 0, 0, 0, 0, 0]).is_err());
    }

    /// An MPEG-1 layer III header (128 kbit/s, no CRC) at `rate_index` of 44.1/48/32 kHz.
    fn mp3_frame(version_bits: u8, rate_index: u8, mono: bool) -> Vec<u8> {
        let b1 = 0xe0 | (version_bits << 3) | (1 << 1) | 1;
        let b3 = if mono { 0xc0 } else { 0x00 };
        let mut f = vec![0xff, b1, 0x90 | (rate_index << 2), b3];
        f.resize(417, 0);
        f
    }

    #[test]
    fn mp3_legacy_at_legacy_rates_else_fourcc() {
        let mut s = Mp3State::new();
        let f = frames(s.process(&mp3_frame(3, 0, false)).unwrap());
        assert_eq!(f[0].range, 0..417);
        assert_eq!(f[0].config.start(), None);
        let flags = f[0].config.legacy_sound.unwrap();
        assert_eq!((flags.rate, flags.stereo), (3, true));
        assert_eq!(
            s.take_params().map(|p| (p.rate, p.channels)),
            Some((44_100, 2))
        );
        // 48 kHz: the 44 kHz code, as FFmpeg writes it.
        let f = frames(s.process(&mp3_frame(3, 1, true)).unwrap());
        assert_eq!(
            f[0].config.legacy_sound.map(|l| (l.rate, l.stereo)),
            Some((3, false))
        );
        // 32 kHz: no legacy code, `.mp3` with an empty sequence start.
        let f = frames(s.process(&mp3_frame(3, 2, false)).unwrap());
        assert_eq!(f[0].config.legacy_sound, None);
        assert_eq!(f[0].config.start(), Some(&[][..]));
        let track = flv::TagTrack {
            codec: Codec::Mp3,
            track_id: 0,
            legacy_sound: f[0].config.legacy_sound,
        };
        assert_eq!(
            track.form(flv::Packet::SequenceStart),
            flv::TagForm::Enhanced
        );
        // Layer II, garbage, truncated: errors.
        let mut layer2 = mp3_frame(3, 0, false);
        layer2[1] = 0xfd;
        assert!(s.process(&layer2).is_err());
        assert!(s.process(&[0xff]).is_err());
        assert!(s.process(&[0x00, 0x11, 0x22, 0x33]).is_err());
    }

    #[test]
    fn garbage_never_panics() {
        let head = hex(OPUS_HEAD);
        let block = hex(FLAC_STREAMINFO_BLOCK);
        let info = flac::StreamInfo::from_codec_config(&block).unwrap();
        let mut seed = 0x1234_5678u32;
        for len in 0..200 {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    (seed >> 16) as u8
                })
                .collect();
            let mut with_sync = data.clone();
            for prefix in [&[0x0b, 0x77][..], &[0xff, 0xfb], &[0xff, 0xf8], b"fLaC"] {
                with_sync.splice(..prefix.len().min(with_sync.len()), prefix.iter().copied());
                for d in [&data, &with_sync] {
                    let _ = OpusState::new(&head).unwrap().process(d);
                    let _ = FlacState::new(Some(&info)).process(d);
                    let _ = FlacState::new(None).process(d);
                    let _ = Ac3State::new(ac3::Kind::Ac3).process(d);
                    let _ = Ac3State::new(ac3::Kind::Eac3).process(d);
                    let _ = Mp3State::new().process(d);
                    let _ = OpusState::new(d);
                }
            }
        }
    }
}
