//! AC-3 and E-AC-3 syncframe headers (ATSC A/52 §5.4 and Annex E): sample rate, channels and
//! speaker layout, for onMetaData and the Enhanced RTMP MultichannelConfig packet.
//!
//! Channel layouts are given as Enhanced RTMP `AudioChannelMask` bits ([`CH_FRONT_LEFT`]
//! ...), with the speaker positions FFmpeg assigns to each `acmod` (surrounds as side
//! speakers), so the masks equal what FFmpeg 9 sends for the same streams.

use super::bits::Bits;
use super::{Error, Result};

/// The AC-3 / E-AC-3 sync word.
pub const SYNC_WORD: [u8; 2] = [0x0b, 0x77];
/// Bytes needed to parse any header field this module reads.
pub const MAX_HEADER_LEN: usize = 12;
/// Most syncframes [`frame_info`] reads from one buffer.
pub const MAX_FRAMES_PER_BUFFER: usize = 16;

/// E-RTMP `AudioChannelMask`: front left.
pub const CH_FRONT_LEFT: u32 = 0x00_0001;
/// E-RTMP `AudioChannelMask`: front right.
pub const CH_FRONT_RIGHT: u32 = 0x00_0002;
/// E-RTMP `AudioChannelMask`: front center.
pub const CH_FRONT_CENTER: u32 = 0x00_0004;
/// E-RTMP `AudioChannelMask`: low frequency 1.
pub const CH_LOW_FREQUENCY_1: u32 = 0x00_0008;
/// E-RTMP `AudioChannelMask`: back left.
pub const CH_BACK_LEFT: u32 = 0x00_0010;
/// E-RTMP `AudioChannelMask`: back right.
pub const CH_BACK_RIGHT: u32 = 0x00_0020;
/// E-RTMP `AudioChannelMask`: front left of center.
pub const CH_FRONT_LEFT_CENTER: u32 = 0x00_0040;
/// E-RTMP `AudioChannelMask`: front right of center.
pub const CH_FRONT_RIGHT_CENTER: u32 = 0x00_0080;
/// E-RTMP `AudioChannelMask`: back center.
pub const CH_BACK_CENTER: u32 = 0x00_0100;
/// E-RTMP `AudioChannelMask`: side left.
pub const CH_SIDE_LEFT: u32 = 0x00_0200;
/// E-RTMP `AudioChannelMask`: side right.
pub const CH_SIDE_RIGHT: u32 = 0x00_0400;
/// E-RTMP `AudioChannelMask`: top center.
pub const CH_TOP_CENTER: u32 = 0x00_0800;
/// E-RTMP `AudioChannelMask`: top front left.
pub const CH_TOP_FRONT_LEFT: u32 = 0x00_1000;
/// E-RTMP `AudioChannelMask`: top front center.
pub const CH_TOP_FRONT_CENTER: u32 = 0x00_2000;
/// E-RTMP `AudioChannelMask`: top front right.
pub const CH_TOP_FRONT_RIGHT: u32 = 0x00_4000;
/// E-RTMP `AudioChannelMask`: low frequency 2.
pub const CH_LOW_FREQUENCY_2: u32 = 0x04_0000;
/// E-RTMP `AudioChannelMask`: top side left.
pub const CH_TOP_SIDE_LEFT: u32 = 0x08_0000;
/// E-RTMP `AudioChannelMask`: top side right.
pub const CH_TOP_SIDE_RIGHT: u32 = 0x10_0000;

/// Which of the two formats a syncframe is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// AC-3 (`bsid` ≤ 10).
    Ac3,
    /// E-AC-3 (`bsid` 11..=16).
    Eac3,
}

/// One AC-3 syncframe or E-AC-3 substream header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// AC-3 or E-AC-3.
    pub kind: Kind,
    /// `bsid`.
    pub bsid: u8,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// `acmod`: 0 dual mono, 1 mono, 2 stereo, 3 L C R, 4 L R S, 5 L C R S, 6 L R Ls Rs,
    /// 7 L C R Ls Rs.
    pub acmod: u8,
    /// `lfeon`.
    pub lfe: bool,
    /// Channels of this syncframe or substream, LFE included.
    pub channels: u8,
    /// Syncframe (substream) size in bytes.
    pub frame_size: usize,
    /// Samples per channel in the syncframe (1536 for AC-3, 256 per block for E-AC-3).
    pub samples: u32,
    /// E-AC-3 `strmtyp`: 0 independent, 1 dependent, 2 independent converted from AC-3 (0 for
    /// AC-3).
    pub stream_type: u8,
    /// E-AC-3 `substreamid` (0 for AC-3).
    pub substream_id: u8,
    /// E-AC-3 dependent substream `chanmap`, when present.
    pub channel_map: Option<u16>,
}

impl FrameHeader {
    /// The E-RTMP channel mask of this syncframe or substream alone; `None` when it has a
    /// speaker E-RTMP cannot name (wide or direct surround speakers of an E-AC-3 `chanmap`).
    pub fn channel_mask(&self) -> Option<u32> {
        match self.channel_map {
            Some(map) => chanmap_mask(map),
            None => Some(acmod_mask(self.acmod, self.lfe)),
        }
    }
}

/// Full-bandwidth channels for each `acmod`.
const ACMOD_CHANNELS: [u8; 8] = [2, 1, 2, 3, 3, 4, 4, 5];

/// The E-RTMP channel mask of an `acmod`/`lfeon` pair, with FFmpeg's speaker positions.
pub fn acmod_mask(acmod: u8, lfe: bool) -> u32 {
    const STEREO: u32 = CH_FRONT_LEFT | CH_FRONT_RIGHT;
    const SIDES: u32 = CH_SIDE_LEFT | CH_SIDE_RIGHT;
    let base = match acmod & 0x07 {
        1 => CH_FRONT_CENTER,
        0 | 2 => STEREO,
        3 => STEREO | CH_FRONT_CENTER,
        4 => STEREO | CH_BACK_CENTER,
        5 => STEREO | CH_FRONT_CENTER | CH_BACK_CENTER,
        6 => STEREO | SIDES,
        _ => STEREO | CH_FRONT_CENTER | SIDES,
    };
    if lfe { base | CH_LOW_FREQUENCY_1 } else { base }
}

/// Channels named by an E-AC-3 `chanmap` (A/52 Table E.1.4, bit 0 the most significant), as
/// (channel count, E-RTMP mask bits or 0 when E-RTMP has no name for them).
const CHANMAP: [(u8, u32); 16] = [
    (1, CH_FRONT_LEFT),
    (1, CH_FRONT_CENTER),
    (1, CH_FRONT_RIGHT),
    (1, CH_SIDE_LEFT),
    (1, CH_SIDE_RIGHT),
    (2, CH_FRONT_LEFT_CENTER | CH_FRONT_RIGHT_CENTER),
    (2, CH_BACK_LEFT | CH_BACK_RIGHT),
    (1, CH_BACK_CENTER),
    (1, CH_TOP_CENTER),
    // Lsd/Rsd (direct surround) and Lw/Rw (wide): no E-RTMP speaker.
    (2, 0),
    (2, 0),
    (2, CH_TOP_FRONT_LEFT | CH_TOP_FRONT_RIGHT),
    (1, CH_TOP_FRONT_CENTER),
    (2, CH_TOP_SIDE_LEFT | CH_TOP_SIDE_RIGHT),
    (1, CH_LOW_FREQUENCY_2),
    (1, CH_LOW_FREQUENCY_1),
];

fn chanmap_channels(map: u16) -> u8 {
    (0..16)
        .filter(|i| map & (0x8000 >> i) != 0)
        .map(|i| CHANMAP[i].0)
        .sum()
}

fn chanmap_mask(map: u16) -> Option<u32> {
    (0..16)
        .filter(|i| map & (0x8000 >> i) != 0)
        .map(|i| Some(CHANMAP[i].1).filter(|&m| m != 0))
        .try_fold(0, |acc, m| m.map(|m| acc | m))
}

/// AC-3 bit rates in kbit/s by `frmsizecod / 2`.
const AC3_BITRATES: [u32; 19] = [
    32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 576, 640,
];

/// Parses the syncframe header at the start of `data` (AC-3 or E-AC-3, told apart by `bsid`).
pub fn parse_header(data: &[u8]) -> Result<FrameHeader> {
    if !data.starts_with(&SYNC_WORD) {
        return Err(Error::InvalidAc3(
            "sync word 0x0B77 missing; is the stream really AC-3/E-AC-3 and framed (parsed)?",
        ));
    }
    // bsid sits at the same place in both formats: bits 40..45.
    let bsid = data
        .get(5)
        .map(|b| b >> 3)
        .ok_or(Error::InvalidAc3("header is truncated"))?;
    let parsed = match bsid {
        0..=10 => parse_ac3(data, bsid),
        11..=16 => parse_eac3(data),
        _ => return Err(Error::InvalidAc3("unsupported bsid (above 16)")),
    };
    parsed.ok_or(Error::InvalidAc3("header is truncated"))?
}

fn parse_ac3(data: &[u8], bsid: u8) -> Option<Result<FrameHeader>> {
    let mut r = Bits::new(data);
    // syncword, crc1
    r.skip(32)?;
    let fscod = r.u8(2)?;
    let frmsizecod = r.u8(6)?;
    r.skip(5 + 3)?;
    let acmod = r.u8(3)?;
    if acmod & 1 != 0 && acmod != 1 {
        // cmixlev
        r.skip(2)?;
    }
    if acmod & 4 != 0 {
        // surmixlev
        r.skip(2)?;
    }
    if acmod == 2 {
        // dsurmod
        r.skip(2)?;
    }
    let lfe = r.bit()?;
    let Some(&kbps) = AC3_BITRATES.get(usize::from(frmsizecod >> 1)) else {
        return Some(Err(Error::InvalidAc3("reserved frmsizecod")));
    };
    let (rate, words) = match fscod {
        0 => (48_000, kbps * 2),
        1 => (44_100, kbps * 96_000 / 44_100 + u32::from(frmsizecod & 1)),
        2 => (32_000, kbps * 3),
        _ => return Some(Err(Error::InvalidAc3("reserved sample rate code"))),
    };
    Some(Ok(FrameHeader {
        kind: Kind::Ac3,
        bsid,
        // bsid 9 and 10 are half- and quarter-rate AC-3.
        sample_rate: rate >> bsid.saturating_sub(8),
        acmod,
        lfe,
        channels: ACMOD_CHANNELS[usize::from(acmod)] + u8::from(lfe),
        frame_size: words as usize * 2,
        samples: 1536,
        stream_type: 0,
        substream_id: 0,
        channel_map: None,
    }))
}

fn parse_eac3(data: &[u8]) -> Option<Result<FrameHeader>> {
    let mut r = Bits::new(data);
    r.skip(16)?;
    let stream_type = r.u8(2)?;
    if stream_type == 3 {
        return Some(Err(Error::InvalidAc3("reserved E-AC-3 stream type")));
    }
    let substream_id = r.u8(3)?;
    let frmsiz = r.bits(11)?;
    let fscod = r.u8(2)?;
    let (sample_rate, blocks) = if fscod == 3 {
        let rate = match r.u8(2)? {
            0 => 24_000,
            1 => 22_050,
            2 => 16_000,
            _ => return Some(Err(Error::InvalidAc3("reserved E-AC-3 sample rate code"))),
        };
        (rate, 6)
    } else {
        let blocks = [1, 2, 3, 6][usize::from(r.u8(2)?)];
        ([48_000, 44_100, 32_000][usize::from(fscod)], blocks)
    };
    let acmod = r.u8(3)?;
    let lfe = r.bit()?;
    let bsid = r.u8(5)?;
    // dialnorm, compre (+ compr)
    r.skip(5)?;
    if r.bit()? {
        r.skip(8)?;
    }
    if acmod == 0 {
        // dialnorm2, compr2e (+ compr2)
        r.skip(5)?;
        if r.bit()? {
            r.skip(8)?;
        }
    }
    let channel_map = if stream_type == 1 && r.bit()? {
        Some(r.bits(16)? as u16)
    } else {
        None
    };
    let channels = match channel_map {
        Some(map) => chanmap_channels(map),
        None => ACMOD_CHANNELS[usize::from(acmod)] + u8::from(lfe),
    };
    Some(Ok(FrameHeader {
        kind: Kind::Eac3,
        bsid,
        sample_rate,
        acmod,
        lfe,
        channels,
        frame_size: (frmsiz as usize + 1) * 2,
        samples: 256 * blocks,
        stream_type,
        substream_id,
        channel_map,
    }))
}

/// What a buffer of AC-3 or E-AC-3 audio says, for onMetaData and MultichannelConfig.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    /// AC-3 or E-AC-3.
    pub kind: Kind,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Channels of the presentation, LFE included.
    pub channels: u8,
    /// E-RTMP channel mask of the presentation; `None` when a speaker has no E-RTMP name.
    pub channel_mask: Option<u32>,
}

/// Reads the syncframes of one buffer (as `ac3parse` frames it: one AC-3 syncframe, or an
/// E-AC-3 independent substream with its dependent substreams) and describes the
/// presentation: the first independent substream's layout, extended by its dependent
/// substreams' `chanmap` (7.1 is 5.1 plus a dependent substream), as FFmpeg's decoder does.
///
/// Only the first header must be valid; reading stops at the first syncframe that is
/// truncated or malformed, or after [`MAX_FRAMES_PER_BUFFER`].
pub fn frame_info(data: &[u8]) -> Result<FrameInfo> {
    let first = parse_header(data)?;
    let mut info = FrameInfo {
        kind: first.kind,
        sample_rate: first.sample_rate,
        channels: first.channels,
        channel_mask: first.channel_mask(),
    };
    if first.kind == Kind::Ac3 {
        return Ok(info);
    }
    let mut pos = first.frame_size;
    let mut mask = info.channel_mask;
    for _ in 1..MAX_FRAMES_PER_BUFFER {
        let Some(Ok(h)) = data.get(pos..).map(parse_header) else {
            break;
        };
        if h.kind != Kind::Eac3 || h.stream_type != 1 || h.substream_id != 0 {
            // Another program or the next independent substream: not part of this one.
            break;
        }
        if let Some(map) = h.channel_map {
            mask = mask.zip(chanmap_mask(map)).map(|(a, b)| a | b);
            info.channels = match mask {
                Some(m) => m.count_ones() as u8,
                None => info.channels.saturating_add(chanmap_channels(map)),
            };
        }
        pos += h.frame_size;
    }
    info.channel_mask = mask;
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packs (bit count, value) fields MSB first, zero-padded to `len` bytes.
    fn pack(fields: &[(u32, u32)], len: usize) -> Vec<u8> {
        let mut bits = Vec::new();
        for &(n, v) in fields {
            for i in (0..n).rev() {
                bits.push((v >> i) & 1 == 1);
            }
        }
        bits.resize(len * 8, false);
        bits.chunks(8)
            .map(|c| c.iter().fold(0u8, |a, &b| (a << 1) | u8::from(b)))
            .collect()
    }

    fn ac3(fscod: u32, frmsizecod: u32, bsid: u32, acmod: u32, lfe: u32) -> Vec<u8> {
        let mut f = vec![
            (16, 0x0b77),
            (16, 0),
            (2, fscod),
            (6, frmsizecod),
            (5, bsid),
            (3, 0),
            (3, acmod),
        ];
        if acmod & 1 != 0 && acmod != 1 {
            f.push((2, 0));
        }
        if acmod & 4 != 0 {
            f.push((2, 0));
        }
        if acmod == 2 {
            f.push((2, 0));
        }
        f.push((1, lfe));
        pack(&f, 12)
    }

    fn eac3(
        strmtyp: u32,
        substream: u32,
        frmsiz: u32,
        acmod: u32,
        lfe: u32,
        chanmap: Option<u32>,
    ) -> Vec<u8> {
        let mut f = vec![
            (16, 0x0b77),
            (2, strmtyp),
            (3, substream),
            (11, frmsiz),
            (2, 0),
            (2, 3),
            (3, acmod),
            (1, lfe),
            (5, 16),
            (5, 31),
            (1, 0),
        ];
        if acmod == 0 {
            f.extend([(5, 31), (1, 0)]);
        }
        if strmtyp == 1 {
            match chanmap {
                Some(m) => f.extend([(1, 1), (16, m)]),
                None => f.push((1, 0)),
            }
        }
        let mut v = pack(&f, 12);
        v.resize((frmsiz as usize + 1) * 2, 0);
        v
    }

    #[test]
    fn ac3_headers() {
        // 48 kHz, 448 kbit/s, 5.1.
        let h = parse_header(&ac3(0, 30, 8, 7, 1)).unwrap();
        assert_eq!((h.kind, h.sample_rate, h.channels), (Kind::Ac3, 48_000, 6));
        assert_eq!((h.frame_size, h.samples), (1792, 1536));
        assert_eq!(h.channel_mask(), Some(0x60f));
        // 44.1 kHz, 192 kbit/s, odd frmsizecod: 418 words.
        let h = parse_header(&ac3(1, 21, 8, 2, 0)).unwrap();
        assert_eq!((h.sample_rate, h.channels, h.frame_size), (44_100, 2, 836));
        // 32 kHz mono, 3 words per kbit/s; half-rate bsid 9.
        let h = parse_header(&ac3(2, 0, 9, 1, 0)).unwrap();
        assert_eq!((h.sample_rate, h.channels, h.frame_size), (16_000, 1, 192));
        assert_eq!(h.channel_mask(), Some(CH_FRONT_CENTER));
        assert_eq!(acmod_mask(4, false), 0x103);
        assert_eq!(acmod_mask(7, false), 0x607);
        assert_eq!(acmod_mask(0, true), 0x00b);
        assert_eq!(frame_info(&ac3(0, 30, 8, 6, 0)).unwrap().channels, 4);
    }

    #[test]
    fn eac3_headers_and_dependent_substreams() {
        let indep = eac3(0, 0, 767, 7, 1, None);
        let h = parse_header(&indep).unwrap();
        assert_eq!(
            (h.kind, h.bsid, h.sample_rate, h.channels),
            (Kind::Eac3, 16, 48_000, 6)
        );
        assert_eq!((h.frame_size, h.samples), (1536, 1536));
        // 7.1: 5.1 plus a dependent substream carrying Lrs/Rrs (chanmap bit 6).
        let dep = eac3(1, 0, 99, 2, 0, Some(0x8000 >> 6));
        let mut buffer = indep.clone();
        buffer.extend_from_slice(&dep);
        let info = frame_info(&buffer).unwrap();
        assert_eq!(info.channels, 8);
        assert_eq!(info.channel_mask, Some(0x63f));
        // A wide pair has no E-RTMP name: mask unknown, channels still counted.
        let mut wide = indep.clone();
        wide.extend_from_slice(&eac3(1, 0, 99, 2, 0, Some(0x8000 >> 10)));
        let info = frame_info(&wide).unwrap();
        assert_eq!((info.channels, info.channel_mask), (8, None));
        // A following independent substream is not part of the presentation.
        let mut two = indep.clone();
        two.extend_from_slice(&eac3(0, 1, 99, 1, 0, None));
        assert_eq!(frame_info(&two).unwrap().channels, 6);
        // Dual mono has the extra dialnorm2 field.
        let h = parse_header(&eac3(0, 0, 10, 0, 0, None)).unwrap();
        assert_eq!((h.channels, h.acmod), (2, 0));
        // Reduced sample rate (fscod 3, fscod2 0): 24 kHz, always 6 blocks.
        let reduced = pack(
            &[
                (16, 0x0b77),
                (2, 0),
                (3, 0),
                (11, 10),
                (2, 3),
                (2, 0),
                (3, 2),
                (1, 0),
                (5, 16),
                (6, 0),
            ],
            12,
        );
        let h = parse_header(&reduced).unwrap();
        assert_eq!((h.sample_rate, h.samples), (24_000, 1536));
    }

    #[test]
    fn errors() {
        assert!(parse_header(&[]).is_err());
        assert!(parse_header(&[0x0b, 0x77, 0, 0]).is_err());
        assert!(parse_header(&[0x0b, 0x78, 0, 0, 0, 0x40, 0, 0]).is_err());
        let good = ac3(0, 30, 8, 7, 1);
        for cut in 0..7 {
            assert!(parse_header(&good[..cut]).is_err(), "cut {cut}");
        }
        assert!(parse_header(&ac3(3, 0, 8, 2, 0)).is_err());
        assert!(parse_header(&ac3(0, 38, 8, 2, 0)).is_err());
        assert!(parse_header(&ac3(0, 0, 17, 2, 0)).is_err());
        let mut reserved = eac3(3, 0, 10, 2, 0, None);
        assert!(parse_header(&reserved).is_err());
        reserved = eac3(0, 0, 10, 2, 0, None);
        reserved[4] |= 0xf0;
        assert!(parse_header(&reserved).is_err());
        // Garbage after a valid first frame is ignored.
        let mut tail = eac3(0, 0, 99, 2, 0, None);
        tail.extend_from_slice(&[0x0b, 0x77, 0xff]);
        assert_eq!(frame_info(&tail).unwrap().channels, 2);
    }
}
