//! The AMF0 decoder on arbitrary bytes: it must never panic, a failed decode must leave the
//! input alone, and whatever it accepts must survive an encode/decode round trip.
#![no_main]

use gstrtmpclient::rtmp::amf0;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = data;
    if amf0::decode(&mut input).is_err() {
        assert_eq!(input.len(), data.len(), "failed decode consumed input");
    }

    let Ok(values) = amf0::decode_all(data) else {
        return;
    };
    let bytes = amf0::encode_all(&values);
    let again = amf0::decode_all(&bytes).expect("re-encoded AMF0 must decode");
    // Comparing the encodings also covers values holding a NaN, which never equal themselves.
    assert_eq!(amf0::encode_all(&again), bytes);
    #[allow(clippy::eq_op)] // false exactly when a NaN is somewhere inside
    if values == values {
        assert_eq!(again, values);
    }
});
