//! The RTMP handshake (RTMP 1.0 §5.2), client side, sans-IO. CONTRACT STUB: to be implemented.

use super::error::Result;

/// The RTMP version byte of C0/S0.
pub const RTMP_VERSION: u8 = 3;
/// Size of C1/S1/C2/S2.
pub const HANDSHAKE_SIZE: usize = 1536;

/// Client handshake state machine.
#[derive(Debug)]
pub struct Handshake {}

impl Handshake {
    /// Prepares C0+C1 with our `epoch` timestamp and random bytes from `seed`.
    pub fn new(_epoch: u32, _seed: u64) -> Self {
        todo!()
    }
    /// C0 and C1, to send first (1537 bytes).
    pub fn c0c1(&self) -> Vec<u8> {
        todo!()
    }
    /// Feeds received bytes; returns how many were consumed (the rest belong to the chunk stream).
    pub fn feed(&mut self, _data: &[u8]) -> Result<usize> {
        todo!()
    }
    /// C2, once S0 and S1 have arrived (returned once).
    pub fn take_c2(&mut self) -> Option<Vec<u8>> {
        todo!()
    }
    /// True once S2 has arrived.
    pub fn is_done(&self) -> bool {
        todo!()
    }
}
