//! Benchmarks of the RTMP chunk layer: chunking a 100 KB message at chunk size 4096 into a
//! recycled [`ChunkBatch`], writing the batch into `std::io::sink()` with vectored writes, and
//! reassembling the chunks with [`ChunkReader`].
//!
//! Before measuring, `main` checks with a counting global allocator that chunking and writing a
//! message into a warmed-up batch performs no heap allocation at all (the unit test
//! `rtmp::chunk::tests::no_allocation_after_warm_up` proves the same through the batch's
//! capacities), and that the same holds with the codec layer in front, for every input form the
//! element takes: AVC with and without AUD (checked, sent as is), Annex-B byte-stream (4-byte
//! length prefixes plus borrowed NAL units), raw AAC and ADTS (header sliced off). In each case
//! every payload byte written is borrowed from the input buffer, none copied. (The element's own
//! conversion state is proven the same way by the unit tests in
//! `rtmpclientsink::frame::zero_copy_tests`.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::{Criterion, Throughput};
use gstrtmpclient::codec::{aac, h264};
use gstrtmpclient::rtmp::chunk::{ChunkBatch, ChunkReader, ChunkWriter};

/// Counts allocations and reallocations, delegating to the system allocator.
struct CountingAlloc;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`, which upholds the `GlobalAlloc`
// contract; the counter has no effect on the memory handed out.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

const MESSAGE_SIZE: usize = 100 * 1024;
const CHUNK_SIZE: u32 = 4096;
const CSID: u32 = 6;
const VIDEO: u8 = 9;

fn payload() -> (Vec<u8>, Vec<u8>) {
    let tag_header = vec![0x17, 0x01, 0x00, 0x00, 0x00];
    let frame = (0..MESSAGE_SIZE - tag_header.len())
        .map(|i| (i * 131) as u8)
        .collect();
    (tag_header, frame)
}

/// Asserts that chunking and writing into a warmed-up batch allocates nothing.
fn allocation_proof() {
    let (tag_header, frame) = payload();
    let mut writer = ChunkWriter::new();
    writer.set_chunk_size(CHUNK_SIZE);
    let mut batch = ChunkBatch::new();
    writer
        .write_message(CSID, 0, VIDEO, 1, &[&tag_header, &frame], &mut batch)
        .expect("chunking");
    batch.write_to(&mut io::sink()).expect("sink");
    let mut batch = batch.recycle();
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for i in 1..100u32 {
        writer
            .write_message(CSID, i * 33, VIDEO, 1, &[&tag_header, &frame], &mut batch)
            .expect("chunking");
        batch.write_to(&mut io::sink()).expect("sink");
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(
        allocations, 0,
        "chunking + write_to allocated {allocations} times"
    );
    println!(
        "allocation proof: 99 messages of {MESSAGE_SIZE} bytes chunked and written with 0 allocations"
    );
}

/// An access unit of x264enc's shape (AUD when `aud`, SPS, PPS and SEI, a 60 KB IDR slice), as
/// its NAL units; the slice has no zero bytes, so no start code appears inside it.
fn h264_keyframe(aud: bool) -> Vec<Vec<u8>> {
    let mut nals = Vec::new();
    if aud {
        nals.push(vec![0x09, 0xf0]);
    }
    nals.push(vec![0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb]);
    nals.push(vec![0x68, 0xcb, 0x83, 0xcb, 0x20]);
    nals.push(vec![0x06, 0x05, 0x02, 0x11, 0x22, 0x80]);
    let mut idr = vec![0x65];
    idr.extend((1..60_000).map(|i| (i * 131 % 255 + 1) as u8));
    nals.push(idr);
    nals
}

fn length_prefixed(nals: &[Vec<u8>]) -> Vec<u8> {
    nals.iter()
        .flat_map(|n| (n.len() as u32).to_be_bytes().into_iter().chain(n.clone()))
        .collect()
}

fn adts(payload: &[u8]) -> Vec<u8> {
    let len = payload.len() + 7;
    let mut v = vec![
        0xff,
        0xf1,
        0x4c, // AAC-LC, 48 kHz
        0x80 | ((len >> 11) as u8 & 0x3),
        (len >> 3) as u8,
        (((len & 7) as u8) << 5) | 0x1f,
        0xfc,
    ];
    v.extend_from_slice(payload);
    v
}

/// Sends one input buffer as the element does: AVC and raw AAC whole (after checking), Annex-B
/// as length prefixes plus NAL units, ADTS without its header; chunked into `batch` (recycled
/// for the borrow) and written. Returns the batch and how many bytes written were borrowed
/// from `input`.
fn send(
    form: &str,
    input: &[u8],
    writer: &mut ChunkWriter,
    batch: ChunkBatch<'static>,
    ts: u32,
) -> (ChunkBatch<'static>, usize) {
    let mut batch = batch.recycle();
    let view;
    let mut parts: [&[u8]; 17] = [&[]; 17];
    let parts: &[&[u8]] = match form {
        "avc" => {
            h264::avcc_info(input, 4).expect("valid AVC");
            parts[..2].copy_from_slice(&[&[0x17, 1, 0, 0, 0], input]);
            &parts[..2]
        }
        "byte-stream" => {
            view = h264::AvccView::from_annexb(input).expect("valid Annex-B");
            parts[0] = &[0x17, 1, 0, 0, 0];
            for (slot, part) in parts[1..].iter_mut().zip(view.parts(input)) {
                *slot = part;
            }
            &parts[..1 + 2 * view.nal_count()]
        }
        "raw" => {
            parts[..2].copy_from_slice(&[&[0xaf, 1], input]);
            &parts[..2]
        }
        "adts" => {
            let (_, payload) = aac::adts_frames(input)
                .next()
                .expect("one frame")
                .expect("valid ADTS");
            parts[..2].copy_from_slice(&[&[0xaf, 1], payload]);
            &parts[..2]
        }
        _ => unreachable!("unknown form {form}"),
    };
    writer
        .write_message(CSID, ts, VIDEO, 1, parts, &mut batch)
        .expect("chunking");
    // io_slices allocates; it only inspects, so it is not counted.
    let counted = ALLOCATIONS.load(Ordering::Relaxed);
    let borrowed = batch
        .io_slices()
        .iter()
        .filter(|s| input.as_ptr_range().contains(&s.as_ptr()))
        .map(|s| s.len())
        .sum();
    ALLOCATIONS.store(counted, Ordering::Relaxed);
    batch.write_to(&mut io::sink()).expect("sink");
    (batch.recycle(), borrowed)
}

/// Asserts that checking or converting, chunking and writing each input form allocates nothing
/// after the first message, and that every payload byte is borrowed from the input.
fn codec_allocation_proof() {
    let aac: Vec<u8> = (0..400).map(|i| (i * 7 % 255 + 1) as u8).collect();
    let cases: [(&str, &str, Vec<u8>, usize); 5] = [
        (
            "avc with AUD",
            "avc",
            length_prefixed(&h264_keyframe(true)),
            0,
        ),
        (
            "avc without AUD",
            "avc",
            length_prefixed(&h264_keyframe(false)),
            0,
        ),
        (
            "byte-stream",
            "byte-stream",
            h264_keyframe(true)
                .iter()
                .flat_map(|n| [0, 0, 0, 1].into_iter().chain(n.clone()))
                .collect(),
            // Bytes of the input that are not sent: the start codes.
            4 * 5,
        ),
        ("AAC raw", "raw", aac.clone(), 0),
        ("AAC ADTS", "adts", adts(&aac), 7),
    ];
    for (name, form, input, not_sent) in cases {
        let mut writer = ChunkWriter::new();
        writer.set_chunk_size(CHUNK_SIZE);
        let mut batch = ChunkBatch::new();
        let mut allocations = 0;
        for i in 0..100u32 {
            let before = ALLOCATIONS.load(Ordering::Relaxed);
            let (recycled, borrowed) = send(form, &input, &mut writer, batch, i * 33);
            batch = recycled;
            if i > 0 {
                allocations += ALLOCATIONS.load(Ordering::Relaxed) - before;
            }
            assert_eq!(
                borrowed,
                input.len() - not_sent,
                "{name}: payload bytes not borrowed from the input"
            );
        }
        assert_eq!(allocations, 0, "{name}: {allocations} allocations");
        println!(
            "allocation proof: {name}: 99 messages of {} payload bytes checked or converted, \
             chunked and written with 0 allocations, every payload byte borrowed",
            input.len() - not_sent
        );
    }
}

fn bench_chunking(c: &mut Criterion) {
    let (tag_header, frame) = payload();
    let mut group = c.benchmark_group("chunk");
    group.throughput(Throughput::Bytes(MESSAGE_SIZE as u64));

    group.bench_function("write_message_100k_cs4096", |b| {
        let mut writer = ChunkWriter::new();
        writer.set_chunk_size(CHUNK_SIZE);
        let mut batch = ChunkBatch::new();
        let mut ts = 0u32;
        b.iter(|| {
            ts = ts.wrapping_add(33);
            writer
                .write_message(CSID, ts, VIDEO, 1, &[&tag_header, &frame], &mut batch)
                .expect("chunking");
            black_box(batch.remaining());
            batch.clear();
        });
    });

    group.bench_function("write_message_and_write_to_sink_100k_cs4096", |b| {
        let mut writer = ChunkWriter::new();
        writer.set_chunk_size(CHUNK_SIZE);
        let mut batch = ChunkBatch::new();
        let mut sink = io::sink();
        let mut ts = 0u32;
        b.iter(|| {
            ts = ts.wrapping_add(33);
            writer
                .write_message(CSID, ts, VIDEO, 1, &[&tag_header, &frame], &mut batch)
                .expect("chunking");
            batch.write_to(black_box(&mut sink)).expect("sink");
        });
    });

    // The reader side, for comparison (it copies: every message is returned as an owned Vec).
    let mut writer = ChunkWriter::new();
    writer.set_chunk_size(CHUNK_SIZE);
    let mut batch = ChunkBatch::new();
    writer
        .write_message(CSID, 0, VIDEO, 1, &[&tag_header, &frame], &mut batch)
        .expect("chunking");
    let first = batch.to_vec();
    batch.clear();
    writer
        .write_message(CSID, 33, VIDEO, 1, &[&tag_header, &frame], &mut batch)
        .expect("chunking");
    let next = batch.to_vec();
    group.bench_function("reader_100k_cs4096", |b| {
        let mut reader = ChunkReader::new();
        reader.push(&set_chunk_size(CHUNK_SIZE));
        reader.push(&first);
        while reader.next_message().expect("valid").is_some() {}
        b.iter(|| {
            reader.push(black_box(&next));
            let m = reader.next_message().expect("valid").expect("message");
            black_box(m.payload.len());
        });
    });
    group.finish();
}

/// A SetChunkSize message on csid 2 as the peer would send it.
fn set_chunk_size(size: u32) -> Vec<u8> {
    let mut v = vec![0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0];
    v.extend_from_slice(&size.to_be_bytes());
    v
}

fn main() {
    allocation_proof();
    codec_allocation_proof();
    let mut criterion = Criterion::default().configure_from_args();
    bench_chunking(&mut criterion);
    criterion.final_summary();
}
