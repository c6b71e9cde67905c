//! Bit-level reading and writing for the header parsers (H.264, H.265, AV1, VP9, AAC, AC-3): an
//! MSB-first reader with the Exp-Golomb codes of H.26x, removal of H.26x emulation-prevention
//! bytes, an MSB-first writer, and a byte reader for the configuration records.
//!
//! Every read is bounds-checked and returns `None` at the end of the data, so callers turn a
//! truncated header into an error with `ok_or`.

/// MSB-first bit reader over a byte slice.
#[derive(Debug, Clone)]
pub(super) struct Bits<'a> {
    data: &'a [u8],
    /// Position in bits.
    pos: usize,
}

impl<'a> Bits<'a> {
    pub(super) fn new(data: &'a [u8]) -> Self {
        Bits { data, pos: 0 }
    }

    /// Bits left to read.
    pub(super) fn remaining(&self) -> usize {
        (self.data.len() * 8).saturating_sub(self.pos)
    }

    pub(super) fn bit(&mut self) -> Option<bool> {
        let byte = self.data.get(self.pos / 8)?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(bit == 1)
    }

    /// Reads `n` bits (at most 64) as an unsigned big-endian number; `None` for `n > 64`.
    pub(super) fn bits64(&mut self, n: u32) -> Option<u64> {
        if n > 64 || (n as usize) > self.remaining() {
            return None;
        }
        let mut value = 0u64;
        for _ in 0..n {
            value = (value << 1) | u64::from(self.bit()?);
        }
        Some(value)
    }

    /// Reads `n` bits (at most 32).
    pub(super) fn bits(&mut self, n: u32) -> Option<u32> {
        if n > 32 {
            return None;
        }
        self.bits64(n).map(|v| v as u32)
    }

    /// Reads `n` bits (at most 8) as a byte.
    pub(super) fn u8(&mut self, n: u32) -> Option<u8> {
        if n > 8 {
            return None;
        }
        self.bits64(n).map(|v| v as u8)
    }

    /// Skips `n` bits.
    pub(super) fn skip(&mut self, n: usize) -> Option<()> {
        if n > self.remaining() {
            return None;
        }
        self.pos += n;
        Some(())
    }

    /// Reads an unsigned Exp-Golomb code ue(v) (H.264 §9.1, H.265 §9.2); values beyond `u32` are `None`.
    pub(super) fn ue(&mut self) -> Option<u32> {
        let mut leading_zeros = 0;
        while !self.bit()? {
            leading_zeros += 1;
            if leading_zeros > 31 {
                return None;
            }
        }
        let suffix = self.bits(leading_zeros)?;
        u32::try_from((1u64 << leading_zeros) - 1 + u64::from(suffix)).ok()
    }

    /// Reads ue(v) and checks it against an inclusive maximum.
    pub(super) fn ue_max(&mut self, max: u32) -> Option<u32> {
        self.ue().filter(|&v| v <= max)
    }

    /// Reads a signed Exp-Golomb code se(v) (H.264 §9.1.1, H.265 §9.2.2).
    pub(super) fn se(&mut self) -> Option<i32> {
        let k = i64::from(self.ue()?);
        let v = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        i32::try_from(v).ok()
    }
}

/// Bounds-checked byte reader for the configuration records (avcC, hvcC).
#[derive(Debug, Clone)]
pub(super) struct ByteReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> ByteReader<'a> {
    pub(super) fn new(data: &'a [u8]) -> Self {
        ByteReader { data, pos: 0 }
    }

    /// The next `n` bytes.
    pub(super) fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.data.get(self.pos..)?.get(..n)?;
        self.pos += n;
        Some(s)
    }

    pub(super) fn u8(&mut self) -> Option<u8> {
        self.bytes(1).map(|b| b[0])
    }

    /// A big-endian 16-bit number.
    pub(super) fn u16(&mut self) -> Option<u16> {
        self.bytes(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
}

/// Removes emulation-prevention bytes (the `03` of `00 00 03`, H.264 §7.4.1, H.265 §7.4.2) from a NAL unit,
/// giving its RBSP. The result is never longer than the input.
pub(super) fn unescape_rbsp(nal: &[u8]) -> Vec<u8> {
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

/// MSB-first bit writer, used to serialise AudioSpecificConfig (and to build test headers).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bits_and_golomb_codes() {
        // 1 | 010 | 011 | 00100 | 00101 | 1 -> ue 0, 1, 2, 3, 4 ... then se
        let data = [0b1010_0110, 0b0100_0010, 0b1000_0000];
        let mut r = Bits::new(&data);
        assert_eq!(r.ue(), Some(0));
        assert_eq!(r.ue(), Some(1));
        assert_eq!(r.ue(), Some(2));
        assert_eq!(r.ue(), Some(3));
        assert_eq!(r.ue(), Some(4));
        assert_eq!(r.remaining(), 24 - 17);
        let mut r = Bits::new(&[0b0100_1100]);
        assert_eq!(r.se(), Some(1));
        assert_eq!(r.se(), Some(-1));
        let mut r = Bits::new(&[0xab, 0xcd]);
        assert_eq!(r.bits(4), Some(0xa));
        assert_eq!(r.bits64(12), Some(0xbcd));
        assert_eq!(r.bit(), None);
        assert_eq!(r.bits(33), None);
        assert_eq!(Bits::new(&[0, 0, 0, 0, 0]).ue(), None);
        assert_eq!(Bits::new(&[1]).skip(9), None);
    }

    #[test]
    fn removes_emulation_prevention() {
        assert_eq!(
            unescape_rbsp(&[0, 0, 3, 1, 0, 0, 3, 0, 3]),
            [0, 0, 1, 0, 0, 0, 3]
        );
    }
}
