//! A media frame on its way from a streaming thread to the session thread.

use std::ops::Range;
use std::sync::Arc;

use crate::codec::h264::AvccView;

use super::convert::VideoBody;
use super::queue::{Queued, Track};

/// A mapped input buffer, shared by the frames cut from it.
pub type Mapping = Arc<gst::MappedBuffer<gst::buffer::Readable>>;

/// The bytes of a frame. They are never copied out of the input buffer: the frame keeps the
/// buffer mapped, and the chunk writer borrows slices of the mapping (see
/// [`FrameData::with_parts`]).
#[derive(Debug)]
pub enum FrameData {
    /// Part of a mapped input buffer (AVC access units, raw AAC, the frames of an ADTS buffer).
    Mapped {
        /// The mapping.
        map: Mapping,
        /// The frame's bytes within the mapping.
        range: Range<usize>,
    },
    /// An Annex-B access unit in AVC form: the 4-byte length prefixes are held by the view, the
    /// NAL units are ranges of the mapping.
    AnnexB {
        /// The mapping.
        map: Mapping,
        /// Length prefixes and NAL unit positions.
        view: AvccView,
    },
}

/// Slices one message is handed to the chunk writer in without allocating: the FLV tag header
/// and, for an Annex-B access unit, a prefix and a NAL unit per NAL unit the view holds inline.
const INLINE_PARTS: usize = 1 + 2 * AvccView::INLINE_NALS;

impl FrameData {
    /// The body of a video frame cut from `map` as `body` says.
    pub fn video(map: gst::MappedBuffer<gst::buffer::Readable>, body: VideoBody) -> Self {
        match body {
            VideoBody::AsIs => {
                let range = 0..map.as_slice().len();
                FrameData::Mapped {
                    map: Arc::new(map),
                    range,
                }
            }
            VideoBody::AnnexB(view) => FrameData::AnnexB {
                map: Arc::new(map),
                view,
            },
        }
    }

    /// Length of the frame body in bytes.
    pub fn len(&self) -> usize {
        match self {
            FrameData::Mapped { range, .. } => range.len(),
            FrameData::AnnexB { view, .. } => view.len(),
        }
    }

    /// Calls `f` with the message body — `header` followed by the frame's bytes — as slices
    /// borrowed from `header`, the mapping and the view.
    pub fn with_parts<'a, R>(&'a self, header: &'a [u8], f: impl FnOnce(&[&'a [u8]]) -> R) -> R {
        match self {
            FrameData::Mapped { map, range } => {
                f(&[header, map.as_slice().get(range.clone()).unwrap_or(&[])])
            }
            FrameData::AnnexB { map, view } => {
                let parts = std::iter::once(header).chain(view.parts(map.as_slice()));
                let n = 1 + 2 * view.nal_count();
                if n <= INLINE_PARTS {
                    let mut inline: [&[u8]; INLINE_PARTS] = [&[]; INLINE_PARTS];
                    for (slot, part) in inline.iter_mut().zip(parts) {
                        *slot = part;
                    }
                    f(&inline[..n])
                } else {
                    f(&parts.collect::<Vec<_>>())
                }
            }
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
        self.data.len()
    }
    fn keyframe(&self) -> bool {
        self.keyframe
    }
    fn disposable(&self) -> bool {
        self.disposable
    }
}
