//! The AMF3 decoder on arbitrary bytes, one context spanning as many values as decode: it must
//! never panic, and whatever it accepts must survive an encode/decode round trip.
#![no_main]

use gstrtmpclient::rtmp::amf3::{Amf3Decoder, Amf3Encoder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut decoder = Amf3Decoder::new();
    let mut input = data;
    let mut values = Vec::new();
    while !input.is_empty() {
        let before = input.len();
        match decoder.decode(&mut input) {
            Ok(value) => values.push(value),
            Err(_) => {
                assert_eq!(input.len(), before, "failed decode consumed input");
                break;
            }
        }
    }
    if values.is_empty() {
        return;
    }

    let bytes = encode(&values);
    let mut decoder = Amf3Decoder::new();
    let mut input = &bytes[..];
    let again: Vec<_> = values
        .iter()
        .map(|_| {
            decoder
                .decode(&mut input)
                .expect("re-encoded AMF3 must decode")
        })
        .collect();
    assert!(input.is_empty(), "re-encoded AMF3 has trailing bytes");
    // Comparing the encodings also covers values holding a NaN, which never equal themselves.
    assert_eq!(encode(&again), bytes);
    #[allow(clippy::eq_op)] // false exactly when a NaN is somewhere inside
    if values == values {
        assert_eq!(again, values);
    }
});

/// Encodes `values` in one AMF3 context, as the decoder above read them.
fn encode(values: &[gstrtmpclient::rtmp::Amf3Value]) -> Vec<u8> {
    let mut encoder = Amf3Encoder::new();
    let mut out = Vec::new();
    for value in values {
        encoder.encode(value, &mut out);
    }
    out
}
