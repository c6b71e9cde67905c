//! RTMP chunk stream (RTMP 1.0 §5.3): the writer that splits messages into chunks with header
//! compression, and the incremental reader that reassembles them. CONTRACT STUB: to be implemented.

use std::io::{self, IoSlice, Write};

use super::error::Result;
use super::message::Message;

/// Chunk size both sides use until a SetChunkSize says otherwise (§5.4.1).
pub const DEFAULT_CHUNK_SIZE: u32 = 128;
/// Largest chunk size a SetChunkSize may carry (31 bits).
pub const MAX_CHUNK_SIZE: u32 = 0x7FFF_FFFF;
/// Largest message the reader accepts from the peer.
pub const MAX_MESSAGE_SIZE: u32 = 4 * 1024 * 1024;
/// Most chunk streams the reader tracks at once.
pub const MAX_CHUNK_STREAMS: usize = 64;
/// Most bytes of partially received messages the reader holds at once.
pub const MAX_BUFFERED_BYTES: usize = 8 * 1024 * 1024;

/// Splits outgoing messages into chunks.
#[derive(Debug)]
pub struct ChunkWriter {
    chunk_size: u32,
}

impl Default for ChunkWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkWriter {
    /// A writer with the protocol's initial chunk size of 128.
    pub fn new() -> Self {
        ChunkWriter {
            chunk_size: DEFAULT_CHUNK_SIZE,
        }
    }
    /// The current outgoing chunk size.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }
    /// Sets the outgoing chunk size (the caller sends the SetChunkSize message first).
    pub fn set_chunk_size(&mut self, size: u32) {
        self.chunk_size = size;
    }
    /// Appends the chunks of one message to `out`: header bytes are written into the batch's own
    /// buffer and the payload parts are borrowed, never copied.
    pub fn write_message<'a>(
        &mut self,
        _csid: u32,
        _timestamp: u32,
        _msg_type_id: u8,
        _msg_stream_id: u32,
        _payload: &[&'a [u8]],
        _out: &mut ChunkBatch<'a>,
    ) -> Result<()> {
        todo!()
    }
}

/// Bytes ready to be written: chunk headers (owned) interleaved with borrowed payload slices.
#[derive(Debug, Default)]
pub struct ChunkBatch<'a> {
    _p: std::marker::PhantomData<&'a [u8]>,
}

impl<'a> ChunkBatch<'a> {
    /// An empty batch.
    pub fn new() -> Self {
        ChunkBatch {
            _p: std::marker::PhantomData,
        }
    }
    /// Appends a copy of `bytes` (small control data).
    pub fn push_owned(&mut self, _bytes: &[u8]) {
        todo!()
    }
    /// Total bytes not yet written.
    pub fn remaining(&self) -> usize {
        todo!()
    }
    /// True when nothing is left to write.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }
    /// Writes what is left with vectored writes; on error (e.g. `WouldBlock`/`TimedOut`) the
    /// progress made so far is kept and a later call resumes where it stopped.
    pub fn write_to<W: Write + ?Sized>(&mut self, _w: &mut W) -> io::Result<()> {
        todo!()
    }
    /// The slices of what is left, in order (for callers that write themselves).
    pub fn io_slices(&self) -> Vec<IoSlice<'_>> {
        todo!()
    }
    /// Marks `n` bytes as written.
    pub fn advance(&mut self, _n: usize) {
        todo!()
    }
    /// Copies what is left into one vector (tests and TLS).
    pub fn to_vec(&self) -> Vec<u8> {
        todo!()
    }
    /// Empties the batch, keeping its allocations, and releases the borrow of the payloads.
    pub fn recycle<'b>(self) -> ChunkBatch<'b> {
        todo!()
    }
}

/// Reassembles incoming chunks into messages.
#[derive(Debug, Default)]
pub struct ChunkReader {}

impl ChunkReader {
    /// A reader with the protocol's initial chunk size of 128.
    pub fn new() -> Self {
        ChunkReader {}
    }
    /// Appends received bytes.
    pub fn push(&mut self, _data: &[u8]) {
        todo!()
    }
    /// The next complete message, `Ok(None)` when more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Message>> {
        todo!()
    }
    /// The chunk size the peer uses.
    pub fn chunk_size(&self) -> u32 {
        todo!()
    }
}
