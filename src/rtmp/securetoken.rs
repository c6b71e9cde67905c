//! The `secureToken` challenge: a server (Wowza's SecureToken, FMS) may put a hex string
//! `secureToken` into the `_result` of `connect`; the client decrypts it with a shared secret
//! and answers with `secureTokenResponse(null, plaintext)` before going on. The cipher is
//! XXTEA ("Corrected Block TEA", Wheeler and Needham 1998) over little-endian words, keyed with
//! the secret's first 16 bytes; this is what librtmp (`token=`) and GStreamer's rtmp2
//! (`secure-token`) answer, so a server configured for them accepts this client.
//!
//! Edge cases follow those two where they agree, and rtmp2 where they differ: a key shorter
//! than 16 bytes is padded with zeros, a longer one cut; the answer is the decrypted bytes up to
//! the first zero byte. Unlike both, a challenge that is not hex, or that does not decrypt to
//! text, is refused with a [`SecureTokenError`] instead of producing a garbled answer.

use std::fmt;

/// The XXTEA key schedule constant (2^32 / golden ratio).
const DELTA: u32 = 0x9e37_79b9;

/// Why a challenge could not be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecureTokenError {
    /// The challenge has a character that is not a hex digit (its position is given; the
    /// challenge itself is never shown).
    NotHex {
        /// Byte offset of the first offending character.
        at: usize,
    },
    /// The plaintext is not UTF-8, which an AMF0 string needs: in practice a wrong key.
    NotText,
}

impl fmt::Display for SecureTokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecureTokenError::NotHex { at } => write!(
                f,
                "the server's secureToken challenge is not a hex string (character {at}); \
                 check the server's SecureToken setup."
            ),
            SecureTokenError::NotText => write!(
                f,
                "the server's secureToken challenge does not decrypt to text with this \
                 secure-token; check the secure-token."
            ),
        }
    }
}

impl std::error::Error for SecureTokenError {}

/// The shared secret, kept out of `Debug` output (it is a credential).
#[derive(Clone, PartialEq, Eq)]
pub struct SecureToken(String);

impl SecureToken {
    /// Wraps the secret.
    pub fn new(secret: impl Into<String>) -> Self {
        SecureToken(secret.into())
    }

    /// The secret itself, for [`answer`].
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecureToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecureToken(****)")
    }
}

/// The answer to the challenge `challenge_hex` under the shared secret `key`: the string to
/// send as the second argument of `secureTokenResponse`. An empty challenge gets an empty
/// answer, as rtmp2 gives.
pub fn answer(key: &str, challenge_hex: &str) -> Result<String, SecureTokenError> {
    let bytes = decode_hex(challenge_hex)?;
    if bytes.is_empty() {
        return Ok(String::new());
    }
    let mut words: Vec<u32> = bytes
        .chunks(4)
        .map(|c| {
            let mut w = [0u8; 4];
            w[..c.len()].copy_from_slice(c);
            u32::from_le_bytes(w)
        })
        .collect();
    decrypt(&mut words, &key_words(key));
    let mut plain: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    plain.truncate(bytes.len());
    if let Some(end) = plain.iter().position(|b| *b == 0) {
        plain.truncate(end);
    }
    String::from_utf8(plain).map_err(|_| SecureTokenError::NotText)
}

/// The key as four little-endian words: its first 16 bytes, zero-padded.
fn key_words(key: &str) -> [u32; 4] {
    let mut k = [0u8; 16];
    let n = key.len().min(16);
    k[..n].copy_from_slice(&key.as_bytes()[..n]);
    std::array::from_fn(|i| {
        u32::from_le_bytes([k[4 * i], k[4 * i + 1], k[4 * i + 2], k[4 * i + 3]])
    })
}

/// Hex digits to bytes; an odd final digit is the high nibble of a last byte whose low nibble
/// is zero (both reference clients read missing digits as zero).
fn decode_hex(text: &str) -> Result<Vec<u8>, SecureTokenError> {
    let digits = text
        .bytes()
        .enumerate()
        .map(|(at, c)| match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(SecureTokenError::NotHex { at }),
        })
        .collect::<Result<Vec<u8>, _>>()?;
    Ok(digits
        .chunks(2)
        .map(|d| (d[0] << 4) | d.get(1).copied().unwrap_or(0))
        .collect())
}

/// XXTEA decryption of `v` in place: 6 + 52/n cycles, each undoing the words from last to
/// first, every word mixed with both neighbours and one key word.
fn decrypt(v: &mut [u32], k: &[u32; 4]) {
    let n = v.len();
    if n == 0 {
        return;
    }
    // `n` is at most a few thousand (a hex string inside one AMF0 string), so this fits.
    let cycles = 6 + 52 / n as u32;
    let mut sum = cycles.wrapping_mul(DELTA);
    let mut y = v[0];
    while sum != 0 {
        let e = ((sum >> 2) & 3) as usize;
        for p in (0..n).rev() {
            let z = v[if p == 0 { n - 1 } else { p - 1 }];
            let mx = (((z >> 5) ^ (y << 2)).wrapping_add((y >> 3) ^ (z << 4)))
                ^ ((sum ^ y).wrapping_add(k[(p & 3) ^ e] ^ z));
            v[p] = v[p].wrapping_sub(mx);
            y = v[p];
        }
        sum = sum.wrapping_sub(DELTA);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The reference vectors (published clients at test time) are in tests/secure_token.rs;
    // these cover the input handling around the cipher.

    #[test]
    fn hex_is_checked_and_odd_lengths_padded() {
        assert_eq!(decode_hex("0aFf"), Ok(vec![0x0a, 0xff]));
        assert_eq!(decode_hex("abc"), Ok(vec![0xab, 0xc0]));
        assert_eq!(decode_hex("12 4"), Err(SecureTokenError::NotHex { at: 2 }));
        assert_eq!(answer("key", "zz"), Err(SecureTokenError::NotHex { at: 0 }));
    }

    #[test]
    fn key_is_cut_or_zero_padded_to_16_bytes() {
        assert_eq!(key_words("abcd"), [u32::from_le_bytes(*b"abcd"), 0, 0, 0]);
        assert_eq!(
            key_words("0123456789abcdefXYZ"),
            key_words("0123456789abcdef")
        );
        assert_ne!(key_words("0123456789abcdeX"), key_words("0123456789abcdef"));
    }

    #[test]
    fn empty_challenge_gets_empty_answer() {
        assert_eq!(answer("key", ""), Ok(String::new()));
    }

    #[test]
    fn every_word_and_key_byte_matters() {
        // A block cipher's decryption: changing any input word changes the whole output.
        let mut a = [1u32, 2, 3, 4];
        let mut b = [1u32, 2, 3, 5];
        decrypt(&mut a, &[9, 8, 7, 6]);
        decrypt(&mut b, &[9, 8, 7, 6]);
        assert!(a.iter().zip(&b).all(|(x, y)| x != y), "{a:?} {b:?}");
        let mut c = [1u32, 2, 3, 4];
        decrypt(&mut c, &[9, 8, 7, 7]);
        assert_ne!(a, c);
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let text = format!("{:?}", Some(SecureToken::new("hunter2-token")));
        assert!(!text.contains("hunter2"), "{text}");
    }
}
