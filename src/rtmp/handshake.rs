//! The RTMP handshake (RTMP 1.0 §5.2), client side, sans-IO.
//!
//! The client sends C0+C1 ([`Handshake::c0c1`]), feeds whatever the server sends to
//! [`Handshake::feed`] (which consumes only S0, S1 and S2 and leaves the rest to the chunk
//! reader), sends C2 as soon as [`Handshake::take_c2`] yields it, and is done after S2. This is
//! the simple handshake: C1's version field is zero and no digest is computed. S2 is expected to
//! echo C1's random bytes, but many servers answer with a digest-based or arbitrary S2, so a
//! mismatch is only recorded ([`Handshake::s2_echo_matches`]), never an error.

use super::error::{Error, Result};

/// The RTMP version byte of C0/S0.
pub const RTMP_VERSION: u8 = 3;
/// Size of C1/S1/C2/S2.
pub const HANDSHAKE_SIZE: usize = 1536;

/// Bytes of time + zero/time2 fields at the start of C1/S1/C2/S2.
const HEADER: usize = 8;
/// S0 + S1 + S2.
const SERVER_TOTAL: usize = 1 + 2 * HANDSHAKE_SIZE;

/// xorshift64* (Vigna): a small deterministic PRNG, good enough for handshake filler bytes.
fn xorshift64star(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    x.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

/// Client handshake state machine.
#[derive(Debug)]
pub struct Handshake {
    epoch: u32,
    /// C1 (1536 bytes).
    c1: Vec<u8>,
    /// S0, S1 and S2 as received so far (at most 3073 bytes).
    received: Vec<u8>,
    /// C2, built once S1 is complete, until taken.
    c2: Option<Vec<u8>>,
    /// Whether C2 has been built (it is handed out once).
    c2_built: bool,
    /// Whether S2 echoed C1's random bytes, once S2 is complete.
    s2_echo: Option<bool>,
    /// The error that stopped the handshake; returned again by every later `feed`.
    failed: Option<String>,
}

impl Handshake {
    /// Prepares C0+C1 with our `epoch` timestamp and random bytes from `seed`.
    pub fn new(epoch: u32, seed: u64) -> Self {
        let mut c1 = Vec::with_capacity(HANDSHAKE_SIZE);
        c1.extend_from_slice(&epoch.to_be_bytes());
        c1.extend_from_slice(&[0; 4]);
        // xorshift needs a non-zero state.
        let mut state = if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        };
        while c1.len() < HANDSHAKE_SIZE {
            let r = xorshift64star(&mut state).to_le_bytes();
            let n = (HANDSHAKE_SIZE - c1.len()).min(8);
            c1.extend_from_slice(&r[..n]);
        }
        Handshake {
            epoch,
            c1,
            received: Vec::with_capacity(SERVER_TOTAL),
            c2: None,
            c2_built: false,
            s2_echo: None,
            failed: None,
        }
    }
    /// C0 and C1, to send first (1537 bytes).
    pub fn c0c1(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(1 + HANDSHAKE_SIZE);
        v.push(RTMP_VERSION);
        v.extend_from_slice(&self.c1);
        v
    }
    /// Feeds received bytes; returns how many were consumed (the rest belong to the chunk stream).
    ///
    /// Only S0, S1 and S2 are consumed; after S2 nothing is. An S0 other than version 3 is an
    /// [`Error::Handshake`] explaining what the server seems to speak instead.
    pub fn feed(&mut self, data: &[u8]) -> Result<usize> {
        if let Some(e) = &self.failed {
            return Err(Error::Handshake(e.clone()));
        }
        let take = (SERVER_TOTAL - self.received.len()).min(data.len());
        if take == 0 {
            return Ok(0);
        }
        if self.received.is_empty() && data[0] != RTMP_VERSION {
            let msg = match data[0] {
                0x16 => "the server answered with TLS; use an rtmps:// URL.".to_owned(),
                b'H' => "the server answered with HTTP; is this an RTMP port?".to_owned(),
                v => format!("the server speaks RTMP version {v}, not 3; is this an RTMP port?"),
            };
            self.failed = Some(msg.clone());
            return Err(Error::Handshake(msg));
        }
        let before = self.received.len();
        self.received.extend_from_slice(&data[..take]);
        let s1_end = 1 + HANDSHAKE_SIZE;
        if before < s1_end && self.received.len() >= s1_end {
            let s1 = &self.received[1..s1_end];
            let mut c2 = Vec::with_capacity(HANDSHAKE_SIZE);
            c2.extend_from_slice(&s1[..4]);
            c2.extend_from_slice(&self.epoch.to_be_bytes());
            c2.extend_from_slice(&s1[HEADER..]);
            self.c2 = Some(c2);
            self.c2_built = true;
        }
        if self.received.len() == SERVER_TOTAL {
            let s2 = &self.received[s1_end..];
            self.s2_echo = Some(s2[HEADER..] == self.c1[HEADER..]);
        }
        Ok(take)
    }
    /// C2, once S0 and S1 have arrived (returned once).
    pub fn take_c2(&mut self) -> Option<Vec<u8>> {
        self.c2.take()
    }
    /// True once S2 has arrived.
    pub fn is_done(&self) -> bool {
        self.received.len() == SERVER_TOTAL
    }
    /// Whether S2's random part echoed C1's, once S2 has arrived (`None` before). A mismatch is
    /// not an error: many servers answer with a digest-based or arbitrary S2.
    pub fn s2_echo_matches(&self) -> Option<bool> {
        self.s2_echo
    }
    /// True once C2 is available or has been taken (S1 complete).
    pub fn s1_received(&self) -> bool {
        self.c2_built
    }
    /// Server bytes still expected (S0 + S1 + S2 not yet received).
    pub fn bytes_needed(&self) -> usize {
        SERVER_TOTAL - self.received.len()
    }
    /// Our C1 (1536 bytes: epoch, four zero bytes, random bytes).
    pub fn c1(&self) -> &[u8] {
        &self.c1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    const S0_S1: usize = 1 + HANDSHAKE_SIZE;
    const SERVER_TIME: [u8; 4] = [0x01, 0x02, 0x03, 0x04];

    /// What a simple-handshake server answers to `c1`: S0, S1 (time, zero, random), S2 (C1's
    /// time, the server's read time, C1's random echoed).
    fn server_reply(c1: &[u8], echo: bool) -> (Vec<u8>, Vec<u8>) {
        let mut s1 = SERVER_TIME.to_vec();
        s1.extend_from_slice(&[0; 4]);
        s1.extend((0..HANDSHAKE_SIZE - 8).map(|i| (i * 31 + 7) as u8));
        let mut s2 = c1[..4].to_vec();
        s2.extend_from_slice(&[0, 0, 0, 9]);
        if echo {
            s2.extend_from_slice(&c1[8..]);
        } else {
            s2.extend(std::iter::repeat_n(0x5A, HANDSHAKE_SIZE - 8));
        }
        let mut all = vec![RTMP_VERSION];
        all.extend_from_slice(&s1);
        all.extend_from_slice(&s2);
        (all, s1)
    }

    #[test]
    fn c0c1_layout_and_determinism() {
        let h = Handshake::new(0xA1B2_C3D4, 42);
        let c = h.c0c1();
        assert_eq!(c.len(), 1 + HANDSHAKE_SIZE);
        assert_eq!(c[0], 3);
        assert_eq!(&c[1..5], &[0xA1, 0xB2, 0xC3, 0xD4]);
        assert_eq!(&c[5..9], &[0, 0, 0, 0]);
        assert_eq!(&c[1..], h.c1());
        // deterministic per seed, different across seeds, not constant
        assert_eq!(Handshake::new(0xA1B2_C3D4, 42).c0c1(), c);
        let other = Handshake::new(0xA1B2_C3D4, 43).c0c1();
        assert_ne!(other[9..], c[9..]);
        let zero = Handshake::new(0, 0).c0c1();
        assert!(zero[9..].iter().any(|&b| b != zero[9]));
        assert!(!h.is_done());
        assert_eq!(h.bytes_needed(), 1 + 2 * HANDSHAKE_SIZE);
        assert_eq!(h.s2_echo_matches(), None);
    }

    fn run(h: &mut Handshake, data: &[u8], splits: &[usize]) -> (usize, Option<Vec<u8>>) {
        let mut consumed = 0;
        let mut c2 = None;
        let mut start = 0;
        for &end in splits.iter().chain(std::iter::once(&data.len())) {
            let n = h.feed(&data[start..end]).unwrap();
            let expected = (end - start).min(1 + 2 * HANDSHAKE_SIZE - consumed);
            assert_eq!(n, expected);
            consumed += n;
            if let Some(c) = h.take_c2() {
                assert!(c2.is_none(), "C2 handed out twice");
                assert!(consumed >= S0_S1);
                c2 = Some(c);
            } else {
                assert_eq!(c2.is_some(), consumed >= S0_S1);
            }
            assert_eq!(h.s1_received(), consumed >= S0_S1);
            assert_eq!(h.is_done(), consumed == 1 + 2 * HANDSHAKE_SIZE);
            start = end;
        }
        (consumed, c2)
    }

    #[test]
    fn scripted_server_with_arbitrary_splits() {
        let mut rng = Rng(0x1234_5678);
        for trial in 0..300 {
            let mut h = Handshake::new(77, trial);
            let (mut data, s1) = server_reply(h.c1(), true);
            let total = data.len();
            data.extend_from_slice(b"\x02chunk stream bytes");
            let mut splits: Vec<usize> = match trial {
                0 => vec![],
                1 => (1..data.len()).collect(),
                2 => vec![1, 1537, 3073],
                _ => (0..rng.below(6))
                    .map(|_| rng.below(data.len() + 1))
                    .collect(),
            };
            splits.sort_unstable();
            let (consumed, c2) = run(&mut h, &data, &splits);
            assert_eq!(consumed, total, "extra bytes after S2 are not consumed");
            let c2 = c2.expect("C2");
            assert_eq!(c2.len(), HANDSHAKE_SIZE);
            assert_eq!(&c2[..4], &SERVER_TIME);
            assert_eq!(&c2[4..8], &77u32.to_be_bytes());
            assert_eq!(&c2[8..], &s1[8..]);
            assert!(h.is_done());
            assert_eq!(h.s2_echo_matches(), Some(true));
            assert_eq!(h.take_c2(), None);
            assert_eq!(h.feed(b"more").unwrap(), 0);
            assert_eq!(h.bytes_needed(), 0);
        }
    }

    #[test]
    fn non_echoing_s2_is_accepted_and_recorded() {
        let mut h = Handshake::new(1, 2);
        let (data, _) = server_reply(h.c1(), false);
        assert_eq!(h.feed(&data).unwrap(), data.len());
        assert!(h.take_c2().is_some());
        assert!(h.is_done());
        assert_eq!(h.s2_echo_matches(), Some(false));
    }

    #[test]
    fn bad_s0_explains_what_the_server_speaks() {
        for (s0, text) in [
            (0x16u8, "TLS; use an rtmps:// URL"),
            (b'H', "HTTP; is this an RTMP port?"),
            (6, "RTMP version 6, not 3"),
            (0, "RTMP version 0, not 3"),
        ] {
            let mut h = Handshake::new(0, 1);
            let e = h.feed(&[s0, 1, 2, 3]).unwrap_err();
            assert!(matches!(e, Error::Handshake(_)));
            assert!(e.to_string().contains(text), "{e}");
            // stays failed
            assert!(h.feed(&[3]).is_err());
            assert!(!h.is_done());
            assert_eq!(h.take_c2(), None);
        }
        // an empty feed consumes nothing and is not an error
        let mut h = Handshake::new(0, 1);
        assert_eq!(h.feed(&[]).unwrap(), 0);
        assert_eq!(h.feed(&[3]).unwrap(), 1);
        // a later byte equal to 0x16 is not S0
        assert_eq!(h.feed(&[0x16]).unwrap(), 1);
    }
}
