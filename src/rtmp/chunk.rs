//! RTMP chunk stream (RTMP 1.0 §5.3): the writer that splits messages into chunks with header
//! compression, and the incremental reader that reassembles them.
//!
//! # Writing
//!
//! [`ChunkWriter::write_message`] appends the chunks of one message to a [`ChunkBatch`]: the
//! chunk headers are written into the batch's own reusable byte buffer and the payload parts are
//! recorded as borrowed sub-slices, so chunking never copies payload bytes and, once the batch's
//! vectors have reached their working size, never allocates. [`ChunkBatch::write_to`] then hands
//! everything to the socket with vectored writes and can resume after `WouldBlock`.
//!
//! Header compression per chunk stream: fmt 0 for the first message on a chunk stream, when the
//! message stream id changes or when the timestamp goes backwards (serial-number arithmetic);
//! fmt 1 when the length or type changes; fmt 2 when only the timestamp delta changes; fmt 3 when
//! length, type and delta all repeat. The writer never sends a fmt 3 header for a new message
//! directly after a fmt 0 header (peers disagree on which delta that implies), it sends a fmt 2
//! first. Extended timestamps are repeated on every fmt 3 chunk governed by a header that used
//! one, like FFmpeg and nginx-rtmp do.
//!
//! # Reading
//!
//! [`ChunkReader`] is resumable: it parses a chunk header once the whole header is buffered,
//! then copies the chunk's payload bytes into the message as they arrive, so it never needs a
//! whole chunk in its input buffer. SetChunkSize and Abort are applied by the reader itself the
//! moment they complete and are still returned to the caller.

use std::io::{self, IoSlice, Write};

use super::error::{ProtocolError, Result};
use super::message::{Message, msg_type};

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

/// Smallest chunk stream id a message can use (0 and 1 are basic-header escapes).
pub const MIN_CSID: u32 = 2;
/// Largest chunk stream id (three-byte basic header).
pub const MAX_CSID: u32 = 65599;
/// Largest message the 24-bit length field of a chunk header can announce.
pub const MAX_ENCODABLE_MESSAGE_SIZE: u32 = 0xFF_FFFF;
/// Longest chunk header: 3-byte basic header, 11-byte fmt 0 message header, 4-byte extended
/// timestamp.
pub const MAX_CHUNK_HEADER_LEN: usize = 18;

/// Timestamp field value that announces an extended timestamp.
const EXTENDED_MARKER: u32 = 0xFF_FFFF;
/// Most `IoSlice`s handed to one `write_vectored` call (IOV_MAX on Linux).
const MAX_IOV: usize = 1024;

/// Encodes a chunk basic header into `out`, returning its length, or `None` for an invalid csid.
fn encode_basic_header(fmt: u8, csid: u32, out: &mut [u8; MAX_CHUNK_HEADER_LEN]) -> Option<usize> {
    let fmt = fmt << 6;
    match csid {
        2..=63 => {
            out[0] = fmt | csid as u8;
            Some(1)
        }
        64..=319 => {
            out[0] = fmt;
            out[1] = (csid - 64) as u8;
            Some(2)
        }
        320..=MAX_CSID => {
            let v = csid - 64;
            out[0] = fmt | 1;
            out[1] = v as u8;
            out[2] = (v >> 8) as u8;
            Some(3)
        }
        _ => None,
    }
}

fn put_u24(out: &mut [u8], v: u32) {
    out[..3].copy_from_slice(&v.to_be_bytes()[1..]);
}

fn be24(b: &[u8]) -> u32 {
    u32::from_be_bytes([0, b[0], b[1], b[2]])
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// What the writer remembers about the last header sent on one chunk stream.
#[derive(Debug, Clone, Copy)]
struct OutStream {
    csid: u32,
    timestamp: u32,
    msg_stream_id: u32,
    msg_len: u32,
    msg_type_id: u8,
    /// Delta of the last message, `None` after a fmt 0 header (a fmt 3 new message right after
    /// fmt 0 is interpreted differently by different peers, so the writer never relies on it).
    delta: Option<u32>,
    /// The extended timestamp field of the governing fmt 0/1/2 header, if it had one; repeated
    /// in every fmt 3 chunk.
    ext: Option<u32>,
}

/// Splits outgoing messages into chunks.
#[derive(Debug)]
pub struct ChunkWriter {
    chunk_size: u32,
    streams: Vec<OutStream>,
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
            streams: Vec::new(),
        }
    }
    /// The current outgoing chunk size.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }
    /// Sets the outgoing chunk size (the caller sends the SetChunkSize message first); it takes
    /// effect with the next message. Values are clamped to `1..=MAX_CHUNK_SIZE`.
    pub fn set_chunk_size(&mut self, size: u32) {
        self.chunk_size = size.clamp(1, MAX_CHUNK_SIZE);
    }
    /// Appends the chunks of one message to `out`: header bytes are written into the batch's own
    /// buffer and the payload parts are borrowed, never copied.
    ///
    /// The message body is the concatenation of `payload`'s parts (parts may be empty). Fails,
    /// writing nothing, for a csid outside `2..=65599` or a body longer than `0xFFFFFF` bytes.
    pub fn write_message<'a>(
        &mut self,
        csid: u32,
        timestamp: u32,
        msg_type_id: u8,
        msg_stream_id: u32,
        payload: &[&'a [u8]],
        out: &mut ChunkBatch<'a>,
    ) -> Result<()> {
        let mut hdr = [0u8; MAX_CHUNK_HEADER_LEN];
        if !(MIN_CSID..=MAX_CSID).contains(&csid) {
            return Err(
                ProtocolError::Other(format!("invalid outgoing chunk stream id {csid}")).into(),
            );
        }
        let total: usize = payload.iter().map(|p| p.len()).sum();
        if total > MAX_ENCODABLE_MESSAGE_SIZE as usize {
            return Err(ProtocolError::MessageTooLarge {
                size: u32::try_from(total).unwrap_or(u32::MAX),
                max: MAX_ENCODABLE_MESSAGE_SIZE,
            }
            .into());
        }
        let msg_len = total as u32;

        let slot = self.streams.iter().position(|s| s.csid == csid);
        let prev = slot.map(|i| self.streams[i]);
        // (fmt, value of the timestamp field before the extended check)
        let (fmt, field) = match prev {
            None => (0u8, timestamp),
            Some(p) => {
                let delta = timestamp.wrapping_sub(p.timestamp);
                if p.msg_stream_id != msg_stream_id || delta >= 0x8000_0000 {
                    (0, timestamp)
                } else if p.msg_len != msg_len || p.msg_type_id != msg_type_id {
                    (1, delta)
                } else if p.delta != Some(delta) {
                    (2, delta)
                } else {
                    (3, delta)
                }
            }
        };
        let ext = match (fmt, prev) {
            (3, Some(p)) => p.ext,
            _ => (field >= EXTENDED_MARKER).then_some(field),
        };
        let state = OutStream {
            csid,
            timestamp,
            msg_stream_id,
            msg_len,
            msg_type_id,
            delta: (fmt != 0).then_some(field),
            ext,
        };
        match slot {
            Some(i) => self.streams[i] = state,
            None => self.streams.push(state),
        }

        // First chunk header.
        let mut n = encode_basic_header(fmt, csid, &mut hdr).unwrap_or(0);
        if fmt < 3 {
            put_u24(
                &mut hdr[n..],
                if ext.is_some() {
                    EXTENDED_MARKER
                } else {
                    field
                },
            );
            n += 3;
            if fmt < 2 {
                put_u24(&mut hdr[n..], msg_len);
                hdr[n + 3] = msg_type_id;
                n += 4;
                if fmt == 0 {
                    hdr[n..n + 4].copy_from_slice(&msg_stream_id.to_le_bytes());
                    n += 4;
                }
            }
        }
        if let Some(e) = ext {
            hdr[n..n + 4].copy_from_slice(&e.to_be_bytes());
            n += 4;
        }
        // Continuation header: fmt 3 basic header plus the repeated extended timestamp.
        let mut cont = [0u8; MAX_CHUNK_HEADER_LEN];
        let mut cn = encode_basic_header(3, csid, &mut cont).unwrap_or(0);
        if let Some(e) = ext {
            cont[cn..cn + 4].copy_from_slice(&e.to_be_bytes());
            cn += 4;
        }

        let chunk_size = self.chunk_size as usize;
        let chunks = total.div_ceil(chunk_size).max(1);
        out.reserve(n + (chunks - 1) * cn, 2 * chunks + payload.len());
        out.push_header(&hdr[..n]);

        let mut part = 0usize;
        let mut offset = 0usize;
        let mut left = total;
        loop {
            let mut take = left.min(chunk_size);
            left -= take;
            while take > 0 {
                let Some(&p) = payload.get(part) else { break };
                let avail = p.len() - offset;
                if avail == 0 {
                    part += 1;
                    offset = 0;
                    continue;
                }
                let k = avail.min(take);
                out.push_borrowed(&p[offset..offset + k]);
                offset += k;
                take -= k;
            }
            if left == 0 {
                break;
            }
            out.push_header(&cont[..cn]);
        }
        Ok(())
    }
}

/// One piece of a [`ChunkBatch`].
#[derive(Debug, Clone, Copy)]
enum Segment<'a> {
    /// A range of the batch's own byte buffer.
    Owned { start: usize, end: usize },
    /// Borrowed payload bytes.
    Borrowed(&'a [u8]),
}

/// Reuses a vector's allocation for another element type of the same layout (here: the same
/// type with another lifetime). The vector is emptied first, so the closure never runs; the
/// standard library collects `vec::IntoIter` back into its own allocation in that case (the
/// tests assert that the capacity is kept).
fn reuse_vec<T, U>(mut v: Vec<T>) -> Vec<U> {
    v.clear();
    v.into_iter().filter_map(|_| None).collect()
}

/// Bytes ready to be written: chunk headers (owned) interleaved with borrowed payload slices.
#[derive(Debug, Default)]
pub struct ChunkBatch<'a> {
    /// Owned bytes (chunk headers and `push_owned` data); segments refer to ranges of it.
    buf: Vec<u8>,
    /// The batch's content, in order, never containing an empty segment.
    segs: Vec<Segment<'a>>,
    /// Index of the first segment not completely written.
    seg_pos: usize,
    /// Bytes of `segs[seg_pos]` already written.
    byte_pos: usize,
    /// Bytes not yet written.
    remaining: usize,
    /// Reusable `IoSlice` scratch for `write_to` (always empty between calls).
    iov: Vec<IoSlice<'static>>,
}

impl<'a> ChunkBatch<'a> {
    /// An empty batch.
    pub fn new() -> Self {
        ChunkBatch {
            buf: Vec::new(),
            segs: Vec::new(),
            seg_pos: 0,
            byte_pos: 0,
            remaining: 0,
            iov: Vec::new(),
        }
    }

    fn reserve(&mut self, owned_bytes: usize, segments: usize) {
        self.buf.reserve(owned_bytes);
        self.segs.reserve(segments);
    }

    /// Appends owned bytes, merging with the previous segment when it ends where these start.
    fn push_header(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let start = self.buf.len();
        self.buf.extend_from_slice(bytes);
        let end = self.buf.len();
        self.remaining += bytes.len();
        if let Some(Segment::Owned { end: last_end, .. }) = self.segs.last_mut()
            && *last_end == start
        {
            *last_end = end;
            return;
        }
        self.segs.push(Segment::Owned { start, end });
    }

    fn push_borrowed(&mut self, bytes: &'a [u8]) {
        if bytes.is_empty() {
            return;
        }
        self.remaining += bytes.len();
        self.segs.push(Segment::Borrowed(bytes));
    }

    fn segment_bytes(&self, seg: &Segment<'a>) -> &[u8] {
        match *seg {
            Segment::Owned { start, end } => self.buf.get(start..end).unwrap_or(&[]),
            Segment::Borrowed(b) => b,
        }
    }

    /// The unwritten part of each remaining segment, in order.
    fn pending(&self) -> impl Iterator<Item = &[u8]> {
        self.segs
            .get(self.seg_pos..)
            .unwrap_or(&[])
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let b = self.segment_bytes(s);
                if i == 0 {
                    b.get(self.byte_pos..).unwrap_or(&[])
                } else {
                    b
                }
            })
    }

    /// Appends a copy of `bytes` (small control data).
    pub fn push_owned(&mut self, bytes: &[u8]) {
        self.push_header(bytes);
    }
    /// Total bytes not yet written.
    pub fn remaining(&self) -> usize {
        self.remaining
    }
    /// True when nothing is left to write.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }
    /// Writes what is left with vectored writes; on error (e.g. `WouldBlock`/`TimedOut`) the
    /// progress made so far is kept and a later call resumes where it stopped.
    ///
    /// `Interrupted` is retried; `Ok(0)` from the writer becomes `ErrorKind::WriteZero`. At most
    /// 1024 slices go into one `write_vectored` call. Once everything is written the batch is
    /// emptied (allocations kept) and can take new messages.
    pub fn write_to<W: Write + ?Sized>(&mut self, w: &mut W) -> io::Result<()> {
        let mut scratch = std::mem::take(&mut self.iov);
        let result = loop {
            if self.remaining == 0 {
                break Ok(());
            }
            let mut iov: Vec<IoSlice<'_>> = reuse_vec(scratch);
            iov.extend(self.pending().take(MAX_IOV).map(IoSlice::new));
            let r = w.write_vectored(&iov);
            scratch = reuse_vec(iov);
            match r {
                Ok(0) => {
                    break Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "failed to write RTMP chunks: the writer accepted no bytes",
                    ));
                }
                Ok(n) => self.advance(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(e),
            }
        };
        self.iov = scratch;
        result
    }
    /// The slices of what is left, in order (for callers that write themselves).
    pub fn io_slices(&self) -> Vec<IoSlice<'_>> {
        self.pending().map(IoSlice::new).collect()
    }
    /// Marks `n` bytes as written (clamped to [`remaining`](Self::remaining)). When nothing is
    /// left the batch is emptied, keeping its allocations.
    pub fn advance(&mut self, n: usize) {
        let mut n = n.min(self.remaining);
        self.remaining -= n;
        while n > 0 {
            let Some(seg) = self.segs.get(self.seg_pos) else {
                break;
            };
            let left = self.segment_bytes(seg).len().saturating_sub(self.byte_pos);
            if n < left {
                self.byte_pos += n;
                break;
            }
            n -= left;
            self.seg_pos += 1;
            self.byte_pos = 0;
        }
        if self.remaining == 0 {
            self.clear();
        }
    }
    /// Copies what is left into one vector (tests and TLS).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.remaining);
        for s in self.pending() {
            v.extend_from_slice(s);
        }
        v
    }
    /// Empties the batch, keeping its allocations.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.segs.clear();
        self.seg_pos = 0;
        self.byte_pos = 0;
        self.remaining = 0;
    }
    /// Empties the batch, keeping its allocations, and releases the borrow of the payloads.
    pub fn recycle<'b>(self) -> ChunkBatch<'b> {
        ChunkBatch {
            buf: {
                let mut b = self.buf;
                b.clear();
                b
            },
            segs: reuse_vec(self.segs),
            seg_pos: 0,
            byte_pos: 0,
            remaining: 0,
            iov: self.iov,
        }
    }
}

/// What the reader remembers about one incoming chunk stream.
#[derive(Debug)]
struct InStream {
    csid: u32,
    /// Timestamp of the current (or last) message.
    timestamp: u32,
    /// Delta a fmt 3 header starting a new message adds (after fmt 0: its timestamp, §5.3.1.2.4).
    delta: u32,
    msg_len: u32,
    msg_type_id: u8,
    msg_stream_id: u32,
    /// Extended timestamp field of the governing header, if it had one.
    ext: Option<u32>,
    /// A message is partially received.
    receiving: bool,
    /// Bytes of the partially received message.
    payload: Vec<u8>,
}

/// Reassembles incoming chunks into messages.
///
/// Extended timestamps on fmt 3 chunks: the spec (and FFmpeg, nginx-rtmp and this crate's
/// writer) repeat the 4-byte extended timestamp in every fmt 3 chunk governed by a header that
/// had one, but some peers omit it. Like FFmpeg, the reader therefore consumes those 4 bytes
/// only when they equal the stored extended timestamp and otherwise treats them as payload.
/// When fewer than 4 bytes are buffered and they match so far, it waits for more.
///
/// A fmt 0/1/2 header on a chunk stream whose message is still incomplete replaces that message
/// (the partial bytes are dropped, as if the peer had sent an Abort).
#[derive(Debug)]
pub struct ChunkReader {
    /// Received bytes; `buf[pos..]` is not parsed yet.
    buf: Vec<u8>,
    pos: usize,
    chunk_size: u32,
    streams: Vec<InStream>,
    /// The chunk whose payload is being copied: index into `streams`, bytes still to copy.
    current: Option<(usize, usize)>,
    /// Sum of the partially received messages' bytes.
    partial: usize,
    /// The error that stopped the reader; returned again by every later call.
    failed: Option<ProtocolError>,
}

impl Default for ChunkReader {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkReader {
    /// A reader with the protocol's initial chunk size of 128.
    pub fn new() -> Self {
        ChunkReader {
            buf: Vec::new(),
            pos: 0,
            chunk_size: DEFAULT_CHUNK_SIZE,
            streams: Vec::new(),
            current: None,
            partial: 0,
            failed: None,
        }
    }
    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        // Drop the parsed prefix once it is at least as large as what is left, so each byte is
        // moved at most once on average.
        if self.pos > 0 && self.pos >= self.buf.len() - self.pos {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }
    /// The next complete message, `Ok(None)` when more bytes are needed.
    ///
    /// SetChunkSize and Abort messages are applied before they are returned. After an error the
    /// reader is unusable and returns the same error again.
    pub fn next_message(&mut self) -> Result<Option<Message>> {
        if let Some(e) = &self.failed {
            return Err(e.clone().into());
        }
        match self.step() {
            Ok(m) => Ok(m),
            Err(e) => {
                self.failed = Some(e.clone());
                Err(e.into())
            }
        }
    }
    /// The chunk size the peer uses.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }
    /// Received bytes not parsed yet.
    pub fn buffered_len(&self) -> usize {
        self.buf.len() - self.pos
    }
    /// Bytes of partially received messages (bounded by [`MAX_BUFFERED_BYTES`]).
    pub fn partial_len(&self) -> usize {
        self.partial
    }

    fn step(&mut self) -> Result<Option<Message>, ProtocolError> {
        loop {
            let Some((idx, left)) = self.current else {
                if !self.parse_header()? {
                    return Ok(None);
                }
                continue;
            };
            let avail = self.buf.len() - self.pos;
            let n = left.min(avail);
            if n > 0 {
                if self.partial + n > MAX_BUFFERED_BYTES {
                    return Err(ProtocolError::TooMuchBuffered {
                        max: MAX_BUFFERED_BYTES,
                    });
                }
                let Some(s) = self.streams.get_mut(idx) else {
                    self.current = None;
                    continue;
                };
                let data = &self.buf[self.pos..self.pos + n];
                let need = s.payload.len() + n;
                if s.payload.capacity() < need {
                    // Grow geometrically, but never beyond the announced length.
                    let target = need.max(2 * s.payload.len()).min(s.msg_len as usize);
                    s.payload.reserve_exact(target - s.payload.len());
                }
                s.payload.extend_from_slice(data);
                self.pos += n;
                self.partial += n;
            }
            if left > n {
                self.current = Some((idx, left - n));
                return Ok(None);
            }
            self.current = None;
            let Some(s) = self.streams.get_mut(idx) else {
                continue;
            };
            if s.payload.len() < s.msg_len as usize {
                continue;
            }
            s.receiving = false;
            let payload = std::mem::take(&mut s.payload);
            self.partial -= payload.len();
            let msg = Message {
                timestamp: s.timestamp,
                msg_type_id: s.msg_type_id,
                msg_stream_id: s.msg_stream_id,
                payload,
            };
            self.apply_control(&msg)?;
            return Ok(Some(msg));
        }
    }

    /// Applies SetChunkSize and Abort.
    fn apply_control(&mut self, msg: &Message) -> Result<(), ProtocolError> {
        match msg.msg_type_id {
            msg_type::SET_CHUNK_SIZE => {
                let Some(b) = msg.payload.get(..4) else {
                    return Err(ProtocolError::MalformedMessage {
                        what: "set chunk size",
                    });
                };
                let size = be32(b);
                if size == 0 || size > MAX_CHUNK_SIZE {
                    return Err(ProtocolError::InvalidChunkSize { size });
                }
                self.chunk_size = size;
            }
            msg_type::ABORT => {
                let Some(b) = msg.payload.get(..4) else {
                    return Err(ProtocolError::MalformedMessage { what: "abort" });
                };
                let csid = be32(b);
                if let Some(i) = self.streams.iter().position(|s| s.csid == csid) {
                    self.drop_partial(i);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Discards the partially received message of stream `i`, releasing its memory.
    fn drop_partial(&mut self, i: usize) {
        if let Some(s) = self.streams.get_mut(i) {
            self.partial -= s.payload.len();
            s.payload = Vec::new();
            s.receiving = false;
        }
    }

    /// Parses the next chunk header if it is completely buffered. Returns `false` when more
    /// bytes are needed (nothing consumed).
    fn parse_header(&mut self) -> Result<bool, ProtocolError> {
        let data = &self.buf[self.pos..];
        let Some(&b0) = data.first() else {
            return Ok(false);
        };
        let fmt = b0 >> 6;
        let (csid, mut off) = match b0 & 0x3F {
            0 => match data.get(1) {
                Some(&b) => (64 + u32::from(b), 2),
                None => return Ok(false),
            },
            1 => match data.get(1..3) {
                Some(b) => (64 + u32::from(b[0]) + 256 * u32::from(b[1]), 3),
                None => return Ok(false),
            },
            c => (u32::from(c), 1),
        };
        let header_len = [11, 7, 3, 0][usize::from(fmt)];
        let Some(h) = data.get(off..off + header_len) else {
            return Ok(false);
        };
        let slot = self.streams.iter().position(|s| s.csid == csid);
        if fmt != 0 && slot.is_none() {
            return Err(ProtocolError::MissingChunkHeader { csid });
        }
        off += header_len;

        if fmt == 3 {
            let Some(i) = slot else {
                return Err(ProtocolError::MissingChunkHeader { csid });
            };
            let s = &self.streams[i];
            let mut ext_read = None;
            if let Some(e) = s.ext {
                let e = e.to_be_bytes();
                let rest = &data[off..];
                let k = rest.len().min(4);
                if rest[..k] == e[..k] {
                    if k < 4 {
                        return Ok(false);
                    }
                    ext_read = Some(be32(&e));
                    off += 4;
                }
            }
            let s = &mut self.streams[i];
            if !s.receiving {
                // A new message with the previous header's values.
                if let Some(v) = ext_read {
                    s.delta = v;
                }
                s.timestamp = s.timestamp.wrapping_add(s.delta);
                s.receiving = true;
            }
            let left = (s.msg_len as usize)
                .saturating_sub(s.payload.len())
                .min(self.chunk_size as usize);
            self.pos += off;
            self.current = Some((i, left));
            return Ok(true);
        }

        // fmt 0, 1 or 2: timestamp (or delta) field, then length and type, then stream id.
        let mut field = be24(&h[0..3]);
        let mut ext = None;
        if field == EXTENDED_MARKER {
            let Some(b) = data.get(off..off + 4) else {
                return Ok(false);
            };
            field = be32(b);
            ext = Some(field);
            off += 4;
        }
        let len_type = (fmt < 2).then(|| (be24(&h[3..6]), h[6]));
        if let Some((len, _)) = len_type
            && len > MAX_MESSAGE_SIZE
        {
            return Err(ProtocolError::MessageTooLarge {
                size: len,
                max: MAX_MESSAGE_SIZE,
            });
        }
        let msid = (fmt == 0).then(|| u32::from_le_bytes([h[7], h[8], h[9], h[10]]));

        let i = match slot {
            Some(i) => {
                // A new header in the middle of a message replaces that message.
                self.drop_partial(i);
                i
            }
            None => {
                if self.streams.len() >= MAX_CHUNK_STREAMS {
                    return Err(ProtocolError::TooManyChunkStreams {
                        max: MAX_CHUNK_STREAMS,
                    });
                }
                self.streams.push(InStream {
                    csid,
                    timestamp: 0,
                    delta: 0,
                    msg_len: 0,
                    msg_type_id: 0,
                    msg_stream_id: 0,
                    ext: None,
                    receiving: false,
                    payload: Vec::new(),
                });
                self.streams.len() - 1
            }
        };
        let s = &mut self.streams[i];
        if let Some(msid) = msid {
            s.msg_stream_id = msid;
            s.timestamp = field;
        } else {
            s.timestamp = s.timestamp.wrapping_add(field);
        }
        // After fmt 0 a fmt 3 new message adds the fmt 0 timestamp (RTMP 1.0 §5.3.1.2.4).
        s.delta = field;
        if let Some((len, ty)) = len_type {
            s.msg_len = len;
            s.msg_type_id = ty;
        }
        s.ext = ext;
        s.receiving = true;
        let left = (s.msg_len as usize).min(self.chunk_size as usize);
        self.pos += off;
        self.current = Some((i, left));
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtmp::error::Error;

    /// Deterministic xorshift64 for the tests.
    struct Rng(u64);
    impl Rng {
        fn new(seed: u64) -> Self {
            Rng(seed.max(1))
        }
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }
    }

    fn proto(e: Error) -> ProtocolError {
        match e {
            Error::Protocol(p) => p,
            other => panic!("expected a protocol error, got {other:?}"),
        }
    }

    /// Chunks one message with `w` and returns the bytes.
    fn chunk(
        w: &mut ChunkWriter,
        csid: u32,
        ts: u32,
        ty: u8,
        msid: u32,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut b = ChunkBatch::new();
        w.write_message(csid, ts, ty, msid, &[payload], &mut b)
            .unwrap();
        b.to_vec()
    }

    /// Feeds everything at once and drains the reader.
    fn read_all(r: &mut ChunkReader, bytes: &[u8]) -> Vec<Message> {
        r.push(bytes);
        let mut out = Vec::new();
        while let Some(m) = r.next_message().unwrap() {
            out.push(m);
        }
        out
    }

    fn msg(ts: u32, ty: u8, msid: u32, payload: &[u8]) -> Message {
        Message::new(ty, ts, msid, payload.to_vec())
    }

    fn set_chunk_size_msg(size: u32) -> Vec<u8> {
        // fmt 0, csid 2, ts 0, len 4, type 1, msid 0
        let mut v = vec![0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0];
        v.extend_from_slice(&size.to_be_bytes());
        v
    }

    #[test]
    fn fmt0_header_exact_bytes() {
        let mut w = ChunkWriter::new();
        let bytes = chunk(&mut w, 3, 1000, msg_type::COMMAND_AMF0, 1, b"hello");
        assert_eq!(
            bytes,
            [
                0x03, // fmt 0, csid 3
                0x00, 0x03, 0xE8, // timestamp 1000
                0x00, 0x00, 0x05, // length 5
                0x14, // type 20
                0x01, 0x00, 0x00, 0x00, // msid 1, little endian
                b'h', b'e', b'l', b'l', b'o',
            ]
        );
        let mut r = ChunkReader::new();
        assert_eq!(read_all(&mut r, &bytes), [msg(1000, 20, 1, b"hello")]);
    }

    #[test]
    fn basic_header_sizes_and_invalid_csids() {
        let cases: [(u32, &[u8]); 6] = [
            (2, &[0x02]),
            (63, &[0x3F]),
            (64, &[0x00, 0x00]),
            (319, &[0x00, 0xFF]),
            (320, &[0x01, 0x00, 0x01]),
            (65599, &[0x01, 0xFF, 0xFF]),
        ];
        for (csid, basic) in cases {
            let mut w = ChunkWriter::new();
            let bytes = chunk(&mut w, csid, 5, 9, 1, &[0xAB]);
            assert_eq!(&bytes[..basic.len()], basic, "csid {csid}");
            assert_eq!(bytes.len(), basic.len() + 11 + 1);
            assert_eq!(
                &bytes[basic.len()..],
                &[0, 0, 5, 0, 0, 1, 9, 1, 0, 0, 0, 0xAB]
            );
            // fmt 3 continuation keeps the same basic header size
            let bytes = chunk(&mut w, csid, 5, 9, 1, &[0xAB]);
            assert!(bytes.len() > basic.len());
            let mut r = ChunkReader::new();
            let mut w = ChunkWriter::new();
            let msgs = read_all(&mut r, &chunk(&mut w, csid, 7, 8, 1, &[1, 2]));
            assert_eq!(msgs, [msg(7, 8, 1, &[1, 2])], "csid {csid}");
        }
        let mut w = ChunkWriter::new();
        for csid in [0, 1, 65600, u32::MAX] {
            let mut b = ChunkBatch::new();
            assert!(w.write_message(csid, 0, 9, 1, &[b"x"], &mut b).is_err());
            assert!(b.is_empty());
        }
    }

    #[test]
    fn header_compression_sequence_exact_bytes() {
        let mut w = ChunkWriter::new();
        let p4 = [1u8, 2, 3, 4];
        let p2 = [9u8, 9];
        // first message: fmt 0
        assert_eq!(
            chunk(&mut w, 4, 100, 8, 1, &p4),
            [0x04, 0, 0, 100, 0, 0, 4, 8, 1, 0, 0, 0, 1, 2, 3, 4]
        );
        // same length/type, delta 20: fmt 2 (never fmt 3 right after fmt 0)
        assert_eq!(
            chunk(&mut w, 4, 120, 8, 1, &p4),
            [0x84, 0, 0, 20, 1, 2, 3, 4]
        );
        // same delta again: fmt 3
        assert_eq!(chunk(&mut w, 4, 140, 8, 1, &p4), [0xC4, 1, 2, 3, 4]);
        assert_eq!(chunk(&mut w, 4, 160, 8, 1, &p4), [0xC4, 1, 2, 3, 4]);
        // length changes: fmt 1
        assert_eq!(
            chunk(&mut w, 4, 180, 8, 1, &p2),
            [0x44, 0, 0, 20, 0, 0, 2, 8, 9, 9]
        );
        // type changes: fmt 1 with delta 0
        assert_eq!(
            chunk(&mut w, 4, 180, 9, 1, &p2),
            [0x44, 0, 0, 0, 0, 0, 2, 9, 9, 9]
        );
        // delta changes only: fmt 2
        assert_eq!(chunk(&mut w, 4, 185, 9, 1, &p2), [0x84, 0, 0, 5, 9, 9]);
        // stream id changes: fmt 0
        assert_eq!(
            chunk(&mut w, 4, 190, 9, 2, &p2),
            [0x04, 0, 0, 190, 0, 0, 2, 9, 2, 0, 0, 0, 9, 9]
        );
        // timestamp goes backwards: fmt 0
        assert_eq!(
            chunk(&mut w, 4, 150, 9, 2, &p2),
            [0x04, 0, 0, 150, 0, 0, 2, 9, 2, 0, 0, 0, 9, 9]
        );
        // another chunk stream has its own state: fmt 0
        assert_eq!(
            chunk(&mut w, 5, 150, 9, 2, &p2),
            [0x05, 0, 0, 150, 0, 0, 2, 9, 2, 0, 0, 0, 9, 9]
        );

        // The reader reconstructs the same messages.
        let mut w = ChunkWriter::new();
        let mut r = ChunkReader::new();
        let seq: [(u32, u32, u8, u32, &[u8]); 9] = [
            (4, 100, 8, 1, &p4),
            (4, 120, 8, 1, &p4),
            (4, 140, 8, 1, &p4),
            (4, 160, 8, 1, &p4),
            (4, 180, 8, 1, &p2),
            (4, 180, 9, 1, &p2),
            (4, 185, 9, 1, &p2),
            (4, 190, 9, 2, &p2),
            (4, 150, 9, 2, &p2),
        ];
        for (csid, ts, ty, msid, p) in seq {
            let got = read_all(&mut r, &chunk(&mut w, csid, ts, ty, msid, p));
            assert_eq!(got, [msg(ts, ty, msid, p)]);
        }
    }

    #[test]
    fn continuation_chunks_exact_bytes() {
        let mut w = ChunkWriter::new();
        let payload: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let bytes = chunk(&mut w, 6, 0, 9, 1, &payload);
        let mut expected = vec![0x06, 0, 0, 0, 0, 0x01, 0x2C, 9, 1, 0, 0, 0];
        expected.extend_from_slice(&payload[..128]);
        expected.push(0xC6);
        expected.extend_from_slice(&payload[128..256]);
        expected.push(0xC6);
        expected.extend_from_slice(&payload[256..]);
        assert_eq!(bytes, expected);
        // exact multiple of the chunk size: no empty trailing chunk
        let bytes = chunk(&mut w, 7, 0, 9, 1, &payload[..256]);
        assert_eq!(bytes.len(), 12 + 128 + 1 + 128);
    }

    #[test]
    fn extended_timestamp_fmt0_repeated_on_continuations_exact_bytes() {
        let mut w = ChunkWriter::new();
        let payload = [7u8; 200];
        let bytes = chunk(&mut w, 3, 0x0100_0000, 9, 1, &payload);
        let mut expected = vec![
            0x03, 0xFF, 0xFF, 0xFF, 0, 0, 200, 9, 1, 0, 0, 0, 0x01, 0x00, 0x00, 0x00,
        ];
        expected.extend_from_slice(&payload[..128]);
        expected.extend_from_slice(&[0xC3, 0x01, 0x00, 0x00, 0x00]);
        expected.extend_from_slice(&payload[128..]);
        assert_eq!(bytes, expected);
        let mut r = ChunkReader::new();
        assert_eq!(read_all(&mut r, &bytes), [msg(0x0100_0000, 9, 1, &payload)]);
    }

    #[test]
    fn extended_delta_on_fmt2_and_fmt3_new_messages_exact_bytes() {
        let mut w = ChunkWriter::new();
        let mut r = ChunkReader::new();
        let p = [1u8, 2];
        let b0 = chunk(&mut w, 3, 0, 9, 1, &p);
        assert_eq!(b0, [0x03, 0, 0, 0, 0, 0, 2, 9, 1, 0, 0, 0, 1, 2]);
        // delta 0x01000000 → fmt 2 with extended delta
        let b1 = chunk(&mut w, 3, 0x0100_0000, 9, 1, &p);
        assert_eq!(b1, [0x83, 0xFF, 0xFF, 0xFF, 1, 0, 0, 0, 1, 2]);
        // same delta → fmt 3 carrying the extended delta
        let b2 = chunk(&mut w, 3, 0x0200_0000, 9, 1, &p);
        assert_eq!(b2, [0xC3, 1, 0, 0, 0, 1, 2]);
        // a small delta again → fmt 2 without extension
        let b3 = chunk(&mut w, 3, 0x0200_0010, 9, 1, &p);
        assert_eq!(b3, [0x83, 0, 0, 0x10, 1, 2]);
        // fmt 3 after it has no extension
        let b4 = chunk(&mut w, 3, 0x0200_0020, 9, 1, &p);
        assert_eq!(b4, [0xC3, 1, 2]);
        let all = [b0, b1, b2, b3, b4].concat();
        let got = read_all(&mut r, &all);
        let ts: Vec<u32> = got.iter().map(|m| m.timestamp).collect();
        assert_eq!(ts, [0, 0x0100_0000, 0x0200_0000, 0x0200_0010, 0x0200_0020]);

        // a fmt 1 header with an extended delta, continued over several chunks
        let mut w = ChunkWriter::new();
        let big = [5u8; 130];
        let a = chunk(&mut w, 3, 10, 9, 1, &p);
        let b = chunk(&mut w, 3, 10 + 0x00FF_FFFF, 9, 1, &big);
        let mut expected = vec![0x43, 0xFF, 0xFF, 0xFF, 0, 0, 130, 9, 0x00, 0xFF, 0xFF, 0xFF];
        expected.extend_from_slice(&big[..128]);
        expected.extend_from_slice(&[0xC3, 0x00, 0xFF, 0xFF, 0xFF, 5, 5]);
        assert_eq!(b, expected);
        let mut r = ChunkReader::new();
        let got = read_all(&mut r, &[a, b].concat());
        assert_eq!(got[1], msg(10 + 0x00FF_FFFF, 9, 1, &big));
    }

    #[test]
    fn timestamp_boundaries() {
        for (ts, ext) in [
            (0x00FF_FFFEu32, false),
            (0x00FF_FFFF, true),
            (0x0100_0000, true),
            (u32::MAX, true),
        ] {
            let mut w = ChunkWriter::new();
            let bytes = chunk(&mut w, 3, ts, 9, 1, &[1]);
            if ext {
                assert_eq!(&bytes[1..4], &[0xFF, 0xFF, 0xFF]);
                assert_eq!(&bytes[12..16], &ts.to_be_bytes());
                assert_eq!(bytes.len(), 17);
            } else {
                assert_eq!(&bytes[1..4], &ts.to_be_bytes()[1..]);
                assert_eq!(bytes.len(), 13);
            }
            let mut r = ChunkReader::new();
            assert_eq!(read_all(&mut r, &bytes), [msg(ts, 9, 1, &[1])]);
        }
    }

    #[test]
    fn timestamps_wrap_past_2_pow_32() {
        let mut w = ChunkWriter::new();
        let mut r = ChunkReader::new();
        let a = chunk(&mut w, 3, 0xFFFF_FFF0, 9, 1, &[1]);
        let b = chunk(&mut w, 3, 0x10, 9, 1, &[1]);
        // forward by 0x20 across the wrap: a fmt 2 delta, not a fmt 0
        assert_eq!(b, [0x83, 0, 0, 0x20, 1]);
        let got = read_all(&mut r, &[a, b].concat());
        assert_eq!(got[0].timestamp, 0xFFFF_FFF0);
        assert_eq!(got[1].timestamp, 0x10);
        // exactly half the circle back counts as backwards → fmt 0
        let c = chunk(&mut w, 3, 0x8000_0010, 9, 1, &[1]);
        assert_eq!(c[0], 0x03);
        assert_eq!(read_all(&mut r, &c)[0].timestamp, 0x8000_0010);
    }

    #[test]
    fn multi_part_payloads_match_single_part() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let parts: [&[u8]; 6] = [
            &data[..5],
            &[],
            &data[5..300],
            &data[300..301],
            &[],
            &data[301..],
        ];
        for cs in [1, 3, 128, 300, 5000] {
            let mut w1 = ChunkWriter::new();
            let mut w2 = ChunkWriter::new();
            w1.set_chunk_size(cs);
            w2.set_chunk_size(cs);
            let mut b1 = ChunkBatch::new();
            let mut b2 = ChunkBatch::new();
            w1.write_message(4, 0, 9, 1, &parts, &mut b1).unwrap();
            w2.write_message(4, 0, 9, 1, &[&data], &mut b2).unwrap();
            assert_eq!(b1.to_vec(), b2.to_vec(), "chunk size {cs}");
            assert_eq!(b1.remaining(), b2.remaining());
        }
    }

    #[test]
    fn zero_length_message_is_one_header_only_chunk() {
        let mut w = ChunkWriter::new();
        let mut b = ChunkBatch::new();
        w.write_message(3, 0, 9, 1, &[], &mut b).unwrap();
        w.write_message(3, 0, 9, 1, &[&[], &[]], &mut b).unwrap();
        let bytes = b.to_vec();
        assert_eq!(
            bytes,
            [0x03, 0, 0, 0, 0, 0, 0, 9, 1, 0, 0, 0, 0x83, 0, 0, 0]
        );
        let mut r = ChunkReader::new();
        assert_eq!(
            read_all(&mut r, &bytes),
            [msg(0, 9, 1, &[]), msg(0, 9, 1, &[])]
        );
    }

    #[test]
    fn writer_rejects_messages_over_24_bits() {
        let big = vec![0u8; 0x0100_0000];
        let mut w = ChunkWriter::new();
        let mut b = ChunkBatch::new();
        let e = w.write_message(3, 0, 9, 1, &[&big], &mut b).unwrap_err();
        assert_eq!(
            proto(e),
            ProtocolError::MessageTooLarge {
                size: 0x0100_0000,
                max: 0xFF_FFFF
            }
        );
        assert!(b.is_empty());
        // 0xFFFFFF exactly is fine
        w.set_chunk_size(MAX_CHUNK_SIZE);
        w.write_message(3, 0, 9, 1, &[&big[1..]], &mut b).unwrap();
        assert_eq!(b.remaining(), 12 + 0xFF_FFFF);
    }

    #[test]
    fn set_chunk_size_clamps() {
        let mut w = ChunkWriter::new();
        w.set_chunk_size(0);
        assert_eq!(w.chunk_size(), 1);
        w.set_chunk_size(u32::MAX);
        assert_eq!(w.chunk_size(), MAX_CHUNK_SIZE);
        w.set_chunk_size(4096);
        assert_eq!(w.chunk_size(), 4096);
    }

    #[test]
    fn reader_fmt3_after_fmt0_adds_the_fmt0_timestamp() {
        // RTMP 1.0 §5.3.1.2.4: a type 3 chunk right after type 0 uses its timestamp as delta.
        let mut r = ChunkReader::new();
        let bytes = [
            0x03, 0, 0, 40, 0, 0, 1, 8, 1, 0, 0, 0, 0xAA, // ts 40
            0xC3, 0xBB, // ts 80
            0x83, 0, 0, 5, 0xCC, // ts 85
            0xC3, 0xDD, // ts 90
        ];
        let ts: Vec<u32> = read_all(&mut r, &bytes)
            .iter()
            .map(|m| m.timestamp)
            .collect();
        assert_eq!(ts, [40, 80, 85, 90]);
    }

    #[test]
    fn reader_tolerates_missing_extended_timestamp_on_continuations() {
        let payload = [0x42u8; 200];
        // With the repeated extended timestamp (spec, FFmpeg, nginx-rtmp).
        let mut with = vec![
            0x03, 0xFF, 0xFF, 0xFF, 0, 0, 200, 9, 1, 0, 0, 0, 0x01, 0x02, 0x03, 0x04,
        ];
        with.extend_from_slice(&payload[..128]);
        with.extend_from_slice(&[0xC3, 0x01, 0x02, 0x03, 0x04]);
        with.extend_from_slice(&payload[128..]);
        // Without it (some servers).
        let mut without = with[..16 + 128].to_vec();
        without.push(0xC3);
        without.extend_from_slice(&payload[128..]);
        for bytes in [with, without] {
            let mut r = ChunkReader::new();
            assert_eq!(read_all(&mut r, &bytes), [msg(0x0102_0304, 9, 1, &payload)]);
            // the same, one byte at a time
            let mut r = ChunkReader::new();
            let mut got = Vec::new();
            for b in &bytes {
                r.push(std::slice::from_ref(b));
                while let Some(m) = r.next_message().unwrap() {
                    got.push(m);
                }
            }
            assert_eq!(got, [msg(0x0102_0304, 9, 1, &payload)]);
        }
        // Without it, and the continuation's payload starts like the extended timestamp but
        // differs in the third byte: decided as soon as the third byte is there.
        let mut bytes = vec![
            0x03, 0xFF, 0xFF, 0xFF, 0, 0, 131, 9, 1, 0, 0, 0, 0x01, 0x02, 0x03, 0x04,
        ];
        bytes.extend_from_slice(&[0u8; 128]);
        bytes.extend_from_slice(&[0xC3, 0x01, 0x02, 0x09]);
        let mut r = ChunkReader::new();
        r.push(&bytes[..bytes.len() - 1]);
        assert_eq!(r.next_message().unwrap(), None);
        r.push(&bytes[bytes.len() - 1..]);
        let m = r.next_message().unwrap().unwrap();
        assert_eq!(&m.payload[128..], &[0x01, 0x02, 0x09]);
    }

    #[test]
    fn set_chunk_size_takes_effect_for_the_next_chunk_in_the_same_buffer() {
        let mut w = ChunkWriter::new();
        let mut b = ChunkBatch::new();
        let payload: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let scs = 500u32.to_be_bytes();
        w.write_message(2, 0, msg_type::SET_CHUNK_SIZE, 0, &[&scs], &mut b)
            .unwrap();
        w.set_chunk_size(500);
        w.write_message(3, 0, 9, 1, &[&payload], &mut b).unwrap();
        let bytes = b.to_vec();
        assert_eq!(bytes.len(), 16 + 12 + 500 + 1 + 500);
        let mut r = ChunkReader::new();
        r.push(&bytes);
        let m = r.next_message().unwrap().unwrap();
        assert_eq!(m.msg_type_id, msg_type::SET_CHUNK_SIZE);
        assert_eq!(m.payload, scs);
        assert_eq!(r.chunk_size(), 500);
        assert_eq!(r.next_message().unwrap().unwrap().payload, payload);
        assert_eq!(r.next_message().unwrap(), None);
        assert_eq!(r.buffered_len(), 0);
    }

    #[test]
    fn abort_drops_the_partial_message() {
        let mut w = ChunkWriter::new();
        let payload = [3u8; 300];
        let full = chunk(&mut w, 5, 0, 9, 1, &payload);
        let mut bytes = full[..12 + 128].to_vec(); // first chunk only
        // Abort csid 5 on csid 2
        bytes.extend_from_slice(&[0x02, 0, 0, 0, 0, 0, 4, 2, 0, 0, 0, 0, 0, 0, 0, 5]);
        // a new message on csid 5 with fmt 3 (same header values) then completes normally
        bytes.push(0xC5);
        bytes.extend_from_slice(&payload[..128]);
        bytes.push(0xC5);
        bytes.extend_from_slice(&payload[..128]);
        bytes.push(0xC5);
        bytes.extend_from_slice(&payload[..44]);
        let mut r = ChunkReader::new();
        r.push(&bytes);
        let abort = r.next_message().unwrap().unwrap();
        assert_eq!(abort.msg_type_id, msg_type::ABORT);
        assert_eq!(r.partial_len(), 0);
        let m = r.next_message().unwrap().unwrap();
        assert_eq!(m.payload, payload);
        // fmt 3 new message after fmt 0: delta is the fmt 0 timestamp (0)
        assert_eq!(m.timestamp, 0);
        assert_eq!(r.next_message().unwrap(), None);
    }

    #[test]
    fn limit_message_too_large() {
        let mut r = ChunkReader::new();
        let len = MAX_MESSAGE_SIZE + 1;
        let l = len.to_be_bytes();
        r.push(&[0x03, 0, 0, 0, l[1], l[2], l[3], 9, 1, 0, 0, 0]);
        assert_eq!(
            proto(r.next_message().unwrap_err()),
            ProtocolError::MessageTooLarge {
                size: len,
                max: MAX_MESSAGE_SIZE
            }
        );
        // sticky
        assert!(r.next_message().is_err());
        // exactly the limit is accepted (and not preallocated)
        let mut r = ChunkReader::new();
        let l = MAX_MESSAGE_SIZE.to_be_bytes();
        r.push(&[0x03, 0, 0, 0, l[1], l[2], l[3], 9, 1, 0, 0, 0, 1, 2, 3]);
        assert_eq!(r.next_message().unwrap(), None);
        assert_eq!(r.partial_len(), 3);
        assert!(r.streams[0].payload.capacity() < 4096);
        // fmt 1 too
        let mut r = ChunkReader::new();
        let l = len.to_be_bytes();
        r.push(&[0x03, 0, 0, 0, 0, 0, 0, 9, 1, 0, 0, 0]);
        r.push(&[0x43, 0, 0, 0, l[1], l[2], l[3], 9]);
        assert_eq!(r.next_message().unwrap(), Some(msg(0, 9, 1, &[])));
        assert!(matches!(
            proto(r.next_message().unwrap_err()),
            ProtocolError::MessageTooLarge { .. }
        ));
    }

    #[test]
    fn limit_too_many_chunk_streams() {
        let mut r = ChunkReader::new();
        let mut w = ChunkWriter::new();
        for csid in 2..2 + MAX_CHUNK_STREAMS as u32 {
            let got = read_all(&mut r, &chunk(&mut w, csid, 0, 9, 1, &[]));
            assert_eq!(got.len(), 1);
        }
        r.push(&chunk(&mut w, 1000, 0, 9, 1, &[]));
        assert_eq!(
            proto(r.next_message().unwrap_err()),
            ProtocolError::TooManyChunkStreams {
                max: MAX_CHUNK_STREAMS
            }
        );
    }

    #[test]
    fn limit_too_much_buffered() {
        let mut r = ChunkReader::new();
        let big = 3 * 1024 * 1024u32;
        r.push(&set_chunk_size_msg(big));
        assert!(r.next_message().unwrap().is_some());
        let piece = vec![0u8; big as usize];
        let l = MAX_MESSAGE_SIZE.to_be_bytes();
        let mut err = None;
        for csid in 3..6u8 {
            r.push(&[csid, 0, 0, 0, l[1], l[2], l[3], 9, 1, 0, 0, 0]);
            r.push(&piece);
            match r.next_message() {
                Ok(m) => assert_eq!(m, None),
                Err(e) => {
                    err = Some(proto(e));
                    break;
                }
            }
            assert!(r.partial_len() <= MAX_BUFFERED_BYTES);
        }
        assert_eq!(
            err,
            Some(ProtocolError::TooMuchBuffered {
                max: MAX_BUFFERED_BYTES
            })
        );
        assert!(r.partial_len() <= MAX_BUFFERED_BYTES);
    }

    #[test]
    fn invalid_chunk_sizes() {
        for size in [0u32, 0x8000_0000, u32::MAX] {
            let mut r = ChunkReader::new();
            r.push(&set_chunk_size_msg(size));
            assert_eq!(
                proto(r.next_message().unwrap_err()),
                ProtocolError::InvalidChunkSize { size }
            );
        }
        let mut r = ChunkReader::new();
        r.push(&set_chunk_size_msg(MAX_CHUNK_SIZE));
        assert!(r.next_message().unwrap().is_some());
        assert_eq!(r.chunk_size(), MAX_CHUNK_SIZE);
        // a SetChunkSize body shorter than 4 bytes
        let mut r = ChunkReader::new();
        r.push(&[0x02, 0, 0, 0, 0, 0, 2, 1, 0, 0, 0, 0, 0, 1]);
        assert!(matches!(
            proto(r.next_message().unwrap_err()),
            ProtocolError::MalformedMessage { .. }
        ));
    }

    #[test]
    fn missing_chunk_header() {
        for first in [
            &[0x43u8, 0, 0, 0, 0, 0, 1, 9][..],
            &[0x83, 0, 0, 0],
            &[0xC3],
            &[0xC0, 10],
            &[0x41, 0, 1, 0, 0, 0, 0, 0, 1, 9],
        ] {
            let mut r = ChunkReader::new();
            r.push(first);
            let csid = match first[0] & 0x3F {
                0 => 64 + u32::from(first[1]),
                1 => 64 + u32::from(first[1]) + 256 * u32::from(first[2]),
                c => u32::from(c),
            };
            assert_eq!(
                proto(r.next_message().unwrap_err()),
                ProtocolError::MissingChunkHeader { csid }
            );
        }
    }

    #[test]
    fn interleaved_chunk_streams() {
        let a: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let b: Vec<u8> = (0..200u32).map(|i| (i * 3) as u8).collect();
        let mut w = ChunkWriter::new();
        let ca = chunk(&mut w, 4, 10, 9, 1, &a);
        let cb = chunk(&mut w, 5, 20, 8, 1, &b);
        // a: [12 + 128][1 + 128][1 + 44], b: [12 + 128][1 + 72]
        let (a1, rest) = ca.split_at(140);
        let (a2, a3) = rest.split_at(129);
        let (b1, b2) = cb.split_at(140);
        let mut r = ChunkReader::new();
        r.push(&[a1, b1, a2].concat());
        assert_eq!(r.next_message().unwrap(), None);
        assert_eq!(r.partial_len(), 128 + 128 + 128);
        r.push(b2);
        assert_eq!(r.next_message().unwrap(), Some(msg(20, 8, 1, &b)));
        assert_eq!(r.partial_len(), 256);
        r.push(a3);
        assert_eq!(r.next_message().unwrap(), Some(msg(10, 9, 1, &a)));
        assert_eq!(r.partial_len(), 0);
        // a new header in the middle of a message replaces it
        let mut r = ChunkReader::new();
        r.push(a1);
        r.push(&chunk(&mut ChunkWriter::new(), 4, 99, 9, 1, b"xyz"));
        assert_eq!(r.next_message().unwrap(), Some(msg(99, 9, 1, b"xyz")));
        assert_eq!(r.partial_len(), 0);
    }

    #[test]
    fn batch_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<ChunkBatch<'static>>();
        check::<ChunkWriter>();
        check::<ChunkReader>();
    }

    #[test]
    fn push_compacts_the_consumed_prefix() {
        let mut w = ChunkWriter::new();
        let mut r = ChunkReader::new();
        let bytes = chunk(&mut w, 3, 0, 9, 1, &[1u8; 100]);
        for _ in 0..1000 {
            r.push(&bytes);
            assert!(r.next_message().unwrap().is_some());
        }
        assert!(r.buf.capacity() < 4 * bytes.len());
        // a header split across pushes is kept
        r.push(&bytes[..5]);
        assert_eq!(r.next_message().unwrap(), None);
        assert_eq!(r.buffered_len(), 5);
        r.push(&bytes[5..]);
        assert!(r.next_message().unwrap().is_some());
    }

    /// A random message sequence over several chunk streams, chunk size changes included.
    fn random_session(rng: &mut Rng, count: usize) -> (Vec<Message>, Vec<u8>) {
        let chunk_sizes = [1u32, 128, 4096, 65536, MAX_CHUNK_SIZE, 7, 300];
        let csids = [3u32, 4, 5, 63, 64, 319, 320, 65599];
        let mut expected = Vec::new();
        // (csid, ts, delta, len, type, msid) per chunk stream
        let mut last: Vec<(u32, u32, u32, usize, u8, u32)> =
            csids.iter().map(|&c| (c, 0, 0, 0, 9, 1)).collect();
        let mut bodies: Vec<(u32, Message)> = Vec::new();
        for _ in 0..count {
            if rng.below(15) == 0 {
                let size = chunk_sizes[rng.below(chunk_sizes.len())];
                bodies.push((2, msg(0, msg_type::SET_CHUNK_SIZE, 0, &size.to_be_bytes())));
                continue;
            }
            let i = rng.below(csids.len());
            let (csid, prev_ts, prev_delta, prev_len, prev_ty, prev_msid) = last[i];
            let ts = match rng.below(12) {
                0..=3 => prev_ts.wrapping_add(prev_delta),
                4..=6 => prev_ts.wrapping_add(rng.below(100) as u32),
                7 => prev_ts.wrapping_add(0x0100_0000 + rng.below(5) as u32),
                8 => [0x00FF_FFFE, 0x00FF_FFFF, 0x0100_0000][rng.below(3)],
                9 => 0xFFFF_FFFF - rng.below(50) as u32,
                10 => prev_ts.wrapping_sub(rng.below(1000) as u32),
                _ => rng.next() as u32,
            };
            let len = match rng.below(10) {
                0..=3 => prev_len,
                4 => 0,
                5 => rng.below(70_000),
                _ => rng.below(3000),
            };
            let ty = if rng.below(4) == 0 {
                8 + rng.below(2) as u8
            } else {
                prev_ty
            };
            let msid = if rng.below(10) == 0 {
                rng.below(3) as u32
            } else {
                prev_msid
            };
            last[i] = (csid, ts, ts.wrapping_sub(prev_ts), len, ty, msid);
            bodies.push((csid, Message::new(ty, ts, msid, rng.bytes(len))));
        }
        let mut w = ChunkWriter::new();
        let mut batch = ChunkBatch::new();
        for (csid, m) in &bodies {
            // split the payload into a few parts
            let p = &m.payload;
            let a = rng.below(p.len() + 1);
            let b = a + rng.below(p.len() - a + 1);
            w.write_message(
                *csid,
                m.timestamp,
                m.msg_type_id,
                m.msg_stream_id,
                &[&p[..a], &p[a..b], &p[b..]],
                &mut batch,
            )
            .unwrap();
            if m.msg_type_id == msg_type::SET_CHUNK_SIZE {
                w.set_chunk_size(u32::from_be_bytes(m.payload[..4].try_into().unwrap()));
            }
            expected.push(m.clone());
        }
        (expected, batch.to_vec())
    }

    fn feed_in_pieces(bytes: &[u8], mut piece: impl FnMut() -> usize) -> Vec<Message> {
        let mut r = ChunkReader::new();
        let mut got = Vec::new();
        let mut off = 0;
        while off < bytes.len() {
            let n = piece().clamp(1, bytes.len() - off);
            r.push(&bytes[off..off + n]);
            off += n;
            while let Some(m) = r.next_message().unwrap() {
                got.push(m);
            }
            assert!(r.buffered_len() < MAX_CHUNK_HEADER_LEN);
        }
        assert_eq!(r.buffered_len(), 0);
        assert_eq!(r.partial_len(), 0);
        got
    }

    #[test]
    fn round_trip_random_split_points() {
        for seed in 1..=6u64 {
            let mut rng = Rng::new(seed * 0x9E37_79B9);
            let (expected, bytes) = random_session(&mut rng, 300);
            let whole = feed_in_pieces(&bytes, || usize::MAX);
            assert_eq!(whole, expected, "seed {seed}, all at once");
            let mut split = Rng::new(seed);
            let got = feed_in_pieces(&bytes, || match split.below(4) {
                0 => 1 + split.below(4),
                1 => 1 + split.below(200),
                _ => 1 + split.below(20_000),
            });
            assert_eq!(got, expected, "seed {seed}, random splits");
        }
        // byte by byte
        let mut rng = Rng::new(77);
        let (expected, bytes) = random_session(&mut rng, 120);
        assert_eq!(feed_in_pieces(&bytes, || 1), expected);
    }

    /// A writer that accepts a few bytes per call and sometimes fails.
    struct Choppy {
        out: Vec<u8>,
        rng: Rng,
        vectored: bool,
        max_slices_seen: usize,
    }
    impl Write for Choppy {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            self.max_slices_seen = self.max_slices_seen.max(bufs.len());
            match self.rng.below(8) {
                0 => return Err(io::ErrorKind::WouldBlock.into()),
                1 => return Err(io::ErrorKind::Interrupted.into()),
                _ => {}
            }
            let mut limit = 1 + self.rng.below(40);
            let mut n = 0;
            for b in bufs {
                let k = b.len().min(limit);
                self.out.extend_from_slice(&b[..k]);
                n += k;
                limit -= k;
                if limit == 0 || !self.vectored {
                    break;
                }
            }
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn write_to_resumes_after_partial_writes_and_would_block() {
        for vectored in [true, false] {
            let mut rng = Rng::new(5);
            let payloads: Vec<Vec<u8>> = (0..20).map(|i| rng.bytes(i * 97)).collect();
            let mut w = ChunkWriter::new();
            w.set_chunk_size(50);
            let mut batch = ChunkBatch::new();
            batch.push_owned(&[0xEE; 3]);
            for (i, p) in payloads.iter().enumerate() {
                let half = p.len() / 2;
                w.write_message(
                    3 + i as u32 % 3,
                    i as u32 * 40,
                    9,
                    1,
                    &[&p[..half], &p[half..]],
                    &mut batch,
                )
                .unwrap();
                if i == 7 {
                    batch.push_owned(&[1, 2, 3, 4]);
                }
            }
            let expected = batch.to_vec();
            assert_eq!(expected.len(), batch.remaining());
            let mut sink = Choppy {
                out: Vec::new(),
                rng: Rng::new(11),
                vectored,
                max_slices_seen: 0,
            };
            let mut would_block = 0;
            loop {
                match batch.write_to(&mut sink) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => would_block += 1,
                    Err(e) => panic!("{e}"),
                }
                // what is left is always the tail of the expected bytes
                assert_eq!(batch.to_vec(), expected[sink.out.len()..]);
            }
            assert!(would_block > 0);
            assert_eq!(sink.out, expected);
            assert!(batch.is_empty());
            assert_eq!(batch.to_vec(), Vec::<u8>::new());
            assert!(sink.max_slices_seen > 1 || !vectored);
        }
    }

    #[test]
    fn write_to_caps_slices_per_call_and_reports_write_zero() {
        struct Counting(Vec<u8>, usize);
        impl Write for Counting {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.0.extend_from_slice(buf);
                Ok(buf.len())
            }
            fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
                assert!(bufs.len() <= MAX_IOV);
                self.1 += 1;
                let mut n = 0;
                for b in bufs {
                    self.0.extend_from_slice(b);
                    n += b.len();
                }
                Ok(n)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let payload = vec![7u8; 3000];
        let mut w = ChunkWriter::new();
        w.set_chunk_size(1);
        let mut batch = ChunkBatch::new();
        w.write_message(3, 0, 9, 1, &[&payload], &mut batch)
            .unwrap();
        let expected = batch.to_vec();
        let mut c = Counting(Vec::new(), 0);
        batch.write_to(&mut c).unwrap();
        assert_eq!(c.0, expected);
        assert_eq!(c.1, 6000usize.div_ceil(MAX_IOV));

        struct Zero;
        impl Write for Zero {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Ok(0)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut batch = ChunkBatch::new();
        batch.push_owned(b"abc");
        let e = batch.write_to(&mut Zero).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WriteZero);
        assert_eq!(batch.remaining(), 3);
        // nothing to write: no call at all
        let mut empty = ChunkBatch::new();
        empty.write_to(&mut Zero).unwrap();
    }

    #[test]
    fn io_slices_and_advance_for_external_writers() {
        let payload: Vec<u8> = (0..200u32).map(|i| i as u8).collect();
        let mut w = ChunkWriter::new();
        let mut batch = ChunkBatch::new();
        batch.push_owned(b"xy");
        batch.push_owned(b"z");
        w.write_message(3, 0, 9, 1, &[&payload], &mut batch)
            .unwrap();
        let expected = batch.to_vec();
        // two owned pushes and the first header merge into one segment
        assert_eq!(batch.io_slices().len(), 4);
        let mut written = 0;
        for step in [1usize, 2, 13, 100, 40, 1000] {
            let joined: Vec<u8> = batch.io_slices().iter().flat_map(|s| s.to_vec()).collect();
            assert_eq!(joined, expected[written..]);
            assert_eq!(batch.remaining(), expected.len() - written);
            batch.advance(step);
            written = (written + step).min(expected.len());
        }
        assert!(batch.is_empty());
        assert!(batch.io_slices().is_empty());
    }

    #[test]
    fn recycle_and_clear_keep_capacity() {
        let payload = vec![1u8; 100_000];
        let mut w = ChunkWriter::new();
        w.set_chunk_size(4096);
        let mut batch = ChunkBatch::new();
        w.write_message(6, 0, 9, 1, &[b"12345", &payload], &mut batch)
            .unwrap();
        batch.write_to(&mut io::sink()).unwrap();
        let caps = (
            batch.buf.capacity(),
            batch.segs.capacity(),
            batch.iov.capacity(),
        );
        assert!(caps.0 > 0 && caps.1 > 0 && caps.2 > 0);
        let mut recycled: ChunkBatch<'static> = batch.recycle();
        assert_eq!(
            (
                recycled.buf.capacity(),
                recycled.segs.capacity(),
                recycled.iov.capacity()
            ),
            caps
        );
        recycled.push_owned(b"abc");
        recycled.clear();
        assert!(recycled.is_empty());
        assert_eq!(recycled.buf.capacity(), caps.0);
        assert_eq!(recycled.segs.capacity(), caps.1);
    }

    /// Allocation proof: after one warm-up message, chunking and writing another message of the
    /// same size does not grow any of the batch's vectors, so the per-message work is allocation
    /// free (the writer's per-stream state is a fixed small vector, untouched after the first
    /// message on a chunk stream). Payload bytes are never copied: the batch only stores
    /// sub-slices of the caller's payload, as checked through `io_slices` pointers.
    #[test]
    fn no_allocation_after_warm_up() {
        let a = vec![1u8; 100 * 1024];
        let b = vec![2u8; 100 * 1024];
        let mut w = ChunkWriter::new();
        w.set_chunk_size(4096);
        let mut batch = ChunkBatch::new();
        w.write_message(6, 0, 9, 1, &[&a[..5], &a[5..]], &mut batch)
            .unwrap();
        batch.write_to(&mut io::sink()).unwrap();
        let mut batch = batch.recycle();
        let caps = (
            batch.buf.capacity(),
            batch.segs.capacity(),
            batch.iov.capacity(),
        );
        let streams = w.streams.capacity();
        for ts in 1..5 {
            w.write_message(6, ts * 33, 9, 1, &[&b[..5], &b[5..]], &mut batch)
                .unwrap();
            assert_eq!(
                (
                    batch.buf.capacity(),
                    batch.segs.capacity(),
                    batch.iov.capacity()
                ),
                caps
            );
            // every payload byte is borrowed from `b`, none copied
            let in_b = batch
                .io_slices()
                .iter()
                .filter(|s| b.as_ptr_range().contains(&s.as_ptr()))
                .map(|s| s.len())
                .sum::<usize>();
            assert_eq!(in_b, b.len());
            batch.write_to(&mut io::sink()).unwrap();
            assert_eq!(
                (
                    batch.buf.capacity(),
                    batch.segs.capacity(),
                    batch.iov.capacity()
                ),
                caps
            );
        }
        assert_eq!(w.streams.capacity(), streams);
    }

    #[test]
    fn hostile_input_never_panics_and_stays_bounded() {
        let mut rng = Rng::new(0xDEAD_BEEF);
        let (_, valid) = random_session(&mut rng, 60);
        for iter in 0..10_000 {
            let mut data = match rng.below(4) {
                0 => {
                    let n = rng.below(400);
                    rng.bytes(n)
                }
                _ => {
                    let start = rng.below(valid.len());
                    let len = rng.below(4000).min(valid.len() - start);
                    let mut d = valid[start..start + len].to_vec();
                    if rng.below(3) == 0 {
                        d = [&valid[..rng.below(200).min(valid.len())], &d[..]].concat();
                    }
                    d
                }
            };
            for _ in 0..rng.below(8) {
                if data.is_empty() {
                    break;
                }
                let at = rng.below(data.len());
                match rng.below(5) {
                    0 => data[at] ^= 1 << rng.below(8),
                    1 => data[at] = rng.next() as u8,
                    2 => data.truncate(at),
                    3 => {
                        let end = (at + rng.below(64)).min(data.len());
                        let dup = data[at..end].to_vec();
                        data.splice(at..at, dup);
                    }
                    _ => {
                        let n = 1 + rng.below(8);
                        data.splice(at..at, rng.bytes(n)).for_each(drop)
                    }
                }
            }
            let mut r = ChunkReader::new();
            let mut off = 0;
            'feed: while off < data.len() {
                let n = (1 + rng.below(if iter % 2 == 0 { 8 } else { 700 })).min(data.len() - off);
                r.push(&data[off..off + n]);
                off += n;
                loop {
                    match r.next_message() {
                        Ok(Some(m)) => assert!(m.payload.len() <= MAX_MESSAGE_SIZE as usize),
                        Ok(None) => {
                            assert!(r.buffered_len() < MAX_CHUNK_HEADER_LEN);
                            break;
                        }
                        Err(_) => break 'feed,
                    }
                    assert!(r.partial_len() <= MAX_BUFFERED_BYTES);
                }
                assert!(r.partial_len() <= MAX_BUFFERED_BYTES);
                assert!(r.partial_len() <= data.len());
            }
        }
    }
}
