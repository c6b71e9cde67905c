//! Benchmarks of the RTMP chunk layer: chunking a 100 KB message at chunk size 4096 into a
//! recycled [`ChunkBatch`], writing the batch into `std::io::sink()` with vectored writes, and
//! reassembling the chunks with [`ChunkReader`].
//!
//! Before measuring, `main` checks with a counting global allocator that chunking and writing a
//! message into a warmed-up batch performs no heap allocation at all (the unit test
//! `rtmp::chunk::tests::no_allocation_after_warm_up` proves the same through the batch's
//! capacities).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::{Criterion, Throughput};
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
    let mut criterion = Criterion::default().configure_from_args();
    bench_chunking(&mut criterion);
    criterion.final_summary();
}
