//! A media frame on its way from a streaming thread to the session thread.

use std::ops::Range;
use std::sync::Arc;

use crate::codec::h264::AvccView;
use crate::codec::{Codec, flv};

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
    /// Several parts of a mapped input buffer sent back to back (an AV1 buffer whose temporal
    /// delimiters are not only at its start).
    Pieces {
        /// The mapping.
        map: Mapping,
        /// The parts, in order.
        ranges: Vec<Range<usize>>,
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
            VideoBody::Range(range) => FrameData::Mapped {
                map: Arc::new(map),
                range,
            },
            VideoBody::Ranges(ranges) => FrameData::Pieces {
                map: Arc::new(map),
                ranges,
            },
        }
    }

    /// Length of the frame body in bytes.
    pub fn len(&self) -> usize {
        match self {
            FrameData::Mapped { range, .. } => range.len(),
            FrameData::AnnexB { view, .. } => view.len(),
            FrameData::Pieces { ranges, .. } => ranges.iter().map(ExactSizeIterator::len).sum(),
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
            FrameData::Pieces { map, ranges } => {
                let data = map.as_slice();
                let parts: Vec<&[u8]> = std::iter::once(header)
                    .chain(ranges.iter().map(|r| data.get(r.clone()).unwrap_or(&[])))
                    .collect();
                f(&parts)
            }
        }
    }
}

/// What a track's decoder needs before its frames, as it goes on the wire: the sequence start
/// and the packets that accompany it. The session thread sends it before the track's first
/// frame on every connection, and again whenever a frame carries a different one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackConfig {
    /// Body of the SequenceStart packet (avcC, AudioSpecificConfig, hvcC, OpusHead, ...);
    /// `None` when the codec's wire form has none (legacy MP3).
    pub sequence_start: Option<Vec<u8>>,
    /// Packets sent right after the sequence start, in order (a MultichannelConfig, a
    /// `colorInfo` Metadata), each with its body.
    pub extra: Vec<(flv::Packet, Vec<u8>)>,
    /// MP3 on track 0: the legacy header's flags (see [`flv::TagTrack::legacy_sound`]).
    pub legacy_sound: Option<flv::SoundFlags>,
}

impl TrackConfig {
    /// A configuration that is just a sequence start.
    pub fn sequence_start(bytes: Vec<u8>) -> Self {
        TrackConfig {
            sequence_start: Some(bytes),
            ..TrackConfig::default()
        }
    }

    /// The sequence start's bytes, if any.
    pub fn start(&self) -> Option<&[u8]> {
        self.sequence_start.as_deref()
    }

    /// Payload bytes of all its packets (for logs).
    pub fn len(&self) -> usize {
        self.sequence_start.as_ref().map_or(0, Vec::len)
            + self.extra.iter().map(|(_, b)| b.len()).sum::<usize>()
    }
}

/// One RTMP media message to be.
#[derive(Debug)]
pub struct Frame {
    /// Its track: media kind and track id.
    pub track: Track,
    /// Its codec (decides the tag form with the track id, see [`flv::TagTrack::form`]).
    pub codec: Codec,
    /// Decode time, milliseconds of running time.
    pub dts_ms: i64,
    /// Decode time minus `dts_ms`, in nanoseconds (`dts_ms` is rounded to the nearest ms, so
    /// -500 000..500 000): what a ModEx TimestampOffsetNano can carry when it is positive.
    pub dts_sub_ms_ns: i32,
    /// Composition time offset (PTS − DTS) in ms, signed; 0 for audio.
    pub cts_ms: i64,
    /// Seekable (always true for audio).
    pub keyframe: bool,
    /// Nothing references it (may be dropped under congestion).
    pub disposable: bool,
    /// The configuration that decodes it; the session thread sends it again whenever a frame
    /// carries a different one (and after every (re)connect).
    pub config: Arc<TrackConfig>,
    /// The frame body without FLV tag header.
    pub data: FrameData,
}

impl Frame {
    /// Whose tags it goes out in: codec, track id and legacy flags.
    pub fn tag_track(&self) -> flv::TagTrack {
        flv::TagTrack {
            codec: self.codec,
            track_id: self.track.id,
            legacy_sound: self.config.legacy_sound,
        }
    }
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

#[cfg(test)]
mod zero_copy_tests {
    //! Allocation proof of the element's media path, for every input form: a buffer is
    //! converted by the pad's codec state (`input.rs` over `convert.rs`), becomes a
    //! [`FrameData`], gets its tag header from `codec::flv::tag_header` and is chunked into a
    //! recycled batch as the session thread does it. Every payload byte the chunk writer gets
    //! is borrowed from the GStreamer buffer's mapped memory, and after the first frame the
    //! conversion, the header and the chunking allocate nothing; the only allocation per buffer
    //! is the `Arc` of its mapping.
    //!
    //! The counting allocator counts per thread, so tests running in parallel do not disturb
    //! each other; it is the allocator of the whole unit-test binary and otherwise just
    //! forwards to the system allocator.

    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;
    use std::io;
    use std::sync::Arc;

    use super::{FrameData, Mapping};
    use crate::codec::{Codec, flv};
    use crate::rtmp::chunk::{ChunkBatch, ChunkWriter};
    use crate::rtmpclientsink::audio::{Ac3State, FlacState, Mp3State, OpusState};
    use crate::rtmpclientsink::convert::{AacInput, AacState, H264Input, H264State};
    use crate::rtmpclientsink::input::{CodecState, Converted};
    use crate::rtmpclientsink::video::test_vectors::{annexb, length_prefixed};
    use crate::rtmpclientsink::video::{Av1State, H265Input, H265State, VideoColour, Vp9State};

    struct CountingAlloc;

    thread_local! {
        static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    }

    fn count_one() {
        // `try_with`: the thread-local may already be gone while a thread ends.
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
    }

    // SAFETY: every call is forwarded unchanged to `System`, which upholds the `GlobalAlloc`
    // contract; counting touches a const-initialised thread-local without destructor, which
    // never allocates.
    unsafe impl GlobalAlloc for CountingAlloc {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            count_one();
            // SAFETY: same contract as the caller's.
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: same contract as the caller's.
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            count_one();
            // SAFETY: same contract as the caller's.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static GLOBAL: CountingAlloc = CountingAlloc;

    /// Runs `f`, returning its result and the number of heap allocations it made on this thread.
    fn counted<R>(f: impl FnOnce() -> R) -> (R, u64) {
        let before = ALLOCATIONS.with(Cell::get);
        let r = f();
        (r, ALLOCATIONS.with(Cell::get) - before)
    }

    const SPS: &[u8] = &[
        0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10,
        0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0xa4, 0x80,
    ];
    const PPS: &[u8] = &[0x68, 0xcb, 0x83, 0xcb, 0x20];
    const AUD: &[u8] = &[0x09, 0xf0];
    const SEI: &[u8] = &[0x06, 0x05, 0x02, 0x11, 0x22, 0x80];

    /// A slice NAL unit of `len` bytes without zero bytes (so no start code can appear in it).
    fn slice(header: u8, len: usize, seed: usize) -> Vec<u8> {
        let mut v = vec![header];
        v.extend((1..len).map(|i| ((i * 131 + seed) % 255 + 1) as u8));
        v
    }

    /// Two GOPs of 30 frames, x264enc-style: AUD in every frame when `aud`, SPS/PPS repeated
    /// with every IDR, an SEI in the first frame. Returns the NAL units and delta flag per frame.
    fn h264_gops(aud: bool, in_band_parameter_sets: bool) -> Vec<(Vec<Vec<u8>>, bool)> {
        (0..60)
            .map(|i| {
                let key = i % 30 == 0;
                let mut nals = Vec::new();
                if aud {
                    nals.push(AUD.to_vec());
                }
                if key && in_band_parameter_sets {
                    nals.push(SPS.to_vec());
                    nals.push(PPS.to_vec());
                }
                if i == 0 {
                    nals.push(SEI.to_vec());
                }
                nals.push(if key {
                    slice(0x65, 60_000, i)
                } else {
                    slice(0x41, 6_000, i)
                });
                (nals, !key)
            })
            .collect()
    }

    fn adts(payload: &[u8]) -> Vec<u8> {
        let len = payload.len() + 7;
        let mut v = vec![
            0xff,
            0xf1,
            (1 << 6) | (3 << 2), // AAC-LC, 48 kHz
            (2 << 6) | ((len >> 11) as u8 & 0x3),
            (len >> 3) as u8,
            (((len & 7) as u8) << 5) | 0x1f,
            0xfc,
        ];
        v.extend_from_slice(payload);
        v
    }

    /// One input buffer: its bytes, its DELTA_UNIT flag, and the message bodies (without FLV
    /// tag header) it must become.
    struct Input {
        bytes: Vec<u8>,
        delta: bool,
        bodies: Vec<Vec<u8>>,
    }

    /// What the proof measured over one stream.
    #[derive(Debug, PartialEq, Eq)]
    struct Measured {
        frames: usize,
        /// Allocations converting and chunking after the first buffer (the `Arc`s excluded).
        steady_allocations: u64,
        /// `Arc`s of mappings, one per buffer.
        mapping_allocations: u64,
        /// Payload bytes handed to the chunk writer that were not inside the mapped buffer.
        copied_payload_bytes: usize,
    }

    fn run(conv: CodecState, inputs: Vec<Input>) -> Measured {
        // The legacy headers of H.264 and AAC key frames; the enhanced video codecs get an
        // ExVideoTagHeader with CodedFramesX (or CodedFrames for codecs without composition
        // time).
        let header: &[u8] = match conv.codec() {
            Codec::H264 => &[0x17, 1, 0, 0, 0],
            Codec::H265 => b"\x93hvc1",
            Codec::Av1 => b"\x91av01",
            Codec::Vp9 => b"\x91vp09",
            _ => &[0xaf, 1],
        };
        run_with_header(conv, inputs, header)
    }

    /// [`run`] for any codec: `expected_header` is the tag header every frame must get.
    fn run_with_header(
        mut conv: CodecState,
        inputs: Vec<Input>,
        expected_header: &[u8],
    ) -> Measured {
        gst::init().unwrap();
        let mut writer = ChunkWriter::new();
        writer.set_chunk_size(4096);
        let mut batch: ChunkBatch<'static> = ChunkBatch::new();
        let mut m = Measured {
            frames: 0,
            steady_allocations: 0,
            mapping_allocations: 0,
            copied_payload_bytes: 0,
        };
        for (i, input) in inputs.into_iter().enumerate() {
            let map = gst::Buffer::from_mut_slice(input.bytes)
                .into_mapped_buffer_readable()
                .unwrap();
            let memory = map.as_slice().as_ptr_range();
            let mut allocations = 0;
            // Convert as input.rs does.
            let (converted, n) = counted(|| conv.convert(map.as_slice(), input.delta));
            allocations += n;
            let mut tag = flv::TagTrack::new(conv.codec(), 0);
            let datas: Vec<FrameData> = match converted.unwrap() {
                Converted::Video(au) => {
                    let (data, n) = counted(|| FrameData::video(map, au.body));
                    m.mapping_allocations += n;
                    vec![data]
                }
                Converted::BeforeKeyframe => panic!("frame {i} not sent"),
                // An in-band stream header: no frame, nothing mapped for the queue.
                Converted::Header => Vec::new(),
                Converted::Audio(frames) => {
                    let (map, n) = counted(|| Mapping::new(map));
                    m.mapping_allocations += n;
                    frames
                        .into_iter()
                        .map(|f| {
                            tag.legacy_sound = f.config.legacy_sound;
                            FrameData::Mapped {
                                map: Arc::clone(&map),
                                range: f.range,
                            }
                        })
                        .collect()
                }
            };
            assert_eq!(datas.len(), input.bodies.len(), "frames of buffer {i}");
            for (data, expected) in datas.iter().zip(&input.bodies) {
                assert_eq!(data.len(), expected.len());
                let body = data.with_parts(&[], |parts| parts.concat());
                assert_eq!(&body, expected, "body of buffer {i}");
                // The tag header as the session thread builds it: today's legacy bytes.
                let (header, n) =
                    counted(|| flv::tag_header(tag, flv::Packet::frame(true, 0), None).unwrap());
                allocations += n;
                assert_eq!(&*header, expected_header);
                // Chunk it as the session thread does, into a recycled batch.
                let mut b = batch.recycle();
                let (r, n) = counted(|| {
                    data.with_parts(&header, |parts| {
                        writer.write_message(6, m.frames as u32 * 33, 9, 1, parts, &mut b)
                    })
                });
                r.unwrap();
                allocations += n;
                let borrowed: usize = b
                    .io_slices()
                    .iter()
                    .filter(|s| memory.contains(&s.as_ptr()))
                    .map(|s| s.len())
                    .sum();
                let payload = match data {
                    FrameData::Mapped { range, .. } => range.len(),
                    FrameData::AnnexB { view, .. } => view.len() - 4 * view.nal_count(),
                    FrameData::Pieces { ranges, .. } => {
                        ranges.iter().map(ExactSizeIterator::len).sum()
                    }
                };
                m.copied_payload_bytes += payload - borrowed;
                let (r, n) = counted(|| b.write_to(&mut io::sink()));
                r.unwrap();
                allocations += n;
                batch = b.recycle();
                m.frames += 1;
            }
            if i > 0 {
                m.steady_allocations += allocations;
            }
        }
        m
    }

    fn h264_inputs(form: H264Input, aud: bool) -> Vec<Input> {
        h264_gops(aud, form == H264Input::ByteStream)
            .into_iter()
            .map(|(nals, delta)| Input {
                bytes: match form {
                    H264Input::Avc => length_prefixed(&nals),
                    H264Input::ByteStream => annexb(&nals),
                },
                delta,
                bodies: vec![length_prefixed(&nals)],
            })
            .collect()
    }

    fn avc_config() -> Vec<u8> {
        crate::codec::h264::AvcDecoderConfigurationRecord::from_parameter_sets(
            &[SPS.to_vec()],
            &[PPS.to_vec()],
        )
        .unwrap()
        .to_bytes()
    }

    const NO_COPY: Measured = Measured {
        frames: 60,
        steady_allocations: 0,
        mapping_allocations: 60,
        copied_payload_bytes: 0,
    };

    #[test]
    fn avc_with_aud_is_sent_uncopied_without_allocations() {
        let conv = H264State::new(H264Input::Avc, Some(&avc_config())).unwrap();
        let inputs = h264_inputs(H264Input::Avc, true);
        assert_eq!(run(CodecState::H264(conv), inputs), NO_COPY);
    }

    #[test]
    fn avc_without_aud_is_sent_uncopied_without_allocations() {
        let conv = H264State::new(H264Input::Avc, Some(&avc_config())).unwrap();
        let inputs = h264_inputs(H264Input::Avc, false);
        assert_eq!(run(CodecState::H264(conv), inputs), NO_COPY);
    }

    #[test]
    fn byte_stream_is_sent_uncopied_without_allocations() {
        // SPS/PPS come with every keyframe: compared with the current ones, not copied.
        let conv = H264State::new(H264Input::ByteStream, None).unwrap();
        let inputs = h264_inputs(H264Input::ByteStream, true);
        assert_eq!(run(CodecState::H264(conv), inputs), NO_COPY);
    }

    #[test]
    fn byte_stream_with_many_slices_allocates_once_per_frame() {
        // Twelve slices per frame: more than a view holds inline. Still nothing copied.
        let conv = H264State::new(H264Input::ByteStream, None).unwrap();
        let inputs = (0..10)
            .map(|i| {
                let mut nals = vec![AUD.to_vec()];
                if i == 0 {
                    nals.extend([SPS.to_vec(), PPS.to_vec()]);
                }
                let header = if i == 0 { 0x65 } else { 0x41 };
                nals.extend((0..12).map(|s| slice(header, 3000, s)));
                Input {
                    bytes: annexb(&nals),
                    delta: i > 0,
                    bodies: vec![length_prefixed(&nals)],
                }
            })
            .collect();
        let m = run(CodecState::H264(conv), inputs);
        assert_eq!(m.copied_payload_bytes, 0);
        // Per frame: the view's spill vector (it grows twice for five NAL units) and the slice
        // list handed to the chunk writer; none depends on the frame's size.
        assert_eq!(m.steady_allocations, 9 * 3);
    }

    /// HEVC NAL unit of type `t` and `len` bytes without zero bytes.
    fn hevc_nal(t: u8, len: usize, seed: usize) -> Vec<u8> {
        let mut v = vec![t << 1, 1];
        v.extend((2..len).map(|i| ((i * 131 + seed) % 255 + 1) as u8));
        v
    }

    /// Two HEVC GOPs of 30 frames, x265enc-style: AUD in every frame, VPS/SPS/PPS with every
    /// IDR (in-band ones only when `in_band`), an SEI in the first frame.
    fn hevc_gops(in_band: bool) -> Vec<(Vec<Vec<u8>>, bool)> {
        let [vps, sps, pps] = crate::rtmpclientsink::video::test_vectors::hevc_parameter_sets();
        (0..60)
            .map(|i| {
                let key = i % 30 == 0;
                let mut nals = vec![hevc_nal(35, 3, 0)];
                if key && in_band {
                    nals.extend([vps.clone(), sps.clone(), pps.clone()]);
                }
                if i == 0 {
                    nals.push(hevc_nal(39, 20, i));
                }
                nals.push(if key {
                    hevc_nal(19, 60_000, i)
                } else {
                    hevc_nal(1, 6_000, i)
                });
                (nals, !key)
            })
            .collect()
    }

    #[test]
    fn hvc1_is_sent_uncopied_without_allocations() {
        let hvcc = crate::rtmpclientsink::video::test_vectors::hvcc();
        for input in [H265Input::Hvc1, H265Input::Hev1] {
            let conv = H265State::new(input, Some(&hvcc), VideoColour::default()).unwrap();
            let inputs = hevc_gops(input == H265Input::Hev1)
                .into_iter()
                .map(|(nals, delta)| Input {
                    bytes: length_prefixed(&nals),
                    delta,
                    bodies: vec![length_prefixed(&nals)],
                })
                .collect();
            assert_eq!(run(CodecState::H265(conv), inputs), NO_COPY, "{input:?}");
        }
    }

    #[test]
    fn hevc_byte_stream_is_sent_uncopied_without_allocations() {
        // VPS/SPS/PPS come with every keyframe: compared with the current ones, not copied.
        let conv = H265State::new(H265Input::ByteStream, None, VideoColour::default()).unwrap();
        let inputs = hevc_gops(true)
            .into_iter()
            .map(|(nals, delta)| Input {
                bytes: annexb(&nals),
                delta,
                bodies: vec![length_prefixed(&nals)],
            })
            .collect();
        assert_eq!(run(CodecState::H265(conv), inputs), NO_COPY);
    }

    /// An AV1 OBU with a size field: `obu_type`, payload of `len` bytes starting with `first`.
    fn obu(obu_type: u8, first: u8, len: usize, seed: usize) -> Vec<u8> {
        let mut payload = vec![first];
        payload.extend((1..len).map(|i| ((i * 131 + seed) % 251) as u8));
        let mut v = vec![(obu_type << 3) | 0x02];
        crate::codec::av1::write_leb128(payload.len() as u32, &mut v);
        v.extend(payload);
        v
    }

    #[test]
    fn obu_stream_is_sent_uncopied_without_allocations() {
        // Temporal delimiter, sequence header with every keyframe (libaom repeats it), frame
        // OBU: everything after the delimiter goes out as one range of the mapping.
        let seq = crate::rtmpclientsink::video::test_vectors::av1_sequence_header_obu();
        let conv = Av1State::new(None, VideoColour::default()).unwrap();
        let inputs = (0..60)
            .map(|i| {
                let key = i % 30 == 0;
                let mut tu = vec![0x12, 0x00];
                if key {
                    tu.extend_from_slice(&seq);
                }
                // Frame header byte: key frame shown (0x10) or inter frame shown (0x30).
                let frame = if key {
                    obu(6, 0x10, 50_000, i)
                } else {
                    obu(6, 0x30, 5_000, i)
                };
                tu.extend_from_slice(&frame);
                Input {
                    bodies: vec![tu[2..].to_vec()],
                    bytes: tu,
                    delta: !key,
                }
            })
            .collect();
        assert_eq!(run(CodecState::Av1(conv), inputs), NO_COPY);
    }

    #[test]
    fn vp9_is_sent_uncopied_without_allocations() {
        let conv = Vp9State::new(VideoColour::default(), false);
        let inputs = (0..60)
            .map(|i| {
                let key = i % 30 == 0;
                let bytes = if key {
                    crate::rtmpclientsink::video::test_vectors::vp9_keyframe(40_000 + i)
                } else {
                    // Profile 0 inter frame, shown.
                    let mut v = vec![0x86];
                    v.extend((1..4_000 + i).map(|k| (k % 251) as u8));
                    v
                };
                Input {
                    bodies: vec![bytes.clone()],
                    bytes,
                    delta: !key,
                }
            })
            .collect();
        assert_eq!(run(CodecState::Vp9(conv), inputs), NO_COPY);
    }

    #[test]
    fn raw_aac_is_sent_uncopied_without_allocations() {
        let conv = AacState::new(AacInput::Raw, Some(&[0x11, 0x90])).unwrap();
        let inputs = (0..60)
            .map(|i| {
                let bytes = slice(0x21, 300 + i, i);
                Input {
                    bodies: vec![bytes.clone()],
                    bytes,
                    delta: false,
                }
            })
            .collect();
        assert_eq!(run(CodecState::Aac(conv), inputs), NO_COPY);
    }

    #[test]
    fn adts_is_sent_uncopied_without_allocations() {
        let conv = AacState::new(AacInput::Adts, None).unwrap();
        let inputs = (0..60)
            .map(|i| {
                let payload = slice(0x21, 300 + i, i);
                Input {
                    bytes: adts(&payload),
                    delta: false,
                    bodies: vec![payload],
                }
            })
            .collect();
        assert_eq!(run(CodecState::Aac(conv), inputs), NO_COPY);
        // Several frames in one buffer: one vector for the frames after the first.
        let conv = AacState::new(AacInput::Adts, None).unwrap();
        let inputs = (0..10)
            .map(|i| {
                let payloads: Vec<Vec<u8>> = (0..3).map(|k| slice(0x21, 200 + k, i)).collect();
                Input {
                    bytes: payloads.iter().flat_map(|p| adts(p)).collect(),
                    delta: false,
                    bodies: payloads,
                }
            })
            .collect();
        let m = run(CodecState::Aac(conv), inputs);
        assert_eq!((m.frames, m.copied_payload_bytes), (30, 0));
        assert_eq!(m.steady_allocations, 9);
    }

    /// Audio buffers of the codecs in `audio.rs`, each one frame sent as it is.
    fn whole_buffers(first: u8, sizes: std::ops::Range<usize>) -> Vec<Input> {
        sizes
            .map(|len| {
                let mut bytes = slice(first, len, len);
                if first == 0xff {
                    // A FLAC frame sync.
                    bytes[1] = 0xf8;
                }
                Input {
                    bodies: vec![bytes.clone()],
                    bytes,
                    delta: false,
                }
            })
            .collect()
    }

    #[test]
    fn opus_is_sent_uncopied_without_allocations() {
        let head = crate::codec::opus::OpusHead::new(2, 48_000, 312, None, None, None)
            .unwrap()
            .to_bytes();
        let conv = CodecState::Opus(OpusState::new(&head).unwrap());
        let m = run_with_header(conv, whole_buffers(0xfc, 100..160), b"\x91Opus");
        assert_eq!(m, NO_COPY);
    }

    #[test]
    fn flac_is_sent_uncopied_without_allocations_and_headers_are_no_frames() {
        let info = crate::codec::flac::StreamInfo {
            min_block_size: 4608,
            max_block_size: 4608,
            min_frame_size: 0,
            max_frame_size: 0,
            sample_rate: 48_000,
            channels: 2,
            bits_per_sample: 16,
            total_samples: 0,
            md5: [0; 16],
        };
        let conv = CodecState::Flac(FlacState::new(Some(&info)));
        // The caps' streamheader again in-band, as matroskademux and flacparse push it ("fLaC"
        // and the STREAMINFO block as buffers), here after the first frame (the first buffer
        // warms the chunk writer up).
        let mut block = vec![0x80, 0, 0, 34];
        block.extend_from_slice(&info.to_bytes());
        let mut inputs = whole_buffers(0xff, 100..101);
        inputs.extend([b"fLaC".to_vec(), block].into_iter().map(|bytes| Input {
            bytes,
            delta: false,
            bodies: Vec::new(),
        }));
        inputs.extend(whole_buffers(0xff, 101..158));
        let m = run_with_header(conv, inputs, b"\x91fLaC");
        assert_eq!(
            m,
            Measured {
                frames: 58,
                mapping_allocations: 58,
                ..NO_COPY
            }
        );
    }

    #[test]
    fn ac3_is_sent_uncopied_without_allocations() {
        // 48 kHz stereo AC-3 syncframes of 768 bytes (192 kbit/s).
        let inputs = (0..60)
            .map(|i| {
                let mut bytes = slice(0, 768, i);
                bytes[..7].copy_from_slice(&[0x0b, 0x77, 0, 0, 0x14, 0x40, 0x40]);
                Input {
                    bodies: vec![bytes.clone()],
                    bytes,
                    delta: false,
                }
            })
            .collect();
        let conv = CodecState::Ac3(Ac3State::new(crate::codec::ac3::Kind::Ac3));
        assert_eq!(run_with_header(conv, inputs, b"\x91ac-3"), NO_COPY);
    }

    #[test]
    fn mp3_is_sent_uncopied_without_allocations() {
        // MPEG-1 layer III, 128 kbit/s, 44.1 kHz stereo: legacy SoundFormat 2 on track 0.
        let inputs = (0..60)
            .map(|i| {
                let mut bytes = slice(0, 417, i);
                bytes[..4].copy_from_slice(&[0xff, 0xfb, 0x90, 0x00]);
                Input {
                    bodies: vec![bytes.clone()],
                    bytes,
                    delta: false,
                }
            })
            .collect();
        let conv = CodecState::Mp3(Mp3State::new());
        assert_eq!(run_with_header(conv, inputs, &[0x2f]), NO_COPY);
    }
}
