//! A media frame on its way from a streaming thread to the session thread.

use std::ops::Range;
use std::sync::Arc;

use super::queue::{Queued, Track};

/// The bytes of a frame: either a window into the mapped input buffer (zero-copy) or a
/// converted copy.
#[derive(Debug)]
pub enum FrameData {
    /// Part of a mapped input buffer (AVC access units, raw AAC, the frames of an ADTS buffer).
    Mapped {
        /// The mapping, shared by the frames cut from one buffer.
        map: Arc<gst::MappedBuffer<gst::buffer::Readable>>,
        /// The frame's bytes within the mapping.
        range: Range<usize>,
    },
    /// Bytes produced by conversion (Annex-B → AVC).
    Owned(Vec<u8>),
}

impl FrameData {
    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        match self {
            FrameData::Mapped { map, range } => map.as_slice().get(range.clone()).unwrap_or(&[]),
            FrameData::Owned(v) => v,
        }
    }
}

/// One RTMP media message to be.
#[derive(Debug)]
pub struct Frame {
    /// Video or audio.
    pub track: Track,
    /// Decode time, milliseconds of running time.
    pub dts_ms: i64,
    /// Composition time offset (PTS − DTS) in ms, signed; 0 for audio.
    pub cts_ms: i64,
    /// Seekable (always true for audio).
    pub keyframe: bool,
    /// Nothing references it (may be dropped under congestion).
    pub disposable: bool,
    /// The sequence header (avcC / ASC) that decodes it; the session thread sends it again
    /// whenever a frame carries a different one (and after every (re)connect).
    pub config: Arc<[u8]>,
    /// The frame body without FLV tag header.
    pub data: FrameData,
}

impl Queued for Frame {
    fn track(&self) -> Track {
        self.track
    }
    fn dts_ms(&self) -> i64 {
        self.dts_ms
    }
    fn size(&self) -> usize {
        self.data.as_slice().len()
    }
    fn keyframe(&self) -> bool {
        self.keyframe
    }
    fn disposable(&self) -> bool {
        self.disposable
    }
}
