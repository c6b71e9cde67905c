//! Fuzzes the incoming RTMP chunk stream: arbitrary bytes, fed in a few slices, must never make
//! `ChunkReader` panic, and what it buffers must stay within its limits.
#![no_main]

use gstrtmpclient::rtmp::chunk::{ChunkReader, MAX_BUFFERED_BYTES, MAX_CHUNK_HEADER_LEN};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // The first byte picks the slice length, so the corpus explores different split points.
    let Some((&split, data)) = data.split_first() else {
        return;
    };
    let step = usize::from(split) + 1;
    let mut reader = ChunkReader::new();
    for piece in data.chunks(step) {
        reader.push(piece);
        loop {
            match reader.next_message() {
                Ok(Some(_)) => {}
                Ok(None) => {
                    assert!(reader.buffered_len() < MAX_CHUNK_HEADER_LEN);
                    break;
                }
                Err(_) => return,
            }
        }
        assert!(reader.partial_len() <= MAX_BUFFERED_BYTES);
    }
});
